/* discord_codec: Discord gateway frames and REST bodies ↔ structs (pure). */
#include "connectors/discord_codec.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/commands.h"
#include "core/json_codec.h"

/* Message types that carry a user's text: DEFAULT and REPLY. */
#define DC_TYPE_DEFAULT 0
#define DC_TYPE_REPLY 19
/* Mentions array entries looked at (Discord caps mentions per message). */
#define DC_MENTIONS_MAX 100

/* Bodies and frames: one JSON value, bounded, UTF-8 checked. */
static const struct json_codec_limits body_limits = {
    .max_bytes = DISCORD_BODY_MAX,
    .max_depth = DISCORD_JSON_DEPTH,
    .flags = JSON_CODEC_UTF8,
};

/* A number (int or double) in seconds → ms rounded up; -1 absent. */
static int64_t
get_seconds_ms(json_object *obj, const char *key)
{
    json_object *v = NULL;
    double d;

    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) || v == NULL)
        return -1;
    if (!json_object_is_type(v, json_type_double) &&
        !json_object_is_type(v, json_type_int))
        return -1;
    d = json_object_get_double(v);
    if (!(d >= 0) || d > 1e9)
        return -1;
    return (int64_t)ceil(d * 1000.0 - 1e-6);
}

/* A snowflake: 1..20 decimal digits. */
static int
snowflake_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (n >= 20 || !isdigit((unsigned char)s[n]))
            return 0;
    return n > 0;
}

/* Copy a snowflake member into dst: 1 ok, 0 absent or malformed. */
static int
get_snowflake(json_object *obj, const char *key, char *dst, size_t cap)
{
    const char *s = json_codec_str(obj, key);

    if (!snowflake_ok(s) || strlen(s) >= cap)
        return 0;
    memcpy(dst, s, strlen(s) + 1);
    return 1;
}

/* Copy at most cap-1 bytes, cut on a UTF-8 boundary. */
static void
copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = event_text_cut(src, strlen(src), cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static enum discord_dispatch
dispatch_kind(const char *t)
{
    if (t == NULL)
        return DISCORD_T_NONE;
    if (strcmp(t, "READY") == 0)
        return DISCORD_T_READY;
    if (strcmp(t, "RESUMED") == 0)
        return DISCORD_T_RESUMED;
    if (strcmp(t, "MESSAGE_CREATE") == 0)
        return DISCORD_T_MESSAGE_CREATE;
    if (strcmp(t, "MESSAGE_REACTION_ADD") == 0)
        return DISCORD_T_REACTION_ADD;
    if (strcmp(t, "MESSAGE_REACTION_REMOVE") == 0)
        return DISCORD_T_REACTION_REMOVE;
    if (strcmp(t, "INTERACTION_CREATE") == 0)
        return DISCORD_T_INTERACTION_CREATE;
    return DISCORD_T_OTHER;
}

static int
decode_ready(json_object *d, struct discord_ready *r, const char **why)
{
    const char *sid = json_codec_str(d, "session_id");
    const char *url = json_codec_str(d, "resume_gateway_url");
    json_object *user = json_codec_get(d, "user", json_type_object);
    const char *name = json_codec_str(user, "username");

    if (sid == NULL || sid[0] == '\0' || strlen(sid) >= sizeof(r->session_id)) {
        *why = "READY without a usable session_id";
        return -1;
    }
    if (!get_snowflake(user, "id", r->user_id, sizeof(r->user_id))) {
        *why = "READY without user.id";
        return -1;
    }
    memcpy(r->session_id, sid, strlen(sid) + 1);
    /* absent on very old gateways: resume on the gateway url then */
    if (url != NULL && strlen(url) < sizeof(r->resume_url) &&
        (strncmp(url, "wss://", 6) == 0 || strncmp(url, "ws://", 5) == 0))
        memcpy(r->resume_url, url, strlen(url) + 1);
    if (name != NULL)
        copy_cut(r->username, sizeof(r->username), name);
    /* whom slash commands are registered for (absent: not registered) */
    get_snowflake(json_codec_get(d, "application", json_type_object), "id",
                  r->application_id, sizeof(r->application_id));
    return 0;
}

/*
 * Removes every "<@self>" and "<@!self>" from text (in place); returns 1
 * if one was found.  A space after a removed mention at the start of a
 * word goes with it, so "<@1> hi" becomes "hi".
 */
static int
strip_mentions(char *text, const char *self)
{
    char tok1[DISCORD_SNOWFLAKE_MAX + 4], tok2[DISCORD_SNOWFLAKE_MAX + 4];
    size_t n1, n2, r = 0, w = 0, len = strlen(text);
    int found = 0;

    if (self == NULL || self[0] == '\0')
        return 0;
    n1 = (size_t)snprintf(tok1, sizeof(tok1), "<@%s>", self);
    n2 = (size_t)snprintf(tok2, sizeof(tok2), "<@!%s>", self);
    while (r < len) {
        size_t skip = 0;

        if (strncmp(text + r, tok1, n1) == 0)
            skip = n1;
        else if (strncmp(text + r, tok2, n2) == 0)
            skip = n2;
        if (skip > 0) {
            found = 1;
            r += skip;
            if ((w == 0 || text[w - 1] == ' ' || text[w - 1] == '\n') &&
                r < len && (text[r] == ' ' || text[r] == '\n'))
                r++;
            continue;
        }
        text[w++] = text[r++];
    }
    text[w] = '\0';
    return found;
}

/* Trim ASCII whitespace at both ends, in place. */
static void
trim(char *s)
{
    size_t len = strlen(s), a = 0;

    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    while (a < len && isspace((unsigned char)s[a]))
        a++;
    if (a > 0)
        memmove(s, s + a, len - a + 1);
}

/* "/name args": a command; name lower-cased into m->command, text = args. */
static void
find_command(struct discord_message *m)
{
    char *t = m->text;
    size_t n = 0;

    if (t[0] != '/' || !isalpha((unsigned char)t[1]))
        return;
    while (n < EVENT_COMMAND_MAX - 1 && (isalnum((unsigned char)t[1 + n]) ||
                                         t[1 + n] == '_' || t[1 + n] == '-'))
        n++;
    if (t[1 + n] != '\0' && !isspace((unsigned char)t[1 + n]))
        return; /* "/path/to", a name too long: not a command */
    for (size_t i = 0; i < n; i++)
        m->command[i] = (char)tolower((unsigned char)t[1 + i]);
    m->command[n] = '\0';
    memmove(t, t + 1 + n, strlen(t + 1 + n) + 1);
    trim(t);
    m->flags |= EVENT_COMMAND;
}

static int64_t
snowflake_ms(const char *id)
{
    uint64_t v = strtoull(id, NULL, 10);

    return (int64_t)(v >> 22) + DISCORD_EPOCH_MS;
}

static void
decode_message(json_object *d, const char *self, struct discord_message *m)
{
    json_object *author = json_codec_get(d, "author", json_type_object);
    json_object *member = json_codec_get(d, "member", json_type_object);
    json_object *ref =
        json_codec_get(d, "referenced_message", json_type_object);
    json_object *mref =
        json_codec_get(d, "message_reference", json_type_object);
    json_object *mentions = json_codec_get(d, "mentions", json_type_array);
    const char *content = json_codec_str(d, "content");
    const char *name;
    int64_t type = DC_TYPE_DEFAULT;
    size_t len;
    char ref_author[DISCORD_SNOWFLAKE_MAX] = "";

    m->skip = 1;
    if (!get_snowflake(d, "id", m->id, sizeof(m->id)) ||
        !get_snowflake(d, "channel_id", m->channel_id, sizeof(m->channel_id)) ||
        !get_snowflake(author, "id", m->author_id, sizeof(m->author_id)))
        return;
    json_codec_i64(d, "type", &type);
    if (type != DC_TYPE_DEFAULT && type != DC_TYPE_REPLY)
        return; /* joins, pins, boosts, slash-command echoes */
    get_snowflake(d, "guild_id", m->guild_id, sizeof(m->guild_id));
    name = json_codec_str(member, "nick");
    if (name == NULL)
        name = json_codec_str(author, "global_name");
    if (name == NULL)
        name = json_codec_str(author, "username");
    copy_cut(m->author_name, sizeof(m->author_name), name ? name : "");
    if (m->guild_id[0] == '\0')
        m->flags |= EVENT_PRIVATE;
    if (json_codec_bool(author, "bot") ||
        json_codec_get(d, "webhook_id", json_type_string))
        m->flags |= EVENT_FROM_BOT;
    if (self[0] != '\0' && strcmp(m->author_id, self) == 0)
        m->flags |= EVENT_FROM_SELF;
    get_snowflake(mref, "message_id", m->reply_to, sizeof(m->reply_to));
    if (ref != NULL) {
        get_snowflake(json_codec_get(ref, "author", json_type_object), "id",
                      ref_author, sizeof(ref_author));
        if (m->reply_to[0] == '\0')
            get_snowflake(ref, "id", m->reply_to, sizeof(m->reply_to));
    }
    if (self[0] != '\0' && strcmp(ref_author, self) == 0)
        m->flags |= EVENT_REPLY_TO_BOT;
    copy_cut(m->reply_author, sizeof(m->reply_author), ref_author);
    if (mentions != NULL && self[0] != '\0') {
        size_t n = json_object_array_length(mentions);

        for (size_t i = 0; i < n && i < DC_MENTIONS_MAX; i++) {
            const char *id =
                json_codec_str(json_object_array_get_idx(mentions, i), "id");
            if (id != NULL && strcmp(id, self) == 0)
                m->flags |= EVENT_MENTIONED;
        }
    }
    if (content == NULL)
        content = "";
    len = event_text_cut(content, strlen(content), EVENT_TEXT_MAX);
    if ((m->text = malloc(len + 1)) == NULL)
        return;
    memcpy(m->text, content, len);
    m->text[len] = '\0';
    if (strip_mentions(m->text, self))
        m->flags |= EVENT_MENTIONED;
    /* a reply pings its author by default: that is not a mention */
    if ((m->flags & EVENT_REPLY_TO_BOT) && !strstr(content, "<@"))
        m->flags &= ~(unsigned)EVENT_MENTIONED;
    trim(m->text);
    find_command(m);
    m->ts_ms = snowflake_ms(m->id);
    m->skip = 0;
}

/* 👍 U+1F44D, 👎 U+1F44E, optionally with a skin tone U+1F3FB..U+1F3FF. */
static int
emoji_vote(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    int vote;

    if (s == NULL || s[0] != 0xf0 || s[1] != 0x9f || s[2] != 0x91)
        return 0;
    if (s[3] == 0x8d)
        vote = 1;
    else if (s[3] == 0x8e)
        vote = -1;
    else
        return 0;
    s += 4;
    if (s[0] == 0xf0 && s[1] == 0x9f && s[2] == 0x8f && s[3] >= 0xbb &&
        s[3] <= 0xbf)
        s += 4;
    return s[0] == '\0' ? vote : 0;
}

static void
decode_reaction(json_object *d, const char *self, struct discord_reaction *r)
{
    json_object *emoji = json_codec_get(d, "emoji", json_type_object);
    json_object *member = json_codec_get(d, "member", json_type_object);
    char author[DISCORD_SNOWFLAKE_MAX] = "";

    r->skip = 1;
    if (!get_snowflake(d, "user_id", r->user_id, sizeof(r->user_id)) ||
        !get_snowflake(d, "channel_id", r->channel_id, sizeof(r->channel_id)) ||
        !get_snowflake(d, "message_id", r->message_id, sizeof(r->message_id)))
        return;
    get_snowflake(d, "guild_id", r->guild_id, sizeof(r->guild_id));
    /* ours (the bot's own 👍/👎 under each answer) and other bots' */
    if (self[0] != '\0' && strcmp(r->user_id, self) == 0)
        return;
    if (json_codec_bool(json_codec_get(member, "user", json_type_object),
                        "bot"))
        return;
    /* only votes on our messages count (core checks too) */
    if (get_snowflake(d, "message_author_id", author, sizeof(author)) &&
        self[0] != '\0' && strcmp(author, self) != 0)
        return;
    if (json_codec_get(emoji, "id", json_type_string) != NULL)
        return; /* a custom emoji, whatever its name */
    if ((r->vote = emoji_vote(json_codec_str(emoji, "name"))) == 0)
        return;
    r->skip = 0;
}

/* ---- INTERACTION_CREATE (slash commands) ---- */

/* The token goes into URL paths: URL-safe characters only. */
static int
ia_token_ok(const char *s)
{
    size_t n = s != NULL ? strspn(s, "abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789._-")
                         : 0;

    return n > 0 && n < DISCORD_IA_TOKEN_MAX && s[n] == '\0';
}

/* The value of the string option named DISCORD_SLASH_OPTION, or "". */
static const char *
ia_option_text(json_object *data)
{
    json_object *opts = json_codec_get(data, "options", json_type_array);
    size_t n = opts != NULL ? json_object_array_length(opts) : 0;

    for (size_t i = 0; i < n && i < 25; i++) {
        json_object *o = json_object_array_get_idx(opts, i);
        const char *name = json_codec_str(o, "name");
        const char *v = json_codec_str(o, "value");

        if (name != NULL && v != NULL &&
            strcmp(name, DISCORD_SLASH_OPTION) == 0)
            return v;
    }
    return "";
}

/* 1 when name (lower case) is one of core's commands. */
static int
is_command_name(const char *name)
{
    size_t n;
    const struct commands_entry *t = commands_table(&n);

    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return 1;
    return 0;
}

/*
 * ia->text (trimmed) → a command (its first word, a leading '/'
 * dropped, names one of core's) with its arguments, "help" when empty,
 * else a question addressed to us.
 */
static void
ia_classify(struct discord_interaction *ia)
{
    char *t = ia->text, word[EVENT_COMMAND_MAX];
    size_t skip = t[0] == '/' ? 1 : 0, n;

    trim(t);
    if (t[0] == '\0') {
        snprintf(ia->command, sizeof(ia->command), "help");
        ia->flags |= EVENT_COMMAND;
        return;
    }
    n = strcspn(t + skip, " \t\r\n");
    if (n > 0 && n < sizeof(word)) {
        for (size_t i = 0; i < n; i++)
            word[i] = (char)tolower((unsigned char)t[skip + i]);
        word[n] = '\0';
        if (is_command_name(word)) {
            memcpy(ia->command, word, n + 1);
            memmove(t, t + skip + n, strlen(t + skip + n) + 1);
            trim(t);
            ia->flags |= EVENT_COMMAND;
            return;
        }
    }
    ia->flags |= EVENT_MENTIONED; /* a question to the bot */
}

static void
decode_interaction(json_object *d, struct discord_interaction *ia)
{
    json_object *data = json_codec_get(d, "data", json_type_object);
    json_object *member = json_codec_get(d, "member", json_type_object);
    json_object *user = json_codec_get(member, "user", json_type_object);
    const char *tok = json_codec_str(d, "token"), *name, *perms, *text;
    int64_t type = 0;
    size_t len;

    ia->skip = 1;
    if (!json_codec_i64(d, "type", &type) ||
        type != DISCORD_IA_APPLICATION_COMMAND || data == NULL ||
        json_codec_str(data, "name") == NULL ||
        strcmp(json_codec_str(data, "name"), DISCORD_SLASH_NAME) != 0)
        return; /* pings, components, autocomplete, other commands */
    if (user == NULL)
        user = json_codec_get(d, "user", json_type_object); /* a DM */
    if (!get_snowflake(d, "id", ia->id, sizeof(ia->id)) ||
        !get_snowflake(d, "application_id", ia->application_id,
                       sizeof(ia->application_id)) ||
        !get_snowflake(d, "channel_id", ia->channel_id,
                       sizeof(ia->channel_id)) ||
        !get_snowflake(user, "id", ia->user_id, sizeof(ia->user_id)) ||
        !ia_token_ok(tok))
        return;
    memcpy(ia->token, tok, strlen(tok) + 1);
    snprintf(ia->message_id, sizeof(ia->message_id), "%s%s", DISCORD_IA_PREFIX,
             ia->id);
    if (!get_snowflake(d, "guild_id", ia->guild_id, sizeof(ia->guild_id)))
        ia->flags |= EVENT_PRIVATE;
    /* the invoker's permissions in the channel, a decimal bit set */
    perms = json_codec_str(member, "permissions");
    if (ia->guild_id[0] != '\0' && perms != NULL &&
        strspn(perms, "0123456789") == strlen(perms) && perms[0] != '\0' &&
        (strtoull(perms, NULL, 10) &
         (DISCORD_PERM_ADMINISTRATOR | DISCORD_PERM_MANAGE_GUILD)))
        ia->flags |= EVENT_ADMIN;
    if (json_codec_bool(user, "bot"))
        ia->flags |= EVENT_FROM_BOT;
    name = json_codec_str(member, "nick");
    if (name == NULL)
        name = json_codec_str(user, "global_name");
    if (name == NULL)
        name = json_codec_str(user, "username");
    copy_cut(ia->user_name, sizeof(ia->user_name), name ? name : "");
    text = ia_option_text(data);
    len = event_text_cut(text, strlen(text), EVENT_TEXT_MAX);
    if ((ia->text = malloc(len + 1)) == NULL)
        return;
    memcpy(ia->text, text, len);
    ia->text[len] = '\0';
    ia_classify(ia);
    ia->ts_ms = snowflake_ms(ia->id);
    ia->skip = 0;
}

int
discord_codec_frame(const char *buf, size_t len, const char *self_id,
                    struct discord_frame *f, const char **why)
{
    json_object *root = NULL, *d;
    const char *t;
    int64_t op = -1;
    int rc = -1;

    memset(f, 0, sizeof(*f));
    f->s = -1;
    f->msg.skip = f->reaction.skip = f->ia.skip = 1;
    if (self_id == NULL)
        self_id = "";
    if ((root = json_codec_parse(&body_limits, buf, len, why)) == NULL)
        goto out;
    if (!json_object_is_type(root, json_type_object) ||
        !json_codec_i64(root, "op", &op) || op < 0 || op > 255) {
        *why = "not a gateway frame (no op)";
        goto out;
    }
    f->op = (int)op;
    json_codec_i64(root, "s", &f->s);
    if (f->s < 0)
        f->s = -1;
    json_object_object_get_ex(root, "d", &d);
    switch (f->op) {
    case DISCORD_OP_HELLO:
        if (!json_codec_i64(d, "heartbeat_interval", &f->heartbeat_interval) ||
            f->heartbeat_interval <= 0 || f->heartbeat_interval > 3600000) {
            *why = "HELLO without a usable heartbeat_interval";
            goto out;
        }
        break;
    case DISCORD_OP_INVALID_SESSION:
        f->resumable = d != NULL && json_object_is_type(d, json_type_boolean) &&
                       json_object_get_boolean(d);
        break;
    case DISCORD_OP_DISPATCH:
        t = json_codec_str(root, "t");
        if (t == NULL) {
            *why = "dispatch without t";
            goto out;
        }
        copy_cut(f->t_name, sizeof(f->t_name), t);
        f->t = dispatch_kind(t);
        if (f->t == DISCORD_T_READY && decode_ready(d, &f->ready, why) < 0)
            goto out;
        if (f->t == DISCORD_T_MESSAGE_CREATE)
            decode_message(d, self_id, &f->msg);
        /* a removal carries no member and no message author: the
         * checks that need them pass, core finds no vote to remove */
        if (f->t == DISCORD_T_REACTION_ADD || f->t == DISCORD_T_REACTION_REMOVE)
            decode_reaction(d, self_id, &f->reaction);
        if (f->t == DISCORD_T_INTERACTION_CREATE)
            decode_interaction(d, &f->ia);
        break;
    default:
        break;
    }
    *why = NULL;
    rc = 0;
out:
    if (root != NULL)
        json_object_put(root);
    if (rc < 0)
        discord_frame_release(f);
    return rc;
}

void
discord_frame_release(struct discord_frame *f)
{
    if (f == NULL)
        return;
    free(f->msg.text);
    f->msg.text = NULL;
    free(f->ia.text);
    f->ia.text = NULL;
}

int
discord_frame_event(const struct discord_frame *f, struct event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (f->op != DISCORD_OP_DISPATCH)
        return -1;
    ev->platform = "discord";
    ev->thread = "";
    ev->command = "";
    ev->text = "";
    ev->target_id = "";
    ev->reply_to = "";
    ev->user_name = "";
    if (f->t == DISCORD_T_MESSAGE_CREATE && !f->msg.skip &&
        f->msg.text != NULL) {
        ev->kind = EVENT_MESSAGE;
        ev->chat = f->msg.channel_id;
        ev->user = f->msg.author_id;
        ev->user_name = f->msg.author_name;
        ev->message_id = f->msg.id;
        ev->reply_to = f->msg.reply_to;
        ev->reply_to_user = f->msg.reply_author;
        ev->flags = f->msg.flags;
        ev->ts_ms = f->msg.ts_ms;
        ev->command = f->msg.command;
        ev->text = f->msg.text;
        return 0;
    }
    if (f->t == DISCORD_T_INTERACTION_CREATE && !f->ia.skip &&
        f->ia.text != NULL) {
        ev->kind = EVENT_MESSAGE;
        ev->chat = f->ia.channel_id;
        ev->user = f->ia.user_id;
        ev->user_name = f->ia.user_name;
        ev->message_id = f->ia.message_id;
        ev->reply_to_user = "";
        ev->flags = f->ia.flags;
        ev->ts_ms = f->ia.ts_ms;
        ev->command = f->ia.command;
        ev->text = f->ia.text;
        return 0;
    }
    if ((f->t == DISCORD_T_REACTION_ADD || f->t == DISCORD_T_REACTION_REMOVE) &&
        !f->reaction.skip) {
        ev->kind = EVENT_VOTE;
        ev->chat = f->reaction.channel_id;
        ev->user = f->reaction.user_id;
        ev->message_id = "";
        ev->target_id = f->reaction.message_id;
        ev->vote = f->reaction.vote;
        ev->flags = f->reaction.guild_id[0] ? 0 : EVENT_PRIVATE;
        if (f->t == DISCORD_T_REACTION_REMOVE)
            ev->flags |= EVENT_UNVOTE;
        return 0;
    }
    return -1;
}

/* ---- outgoing gateway frames, built by hand so the token is never copied
 * into memory we cannot zero ---- */

/* Appends s as a JSON string body (no quotes) at *off; -1 when full. */
static int
put_escaped(char *buf, size_t cap, size_t *off, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        size_t n;

        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            n = 2;
        } else if (ch < 0x20) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", ch);
        } else {
            esc[0] = (char)ch;
            n = 1;
        }
        if (*off + n >= cap)
            return -1;
        memcpy(buf + *off, esc, n);
        *off += n;
    }
    buf[*off] = '\0';
    return 0;
}

static int
put_raw(char *buf, size_t cap, size_t *off, const char *s)
{
    size_t n = strlen(s);

    if (*off + n >= cap)
        return -1;
    memcpy(buf + *off, s, n + 1);
    *off += n;
    return 0;
}

static size_t
send_cap(size_t cap)
{
    return cap > DISCORD_GW_SEND_MAX + 1 ? DISCORD_GW_SEND_MAX + 1 : cap;
}

int
discord_codec_heartbeat(int64_t seq, char *buf, size_t cap)
{
    int n;

    if (seq < 0)
        n = snprintf(buf, cap, "{\"op\":1,\"d\":null}");
    else
        n = snprintf(buf, cap, "{\"op\":1,\"d\":%" PRId64 "}", seq);
    return n < 0 || (size_t)n >= send_cap(cap) ? -1 : n;
}

int
discord_codec_identify(const char *token, int intents, char *buf, size_t cap)
{
    size_t off = 0;
    char tail[160];

    cap = send_cap(cap);
    if (cap == 0 || token == NULL)
        return -1;
    snprintf(tail, sizeof(tail),
             "\",\"intents\":%d,\"properties\":{\"os\":\"linux\","
             "\"browser\":\"parley\",\"device\":\"parley\"}}}",
             intents);
    if (put_raw(buf, cap, &off, "{\"op\":2,\"d\":{\"token\":\"") < 0 ||
        put_escaped(buf, cap, &off, token) < 0 ||
        put_raw(buf, cap, &off, tail) < 0)
        return -1;
    return (int)off;
}

int
discord_codec_resume(const char *token, const char *session_id, int64_t seq,
                     char *buf, size_t cap)
{
    size_t off = 0;
    char tail[64];

    cap = send_cap(cap);
    if (cap == 0 || token == NULL || session_id == NULL)
        return -1;
    if (seq < 0)
        snprintf(tail, sizeof(tail), "\",\"seq\":null}}");
    else
        snprintf(tail, sizeof(tail), "\",\"seq\":%" PRId64 "}}", seq);
    if (put_raw(buf, cap, &off, "{\"op\":6,\"d\":{\"token\":\"") < 0 ||
        put_escaped(buf, cap, &off, token) < 0 ||
        put_raw(buf, cap, &off, "\",\"session_id\":\"") < 0 ||
        put_escaped(buf, cap, &off, session_id) < 0 ||
        put_raw(buf, cap, &off, tail) < 0)
        return -1;
    return (int)off;
}

/* ---- REST ---- */

int
discord_codec_gateway_bot(const char *body, size_t len,
                          struct discord_gateway_bot *g, const char **why)
{
    json_object *root, *ssl;
    const char *url;
    int64_t v;
    int rc = -1;

    memset(g, 0, sizeof(*g));
    g->shards = 1;
    g->max_concurrency = 1;
    g->remaining = 1;
    if ((root = json_codec_parse(&body_limits, body, len, why)) == NULL)
        return -1;
    url = json_codec_str(root, "url");
    if (url == NULL || strlen(url) >= sizeof(g->url) ||
        (strncmp(url, "wss://", 6) != 0 && strncmp(url, "ws://", 5) != 0)) {
        *why = "no usable gateway url";
        goto out;
    }
    memcpy(g->url, url, strlen(url) + 1);
    if (json_codec_i64(root, "shards", &v) && v > 0 && v < 65536)
        g->shards = (int)v;
    if ((ssl = json_codec_get(root, "session_start_limit", json_type_object)) !=
        NULL) {
        if (json_codec_i64(ssl, "total", &v) && v >= 0)
            g->total = v;
        if (json_codec_i64(ssl, "remaining", &v) && v >= 0)
            g->remaining = v;
        if (json_codec_i64(ssl, "reset_after", &v) && v >= 0 &&
            v < 7LL * 86400000)
            g->reset_after_ms = v;
        if (json_codec_i64(ssl, "max_concurrency", &v) && v > 0 && v <= 1024)
            g->max_concurrency = (int)v;
    }
    *why = NULL;
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

/* content, cut to DISCORD_CONTENT_MAX bytes on a UTF-8 boundary: the same
 * for a new message and an edit */
static void
add_content(json_object *o, const char *content)
{
    size_t n;

    if (content == NULL)
        content = "";
    n = event_text_cut(content, strlen(content), DISCORD_CONTENT_MAX);
    json_object_object_add(o, "content",
                           json_object_new_string_len(content, (int)n));
}

/* allowed_mentions {parse: [], replied_user: false}: echoed text pings
 * nobody */
static void
add_no_mentions(json_object *o)
{
    json_object *am = json_object_new_object();

    json_object_object_add(am, "parse", json_object_new_array());
    json_object_object_add(am, "replied_user", json_object_new_boolean(0));
    json_object_object_add(o, "allowed_mentions", am);
}

static char *
body_string(json_object *o)
{
    char *out = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(o);
    return out;
}

char *
discord_codec_create_message(const struct discord_create *m)
{
    json_object *o = json_object_new_object(), *ref = NULL;

    if (o == NULL)
        return NULL;
    add_content(o, m->content);
    if (m->reply_to != NULL && m->reply_to[0] != '\0') {
        ref = json_object_new_object();
        json_object_object_add(ref, "message_id",
                               json_object_new_string(m->reply_to));
        json_object_object_add(ref, "fail_if_not_exists",
                               json_object_new_boolean(0));
        json_object_object_add(o, "message_reference", ref);
    }
    add_no_mentions(o);
    if (m->nonce != NULL && m->nonce[0] != '\0') {
        json_object_object_add(o, "nonce", json_object_new_string(m->nonce));
        json_object_object_add(o, "enforce_nonce", json_object_new_boolean(1));
    }
    return body_string(o);
}

char *
discord_codec_edit_message(const char *content)
{
    json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    add_content(o, content);
    add_no_mentions(o);
    return body_string(o);
}

enum discord_outcome
discord_codec_outcome(enum discord_verb v, long status, int64_t code,
                      const char **cls)
{
    *cls = NULL;
    if (status >= 200 && status < 300)
        return DISCORD_OUT_OK;
    if (status == 429 || status >= 500 || status < 100)
        return DISCORD_OUT_AGAIN;
    if (v == DISCORD_DELETE && status == 404 && code == DISCORD_UNKNOWN_MESSAGE)
        return DISCORD_OUT_OK; /* already gone: what a delete wants */
    *cls = status == 403   ? "forbidden"
           : status == 404 ? "not_found"
           : status == 401 ? "auth"
                           : "bad_request";
    return DISCORD_OUT_FAILED;
}

void
discord_codec_nonce(const char *idem_key, char *buf, size_t cap)
{
    uint64_t h = 1469598103934665603ULL;

    if (cap == 0)
        return;
    if (idem_key == NULL)
        idem_key = "";
    if (strlen(idem_key) <= DISCORD_NONCE_MAX && strlen(idem_key) < cap) {
        memcpy(buf, idem_key, strlen(idem_key) + 1);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)idem_key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    snprintf(buf, cap, "h%016" PRIx64, h);
}

/*
 * The "id" of the object in body (a message, a channel) into id; with
 * want_type >= 0, a "type" present must equal it.  0, or -1 with *why.
 */
static int
object_id(const char *body, size_t len, const char *what, int64_t want_type,
          char *id, size_t cap, const char **why)
{
    json_object *root = json_codec_parse(&body_limits, body, len, why);
    int64_t type = -1;
    int rc = -1;

    if (cap > 0)
        id[0] = '\0';
    if (root == NULL)
        return -1;
    if (!get_snowflake(root, "id", id, cap)) {
        *why = what;
        goto out;
    }
    if (want_type >= 0 && json_codec_i64(root, "type", &type) &&
        type != want_type) {
        id[0] = '\0';
        *why = "not a DM channel";
        goto out;
    }
    *why = NULL;
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

const char *
discord_codec_commands(void)
{
    return "[{\"name\":\"" DISCORD_SLASH_NAME "\",\"type\":1,"
           "\"description\":\"Ask parley, or run one of its commands "
           "(help, usage, limits, reset, forget...)\","
           "\"options\":[{\"type\":3,\"name\":\"" DISCORD_SLASH_OPTION
           "\",\"description\":\"a question, or a command and its "
           "arguments: help, usage, ban 123 1h\",\"required\":false,"
           "\"max_length\":6000}]}]";
}

/* Only the deferred answer (5) and PONG (1) are ever sent. */
const char *
discord_codec_interaction_callback(int type)
{
    return type == 1 ? "{\"type\":1}" : "{\"type\":5}";
}

int
discord_codec_message_id(const char *body, size_t len, char *id, size_t cap,
                         const char **why)
{
    return object_id(body, len, "no message id", -1, id, cap, why);
}

char *
discord_codec_dm_open(const char *user)
{
    json_object *o;

    if (!snowflake_ok(user) || (o = json_object_new_object()) == NULL)
        return NULL;
    json_object_object_add(o, "recipient_id", json_object_new_string(user));
    return body_string(o);
}

int
discord_codec_dm_channel(const char *body, size_t len, char *id, size_t cap,
                         const char **why)
{
    return object_id(body, len, "no channel id", DISCORD_CHANNEL_DM, id, cap,
                     why);
}

int
discord_codec_error(const char *body, size_t len, struct discord_error *e)
{
    const char *why, *msg;
    json_object *root;
    int64_t code = 0;

    memset(e, 0, sizeof(*e));
    e->retry_after_ms = -1;
    if ((root = json_codec_parse(&body_limits, body, len, &why)) == NULL)
        return -1;
    if ((msg = json_codec_str(root, "message")) != NULL)
        copy_cut(e->message, sizeof(e->message), msg);
    if (json_codec_i64(root, "code", &code))
        e->code = code;
    e->retry_after_ms = get_seconds_ms(root, "retry_after");
    e->global = json_codec_bool(root, "global");
    json_object_put(root);
    return 0;
}

int64_t
discord_codec_seconds_ms(const char *s)
{
    char *end = NULL;
    double d;

    if (s == NULL)
        return -1;
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    d = strtod(s, &end);
    if (end == s || !(d >= 0) || d > 1e9)
        return -1;
    while (*end == ' ')
        end++;
    if (*end != '\0')
        return -1;
    return (int64_t)ceil(d * 1000.0 - 1e-6);
}
