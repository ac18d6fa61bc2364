/* test_errclass: provider error replies -> failure classes, names,
 * retryability. */
#include "llm/errclass.h"
#include "tests/t.h"

struct row {
    int status;
    const char *type, *code, *message;
    enum errclass want;
};

static const struct row rows[] = {
    /* OpenAI */
    {429, "requests", "rate_limit_exceeded",
     "Rate limit reached for gpt-4.1-mini on requests per min (RPM)",
     ERRCLASS_RATE_LIMITED},
    {429, "tokens", "rate_limit_exceeded", NULL, ERRCLASS_RATE_LIMITED},
    {429, "insufficient_quota", "insufficient_quota",
     "You exceeded your current quota, please check your plan and billing "
     "details.",
     ERRCLASS_QUOTA},
    {429, NULL, NULL, "You exceeded your current quota", ERRCLASS_QUOTA},
    {429, "tokens", "rate_limit_exceeded",
     "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, "
     "Requested 36000.",
     ERRCLASS_CONTEXT_OVERFLOW},
    {400, "invalid_request_error", "context_length_exceeded",
     "This model's maximum context length is 128000 tokens.",
     ERRCLASS_CONTEXT_OVERFLOW},
    {400, "invalid_request_error", NULL,
     "This model's maximum context length is 4096 tokens. However, you "
     "requested 5000 tokens",
     ERRCLASS_CONTEXT_OVERFLOW},
    {400, "invalid_request_error", "invalid_value", "bad temperature",
     ERRCLASS_BAD_REQUEST},
    {401, "invalid_request_error", "invalid_api_key", "Incorrect API key",
     ERRCLASS_AUTH},
    {401, NULL, NULL, NULL, ERRCLASS_AUTH},
    {403, NULL, NULL, NULL, ERRCLASS_FORBIDDEN},
    {404, "invalid_request_error", "model_not_found", NULL, ERRCLASS_NOT_FOUND},
    {404, "invalid_request_error", NULL, "The model does not exist",
     ERRCLASS_NOT_FOUND},
    {408, NULL, NULL, NULL, ERRCLASS_TIMEOUT},
    {409, NULL, NULL, NULL, ERRCLASS_SERVER},
    {422, NULL, NULL, NULL, ERRCLASS_BAD_REQUEST},
    {500, "server_error", NULL, "The server had an error", ERRCLASS_SERVER},
    {502, NULL, NULL, NULL, ERRCLASS_SERVER},
    {503, NULL, NULL, "The engine is currently overloaded", ERRCLASS_SERVER},
    {504, NULL, NULL, NULL, ERRCLASS_SERVER},
    /* SPEC §5 retries 500, 502, 503, 504, 529 only: other 5xx are final
     * for the model (a weak token does not make them retryable) */
    {501, "server_error", NULL, "Not implemented", ERRCLASS_SERVER_PERMANENT},
    {501, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {505, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {506, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {507, "api_error", NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {511, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {520, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {528, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {530, NULL, NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    /* a strong token still names the failure */
    {501, "overloaded_error", NULL, NULL, ERRCLASS_OVERLOADED},
    /* Anthropic */
    {400, "invalid_request_error", NULL, "max_tokens: field required",
     ERRCLASS_BAD_REQUEST},
    {400, "invalid_request_error", NULL,
     "prompt is too long: 210000 tokens > 200000 maximum",
     ERRCLASS_CONTEXT_OVERFLOW},
    {400, "invalid_request_error", NULL, "Prompt Is Too Long",
     ERRCLASS_CONTEXT_OVERFLOW},
    {400, "invalid_request_error", NULL,
     "Your credit balance is too low to access the Anthropic API.",
     ERRCLASS_QUOTA},
    {401, "authentication_error", NULL, "invalid x-api-key", ERRCLASS_AUTH},
    {402, "billing_error", NULL, NULL, ERRCLASS_QUOTA},
    {403, "permission_error", NULL, NULL, ERRCLASS_FORBIDDEN},
    {404, "not_found_error", NULL, NULL, ERRCLASS_NOT_FOUND},
    {413, "request_too_large", NULL, NULL, ERRCLASS_CONTEXT_OVERFLOW},
    {413, NULL, NULL, NULL, ERRCLASS_CONTEXT_OVERFLOW},
    {429, "rate_limit_error", NULL, "Number of request tokens has exceeded",
     ERRCLASS_RATE_LIMITED},
    {500, "api_error", NULL, NULL, ERRCLASS_SERVER},
    {529, "overloaded_error", NULL, "Overloaded", ERRCLASS_OVERLOADED},
    {529, NULL, NULL, NULL, ERRCLASS_OVERLOADED},
    {504, "timeout_error", NULL, NULL, ERRCLASS_TIMEOUT},
    /* errors inside a 200 stream: the type alone decides */
    {200, "overloaded_error", NULL, NULL, ERRCLASS_OVERLOADED},
    {200, "api_error", NULL, NULL, ERRCLASS_SERVER},
    {200, "invalid_request_error", NULL, "prompt is too long",
     ERRCLASS_CONTEXT_OVERFLOW},
    {200, "rate_limit_error", NULL, NULL, ERRCLASS_RATE_LIMITED},
    /* case does not matter for tokens */
    {429, "RATE_LIMIT_ERROR", NULL, NULL, ERRCLASS_RATE_LIMITED},
    /* code wins over type, strong wins over status */
    {400, "insufficient_quota", "context_length_exceeded", NULL,
     ERRCLASS_CONTEXT_OVERFLOW},
    {401, NULL, "insufficient_quota", NULL, ERRCLASS_QUOTA},
    /* unknown strings fall back on the status */
    {418, "teapot", "short_and_stout", NULL, ERRCLASS_BAD_REQUEST},
    {599, "weird", NULL, NULL, ERRCLASS_SERVER_PERMANENT},
    {429, "", "", "", ERRCLASS_RATE_LIMITED},
    /* a status that says nothing and no known token: our own trouble */
    {200, NULL, NULL, NULL, ERRCLASS_INTERNAL},
    {0, NULL, NULL, NULL, ERRCLASS_INTERNAL},
    {-1, "garbage", NULL, NULL, ERRCLASS_INTERNAL},
    {302, NULL, NULL, NULL, ERRCLASS_INTERNAL},
    {100000, NULL, NULL, NULL, ERRCLASS_INTERNAL},
};

static void
test_rows(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        enum errclass got =
            errclass_from_http(r->status, r->type, r->code, r->message);
        T_OKF(got == r->want, "row %zu (%d %s %s): got %s, want %s", i,
              r->status, r->type ? r->type : "-", r->code ? r->code : "-",
              errclass_name(got), errclass_name(r->want));
    }
}

static void
test_bounds(void)
{
    /* a token longer than any known one, a huge message without a match,
     * and a match beyond the scanned prefix are all handled */
    static char longtok[200], msg[8192];

    memset(longtok, 'a', sizeof(longtok) - 1);
    T_EQ_INT(errclass_from_http(429, longtok, longtok, NULL),
             ERRCLASS_RATE_LIMITED);
    memset(msg, 'x', sizeof(msg) - 1);
    T_EQ_INT(errclass_from_http(400, NULL, NULL, msg), ERRCLASS_BAD_REQUEST);
    memcpy(msg + 6000, "prompt is too long", 18);
    T_EQ_INT(errclass_from_http(400, NULL, NULL, msg), ERRCLASS_BAD_REQUEST);
    memcpy(msg + 100, "prompt is too long", 18);
    T_EQ_INT(errclass_from_http(400, NULL, NULL, msg),
             ERRCLASS_CONTEXT_OVERFLOW);
    /* a phrase cut by the end of the string */
    T_EQ_INT(errclass_from_http(400, NULL, NULL, "prompt is too lon"),
             ERRCLASS_BAD_REQUEST);
}

static void
test_names(void)
{
    static const char *const want[ERRCLASS_COUNT] = {"network",
                                                     "timeout",
                                                     "rate_limited",
                                                     "auth",
                                                     "bad_request",
                                                     "context_overflow",
                                                     "quota",
                                                     "server",
                                                     "overloaded",
                                                     "not_found",
                                                     "forbidden",
                                                     "internal",
                                                     "server_permanent",
                                                     "tls"};

    for (int i = 0; i < ERRCLASS_COUNT; i++)
        T_EQ_STR(errclass_name((enum errclass)i), want[i]);
    T_EQ_STR(errclass_name(ERRCLASS_COUNT), "?");
    T_EQ_STR(errclass_name((enum errclass) - 1), "?");
}

static void
test_retryable(void)
{
    static const int want[ERRCLASS_COUNT] = {
        [ERRCLASS_NETWORK] = 1,      [ERRCLASS_TIMEOUT] = 1,
        [ERRCLASS_RATE_LIMITED] = 1, [ERRCLASS_SERVER] = 1,
        [ERRCLASS_OVERLOADED] = 1,
    };

    for (int i = 0; i < ERRCLASS_COUNT; i++)
        T_EQ_INT(errclass_retryable((enum errclass)i), want[i]);
    T_EQ_INT(errclass_retryable(ERRCLASS_COUNT), 0);
}

int
main(void)
{
    test_rows();
    test_bounds();
    test_names();
    test_retryable();
    return t_done();
}
