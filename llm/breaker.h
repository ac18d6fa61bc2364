/* breaker: a circuit breaker per model -- closed, open, half-open (pure). */
#ifndef PARLEY_BREAKER_H
#define PARLEY_BREAKER_H

#include <stdint.h>

/*
 * One breaker per model (SPEC §5: "a model that keeps failing is put in
 * cooldown and probed again later").  Times are the loop's monotonic
 * milliseconds, passed in; nothing here reads a clock.  docs/llm.md
 * "Client" has the numbers and the reasons for them.
 *
 *   CLOSED     requests go.  Each outcome is recorded; a failure opens
 *              the breaker when it is the `consecutive`-th in a row, or
 *              when at least `min_samples` of the last `window` outcomes
 *              are recorded and failures make up >= ratio_pm permille of
 *              them (a success never opens it).
 *   OPEN       requests do not go (the caller moves them to the next
 *              model) until open_until = opened + cooldown.
 *   HALF_OPEN  after the cooldown exactly one request goes: the probe.
 *              Everyone else waits for its verdict.  Success closes the
 *              breaker and resets the cooldown; failure opens it again
 *              with the cooldown doubled, up to cooldown_max_ms.
 *
 * Only model-health outcomes count: the caller records connection
 * errors, timeouts, 5xx and 529 as failures and 2xx as successes; a
 * reply that blames the key or the request (401, 400, 429, quota,
 * context overflow) says nothing about the model and is left out
 * (breaker_release() for a probe).
 */

/* Defaults (docs/llm.md): 5 in a row, or >= 50 % of the last 20 outcomes
 * with >= 10 recorded; cooldown 5 s doubling to 5 min. */
#define BREAKER_CONSECUTIVE 5
#define BREAKER_WINDOW 20
#define BREAKER_MIN_SAMPLES 10
#define BREAKER_RATIO_PM 500
#define BREAKER_COOLDOWN_MS 5000
#define BREAKER_COOLDOWN_MAX_MS 300000
#define BREAKER_WINDOW_MAX 64 /* outcomes fit one 64-bit word */

struct breaker_config {
    int consecutive;         /* failures in a row that open it; <= 0: off */
    int window;              /* outcomes kept for the ratio, 1..64 */
    int min_samples;         /* the ratio counts from this many, 1..window */
    int ratio_pm;            /* failure share that opens it; <= 0: off */
    int64_t cooldown_ms;     /* first open period, >= 1 */
    int64_t cooldown_max_ms; /* cap of the doubling, >= cooldown_ms */
};

enum breaker_state {
    BREAKER_CLOSED = 0,
    BREAKER_OPEN,      /* in cooldown */
    BREAKER_HALF_OPEN, /* cooldown over: one probe may go or is out */
};

/* What breaker_admit() says about one request. */
enum breaker_verdict {
    BREAKER_GO = 0, /* closed: send it */
    BREAKER_PROBE,  /* send it; it is the one probe, report its outcome */
    BREAKER_WAIT,   /* do not send: open, or the probe is out */
};

/* Embedded in the caller's per-model state; the fields are read-only. */
struct breaker {
    struct breaker_config cfg;
    enum breaker_state state; /* OPEN past open_until reads as HALF_OPEN */
    int fails_in_row;
    uint64_t outcomes;     /* bit i: the outcome i steps ago was a failure */
    int samples;           /* outcomes in the window, <= cfg.window */
    int64_t cooldown_ms;   /* the current (next) cooldown */
    int64_t open_until_ms; /* OPEN: the probe may go from here */
    int probing;           /* a probe is out */
    uint64_t opens;        /* times it opened, for metrics */
};

/* The defaults above. */
void breaker_config_default(struct breaker_config *cfg);

/* Starts closed.  Out-of-range settings are clamped into range. */
void breaker_init(struct breaker *b, const struct breaker_config *cfg);

/* New settings (SIGHUP) keep the state; the cooldown is clamped to them. */
void breaker_configure(struct breaker *b, const struct breaker_config *cfg);

/* May a request go at now_ms?  Changes nothing. */
enum breaker_verdict breaker_check(const struct breaker *b, int64_t now_ms);

/* The same, and a BREAKER_PROBE answer marks the probe as out. */
enum breaker_verdict breaker_admit(struct breaker *b, int64_t now_ms);

/*
 * ms until breaker_check() may say something else than BREAKER_WAIT: 0
 * when it does not say WAIT, the rest of the cooldown when open, -1 while
 * a probe is out (its verdict decides; there is no time to wait for).
 */
int64_t breaker_wait_ms(const struct breaker *b, int64_t now_ms);

/*
 * Outcomes.  probe is 1 for the request that breaker_admit() called the
 * probe.  Outcomes of other requests count only while closed (a request
 * sent before the breaker opened says nothing about the cooldown).
 */
void breaker_success(struct breaker *b, int probe, int64_t now_ms);
void breaker_failure(struct breaker *b, int probe, int64_t now_ms);

/* A probe that ended without a verdict (cancelled, or an outcome that says
 * nothing about the model): the next request becomes the probe. */
void breaker_release(struct breaker *b, int probe);

/* CLOSED, OPEN or HALF_OPEN at now_ms, for logs and metrics. */
enum breaker_state breaker_state(const struct breaker *b, int64_t now_ms);

/* "closed", "open", "half_open". */
const char *breaker_state_name(enum breaker_state s);

#endif
