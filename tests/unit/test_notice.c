/* test_notice: the 429 wording, waits rounded up, windows spelled exactly. */
#include "core/notice.h"
#include "tests/t.h"

static void
test_wait(void)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1 s"},
        {1, "1 s"},
        {999, "1 s"},
        {1000, "1 s"},
        {1001, "2 s"},
        {5000, "5 s"},
        {42000, "42 s"},
        {41001, "42 s"},
        {119000, "119 s"},
        {119001, "2 min"},
        {120000, "2 min"},
        {120001, "3 min"},
        {300000, "5 min"},
        {3540000, "59 min"},
        {3540001, "1 h"},
        {3599500, "1 h"},
        {3600000, "1 h"},
        {3600001, "1 h 1 min"},
        {7500000, "2 h 5 min"},
        {7440001, "2 h 5 min"},
        {86340000, "23 h 59 min"},
        {86340001, "1 d"},
        {86400000, "1 d"},
        {86400001, "1 d 1 h"},
        {90000000, "1 d 1 h"},
        {3 * 86400000LL + 5 * 3600000LL, "3 d 5 h"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        notice_wait(buf, sizeof(buf), cases[i].ms);
        T_OKF(strcmp(buf, cases[i].want) == 0, "%lld ms: got \"%s\" want %s",
              (long long)cases[i].ms, buf, cases[i].want);
    }
}

static void
test_span(void)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {1000, "1 s"},       {20000, "20 s"},   {60000, "60 s"},
        {90000, "90 s"},     {120000, "2 min"}, {300000, "5 min"},
        {3600000, "hour"},   {7200000, "2 h"},  {86400000, "day"},
        {604800000, "7 d"},  {1500, "1500 ms"}, {150000, "150 s"},
        {5400000, "90 min"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        notice_span(buf, sizeof(buf), cases[i].ms);
        T_OKF(strcmp(buf, cases[i].want) == 0, "%lld ms: got \"%s\" want %s",
              (long long)cases[i].ms, buf, cases[i].want);
    }
}

static void
test_format(void)
{
    static const struct {
        enum admit_scope scope;
        int64_t n, w, used, wait;
        const char *want;
    } cases[] = {
        {ADMIT_USER, 30, 60000, 30, 42000,
         "429 — you have used 30 of 30 requests per 60 s;"
         " try again in 42 s."},
        {ADMIT_USER, 3, 20000, 3, 5000,
         "429 — you have used 3 of 3 requests per 20 s; try again in 5 s."},
        {ADMIT_CHAT, 120, 60000, 120, 999,
         "429 — this chat has used 120 of 120 requests per 60 s;"
         " try again in 1 s."},
        {ADMIT_GLOBAL, 1000, 60000, 1000, 59001,
         "429 — everyone together has used 1000 of 1000 requests per 60 s;"
         " try again in 60 s."},
        {ADMIT_USER_TOKENS, 200000, 86400000, 199500, 7500000,
         "429 — you have used your token budget (199500 of 200000 tokens"
         " per day); try again in 2 h 5 min."},
        {ADMIT_CHAT_TOKENS, 50000, 3600000, 50000, 300000,
         "429 — this chat has used its token budget (50000 of 50000 tokens"
         " per hour); try again in 5 min."},
        {ADMIT_FULL, 0, 0, 0, 1000,
         "429 — too many people are asking right now; try again in 1 s."},
    };
    char buf[NOTICE_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct admit_result r = {0};

        r.scope = cases[i].scope;
        r.rate.n = cases[i].n;
        r.rate.window_ms = cases[i].w;
        r.used = cases[i].used;
        r.wait_ms = cases[i].wait;
        T_OK(notice_format(buf, sizeof(buf), &r) > 0);
        T_EQ_STR(buf, cases[i].want);
        T_CONTAINS(buf, "429");
        T_CONTAINS(buf, "try again in ");
    }
    /* no notice for an admitted or banned request; a small buffer fails */
    {
        struct admit_result r = {0};

        r.scope = ADMIT_OK;
        T_EQ_INT(notice_format(buf, sizeof(buf), &r), -1);
        r.scope = ADMIT_BANNED;
        T_EQ_INT(notice_format(buf, sizeof(buf), &r), -1);
        r.scope = ADMIT_USER;
        r.rate.n = 3;
        r.rate.window_ms = 20000;
        T_EQ_INT(notice_format(buf, 10, &r), -1);
    }
    /* the longest possible notice fits NOTICE_MAX */
    {
        struct admit_result r = {0};

        r.scope = ADMIT_CHAT_TOKENS;
        r.rate.n = 1000000000000LL;
        r.rate.window_ms = 3650LL * 86400000 - 1;
        r.used = 4000000000000000000LL;
        r.wait_ms = 3650LL * 86400000;
        T_OK(notice_format(buf, sizeof(buf), &r) > 0);
    }
}

int
main(void)
{
    test_wait();
    test_span();
    test_format();
    return t_done();
}
