/* telegram_fake: a Bot API server for tests (long poll, sends, flood limits).
 */
#ifndef PARLEY_TELEGRAM_FAKE_H
#define PARLEY_TELEGRAM_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/fakes/fake.h"

/*
 * A faithful-enough Telegram Bot API on tests/fakes/fake.h (docs/fakes.md,
 * docs/telegram.md "The fake"):
 *
 *   /bot<TOKEN>/<method>  GET (query) or POST (JSON or form body).  A wrong
 *   token → 401 "Unauthorized"; an unknown method or path → 404 "Not Found",
 *   both in Telegram's {"ok":false,"error_code","description"} form.
 *
 *   getMe, deleteWebhook (a webhook set with telegram_fake_set_webhook makes
 *   getUpdates 409 until then), getUpdates (offset confirms every earlier
 *   update; unconfirmed ones are delivered again; limit 1..100; timeout ≤ 50
 *   s holds an empty poll — see the limitation below; allowed_updates is
 *   remembered and filters), sendMessage (stored per chat; parse_mode HTML
 *   validated like Telegram: unknown or unbalanced tags → 400 "Bad Request:
 *   can't parse entities: …"; > 4096 visible UTF-16 units → 400 "message is
 *   too long"), editMessageText (same checks on the text; 400 "message to
 *   edit not found", 400 "message is not modified" when text, entities and
 *   buttons are unchanged; every accepted edit's time is kept per message),
 *   deleteMessage (400 "message to delete not found" when unknown or
 *   already deleted), sendChatAction, answerCallbackQuery (unknown or
 *   twice → 400 "query is too old…").
 *
 *   Flood limits ENFORCED on sendMessage, editMessageText and deleteMessage
 *   (one budget for all three), each 429 with
 *   parameters.retry_after (whole seconds, rounded up), and a chat that got
 *   a 429 keeps getting 429 until its retry_after has passed: per chat a
 *   token bucket (burst 3, 1/s), per group or supergroup a sliding window
 *   (20 per 60 s), overall a sliding window (30 per 1 s); windows allow
 *   TELEGRAM_FAKE_SLACK_MS of clock skew between client and fake.
 *
 *   Scripted failures per chat and method: 429 retry_after, 403 blocked /
 *   kicked, 400 migrate_to_chat_id, 409 on getUpdates, 5xx.
 *
 *   A control API for out-of-process tests and the demo, under /_fake/:
 *   POST /_fake/message {"chat":C,"type":"group","from":U,"name":"Ann",
 *        "text":"…","reply_to":M,"thread":T,"is_bot":false}
 *        → {"update_id":N,"message_id":M}
 *   POST /_fake/callback {"chat":C,"message_id":M,"from":U,"data":"fb:+:x"}
 *   POST /_fake/script {"method":"sendMessage","chat":C,"code":429,
 *        "retry_after":3,"migrate_to":ID,"description":"…"}
 *   POST /_fake/block {"chat":C}      POST /_fake/migrate {"chat":C,"to":N}
 *   GET  /_fake/sent?chat=C → {"messages":[{"message_id","text","html",
 *        "reply_to","thread","keyboard","t_ms"}...]}
 *   GET  /_fake/stats → counters (below) as JSON
 *
 * Limitation: fake.h replies are decided when a request arrives, so an
 * empty long poll is answered after its whole timeout (capped by
 * telegram_fake_set_hold_max) even if an update is injected meanwhile;
 * the update goes out with the next poll.  Real Telegram answers at once.
 */

#define TELEGRAM_FAKE_TOKEN "123456:TEST-token_abc"
#define TELEGRAM_FAKE_BOT_ID 777000111LL
#define TELEGRAM_FAKE_BOT_NAME "ParleyBot"
#define TELEGRAM_FAKE_SLACK_MS 250

struct telegram_fake;

/* port 0 = ephemeral.  token NULL = TELEGRAM_FAKE_TOKEN. */
struct telegram_fake *telegram_fake_new(uv_loop_t *loop, int port,
                                        const char *token);
void telegram_fake_free(struct telegram_fake *tf); /* asynchronous, as fake */
struct fake *telegram_fake_server(struct telegram_fake *tf);
int telegram_fake_port(const struct telegram_fake *tf);
/* "http://127.0.0.1:PORT" (the api_base to configure). */
const char *telegram_fake_base(const struct telegram_fake *tf);

/* Who the bot is (getMe); defaults TELEGRAM_FAKE_BOT_ID / _NAME. */
void telegram_fake_set_me(struct telegram_fake *tf, int64_t id,
                          const char *username);
/* Longest hold of an empty getUpdates, ms (default 50 000). */
void telegram_fake_set_hold_max(struct telegram_fake *tf, int ms);
void telegram_fake_set_webhook(struct telegram_fake *tf, int on);
/* 1: a getUpdates arriving while another is held gets 409 Conflict. */
void telegram_fake_set_conflict_on_overlap(struct telegram_fake *tf, int on);
/* Flood limits; 0 leaves a value as it is. */
void telegram_fake_set_limits(struct telegram_fake *tf, int chat_burst,
                              int64_t chat_interval_ms, int group_n,
                              int64_t group_window_ms, int global_n,
                              int64_t global_window_ms);

/* ---- injecting updates ---- */

/* One incoming message.  Entities are computed like Telegram does:
 * "/cmd[@name]" at the start → bot_command, every "@name" → mention, in
 * UTF-16 offsets.  reply_to names an earlier message of that chat (ours
 * or a user's); thread makes it a forum topic message. */
struct telegram_fake_msg {
    int64_t chat;
    const char *type; /* "private" (default when chat > 0), "group",
                         "supergroup" */
    int64_t from;     /* default: chat for private chats, else 1001 */
    const char *name; /* first_name, default "User<from>" */
    int is_bot;
    const char *text;
    int64_t reply_to;
    int64_t thread;
};
/* Returns the update_id (the message id in *message_id), -1 on error. */
int64_t telegram_fake_message(struct telegram_fake *tf,
                              const struct telegram_fake_msg *m,
                              int64_t *message_id);
/* A button press on message_id of chat.  *query_id (may be NULL) gets the
 * callback query id. */
int64_t telegram_fake_callback(struct telegram_fake *tf, int64_t chat,
                               int64_t message_id, int64_t from,
                               const char *data, char *query_id, size_t qcap);
/* Any update object without update_id: {"my_chat_member":{…}} etc. */
int64_t telegram_fake_raw(struct telegram_fake *tf, const char *update_json);

/* ---- scripting failures ---- */

/*
 * The next `count` calls of method for chat (0 = any chat) answer this
 * error instead: code 429 (retry_after seconds, and the chat then stays
 * limited that long), 403 (description default "Forbidden: bot was
 * blocked by the user"), 400 with migrate_to (the group upgraded), 409,
 * 500, 502...
 */
int telegram_fake_script(struct telegram_fake *tf, const char *method,
                         int64_t chat, int code, int64_t retry_after,
                         int64_t migrate_to, const char *description,
                         int count);
/* Permanent states: every send to chat → 403; or → 400 migrate. */
void telegram_fake_block(struct telegram_fake *tf, int64_t chat);
void telegram_fake_migrate(struct telegram_fake *tf, int64_t chat, int64_t to);

/* ---- what happened ---- */

struct telegram_fake_sent {
    int64_t message_id;
    char *text; /* visible text (tags stripped, entities decoded) */
    char *html; /* as sent, when parse_mode was HTML, else NULL */
    int64_t reply_to, thread;
    int keyboard;     /* an inline keyboard was attached */
    char *cb_up;      /* callback_data of the first button, or NULL */
    int64_t t_ms;     /* fake_now_ms() when accepted */
    int64_t edits;    /* editMessageText calls that changed it */
    int64_t *edit_ms; /* fake_now_ms() of each of those edits */
    size_t nedit_ms, capedit;
    int deleted; /* by deleteMessage (kept here, so tests see it) */
    int64_t deleted_ms;
};
/* Messages the bot sent to chat, in order; valid until the next call. */
size_t telegram_fake_sent(const struct telegram_fake *tf, int64_t chat,
                          const struct telegram_fake_sent **out);
/* One of them by id (deleted ones too), or NULL. */
const struct telegram_fake_sent *
telegram_fake_find(const struct telegram_fake *tf, int64_t chat,
                   int64_t message_id);
/* The most edits of that message that fell in any window_ms. */
size_t telegram_fake_edits_max(const struct telegram_fake *tf, int64_t chat,
                               int64_t message_id, int64_t window_ms);
/* The times (fake_now_ms(), ascending) of every sendMessage,
 * editMessageText and deleteMessage the flood limits let through for
 * chat; and the most of them in any window_ms. */
size_t telegram_fake_ops(const struct telegram_fake *tf, int64_t chat,
                         const int64_t **times);
size_t telegram_fake_ops_max(const struct telegram_fake *tf, int64_t chat,
                             int64_t window_ms);

struct telegram_fake_stats {
    uint64_t get_me, delete_webhook, get_updates, send_message, edit_message,
        chat_action, answer_callback;
    uint64_t delete_message, not_modified;
    uint64_t delivered; /* sendMessage calls that stored a message */
    uint64_t err401, err404, err409, err429, err403, err400;
    uint64_t overlaps;      /* getUpdates that overlapped a held one */
    int64_t offset;         /* the last confirmed offset */
    size_t pending;         /* updates not confirmed yet */
    int64_t last_update_id; /* the newest injected update */
    uint64_t set_my_commands;
    char my_commands[256]; /* the last setMyCommands' names, "help,reset" */
};
void telegram_fake_stats(const struct telegram_fake *tf,
                         struct telegram_fake_stats *st);
/* 429s answered for chat. */
uint64_t telegram_fake_429s(const struct telegram_fake *tf, int64_t chat);
/* answerCallbackQuery calls for that query id. */
int telegram_fake_answered(const struct telegram_fake *tf,
                           const char *query_id);
/* sendChatAction calls for chat. */
uint64_t telegram_fake_actions(const struct telegram_fake *tf, int64_t chat);
/* fake_now_ms() of the last one, 0 if none. */
int64_t telegram_fake_action_ms(const struct telegram_fake *tf, int64_t chat);

#endif
