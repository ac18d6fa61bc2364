/* anthropic_codec: Anthropic messages API bodies, headers, replies. */
#include "llm/anthropic_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/json_codec.h"

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

/* Replies: the body as one JSON value, bounded (codec.h). */
static const struct json_codec_limits reply_limits = {
    .max_bytes = LLM_REPLY_MAX,
    .max_depth = LLM_JSON_DEPTH,
    .why_too_large = "reply over LLM_REPLY_MAX",
};

static int
add_message(json_object *arr, enum llm_role role, const char *text)
{
    json_object *m = json_object_new_object();
    int rc = -1;

    if (m == NULL)
        return -1;
    if (json_codec_add(m, "role",
                       json_object_new_string(
                           role == LLM_ROLE_USER ? "user" : "assistant")) !=
            0 ||
        json_codec_add(m, "content", jstr(text)) != 0)
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
        rq->max_tokens <= 0 || rq->messages == NULL)
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
    if (json_codec_add(root, "model", jstr(rq->model)) != 0 ||
        json_codec_add(root, "max_tokens",
                       json_object_new_int64(rq->max_tokens)) != 0)
        goto out;
    if (rq->system != NULL && rq->system[0] != '\0' &&
        json_codec_add(root, "system", jstr(rq->system)) != 0)
        goto out;

    /* alternate, starting with user: drop leading assistant turns, merge
     * runs of one role with a blank line between */
    for (i = 0; i < rq->nmessages; i++) {
        const struct llm_message *m = &rq->messages[i];
        if (!started && m->role != LLM_ROLE_USER)
            continue;
        if (started && m->role == run_role) {
            buf_add(&run, "\n\n", 2);
            if (run.oom)
                goto out;
        } else {
            if (started) {
                if (add_message(msgs, run_role, run.p) != 0)
                    goto out;
            }
            started = 1;
            run_role = m->role;
            run.len = 0;
            buf_add(&run, "", 0);
            if (run.oom)
                goto out;
        }
        buf_add(&run, m->text, strlen(m->text));
        if (run.oom)
            goto out;
    }
    if (!started)
        goto out; /* no user message: the API would refuse it */
    if (add_message(msgs, run_role, run.p) != 0)
        goto out;
    if (json_codec_add(root, "messages", msgs) != 0) {
        msgs = NULL;
        goto out;
    }
    msgs = NULL;
    if (rq->stream &&
        json_codec_add(root, "stream", json_object_new_boolean(1)) != 0)
        goto out;

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
    if (!llm_key_ok(key))
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
    llm_error_set(err, status, json_codec_str(e, "type"), NULL,
                  json_codec_str(e, "message"));
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
    root = json_codec_parse(&reply_limits, body, len, &why);
    if (root == NULL)
        goto bad;
    type = json_codec_str(root, "type");
    if ((type != NULL && strcmp(type, "error") == 0) ||
        json_codec_get(root, "content", json_type_array) == NULL) {
        if (error_from(root, 200, err) == 0)
            goto out;
    }
    content = json_codec_get(root, "content", json_type_array);
    if (content == NULL) {
        why = "no content array";
        goto bad;
    }
    buf_add(&text, "", 0);
    if (text.oom)
        goto oom;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(content, i);
        json_object *t = json_codec_get(blk, "text", json_type_string);
        const char *bt = json_codec_str(blk, "type");
        /* text blocks only: tool_use, thinking, ... are not the answer */
        if (t == NULL || bt == NULL || strcmp(bt, "text") != 0)
            continue;
        if (text.len + (size_t)json_object_get_string_len(t) > LLM_TEXT_MAX) {
            why = "answer over LLM_TEXT_MAX";
            goto bad;
        }
        buf_add(&text, json_object_get_string(t),
                (size_t)json_object_get_string_len(t));
        if (text.oom)
            goto oom;
    }
    reply->text = llm_utf8_clean(text.p, text.len, NULL);
    reply->finish_reason =
        llm_dup_field(json_codec_str(root, "stop_reason"), LLM_FIELD_MAX);
    reply->id = llm_dup_field(json_codec_str(root, "id"), LLM_FIELD_MAX);
    if (reply->text == NULL || reply->finish_reason == NULL ||
        reply->id == NULL) {
        llm_reply_release(reply);
        goto oom;
    }
    usage = json_codec_get(root, "usage", json_type_object);
    reply->prompt_tokens = json_codec_count(usage, "input_tokens");
    reply->completion_tokens = json_codec_count(usage, "output_tokens");
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
    json_object *root = json_codec_parse(&reply_limits, body, len, &why);

    if (error_from(root, status, err) != 0)
        llm_error_set(err, status, NULL, NULL, json_codec_str(root, "message"));
    json_object_put(root);
}

int
anthropic_parse_response(int status, const char *body, size_t len,
                         struct llm_reply *reply, struct llm_error_info *err)
{
    return llm_parse_response(status, body, len, reply, err,
                              anthropic_parse_reply, anthropic_parse_error);
}

/* Stream events: the same bounds as a whole reply. */
static const struct json_codec_limits event_limits = {
    .max_bytes = LLM_REPLY_MAX,
    .max_depth = LLM_JSON_DEPTH,
    .why_too_large = "stream event over LLM_REPLY_MAX",
    .why_malformed = "malformed stream event",
    .why_empty = "empty stream event",
};

static void
stream_usage(struct llm_stream *s, json_object *usage)
{
    int64_t in = json_codec_count(usage, "input_tokens");
    int64_t out = json_codec_count(usage, "output_tokens");

    if (in >= 0)
        s->prompt_tokens = in;
    if (out >= 0)
        s->completion_tokens = out; /* cumulative in message_delta */
}

enum llm_stream_status
anthropic_stream_event(struct llm_stream *s, const char *name, const char *data,
                       size_t len, struct llm_error_info *err)
{
    json_object *root = NULL, *o, *t;
    const char *why = NULL, *type, *bt;
    enum llm_stream_status rc = LLM_STREAM_FAIL;

    if (s->ended)
        return LLM_STREAM_END;
    root = json_codec_parse(&event_limits, data, len, &why);
    if (root == NULL) {
        llm_error_bad_reply(err, 200, why);
        goto out;
    }
    /* the data's own type decides; the SSE name when it has none */
    type = json_codec_str(root, "type");
    if (type == NULL)
        type = name;
    if (strcmp(type, "error") == 0) {
        if (error_from(root, 200, err) != 0)
            llm_error_set(err, 200, NULL, NULL, NULL);
        if (err->cls == ERRCLASS_INTERNAL)
            err->cls = ERRCLASS_SERVER;
        goto out;
    }
    s->events++;
    rc = LLM_STREAM_MORE;
    if (strcmp(type, "message_start") == 0) {
        o = json_codec_get(root, "message", json_type_object);
        llm_stream_field(s->id, json_codec_str(o, "id"));
        stream_usage(s, json_codec_get(o, "usage", json_type_object));
    } else if (strcmp(type, "content_block_start") == 0) {
        /* text blocks only, as in a whole reply; they start "" */
        o = json_codec_get(root, "content_block", json_type_object);
        bt = json_codec_str(o, "type");
        t = json_codec_get(o, "text", json_type_string);
        if (bt != NULL && strcmp(bt, "text") == 0 && t != NULL)
            rc = llm_stream_append(s, json_object_get_string(t),
                                   (size_t)json_object_get_string_len(t), err);
    } else if (strcmp(type, "content_block_delta") == 0) {
        o = json_codec_get(root, "delta", json_type_object);
        bt = json_codec_str(o, "type");
        t = json_codec_get(o, "text", json_type_string);
        if (bt != NULL && strcmp(bt, "text_delta") == 0 && t != NULL)
            rc = llm_stream_append(s, json_object_get_string(t),
                                   (size_t)json_object_get_string_len(t), err);
    } else if (strcmp(type, "message_delta") == 0) {
        o = json_codec_get(root, "delta", json_type_object);
        if (json_codec_str(o, "stop_reason") != NULL)
            llm_stream_field(s->finish_reason,
                             json_codec_str(o, "stop_reason"));
        stream_usage(s, json_codec_get(root, "usage", json_type_object));
    } else if (strcmp(type, "message_stop") == 0) {
        s->ended = 1;
        rc = LLM_STREAM_END;
    }
    /* ping, content_block_stop and newer events: nothing to take */
out:
    json_object_put(root);
    return rc;
}
