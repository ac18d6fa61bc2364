/* fuzz_llm_codec: the shared body of the LLM codec fuzz targets (openai,
 * anthropic), parameterised by the codec's parse/build functions. */
#ifndef PARLEY_FUZZ_LLM_CODEC_H
#define PARLEY_FUZZ_LLM_CODEC_H

/*
 * Included by exactly one fuzz target each: every target is its own
 * program, so the functions here are static and the codec comes in as a
 * struct fuzz_llm_codec of function pointers.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "llm/codec.h"

struct fuzz_llm_codec {
    int (*build_request)(const struct llm_request *rq, struct llm_body *out);
    int (*parse_reply)(const char *body, size_t len, struct llm_reply *reply,
                       struct llm_error_info *err);
    void (*parse_error)(int status, const char *body, size_t len,
                        struct llm_error_info *err);
    int (*parse_response)(int status, const char *body, size_t len,
                          struct llm_reply *reply, struct llm_error_info *err);
};

/* Statuses the first input byte picks from. */
static const int fuzz_llm_statuses[] = {200, 201, 400, 401, 403, 404, 408, 409,
                                        413, 429, 500, 502, 503, 504, 529, 0};

static int
fuzz_llm_valid_utf8(const char *s)
{
    size_t n = strlen(s), m = 0;
    char *c = llm_utf8_clean(s, n, &m);
    int ok = c != NULL && m == n && memcmp(c, s, n) == 0;
    free(c);
    return ok;
}

static void
fuzz_llm_check_error(const struct llm_error_info *e)
{
    if ((unsigned)e->cls >= ERRCLASS_COUNT ||
        memchr(e->type, 0, sizeof(e->type)) == NULL ||
        memchr(e->code, 0, sizeof(e->code)) == NULL ||
        memchr(e->message, 0, sizeof(e->message)) == NULL)
        abort();
}

/* The built body is JSON whose last message holds the cleaned text. */
static void
fuzz_llm_check_build(const struct fuzz_llm_codec *k, const char *text)
{
    struct llm_message m = {LLM_ROLE_USER, text};
    struct llm_request rq = {"model", "sys", &m, 1, 16, 0};
    struct llm_body b;
    json_object *root, *msgs, *last, *content;
    char *want;
    size_t wlen;

    if (k->build_request(&rq, &b) != 0)
        abort();
    root = json_tokener_parse(b.data);
    if (root == NULL || !json_object_object_get_ex(root, "messages", &msgs))
        abort();
    last = json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1);
    if (!json_object_object_get_ex(last, "content", &content))
        abort();
    want = llm_utf8_clean(text, strlen(text), &wlen);
    if ((size_t)json_object_get_string_len(content) != wlen ||
        memcmp(json_object_get_string(content), want, wlen) != 0)
        abort();
    free(want);
    json_object_put(root);
    llm_body_release(&b);
}

/* One input: byte 0 picks the status, the rest is the body (and text). */
static int
fuzz_llm_one(const struct fuzz_llm_codec *k, const uint8_t *data, size_t size)
{
    struct llm_reply r;
    struct llm_error_info e;
    const char *body = (const char *)data + 1;
    char *text;
    int status;

    if (size < 1)
        return 0;
    status = fuzz_llm_statuses[data[0] % (sizeof(fuzz_llm_statuses) /
                                          sizeof(*fuzz_llm_statuses))];

    if (k->parse_reply(body, size - 1, &r, &e) == 0) {
        if (r.text == NULL || r.finish_reason == NULL || r.id == NULL ||
            strlen(r.text) > LLM_TEXT_MAX || !fuzz_llm_valid_utf8(r.text) ||
            !fuzz_llm_valid_utf8(r.id) || strlen(r.id) > LLM_FIELD_MAX ||
            r.prompt_tokens < -1 || r.completion_tokens < -1)
            abort();
    } else {
        fuzz_llm_check_error(&e);
    }
    llm_reply_release(&r);

    k->parse_error(status, body, size - 1, &e);
    fuzz_llm_check_error(&e);
    if (e.status != status)
        abort();

    if (k->parse_response(status, body, size - 1, &r, &e) != 0)
        fuzz_llm_check_error(&e);
    llm_reply_release(&r);

    /* the same bytes as message text (up to a NUL) */
    text = malloc(size);
    if (text != NULL) {
        memcpy(text, body, size - 1);
        text[size - 1] = '\0';
        fuzz_llm_check_build(k, text);
        (void)llm_estimate_tokens(body, size - 1);
        free(text);
    }
    return 0;
}

#endif
