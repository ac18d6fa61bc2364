/* event: the platform-neutral inbound event, the actions core asks of a
 * connector, and the contract between connectors and core (docs/core.md). */
#ifndef PARLEY_EVENT_H
#define PARLEY_EVENT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Bounds on every field a platform sends us (STYLE 10).  Ids: Telegram
 * int64, Discord uint64 snowflakes, Slack "C024BE91L" / "1712345678.000100"
 * all fit in 64 bytes.  Text over EVENT_TEXT_MAX bytes is cut by core at a
 * UTF-8 boundary (never rejected: a redelivery would not make it shorter).
 */
#define EVENT_PLATFORM_MAX 16
#define EVENT_ID_MAX 64
#define EVENT_NAME_MAX 128
#define EVENT_COMMAND_MAX 32
#define EVENT_TEXT_MAX 16384

enum event_kind {
    EVENT_MESSAGE = 0, /* a text message (or a command) */
    EVENT_VOTE,        /* a 👍/👎 on one of our messages */
};

/* Flags the connector sets; it knows the platform's way of saying them. */
enum event_flag {
    EVENT_PRIVATE = 1u << 0,      /* a DM / private chat */
    EVENT_MENTIONED = 1u << 1,    /* @bot in a group */
    EVENT_REPLY_TO_BOT = 1u << 2, /* replies to one of the bot's messages */
    EVENT_COMMAND = 1u << 3,      /* a command addressed to us (see command) */
    EVENT_FROM_BOT = 1u << 4,     /* sent by some bot */
    EVENT_FROM_SELF = 1u << 5,    /* sent by this bot */
    EVENT_ADMIN = 1u << 6,        /* the platform says: chat administrator */
    EVENT_UNVOTE = 1u << 7,       /* EVENT_VOTE: the reaction taken back */
};

/*
 * One inbound event.  Every string is NUL-terminated, borrowed for the
 * duration of core_accept() only (core copies what it keeps), and never
 * NULL except where noted; "" means absent.  A conversation is (platform,
 * chat, thread): thread is "" outside Slack threads, Discord threads and
 * Telegram forum topics.
 */
struct event {
    enum event_kind kind;
    const char *platform;  /* "telegram", "discord", "slack" */
    const char *chat;      /* chat / channel id */
    const char *thread;    /* "" = none */
    const char *user;      /* author id */
    const char *user_name; /* display name, for the prompt in groups */
    const char *message_id;
    const char *reply_to; /* message replied to, "" = none */
    /* its author when the platform says (a command's WHO), ""/NULL = not */
    const char *reply_to_user;
    unsigned flags; /* enum event_flag */
    int64_t ts_ms;  /* platform timestamp, unix ms (0 = unknown) */
    /*
     * EVENT_MESSAGE: the text with the bot mention removed.  For
     * EVENT_COMMAND, command is the bare lower-case name ("help", not
     * "/help@bot") and text its arguments.
     */
    const char *command;
    const char *text;
    /* EVENT_VOTE: our platform message voted on, and +1 / -1; with
     * EVENT_UNVOTE that reaction was taken back (the vote goes if it is
     * still the user's, docs/core.md) */
    const char *target_id;
    int vote;
};

/*
 * Returns 0 when the event is well-formed (kind known, required ids
 * present and within bounds, no NULL where a string is required), else -1
 * with *why pointing at a static explanation.  Text length is not checked
 * here (core cuts it); see event_text_cut().
 */
int event_check(const struct event *ev, const char **why);

/* Length of the longest prefix of text (len bytes) that is at most max
 * bytes and does not end inside a UTF-8 sequence. */
size_t event_text_cut(const char *text, size_t len, size_t max);

/* ---- actions: what core asks a connector to do ---- */

enum action_kind {
    ACTION_ANSWER = 0, /* one part of an answer: text, reply to the message */
    ACTION_NOTICE,     /* a 429 or error notice: text, reply to the message */
    /*
     * Streaming (connector_ops.can_edit): replace the text of our message
     * target_id in (chat, thread) with text; feedback 1 attaches the
     * 👍/👎 controls now (the final edit of the last part).  reply_to and
     * idem_key are unused.  "Not modified" is SEND_OK; a message that is
     * gone is SEND_FAILED "not_found" (core then sends a new one).
     */
    ACTION_EDIT,
    /* Streaming: delete our message target_id (a streamed part that the
     * final answer no longer needs).  SEND_OK also when already gone. */
    ACTION_DELETE,
};

/*
 * One outbound message.  Strings are borrowed for the duration of
 * ops->send(); the connector copies what it queues.  `send_id` names this
 * send in core_send_done(); `idem_key` ("job:<id>:<part>") is stable across
 * restarts: a connector whose platform can deduplicate on a client key
 * (Discord `nonce` + `enforce_nonce`, Slack `client_msg_id`) passes it on,
 * which closes the at-least-once window of a crash between the platform
 * accepting the message and core recording it (docs/core.md).
 */
struct action {
    enum action_kind kind;
    uint64_t send_id;
    const char *chat;
    const char *thread;   /* "" = none */
    const char *reply_to; /* message id to reply to, "" = none */
    const char *text;
    const char *idem_key;
    int part;     /* 0-based part of a split answer */
    int parts;    /* how many parts the answer has */
    int feedback; /* 1: attach 👍/👎 controls (answers, not notices) */
    const char *target_id; /* ACTION_EDIT / ACTION_DELETE: our message id;
                              "" otherwise */
    /* ACTION_EDIT with feedback: the message already shows text, only
     * the controls are new (a connector whose controls are reactions
     * need not touch the text) */
    int controls_only;
};

/* The outcome a connector reports for one send. */
enum send_status {
    SEND_OK = 0, /* delivered; message_id is the platform's id */
    SEND_RETRY,  /* not now: try again after retry_after_ms */
    SEND_FAILED, /* permanent (chat gone, forbidden): give the job up */
};

struct send_result {
    enum send_status status;
    const char *message_id;  /* SEND_OK: the platform message id, or "" */
    int64_t retry_after_ms;  /* SEND_RETRY */
    const char *error_class; /* SEND_FAILED: "forbidden", "not_found"... */
};

/*
 * A connector registers one of these with core (core_register_connector).
 * Callbacks run on the loop thread and must not block.
 *
 * send: queue one message (the connector paces it under the platform's
 *   limits and honours every 429).  Return 0 if queued, -1 if it cannot be
 *   queued now (core retries later).  The connector reports the outcome
 *   exactly once with core_send_done(core, a->send_id, result), never from
 *   inside send() itself (from a later loop callback).
 * typing: show "typing…" in (chat, thread) once; core repeats it every
 *   typing_interval_ms while a job waits (0 = the platform has none).
 * react: add the emoji ("+1", "-1" names) to (chat, message_id); best
 *   effort, no outcome.
 * text_max: the platform's message limit in bytes (Telegram 4096,
 *   Discord 2000, Slack 4000); core splits longer answers.
 * streams_max: how many answers may show streamed text at once on this
 *   platform (0 = no bound); another waits for a slot, showing nothing,
 *   and is sent whole if it finishes first.  For a platform whose edit
 *   budget is small next to its post budget (Slack's chat.update, ≈50 a
 *   minute per workspace).
 * can_edit: 1 if send() takes ACTION_EDIT and ACTION_DELETE (streaming).
 *   Edits and deletes are paced with ordinary messages under the same
 *   per-chat, per-group, global and per-route budgets, and honour 429s
 *   the same way; core sends at most one action per job at a time and
 *   coalesces the text it streams, so a queued edit is never stale by more
 *   than one step.
 */
struct connector_ops {
    const char *platform;
    void *ctx;
    int (*send)(void *ctx, const struct action *a);
    void (*typing)(void *ctx, const char *chat, const char *thread);
    void (*react)(void *ctx, const char *chat, const char *message_id,
                  const char *emoji);
    int64_t typing_interval_ms;
    size_t text_max;
    int can_edit;
    int streams_max;
};

struct core;

/*
 * The ingest contract.  core_accept() returns 0 once the event is durable
 * (its job row committed with store_sync) or deliberately dropped (not for
 * us, a duplicate, malformed): the connector may then acknowledge it to
 * the platform (Telegram offset, Slack envelope ack).  -1: nothing durable
 * happened (database error, core stopping); do not acknowledge, the
 * platform will deliver it again.  Redeliveries are harmless: the job's
 * unique key (platform, chat, message id) turns them into no-ops.
 */
int core_accept(struct core *c, const struct event *ev);

/* The outcome of one ops->send(); unknown send ids are ignored. */
void core_send_done(struct core *c, uint64_t send_id,
                    const struct send_result *r);

#endif
