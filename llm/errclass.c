/* errclass: map a provider's error reply (status, type, code, message) to a
 * class. */
#include "errclass.h"

#include <stddef.h>
#include <string.h>

/* Provider strings come from the network: never look further than this. */
#define ERRCLASS_TOKEN_MAX 64
#define ERRCLASS_MESSAGE_MAX 2048

static const char *const class_names[ERRCLASS_COUNT] = {
    [ERRCLASS_NETWORK] = "network",
    [ERRCLASS_TIMEOUT] = "timeout",
    [ERRCLASS_RATE_LIMITED] = "rate_limited",
    [ERRCLASS_AUTH] = "auth",
    [ERRCLASS_BAD_REQUEST] = "bad_request",
    [ERRCLASS_CONTEXT_OVERFLOW] = "context_overflow",
    [ERRCLASS_QUOTA] = "quota",
    [ERRCLASS_SERVER] = "server",
    [ERRCLASS_OVERLOADED] = "overloaded",
    [ERRCLASS_NOT_FOUND] = "not_found",
    [ERRCLASS_FORBIDDEN] = "forbidden",
    [ERRCLASS_INTERNAL] = "internal",
    [ERRCLASS_SERVER_PERMANENT] = "server_permanent",
    [ERRCLASS_TLS] = "tls",
};

const char *
errclass_name(enum errclass cls)
{
    if ((unsigned)cls >= ERRCLASS_COUNT)
        return "?";
    return class_names[cls];
}

int
errclass_retryable(enum errclass cls)
{
    switch (cls) {
    case ERRCLASS_NETWORK:
    case ERRCLASS_TIMEOUT:
    case ERRCLASS_RATE_LIMITED:
    case ERRCLASS_SERVER:
    case ERRCLASS_OVERLOADED:
        return 1;
    default:
        return 0;
    }
}

/*
 * error.type / error.code tokens of OpenAI, Anthropic and the common
 * OpenAI-compatible servers.  A "strong" token names the failure whatever
 * the status says; a weak one is only a hint used when the status is not
 * an error status (errors inside a 200 stream).
 */
struct token_class {
    const char *token;
    enum errclass cls;
    int strong;
};

static const struct token_class tokens[] = {
    {"insufficient_quota", ERRCLASS_QUOTA, 1},
    {"billing_error", ERRCLASS_QUOTA, 1},
    {"billing_not_active", ERRCLASS_QUOTA, 1},
    {"rate_limit_exceeded", ERRCLASS_RATE_LIMITED, 1},
    {"rate_limit_error", ERRCLASS_RATE_LIMITED, 1},
    {"context_length_exceeded", ERRCLASS_CONTEXT_OVERFLOW, 1},
    {"exceed_context_size_error", ERRCLASS_CONTEXT_OVERFLOW, 1},
    {"request_too_large", ERRCLASS_CONTEXT_OVERFLOW, 1},
    {"invalid_api_key", ERRCLASS_AUTH, 1},
    {"authentication_error", ERRCLASS_AUTH, 1},
    {"permission_error", ERRCLASS_FORBIDDEN, 1},
    {"not_found_error", ERRCLASS_NOT_FOUND, 1},
    {"model_not_found", ERRCLASS_NOT_FOUND, 1},
    {"overloaded_error", ERRCLASS_OVERLOADED, 1},
    {"timeout_error", ERRCLASS_TIMEOUT, 1},
    {"invalid_request_error", ERRCLASS_BAD_REQUEST, 0},
    {"api_error", ERRCLASS_SERVER, 0},
    {"server_error", ERRCLASS_SERVER, 0},
};

/* Message phrases, lower case: providers without a precise code. */
static const char *const overflow_phrases[] = {
    "prompt is too long",      /* Anthropic invalid_request_error */
    "maximum context length",  /* OpenAI, vLLM */
    "context_length_exceeded", /* proxies that only forward the text */
    "context length",          "context window", "context size", /* llama.cpp */
    "input is too long",
};

static const char *const quota_phrases[] = {
    "exceeded your current quota", /* OpenAI insufficient_quota text */
    "credit balance is too low",   /* Anthropic: a 400 that is billing */
    "insufficient_quota",
};

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive equality, bounded by ERRCLASS_TOKEN_MAX. */
static int
token_eq(const char *s, const char *token)
{
    size_t i;

    for (i = 0; i < ERRCLASS_TOKEN_MAX; i++) {
        if (lower((unsigned char)s[i]) != (unsigned char)token[i])
            return 0;
        if (s[i] == '\0')
            return 1;
    }
    return 0;
}

/* Case-insensitive substring search within the first ERRCLASS_MESSAGE_MAX
 * bytes; needle is lower case. */
static int
message_has(const char *msg, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i < ERRCLASS_MESSAGE_MAX && msg[i] != '\0'; i++) {
        size_t j = 0;
        while (j < n && i + j < ERRCLASS_MESSAGE_MAX && msg[i + j] != '\0' &&
               lower((unsigned char)msg[i + j]) == (unsigned char)needle[j])
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

static int
message_has_any(const char *msg, const char *const *phrases, size_t n)
{
    if (msg == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (message_has(msg, phrases[i]))
            return 1;
    return 0;
}

static const struct token_class *
token_find(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (token_eq(s, tokens[i].token))
            return &tokens[i];
    return NULL;
}

/* -1 when the status names no error (2xx, 1xx, 3xx, garbage). */
static int
class_from_status(int status)
{
    switch (status) {
    case 400:
    case 422:
        return ERRCLASS_BAD_REQUEST;
    case 401:
        return ERRCLASS_AUTH;
    case 402:
        return ERRCLASS_QUOTA;
    case 403:
        return ERRCLASS_FORBIDDEN;
    case 404:
        return ERRCLASS_NOT_FOUND;
    case 408:
        return ERRCLASS_TIMEOUT;
    case 409:
        /* a lock/concurrency conflict at the provider: openai-python
         * retries it, so it is transient server-side state */
        return ERRCLASS_SERVER;
    case 413:
        /* the body is too big: trimming history is what fixes it */
        return ERRCLASS_CONTEXT_OVERFLOW;
    case 429:
        return ERRCLASS_RATE_LIMITED;
    case 500:
    case 502:
    case 503:
    case 504:
        return ERRCLASS_SERVER;
    case 529:
        return ERRCLASS_OVERLOADED;
    default:
        break;
    }
    /* SPEC §5 retries exactly 500, 502, 503, 504 and 529 of the 5xx: a
     * 501 Not Implemented or 505 HTTP Version Not Supported is the same
     * on the next attempt */
    if (status >= 500 && status <= 599)
        return ERRCLASS_SERVER_PERMANENT;
    if (status >= 400 && status <= 499)
        return ERRCLASS_BAD_REQUEST;
    return -1;
}

enum errclass
errclass_from_http(int status, const char *type, const char *code,
                   const char *message)
{
    const struct token_class *tc = token_find(code);
    const struct token_class *tt = token_find(type);
    const struct token_class *strong = NULL, *weak = NULL;
    int cls;

    /* code is the more precise field (OpenAI: type "invalid_request_error",
     * code "context_length_exceeded"), so it is looked at first */
    if (tc != NULL && tc->strong)
        strong = tc;
    else if (tt != NULL && tt->strong)
        strong = tt;
    if (tc != NULL && !tc->strong)
        weak = tc;
    else if (tt != NULL && !tt->strong)
        weak = tt;

    if (strong != NULL)
        cls = (int)strong->cls;
    else if ((cls = class_from_status(status)) < 0)
        cls = weak != NULL ? (int)weak->cls : (int)ERRCLASS_INTERNAL;

    /* Messages refine what codes leave vague.  A billing state reported as
     * a 400/403/429 must not be retried on the same key. */
    if ((cls == ERRCLASS_BAD_REQUEST || cls == ERRCLASS_FORBIDDEN ||
         cls == ERRCLASS_RATE_LIMITED) &&
        message_has_any(message, quota_phrases,
                        sizeof(quota_phrases) / sizeof(quota_phrases[0])))
        cls = ERRCLASS_QUOTA;
    else if (cls == ERRCLASS_BAD_REQUEST &&
             message_has_any(message, overflow_phrases,
                             sizeof(overflow_phrases) /
                                 sizeof(overflow_phrases[0])))
        cls = ERRCLASS_CONTEXT_OVERFLOW;
    else if (cls == ERRCLASS_RATE_LIMITED && message != NULL &&
             message_has(message, "request too large"))
        /* OpenAI: "Request too large for MODEL ... on tokens per min":
         * one request above the whole TPM never passes however long we
         * wait; only a smaller prompt does */
        cls = ERRCLASS_CONTEXT_OVERFLOW;
    return (enum errclass)cls;
}
