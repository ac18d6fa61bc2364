/* fake_serve: the serve-until-signalled part shared by the fake programs. */
#ifndef PARLEY_FAKE_SERVE_H
#define PARLEY_FAKE_SERVE_H

#include <uv.h>

/*
 * Ignores SIGPIPE, prints "port=PORT" as line 1 of stdout and runs loop
 * until SIGTERM or SIGINT, which call free_fn(arg) (the fake's teardown)
 * and let the loop drain.  Then closes loop as fake_serve_close() does.
 * Returns the exit status: 0, or 1 if the loop kept handles.
 */
int fake_serve_run(uv_loop_t *loop, const char *name, int port,
                   void (*free_fn)(void *), void *arg);

/* Runs loop until it has nothing left (a freed fake's teardown) and closes
 * it; 0, or 1 with a line on stderr naming the program if handles stay. */
int fake_serve_close(uv_loop_t *loop, const char *name);

#endif
