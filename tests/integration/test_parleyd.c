/* test_parleyd: the daemon's life cycle — READY, watchdog, SIGHUP, SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/t.h"

static char dir[64], conf[128], sock[100], logpath[128];

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void
write_conf(const char *extra)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "[bot]\nstate_dir = %s/state\nlog_level = debug\n"
             "metrics_listen =\n%s",
             dir, extra);
    write_file(conf, text);
}

static int
notify_open(void)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
        perror("notify socket");
        exit(1);
    }
    return fd;
}

/* Waits up to timeout_ms for a datagram containing want; 0 found. */
static int
notify_wait(int fd, const char *want, int timeout_ms, char *last,
            size_t lastlen)
{
    int64_t end = now_ms() + timeout_ms;
    char buf[1024];

    while (now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(end - now_ms());

        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (last != NULL)
            snprintf(last, lastlen, "%s", buf);
        if (strstr(buf, want) != NULL)
            return 0;
    }
    return -1;
}

static pid_t
spawn(const char *watchdog_usec)
{
    char bin[512];
    const char *build = getenv("PARLEY_BUILD");
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s/parleyd", build ? build : "build");
    pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(fd, 2);
        setenv("NOTIFY_SOCKET", sock, 1);
        if (watchdog_usec)
            setenv("WATCHDOG_USEC", watchdog_usec, 1);
        execl(bin, "parleyd", "-c", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits for pid to exit within timeout_ms; returns its status or -1. */
static int
wait_exit(pid_t pid, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int st;

    while (now_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        usleep(2000);
    }
    return -1;
}

static int
alive(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0;
}

static char *
read_log(void)
{
    static char buf[65536];
    int fd = open(logpath, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void
test_lifecycle(int fd)
{
    char last[1024];
    int64_t t0, ready_ms, stop_ms;
    pid_t pid;
    int st;

    write_conf("");
    t0 = now_ms();
    pid = spawn("400000");
    T_OK(pid > 0);
    T_EQ_INT(notify_wait(fd, "READY=1", 5000, last, sizeof(last)), 0);
    ready_ms = now_ms() - t0;
    printf("start-up to READY=1: %lld ms\n", (long long)ready_ms);
    T_OKF(ready_ms < 1000, "%lld ms", (long long)ready_ms);

    /* the watchdog pings at half of WATCHDOG_USEC = 200 ms */
    T_EQ_INT(notify_wait(fd, "WATCHDOG=1", 1000, NULL, 0), 0);

    /* a broken file is rejected and the daemon keeps running */
    write_file(conf, "[bot]\nno_such_key = 1\n");
    kill(pid, SIGHUP);
    T_EQ_INT(notify_wait(fd, "READY=1", 2000, last, sizeof(last)), 0);
    T_CONTAINS(last, "reload rejected");
    usleep(100000);
    T_OK(alive(pid));
    T_CONTAINS(read_log(), "reload: rejected");
    T_CONTAINS(read_log(), ":2: ");

    /* a good file is applied */
    write_conf("");
    kill(pid, SIGHUP);
    T_EQ_INT(notify_wait(fd, "READY=1", 2000, last, sizeof(last)), 0);
    T_OK(strstr(last, "rejected") == NULL);
    T_CONTAINS(read_log(), "reload: applied");

    /* SIGTERM: STOPPING=1, exit 0 within 1 s */
    t0 = now_ms();
    kill(pid, SIGTERM);
    T_EQ_INT(notify_wait(fd, "STOPPING=1", 1000, NULL, 0), 0);
    st = wait_exit(pid, 1000);
    stop_ms = now_ms() - t0;
    printf("SIGTERM to exit: %lld ms\n", (long long)stop_ms);
    T_OK(st != -1);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    T_CONTAINS(read_log(), "no platform enabled");
    /* the database was created with the schema */
    char db[512];
    struct stat sb;
    snprintf(db, sizeof(db), "%s/state/parley.db", dir);
    T_EQ_INT(stat(db, &sb), 0);
}

static void
test_sigint_and_bad_config(int fd)
{
    pid_t pid;
    int st;

    write_conf("");
    pid = spawn(NULL);
    T_EQ_INT(notify_wait(fd, "READY=1", 5000, NULL, 0), 0);
    kill(pid, SIGINT);
    st = wait_exit(pid, 1000);
    T_OK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* a bad file at start: exit 1 and never READY */
    write_file(conf, "[bot]\nlog_level = loud\n");
    pid = spawn(NULL);
    st = wait_exit(pid, 3000);
    T_OK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1);
    T_OK(notify_wait(fd, "READY=1", 100, NULL, 0) == -1);

    /* an unusable database: exit 2 */
    char text[1024];
    snprintf(text, sizeof(text), "[bot]\nstate_dir = %s/notadir\n", dir);
    write_file(conf, text);
    snprintf(text, sizeof(text), "%s/notadir", dir);
    write_file(text, "x");
    pid = spawn(NULL);
    st = wait_exit(pid, 3000);
    T_OK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

int
main(void)
{
    int fd;

    snprintf(dir, sizeof(dir), "/tmp/parley-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(conf, sizeof(conf), "%s/parley.conf", dir);
    snprintf(sock, sizeof(sock), "%s/notify", dir);
    snprintf(logpath, sizeof(logpath), "%s/parleyd.log", dir);
    fd = notify_open();
    test_lifecycle(fd);
    test_sigint_and_bad_config(fd);
    close(fd);
    if (t_failed)
        fprintf(stderr, "parleyd log:\n%s\n", read_log());
    else {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)!system(cmd);
    }
    return t_done();
}
