/* metrics: counters, gauges and histograms with labels, Prometheus text. */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * One registry per process (the daemon owns it), used from the loop thread
 * only: no locks, no atomics.  Every family is declared in the table in
 * metrics.c, in this enum's order; the enum is the API, so a caller never
 * spells a metric name.  docs/metrics.md lists every family, its labels
 * and who feeds it.
 *
 * Label values are given in the family's label order (the comment on each
 * enum value), as NUL-terminated strings of at most METRICS_VALUE_MAX - 1
 * bytes.  They must come from a bounded set (platform names, model NAMEs,
 * error class names, …): never a user id, chat id or text.
 */
enum metric_id {
    /* counters */
    METRIC_MESSAGES_RECEIVED = 0, /* platform */
    METRIC_ANSWERS_SENT,          /* platform */
    METRIC_LIMITED,               /* scope: user|chat|global|user_tokens|… */
    METRIC_NOTICES,               /* platform: 429 notices sent */
    METRIC_LLM_REQUESTS,          /* model, outcome: ok or errclass_name() */
    METRIC_LLM_RETRIES,           /* model, reason: errclass_name() */
    METRIC_LLM_FALLBACKS,         /* from, to: model NAMEs */
    METRIC_LLM_PACER_DELAY,       /* model: seconds waited on the pacer */
    METRIC_LLM_TOKENS,            /* model, kind: prompt|completion */
    METRIC_LLM_COST,              /* model: USD */
    METRIC_FEEDBACK_VOTES,        /* platform, vote: up|down|withdrawn */
    METRIC_STREAM_EDITS,          /* platform, kind: edit|delete */
    /* gauges */
    METRIC_LLM_BREAKER_STATE,  /* model: 0 closed, 1 half-open, 2 open */
    METRIC_QUEUE_DEPTH,        /* state: job state (queued, asking, …) */
    METRIC_CONNECTOR_UP,       /* platform: 1 connected, 0 not */
    METRIC_CONNECTOR_INFLIGHT, /* platform, kind: send|other: on the wire */
    /* histograms */
    METRIC_ANSWER_LATENCY, /* platform: seconds, message in → answer sent */
    /* process (set by bot/ before each scrape) */
    METRIC_START_TIME,     /* unix seconds */
    METRIC_UPTIME,         /* seconds */
    METRIC_RSS,            /* bytes */
    METRIC_OPEN_FDS,       /* count */
    METRIC_DATABASE_SIZE,  /* bytes: parley.db + its -wal */
    METRIC_BUILD_INFO,     /* version: always 1 */
    METRIC_SERIES_DROPPED, /* family: series refused by the caps */
    METRIC__COUNT
};

enum metric_type {
    METRIC_COUNTER = 0,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

#define METRICS_LABELS_MAX 2      /* labels per family */
#define METRICS_VALUE_MAX 64      /* bytes per label value, NUL included */
#define METRICS_BUCKETS_MAX 16    /* histogram buckets, +Inf excluded */
#define METRICS_SERIES_MAX 2048   /* label sets in the whole registry */
#define METRICS_FAMILY_SERIES 256 /* label sets per family (default cap) */

struct metrics;
struct metric; /* one series: a family plus one set of label values */

/*
 * New registry with every family of enum metric_id.  Families without
 * labels have their one series from the start (value 0).  NULL on OOM.
 */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m); /* NULL-safe */

/*
 * Test hook: lower the caps (total series, series per family) so tests
 * can reach them; 0 leaves a cap as it is.
 */
void metrics_set_caps(struct metrics *m, size_t total, size_t per_family);

/*
 * The series of family id with the given label values (exactly the
 * family's number of labels, as const char *), created on first use.
 * Returns NULL — and counts parley_metrics_series_dropped_total{family}
 * — when a cap is reached, a value is too long or NULL, or on OOM.
 * Every metric_*() call accepts NULL as a no-op, so callers need not
 * check.  A handle stays valid until metrics_free(): get it once where
 * the label values become known (a model at config load, a platform at
 * connector start) and use it on the hot path.
 */
struct metric *metrics_get(struct metrics *m, enum metric_id id, ...);

/*
 * Hot path on a handle: no allocation, no formatting, no lookup.
 * metric_inc()/metric_add() are for counters and gauges (a counter
 * ignores negative amounts: it only goes up; a gauge takes any sign, for
 * depths that go up and down); metric_set() is for gauges;
 * metric_observe() for histograms.  A call of the wrong kind for the
 * family, or a NaN, is ignored.
 */
void metric_inc(struct metric *s);
void metric_add(struct metric *s, double v);
void metric_set(struct metric *s, double v);
/* Counters only: copies a subsystem's own cumulative count in, raising the
 * counter to v and never lowering it (monotonic across a scrape). */
void metric_set_total(struct metric *s, double v);
void metric_observe(struct metric *s, double v);

/*
 * Convenience: look up (or create) the series and update it in one call,
 * label values last.  The lookup hashes and compares the values, nothing
 * more; allocation happens only the first time a label set is seen.
 * metrics_inc(m, METRIC_LLM_REQUESTS, "main", "ok");
 */
void metrics_inc(struct metrics *m, enum metric_id id, ...);
void metrics_add(struct metrics *m, enum metric_id id, double v, ...);
void metrics_set(struct metrics *m, enum metric_id id, double v, ...);
void metrics_set_total(struct metrics *m, enum metric_id id, double v, ...);
void metrics_observe(struct metrics *m, enum metric_id id, double v, ...);

/* Current value of a counter or gauge series (histograms: the count). */
double metric_value(const struct metric *s);

/*
 * Pure: the Prometheus text exposition (format 0.0.4) of every family —
 * "# HELP" and "# TYPE" lines, then the series in creation order —
 * written into buf like snprintf: returns the length of the whole page;
 * when that is >= len, buf holds a truncated, NUL-terminated prefix and
 * the caller retries with a larger buffer.
 */
size_t metrics_render(const struct metrics *m, char *buf, size_t len);

/* The family's name ("parley_answers_sent_total") and type, for docs. */
const char *metrics_family_name(enum metric_id id);
enum metric_type metrics_family_type(enum metric_id id);

#endif
