/* test_codec: the token estimator, UTF-8 cleaning and error helpers. */
#include "llm/codec.h"

#include <stdlib.h>

#include "tests/t.h"

static void
test_estimate(void)
{
    /* reference counts are what cl100k/o200k give (or fewer); the
     * estimate must be >= them and within ~2x for ordinary text */
    static const struct {
        const char *text;
        int64_t want;     /* exact value of the heuristic */
        int64_t real_min; /* a real tokenizer's count: never below */
    } cases[] = {
        {"", 0, 0},
        {"a", 1, 1},
        {"abc", 1, 1},
        {"abcd", 2, 1},
        {"Hello, world!", 5, 4},
        {"The quick brown fox jumps over the lazy dog.", 15, 10},
        {"1234567890", 4, 4},
        /* 2-byte: Cyrillic, 1 per character */
        {"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 6, 2}, /* Привет */
        /* 3-byte CJK: 3/2 per character; 你好世界 */
        {"\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c", 6, 4},
        /* 4-byte emoji: 3 each; 😀😀 */
        {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 6, 2},
        /* invalid bytes: 1 each */
        {"\xff\xfe", 2, 0},
        /* truncated 3-byte sequence: 2 invalid bytes */
        {"\xe4\xbd", 2, 0},
        /* overlong and surrogate: invalid bytes */
        {"\xc0\xaf", 2, 0},
        {"\xed\xa0\x80", 3, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int64_t got = llm_estimate_tokens(cases[i].text, strlen(cases[i].text));
        T_OKF(got == cases[i].want, "case %zu: got %lld want %lld", i,
              (long long)got, (long long)cases[i].want);
        T_OKF(got >= cases[i].real_min, "case %zu underestimates", i);
    }
    T_EQ_INT(llm_estimate_tokens(NULL, 10), 0);

    /* long texts: 4000 ASCII bytes → 1334; 1000 CJK chars → 1500 */
    {
        char *big = malloc(3001);
        memset(big, 'x', 3000);
        big[3000] = 0;
        T_EQ_INT(llm_estimate_tokens(big, 3000), 1000);
        for (int k = 0; k < 1000; k++)
            memcpy(big + 3 * k, "\xe4\xbd\xa0", 3);
        T_EQ_INT(llm_estimate_tokens(big, 3000), 1500);
        free(big);
    }
}

static void
test_estimate_request(void)
{
    struct llm_message m[] = {{LLM_ROLE_USER, "abc"},
                              {LLM_ROLE_ASSISTANT, "abcdef"}};
    struct llm_request rq = {"m", "sys", m, 2, 10, 0};

    /* 3 + (4 + 1) system + (4 + 1) + (4 + 2) */
    T_EQ_INT(llm_estimate_request(&rq), 19);
    rq.system = NULL;
    T_EQ_INT(llm_estimate_request(&rq), 14);
    rq.nmessages = 0;
    T_EQ_INT(llm_estimate_request(&rq), 3);
    T_EQ_INT(llm_estimate_request(NULL), 0);
}

static void
test_clean(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain", 5, "plain"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"a\xff"
         "b",
         3,
         "a\xef\xbf\xbd"
         "b"},
        {"\xe4\xbd", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
        {"a\0b", 3,
         "a\xef\xbf\xbd"
         "b"},
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
        {"\xf4\x90\x80\x80", 4,
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t n = 0;
        char *got = llm_utf8_clean(cases[i].in, cases[i].len, &n);
        T_EQ_STR(got, cases[i].want);
        T_EQ_INT(n, strlen(cases[i].want));
        free(got);
    }
}

static void
test_errors(void)
{
    struct llm_error_info e;
    char longmsg[1000];

    /* the phrase past the 256-byte cut still classifies */
    memset(longmsg, 'x', sizeof(longmsg));
    memcpy(longmsg + 600, "prompt is too long", 18);
    longmsg[sizeof(longmsg) - 1] = 0;
    llm_error_set(&e, 400, "invalid_request_error", NULL, longmsg);
    T_EQ_INT(e.cls, ERRCLASS_CONTEXT_OVERFLOW);
    T_EQ_INT(strlen(e.message), sizeof(e.message) - 1);

    /* cut at a UTF-8 boundary */
    for (size_t i = 0; i + 2 < sizeof(longmsg); i += 2)
        memcpy(longmsg + i, "\xc3\xa9", 2);
    longmsg[sizeof(longmsg) - 2] = 0;
    llm_error_set(&e, 500, NULL, NULL, longmsg);
    T_EQ_INT(strlen(e.message) % 2, 0);
    T_EQ_INT(e.cls, ERRCLASS_SERVER);

    llm_error_bad_reply(&e, 200, "why");
    T_EQ_STR(e.type, LLM_BAD_REPLY);
    T_EQ_INT(e.cls, ERRCLASS_SERVER);

    {
        struct llm_reply r;
        memset(&r, 0, sizeof(r));
        llm_reply_release(&r);
        llm_reply_release(NULL);
        T_EQ_INT(r.prompt_tokens, -1);
        llm_body_release(NULL);
    }
}

int
main(void)
{
    test_estimate();
    test_estimate_request();
    test_clean();
    test_errors();
    return t_done();
}
