/* test_history: prompt history selection and the token estimate. */
#include "core/history.h"
#include "tests/t.h"

static void
test_select(void)
{
    /* newest first */
    static const struct history_msg m[] = {
        {"assistant", "a3", 10},  {"user", "u3", 10},
        {"assistant", "a2", 30},  {"user", "u2", 5},
        {"assistant", "a1", 100}, {"user", "u1", 1},
    };
    static const struct {
        size_t n;
        int max_messages;
        int64_t max_tokens;
        size_t want;
    } cases[] = {
        {6, 20, 6000, 6}, /* everything fits */
        {6, 4, 6000, 4},  /* message cap */
        {6, 20, 55, 4},   /* 10+10+30+5 = 55 exactly */
        {6, 20, 54, 3},   /* the 4th does not fit */
        {6, 20, 9, 0},    /* not even the newest */
        {6, 20, 155, 5},  /* a1 (100) fits: 155; u1 would make 156 */
        {6, 20, 156, 6},  {0, 20, 6000, 0}, /* a new conversation */
        {6, 0, 6000, 0},  {6, 20, 0, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = history_select(m, cases[i].n, cases[i].max_messages,
                                    cases[i].max_tokens);

        T_OKF(got == cases[i].want, "case %zu: got %zu want %zu", i, got,
              cases[i].want);
    }
}

static void
test_estimate(void)
{
    /* never below the text's size over 4 bytes + framing; empty = framing */
    T_OK(history_estimate_tokens("", 0) >= 1);
    T_OK(history_estimate_tokens("hello world, how are you?", 25) >= 25 / 4);
    /* CJK: about one token per character at least */
    T_OK(history_estimate_tokens("\xe4\xbd\xa0\xe5\xa5\xbd", 6) >= 2);
    /* monotonic in the length */
    T_OK(history_estimate_tokens("aaaaaaaaaa", 10) >=
         history_estimate_tokens("aaaaa", 5));
}

int
main(void)
{
    test_select();
    test_estimate();
    return t_done();
}
