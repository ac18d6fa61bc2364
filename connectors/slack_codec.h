/* slack_codec: Socket Mode frames and Web API JSON ↔ structs (pure, bounded).
 */
#ifndef PARLEY_SLACK_CODEC_H
#define PARLEY_SLACK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/*
 * Pure: no I/O, no clock.  json-c stays inside slack_codec.c; callers see
 * these structs only (STYLE 9).  Bounds (STYLE 10): a frame or reply over
 * SLACK_BODY_MAX bytes or JSON deeper than SLACK_JSON_DEPTH is refused;
 * ids over EVENT_ID_MAX bytes make the event malformed (ignored, still
 * acknowledged: a redelivery would not make them shorter); text is cut at
 * EVENT_TEXT_MAX bytes on a UTF-8 boundary.
 */
#define SLACK_BODY_MAX (1024 * 1024)
#define SLACK_JSON_DEPTH 32
#define SLACK_ERROR_MAX 64 /* "error" strings: "channel_not_found" ... */
#define SLACK_URL_MAX 2048 /* apps.connections.open URL, response_url */

/* Who we are (auth.test), for filtering and for mention stripping. */
struct slack_self {
    const char *user_id; /* "U0BOT", "" unknown */
    const char *bot_id;  /* "B0BOT", "" unknown */
};

/* ---- Socket Mode frames ---- */

enum slack_frame_type {
    SLACK_FRAME_OTHER = 0, /* a type we do not use */
    SLACK_FRAME_HELLO,
    SLACK_FRAME_DISCONNECT,
    SLACK_FRAME_ENVELOPE, /* events_api, slash_commands, interactive */
};

enum slack_disconnect {
    SLACK_DISC_OTHER = 0,     /* unknown reason: treated like warning */
    SLACK_DISC_WARNING,       /* the server closes this socket in ~10 s */
    SLACK_DISC_REFRESH,       /* refresh_requested: reconnect now */
    SLACK_DISC_LINK_DISABLED, /* Socket Mode was turned off: stop */
};

enum slack_envelope_type {
    SLACK_ENV_OTHER = 0,
    SLACK_ENV_EVENTS_API,
    SLACK_ENV_SLASH,       /* slash_commands */
    SLACK_ENV_INTERACTIVE, /* acknowledged, not used */
};

/* What an envelope's payload becomes. */
enum slack_in_kind {
    SLACK_IN_NONE = 0, /* nothing for core: ignore_why says why; ack it */
    SLACK_IN_MESSAGE,  /* EVENT_MESSAGE (a command too, EVENT_COMMAND) */
    SLACK_IN_VOTE,     /* EVENT_VOTE: +1 / -1 on a message of ours */
};

struct slack_inbound {
    enum slack_in_kind kind;
    const char *ignore_why;            /* static, for logs, when kind == NONE */
    char event_id[EVENT_ID_MAX + 1];   /* "Ev…" (events_api), "" otherwise */
    char event_type[32];               /* "app_mention", "message", ... */
    char chat[EVENT_ID_MAX + 1];       /* channel id */
    char thread[EVENT_ID_MAX + 1];     /* reply thread ts, "" = none */
    char user[EVENT_ID_MAX + 1];       /* author / reactor / invoker */
    char message_id[EVENT_ID_MAX + 1]; /* ts, or "cmd:<trigger_id>" */
    char target_id[EVENT_ID_MAX + 1];  /* VOTE: the voted message's ts */
    char command[EVENT_COMMAND_MAX + 1];
    char response_url[SLACK_URL_MAX]; /* slash commands */
    char *text;                       /* heap, never NULL after decode */
    unsigned flags;                   /* enum event_flag */
    int vote;
    int64_t ts_ms;
};

struct slack_frame {
    enum slack_frame_type type;
    int num_connections;               /* hello */
    enum slack_disconnect reason;      /* disconnect */
    char reason_text[SLACK_ERROR_MAX]; /* disconnect, as sent */
    enum slack_envelope_type env_type;
    char envelope_id[EVENT_ID_MAX + 1];
    int accepts_response_payload;
    int retry_attempt;
    char retry_reason[SLACK_ERROR_MAX];
    struct slack_inbound in; /* envelopes: the payload, decoded */
};

/*
 * Decodes one Socket Mode text message.  0: *f filled (release it with
 * slack_frame_release); -1: not a frame we can read (why says, static).
 * An envelope whose payload is unusable still decodes (in.kind NONE) so
 * that it can be acknowledged.  The envelope id is required.
 */
int slack_frame_decode(const char *buf, size_t len,
                       const struct slack_self *self, struct slack_frame *f,
                       const char **why);
void slack_frame_release(struct slack_frame *f);

/*
 * The event an inbound carries, with pointers into *in (valid while in
 * is).  0, or -1 when kind is SLACK_IN_NONE.
 */
int slack_inbound_event(const struct slack_inbound *in, struct event *ev);

/* The ack frame {"envelope_id":"…"}: bytes written (NUL excluded), or -1
 * when it does not fit. */
int slack_ack_encode(const char *envelope_id, char *out, size_t cap);

/*
 * The commands core knows (SPEC §7), for "@bot cmd" and DMs: 1 if the
 * first word of text (case-insensitive) is one, with *name (lower case)
 * and *args_off (offset of the arguments in text).
 */
int slack_command_parse(const char *text, char *name, size_t cap,
                        size_t *args_off);

/* ---- Web API ---- */

/* Error classes of {"ok":false,"error":"…"} (STYLE 6). */
enum slack_err {
    SLACK_ERR_NONE = 0,
    SLACK_ERR_AUTH,         /* invalid_auth, token_revoked, ...: fatal */
    SLACK_ERR_RATE_LIMITED, /* ratelimited (with a 429 Retry-After) */
    SLACK_ERR_FORBIDDEN,    /* not_in_channel, is_archived, missing_scope */
    SLACK_ERR_NOT_FOUND,    /* channel_not_found, thread_not_found */
    SLACK_ERR_TOO_LONG,     /* msg_too_long */
    SLACK_ERR_BAD_REQUEST,  /* no_text, invalid_arguments, unknown errors */
    SLACK_ERR_SERVER,       /* internal_error, fatal_error, ...: retry */
    SLACK_ERR_DUPLICATE,    /* already_reacted: nothing to do */
    SLACK_ERR_BAD_REPLY,    /* not a Web API reply at all */
};

struct slack_api_error {
    enum slack_err cls;
    char error[SLACK_ERROR_MAX]; /* as Slack spelled it, for logs */
};

enum slack_err slack_error_class(const char *error);
/* "auth", "rate_limited", "forbidden", "not_found", "too_long", ... */
const char *slack_err_name(enum slack_err e);

/*
 * Web API replies.  Each returns 0 on {"ok":true,...} with the fields
 * read, -1 otherwise with *err filled (SLACK_ERR_BAD_REPLY when the body
 * is not a Web API reply or a required field is missing or too long).
 */
int slack_reply_decode(const char *body, size_t len,
                       struct slack_api_error *err);
int slack_open_decode(const char *body, size_t len, char *url, size_t cap,
                      struct slack_api_error *err);
int slack_auth_decode(const char *body, size_t len, char *user_id, char *bot_id,
                      size_t cap, struct slack_api_error *err);
/* chat.postMessage: the new message's ts; chat.update: the edited one's. */
int slack_post_decode(const char *body, size_t len, char *ts, size_t cap,
                      struct slack_api_error *err);

/*
 * Request bodies (JSON, heap, caller frees; NULL on OOM):
 * chat.postMessage {channel, text, thread_ts?, mrkdwn:true} and
 * reactions.add {channel, timestamp, name}.
 */
char *slack_post_encode(const char *channel, const char *text,
                        const char *thread_ts);
char *slack_reaction_encode(const char *channel, const char *ts,
                            const char *name);
/*
 * Streaming: chat.update {channel, ts, text} (text is mrkdwn by default;
 * the reply is {"ok":true,"channel","ts","text"}, read with
 * slack_post_decode) and chat.delete {channel, ts} (slack_reply_decode).
 */
char *slack_update_encode(const char *channel, const char *ts,
                          const char *text);
char *slack_delete_encode(const char *channel, const char *ts);

/* ---- response_url (slash commands) ---- */

/*
 * Whether a slash command's response_url may be called: 1 when it is
 * https://hooks.slack.com/… or has exactly the scheme://host[:port] of
 * api_base (the fake on 127.0.0.1), with no userinfo, no whitespace or
 * control characters, and fits SLACK_URL_MAX; else 0 with *why (static).
 * Nothing else is ever called: the URL comes from a payload.
 */
int slack_response_url_ok(const char *url, const char *api_base,
                          const char **why);

/*
 * The response_url body (JSON, heap, caller frees; NULL on OOM):
 * {"text", "response_type":"in_channel", "replace_original"} or, with
 * text NULL, {"delete_original":true}.
 */
char *slack_response_encode(const char *text, int replace_original);

/*
 * A response_url reply: 0 when accepted (HTTP 200 with "ok", an empty
 * body or {"ok":true}), -1 otherwise with *err: the body's short error
 * ("expired_url", "used_url", "invalid_payload", …; "HTTP <status>" when
 * there is none) and its class (4xx and ok:false → FORBIDDEN, 5xx →
 * SERVER, 429 → RATE_LIMITED).
 */
int slack_response_decode(long status, const char *body, size_t len,
                          struct slack_api_error *err);

#endif
