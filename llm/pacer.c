/* pacer: per-model GCRA pacing under the provider's rpm and tpm (pure). */
#include "pacer.h"

#include <stddef.h>

#define NS_PER_MS INT64_C(1000000)
#define MINUTE_NS (INT64_C(60000) * NS_PER_MS)
/* No single charge is longer than a day; keeps every sum far from
 * overflow. */
#define CHARGE_MAX_NS (INT64_C(86400000) * NS_PER_MS)
#define NOW_MAX_MS (INT64_MAX / NS_PER_MS / 4)

static int64_t
clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Clocks are clamped to +-73 years (of monotonic ms) so no difference
 * below can overflow. */
static int64_t
clamp_now(int64_t ms)
{
    return clamp64(ms, -NOW_MAX_MS, NOW_MAX_MS);
}

static int64_t
to_ns(int64_t ms)
{
    return clamp_now(ms) * NS_PER_MS;
}

/* ns -> ms rounded up: a wait is never shortened. */
static int64_t
ceil_ms(int64_t ns)
{
    return ns <= 0 ? 0 : ns / NS_PER_MS + (ns % NS_PER_MS != 0);
}

/*
 * a * b / c rounded up (or down) for a, b >= 0, c > 0, without a 128-bit
 * type: the 128-bit product in two halves, then shift-subtract division.
 * Saturates at CHARGE_MAX_NS.
 */
static int64_t
muldiv(uint64_t a, uint64_t b, uint64_t c, int round_up)
{
    uint64_t al = a & 0xffffffffu, ah = a >> 32;
    uint64_t bl = b & 0xffffffffu, bh = b >> 32;
    uint64_t p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;
    uint64_t mid = (p0 >> 32) + (p1 & 0xffffffffu) + (p2 & 0xffffffffu);
    uint64_t lo = (p0 & 0xffffffffu) | (mid << 32);
    uint64_t hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
    uint64_t q = 0, r = hi;

    if (hi >= c)
        return CHARGE_MAX_NS; /* the quotient needs more than 64 bits */
    for (int i = 63; i >= 0; i--) {
        uint64_t carry = r >> 63;
        r = (r << 1) | ((lo >> i) & 1);
        q <<= 1;
        if (carry || r >= c) {
            r -= c;
            q |= 1;
        }
    }
    if (round_up && r != 0)
        q++;
    return q > (uint64_t)CHARGE_MAX_NS ? CHARGE_MAX_NS : (int64_t)q;
}

void
pacer_init(struct pacer *p, const struct pacer_config *cfg)
{
    p->cfg = *cfg;
    p->req_tat_ns = INT64_MIN / 4; /* long ago: the first request goes */
    p->tok_tat_ns = INT64_MIN / 4;
    p->blocked_until_ms = INT64_MIN / 4;
    p->factor_pm = 1000;
    p->decreased_ms = INT64_MIN / 4;
    p->penalties = 0;
}

void
pacer_configure(struct pacer *p, const struct pacer_config *cfg)
{
    p->cfg = *cfg;
}

int
pacer_factor_pm(const struct pacer *p, int64_t now_ms)
{
    int64_t since, f;

    now_ms = clamp_now(now_ms);
    if (p->factor_pm >= 1000)
        return 1000;
    since = now_ms - p->decreased_ms;
    if (since <= 0)
        return p->factor_pm;
    /* additive recovery, PACER_RECOVER_PM_PER_MIN per minute, pro rata */
    if (since >= INT64_C(60000) * 1000)
        return 1000;
    f = p->factor_pm + since * PACER_RECOVER_PM_PER_MIN / 60000;
    return f >= 1000 ? 1000 : (int)f;
}

/* The time `units` of a per-minute `rate` occupy at factor f, in ns:
 * units * 60 s * 1000 / (rate * f). */
static int64_t
charge_ns(int64_t units, int64_t rate, int f, int round_up)
{
    if (units <= 0 || rate <= 0)
        return 0;
    units = units > PACER_RATE_MAX ? PACER_RATE_MAX : units;
    rate = rate > PACER_RATE_MAX ? PACER_RATE_MAX : rate;
    return muldiv((uint64_t)units, (uint64_t)MINUTE_NS * 1000,
                  (uint64_t)rate * (uint64_t)f, round_up);
}

/*
 * GCRA: tat = max(tat, now) + cost; the max() is why idle time earns no
 * burst.  Except that the loop's clock ticks in whole ms while tat does
 * not: a request sent less than 1 ms after its tat was on time, and the
 * schedule continues from tat.  Snapping to now there would round every
 * interval up to whole ms (7000 rpm would run at 6667).  The slack is
 * safe: sends stay >= 60 s apart per rpm of them (docs/retry.md).
 */
static int64_t
advance(int64_t tat, int64_t now_ns, int64_t cost)
{
    return (tat > now_ns - NS_PER_MS ? tat : now_ns) + cost;
}

int64_t
pacer_next(const struct pacer *p, int64_t tokens, int64_t now_ms)
{
    int64_t now_ns = to_ns(now_ms), wait = 0;

    now_ms = clamp_now(now_ms);
    (void)tokens; /* tokens are paid after: a request never waits for its
                   * own reservation, only for earlier ones */
    if (p->blocked_until_ms > now_ms)
        wait = p->blocked_until_ms - now_ms;
    if (p->cfg.rpm > 0 && p->req_tat_ns > now_ns)
        wait = max64(wait, ceil_ms(p->req_tat_ns - now_ns));
    if (p->cfg.tpm > 0 && p->tok_tat_ns > now_ns)
        wait = max64(wait, ceil_ms(p->tok_tat_ns - now_ns));
    return wait;
}

int64_t
pacer_take(struct pacer *p, int64_t tokens, int64_t now_ms)
{
    int64_t now_ns = to_ns(now_ms), wait = pacer_next(p, tokens, now_ms);
    int f;

    if (wait > 0)
        goto out;
    f = pacer_factor_pm(p, now_ms);
    if (p->cfg.rpm > 0)
        p->req_tat_ns =
            advance(p->req_tat_ns, now_ns, charge_ns(1, p->cfg.rpm, f, 1));
    if (p->cfg.tpm > 0)
        p->tok_tat_ns =
            advance(p->tok_tat_ns, now_ns, charge_ns(tokens, p->cfg.tpm, f, 1));
out:
    return wait;
}

void
pacer_settle(struct pacer *p, int64_t reserved, int64_t used, int64_t now_ms)
{
    int64_t now_ns = to_ns(now_ms);
    int f = pacer_factor_pm(p, now_ms);

    reserved = clamp64(reserved, 0, PACER_RATE_MAX);
    used = clamp64(used, 0, PACER_RATE_MAX);
    if (p->cfg.tpm <= 0 || used == reserved)
        return;
    if (used > reserved) {
        /* the extra was spent already: it is debt from now on, at most a
         * day of it (keeps every later sum far from overflow) */
        p->tok_tat_ns = max64(p->tok_tat_ns, now_ns) +
                        charge_ns(used - reserved, p->cfg.tpm, f, 1);
        if (p->tok_tat_ns > now_ns + CHARGE_MAX_NS)
            p->tok_tat_ns = now_ns + CHARGE_MAX_NS;
    } else if (p->cfg.settle_refund && p->tok_tat_ns > now_ns) {
        /* rounded down, and never below now: a refund is not credit */
        p->tok_tat_ns =
            max64(p->tok_tat_ns - charge_ns(reserved - used, p->cfg.tpm, f, 0),
                  now_ns);
    }
}

void
pacer_penalize(struct pacer *p, int64_t sent_ms, int64_t retry_after_ms,
               int64_t now_ms)
{
    int f;
    int64_t block;

    now_ms = clamp_now(now_ms);
    f = pacer_factor_pm(p, now_ms);
    if (sent_ms > p->decreased_ms) {
        f = f * PACER_DECREASE_PM / 1000;
        p->factor_pm = f < PACER_FLOOR_PM ? PACER_FLOOR_PM : f;
        p->decreased_ms = now_ms;
        p->penalties++;
    }
    if (retry_after_ms >= 0)
        block = retry_after_ms;
    else if (p->cfg.rpm > 0)
        block =
            ceil_ms(charge_ns(1, p->cfg.rpm, pacer_factor_pm(p, now_ms), 1));
    else
        block = 1000;
    block = clamp64(block, 0, CHARGE_MAX_NS / NS_PER_MS);
    p->blocked_until_ms = max64(p->blocked_until_ms, now_ms + block);
}
