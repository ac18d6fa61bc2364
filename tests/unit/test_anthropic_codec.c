/* test_anthropic_codec: byte-exact messages API bodies, replies, errors. */
#include "llm/anthropic_codec.h"

#include <stdlib.h>

#include "llm/sse.h"
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
        {"stream",
         {"c", NULL, plain, 1, 5, 1},
         "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":"
         "\"user\",\"content\":\"hi\"}],\"stream\":true}"},
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

/* ---- streams ---- */

struct dec {
    struct llm_stream s;
    struct llm_error_info err;
    enum llm_stream_status last;
    int grew; /* events after which the text was longer */
};

static int
dec_event(const char *name, const char *data, size_t len, void *arg)
{
    struct dec *d = arg;
    size_t before = d->s.len;

    d->last = anthropic_stream_event(&d->s, name, data, len, &d->err);
    d->grew += d->s.len > before;
    return d->last == LLM_STREAM_FAIL;
}

#define EV(name, data) "event: " name "\ndata: " data "\n\n"
#define START                                                                  \
    EV("message_start",                                                        \
       "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":"   \
       "\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"c\","    \
       "\"stop_reason\":null,\"usage\":{\"input_tokens\":25,"                  \
       "\"output_tokens\":1}}}")
#define BLOCK(i, type)                                                         \
    EV("content_block_start",                                                  \
       "{\"type\":\"content_block_start\",\"index\":" i ",\"content_block\":{" \
       "\"type\":\"" type "\",\"text\":\"\"}}")
#define DELTA(i, text)                                                         \
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" i \
                              ",\"delta\":{\"type\":"                          \
                              "\"text_delta\",\"text\":\"" text "\"}}")
#define BSTOP(i)                                                               \
    EV("content_block_stop",                                                   \
       "{\"type\":\"content_block_stop\",\"index\":" i "}")
#define MDELTA                                                                 \
    EV("message_delta",                                                        \
       "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","  \
       "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}")
#define PING EV("ping", "{\"type\": \"ping\"}")
#define MSTOP EV("message_stop", "{\"type\":\"message_stop\"}")

static void
test_stream(void)
{
    static const struct {
        const char *name;
        const char *in;
        int ok;
        const char *text;
        int64_t in_tok, out_tok;
        const char *finish;
        enum errclass cls; /* when !ok */
        int grew;
    } cases[] = {
        {"whole",
         START BLOCK("0", "text") PING DELTA("0", "Hel") DELTA("0", "lo")
             BSTOP("0") MDELTA MSTOP,
         1, "Hello", 25, 15, "end_turn", 0, 2},
        {"two text blocks, a tool block skipped",
         START BLOCK("0", "text") DELTA("0", "a") BSTOP("0")
             EV("content_block_start",
                "{\"type\":\"content_block_start\",\"index\":1,"
                "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\"}}")
                 EV("content_block_delta",
                    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{"
                    "\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}")
                     BSTOP("1") BLOCK("2", "text") DELTA("2", "b") MDELTA MSTOP,
         1, "ab", 25, 15, "end_turn", 0, 2},
        {"no usage at all",
         EV("message_start", "{\"type\":\"message_start\",\"message\":{}}")
             DELTA("0", "x") MSTOP,
         1, "x", -1, -1, "", 0, 1},
        {"type from the event name",
         "event: content_block_delta\ndata: {\"delta\":{\"type\":"
         "\"text_delta\",\"text\":\"n\"}}\n\nevent: message_stop\ndata: {}\n\n",
         1, "n", -1, -1, "", 0, 1},
        {"unknown events ignored",
         START EV("future_event", "{\"type\":\"future_event\"}") DELTA("0", "k")
             MSTOP,
         1, "k", 25, 1, "", 0, 1},
        {"after message_stop ignored",
         START DELTA("0", "a") MSTOP DELTA("0", "b"), 1, "a", 25, 1, "", 0, 1},
        {"cut before message_stop",
         START BLOCK("0", "text") DELTA("0", "Hel") MDELTA, 0, "Hel", 0, 0, "",
         ERRCLASS_NETWORK, 1},
        {"cut mid-event",
         START DELTA("0", "Hel") "event: content_block_delta\n"
                                 "data: {\"type\":\"content_",
         0, "Hel", 0, 0, "", ERRCLASS_NETWORK, 1},
        {"overloaded mid-stream",
         START DELTA("0", "Hel")
             EV("error", "{\"type\":\"error\",\"error\":{\"type\":"
                         "\"overloaded_error\",\"message\":\"Overloaded\"}}")
                 MSTOP,
         0, "Hel", 0, 0, "", ERRCLASS_OVERLOADED, 1},
        {"api_error mid-stream",
         START EV("error", "{\"type\":\"error\",\"error\":{\"type\":"
                           "\"api_error\",\"message\":\"Internal server "
                           "error\"}}"),
         0, "", 0, 0, "", ERRCLASS_SERVER, 0},
        {"rate limit mid-stream",
         EV("error", "{\"type\":\"error\",\"error\":{\"type\":"
                     "\"rate_limit_error\",\"message\":\"slow\"}}"),
         0, "", 0, 0, "", ERRCLASS_RATE_LIMITED, 0},
        {"bare error event", EV("error", "{\"type\":\"error\"}"), 0, "", 0, 0,
         "", ERRCLASS_SERVER, 0},
        {"malformed data", START "event: ping\ndata: {\n\n" MSTOP, 0, "", 0, 0,
         "", ERRCLASS_SERVER, 0},
    };

    for (size_t i = 0; i < N(cases); i++) {
        const char *in = cases[i].in;
        size_t len = strlen(in);

        for (size_t cut = 0; cut <= len; cut++) {
            struct dec d;
            struct sse p;
            struct llm_reply r;
            int rc;

            memset(&d, 0, sizeof(d));
            memset(&r, 0, sizeof(r));
            llm_stream_init(&d.s);
            sse_init(&p);
            if (sse_feed(&p, in, cut, dec_event, &d) == SSE_OK)
                sse_feed(&p, in + cut, len - cut, dec_event, &d);
            rc = d.last == LLM_STREAM_FAIL ? -1
                                           : llm_stream_reply(&d.s, &r, &d.err);
            if (cut == 0) {
                T_OKF((rc == 0) == cases[i].ok, "%s", cases[i].name);
                T_OKF(cases[i].ok || d.err.cls == cases[i].cls, "%s: class %s",
                      cases[i].name, errclass_name(d.err.cls));
                T_OKF(d.grew == cases[i].grew, "%s: grew %d", cases[i].name,
                      d.grew);
                if (rc == 0) {
                    T_EQ_STR(r.text, cases[i].text);
                    T_EQ_STR(r.finish_reason, cases[i].finish);
                    T_EQ_INT(r.prompt_tokens, cases[i].in_tok);
                    T_EQ_INT(r.completion_tokens, cases[i].out_tok);
                    T_EQ_STR(r.id, strstr(in, "msg_1") ? "msg_1" : "");
                } else {
                    T_EQ_STR(d.s.text ? d.s.text : "", cases[i].text);
                }
            } else if ((rc == 0) != cases[i].ok ||
                       (rc == 0 && strcmp(r.text, cases[i].text) != 0)) {
                T_OKF(0, "%s: split at %zu differs", cases[i].name, cut);
            }
            llm_reply_release(&r);
            llm_stream_release(&d.s);
            sse_release(&p);
        }
    }
}

int
main(void)
{
    test_stream();
    test_build();
    test_headers();
    test_reply();
    test_errors();
    test_bounds();
    return t_done();
}
