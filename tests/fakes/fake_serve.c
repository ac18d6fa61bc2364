/* fake_serve: serve until SIGTERM/SIGINT, then tear the fake down (see
 * fake_serve.h). */
#include "tests/fakes/fake_serve.h"

#include <signal.h>
#include <stdio.h>

struct fake_serve {
    void (*free_fn)(void *);
    void *arg;
    uv_signal_t sigterm, sigint;
};

/* Frees the fake once and stops watching signals, so the loop can end. */
static void
fake_serve_stop(struct fake_serve *m)
{
    if (m->free_fn == NULL)
        return;
    m->free_fn(m->arg);
    m->free_fn = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

static void
fake_serve_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    fake_serve_stop(s->data);
}

int
fake_serve_run(uv_loop_t *loop, const char *name, int port,
               void (*free_fn)(void *), void *arg)
{
    struct fake_serve m = {free_fn, arg, {0}, {0}};

    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &m.sigterm);
    uv_signal_init(loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, fake_serve_signal, SIGTERM);
    uv_signal_start(&m.sigint, fake_serve_signal, SIGINT);
    printf("port=%d\n", port);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    /* only a signal ends the run, but m is on this stack: be sure */
    fake_serve_stop(&m);
    return fake_serve_close(loop, name);
}

int
fake_serve_close(uv_loop_t *loop, const char *name)
{
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0) {
        fprintf(stderr, "%s: loop still has handles\n", name);
        return 1;
    }
    return 0;
}
