/* bench_e2e: the real parleyd (a child process) between the Telegram fake and
 * the LLM fake: throughput, added latency, 10,000 conversations in flight,
 * a flood of over-limit users next to normal ones (all with streaming off),
 * and streamed answers: the time to the first visible text. */
#include "tests/fakes/fake.h"
#include "tests/fakes/llm_fake.h"
#include "tests/fakes/parleyd_child.h"
#include "tests/fakes/telegram_fake.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * usage: bench_e2e [PARLEYD]
 *                  [throughput|latency|inflight|flood|onset|stream]...
 *
 * The fakes run in this process on one libuv loop; parleyd runs as a child
 * with its state in a fresh /tmp directory, Telegram's and parley's own
 * send pacing off and the fake's flood limits raised out of the way, LLM
 * pacing off (rpm = tpm = 0), streaming off (except "stream", below).
 * Every message is a private
 * chat of its own with the text "zqN", so the fake logs of the LLM
 * (request bodies) and of Telegram (sendMessage bodies) say which message
 * each request belongs to.  Times are the fakes' arrival stamps
 * (fake_request.t_us, CLOCK_MONOTONIC via uv_hrtime) and this process's
 * injection stamps, the same clock.
 *
 * "Handed to parleyd" is the arrival of the getUpdates request whose reply
 * carried the update (the first one after the injection whose offset
 * window [offset, offset + 100) holds the update id): the fake decides a
 * reply when the request arrives, and answers at once when updates are
 * pending.  "LLM reply sent" is the LLM request's arrival: the fake's
 * latency is 0, so its reply leaves within the same loop turn.
 *
 * "stream" (e.): [llm] stream = true, stream_interval at its default
 * (1500 ms), Telegram's real flood limits and parley's default send
 * pacing (private chats: 1/s per chat, 30/s overall).  The LLM fake
 * streams the echo of a ~300-word message, 2 tokens per SSE event, one
 * event per HTTP chunk, 20 ms apart; a stream starts every 400 ms.  Its
 * on_chunk hook stamps each reply's first text chunk (piece 1, after
 * the role chunk); the hook does not say which reply, so the k-th stamp
 * goes to the k-th streamed request (same latency, same pacing, starts
 * 400 ms apart: they cannot overtake each other).  "First visible text"
 * is the first sendMessage of that chat at the Telegram fake.
 *
 * Numbers are printed as a Markdown table (stdout); nothing is asserted.
 * BENCH_E2E_SCALE=0.2 shrinks every scenario (a quick look).
 */

#define TG_PATH "/bot" TELEGRAM_FAKE_TOKEN "/"
#define POLL_LIMIT 100

struct env {
    uv_loop_t loop;
    struct telegram_fake *tg;
    struct llm_fake *llm;
    struct parleyd_child pd;
    char dir[64];
    const char *bin;
    size_t sent_seen, sent_n; /* sends(): the log scanned so far */
};

/* per message */
struct msg {
    int64_t chat;
    int64_t update_id;
    int64_t inject_us, handed_us, llm_us, sent_us;
    int sends; /* sendMessage requests carrying its answer */
};

static double scale = 1.0;

static int
scaled(int n)
{
    int v = (int)(n * scale);
    return v > 10 ? v : 10;
}

/* ---- set-up ------------------------------------------------------------ */

static int
write_conf(struct env *e, const char *limits, int stream)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/parley.conf", e->dir);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "[bot]\nstate_dir = %s/state\nmetrics_listen =\nlog_level = warn\n"
            "\n[telegram]\ntoken = %s\napi_base = %s\npoll_timeout = 1s\n"
            "%s"
            "\n[limits]\n%s\n"
            "\n[llm]\nmodels = main\nstream = %s\n"
            "\n[model.main]\napi = openai\n"
            "base_url = http://127.0.0.1:%d/v1\napi_key = sk-bench-0123456789\n"
            "name = gpt-bench\nrpm = 0\ntpm = 0\n",
            e->dir, TELEGRAM_FAKE_TOKEN, telegram_fake_base(e->tg),
            /* streaming: parley's own send pacing at its defaults */
            stream ? ""
                   : "chat_send_rate = off\ngroup_send_rate = off\n"
                     "global_send_rate = off\n",
            limits, stream ? "true" : "false", llm_fake_port(e->llm));
    return fclose(f) == 0 ? 0 : -1;
}

static int
env_open(struct env *e, const char *bin, const char *limits, int llm_latency_ms,
         int stream)
{
    char conf[128], log[128];

    memset(e, 0, sizeof(*e));
    e->bin = bin;
    e->pd.notify_fd = -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/parley-e2e-XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return -1;
    uv_loop_init(&e->loop);
    e->tg = telegram_fake_new(&e->loop, 0, NULL);
    e->llm = llm_fake_new(&e->loop, 0);
    if (e->tg == NULL || e->llm == NULL)
        return -1;
    /* out of the way: private chats only, so the group window is unused;
     * a streaming run keeps Telegram's real limits */
    if (!stream)
        telegram_fake_set_limits(e->tg, 1000000, 1, 0, 0, 10000000, 1000);
    telegram_fake_set_hold_max(e->tg, 2);
    llm_fake_set_latency(e->llm, llm_latency_ms);
    if (write_conf(e, limits, stream) == -1)
        return -1;
    snprintf(conf, sizeof(conf), "%s/parley.conf", e->dir);
    snprintf(log, sizeof(log), "%s/parleyd.log", e->dir);
    if (parleyd_child_init(&e->pd, bin, conf, log, e->dir) == -1 ||
        parleyd_child_start(&e->pd) == -1)
        return -1;
    if (parleyd_child_wait_ready(&e->pd, &e->loop, 10000) == -1) {
        fprintf(stderr, "bench_e2e: parleyd not ready (log: %s)\n", log);
        return -1;
    }
    /* the previous scenario's writes reach the disk now, not as the
     * kernel's writeback in the middle of this one's fsyncs */
    sync();
    /* the first getUpdates: the connector is up */
    loop_for(&e->loop, 300);
    return 0;
}

static void
env_close(struct env *e)
{
    char cmd[128];

    if (e->pd.pid > 0) {
        int st = parleyd_child_stop(&e->pd, &e->loop, SIGTERM, 10000);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr,
                    "bench_e2e: parleyd did not exit 0 on SIGTERM "
                    "(status %d, log in %s)\n",
                    st, e->dir);
    }
    parleyd_child_close(&e->pd);
    if (e->tg != NULL)
        telegram_fake_free(e->tg);
    if (e->llm != NULL)
        llm_fake_free(e->llm);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    if (getenv("BENCH_E2E_KEEP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_e2e: cannot remove %s\n", e->dir);
    } else {
        fprintf(stderr, "bench_e2e: kept %s\n", e->dir);
    }
}

static int
inject(struct env *e, struct msg *m, int k)
{
    struct telegram_fake_msg tm;
    char text[32];

    memset(&tm, 0, sizeof(tm));
    snprintf(text, sizeof(text), "zq%d", k);
    tm.chat = m->chat;
    tm.type = "private";
    tm.text = text;
    m->inject_us = mono_us();
    m->update_id = telegram_fake_message(e->tg, &tm, NULL);
    return m->update_id > 0 ? 0 : -1;
}

/* ---- reading the fakes' logs ----------------------------------------- */

/* The k of the last "zqK" in s, -1 if none. */
static int
last_zq(const char *s)
{
    const char *p, *last = NULL;

    if (s == NULL)
        return -1;
    for (p = strstr(s, "zq"); p != NULL; p = strstr(p + 2, "zq"))
        if (p[2] >= '0' && p[2] <= '9')
            last = p;
    return last ? atoi(last + 2) : -1;
}

static int64_t
json_int(const char *s, const char *key)
{
    char pat[40];
    const char *p;

    if (s == NULL)
        return -1;
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(s, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

/* Fills handed_us, llm_us, sent_us and sends of msgs[0..n). */
static void
collect(struct env *e, struct msg *msgs, int n)
{
    struct fake *tf = telegram_fake_server(e->tg);
    struct fake *lf = llm_fake_fake(e->llm);
    size_t i;

    for (i = 0; i < fake_log_size(tf); i++) {
        const struct fake_request *r = fake_log_get(tf, i);
        if (strncmp(r->path, TG_PATH "getUpdates", strlen(TG_PATH) + 10) == 0) {
            int64_t off = json_int(r->body, "offset");
            /* update ids grow with k: the first k with an id >= off */
            int lo = 0, hi = n;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (msgs[mid].update_id < off)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (int k = lo; k < n && msgs[k].update_id < off + POLL_LIMIT; k++)
                if (msgs[k].handed_us == 0 && msgs[k].inject_us <= r->t_us)
                    msgs[k].handed_us = r->t_us;
        } else if (strncmp(r->path, TG_PATH "sendMessage",
                           strlen(TG_PATH) + 11) == 0) {
            int k = last_zq(r->body);
            if (k < 0 || k >= n)
                continue;
            if (msgs[k].sends++ == 0)
                msgs[k].sent_us = r->t_us;
        }
    }
    for (i = 0; i < fake_log_size(lf); i++) {
        const struct fake_request *r = fake_log_get(lf, i);
        int k = last_zq(r->body);
        if (k >= 0 && k < n && msgs[k].llm_us == 0)
            msgs[k].llm_us = r->t_us;
    }
}

/* sendMessage requests at the fake so far; the log only grows (nothing
 * here clears it), so each call scans only the new entries */
static size_t
sends(struct env *e)
{
    struct fake *tf = telegram_fake_server(e->tg);
    size_t n = fake_log_size(tf);

    for (; e->sent_seen < n; e->sent_seen++)
        if (strncmp(fake_log_get(tf, e->sent_seen)->path, TG_PATH "sendMessage",
                    strlen(TG_PATH) + 11) == 0)
            e->sent_n++;
    return e->sent_n;
}

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p50 and p99 (and max) of to - from over msgs where both are set, in µs;
 * returns the sample count. */
static int
pct(const struct msg *msgs, int n, size_t from_off, size_t to_off, int64_t *p50,
    int64_t *p99, int64_t *max)
{
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int c = 0;

    *p50 = *p99 = *max = 0;
    if (v == NULL)
        return 0;
    for (int k = 0; k < n; k++) {
        int64_t a = *(const int64_t *)((const char *)&msgs[k] + from_off);
        int64_t b = *(const int64_t *)((const char *)&msgs[k] + to_off);
        if (a > 0 && b > 0)
            v[c++] = b - a;
    }
    if (c > 0) {
        qsort(v, (size_t)c, sizeof(v[0]), cmp64);
        *p50 = v[(c - 1) / 2];
        *p99 = v[(int)((c - 1) * 0.99)];
        *max = v[c - 1];
    }
    free(v);
    return c;
}

#define OFF(f) offsetof(struct msg, f)

static void
row_pct(const char *what, const struct msg *msgs, int n, size_t a, size_t b,
        const char *target)
{
    int64_t p50, p99, max;
    int c = pct(msgs, n, a, b, &p50, &p99, &max);

    printf("| %s (%d samples): p50 / p99 / max | %.2f / %.2f / %.2f ms | %s "
           "|\n",
           what, c, p50 / 1000.0, p99 / 1000.0, max / 1000.0, target);
}

struct sent_cond {
    struct env *e;
    size_t want;
};

static int
sent_cond(void *arg)
{
    struct sent_cond *s = arg;

    return sends(s->e) >= s->want || !parleyd_child_alive(&s->e->pd);
}

/* ---- a. throughput ----------------------------------------------------- */

static void
bench_throughput(const char *bin)
{
    struct env e;
    int n = scaled(10000);
    struct msg *msgs = calloc((size_t)n, sizeof(*msgs));
    struct sent_cond sc;
    int64_t t0, t1, c0, c1, s0, s1, first = 0, last = 0;
    int done = 0, dup = 0;

    if (msgs == NULL || env_open(&e, bin,
                                 "user = off\nchat = off\n"
                                 "user_tokens = off",
                                 0, 0) == -1) {
        printf("| throughput | failed to start | |\n");
        goto out;
    }
    c0 = proc_cpu_ms(e.pd.pid);
    s0 = self_cpu_ms();
    t0 = mono_us();
    for (int k = 0; k < n; k++) {
        msgs[k].chat = 1000000 + k;
        inject(&e, &msgs[k], k);
    }
    sc.e = &e;
    sc.want = (size_t)n;
    loop_until(&e.loop, sent_cond, &sc, 120000);
    t1 = mono_us();
    c1 = proc_cpu_ms(e.pd.pid);
    s1 = self_cpu_ms();
    collect(&e, msgs, n);
    for (int k = 0; k < n; k++) {
        if (msgs[k].sent_us == 0)
            continue;
        done++;
        dup += msgs[k].sends > 1;
        if (msgs[k].handed_us > 0 && (first == 0 || msgs[k].handed_us < first))
            first = msgs[k].handed_us;
        if (msgs[k].sent_us > last)
            last = msgs[k].sent_us;
    }
    printf("| a. throughput: %d messages queued at the fake at once, each its "
           "own private chat, LLM 0 ms, streaming off; answered | %d of %d (%d "
           "sent twice) | "
           "all |\n",
           n, done, n, dup);
    printf("| a. throughput, first update handed → last answer at the fake | "
           "%.0f msg/s (%.2f s) | ≥ 5,000 msg/s |\n",
           last > first ? done / ((last - first) / 1e6) : 0.0,
           (last - first) / 1e6);
    printf("| a. parleyd CPU / bench process CPU (all fakes) over %.1f s | "
           "%.2f s / %.2f s | |\n",
           (t1 - t0) / 1e6, (c1 - c0) / 1000.0, (s1 - s0) / 1000.0);
    printf("| a. parleyd CPU per message (load-independent) | %.0f us | "
           "< 200 us (5,000 msg/s on one core) |\n",
           done > 0 ? (c1 - c0) * 1000.0 / done : 0.0);
    printf("| a. parleyd RSS peak (VmHWM) | %.1f MB | |\n",
           proc_hwm_kb(e.pd.pid) / 1024.0);
out:
    env_close(&e);
    free(msgs);
}

/* ---- b. latency at a steady rate ------------------------------------ */

struct pace {
    struct env *e;
    struct msg *msgs;
    int n, injected, rate;
    int64_t t0_us;
};

static int
pace_cond(void *arg)
{
    struct pace *p = arg;
    int64_t due = (mono_us() - p->t0_us) * p->rate / 1000000;

    while (p->injected < p->n && p->injected < due) {
        struct msg *m = &p->msgs[p->injected];
        m->chat = 2000000 + p->injected;
        inject(p->e, m, p->injected);
        p->injected++;
    }
    return p->injected >= p->n || !parleyd_child_alive(&p->e->pd);
}

static void
bench_latency(const char *bin)
{
    struct env e;
    int rate = 1000, n = scaled(10000);
    struct msg *msgs = calloc((size_t)n, sizeof(*msgs));
    struct pace p;
    struct sent_cond sc;
    int64_t c0, c1, t0, t1;

    if (msgs == NULL || env_open(&e, bin,
                                 "user = off\nchat = off\n"
                                 "user_tokens = off",
                                 0, 0) == -1) {
        printf("| latency | failed to start | |\n");
        goto out;
    }
    p.e = &e;
    p.msgs = msgs;
    p.n = n;
    p.injected = 0;
    p.rate = rate;
    c0 = proc_cpu_ms(e.pd.pid);
    t0 = p.t0_us = mono_us();
    loop_until(&e.loop, pace_cond, &p, (int64_t)n * 1000 / rate + 10000);
    sc.e = &e;
    sc.want = (size_t)n;
    loop_until(&e.loop, sent_cond, &sc, 30000);
    t1 = mono_us();
    c1 = proc_cpu_ms(e.pd.pid);
    collect(&e, msgs, n);
    printf("| b. %d messages at %d msg/s, LLM 0 ms, streaming off: parleyd CPU "
           "| %.0f %% of "
           "one core | |\n",
           n, rate, (c1 - c0) / 10.0 / ((t1 - t0) / 1e6 * 100.0) * 100.0);
    if (getenv("BENCH_E2E_DUMP") != NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(stderr, "dump b t0 at mono %.6f wall %.6f\n", t0 / 1e6,
                ts.tv_sec + ts.tv_nsec / 1e9 - (mono_us() - t0) / 1e6);
    }
    if (getenv("BENCH_E2E_DUMP") != NULL)
        for (int i = 0; i < n; i++)
            fprintf(stderr, "dump b %d at %.4f handed→llm %.3f llm→sent %.3f\n",
                    i, (msgs[i].inject_us - t0) / 1e6,
                    (msgs[i].llm_us - msgs[i].handed_us) / 1e3,
                    (msgs[i].sent_us - msgs[i].llm_us) / 1e3);
    row_pct("b. handed to parleyd → LLM request at the fake", msgs, n,
            OFF(handed_us), OFF(llm_us), "p99 < 2 ms");
    row_pct("b. LLM reply sent → sendMessage at the fake", msgs, n, OFF(llm_us),
            OFF(sent_us), "p99 < 2 ms");
    row_pct("b. queued at the fake → answer at the fake (with the fake's "
            "poll turn-around)",
            msgs, n, OFF(inject_us), OFF(sent_us), "");
out:
    env_close(&e);
    free(msgs);
}

/* ---- c. 10,000 conversations in flight -------------------------------- */

struct inflight {
    struct env *e;
    size_t want, max_inflight;
    long max_rss, rss_at_max;
    int64_t next_sample, all_in_us, t0;
};

static int
inflight_cond(void *arg)
{
    struct inflight *s = arg;
    int64_t now = mono_us();
    size_t in = fake_inflight(llm_fake_fake(s->e->llm));

    if (in > s->max_inflight) {
        s->max_inflight = in;
        s->rss_at_max = proc_rss_kb(s->e->pd.pid);
    }
    if (s->all_in_us == 0 && llm_fake_log_size(s->e->llm) >= s->want)
        s->all_in_us = now;
    if (now >= s->next_sample) {
        long r = proc_rss_kb(s->e->pd.pid);
        if (r > s->max_rss)
            s->max_rss = r;
        s->next_sample = now + 100000;
    }
    return sends(s->e) >= s->want || !parleyd_child_alive(&s->e->pd);
}

/* after the drain: parleyd gives freed heap back within its trim check
 * (bot/daemon.c, every 5 s) */
#define SETTLE_MS 7000

static int
settle_cond(void *arg)
{
    return mono_us() >= *(int64_t *)arg;
}

static void
bench_inflight(const char *bin)
{
    struct env e;
    int n = scaled(10000), done = 0;
    struct msg *msgs = calloc((size_t)n, sizeof(*msgs));
    struct inflight s;
    long rss0, rss_drained = 0;
    int64_t c0, c1, t0, t1, settle;

    if (msgs == NULL || env_open(&e, bin,
                                 "user = off\nchat = off\n"
                                 "user_tokens = off",
                                 5000, 0) == -1) {
        printf("| in flight | failed to start | |\n");
        goto out;
    }
    memset(&s, 0, sizeof(s));
    s.e = &e;
    s.want = (size_t)n;
    rss0 = proc_rss_kb(e.pd.pid);
    c0 = proc_cpu_ms(e.pd.pid);
    t0 = s.t0 = mono_us();
    for (int k = 0; k < n; k++) {
        msgs[k].chat = 3000000 + k;
        inject(&e, &msgs[k], k);
    }
    loop_until(&e.loop, inflight_cond, &s, 120000);
    t1 = mono_us();
    c1 = proc_cpu_ms(e.pd.pid);
    settle = mono_us() + SETTLE_MS * 1000;
    loop_until(&e.loop, settle_cond, &settle, SETTLE_MS + 1000);
    if (parleyd_child_alive(&e.pd))
        rss_drained = proc_rss_kb(e.pd.pid);
    collect(&e, msgs, n);
    for (int k = 0; k < n; k++)
        done += msgs[k].sent_us > 0;
    printf("| c. %d conversations at once, LLM latency 5 s, streaming off: "
           "answered | %d of "
           "%d in %.1f s | all, ~5 s |\n",
           n, done, n, (t1 - t0) / 1e6);
    printf("| c. most LLM requests in flight at once | %zu | %d |\n",
           s.max_inflight, n);
    printf("| c. parleyd RSS: idle / with the most in flight / peak (VmHWM) | "
           "%.1f / %.1f / %.1f MB | < 80 MB |\n",
           rss0 / 1024.0, s.rss_at_max / 1024.0,
           proc_hwm_kb(e.pd.pid) / 1024.0);
    printf("| c. parleyd RSS %d s after the last answer | %.1f MB | "
           "near idle |\n",
           SETTLE_MS / 1000, rss_drained / 1024.0);
    printf("| c. parleyd CPU (utime + stime) over the run | %.2f s | |\n",
           (c1 - c0) / 1000.0);
out:
    env_close(&e);
    free(msgs);
}

/* ---- d. flood ------------------------------------------------------------ */

#define FLOODERS 1000
#define FLOOD_RATE 20000 /* msg/s, all flooders together */
#define NORMALS 200
#define NORMAL_GAP_MS 7000 /* each normal user: 2 messages 7 s apart */
#define FLOOD_ALLOW 3      /* user = 3/20s */
#define WARM_RATE 2000 /* msg/s: the flooders' allowance, before the flood */

struct flood {
    struct env *e;
    struct msg *msgs; /* the normal users' messages */
    int nn, nn_sent;
    int64_t t0_us, dur_us;
    int64_t flood_sent;
    int64_t warm_n;  /* of them, sent in the warm-up (before t0_us) */
    int64_t flood_k; /* flooder messages injected (k numbers above nn) */
    int64_t last_us;
};

static void
flood_one(struct flood *f)
{
    struct telegram_fake_msg tm;
    char text[32];
    int64_t who = f->flood_sent % FLOODERS;

    memset(&tm, 0, sizeof(tm));
    snprintf(text, sizeof(text), "flood %lld", (long long)f->flood_sent);
    tm.chat = 5000000 + who;
    tm.type = "private";
    tm.text = text;
    telegram_fake_message(f->e->tg, &tm, NULL);
    f->flood_sent++;
}

static int
flood_cond(void *arg)
{
    struct flood *f = arg;
    int64_t el = mono_us() - f->t0_us;
    int64_t due =
        f->warm_n + (el >= f->dur_us ? f->dur_us * FLOOD_RATE / 1000000
                                     : el * FLOOD_RATE / 1000000);

    while (f->flood_sent < due)
        flood_one(f);
    /* normal user u speaks at u * 3000 / NORMALS ms and 7 s later */
    while (f->nn_sent < f->nn) {
        int u = f->nn_sent % NORMALS, round = f->nn_sent / NORMALS;
        int64_t at =
            ((int64_t)u * 3000 / NORMALS + round * NORMAL_GAP_MS) * 1000;
        if (el < at)
            break;
        f->msgs[f->nn_sent].chat = 6000000 + u;
        inject(f->e, &f->msgs[f->nn_sent], f->nn_sent);
        f->nn_sent++;
    }
    return (el >= f->dur_us && f->nn_sent >= f->nn) ||
           !parleyd_child_alive(&f->e->pd);
}

/*
 * The warm-up: every flooder uses its allowance (FLOOD_ALLOW messages,
 * WARM_RATE msg/s in all) and is answered, so that the flood proper is
 * all over the limit, as the target's scenario says ("1,000 users over
 * their limits").
 */
struct warm {
    struct flood *f;
    int64_t t0_us;
    uint64_t want; /* delivered messages at the fake when all are answered */
};

static int
warm_cond(void *arg)
{
    struct warm *w = arg;
    struct telegram_fake_stats st;
    int64_t due = (mono_us() - w->t0_us) * WARM_RATE / 1000000;

    if (due > FLOODERS * FLOOD_ALLOW)
        due = FLOODERS * FLOOD_ALLOW;
    while (w->f->flood_sent < due)
        flood_one(w->f);
    telegram_fake_stats(w->f->e->tg, &st);
    return (w->f->flood_sent >= FLOODERS * FLOOD_ALLOW &&
            st.delivered >= w->want) ||
           !parleyd_child_alive(&w->f->e->pd);
}

struct drain {
    struct env *e;
    struct msg *msgs;
    int n;
    int64_t last_id;
};

static int
drain_cond(void *arg)
{
    struct drain *d = arg;
    struct telegram_fake_stats st;

    telegram_fake_stats(d->e->tg, &st);
    return (st.offset > d->last_id && st.pending == 0) ||
           !parleyd_child_alive(&d->e->pd);
}

/* warm: the flooders have used their allowance before the flood starts
 * (over their limits throughout); otherwise they start within it */
static void
bench_flood(const char *bin, int warm)
{
    struct env e;
    int nn = NORMALS * 2;
    struct msg *msgs = calloc((size_t)nn, sizeof(*msgs));
    struct flood f;
    struct drain d;
    struct telegram_fake_stats st;
    long rss0, rss1, rss_mid;
    int64_t c0, c1, t_drained, t_end, t_warm;
    const char *tag = warm ? "d" : "d'";
    char what[256];
    uint64_t notices = 0, answers_flood = 0;
    int pmin = 0, pmax = 0;
    int *per = calloc(FLOODERS, sizeof(int));

    if (msgs == NULL || per == NULL ||
        env_open(&e, bin, "user = 3/20s\nchat = off\nnotice = once", 0, 0) ==
            -1) {
        printf("| flood | failed to start | |\n");
        goto out;
    }
    memset(&f, 0, sizeof(f));
    f.e = &e;
    f.msgs = msgs;
    f.nn = nn;
    f.dur_us = (int64_t)(10.0 * scale * 1000000);
    if (f.dur_us < NORMAL_GAP_MS * 1000 + 3000000)
        f.dur_us = NORMAL_GAP_MS * 1000 + 3000000; /* both rounds */
    rss0 = proc_rss_kb(e.pd.pid);
    c0 = proc_cpu_ms(e.pd.pid);
    t_warm = mono_us();
    if (warm) {
        struct warm w = {.f = &f, .t0_us = t_warm};
        telegram_fake_stats(e.tg, &st);
        w.want = st.delivered + FLOODERS * FLOOD_ALLOW;
        loop_until(&e.loop, warm_cond, &w, 30000);
        f.warm_n = f.flood_sent;
        telegram_fake_stats(e.tg, &st);
        printf("| d. warm-up: each flooder's %d allowed messages, answered "
               "| %llu of %d in %.2f s | |\n",
               FLOOD_ALLOW,
               (unsigned long long)(st.delivered -
                                    (w.want - FLOODERS * FLOOD_ALLOW)),
               FLOODERS * FLOOD_ALLOW, (mono_us() - t_warm) / 1e6);
    }
    f.t0_us = mono_us();
    loop_until(&e.loop, flood_cond, &f, f.dur_us / 1000 + 10000);
    t_end = mono_us();
    rss_mid = proc_rss_kb(e.pd.pid);
    telegram_fake_stats(e.tg, &st);
    d.e = &e;
    d.msgs = msgs;
    d.n = nn;
    d.last_id = st.last_update_id;
    loop_until(&e.loop, drain_cond, &d, 120000);
    t_drained = mono_us();
    loop_for(&e.loop, 3000); /* the last answers and notices */
    c1 = proc_cpu_ms(e.pd.pid);
    rss1 = proc_rss_kb(e.pd.pid);
    collect(&e, msgs, nn);
    {
        struct fake *tf = telegram_fake_server(e.tg);
        for (size_t i = 0; i < fake_log_size(tf); i++) {
            const struct fake_request *r = fake_log_get(tf, i);
            int64_t chat;
            if (strncmp(r->path, TG_PATH "sendMessage", strlen(TG_PATH) + 11) !=
                0)
                continue;
            chat = json_int(r->body, "chat_id");
            if (chat < 5000000 || chat >= 5000000 + FLOODERS)
                continue;
            if (strstr(r->body, "try again in") != NULL) {
                notices++;
                per[chat - 5000000]++;
            } else {
                answers_flood++;
            }
        }
        for (int u = 0; u < FLOODERS; u++) {
            if (u == 0 || per[u] < pmin)
                pmin = per[u];
            if (per[u] > pmax)
                pmax = per[u];
        }
    }
    printf("| %s. flood: %d users × %d msg/s (%d msg/s) for %.1f s, user = "
           "3/20s, notice = once, streaming off; the flooders %s; %d normal "
           "users, 2 messages each 7 s apart | %lld flood messages | |\n",
           tag, FLOODERS, FLOOD_RATE / FLOODERS, FLOOD_RATE, f.dur_us / 1e6,
           warm ? "over their limits from the start (allowance used in the "
                  "warm-up)"
                : "within their limits at the start (each gets 3 answers "
                  "first)",
           NORMALS, (long long)(f.flood_sent - f.warm_n));
    printf("| %s. flooders' updates all confirmed (taken in durably) after "
           "the flood ended | %.2f s | |\n",
           tag, (t_drained - t_end) / 1e6);
    /* added latency as b. defines it: received (handed) → LLM request */
    snprintf(what, sizeof(what),
             "%s. normal users: handed to parleyd → LLM request (added "
             "latency)",
             tag);
    row_pct(what, msgs, nn, OFF(handed_us), OFF(llm_us),
            warm ? "p99 < 50 ms" : "");
    {
        /* the flood's first 100 ms: no flooder refused yet, so nothing
         * tells them from the normal users who speak then */
        struct msg *late = calloc((size_t)nn, sizeof(*late));
        int nl = 0;

        for (int i = 0; late != NULL && i < nn; i++)
            if (msgs[i].inject_us - f.t0_us >= 100000)
                late[nl++] = msgs[i];
        snprintf(what, sizeof(what),
                 "%s. the same, normal users who spoke after the flood's "
                 "first 100 ms",
                 tag);
        if (late != NULL)
            row_pct(what, late, nl, OFF(handed_us), OFF(llm_us), "");
        free(late);
    }
    if (getenv("BENCH_E2E_DUMP") != NULL)
        for (int i = 0; i < nn; i++)
            fprintf(stderr,
                    "dump %s %d at %.3f queued→handed %.2f handed→llm "
                    "%.2f\n",
                    tag, i, (msgs[i].inject_us - f.t0_us) / 1e6,
                    (msgs[i].handed_us - msgs[i].inject_us) / 1e3,
                    (msgs[i].llm_us - msgs[i].handed_us) / 1e3);
    snprintf(what, sizeof(what),
             "%s. normal users: queued at the fake → LLM request (with the "
             "wait in the platform's in-order update queue behind the "
             "flood)",
             tag);
    row_pct(what, msgs, nn, OFF(inject_us), OFF(llm_us), "");
    snprintf(what, sizeof(what),
             "%s. normal users: LLM reply sent → sendMessage at the fake", tag);
    row_pct(what, msgs, nn, OFF(llm_us), OFF(sent_us), "");
    {
        /* admission happens at intake: a flood taken in over S seconds
         * (from the warm-up on) spans up to ceil(S / 20 s) windows of
         * user = 3/20s */
        int64_t span = t_drained - t_warm;
        int win = (int)((span + 19999999) / 20000000);
        printf("| %s. the flood taken in over, with its warm-up (windows of "
               "20 s spanned) | %.1f s (%d) | |\n",
               tag, span / 1e6, win);
        printf("| %s. notices to flooders: total; per flooder min / max (one "
               "per flooder per window) | %llu; %d / %d | %d; ≤ %d each |\n",
               tag, (unsigned long long)notices, pmin, pmax, FLOODERS * win,
               win);
        printf("| %s. answers to flooders, warm-up included (3 per window "
               "each at most, sliding) | %llu | ≤ %d |\n",
               tag, (unsigned long long)answers_flood,
               FLOODERS * FLOOD_ALLOW * (win + 1));
    }
    printf("| %s. parleyd RSS before / at the flood's end / after the drain "
           "/ peak | %.1f / %.1f / %.1f / %.1f MB | bounded |\n",
           tag, rss0 / 1024.0, rss_mid / 1024.0, rss1 / 1024.0,
           proc_hwm_kb(e.pd.pid) / 1024.0);
    printf("| %s. parleyd CPU over the flood and drain | %.2f s | |\n", tag,
           (c1 - c0) / 1000.0);
out:
    env_close(&e);
    free(msgs);
    free(per);
}

/* ---- e. streaming: time to first visible text ------------------------ */

#define STREAM_BASE_CHAT 7000000
#define STREAM_WORDS 300   /* the answer: "echo: " + the ~300-word message */
#define STREAM_TOKENS 2    /* tokens per SSE event */
#define STREAM_DELAY_MS 20 /* between two SSE events (HTTP chunks) */
#define STREAM_GAP_MS 400  /* between two streams' starts: ~8 at a time */

/* The stamps of every streamed reply's first text chunk, in the order
 * the replies started (the k-th belongs to the k-th streamed request). */
struct chunk_times {
    int64_t *t;
    int n, cap;
};

/* llm_fake_stream.on_chunk: with one event per chunk, OpenAI's piece 0
 * is the role chunk (content "") and piece 1 the first text. */
static void
stream_on_chunk(size_t index, void *arg)
{
    struct chunk_times *c = arg;

    if (index == 1 && c->n < c->cap)
        c->t[c->n++] = mono_us();
}

/* Message k's text: "zqK" and STREAM_WORDS - 1 plain words, no Markdown. */
static char *
stream_text(int k)
{
    static const char *w[] = {"alpha", "bravo",    "charlie", "delta",
                              "echo",  "foxtrot",  "golf",    "hotel",
                              "india", "juliet",   "kilo",    "lima",
                              "mike",  "november", "oscar"};
    size_t cap = 32 + STREAM_WORDS * 10, len;
    char *s = malloc(cap);

    if (s == NULL)
        return NULL;
    len = (size_t)snprintf(s, cap, "zq%d", k);
    for (int i = 1; i < STREAM_WORDS; i++)
        len += (size_t)snprintf(
            s + len, cap - len, "%s%s", i % 12 == 0 ? "\n" : " ",
            w[(i * 7 + k) % (int)(sizeof(w) / sizeof(w[0]))]);
    return s;
}

/* The chat's messages that are not deleted, joined with "\n" (one
 * message for an answer under 4096 characters). */
static char *
stream_shown(struct env *e, int64_t chat, int *posted)
{
    const struct telegram_fake_sent *v;
    size_t n = telegram_fake_sent(e->tg, chat, &v), len = 0;
    char *s;

    *posted = (int)n;
    for (size_t i = 0; i < n; i++)
        len += v[i].deleted ? 0 : strlen(v[i].text) + 1;
    if ((s = malloc(len + 1)) == NULL)
        return NULL;
    len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (v[i].deleted)
            continue;
        if (len > 0)
            s[len++] = '\n';
        l = strlen(v[i].text);
        memcpy(s + len, v[i].text, l);
        len += l;
    }
    s[len] = '\0';
    return s;
}

struct stream_run {
    struct env *e;
    struct msg *msgs;
    char **want; /* the full answer of each */
    int n, injected;
    int64_t t0_us;
};

/* Injects on schedule; done when every chat shows its full answer with
 * the controls on (the final edit). */
static int
stream_cond(void *arg)
{
    struct stream_run *r = arg;
    int64_t el = mono_us() - r->t0_us;

    while (r->injected < r->n &&
           (int64_t)r->injected * STREAM_GAP_MS * 1000 <= el) {
        struct msg *m = &r->msgs[r->injected];
        struct telegram_fake_msg tm;
        char *text = stream_text(r->injected);
        memset(&tm, 0, sizeof(tm));
        m->chat = STREAM_BASE_CHAT + r->injected;
        tm.chat = m->chat;
        tm.type = "private";
        tm.text = text;
        m->inject_us = mono_us();
        m->update_id = telegram_fake_message(r->e->tg, &tm, NULL);
        free(text);
        r->injected++;
    }
    if (!parleyd_child_alive(&r->e->pd))
        return 1;
    if (r->injected < r->n)
        return 0;
    for (int k = 0; k < r->n; k++) {
        const struct telegram_fake_sent *v;
        size_t c = telegram_fake_sent(r->e->tg, r->msgs[k].chat, &v);
        if (c == 0 || !v[c - 1].keyboard || v[c - 1].deleted ||
            strcmp(v[c - 1].text, r->want[k]) != 0)
            return 0;
    }
    return 1;
}

static void
bench_stream(const char *bin)
{
    struct env e;
    int n = scaled(60), mismatch = 0, reposts = 0, answered = 0;
    struct msg *msgs = calloc((size_t)n, sizeof(*msgs));
    char **want = calloc((size_t)n, sizeof(*want));
    int64_t *first_chunk = calloc((size_t)n, sizeof(int64_t));
    struct chunk_times ct = {NULL, 0, 0};
    struct llm_fake_stream st;
    struct stream_run r;
    struct telegram_fake_stats ts;
    int64_t edits = 0, emax = 0, t0, t1;
    int streamed = 0, done;

    ct.cap = n;
    ct.t = calloc((size_t)n, sizeof(int64_t));
    if (msgs == NULL || want == NULL || first_chunk == NULL || ct.t == NULL ||
        env_open(&e, bin, "user = off\nchat = off\nuser_tokens = off", 0, 1) ==
            -1) {
        printf("| e. stream | failed to start | |\n");
        goto out;
    }
    for (int k = 0; k < n; k++) {
        char *t = stream_text(k);
        if (t == NULL || (want[k] = malloc(strlen(t) + 7)) == NULL) {
            free(t);
            printf("| e. stream | out of memory | |\n");
            goto out;
        }
        snprintf(want[k], strlen(t) + 7, "echo: %s", t);
        free(t);
    }
    memset(&st, 0, sizeof(st));
    st.tokens_per_event = STREAM_TOKENS;
    st.events_per_chunk = 1;
    st.chunk_delay_ms = STREAM_DELAY_MS;
    st.on_chunk = stream_on_chunk;
    st.arg = &ct;
    llm_fake_set_stream(e.llm, &st);
    r.e = &e;
    r.msgs = msgs;
    r.want = want;
    r.n = n;
    r.injected = 0;
    t0 = r.t0_us = mono_us();
    done = loop_until(&e.loop, stream_cond, &r,
                      (int64_t)n * STREAM_GAP_MS + 60000);
    t1 = mono_us();
    loop_for(&e.loop, 500); /* no stray edits after the last */
    collect(&e, msgs, n);
    /* the j-th streamed request's first text chunk is ct.t[j] */
    {
        struct fake *lf = llm_fake_fake(e.llm);
        for (size_t i = 0; i < fake_log_size(lf); i++) {
            const struct fake_request *q = fake_log_get(lf, i);
            int k = last_zq(q->body);
            if (q->body == NULL || strstr(q->body, "\"stream\":true") == NULL)
                continue;
            if (k >= 0 && k < n && streamed < ct.n && first_chunk[k] == 0)
                first_chunk[k] = ct.t[streamed];
            streamed++;
        }
    }
    for (int k = 0; k < n; k++) {
        int posted;
        char *shown = stream_shown(&e, msgs[k].chat, &posted);
        msgs[k].llm_us = first_chunk[k]; /* reused: first text chunk */
        answered += msgs[k].sent_us > 0;
        reposts += posted > 1;
        if (shown == NULL || strcmp(shown, want[k]) != 0)
            mismatch++;
        free(shown);
        for (size_t i = 0;; i++) {
            const struct telegram_fake_sent *v;
            size_t c = telegram_fake_sent(e.tg, msgs[k].chat, &v);
            int64_t m = 0;
            if (i >= c)
                break;
            m = v[i].edits;
            edits += m;
            if (m > emax)
                emax = m;
        }
    }
    telegram_fake_stats(e.tg, &ts);
    printf("| e. stream: %d answers of ~%d tokens streamed (%d per event, "
           "%d ms apart; one stream starts every %d ms), stream_interval "
           "1500 ms, Telegram's real flood limits and parley's default "
           "pacing; answered | %d of %d, %s in %.1f s; %d streamed requests, "
           "%d first text chunks | all |\n",
           n, STREAM_WORDS, STREAM_TOKENS, STREAM_DELAY_MS, STREAM_GAP_MS,
           answered, n, done ? "all final" : "NOT all final", (t1 - t0) / 1e6,
           streamed, ct.n);
    row_pct("e. first text chunk written by the LLM fake → first "
            "sendMessage at the fake (time to first visible text)",
            msgs, n, OFF(llm_us), OFF(sent_us), "p50 < 50 ms");
    row_pct("e. queued at the fake → first sendMessage (with the poll "
            "turn-around and the fake's 20 ms to the first text)",
            msgs, n, OFF(inject_us), OFF(sent_us), "");
    printf("| e. edits per answer (editMessageText accepted): mean / max; "
           "\"not modified\" / 429 / 400 | %.1f / %lld; %llu / %llu / %llu "
           "| |\n",
           n > 0 ? (double)edits / n : 0.0, (long long)emax,
           (unsigned long long)ts.not_modified, (unsigned long long)ts.err429,
           (unsigned long long)ts.err400);
    printf("| e. final text ≠ the full LLM answer / answers posted as more "
           "than one message | %d / %d | 0 / 0 |\n",
           mismatch, reposts);
out:
    env_close(&e);
    if (want != NULL)
        for (int k = 0; k < n; k++)
            free(want[k]);
    free(want);
    free(first_chunk);
    free(ct.t);
    free(msgs);
}

int
main(int argc, char **argv)
{
    const char *bin = argc > 1 ? argv[1] : "build/parleyd";
    const char *sc = getenv("BENCH_E2E_SCALE");
    int all = argc <= 2;

    if (sc != NULL && atof(sc) > 0)
        scale = atof(sc);
    signal(SIGPIPE, SIG_IGN);
    printf("| what | measured | target |\n|---|---|---|\n");
    fflush(stdout);
    for (int i = 2; i < argc || all; i++) {
        const char *w = all ? NULL : argv[i];
        if (all || strcmp(w, "throughput") == 0)
            bench_throughput(bin);
        fflush(stdout);
        if (all || strcmp(w, "latency") == 0)
            bench_latency(bin);
        fflush(stdout);
        if (all || strcmp(w, "inflight") == 0)
            bench_inflight(bin);
        fflush(stdout);
        if (all || strcmp(w, "flood") == 0)
            bench_flood(bin, 1);
        fflush(stdout);
        if (all || strcmp(w, "flood") == 0 || strcmp(w, "onset") == 0)
            bench_flood(bin, 0);
        fflush(stdout);
        if (all || strcmp(w, "stream") == 0)
            bench_stream(bin);
        fflush(stdout);
        if (all)
            break;
    }
    return 0;
}
