/* parleyd_child: the real parleyd as a child process (see parleyd_child.h). */
#include "tests/fakes/parleyd_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t
mono_us(void)
{
    return (int64_t)(uv_hrtime() / 1000u);
}

/* ---- running the loop ------------------------------------------------ */

struct until {
    uv_timer_t timer;
    int (*cond)(void *arg);
    void *arg;
    int64_t deadline_us;
    int held;
};

static void
until_tick(uv_timer_t *t)
{
    struct until *u = t->data;

    if (u->cond != NULL && u->cond(u->arg)) {
        u->held = 1;
        uv_stop(t->loop);
    } else if (mono_us() >= u->deadline_us) {
        uv_stop(t->loop);
    }
}

static void
until_closed(uv_handle_t *h)
{
    free(h->data);
}

int
loop_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg,
           int64_t timeout_ms)
{
    struct until *u = calloc(1, sizeof(*u));
    int held;

    if (u == NULL)
        return 0;
    if (cond != NULL && cond(arg)) {
        free(u);
        return 1;
    }
    u->cond = cond;
    u->arg = arg;
    u->deadline_us = mono_us() + timeout_ms * 1000;
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    uv_timer_start(&u->timer, until_tick, 1, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    held = u->held;
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, until_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    return held;
}

void
loop_for(uv_loop_t *loop, int64_t ms)
{
    (void)loop_until(loop, NULL, NULL, ms);
}

/* ---- /proc ------------------------------------------------------------ */

static long
status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = atol(line + klen + 1);
            break;
        }
    fclose(f);
    return kb;
}

long
proc_rss_kb(pid_t pid)
{
    return status_kb(pid, "VmRSS");
}

long
proc_hwm_kb(pid_t pid)
{
    return status_kb(pid, "VmHWM");
}

int64_t
proc_cpu_ms(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    long hz = sysconf(_SC_CLK_TCK);
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY);
    if (fd == -1)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* after "(comm)": state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%lu %lu",
                            &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * 1000 / (hz > 0 ? hz : 100);
}

int64_t
self_cpu_ms(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) == -1)
        return -1;
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* ---- the child --------------------------------------------------------- */

int
parleyd_child_init(struct parleyd_child *c, const char *bin, const char *conf,
                   const char *log, const char *dir)
{
    struct sockaddr_un a;

    memset(c, 0, sizeof(*c));
    c->notify_fd = -1;
    snprintf(c->bin, sizeof(c->bin), "%s", bin);
    snprintf(c->conf, sizeof(c->conf), "%s", conf);
    snprintf(c->log, sizeof(c->log), "%s", log);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    if ((size_t)snprintf(c->sock, sizeof(c->sock), "%s/notify", dir) >=
        sizeof(a.sun_path)) {
        fprintf(stderr, "parleyd_child: path too long: %s\n", dir);
        return -1;
    }
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", c->sock);
    unlink(c->sock);
    c->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (c->notify_fd == -1 ||
        bind(c->notify_fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
        fprintf(stderr, "parleyd_child: notify socket: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int
parleyd_child_start(struct parleyd_child *c)
{
    pid_t pid;
    int fd;

    c->ready = 0;
    c->start_us = mono_us();
    pid = fork();
    if (pid == -1) {
        fprintf(stderr, "parleyd_child: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd != -1)
            dup2(fd, 2);
        fd = open("/dev/null", O_RDWR);
        if (fd != -1) {
            dup2(fd, 0);
            dup2(fd, 1);
        }
        setenv("NOTIFY_SOCKET", c->sock, 1);
        execl(c->bin, "parleyd", "-c", c->conf, (char *)NULL);
        _exit(127);
    }
    c->pid = pid;
    return 0;
}

static int
ready_cond(void *arg)
{
    struct parleyd_child *c = arg;
    char buf[512];
    ssize_t n;

    while ((n = recv(c->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
        buf[n] = '\0';
        if (strstr(buf, "READY=1") != NULL)
            c->ready = 1;
    }
    return c->ready || !parleyd_child_alive(c);
}

int
parleyd_child_wait_ready(struct parleyd_child *c, uv_loop_t *loop,
                         int timeout_ms)
{
    loop_until(loop, ready_cond, c, timeout_ms);
    return c->ready && c->pid > 0 ? 0 : -1;
}

int
parleyd_child_alive(struct parleyd_child *c)
{
    int st;

    if (c->pid <= 0)
        return 0;
    if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
        c->pid = 0;
        return 0;
    }
    return 1;
}

struct reap {
    struct parleyd_child *c;
    int status;
    int done;
};

static int
reap_cond(void *arg)
{
    struct reap *r = arg;

    if (waitpid(r->c->pid, &r->status, WNOHANG) == r->c->pid)
        r->done = 1;
    return r->done;
}

int
parleyd_child_stop(struct parleyd_child *c, uv_loop_t *loop, int sig,
                   int timeout_ms)
{
    struct reap r = {c, 0, 0};

    if (c->pid <= 0)
        return -1;
    kill(c->pid, sig);
    if (!loop_until(loop, reap_cond, &r, timeout_ms)) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &r.status, 0);
        r.done = 1;
    }
    c->pid = 0;
    return r.done ? r.status : -1;
}

void
parleyd_child_close(struct parleyd_child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
    }
    if (c->notify_fd != -1) {
        close(c->notify_fd);
        unlink(c->sock);
        c->notify_fd = -1;
    }
}
