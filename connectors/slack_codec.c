/* slack_codec: Socket Mode frames and Web API JSON ↔ structs (pure, bounded).
 */
#include "connectors/slack_codec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "core/json_codec.h"

/* Frames and Web API bodies: one JSON object, bounded, UTF-8 checked;
 * the reasons are Slack's own words, surfaced in slack_api_error.error. */
static const struct json_codec_limits body_limits = {
    .max_bytes = SLACK_BODY_MAX,
    .max_depth = SLACK_JSON_DEPTH,
    .flags = JSON_CODEC_UTF8 | JSON_CODEC_OBJECT | JSON_CODEC_CSPACE,
    .why_empty = "empty",
    .why_too_large = "too large",
    .why_malformed = "not JSON",
};

/* Slack's booleans are read leniently: any present member is converted
 * by json-c (1, "x" are true), as before the shared getters existed. */
static int
jbool(json_object *o, const char *key)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v))
        return 0;
    return json_object_get_boolean(v) ? 1 : 0;
}

/* An integer member; 0 when absent or not an integer. */
static int64_t
jint(json_object *o, const char *key)
{
    int64_t n = 0;

    json_codec_i64(o, key, &n);
    return n;
}

/* "1712345678.000100" → unix ms (0 when unreadable). */
static int64_t
ts_to_ms(const char *ts)
{
    int64_t s = 0, ms = 0;
    int digits = 0;

    for (; *ts >= '0' && *ts <= '9'; ts++) {
        if (s > 100000000000LL)
            return 0;
        s = s * 10 + (*ts - '0');
    }
    if (*ts == '.')
        for (ts++; *ts >= '0' && *ts <= '9' && digits < 3; ts++, digits++)
            ms = ms * 10 + (*ts - '0');
    while (digits++ < 3)
        ms *= 10;
    return s * 1000 + ms;
}

/* ---- commands ---- */

/* SPEC §7's command names (binding). */
static const char *const slack_commands[] = {
    "help", "reset", "usage", "limits", "forget",  "limit", "budget",
    "ban",  "unban", "stats", "model",  "persona", NULL,
};

int
slack_command_parse(const char *text, char *name, size_t cap, size_t *args_off)
{
    size_t i = 0, n;
    char w[EVENT_COMMAND_MAX + 1];

    while (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')
        i++;
    n = strcspn(text + i, " \t\r\n");
    if (n == 0 || n > EVENT_COMMAND_MAX)
        return 0;
    for (size_t k = 0; k < n; k++)
        w[k] = (char)tolower((unsigned char)text[i + k]);
    w[n] = '\0';
    for (size_t k = 0; slack_commands[k]; k++)
        if (strcmp(w, slack_commands[k]) == 0) {
            size_t a = i + n;

            while (text[a] == ' ' || text[a] == '\t' || text[a] == '\n' ||
                   text[a] == '\r')
                a++;
            if (name)
                snprintf(name, cap, "%s", w);
            if (args_off)
                *args_off = a;
            return 1;
        }
    return 0;
}

/* ---- text from Slack ---- */

/*
 * Slack escapes & < > in message text; the model should read the
 * characters.  Our own mention (<@U0BOT> or <@U0BOT|name>) is removed;
 * with our id unknown, a leading mention is.  Cut at EVENT_TEXT_MAX on
 * a UTF-8 boundary.  *mentioned says whether our mention was there.
 */
static char *
text_from_slack(const char *s, size_t len, const char *self_id, int strip_any,
                int *mentioned)
{
    size_t cap = len < EVENT_TEXT_MAX ? len : EVENT_TEXT_MAX;
    char *out = malloc(cap + 1);
    size_t o = 0, i = 0, idlen = self_id ? strlen(self_id) : 0;
    int first = 1;

    if (out == NULL)
        return NULL;
    *mentioned = 0;
    while (i < len) {
        char c = s[i];
        size_t add = 1;
        const char *rep = NULL;
        char one[1];

        if (c == '<' && i + 2 < len && s[i + 1] == '@') {
            const char *end = memchr(s + i, '>', len - i);
            size_t tok = end ? (size_t)(end - (s + i)) + 1 : 0;
            int ours = 0;

            if (end && idlen && tok >= idlen + 3 &&
                memcmp(s + i + 2, self_id, idlen) == 0 &&
                (s[i + 2 + idlen] == '>' || s[i + 2 + idlen] == '|'))
                ours = 1;
            else if (end && idlen == 0 && strip_any && first && o == 0)
                ours = 1;
            if (ours) {
                *mentioned = 1;
                i += tok;
                while (i < len && (s[i] == ' ' || s[i] == '\t') && o == 0)
                    i++;
                continue;
            }
        }
        first = 0;
        if (c == '&') {
            if (len - i >= 5 && memcmp(s + i, "&amp;", 5) == 0)
                rep = "&", add = 5;
            else if (len - i >= 4 && memcmp(s + i, "&lt;", 4) == 0)
                rep = "<", add = 4;
            else if (len - i >= 4 && memcmp(s + i, "&gt;", 4) == 0)
                rep = ">", add = 4;
        }
        if (rep == NULL) {
            one[0] = c;
            rep = one;
        }
        if (o + 1 > cap)
            break;
        out[o++] = rep[0];
        i += add;
    }
    o = event_text_cut(out, o, cap);
    /* the mention gone, trailing blanks are noise */
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\n'))
        o--;
    out[o] = '\0';
    return out;
}

/* ---- payloads ---- */

static int
vote_of(const char *reaction)
{
    size_t n = strcspn(reaction, ":"); /* "+1::skin-tone-2" */

    if ((n == 2 && strncmp(reaction, "+1", 2) == 0) ||
        (n == 8 && strncmp(reaction, "thumbsup", 8) == 0))
        return 1;
    if ((n == 2 && strncmp(reaction, "-1", 2) == 0) ||
        (n == 10 && strncmp(reaction, "thumbsdown", 10) == 0))
        return -1;
    return 0;
}

static int
is_self(const struct slack_self *self, const char *user)
{
    return self && self->user_id && self->user_id[0] && user[0] &&
           strcmp(self->user_id, user) == 0;
}

static int
text_set(struct slack_inbound *in, json_object *ev, const char *self_id,
         int strip_any, int *mentioned)
{
    size_t n = 0;
    const char *t = json_codec_strn(ev, "text", &n);

    free(in->text);
    in->text =
        text_from_slack(t ? t : "", t ? n : 0, self_id, strip_any, mentioned);
    return in->text ? 0 : -1;
}

/* "@bot cmd args" / a DM "cmd args": the command and its arguments. */
static void
command_detect(struct slack_inbound *in)
{
    size_t off;

    if (!slack_command_parse(in->text, in->command, sizeof(in->command), &off))
        return;
    memmove(in->text, in->text + off, strlen(in->text + off) + 1);
    in->flags |= EVENT_COMMAND;
}

static void
decode_message_event(struct slack_inbound *in, json_object *ev,
                     const struct slack_self *self, int app_mention)
{
    char subtype[32], ts[EVENT_ID_MAX + 1], thread_ts[EVENT_ID_MAX + 1],
        channel_type[16], bot_id[EVENT_ID_MAX + 1];
    const char *self_id = self ? self->user_id : NULL;
    int mentioned = 0;

    if (json_codec_copy(ev, "subtype", subtype, sizeof(subtype)) < 0 ||
        (subtype[0] && strcmp(subtype, "thread_broadcast") != 0 &&
         strcmp(subtype, "file_share") != 0)) {
        in->ignore_why = "subtype";
        return;
    }
    if (json_codec_copy(ev, "bot_id", bot_id, sizeof(bot_id)) < 0 ||
        bot_id[0]) {
        in->ignore_why = "from a bot";
        return;
    }
    if (json_codec_copy(ev, "user", in->user, sizeof(in->user)) != 0 ||
        json_codec_copy(ev, "channel", in->chat, sizeof(in->chat)) != 0 ||
        json_codec_copy(ev, "ts", ts, sizeof(ts)) != 0 || !in->user[0] ||
        !in->chat[0] || !ts[0] ||
        json_codec_copy(ev, "thread_ts", thread_ts, sizeof(thread_ts)) < 0 ||
        json_codec_copy(ev, "channel_type", channel_type,
                        sizeof(channel_type)) < 0) {
        in->ignore_why = "malformed message";
        return;
    }
    if (is_self(self, in->user)) {
        in->ignore_why = "our own message";
        return;
    }
    snprintf(in->message_id, sizeof(in->message_id), "%s", ts);
    in->ts_ms = ts_to_ms(ts);
    if (text_set(in, ev, self_id, app_mention, &mentioned) < 0) {
        in->ignore_why = "out of memory";
        return;
    }
    if (!app_mention && strcmp(channel_type, "im") == 0) {
        /* a DM: answered at top level, or in the thread it was written in */
        in->flags |= EVENT_PRIVATE;
        snprintf(in->thread, sizeof(in->thread), "%s", thread_ts);
    } else {
        /*
         * A channel: a mention is answered in its thread (the thread it
         * was written in, or the one it starts).  app_mention and
         * message.channels give the same (channel, ts) and the same
         * thread, so the second copy is a duplicate of the job.
         */
        if (app_mention || mentioned)
            in->flags |= EVENT_MENTIONED;
        snprintf(in->thread, sizeof(in->thread), "%s",
                 thread_ts[0] ? thread_ts : ts);
    }
    if (in->flags & (EVENT_PRIVATE | EVENT_MENTIONED))
        command_detect(in);
    in->kind = SLACK_IN_MESSAGE;
}

static void
decode_reaction(struct slack_inbound *in, json_object *ev,
                const struct slack_self *self)
{
    json_object *item = json_codec_get(ev, "item", json_type_object);
    char reaction[128], item_user[EVENT_ID_MAX + 1], type[16];

    if (json_codec_copy(ev, "user", in->user, sizeof(in->user)) != 0 ||
        !in->user[0] ||
        json_codec_copy(ev, "reaction", reaction, sizeof(reaction)) != 0 ||
        item == NULL || json_codec_copy(item, "type", type, sizeof(type)) < 0 ||
        json_codec_copy(item, "channel", in->chat, sizeof(in->chat)) != 0 ||
        json_codec_copy(item, "ts", in->target_id, sizeof(in->target_id)) !=
            0 ||
        !in->chat[0] || !in->target_id[0] ||
        json_codec_copy(ev, "item_user", item_user, sizeof(item_user)) < 0) {
        in->ignore_why = "malformed reaction";
        return;
    }
    if (type[0] && strcmp(type, "message") != 0) {
        in->ignore_why = "reaction not on a message";
        return;
    }
    if (is_self(self, in->user)) {
        in->ignore_why = "our own reaction"; /* the +1/-1 we add */
        return;
    }
    if (self && self->user_id && self->user_id[0] &&
        strcmp(item_user, self->user_id) != 0) {
        in->ignore_why = "reaction on someone else's message";
        return;
    }
    if ((in->vote = vote_of(reaction)) == 0) {
        in->ignore_why = "not a vote";
        return;
    }
    /* a vote has no message of its own; the reaction names it for logs */
    snprintf(in->message_id, sizeof(in->message_id), "vote:%.59s",
             in->target_id);
    if ((in->text = strdup("")) == NULL) {
        in->ignore_why = "out of memory";
        return;
    }
    in->kind = SLACK_IN_VOTE;
}

static void
decode_events_api(struct slack_inbound *in, json_object *payload,
                  const struct slack_self *self)
{
    json_object *ev = json_codec_get(payload, "event", json_type_object);

    if (json_codec_copy(payload, "event_id", in->event_id,
                        sizeof(in->event_id)) < 0 ||
        ev == NULL ||
        json_codec_copy(ev, "type", in->event_type, sizeof(in->event_type)) !=
            0) {
        in->ignore_why = "malformed events_api payload";
        return;
    }
    if (strcmp(in->event_type, "app_mention") == 0)
        decode_message_event(in, ev, self, 1);
    else if (strcmp(in->event_type, "message") == 0)
        decode_message_event(in, ev, self, 0);
    else if (strcmp(in->event_type, "reaction_added") == 0)
        decode_reaction(in, ev, self);
    else if (strcmp(in->event_type, "reaction_removed") == 0) {
        /* the same shape: that vote taken back */
        decode_reaction(in, ev, self);
        in->flags |= EVENT_UNVOTE;
    } else
        in->ignore_why = "event type not used";
}

/*
 * /parley help → command "help", no arguments; "/parley" alone → help.
 * Any slash command of the app reaches us, so the command field is not
 * checked: the app's manifest decides which exist.
 */
static void
decode_slash(struct slack_inbound *in, json_object *payload,
             const char *envelope_id)
{
    char trigger[EVENT_ID_MAX + 1], cmd[EVENT_COMMAND_MAX + 2];
    const char *text;
    size_t tlen = 0, i = 0, n;

    if (json_codec_copy(payload, "user_id", in->user, sizeof(in->user)) != 0 ||
        json_codec_copy(payload, "channel_id", in->chat, sizeof(in->chat)) !=
            0 ||
        !in->user[0] || !in->chat[0] ||
        json_codec_copy(payload, "command", cmd, sizeof(cmd)) < 0 ||
        json_codec_copy(payload, "trigger_id", trigger, sizeof(trigger) - 4) <
            0 ||
        json_codec_copy(payload, "response_url", in->response_url,
                        sizeof(in->response_url)) < 0) {
        in->ignore_why = "malformed slash command";
        return;
    }
    /* stable across redeliveries: the job key (chat, message id) */
    if (trigger[0])
        snprintf(in->message_id, sizeof(in->message_id), "cmd:%.60s", trigger);
    else
        snprintf(in->message_id, sizeof(in->message_id), "cmd:%.58s",
                 envelope_id);
    if ((text = json_codec_strn(payload, "text", &tlen)) == NULL)
        text = "", tlen = 0;
    while (i < tlen && (text[i] == ' ' || text[i] == '\t'))
        i++;
    n = strcspn(text + i, " \t\r\n");
    if (n > EVENT_COMMAND_MAX) {
        in->ignore_why = "command name too long";
        return;
    }
    if (n == 0)
        snprintf(in->command, sizeof(in->command), "help");
    else
        for (size_t k = 0; k <= n; k++)
            in->command[k] =
                k == n ? '\0' : (char)tolower((unsigned char)text[i + k]);
    i += n;
    while (i < tlen && (text[i] == ' ' || text[i] == '\t'))
        i++;
    {
        int dummy;

        in->text = text_from_slack(text + i, tlen - i, NULL, 0, &dummy);
    }
    if (in->text == NULL) {
        in->ignore_why = "out of memory";
        return;
    }
    in->flags |= EVENT_COMMAND;
    if (in->chat[0] == 'D')
        in->flags |= EVENT_PRIVATE;
    in->kind = SLACK_IN_MESSAGE;
}

int
slack_frame_decode(const char *buf, size_t len, const struct slack_self *self,
                   struct slack_frame *f, const char **why)
{
    json_object *root, *payload;
    char type[32];
    int rc = -1;

    memset(f, 0, sizeof(*f));
    *why = NULL;
    if ((root = json_codec_parse(&body_limits, buf, len, why)) == NULL)
        return -1;
    if (json_codec_copy(root, "type", type, sizeof(type)) != 0) {
        *why = "no frame type";
        goto out;
    }
    if (strcmp(type, "hello") == 0) {
        f->type = SLACK_FRAME_HELLO;
        f->num_connections = (int)jint(root, "num_connections");
        rc = 0;
        goto out;
    }
    if (strcmp(type, "disconnect") == 0) {
        f->type = SLACK_FRAME_DISCONNECT;
        if (json_codec_copy(root, "reason", f->reason_text,
                            sizeof(f->reason_text)) < 0)
            snprintf(f->reason_text, sizeof(f->reason_text), "?");
        f->reason = strcmp(f->reason_text, "warning") == 0 ? SLACK_DISC_WARNING
                    : strcmp(f->reason_text, "refresh_requested") == 0
                        ? SLACK_DISC_REFRESH
                    : strcmp(f->reason_text, "link_disabled") == 0
                        ? SLACK_DISC_LINK_DISABLED
                        : SLACK_DISC_OTHER;
        rc = 0;
        goto out;
    }
    if (json_codec_copy(root, "envelope_id", f->envelope_id,
                        sizeof(f->envelope_id)) != 0) {
        f->type = SLACK_FRAME_OTHER;
        rc = 0;
        goto out;
    }
    if (!f->envelope_id[0]) {
        *why = "empty envelope id";
        goto out;
    }
    f->type = SLACK_FRAME_ENVELOPE;
    f->env_type = strcmp(type, "events_api") == 0       ? SLACK_ENV_EVENTS_API
                  : strcmp(type, "slash_commands") == 0 ? SLACK_ENV_SLASH
                  : strcmp(type, "interactive") == 0    ? SLACK_ENV_INTERACTIVE
                                                        : SLACK_ENV_OTHER;
    f->accepts_response_payload = jbool(root, "accepts_response_payload");
    f->retry_attempt = (int)jint(root, "retry_attempt");
    if (json_codec_copy(root, "retry_reason", f->retry_reason,
                        sizeof(f->retry_reason)) < 0)
        f->retry_reason[0] = '\0';
    payload = json_codec_get(root, "payload", json_type_object);
    f->in.ignore_why = "envelope type not used";
    if (payload == NULL && f->env_type != SLACK_ENV_OTHER)
        f->in.ignore_why = "no payload";
    else if (f->env_type == SLACK_ENV_EVENTS_API)
        decode_events_api(&f->in, payload, self);
    else if (f->env_type == SLACK_ENV_SLASH)
        decode_slash(&f->in, payload, f->envelope_id);
    else if (f->env_type == SLACK_ENV_INTERACTIVE)
        f->in.ignore_why = "interactive payloads are not used";
    if (f->in.kind == SLACK_IN_NONE) {
        free(f->in.text);
        f->in.text = NULL;
    } else
        f->in.ignore_why = NULL;
    rc = 0;
out:
    json_object_put(root);
    if (rc < 0)
        slack_frame_release(f);
    return rc;
}

void
slack_frame_release(struct slack_frame *f)
{
    if (f == NULL)
        return;
    free(f->in.text);
    f->in.text = NULL;
}

int
slack_inbound_event(const struct slack_inbound *in, struct event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (in->kind == SLACK_IN_NONE || in->text == NULL)
        return -1;
    ev->kind = in->kind == SLACK_IN_VOTE ? EVENT_VOTE : EVENT_MESSAGE;
    ev->platform = "slack";
    ev->chat = in->chat;
    ev->thread = in->thread;
    ev->user = in->user;
    ev->user_name = "";
    ev->message_id = in->message_id;
    ev->reply_to = "";
    ev->flags = in->flags;
    ev->ts_ms = in->ts_ms;
    ev->command = in->command;
    ev->text = in->text;
    ev->target_id = in->target_id;
    ev->vote = in->vote;
    return 0;
}

/* ---- encoding ---- */

/* JSON string with quotes; NULL on OOM. */
static char *
json_dup_obj(json_object *o)
{
    const char *s;
    char *out = NULL;

    if (o == NULL)
        return NULL;
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
    if (s)
        out = strdup(s);
    json_object_put(o);
    return out;
}

static int
jadd_str(json_object *o, const char *k, const char *v)
{
    json_object *s = json_object_new_string(v);

    if (s == NULL)
        return -1;
    return json_object_object_add(o, k, s);
}

int
slack_ack_encode(const char *envelope_id, char *out, size_t cap)
{
    json_object *o = json_object_new_object();
    char *s = NULL;
    int rc = -1;
    size_t n;

    if (o == NULL || jadd_str(o, "envelope_id", envelope_id) < 0) {
        json_object_put(o);
        return -1;
    }
    if ((s = json_dup_obj(o)) == NULL)
        return -1;
    n = strlen(s);
    if (n < cap) {
        memcpy(out, s, n + 1);
        rc = (int)n;
    }
    free(s);
    return rc;
}

char *
slack_post_encode(const char *channel, const char *text, const char *thread_ts)
{
    json_object *o = json_object_new_object();

    if (o == NULL || jadd_str(o, "channel", channel) < 0 ||
        jadd_str(o, "text", text) < 0 ||
        (thread_ts && thread_ts[0] &&
         jadd_str(o, "thread_ts", thread_ts) < 0) ||
        json_object_object_add(o, "mrkdwn", json_object_new_boolean(1)) < 0) {
        json_object_put(o);
        return NULL;
    }
    return json_dup_obj(o);
}

char *
slack_reaction_encode(const char *channel, const char *ts, const char *name)
{
    json_object *o = json_object_new_object();

    if (o == NULL || jadd_str(o, "channel", channel) < 0 ||
        jadd_str(o, "timestamp", ts) < 0 || jadd_str(o, "name", name) < 0) {
        json_object_put(o);
        return NULL;
    }
    return json_dup_obj(o);
}

char *
slack_update_encode(const char *channel, const char *ts, const char *text)
{
    json_object *o = json_object_new_object();

    if (o == NULL || jadd_str(o, "channel", channel) < 0 ||
        jadd_str(o, "ts", ts) < 0 || jadd_str(o, "text", text) < 0) {
        json_object_put(o);
        return NULL;
    }
    return json_dup_obj(o);
}

char *
slack_delete_encode(const char *channel, const char *ts)
{
    json_object *o = json_object_new_object();

    if (o == NULL || jadd_str(o, "channel", channel) < 0 ||
        jadd_str(o, "ts", ts) < 0) {
        json_object_put(o);
        return NULL;
    }
    return json_dup_obj(o);
}

/* ---- Web API replies ---- */

static const struct {
    const char *error;
    enum slack_err cls;
} slack_errors[] = {
    {"invalid_auth", SLACK_ERR_AUTH},
    {"not_authed", SLACK_ERR_AUTH},
    {"account_inactive", SLACK_ERR_AUTH},
    {"token_revoked", SLACK_ERR_AUTH},
    {"token_expired", SLACK_ERR_AUTH},
    {"team_disabled", SLACK_ERR_AUTH},
    {"not_allowed_token_type", SLACK_ERR_AUTH},
    {"no_permission", SLACK_ERR_AUTH},
    {"ratelimited", SLACK_ERR_RATE_LIMITED},
    {"rate_limited", SLACK_ERR_RATE_LIMITED},
    {"not_in_channel", SLACK_ERR_FORBIDDEN},
    {"is_archived", SLACK_ERR_FORBIDDEN},
    {"missing_scope", SLACK_ERR_FORBIDDEN},
    {"restricted_action", SLACK_ERR_FORBIDDEN},
    {"restricted_action_read_only_channel", SLACK_ERR_FORBIDDEN},
    {"restricted_action_thread_only_channel", SLACK_ERR_FORBIDDEN},
    {"restricted_action_non_threadable_channel", SLACK_ERR_FORBIDDEN},
    {"cannot_dm_bot", SLACK_ERR_FORBIDDEN},
    {"ekm_access_denied", SLACK_ERR_FORBIDDEN},
    {"team_access_not_granted", SLACK_ERR_FORBIDDEN},
    /* chat.update / chat.delete of a message we may not change */
    {"cant_update_message", SLACK_ERR_FORBIDDEN},
    {"cant_delete_message", SLACK_ERR_FORBIDDEN},
    {"edit_window_closed", SLACK_ERR_FORBIDDEN},
    {"compliance_exports_prevent_deletion", SLACK_ERR_FORBIDDEN},
    {"channel_not_found", SLACK_ERR_NOT_FOUND},
    {"thread_not_found", SLACK_ERR_NOT_FOUND},
    {"message_not_found", SLACK_ERR_NOT_FOUND},
    {"msg_too_long", SLACK_ERR_TOO_LONG},
    {"no_text", SLACK_ERR_BAD_REQUEST},
    {"invalid_arguments", SLACK_ERR_BAD_REQUEST},
    {"invalid_blocks", SLACK_ERR_BAD_REQUEST},
    {"invalid_json", SLACK_ERR_BAD_REQUEST},
    {"too_many_attachments", SLACK_ERR_BAD_REQUEST},
    {"internal_error", SLACK_ERR_SERVER},
    {"fatal_error", SLACK_ERR_SERVER},
    {"service_unavailable", SLACK_ERR_SERVER},
    {"request_timeout", SLACK_ERR_SERVER},
    {"already_reacted", SLACK_ERR_DUPLICATE},
    {"too_many_reactions", SLACK_ERR_DUPLICATE},
};

enum slack_err
slack_error_class(const char *error)
{
    if (error == NULL || error[0] == '\0')
        return SLACK_ERR_BAD_REPLY;
    for (size_t i = 0; i < sizeof(slack_errors) / sizeof(slack_errors[0]); i++)
        if (strcmp(error, slack_errors[i].error) == 0)
            return slack_errors[i].cls;
    /* unknown: not worth retrying blindly; the job fails with the class */
    return SLACK_ERR_BAD_REQUEST;
}

const char *
slack_err_name(enum slack_err e)
{
    static const char *const names[] = {
        [SLACK_ERR_NONE] = "none",
        [SLACK_ERR_AUTH] = "auth",
        [SLACK_ERR_RATE_LIMITED] = "rate_limited",
        [SLACK_ERR_FORBIDDEN] = "forbidden",
        [SLACK_ERR_NOT_FOUND] = "not_found",
        [SLACK_ERR_TOO_LONG] = "too_long",
        [SLACK_ERR_BAD_REQUEST] = "bad_request",
        [SLACK_ERR_SERVER] = "server",
        [SLACK_ERR_DUPLICATE] = "duplicate",
        [SLACK_ERR_BAD_REPLY] = "bad_reply",
    };

    if ((unsigned)e >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[e];
}

/* Parses a reply; 0 with *root on ok:true, -1 with *err otherwise. */
static int
reply_root(const char *body, size_t len, json_object **root,
           struct slack_api_error *err)
{
    const char *why;
    json_object *v;

    memset(err, 0, sizeof(*err));
    *root = json_codec_parse(&body_limits, body, len, &why);
    if (*root == NULL) {
        err->cls = SLACK_ERR_BAD_REPLY;
        snprintf(err->error, sizeof(err->error), "%s", why);
        return -1;
    }
    if (!json_object_object_get_ex(*root, "ok", &v) ||
        !json_object_is_type(v, json_type_boolean)) {
        err->cls = SLACK_ERR_BAD_REPLY;
        snprintf(err->error, sizeof(err->error), "no ok field");
        return -1;
    }
    if (!json_object_get_boolean(v)) {
        if (json_codec_copy(*root, "error", err->error, sizeof(err->error)) !=
            0)
            snprintf(err->error, sizeof(err->error), "unknown");
        err->cls = slack_error_class(err->error);
        return -1;
    }
    return 0;
}

static void
bad_field(struct slack_api_error *err, const char *what)
{
    err->cls = SLACK_ERR_BAD_REPLY;
    snprintf(err->error, sizeof(err->error), "%s", what);
}

int
slack_reply_decode(const char *body, size_t len, struct slack_api_error *err)
{
    json_object *root;
    int rc = reply_root(body, len, &root, err);

    json_object_put(root);
    return rc;
}

int
slack_open_decode(const char *body, size_t len, char *url, size_t cap,
                  struct slack_api_error *err)
{
    json_object *root;
    int rc = reply_root(body, len, &root, err);

    url[0] = '\0';
    if (rc == 0 &&
        (json_codec_copy(root, "url", url, cap) != 0 ||
         (strncmp(url, "wss://", 6) != 0 && strncmp(url, "ws://", 5) != 0))) {
        bad_field(err, "no usable url");
        url[0] = '\0';
        rc = -1;
    }
    json_object_put(root);
    return rc;
}

int
slack_auth_decode(const char *body, size_t len, char *user_id, char *bot_id,
                  size_t cap, struct slack_api_error *err)
{
    json_object *root;
    int rc = reply_root(body, len, &root, err);

    user_id[0] = bot_id[0] = '\0';
    if (rc == 0 &&
        (json_codec_copy(root, "user_id", user_id, cap) != 0 || !user_id[0] ||
         json_codec_copy(root, "bot_id", bot_id, cap) < 0)) {
        bad_field(err, "no user_id");
        user_id[0] = bot_id[0] = '\0';
        rc = -1;
    }
    json_object_put(root);
    return rc;
}

int
slack_post_decode(const char *body, size_t len, char *ts, size_t cap,
                  struct slack_api_error *err)
{
    json_object *root;
    int rc = reply_root(body, len, &root, err);

    ts[0] = '\0';
    if (rc == 0 && (json_codec_copy(root, "ts", ts, cap) != 0 || !ts[0])) {
        bad_field(err, "no ts");
        ts[0] = '\0';
        rc = -1;
    }
    json_object_put(root);
    return rc;
}

/* ---- response_url ---- */

/* Length of url's "scheme://host[:port]", or 0 when it has none. */
static size_t
url_origin_len(const char *url)
{
    const char *p = strstr(url, "://");

    if (p == NULL || p == url)
        return 0;
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

int
slack_response_url_ok(const char *url, const char *api_base, const char **why)
{
    static const char hooks[] = "https://hooks.slack.com/";
    size_t n, b;

    *why = NULL;
    if (url == NULL || url[0] == '\0') {
        *why = "no response_url";
        return 0;
    }
    if (strlen(url) >= SLACK_URL_MAX) {
        *why = "response_url too long";
        return 0;
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\') {
            *why = "response_url has blanks or control characters";
            return 0;
        }
    n = url_origin_len(url);
    if (n == 0 || memchr(url, '@', n) != NULL) {
        *why = "response_url has no plain scheme://host";
        return 0;
    }
    if (strncmp(url, hooks, sizeof(hooks) - 1) == 0)
        return 1;
    b = api_base ? url_origin_len(api_base) : 0;
    if (b > 0 && b == n && strncasecmp(url, api_base, n) == 0 &&
        (url[n] == '/' || url[n] == '\0'))
        return 1;
    *why = "response_url is neither hooks.slack.com nor the api_base host";
    return 0;
}

char *
slack_response_encode(const char *text, int replace_original)
{
    json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    if (text == NULL) {
        if (json_object_object_add(o, "delete_original",
                                   json_object_new_boolean(1)) < 0)
            goto fail;
        return json_dup_obj(o);
    }
    if (jadd_str(o, "text", text) < 0 ||
        jadd_str(o, "response_type", "in_channel") < 0 ||
        json_object_object_add(o, "replace_original",
                               json_object_new_boolean(replace_original)) < 0)
        goto fail;
    return json_dup_obj(o);
fail:
    json_object_put(o);
    return NULL;
}

/* The short text of a non-JSON body, as an error name ("expired_url"). */
static void
short_error(const char *body, size_t len, long status,
            struct slack_api_error *err)
{
    size_t n = 0;

    while (n < len && n < sizeof(err->error) - 1 &&
           (isalnum((unsigned char)body[n]) || body[n] == '_'))
        n++;
    if (n > 0 && (n == len || !isalnum((unsigned char)body[n])))
        snprintf(err->error, sizeof(err->error), "%.*s", (int)n, body);
    else
        snprintf(err->error, sizeof(err->error), "HTTP %ld", status);
}

int
slack_response_decode(long status, const char *body, size_t len,
                      struct slack_api_error *err)
{
    json_object *root = NULL;

    memset(err, 0, sizeof(*err));
    if (body == NULL)
        len = 0;
    while (len > 0 && isspace((unsigned char)body[len - 1]))
        len--;
    if (status == 200 && len > 0 && body[0] == '{') {
        int rc = reply_root(body, len, &root, err);

        json_object_put(root);
        if (rc < 0 && err->cls != SLACK_ERR_BAD_REPLY &&
            err->cls != SLACK_ERR_SERVER && err->cls != SLACK_ERR_RATE_LIMITED)
            err->cls = SLACK_ERR_FORBIDDEN; /* used, expired, invalid */
        return rc;
    }
    if (status == 200)
        return 0; /* "ok" (or nothing): accepted */
    if (len > 0 && body[0] == '{') {
        if (reply_root(body, len, &root, err) == 0)
            snprintf(err->error, sizeof(err->error), "HTTP %ld", status);
        json_object_put(root);
    } else
        short_error(body ? body : "", len, status, err);
    if (err->error[0] == '\0' || err->cls == SLACK_ERR_BAD_REPLY)
        short_error(body ? body : "", len, status, err);
    err->cls = status == 429   ? SLACK_ERR_RATE_LIMITED
               : status >= 500 ? SLACK_ERR_SERVER
                               : SLACK_ERR_FORBIDDEN;
    return -1;
}
