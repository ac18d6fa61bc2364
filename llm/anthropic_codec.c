/* anthropic_codec: Anthropic messages API bodies, headers, replies. */
#include "llm/anthropic_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/*
 * The JSON helpers below mirror openai_codec.c's on purpose: json-c types
 * stay inside each codec (STYLE point 9), so they are not shared.
 */

/* compact, "/" as is: the bodies are compared byte for byte in tests */
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A json string from UTF-8 text, invalid sequences replaced. */
static json_object *
jstr(const char *s)
{
    size_t n;
    char *c = llm_utf8_clean(s, strlen(s), &n);
    json_object *o;

    if (c == NULL)
        return NULL;
    o = json_object_new_string_len(c, (int)n);
    free(c);
    return o;
}

static int
add(json_object *obj, const char *key, json_object *val)
{
    if (val == NULL)
        return -1;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

/* 1 when key can go into a header line as is. */
static int
key_ok(const char *key)
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

/*
 * Parse len bytes as one JSON value with the depth bound.  NULL with *why
 * set when it is over the size bound, malformed, truncated, or followed
 * by anything but whitespace.
 */
static json_object *
parse_bounded(const char *body, size_t len, const char **why)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    enum json_tokener_error jerr;
    size_t off;

    *why = NULL;
    if (body == NULL || len == 0) {
        *why = "empty body";
        goto out;
    }
    if (len > LLM_REPLY_MAX) {
        *why = "reply over LLM_REPLY_MAX";
        goto out;
    }
    tok = json_tokener_new_ex(LLM_JSON_DEPTH);
    if (tok == NULL) {
        *why = "out of memory";
        goto out;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    jerr = json_tokener_get_error(tok);
    if (root == NULL) {
        *why = jerr == json_tokener_continue      ? "truncated JSON"
               : jerr == json_tokener_error_depth ? "JSON too deep"
                                                  : "malformed JSON";
        goto out;
    }
    off = json_tokener_get_parse_end(tok);
    while (off < len && (body[off] == ' ' || body[off] == '\n' ||
                         body[off] == '\r' || body[off] == '\t'))
        off++;
    if (off < len) {
        *why = "trailing bytes after JSON";
        json_object_put(root);
        root = NULL;
    }
out:
    if (tok != NULL)
        json_tokener_free(tok);
    return root;
}

/* Member of obj with that type, or NULL. */
static json_object *
get(json_object *obj, const char *key, json_type t)
{
    json_object *v = NULL;

    if (obj == NULL || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, t))
        return NULL;
    return v;
}

static const char *
get_str(json_object *obj, const char *key)
{
    json_object *v = get(obj, key, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

static int64_t
get_count(json_object *obj, const char *key)
{
    json_object *v = get(obj, key, json_type_int);
    int64_t n;

    if (v == NULL)
        return -1;
    n = json_object_get_int64(v);
    return n < 0 ? -1 : n;
}

/* A cleaned malloc'd copy of s ("" for NULL), cut to max bytes at a
 * character boundary.  Cleaned first: a replacement (3 bytes) may be
 * longer than the byte it replaces, and the cut must hold after it. */
static char *
dup_field(const char *s, size_t max)
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

/* A growable byte buffer for merging same-role runs. */
struct buf {
    char *p;
    size_t len, cap;
};

static int
buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int
add_message(json_object *arr, enum llm_role role, const char *text)
{
    json_object *m = json_object_new_object();
    int rc = -1;

    if (m == NULL)
        return -1;
    if (add(m, "role",
            json_object_new_string(role == LLM_ROLE_USER ? "user"
                                                         : "assistant")) != 0 ||
        add(m, "content", jstr(text)) != 0)
        goto out;
    if (json_object_array_add(arr, m) != 0)
        goto out;
    m = NULL;
    rc = 0;
out:
    json_object_put(m);
    return rc;
}

int
anthropic_build_request(const struct llm_request *rq, struct llm_body *out)
{
    json_object *root = NULL, *msgs = NULL;
    struct buf run = {0};
    enum llm_role run_role = LLM_ROLE_USER;
    size_t i;
    int started = 0, rc = -1;
    const char *s;
    size_t len;

    out->data = NULL;
    out->len = 0;
    if (rq == NULL || rq->model == NULL || rq->model[0] == '\0' ||
        rq->max_tokens <= 0 || rq->messages == NULL || rq->stream)
        goto out;
    for (i = 0; i < rq->nmessages; i++)
        if (rq->messages[i].text == NULL ||
            (rq->messages[i].role != LLM_ROLE_USER &&
             rq->messages[i].role != LLM_ROLE_ASSISTANT))
            goto out;

    root = json_object_new_object();
    msgs = json_object_new_array();
    if (root == NULL || msgs == NULL)
        goto out;
    if (add(root, "model", jstr(rq->model)) != 0 ||
        add(root, "max_tokens", json_object_new_int64(rq->max_tokens)) != 0)
        goto out;
    if (rq->system != NULL && rq->system[0] != '\0' &&
        add(root, "system", jstr(rq->system)) != 0)
        goto out;

    /* alternate, starting with user: drop leading assistant turns, merge
     * runs of one role with a blank line between */
    for (i = 0; i < rq->nmessages; i++) {
        const struct llm_message *m = &rq->messages[i];
        if (!started && m->role != LLM_ROLE_USER)
            continue;
        if (started && m->role == run_role) {
            if (buf_add(&run, "\n\n", 2) != 0)
                goto out;
        } else {
            if (started) {
                if (add_message(msgs, run_role, run.p) != 0)
                    goto out;
            }
            started = 1;
            run_role = m->role;
            run.len = 0;
            if (buf_add(&run, "", 0) != 0)
                goto out;
        }
        if (buf_add(&run, m->text, strlen(m->text)) != 0)
            goto out;
    }
    if (!started)
        goto out; /* no user message: the API would refuse it */
    if (add_message(msgs, run_role, run.p) != 0)
        goto out;
    if (add(root, "messages", msgs) != 0) {
        msgs = NULL;
        goto out;
    }
    msgs = NULL;

    s = json_object_to_json_string_length(root, JSON_FLAGS, &len);
    if (s == NULL)
        goto out;
    out->data = malloc(len + 1);
    if (out->data == NULL)
        goto out;
    memcpy(out->data, s, len + 1);
    out->len = len;
    rc = 0;
out:
    free(run.p);
    json_object_put(msgs);
    json_object_put(root);
    return rc;
}

int
anthropic_build_headers(struct llm_headers *h, const char *key)
{
    static const char tail[] = "anthropic-version: " ANTHROPIC_VERSION;
    static const char ctype[] = "Content-Type: application/json";
    size_t klen;
    char *p = h->buf;

    memset(h->lines, 0, sizeof(h->lines));
    if (!key_ok(key))
        return -1;
    klen = strlen(key);
    /* LLM_HEADERS_BUF holds LLM_KEY_MAX + 256: enough for all three */
    h->lines[0] = p;
    memcpy(p, "x-api-key: ", 11);
    memcpy(p + 11, key, klen + 1);
    p += 11 + klen + 1;
    h->lines[1] = p;
    memcpy(p, tail, sizeof(tail));
    p += sizeof(tail);
    h->lines[2] = p;
    memcpy(p, ctype, sizeof(ctype));
    h->lines[3] = NULL;
    return 0;
}

/* {"type":"error","error":{"type","message"}} (or close to it) into *err. */
static int
error_from(json_object *root, int status, struct llm_error_info *err)
{
    json_object *e = NULL;

    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "error", &e) || e == NULL)
        return -1;
    if (json_object_is_type(e, json_type_string)) {
        llm_error_set(err, status, NULL, NULL, json_object_get_string(e));
        return 0;
    }
    if (!json_object_is_type(e, json_type_object))
        return -1;
    llm_error_set(err, status, get_str(e, "type"), NULL, get_str(e, "message"));
    return 0;
}

int
anthropic_parse_reply(const char *body, size_t len, struct llm_reply *reply,
                      struct llm_error_info *err)
{
    json_object *root = NULL, *content, *usage;
    struct buf text = {0};
    const char *why = NULL, *type;
    size_t i, n;
    int rc = -1;

    memset(reply, 0, sizeof(*reply));
    reply->prompt_tokens = reply->completion_tokens = -1;
    root = parse_bounded(body, len, &why);
    if (root == NULL)
        goto bad;
    type = get_str(root, "type");
    if ((type != NULL && strcmp(type, "error") == 0) ||
        get(root, "content", json_type_array) == NULL) {
        if (error_from(root, 200, err) == 0)
            goto out;
    }
    content = get(root, "content", json_type_array);
    if (content == NULL) {
        why = "no content array";
        goto bad;
    }
    if (buf_add(&text, "", 0) != 0)
        goto oom;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(content, i);
        json_object *t = get(blk, "text", json_type_string);
        const char *bt = get_str(blk, "type");
        /* text blocks only: tool_use, thinking, ... are not the answer */
        if (t == NULL || bt == NULL || strcmp(bt, "text") != 0)
            continue;
        if (text.len + (size_t)json_object_get_string_len(t) > LLM_TEXT_MAX) {
            why = "answer over LLM_TEXT_MAX";
            goto bad;
        }
        if (buf_add(&text, json_object_get_string(t),
                    (size_t)json_object_get_string_len(t)) != 0)
            goto oom;
    }
    reply->text = llm_utf8_clean(text.p, text.len, NULL);
    reply->finish_reason =
        dup_field(get_str(root, "stop_reason"), LLM_FIELD_MAX);
    reply->id = dup_field(get_str(root, "id"), LLM_FIELD_MAX);
    if (reply->text == NULL || reply->finish_reason == NULL ||
        reply->id == NULL) {
        llm_reply_release(reply);
        goto oom;
    }
    usage = get(root, "usage", json_type_object);
    reply->prompt_tokens = get_count(usage, "input_tokens");
    reply->completion_tokens = get_count(usage, "output_tokens");
    rc = 0;
    goto out;
oom:
    llm_error_set(err, 200, NULL, NULL, "out of memory");
    err->cls = ERRCLASS_INTERNAL;
    goto out;
bad:
    llm_error_bad_reply(err, 200, why);
out:
    free(text.p);
    json_object_put(root);
    return rc;
}

void
anthropic_parse_error(int status, const char *body, size_t len,
                      struct llm_error_info *err)
{
    const char *why;
    json_object *root = parse_bounded(body, len, &why);

    if (error_from(root, status, err) != 0)
        llm_error_set(err, status, NULL, NULL, get_str(root, "message"));
    json_object_put(root);
}

int
anthropic_parse_response(int status, const char *body, size_t len,
                         struct llm_reply *reply, struct llm_error_info *err)
{
    if (status >= 200 && status <= 299) {
        int rc = anthropic_parse_reply(body, len, reply, err);
        if (rc != 0)
            err->status = status;
        return rc;
    }
    memset(reply, 0, sizeof(*reply));
    reply->prompt_tokens = reply->completion_tokens = -1;
    anthropic_parse_error(status, body, len, err);
    return -1;
}
