/* json_codec: bounded JSON parsing and typed access shared by every *_codec.c.
 */
#include "core/json_codec.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>

/* The four blanks JSON allows between tokens (RFC 8259 section 2). */
static int
json_blank(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

json_object *
json_codec_parse(const struct json_codec_limits *lim, const char *body,
                 size_t len, const char **why)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    enum json_tokener_error jerr;
    size_t off;

    *why = NULL;
    if (body == NULL || len == 0) {
        *why = lim->why_empty ? lim->why_empty : "empty body";
        goto out;
    }
    /* json_tokener_parse_ex takes an int length */
    if (len > lim->max_bytes || len > (size_t)INT_MAX) {
        *why = lim->why_too_large ? lim->why_too_large : "body too large";
        goto out;
    }
    if ((tok = json_tokener_new_ex(lim->max_depth)) == NULL) {
        *why = "out of memory";
        goto out;
    }
    if (lim->flags & JSON_CODEC_UTF8)
        json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, body, (int)len);
    jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        *why = jerr == json_tokener_continue      ? "truncated JSON"
               : jerr == json_tokener_error_depth ? "JSON too deep"
               : lim->why_malformed               ? lim->why_malformed
                                                  : "malformed JSON";
        goto fail;
    }
    off = json_tokener_get_parse_end(tok);
    while (off < len && ((lim->flags & JSON_CODEC_CSPACE)
                             ? isspace((unsigned char)body[off]) != 0
                             : json_blank(body[off])))
        off++;
    if (off < len) {
        *why = "trailing bytes after JSON";
        goto fail;
    }
    if ((lim->flags & JSON_CODEC_OBJECT) &&
        !json_object_is_type(root, json_type_object)) {
        *why = "not a JSON object";
        goto fail;
    }
    goto out;
fail:
    json_object_put(root);
    root = NULL;
out:
    if (tok != NULL)
        json_tokener_free(tok);
    return root;
}

json_object *
json_codec_get(json_object *obj, const char *key, json_type t)
{
    json_object *v = NULL;

    if (obj == NULL || !json_object_is_type(obj, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return NULL;
    return json_object_is_type(v, t) ? v : NULL;
}

const char *
json_codec_str(json_object *obj, const char *key)
{
    json_object *v = json_codec_get(obj, key, json_type_string);

    return v != NULL ? json_object_get_string(v) : NULL;
}

const char *
json_codec_strn(json_object *obj, const char *key, size_t *len)
{
    json_object *v = json_codec_get(obj, key, json_type_string);

    if (v == NULL)
        return NULL;
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

int
json_codec_copy(json_object *obj, const char *key, char *dst, size_t cap)
{
    size_t n = 0;
    const char *s = json_codec_strn(obj, key, &n);

    dst[0] = '\0';
    if (s == NULL)
        return 1;
    if (n >= cap || strlen(s) != n)
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

int
json_codec_i64(json_object *obj, const char *key, int64_t *out)
{
    json_object *v = json_codec_get(obj, key, json_type_int);

    if (v == NULL)
        return 0;
    *out = json_object_get_int64(v);
    return 1;
}

int64_t
json_codec_count(json_object *obj, const char *key)
{
    int64_t n = -1;

    if (!json_codec_i64(obj, key, &n))
        return -1;
    return n < 0 ? -1 : n;
}

int
json_codec_bool(json_object *obj, const char *key)
{
    json_object *v = json_codec_get(obj, key, json_type_boolean);

    return v != NULL && json_object_get_boolean(v);
}

int
json_codec_add(json_object *obj, const char *key, json_object *val)
{
    if (val == NULL)
        return -1;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}
