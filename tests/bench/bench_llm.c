/* bench_llm: 10,000 LLM asks in flight against a 5 s-latency fake: the
 * client's RSS and CPU. */
#include "config/config.h"
#include "core/http.h"
#include "core/log.h"
#include "llm/llm.h"

#include <curl/curl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The fake (build/fake_llm) runs in a child process so the numbers are the
 * client's alone: one loop thread, core/http (libcurl multi), llm.c with
 * pacing off (rpm = tpm = 0), every ask a short conversation of 4
 * messages.  All asks are started at once; each reply comes 5 s later.
 */
#define ASKS_DEFAULT 10000
static int asks_n = ASKS_DEFAULT; /* BENCH_LLM_ASKS overrides, to see scaling */
#define LATENCY_MS 5000

static uv_loop_t loop;
static uv_timer_t ticker, batcher;
static int answered, failed;

static int64_t
now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static long
status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = atol(line + n + 1);
    fclose(f);
    return kb;
}

static double
cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* build/tests/bench/bench_llm -> build/fake_llm */
static int
fake_path(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *p;

    if (getenv("PARLEY_BUILD") != NULL) {
        if ((size_t)snprintf(buf, len, "%.*s/fake_llm", (int)(len - 16),
                             getenv("PARLEY_BUILD")) >= len)
            return -1;
        return access(buf, X_OK);
    }
    if (n <= 0)
        return -1;
    self[n] = '\0';
    p = strstr(self, "/tests/bench/");
    if (p == NULL)
        return -1;
    *p = '\0';
    if ((size_t)snprintf(buf, len, "%.*s/fake_llm", (int)(len - 16), self) >=
        len)
        return -1;
    return access(buf, X_OK);
}

static pid_t
fake_start(int *port)
{
    char path[PATH_MAX], lat[32], line[64];
    int fds[2];
    pid_t pid;
    FILE *f;

    if (fake_path(path, sizeof(path)) < 0 || pipe(fds) < 0)
        return -1;
    snprintf(lat, sizeof(lat), "%d", LATENCY_MS);
    pid = fork();
    if (pid == 0) {
        /* dies with the bench, also when the bench crashes */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(path, path, "-d", lat, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
        sscanf(line, "port=%d", port) != 1) {
        if (f != NULL)
            fclose(f);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    return pid;
}

static void
on_done(const struct llm_result *r, void *arg)
{
    (void)arg;
    if (r->ok)
        answered++;
    else
        failed++;
}

/*
 * Sampled on every tick: the moment with the most requests on the wire
 * (before the first reply, or as replies start while asks are still being
 * started) gives the per-transfer numbers.  mallinfo2's heap counts bytes
 * handed out, touched or not; RSS counts touched pages only.
 */
static long mid_rss_kb;
static size_t mid_heap, mid_inflight_http, mid_arena;
static struct http *bench_http;

static void
sample(void)
{
    struct mallinfo2 mi;
    size_t inflight = http_in_flight(bench_http);

    if (inflight <= mid_inflight_http)
        return;
    mi = mallinfo2();
    mid_rss_kb = status_kb("VmRSS");
    mid_heap = mi.uordblks + mi.hblkhd;
    mid_arena = mi.arena + mi.hblkhd;
    mid_inflight_http = inflight;
}

/*
 * Asks start in batches of BATCH every BATCH_MS (all 10,000 within 1 s):
 * a burst of 10,000 connects at once overflows the fake's listen backlog
 * (somaxconn 4096) and the kernel's SYN retries (1 s, 3 s, 7 s) would be
 * measured instead of the client.
 */
#define BATCH 500
#define BATCH_MS 50
static struct llm *bench_llm;
static const struct llm_ask *bench_ask;
static int started;
static int64_t t_started;

static void
start_batch(uv_timer_t *t)
{
    for (int i = 0; i < BATCH && started < asks_n; i++, started++)
        if (llm_ask(bench_llm, bench_ask, on_done, NULL) == NULL)
            failed++;
    if (started < asks_n) {
        if (t == NULL)
            uv_timer_start(&batcher, start_batch, BATCH_MS, BATCH_MS);
        return;
    }
    uv_timer_stop(&batcher);
    t_started = now_ms();
}

static void
tick(uv_timer_t *t)
{
    sample();
    if (answered + failed == asks_n)
        uv_stop(t->loop);
}

int
main(void)
{
    static const struct llm_message conv[] = {
        {LLM_ROLE_USER, "What is a circuit breaker in a client library?"},
        {LLM_ROLE_ASSISTANT, "A switch that stops calls to a failing "
                             "service for a while and probes it later."},
        {LLM_ROLE_USER, "And why probe only one request at a time?"},
        {LLM_ROLE_ASSISTANT, "So a dead service gets one request per "
                             "cooldown, not a flood."},
    };
    struct rlimit rl;
    struct config *c = NULL;
    struct config_diag d = {0};
    struct http *http;
    struct llm *l;
    struct llm_ask a;
    struct llm_stats st;
    char text[1024];
    long rss0, hwm;
    double cpu0, cpu1;
    int64_t t0, t_end;
    int port, n;
    pid_t pid;

    if (getenv("BENCH_LLM_ASKS") != NULL && atoi(getenv("BENCH_LLM_ASKS")) > 0)
        asks_n = atoi(getenv("BENCH_LLM_ASKS"));
    log_init("bench_llm");
    log_set_level(LOG_LEVEL_ERROR);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    pid = fake_start(&port);
    if (pid < 0) {
        fprintf(stderr, "bench_llm: cannot start fake_llm\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    http = http_new(&loop);
    bench_http = http;
    n = snprintf(text, sizeof(text),
                 "[llm]\nmodels = main\ntimeout = 60s\ngive_up_after = 2m\n"
                 "max_output_tokens = 256\n"
                 "[model.main]\napi = openai\n"
                 "base_url = http://127.0.0.1:%d/v1\napi_key = kbench\n"
                 "name = bench-model\nrpm = 0\ntpm = 0\n",
                 port);
    if (http == NULL || config_parse(text, (size_t)n, "bench.conf", &c, &d) ||
        config_resolve_secrets(c, &d) ||
        (l = llm_new(&loop, http, c)) == NULL) {
        fprintf(stderr, "bench_llm: setup failed\n");
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return 1;
    }
    config_free(c);
    config_diag_release(&d);

    memset(&a, 0, sizeof(a));
    a.messages = conv;
    a.nmessages = sizeof(conv) / sizeof(conv[0]);
    rss0 = status_kb("VmRSS");
    cpu0 = cpu_s();
    t0 = now_ms();
    bench_llm = l;
    bench_ask = &a;
    uv_timer_init(&loop, &batcher);
    start_batch(NULL);
    uv_timer_init(&loop, &ticker);
    uv_timer_start(&ticker, tick, 50, 50);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_close((uv_handle_t *)&batcher, NULL);
    t_end = now_ms();
    cpu1 = cpu_s();
    hwm = status_kb("VmHWM");
    llm_stats(l, &st);

    printf("| what | measured | target |\n|---|---|---|\n");
    printf("| %d asks in flight, fake latency %d ms: answered | %d of %d "
           "(%d failed) | all |\n",
           asks_n, LATENCY_MS, answered, asks_n, failed);
    printf("| wall time, first ask to last answer | %.2f s | ~%.1f s |\n",
           (double)(t_end - t0) / 1000.0, LATENCY_MS / 1000.0);
    printf("| client peak RSS (VmHWM) | %.1f MB | < 80 MB |\n", hwm / 1024.0);
    printf("| client RSS growth over idle (%.1f MB before) | %.1f MB | |\n",
           rss0 / 1024.0, (hwm - rss0) / 1024.0);
    printf("| most requests on the wire (%zu): RSS, malloc'd heap, heap "
           "obtained from the kernel | %.1f MB, %.1f MB, %.1f MB | |\n",
           mid_inflight_http, mid_rss_kb / 1024.0, mid_heap / 1048576.0,
           mid_arena / 1048576.0);
    if (mid_inflight_http > 0)
        printf("| per request on the wire: RSS over idle, heap | %.1f KB, "
               "%.1f KB | |\n",
               (double)(mid_rss_kb - rss0) / (double)mid_inflight_http,
               (double)mid_heap / 1024.0 / (double)mid_inflight_http);
    printf("| client CPU, all %d asks (user + sys) | %.2f s | |\n", asks_n,
           cpu1 - cpu0);
    printf(
        "| asks started in batches of %d every %d ms, all by | %lld ms | |\n",
        BATCH, BATCH_MS, (long long)(t_started - t0));
    printf("| client CPU per ask | %.0f us | |\n",
           (cpu1 - cpu0) * 1e6 / asks_n);
    printf("| attempts sent / answered by the model | %llu / %llu | |\n",
           (unsigned long long)st.models[0].attempts,
           (unsigned long long)st.models[0].answered);

    llm_free(l);
    http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    curl_global_cleanup();
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return answered == asks_n ? 0 : 1;
}
