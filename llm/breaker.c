/* breaker: a circuit breaker per model -- closed, open, half-open (pure). */
#include "breaker.h"

#include <stddef.h>

static int64_t
clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Cooldowns stay below a day, so now + cooldown never overflows for any
 * sane monotonic clock. */
#define COOLDOWN_CAP_MS ((int64_t)86400000)

static void
breaker_clamp(struct breaker_config *c)
{
    if (c->window < 1)
        c->window = 1;
    if (c->window > BREAKER_WINDOW_MAX)
        c->window = BREAKER_WINDOW_MAX;
    if (c->min_samples < 1)
        c->min_samples = 1;
    if (c->min_samples > c->window)
        c->min_samples = c->window;
    if (c->ratio_pm > 1000)
        c->ratio_pm = 1000;
    c->cooldown_ms = clamp64(c->cooldown_ms, 1, COOLDOWN_CAP_MS);
    c->cooldown_max_ms =
        clamp64(c->cooldown_max_ms, c->cooldown_ms, COOLDOWN_CAP_MS);
}

void
breaker_config_default(struct breaker_config *cfg)
{
    cfg->consecutive = BREAKER_CONSECUTIVE;
    cfg->window = BREAKER_WINDOW;
    cfg->min_samples = BREAKER_MIN_SAMPLES;
    cfg->ratio_pm = BREAKER_RATIO_PM;
    cfg->cooldown_ms = BREAKER_COOLDOWN_MS;
    cfg->cooldown_max_ms = BREAKER_COOLDOWN_MAX_MS;
}

static void
breaker_forget(struct breaker *b)
{
    b->fails_in_row = 0;
    b->outcomes = 0;
    b->samples = 0;
}

void
breaker_init(struct breaker *b, const struct breaker_config *cfg)
{
    b->cfg = *cfg;
    breaker_clamp(&b->cfg);
    b->state = BREAKER_CLOSED;
    breaker_forget(b);
    b->cooldown_ms = b->cfg.cooldown_ms;
    b->open_until_ms = 0;
    b->probing = 0;
    b->opens = 0;
}

void
breaker_configure(struct breaker *b, const struct breaker_config *cfg)
{
    b->cfg = *cfg;
    breaker_clamp(&b->cfg);
    b->cooldown_ms =
        clamp64(b->cooldown_ms, b->cfg.cooldown_ms, b->cfg.cooldown_max_ms);
    if (b->samples > b->cfg.window)
        b->samples = b->cfg.window;
    if (b->cfg.window < 64)
        b->outcomes &= ((uint64_t)1 << b->cfg.window) - 1;
}

enum breaker_state
breaker_state(const struct breaker *b, int64_t now_ms)
{
    if (b->state == BREAKER_OPEN && now_ms >= b->open_until_ms)
        return BREAKER_HALF_OPEN;
    return b->state;
}

enum breaker_verdict
breaker_check(const struct breaker *b, int64_t now_ms)
{
    switch (breaker_state(b, now_ms)) {
    case BREAKER_CLOSED:
        return BREAKER_GO;
    case BREAKER_HALF_OPEN:
        return b->probing ? BREAKER_WAIT : BREAKER_PROBE;
    case BREAKER_OPEN:
    default:
        return BREAKER_WAIT;
    }
}

enum breaker_verdict
breaker_admit(struct breaker *b, int64_t now_ms)
{
    enum breaker_verdict v = breaker_check(b, now_ms);

    if (v == BREAKER_PROBE) {
        b->state = BREAKER_HALF_OPEN;
        b->probing = 1;
    }
    return v;
}

int64_t
breaker_wait_ms(const struct breaker *b, int64_t now_ms)
{
    switch (breaker_state(b, now_ms)) {
    case BREAKER_OPEN:
        return b->open_until_ms - now_ms;
    case BREAKER_HALF_OPEN:
        return b->probing ? -1 : 0;
    case BREAKER_CLOSED:
    default:
        return 0;
    }
}

static void
breaker_open(struct breaker *b, int64_t now_ms)
{
    b->state = BREAKER_OPEN;
    b->open_until_ms = now_ms + b->cooldown_ms;
    b->probing = 0;
    b->opens++;
    breaker_forget(b);
}

static int
popcount64(uint64_t x)
{
    int n = 0;

    while (x != 0) {
        x &= x - 1;
        n++;
    }
    return n;
}

/* Push one outcome into the window (closed state only). */
static void
breaker_record(struct breaker *b, int failed)
{
    uint64_t mask =
        b->cfg.window >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << b->cfg.window) - 1;

    b->outcomes = ((b->outcomes << 1) | (failed ? 1u : 0u)) & mask;
    if (b->samples < b->cfg.window)
        b->samples++;
    b->fails_in_row = failed ? b->fails_in_row + 1 : 0;
}

static int
breaker_tripped(const struct breaker *b)
{
    int64_t fails;

    if (b->cfg.consecutive > 0 && b->fails_in_row >= b->cfg.consecutive)
        return 1;
    if (b->cfg.ratio_pm <= 0 || b->samples < b->cfg.min_samples)
        return 0;
    fails = popcount64(b->outcomes);
    return fails * 1000 >= (int64_t)b->cfg.ratio_pm * b->samples;
}

void
breaker_success(struct breaker *b, int probe, int64_t now_ms)
{
    (void)now_ms;
    if (probe && b->probing) {
        /* the probe got through: close, forget the trouble */
        b->state = BREAKER_CLOSED;
        b->probing = 0;
        b->cooldown_ms = b->cfg.cooldown_ms;
        breaker_forget(b);
        return;
    }
    if (b->state == BREAKER_CLOSED)
        breaker_record(b, 0);
}

void
breaker_failure(struct breaker *b, int probe, int64_t now_ms)
{
    if (probe && b->probing) {
        b->cooldown_ms = b->cooldown_ms > b->cfg.cooldown_max_ms / 2
                             ? b->cfg.cooldown_max_ms
                             : b->cooldown_ms * 2;
        breaker_open(b, now_ms);
        return;
    }
    if (b->state != BREAKER_CLOSED)
        return;
    breaker_record(b, 1);
    if (breaker_tripped(b)) {
        b->cooldown_ms = b->cfg.cooldown_ms;
        breaker_open(b, now_ms);
    }
}

void
breaker_release(struct breaker *b, int probe)
{
    if (probe)
        b->probing = 0;
}

const char *
breaker_state_name(enum breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "?";
}
