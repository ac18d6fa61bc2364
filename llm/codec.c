/* codec: provider-neutral LLM types, the token estimator, shared error helpers.
 */
#include "llm/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
llm_reply_release(struct llm_reply *r)
{
    if (r == NULL)
        return;
    free(r->text);
    free(r->finish_reason);
    free(r->id);
    memset(r, 0, sizeof(*r));
    r->prompt_tokens = -1;
    r->completion_tokens = -1;
}

void
llm_body_release(struct llm_body *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/*
 * Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there
 * are not one (overlongs, surrogates and > U+10FFFF included), so that an
 * estimate never depends on how a broken sequence happens to look.
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

#define EST_CAP (INT64_MAX / 2)

int64_t
llm_estimate_tokens(const char *text, size_t len)
{
    /* In sixths of a token: ASCII 2, 2-byte 6, 3-byte 9, 4-byte 18,
     * invalid byte 6 (see codec.h for why these weights). */
    static const int64_t weight[5] = {6, 2, 6, 9, 18};
    const unsigned char *s = (const unsigned char *)text;
    int64_t sixths = 0;
    size_t i = 0;

    if (text == NULL)
        return 0;
    while (i < len) {
        size_t n = utf8_seq(s + i, len - i);
        sixths += weight[n];
        i += n ? n : 1;
        if (sixths >= EST_CAP)
            return EST_CAP;
    }
    return (sixths + 5) / 6;
}

static int64_t
add_sat(int64_t a, int64_t b)
{
    return (a >= EST_CAP - b) ? EST_CAP : a + b;
}

int64_t
llm_estimate_request(const struct llm_request *rq)
{
    int64_t t = LLM_TOKENS_PER_REQUEST;

    if (rq == NULL)
        return 0;
    if (rq->system != NULL && rq->system[0] != '\0') {
        t = add_sat(t, LLM_TOKENS_PER_MESSAGE);
        t = add_sat(t, llm_estimate_tokens(rq->system, strlen(rq->system)));
    }
    for (size_t i = 0; i < rq->nmessages && rq->messages != NULL; i++) {
        const char *s = rq->messages[i].text;
        t = add_sat(t, LLM_TOKENS_PER_MESSAGE);
        if (s != NULL)
            t = add_sat(t, llm_estimate_tokens(s, strlen(s)));
    }
    return t;
}

/* Copies src into dst[cap], cut at a UTF-8 boundary so logs stay valid. */
static void
copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n;

    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int
llm_error_set(struct llm_error_info *e, int status, const char *type,
              const char *code, const char *message)
{
    /* classified from the whole strings: a phrase may lie past the cut */
    e->status = status;
    e->cls = errclass_from_http(status, type, code, message);
    copy_cut(e->type, sizeof(e->type), type);
    copy_cut(e->code, sizeof(e->code), code);
    copy_cut(e->message, sizeof(e->message), message);
    return 0;
}

void
llm_error_bad_reply(struct llm_error_info *e, int status, const char *why)
{
    e->status = status;
    copy_cut(e->type, sizeof(e->type), LLM_BAD_REPLY);
    e->code[0] = '\0';
    copy_cut(e->message, sizeof(e->message), why);
    e->cls = ERRCLASS_SERVER;
}

char *
llm_utf8_clean(const char *s, size_t len, size_t *out_len)
{
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    size_t need = 0, i = 0, o = 0;
    char *out;

    /* two passes: a replacement (3 bytes) may be longer than what it
     * replaces (1 byte), so the size is counted first */
    while (i < len) {
        size_t n = u[i] ? utf8_seq(u + i, len - i) : 0;
        need += n ? n : 3;
        i += n ? n : 1;
    }
    out = malloc(need + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < len;) {
        size_t n = u[i] ? utf8_seq(u + i, len - i) : 0;
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, repl, 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return out;
}

/* Cleaned first, then cut: a replacement (3 bytes) may be longer than the
 * byte it replaces, and the cut must hold after it. */
char *
llm_dup_field(const char *s, size_t max)
{
    size_t n;
    char *c = llm_utf8_clean(s ? s : "", s ? strlen(s) : 0, &n);

    if (c != NULL && n > max) {
        n = max;
        while (n > 0 && ((unsigned char)c[n] & 0xC0) == 0x80)
            n--;
        c[n] = '\0';
    }
    return c;
}

int
llm_key_ok(const char *key)
{
    size_t n;

    if (key == NULL || key[0] == '\0')
        return 0;
    n = strlen(key);
    if (n > LLM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

int
llm_parse_response(int status, const char *body, size_t len,
                   struct llm_reply *reply, struct llm_error_info *err,
                   int (*parse_reply)(const char *body, size_t len,
                                      struct llm_reply *reply,
                                      struct llm_error_info *err),
                   void (*parse_error)(int status, const char *body, size_t len,
                                       struct llm_error_info *err))
{
    int rc;

    if (status >= 200 && status <= 299) {
        rc = parse_reply(body, len, reply, err);
        if (rc != 0)
            err->status = status;
        return rc;
    }
    memset(reply, 0, sizeof(*reply));
    reply->prompt_tokens = reply->completion_tokens = -1;
    parse_error(status, body, len, err);
    return -1;
}

/* ---- streams ----------------------------------------------------------- */

void
llm_stream_init(struct llm_stream *s)
{
    memset(s, 0, sizeof(*s));
    s->prompt_tokens = -1;
    s->completion_tokens = -1;
}

void
llm_stream_release(struct llm_stream *s)
{
    if (s == NULL)
        return;
    free(s->text);
    llm_stream_init(s);
}

enum llm_stream_status
llm_stream_append(struct llm_stream *s, const char *text, size_t len,
                  struct llm_error_info *err)
{
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)text;
    size_t need = 0, i;

    /* the cleaned size first: a replacement is longer than its byte */
    for (i = 0; i < len;) {
        size_t n = u[i] ? utf8_seq(u + i, len - i) : 0;
        need += n ? n : 3;
        i += n ? n : 1;
    }
    if (need > LLM_TEXT_MAX - s->len) {
        llm_error_bad_reply(err, 200, "answer over LLM_TEXT_MAX");
        return LLM_STREAM_FAIL;
    }
    if (s->len + need + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        char *p;

        while (cap < s->len + need + 1)
            cap *= 2;
        p = realloc(s->text, cap);
        if (p == NULL) {
            llm_error_set(err, 200, NULL, NULL, "out of memory");
            err->cls = ERRCLASS_INTERNAL;
            return LLM_STREAM_FAIL;
        }
        s->text = p;
        s->cap = cap;
    }
    for (i = 0; i < len;) {
        size_t n = u[i] ? utf8_seq(u + i, len - i) : 0;

        if (n) {
            memcpy(s->text + s->len, text + i, n);
            s->len += n;
            i += n;
        } else {
            memcpy(s->text + s->len, repl, 3);
            s->len += 3;
            i++;
        }
    }
    s->text[s->len] = '\0';
    return LLM_STREAM_MORE;
}

void
llm_stream_field(char *dst, const char *src)
{
    char *c = llm_dup_field(src, LLM_FIELD_MAX);

    /* out of memory leaves the field empty: it is informational */
    snprintf(dst, LLM_FIELD_MAX + 1, "%s", c != NULL ? c : "");
    free(c);
}

int
llm_stream_reply(struct llm_stream *s, struct llm_reply *reply,
                 struct llm_error_info *err)
{
    memset(reply, 0, sizeof(*reply));
    reply->prompt_tokens = reply->completion_tokens = -1;
    if (!s->ended) {
        llm_error_bad_reply(err, 200, "the stream ended before its last event");
        copy_cut(err->type, sizeof(err->type), LLM_STREAM_CUT);
        err->cls = ERRCLASS_NETWORK;
        return -1;
    }
    reply->text = s->text != NULL ? s->text : strdup("");
    reply->finish_reason = strdup(s->finish_reason);
    reply->id = strdup(s->id);
    if (reply->text == NULL || reply->finish_reason == NULL ||
        reply->id == NULL) {
        if (reply->text == s->text)
            reply->text = NULL; /* still s's */
        llm_reply_release(reply);
        llm_error_set(err, 200, NULL, NULL, "out of memory");
        err->cls = ERRCLASS_INTERNAL;
        return -1;
    }
    s->text = NULL; /* moved */
    s->len = s->cap = 0;
    reply->prompt_tokens = s->prompt_tokens;
    reply->completion_tokens = s->completion_tokens;
    return 0;
}
