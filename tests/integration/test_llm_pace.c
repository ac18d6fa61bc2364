/* test_llm_pace: the LLM client paces itself under rpm/tpm (no provider
 * 429), and after a 429 the limited request goes first. */
#include "config/config.h"
#include "core/http.h"
#include "core/log.h"
#include "llm/llm.h"
#include "tests/fakes/llm_fake.h"
#include "tests/t.h"

#include <curl/curl.h>
#include <stdlib.h>

/*
 * The issue asks for rpm = 60 with 300 requests queued at once: zero 429s
 * from the provider's bucket and >= 95 % of rpm achieved.  That run takes
 * five minutes; this one keeps the ratio of requests to rate and the
 * bucket of the same shape, scaled 20x: rpm = 1200 (one request per
 * 50 ms), 300 requests, ~15 s.  A provider bucket holds one minute of
 * requests, which no test shorter than a minute can empty, so the log is
 * also checked against the stricter providers a short run can meet: a
 * per-second quantum (rpm/60 in any 1 s window) and the exact interval
 * between two sends.
 */
#define RPM 1200
#define ASKS 300
#define INTERVAL_MS (60000 / RPM)
#define MAIN "gpt-main"

static uv_loop_t loop;
static struct llm_fake *lf;
static struct http *http;
static int port;

static int64_t
now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static struct llm *
llm_make(long rpm, long tpm)
{
    char text[2048];
    struct config *c = NULL;
    struct config_diag d = {0};
    struct llm *l = NULL;
    int n;

    n = snprintf(text, sizeof(text),
                 "[llm]\nmodels = main\ntimeout = 5s\ngive_up_after = 60s\n"
                 "max_output_tokens = 64\nsystem_prompt = Be brief.\n"
                 "[retry]\nattempts = 6\nmultiplier = 100ms\nmin = 0\n"
                 "max = 1s\njitter = full\n"
                 "[model.main]\napi = openai\n"
                 "base_url = http://127.0.0.1:%d/v1\napi_key = kp-1\n"
                 "name = " MAIN "\nrpm = %ld\ntpm = %ld\n",
                 port, rpm, tpm);
    if (config_parse(text, (size_t)n, "pace.conf", &c, &d) == 0 &&
        config_resolve_secrets(c, &d) == 0)
        l = llm_new(&loop, http, c);
    for (size_t i = 0; i < d.nerrors; i++)
        fprintf(stderr, "config: %s\n", d.errors[i]);
    config_diag_release(&d);
    config_free(c);
    return l;
}

struct got {
    int done, ok;
};

static void
on_done(const struct llm_result *r, void *arg)
{
    struct got *g = arg;

    g->done = 1;
    g->ok = r->ok;
}

static void
tick(uv_timer_t *t)
{
    (void)t;
}

static int
wait_all(struct got *g, size_t n, int64_t limit_ms)
{
    uv_timer_t t;
    int64_t end = now_ms() + limit_ms;
    size_t done = 0;

    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 20, 20);
    while (now_ms() < end) {
        done = 0;
        for (size_t i = 0; i < n; i++)
            done += g[i].done;
        if (done == n)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return done == n ? 0 : -1;
}

static struct llm_call *
ask(struct llm *l, const char *text, struct got *g)
{
    struct llm_message m = {LLM_ROLE_USER, text};
    struct llm_ask a;

    memset(&a, 0, sizeof(a));
    a.messages = &m;
    a.nmessages = 1;
    memset(g, 0, sizeof(*g));
    return llm_ask(l, &a, on_done, g);
}

/* rpm: ASKS queued at once against a provider bucket of RPM. */
static void
test_rpm(void)
{
    static struct got g[ASKS];
    struct llm_fake_model fm = {RPM, 0, 0, 0};
    struct llm_fake_stats fs;
    struct llm_stats st;
    struct llm *l;
    size_t n = 0, in_second = 0, max_second = 0, j = 0;
    int64_t first = -1, last = 0, min_gap = INT64_MAX;
    double rate;
    int ok = 0;

    llm_fake_reset(lf);
    llm_fake_set_model(lf, MAIN, &fm);
    l = llm_make(RPM, 0);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    for (int i = 0; i < ASKS; i++) {
        char text[32];

        snprintf(text, sizeof(text), "ask-%d", i);
        T_OK(ask(l, text, &g[i]) != NULL);
    }
    T_OK(wait_all(g, ASKS, (int64_t)ASKS * INTERVAL_MS + 10000) == 0);
    for (int i = 0; i < ASKS; i++)
        ok += g[i].ok;
    T_EQ_INT(ok, ASKS);
    llm_fake_stats(lf, &fs);
    T_EQ_INT(fs.bucket_429, 0);
    T_EQ_INT(fs.requests, ASKS);
    for (size_t i = 0; i < llm_fake_log_size(lf); i++) {
        const struct llm_fake_entry *e = llm_fake_log_get(lf, i);

        if (first < 0)
            first = e->t_ms;
        else if (e->t_ms - last < min_gap)
            min_gap = e->t_ms - last;
        last = e->t_ms;
        n++;
        /* the most requests in any 1 s window that starts at a request */
        while (llm_fake_log_get(lf, j)->t_ms <= e->t_ms - 1000)
            j++;
        in_second = i - j + 1;
        if (in_second > max_second)
            max_second = in_second;
    }
    rate = n > 1 ? (double)(n - 1) * 60000.0 / (double)(last - first) : 0;
    printf("| rpm %d, %d asks queued at once (issue: rpm 60, 300 asks; "
           "scaled 20x) | %.1f rpm achieved (%.1f %%), %llu provider 429s, "
           "max %zu in 1 s, min gap %lld ms | >= 95 %%, 0 |\n",
           RPM, ASKS, rate, 100.0 * rate / RPM,
           (unsigned long long)fs.bucket_429, max_second, (long long)min_gap);
    T_OKF(rate >= 0.95 * RPM, "achieved %.1f rpm", rate);
    T_OKF(rate <= RPM * 1.001, "achieved %.1f rpm", rate);
    /* arrival jitter of a ms or two may squeeze one more into a window */
    T_OKF(max_second <= RPM / 60 + 1, "%zu requests in one second", max_second);
    /* spaced: unpaced, 300 asks queued at once would arrive ~0 ms apart.
     * The gap is measured at arrival, so a request the loaded loop sent a
     * few ms late sits closer to the next one (44 ms of 50 seen under
     * ASan on a busy 2-core VM): half the interval is the bound; the
     * 1 s window above is what holds the rate. */
    T_OKF(min_gap >= INTERVAL_MS / 2, "two requests %lld ms apart",
          (long long)min_gap);
    llm_stats(l, &st);
    T_EQ_INT(st.models[0].attempts, ASKS);
    T_OK(st.models[0].pacer_waits > 0);
    T_EQ_INT(st.models[0].errors[ERRCLASS_RATE_LIMITED], 0);
    llm_free(l);
    uv_run(&loop, UV_RUN_NOWAIT);
    llm_fake_set_model(lf, MAIN, &(struct llm_fake_model){0, 0, 0, 0});
}

/* tpm: each ask reserves prompt + max_tokens; the provider's token bucket
 * never refuses, and the token rate reaches the configured one. */
static void
test_tpm(void)
{
    enum { N = 60 };
    static struct got g[N];
    struct llm_fake_stats fs;
    struct llm *l;
    int64_t first = -1, last = 0, tokens = 0, per, tpm;
    double rate;

    /* the reservation of one ask, as the client and the fake count it */
    struct llm_message m = {LLM_ROLE_USER, "ask-00"};
    struct llm_request rq = {MAIN, "Be brief.", &m, 1, 64, 0};

    per = llm_estimate_request(&rq) + 64;
    tpm = per * 60 * 20; /* 20 asks per second: N asks in ~3 s */
    llm_fake_reset(lf);
    llm_fake_set_model(lf, MAIN, &(struct llm_fake_model){0, tpm, 0, 0});
    l = llm_make(0, (long)tpm);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    for (int i = 0; i < N; i++) {
        char text[16];

        snprintf(text, sizeof(text), "ask-%02d", i);
        T_OK(ask(l, text, &g[i]) != NULL);
    }
    T_OK(wait_all(g, N, 15000) == 0);
    llm_fake_stats(lf, &fs);
    T_EQ_INT(fs.bucket_429, 0);
    T_EQ_INT(fs.ok, N);
    for (size_t i = 0; i < llm_fake_log_size(lf); i++) {
        const struct llm_fake_entry *e = llm_fake_log_get(lf, i);

        if (first < 0)
            first = e->t_ms;
        else
            tokens += e->prompt_tokens + 64;
        last = e->t_ms;
    }
    rate = last > first ? (double)tokens * 60000.0 / (double)(last - first) : 0;
    printf("| tpm %lld (%lld tokens per ask), %d asks queued at once | "
           "%.0f tpm achieved (%.1f %%), %llu provider 429s | >= 95 %%, 0 |\n",
           (long long)tpm, (long long)per, N, rate, 100.0 * rate / tpm,
           (unsigned long long)fs.bucket_429);
    T_OKF(rate >= 0.95 * (double)tpm && rate <= 1.01 * (double)tpm,
          "%.0f tpm achieved", rate);
    llm_free(l);
    uv_run(&loop, UV_RUN_NOWAIT);
    llm_fake_set_model(lf, MAIN, &(struct llm_fake_model){0, 0, 0, 0});
}

/* After a 429 the limited ask goes first when capacity returns, exactly
 * after the provider's retry-after; the others wait behind it. */
static void
test_limited_first(void)
{
    enum { N = 10 };
    static struct got g[N];
    struct llm_fake_fault ok = {LLM_FAKE_OK, 0, 0, 0, 0, NULL};
    struct llm_fake_fault limit = {LLM_FAKE_429, 0, LLM_FAKE_AFTER_SECONDS,
                                   1000,         0, NULL};
    struct fake *f = llm_fake_fake(lf);
    struct llm *l;
    size_t k = 0, limited = 0;
    int64_t t429 = 0, tnext = 0;
    const char *next_body = NULL;
    struct llm_stats st;

    llm_fake_reset(lf);
    fake_log_clear(f);
    l = llm_make(600, 0); /* one request per 100 ms */
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_script(lf, MAIN, &ok);
    llm_fake_script(lf, MAIN, &ok);
    llm_fake_script(lf, MAIN, &limit); /* the third request: ask-2 */
    for (int i = 0; i < N; i++) {
        char text[16];

        snprintf(text, sizeof(text), "ask-%d", i);
        T_OK(ask(l, text, &g[i]) != NULL);
    }
    T_OK(wait_all(g, N, 10000) == 0);
    for (size_t i = 0; i < fake_log_size(f); i++) {
        const struct fake_request *r = fake_log_get(f, i);

        if (r->body == NULL || strstr(r->path, "/chat/completions") == NULL)
            continue;
        if (k == 2) {
            T_OK(strstr(r->body, "ask-2") != NULL);
            limited = i;
            t429 = r->t_ms;
        } else if (k == 3) {
            next_body = r->body;
            tnext = r->t_ms;
        }
        k++;
    }
    T_EQ_INT(k, N + 1);
    T_OK(limited > 0 && next_body != NULL);
    if (next_body != NULL) {
        T_OKF(strstr(next_body, "\"ask-2\"") != NULL,
              "after the 429 came %.60s", next_body);
        T_OKF(tnext - t429 >= 1000 && tnext - t429 <= 1000 + 100,
              "retry %lld ms after the 429", (long long)(tnext - t429));
        printf("429 with retry-after 1 s: the limited ask went first, "
               "%lld ms later\n",
               (long long)(tnext - t429));
    }
    llm_stats(l, &st);
    T_EQ_INT(st.models[0].pacer_penalties, 1);
    T_EQ_INT(st.models[0].retries[ERRCLASS_RATE_LIMITED], 1);
    llm_free(l);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int
main(void)
{
    log_init("test_llm_pace");
    log_set_level(getenv("TEST_LLM_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    lf = llm_fake_new(&loop, 0);
    http = http_new(&loop);
    if (lf == NULL || http == NULL) {
        fprintf(stderr, "cannot start the fake or the client\n");
        return 1;
    }
    port = llm_fake_port(lf);

    test_limited_first();
    test_tpm();
    test_rpm();

    http_free(http);
    llm_fake_free(lf);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    curl_global_cleanup();
    return t_done();
}
