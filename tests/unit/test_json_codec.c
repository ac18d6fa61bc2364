/* test_json_codec: bounded parsing (size, depth, trailing bytes,
 * truncation, UTF-8, reasons) and typed getters — table-driven. */
#include "core/json_codec.h"
#include "tests/t.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* as the LLM codecs: no UTF-8 check, default reasons but one */
static const struct json_codec_limits plain = {
    .max_bytes = 64,
    .max_depth = 3,
    .why_too_large = "reply over the bound",
};
/* as Telegram and Discord */
static const struct json_codec_limits utf8 = {
    .max_bytes = 64,
    .max_depth = 3,
    .flags = JSON_CODEC_UTF8,
};
/* as Slack: an object, any isspace() after it, its own words */
static const struct json_codec_limits slack = {
    .max_bytes = 64,
    .max_depth = 3,
    .flags = JSON_CODEC_UTF8 | JSON_CODEC_OBJECT | JSON_CODEC_CSPACE,
    .why_empty = "empty",
    .why_too_large = "too large",
    .why_malformed = "not JSON",
};

struct parse_case {
    const char *name;
    const struct json_codec_limits *lim;
    const char *body; /* NULL: a NULL body of len 3 */
    int len;          /* -1: strlen(body) */
    const char *why;  /* NULL: parses */
    json_type type;   /* of the root when it parses */
};

static void
test_parse(void)
{
    static char at_bound[65], over_bound[66];
    static const struct parse_case cases[] = {
        {"empty", &plain, "", -1, "empty body", json_type_null},
        {"null body", &plain, NULL, 3, "empty body", json_type_null},
        {"empty, own word", &slack, "", -1, "empty", json_type_null},
        {"object", &plain, "{\"a\":1}", -1, NULL, json_type_object},
        {"array", &plain, "[1,2]", -1, NULL, json_type_array},
        {"string", &plain, "\"x\"", -1, NULL, json_type_string},
        {"at the size bound", &plain, at_bound, 64, NULL, json_type_string},
        {"over the size bound", &plain, over_bound, 65, "reply over the bound",
         json_type_null},
        {"over, default reason", &utf8, over_bound, 65, "body too large",
         json_type_null},
        {"over, own word", &slack, over_bound, 65, "too large", json_type_null},
        {"depth at the bound", &plain, "[[{}]]", -1, NULL, json_type_array},
        {"depth over the bound", &plain, "[[[[]]]]", -1, "JSON too deep",
         json_type_null},
        {"truncated object", &plain, "{\"a\":", -1, "truncated JSON",
         json_type_null},
        {"truncated string", &utf8, "\"abc", -1, "truncated JSON",
         json_type_null},
        {"len cuts the value", &plain, "{\"a\":1}", 4, "truncated JSON",
         json_type_null},
        {"len stops before garbage", &plain, "{}garbage", 2, NULL,
         json_type_object},
        {"malformed", &plain, "{]", -1, "malformed JSON", json_type_null},
        {"malformed, own word", &slack, "{]", -1, "not JSON", json_type_null},
        {"trailing bytes", &plain, "{} x", -1, "trailing bytes after JSON",
         json_type_null},
        {"two values", &utf8, "{}{}", -1, "trailing bytes after JSON",
         json_type_null},
        {"JSON blanks after", &plain, "{} \r\n\t", -1, NULL, json_type_object},
        {"vertical tab after", &utf8, "{}\v", -1, "trailing bytes after JSON",
         json_type_null},
        {"vertical tab after, CSPACE", &slack, "{}\v\f", -1, NULL,
         json_type_object},
        {"NUL after", &plain, "{}\0", 3, "trailing bytes after JSON",
         json_type_null},
        {"bad UTF-8 passes unchecked", &plain, "\"\xff\"", -1, NULL,
         json_type_string},
        {"bad UTF-8 checked", &utf8, "\"\xff\"", -1, "malformed JSON",
         json_type_null},
        {"not an object", &slack, "[1]", -1, "not a JSON object",
         json_type_null},
        {"object required and given", &slack, " {} ", -1, NULL,
         json_type_object},
    };

    memset(at_bound, ' ', sizeof(at_bound));
    at_bound[0] = '"';
    at_bound[62] = '"';
    memset(over_bound, ' ', sizeof(over_bound));
    over_bound[0] = '{';
    over_bound[1] = '}';

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *c = &cases[i];
        size_t len = c->len < 0 ? strlen(c->body) : (size_t)c->len;
        const char *why = "unset";
        json_object *root = json_codec_parse(c->lim, c->body, len, &why);

        if (c->why == NULL) {
            T_OKF(root != NULL, "%s: parses (why %s)", c->name,
                  why ? why : "NULL");
            T_OKF(why == NULL, "%s: why is NULL", c->name);
            T_OKF(root == NULL || json_object_is_type(root, c->type),
                  "%s: root type", c->name);
        } else {
            T_OKF(root == NULL, "%s: refused", c->name);
            T_EQ_STR(why, c->why);
        }
        json_object_put(root);
    }
}

#define DOC                                                                    \
    "{\"s\":\"x\",\"n\":-5,\"zero\":0,\"big\":9223372036854775807,"            \
    "\"d\":1.5,\"b\":true,\"f\":false,\"z\":null,"                             \
    "\"snow\":\"1234567890123456789\",\"nul\":\"a\\u0000b\","                  \
    "\"o\":{\"k\":1},\"a\":[1]}"

struct get_case {
    const char *key;
    json_type type;
    int found;
};

static void
test_get(json_object *doc)
{
    static const struct get_case cases[] = {
        {"s", json_type_string, 1},  {"s", json_type_int, 0},
        {"n", json_type_int, 1},     {"d", json_type_double, 1},
        {"d", json_type_int, 0},     {"o", json_type_object, 1},
        {"a", json_type_array, 1},   {"a", json_type_object, 0},
        {"b", json_type_boolean, 1}, {"z", json_type_null, 0},
        {"z", json_type_string, 0},  {"missing", json_type_string, 0},
    };
    json_object *arr = json_codec_get(doc, "a", json_type_array);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        T_OKF((json_codec_get(doc, cases[i].key, cases[i].type) != NULL) ==
                  cases[i].found,
              "get %s type %d", cases[i].key, (int)cases[i].type);
    T_OK(json_codec_get(NULL, "s", json_type_string) == NULL);
    T_OK(json_codec_get(arr, "s", json_type_string) == NULL);
    T_OK(json_codec_str(arr, "s") == NULL);
}

struct i64_case {
    const char *key;
    int found;
    int64_t v;     /* when found */
    int64_t count; /* json_codec_count */
};

static void
test_ints(json_object *doc)
{
    static const struct i64_case cases[] = {
        {"n", 1, -5, -1},   {"zero", 1, 0, 0}, {"big", 1, INT64_MAX, INT64_MAX},
        {"d", 0, 0, -1},    /* a double is not an integer */
        {"snow", 0, 0, -1}, /* snowflakes are strings: not read as ints */
        {"b", 0, 0, -1},    {"z", 0, 0, -1},   {"missing", 0, 0, -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct i64_case *c = &cases[i];
        int64_t v = 77;

        T_EQ_INT(json_codec_i64(doc, c->key, &v), c->found);
        T_EQ_INT(v, c->found ? c->v : 77); /* untouched when absent */
        T_EQ_INT(json_codec_count(doc, c->key), c->count);
    }
    T_EQ_INT(json_codec_count(NULL, "n"), -1);
}

struct str_case {
    const char *key;
    const char *str; /* json_codec_str, NULL = none */
    size_t len;      /* json_codec_strn */
    size_t cap;      /* for json_codec_copy */
    int copy_rc;
    const char *copied;
};

static void
test_strings(json_object *doc)
{
    static const struct str_case cases[] = {
        {"s", "x", 1, 2, 0, "x"},
        {"s", "x", 1, 1, -1, ""}, /* no room for the NUL: too long */
        {"snow", "1234567890123456789", 19, 20, 0, "1234567890123456789"},
        {"snow", "1234567890123456789", 19, 19, -1, ""},
        {"nul", "a", 3, 8, -1, ""}, /* a NUL inside is refused */
        {"n", NULL, 0, 8, 1, ""},
        {"z", NULL, 0, 8, 1, ""},
        {"missing", NULL, 0, 8, 1, ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct str_case *c = &cases[i];
        const char *s = json_codec_str(doc, c->key);
        size_t len = 99;
        char dst[32] = "junk";

        if (c->str == NULL) {
            T_OKF(s == NULL, "str %s absent", c->key);
            T_OK(json_codec_strn(doc, c->key, &len) == NULL);
            T_EQ_INT(len, 99);
        } else {
            T_EQ_STR(s, c->str);
            T_OK(json_codec_strn(doc, c->key, &len) == s);
            T_EQ_INT(len, c->len);
        }
        T_EQ_INT(json_codec_copy(doc, c->key, dst, c->cap), c->copy_rc);
        T_EQ_STR(dst, c->copied);
    }
    T_OK(json_codec_strn(doc, "s", NULL) != NULL);
}

static void
test_bools_and_add(json_object *doc)
{
    static const struct {
        const char *key;
        int v;
    } cases[] = {
        {"b", 1}, {"f", 0}, {"n", 0}, {"s", 0}, {"z", 0}, {"missing", 0},
    };
    json_object *o = json_object_new_object();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        T_EQ_INT(json_codec_bool(doc, cases[i].key), cases[i].v);
    T_EQ_INT(json_codec_bool(NULL, "b"), 0);

    T_EQ_INT(json_codec_add(o, "k", NULL), -1);
    T_EQ_INT(json_codec_add(o, "k", json_object_new_int64(3)), 0);
    T_EQ_INT(json_codec_count(o, "k"), 3);
    json_object_put(o);
}

int
main(void)
{
    const char *why = NULL;
    json_object *doc;

    test_parse();
    doc = json_codec_parse(&utf8, DOC, strlen(DOC), &why);
    T_OKF(doc == NULL, "DOC is over 64 bytes: %s", why ? why : "NULL");
    {
        static const struct json_codec_limits roomy = {
            .max_bytes = 4096, .max_depth = 8, .flags = JSON_CODEC_UTF8};
        doc = json_codec_parse(&roomy, DOC, strlen(DOC), &why);
    }
    T_OKF(doc != NULL, "DOC parses: %s", why ? why : "NULL");
    if (doc != NULL) {
        test_get(doc);
        test_ints(doc);
        test_strings(doc);
        test_bools_and_add(doc);
    }
    json_object_put(doc);
    return t_done();
}
