/* openai_codec: OpenAI-compatible chat completions bodies, headers, replies. */
#include "llm/openai_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

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

static int
add_message(json_object *arr, const char *role, const char *text)
{
    json_object *m = json_object_new_object();
    int rc = -1;

    if (m == NULL)
        return -1;
    if (json_codec_add(m, "role", json_object_new_string(role)) != 0 ||
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

/* {"include_usage":true}: the usage comes in a last chunk */
static json_object *
stream_options(void)
{
    json_object *o = json_object_new_object();

    if (o != NULL &&
        json_codec_add(o, "include_usage", json_object_new_boolean(1)) != 0) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

int
openai_build_request(const struct llm_request *rq, struct llm_body *out)
{
    json_object *root = NULL, *msgs = NULL;
    const char *s;
    size_t len;
    int rc = -1;

    out->data = NULL;
    out->len = 0;
    if (rq == NULL || rq->model == NULL || rq->model[0] == '\0' ||
        rq->max_tokens <= 0 || rq->nmessages == 0 || rq->messages == NULL)
        goto out;
    for (size_t i = 0; i < rq->nmessages; i++)
        if (rq->messages[i].text == NULL ||
            (rq->messages[i].role != LLM_ROLE_USER &&
             rq->messages[i].role != LLM_ROLE_ASSISTANT))
            goto out;

    root = json_object_new_object();
    msgs = json_object_new_array();
    if (root == NULL || msgs == NULL)
        goto out;
    if (json_codec_add(root, "model", jstr(rq->model)) != 0)
        goto out;
    if (rq->system != NULL && rq->system[0] != '\0' &&
        add_message(msgs, "system", rq->system) != 0)
        goto out;
    for (size_t i = 0; i < rq->nmessages; i++) {
        const struct llm_message *m = &rq->messages[i];
        if (add_message(msgs, m->role == LLM_ROLE_USER ? "user" : "assistant",
                        m->text) != 0)
            goto out;
    }
    if (json_codec_add(root, "messages", msgs) != 0) {
        msgs = NULL; /* json_codec_add() released it */
        goto out;
    }
    msgs = NULL;
    if (json_codec_add(root, "max_tokens",
                       json_object_new_int64(rq->max_tokens)) != 0)
        goto out;
    if (rq->stream &&
        (json_codec_add(root, "stream", json_object_new_boolean(1)) != 0 ||
         json_codec_add(root, "stream_options", stream_options()) != 0))
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
    json_object_put(msgs);
    json_object_put(root);
    return rc;
}

int
openai_build_headers(struct llm_headers *h, const char *key)
{
    int n;

    memset(h->lines, 0, sizeof(h->lines));
    if (!llm_key_ok(key))
        return -1;
    n = snprintf(h->buf, sizeof(h->buf),
                 "Authorization: Bearer %s%cContent-Type: application/json",
                 key, '\0');
    if (n < 0 || (size_t)n >= sizeof(h->buf))
        return -1;
    h->lines[0] = h->buf;
    h->lines[1] = h->buf + strlen(h->buf) + 1;
    h->lines[2] = NULL;
    return 0;
}

/* Replies: the body as one JSON value, bounded (codec.h). */
static const struct json_codec_limits reply_limits = {
    .max_bytes = LLM_REPLY_MAX,
    .max_depth = LLM_JSON_DEPTH,
    .why_too_large = "reply over LLM_REPLY_MAX",
};

/* The {"error":...} of root (an object or a bare string) into *err. */
static int
error_from(json_object *root, int status, struct llm_error_info *err)
{
    json_object *e = NULL, *code = NULL;
    char codebuf[32];
    const char *code_s = NULL;

    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "error", &e) || e == NULL)
        return -1;
    if (json_object_is_type(e, json_type_string)) {
        llm_error_set(err, status, NULL, NULL, json_object_get_string(e));
        return 0;
    }
    if (!json_object_is_type(e, json_type_object))
        return -1;
    if (json_object_object_get_ex(e, "code", &code) && code != NULL) {
        if (json_object_is_type(code, json_type_string))
            code_s = json_object_get_string(code);
        else if (json_object_is_type(code, json_type_int)) {
            snprintf(codebuf, sizeof(codebuf), "%" PRId64,
                     json_object_get_int64(code));
            code_s = codebuf;
        }
    }
    llm_error_set(err, status, json_codec_str(e, "type"), code_s,
                  json_codec_str(e, "message"));
    return 0;
}

int
openai_parse_reply(const char *body, size_t len, struct llm_reply *reply,
                   struct llm_error_info *err)
{
    json_object *root = NULL, *choices, *c0, *msg, *content, *usage;
    const char *why = NULL, *text;
    size_t tlen;
    int rc = -1;

    memset(reply, 0, sizeof(*reply));
    reply->prompt_tokens = reply->completion_tokens = -1;
    root = json_codec_parse(&reply_limits, body, len, &why);
    if (root == NULL)
        goto bad;
    if (error_from(root, 200, err) == 0)
        goto out;
    choices = json_codec_get(root, "choices", json_type_array);
    if (choices == NULL || json_object_array_length(choices) == 0) {
        why = "no choices";
        goto bad;
    }
    c0 = json_object_array_get_idx(choices, 0);
    msg = json_codec_get(c0, "message", json_type_object);
    if (msg == NULL) {
        why = "no choices[0].message";
        goto bad;
    }
    /* content null with a refusal string is an answer: the refusal */
    content = json_codec_get(msg, "content", json_type_string);
    if (content == NULL)
        content = json_codec_get(msg, "refusal", json_type_string);
    if (content == NULL) {
        why = "choices[0].message.content is not a string";
        goto bad;
    }
    text = json_object_get_string(content);
    tlen = (size_t)json_object_get_string_len(content);
    if (tlen > LLM_TEXT_MAX) {
        why = "answer over LLM_TEXT_MAX";
        goto bad;
    }
    reply->text = llm_utf8_clean(text, tlen, NULL);
    reply->finish_reason =
        llm_dup_field(json_codec_str(c0, "finish_reason"), LLM_FIELD_MAX);
    reply->id = llm_dup_field(json_codec_str(root, "id"), LLM_FIELD_MAX);
    if (reply->text == NULL || reply->finish_reason == NULL ||
        reply->id == NULL) {
        llm_reply_release(reply);
        llm_error_set(err, 200, NULL, NULL, NULL);
        err->cls = ERRCLASS_INTERNAL;
        goto out;
    }
    usage = json_codec_get(root, "usage", json_type_object);
    reply->prompt_tokens = json_codec_count(usage, "prompt_tokens");
    reply->completion_tokens = json_codec_count(usage, "completion_tokens");
    rc = 0;
    goto out;
bad:
    llm_error_bad_reply(err, 200, why);
out:
    json_object_put(root);
    return rc;
}

void
openai_parse_error(int status, const char *body, size_t len,
                   struct llm_error_info *err)
{
    const char *why;
    json_object *root = json_codec_parse(&reply_limits, body, len, &why);

    if (error_from(root, status, err) != 0) {
        /* {"message": ...} (some proxies) or nothing: the status decides */
        llm_error_set(err, status, NULL, NULL, json_codec_str(root, "message"));
    }
    json_object_put(root);
}

int
openai_parse_response(int status, const char *body, size_t len,
                      struct llm_reply *reply, struct llm_error_info *err)
{
    return llm_parse_response(status, body, len, reply, err, openai_parse_reply,
                              openai_parse_error);
}

/* Stream chunks: the same bounds as a whole reply. */
static const struct json_codec_limits chunk_limits = {
    .max_bytes = LLM_REPLY_MAX,
    .max_depth = LLM_JSON_DEPTH,
    .why_too_large = "stream chunk over LLM_REPLY_MAX",
    .why_malformed = "malformed stream chunk",
    .why_empty = "empty stream chunk",
};

enum llm_stream_status
openai_stream_event(struct llm_stream *s, const char *name, const char *data,
                    size_t len, struct llm_error_info *err)
{
    json_object *root = NULL, *choices, *c0, *delta, *usage, *t;
    const char *why = NULL, *fr;
    enum llm_stream_status rc = LLM_STREAM_FAIL;

    (void)name; /* OpenAI names no events */
    if (s->ended)
        return LLM_STREAM_END; /* whatever follows [DONE] */
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->ended = 1;
        return LLM_STREAM_END;
    }
    root = json_codec_parse(&chunk_limits, data, len, &why);
    if (root == NULL) {
        llm_error_bad_reply(err, 200, why);
        goto out;
    }
    if (error_from(root, 200, err) == 0) {
        /* {"error":{...}} as a chunk: the provider gave up mid-answer */
        if (err->cls == ERRCLASS_INTERNAL)
            err->cls = ERRCLASS_SERVER;
        goto out;
    }
    s->events++;
    if (s->id[0] == '\0')
        llm_stream_field(s->id, json_codec_str(root, "id"));
    choices = json_codec_get(root, "choices", json_type_array);
    c0 = choices != NULL && json_object_array_length(choices) > 0
             ? json_object_array_get_idx(choices, 0)
             : NULL;
    delta = json_codec_get(c0, "delta", json_type_object);
    /* content, or a refusal (the answer then, as in a whole reply) */
    if ((t = json_codec_get(delta, "content", json_type_string)) != NULL ||
        (t = json_codec_get(delta, "refusal", json_type_string)) != NULL) {
        if (llm_stream_append(s, json_object_get_string(t),
                              (size_t)json_object_get_string_len(t),
                              err) != LLM_STREAM_MORE)
            goto out;
    }
    if ((fr = json_codec_str(c0, "finish_reason")) != NULL)
        llm_stream_field(s->finish_reason, fr);
    usage = json_codec_get(root, "usage", json_type_object);
    if (usage != NULL) {
        int64_t in = json_codec_count(usage, "prompt_tokens");
        int64_t out = json_codec_count(usage, "completion_tokens");
        if (in >= 0)
            s->prompt_tokens = in;
        if (out >= 0)
            s->completion_tokens = out;
    }
    rc = LLM_STREAM_MORE;
out:
    json_object_put(root);
    return rc;
}
