/* test_ratelimit: exact windows, exact waits, budgets, eviction and persistence
 * on a fixed clock. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "tests/t.h"

#define SEC 1000LL
#define DAY (86400LL * SEC)

static struct rate
R(int64_t n, int64_t w) {
    struct rate r = {n, w};
    return r;
}

/* xorshift64*: a seeded, reproducible stream for the property tests. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static int64_t
rng_below(int64_t n)
{
    return n <= 0 ? 0 : (int64_t)(rng() % (uint64_t)n);
}

static void
test_spec_example(void)
{
    struct ratelimit *rl = ratelimit_new(16);
    struct ratelimit_usage u;
    int64_t wait = -1;

    T_EQ_INT(ratelimit_hit(rl, "u:telegram:1", R(3, 20 * SEC), 0, &wait),
             RATELIMIT_ADMITTED);
    T_EQ_INT(wait, 0);
    T_EQ_INT(ratelimit_hit(rl, "u:telegram:1", R(3, 20 * SEC), 5 * SEC, &wait),
             RATELIMIT_ADMITTED);
    T_EQ_INT(ratelimit_hit(rl, "u:telegram:1", R(3, 20 * SEC), 10 * SEC, &wait),
             RATELIMIT_ADMITTED);
    T_EQ_INT(ratelimit_hit(rl, "u:telegram:1", R(3, 20 * SEC), 15 * SEC, &wait),
             RATELIMIT_REFUSED);
    T_EQ_INT(wait, 5 * SEC);
    T_EQ_INT(ratelimit_peek(rl, "u:telegram:1", R(3, 20 * SEC), 15 * SEC, &u),
             0);
    T_EQ_INT(u.limit, 3);
    T_EQ_INT(u.used, 3);
    T_EQ_INT(u.remaining, 0);
    T_EQ_INT(u.wait_ms, 5 * SEC);
    T_EQ_INT(u.reset_ms, 15 * SEC);
    /* the boundary: the window is (now - W, now] */
    T_EQ_INT(
        ratelimit_hit(rl, "u:telegram:1", R(3, 20 * SEC), 20 * SEC - 1, &wait),
        RATELIMIT_REFUSED);
    T_EQ_INT(wait, 1);
    T_EQ_INT(ratelimit_hit(rl, "u:telegram:1", R(3, 20 * SEC), 20 * SEC, &wait),
             RATELIMIT_ADMITTED);
    /* another key is independent; a budget of the same name too */
    T_EQ_INT(ratelimit_hit(rl, "u:telegram:2", R(3, 20 * SEC), 15 * SEC, &wait),
             RATELIMIT_ADMITTED);
    T_EQ_INT(ratelimit_keys(rl), 2);
    ratelimit_free(rl);
}

/* Fill a key to N at spaced times, then: refused with wait, now + wait - 1
 * refused with wait 1, now + wait admitted — for many rates and origins. */
static void
test_boundaries(void)
{
    static const struct {
        int64_t n, w;
    } rates[] = {
        {1, 1},       {1, 1000},         {3, 20000},           {30, 60000},
        {2, 65535},   {5, 65536},        {5, 65537},           {120, 60000},
        {7, DAY},     {200, 3600 * SEC}, {2, (1LL << 32) + 5}, {4, 3650 * DAY},
        {1000, 1000},
    };
    static const int64_t origins[] = {0, 1, -123456789, 987654321012LL,
                                      (1LL << 40) - 3};
    struct ratelimit *rl = ratelimit_new(1024);
    char key[32];
    size_t i, j;
    int64_t k, t, wait, w0, step;

    for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        for (j = 0; j < sizeof(origins) / sizeof(origins[0]); j++) {
            struct rate r = R(rates[i].n, rates[i].w);
            int ok = 1;
            snprintf(key, sizeof(key), "b:%zu:%zu", i, j);
            step = r.window_ms / (r.n + 1);
            t = origins[j];
            for (k = 0; k < r.n; k++, t += step)
                ok &= ratelimit_hit(rl, key, r, t, &wait) == 1 && wait == 0;
            T_OKF(ok, "fill %s", key);
            T_EQ_INT(ratelimit_hit(rl, key, r, t, &wait), RATELIMIT_REFUSED);
            /* the first admitted was at the origin */
            T_EQ_INT(wait, origins[j] + r.window_ms - t);
            w0 = wait;
            if (w0 > 1) {
                T_EQ_INT(ratelimit_hit(rl, key, r, t + w0 - 1, &wait),
                         RATELIMIT_REFUSED);
                T_EQ_INT(wait, 1);
            }
            T_EQ_INT(ratelimit_hit(rl, key, r, t + w0, &wait),
                     RATELIMIT_ADMITTED);
        }
    }
    ratelimit_free(rl);
}

/* Stored offsets are 16 or 32 bits: the widest gap each must still hold. */
static void
test_width_edges(void)
{
    static const int64_t ws[] = {65535,     65536,           65537,
                                 1LL << 32, (1LL << 32) + 1, 3650 * DAY};
    struct ratelimit *rl = ratelimit_new(16);
    int64_t wait, t0 = -5;
    size_t i;

    for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        struct rate r = R(2, ws[i]);
        char key[8];
        snprintf(key, sizeof(key), "e%zu", i);
        T_EQ_INT(ratelimit_hit(rl, key, r, t0, &wait), 1);
        T_EQ_INT(ratelimit_hit(rl, key, r, t0 + ws[i] - 1, &wait), 1);
        T_EQ_INT(ratelimit_hit(rl, key, r, t0 + ws[i] - 1, &wait), 0);
        T_EQ_INT(wait, 1);
        T_EQ_INT(ratelimit_hit(rl, key, r, t0 + ws[i], &wait), 1);
        T_EQ_INT(ratelimit_hit(rl, key, r, t0 + ws[i], &wait), 0);
        T_EQ_INT(wait, ws[i] - 1);
    }
    ratelimit_free(rl);
}

/*
 * Property: random arrivals against a brute-force reference that keeps
 * every admitted time.  Each decision and each wait must match, the wait
 * must be exact (peek at now + wait - 1 refuses, at now + wait admits), and
 * no window (b - W, b] holds more than N admitted requests.
 */
#define PROP_MAX 400

static int
ref_decide(const int64_t *adm, int nadm, struct rate r, int64_t t,
           int64_t *wait)
{
    int first = 0, live;

    while (first < nadm && adm[first] <= t - r.window_ms)
        first++;
    live = nadm - first;
    if (live < r.n) {
        *wait = 0;
        return 1;
    }
    *wait = adm[first + live - r.n] + r.window_ms - t;
    return 0;
}

static void
test_property(void)
{
    static const struct {
        int64_t n, w;
    } rates[] = {
        {1, 10},
        {2, 7},
        {3, 20000},
        {5, 1000},
        {8, 500},
        {30, 60000},
        {4, 65536},
        {6, 70000},
        {3, 100000000},
        {5, (1LL << 32) + 1},
        {2, 5 * 365 * DAY},
        {64, 997},
        /* rings that wrap and then grow, at each width */
        {200, 5000},
        {150, 70000},
    };
    static int64_t adm[PROP_MAX];
    struct ratelimit_usage u;
    int seq, i, nadm, bad = 0, badwait = 0, badwin = 0, badexact = 0;
    int checked = 0;
    size_t ri;

    for (ri = 0; ri < sizeof(rates) / sizeof(rates[0]); ri++) {
        struct rate r = R(rates[ri].n, rates[ri].w);
        for (seq = 0; seq < 300; seq++) {
            struct ratelimit *rl = ratelimit_new(4);
            int64_t t = (int64_t)(rng() % (1ULL << 44)) - (1LL << 43);
            int len = 50 + (int)rng_below(PROP_MAX - 50);
            nadm = 0;
            for (i = 0; i < len; i++) {
                int64_t wait, rwait;
                int got, want;
                uint64_t pick = rng() % 100;
                /* mostly bursts near the limit, some long silences that
                 * wrap the 16/32-bit stored offsets */
                if (pick < 40)
                    t += rng_below(r.window_ms / r.n + 1);
                else if (pick < 70)
                    t += 0;
                else if (pick < 95)
                    t += rng_below(r.window_ms + 2);
                else
                    t += 65536 * rng_below(70000) + rng_below(3);
                got = ratelimit_hit(rl, "k", r, t, &wait);
                want = ref_decide(adm, nadm, r, t, &rwait);
                if (got != want)
                    bad++;
                if (wait != rwait)
                    badwait++;
                checked++;
                if (got == RATELIMIT_ADMITTED) {
                    if (nadm == PROP_MAX)
                        break;
                    adm[nadm++] = t;
                    continue;
                }
                /* exactness, read without recording */
                if (ratelimit_peek(rl, "k", r, t + wait - 1, &u) != 0 ||
                    u.wait_ms != 1 ||
                    ratelimit_peek(rl, "k", r, t + wait, &u) != 0 ||
                    u.wait_ms != 0 || u.used > r.n - 1)
                    badexact++;
            }
            /* no window (b - W, b] holds more than N */
            for (i = 0; i < nadm; i++) {
                int j = i, c = 0;
                while (j >= 0 && adm[j] > adm[i] - r.window_ms) {
                    c++;
                    j--;
                }
                if (c > r.n)
                    badwin++;
            }
            ratelimit_free(rl);
        }
    }
    T_OKF(bad == 0, "%d decisions differ from the reference", bad);
    T_OKF(badwait == 0, "%d waits differ from the reference", badwait);
    T_OKF(badexact == 0, "%d waits not exact", badexact);
    T_OKF(badwin == 0, "%d windows over N", badwin);
    T_OKF(checked > 100000, "only %d decisions checked", checked);
}

/*
 * The ring grows in place while wrapped, and re-encodes when the window
 * moves across a width (both ways); stats.bytes tracks every allocation, so
 * it returns to the empty table's size once all keys are evicted.
 */
static void
test_ring_growth(void)
{
    static const int64_t ws[] = {1000, 70000, 5LL << 32};
    struct ratelimit *rl = ratelimit_new(8);
    struct ratelimit_stats st0, st;
    struct ratelimit_usage u;
    int64_t wait, t;
    size_t i;
    int k, ok;

    ratelimit_stats(rl, &st0);
    for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        struct rate r = R(1000, ws[i]);
        char key[8];
        snprintf(key, sizeof(key), "g%zu", i);
        /* 5 at t = 0, then 5 at W - 1 with t = 0 gone: head moved on, so
         * the next burst grows a wrapped ring again and again */
        for (k = 0; k < 5; k++)
            T_EQ_INT(ratelimit_hit(rl, key, r, 0, &wait), 1);
        for (k = 0; k < 5; k++)
            T_EQ_INT(ratelimit_hit(rl, key, r, ws[i] - 1, &wait), 1);
        for (ok = 0, k = 0; k < 1200; k++)
            ok += ratelimit_hit(rl, key, r, ws[i], &wait) == 1;
        T_EQ_INT(ok, 995); /* 5 from W - 1 still count */
        T_EQ_INT(wait, 2 * ws[i] - 1 - ws[i]);
        T_EQ_INT(ratelimit_peek(rl, key, r, ws[i], &u), 0);
        T_EQ_INT(u.used, 1000);
        /* the 5 at W - 1 leave at 2W - 1, the 995 at W stay until 2W */
        T_EQ_INT(ratelimit_peek(rl, key, r, 2 * ws[i] - 1, &u), 0);
        T_EQ_INT(u.used, 995);
        T_EQ_INT(u.wait_ms, 0);
        T_EQ_INT(u.reset_ms, 1);
    }
    /* 16-bit up to 64-bit and back down to 16-bit, exact throughout */
    for (t = 0; t < 3; t++)
        T_EQ_INT(ratelimit_hit(rl, "x", R(3, 60 * SEC), t * 1000, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "x", R(3, 1000 * DAY), 50 * SEC, &wait), 0);
    T_EQ_INT(wait, 1000 * DAY - 50 * SEC);
    /* at 61 s only t = 2 s is left: two more fit, the third waits */
    T_EQ_INT(ratelimit_hit(rl, "x", R(3, 60 * SEC), 61 * SEC, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "x", R(3, 60 * SEC), 61 * SEC, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "x", R(3, 60 * SEC), 61 * SEC, &wait), 0);
    T_EQ_INT(wait, 1000);
    T_EQ_INT(ratelimit_hit(rl, "x", R(3, 60 * SEC), 62 * SEC, &wait), 1);
    T_EQ_INT(ratelimit_evict(rl, 100 * DAY * 100, 1000), 4);
    ratelimit_stats(rl, &st);
    T_EQ_INT(st.keys, 0);
    T_EQ_INT((long long)st.bytes, (long long)st0.bytes);
    ratelimit_free(rl);
}

static void
test_rate_change(void)
{
    struct ratelimit *rl = ratelimit_new(16);
    struct ratelimit_usage u;
    int64_t wait, t;

    for (t = 0; t < 10; t++)
        T_EQ_INT(ratelimit_hit(rl, "k", R(30, 60 * SEC), t, &wait), 1);
    /* lowered to 5: only the newest 5 (t = 5..9) still matter */
    T_EQ_INT(ratelimit_hit(rl, "k", R(5, 60 * SEC), 100, &wait), 0);
    T_EQ_INT(wait, 5 + 60 * SEC - 100);
    /* raised again: the dropped history is gone (documented leniency) */
    T_EQ_INT(ratelimit_peek(rl, "k", R(30, 60 * SEC), 100, &u), 0);
    T_EQ_INT(u.used, 5);
    /* shorter window: t = 5..9 leave it at 10 s + t; 7, 8, 9 remain */
    T_EQ_INT(ratelimit_hit(rl, "k", R(3, 10 * SEC), 10 * SEC + 6, &wait), 0);
    T_EQ_INT(wait, 1);
    T_EQ_INT(ratelimit_peek(rl, "k", R(5, 10 * SEC), 10 * SEC + 6, &u), 0);
    T_EQ_INT(u.used, 3);
    T_EQ_INT(ratelimit_hit(rl, "k", R(3, 10 * SEC), 10 * SEC + 7, &wait), 1);
    /* a wider window keeps what is stored (60 s: 16-bit → 1 d: 32-bit) */
    for (t = 20 * SEC; t < 20 * SEC + 3; t++)
        T_EQ_INT(ratelimit_hit(rl, "w", R(3, 60 * SEC), t, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "w", R(3, DAY), 30 * SEC, &wait), 0);
    T_EQ_INT(wait, 20 * SEC + DAY - 30 * SEC);
    T_EQ_INT(ratelimit_hit(rl, "w", R(3, DAY), 20 * SEC + DAY - 1, &wait), 0);
    T_EQ_INT(wait, 1);
    T_EQ_INT(ratelimit_hit(rl, "w", R(3, DAY), 20 * SEC + DAY, &wait), 1);
    /* and back to 60 s (20.001 s and 20.002 s drop out), then far beyond
     * 2^32 ms (the dropped history stays dropped) */
    T_EQ_INT(ratelimit_hit(rl, "w", R(3, 60 * SEC), 20 * SEC + DAY, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "w", R(3, 60 * SEC), 20 * SEC + DAY, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "w", R(3, 60 * SEC), 20 * SEC + DAY, &wait), 0);
    T_EQ_INT(ratelimit_hit(rl, "w", R(2, 100 * DAY), 21 * SEC + DAY, &wait), 0);
    T_EQ_INT(wait, 20 * SEC + DAY + 100 * DAY - 21 * SEC - DAY);
    /* off admits and records nothing */
    T_EQ_INT(ratelimit_hit(rl, "off", R(0, 0), 0, &wait), 1);
    T_EQ_INT(wait, 0);
    T_EQ_INT(ratelimit_peek(rl, "off", R(1, 1000), 0, &u), 0);
    T_EQ_INT(u.used, 0);
    ratelimit_free(rl);
}

/* The bounds callers check before a rate reaches the limiter: exactly the
 * rates its calls take. */
static void
test_rate_check(void)
{
    struct ratelimit *rl = ratelimit_new(16);
    int64_t wait;
    char why[96];
    const int64_t day = 86400000;
    const int64_t bmax = RATELIMIT_BUCKET_MAX_NW / day;

    T_EQ_INT(ratelimit_rate_check(R(0, 0), 0, why, sizeof(why)), 0);
    T_EQ_INT(ratelimit_rate_check(R(1 << 20, 1000), 0, why, sizeof(why)), 0);
    T_EQ_INT(ratelimit_hit(rl, "k", R(1 << 20, 1000), 0, &wait),
             RATELIMIT_ADMITTED);
    T_EQ_INT(ratelimit_rate_check(R((1 << 20) + 1, 1000), 0, why, sizeof(why)),
             -1);
    T_EQ_STR(why, "at most 1048576 requests per window");
    T_EQ_INT(ratelimit_hit(rl, "k2", R((1 << 20) + 1, 1000), 0, &wait),
             RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_rate_check(R(bmax, day), 1, why, sizeof(why)), 0);
    T_EQ_INT(ratelimit_rate_check(R(bmax + 1, day), 1, why, sizeof(why)), -1);
    T_EQ_STR(why, "at most 53375995583 tokens per 1d");
    T_EQ_INT(ratelimit_rate_check(R(5, RATELIMIT_WINDOW_MAX_MS + 1), 0, why,
                                  sizeof(why)),
             -1);
    ratelimit_free(rl);
}

static void
test_bad_args(void)
{
    struct ratelimit *rl = ratelimit_new(16);
    char big[RATELIMIT_KEY_MAX + 2];
    int64_t wait;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    T_OK(ratelimit_new(0) == NULL);
    ratelimit_free(NULL);
    T_EQ_INT(ratelimit_hit(rl, NULL, R(1, 1), 0, &wait), RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_hit(rl, "", R(1, 1), 0, &wait), RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_hit(rl, big, R(1, 1), 0, &wait), RATELIMIT_ERROR);
    big[RATELIMIT_KEY_MAX] = '\0';
    T_EQ_INT(ratelimit_hit(rl, big, R(1, 1), 0, &wait), RATELIMIT_ADMITTED);
    T_EQ_INT(ratelimit_hit(rl, "k", R(-1, 1), 0, &wait), RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_hit(rl, "k", R(1, 0), 0, &wait), RATELIMIT_ERROR);
    T_EQ_INT(
        ratelimit_hit(rl, "k", R(RATELIMIT_WINDOW_MAX_N + 1, 1000), 0, &wait),
        RATELIMIT_ERROR);
    T_EQ_INT(
        ratelimit_hit(rl, "k", R(1, RATELIMIT_WINDOW_MAX_MS + 1), 0, &wait),
        RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_hit(rl, "k", R(1, 1000), INT64_MAX, &wait),
             RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_reserve(rl, "k", R(10, 1000), -1, 0, &wait),
             RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_reserve(rl, "k", R(1LL << 40, 1LL << 30), 1, 0, &wait),
             RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_settle(rl, "k", R(10, 1000), -1, 0, 0), -1);
    T_EQ_INT(ratelimit_hit(NULL, "k", R(1, 1), 0, NULL), RATELIMIT_ERROR);
    /* time running back on a key counts as its latest time */
    T_EQ_INT(ratelimit_hit(rl, "m", R(1, 1000), 5000, &wait), 1);
    T_EQ_INT(ratelimit_hit(rl, "m", R(1, 1000), 100, &wait), 0);
    T_EQ_INT(wait, 5900);
    T_EQ_INT(ratelimit_hit(rl, "m", R(1, 1000), 6000, &wait), 1);
    ratelimit_free(rl);
}

static void
test_bucket_refill(void)
{
    struct ratelimit *rl = ratelimit_new(16);
    struct ratelimit_usage u;
    int64_t wait, t, got;
    struct rate b = R(1000, 60 * SEC); /* one token per 60 ms */
    struct rate odd = R(7, SEC);       /* 7 per second: 142.857 ms each */

    T_EQ_INT(ratelimit_reserve(rl, "b", b, 1000, 0, &wait), 1);
    T_EQ_INT(ratelimit_reserve(rl, "b", b, 1, 0, &wait), 0);
    T_EQ_INT(wait, 60);
    T_EQ_INT(ratelimit_reserve(rl, "b", b, 1, 59, &wait), 0);
    T_EQ_INT(wait, 1);
    T_EQ_INT(ratelimit_reserve(rl, "b", b, 1, 60, &wait), 1);
    T_EQ_INT(ratelimit_reserve(rl, "b", b, 10, 60, &wait), 0);
    T_EQ_INT(wait, 600);

    /* no drift: tokens admitted by T equal floor(7 T / 1000) exactly */
    T_EQ_INT(ratelimit_reserve(rl, "o", odd, 7, 0, &wait), 1);
    T_EQ_INT(ratelimit_reserve(rl, "o", odd, 1, 0, &wait), 0);
    T_EQ_INT(wait, 143);
    got = 0;
    for (t = 0; t <= 10000000;) {
        if (ratelimit_reserve(rl, "o", odd, 1, t, &wait) == 1) {
            got++;
        } else {
            if (t + wait > 10000000)
                break;
            t += wait;
        }
    }
    T_EQ_INT(got, 70000);
    T_EQ_INT(ratelimit_peek_budget(rl, "o", odd, 1, 10000000, &u), 0);
    T_EQ_INT(u.remaining, 0);
    T_EQ_INT(u.wait_ms, 143);

    /* a big bucket refills without overflow and stops at capacity */
    T_EQ_INT(ratelimit_reserve(rl, "big", R(200000, DAY), 200000, 0, &wait), 1);
    T_EQ_INT(ratelimit_reserve(rl, "big", R(200000, DAY), 1, 0, &wait), 0);
    T_EQ_INT(wait, 432); /* 86400000 / 200000 */
    T_EQ_INT(ratelimit_peek_budget(rl, "big", R(200000, DAY), 0, DAY / 2, &u),
             0);
    T_EQ_INT(u.remaining, 100000);
    T_EQ_INT(u.reset_ms, DAY / 2);
    T_EQ_INT(ratelimit_peek_budget(rl, "big", R(200000, DAY), 0, 5 * DAY, &u),
             0);
    T_EQ_INT(u.remaining, 200000);
    T_EQ_INT(u.used, 0);
    T_EQ_INT(u.reset_ms, 0);
    ratelimit_free(rl);
}

static void
test_bucket_settle(void)
{
    struct ratelimit *rl = ratelimit_new(16);
    struct ratelimit_usage u;
    struct rate b = R(100, 100 * SEC); /* one token per second */
    int64_t wait;

    T_EQ_INT(ratelimit_reserve(rl, "s", b, 60, 0, &wait), 1);
    T_EQ_INT(ratelimit_settle(rl, "s", b, 60, 20, 0), 0);
    T_EQ_INT(ratelimit_peek_budget(rl, "s", b, 0, 0, &u), 0);
    T_EQ_INT(u.remaining, 80);
    T_EQ_INT(u.used, 20);
    /* overdraw: the debt makes later requests wait */
    T_EQ_INT(ratelimit_reserve(rl, "s", b, 50, 0, &wait), 1);
    T_EQ_INT(ratelimit_settle(rl, "s", b, 50, 150, 0), 0);
    T_EQ_INT(ratelimit_peek_budget(rl, "s", b, 1, 0, &u), 0);
    T_EQ_INT(u.remaining, 0);
    T_EQ_INT(u.used, 170);
    T_EQ_INT(ratelimit_reserve(rl, "s", b, 1, 0, &wait), 0);
    T_EQ_INT(wait, 71 * SEC);
    T_EQ_INT(ratelimit_reserve(rl, "s", b, 1, 71 * SEC - 1, &wait), 0);
    T_EQ_INT(wait, 1);
    T_EQ_INT(ratelimit_reserve(rl, "s", b, 1, 71 * SEC, &wait), 1);
    /* a refund never fills past capacity */
    T_EQ_INT(ratelimit_settle(rl, "f", b, 50, 0, 0), 0);
    T_EQ_INT(ratelimit_peek_budget(rl, "f", b, 0, 0, &u), 0);
    T_EQ_INT(u.remaining, 100);
    /* an estimate above capacity needs a full bucket, then overdraws */
    T_EQ_INT(ratelimit_reserve(rl, "x", b, 150, 0, &wait), 1);
    T_EQ_INT(ratelimit_reserve(rl, "x", b, 150, 0, &wait), 0);
    T_EQ_INT(wait, 150 * SEC); /* from -50 to a full 100 */
    /* a deep debt saturates instead of overflowing */
    T_EQ_INT(ratelimit_settle(rl, "d", R(1, 1000), 0, INT64_MAX, 0), 0);
    T_EQ_INT(ratelimit_reserve(rl, "d", R(1, 1000), 1, 0, &wait), 0);
    T_OK(wait > (1LL << 50));
    /* a rate change keeps whole tokens, clamped to the new capacity */
    T_EQ_INT(ratelimit_reserve(rl, "c", b, 60, 0, &wait), 1);
    T_EQ_INT(ratelimit_peek_budget(rl, "c", R(50, 10 * SEC), 0, 0, &u), 0);
    T_EQ_INT(u.remaining, 40);
    T_EQ_INT(ratelimit_reserve(rl, "c", R(20, 10 * SEC), 20, 0, &wait), 1);
    T_EQ_INT(ratelimit_reserve(rl, "c", R(20, 10 * SEC), 1, 0, &wait), 0);
    T_EQ_INT(wait, 500);
    /* off: admitted, nothing tracked */
    T_EQ_INT(ratelimit_reserve(rl, "off", R(0, 0), 1000, 0, &wait), 1);
    T_EQ_INT(ratelimit_settle(rl, "off", R(0, 0), 1000, 5, 0), 0);
    ratelimit_free(rl);
}

/* 50 concurrent requests against a budget that fits 10 estimates. */
static void
test_bucket_concurrent(void)
{
    static const int64_t caps[] = {10000, 10500, 10999};
    size_t ci;
    int round;

    for (ci = 0; ci < sizeof(caps) / sizeof(caps[0]); ci++) {
        for (round = 0; round < 20; round++) {
            struct ratelimit *rl = ratelimit_new(8);
            struct rate b = R(caps[ci], DAY);
            int64_t est = 1000, wait, charged = 0, actual[50];
            int i, admitted = 0, okwait = 1;
            for (i = 0; i < 50; i++) {
                actual[i] = -1;
                if (ratelimit_reserve(rl, "u", b, est, 0, &wait) == 1) {
                    admitted++;
                    /* the reply uses anything up to the estimate */
                    actual[i] = rng_below(est + 1);
                } else if (wait <= 0) {
                    okwait = 0;
                }
            }
            for (i = 0; i < 50; i++)
                if (actual[i] >= 0) {
                    ratelimit_settle(rl, "u", b, est, actual[i], 1);
                    charged += actual[i];
                }
            T_EQ_INT(admitted, 10);
            T_OK(okwait);
            T_OK(charged <= 10 * est + est);
            ratelimit_free(rl);
        }
    }
}

static void
test_evict_and_cap(void)
{
    struct ratelimit *rl = ratelimit_new(4);
    struct ratelimit_stats st;
    char key[32];
    int64_t wait;
    int i, ok;

    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "u:%d", i);
        T_EQ_INT(ratelimit_hit(rl, key, R(1, 1000), 0, &wait), 1);
    }
    /* full of live keys: refuse-safe with a hint, no growth */
    T_EQ_INT(ratelimit_hit(rl, "u:new", R(1, 1000), 10, &wait),
             RATELIMIT_ERROR);
    T_EQ_INT(wait, 990);
    T_EQ_INT(ratelimit_reserve(rl, "u:new", R(10, 1000), 1, 10, &wait),
             RATELIMIT_ERROR);
    T_EQ_INT(ratelimit_keys(rl), 4);
    ratelimit_stats(rl, &st);
    T_EQ_INT(st.full, 2);
    /* existing keys still decide */
    T_EQ_INT(ratelimit_hit(rl, "u:0", R(1, 1000), 10, &wait), 0);
    /* once idle, a new key takes an idle one's place (the bounded sweep
     * drops every idle key it meets) */
    T_EQ_INT(ratelimit_hit(rl, "u:new", R(1, 1000), 1000, &wait), 1);
    T_EQ_INT(ratelimit_keys(rl), 1);
    /* evict: a window is idle W after its newest; a bucket when full */
    T_EQ_INT(ratelimit_reserve(rl, "u:0", R(10, 1000), 10, 1000, &wait), 1);
    T_EQ_INT(ratelimit_evict(rl, 1999, 100), 0);
    T_EQ_INT(ratelimit_keys(rl), 2);
    T_EQ_INT(ratelimit_evict(rl, 2000, 100), 2);
    T_EQ_INT(ratelimit_keys(rl), 0);
    ratelimit_free(rl);

    /* many keys: growth, probing and backward-shift deletion stay right */
    rl = ratelimit_new(20000);
    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "u:telegram:%d", i);
        ratelimit_hit(rl, key, R(2, i % 2 ? 1000 : 5000), 0, &wait);
    }
    T_EQ_INT(ratelimit_keys(rl), 20000);
    T_EQ_INT(ratelimit_hit(rl, "one-more", R(2, 1000), 0, &wait),
             RATELIMIT_ERROR);
    /* bounded steps: a sweep takes several calls */
    for (i = 0; i < 20; i++)
        ratelimit_evict(rl, 1000, 5000);
    T_EQ_INT(ratelimit_keys(rl), 10000);
    ok = 1;
    for (i = 0; i < 20000; i++) {
        struct ratelimit_usage u;
        snprintf(key, sizeof(key), "u:telegram:%d", i);
        ratelimit_peek(rl, key, R(2, i % 2 ? 1000 : 5000), 1000, &u);
        ok &= u.used == (i % 2 ? 0 : 1);
    }
    T_OK(ok);
    ratelimit_stats(rl, &st);
    T_EQ_INT(st.evicted, 10000);
    ratelimit_free(rl);
}

/* ---- persistence ---- */

#define SAVED_MAX 64

struct saved {
    int n;
    char key[SAVED_MAX][RATELIMIT_KEY_MAX + 1];
    int kind[SAVED_MAX];
    unsigned char blob[SAVED_MAX][4096];
    size_t len[SAVED_MAX];
};

static int
save_fn(void *arg, const char *key, enum ratelimit_kind kind, const void *blob,
        size_t len)
{
    struct saved *s = arg;

    if (s->n == SAVED_MAX || len > sizeof(s->blob[0]))
        return -1;
    snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
    s->kind[s->n] = kind;
    memcpy(s->blob[s->n], blob, len);
    s->len[s->n] = len;
    s->n++;
    return 0;
}

static void
test_persist(void)
{
    static struct saved s;
    struct ratelimit *a = ratelimit_new(64), *b = ratelimit_new(64);
    const int64_t T = 5000000, at = -777777; /* a new process's clock */
    struct rate w1 = R(3, 20 * SEC), w2 = R(30, 60 * SEC), w3 = R(5, DAY);
    struct rate bk = R(1000, 60 * SEC);
    int64_t wait, wa, wb, dt;
    int i, same = 1, ra, rb;

    for (i = 0; i < 3; i++)
        ratelimit_hit(a, "u:1", w1, T - 15 * SEC + i * 5 * SEC, &wait);
    for (i = 0; i < 40; i++)
        ratelimit_hit(a, "u:2", w2, T - 50 * SEC + i * 700, &wait);
    for (i = 0; i < 5; i++)
        ratelimit_hit(a, "c:3", w3, T - DAY / 2 + i * 1000, &wait);
    ratelimit_hit(a, "old", w1, T - 30 * SEC, &wait); /* idle by T */
    ratelimit_reserve(a, "u:1", bk, 900, T - 1000, &wait);
    ratelimit_settle(a, "u:1", bk, 900, 1200, T - 500);
    ratelimit_reserve(a, "full", bk, 1, T - 120 * SEC, &wait); /* refilled */

    s.n = 0;
    T_EQ_INT(ratelimit_export(a, T, 0, save_fn, &s), 4);
    T_EQ_INT(s.n, 4);
    for (i = 0; i < s.n; i++)
        T_EQ_INT(ratelimit_import(b, s.key[i], s.blob[i], s.len[i], at), 0);
    T_EQ_INT(ratelimit_keys(b), 4);
    /* the same decisions at the same elapsed times */
    for (dt = 0; dt < 2 * DAY; dt += dt < 120 * SEC ? 250 : 3600 * SEC) {
        ra = ratelimit_hit(a, "u:1", w1, T + dt, &wa);
        rb = ratelimit_hit(b, "u:1", w1, at + dt, &wb);
        same &= ra == rb && wa == wb;
        ra = ratelimit_hit(a, "u:2", w2, T + dt, &wa);
        rb = ratelimit_hit(b, "u:2", w2, at + dt, &wb);
        same &= ra == rb && wa == wb;
        ra = ratelimit_hit(a, "c:3", w3, T + dt, &wa);
        rb = ratelimit_hit(b, "c:3", w3, at + dt, &wb);
        same &= ra == rb && wa == wb;
        ra = ratelimit_reserve(a, "u:1", bk, 97, T + dt, &wa);
        rb = ratelimit_reserve(b, "u:1", bk, 97, at + dt, &wb);
        same &= ra == rb && wa == wb;
    }
    T_OK(same);

    /* dirty_only exports only what changed since (and is not idle) */
    s.n = 0;
    T_EQ_INT(ratelimit_export(b, at + 2 * DAY, 1, save_fn, &s), 1);
    T_EQ_STR(s.key[0], "c:3");
    s.n = 0;
    T_EQ_INT(ratelimit_export(b, at + 2 * DAY, 1, save_fn, &s), 0);
    ratelimit_hit(b, "u:1", w1, at + 2 * DAY, &wait);
    s.n = 0;
    T_EQ_INT(ratelimit_export(b, at + 2 * DAY, 1, save_fn, &s), 1);
    T_EQ_STR(s.key[0], "u:1");
    T_EQ_INT(s.kind[0], RATELIMIT_WINDOW);
    ratelimit_free(a);
    ratelimit_free(b);
}

static void
test_corrupt(void)
{
    static struct saved s;
    struct ratelimit *a = ratelimit_new(16), *b = ratelimit_new(16);
    unsigned char buf[4200];
    int64_t wait;
    size_t cut;
    int i, k, ok = 1, accepted = 0;
    static const unsigned char bad[][16] = {
        {9, 1, 10, 1, 0},           /* version */
        {1, 3, 10, 1, 0},           /* kind */
        {1, 1, 0, 1, 0},            /* W = 0 */
        {1, 1, 10, 0, 0},           /* count = 0 */
        {1, 1, 10, 2, 0, 10},       /* gap == W */
        {1, 1, 10, 3, 0, 6, 6},     /* span > W */
        {1, 1, 10, 2, 0, 1, 0},     /* trailing byte */
        {1, 1, 10, 0xff, 0x7f, 0},  /* count over the bytes left */
        {1, 2, 0, 1, 0, 0},         /* bucket n = 0 */
        {1, 2, 10, 10, 0xca, 1, 0}, /* level above capacity */
        {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    };
    static const size_t badlen[] = {5, 5, 5, 5, 6, 7, 7, 6, 6, 7, 12};

    for (i = 0; i < 5; i++)
        ratelimit_hit(a, "w", R(10, 60 * SEC), i * 333, &wait);
    ratelimit_reserve(a, "w", R(100, 60 * SEC), 30, 0, &wait);
    s.n = 0;
    T_EQ_INT(ratelimit_export(a, 2000, 0, save_fn, &s), 2);
    for (i = 0; i < s.n; i++) {
        /* every strict prefix is rejected */
        for (cut = 0; cut < s.len[i]; cut++)
            ok &= ratelimit_import(b, "x", s.blob[i], cut, 0) == -1;
        T_EQ_INT(ratelimit_import(b, "x", s.blob[i], s.len[i], 0), 0);
    }
    T_OK(ok);
    for (i = 0; i < (int)(sizeof(badlen) / sizeof(badlen[0])); i++)
        T_OKF(ratelimit_import(b, "y", bad[i], badlen[i], 0) == -1, "bad %d",
              i);
    T_EQ_INT(ratelimit_import(b, "y", NULL, 4, 0), -1);
    T_EQ_INT(ratelimit_import(b, "", s.blob[0], s.len[0], 0), -1);
    /* random damage never crashes; what is accepted still decides */
    for (k = 0; k < 20000; k++) {
        i = (int)rng_below(s.n);
        memcpy(buf, s.blob[i], s.len[i]);
        buf[rng_below((int64_t)s.len[i])] ^=
            (unsigned char)(1 + rng_below(255));
        if (ratelimit_import(b, "z", buf, s.len[i], 0) == 0) {
            accepted++;
            ratelimit_hit(b, "z", R(10, 60 * SEC), 1, &wait);
            ratelimit_reserve(b, "z", R(100, 60 * SEC), 1, 1, &wait);
        }
    }
    T_OK(ratelimit_keys(b) <= 16);
    printf("corrupt: %d of 20000 damaged blobs still well-formed\n", accepted);
    ratelimit_free(a);
    ratelimit_free(b);
}

int
main(void)
{
    test_spec_example();
    test_boundaries();
    test_width_edges();
    test_property();
    test_rate_change();
    test_ring_growth();
    test_rate_check();
    test_bad_args();
    test_bucket_refill();
    test_bucket_settle();
    test_bucket_concurrent();
    test_evict_and_cap();
    test_persist();
    test_corrupt();
    return t_done();
}
