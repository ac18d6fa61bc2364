/* bench_daemon: parleyd's start-up time (exec → READY=1) and idle RSS. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 20

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long
rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* The process's own memory: dirty private pages (heap, stacks, data). */
static long
private_dirty_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Private_Dirty: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* systemd/parleyd.service's Environment= */
#define UNIT_ENV "GNUTLS_NO_IMPLICIT_INIT=1"

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One run: spawn (with env, NAME=VALUE, if not NULL), wait for READY=1,
 * optionally idle, sample RSS, stop. */
static int
run_once(const char *bin, const char *conf, const char *sock, int fd,
         const char *env, int idle_ms, int64_t *ready_us, long *rss,
         long *dirty)
{
    char buf[512];
    int64_t t0 = now_us();
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 2);
        setenv("NOTIFY_SOCKET", sock, 1);
        if (env != NULL && strchr(env, '=') != NULL) {
            char name[64];
            size_t n = (size_t)(strchr(env, '=') - env);
            snprintf(name, sizeof(name), "%.*s", (int)n, env);
            setenv(name, env + n + 1, 1);
        }
        execl(bin, "parleyd", "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, "READY=1"))
                break;
        }
    }
    *ready_us = now_us() - t0;
    if (idle_ms > 0)
        usleep((useconds_t)idle_ms * 1000);
    *rss = rss_kb(pid);
    *dirty = private_dirty_kb(pid);
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    /* drain STOPPING=1 and friends */
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    char dir[] = "/tmp/parley-bench-XXXXXX", conf[128], sock[100];
    const char *bin = argc > 1 ? argv[1] : "build/parleyd";
    struct sockaddr_un a;
    int64_t ready[RUNS];
    long rss = 0, rss_idle = 0, rss_unit = 0, dirty = 0, dirty_idle = 0;
    int fd, i;
    FILE *f;

    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(conf, sizeof(conf), "%s/parley.conf", dir);
    snprintf(sock, sizeof(sock), "%s/notify", dir);
    f = fopen(conf, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "[bot]\nstate_dir = %s/state\nmetrics_listen =\n", dir);
    fclose(f);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1)
        return 1;

    for (i = 0; i < RUNS; i++)
        if (run_once(bin, conf, sock, fd, NULL, 0, &ready[i], &rss, &dirty) ==
            -1) {
            fprintf(stderr, "bench_daemon: run %d failed\n", i);
            return 1;
        }
    if (run_once(bin, conf, sock, fd, NULL, 2000, &ready[0], &rss_idle,
                 &dirty_idle) == -1 ||
        run_once(bin, conf, sock, fd, UNIT_ENV, 2000, &ready[0], &rss_unit,
                 &dirty) == -1)
        return 1;
    qsort(ready + 1, RUNS - 1, sizeof(ready[0]), cmp64);
    printf(
        "| start-up, exec → READY=1 (no platform), median of %d | %.1f ms |\n",
        RUNS - 1, (double)ready[1 + (RUNS - 1) / 2] / 1000.0);
    printf("| start-up, exec → READY=1, worst of %d | %.1f ms |\n", RUNS - 1,
           (double)ready[RUNS - 1] / 1000.0);
    printf("| idle RSS after 2 s (no platform) | %.1f MB |\n",
           (double)rss_idle / 1024.0);
    printf("| of which private dirty (the process's own memory) | %.1f MB "
           "|\n",
           (double)dirty_idle / 1024.0);
    printf("| idle RSS after 2 s with the unit's environment (%s) | %.1f MB "
           "|\n",
           UNIT_ENV, (double)rss_unit / 1024.0);
    close(fd);
    unlink(sock);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
