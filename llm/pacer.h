/* pacer: per-model GCRA pacing under the provider's rpm and tpm (pure). */
#ifndef PARLEY_PACER_H
#define PARLEY_PACER_H

#include <stdint.h>

/*
 * One pacer per model.  It keeps a GCRA "theoretical arrival time" for
 * requests and one for tokens, in nanoseconds so any rate is exact (60 rpm
 * is one request per 1000 ms; 7 rpm one per 8571.428572 ms, never rounded
 * down).  Times are the loop's monotonic milliseconds, passed in.
 *
 * Burst tolerance is zero: a request may go when every earlier request's
 * emission interval (and every earlier token reservation) has run out, and
 * idle time earns no credit.  That keeps any 60 s window at <= rpm
 * requests, so a provider counting a sliding minute, a calendar minute, a
 * per-second quantum (rpm/60 per second) or a token bucket never sees more
 * than it allows.  Tokens are paid after: a request goes when the token
 * debt is cleared and then adds its own reservation, so a single request
 * never waits for its own size (a provider bucket holds at least one
 * request), and the long-run rate is exactly tpm.  docs/retry.md.
 *
 * Ordering is the caller's: the pacer answers "when", never "who".  The
 * caller keeps one queue per model with limited/retried requests at the
 * front and asks only for the head, so when capacity returns the requests
 * that were limited go first and a big request is not starved by small
 * ones overtaking it.
 */

/* Unexpected 429: the rate drops to 75 %, never below 10 %, and climbs
 * back by 5 % of the configured rate per minute without one. */
#define PACER_DECREASE_PM 750
#define PACER_FLOOR_PM 100
#define PACER_RECOVER_PM_PER_MIN 50

/* Larger rates and reservations are clamped to this. */
#define PACER_RATE_MAX INT64_C(1000000000)

struct pacer_config {
    int64_t rpm; /* requests per minute; <= 0: off */
    int64_t tpm; /* tokens per minute; <= 0: off */
    /*
     * 1: pacer_settle() gives back what a reply did not use (Anthropic
     * adjusts its output-token meter to the actual usage).  0: only extra
     * usage is charged (OpenAI counts max_tokens at admission, so a refund
     * would run ahead of its meter).
     */
    int settle_refund;
};

struct pacer {
    struct pacer_config cfg;
    int64_t req_tat_ns;       /* the next request is on time from here */
    int64_t tok_tat_ns;       /* token debt is paid off here */
    int64_t blocked_until_ms; /* a provider's retry-after, for everyone */
    int factor_pm;        /* rate factor after the last decrease, permille */
    int64_t decreased_ms; /* when it was decreased; recovery starts there */
    int64_t penalties;    /* decreases so far, for metrics */
};

void pacer_init(struct pacer *p, const struct pacer_config *cfg);

/* New limits (SIGHUP) keep the pacing state: no burst on reload. */
void pacer_configure(struct pacer *p, const struct pacer_config *cfg);

/*
 * 0 when a request reserving `tokens` (prompt estimate + max_tokens) may
 * go at now_ms, else the exact number of ms to wait (wake at now + wait and
 * ask again).  Changes nothing.
 */
int64_t pacer_next(const struct pacer *p, int64_t tokens, int64_t now_ms);

/*
 * Check and commit in one step: when pacer_next() would say 0, the request
 * and its token reservation are charged and 0 is returned; otherwise
 * nothing changes and the wait is returned.
 */
int64_t pacer_take(struct pacer *p, int64_t tokens, int64_t now_ms);

/*
 * Settle a reservation with the reply's usage (prompt + completion
 * tokens): more than reserved is charged, less is given back if
 * cfg.settle_refund (never below now: unused time is no burst credit).
 * A failed attempt that the provider still metered settles with what it
 * reported, or with reserved when unknown.
 */
void pacer_settle(struct pacer *p, int64_t reserved, int64_t used,
                  int64_t now_ms);

/*
 * The provider answered 429 although we paced (its real limit is lower
 * than configured, or the key is shared).  Every request waits until
 * now + retry_after_ms (retry_after_ms < 0: one emission interval at the
 * reduced rate, or 1 s when rpm is off), and the rate drops by
 * PACER_DECREASE_PM -- once per event: a 429 for a request sent
 * (taken) at or before the last decrease was sent at the old rate and
 * does not decrease again.
 */
void pacer_penalize(struct pacer *p, int64_t sent_ms, int64_t retry_after_ms,
                    int64_t now_ms);

/* The rate factor in force at now_ms, permille of the configured rates. */
int pacer_factor_pm(const struct pacer *p, int64_t now_ms);

#endif
