/* llm_fake: a fake OpenAI + Anthropic API with rate buckets and scripted
 * faults. */
#ifndef PARLEY_LLM_FAKE_H
#define PARLEY_LLM_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/fakes/fake.h"

/*
 * One struct llm_fake is one struct fake (tests/fakes/fake.h) on the
 * caller's loop serving, under base URL http://127.0.0.1:PORT/v1:
 *   POST /v1/chat/completions   OpenAI-style (Authorization: Bearer KEY)
 *   POST /v1/messages           Anthropic-style (x-api-key: KEY)
 *   control API under /_fake/ (see docs/llm.md "LLM fake").
 *
 * What a request gets, first match wins:
 *   1. a body that is not JSON with a string "model": 400 bad request;
 *   2. a missing key: 401; a key set LLM_FAKE_KEY_INVALID: 401
 *      invalid_api_key / authentication_error; LLM_FAKE_KEY_NO_QUOTA: 429
 *      insufficient_quota (Anthropic: 400 invalid_request_error "Your
 *      credit balance is too low ...");
 *   3. the next scripted fault of that model (FIFO; scripts for model NULL
 *      match any model, consumed in one common FIFO with the others);
 *   4. the model's default fault, if one is set (not consumed);
 *   5. the model's rpm bucket, then its tpm bucket (tokens = estimated
 *      prompt + max_tokens, as the providers count): 429 like the
 *      provider, counted in stats.bucket_429;
 *   6. the model's context window: estimated prompt tokens + max_tokens
 *      over it → 400 context_length_exceeded (Anthropic "prompt is too
 *      long: N tokens > M maximum");
 *   7. 200 with the answer "echo: " + last user message text, usage from
 *      llm_estimate_request()/llm_estimate_tokens(), after the latency.
 * Unknown models are served with the defaults (no buckets, no window).
 *
 * Buckets are the providers' shape: a bucket of capacity rpm (tpm)
 * refilled continuously at rpm/60 s (tpm/60 s); a request that finds
 * less than it needs is refused and takes nothing.  Rate-limit headers
 * on every reply of a limited model: x-ratelimit-limit/remaining/
 * reset-requests|tokens (OpenAI) or anthropic-ratelimit-requests|tokens-
 * limit/remaining/reset (Anthropic); a 429 from a bucket also carries
 * retry-after (whole seconds, rounded up) until a request would pass.
 */

struct llm_fake;

enum llm_fake_kind {
    LLM_FAKE_OK,        /* the normal answer (text overrides the echo) */
    LLM_FAKE_429,       /* rate_limit_exceeded / rate_limit_error */
    LLM_FAKE_QUOTA,     /* 429 insufficient_quota (Anthropic: credit 400) */
    LLM_FAKE_AUTH,      /* 401 invalid_api_key / authentication_error */
    LLM_FAKE_CONTEXT,   /* 400 context_length_exceeded / prompt too long */
    LLM_FAKE_STATUS,    /* status 500/502/503/504/529/408/...: provider body */
    LLM_FAKE_HANG,      /* never answer */
    LLM_FAKE_CLOSE,     /* close the connection without a reply */
    LLM_FAKE_MALFORMED, /* 200 with a body that is not JSON */
    LLM_FAKE_TRUNCATED, /* 200 whose JSON is cut in half (HTTP complete) */
    LLM_FAKE_PARTIAL,   /* full Content-Length, half the body, close */
    /* Streamed requests ("stream":true): the stream as usual up to
     * llm_fake_stream.fault_chunks chunks (0: half of them), then */
    LLM_FAKE_STREAM_CUT,   /* the connection drops (no last chunk) */
    LLM_FAKE_STREAM_ERROR, /* an error event: Anthropic overloaded_error,
                              OpenAI a server_error chunk; then the end */
    LLM_FAKE_STREAM_END,   /* a clean end without [DONE] / message_stop */
    /* (not streamed: CUT is PARTIAL, END is TRUNCATED, ERROR is the
     * status 529 (Anthropic) or 500 (OpenAI)) */
    LLM_FAKE_KIND_COUNT
};

/* The header a LLM_FAKE_429 (or a STATUS fault) carries its wait in. */
enum llm_fake_after {
    LLM_FAKE_AFTER_NONE,            /* no wait header at all */
    LLM_FAKE_AFTER_SECONDS,         /* retry-after: ceil(s) */
    LLM_FAKE_AFTER_FLOAT,           /* retry-after: 1.500 */
    LLM_FAKE_AFTER_HTTP_DATE,       /* retry-after: <IMF-fixdate>, rounded up */
    LLM_FAKE_AFTER_MS,              /* retry-after-ms: 1500 */
    LLM_FAKE_AFTER_RESET_REQUESTS,  /* x-ratelimit-reset-requests: 1.5s */
    LLM_FAKE_AFTER_RESET_TOKENS,    /* x-ratelimit-reset-tokens: 6m0s */
    LLM_FAKE_AFTER_ANTHROPIC_RESET, /* anthropic-ratelimit-requests-reset:
                                       RFC 3339, ms precision */
    LLM_FAKE_AFTER_COUNT
};

struct llm_fake_fault {
    enum llm_fake_kind kind;
    int status; /* LLM_FAKE_STATUS: the status (0 = 503) */
    enum llm_fake_after after;
    int64_t after_ms; /* the wait the header says */
    int delay_ms;     /* extra latency before this reply (slow body) */
    const char *text; /* LLM_FAKE_OK: the answer; NULL = echo */
};

/* Per-model limits; 0 = unlimited / none. */
struct llm_fake_model {
    int64_t rpm;
    int64_t tpm;
    int64_t context_window; /* tokens, prompt + max_tokens */
    int latency_ms;         /* added to every reply of this model */
};

enum llm_fake_key_state {
    LLM_FAKE_KEY_OK,
    LLM_FAKE_KEY_INVALID,  /* 401 */
    LLM_FAKE_KEY_NO_QUOTA, /* insufficient_quota */
};

/* One served request (the fake's own log; struct fake keeps raw ones). */
struct llm_fake_entry {
    int64_t t_ms;    /* arrival, fake_now_ms() clock */
    int64_t done_ms; /* reply decided (before latency); hang: -1 */
    char api;        /* 'o' OpenAI, 'a' Anthropic */
    char model[64];
    char key4[5];            /* last 4 characters of the key, "" if none */
    int status;              /* 0 for hang/close/partial */
    enum llm_fake_kind kind; /* what was served */
    int from_bucket;         /* 1: a 429 from the rpm/tpm buckets */
    int64_t prompt_tokens;   /* the fake's estimate */
    int stream;              /* 1: the request asked for a stream */
};

struct llm_fake_stats {
    uint64_t requests;   /* to the two APIs, control API excluded */
    uint64_t ok;         /* 200 answers */
    uint64_t bucket_429; /* 429s from the rpm/tpm buckets: assert 0 */
    uint64_t scripted;   /* scripted or default faults served */
    uint64_t status[6];  /* by class: [2]=2xx, [4]=4xx, [5]=5xx */
};

/*
 * Streamed replies, for requests with "stream":true, in the provider's
 * SSE shape: OpenAI chat.completion.chunk data lines (a role chunk, text
 * chunks, a finish_reason chunk, the usage chunk when stream_options.
 * include_usage, "data: [DONE]"); Anthropic message_start,
 * content_block_start, ping, content_block_delta..., content_block_stop,
 * message_delta, message_stop.  The answer is cut into tokens (words
 * with their leading blanks), tokens_per_event of them per text event;
 * the body goes out as HTTP chunks of events_per_chunk events, or of
 * chunk_bytes bytes cut anywhere, chunk_delay_ms apart.
 */
struct llm_fake_stream {
    int tokens_per_event; /* 0 = 1 */
    int events_per_chunk; /* 0 = 1 */
    size_t chunk_bytes;   /* > 0: fixed-size chunks instead */
    int chunk_delay_ms;
    int fault_chunks; /* where LLM_FAKE_STREAM_* strike; 0 = half */
    /* after each chunk is handed to the socket (index from 0) */
    void (*on_chunk)(size_t index, void *arg);
    void *arg;
};

/* Settings for every streamed reply from now on; NULL = the defaults. */
void llm_fake_set_stream(struct llm_fake *lf, const struct llm_fake_stream *s);

#define LLM_FAKE_LOG_MAX 100000
#define LLM_FAKE_MODELS_MAX 32
#define LLM_FAKE_KEYS_MAX 64
#define LLM_FAKE_SCRIPT_MAX 4096

/*
 * port 0 = ephemeral.  Date-valued headers (HTTP date, RFC 3339) use the
 * real wall clock.  NULL on failure (logged).
 */
struct llm_fake *llm_fake_new(uv_loop_t *loop, int port);
/* The same over TLS (fake_new_tls): https on the port. */
struct llm_fake *llm_fake_new_tls(uv_loop_t *loop, int port,
                                  const char *cert_file, const char *key_file);
/* Asynchronous like fake_free(): run the loop before uv_loop_close(). */
void llm_fake_free(struct llm_fake *lf);
int llm_fake_port(const struct llm_fake *lf);
/* The underlying fake: raw request log, fake_request_header(), ... */
struct fake *llm_fake_fake(struct llm_fake *lf);

/* Latency added to every reply (on top of each model's and fault's). */
void llm_fake_set_latency(struct llm_fake *lf, int delay_ms);

/* Set (or replace) a model's limits; resets its buckets to full. */
int llm_fake_set_model(struct llm_fake *lf, const char *model,
                       const struct llm_fake_model *m);
int llm_fake_set_key(struct llm_fake *lf, const char *key,
                     enum llm_fake_key_state state);

/* Queue one fault for model (NULL = any model).  -1 when full. */
int llm_fake_script(struct llm_fake *lf, const char *model,
                    const struct llm_fake_fault *f);
/* A fault served to every request of model once its script is empty;
 * NULL clears it ("all down" / "back up"). */
int llm_fake_set_default(struct llm_fake *lf, const char *model,
                         const struct llm_fake_fault *f);
size_t llm_fake_script_pending(const struct llm_fake *lf);

size_t llm_fake_log_size(const struct llm_fake *lf);
const struct llm_fake_entry *llm_fake_log_get(const struct llm_fake *lf,
                                              size_t i);
/* Entries for model (NULL = all) with that status (0 = any). */
size_t llm_fake_log_count(const struct llm_fake *lf, const char *model,
                          int status);
void llm_fake_stats(const struct llm_fake *lf, struct llm_fake_stats *out);
/* Clear log, stats, scripts, defaults and refill buckets; keeps models
 * and keys. */
void llm_fake_reset(struct llm_fake *lf);

/* Names used by the control API and logs ("429", "hang", "seconds", ...);
 * -1 when unknown. */
const char *llm_fake_kind_name(enum llm_fake_kind k);
int llm_fake_kind_parse(const char *s);
const char *llm_fake_after_name(enum llm_fake_after a);
int llm_fake_after_parse(const char *s);

#endif
