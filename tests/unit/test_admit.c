/* test_admit: admission order, exact windows and waits, budgets, notices. */
#include "core/admit.h"
#include "core/notice.h"
#include "tests/t.h"

#include <stdlib.h>

static struct rate
R(int64_t n, int64_t w) {
    struct rate r = {n, w};
    return r;
}

static struct admit_request
req(const char *user, const char *chat)
{
    struct admit_request rq;

    memset(&rq, 0, sizeof(rq));
    rq.platform = "telegram";
    rq.user = user;
    rq.chat = chat;
    return rq;
}

/* SPEC §4: 3/20s, requests at 0, 5, 10, 15 s. */
static void
test_spec_example(void)
{
    static const struct {
        int64_t t;
        int admitted;
        int64_t wait;
    } steps[] = {
        {0, 1, 0},     {5000, 1, 0},  {10000, 1, 0},    {15000, 0, 5000},
        {19999, 0, 1}, {20000, 1, 0}, {20001, 0, 4999}, {25000, 1, 0},
    };
    struct admit *a = admit_new(1000);
    struct admit_request rq = req("11", "-100");
    struct admit_result res;
    char text[NOTICE_MAX];

    rq.lim.user = R(3, 20000);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int got = admit_take(a, &rq, 0, steps[i].t, &res);

        T_OKF(got == steps[i].admitted, "t=%lld", (long long)steps[i].t);
        T_OKF(res.wait_ms == steps[i].wait, "t=%lld wait %lld want %lld",
              (long long)steps[i].t, (long long)res.wait_ms,
              (long long)steps[i].wait);
        if (steps[i].t == 15000) {
            T_EQ_INT(res.scope, ADMIT_USER);
            T_EQ_INT(res.used, 3);
            T_OK(notice_format(text, sizeof(text), &res) > 0);
            T_CONTAINS(text, "try again in 5 s");
            T_CONTAINS(text, "429");
            T_CONTAINS(text, "3 of 3 requests per 20 s");
        }
    }
    admit_free(a);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/*
 * Property: over random arrival sequences against user N/W and chat
 * M/W2 together, (1) at most N admitted per user and M per chat in any
 * window, (2) every refusal's wait is exact: admit_check at now + wait
 * passes, at now + wait - 1 does not (admit_check records nothing).
 */
static void
test_property(void)
{
    int violations = 0, inexact = 0, admitted_total = 0;

    for (int round = 0; round < 200; round++) {
        struct admit *a = admit_new(1000);
        int64_t n = 1 + (int64_t)(rng() % 6),
                w = 1000 + (int64_t)(rng() % 30000);
        int64_t m = 1 + (int64_t)(rng() % 10),
                w2 = 1000 + (int64_t)(rng() % 30000);
        int64_t t = 0, times[400];
        int k = 0;

        for (int i = 0; i < 400; i++) {
            struct admit_request rq = req(rng() % 2 ? "u1" : "u2", "c");
            struct admit_result res, probe;

            rq.lim.user = R(n, w);
            rq.lim.chat = R(m, w2);
            t += (int64_t)(rng() % 3000);
            if (admit_take(a, &rq, 0, t, &res)) {
                times[k++] = t;
                admitted_total++;
                continue;
            }
            if (admit_check(a, &rq, t + res.wait_ms - 1, &probe) != 0)
                inexact++;
            if (admit_check(a, &rq, t + res.wait_ms, &probe) != 1)
                inexact++;
        }
        /* the chat window sees every admitted request */
        for (int i = 0; i < k; i++) {
            int in = 0;

            for (int j = i; j < k && times[j] < times[i] + w2; j++)
                in++;
            if (in > m)
                violations++;
        }
        admit_free(a);
    }
    T_EQ_INT(violations, 0);
    T_EQ_INT(inexact, 0);
    T_OK(admitted_total > 1000);
}

/* ban -> admin -> user -> chat -> global -> budgets; refusals record nothing */
static void
test_order(void)
{
    struct admit *a = admit_new(1000);
    struct admit_request rq = req("11", "-100");
    struct admit_result res;
    struct ratelimit_usage u;

    rq.lim.user = R(2, 60000);
    rq.lim.chat = R(1, 60000);
    rq.lim.global = R(100, 60000);

    rq.banned = 1;
    rq.admin = 1;
    T_EQ_INT(admit_take(a, &rq, 0, 0, &res), 0);
    T_EQ_INT(res.scope, ADMIT_BANNED);
    T_EQ_INT(admit_notice(a, &rq, CONFIG_NOTICE_ALWAYS, &res, 0), 0);
    rq.banned = 0;

    /* an admin is never limited, and leaves no trace */
    for (int i = 0; i < 10; i++)
        T_EQ_INT(admit_take(a, &rq, 1000000, i, &res), 1);
    T_EQ_INT(admit_peek(a, &rq, ADMIT_CHAT, 10, &u), 0);
    T_EQ_INT(u.used, 0);
    rq.admin = 0;

    T_EQ_INT(admit_take(a, &rq, 0, 100, &res), 1);
    /* the chat is full now; the user has room: refused by the chat ... */
    T_EQ_INT(admit_take(a, &rq, 0, 200, &res), 0);
    T_EQ_INT(res.scope, ADMIT_CHAT);
    T_EQ_INT(res.wait_ms, 59900);
    /* ... and the refusal used none of the user's window */
    T_EQ_INT(admit_peek(a, &rq, ADMIT_USER, 300, &u), 0);
    T_EQ_INT(u.used, 1);
    T_EQ_INT(admit_peek(a, &rq, ADMIT_GLOBAL, 300, &u), 0);
    T_EQ_INT(u.used, 1);

    /* both refuse: the notice names the one with the longest wait */
    {
        struct admit_request r2 = req("11", "-200");

        r2.lim = rq.lim;
        r2.lim.chat = R(5, 60000);
        T_EQ_INT(admit_take(a, &r2, 0, 30000, &res), 1); /* user 2 of 2 */
        r2.lim.chat = R(1, 10000);
        T_EQ_INT(admit_take(a, &r2, 0, 30001, &res), 0);
        /* user frees at 60100, chat -200 at 40000: the user is binding */
        T_EQ_INT(res.scope, ADMIT_USER);
        T_EQ_INT(res.wait_ms, 60100 - 30001);
    }

    /* a global limit, for everyone together */
    {
        struct admit *g = admit_new(1000);

        for (int i = 0; i < 5; i++) {
            char user[16];
            struct admit_request r3;

            snprintf(user, sizeof(user), "u%d", i);
            r3 = req(user, user);
            r3.lim.global = R(3, 1000);
            T_EQ_INT(admit_take(g, &r3, 0, i, &res), i < 3);
            if (i >= 3) {
                T_EQ_INT(res.scope, ADMIT_GLOBAL);
                T_EQ_INT(res.wait_ms, 1000 - i);
            }
        }
        admit_free(g);
    }
    admit_free(a);
}

/* Issue 3: 50 concurrent requests against a budget that fits 10. */
static void
test_budget(void)
{
    struct admit *a = admit_new(1000);
    struct admit_request rq = req("11", "-100");
    struct admit_result res;
    struct ratelimit_usage u;
    const int64_t est = 1000 + 1024; /* prompt + max_output_tokens */
    int admitted = 0;

    rq.lim.user_tokens = R(10 * est, 86400000);
    for (int i = 0; i < 50; i++) {
        if (admit_take(a, &rq, est, 1000, &res))
            admitted++;
        else
            T_EQ_INT(res.scope, ADMIT_USER_TOKENS);
    }
    T_EQ_INT(admitted, 10);
    /* each used a bit more than estimated: charged at most one estimate
     * over the budget in total (here 10 x 150 = 1500 < 2024) */
    for (int i = 0; i < admitted; i++)
        admit_settle(a, &rq, est, est + 150, 1000);
    T_EQ_INT(admit_peek(a, &rq, ADMIT_USER_TOKENS, 1000, &u), 0);
    T_OK(u.used <= 10 * est + est);
    T_EQ_INT(u.used, 10 * est + 1500);
    /* the debt makes the next request wait longer */
    T_EQ_INT(admit_take(a, &rq, est, 1000, &res), 0);
    T_OK(res.wait_ms > 0);

    /* a refund: actual below the estimate gives tokens back */
    {
        struct admit_request r2 = req("12", "-100");

        r2.lim.user_tokens = R(3000, 60000);
        T_EQ_INT(admit_take(a, &r2, 2000, 0, &res), 1);
        T_EQ_INT(admit_take(a, &r2, 2000, 0, &res), 0);
        admit_settle(a, &r2, 2000, 500, 0);
        T_EQ_INT(admit_take(a, &r2, 2000, 0, &res), 1);
    }
    /* chat budget, and a request refused by it records nothing elsewhere */
    {
        struct admit_request r3 = req("13", "-300");

        r3.lim.user = R(10, 60000);
        r3.lim.chat_tokens = R(100, 60000);
        T_EQ_INT(admit_take(a, &r3, 100, 0, &res), 1);
        T_EQ_INT(admit_take(a, &r3, 100, 0, &res), 0);
        T_EQ_INT(res.scope, ADMIT_CHAT_TOKENS);
        T_EQ_INT(res.wait_ms, 60000);
        T_EQ_INT(admit_peek(a, &r3, ADMIT_USER, 0, &u), 0);
        T_EQ_INT(u.used, 1);
    }
    admit_free(a);
}

/* notice = once: one notice per user + chat per window, however many. */
static void
test_notice_once(void)
{
    struct admit *a = admit_new(1000);
    struct admit_request rq = req("11", "-100");
    struct admit_result res;
    int notices = 0, asked = 0;

    rq.lim.user = R(30, 60000);
    for (int i = 0; i < 10000; i++) {
        int64_t t = i * 5; /* 10,000 messages in 50 s: one window */

        if (admit_take(a, &rq, 0, t, &res)) {
            asked++;
            continue;
        }
        notices += admit_notice(a, &rq, CONFIG_NOTICE_ONCE, &res, t);
    }
    T_EQ_INT(asked, 30);
    T_EQ_INT(notices, 1);
    /* another chat: its own notice; the next window: a new one */
    {
        struct admit_request r2 = req("11", "-200");

        r2.lim = rq.lim;
        T_EQ_INT(admit_take(a, &r2, 0, 50000, &res), 0);
        T_EQ_INT(admit_notice(a, &r2, CONFIG_NOTICE_ONCE, &res, 50000), 1);
    }
    T_EQ_INT(admit_take(a, &rq, 0, 120000, &res), 1);
    for (int i = 0; i < 29; i++)
        admit_take(a, &rq, 0, 120001, &res);
    T_EQ_INT(admit_take(a, &rq, 0, 120002, &res), 0);
    T_EQ_INT(admit_notice(a, &rq, CONFIG_NOTICE_ONCE, &res, 120002), 1);
    T_EQ_INT(admit_notice(a, &rq, CONFIG_NOTICE_ONCE, &res, 120003), 0);
    T_EQ_INT(admit_notice(a, &rq, CONFIG_NOTICE_ALWAYS, &res, 120004), 1);
    T_EQ_INT(admit_notice(a, &rq, CONFIG_NOTICE_OFF, &res, 120005), 0);
    admit_free(a);
    admit_free(NULL);
}

static void
test_keys(void)
{
    struct admit_request rq = req("U033", "C1");
    char buf[300];

    T_EQ_INT(admit_key(buf, sizeof(buf), 'u', &rq), 0);
    T_EQ_STR(buf, "u:telegram:U033");
    T_EQ_INT(admit_key(buf, sizeof(buf), 'c', &rq), 0);
    T_EQ_STR(buf, "c:telegram:C1");
    T_EQ_INT(admit_key(buf, sizeof(buf), 'g', &rq), 0);
    T_EQ_STR(buf, "g");
    T_EQ_INT(admit_key(buf, sizeof(buf), 'n', &rq), 0);
    T_EQ_STR(buf, "n:telegram:C1:U033");
    T_EQ_INT(admit_key(buf, 5, 'u', &rq), -1);
    T_EQ_INT(admit_key(buf, sizeof(buf), 'x', &rq), -1);
}

int
main(void)
{
    test_spec_example();
    test_property();
    test_order();
    test_budget();
    test_notice_once();
    test_keys();
    return t_done();
}
