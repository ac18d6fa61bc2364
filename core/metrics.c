/* metrics: counters, gauges and histograms with labels, Prometheus text. */
#include "core/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SIZE 1024 /* buckets of the series index; a power of two */

struct family_def {
    const char *name;
    const char *help;
    enum metric_type type;
    int nlabels;
    const char *labels[METRICS_LABELS_MAX];
    const double *buckets; /* histograms: upper bounds, ascending */
    int nbuckets;
};

/* Answers take from a second (cached, short) to minutes (retries). */
static const double latency_buckets[] = {0.1, 0.25, 0.5, 1,  2.5, 5,
                                         10,  20,   30,  60, 120, 300};

#define NB(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* In enum metric_id order; names are the public contract (SPEC §9). */
static const struct family_def families[METRIC__COUNT] = {
    [METRIC_MESSAGES_RECEIVED] = {"parley_messages_received_total",
                                  "Inbound messages accepted from a platform.",
                                  METRIC_COUNTER,
                                  1,
                                  {"platform"},
                                  NULL,
                                  0},
    [METRIC_ANSWERS_SENT] = {"parley_answers_sent_total",
                             "Answers delivered to a platform.",
                             METRIC_COUNTER,
                             1,
                             {"platform"},
                             NULL,
                             0},
    [METRIC_LIMITED] = {"parley_limited_total",
                        "Requests refused by a rate limit or token budget, "
                        "by scope.",
                        METRIC_COUNTER,
                        1,
                        {"scope"},
                        NULL,
                        0},
    [METRIC_NOTICES] = {"parley_notices_total",
                        "Rate limit (429) notices sent to users.",
                        METRIC_COUNTER,
                        1,
                        {"platform"},
                        NULL,
                        0},
    [METRIC_LLM_REQUESTS] = {"parley_llm_requests_total",
                             "LLM HTTP attempts by model and outcome (ok or "
                             "the error class).",
                             METRIC_COUNTER,
                             2,
                             {"model", "outcome"},
                             NULL,
                             0},
    [METRIC_LLM_RETRIES] = {"parley_llm_retries_total",
                            "LLM attempts retried on the same model and key, "
                            "by the class of the failure.",
                            METRIC_COUNTER,
                            2,
                            {"model", "reason"},
                            NULL,
                            0},
    [METRIC_LLM_FALLBACKS] = {"parley_llm_fallbacks_total",
                              "Requests moved from one model to the next.",
                              METRIC_COUNTER,
                              2,
                              {"from", "to"},
                              NULL,
                              0},
    [METRIC_LLM_PACER_DELAY] = {"parley_llm_pacer_delay_seconds_total",
                                "Time requests waited for the pacer to stay "
                                "under the model's rpm and tpm.",
                                METRIC_COUNTER,
                                1,
                                {"model"},
                                NULL,
                                0},
    [METRIC_LLM_TOKENS] = {"parley_llm_tokens_total",
                           "Tokens used as reported by the provider, by kind "
                           "(prompt or completion).",
                           METRIC_COUNTER,
                           2,
                           {"model", "kind"},
                           NULL,
                           0},
    [METRIC_LLM_COST] = {"parley_llm_cost_usd_total",
                         "Cost of LLM usage in US dollars, from the "
                         "configured prices.",
                         METRIC_COUNTER,
                         1,
                         {"model"},
                         NULL,
                         0},
    [METRIC_FEEDBACK_VOTES] = {"parley_feedback_votes_total",
                               "Feedback votes on answers.",
                               METRIC_COUNTER,
                               2,
                               {"platform", "vote"},
                               NULL,
                               0},
    [METRIC_STREAM_EDITS] = {"parley_stream_edits_total",
                             "Edits and deletes of streamed answers "
                             "accepted by a platform.",
                             METRIC_COUNTER,
                             2,
                             {"platform", "kind"},
                             NULL,
                             0},
    [METRIC_LLM_BREAKER_STATE] = {"parley_llm_breaker_state",
                                  "Circuit breaker of a model: 0 closed, 1 "
                                  "half-open, 2 open.",
                                  METRIC_GAUGE,
                                  1,
                                  {"model"},
                                  NULL,
                                  0},
    [METRIC_QUEUE_DEPTH] = {"parley_queue_depth",
                            "Jobs in the durable queue, by state.",
                            METRIC_GAUGE,
                            1,
                            {"state"},
                            NULL,
                            0},
    [METRIC_CONNECTOR_UP] = {"parley_connector_up",
                             "1 when the connection to the platform is up.",
                             METRIC_GAUGE,
                             1,
                             {"platform"},
                             NULL,
                             0},
    [METRIC_CONNECTOR_INFLIGHT] = {"parley_connector_calls_in_flight",
                                   "HTTP calls of a connector on the wire "
                                   "(kind send: messages, edits, deletes; "
                                   "other: typing, reactions, callbacks).",
                                   METRIC_GAUGE,
                                   2,
                                   {"platform", "kind"},
                                   NULL,
                                   0},
    [METRIC_ANSWER_LATENCY] = {"parley_answer_latency_seconds",
                               "Time from an inbound message to its answer "
                               "being sent.",
                               METRIC_HISTOGRAM,
                               1,
                               {"platform"},
                               latency_buckets,
                               NB(latency_buckets)},
    [METRIC_START_TIME] = {"parley_process_start_time_seconds",
                           "Start time of the process since the Unix epoch.",
                           METRIC_GAUGE,
                           0,
                           {NULL},
                           NULL,
                           0},
    [METRIC_UPTIME] = {"parley_uptime_seconds",
                       "Seconds since the process started.",
                       METRIC_GAUGE,
                       0,
                       {NULL},
                       NULL,
                       0},
    [METRIC_RSS] = {"parley_process_resident_memory_bytes",
                    "Resident memory size of the process.",
                    METRIC_GAUGE,
                    0,
                    {NULL},
                    NULL,
                    0},
    [METRIC_OPEN_FDS] = {"parley_process_open_fds",
                         "Open file descriptors of the process.",
                         METRIC_GAUGE,
                         0,
                         {NULL},
                         NULL,
                         0},
    [METRIC_DATABASE_SIZE] = {"parley_database_size_bytes",
                              "Size of parley.db and its write-ahead log.",
                              METRIC_GAUGE,
                              0,
                              {NULL},
                              NULL,
                              0},
    [METRIC_BUILD_INFO] = {"parley_build_info",
                           "Build information; the value is always 1.",
                           METRIC_GAUGE,
                           1,
                           {"version"},
                           NULL,
                           0},
    [METRIC_SERIES_DROPPED] = {"parley_metrics_series_dropped_total",
                               "Label sets refused because a series cap was "
                               "reached or a value was too long.",
                               METRIC_COUNTER,
                               1,
                               {"family"},
                               NULL,
                               0},
};

struct metric {
    struct metric *next;  /* in its family, creation order */
    struct metric *hnext; /* hash chain */
    uint32_t hash;
    enum metric_id id;
    char values[METRICS_LABELS_MAX][METRICS_VALUE_MAX];
    double value;      /* counter, gauge; histogram: the sum */
    uint64_t count;    /* histogram observations */
    uint64_t bucket[]; /* histogram: per bucket (not cumulative), then +Inf */
};

struct family {
    struct metric *head, *tail;
    size_t n;
};

struct metrics {
    struct family fam[METRIC__COUNT];
    struct metric *index[HASH_SIZE];
    size_t total;
    size_t cap_total, cap_family;
};

/* FNV-1a over the family and the values, NUL-separated. */
static uint32_t
metrics_hash(enum metric_id id, const char *const *v, int n)
{
    uint32_t h = 2166136261u;
    int i;

    h = (h ^ (uint32_t)id) * 16777619u;
    for (i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)v[i];

        for (; *p != '\0'; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0xffu) * 16777619u;
    }
    return h;
}

static struct metric *
metrics_find(const struct metrics *m, enum metric_id id, const char *const *v,
             int n, uint32_t h)
{
    struct metric *s;
    int i;

    for (s = m->index[h & (HASH_SIZE - 1)]; s != NULL; s = s->hnext) {
        if (s->hash != h || s->id != id)
            continue;
        for (i = 0; i < n; i++)
            if (strcmp(s->values[i], v[i]) != 0)
                break;
        if (i == n)
            return s;
    }
    return NULL;
}

/* Creates a series; caps are checked by the caller. */
static struct metric *
metrics_create(struct metrics *m, enum metric_id id, const char *const *v,
               int n, uint32_t h)
{
    const struct family_def *fd = &families[id];
    size_t nb = fd->type == METRIC_HISTOGRAM ? (size_t)fd->nbuckets + 1 : 0;
    struct metric *s = calloc(1, sizeof(*s) + nb * sizeof(uint64_t));
    struct family *f = &m->fam[id];
    int i;

    if (s == NULL)
        return NULL;
    s->id = id;
    s->hash = h;
    for (i = 0; i < n; i++)
        memcpy(s->values[i], v[i], strlen(v[i]) + 1);
    s->hnext = m->index[h & (HASH_SIZE - 1)];
    m->index[h & (HASH_SIZE - 1)] = s;
    if (f->tail != NULL)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    f->n++;
    m->total++;
    return s;
}

/* The dropped counter of family id: never capped (one per family). */
static void
metrics_count_drop(struct metrics *m, enum metric_id id)
{
    const char *v[1] = {families[id].name};
    uint32_t h = metrics_hash(METRIC_SERIES_DROPPED, v, 1);
    struct metric *s = metrics_find(m, METRIC_SERIES_DROPPED, v, 1, h);

    if (s == NULL)
        s = metrics_create(m, METRIC_SERIES_DROPPED, v, 1, h);
    if (s != NULL)
        s->value += 1;
}

static struct metric *
metrics_vget(struct metrics *m, enum metric_id id, va_list ap)
{
    const char *v[METRICS_LABELS_MAX];
    struct metric *s = NULL;
    uint32_t h;
    int i, n;

    if (m == NULL || (unsigned)id >= METRIC__COUNT)
        return NULL;
    n = families[id].nlabels;
    for (i = 0; i < n; i++) {
        v[i] = va_arg(ap, const char *);
        if (v[i] == NULL || strlen(v[i]) >= METRICS_VALUE_MAX)
            goto drop;
    }
    h = metrics_hash(id, v, n);
    s = metrics_find(m, id, v, n, h);
    if (s != NULL)
        return s;
    if (m->total >= m->cap_total || m->fam[id].n >= m->cap_family)
        goto drop;
    s = metrics_create(m, id, v, n, h);
    if (s != NULL)
        return s;
drop:
    metrics_count_drop(m, id);
    return NULL;
}

struct metrics *
metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(*m));
    int id;

    if (m == NULL)
        return NULL;
    m->cap_total = METRICS_SERIES_MAX;
    m->cap_family = METRICS_FAMILY_SERIES;
    for (id = 0; id < METRIC__COUNT; id++) {
        if (families[id].nlabels == 0 &&
            metrics_create(m, (enum metric_id)id, NULL, 0,
                           metrics_hash((enum metric_id)id, NULL, 0)) == NULL) {
            metrics_free(m);
            return NULL;
        }
    }
    return m;
}

void
metrics_free(struct metrics *m)
{
    int id;

    if (m == NULL)
        return;
    for (id = 0; id < METRIC__COUNT; id++) {
        struct metric *s = m->fam[id].head, *next;

        for (; s != NULL; s = next) {
            next = s->next;
            free(s);
        }
    }
    free(m);
}

void
metrics_set_caps(struct metrics *m, size_t total, size_t per_family)
{
    if (total > 0)
        m->cap_total = total;
    if (per_family > 0)
        m->cap_family = per_family;
}

struct metric *
metrics_get(struct metrics *m, enum metric_id id, ...)
{
    struct metric *s;
    va_list ap;

    va_start(ap, id);
    s = metrics_vget(m, id, ap);
    va_end(ap);
    return s;
}

void
metric_add(struct metric *s, double v)
{
    if (s == NULL || isnan(v))
        return;
    if (families[s->id].type == METRIC_GAUGE)
        s->value += v;
    else if (families[s->id].type == METRIC_COUNTER && v >= 0)
        s->value += v; /* a counter only goes up */
}

void
metric_inc(struct metric *s)
{
    metric_add(s, 1);
}

void
metric_set(struct metric *s, double v)
{
    if (s == NULL || families[s->id].type != METRIC_GAUGE)
        return;
    s->value = v;
}

void
metric_set_total(struct metric *s, double v)
{
    if (s == NULL || families[s->id].type != METRIC_COUNTER || isnan(v))
        return;
    if (v > s->value)
        s->value = v;
}

void
metric_observe(struct metric *s, double v)
{
    const struct family_def *fd;
    int i;

    if (s == NULL || isnan(v))
        return;
    fd = &families[s->id];
    if (fd->type != METRIC_HISTOGRAM)
        return;
    for (i = 0; i < fd->nbuckets && v > fd->buckets[i]; i++)
        ;
    s->bucket[i]++; /* i == nbuckets: only +Inf */
    s->count++;
    s->value += v;
}

void
metrics_inc(struct metrics *m, enum metric_id id, ...)
{
    va_list ap;

    va_start(ap, id);
    metric_add(metrics_vget(m, id, ap), 1);
    va_end(ap);
}

void
metrics_add(struct metrics *m, enum metric_id id, double v, ...)
{
    va_list ap;

    va_start(ap, v);
    metric_add(metrics_vget(m, id, ap), v);
    va_end(ap);
}

void
metrics_set_total(struct metrics *m, enum metric_id id, double v, ...)
{
    va_list ap;

    va_start(ap, v);
    metric_set_total(metrics_vget(m, id, ap), v);
    va_end(ap);
}

void
metrics_set(struct metrics *m, enum metric_id id, double v, ...)
{
    va_list ap;

    va_start(ap, v);
    metric_set(metrics_vget(m, id, ap), v);
    va_end(ap);
}

void
metrics_observe(struct metrics *m, enum metric_id id, double v, ...)
{
    va_list ap;

    va_start(ap, v);
    metric_observe(metrics_vget(m, id, ap), v);
    va_end(ap);
}

double
metric_value(const struct metric *s)
{
    if (s == NULL)
        return 0;
    if (families[s->id].type == METRIC_HISTOGRAM)
        return (double)s->count;
    return s->value;
}

const char *
metrics_family_name(enum metric_id id)
{
    return (unsigned)id < METRIC__COUNT ? families[id].name : "?";
}

enum metric_type
metrics_family_type(enum metric_id id)
{
    return (unsigned)id < METRIC__COUNT ? families[id].type : METRIC_GAUGE;
}

/* --- rendering (pure) --- */

/* An snprintf-like sink: counts everything, stores what fits. */
struct out {
    char *buf;
    size_t len, pos;
};

static void
out_mem(struct out *o, const char *p, size_t n)
{
    if (o->pos < o->len) {
        size_t room = o->len - o->pos - 1; /* keep the NUL's place */

        memcpy(o->buf + o->pos, p, n < room ? n : room);
    }
    o->pos += n;
}

static void
out_str(struct out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

/* Label values escape \, " and newline; HELP text \ and newline. */
static void
out_escaped(struct out *o, const char *s, int quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *rep = NULL;

        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (*s == '"' && quote)
            rep = "\\\"";
        if (rep == NULL)
            continue;
        out_mem(o, run, (size_t)(s - run));
        out_str(o, rep);
        run = s + 1;
    }
    out_mem(o, run, (size_t)(s - run));
}

/*
 * Numbers: integers (the common case) without a fraction or exponent,
 * others in the shortest form that reads back exactly, and Prometheus'
 * spellings of the special values.
 */
static void
out_number(struct out *o, double v)
{
    char tmp[40];
    int prec;

    if (isnan(v)) {
        out_str(o, "NaN");
        return;
    }
    if (isinf(v)) {
        out_str(o, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        out_str(o, "0");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(tmp, sizeof(tmp), "%.0f", v);
        out_str(o, tmp);
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    out_str(o, tmp);
}

static void
out_u64(struct out *o, uint64_t v)
{
    char tmp[24];

    snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    out_str(o, tmp);
}

/* name{l1="v1",l2="v2"[,le="x"]} */
static void
out_series_name(struct out *o, const struct family_def *fd,
                const struct metric *s, const char *suffix, const double *le)
{
    int i;

    out_str(o, fd->name);
    out_str(o, suffix);
    if (fd->nlabels == 0 && le == NULL)
        return;
    out_str(o, "{");
    for (i = 0; i < fd->nlabels; i++) {
        if (i > 0)
            out_str(o, ",");
        out_str(o, fd->labels[i]);
        out_str(o, "=\"");
        out_escaped(o, s->values[i], 1);
        out_str(o, "\"");
    }
    if (le != NULL) {
        out_str(o, fd->nlabels > 0 ? ",le=\"" : "le=\"");
        out_number(o, *le);
        out_str(o, "\"");
    }
    out_str(o, "}");
}

static void
out_histogram(struct out *o, const struct family_def *fd,
              const struct metric *s)
{
    static const double inf = INFINITY;
    uint64_t cum = 0;
    int i;

    for (i = 0; i <= fd->nbuckets; i++) {
        cum += s->bucket[i];
        out_series_name(o, fd, s, "_bucket",
                        i < fd->nbuckets ? &fd->buckets[i] : &inf);
        out_str(o, " ");
        out_u64(o, cum);
        out_str(o, "\n");
    }
    out_series_name(o, fd, s, "_sum", NULL);
    out_str(o, " ");
    out_number(o, s->value);
    out_str(o, "\n");
    out_series_name(o, fd, s, "_count", NULL);
    out_str(o, " ");
    out_u64(o, s->count);
    out_str(o, "\n");
}

size_t
metrics_render(const struct metrics *m, char *buf, size_t len)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    struct out o = {buf, len, 0};
    int id;

    for (id = 0; id < METRIC__COUNT; id++) {
        const struct family_def *fd = &families[id];
        const struct metric *s;

        out_str(&o, "# HELP ");
        out_str(&o, fd->name);
        out_str(&o, " ");
        out_escaped(&o, fd->help, 0);
        out_str(&o, "\n# TYPE ");
        out_str(&o, fd->name);
        out_str(&o, " ");
        out_str(&o, type_names[fd->type]);
        out_str(&o, "\n");
        for (s = m->fam[id].head; s != NULL; s = s->next) {
            if (fd->type == METRIC_HISTOGRAM) {
                out_histogram(&o, fd, s);
                continue;
            }
            out_series_name(&o, fd, s, "", NULL);
            out_str(&o, " ");
            out_number(&o, s->value);
            out_str(&o, "\n");
        }
    }
    if (len > 0)
        buf[o.pos < len ? o.pos : len - 1] = '\0';
    return o.pos;
}
