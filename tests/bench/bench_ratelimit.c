/* bench_ratelimit: limiter ns per decision and bytes per tracked key. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/ratelimit.h"

#define KEYS 100000
#define DECISIONS 5000000

static char keys[KEYS][24];

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t
heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks;
}

static void
row(const char *what, double v, const char *unit, const char *target)
{
    printf("| %s | %.0f %s | %s |\n", what, v, unit, target);
}

/* ns per ratelimit_hit; the clock advances 1 ms every `per_ms` calls. */
static double
bench_hit(struct ratelimit *rl, struct rate r, int nkeys, int per_ms,
          long *admitted)
{
    int64_t t0, now = 1000000, wait;
    long i, ok = 0;
    uint32_t *pick = malloc(sizeof(*pick) * DECISIONS);

    if (pick == NULL)
        return -1;
    for (i = 0; i < DECISIONS; i++)
        pick[i] = nkeys > 1 ? (uint32_t)(rng() % (uint64_t)nkeys) : 0;
    t0 = now_ns();
    for (i = 0; i < DECISIONS; i++) {
        if (i % per_ms == 0)
            now++;
        ok += ratelimit_hit(rl, keys[pick[i]], r, now, &wait) == 1;
    }
    t0 = now_ns() - t0;
    free(pick);
    *admitted = ok;
    return (double)t0 / DECISIONS;
}

static double
bench_reserve(struct ratelimit *rl, struct rate b, int nkeys)
{
    int64_t t0, now = 1000000, wait;
    long i;
    uint32_t *pick = malloc(sizeof(*pick) * DECISIONS);

    if (pick == NULL)
        return -1;
    for (i = 0; i < DECISIONS; i++)
        pick[i] = (uint32_t)(rng() % (uint64_t)nkeys);
    t0 = now_ns();
    for (i = 0; i < DECISIONS; i++) {
        if (i % 64 == 0)
            now++;
        if (ratelimit_reserve(rl, keys[pick[i]], b, 500, now, &wait) == 1)
            ratelimit_settle(rl, keys[pick[i]], b, 500, 300, now);
    }
    t0 = now_ns() - t0;
    free(pick);
    return (double)t0 / DECISIONS;
}

/* Bytes per key with `hits` requests admitted per key under r. */
static void
bench_bytes(const char *what, struct rate r, int nkeys, int hits)
{
    struct ratelimit_stats st;
    struct ratelimit *rl;
    size_t before = heap_used();
    int64_t wait;
    int i, h;

    rl = ratelimit_new(KEYS + 1);
    if (rl == NULL)
        return;
    for (i = 0; i < nkeys; i++)
        for (h = 0; h < hits; h++)
            ratelimit_hit(rl, keys[i], r, 1000 + h, &wait);
    ratelimit_stats(rl, &st);
    printf(
        "| bytes per key, %s: requested / heap | %.0f / %.0f B | < 100 B |\n",
        what, (double)st.bytes / (double)st.keys,
        (double)(heap_used() - before) / (double)st.keys);
    ratelimit_free(rl);
}

int
main(void)
{
    struct ratelimit *rl;
    struct rate user = {30, 60000};
    long admitted;
    double ns;
    int i;

    for (i = 0; i < KEYS; i++)
        snprintf(keys[i], sizeof(keys[i]), "u:telegram:%d", 100000000 + i);

    printf("| what | measured | target |\n|---|---|---|\n");

    rl = ratelimit_new(KEYS + 1);
    if (rl == NULL)
        return 1;
    /* warm: every key tracked before timing */
    bench_hit(rl, user, KEYS, 1000, &admitted);
    ns = bench_hit(rl, user, KEYS, 50, &admitted);
    row("hit, 100k distinct keys (30/60s, 1 ms per 50 decisions)", ns,
        "ns/decision", "< 200 ns");
    ratelimit_free(rl);

    rl = ratelimit_new(KEYS + 1);
    ns = bench_hit(rl, user, 1, 1, &admitted);
    row("hit, one hot key (30/60s, flood: almost all refused)", ns,
        "ns/decision", "< 200 ns");
    ratelimit_free(rl);

    rl = ratelimit_new(KEYS + 1);
    {
        struct rate big = {10000, 60000};
        ns = bench_hit(rl, big, 1, 1, &admitted);
        row("hit, one hot key (10000/60s, ring full and turning)", ns,
            "ns/decision", "< 200 ns");
    }
    ratelimit_free(rl);

    rl = ratelimit_new(KEYS + 1);
    {
        struct rate budget = {200000, 86400000};
        bench_reserve(rl, budget, KEYS);
        ns = bench_reserve(rl, budget, KEYS);
        row("reserve + settle, 100k distinct budgets (200000/1d)", ns,
            "ns/pair", "< 200 ns");
    }
    ratelimit_free(rl);

    bench_bytes("30/60s, 1 request", user, KEYS, 1);
    bench_bytes("30/60s, 5 requests", user, KEYS, 5);
    bench_bytes("30/60s, 30 requests (full)", user, KEYS, 30);
    {
        struct rate day = {30, 86400000};
        bench_bytes("30/1d, 30 requests (full)", day, KEYS, 30);
    }
    return 0;
}
