/* errclass: the failure classes of an LLM call; retry decisions read these. */
#ifndef PARLEY_ERRCLASS_H
#define PARLEY_ERRCLASS_H

/*
 * STYLE.md point 6: a failure carries a class, and nothing downstream looks
 * at a provider's strings again.  The codec extracts status, error
 * type/code and message; errclass_from_http() turns them into one of these.
 * Transport failures (connect, TLS, reset, truncated body) are classified
 * by the glue as ERRCLASS_NETWORK or ERRCLASS_TIMEOUT directly.
 */
enum errclass {
    ERRCLASS_NETWORK = 0,  /* connection refused/reset, DNS, handshake, cut */
    ERRCLASS_TIMEOUT,      /* our per-attempt timeout, or 408 */
    ERRCLASS_RATE_LIMITED, /* 429 rate_limit_exceeded / rate_limit_error */
    ERRCLASS_AUTH,         /* 401: this key is bad */
    ERRCLASS_BAD_REQUEST,  /* 400/422: this request is wrong for this model */
    ERRCLASS_CONTEXT_OVERFLOW, /* prompt too long for the context window */
    ERRCLASS_QUOTA,      /* insufficient_quota, billing: this key is spent */
    ERRCLASS_SERVER,     /* 500/502/503/504, 409: transient trouble */
    ERRCLASS_OVERLOADED, /* 529 overloaded_error */
    ERRCLASS_NOT_FOUND,  /* 404: model or endpoint unknown */
    ERRCLASS_FORBIDDEN,  /* 403: key may not use this model */
    ERRCLASS_INTERNAL,   /* our own failure; no other key or model helps */
    /* another 5xx (501, 505, 506-599 but 529): the server says it cannot
     * do this; not retried on the same model (SPEC §5), next model */
    ERRCLASS_SERVER_PERMANENT,
    /* the endpoint's TLS certificate was refused (untrusted CA, another
     * name, expired): configuration that no wait fixes; next model */
    ERRCLASS_TLS,
    ERRCLASS_COUNT
};

/* "network", "rate_limited", ... for logs and metrics; "?" when invalid. */
const char *errclass_name(enum errclass cls);

/* 1 when the same model+key may be tried again after a wait (SPEC §5). */
int errclass_retryable(enum errclass cls);

/*
 * Classify an HTTP error reply.  status is the HTTP status (a 2xx is
 * accepted for errors that arrive inside a stream, e.g. an Anthropic SSE
 * "error" event); type, code and message are the provider's
 * error.type, error.code and error.message, each NULL when absent.
 * Specific type/code tokens win over the status ("insufficient_quota" on
 * a 429 is ERRCLASS_QUOTA); generic ones ("invalid_request_error",
 * "api_error") only refine the message checks.  Never fails: anything
 * unrecognised falls back on the status, and a status that says nothing
 * gives ERRCLASS_INTERNAL.
 */
enum errclass errclass_from_http(int status, const char *type, const char *code,
                                 const char *message);

#endif
