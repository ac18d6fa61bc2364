/* test_core_crash: kill -9 the core at random points while 1,000
 * messages flow, restart it, and count every answer by message id. */
#include "tests/t.h"

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MESSAGES 1000
#define KILLS 8

extern char **environ;

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t
spawn(const char *bin, char *const *argv)
{
    pid_t pid;

    if (posix_spawn(&pid, bin, NULL, NULL, argv, environ) != 0)
        return -1;
    return pid;
}

/* Waits up to max_ms for pid; returns its wait status, or -1 on timeout. */
static int
wait_for(pid_t pid, int max_ms)
{
    int64_t end = now_ms() + max_ms;
    int status;

    while (now_ms() < end) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return status;
        usleep(2000); /* a process test: polling a child, not a pure test */
    }
    return -1;
}

int
main(void)
{
    const char *build = getenv("PARLEY_BUILD");
    char bin[512], dir[64] = "/tmp/parley-crash-XXXXXX", db[128], in[128],
                   out[128], line[256], p[160];
    static int answers[MESSAGES];
    int kills = 0, completed_early = 0, dups = 0, extra = 0;
    FILE *f;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    snprintf(bin, sizeof(bin), "%s/core_harness", build ? build : "build");
    if (access(bin, X_OK) != 0) {
        printf("skip: %s not built\n", bin);
        return 77;
    }
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(db, sizeof(db), "%s/parley.db", dir);
    snprintf(in, sizeof(in), "%s/input", dir);
    snprintf(out, sizeof(out), "%s/output", dir);
    if ((f = fopen(in, "w")) == NULL)
        return 1;
    for (int i = 0; i < MESSAGES; i++)
        fprintf(f, "%d\n", i);
    fclose(f);
    printf("seed=%u\n", seed);
    srand(seed);

    {
        char *argv[] = {bin, db, in, out, NULL};

        for (int round = 0; round < KILLS; round++) {
            pid_t pid = spawn(bin, argv);
            int at = 20 + rand() % 250, status;

            T_OK(pid > 0);
            if (pid <= 0)
                break;
            status = wait_for(pid, at);
            if (status != -1) {
                /* it finished before the kill: fine, and counted */
                completed_early++;
                T_OKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "status %d", status);
                continue;
            }
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            T_OK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
            kills++;
        }
        /* the last start runs to the end */
        {
            pid_t pid = spawn(bin, argv);
            int status = pid > 0 ? wait_for(pid, 25000) : -1;

            T_OKF(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "final run status %d", status);
            if (status == -1 && pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
        }
    }

    if ((f = fopen(out, "r")) == NULL) {
        T_OK(0);
        return t_done();
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        int id, part, parts;

        if (strncmp(line, "DUP ", 4) == 0) {
            dups++;
            continue;
        }
        if (sscanf(line, "%d %d %d", &id, &part, &parts) != 3 || id < 0 ||
            id >= MESSAGES) {
            extra++;
            continue;
        }
        T_EQ_INT(part, 0);
        T_EQ_INT(parts, 1);
        answers[id]++;
    }
    fclose(f);
    {
        int missing = 0, twice = 0;

        for (int i = 0; i < MESSAGES; i++) {
            missing += answers[i] == 0;
            twice += answers[i] > 1;
        }
        printf("kills=%d completed_before_kill=%d missing=%d twice=%d"
               " core_resends_caught_by_idem_key=%d\n",
               kills, completed_early, missing, twice, dups);
        T_EQ_INT(missing, 0);
        T_EQ_INT(twice, 0);
        T_EQ_INT(extra, 0);
        /* a re-send can only come from a kill inside the send window */
        T_OK(dups <= kills);
        T_OK(kills >= 3);
    }
    unlink(db);
    snprintf(p, sizeof(p), "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db);
    unlink(p);
    unlink(in);
    unlink(out);
    rmdir(dir);
    return t_done();
}
