/* test_openai_codec: byte-exact chat completions bodies, replies, errors. */
#include "llm/openai_codec.h"

#include <stdlib.h>

#include "llm/sse.h"
#include "tests/t.h"

#define N(a) (sizeof(a) / sizeof(*(a)))

static void
test_build(void)
{
    static const struct llm_message plain[] = {{LLM_ROLE_USER, "hi"}};
    static const struct llm_message conv[] = {
        {LLM_ROLE_USER, "q1"},
        {LLM_ROLE_ASSISTANT, "a1"},
        {LLM_ROLE_USER, "q2"},
    };
    static const struct llm_message esc[] = {
        {LLM_ROLE_USER, "say \"hi\"\\ now\nline2\ttab\r\x01\x1f/path"},
    };
    static const struct llm_message utf[] = {
        {LLM_ROLE_USER,
         "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80"},
    };
    static const struct llm_message bad_utf[] = {
        {LLM_ROLE_USER, "a\xff"
                        "b\xe4\xbd"},
    };
    static const struct llm_message same[] = {
        {LLM_ROLE_USER, "one"},
        {LLM_ROLE_USER, "two"},
    };
    static const struct llm_message nulltext[] = {{LLM_ROLE_USER, NULL}};
    static const struct {
        const char *name;
        struct llm_request rq;
        const char *want; /* NULL: -1 */
    } cases[] = {
        {"plain",
         {"gpt-4o", NULL, plain, 1, 100, 0},
         "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"hi\"}],\"max_tokens\":100}"},
        {"system first",
         {"gpt-4o", "Be brief.", conv, 3, 5, 0},
         "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":"
         "\"Be brief.\"},{\"role\":\"user\",\"content\":\"q1\"},{\"role\":"
         "\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":"
         "\"q2\"}],\"max_tokens\":5}"},
        {"empty system is no system",
         {"m", "", plain, 1, 1, 0},
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}"
         "],\"max_tokens\":1}"},
        {"escaping",
         {"m", NULL, esc, 1, 7, 0},
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"say "
         "\\\"hi\\\"\\\\ now\\nline2\\ttab\\r\\u0001\\u001f/path\"}],"
         "\"max_tokens\":7}"},
        {"utf-8 as is",
         {"m", NULL, utf, 1, 7, 0},
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"caf"
         "\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\"}],"
         "\"max_tokens\":7}"},
        {"invalid utf-8 replaced",
         {"m", NULL, bad_utf, 1, 7, 0},
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a"
         "\xef\xbf\xbd"
         "b\xef\xbf\xbd\xef\xbf\xbd\"}],\"max_tokens\":7}"},
        {"same role kept",
         {"m", NULL, same, 2, 7, 0},
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"one\""
         "},{\"role\":\"user\",\"content\":\"two\"}],\"max_tokens\":7}"},
        {"model with quote",
         {"a\"b", NULL, plain, 1, 7, 0},
         "{\"model\":\"a\\\"b\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"hi\"}],\"max_tokens\":7}"},
        {"no model", {NULL, NULL, plain, 1, 7, 0}, NULL},
        {"empty model", {"", NULL, plain, 1, 7, 0}, NULL},
        {"no messages", {"m", NULL, plain, 0, 7, 0}, NULL},
        {"max_tokens 0", {"m", NULL, plain, 1, 0, 0}, NULL},
        {"stream",
         {"m", NULL, plain, 1, 7, 1},
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}"
         "],\"max_tokens\":7,\"stream\":true,\"stream_options\":{"
         "\"include_usage\":true}}"},
        {"null text", {"m", NULL, nulltext, 1, 7, 0}, NULL},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct llm_body b;
        int rc = openai_build_request(&cases[i].rq, &b);
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
    T_EQ_INT(openai_build_request(NULL, &(struct llm_body){0}), -1);
}

static void
test_headers(void)
{
    struct llm_headers h;
    char big[LLM_KEY_MAX + 2];

    T_EQ_INT(openai_build_headers(&h, "sk-test"), 0);
    T_EQ_STR(h.lines[0], "Authorization: Bearer sk-test");
    T_EQ_STR(h.lines[1], "Content-Type: application/json");
    T_OK(h.lines[2] == NULL);
    T_EQ_INT(openai_build_headers(&h, NULL), -1);
    T_EQ_INT(openai_build_headers(&h, ""), -1);
    T_EQ_INT(openai_build_headers(&h, "sk\r\nX-Evil: 1"), -1);
    T_OK(h.lines[0] == NULL);
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    T_EQ_INT(openai_build_headers(&h, big), -1);
    big[LLM_KEY_MAX] = 0;
    T_EQ_INT(openai_build_headers(&h, big), 0);
    T_EQ_INT(strlen(h.lines[0]),
             strlen("Authorization: Bearer ") + LLM_KEY_MAX);
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
         "{\"id\":\"chatcmpl-fake1\",\"object\":\"chat.completion\","
         "\"created\":"
         "1,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
         "\"assistant\",\"content\":\"echo: hi\"},\"finish_reason\":\"stop\"}],"
         "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
         "\"total_tokens\":15}}",
         0, "echo: hi", "stop", "chatcmpl-fake1", 10, 5, 0, NULL},
        {"escapes and unicode",
         "{\"choices\":[{\"message\":{\"content\":\"a\\nb\\u00e9\\ud83d\\ude00"
         "\"}}]}\n",
         0, "a\nb\xc3\xa9\xf0\x9f\x98\x80", "", "", -1, -1, 0, NULL},
        {"refusal",
         "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"no\"},"
         "\"finish_reason\":\"stop\"}]}",
         0, "no", "stop", "", -1, -1, 0, NULL},
        {"usage wrong types",
         "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{"
         "\"prompt_tokens\":\"3\",\"completion_tokens\":-4}}",
         0, "x", "", "", -1, -1, 0, NULL},
        {"no choices", "{\"id\":\"x\"}", -1, NULL, NULL, NULL, 0, 0,
         ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"empty choices", "{\"choices\":[]}", -1, NULL, NULL, NULL, 0, 0,
         ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"content null", "{\"choices\":[{\"message\":{\"content\":null}}]}", -1,
         NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"content number", "{\"choices\":[{\"message\":{\"content\":4}}]}", -1,
         NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"choices not array", "{\"choices\":{}}", -1, NULL, NULL, NULL, 0, 0,
         ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"truncated",
         "{\"id\":\"chatcmpl-fake1\",\"choices\":[{\"message\":{\"content\":"
         "\"e",
         -1, NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"malformed",
         "{\"id\":\"fake\",\"choices\":[<html>502 Bad Gateway</html>]}", -1,
         NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"trailing garbage",
         "{\"choices\":[{\"message\":{\"content\":\"x\"}}]} x", -1, NULL, NULL,
         NULL, 0, 0, ERRCLASS_SERVER, LLM_BAD_REPLY},
        {"not an object", "[1,2]", -1, NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER,
         LLM_BAD_REPLY},
        {"empty", "", -1, NULL, NULL, NULL, 0, 0, ERRCLASS_SERVER,
         LLM_BAD_REPLY},
        {"error inside a 200",
         "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\","
         "\"code\":\"rate_limit_exceeded\"}}",
         -1, NULL, NULL, NULL, 0, 0, ERRCLASS_RATE_LIMITED, "requests"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct llm_reply r;
        struct llm_error_info e;
        int rc;

        memset(&e, 0, sizeof(e));
        rc = openai_parse_reply(cases[i].body, strlen(cases[i].body), &r, &e);
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
            T_OK(r.text == NULL);
        }
        llm_reply_release(&r);
    }
}

/* Every error form of protocols/llm.md and SPEC §5. */
static void
test_errors(void)
{
    static const struct {
        int status;
        const char *body;
        enum errclass cls;
        const char *type, *code;
    } cases[] = {
        {429,
         "{\"error\":{\"message\":\"Rate limit reached for gpt-4 on requests "
         "per min (RPM): Limit 3\",\"type\":\"requests\",\"param\":null,"
         "\"code\":\"rate_limit_exceeded\"}}",
         ERRCLASS_RATE_LIMITED, "requests", "rate_limit_exceeded"},
        {429,
         "{\"error\":{\"message\":\"You exceeded your current quota, please "
         "check your plan and billing details.\",\"type\":"
         "\"insufficient_quota\",\"param\":null,\"code\":"
         "\"insufficient_quota\"}}",
         ERRCLASS_QUOTA, "insufficient_quota", "insufficient_quota"},
        {400,
         "{\"error\":{\"message\":\"This model's maximum context length is "
         "8192 tokens.\",\"type\":\"invalid_request_error\",\"param\":"
         "\"messages\",\"code\":\"context_length_exceeded\"}}",
         ERRCLASS_CONTEXT_OVERFLOW, "invalid_request_error",
         "context_length_exceeded"},
        {401,
         "{\"error\":{\"message\":\"Incorrect API key provided.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"invalid_api_key\"}}",
         ERRCLASS_AUTH, "invalid_request_error", "invalid_api_key"},
        {404,
         "{\"error\":{\"message\":\"The model `x` does not exist\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"model_not_found\"}}",
         ERRCLASS_NOT_FOUND, "invalid_request_error", "model_not_found"},
        {400,
         "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\","
         "\"param\":null,\"code\":null}}",
         ERRCLASS_BAD_REQUEST, "invalid_request_error", ""},
        {500,
         "{\"error\":{\"message\":\"The server had an error\",\"type\":"
         "\"server_error\",\"param\":null,\"code\":null}}",
         ERRCLASS_SERVER, "server_error", ""},
        {502, "<html>502 Bad Gateway</html>", ERRCLASS_SERVER, "", ""},
        {503,
         "{\"error\":{\"message\":\"The engine is currently overloaded, please "
         "try again later.\",\"type\":\"server_error\",\"param\":null,"
         "\"code\":null}}",
         ERRCLASS_SERVER, "server_error", ""},
        {504, "", ERRCLASS_SERVER, "", ""},
        {408, "{\"error\":{\"message\":\"timeout\",\"type\":\"timeout\"}}",
         ERRCLASS_TIMEOUT, "timeout", ""},
        {409, "{}", ERRCLASS_SERVER, "", ""},
        {529, "{\"error\":{\"message\":\"Overloaded\"}}", ERRCLASS_OVERLOADED,
         "", ""},
        {403,
         "{\"error\":{\"message\":\"no\",\"type\":\"invalid_request_error\","
         "\"code\":\"unsupported_country_region_territory\"}}",
         ERRCLASS_FORBIDDEN, "invalid_request_error",
         "unsupported_country_region_territory"},
        /* numeric code (some compatible servers) */
        {429,
         "{\"error\":{\"message\":\"Too many requests\",\"type\":"
         "\"rate_limit_exceeded\",\"code\":429}}",
         ERRCLASS_RATE_LIMITED, "rate_limit_exceeded", "429"},
        /* bare string error, and a top-level message (proxies) */
        {400, "{\"error\":\"prompt is too long\"}", ERRCLASS_CONTEXT_OVERFLOW,
         "", ""},
        {400, "{\"message\":\"maximum context length exceeded\"}",
         ERRCLASS_CONTEXT_OVERFLOW, "", ""},
        {413, "{\"error\":{\"type\":\"request_too_large\"}}",
         ERRCLASS_CONTEXT_OVERFLOW, "request_too_large", ""},
        /* truncated error body: the status decides */
        {429, "{\"error\":{\"message\":\"Rate lim", ERRCLASS_RATE_LIMITED, "",
         ""},
        {401, "{\"error\":7}", ERRCLASS_AUTH, "", ""},
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct llm_error_info e;
        struct llm_reply r;
        int rc;

        openai_parse_error(cases[i].status, cases[i].body,
                           strlen(cases[i].body), &e);
        T_OKF(e.cls == cases[i].cls, "case %zu (%d): got %s want %s", i,
              cases[i].status, errclass_name(e.cls),
              errclass_name(cases[i].cls));
        T_EQ_INT(e.status, cases[i].status);
        T_EQ_STR(e.type, cases[i].type);
        T_EQ_STR(e.code, cases[i].code);
        rc = openai_parse_response(cases[i].status, cases[i].body,
                                   strlen(cases[i].body), &r, &e);
        T_EQ_INT(rc, -1);
        T_OKF(e.cls == cases[i].cls, "case %zu via parse_response", i);
        llm_reply_release(&r);
    }
}

static void
test_bounds(void)
{
    struct llm_reply r;
    struct llm_error_info e;
    size_t depth = LLM_JSON_DEPTH + 5, n = 0;
    char *deep = malloc(2 * depth + 64), *big;
    const char *pre = "{\"choices\":[{\"message\":{\"content\":\"";
    size_t plen = strlen(pre);

    /* deeper than LLM_JSON_DEPTH: refused, not recursed into */
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    T_EQ_INT(openai_parse_reply(deep, n, &r, &e), -1);
    T_EQ_STR(e.type, LLM_BAD_REPLY);
    T_CONTAINS(e.message, "deep");
    free(deep);

    /* over LLM_REPLY_MAX: refused before parsing */
    big = malloc(LLM_REPLY_MAX + 2);
    memset(big, ' ', LLM_REPLY_MAX + 1);
    T_EQ_INT(openai_parse_reply(big, LLM_REPLY_MAX + 1, &r, &e), -1);
    T_CONTAINS(e.message, "LLM_REPLY_MAX");

    /* a text over LLM_TEXT_MAX */
    memcpy(big, pre, plen);
    memset(big + plen, 'a', LLM_TEXT_MAX + 1);
    memcpy(big + plen + LLM_TEXT_MAX + 1, "\"}}]}", 5);
    T_EQ_INT(openai_parse_reply(big, plen + LLM_TEXT_MAX + 6, &r, &e), -1);
    T_CONTAINS(e.message, "LLM_TEXT_MAX");
    /* exactly LLM_TEXT_MAX is fine */
    memcpy(big + plen + LLM_TEXT_MAX, "\"}}]}", 5);
    T_EQ_INT(openai_parse_reply(big, plen + LLM_TEXT_MAX + 5, &r, &e), 0);
    T_EQ_INT(strlen(r.text), LLM_TEXT_MAX);
    llm_reply_release(&r);
    free(big);

    /* not NUL-terminated input is read only up to len */
    {
        const char body[] = "{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}"
                            "GARBAGE";
        T_EQ_INT(openai_parse_reply(body, sizeof(body) - 1 - 7, &r, &e), 0);
        T_EQ_STR(r.text, "ok");
        llm_reply_release(&r);
    }
    /* long id and finish_reason are cut */
    {
        char body[1200];
        char id[600];
        memset(id, 'i', sizeof(id) - 1);
        id[sizeof(id) - 1] = 0;
        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"choices\":[{\"message\":{\"content\":\"x\"}}"
                 "]}",
                 id);
        T_EQ_INT(openai_parse_reply(body, strlen(body), &r, &e), 0);
        T_EQ_INT(strlen(r.id), LLM_FIELD_MAX);
        llm_reply_release(&r);
    }
    /* a 2xx goes through parse_reply */
    {
        const char body[] =
            "{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}";
        T_EQ_INT(openai_parse_response(200, body, sizeof(body) - 1, &r, &e), 0);
        llm_reply_release(&r);
        T_EQ_INT(openai_parse_response(201, "{", 1, &r, &e), -1);
        T_EQ_INT(e.status, 201);
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

    d->last = openai_stream_event(&d->s, name, data, len, &d->err);
    d->grew += d->s.len > before;
    return d->last == LLM_STREAM_FAIL;
}

#define CHUNK(content)                                                         \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","       \
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":" content "},"           \
    "\"finish_reason\":null}],\"usage\":null}\n\n"
#define FINISH                                                                 \
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},"     \
    "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
#define USAGE                                                                  \
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{"                  \
    "\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n"
#define DONE "data: [DONE]\n\n"

static void
test_stream(void)
{
    static const struct {
        const char *name;
        const char *in;
        int ok; /* 1: llm_stream_reply succeeds */
        const char *text;
        int64_t in_tok, out_tok;
        const char *finish;
        enum errclass cls; /* when !ok */
        int grew;
    } cases[] = {
        {"whole",
         CHUNK("\"\"") CHUNK("\"Hel\"") CHUNK("\"lo\"") FINISH USAGE DONE, 1,
         "Hello", 9, 3, "stop", 0, 2},
        {"no usage chunk", CHUNK("\"a\"") FINISH DONE, 1, "a", -1, -1, "stop",
         0, 1},
        {"role chunk, null content", CHUNK("null") CHUNK("\"x\"") FINISH DONE,
         1, "x", -1, -1, "stop", 0, 1},
        {"refusal",
         "data: {\"choices\":[{\"delta\":{\"content\":null,\"refusal\":"
         "\"no\"}}]}\n\n" DONE,
         1, "no", -1, -1, "", 0, 1},
        {"after DONE ignored", CHUNK("\"a\"") DONE CHUNK("\"b\"") "data: {\n\n",
         1, "a", -1, -1, "", 0, 1},
        {"escapes and utf-8", CHUNK("\"caf\\u00e9 \\n\xe4\xbd\xa0\"") DONE, 1,
         "caf\xc3\xa9 \n\xe4\xbd\xa0", -1, -1, "", 0, 1},
        {"invalid utf-8 replaced", CHUNK("\"a\xff\"") DONE, 1, "a\xef\xbf\xbd",
         -1, -1, "", 0, 1},
        {"comments and CRLF",
         ": OPENROUTER PROCESSING\r\n\r\ndata: {\"choices\":[{\"delta\":{"
         "\"content\":\"k\"}}]}\r\n\r\ndata: [DONE]\r\n\r\n",
         1, "k", -1, -1, "", 0, 1},
        {"cut before DONE", CHUNK("\"Hel\"") CHUNK("\"lo\"") FINISH, 0, "Hello",
         -1, -1, "stop", ERRCLASS_NETWORK, 2},
        {"cut mid-event", CHUNK("\"Hel\"") "data: {\"choices\":[{\"del", 0,
         "Hel", -1, -1, "", ERRCLASS_NETWORK, 1},
        {"empty stream", "", 0, "", -1, -1, "", ERRCLASS_NETWORK, 0},
        {"error chunk mid-stream",
         CHUNK("\"a\"") "data: {\"error\":{\"message\":\"The server had an "
                        "error\",\"type\":\"server_error\",\"param\":null,"
                        "\"code\":null}}\n\n" DONE,
         0, "a", -1, -1, "", ERRCLASS_SERVER, 1},
        {"unknown error chunk is server",
         "data: {\"error\":{\"message\":\"oops\"}}\n\n", 0, "", -1, -1, "",
         ERRCLASS_SERVER, 0},
        {"rate limit error chunk",
         "data: {\"error\":{\"message\":\"slow down\",\"type\":\"requests\","
         "\"code\":\"rate_limit_exceeded\"}}\n\n",
         0, "", -1, -1, "", ERRCLASS_RATE_LIMITED, 0},
        {"malformed chunk", CHUNK("\"a\"") "data: {\"choices\":\n\n" DONE, 0,
         "a", -1, -1, "", ERRCLASS_SERVER, 1},
    };

    for (size_t i = 0; i < N(cases); i++) {
        const char *in = cases[i].in;
        size_t len = strlen(in);

        /* whole, then split at every byte: the same outcome */
        for (size_t cut = 0; cut <= len; cut++) {
            struct dec d;
            struct sse p;
            struct llm_reply r;
            int rc;

            memset(&d, 0, sizeof(d));
            llm_stream_init(&d.s);
            sse_init(&p);
            if (sse_feed(&p, in, cut, dec_event, &d) == SSE_OK)
                sse_feed(&p, in + cut, len - cut, dec_event, &d);
            if (d.last == LLM_STREAM_FAIL) {
                rc = -1;
                memset(&r, 0, sizeof(r));
            } else {
                rc = llm_stream_reply(&d.s, &r, &d.err);
            }
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
                } else {
                    T_EQ_STR(d.s.text ? d.s.text : "", cases[i].text);
                }
            } else if ((rc == 0) != cases[i].ok ||
                       (rc == 0 && strcmp(r.text, cases[i].text) != 0)) {
                T_OKF(0, "%s: split at %zu differs", cases[i].name, cut);
            }
            if (rc == 0) {
                T_OK(d.s.text == NULL); /* moved to the reply */
                T_EQ_STR(r.id, strstr(in, "chatcmpl-1") ? "chatcmpl-1" : "");
            }
            llm_reply_release(&r);
            llm_stream_release(&d.s);
            sse_release(&p);
        }
    }
}

static void
test_stream_bounds(void)
{
    struct llm_stream s;
    struct llm_error_info e;
    char *big = malloc(LLM_TEXT_MAX + 64);
    size_t n;

    /* text over LLM_TEXT_MAX over two chunks: a bad reply */
    llm_stream_init(&s);
    n = (size_t)snprintf(big, 64, "{\"choices\":[{\"delta\":{\"content\":\"");
    memset(big + n, 'x', LLM_TEXT_MAX / 2 + 1);
    memcpy(big + n + LLM_TEXT_MAX / 2 + 1, "\"}}]}", 6);
    n += LLM_TEXT_MAX / 2 + 1 + 5;
    T_EQ_INT(openai_stream_event(&s, "message", big, n, &e), LLM_STREAM_MORE);
    T_EQ_INT(openai_stream_event(&s, "message", big, n, &e), LLM_STREAM_FAIL);
    T_EQ_INT(e.cls, ERRCLASS_SERVER);
    T_EQ_STR(e.type, LLM_BAD_REPLY);
    llm_stream_release(&s);
    llm_stream_release(NULL);
    free(big);
}

int
main(void)
{
    test_stream();
    test_stream_bounds();
    test_build();
    test_headers();
    test_reply();
    test_errors();
    test_bounds();
    return t_done();
}
