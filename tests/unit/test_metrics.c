/* test_metrics: the registry and its Prometheus text, byte for byte. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "tests/t.h"

static char page[1 << 16];

static const char *
render(const struct metrics *m)
{
    size_t n = metrics_render(m, page, sizeof(page));

    T_OKF(n < sizeof(page), "page of %zu bytes", n);
    return page;
}

/* The lines of one family: from its "# HELP" to the next family's. */
static const char *
block(const struct metrics *m, enum metric_id id)
{
    static char out[8192];
    char want[128];
    const char *p, *e;

    render(m);
    snprintf(want, sizeof(want), "# HELP %s ", metrics_family_name(id));
    p = strstr(page, want);
    if (p == NULL)
        return "(missing)";
    e = strstr(p + 1, "# HELP ");
    if (e == NULL)
        e = p + strlen(p);
    snprintf(out, sizeof(out), "%.*s", (int)(e - p), p);
    return out;
}

static void
test_counter(void)
{
    struct metrics *m = metrics_new();
    struct metric *tg = metrics_get(m, METRIC_MESSAGES_RECEIVED, "telegram");

    metric_inc(tg);
    metric_inc(tg);
    metrics_inc(m, METRIC_MESSAGES_RECEIVED, "discord");
    metric_add(tg, 0.5);
    metric_add(tg, -3); /* a counter never goes down */
    metric_add(tg, NAN);
    metric_set(tg, 100); /* not a gauge: ignored */
    metric_observe(tg, 1);
    T_OK(metrics_get(m, METRIC_MESSAGES_RECEIVED, "telegram") == tg);
    T_EQ_STR(block(m, METRIC_MESSAGES_RECEIVED),
             "# HELP parley_messages_received_total Inbound messages accepted "
             "from a platform.\n"
             "# TYPE parley_messages_received_total counter\n"
             "parley_messages_received_total{platform=\"telegram\"} 2.5\n"
             "parley_messages_received_total{platform=\"discord\"} 1\n");
    metrics_add(m, METRIC_LLM_TOKENS, 1200, "main", "prompt");
    metrics_add(m, METRIC_LLM_TOKENS, 300, "main", "completion");
    metrics_add(m, METRIC_LLM_TOKENS, 800, "main", "prompt");
    T_EQ_STR(block(m, METRIC_LLM_TOKENS),
             "# HELP parley_llm_tokens_total Tokens used as reported by the "
             "provider, by kind (prompt or completion).\n"
             "# TYPE parley_llm_tokens_total counter\n"
             "parley_llm_tokens_total{model=\"main\",kind=\"prompt\"} 2000\n"
             "parley_llm_tokens_total{model=\"main\",kind=\"completion\"} "
             "300\n");
    T_EQ_INT(metric_value(tg) * 10, 25);
    metrics_free(m);
}

static void
test_escaping(void)
{
    struct metrics *m = metrics_new();

    metrics_inc(m, METRIC_LLM_FALLBACKS, "a\"b\\c\nd", "x y");
    T_EQ_STR(block(m, METRIC_LLM_FALLBACKS),
             "# HELP parley_llm_fallbacks_total Requests moved from one model "
             "to the next.\n"
             "# TYPE parley_llm_fallbacks_total counter\n"
             "parley_llm_fallbacks_total{from=\"a\\\"b\\\\c\\nd\",to=\"x y\"} "
             "1\n");
    metrics_free(m);
}

static void
test_numbers(void)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-3, "-3"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {123456789, "123456789"},
        {1e20, "1e+20"},
        {1e-7, "1e-07"},
        {2.5e-3, "0.0025"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct metrics *m = metrics_new();
        char want[256];

        /* a gauge takes NaN through set (add ignores it) */
        metrics_set(m, METRIC_QUEUE_DEPTH, cases[i].v, "queued");
        snprintf(want, sizeof(want),
                 "# HELP parley_queue_depth Jobs in the durable queue, by "
                 "state.\n# TYPE parley_queue_depth gauge\n"
                 "parley_queue_depth{state=\"queued\"} %s\n",
                 cases[i].want);
        T_EQ_STR(block(m, METRIC_QUEUE_DEPTH), want);
        metrics_free(m);
    }
}

static void
test_gauge(void)
{
    struct metrics *m = metrics_new();
    struct metric *q = metrics_get(m, METRIC_QUEUE_DEPTH, "asking");

    metric_inc(q);
    metric_inc(q);
    metric_add(q, -1); /* gauges go both ways */
    metric_observe(q, 5);
    T_EQ_INT(metric_value(q), 1);
    metric_set(q, 7);
    T_EQ_INT(metric_value(q), 7);
    metrics_set(m, METRIC_BUILD_INFO, 1, "1.2.3");
    T_EQ_STR(block(m, METRIC_BUILD_INFO),
             "# HELP parley_build_info Build information; the value is always "
             "1.\n# TYPE parley_build_info gauge\n"
             "parley_build_info{version=\"1.2.3\"} 1\n");
    /* families without labels exist from the start */
    T_EQ_STR(block(m, METRIC_UPTIME),
             "# HELP parley_uptime_seconds Seconds since the process "
             "started.\n# TYPE parley_uptime_seconds gauge\n"
             "parley_uptime_seconds 0\n");
    metrics_set(m, METRIC_UPTIME, 12.25);
    T_CONTAINS(render(m), "\nparley_uptime_seconds 12.25\n");
    metrics_free(m);
}

static void
test_histogram(void)
{
    static const double obs[] = {0.05, 0.1, 0.3, 4, 400, NAN};
    struct metrics *m = metrics_new();
    struct metric *h = metrics_get(m, METRIC_ANSWER_LATENCY, "slack");
    size_t i;

    for (i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        metric_observe(h, obs[i]); /* NaN is ignored */
    metric_inc(h);                 /* not a counter: ignored */
    metric_set(h, 3);              /* not a gauge: ignored */
    T_EQ_INT(metric_value(h), 5);
    T_EQ_STR(block(m, METRIC_ANSWER_LATENCY),
             "# HELP parley_answer_latency_seconds Time from an inbound "
             "message to its answer being sent.\n"
             "# TYPE parley_answer_latency_seconds histogram\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"0.1\"} 2\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"0.25\"} 2\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"0.5\"} 3\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"1\"} 3\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"2.5\"} 3\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"5\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"10\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"20\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"30\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"60\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"120\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"300\"} 4\n"
             "parley_answer_latency_seconds_bucket{platform=\"slack\",le="
             "\"+Inf\"} 5\n"
             "parley_answer_latency_seconds_sum{platform=\"slack\"} 404.45\n"
             "parley_answer_latency_seconds_count{platform=\"slack\"} 5\n");
    metrics_free(m);
}

static void
test_caps(void)
{
    struct metrics *m = metrics_new();
    char name[METRICS_VALUE_MAX + 8];
    struct metric *first;
    int i;

    metrics_set_caps(m, 0, 3);
    first = metrics_get(m, METRIC_LLM_COST, "m0");
    T_OK(first != NULL);
    T_OK(metrics_get(m, METRIC_LLM_COST, "m1") != NULL);
    T_OK(metrics_get(m, METRIC_LLM_COST, "m2") != NULL);
    T_OK(metrics_get(m, METRIC_LLM_COST, "m3") == NULL);
    metrics_add(m, METRIC_LLM_COST, 1, "m4"); /* dropped, no crash */
    T_OK(metrics_get(m, METRIC_LLM_COST, "m0") == first); /* still there */
    /* a value too long, and a NULL value, are refused too */
    memset(name, 'x', sizeof(name) - 1);
    name[METRICS_VALUE_MAX - 1] = '\0'; /* 63 bytes: fits */
    T_OK(metrics_get(m, METRIC_NOTICES, name) != NULL);
    name[METRICS_VALUE_MAX - 1] = 'x';
    name[METRICS_VALUE_MAX] = '\0'; /* 64 bytes: too long */
    T_OK(metrics_get(m, METRIC_NOTICES, name) == NULL);
    T_OK(metrics_get(m, METRIC_NOTICES, (const char *)NULL) == NULL);
    T_EQ_STR(block(m, METRIC_SERIES_DROPPED),
             "# HELP parley_metrics_series_dropped_total Label sets refused "
             "because a series cap was reached or a value was too long.\n"
             "# TYPE parley_metrics_series_dropped_total counter\n"
             "parley_metrics_series_dropped_total{family=\"parley_llm_cost_"
             "usd_total\"} 2\n"
             "parley_metrics_series_dropped_total{family=\"parley_notices_"
             "total\"} 2\n");
    metrics_free(m);

    /* the registry-wide cap */
    m = metrics_new();
    metrics_set_caps(m, 40, 0);
    for (i = 0; i < 100; i++) {
        char v[16];

        snprintf(v, sizeof(v), "s%d", i);
        metrics_inc(m, METRIC_LIMITED, v);
    }
    render(m);
    T_CONTAINS(page, "parley_limited_total{scope=\"s0\"} 1\n");
    T_OK(strstr(page, "scope=\"s99\"") == NULL);
    T_CONTAINS(page, "{family=\"parley_limited_total\"} ");
    metrics_free(m);
}

static void
test_render_shape(void)
{
    struct metrics *m = metrics_new();
    char small[100];
    size_t full, n;
    const char *p;
    int id;

    full = strlen(render(m));
    n = metrics_render(m, small, sizeof(small));
    T_EQ_INT(n, full); /* snprintf-like: the full length */
    T_EQ_INT(strlen(small), sizeof(small) - 1);
    T_OK(strncmp(small, page, sizeof(small) - 1) == 0);
    T_EQ_INT(metrics_render(m, NULL, 0), full);
    /* every family: HELP then TYPE, once, in enum order, parley_ names */
    p = page;
    for (id = 0; id < METRIC__COUNT; id++) {
        char want[128];
        const char *q;

        snprintf(want, sizeof(want), "# HELP %s ",
                 metrics_family_name((enum metric_id)id));
        q = strstr(p, want);
        T_OKF(q != NULL, "%s in order", want);
        T_OK(strncmp(metrics_family_name((enum metric_id)id), "parley_", 7) ==
             0);
        if (q != NULL)
            p = q + 1;
    }
    T_EQ_INT(page[full - 1], '\n');
    metrics_free(m);
    metrics_free(NULL);
    metric_inc(NULL);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    metrics_inc(NULL, METRIC_NOTICES, "x");
}

/* A page with every family populated, for `promtool check metrics`. */
static int
dump(void)
{
    struct metrics *m = metrics_new();
    static const char *const platforms[] = {"telegram", "discord", "slack"};
    int i;

    for (i = 0; i < 3; i++) {
        metrics_add(m, METRIC_MESSAGES_RECEIVED, 10 + i, platforms[i]);
        metrics_add(m, METRIC_ANSWERS_SENT, 8 + i, platforms[i]);
        metrics_inc(m, METRIC_NOTICES, platforms[i]);
        metrics_inc(m, METRIC_FEEDBACK_VOTES, platforms[i], "up");
        metrics_inc(m, METRIC_FEEDBACK_VOTES, platforms[i], "down");
        metrics_set(m, METRIC_CONNECTOR_UP, i != 1, platforms[i]);
        metrics_set(m, METRIC_CONNECTOR_INFLIGHT, 3 * i, platforms[i], "send");
        metrics_set(m, METRIC_CONNECTOR_INFLIGHT, i, platforms[i], "other");
        metrics_observe(m, METRIC_ANSWER_LATENCY, 0.8 * (i + 1), platforms[i]);
    }
    metrics_inc(m, METRIC_LIMITED, "user");
    metrics_inc(m, METRIC_LIMITED, "chat_tokens");
    metrics_inc(m, METRIC_LLM_REQUESTS, "main", "ok");
    metrics_inc(m, METRIC_LLM_REQUESTS, "main", "rate_limited");
    metrics_inc(m, METRIC_LLM_RETRIES, "main", "rate_limited");
    metrics_inc(m, METRIC_LLM_FALLBACKS, "main", "backup");
    metrics_add(m, METRIC_LLM_PACER_DELAY, 1.25, "main");
    metrics_add(m, METRIC_LLM_TOKENS, 1000, "main", "prompt");
    metrics_add(m, METRIC_LLM_TOKENS, 200, "main", "completion");
    metrics_add(m, METRIC_LLM_COST, 0.00072, "main");
    metrics_set(m, METRIC_LLM_BREAKER_STATE, 2, "backup");
    metrics_set(m, METRIC_QUEUE_DEPTH, 3, "queued");
    metrics_set(m, METRIC_BUILD_INFO, 1, "0.1.0");
    metrics_set(m, METRIC_START_TIME, 1700000000.5);
    metrics_set(m, METRIC_UPTIME, 42);
    metrics_set(m, METRIC_RSS, 12345678);
    metrics_set(m, METRIC_OPEN_FDS, 17);
    metrics_set(m, METRIC_DATABASE_SIZE, 98304);
    metrics_set_caps(m, 0, 1);
    metrics_inc(m, METRIC_LIMITED, "global"); /* a dropped series */
    fputs(render(m), stdout);
    metrics_free(m);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dump") == 0)
        return dump();
    test_counter();
    test_escaping();
    test_numbers();
    test_gauge();
    test_histogram();
    test_caps();
    test_render_shape();
    return t_done();
}
