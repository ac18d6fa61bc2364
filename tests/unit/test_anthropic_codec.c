/* test_anthropic_codec: byte-exact messages API bodies, replies, errors. */
#include "llm/anthropic_codec.h"

#include <stdlib.h>

#include "tests/t.h"

#define N(a) (sizeof(a) / sizeof(*(a)))
#define U LLM_ROLE_USER
#define A LLM_ROLE_ASSISTANT

static void
test_build(void)
{
    static const struct llm_message plain[] = {{U, "hi"}};
    static const struct llm_message conv[] = {{U, "q1"}, {A, "a1"}, {U, "q2"}};
    static const struct llm_message lead[] = {
        {A, "welcome"}, {A, "again"}, {U, "q"}};
    static const struct llm_message runs[] = {
        {U, "one"}, {U, "two"}, {A, "x"}, {A, "y"}, {U, "three"}};
    static const struct llm_message only_a[] = {{A, "alone"}};
    static const struct llm_message ends_a[] = {{U, "q"}, {A, "prefill"}};
    static const struct llm_message esc[] = {
        {U, "say \"hi\"\\\n\t\x01/\xe4\xbd\xa0\xf0\x9f\x98\x80\xff"}};
    static const struct {
        const char *name;
        struct llm_request rq;
        const char *want; /* NULL: -1 */
    } cases[] = {
        {"plain",
         {"claude-3-5-haiku", NULL, plain, 1, 1024, 0},
         "{\"model\":\"claude-3-5-haiku\",\"max_tokens\":1024,\"messages\":[{"
         "\"role\":\"user\",\"content\":\"hi\"}]}"},
        {"system top level",
         {"c", "Be brief.", conv, 3, 5, 0},
         "{\"model\":\"c\",\"max_tokens\":5,\"system\":\"Be brief.\","
         "\"messages\":[{\"role\":\"user\",\"content\":\"q1\"},{\"role\":"
         "\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":"
         "\"q2\"}]}"},
        {"leading assistant dropped",
         {"c", NULL, lead, 3, 5, 0},
         "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}"},
        {"runs merged with a blank line",
         {"c", "", runs, 5, 5, 0},
         "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
         "\"content\":\"one\\n\\ntwo\"},{\"role\":\"assistant\",\"content\":"
         "\"x\\n\\ny\"},{\"role\":\"user\",\"content\":\"three\"}]}"},
        {"ending with assistant kept (prefill)",
         {"c", NULL, ends_a, 2, 5, 0},
         "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"},{\"role\":\"assistant\",\"content\":"
         "\"prefill\"}]}"},
        {"escaping",
         {"c", "s\"", esc, 1, 5, 0},
         "{\"model\":\"c\",\"max_tokens\":5,\"system\":\"s\\\"\",\"messages\":"
         "[{\"role\":\"user\",\"content\":\"say \\\"hi\\\"\\\\\\n\\t\\u0001/"
         "\xe4\xbd\xa0\xf0\x9f\x98\x80\xef\xbf\xbd\"}]}"},
        {"only assistant", {"c", NULL, only_a, 1, 5, 0}, NULL},
        {"no messages", {"c", NULL, plain, 0, 5, 0}, NULL},
        {"max_tokens required", {"c", NULL, plain, 1, 0, 0}, NULL},
        {"no model", {NULL, NULL, plain, 1, 5, 0}, NULL},
        {"stream", {"c", NULL, plain, 1, 5, 1}, NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct llm_body b;
        int rc = anthropic_build_request(&cases[i].rq, &b);
        if (cases[i].want == NULL) {
            T_OKF(rc == -1, "%s", cases[i].name);
            T_OKF(b.data == NULL, "%s", cases[i].name);
            continue;
        }
        T_OKF(rc == 0, "%s", cases[i].name);
        T_EQ_STR(b.data, cases[i].want);
        T_OKF(b.len == strlen(cases[i].want), "%s", cases[i].name);
        llm_body_release(&b);
    }
}

static void
test_headers(void)
{
    struct llm_headers h;
    char big[LLM_KEY_MAX + 1];

    T_EQ_INT(anthropic_build_headers(&h, "sk-ant-x"), 0);
    T_EQ_STR(h.lines[0], "x-api-key: sk-ant-x");
    T_EQ_STR(h.lines[1], "anthropic-version: 2023-06-01");
    T_EQ_STR(h.lines[2], "Content-Type: application/json");
    T_OK(h.lines[3] == NULL);
    T_EQ_INT(anthropic_build_headers(&h, ""), -1);
    T_EQ_INT(anthropic_build_headers(&h, "a\nb"), -1);
    T_EQ_INT(anthropic_build_headers(&h, "a\x7f"), -1);
    memset(big, 'k', LLM_KEY_MAX);
    big[LLM_KEY_MAX] = 0;
    T_EQ_INT(anthropic_build_headers(&h, big), 0);
    T_EQ_STR(h.lines[2], "Content-Type: application/json");
}

static void
test_reply(void)
{
    static const struct {
        const char *name;
        const char *body;
        int rc;
        const char *text, *finish, *id;
        int64_t pt, ct;
        enum errclass cls;
        const char *type;
    } cases[] = {
        {"fake's answer",
         "{\"id\":\"msg_fake3\",\"type\":\"message\",\"role\":\"assistant\","
         "\"model\":\"claude\",\"content\":[{\"type\":\"text\",\"text\":"
         "\"echo: h\\u00e9llo\"}],\"stop_reason\":\"end_turn\","
         "\"stop_sequence\":null,\"usage\":{\"input_tokens\":15,"
         "\"output_tokens\":5}}",
         0, "echo: h\xc3\xa9llo", "end_turn", "msg_fake3", 15, 5, 0, NULL},
        {"text blocks concatenated, others skipped",
         "{\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"},{\"type\":"
         "\"text\",\"text\":\"a\"},{\"type\":\"tool_use\",\"id\":\"t\"},{"
         "\"type\":\"text\",\"text\":\"b\"},{\"type\":\"text\",\"text\":5},"
         "7,null],\"stop_reason\":\"max_tokens\"}",
         0, "ab", "max_tokens", "", -1, -1, 0, NULL},
        {"empty content",
         "{\"content\":[],\"stop_reason\":\"end_turn\",\"usage\":{"
         "\"input_tokens\":3,\"output_tokens\":0}}",
         0, "", "end_turn", "", 3, 0, 0, NULL},
        {"no content", "{\"id\":\"msg\",\"type\":\"message\"}", -1, NULL, NULL,
         NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"content string", "{\"content\":\"hi\"}", -1, NULL, NULL, NULL, 0, 0,
         ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"truncated", "{\"id\":\"msg_fake3\",\"type\":\"message\",\"con", -1,
         NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"malformed", "{\"content\":[<html>]}", -1, NULL, NULL, NULL, 0, 0,
         ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"error with 200 (overloaded mid-stream)",
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
         "\"message\":\"Overloaded\"}}",
         -1, NULL, NULL, NULL, 0, 0, ERRCLASS_OVERLOADED, "overloaded_error"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct llm_reply r;
        struct llm_error_info e;
        int rc;

        memset(&e, 0, sizeof(e));
        rc =
            anthropic_parse_reply(cases[i].body, strlen(cases[i].body), &r, &e);
        T_OKF(rc == cases[i].rc, "%s: rc %d", cases[i].name, rc);
        if (rc == 0 && cases[i].rc == 0) {
            T_EQ_STR(r.text, cases[i].text);
            T_EQ_STR(r.finish_reason, cases[i].finish);
            T_EQ_STR(r.id, cases[i].id);
            T_OKF(r.prompt_tokens == cases[i].pt, "%s", cases[i].name);
            T_OKF(r.completion_tokens == cases[i].ct, "%s", cases[i].name);
        } else if (rc != 0) {
            T_OKF(e.cls == cases[i].cls, "%s: class %s", cases[i].name,
                  errclass_name(e.cls));
            T_EQ_STR(e.type, cases[i].type);
        }
        llm_reply_release(&r);
    }
}

#define AERR(t, m)                                                             \
    "{\"type\":\"error\",\"error\":{\"type\":\"" t "\",\"message\":\"" m "\"}" \
    "}"

static void
test_errors(void)
{
    static const struct {
        int status;
        const char *body;
        enum errclass cls;
        const char *type;
    } cases[] = {
        {400, AERR("invalid_request_error", "messages: roles must alternate"),
         ERRCLASS_BAD_REQUEST, "invalid_request_error"},
        {400,
         AERR("invalid_request_error",
              "prompt is too long: 210000 tokens > 200000 maximum"),
         ERRCLASS_CONTEXT_OVERFLOW, "invalid_request_error"},
        {400,
         AERR("invalid_request_error",
              "Your credit balance is too low to access the Anthropic API."),
         ERRCLASS_QUOTA, "invalid_request_error"},
        {401, AERR("authentication_error", "invalid x-api-key"), ERRCLASS_AUTH,
         "authentication_error"},
        {403, AERR("permission_error", "no"), ERRCLASS_FORBIDDEN,
         "permission_error"},
        {404, AERR("not_found_error", "model: x"), ERRCLASS_NOT_FOUND,
         "not_found_error"},
        {413, AERR("request_too_large", "Request exceeds the maximum size"),
         ERRCLASS_CONTEXT_OVERFLOW, "request_too_large"},
        {429, AERR("rate_limit_error", "This request would exceed"),
         ERRCLASS_RATE_LIMITED, "rate_limit_error"},
        {500, AERR("api_error", "Internal server error"), ERRCLASS_SERVER,
         "api_error"},
        {529, AERR("overloaded_error", "Overloaded"), ERRCLASS_OVERLOADED,
         "overloaded_error"},
        {402, AERR("billing_error", "pay"), ERRCLASS_QUOTA, "billing_error"},
        {504, AERR("timeout_error", "Request timed out"), ERRCLASS_TIMEOUT,
         "timeout_error"},
        {503, "upstream connect error", ERRCLASS_SERVER, ""},
        {529, "", ERRCLASS_OVERLOADED, ""},
        {429, "{\"type\":\"error\",\"error\":{\"type\":\"rate_lim",
         ERRCLASS_RATE_LIMITED, ""},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct llm_error_info e;
        struct llm_reply r;

        anthropic_parse_error(cases[i].status, cases[i].body,
                              strlen(cases[i].body), &e);
        T_OKF(e.cls == cases[i].cls, "case %zu (%d): got %s want %s", i,
              cases[i].status, errclass_name(e.cls),
              errclass_name(cases[i].cls));
        T_EQ_STR(e.type, cases[i].type);
        T_EQ_STR(e.code, "");
        T_EQ_INT(anthropic_parse_response(cases[i].status, cases[i].body,
                                          strlen(cases[i].body), &r, &e),
                 -1);
        T_OKF(e.cls == cases[i].cls, "case %zu via parse_response", i);
        llm_reply_release(&r);
    }
}

static void
test_bounds(void)
{
    struct llm_reply r;
    struct llm_error_info e;
    const char *pre = "{\"content\":[";
    size_t plen = strlen(pre), n = 0;
    /* two blocks of LLM_TEXT_MAX/2 + 1: over only once concatenated */
    size_t half = LLM_TEXT_MAX / 2 + 1;
    char *big = malloc(2 * half + 256);

    memcpy(big, pre, plen);
    n = plen;
    for (int b = 0; b < 2; b++) {
        static const char blk[] = "{\"type\":\"text\",\"text\":\"";
        memcpy(big + n, blk, sizeof(blk) - 1);
        n += sizeof(blk) - 1;
        memset(big + n, 'a', half);
        n += half;
        memcpy(big + n, b ? "\"}" : "\"},", b ? 2 : 3);
        n += b ? 2 : 3;
    }
    memcpy(big + n, "]}", 2);
    n += 2;
    T_EQ_INT(anthropic_parse_reply(big, n, &r, &e), -1);
    T_CONTAINS(e.message, "LLM_TEXT_MAX");
    free(big);

    {
        char deep[200];
        size_t k = 0;
        deep[k++] = '{';
        memcpy(deep + k, "\"content\":", 10);
        k += 10;
        for (int d = 0; d < LLM_JSON_DEPTH + 2; d++)
            deep[k++] = '[';
        for (int d = 0; d < LLM_JSON_DEPTH + 2; d++)
            deep[k++] = ']';
        deep[k++] = '}';
        T_EQ_INT(anthropic_parse_reply(deep, k, &r, &e), -1);
        T_EQ_STR(e.type, LLM_BAD_REPLY);
    }
}

int
main(void)
{
    test_build();
    test_headers();
    test_reply();
    test_errors();
    test_bounds();
    return t_done();
}
