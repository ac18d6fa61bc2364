/* test_llm_fake: the LLM fake seen through core/http and the wire codecs. */
#include "core/http.h"
#include "llm/anthropic_codec.h"
#include "llm/openai_codec.h"
#include "tests/fakes/llm_fake.h"
#include "tests/t.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

/*
 * Fake and client share this process's loop: every call below runs the
 * loop until its reply (or a transport failure) arrives, under a watchdog,
 * so the whole file is bounded in time (~3 s; the slowest parts are a
 * 600 ms bucket refill and a 300 ms timeout).
 */
#define CALL_LIMIT_MS 5000

static uv_loop_t loop;
static struct http *client;
static struct llm_fake *lf;
static char base[64];

/* What one call came back with. */
struct result {
    int done;
    enum http_error error;
    int status;
    int64_t elapsed_ms;
    char body[8192];
    size_t body_len;
    char retry_after[80], retry_after_ms[32], reset_requests[32],
        reset_tokens[32], remaining_requests[32], remaining_tokens[32],
        a_reset[64], a_remaining_tokens[32];
};

static void
copy_hdr(char *dst, size_t cap, const struct http_response *r, const char *name)
{
    const char *v = http_response_header(r, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static void
on_done(const struct http_response *r, void *arg)
{
    struct result *res = arg;

    res->done = 1;
    res->error = r->error;
    res->status = (int)r->status;
    res->elapsed_ms = r->elapsed_ms;
    res->body_len = r->body_len < sizeof(res->body) - 1 ? r->body_len
                                                        : sizeof(res->body) - 1;
    memcpy(res->body, r->body, res->body_len);
    res->body[res->body_len] = '\0';
    copy_hdr(res->retry_after, sizeof(res->retry_after), r, "retry-after");
    copy_hdr(res->retry_after_ms, sizeof(res->retry_after_ms), r,
             "retry-after-ms");
    copy_hdr(res->reset_requests, sizeof(res->reset_requests), r,
             "x-ratelimit-reset-requests");
    copy_hdr(res->reset_tokens, sizeof(res->reset_tokens), r,
             "x-ratelimit-reset-tokens");
    copy_hdr(res->remaining_requests, sizeof(res->remaining_requests), r,
             "x-ratelimit-remaining-requests");
    copy_hdr(res->remaining_tokens, sizeof(res->remaining_tokens), r,
             "x-ratelimit-remaining-tokens");
    copy_hdr(res->a_reset, sizeof(res->a_reset), r,
             "anthropic-ratelimit-requests-reset");
    copy_hdr(res->a_remaining_tokens, sizeof(res->a_remaining_tokens), r,
             "anthropic-ratelimit-tokens-remaining");
}

static void
on_watchdog(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Run the loop until *flag is set or ms pass; 0 when the flag was set. */
static int
run_until(int *flag, int64_t ms)
{
    uv_timer_t wd;
    int fired = 0;

    uv_timer_init(&loop, &wd);
    wd.data = &fired;
    uv_timer_start(&wd, on_watchdog, (uint64_t)ms, 0);
    while (!*flag && !fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

static void
sleep_loop(int64_t ms)
{
    int never = 0;
    run_until(&never, ms);
}

/* One chat request to the fake through core/http; api 'o' or 'a'. */
static void
call(char api, const char *model, const char *key, const char *text,
     int64_t max_tokens, int64_t timeout_ms, struct result *res)
{
    struct llm_message m = {LLM_ROLE_USER, text};
    struct llm_request rq = {model, "You are a test.", &m, 1, max_tokens, 0};
    struct llm_body body;
    struct llm_headers h;
    struct http_request hr;
    char url[128];
    int rc;

    memset(res, 0, sizeof(*res));
    rc = api == 'o' ? openai_build_request(&rq, &body)
                    : anthropic_build_request(&rq, &body);
    T_EQ_INT(rc, 0);
    rc = api == 'o' ? openai_build_headers(&h, key)
                    : anthropic_build_headers(&h, key);
    T_EQ_INT(rc, 0);
    snprintf(url, sizeof(url), "%s%s", base,
             api == 'o' ? OPENAI_PATH : ANTHROPIC_PATH);
    memset(&hr, 0, sizeof(hr));
    hr.method = "POST";
    hr.url = url;
    hr.headers = h.lines;
    hr.body = body.data;
    hr.body_len = body.len;
    hr.timeout_ms = timeout_ms ? timeout_ms : CALL_LIMIT_MS;
    T_OK(http_send(client, &hr, on_done, res) != NULL);
    llm_body_release(&body);
    T_OKF(run_until(&res->done, CALL_LIMIT_MS + 1000) == 0, "%s call done",
          model);
}

/* Parse a result with the api's codec: 0 with *reply, or -1 with *err. */
static int
parse(char api, const struct result *res, struct llm_reply *reply,
      struct llm_error_info *err)
{
    return api == 'o' ? openai_parse_response(res->status, res->body,
                                              res->body_len, reply, err)
                      : anthropic_parse_response(res->status, res->body,
                                                 res->body_len, reply, err);
}

static void
test_answers(void)
{
    for (int k = 0; k < 2; k++) {
        char api = k ? 'a' : 'o';
        struct llm_message m = {LLM_ROLE_USER, "h\xc3\xa9llo \"you\""};
        struct llm_request rq = {"plain", "You are a test.", &m, 1, 50, 0};
        struct result res;
        struct llm_reply r;
        struct llm_error_info e;
        const struct llm_fake_entry *le;

        call(api, "plain", "sk-test-abcd", m.text, 50, 0, &res);
        T_EQ_INT(res.error, HTTP_OK);
        T_EQ_INT(res.status, 200);
        T_EQ_INT(parse(api, &res, &r, &e), 0);
        T_EQ_STR(r.text, "echo: h\xc3\xa9llo \"you\"");
        T_EQ_INT(r.prompt_tokens, llm_estimate_request(&rq));
        T_EQ_INT(r.completion_tokens,
                 llm_estimate_tokens(r.text, strlen(r.text)));
        T_EQ_STR(r.finish_reason, api == 'o' ? "stop" : "end_turn");
        T_OK(r.id[0] != '\0');
        llm_reply_release(&r);

        le = llm_fake_log_get(lf, llm_fake_log_size(lf) - 1);
        T_OK(le != NULL);
        if (le != NULL) {
            T_EQ_INT(le->api, api);
            T_EQ_STR(le->model, "plain");
            T_EQ_STR(le->key4, "abcd");
            T_EQ_INT(le->status, 200);
            T_EQ_INT(le->kind, LLM_FAKE_OK);
        }
    }
    /* Anthropic headers arrived as sent */
    {
        struct fake *f = llm_fake_fake(lf);
        const struct fake_request *q = fake_log_get(f, fake_log_size(f) - 1);
        T_EQ_STR(fake_request_header(q, "anthropic-version"), "2023-06-01");
        T_EQ_STR(fake_request_header(q, "x-api-key"), "sk-test-abcd");
    }
    /* max_tokens cuts the echo: finish "length" / "max_tokens" */
    for (int k = 0; k < 2; k++) {
        char api = k ? 'a' : 'o';
        struct result res;
        struct llm_reply r;
        struct llm_error_info e;
        call(api, "plain", "sk-1", "a fairly long question to echo back", 3, 0,
             &res);
        T_EQ_INT(parse(api, &res, &r, &e), 0);
        T_OKF(r.completion_tokens <= 3, "%lld", (long long)r.completion_tokens);
        T_EQ_STR(r.finish_reason, api == 'o' ? "length" : "max_tokens");
        llm_reply_release(&r);
    }
}

static void
test_buckets(void)
{
    struct llm_fake_model rpm = {3, 0, 0, 0}, tpm = {0, 100, 0, 0},
                          fast = {120, 0, 0, 0};
    struct llm_fake_stats st;
    struct llm_reply r;
    struct llm_error_info e;
    struct result res;
    uint64_t before;

    llm_fake_stats(lf, &st);
    before = st.bucket_429;
    /* rpm 3: three pass, the fourth is a 429 asking for 20 s (one request
     * refills in 60/3 s) */
    T_EQ_INT(llm_fake_set_model(lf, "rpm3", &rpm), 0);
    for (int i = 0; i < 3; i++) {
        call('o', "rpm3", "sk-1", "hi", 10, 0, &res);
        T_EQ_INT(res.status, 200);
        T_EQ_INT(atoi(res.remaining_requests), 2 - i);
    }
    call('o', "rpm3", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 429);
    T_EQ_INT(atoi(res.retry_after), 20);
    T_OK(res.reset_requests[0] != '\0');
    T_EQ_INT(parse('o', &res, &r, &e), -1);
    T_EQ_INT(e.cls, ERRCLASS_RATE_LIMITED);
    T_EQ_STR(e.code, "rate_limit_exceeded");
    /* Anthropic shares the model's bucket */
    call('a', "rpm3", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 429);
    T_EQ_INT(parse('a', &res, &r, &e), -1);
    T_EQ_INT(e.cls, ERRCLASS_RATE_LIMITED);
    T_EQ_STR(e.type, "rate_limit_error");
    T_OK(res.a_reset[0] != '\0');
    llm_fake_stats(lf, &st);
    T_EQ_INT(st.bucket_429 - before, 2);
    T_EQ_INT(llm_fake_log_count(lf, "rpm3", 429), 2);

    /* tpm 100: prompt estimate + max_tokens 40 each; two fit, the third
     * does not */
    T_EQ_INT(llm_fake_set_model(lf, "tpm100", &tpm), 0);
    call('a', "tpm100", "sk-1", "hi", 30, 0, &res);
    T_EQ_INT(res.status, 200);
    T_OK(res.a_remaining_tokens[0] != '\0');
    call('a', "tpm100", "sk-1", "hi", 30, 0, &res);
    T_EQ_INT(res.status, 200);
    call('a', "tpm100", "sk-1", "hi", 30, 0, &res);
    T_EQ_INT(res.status, 429);
    T_OK(atoi(res.retry_after) >= 1);
    /* a request bigger than the whole tpm */
    call('o', "tpm100", "sk-1", "hi", 500, 0, &res);
    T_EQ_INT(res.status, 429);
    T_OK(res.remaining_tokens[0] != '\0');

    /* refill: rpm 120 = one every 500 ms; drain, get the 429, wait
     * 600 ms, pass */
    T_EQ_INT(llm_fake_set_model(lf, "rpm120", &fast), 0);
    for (int i = 0; i < 120; i++) {
        call('o', "rpm120", "sk-1", "x", 1, 0, &res);
        if (res.status != 200)
            break;
    }
    call('o', "rpm120", "sk-1", "x", 1, 0, &res);
    T_EQ_INT(res.status, 429);
    T_EQ_INT(atoi(res.retry_after), 1);
    sleep_loop(600);
    call('o', "rpm120", "sk-1", "x", 1, 0, &res);
    T_EQ_INT(res.status, 200);
}

static void
test_context_and_keys(void)
{
    struct llm_fake_model ctx = {0, 0, 60, 0};
    struct llm_reply r;
    struct llm_error_info e;
    struct result res;

    T_EQ_INT(llm_fake_set_model(lf, "small", &ctx), 0);
    for (int k = 0; k < 2; k++) {
        char api = k ? 'a' : 'o';
        call(api, "small", "sk-1", "hi", 20, 0, &res);
        T_EQ_INT(res.status, 200);
        call(api, "small", "sk-1", "hi", 100, 0, &res);
        T_EQ_INT(res.status, 400);
        T_EQ_INT(parse(api, &res, &r, &e), -1);
        T_EQ_INT(e.cls, ERRCLASS_CONTEXT_OVERFLOW);
        T_CONTAINS(e.message, api == 'o' ? "maximum context length"
                                         : "prompt is too long");
    }

    T_EQ_INT(llm_fake_set_key(lf, "sk-bad", LLM_FAKE_KEY_INVALID), 0);
    T_EQ_INT(llm_fake_set_key(lf, "sk-broke", LLM_FAKE_KEY_NO_QUOTA), 0);
    for (int k = 0; k < 2; k++) {
        char api = k ? 'a' : 'o';
        call(api, "plain", "sk-bad", "hi", 10, 0, &res);
        T_EQ_INT(res.status, 401);
        T_EQ_INT(parse(api, &res, &r, &e), -1);
        T_EQ_INT(e.cls, ERRCLASS_AUTH);
        call(api, "plain", "sk-broke", "hi", 10, 0, &res);
        T_EQ_INT(res.status, api == 'o' ? 429 : 400);
        T_EQ_INT(parse(api, &res, &r, &e), -1);
        T_EQ_INT(e.cls, ERRCLASS_QUOTA);
        call(api, "plain", "sk-good", "hi", 10, 0, &res);
        T_EQ_INT(res.status, 200);
    }
    T_EQ_STR(llm_fake_log_get(lf, llm_fake_log_size(lf) - 2)->key4, "roke");
}

/* Parse an IMF-fixdate to epoch seconds; -1 on failure. */
static int64_t
imf_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) == NULL)
        return -1;
    return (int64_t)timegm(&tm);
}

static void
test_scripted(void)
{
    static const struct {
        char api;
        struct llm_fake_fault f;
        enum http_error herr;
        int status;
        int cls; /* -1: no parse check */
    } cases[] = {
        {'o',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_SECONDS, 2000, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'o',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_FLOAT, 1500, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'o',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_HTTP_DATE, 2000, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'o',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_MS, 1500, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'o',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_RESET_REQUESTS, 1500, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'o',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_RESET_TOKENS, 360000, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'a',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_ANTHROPIC_RESET, 2500, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'a',
         {LLM_FAKE_429, 0, LLM_FAKE_AFTER_SECONDS, 3000, 0, NULL},
         HTTP_OK,
         429,
         ERRCLASS_RATE_LIMITED},
        {'o', {LLM_FAKE_QUOTA, 0, 0, 0, 0, NULL}, HTTP_OK, 429, ERRCLASS_QUOTA},
        {'a', {LLM_FAKE_AUTH, 0, 0, 0, 0, NULL}, HTTP_OK, 401, ERRCLASS_AUTH},
        {'o',
         {LLM_FAKE_CONTEXT, 0, 0, 0, 0, NULL},
         HTTP_OK,
         400,
         ERRCLASS_CONTEXT_OVERFLOW},
        {'a',
         {LLM_FAKE_CONTEXT, 0, 0, 0, 0, NULL},
         HTTP_OK,
         400,
         ERRCLASS_CONTEXT_OVERFLOW},
        {'o',
         {LLM_FAKE_STATUS, 500, 0, 0, 0, NULL},
         HTTP_OK,
         500,
         ERRCLASS_SERVER},
        {'o',
         {LLM_FAKE_STATUS, 502, 0, 0, 0, NULL},
         HTTP_OK,
         502,
         ERRCLASS_SERVER},
        {'o',
         {LLM_FAKE_STATUS, 0, LLM_FAKE_AFTER_SECONDS, 1000, 0, NULL},
         HTTP_OK,
         503,
         ERRCLASS_SERVER},
        {'a',
         {LLM_FAKE_STATUS, 529, 0, 0, 0, NULL},
         HTTP_OK,
         529,
         ERRCLASS_OVERLOADED},
        {'a',
         {LLM_FAKE_STATUS, 500, 0, 0, 0, NULL},
         HTTP_OK,
         500,
         ERRCLASS_SERVER},
        {'o',
         {LLM_FAKE_MALFORMED, 0, 0, 0, 0, NULL},
         HTTP_OK,
         200,
         ERRCLASS_SERVER},
        {'a',
         {LLM_FAKE_TRUNCATED, 0, 0, 0, 0, NULL},
         HTTP_OK,
         200,
         ERRCLASS_SERVER},
        {'o',
         {LLM_FAKE_TRUNCATED, 0, 0, 0, 0, NULL},
         HTTP_OK,
         200,
         ERRCLASS_SERVER},
        {'a', {LLM_FAKE_PARTIAL, 0, 0, 0, 0, NULL}, HTTP_ERR_NETWORK, 0, -1},
        {'o', {LLM_FAKE_HANG, 0, 0, 0, 0, NULL}, HTTP_ERR_TIMEOUT, 0, -1},
        {'a', {LLM_FAKE_OK, 0, 0, 0, 300, "slow but sure"}, HTTP_OK, 200, -2},
    };
    size_t n = sizeof(cases) / sizeof(*cases);

    for (size_t i = 0; i < n; i++)
        T_EQ_INT(llm_fake_script(lf, "scripted", &cases[i].f), 0);
    T_EQ_INT(llm_fake_script_pending(lf), n);

    for (size_t i = 0; i < n; i++) {
        char api = cases[i].api;
        struct result res;
        struct llm_reply r;
        struct llm_error_info e;
        int64_t wall = (int64_t)time(NULL);

        /* another model's request does not consume the script */
        if (i == 3) {
            call(api, "plain", "sk-1", "hi", 10, 0, &res);
            T_EQ_INT(res.status, 200);
        }
        call(api, "scripted", "sk-1", "hi", 10,
             cases[i].f.kind == LLM_FAKE_HANG ? 300 : 0, &res);
        T_OKF(res.error == cases[i].herr, "case %zu: %s", i,
              http_error_name(res.error));
        if (cases[i].herr != HTTP_OK)
            continue;
        T_OKF(res.status == cases[i].status, "case %zu: status %d", i,
              res.status);
        if (cases[i].cls >= 0) {
            T_EQ_INT(parse(api, &res, &r, &e), -1);
            T_OKF((int)e.cls == cases[i].cls, "case %zu: class %s", i,
                  errclass_name(e.cls));
            if (cases[i].status == 200)
                T_EQ_STR(e.type, LLM_BAD_REPLY);
        } else {
            T_EQ_INT(parse(api, &res, &r, &e), 0);
            T_EQ_STR(r.text, cases[i].f.text);
            T_OKF(res.elapsed_ms >= cases[i].f.delay_ms, "slow: %lld ms",
                  (long long)res.elapsed_ms);
            llm_reply_release(&r);
        }
        switch (cases[i].f.after) {
        case LLM_FAKE_AFTER_SECONDS:
            T_EQ_INT(atoll(res.retry_after),
                     (cases[i].f.after_ms + 999) / 1000);
            break;
        case LLM_FAKE_AFTER_FLOAT:
            T_EQ_STR(res.retry_after, "1.500");
            break;
        case LLM_FAKE_AFTER_HTTP_DATE: {
            int64_t d = imf_date(res.retry_after) - wall;
            /* rounded up to whole seconds: 2 s asked, 2..3 s said */
            T_OKF(d >= 2 && d <= 3, "date %s is %lld s away", res.retry_after,
                  (long long)d);
            break;
        }
        case LLM_FAKE_AFTER_MS:
            T_EQ_STR(res.retry_after_ms, "1500");
            T_EQ_STR(res.retry_after, "");
            break;
        case LLM_FAKE_AFTER_RESET_REQUESTS:
            T_EQ_STR(res.reset_requests, "1.5s");
            break;
        case LLM_FAKE_AFTER_RESET_TOKENS:
            T_EQ_STR(res.reset_tokens, "6m0s");
            break;
        case LLM_FAKE_AFTER_ANTHROPIC_RESET:
            T_EQ_INT(strlen(res.a_reset), 24); /* 2024-01-01T00:00:00.000Z */
            T_OK(res.a_reset[23] == 'Z');
            break;
        default:
            T_EQ_STR(res.retry_after, "");
            break;
        }
    }
    T_EQ_INT(llm_fake_script_pending(lf), 0);
    T_EQ_INT(llm_fake_log_count(lf, "scripted", 0), n);
}

static void
test_defaults(void)
{
    struct llm_fake_fault down = {LLM_FAKE_STATUS, 503, 0, 0, 0, NULL};
    struct llm_fake_fault once = {LLM_FAKE_STATUS, 500, 0, 0, 0, NULL};
    struct result res;

    /* FIFO first, then the default, until cleared */
    T_EQ_INT(llm_fake_script(lf, NULL, &once), 0);
    T_EQ_INT(llm_fake_set_default(lf, "down", &down), 0);
    call('o', "down", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 500);
    for (int i = 0; i < 3; i++) {
        call('o', "down", "sk-1", "hi", 10, 0, &res);
        T_EQ_INT(res.status, 503);
    }
    T_EQ_INT(llm_fake_set_default(lf, "down", NULL), 0);
    call('o', "down", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 200);

    /*
     * A close without a reply on a reused keep-alive connection is
     * retried once by libcurl on a fresh connection ("Connection died,
     * retrying a fresh connect"), so it is a default here, not a one-shot
     * script: one call may reach the fake twice.
     */
    {
        struct llm_fake_fault cl = {LLM_FAKE_CLOSE, 0, 0, 0, 0, NULL};
        size_t seen;
        T_EQ_INT(llm_fake_set_default(lf, "closer", &cl), 0);
        call('o', "closer", "sk-1", "hi", 10, 0, &res);
        T_EQ_INT(res.error, HTTP_ERR_NETWORK);
        seen = llm_fake_log_count(lf, "closer", 0);
        T_OKF(seen == 1 || seen == 2, "%zu", seen);
        printf("close fault: one call reached the fake %zu time(s)\n", seen);
        T_EQ_INT(llm_fake_set_default(lf, "closer", NULL), 0);
    }
}

/* The control API, as out-of-process tests drive build/fake_llm. */
static void
post(const char *path, const char *json, struct result *res)
{
    struct http_request hr;
    char url[128];
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};

    memset(res, 0, sizeof(*res));
    memset(&hr, 0, sizeof(hr));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", llm_fake_port(lf),
             path);
    hr.method = json ? "POST" : "GET";
    hr.url = url;
    hr.headers = hdrs;
    hr.body = json;
    hr.body_len = json ? strlen(json) : 0;
    T_OK(http_send(client, &hr, on_done, res) != NULL);
    T_OK(run_until(&res->done, CALL_LIMIT_MS) == 0);
}

static void
test_control(void)
{
    struct result res;

    post("/_fake/reset", "{}", &res);
    T_EQ_INT(res.status, 200);
    T_EQ_INT(llm_fake_log_size(lf), 0);
    post("/_fake/model", "{\"model\":\"ctl\",\"rpm\":1}", &res);
    T_EQ_INT(res.status, 200);
    post("/_fake/key", "{\"key\":\"sk-ctl-bad\",\"state\":\"invalid\"}", &res);
    T_EQ_INT(res.status, 200);
    post("/_fake/script",
         "{\"model\":\"ctl\",\"faults\":[{\"kind\":\"status\",\"status\":502},"
         "{\"kind\":\"429\",\"after\":\"ms\",\"after_ms\":250}]}",
         &res);
    T_EQ_INT(res.status, 200);
    T_CONTAINS(res.body, "\"queued\":2");
    post("/_fake/script", "{\"faults\":[{\"kind\":\"nope\"}]}", &res);
    T_EQ_INT(res.status, 400);

    call('o', "ctl", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 502);
    call('o', "ctl", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 429);
    T_EQ_STR(res.retry_after_ms, "250");
    call('o', "ctl", "sk-ctl-bad", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 401);
    call('o', "ctl", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 200);
    call('o', "ctl", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 429); /* rpm 1 */

    post("/_fake/default",
         "{\"model\":\"ctl2\",\"fault\":{\"kind\":\"status\",\"status\":529}}",
         &res);
    T_EQ_INT(res.status, 200);
    call('a', "ctl2", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 529);
    post("/_fake/default", "{\"model\":\"ctl2\",\"fault\":null}", &res);
    call('a', "ctl2", "sk-1", "hi", 10, 0, &res);
    T_EQ_INT(res.status, 200);

    post("/_fake/stats", NULL, &res);
    T_EQ_INT(res.status, 200);
    T_CONTAINS(res.body, "\"requests\":7");
    T_CONTAINS(res.body, "\"bucket_429\":1");
    post("/_fake/log", NULL, &res);
    T_EQ_INT(res.status, 200);
    T_CONTAINS(res.body, "\"model\":\"ctl\",\"key4\":\"-bad\",\"status\":401");

    /* a body the fake cannot read */
    {
        struct http_request hr;
        char url[128];
        memset(&hr, 0, sizeof(hr));
        memset(&res, 0, sizeof(res));
        snprintf(url, sizeof(url), "%s/chat/completions", base);
        hr.url = url;
        hr.body = "not json";
        hr.body_len = 8;
        T_OK(http_send(client, &hr, on_done, &res) != NULL);
        run_until(&res.done, CALL_LIMIT_MS);
        T_EQ_INT(res.status, 400);
    }
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    lf = llm_fake_new(&loop, 0);
    client = http_new(&loop);
    if (lf == NULL || client == NULL) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", llm_fake_port(lf));

    test_answers();
    test_buckets();
    test_context_and_keys();
    test_scripted();
    test_defaults();
    test_control();

    http_free(client);
    llm_fake_free(lf);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    curl_global_cleanup();
    return t_done();
}
