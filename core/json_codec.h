/* json_codec: bounded JSON parsing and typed access shared by every *_codec.c.
 */
#ifndef PARLEY_JSON_CODEC_H
#define PARLEY_JSON_CODEC_H

/*
 * This is itself a codec: json-c types appear here, so only *_codec.c
 * files may include it (STYLE point 9).  It holds what every codec used
 * to carry its own copy of: "parse len bytes as one JSON value within a
 * size and a depth bound, refuse trailing bytes, say why", and the typed
 * member getters.  Each codec keeps its own bounds and reason strings.
 */

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* json_codec_limits.flags */
#define JSON_CODEC_UTF8 0x1u   /* refuse invalid UTF-8 inside strings */
#define JSON_CODEC_OBJECT 0x2u /* the root must be an object */
/* after the value, skip any isspace() byte (\v and \f too), not only the
 * four JSON blanks: Slack's historical leniency, kept as it was */
#define JSON_CODEC_CSPACE 0x4u

/*
 * How one codec parses a body.  The reasons are what *why says for the
 * three cases codecs word differently; NULL gives the default in
 * brackets.  Fixed reasons: "out of memory", "truncated JSON", "JSON too
 * deep", "trailing bytes after JSON", "not a JSON object".
 */
struct json_codec_limits {
    size_t max_bytes;      /* over it: refused before parsing (<= INT_MAX) */
    int max_depth;         /* json_tokener depth */
    unsigned flags;        /* JSON_CODEC_* */
    const char *why_empty; /* NULL or len 0 ["empty body"] */
    const char *why_too_large; /* len > max_bytes ["body too large"] */
    const char *why_malformed; /* not JSON ["malformed JSON"] */
};

/*
 * Parse len bytes of body as one JSON value.  The root (the caller owns
 * it: json_object_put) or NULL with *why set to a static reason; *why is
 * NULL on success.
 */
json_object *json_codec_parse(const struct json_codec_limits *lim,
                              const char *body, size_t len, const char **why);

/* Member key of obj when obj is an object and the member has type t (a
 * JSON null never matches); else NULL.  obj NULL is fine. */
json_object *json_codec_get(json_object *obj, const char *key, json_type t);

/* A string member (NUL-terminated, borrowed from obj) or NULL. */
const char *json_codec_str(json_object *obj, const char *key);

/* As json_codec_str, with its length in *len (may hold NUL bytes). */
const char *json_codec_strn(json_object *obj, const char *key, size_t *len);

/*
 * Copies the string member key into dst (cap bytes with the NUL).  0
 * copied, 1 absent or not a string ("" stored), -1 too long or holding a
 * NUL byte ("" stored).
 */
int json_codec_copy(json_object *obj, const char *key, char *dst, size_t cap);

/* An integer member (JSON int, not double nor string) into *out: 1 when
 * present, else 0 with *out untouched. */
int json_codec_i64(json_object *obj, const char *key, int64_t *out);

/* A count: an integer member >= 0, else -1 (absent, other type, < 0). */
int64_t json_codec_count(json_object *obj, const char *key);

/* A boolean member (JSON true/false only): 1 when true, else 0. */
int json_codec_bool(json_object *obj, const char *key);

/* Adds val as obj[key], taking val in every case: -1 when val is NULL
 * (a failed constructor) or the add fails (val released). */
int json_codec_add(json_object *obj, const char *key, json_object *val);

#endif
