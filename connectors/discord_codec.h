/* discord_codec: Discord gateway frames and REST bodies ↔ structs (pure). */
#ifndef PARLEY_DISCORD_CODEC_H
#define PARLEY_DISCORD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/*
 * Pure: no I/O, no clock.  json-c stays inside discord_codec.c; callers see
 * these structs only.  Every input is bounded: a frame or body over
 * DISCORD_BODY_MAX or JSON deeper than DISCORD_JSON_DEPTH is refused,
 * strings over their field's cap make the frame malformed (ids, URLs,
 * session ids) or are cut on a UTF-8 boundary (text, names).  Outgoing
 * gateway frames are at most DISCORD_GW_SEND_MAX bytes (Discord closes
 * with 4002 over it), message content at most DISCORD_CONTENT_MAX bytes
 * (Discord's 2000 characters, counted conservatively in bytes).
 */
#define DISCORD_BODY_MAX (1024 * 1024) /* as WS_MSG_MAX */
#define DISCORD_JSON_DEPTH 64
#define DISCORD_GW_SEND_MAX 4096
#define DISCORD_CONTENT_MAX 2000
#define DISCORD_NONCE_MAX 25
#define DISCORD_SNOWFLAKE_MAX 24 /* 20 digits + NUL, rounded */
#define DISCORD_SESSION_MAX 128
#define DISCORD_URL_MAX 512
#define DISCORD_EVENT_NAME_MAX 64
#define DISCORD_ERROR_MAX 256
/* Discord's epoch (2015-01-01T00:00:00Z) for snowflake timestamps. */
#define DISCORD_EPOCH_MS 1420070400000LL

/* Gateway intents we ask for: GUILDS | GUILD_MESSAGES |
 * GUILD_MESSAGE_REACTIONS | DIRECT_MESSAGES | DIRECT_MESSAGE_REACTIONS |
 * MESSAGE_CONTENT (privileged: without it in the developer portal, 4014). */
#define DISCORD_INTENTS (1 + 512 + 1024 + 4096 + 8192 + 32768)

enum discord_op {
    DISCORD_OP_DISPATCH = 0,
    DISCORD_OP_HEARTBEAT = 1,
    DISCORD_OP_IDENTIFY = 2,
    DISCORD_OP_RESUME = 6,
    DISCORD_OP_RECONNECT = 7,
    DISCORD_OP_INVALID_SESSION = 9,
    DISCORD_OP_HELLO = 10,
    DISCORD_OP_HEARTBEAT_ACK = 11,
};

/* The dispatch events (op 0, `t`) parley reads; the rest are OTHER. */
enum discord_dispatch {
    DISCORD_T_NONE = 0, /* not a dispatch */
    DISCORD_T_OTHER,
    DISCORD_T_READY,
    DISCORD_T_RESUMED,
    DISCORD_T_MESSAGE_CREATE,
    DISCORD_T_REACTION_ADD,
    DISCORD_T_REACTION_REMOVE,
    DISCORD_T_INTERACTION_CREATE,
};

/* READY: what a resume needs, and who we are. */
struct discord_ready {
    char session_id[DISCORD_SESSION_MAX];
    char resume_url[DISCORD_URL_MAX];
    char user_id[DISCORD_SNOWFLAKE_MAX];
    char username[EVENT_NAME_MAX];
    char application_id[DISCORD_SNOWFLAKE_MAX]; /* "" when not given */
};

/*
 * MESSAGE_CREATE, flattened and judged against our own user id.  `skip`
 * is set for messages that are not user text (joins, pins, calls...).
 * text is heap (never NULL after a successful decode): the content with
 * our mention removed, cut at EVENT_TEXT_MAX bytes; for a command, its
 * arguments.  flags are enum event_flag.
 */
struct discord_message {
    int skip;
    char id[DISCORD_SNOWFLAKE_MAX];
    char channel_id[DISCORD_SNOWFLAKE_MAX];
    char guild_id[DISCORD_SNOWFLAKE_MAX]; /* "" in DMs */
    char author_id[DISCORD_SNOWFLAKE_MAX];
    char author_name[EVENT_NAME_MAX];
    char reply_to[DISCORD_SNOWFLAKE_MAX];     /* message_reference.message_id */
    char reply_author[DISCORD_SNOWFLAKE_MAX]; /* its author, "" = not given */
    char command[EVENT_COMMAND_MAX];
    unsigned flags;
    int64_t ts_ms; /* from the snowflake */
    char *text;
};

/* MESSAGE_REACTION_ADD of 👍 (+1) or 👎 (-1); other emoji: vote 0, skip. */
struct discord_reaction {
    int skip; /* not a vote: other emoji, custom emoji, our own reaction */
    char user_id[DISCORD_SNOWFLAKE_MAX];
    char channel_id[DISCORD_SNOWFLAKE_MAX];
    char message_id[DISCORD_SNOWFLAKE_MAX];
    char guild_id[DISCORD_SNOWFLAKE_MAX];
    int vote;
};

/*
 * Slash commands (docs/discord.md "Slash commands"): one application
 * command, /parley, with one optional string option, text.
 * INTERACTION_CREATE of type 2 (APPLICATION_COMMAND) named "parley"
 * becomes an event: the text's first word (a leading '/' dropped, lower-
 * cased) when it names one of core's commands is the command and the rest
 * its arguments; empty text is "help"; any other text is a question to
 * the bot (EVENT_MENTIONED).  message_id is "ia:<interaction id>" (stable
 * across redeliveries: core's job key).  EVENT_PRIVATE without guild_id;
 * EVENT_ADMIN when member.permissions has ADMINISTRATOR or MANAGE_GUILD.
 * The token (a secret for 15 minutes: it lets anyone answer the
 * interaction) must be URL-safe ([A-Za-z0-9._-]) and shorter than
 * DISCORD_IA_TOKEN_MAX, else the interaction is malformed (skip).  Other
 * interactions (components, autocomplete, other commands): skip.
 */
#define DISCORD_SLASH_NAME "parley"
#define DISCORD_SLASH_OPTION "text"
#define DISCORD_IA_PREFIX "ia:"
#define DISCORD_IA_TOKEN_MAX 512
#define DISCORD_IA_APPLICATION_COMMAND 2
/* the callback type: "thinking…" now, @original edited later */
#define DISCORD_IA_DEFERRED 5
#define DISCORD_PERM_ADMINISTRATOR (1ull << 3)
#define DISCORD_PERM_MANAGE_GUILD (1ull << 5)
struct discord_interaction {
    int skip;
    char id[DISCORD_SNOWFLAKE_MAX];
    char application_id[DISCORD_SNOWFLAKE_MAX];
    char channel_id[DISCORD_SNOWFLAKE_MAX];
    char guild_id[DISCORD_SNOWFLAKE_MAX]; /* "" in DMs */
    char user_id[DISCORD_SNOWFLAKE_MAX];
    char user_name[EVENT_NAME_MAX];
    char message_id[EVENT_ID_MAX]; /* "ia:<id>" */
    char token[DISCORD_IA_TOKEN_MAX];
    char command[EVENT_COMMAND_MAX];
    unsigned flags;
    int64_t ts_ms; /* from the snowflake */
    char *text;    /* heap: the arguments, or the question */
};

/*
 * One gateway frame {op, d, s, t}.  s is -1 when null or absent.  The
 * payload fields are filled for their op / event only.
 */
struct discord_frame {
    int op;
    int64_t s;
    enum discord_dispatch t;
    char t_name[DISCORD_EVENT_NAME_MAX]; /* for logs */
    int64_t heartbeat_interval;          /* HELLO, ms */
    int resumable;                       /* INVALID_SESSION d */
    struct discord_ready ready;
    struct discord_message msg;
    struct discord_reaction reaction;
    struct discord_interaction ia;
};

/*
 * Decodes one gateway frame.  self_id is our user id ("" before READY:
 * mentions and replies cannot be recognised then).  0, or -1 with *why
 * (a static string); frame_release() is safe either way.
 */
int discord_codec_frame(const char *buf, size_t len, const char *self_id,
                        struct discord_frame *f, const char **why);
void discord_frame_release(struct discord_frame *f);

/* The event MESSAGE_CREATE / REACTION_ADD / INTERACTION_CREATE becomes; strings
 * point into f (valid while f is).  -1 when the frame is not one (or skipped).
 */
int discord_frame_event(const struct discord_frame *f, struct event *ev);

/*
 * Outgoing gateway frames into buf (cap bytes): the length written (no
 * NUL counted, one is added), or -1 if it would exceed cap or
 * DISCORD_GW_SEND_MAX.  seq < 0 is null.  The identify and resume frames
 * contain the token: the caller zeroes buf after sending.
 */
int discord_codec_heartbeat(int64_t seq, char *buf, size_t cap);
int discord_codec_identify(const char *token, int intents, char *buf,
                           size_t cap);
int discord_codec_resume(const char *token, const char *session_id, int64_t seq,
                         char *buf, size_t cap);

/* GET /gateway/bot */
struct discord_gateway_bot {
    char url[DISCORD_URL_MAX];
    int shards;
    int64_t total, remaining, reset_after_ms;
    int max_concurrency;
};
int discord_codec_gateway_bot(const char *body, size_t len,
                              struct discord_gateway_bot *g, const char **why);

/*
 * POST /channels/{id}/messages.  content is cut to DISCORD_CONTENT_MAX
 * bytes on a UTF-8 boundary; reply_to "" or NULL = no message_reference;
 * nonce NULL or "" = none (else enforce_nonce:true).  allowed_mentions is
 * always {parse:[]} plus replied_user:false, so echoed text cannot ping
 * anyone.  A malloc'd NUL-terminated body, NULL on OOM.
 */
struct discord_create {
    const char *content;
    const char *reply_to;
    const char *nonce;
};
char *discord_codec_create_message(const struct discord_create *m);

/*
 * PATCH /channels/{c}/messages/{m}: {content, allowed_mentions} with the
 * content cut and the mentions restricted exactly as for a new message.
 * Discord answers 200 with the message also when the content is
 * unchanged (it has no "not modified" error).  malloc'd, NULL on OOM.
 */
char *discord_codec_edit_message(const char *content);

/*
 * What a REST reply to a message request means for core's send.  2xx:
 * OK.  429, 5xx, and status 0 (no response): AGAIN (the connector waits
 * and repeats it; delayed, never dropped).  Other statuses: FAILED with
 * *cls "forbidden" (403), "not_found" (404), "auth" (401) or
 * "bad_request" -- except a DELETE of a message already gone (404 code
 * 10008 Unknown Message), which is OK.  code is the error body's code
 * (0 when none).
 */
#define DISCORD_UNKNOWN_MESSAGE 10008
enum discord_verb { DISCORD_CREATE = 0, DISCORD_EDIT, DISCORD_DELETE };
enum discord_outcome {
    DISCORD_OUT_OK = 0,
    DISCORD_OUT_AGAIN,
    DISCORD_OUT_FAILED,
};
enum discord_outcome discord_codec_outcome(enum discord_verb v, long status,
                                           int64_t code, const char **cls);

/*
 * The nonce for an idem_key: the key itself when it fits
 * DISCORD_NONCE_MAX characters, else "h" + 16 hex digits of its 64-bit
 * FNV-1a hash.  Deterministic, so a resend after a restart carries the
 * same nonce.  buf must hold DISCORD_NONCE_MAX + 1 bytes.
 */
void discord_codec_nonce(const char *idem_key, char *buf, size_t cap);

/*
 * Slash commands over REST.  commands: the body of PUT
 * /applications/{application_id}/commands (a bulk overwrite: the same
 * body every time, so registering again changes nothing): /parley with
 * its text option.  interaction_callback: {"type": 5} (deferred; 1,
 * PONG, is the only other type) for POST
 * /interactions/{id}/{token}/callback.  Static strings.  The webhook
 * bodies (PATCH …/messages/@original, POST /webhooks/{app}/{token}) are
 * discord_codec_edit_message's: {content, allowed_mentions}.
 */
const char *discord_codec_commands(void);
const char *discord_codec_interaction_callback(int type);

/* A created message's id (the reply of POST …/messages). */
int discord_codec_message_id(const char *body, size_t len, char *id, size_t cap,
                             const char **why);

/*
 * A user's DM (docs/discord.md "Admin DMs"): POST /users/@me/channels
 * {"recipient_id": user} opens it (or returns the one already open) and
 * answers with the channel object, type 1 (DM).  dm_open: the body,
 * malloc'd, NULL when user is no snowflake or on OOM.  dm_channel: the
 * channel id of the reply; -1 with *why when there is none or the
 * channel is not a DM.
 */
#define DISCORD_CHANNEL_DM 1
char *discord_codec_dm_open(const char *user);
int discord_codec_dm_channel(const char *body, size_t len, char *id, size_t cap,
                             const char **why);

/* An error body: {message, code} and for 429 {retry_after (s), global}. */
struct discord_error {
    char message[DISCORD_ERROR_MAX];
    int64_t code;
    int64_t retry_after_ms; /* -1 = absent; rounded up */
    int global;
};
int discord_codec_error(const char *body, size_t len, struct discord_error *e);

/* "1.234" seconds (a Retry-After / Reset-After value) → ms rounded up;
 * -1 when not a non-negative number. */
int64_t discord_codec_seconds_ms(const char *s);

#endif
