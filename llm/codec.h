/* codec: provider-neutral LLM request/reply types, bounds and token estimates.
 */
#ifndef PARLEY_CODEC_H
#define PARLEY_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "llm/errclass.h"

/*
 * The shapes both wire codecs (llm/openai_codec.h, llm/anthropic_codec.h)
 * and the client share.  Nothing here knows JSON: the codecs turn these
 * into bodies and parse replies into them (STYLE point 9).  See
 * docs/llm.md "Wire formats".
 */

/* Bounds on network input (STYLE point 10); over them is a classified error. */
#define LLM_REPLY_MAX (4u * 1024 * 1024) /* bytes of reply JSON parsed */
#define LLM_TEXT_MAX (1u * 1024 * 1024)  /* bytes of answer text kept */
#define LLM_JSON_DEPTH 32                /* json_tokener depth limit */
#define LLM_FIELD_MAX 256                /* id, finish_reason: longer = cut */

/* Bounds on what we send: a header value, a key, a model name. */
#define LLM_KEY_MAX 512
#define LLM_HEADERS_MAX 4                   /* header lines a codec adds */
#define LLM_HEADERS_BUF (LLM_KEY_MAX + 256) /* their bytes, NULs included */

/* Token estimator constants (see llm_estimate_tokens). */
#define LLM_TOKENS_PER_MESSAGE 4 /* role + framing per message */
#define LLM_TOKENS_PER_REQUEST 3 /* reply priming */

enum llm_role { LLM_ROLE_USER, LLM_ROLE_ASSISTANT };

/* Texts are NUL-terminated UTF-8; invalid sequences are sent as U+FFFD. */
struct llm_message {
    enum llm_role role;
    const char *text;
};

/* Borrowed for the duration of a build call only. */
struct llm_request {
    const char *model;  /* the provider's model name */
    const char *system; /* NULL or "" = none */
    const struct llm_message *messages;
    size_t nmessages;
    int64_t max_tokens; /* > 0; Anthropic requires it, OpenAI gets it too */
    int stream;         /* 1: ask for an SSE stream (docs/llm.md "Streaming") */
};

/*
 * A parsed success.  Every pointer is owned (malloc'd, NUL-terminated) and
 * non-NULL after a successful parse; "" when the provider omitted the
 * field.  Token counts are -1 when the reply had no usage.
 */
struct llm_reply {
    char *text;
    int64_t prompt_tokens; /* OpenAI prompt_tokens, Anthropic input_tokens */
    int64_t completion_tokens; /* completion_tokens / output_tokens */
    char *finish_reason;       /* finish_reason / stop_reason */
    char *id;
};

/* Frees the strings and zeroes the struct; NULL and zeroed are fine. */
void llm_reply_release(struct llm_reply *r);

/*
 * A parsed failure: what the provider said (strings cut to fit, always
 * NUL-terminated, "" when absent) and the class errclass_from_http() gave.
 * A reply that could not be understood (malformed or truncated JSON, a
 * 2xx without choices/content, a non-string content, over LLM_REPLY_MAX)
 * has type LLM_BAD_REPLY and class ERRCLASS_SERVER: retryable, as a
 * flaky proxy is the usual cause.
 */
#define LLM_BAD_REPLY "bad_reply"
struct llm_error_info {
    int status; /* HTTP status as received */
    enum errclass cls;
    char type[64];     /* error.type ("rate_limit_error", ...) */
    char code[64];     /* error.code as text ("429", "insufficient_quota") */
    char message[256]; /* error.message, for logs (may hold user text) */
};

/* A built request body: malloc'd, NUL-terminated, len without the NUL. */
struct llm_body {
    char *data;
    size_t len;
};
void llm_body_release(struct llm_body *b);

/*
 * Header lines for http_request.headers: lines[] is NULL-terminated and
 * points into buf, so the struct can live on the caller's stack and be
 * handed to http_send (which copies them).
 */
struct llm_headers {
    const char *lines[LLM_HEADERS_MAX + 1];
    char buf[LLM_HEADERS_BUF];
};

/*
 * Conservative token estimate of len bytes of UTF-8, for budgets, pacing
 * (tpm reservations) and history trimming.  It must not undershoot real
 * BPE tokenisers (cl100k/o200k, Claude's) by much, so it counts in
 * sixths of a token and rounds up:
 *   ASCII byte 1/3 (English is ~4 bytes/token, digits ~3),
 *   2-byte sequence (Latin-1, Cyrillic, Greek, ...) 1,
 *   3-byte sequence (CJK, kana, Hangul, ...) 3/2,
 *   4-byte sequence (emoji, rare CJK) 3,
 *   invalid byte 1.
 * NULL or len 0 gives 0.  Never negative, saturates at INT64_MAX/2.
 */
int64_t llm_estimate_tokens(const char *text, size_t len);

/*
 * Estimated prompt tokens of a whole request: the system text and every
 * message, plus LLM_TOKENS_PER_MESSAGE per message (system included) and
 * LLM_TOKENS_PER_REQUEST.  max_tokens is not included.
 */
int64_t llm_estimate_request(const struct llm_request *rq);

/* Shared by the codecs; not for other callers. */
int llm_error_set(struct llm_error_info *e, int status, const char *type,
                  const char *code, const char *message);
void llm_error_bad_reply(struct llm_error_info *e, int status, const char *why);
/*
 * A malloc'd NUL-terminated copy of len bytes with every invalid UTF-8
 * sequence (and NUL byte) replaced by U+FFFD; *out_len without the NUL.
 * NULL when out of memory.
 */
char *llm_utf8_clean(const char *s, size_t len, size_t *out_len);
/* A cleaned (as llm_utf8_clean) malloc'd copy of s ("" for NULL), cut to
 * max bytes at a character boundary; NULL when out of memory. */
char *llm_dup_field(const char *s, size_t max);
/* 1 when key can go into a header line as is: 1..LLM_KEY_MAX bytes, no
 * control character. */
int llm_key_ok(const char *key);

/*
 * What both *_parse_response do: a 2xx goes to parse_reply (a failure there
 * keeps the HTTP status), anything else to parse_error with an empty reply
 * whose usage is unknown (-1).  0 with *reply filled, else -1 with *err.
 */
int llm_parse_response(int status, const char *body, size_t len,
                       struct llm_reply *reply, struct llm_error_info *err,
                       int (*parse_reply)(const char *body, size_t len,
                                          struct llm_reply *reply,
                                          struct llm_error_info *err),
                       void (*parse_error)(int status, const char *body,
                                           size_t len,
                                           struct llm_error_info *err));

/*
 * Streaming (SSE) replies, decoded event by event by
 * openai_stream_event()/anthropic_stream_event() (after llm/sse.h split
 * the body).  The text accumulates here, cleaned (invalid UTF-8 as
 * U+FFFD) and NUL-terminated, so a caller may show it as it grows.
 * Usage is -1 until the stream says it.  ended is set by the terminal
 * event (OpenAI "data: [DONE]", Anthropic message_stop); a stream that
 * stops without it is cut.  events counts the events decoded.
 */
struct llm_stream {
    char *text;
    size_t len, cap;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    char finish_reason[LLM_FIELD_MAX + 1];
    char id[LLM_FIELD_MAX + 1];
    int ended;
    size_t events;
};

/* What one event did. */
enum llm_stream_status {
    LLM_STREAM_MORE = 0, /* go on */
    LLM_STREAM_END,      /* the terminal event: llm_stream_reply() now */
    LLM_STREAM_FAIL,     /* *err filled; the attempt failed */
};

void llm_stream_init(struct llm_stream *s);
/* Frees the text and re-initialises; NULL is fine. */
void llm_stream_release(struct llm_stream *s);

/*
 * The complete reply of an ended stream: *reply gets the text (moved out
 * of s) and the rest; 0.  -1 with *err when the stream has not ended
 * (class ERRCLASS_NETWORK, type LLM_STREAM_CUT: the connection ended
 * early) or out of memory (ERRCLASS_INTERNAL).
 */
#define LLM_STREAM_CUT "stream_cut"
int llm_stream_reply(struct llm_stream *s, struct llm_reply *reply,
                     struct llm_error_info *err);

/* Shared by the codecs; not for other callers. */
/* Appends len bytes of text, cleaned; over LLM_TEXT_MAX is a bad reply. */
enum llm_stream_status llm_stream_append(struct llm_stream *s, const char *text,
                                         size_t len,
                                         struct llm_error_info *err);
void llm_stream_field(char *dst, const char *src);

#endif
