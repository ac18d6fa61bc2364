/* bench_core: admission cost per decision, limiter bytes per key, and
 * router + limiter + durable enqueue throughput (markdown rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/admit.h"
#include "core/core.h"

#define DECISIONS 2000000
#define USERS 100000
#define EVENTS 200000
#define BATCH 100

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char ids[USERS][16];

/* admit_take with user + chat windows and a user budget (four limits) */
static void
bench_admit(void)
{
    struct admit *a = admit_new(4 * USERS);
    struct ratelimit_stats st;
    struct admit_result res;
    int64_t t0, now = 1000000;
    long ok = 0;

    for (long i = 0; i < DECISIONS; i++) {
        struct admit_request rq;
        long u = (i * 7919) % USERS;

        if (i == 0)
            t0 = now_ns();
        if (i % 100 == 0)
            now++;
        memset(&rq, 0, sizeof(rq));
        rq.platform = "telegram";
        rq.user = ids[u];
        rq.chat = ids[u];
        rq.lim.user.n = 30;
        rq.lim.user.window_ms = 60000;
        rq.lim.chat.n = 120;
        rq.lim.chat.window_ms = 60000;
        rq.lim.user_tokens.n = 200000;
        rq.lim.user_tokens.window_ms = 86400000;
        ok += admit_take(a, &rq, 1500, now, &res);
    }
    t0 = now_ns() - t0;
    ratelimit_stats(admit_limiter(a), &st);
    printf("| admission decision (user + chat windows + user budget), %d"
           " users | %.0f ns | < 200 ns per limiter call (x3) |\n",
           USERS, (double)t0 / DECISIONS);
    printf("| limiter bytes per tracked key (%zu keys, 1-20 requests"
           " each) | %.0f B | < 100 B |\n",
           st.keys, (double)st.bytes / (double)st.keys);
    (void)ok;
    admit_free(a);
}

static int
never_ask(void *ctx, const struct core_prompt *p, core_ask_done_fn done,
          void *arg, uint64_t *handle)
{
    (void)ctx;
    (void)p;
    (void)done;
    (void)arg;
    *handle = 1;
    return 0;
}

static void
never_cancel(void *ctx, uint64_t handle)
{
    (void)ctx;
    (void)handle;
}

static int
bench_send(void *ctx, const struct action *a)
{
    (void)ctx;
    (void)a;
    return 0;
}

/* core_accept_batch: classify, dedup, insert + commit, admit, usage. */
static void
bench_enqueue(int batch, int events, int budgets)
{
    char conf[512];
    struct core_asker asker = {NULL, never_ask, never_cancel};
    struct connector_ops ops;
    struct config *cfg = NULL;
    struct config_diag d;
    struct event *evs = calloc((size_t)batch, sizeof(*evs));
    char dir[64] = "/tmp/parley-bench-XXXXXX", path[128], err[256],
         (*mids)[16] = calloc((size_t)batch, sizeof(*mids)), p[160];
    struct store *st;
    struct core *c;
    uv_loop_t loop;
    int64_t t0, tick;

    snprintf(conf, sizeof(conf),
             "[bot]\nstate_dir = /tmp\n[limits]\nuser = 30/60s\n"
             "chat = 120/60s\nuser_tokens = %s\n[llm]\nmodels = main\n"
             "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"
             "api_key = k\nname = m\n",
             budgets ? "200000/1d" : "off");
    memset(&d, 0, sizeof(d));
    if (evs == NULL || mids == NULL || mkdtemp(dir) == NULL ||
        config_parse(conf, strlen(conf), "b.conf", &cfg, &d) < 0)
        return;
    snprintf(path, sizeof(path), "%s/parley.db", dir);
    uv_loop_init(&loop);
    st = store_open(path, err, sizeof(err));
    if (st == NULL)
        return;
    store_attach_loop(st, &loop);
    c = core_new(&loop, st, cfg, &asker);
    core_set_inflight_max(c, 1); /* measure the enqueue, not the asks */
    memset(&ops, 0, sizeof(ops));
    ops.platform = "telegram";
    ops.send = bench_send;
    ops.text_max = 4096;
    core_register_connector(c, &ops);
    t0 = tick = now_ns();
    for (int i = 0; i < events; i += batch) {
        /* the loop is not run: do the once-a-second usage and stats
         * write of its tick here, so its cost is measured */
        if (now_ns() - tick >= 1000000000) {
            core_flush_stats(c);
            tick = now_ns();
        }
        for (int k = 0; k < batch; k++) {
            int u = (i + k) % 10000;

            snprintf(mids[k], sizeof(mids[k]), "%d", i + k);
            memset(&evs[k], 0, sizeof(evs[k]));
            evs[k].kind = EVENT_MESSAGE;
            evs[k].platform = "telegram";
            evs[k].chat = ids[u];
            evs[k].thread = "";
            evs[k].user = ids[u];
            evs[k].user_name = "";
            evs[k].message_id = mids[k];
            evs[k].reply_to = "";
            evs[k].flags = EVENT_PRIVATE;
            evs[k].text = "what is the capital of France?";
        }
        if (core_accept_batch(c, evs, (size_t)batch) != 0) {
            fprintf(stderr, "bench_core: accept failed\n");
            break;
        }
    }
    core_flush_stats(c); /* the last tick: counters still in memory */
    if (store_sync(st) < 0)
        fprintf(stderr, "bench_core: final commit failed\n");
    t0 = now_ns() - t0;
    printf("| router + limiter + durable enqueue, batches of %d, budgets %s"
           " (%d events, 10k users) | %.0f events/s | > 50,000 events/s |\n",
           batch, budgets ? "on" : "off", events,
           (double)events * 1e9 / (double)t0);
    core_free(c);
    store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    config_free(cfg);
    config_diag_release(&d);
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    rmdir(dir);
    free(evs);
    free(mids);
}

/* `bench_core enqueue` runs the enqueue rows only (profiling). */
int
main(int argc, char **argv)
{
    int all = argc < 2 || strcmp(argv[1], "enqueue") != 0;

    for (int i = 0; i < USERS; i++)
        snprintf(ids[i], sizeof(ids[i]), "%d", 100000000 + i);
    log_set_level(LOG_LEVEL_WARN);
    printf("| what | measured | target |\n|---|---|---|\n");
    if (all)
        bench_admit();
    bench_enqueue(BATCH, EVENTS, 0);
    bench_enqueue(BATCH, EVENTS, 1);
    bench_enqueue(1, 20000, 1);
    return 0;
}
