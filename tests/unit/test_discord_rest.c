/* test_discord_rest: REST bucket decisions, table-driven with a fixed clock:
 * unknown buckets, Remaining/Reset-After, shared buckets per major, 429s
 * (bucket and global), the 50/s global limit, bounds. */
#include "connectors/discord_rest.h"
#include "tests/t.h"

#include <stdio.h>

enum op { ACQ, DONE, CANCEL, END };

struct step {
    enum op op;
    const char *route;
    const char *major;
    int64_t now;
    int status;
    /* headers: limit remaining reset_after bucket global scope retry_after */
    const char *h[7];
    int64_t body_retry; /* 429 body retry_after ms, -1 absent */
    int body_global;
    int64_t want; /* ACQ: 0 go / wait; DONE: the wait returned */
};

#define MSG "POST /channels/messages"
#define TYP "POST /channels/typing"
#define NOH                                                                    \
    {                                                                          \
        NULL, NULL, NULL, NULL, NULL, NULL, NULL                               \
    }
#define H(l, r, ra, b)                                                         \
    {                                                                          \
        l, r, ra, b, NULL, NULL, NULL                                          \
    }

static void
run(const char *name, const struct step *steps)
{
    struct discord_rest *r = discord_rest_new();

    for (int i = 0; steps[i].op != END; i++) {
        const struct step *s = &steps[i];
        struct discord_rest_headers h = {s->h[0], s->h[1], s->h[2], s->h[3],
                                         s->h[4], s->h[5], s->h[6]};
        int64_t got = 0;

        if (s->op == ACQ)
            got = discord_rest_acquire(r, s->route, s->major, s->now);
        else if (s->op == DONE)
            got = discord_rest_done(r, s->route, s->major, s->status, &h,
                                    s->body_retry, s->body_global, s->now);
        else
            discord_rest_cancel(r, s->route, s->major);
        T_OKF(got == s->want, "%s step %d: got %lld want %lld", name, i,
              (long long)got, (long long)s->want);
    }
    discord_rest_free(r);
}

static void
test_buckets(void)
{
    static const struct step unknown[] = {
        /* bucket unknown: one in flight per (route, major) */
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "1", 1, 0, NOH, -1, 0, DISCORD_REST_WAIT_INFLIGHT},
        {ACQ, MSG, "2", 1, 0, NOH, -1, 0, 0}, /* another channel */
        /* the answer teaches the bucket: 5 per 5 s, 4 left */
        {DONE, MSG, "1", 100, 200, H("5", "4", "5", "b1"), -1, 0, 0},
        {ACQ, MSG, "1", 100, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "1", 100, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "1", 100, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "1", 100, 0, NOH, -1, 0, 0},
        /* 4 in flight = remaining: the fifth waits for the reset */
        {ACQ, MSG, "1", 200, 0, NOH, -1, 0, 4900},
        {DONE, MSG, "1", 300, 200, H("5", "3", "4.8", "b1"), -1, 0, 0},
        {DONE, MSG, "1", 310, 200, H("5", "1", "4.79", "b1"), -1, 0, 0},
        /* an out-of-order reply with more remaining does not raise it */
        {DONE, MSG, "1", 320, 200, H("5", "2", "4.78", "b1"), -1, 0, 0},
        {DONE, MSG, "1", 330, 200, H("5", "0", "4.77", "b1"), -1, 0, 0},
        {ACQ, MSG, "1", 400, 0, NOH, -1, 0, 4700},
        {ACQ, MSG, "1", 5099, 0, NOH, -1, 0, 1},
        /* after the reset: limit again, the first reply sets the window */
        {ACQ, MSG, "1", 5100, 0, NOH, -1, 0, 0},
        {DONE, MSG, "1", 5150, 200, H("5", "4", "5", "b1"), -1, 0, 0},
        {ACQ, MSG, "1", 5150, 0, NOH, -1, 0, 0},
        /* channel 2's first request is still on the route's own key */
        {DONE, MSG, "2", 5200, 200, H("5", "4", "5", "b1"), -1, 0, 0},
        {ACQ, MSG, "2", 5200, 0, NOH, -1, 0, 0},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };
    /* the bucket is shared per major: channel 3 has its own 5 */
    static const struct step majors[] = {
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        {DONE, MSG, "1", 10, 200, H("1", "0", "2", "b"), -1, 0, 0},
        {ACQ, MSG, "1", 10, 0, NOH, -1, 0, 2000},
        {ACQ, MSG, "3", 10, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "3", 11, 0, NOH, -1, 0, DISCORD_REST_WAIT_INFLIGHT},
        /* a network failure frees the slot */
        {CANCEL, MSG, "3", 12, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "3", 12, 0, NOH, -1, 0, 0},
        /* typing is another route with its own (unknown) bucket */
        {ACQ, TYP, "1", 13, 0, NOH, -1, 0, 0},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };
    /* replies without rate-limit headers keep the route unknown */
    static const struct step noheaders[] = {
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        {DONE, MSG, "1", 10, 500, NOH, -1, 0, 0},
        {ACQ, MSG, "1", 10, 0, NOH, -1, 0, 0},
        {ACQ, MSG, "1", 10, 0, NOH, -1, 0, DISCORD_REST_WAIT_INFLIGHT},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };

    run("unknown bucket", unknown);
    run("majors", majors);
    run("no headers", noheaders);
}

static void
test_429(void)
{
    static const struct step bucket429[] = {
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        /* body retry_after 1.5 s, Retry-After header 2 s: the longer */
        {DONE,
         MSG,
         "1",
         100,
         429,
         {"5", "0", "1.5", "b", NULL, "user", "2"},
         1500,
         0,
         2000},
        {ACQ, MSG, "1", 100, 0, NOH, -1, 0, 2000},
        {ACQ, MSG, "2", 100, 0, NOH, -1, 0, 0}, /* other channels go on */
        {ACQ, MSG, "1", 2100, 0, NOH, -1, 0, 0},
        /* a 429 with no wait at all: a second */
        {DONE, MSG, "1", 2200, 429, NOH, -1, 0, 1000},
        {ACQ, MSG, "1", 2200, 0, NOH, -1, 0, 1000},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };
    static const struct step global_hdr[] = {
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        {DONE,
         MSG,
         "1",
         10,
         429,
         {NULL, NULL, NULL, NULL, "true", NULL, "3"},
         2500,
         0,
         3000},
        /* every route pauses */
        {ACQ, MSG, "2", 20, 0, NOH, -1, 0, 2990},
        {ACQ, TYP, "9", 1010, 0, NOH, -1, 0, 2000},
        {ACQ, MSG, "1", 3010, 0, NOH, -1, 0, 0},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };
    static const struct step global_scope[] = {
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        {DONE,
         MSG,
         "1",
         10,
         429,
         {NULL, NULL, NULL, NULL, NULL, "global", NULL},
         700,
         0,
         700},
        {ACQ, TYP, "2", 10, 0, NOH, -1, 0, 700},
        {ACQ, TYP, "2", 710, 0, NOH, -1, 0, 0},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };
    static const struct step global_body[] = {
        {ACQ, MSG, "1", 0, 0, NOH, -1, 0, 0},
        {DONE, MSG, "1", 10, 429, NOH, 1234, 1, 1234},
        {ACQ, TYP, "2", 10, 0, NOH, -1, 0, 1234},
        {END, NULL, NULL, 0, 0, NOH, 0, 0, 0},
    };

    run("bucket 429", bucket429);
    run("global 429 header", global_hdr);
    run("global 429 scope", global_scope);
    run("global 429 body", global_body);
}

static void
test_global_rate(void)
{
    struct discord_rest *r = discord_rest_new();
    char major[16];
    int went = 0;

    /* 60 requests on 60 channels at t = 0..59: 50 go, then 1 s after the
     * first the next one may */
    for (int i = 0; i < 60; i++) {
        snprintf(major, sizeof(major), "%d", i);
        if (discord_rest_acquire(r, MSG, major, i) == 0)
            went++;
    }
    T_EQ_INT(went, 50);
    T_EQ_INT(discord_rest_acquire(r, MSG, "x", 100), 900);
    T_EQ_INT(discord_rest_acquire(r, MSG, "x", 999), 1);
    T_EQ_INT(discord_rest_acquire(r, MSG, "x", 1000), 0);
    T_EQ_INT(discord_rest_acquire(r, MSG, "y", 1000), 1);
    discord_rest_free(r);
}

static void
test_bounds(void)
{
    struct discord_rest *r = discord_rest_new();
    char major[16];
    int full = 0;

    /* keys in flight cannot be evicted: the table says "full" (-1) */
    for (int i = 0; i < DISCORD_REST_KEYS_MAX + 10; i++) {
        int64_t now = (int64_t)i * 100; /* under the global rate */

        snprintf(major, sizeof(major), "%d", i);
        if (discord_rest_acquire(r, MSG, major, now) == -1)
            full++;
    }
    T_EQ_INT(full, 10);
    T_EQ_INT(discord_rest_keys(r), DISCORD_REST_KEYS_MAX);
    /* idle keys are evicted for new ones */
    for (int i = 0; i < 100; i++) {
        snprintf(major, sizeof(major), "%d", i);
        discord_rest_cancel(r, MSG, major);
    }
    T_EQ_INT(discord_rest_acquire(r, MSG, "new", 10000000), 0);
    T_EQ_INT(discord_rest_keys(r), DISCORD_REST_KEYS_MAX);
    T_EQ_INT(discord_rest_global_until(r), 0);
    discord_rest_free(r);
    discord_rest_free(NULL);
}

int
main(void)
{
    test_buckets();
    test_429();
    test_global_rate();
    test_bounds();
    return t_done();
}
