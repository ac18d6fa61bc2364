/* retry: tenacity-style waits, provider-asked waits and the retry decision
 * (pure). */
#ifndef PARLEY_RETRY_H
#define PARLEY_RETRY_H

#include <stdint.h>

#include "llm/errclass.h"

/* docs/retry.md explains the formulas, the header rules and the table. */

/*
 * A provider-asked wait above this is taken as this: 3651 days, one day
 * above the largest give_up_after config accepts (3650d,
 * VALUE_DURATION_MAX_MS; llm.c checks it at compile time).  Every wait
 * up to any deadline is therefore honoured to the millisecond (SPEC §5:
 * "whatever its size"), and a clamped one still outlives every deadline,
 * so retry_decide moves on at once exactly as for the value asked.  The
 * clamp only keeps the arithmetic in range (ns sums, now + wait).
 */
#define RETRY_ASKED_MAX_MS ((int64_t)3651 * 24 * 3600 * 1000)

/* Header values longer than this are garbage, not parsed. */
#define RETRY_HEADER_MAX 128

enum retry_jitter {
    RETRY_JITTER_NONE = 0, /* wait */
    RETRY_JITTER_FULL,     /* uniform(0, wait) */
    RETRY_JITTER_EQUAL,    /* wait/2 + uniform(0, wait/2) */
};

/* SPEC [retry]; the glue copies struct config's fields in. */
struct retry_policy {
    int attempts;          /* attempts on one model+key, >= 1 */
    int64_t multiplier_ms; /* wait(n) = clamp(multiplier * 2^(n-1), min, max) */
    int64_t min_ms;
    int64_t max_ms;
    enum retry_jitter jitter;
};

/*
 * tenacity's wait_exponential after attempt n (from 1):
 * max(max(0, min), min(multiplier * 2^(n-1), max)).  Saturates instead of
 * overflowing for any n; n < 1 counts as 1.
 */
int64_t retry_wait_exponential(const struct retry_policy *p, int attempt);

/*
 * The exponential wait with the policy's jitter applied.  rnd is a uniform
 * 32-bit draw (the caller's randomness); a draw of r stands for r / 2^32,
 * so full jitter gives an integer in [0, wait] and equal jitter one in
 * [wait - wait/2, wait].
 */
int64_t retry_wait_jittered(const struct retry_policy *p, int attempt,
                            uint32_t rnd);

/*
 * Header value parsers: 0 and *out_ms set, or -1 for garbage (empty,
 * signs, trailing junk, longer than RETRY_HEADER_MAX).  Leading and
 * trailing blanks are allowed.  Sub-millisecond parts round up: a wait is
 * never shortened.  Results are clamped to [0, RETRY_ASKED_MAX_MS].
 *
 * seconds:  "2", "1.5", "0.001"                        (retry-after)
 * ms:       "1500", "1500.5"                           (retry-after-ms)
 * duration: Go durations "1s", "6m0s", "12ms", "1h2m3.5s", "0"
 *                                                      (x-ratelimit-reset-*)
 * The absolute forms give the wait from wall_now_ms (Unix epoch ms) to the
 * time named, 0 when it is already past:
 * http_date: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 and
 *            asctime forms (RFC 9110 §5.6.7)             (retry-after)
 * rfc3339:  "2024-05-01T12:00:30Z", "...30.250+02:00"
 *                                          (anthropic-ratelimit-*-reset)
 */
int retry_parse_seconds(const char *s, int64_t *out_ms);
int retry_parse_ms(const char *s, int64_t *out_ms);
int retry_parse_duration(const char *s, int64_t *out_ms);
int retry_parse_http_date(const char *s, int64_t wall_now_ms, int64_t *out_ms);
int retry_parse_rfc3339(const char *s, int64_t wall_now_ms, int64_t *out_ms);

/*
 * The wait a failed reply asks for, in ms, or -1 when it asks for none.
 * header(arg, name) returns the value of the named response header (names
 * are passed in lower case; match them case-insensitively) or NULL.
 *
 * SPEC §5: every header that asks is honoured, never earlier, so the
 * answer is the LARGEST of (docs/retry.md):
 *  1. retry-after-ms and retry-after (seconds or HTTP date), for every
 *     retryable class;
 *  2. the reset headers, x-ratelimit-reset-{requests,tokens} (durations)
 *     and anthropic-ratelimit-{requests,tokens,input-tokens,
 *     output-tokens}-reset (RFC 3339).  Each says when that bucket is
 *     *full* again, so only buckets that ran dry count: on a 429 the
 *     buckets the matching *-remaining headers show empty (when they do
 *     not tell: if the requests bucket had room, the token buckets, else
 *     the largest reset); on another retryable class only a bucket whose
 *     *-remaining is 0 (the attempt before its reset would be a 429).
 * Non-retryable classes ask nothing (-1): their key or model is left.
 */
int64_t retry_asked_wait(enum errclass cls,
                         const char *(*header)(void *arg, const char *name),
                         void *arg, int64_t wall_now_ms);

enum retry_action {
    RETRY_AFTER = 0, /* same model and key again after wait_ms */
    RETRY_NEXT_KEY,  /* this key is unusable; next key, else next model */
    /* this request failed on this model+key (400, 403, 404): the model's
     * next key not yet tried BY THIS REQUEST, else the next model; the key
     * stays usable for every other request */
    RETRY_OTHER_KEY,
    RETRY_NEXT_MODEL,   /* next model in [llm] models, at once */
    RETRY_TRIM_CONTEXT, /* trim history, else a model with a bigger window */
    RETRY_GIVE_UP,      /* the request ends with this failure */
};

struct retry_decision {
    enum retry_action action;
    /* RETRY_AFTER: how long to wait.  RETRY_NEXT_MODEL because of
     * give_up_after: the wait this model wanted (for its pacer/breaker).
     * Otherwise 0. */
    int64_t wait_ms;
};

/*
 * What to do after attempt `attempt` (from 1) on one model+key failed with
 * cls.  asked_wait_ms is retry_asked_wait()'s answer (-1 none);
 * elapsed_ms runs from the request's start (durable: a job resumed after
 * a restart counts from its creation); give_up_after_ms <= 0 leaves no
 * time to retry at all (the first failure ends the request); rnd is a
 * uniform 32-bit draw for the jitter.
 *
 *  - elapsed >= give_up_after                      -> GIVE_UP
 *  - internal                                      -> GIVE_UP
 *  - auth, quota                                   -> NEXT_KEY
 *  - bad_request, forbidden, not_found             -> OTHER_KEY
 *  - server_permanent (501, 505, ...)              -> NEXT_MODEL
 *  - context_overflow                              -> TRIM_CONTEXT
 *  - network, timeout, rate_limited, server, overloaded:
 *      attempt >= attempts                         -> NEXT_MODEL
 *      wait = max(jittered formula, asked wait)
 *      elapsed + wait > give_up_after              -> NEXT_MODEL (at once)
 *      else                                        -> AFTER(wait)
 */
struct retry_decision retry_decide(const struct retry_policy *p, int attempt,
                                   enum errclass cls, int64_t asked_wait_ms,
                                   int64_t elapsed_ms, int64_t give_up_after_ms,
                                   uint32_t rnd);

/* "after", "next_key", ... for logs. */
const char *retry_action_name(enum retry_action action);

#endif
