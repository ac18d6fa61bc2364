/* telegram_codec: Bot API JSON ↔ structs (updates, replies, request bodies). */
#include "connectors/telegram_codec.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/commands.h"
#include "core/json_codec.h"

/* Telegram's anonymous-admin placeholder: the real sender is sender_chat. */
#define TG_ANON_ADMIN_ID 1087968824LL
/* Spans removed from one text (our mentions, the command); more are kept. */
#define TG_SPANS_MAX 32

static void
err_set(struct telegram_error *err, int code, const char *desc)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
    err->code = code;
    snprintf(err->description, sizeof(err->description), "%s", desc);
}

/* Bodies and frames: one JSON value, bounded, UTF-8 checked. */
static const struct json_codec_limits body_limits = {
    .max_bytes = TELEGRAM_BODY_MAX,
    .max_depth = TELEGRAM_JSON_DEPTH,
    .flags = JSON_CODEC_UTF8,
};

/* Copy at most cap-1 bytes, cut on a UTF-8 boundary. */
static void
copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = event_text_cut(src, strlen(src), cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * The envelope: TELEGRAM_PARSE_OK with *result (may be NULL for a
 * missing result), API_ERROR with *err, BAD with *err->description.
 */
static enum telegram_parse
envelope(json_object *root, json_object **result, struct telegram_error *err)
{
    json_object *ok = json_codec_get(root, "ok", json_type_boolean);
    json_object *params;
    const char *desc;
    int64_t code = 0;

    *result = NULL;
    if (ok == NULL) {
        err_set(err, 0, "not a Bot API reply (no \"ok\")");
        return TELEGRAM_PARSE_BAD;
    }
    if (json_object_get_boolean(ok)) {
        json_object_object_get_ex(root, "result", result);
        return TELEGRAM_PARSE_OK;
    }
    json_codec_i64(root, "error_code", &code);
    if (code < 0 || code > 999)
        code = 0;
    desc = json_codec_str(root, "description");
    err_set(err, (int)code, desc != NULL ? desc : "");
    if (err != NULL) {
        params = json_codec_get(root, "parameters", json_type_object);
        if (json_codec_i64(params, "retry_after", &err->retry_after) &&
            err->retry_after < 0)
            err->retry_after = 0;
        json_codec_i64(params, "migrate_to_chat_id", &err->migrate_to_chat_id);
    }
    return TELEGRAM_PARSE_API_ERROR;
}

/* ---- UTF-16 offsets ---- */

/* Bytes of the UTF-8 sequence at s[0] (1 for an invalid byte) and its
 * UTF-16 units in *units. */
static size_t
utf8_step(const unsigned char *s, size_t left, int *units)
{
    size_t n = 1;
    unsigned c = s[0];

    *units = 1;
    if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else if (c >= 0xe0)
        n = c <= 0xef ? 3 : 1;
    else if (c >= 0xc2)
        n = 2;
    if (n > left)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    if (n == 4)
        *units = 2;
    return n;
}

long
telegram_utf16_to_byte(const char *s, size_t len, int64_t off)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int64_t u = 0;
    int units;

    if (s == NULL || off < 0)
        return -1;
    while (u < off && i < len) {
        i += utf8_step(p + i, len - i, &units);
        u += units;
    }
    if (u != off) /* past the end, or inside a surrogate pair */
        return -1;
    return (long)i;
}

size_t
telegram_utf16_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, u = 0;
    int units;

    while (i < len) {
        i += utf8_step(p + i, len - i, &units);
        u += (size_t)units;
    }
    return u;
}

/* ---- updates ---- */

static enum telegram_chat_type
chat_type(const char *t)
{
    if (t == NULL)
        return TELEGRAM_CHAT_UNKNOWN;
    if (strcmp(t, "private") == 0)
        return TELEGRAM_CHAT_PRIVATE;
    if (strcmp(t, "group") == 0)
        return TELEGRAM_CHAT_GROUP;
    if (strcmp(t, "supergroup") == 0)
        return TELEGRAM_CHAT_SUPERGROUP;
    if (strcmp(t, "channel") == 0)
        return TELEGRAM_CHAT_CHANNEL;
    return TELEGRAM_CHAT_UNKNOWN;
}

static void
id_str(char *dst, size_t cap, int64_t v)
{
    if (v == 0)
        dst[0] = '\0';
    else
        snprintf(dst, cap, "%" PRId64, v);
}

/* chat {id, type}: 0 if usable. */
static int
read_chat(json_object *msg, struct telegram_update *u)
{
    json_object *chat = json_codec_get(msg, "chat", json_type_object);

    if (chat == NULL || !json_codec_i64(chat, "id", &u->chat_id) ||
        u->chat_id == 0)
        return -1;
    u->chat_type = chat_type(json_codec_str(chat, "type"));
    return 0;
}

/* message_thread_id when the message is in a forum topic. */
static void
read_thread(json_object *msg, struct telegram_update *u)
{
    int64_t t = 0;

    if (json_codec_bool(msg, "is_topic_message") &&
        json_codec_i64(msg, "message_thread_id", &t) && t > 0)
        u->thread_id = t;
}

static void
read_name(json_object *from, struct telegram_update *u)
{
    const char *first = json_codec_str(from, "first_name");
    const char *last = json_codec_str(from, "last_name");
    const char *user = json_codec_str(from, "username");
    char buf[2 * EVENT_NAME_MAX + 2];

    if (first != NULL && last != NULL && *last != '\0')
        snprintf(buf, sizeof(buf), "%.*s %.*s", EVENT_NAME_MAX, first,
                 EVENT_NAME_MAX, last);
    else if (first != NULL)
        snprintf(buf, sizeof(buf), "%.*s", EVENT_NAME_MAX, first);
    else if (user != NULL)
        snprintf(buf, sizeof(buf), "%.*s", EVENT_NAME_MAX, user);
    else
        buf[0] = '\0';
    /* %.*s may have cut inside a sequence: copy_cut repairs the end only
     * at EVENT_NAME_MAX, so cut again on a boundary */
    buf[event_text_cut(buf, strlen(buf), sizeof(buf) - 1)] = '\0';
    copy_cut(u->from_name, sizeof(u->from_name), buf);
}

struct span {
    size_t a, b; /* bytes [a, b) */
};

static int
span_cmp(const void *x, const void *y)
{
    const struct span *p = x, *q = y;

    return p->a < q->a ? -1 : p->a > q->a;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* text without the spans, trimmed; a blank on both sides of a removed
 * span is kept once.  NULL on out of memory. */
static char *
strip_spans(const char *text, size_t len, struct span *sp, size_t nsp)
{
    char *out = malloc(len + 1);
    size_t o = 0, i = 0, a, b, start;

    if (out == NULL)
        return NULL;
    qsort(sp, nsp, sizeof(*sp), span_cmp);
    for (size_t k = 0; k < nsp; k++) {
        if (sp[k].a < i) /* overlaps the previous one */
            continue;
        memcpy(out + o, text + i, sp[k].a - i);
        o += sp[k].a - i;
        i = sp[k].b;
        if (o > 0 && is_blank(out[o - 1]) && i < len && is_blank(text[i]))
            i++;
    }
    memcpy(out + o, text + i, len - i);
    o += len - i;
    out[o] = '\0';
    for (a = 0; a < o && is_blank(out[a]); a++)
        ;
    for (b = o; b > a && is_blank(out[b - 1]); b--)
        ;
    start = a;
    memmove(out, out + start, b - start);
    out[b - start] = '\0';
    return out;
}

/* "/cmd" or "/cmd@name" (span of len bytes): 1 and *cmd set when it is a
 * valid command for us. */
static int
command_for_us(const char *s, size_t len, const struct telegram_me *me,
               char *cmd, size_t cap)
{
    size_t i = 1, n;
    const char *at;
    char name[EVENT_COMMAND_MAX + 1];

    if (len < 2 || s[0] != '/')
        return 0;
    while (i < len && s[i] != '@')
        i++;
    n = i - 1;
    if (n == 0 || n >= cap || n >= sizeof(name))
        return 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[1 + k];
        if (!isalnum(c) && c != '_')
            return 0;
        name[k] = (char)tolower(c);
    }
    name[n] = '\0';
    if (i < len) { /* @name: must be ours */
        at = s + i + 1;
        if (len - i - 1 != strlen(me->username) || me->username[0] == '\0' ||
            strncasecmp(at, me->username, len - i - 1) != 0)
            return 0;
    }
    memcpy(cmd, name, n + 1);
    return 1;
}

/* Entities: our mentions, our command; fills flags, command, text. */
static int
read_text(json_object *msg, const struct telegram_me *me,
          struct telegram_update *u)
{
    const char *text = json_codec_str(msg, "text");
    json_object *ents = json_codec_get(msg, "entities", json_type_array);
    struct span sp[TG_SPANS_MAX];
    size_t nsp = 0, len, nents;

    if (text == NULL) {
        text = json_codec_str(msg, "caption");
        ents = json_codec_get(msg, "caption_entities", json_type_array);
    }
    if (text == NULL)
        text = "";
    len = strlen(text);
    nents = ents != NULL ? json_object_array_length(ents) : 0;
    for (size_t i = 0; i < nents; i++) {
        json_object *e = json_object_array_get_idx(ents, i);
        const char *type = json_codec_str(e, "type");
        int64_t off = -1, elen = -1, uid = 0;
        long a, b;

        if (type == NULL || !json_codec_i64(e, "offset", &off) ||
            !json_codec_i64(e, "length", &elen) || elen <= 0 || off < 0 ||
            off > INT32_MAX || elen > INT32_MAX)
            continue;
        a = telegram_utf16_to_byte(text, len, off);
        b = telegram_utf16_to_byte(text, len, off + elen);
        if (a < 0 || b < 0 || b <= a)
            continue;
        if (strcmp(type, "bot_command") == 0 && off == 0 &&
            !(u->flags & EVENT_COMMAND)) {
            if (command_for_us(text + a, (size_t)(b - a), me, u->command,
                               sizeof(u->command))) {
                u->flags |= EVENT_COMMAND;
                if (nsp < TG_SPANS_MAX)
                    sp[nsp++] = (struct span){(size_t)a, (size_t)b};
            }
        } else if (strcmp(type, "mention") == 0) {
            size_t n = (size_t)(b - a);
            if (me->username[0] != '\0' && n == strlen(me->username) + 1 &&
                text[a] == '@' &&
                strncasecmp(text + a + 1, me->username, n - 1) == 0) {
                u->flags |= EVENT_MENTIONED;
                if (nsp < TG_SPANS_MAX)
                    sp[nsp++] = (struct span){(size_t)a, (size_t)b};
            }
        } else if (strcmp(type, "text_mention") == 0) {
            if (json_codec_i64(json_codec_get(e, "user", json_type_object),
                               "id", &uid) &&
                uid == me->id && me->id != 0) {
                u->flags |= EVENT_MENTIONED;
                if (nsp < TG_SPANS_MAX)
                    sp[nsp++] = (struct span){(size_t)a, (size_t)b};
            }
        }
    }
    u->text = strip_spans(text, len, sp, nsp);
    if (u->text == NULL)
        return -1;
    u->text[event_text_cut(u->text, strlen(u->text), EVENT_TEXT_MAX)] = '\0';
    return 0;
}

/*
 * The service messages of a group's upgrade to a supergroup: the old
 * group gets migrate_to_chat_id, the supergroup migrate_from_chat_id.
 * 1 (kind MIGRATE, both ids set) or 0 (an ordinary message).
 */
static int
read_migrate(json_object *msg, struct telegram_update *u)
{
    int64_t id = 0;

    if (json_codec_i64(msg, "migrate_to_chat_id", &id) && id != 0 &&
        id != u->chat_id) {
        u->migrate_from = u->chat_id;
        u->migrate_to = id;
    } else if (json_codec_i64(msg, "migrate_from_chat_id", &id) && id != 0 &&
               id != u->chat_id) {
        u->migrate_from = id;
        u->migrate_to = u->chat_id;
    } else {
        return 0;
    }
    u->kind = TELEGRAM_UPDATE_MIGRATE;
    return 1;
}

/*
 * The author of the message replied to, for a command's WHO given as a
 * reply: its from.id, or for an anonymous admin (GroupAnonymousBot) the
 * chat it posted as, as read_message names such authors.
 */
static void
reply_author(json_object *reply, int64_t from, struct telegram_update *u)
{
    json_object *sc = json_codec_get(reply, "sender_chat", json_type_object);
    int64_t chat = 0;

    if (from == TG_ANON_ADMIN_ID && sc != NULL &&
        json_codec_i64(sc, "id", &chat) && chat != 0)
        from = chat;
    u->reply_from_id = from;
}

static void
read_message(json_object *msg, const struct telegram_me *me,
             struct telegram_update *u)
{
    json_object *from = json_codec_get(msg, "from", json_type_object);
    json_object *sender_chat =
        json_codec_get(msg, "sender_chat", json_type_object);
    json_object *reply =
        json_codec_get(msg, "reply_to_message", json_type_object);
    int64_t rid = 0, rfrom = 0;

    if (read_chat(msg, u) < 0 || read_migrate(msg, u) ||
        !json_codec_i64(msg, "message_id", &u->message_id) ||
        u->message_id <= 0 || from == NULL ||
        !json_codec_i64(from, "id", &u->from_id) || u->from_id == 0)
        return;
    json_codec_i64(msg, "date", &u->date);
    read_thread(msg, u);
    if (json_codec_bool(from, "is_bot"))
        u->flags |= EVENT_FROM_BOT;
    if (u->from_id == me->id)
        u->flags |= EVENT_FROM_SELF;
    /* an anonymous group admin posts as the group: not a bot, the user is
     * the chat (its own limits and history key) */
    if (u->from_id == TG_ANON_ADMIN_ID && sender_chat != NULL &&
        json_codec_i64(sender_chat, "id", &rid) && rid != 0) {
        u->from_id = rid;
        u->flags &= ~(unsigned)EVENT_FROM_BOT;
        const char *title = json_codec_str(sender_chat, "title");
        copy_cut(u->from_name, sizeof(u->from_name), title ? title : "");
    } else {
        read_name(from, u);
    }
    if (u->chat_type == TELEGRAM_CHAT_PRIVATE)
        u->flags |= EVENT_PRIVATE;
    rid = 0;
    if (reply != NULL && json_codec_i64(reply, "message_id", &rid) && rid > 0 &&
        !(u->thread_id != 0 && rid == u->thread_id)) {
        /* in a forum every message "replies" to the topic's first message;
         * only a real reply counts */
        u->reply_to_id = rid;
        if (json_codec_i64(json_codec_get(reply, "from", json_type_object),
                           "id", &rfrom) &&
            rfrom == me->id && me->id != 0)
            u->flags |= EVENT_REPLY_TO_BOT;
        reply_author(reply, rfrom, u);
    }
    if (read_text(msg, me, u) < 0)
        return;
    u->kind = TELEGRAM_UPDATE_MESSAGE;
}

static void
read_callback(json_object *cq, const struct telegram_me *me,
              struct telegram_update *u)
{
    const char *id = json_codec_str(cq, "id");
    const char *data = json_codec_str(cq, "data");
    json_object *from = json_codec_get(cq, "from", json_type_object);
    json_object *msg = json_codec_get(cq, "message", json_type_object);

    if (id == NULL || *id == '\0' || strlen(id) > TELEGRAM_CALLBACK_ID_MAX ||
        from == NULL || !json_codec_i64(from, "id", &u->from_id))
        return;
    snprintf(u->callback_id, sizeof(u->callback_id), "%s", id);
    if (json_codec_bool(from, "is_bot"))
        u->flags |= EVENT_FROM_BOT;
    if (u->from_id == me->id)
        u->flags |= EVENT_FROM_SELF;
    read_name(from, u);
    if (data != NULL && strlen(data) <= TELEGRAM_CALLBACK_DATA_MAX) {
        snprintf(u->callback_data, sizeof(u->callback_data), "%s", data);
        if (strncmp(data, "fb:+:", 5) == 0)
            u->vote = 1;
        else if (strncmp(data, "fb:-:", 5) == 0)
            u->vote = -1;
    }
    /* the message is absent for inline-mode buttons, too old ones are an
     * InaccessibleMessage (date 0) that still names chat and id */
    if (msg != NULL && read_chat(msg, u) == 0) {
        json_codec_i64(msg, "message_id", &u->message_id);
        read_thread(msg, u);
        if (u->chat_type == TELEGRAM_CHAT_PRIVATE)
            u->flags |= EVENT_PRIVATE;
    }
    u->kind = TELEGRAM_UPDATE_CALLBACK;
}

static void
read_member(json_object *m, const struct telegram_me *me,
            struct telegram_update *u)
{
    json_object *ncm = json_codec_get(m, "new_chat_member", json_type_object);
    const char *status = json_codec_str(ncm, "status");
    int64_t uid = 0;

    if (read_chat(m, u) < 0 || status == NULL)
        return;
    json_codec_i64(json_codec_get(ncm, "user", json_type_object), "id", &uid);
    if (me->id != 0 && uid != me->id)
        return;
    u->removed = strcmp(status, "kicked") == 0 || strcmp(status, "left") == 0;
    u->kind = TELEGRAM_UPDATE_MY_CHAT_MEMBER;
}

static void
read_update(json_object *obj, const struct telegram_me *me,
            struct telegram_update *u)
{
    json_object *v;

    if ((v = json_codec_get(obj, "message", json_type_object)) != NULL) {
        read_message(v, me, u);
    } else if ((v = json_codec_get(obj, "edited_message", json_type_object)) !=
               NULL) {
        /* edits are not answered again (the first version was); only the
         * chat is read, for the log */
        if (read_chat(v, u) == 0)
            u->kind = TELEGRAM_UPDATE_EDITED;
    } else if ((v = json_codec_get(obj, "callback_query", json_type_object)) !=
               NULL) {
        read_callback(v, me, u);
    } else if ((v = json_codec_get(obj, "my_chat_member", json_type_object)) !=
               NULL) {
        read_member(v, me, u);
    }
    if (u->kind == TELEGRAM_UPDATE_SKIP) {
        /* half-read fields of a skipped update mean nothing */
        int64_t id = u->update_id;
        free(u->text);
        memset(u, 0, sizeof(*u));
        u->update_id = id;
    }
    id_str(u->chat_s, sizeof(u->chat_s), u->chat_id);
    id_str(u->thread_s, sizeof(u->thread_s), u->thread_id);
    id_str(u->message_s, sizeof(u->message_s), u->message_id);
    id_str(u->from_s, sizeof(u->from_s), u->from_id);
    id_str(u->reply_s, sizeof(u->reply_s), u->reply_to_id);
    id_str(u->reply_from_s, sizeof(u->reply_from_s), u->reply_from_id);
}

void
telegram_updates_release(struct telegram_updates *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].text);
    free(u->v);
    memset(u, 0, sizeof(*u));
}

enum telegram_parse
telegram_codec_parse_updates(const char *body, size_t len,
                             const struct telegram_me *me,
                             struct telegram_updates *out,
                             struct telegram_error *err)
{
    enum telegram_parse rc = TELEGRAM_PARSE_BAD;
    json_object *root, *result = NULL;
    const char *why;
    size_t n;

    memset(out, 0, sizeof(*out));
    root = json_codec_parse(&body_limits, body, len, &why);
    if (root == NULL) {
        err_set(err, 0, why);
        goto out;
    }
    rc = envelope(root, &result, err);
    if (rc != TELEGRAM_PARSE_OK)
        goto out;
    rc = TELEGRAM_PARSE_BAD;
    if (result == NULL || !json_object_is_type(result, json_type_array)) {
        err_set(err, 0, "result is not an array");
        goto out;
    }
    n = json_object_array_length(result);
    if (n > TELEGRAM_UPDATES_MAX) {
        err_set(err, 0, "too many updates");
        goto out;
    }
    if (n > 0) {
        out->v = calloc(n, sizeof(*out->v));
        if (out->v == NULL) {
            err_set(err, 0, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *obj = json_object_array_get_idx(result, i);
        struct telegram_update *u = &out->v[out->n];

        if (!json_codec_i64(obj, "update_id", &u->update_id) ||
            u->update_id < 0 || u->update_id == INT64_MAX) {
            err_set(err, 0, "update without an update_id");
            telegram_updates_release(out);
            goto out;
        }
        out->n++;
        read_update(obj, me, u);
        if (u->update_id + 1 > out->next_offset)
            out->next_offset = u->update_id + 1;
    }
    rc = TELEGRAM_PARSE_OK;
out:
    json_object_put(root);
    return rc;
}

enum telegram_parse
telegram_codec_parse_me(const char *body, size_t len, struct telegram_me *me,
                        struct telegram_error *err)
{
    enum telegram_parse rc = TELEGRAM_PARSE_BAD;
    json_object *root, *result = NULL;
    const char *why, *name;

    memset(me, 0, sizeof(*me));
    root = json_codec_parse(&body_limits, body, len, &why);
    if (root == NULL) {
        err_set(err, 0, why);
        goto out;
    }
    rc = envelope(root, &result, err);
    if (rc != TELEGRAM_PARSE_OK)
        goto out;
    rc = TELEGRAM_PARSE_BAD;
    name = json_codec_str(result, "username");
    if (!json_codec_i64(result, "id", &me->id) || me->id == 0 || name == NULL ||
        *name == '\0' || strlen(name) > TELEGRAM_USERNAME_MAX) {
        err_set(err, 0, "getMe result without id or username");
        memset(me, 0, sizeof(*me));
        goto out;
    }
    snprintf(me->username, sizeof(me->username), "%s", name);
    rc = TELEGRAM_PARSE_OK;
out:
    json_object_put(root);
    return rc;
}

enum telegram_parse
telegram_codec_parse_result(const char *body, size_t len, int64_t *message_id,
                            struct telegram_error *err)
{
    enum telegram_parse rc = TELEGRAM_PARSE_BAD;
    json_object *root, *result = NULL;
    const char *why;
    int64_t id = 0;

    root = json_codec_parse(&body_limits, body, len, &why);
    if (root == NULL) {
        err_set(err, 0, why);
        goto out;
    }
    rc = envelope(root, &result, err);
    if (rc == TELEGRAM_PARSE_OK && !json_codec_i64(result, "message_id", &id))
        id = 0;
out:
    if (message_id != NULL)
        *message_id = id;
    json_object_put(root);
    return rc;
}

static int
desc_has(const struct telegram_error *err, const char *needle)
{
    return err != NULL && err->code == 400 &&
           strcasestr(err->description, needle) != NULL;
}

int
telegram_error_is_parse(const struct telegram_error *err)
{
    return desc_has(err, "can't parse entities") ||
           desc_has(err, "can't find end of the entity");
}

int
telegram_error_is_not_modified(const struct telegram_error *err)
{
    return desc_has(err, "message is not modified");
}

int
telegram_error_is_gone(const struct telegram_error *err)
{
    return desc_has(err, "message to edit not found") ||
           desc_has(err, "message to delete not found") ||
           desc_has(err, "message_id_invalid") ||
           desc_has(err, "message can't be edited");
}

int
telegram_error_is_query_old(const struct telegram_error *err)
{
    return desc_has(err, "query is too old") ||
           desc_has(err, "query id is invalid");
}

int
telegram_update_event(const struct telegram_update *u, struct event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->platform = "telegram";
    ev->chat = u->chat_s;
    ev->thread = u->thread_s;
    ev->user = u->from_s;
    ev->user_name = u->from_name;
    ev->reply_to = u->reply_s;
    ev->reply_to_user = u->reply_from_s;
    ev->flags = u->flags;
    ev->ts_ms = u->date > 0 && u->date < INT64_MAX / 1000 ? u->date * 1000 : 0;
    ev->command = u->command;
    ev->text = u->text != NULL ? u->text : "";
    ev->target_id = "";
    if (u->kind == TELEGRAM_UPDATE_MESSAGE) {
        ev->kind = EVENT_MESSAGE;
        ev->message_id = u->message_s;
        return 0;
    }
    if (u->kind == TELEGRAM_UPDATE_CALLBACK && u->vote != 0 &&
        u->chat_id != 0 && u->message_id > 0) {
        ev->kind = EVENT_VOTE;
        /* not a platform message: the callback id names this press */
        ev->message_id = "";
        ev->target_id = u->message_s;
        ev->vote = u->vote;
        ev->text = "";
        return 0;
    }
    return -1;
}

/* ---- request bodies ---- */

/* text with invalid UTF-8 replaced by U+FFFD (Telegram refuses the
 * whole message otherwise); malloc'd. */
static char *
utf8_clean(const char *s)
{
    size_t len = strlen(s), o = 0;
    char *out = malloc(len * 3 + 1);
    int units;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_step((const unsigned char *)s + i, len - i, &units);
        unsigned c = (unsigned char)s[i];
        int bad = n == 1 && c >= 0x80;
        /* overlongs and surrogates pass utf8_step's shape check */
        if (n == 3 && ((c == 0xe0 && (unsigned char)s[i + 1] < 0xa0) ||
                       (c == 0xed && (unsigned char)s[i + 1] >= 0xa0)))
            bad = 1;
        if (n == 4 && ((c == 0xf0 && (unsigned char)s[i + 1] < 0x90) ||
                       (c == 0xf4 && (unsigned char)s[i + 1] >= 0x90)))
            bad = 1;
        if (bad) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += n;
            continue;
        }
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    return out;
}

static char *
finish(json_object *o)
{
    char *s = NULL;
    const char *j;

    if (o == NULL)
        return NULL;
    j = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
    if (j != NULL)
        s = strdup(j);
    json_object_put(o);
    return s;
}

static json_object *
button(const char *label, char sign, const char *key)
{
    json_object *b = json_object_new_object();
    char data[TELEGRAM_CALLBACK_DATA_MAX + 1];
    size_t klen = strlen(key), max = TELEGRAM_CALLBACK_DATA_MAX - 5;

    if (klen > max)
        klen = event_text_cut(key, klen, max);
    snprintf(data, sizeof(data), "fb:%c:%.*s", sign, (int)klen, key);
    json_object_object_add(b, "text", json_object_new_string(label));
    json_object_object_add(b, "callback_data", json_object_new_string(data));
    return b;
}

/* {"inline_keyboard":[[👍 "fb:+:KEY", 👎 "fb:-:KEY"]]} */
static json_object *
keyboard(const char *key)
{
    json_object *kb = json_object_new_object();
    json_object *rows = json_object_new_array();
    json_object *row = json_object_new_array();

    json_object_array_add(row, button("\xf0\x9f\x91\x8d", '+', key));
    json_object_array_add(row, button("\xf0\x9f\x91\x8e", '-', key));
    json_object_array_add(rows, row);
    json_object_object_add(kb, "inline_keyboard", rows);
    return kb;
}

char *
telegram_codec_send_message(const struct telegram_send *s)
{
    json_object *o, *rp;
    char *text;

    if (s == NULL || s->text == NULL || s->chat_id == 0)
        return NULL;
    text = utf8_clean(s->text);
    if (text == NULL)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_object_new_int64(s->chat_id));
    if (s->thread_id != 0)
        json_object_object_add(o, "message_thread_id",
                               json_object_new_int64(s->thread_id));
    json_object_object_add(o, "text", json_object_new_string(text));
    free(text);
    if (s->html)
        json_object_object_add(o, "parse_mode", json_object_new_string("HTML"));
    if (s->reply_to != 0) {
        rp = json_object_new_object();
        json_object_object_add(rp, "message_id",
                               json_object_new_int64(s->reply_to));
        json_object_object_add(rp, "allow_sending_without_reply",
                               json_object_new_boolean(1));
        json_object_object_add(o, "reply_parameters", rp);
    }
    if (s->fb_key != NULL)
        json_object_object_add(o, "reply_markup", keyboard(s->fb_key));
    return finish(o);
}

char *
telegram_codec_edit_message(const struct telegram_send *s, int64_t message_id)
{
    json_object *o;
    char *text;

    if (s == NULL || s->text == NULL || s->chat_id == 0 || message_id <= 0)
        return NULL;
    if ((text = utf8_clean(s->text)) == NULL)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_object_new_int64(s->chat_id));
    json_object_object_add(o, "message_id", json_object_new_int64(message_id));
    json_object_object_add(o, "text", json_object_new_string(text));
    free(text);
    if (s->html)
        json_object_object_add(o, "parse_mode", json_object_new_string("HTML"));
    /* without reply_markup Telegram drops the keyboard: only the final
     * edit of the last part carries it */
    if (s->fb_key != NULL)
        json_object_object_add(o, "reply_markup", keyboard(s->fb_key));
    return finish(o);
}

/*
 * setMyCommands: the commands everyone may use (core's table: help,
 * reset, usage, limits, forget), for the menu Telegram clients show
 * behind "/".  Admin commands stay out of it; `help` lists them to those
 * who may use them.
 */
char *
telegram_codec_my_commands(void)
{
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    const struct commands_entry *t;
    size_t n;

    t = commands_table(&n);
    for (size_t i = 0; i < n; i++) {
        json_object *c;

        if (t[i].sub != NULL || !commands_allowed(&t[i], COMMANDS_ROLE_USER))
            continue;
        c = json_object_new_object();
        json_object_object_add(c, "command", json_object_new_string(t[i].name));
        json_object_object_add(c, "description",
                               json_object_new_string(t[i].help));
        json_object_array_add(list, c);
    }
    json_object_object_add(o, "commands", list);
    return finish(o);
}

char *
telegram_codec_delete_message(int64_t chat_id, int64_t message_id)
{
    json_object *o;

    if (chat_id == 0 || message_id <= 0)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_object_new_int64(chat_id));
    json_object_object_add(o, "message_id", json_object_new_int64(message_id));
    return finish(o);
}

char *
telegram_codec_chat_action(int64_t chat_id, int64_t thread_id)
{
    json_object *o;

    if (chat_id == 0)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "chat_id", json_object_new_int64(chat_id));
    if (thread_id != 0)
        json_object_object_add(o, "message_thread_id",
                               json_object_new_int64(thread_id));
    json_object_object_add(o, "action", json_object_new_string("typing"));
    return finish(o);
}

char *
telegram_codec_answer_callback(const char *callback_id, const char *text)
{
    json_object *o;

    if (callback_id == NULL || *callback_id == '\0')
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "callback_query_id",
                           json_object_new_string(callback_id));
    if (text != NULL)
        json_object_object_add(o, "text", json_object_new_string(text));
    return finish(o);
}

char *
telegram_codec_get_updates(int64_t offset, int timeout_s, int limit)
{
    json_object *o = json_object_new_object();
    json_object *allowed = json_tokener_parse(TELEGRAM_ALLOWED_UPDATES);

    if (offset > 0)
        json_object_object_add(o, "offset", json_object_new_int64(offset));
    json_object_object_add(o, "timeout", json_object_new_int(timeout_s));
    json_object_object_add(o, "limit", json_object_new_int(limit));
    json_object_object_add(o, "allowed_updates", allowed);
    return finish(o);
}

char *
telegram_codec_delete_webhook(void)
{
    return strdup("{\"drop_pending_updates\":false}");
}
