/* ratelimit: exact request windows and token budgets per key, time given. */
#ifndef PARLEY_RATELIMIT_H
#define PARLEY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "config/value.h" /* struct rate { n, window_ms }; n == 0 is off */

/*
 * Pure: no function here reads a clock.  Every call takes now_ms, a
 * monotonic time in milliseconds that must not decrease across calls on one
 * key (an earlier now_ms is treated as the key's latest recorded time, so
 * recorded times stay ordered and within the limit).  docs/ratelimit.md has the
 * exact semantics, representation and measured costs.
 *
 * Request limits (ratelimit_hit): a rate N/W admits a request at `now` iff
 * fewer than N requests were admitted in the half-open window (now - W, now].
 * So at most N admitted requests fall in any interval of length W, and a
 * request at t0 + W is admitted when the oldest admitted was at t0.  A
 * refusal reports wait = oldest_relevant + W - now: a request at now + wait
 * is admitted, one at now + wait - 1 is not (absent other traffic).
 *
 * Budgets (ratelimit_reserve/settle): a token bucket of capacity N tokens
 * refilled continuously at N/W tokens per ms, in exact integer arithmetic.
 *
 * Keys: any string of 1..RATELIMIT_KEY_MAX bytes ("u:telegram:123",
 * "c:slack:C1", "g").  Request windows and budgets are separate namespaces:
 * one key string may have both.  The caller passes the effective rate on
 * every call; a changed rate applies from that call on (see the doc).
 */

#define RATELIMIT_KEY_MAX 255
/* Request rates: at most this many requests per window (exactness needs one
 * timestamp per admitted request still in the window). */
#define RATELIMIT_WINDOW_MAX_N (1LL << 20)
/* Any window up to config's maximum duration. */
#define RATELIMIT_WINDOW_MAX_MS (3650LL * 86400000LL)
/* Budgets: N * window_ms must not exceed this (exact integer refill). */
#define RATELIMIT_BUCKET_MAX_NW (1LL << 62)
/*
 * The largest n a request window (bucket 0) or a token bucket (1) of
 * window_ms takes, 0 for a window out of range: a rate above it makes
 * every call on it fail, so configuration, chat commands and parleyctl
 * refuse it where it is given.
 */
int64_t ratelimit_n_max(int64_t window_ms, int bucket);
/* 0 when r is off or taken, else -1 and why = "at most 1048576 requests
 * per window" or "at most 53375995583 tokens per 1d" (for the user). */
int ratelimit_rate_check(struct rate r, int bucket, char *why, size_t len);

/* Entries examined for an idle victim when a new key meets the key cap. */
#define RATELIMIT_EVICT_SCAN 64

enum ratelimit_verdict {
    /* Invalid argument or rate, out of memory, or the key table is full
     * of live keys: treat as refused; *wait_ms holds a retry hint. */
    RATELIMIT_ERROR = -1,
    RATELIMIT_REFUSED = 0, /* *wait_ms is exact */
    RATELIMIT_ADMITTED = 1,
};

enum ratelimit_kind {
    RATELIMIT_WINDOW = 1, /* request limit */
    RATELIMIT_BUCKET = 2, /* token budget */
};

struct ratelimit;

/* What `usage` and `limits` show; from ratelimit_peek/peek_budget. */
struct ratelimit_usage {
    int64_t limit;     /* N */
    int64_t used;      /* window: admitted in (now-W, now], at most N;
                          bucket: N - available tokens (may exceed N) */
    int64_t remaining; /* limit - used, never below 0 */
    int64_t wait_ms;   /* until one more request (window) or `tokens`
                          (bucket) would be admitted; 0 = now */
    int64_t reset_ms;  /* until the window is empty / the bucket is full */
};

struct ratelimit_stats {
    size_t keys;        /* tracked keys, both kinds */
    size_t bytes;       /* bytes requested from malloc, table included */
    uint64_t full;      /* new keys refused because the table was full */
    uint64_t evicted;   /* idle keys dropped */
    size_t table_slots; /* hash table capacity */
};

/* max_keys > 0 bounds the tracked keys (both kinds together). */
struct ratelimit *ratelimit_new(size_t max_keys);
void ratelimit_free(struct ratelimit *rl);

/*
 * Request limit.  Returns RATELIMIT_ADMITTED (and records the request),
 * RATELIMIT_REFUSED with the exact *wait_ms (> 0), or RATELIMIT_ERROR.
 * r.n == 0 (off) admits without recording.  wait_ms may be NULL.
 */
int ratelimit_hit(struct ratelimit *rl, const char *key, struct rate r,
                  int64_t now_ms, int64_t *wait_ms);
/* The same decision without recording anything; fills *u.  Returns 0, or
 * -1 on an invalid argument.  An untracked key reads as unused. */
int ratelimit_peek(const struct ratelimit *rl, const char *key, struct rate r,
                   int64_t now_ms, struct ratelimit_usage *u);

/*
 * Budget.  reserve takes `tokens` (the estimate) from the bucket if it holds
 * them (an estimate above the capacity needs a full bucket and overdraws
 * it), else refuses with the exact *wait_ms until it will.  settle applies
 * actual - reserved (a refund, capped at a full bucket, or a charge that may
 * leave the bucket negative so that later requests wait).  budget.n == 0
 * (off) admits and settles nothing.  settle returns 0, or -1 if the charge
 * could not be recorded (invalid argument, out of memory, table full).
 */
int ratelimit_reserve(struct ratelimit *rl, const char *key, struct rate budget,
                      int64_t tokens, int64_t now_ms, int64_t *wait_ms);
int ratelimit_settle(struct ratelimit *rl, const char *key, struct rate budget,
                     int64_t reserved, int64_t actual, int64_t now_ms);
/* wait_ms in *u is for `tokens` (0 = for one token). */
int ratelimit_peek_budget(const struct ratelimit *rl, const char *key,
                          struct rate budget, int64_t tokens, int64_t now_ms,
                          struct ratelimit_usage *u);

size_t ratelimit_keys(const struct ratelimit *rl);
void ratelimit_stats(const struct ratelimit *rl, struct ratelimit_stats *st);
/*
 * Drop idle keys (window: nothing admitted within W; bucket: full), looking
 * at no more than max table slots from where the last call stopped, so a
 * periodic call sweeps the table in bounded steps.  Returns keys dropped.
 */
size_t ratelimit_evict(struct ratelimit *rl, int64_t now_ms, size_t max);

/*
 * Persistence.  export calls fn once per non-idle key (only keys changed
 * since their last successful export if dirty_only) with a blob of at most
 * RATELIMIT_BLOB_MAX bytes; fn returns 0 (the key is then clean) or -1 to
 * stop, and must not call into rl.  Store rows by (key, kind).  Times in a blob
 * are ages relative to export's now_ms, so blobs hold no clock value: the
 * caller stores the wall-clock time of the export and, after a restart, passes
 * to import the monotonic time that corresponds to that moment (now_mono -
 * (now_wall - export_wall), never later than now_mono; passing now_mono itself
 * is stricter, never lenient).  Idle keys are not exported; a stored blob of a
 * key since evicted stays harmless. Returns the number of keys exported, or -1
 * if fn stopped.
 */
#define RATELIMIT_BLOB_MAX (16 + 10 * (RATELIMIT_WINDOW_MAX_N + 4))
typedef int (*ratelimit_export_fn)(void *arg, const char *key,
                                   enum ratelimit_kind kind, const void *blob,
                                   size_t len);
long ratelimit_export(struct ratelimit *rl, int64_t now_ms, int dirty_only,
                      ratelimit_export_fn fn, void *arg);
/* Replaces the key's state of the blob's kind.  A blob that is malformed,
 * truncated, has trailing bytes or out-of-range values is rejected (-1) and
 * nothing changes.  Returns 0, or -1 (also on out of memory / table full). */
int ratelimit_import(struct ratelimit *rl, const char *key, const void *blob,
                     size_t len, int64_t at_ms);

#endif
