/* telegram_codec: Bot API JSON ↔ structs (updates, replies, request bodies). */
#ifndef PARLEY_TELEGRAM_CODEC_H
#define PARLEY_TELEGRAM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/*
 * Pure: no I/O, no clock.  json-c stays inside telegram_codec.c; callers
 * see these structs only.  Every input is bounded: a body over
 * TELEGRAM_BODY_MAX or JSON deeper than TELEGRAM_JSON_DEPTH is refused,
 * a batch holds at most TELEGRAM_UPDATES_MAX updates, text is cut at
 * EVENT_TEXT_MAX bytes (on a UTF-8 boundary), names at EVENT_NAME_MAX.
 * Ids are int64 everywhere (chat ids of groups are negative).
 */
#define TELEGRAM_BODY_MAX (8 * 1024 * 1024)
#define TELEGRAM_JSON_DEPTH 64
#define TELEGRAM_UPDATES_MAX 1000
#define TELEGRAM_DESC_MAX 256
#define TELEGRAM_USERNAME_MAX 64
#define TELEGRAM_CALLBACK_ID_MAX 64
#define TELEGRAM_CALLBACK_DATA_MAX 64 /* Telegram's own limit, bytes */
/* What allowed_updates asks for (getUpdates remembers it server-side). */
#define TELEGRAM_ALLOWED_UPDATES                                               \
    "[\"message\",\"edited_message\",\"callback_query\",\"my_chat_member\"]"

/*
 * An {"ok":false,...} reply.  code is error_code (the HTTP status Telegram
 * also uses), retry_after in seconds (0 = absent), migrate_to_chat_id
 * (0 = absent).  Callers branch on code and these parameters, never on
 * description (for logs, and the one documented exception: "can't parse
 * entities", see telegram_error_is_parse()).
 */
struct telegram_error {
    int code;
    char description[TELEGRAM_DESC_MAX];
    int64_t retry_after;
    int64_t migrate_to_chat_id;
};

enum telegram_parse {
    TELEGRAM_PARSE_OK = 0,    /* {"ok":true,...}: the result was read */
    TELEGRAM_PARSE_API_ERROR, /* {"ok":false,...}: *err filled */
    TELEGRAM_PARSE_BAD,       /* not a Bot API reply: *err->description says */
};

/* getMe */
struct telegram_me {
    int64_t id;
    char username[TELEGRAM_USERNAME_MAX + 1]; /* without '@' */
};

enum telegram_update_kind {
    TELEGRAM_UPDATE_SKIP = 0,       /* unknown kind, or nothing we use */
    TELEGRAM_UPDATE_MESSAGE,        /* a message → EVENT_MESSAGE */
    TELEGRAM_UPDATE_EDITED,         /* edited_message: ignored (docs) */
    TELEGRAM_UPDATE_CALLBACK,       /* callback_query */
    TELEGRAM_UPDATE_MY_CHAT_MEMBER, /* our membership in a chat changed */
    TELEGRAM_UPDATE_MIGRATE /* a group became a supergroup (service message) */
};

enum telegram_chat_type {
    TELEGRAM_CHAT_UNKNOWN = 0,
    TELEGRAM_CHAT_PRIVATE,
    TELEGRAM_CHAT_GROUP,
    TELEGRAM_CHAT_SUPERGROUP,
    TELEGRAM_CHAT_CHANNEL,
};

/*
 * One update, flattened.  The id strings are the decimal forms of the
 * int64 fields, kept so telegram_update_event() can point an event at
 * them.  text is heap (NULL when the message had no text or caption).
 */
struct telegram_update {
    int64_t update_id;
    enum telegram_update_kind kind;
    enum telegram_chat_type chat_type;
    int64_t chat_id;
    int64_t thread_id;  /* forum topic (message_thread_id), 0 = none */
    int64_t message_id; /* MESSAGE; CALLBACK: the message with the button */
    int64_t from_id;
    int64_t reply_to_id;   /* 0 = not a reply */
    int64_t reply_from_id; /* its author (an anonymous admin: the chat) */
    int64_t date;          /* unix seconds */
    unsigned flags;        /* enum event_flag */
    char chat_s[24], thread_s[24], message_s[24], from_s[24], reply_s[24];
    char reply_from_s[24]; /* "" when unknown */
    char from_name[EVENT_NAME_MAX + 1];
    char command[EVENT_COMMAND_MAX + 1]; /* with EVENT_COMMAND, lower-case */
    char *text; /* mention / command stripped, trimmed */
    /* CALLBACK */
    char callback_id[TELEGRAM_CALLBACK_ID_MAX + 1];
    char callback_data[TELEGRAM_CALLBACK_DATA_MAX + 1];
    int vote; /* +1 / -1 for "fb:+:…" / "fb:-:…", 0 = not a vote */
    /* MY_CHAT_MEMBER: 1 when we were kicked or left, 0 when (re)added */
    int removed;
    /* MIGRATE: the group's old id and the supergroup's, from either
     * service message (migrate_to_chat_id in the old chat,
     * migrate_from_chat_id in the new one) */
    int64_t migrate_from, migrate_to;
};

struct telegram_updates {
    struct telegram_update *v;
    size_t n;
    /* max(update_id) + 1 over every update, skipped ones included; 0 when
     * the batch is empty (keep the current offset). */
    int64_t next_offset;
};

void telegram_updates_release(struct telegram_updates *u);

/*
 * A getUpdates reply.  me is who we are (mentions, commands, replies and
 * our own messages are judged against it).  An element of result that is
 * not an object with an integer update_id makes the whole reply BAD (the
 * offset could not advance past it safely); a known kind whose fields are
 * missing or malformed is kept as TELEGRAM_UPDATE_SKIP so its update_id
 * still advances the offset.
 */
enum telegram_parse telegram_codec_parse_updates(const char *body, size_t len,
                                                 const struct telegram_me *me,
                                                 struct telegram_updates *out,
                                                 struct telegram_error *err);

/* getMe: result.id and result.username. */
enum telegram_parse telegram_codec_parse_me(const char *body, size_t len,
                                            struct telegram_me *me,
                                            struct telegram_error *err);

/* Any method: ok or the error form; *message_id (may be NULL) gets
 * result.message_id when result is a Message, else 0. */
enum telegram_parse telegram_codec_parse_result(const char *body, size_t len,
                                                int64_t *message_id,
                                                struct telegram_error *err);

/* 1 when err is Telegram's 400 "can't parse entities" (bad HTML). */
int telegram_error_is_parse(const struct telegram_error *err);
/* 1 for 400 "message is not modified" (an identical edit: success). */
int telegram_error_is_not_modified(const struct telegram_error *err);
/*
 * 1 when the message an edit or delete names is gone for us: 400 "message
 * to edit not found", "message to delete not found", "MESSAGE_ID_INVALID",
 * or "message can't be edited" (too old, or not ours).
 */
int telegram_error_is_gone(const struct telegram_error *err);
/* 1 for 400 "query is too old" / "query ID is invalid" (ignore). */
int telegram_error_is_query_old(const struct telegram_error *err);

/*
 * The event for a MESSAGE or CALLBACK (vote) update.  Strings point into
 * *u: valid while u is.  -1 for other kinds, and for callbacks that are
 * not votes.  A vote's message_id is "cbq:<callback id>".
 */
int telegram_update_event(const struct telegram_update *u, struct event *ev);

/* ---- request bodies (JSON, malloc'd, NUL-terminated; NULL = no memory
 * or invalid argument) ---- */

struct telegram_send {
    int64_t chat_id;
    const char *text;
    int html;           /* parse_mode HTML */
    int64_t reply_to;   /* reply_parameters.message_id, 0 = none */
    int64_t thread_id;  /* message_thread_id, 0 = none */
    const char *fb_key; /* non-NULL: 👍/👎 buttons "fb:+:KEY"/"fb:-:KEY" */
};

/* sendMessage.  fb_key is cut so callback_data stays ≤ 64 bytes. */
char *telegram_codec_send_message(const struct telegram_send *s);
/*
 * editMessageText of our message_id in s->chat_id: text, parse_mode and,
 * with fb_key, the buttons (an edit without reply_markup removes them);
 * reply_to and thread_id are ignored (a message keeps its place).
 */
char *telegram_codec_edit_message(const struct telegram_send *s,
                                  int64_t message_id);
/* deleteMessage. */
/* setMyCommands' body: the commands everyone may use, with their help
 * lines. */
char *telegram_codec_my_commands(void);
char *telegram_codec_delete_message(int64_t chat_id, int64_t message_id);
/* sendChatAction typing. */
char *telegram_codec_chat_action(int64_t chat_id, int64_t thread_id);
/* answerCallbackQuery; text may be NULL. */
char *telegram_codec_answer_callback(const char *callback_id, const char *text);
/* getUpdates with allowed_updates = TELEGRAM_ALLOWED_UPDATES. */
char *telegram_codec_get_updates(int64_t offset, int timeout_s, int limit);
/* deleteWebhook, keeping pending updates. */
char *telegram_codec_delete_webhook(void);

/*
 * UTF-16 code-unit offset → UTF-8 byte offset in s (len bytes).  -1 when
 * off is negative, beyond the text, or falls inside a surrogate pair.
 * Exposed for tests.
 */
long telegram_utf16_to_byte(const char *s, size_t len, int64_t off);
/* Length of s in UTF-16 code units (invalid bytes count one each). */
size_t telegram_utf16_len(const char *s, size_t len);

#endif
