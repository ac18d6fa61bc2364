/* fuzz_anthropic_codec: the anthropic reply/error parsers and body builder on
 * arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "llm/anthropic_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Statuses the first input byte picks from. */
static const int statuses[] = {200, 201, 400, 401, 403, 404, 408, 409,
                               413, 429, 500, 502, 503, 504, 529, 0};

static int
valid_utf8(const char *s)
{
    size_t n = strlen(s), m = 0;
    char *c = llm_utf8_clean(s, n, &m);
    int ok = c != NULL && m == n && memcmp(c, s, n) == 0;
    free(c);
    return ok;
}

static void
check_error(const struct llm_error_info *e)
{
    if ((unsigned)e->cls >= ERRCLASS_COUNT ||
        memchr(e->type, 0, sizeof(e->type)) == NULL ||
        memchr(e->code, 0, sizeof(e->code)) == NULL ||
        memchr(e->message, 0, sizeof(e->message)) == NULL)
        abort();
}

/* The built body is JSON whose last message holds the cleaned text. */
static void
check_build(const char *text)
{
    struct llm_message m = {LLM_ROLE_USER, text};
    struct llm_request rq = {"model", "sys", &m, 1, 16, 0};
    struct llm_body b;
    json_object *root, *msgs, *last, *content;
    char *want;
    size_t wlen;

    if (anthropic_build_request(&rq, &b) != 0)
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct llm_reply r;
    struct llm_error_info e;
    const char *body = (const char *)data + 1;
    char *text;
    int status;

    if (size < 1)
        return 0;
    status = statuses[data[0] % (sizeof(statuses) / sizeof(*statuses))];

    if (anthropic_parse_reply(body, size - 1, &r, &e) == 0) {
        if (r.text == NULL || r.finish_reason == NULL || r.id == NULL ||
            strlen(r.text) > LLM_TEXT_MAX || !valid_utf8(r.text) ||
            !valid_utf8(r.id) || strlen(r.id) > LLM_FIELD_MAX ||
            r.prompt_tokens < -1 || r.completion_tokens < -1)
            abort();
    } else {
        check_error(&e);
    }
    llm_reply_release(&r);

    anthropic_parse_error(status, body, size - 1, &e);
    check_error(&e);
    if (e.status != status)
        abort();

    if (anthropic_parse_response(status, body, size - 1, &r, &e) != 0)
        check_error(&e);
    llm_reply_release(&r);

    /* the same bytes as message text (up to a NUL) */
    text = malloc(size);
    if (text != NULL) {
        memcpy(text, body, size - 1);
        text[size - 1] = '\0';
        check_build(text);
        (void)llm_estimate_tokens(body, size - 1);
        free(text);
    }
    return 0;
}
