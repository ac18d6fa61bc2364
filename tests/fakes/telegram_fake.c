/* telegram_fake: a Bot API server for tests (long poll, sends, flood limits).
 */
#include "tests/fakes/telegram_fake.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#define TF_VISIBLE_MAX 4096
#define TF_HOLD_DEFAULT_MS 50000
#define TF_TAG_DEPTH 32

struct tf_rec { /* any message of a chat, for reply_to_message */
    int64_t id, from;
    int is_bot;
    char *name, *text;
};

struct tf_chat {
    int64_t id;
    char type[16];
    int64_t next_msg;
    int blocked;
    int64_t migrate_to;
    struct tf_rec *recs;
    size_t nrecs, caprecs;
    struct telegram_fake_sent *sent;
    size_t nsent, capsent;
    int64_t tat;  /* GCRA: theoretical arrival time, per chat */
    int64_t *win; /* group window: send times, ring */
    size_t win_n;
    int64_t limited_until; /* after a 429: refused until then */
    uint64_t n429, actions;
    int64_t action_ms; /* fake_now_ms() of the last sendChatAction */
    int64_t *ops;      /* accepted sends, edits and deletes: fake_now_ms() */
    size_t nops, capops;
};

struct tf_update {
    int64_t id;
    char kind[32];
    char *json;
};

struct tf_script {
    char method[32];
    int64_t chat;
    int code;
    int64_t retry_after, migrate_to;
    char desc[200];
    int count;
};

struct tf_query {
    char id[32];
    int answered;
};

struct telegram_fake {
    uv_loop_t *loop;
    struct fake *f;
    char token[128];
    char base[64];
    int64_t me_id;
    char me_name[64];
    int hold_max;
    int webhook;
    int conflict_on_overlap;
    int64_t held_until;
    int chat_burst;
    int64_t chat_interval;
    int group_n;
    int64_t group_window;
    int global_n;
    int64_t global_window;
    int64_t *gwin; /* global window ring */
    size_t gwin_n, gwin_cap;
    struct tf_chat *chats;
    size_t nchats, capchats;
    size_t *chat_slots; /* open addressing: chat index + 1, 0 = empty */
    size_t nslots;      /* a power of two, at least 2 * nchats */
    struct tf_update *ups;
    size_t nups, capups;
    int64_t next_update;
    int64_t offset;
    char allowed[256]; /* remembered allowed_updates, "" = all */
    struct tf_script *scripts;
    size_t nscripts;
    struct tf_query *queries;
    size_t nqueries;
    uint64_t next_query;
    struct telegram_fake_stats st;
};

/* ---- small helpers ---- */

static int64_t
wall_s(void)
{
    return (int64_t)time(NULL);
}

static char *
xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 8;
    void *q;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    q = realloc(*p, c * size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* ---- chats by id: an open-addressing index over tf->chats ---- */

static size_t
chat_hash(int64_t id, size_t mask)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;

    return (size_t)(h >> 32) & mask;
}

/* The slot holding id, or the empty slot where it would go. */
static size_t
chat_slot(const struct telegram_fake *tf, int64_t id)
{
    size_t mask = tf->nslots - 1, i = chat_hash(id, mask);

    while (tf->chat_slots[i] != 0 && tf->chats[tf->chat_slots[i] - 1].id != id)
        i = (i + 1) & mask;
    return i;
}

static struct tf_chat *
chat_find(const struct telegram_fake *tf, int64_t id)
{
    size_t i;

    if (tf->nslots == 0)
        return NULL;
    i = chat_slot(tf, id);
    return tf->chat_slots[i] ? &tf->chats[tf->chat_slots[i] - 1] : NULL;
}

/* Makes room for one more chat in the index (load <= 1/2). */
static int
chat_index_grow(struct telegram_fake *tf)
{
    size_t n = tf->nslots ? tf->nslots : 64, *old = tf->chat_slots;

    if (2 * (tf->nchats + 1) <= tf->nslots)
        return 0;
    while (2 * (tf->nchats + 1) > n)
        n *= 2;
    tf->chat_slots = calloc(n, sizeof(*tf->chat_slots));
    if (tf->chat_slots == NULL) {
        tf->chat_slots = old;
        return -1;
    }
    tf->nslots = n;
    for (size_t k = 0; k < tf->nchats; k++)
        tf->chat_slots[chat_slot(tf, tf->chats[k].id)] = k + 1;
    free(old);
    return 0;
}

static struct tf_chat *
chat_get(struct telegram_fake *tf, int64_t id, const char *type)
{
    struct tf_chat *c = chat_find(tf, id);

    if (c != NULL) {
        if (type != NULL)
            snprintf(c->type, sizeof(c->type), "%s", type);
        return c;
    }
    if (chat_index_grow(tf))
        return NULL;
    if (grow((void **)&tf->chats, &tf->capchats, tf->nchats + 1,
             sizeof(*tf->chats)))
        return NULL;
    c = &tf->chats[tf->nchats++];
    memset(c, 0, sizeof(*c));
    c->id = id;
    tf->chat_slots[chat_slot(tf, id)] = tf->nchats;
    c->next_msg = 1;
    if (type == NULL)
        type = id > 0                  ? "private"
               : id < -1000000000000LL ? "supergroup"
                                       : "group";
    snprintf(c->type, sizeof(c->type), "%s", type);
    return c;
}

static int
is_group(const struct tf_chat *c)
{
    return strcmp(c->type, "group") == 0 || strcmp(c->type, "supergroup") == 0;
}

static const char *
reply_json(struct fake *f, json_object *o)
{
    const char *s = fake_printf(
        f, "%s",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static int
api_error(struct telegram_fake *tf, struct fake_response *resp, int code,
          const char *desc, int64_t retry_after, int64_t migrate_to)
{
    json_object *o = json_object_new_object(), *p;

    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error_code", json_object_new_int(code));
    json_object_object_add(o, "description", json_object_new_string(desc));
    if (retry_after > 0 || migrate_to != 0) {
        p = json_object_new_object();
        if (migrate_to != 0)
            json_object_object_add(p, "migrate_to_chat_id",
                                   json_object_new_int64(migrate_to));
        if (retry_after > 0)
            json_object_object_add(p, "retry_after",
                                   json_object_new_int64(retry_after));
        json_object_object_add(o, "parameters", p);
    }
    resp->status = code;
    resp->body = reply_json(tf->f, o);
    switch (code) {
    case 401:
        tf->st.err401++;
        break;
    case 404:
        tf->st.err404++;
        break;
    case 409:
        tf->st.err409++;
        break;
    case 429:
        tf->st.err429++;
        break;
    case 403:
        tf->st.err403++;
        break;
    case 400:
        tf->st.err400++;
        break;
    default:
        break;
    }
    return 0;
}

static int
api_ok(struct telegram_fake *tf, struct fake_response *resp,
       json_object *result)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "result", result);
    resp->status = 200;
    resp->body = reply_json(tf->f, o);
    return 0;
}

/* ---- parameters: JSON body, form body or query string ---- */

static int
hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0'
           : (c >= 'a' && c <= 'f')  ? c - 'a' + 10
           : (c >= 'A' && c <= 'F')  ? c - 'A' + 10
                                     : -1;
}

static char *
url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
                 hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else
            out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

static void
form_into(json_object *o, const char *s, int decode)
{
    while (s != NULL && *s) {
        const char *amp = strchr(s, '&'), *eq;
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        eq = memchr(s, '=', n);
        if (eq != NULL) {
            char *k = decode ? url_decode(s, (size_t)(eq - s))
                             : strndup(s, (size_t)(eq - s));
            char *v = decode ? url_decode(eq + 1, n - (size_t)(eq - s) - 1)
                             : strndup(eq + 1, n - (size_t)(eq - s) - 1);
            if (k && v)
                json_object_object_add(o, k, json_object_new_string(v));
            free(k);
            free(v);
        }
        s = amp ? amp + 1 : NULL;
    }
}

/* Every parameter of the request as one JSON object (strings for the
 * query and form forms, as Telegram accepts both). */
static json_object *
params_of(const struct fake_request *req)
{
    json_object *o = NULL;
    const char *q = strchr(req->path, '?');
    const char *ct = fake_request_header(req, "content-type");

    if (req->body != NULL && req->body_len > 0 &&
        (ct == NULL || strstr(ct, "json") != NULL || req->body[0] == '{')) {
        o = json_tokener_parse(req->body);
        if (o != NULL && !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            o = NULL;
        }
    }
    if (o == NULL)
        o = json_object_new_object();
    if (req->body != NULL && req->body[0] != '{' && ct != NULL &&
        strstr(ct, "form-urlencoded"))
        form_into(o, req->body, 1);
    if (q != NULL)
        form_into(o, q + 1, 0); /* lws has decoded the query already */
    return o;
}

static int
p_i64(json_object *p, const char *key, int64_t *out)
{
    json_object *v;
    char *end;

    if (!json_object_object_get_ex(p, key, &v) || v == NULL)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        long long x = strtoll(s, &end, 10);
        if (end != s && *end == '\0') {
            *out = x;
            return 1;
        }
    }
    return 0;
}

static const char *
p_str(json_object *p, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(p, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* An object parameter, given as JSON or as a JSON string (form / query);
 * the caller puts it. */
static json_object *
p_obj(json_object *p, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(p, key, &v) || v == NULL)
        return NULL;
    if (json_object_is_type(v, json_type_string))
        return json_tokener_parse(json_object_get_string(v));
    return json_object_get(v);
}

/* ---- HTML as Telegram parses it ---- */

static const char *const tf_tags[] = {
    "b",    "strong",     "i",          "em",       "u",   "ins",
    "s",    "strike",     "del",        "code",     "pre", "a",
    "span", "tg-spoiler", "blockquote", "tg-emoji", NULL,
};

static int
tag_known(const char *name)
{
    for (size_t i = 0; tf_tags[i]; i++)
        if (strcmp(tf_tags[i], name) == 0)
            return 1;
    return 0;
}

/* 0 and the visible text in *vis, or -1 and Telegram's error in err. */
static int
html_parse(const char *s, char **vis, char *err, size_t errcap)
{
    char stack[TF_TAG_DEPTH][16];
    int depth = 0, rc = -1;
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);

    *vis = NULL;
    if (out == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n;) {
        if (s[i] == '<') {
            const char *gt = strchr(s + i, '>');
            int close = s[i + 1] == '/';
            size_t a = i + 1 + (size_t)close, b = a;
            char name[16];
            while (b < n && (isalnum((unsigned char)s[b]) || s[b] == '-'))
                b++;
            if (gt == NULL) {
                snprintf(err, errcap, "Unclosed start tag at byte offset %zu",
                         i);
                goto out;
            }
            if (b == a || b - a >= sizeof(name)) {
                snprintf(err, errcap,
                         "Unexpected end of name token at byte offset %zu", i);
                goto out;
            }
            memcpy(name, s + a, b - a);
            name[b - a] = '\0';
            for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            if (close) {
                if (depth == 0 || strcmp(stack[depth - 1], name) != 0) {
                    snprintf(err, errcap,
                             "Unmatched end tag at byte offset %zu, expected "
                             "\"</%s>\", found \"</%s>\"",
                             i, depth ? stack[depth - 1] : "", name);
                    goto out;
                }
                depth--;
            } else {
                if (!tag_known(name)) {
                    snprintf(err, errcap,
                             "Unsupported start tag \"%s\" at byte offset %zu",
                             name, i);
                    goto out;
                }
                if (depth == TF_TAG_DEPTH) {
                    snprintf(err, errcap, "Too deep nesting");
                    goto out;
                }
                snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
            }
            i = (size_t)(gt - s) + 1;
            continue;
        }
        if (s[i] == '&') {
            static const struct {
                const char *e;
                char c;
            } ents[] = {
                {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}};
            size_t k;
            for (k = 0; k < 4; k++)
                if (strncmp(s + i, ents[k].e, strlen(ents[k].e)) == 0)
                    break;
            if (k < 4) {
                out[o++] = ents[k].c;
                i += strlen(ents[k].e);
                continue;
            }
        }
        out[o++] = s[i++];
    }
    if (depth > 0) {
        snprintf(err, errcap,
                 "Can't find end tag corresponding to start tag \"%s\"",
                 stack[depth - 1]);
        goto out;
    }
    out[o] = '\0';
    *vis = out;
    out = NULL;
    rc = 0;
out:
    free(out);
    return rc;
}

static size_t
utf16_len(const char *s)
{
    size_t u = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            u += *p >= 0xf0 ? 2 : 1;
    return u;
}

static int
blank_text(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* ---- updates ---- */

static int64_t
push_update(struct telegram_fake *tf, const char *kind, json_object *obj)
{
    json_object *u = json_object_new_object();
    struct tf_update *up;
    int64_t id = tf->next_update++;

    json_object_object_add(u, "update_id", json_object_new_int64(id));
    json_object_object_add(u, kind, obj);
    if (grow((void **)&tf->ups, &tf->capups, tf->nups + 1, sizeof(*tf->ups))) {
        json_object_put(u);
        return -1;
    }
    up = &tf->ups[tf->nups++];
    up->id = id;
    snprintf(up->kind, sizeof(up->kind), "%s", kind);
    up->json = strdup(json_object_to_json_string_ext(
        u, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(u);
    tf->st.last_update_id = id;
    return id;
}

static json_object *
user_obj(int64_t id, int is_bot, const char *name, const char *username)
{
    json_object *u = json_object_new_object();

    json_object_object_add(u, "id", json_object_new_int64(id));
    json_object_object_add(u, "is_bot", json_object_new_boolean(is_bot));
    json_object_object_add(u, "first_name", json_object_new_string(name));
    if (username != NULL)
        json_object_object_add(u, "username", json_object_new_string(username));
    return u;
}

static json_object *
chat_obj(const struct tf_chat *c)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_int64(c->id));
    json_object_object_add(o, "type", json_object_new_string(c->type));
    if (c->id > 0)
        json_object_object_add(o, "first_name", json_object_new_string("U"));
    else
        json_object_object_add(o, "title", json_object_new_string("Group"));
    return o;
}

static struct tf_rec *
rec_find(struct tf_chat *c, int64_t id)
{
    for (size_t i = 0; i < c->nrecs; i++)
        if (c->recs[i].id == id)
            return &c->recs[i];
    return NULL;
}

static int
rec_add(struct tf_chat *c, int64_t id, int64_t from, int is_bot,
        const char *name, const char *text)
{
    struct tf_rec *r;

    if (grow((void **)&c->recs, &c->caprecs, c->nrecs + 1, sizeof(*c->recs)))
        return -1;
    r = &c->recs[c->nrecs++];
    r->id = id;
    r->from = from;
    r->is_bot = is_bot;
    r->name = xstrdup(name);
    r->text = xstrdup(text);
    return 0;
}

/* Entities as Telegram computes them, in UTF-16 offsets. */
static json_object *
entities_of(const char *text)
{
    json_object *a = json_object_new_array();
    size_t u = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        int at_start = (const char *)p == text;
        if ((*p == '/' && at_start) ||
            (*p == '@' && (at_start || isspace(p[-1])))) {
            const unsigned char *q = p + 1;
            while (*q && (isalnum(*q) || *q == '_' || (*p == '/' && *q == '@')))
                q++;
            if (q - p > 1) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "offset",
                                       json_object_new_int64((int64_t)u));
                json_object_object_add(e, "length",
                                       json_object_new_int64(q - p));
                json_object_object_add(
                    e, "type",
                    json_object_new_string(*p == '/' ? "bot_command"
                                                     : "mention"));
                json_object_array_add(a, e);
                u += (size_t)(q - p);
                p = q;
                continue;
            }
        }
        if ((*p & 0xc0) != 0x80)
            u += *p >= 0xf0 ? 2 : 1;
        p++;
    }
    if (json_object_array_length(a) == 0) {
        json_object_put(a);
        return NULL;
    }
    return a;
}

int64_t
telegram_fake_message(struct telegram_fake *tf,
                      const struct telegram_fake_msg *m, int64_t *message_id)
{
    struct tf_chat *c = chat_get(tf, m->chat, m->type);
    json_object *msg, *ents;
    int64_t from, mid;
    char namebuf[32];
    const char *name = m->name;
    struct tf_rec *r;

    if (c == NULL || m->text == NULL)
        return -1;
    from = m->from ? m->from : (c->id > 0 ? c->id : 1001);
    if (name == NULL) {
        snprintf(namebuf, sizeof(namebuf), "User%" PRId64, from);
        name = namebuf;
    }
    mid = c->next_msg++;
    msg = json_object_new_object();
    json_object_object_add(msg, "message_id", json_object_new_int64(mid));
    json_object_object_add(msg, "from", user_obj(from, m->is_bot, name, NULL));
    json_object_object_add(msg, "chat", chat_obj(c));
    json_object_object_add(msg, "date", json_object_new_int64(wall_s()));
    if (m->thread) {
        json_object_object_add(msg, "message_thread_id",
                               json_object_new_int64(m->thread));
        json_object_object_add(msg, "is_topic_message",
                               json_object_new_boolean(1));
    }
    if (m->reply_to && (r = rec_find(c, m->reply_to)) != NULL) {
        json_object *rm = json_object_new_object();
        json_object_object_add(rm, "message_id", json_object_new_int64(r->id));
        json_object_object_add(
            rm, "from",
            user_obj(r->from, r->is_bot, r->name,
                     r->from == tf->me_id ? tf->me_name : NULL));
        json_object_object_add(rm, "chat", chat_obj(c));
        json_object_object_add(rm, "date", json_object_new_int64(wall_s()));
        json_object_object_add(rm, "text",
                               json_object_new_string(r->text ? r->text : ""));
        json_object_object_add(msg, "reply_to_message", rm);
    }
    json_object_object_add(msg, "text", json_object_new_string(m->text));
    if ((ents = entities_of(m->text)) != NULL)
        json_object_object_add(msg, "entities", ents);
    rec_add(c, mid, from, m->is_bot, name, m->text);
    if (message_id != NULL)
        *message_id = mid;
    return push_update(tf, "message", msg);
}

int64_t
telegram_fake_callback(struct telegram_fake *tf, int64_t chat,
                       int64_t message_id, int64_t from, const char *data,
                       char *query_id, size_t qcap)
{
    struct tf_chat *c = chat_get(tf, chat, NULL);
    json_object *cq, *msg;
    struct tf_query *q;
    struct tf_rec *r;

    if (c == NULL)
        return -1;
    q = realloc(tf->queries, (tf->nqueries + 1) * sizeof(*tf->queries));
    if (q == NULL)
        return -1;
    tf->queries = q;
    q = &tf->queries[tf->nqueries++];
    tf->next_query++;
    snprintf(q->id, sizeof(q->id), "4382%" PRIu64 "b2d9", tf->next_query);
    q->answered = 0;
    if (query_id != NULL)
        snprintf(query_id, qcap, "%s", q->id);
    cq = json_object_new_object();
    json_object_object_add(cq, "id", json_object_new_string(q->id));
    json_object_object_add(cq, "from", user_obj(from, 0, "Voter", NULL));
    msg = json_object_new_object();
    json_object_object_add(msg, "message_id",
                           json_object_new_int64(message_id));
    r = rec_find(c, message_id);
    json_object_object_add(msg, "from",
                           user_obj(r ? r->from : tf->me_id, r ? r->is_bot : 1,
                                    "Parley", tf->me_name));
    json_object_object_add(msg, "chat", chat_obj(c));
    json_object_object_add(msg, "date", json_object_new_int64(wall_s()));
    json_object_object_add(msg, "text",
                           json_object_new_string(r && r->text ? r->text : ""));
    json_object_object_add(cq, "message", msg);
    json_object_object_add(cq, "chat_instance",
                           json_object_new_string("-5550001"));
    json_object_object_add(cq, "data", json_object_new_string(data));
    return push_update(tf, "callback_query", cq);
}

int64_t
telegram_fake_raw(struct telegram_fake *tf, const char *update_json)
{
    json_object *o = json_tokener_parse(update_json);
    int64_t id = -1;

    if (o == NULL || !json_object_is_type(o, json_type_object))
        goto out;
    json_object_object_foreach(o, k, v)
    {
        id = push_update(tf, k, json_object_get(v));
        break;
    }
out:
    json_object_put(o);
    return id;
}

/* ---- scripting ---- */

int
telegram_fake_script(struct telegram_fake *tf, const char *method, int64_t chat,
                     int code, int64_t retry_after, int64_t migrate_to,
                     const char *description, int count)
{
    struct tf_script *s =
        realloc(tf->scripts, (tf->nscripts + 1) * sizeof(*tf->scripts));

    if (s == NULL)
        return -1;
    tf->scripts = s;
    s = &tf->scripts[tf->nscripts++];
    memset(s, 0, sizeof(*s));
    snprintf(s->method, sizeof(s->method), "%s", method);
    s->chat = chat;
    s->code = code;
    s->retry_after = retry_after;
    s->migrate_to = migrate_to;
    s->count = count > 0 ? count : 1;
    if (description != NULL)
        snprintf(s->desc, sizeof(s->desc), "%s", description);
    else if (code == 429)
        snprintf(s->desc, sizeof(s->desc),
                 "Too Many Requests: retry after %" PRId64, retry_after);
    else if (code == 403)
        snprintf(s->desc, sizeof(s->desc),
                 "Forbidden: bot was blocked by the user");
    else if (code == 400 && migrate_to != 0)
        snprintf(s->desc, sizeof(s->desc),
                 "Bad Request: group chat was upgraded to a supergroup chat");
    else if (code == 409)
        snprintf(s->desc, sizeof(s->desc),
                 "Conflict: terminated by other getUpdates request; make sure "
                 "that only one bot instance is running");
    else
        snprintf(s->desc, sizeof(s->desc), "Internal Server Error");
    return 0;
}

static struct tf_script *
script_take(struct telegram_fake *tf, const char *method, int64_t chat)
{
    for (size_t i = 0; i < tf->nscripts; i++) {
        struct tf_script *s = &tf->scripts[i];
        if (s->count > 0 && strcasecmp(s->method, method) == 0 &&
            (s->chat == 0 || s->chat == chat)) {
            s->count--;
            return s;
        }
    }
    return NULL;
}

void
telegram_fake_block(struct telegram_fake *tf, int64_t chat)
{
    struct tf_chat *c = chat_get(tf, chat, NULL);

    if (c != NULL)
        c->blocked = 1;
}

void
telegram_fake_migrate(struct telegram_fake *tf, int64_t chat, int64_t to)
{
    struct tf_chat *c = chat_get(tf, chat, NULL);

    if (c != NULL)
        c->migrate_to = to;
    chat_get(tf, to, "supergroup");
}

/* ---- flood control ---- */

/* A sliding window of send times (oldest first): 0 when one more fits
 * in (now - w + slack, now], else the wait in ms. */
static int64_t
window_check(int64_t **ring, size_t *n, size_t cap, int64_t w, int64_t now)
{
    int64_t wait;
    size_t k = 0;

    /* drop expired (kept sorted, oldest first) */
    while (k < *n && (*ring)[k] <= now - w + TELEGRAM_FAKE_SLACK_MS)
        k++;
    if (k > 0) {
        memmove(*ring, *ring + k, (*n - k) * sizeof(**ring));
        *n -= k;
    }
    if (*n < cap)
        return 0;
    wait = (*ring)[0] + w - TELEGRAM_FAKE_SLACK_MS - now;
    return wait > 0 ? wait : 1;
}

static void
window_add(int64_t *ring, size_t *n, int64_t now)
{
    ring[(*n)++] = now;
}

/* 0: the send may go (recorded); else the retry_after in seconds. */
static int64_t
flood(struct telegram_fake *tf, struct tf_chat *c, int64_t now)
{
    int64_t wait = 0, w;
    int64_t burst = (int64_t)(tf->chat_burst - 1) * tf->chat_interval;

    if (c->limited_until > now)
        return (c->limited_until - now + 999) / 1000;
    /* per chat: GCRA with a burst */
    if (c->tat - now > burst)
        wait = c->tat - burst - now;
    if (is_group(c)) {
        if (c->win == NULL)
            c->win = calloc((size_t)tf->group_n + 1, sizeof(int64_t));
        if (c->win == NULL)
            return 1;
        w = window_check(&c->win, &c->win_n, (size_t)tf->group_n,
                         tf->group_window, now);
        if (w > wait)
            wait = w;
    }
    if (tf->gwin_cap < (size_t)tf->global_n + 1) {
        int64_t *g =
            realloc(tf->gwin, ((size_t)tf->global_n + 1) * sizeof(int64_t));
        if (g == NULL)
            return 1;
        tf->gwin = g;
        tf->gwin_cap = (size_t)tf->global_n + 1;
    }
    w = window_check(&tf->gwin, &tf->gwin_n, (size_t)tf->global_n,
                     tf->global_window, now);
    if (w > wait)
        wait = w;
    if (wait > 0) {
        int64_t s = (wait + 999) / 1000;
        c->limited_until = now + s * 1000;
        return s;
    }
    c->tat = (c->tat > now ? c->tat : now) + tf->chat_interval;
    if (is_group(c))
        window_add(c->win, &c->win_n, now);
    window_add(tf->gwin, &tf->gwin_n, now);
    return 0;
}

/* The answer for a chat that cannot take messages, or 0. */
static int
chat_refusal(struct telegram_fake *tf, struct fake_response *resp,
             struct tf_chat *c, const char *method)
{
    struct tf_script *s = script_take(tf, method, c->id);

    if (s != NULL) {
        if (s->code == 429 && s->retry_after > 0)
            c->limited_until = fake_now_ms() + s->retry_after * 1000;
        if (s->code == 429)
            c->n429++;
        api_error(tf, resp, s->code, s->desc, s->retry_after, s->migrate_to);
        return 1;
    }
    if (c->blocked) {
        api_error(tf, resp, 403,
                  c->id > 0 ? "Forbidden: bot was blocked by the user"
                            : "Forbidden: bot was kicked from the group chat",
                  0, 0);
        return 1;
    }
    if (c->migrate_to != 0) {
        api_error(tf, resp, 400,
                  "Bad Request: group chat was upgraded to a supergroup chat",
                  0, c->migrate_to);
        return 1;
    }
    return 0;
}

/* ---- methods ---- */

static json_object *
me_obj(const struct telegram_fake *tf)
{
    json_object *u = user_obj(tf->me_id, 1, "Parley", tf->me_name);

    json_object_object_add(u, "can_join_groups", json_object_new_boolean(1));
    json_object_object_add(u, "can_read_all_group_messages",
                           json_object_new_boolean(0));
    json_object_object_add(u, "supports_inline_queries",
                           json_object_new_boolean(0));
    return u;
}

static int
kind_allowed(const struct telegram_fake *tf, const char *kind)
{
    char q[40];

    if (tf->allowed[0] == '\0')
        return 1;
    snprintf(q, sizeof(q), "\"%s\"", kind);
    return strstr(tf->allowed, q) != NULL;
}

/* The getUpdates reply: up to limit pending updates of an allowed kind,
 * their stored JSON joined as is (it is what json-c would print again).
 * Returns how many; *body is per-request storage (NULL if out of memory). */
static size_t
updates_json(struct telegram_fake *tf, int64_t limit, const char **body)
{
    static const char head[] = "{\"ok\":true,\"result\":[", tail[] = "]}";
    size_t n = 0, len = sizeof(head) + sizeof(tail), at;
    char *b;

    for (size_t i = 0; i < tf->nups && (int64_t)n < limit; i++)
        if (kind_allowed(tf, tf->ups[i].kind)) {
            len += strlen(tf->ups[i].json) + 1;
            n++;
        }
    *body = b = fake_alloc(tf->f, len);
    if (b == NULL)
        return n;
    memcpy(b, head, sizeof(head) - 1);
    at = sizeof(head) - 1;
    n = 0;
    for (size_t i = 0; i < tf->nups && (int64_t)n < limit; i++) {
        size_t l;

        if (!kind_allowed(tf, tf->ups[i].kind))
            continue;
        if (n++ > 0)
            b[at++] = ',';
        l = strlen(tf->ups[i].json);
        memcpy(b + at, tf->ups[i].json, l);
        at += l;
    }
    memcpy(b + at, tail, sizeof(tail));
    return n;
}

static int
m_get_updates(struct telegram_fake *tf, json_object *p,
              struct fake_response *resp)
{
    int64_t offset = 0, limit = 100, timeout = 0, now = fake_now_ms();
    json_object *allowed;
    struct tf_script *s;
    const char *body;
    size_t k = 0, n;

    tf->st.get_updates++;
    if ((s = script_take(tf, "getUpdates", 0)) != NULL)
        return api_error(tf, resp, s->code, s->desc, s->retry_after, 0);
    if (tf->webhook)
        return api_error(tf, resp, 409,
                         "Conflict: can't use getUpdates method while "
                         "webhook is active; use deleteWebhook to delete the "
                         "webhook first",
                         0, 0);
    if (tf->held_until > now) {
        tf->st.overlaps++;
        if (tf->conflict_on_overlap)
            return api_error(tf, resp, 409,
                             "Conflict: terminated by other getUpdates "
                             "request; make sure that only one bot instance "
                             "is running",
                             0, 0);
    }
    p_i64(p, "limit", &limit);
    p_i64(p, "timeout", &timeout);
    if (limit < 1 || limit > 100)
        limit = 100;
    if (timeout < 0)
        timeout = 0;
    if (timeout > 50)
        timeout = 50;
    if ((allowed = p_obj(p, "allowed_updates")) != NULL) {
        /* an empty list means "every kind" again */
        snprintf(tf->allowed, sizeof(tf->allowed), "%s",
                 json_object_is_type(allowed, json_type_array) &&
                         json_object_array_length(allowed) > 0
                     ? json_object_to_json_string_ext(allowed,
                                                      JSON_C_TO_STRING_PLAIN)
                     : "");
        json_object_put(allowed);
    }
    if (p_i64(p, "offset", &offset) && offset > 0) {
        /* confirms every update before offset (ids grow along ups) */
        while (k < tf->nups && tf->ups[k].id < offset)
            free(tf->ups[k++].json);
        if (k > 0)
            memmove(tf->ups, tf->ups + k, (tf->nups - k) * sizeof(*tf->ups));
        tf->nups -= k;
        if (offset > tf->offset)
            tf->offset = offset;
    }
    n = updates_json(tf, limit, &body);
    if (n == 0 && timeout > 0) {
        int64_t hold = timeout * 1000;
        if (hold > tf->hold_max)
            hold = tf->hold_max;
        resp->delay_ms = (int)hold;
        tf->held_until = now + hold;
    } else {
        tf->held_until = 0;
    }
    if (body == NULL)
        return api_error(tf, resp, 500, "Internal Server Error: out of memory",
                         0, 0);
    resp->status = 200;
    resp->body = body;
    return 0;
}

static json_object *
message_obj(struct telegram_fake *tf, const struct tf_chat *c,
            const struct telegram_fake_sent *m)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "message_id",
                           json_object_new_int64(m->message_id));
    json_object_object_add(o, "from",
                           user_obj(tf->me_id, 1, "Parley", tf->me_name));
    json_object_object_add(o, "chat", chat_obj(c));
    json_object_object_add(o, "date", json_object_new_int64(wall_s()));
    if (m->thread) {
        json_object_object_add(o, "message_thread_id",
                               json_object_new_int64(m->thread));
        json_object_object_add(o, "is_topic_message",
                               json_object_new_boolean(1));
    }
    json_object_object_add(o, "text", json_object_new_string(m->text));
    return o;
}

/* text + parse_mode → visible text, or an error reply (1). */
static int
text_check(struct telegram_fake *tf, json_object *p, struct fake_response *resp,
           char **vis, int *html)
{
    const char *text = p_str(p, "text");
    const char *mode = p_str(p, "parse_mode");
    char err[300], desc[400];

    *vis = NULL;
    *html = mode != NULL && strcasecmp(mode, "HTML") == 0;
    if (text == NULL || blank_text(text)) {
        api_error(tf, resp, 400, "Bad Request: message text is empty", 0, 0);
        return 1;
    }
    if (mode != NULL && !*html) {
        api_error(tf, resp, 400, "Bad Request: unsupported parse_mode", 0, 0);
        return 1;
    }
    if (*html) {
        if (html_parse(text, vis, err, sizeof(err)) < 0) {
            snprintf(desc, sizeof(desc),
                     "Bad Request: can't parse entities: %s", err);
            api_error(tf, resp, 400, desc, 0, 0);
            return 1;
        }
    } else {
        *vis = strdup(text);
    }
    if (blank_text(*vis)) {
        free(*vis);
        *vis = NULL;
        api_error(tf, resp, 400, "Bad Request: message text is empty", 0, 0);
        return 1;
    }
    if (utf16_len(*vis) > TF_VISIBLE_MAX) {
        free(*vis);
        *vis = NULL;
        api_error(tf, resp, 400, "Bad Request: message is too long", 0, 0);
        return 1;
    }
    return 0;
}

/* One request the flood limits let through, for telegram_fake_ops(). */
static void
op_note(struct tf_chat *c, int64_t now)
{
    if (grow((void **)&c->ops, &c->capops, c->nops + 1, sizeof(*c->ops)) == 0)
        c->ops[c->nops++] = now;
}

/* reply_markup → keyboard (0/1) and the first button's callback_data
 * (malloc'd, or NULL). */
static void
markup_of(json_object *p, int *keyboard, char **cb_up)
{
    json_object *rm, *kb, *row, *btn, *data;

    *keyboard = 0;
    *cb_up = NULL;
    if ((rm = p_obj(p, "reply_markup")) == NULL)
        return;
    if (json_object_object_get_ex(rm, "inline_keyboard", &kb) &&
        json_object_is_type(kb, json_type_array)) {
        *keyboard = 1;
        row = json_object_array_get_idx(kb, 0);
        btn = row ? json_object_array_get_idx(row, 0) : NULL;
        if (btn && json_object_object_get_ex(btn, "callback_data", &data))
            *cb_up = strdup(json_object_get_string(data));
    }
    json_object_put(rm);
}

static int
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Telegram compares entities, not markup: HTML without a tag has none,
 * like plain text (entities decoded, the visible texts are compared
 * apart). */
static int
same_entities(const char *html_a, const char *html_b)
{
    if (html_a != NULL && strchr(html_a, '<') == NULL)
        html_a = NULL;
    if (html_b != NULL && strchr(html_b, '<') == NULL)
        html_b = NULL;
    return same_str(html_a, html_b);
}

static struct telegram_fake_sent *
sent_find(struct tf_chat *c, int64_t mid)
{
    for (size_t i = 0; i < c->nsent; i++)
        if (c->sent[i].message_id == mid && !c->sent[i].deleted)
            return &c->sent[i];
    return NULL;
}

static int
too_many(struct telegram_fake *tf, struct fake_response *resp,
         struct tf_chat *c, int64_t wait)
{
    char desc[80];

    c->n429++;
    snprintf(desc, sizeof(desc), "Too Many Requests: retry after %" PRId64,
             wait);
    return api_error(tf, resp, 429, desc, wait, 0);
}

static int
m_send_message(struct telegram_fake *tf, json_object *p,
               struct fake_response *resp)
{
    int64_t chat = 0, thread = 0, reply = 0, wait, now = fake_now_ms();
    json_object *rp;
    struct telegram_fake_sent *m;
    struct tf_chat *c;
    char *vis = NULL;
    int html;

    tf->st.send_message++;
    if (!p_i64(p, "chat_id", &chat) || chat == 0)
        return api_error(tf, resp, 400, "Bad Request: chat not found", 0, 0);
    if ((c = chat_get(tf, chat, NULL)) == NULL)
        return -1;
    if (chat_refusal(tf, resp, c, "sendMessage"))
        return 0;
    if (text_check(tf, p, resp, &vis, &html))
        return 0;
    if ((wait = flood(tf, c, now)) > 0) {
        free(vis);
        return too_many(tf, resp, c, wait);
    }
    p_i64(p, "message_thread_id", &thread);
    if ((rp = p_obj(p, "reply_parameters")) != NULL) {
        p_i64(rp, "message_id", &reply);
        json_object_put(rp);
    } else {
        p_i64(p, "reply_to_message_id", &reply);
    }
    if (grow((void **)&c->sent, &c->capsent, c->nsent + 1, sizeof(*c->sent))) {
        free(vis);
        return -1;
    }
    m = &c->sent[c->nsent++];
    memset(m, 0, sizeof(*m));
    m->message_id = c->next_msg++;
    m->text = vis;
    m->html = html ? strdup(p_str(p, "text")) : NULL;
    m->reply_to = reply;
    m->thread = thread;
    m->t_ms = now;
    markup_of(p, &m->keyboard, &m->cb_up);
    op_note(c, now);
    rec_add(c, m->message_id, tf->me_id, 1, "Parley", vis);
    tf->st.delivered++;
    return api_ok(tf, resp, message_obj(tf, c, m));
}

/*
 * editMessageText.  Telegram's order: the chat, the message ("message to
 * edit not found", also once deleted), the text, then "message is not
 * modified" when text, entities and buttons are all unchanged (an edit
 * without reply_markup removes the buttons), then the flood limits.
 */
static int
m_edit_message(struct telegram_fake *tf, json_object *p,
               struct fake_response *resp)
{
    int64_t chat = 0, mid = 0, wait, now = fake_now_ms();
    struct telegram_fake_sent *m;
    struct tf_chat *c;
    char *vis = NULL, *cb_up = NULL, *html_s = NULL;
    int html, keyboard;

    tf->st.edit_message++;
    if (!p_i64(p, "chat_id", &chat) || (c = chat_get(tf, chat, NULL)) == NULL)
        return api_error(tf, resp, 400, "Bad Request: chat not found", 0, 0);
    if (chat_refusal(tf, resp, c, "editMessageText"))
        return 0;
    p_i64(p, "message_id", &mid);
    if ((m = sent_find(c, mid)) == NULL)
        return api_error(tf, resp, 400,
                         "Bad Request: message to edit not found", 0, 0);
    if (text_check(tf, p, resp, &vis, &html))
        return 0;
    html_s = html ? strdup(p_str(p, "text")) : NULL;
    markup_of(p, &keyboard, &cb_up);
    if (strcmp(vis, m->text) == 0 && same_entities(html_s, m->html) &&
        keyboard == m->keyboard && same_str(cb_up, m->cb_up)) {
        free(vis);
        free(html_s);
        free(cb_up);
        tf->st.not_modified++;
        return api_error(tf, resp, 400,
                         "Bad Request: message is not modified: specified new "
                         "message content and reply markup are exactly the "
                         "same as a current content and reply markup of the "
                         "message",
                         0, 0);
    }
    if ((wait = flood(tf, c, now)) > 0) {
        free(vis);
        free(html_s);
        free(cb_up);
        return too_many(tf, resp, c, wait);
    }
    if (grow((void **)&m->edit_ms, &m->capedit, m->nedit_ms + 1,
             sizeof(*m->edit_ms)) == 0)
        m->edit_ms[m->nedit_ms++] = now;
    free(m->text);
    m->text = vis;
    free(m->html);
    m->html = html_s;
    free(m->cb_up);
    m->cb_up = cb_up;
    m->keyboard = keyboard;
    m->edits++;
    op_note(c, now);
    return api_ok(tf, resp, message_obj(tf, c, m));
}

/* deleteMessage: our message, once ("message to delete not found" after). */
static int
m_delete_message(struct telegram_fake *tf, json_object *p,
                 struct fake_response *resp)
{
    int64_t chat = 0, mid = 0, wait, now = fake_now_ms();
    struct telegram_fake_sent *m;
    struct tf_chat *c;

    tf->st.delete_message++;
    if (!p_i64(p, "chat_id", &chat) || (c = chat_get(tf, chat, NULL)) == NULL)
        return api_error(tf, resp, 400, "Bad Request: chat not found", 0, 0);
    if (chat_refusal(tf, resp, c, "deleteMessage"))
        return 0;
    p_i64(p, "message_id", &mid);
    if ((m = sent_find(c, mid)) == NULL)
        return api_error(tf, resp, 400,
                         "Bad Request: message to delete not found", 0, 0);
    if ((wait = flood(tf, c, now)) > 0)
        return too_many(tf, resp, c, wait);
    m->deleted = 1;
    m->deleted_ms = now;
    op_note(c, now);
    return api_ok(tf, resp, json_object_new_boolean(1));
}

static int
m_chat_action(struct telegram_fake *tf, json_object *p,
              struct fake_response *resp)
{
    int64_t chat = 0;
    struct tf_chat *c;
    const char *action = p_str(p, "action");

    tf->st.chat_action++;
    if (!p_i64(p, "chat_id", &chat) || (c = chat_get(tf, chat, NULL)) == NULL)
        return api_error(tf, resp, 400, "Bad Request: chat not found", 0, 0);
    if (action == NULL || strcmp(action, "typing") != 0)
        return api_error(tf, resp, 400,
                         "Bad Request: wrong parameter action in request", 0,
                         0);
    if (chat_refusal(tf, resp, c, "sendChatAction"))
        return 0;
    c->actions++;
    c->action_ms = fake_now_ms();
    return api_ok(tf, resp, json_object_new_boolean(1));
}

static int
m_answer_callback(struct telegram_fake *tf, json_object *p,
                  struct fake_response *resp)
{
    const char *id = p_str(p, "callback_query_id");

    tf->st.answer_callback++;
    for (size_t i = 0; id != NULL && i < tf->nqueries; i++) {
        if (strcmp(tf->queries[i].id, id) != 0)
            continue;
        if (tf->queries[i].answered++ > 0)
            break; /* twice: Telegram says "too old" */
        return api_ok(tf, resp, json_object_new_boolean(1));
    }
    return api_error(tf, resp, 400,
                     "Bad Request: query is too old and response timeout "
                     "expired or query ID is invalid",
                     0, 0);
}

/* /bot<TOKEN>/<method> */
/* setMyCommands {commands: [{command, description}]}: the names kept */
static int
m_set_my_commands(struct telegram_fake *tf, json_object *p,
                  struct fake_response *resp)
{
    json_object *list = NULL;
    size_t off = 0;

    if (p == NULL || !json_object_object_get_ex(p, "commands", &list) ||
        !json_object_is_type(list, json_type_array))
        return api_error(tf, resp, 400,
                         "Bad Request: commands must be an "
                         "array",
                         0, 0);
    tf->st.set_my_commands++;
    tf->st.my_commands[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *c = json_object_array_get_idx(list, i), *name, *desc;
        const char *n;

        if (!json_object_object_get_ex(c, "command", &name) ||
            !json_object_object_get_ex(c, "description", &desc) ||
            (n = json_object_get_string(name)) == NULL || n[0] == '\0' ||
            strlen(n) > 32 || json_object_get_string_len(desc) < 1 ||
            json_object_get_string_len(desc) > 256)
            return api_error(tf, resp, 400, "Bad Request: bad command", 0, 0);
        off += (size_t)snprintf(tf->st.my_commands + off,
                                off < sizeof(tf->st.my_commands)
                                    ? sizeof(tf->st.my_commands) - off
                                    : 0,
                                "%s%s", i ? "," : "", n);
        if (off >= sizeof(tf->st.my_commands))
            off = sizeof(tf->st.my_commands);
    }
    return api_ok(tf, resp, json_object_new_boolean(1));
}

static int
h_bot(struct fake *f, const struct fake_request *req,
      struct fake_response *resp, void *arg)
{
    struct telegram_fake *tf = arg;
    const char *path = req->path + 4, *slash = strchr(path, '/');
    char method[64];
    size_t mlen, tlen;
    json_object *p;
    int rc;

    (void)f;
    if (slash == NULL)
        return api_error(tf, resp, 404, "Not Found", 0, 0);
    tlen = (size_t)(slash - path);
    if (tlen != strlen(tf->token) || strncmp(path, tf->token, tlen) != 0)
        return api_error(tf, resp, 401, "Unauthorized", 0, 0);
    mlen = strcspn(slash + 1, "?/");
    if (mlen == 0 || mlen >= sizeof(method) || slash[1 + mlen] == '/')
        return api_error(tf, resp, 404, "Not Found", 0, 0);
    memcpy(method, slash + 1, mlen);
    method[mlen] = '\0';
    p = params_of(req);
    if (strcasecmp(method, "getMe") == 0) {
        tf->st.get_me++;
        rc = api_ok(tf, resp, me_obj(tf));
    } else if (strcasecmp(method, "deleteWebhook") == 0) {
        tf->st.delete_webhook++;
        tf->webhook = 0;
        rc = api_ok(tf, resp, json_object_new_boolean(1));
    } else if (strcasecmp(method, "getUpdates") == 0) {
        rc = m_get_updates(tf, p, resp);
    } else if (strcasecmp(method, "sendMessage") == 0) {
        rc = m_send_message(tf, p, resp);
    } else if (strcasecmp(method, "editMessageText") == 0) {
        rc = m_edit_message(tf, p, resp);
    } else if (strcasecmp(method, "deleteMessage") == 0) {
        rc = m_delete_message(tf, p, resp);
    } else if (strcasecmp(method, "sendChatAction") == 0) {
        rc = m_chat_action(tf, p, resp);
    } else if (strcasecmp(method, "answerCallbackQuery") == 0) {
        rc = m_answer_callback(tf, p, resp);
    } else if (strcasecmp(method, "setMyCommands") == 0) {
        rc = m_set_my_commands(tf, p, resp);
    } else {
        rc = api_error(tf, resp, 404, "Not Found", 0, 0);
    }
    json_object_put(p);
    return rc;
}

static int
h_404(struct fake *f, const struct fake_request *req,
      struct fake_response *resp, void *arg)
{
    (void)f;
    (void)req;
    return api_error(arg, resp, 404, "Not Found", 0, 0);
}

/* ---- control API ---- */

static int
h_control(struct fake *f, const struct fake_request *req,
          struct fake_response *resp, void *arg)
{
    struct telegram_fake *tf = arg;
    const char *what = req->path + strlen("/_fake/");
    json_object *p = params_of(req), *o = json_object_new_object();
    int64_t chat = 0, v = 0, id;
    int rc = 0;

    p_i64(p, "chat", &chat);
    if (strncmp(what, "message", 7) == 0) {
        struct telegram_fake_msg m = {0};
        int64_t mid = 0;
        json_object *b;
        m.chat = chat;
        m.type = p_str(p, "type");
        p_i64(p, "from", &m.from);
        m.name = p_str(p, "name");
        m.text = p_str(p, "text");
        p_i64(p, "reply_to", &m.reply_to);
        p_i64(p, "thread", &m.thread);
        if (json_object_object_get_ex(p, "is_bot", &b))
            m.is_bot = json_object_get_boolean(b);
        id = m.chat != 0 ? telegram_fake_message(tf, &m, &mid) : -1;
        json_object_object_add(o, "update_id", json_object_new_int64(id));
        json_object_object_add(o, "message_id", json_object_new_int64(mid));
    } else if (strncmp(what, "callback", 8) == 0) {
        char qid[32] = "";
        int64_t mid = 0, from = 0;
        p_i64(p, "message_id", &mid);
        p_i64(p, "from", &from);
        id = telegram_fake_callback(tf, chat, mid, from ? from : 1001,
                                    p_str(p, "data") ? p_str(p, "data") : "",
                                    qid, sizeof(qid));
        json_object_object_add(o, "update_id", json_object_new_int64(id));
        json_object_object_add(o, "callback_query_id",
                               json_object_new_string(qid));
    } else if (strncmp(what, "script", 6) == 0) {
        int64_t code = 0, ra = 0, mig = 0, count = 1;
        const char *method = p_str(p, "method");
        p_i64(p, "code", &code);
        p_i64(p, "retry_after", &ra);
        p_i64(p, "migrate_to", &mig);
        p_i64(p, "count", &count);
        rc = telegram_fake_script(tf, method ? method : "sendMessage", chat,
                                  (int)code, ra, mig, p_str(p, "description"),
                                  (int)count);
    } else if (strncmp(what, "block", 5) == 0) {
        telegram_fake_block(tf, chat);
    } else if (strncmp(what, "migrate", 7) == 0) {
        p_i64(p, "to", &v);
        telegram_fake_migrate(tf, chat, v);
    } else if (strncmp(what, "sent", 4) == 0) {
        const struct telegram_fake_sent *s;
        size_t n = telegram_fake_sent(tf, chat, &s);
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            json_object *m = json_object_new_object();
            json_object_object_add(m, "message_id",
                                   json_object_new_int64(s[i].message_id));
            json_object_object_add(m, "text",
                                   json_object_new_string(s[i].text));
            if (s[i].html)
                json_object_object_add(m, "html",
                                       json_object_new_string(s[i].html));
            json_object_object_add(m, "reply_to",
                                   json_object_new_int64(s[i].reply_to));
            json_object_object_add(m, "thread",
                                   json_object_new_int64(s[i].thread));
            json_object_object_add(m, "keyboard",
                                   json_object_new_boolean(s[i].keyboard));
            json_object_object_add(m, "t_ms", json_object_new_int64(s[i].t_ms));
            json_object_object_add(m, "edits",
                                   json_object_new_int64(s[i].edits));
            json_object_object_add(m, "deleted",
                                   json_object_new_boolean(s[i].deleted));
            json_object_array_add(arr, m);
        }
        json_object_object_add(o, "messages", arr);
    } else if (strncmp(what, "stats", 5) == 0) {
        struct telegram_fake_stats st;
        telegram_fake_stats(tf, &st);
#define ADD(k, x)                                                              \
    json_object_object_add(o, k, json_object_new_int64((int64_t)(x)))
        ADD("getMe", st.get_me);
        ADD("deleteWebhook", st.delete_webhook);
        ADD("getUpdates", st.get_updates);
        ADD("sendMessage", st.send_message);
        ADD("delivered", st.delivered);
        ADD("editMessageText", st.edit_message);
        ADD("deleteMessage", st.delete_message);
        ADD("not_modified", st.not_modified);
        ADD("sendChatAction", st.chat_action);
        ADD("answerCallbackQuery", st.answer_callback);
        ADD("401", st.err401);
        ADD("403", st.err403);
        ADD("404", st.err404);
        ADD("409", st.err409);
        ADD("429", st.err429);
        ADD("400", st.err400);
        ADD("offset", st.offset);
        ADD("pending", st.pending);
        ADD("last_update_id", st.last_update_id);
#undef ADD
    } else {
        rc = -1;
    }
    json_object_put(p);
    if (rc != 0) {
        json_object_put(o);
        resp->status = 400;
        resp->body = "{\"ok\":false,\"description\":\"bad control request\"}";
        return 0;
    }
    resp->body = reply_json(f, o);
    return 0;
}

/* ---- lifetime and queries ---- */

struct telegram_fake *
telegram_fake_new(uv_loop_t *loop, int port, const char *token)
{
    struct telegram_fake *tf = calloc(1, sizeof(*tf));

    if (tf == NULL)
        return NULL;
    tf->loop = loop;
    snprintf(tf->token, sizeof(tf->token), "%s",
             token ? token : TELEGRAM_FAKE_TOKEN);
    tf->me_id = TELEGRAM_FAKE_BOT_ID;
    snprintf(tf->me_name, sizeof(tf->me_name), "%s", TELEGRAM_FAKE_BOT_NAME);
    tf->hold_max = TF_HOLD_DEFAULT_MS;
    tf->chat_burst = 3;
    tf->chat_interval = 1000;
    tf->group_n = 20;
    tf->group_window = 60000;
    tf->global_n = 30;
    tf->global_window = 1000;
    tf->next_update = 100000001;
    tf->f = fake_new(loop, port);
    if (tf->f == NULL) {
        free(tf);
        return NULL;
    }
    fake_capture_header(tf->f, "content-type");
    fake_route(tf->f, NULL, "/", h_404, tf);
    fake_route(tf->f, NULL, "/bot", h_bot, tf);
    fake_route(tf->f, NULL, "/_fake/", h_control, tf);
    snprintf(tf->base, sizeof(tf->base), "http://127.0.0.1:%d",
             fake_port(tf->f));
    return tf;
}

void
telegram_fake_free(struct telegram_fake *tf)
{
    if (tf == NULL)
        return;
    fake_free(tf->f);
    for (size_t i = 0; i < tf->nchats; i++) {
        struct tf_chat *c = &tf->chats[i];
        for (size_t k = 0; k < c->nrecs; k++) {
            free(c->recs[k].name);
            free(c->recs[k].text);
        }
        for (size_t k = 0; k < c->nsent; k++) {
            free(c->sent[k].text);
            free(c->sent[k].html);
            free(c->sent[k].cb_up);
            free(c->sent[k].edit_ms);
        }
        free(c->ops);
        free(c->recs);
        free(c->sent);
        free(c->win);
    }
    for (size_t i = 0; i < tf->nups; i++)
        free(tf->ups[i].json);
    free(tf->ups);
    free(tf->chats);
    free(tf->chat_slots);
    free(tf->gwin);
    free(tf->scripts);
    free(tf->queries);
    free(tf);
}

struct fake *
telegram_fake_server(struct telegram_fake *tf)
{
    return tf->f;
}

int
telegram_fake_port(const struct telegram_fake *tf)
{
    return fake_port(tf->f);
}

const char *
telegram_fake_base(const struct telegram_fake *tf)
{
    return tf->base;
}

void
telegram_fake_set_me(struct telegram_fake *tf, int64_t id, const char *username)
{
    tf->me_id = id;
    snprintf(tf->me_name, sizeof(tf->me_name), "%s", username);
}

void
telegram_fake_set_hold_max(struct telegram_fake *tf, int ms)
{
    tf->hold_max = ms;
}

void
telegram_fake_set_webhook(struct telegram_fake *tf, int on)
{
    tf->webhook = on;
}

void
telegram_fake_set_conflict_on_overlap(struct telegram_fake *tf, int on)
{
    tf->conflict_on_overlap = on;
}

void
telegram_fake_set_limits(struct telegram_fake *tf, int chat_burst,
                         int64_t chat_interval_ms, int group_n,
                         int64_t group_window_ms, int global_n,
                         int64_t global_window_ms)
{
    if (chat_burst > 0)
        tf->chat_burst = chat_burst;
    if (chat_interval_ms > 0)
        tf->chat_interval = chat_interval_ms;
    if (group_n > 0 && group_n != tf->group_n) {
        tf->group_n = group_n;
        for (size_t i = 0; i < tf->nchats; i++) { /* rings are sized by n */
            free(tf->chats[i].win);
            tf->chats[i].win = NULL;
            tf->chats[i].win_n = 0;
        }
    }
    if (group_window_ms > 0)
        tf->group_window = group_window_ms;
    if (global_n > 0) {
        tf->global_n = global_n;
        tf->gwin_n = 0;
    }
    if (global_window_ms > 0)
        tf->global_window = global_window_ms;
}

size_t
telegram_fake_sent(const struct telegram_fake *tf, int64_t chat,
                   const struct telegram_fake_sent **out)
{
    const struct tf_chat *c = chat_find(tf, chat);

    *out = c != NULL ? c->sent : NULL;
    return c != NULL ? c->nsent : 0;
}

void
telegram_fake_stats(const struct telegram_fake *tf,
                    struct telegram_fake_stats *st)
{
    *st = tf->st;
    st->offset = tf->offset;
    st->pending = tf->nups;
}

uint64_t
telegram_fake_429s(const struct telegram_fake *tf, int64_t chat)
{
    const struct tf_chat *c = chat_find(tf, chat);

    return c != NULL ? c->n429 : 0;
}

int
telegram_fake_answered(const struct telegram_fake *tf, const char *query_id)
{
    for (size_t i = 0; i < tf->nqueries; i++)
        if (strcmp(tf->queries[i].id, query_id) == 0)
            return tf->queries[i].answered;
    return 0;
}

uint64_t
telegram_fake_actions(const struct telegram_fake *tf, int64_t chat)
{
    const struct tf_chat *c = chat_find(tf, chat);

    return c != NULL ? c->actions : 0;
}

int64_t
telegram_fake_action_ms(const struct telegram_fake *tf, int64_t chat)
{
    const struct tf_chat *c = chat_find(tf, chat);

    return c != NULL ? c->action_ms : 0;
}

/* The message, deleted or not. */
static const struct telegram_fake_sent *
sent_get(const struct telegram_fake *tf, int64_t chat, int64_t message_id)
{
    const struct telegram_fake_sent *s;
    size_t n = telegram_fake_sent(tf, chat, &s);

    for (size_t i = 0; i < n; i++)
        if (s[i].message_id == message_id)
            return &s[i];
    return NULL;
}

const struct telegram_fake_sent *
telegram_fake_find(const struct telegram_fake *tf, int64_t chat,
                   int64_t message_id)
{
    return sent_get(tf, chat, message_id);
}

/* Most of the n sorted times that fall in any span of window_ms. */
static size_t
max_in_window(const int64_t *t, size_t n, int64_t window_ms)
{
    size_t best = 0, lo = 0;

    for (size_t hi = 0; hi < n; hi++) {
        while (lo < hi && t[hi] - t[lo] >= window_ms)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

size_t
telegram_fake_edits_max(const struct telegram_fake *tf, int64_t chat,
                        int64_t message_id, int64_t window_ms)
{
    const struct telegram_fake_sent *m = sent_get(tf, chat, message_id);

    return m != NULL ? max_in_window(m->edit_ms, m->nedit_ms, window_ms) : 0;
}

size_t
telegram_fake_ops(const struct telegram_fake *tf, int64_t chat,
                  const int64_t **times)
{
    const struct tf_chat *c = chat_find(tf, chat);

    *times = c != NULL ? c->ops : NULL;
    return c != NULL ? c->nops : 0;
}

size_t
telegram_fake_ops_max(const struct telegram_fake *tf, int64_t chat,
                      int64_t window_ms)
{
    const int64_t *t;
    size_t n = telegram_fake_ops(tf, chat, &t);

    return max_in_window(t, n, window_ms);
}
