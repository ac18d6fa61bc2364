/* parleyd_child: the real parleyd as a child process of a benchmark or the
 * soak driver (spawn, READY=1, RSS, CPU, kill -9, restart). */
#ifndef PARLEY_PARLEYD_CHILD_H
#define PARLEY_PARLEYD_CHILD_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/*
 * One struct parleyd_child runs `BIN -c CONF` with stderr appended to LOG
 * and $NOTIFY_SOCKET pointing at a datagram socket it owns, so READY=1 is
 * seen the way systemd sees it.  Everything that waits does so by running
 * the caller's loop (the fakes the daemon talks to live on it), never by
 * blocking in a syscall.
 */
struct parleyd_child {
    pid_t pid;     /* 0 when not running */
    int notify_fd; /* -1 when closed */
    int ready;     /* READY=1 seen since the last start */
    int64_t start_us;
    char sock[108]; /* the notify socket's path */
    char bin[256], conf[256], log[256];
};

/* Binds DIR/notify; 0 or -1 (logged on stderr). */
int parleyd_child_init(struct parleyd_child *c, const char *bin,
                       const char *conf, const char *log, const char *dir);
/* fork + exec; 0 or -1. */
int parleyd_child_start(struct parleyd_child *c);
/* Runs loop until READY=1 or timeout_ms; 0 ready, -1 not (dead or late). */
int parleyd_child_wait_ready(struct parleyd_child *c, uv_loop_t *loop,
                             int timeout_ms);
/* Sends sig and, for SIGKILL/SIGTERM, runs loop until the child is reaped
 * (at most timeout_ms, then SIGKILL).  Returns the wait status or -1. */
int parleyd_child_stop(struct parleyd_child *c, uv_loop_t *loop, int sig,
                       int timeout_ms);
/* 1 while the child runs (reaps it when it has exited). */
int parleyd_child_alive(struct parleyd_child *c);
void parleyd_child_close(struct parleyd_child *c);

/* /proc readings of any pid, -1 when unavailable. */
long proc_rss_kb(pid_t pid);    /* VmRSS */
long proc_hwm_kb(pid_t pid);    /* VmHWM, the peak */
int64_t proc_cpu_ms(pid_t pid); /* utime + stime */
int64_t self_cpu_ms(void);      /* this process: user + sys */

/*
 * Runs loop until cond(arg) returns non-zero (checked every millisecond)
 * or timeout_ms passes.  Returns 1 when cond held, 0 on timeout.
 */
int loop_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg,
               int64_t timeout_ms);
/* Runs loop for ms milliseconds. */
void loop_for(uv_loop_t *loop, int64_t ms);

/* Monotonic microseconds (the fakes' clock: fake_now_us()). */
int64_t mono_us(void);

#endif
