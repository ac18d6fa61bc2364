/* discord_fake: a Discord gateway + REST server for tests (sessions, resume
 * with replay, zombies, close codes, rate-limit buckets, global 429s). */
#ifndef PARLEY_DISCORD_FAKE_H
#define PARLEY_DISCORD_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/fakes/fake.h"

/*
 * A faithful-enough Discord API v10 on tests/fakes/fake.h (docs/discord.md
 * "The fake"):
 *
 *   REST under /api/v10, `Authorization: Bot TOKEN` (else 401
 *   {"message":"401: Unauthorized","code":0}):
 *     GET  /gateway/bot → url ws://127.0.0.1:PORT/gateway, session_start_limit
 *     POST /channels/{c}/messages {content ≤ 2000, message_reference,
 *          allowed_mentions, nonce, enforce_nonce} → the message (a nonce
 *          seen before in the channel with enforce_nonce returns the first
 *          message again: nothing is posted twice); content over 2000
 *          characters → 400 code 50035
 *     PATCH /channels/{c}/messages/{m} {content, allowed_mentions} → 200
 *          the message (with edited_timestamp), also when the content is
 *          unchanged (Discord has no "not modified"); unknown or deleted
 *          message → 404 code 10008 "Unknown Message"; another author's →
 *          403 code 50005; empty → 400 50006; over 2000 characters → 400
 *          50035.  Dispatched as MESSAGE_UPDATE.
 *     DELETE /channels/{c}/messages/{m} → 204; gone → 404 10008; another
 *          author's → 403 50013.  Dispatched as MESSAGE_DELETE.
 *     POST /channels/{c}/typing → 204
 *     POST /users/@me/channels {recipient_id} → the user's DM channel
 *          {id, type 1, recipients:[{id}]}, the same id every time for the
 *          same user; a user refusing DMs → 403 code 50007 (at the open or
 *          at each message to the channel: discord_fake_refuse_dm).
 *          Messages to a DM channel are recorded like any channel's.
 *     PUT  /channels/{c}/messages/{m}/reactions/{emoji}/@me → 204
 *          (unknown message → 404 code 10008); the reaction is also
 *          dispatched as MESSAGE_REACTION_ADD by the bot, like Discord does
 *   Every answer carries X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/
 *   -Bucket.  Buckets are ENFORCED, fixed windows per (route, channel):
 *   creating, editing and deleting messages 5 per 5 s each (a bucket per
 *   route: an edit does not use a create's room), typing 5 per 5 s,
 *   reactions 1 per 250 ms, opening DMs 5 per 5 s (one bucket); over → 429
 * {message, retry_after, global:false} with Retry-After and X-RateLimit-Scope:
 * user.  All requests together: 50 per second, over → a global 429.
 * discord_fake_global_429() makes the next request a global 429
 * (X-RateLimit-Global: true) and every request before its retry_after another
 * one; 429s other than the scripted one count as "caused" (the client did not
 * wait), except for requests arriving within DISCORD_FAKE_SLACK_MS of the
 * scripted one (they were in flight before the client could know).
 *
 *   The gateway at /gateway (and /resume, the resume_gateway_url): HELLO
 *   {heartbeat_interval}; op 1 → op 11 ACK (unless acks are off: a
 *   zombie); IDENTIFY (wrong token → 4004, MESSAGE_CONTENT not allowed →
 *   4014, a second one → 4005) → READY {session_id, resume_gateway_url,
 *   user}; RESUME of a known session detached less than the resume window
 *   → the missed dispatches replayed, then RESUMED; unknown or expired →
 *   op 9 false.  A client close with 1000/1001 ends its session; any other
 *   close or a drop keeps it resumable.  Frames over 4096 bytes → 4002;
 *   an unknown op → 4001; anything before IDENTIFY but heartbeats → 4003;
 *   more than the send limit (120 per 60 s) → 4008.
 *
 *   Injection: MESSAGE_CREATE and MESSAGE_REACTION_ADD dispatches into the
 *   current session (kept in its log while no connection is attached, so
 *   a resume replays them), op 7, op 9, op 1, close codes, drops.
 *
 *   A control API for out-of-process tests and the demo, under /_fake/:
 *   POST /_fake/message {"channel","guild","author","name","content",
 *        "reply_to","bot","webhook"} → {"id","seq"}
 *   POST /_fake/interaction {"channel","guild","user","name",
 *        "permissions","text","command","id"} → {"id","seq"} (/parley)
 *   POST /_fake/reaction {"channel","message","user","emoji"}
 *   POST /_fake/op {"op":7} | {"op":9,"d":false} | {"op":1}
 *   POST /_fake/close {"code":4004}     POST /_fake/drop
 *   POST /_fake/acks {"on":false}        POST /_fake/global429 {"ms":1500}
 *   POST /_fake/edit429 {"ms":1500}
 *   POST /_fake/bucket {"limit":5,"window_ms":5000}
 *   GET  /_fake/sent[?channel=C] → {"messages":[{"id","channel","content",
 *        "reply_to","nonce","t_ms","edits","deleted","reactions"}...]}
 *   GET  /_fake/stats → the counters of struct discord_fake_stats
 */

#define DISCORD_FAKE_TOKEN "fake.discord.token-123"
#define DISCORD_FAKE_BOT_ID "424242424242424242"
#define DISCORD_FAKE_BOT_NAME "ParleyBot"
/* READY's application.id: not the bot's user id, so a client using the
 * wrong one is caught */
#define DISCORD_FAKE_APP_ID "434343434343434343"
#define DISCORD_FAKE_SLACK_MS 100

struct discord_fake;

/* port 0 = ephemeral; token NULL = DISCORD_FAKE_TOKEN. */
struct discord_fake *discord_fake_new(uv_loop_t *loop, int port,
                                      const char *token);
void discord_fake_free(struct discord_fake *df); /* asynchronous, as fake */
struct fake *discord_fake_server(struct discord_fake *df);
int discord_fake_port(const struct discord_fake *df);
/* "http://127.0.0.1:PORT/api/v10" (the api_base to configure). */
const char *discord_fake_base(const struct discord_fake *df);

/* ---- gateway knobs ---- */
void discord_fake_set_heartbeat(struct discord_fake *df, int interval_ms);
void discord_fake_set_acks(struct discord_fake *df, int on);
/* 0: IDENTIFY with MESSAGE_CONTENT gets 4014 (the portal switch is off). */
void discord_fake_set_message_content(struct discord_fake *df, int allowed);
void discord_fake_set_session_start(struct discord_fake *df, int remaining,
                                    int64_t reset_after_ms);
/* Gateway sends per connection (default 120 per 60 000 ms; 0 = off). */
void discord_fake_set_send_limit(struct discord_fake *df, int n,
                                 int64_t window_ms);
/* How long a detached session stays resumable (default 120 000 ms). */
void discord_fake_set_resume_window(struct discord_fake *df, int64_t ms);

/* ---- gateway injection (every live connection) ---- */
int discord_fake_op(struct discord_fake *df, int op, int d); /* 1, 7, 9 */
void discord_fake_close(struct discord_fake *df, int code);
void discord_fake_drop(struct discord_fake *df);

struct discord_fake_msg {
    const char *channel;
    const char *guild; /* NULL or "" = a DM */
    const char *author;
    const char *name;
    const char *content;
    const char *reply_to; /* a message id of that channel, or NULL */
    int bot, webhook;
};
/* A MESSAGE_CREATE; mentions[] lists every <@id> of the content.  The new
 * message id goes to id (may be NULL).  Returns its sequence number, 0 when
 * no session exists (the message is stored, nobody hears of it), -1 on
 * error. */
int64_t discord_fake_message(struct discord_fake *df,
                             const struct discord_fake_msg *m, char *id,
                             size_t cap);
/* A MESSAGE_REACTION_ADD; emoji is the unicode name ("👍"). */
int64_t discord_fake_reaction(struct discord_fake *df, const char *channel,
                              const char *message, const char *user,
                              const char *emoji);
/* The user takes the reaction back: MESSAGE_REACTION_REMOVE. */
int64_t discord_fake_reaction_remove(struct discord_fake *df,
                                     const char *channel, const char *message,
                                     const char *user, const char *emoji);

/* ---- REST knobs ---- */
/* The size of the create, edit and delete message buckets (each its own). */
void discord_fake_set_bucket(struct discord_fake *df, int limit,
                             int64_t window_ms);
/* The next PATCH of a message gets a bucket 429 (X-RateLimit-Scope: user)
 * of at least retry_after_ms (longer if the edit bucket's window ends
 * later); scripted, so not counted in caused_429. */
void discord_fake_edit_429(struct discord_fake *df, int64_t retry_after_ms);
void discord_fake_global_429(struct discord_fake *df, int64_t retry_after_ms);
/* Whether user takes DMs from the bot: refused with 403 code 50007 when the
 * DM is opened, or (as Discord does for a user who closed their DMs) when
 * a message is posted to it.  -1 when the table of users is full. */
enum discord_fake_refuse {
    DISCORD_FAKE_REFUSE_NONE = 0,
    DISCORD_FAKE_REFUSE_OPEN,
    DISCORD_FAKE_REFUSE_SEND,
};
int discord_fake_refuse_dm(struct discord_fake *df, const char *user,
                           enum discord_fake_refuse how);
/* The DM channel opened for user: 0 (into buf), -1 none yet. */
int discord_fake_dm_channel(const struct discord_fake *df, const char *user,
                            char *buf, size_t cap);

/* ---- observing ---- */
struct discord_fake_stats {
    uint64_t connections, identifies, resumes, resumed, invalidated, heartbeats,
        acks, readies, dispatched, replayed, created, dup_nonce, typing,
        reactions, r429, r429_global, caused_429, unauthorized;
    /* edits done (edit_same of them with unchanged content), deletes
     * done, edits and deletes of a message that does not exist */
    uint64_t edits, edit_same, deletes, unknown_message;
    uint64_t dm_opens, dm_refused; /* DMs opened (repeats too); 50007s */
    /* slash commands: PUT …/commands; callbacks accepted and refused
     * (twice, late); @original posts and edits, follow-ups; webhook
     * calls refused (before the callback, token expired) */
    uint64_t commands_put, ia_callbacks, ia_refused, ia_originals, ia_followups,
        ia_webhook_refused;
    int last_client_close; /* the close code of the last client close, 0 */
    int live;              /* gateway connections open now */
};
void discord_fake_stats(const struct discord_fake *df,
                        struct discord_fake_stats *st);

/* Messages the bot created, in order. */
struct discord_fake_sent {
    const char *id;
    const char *channel;
    const char *content;
    const char *reply_to; /* "" */
    const char *nonce;    /* "" */
    int64_t t_ms;         /* fake_now_ms() at creation */
    int up, down;         /* the bot's own reactions on it */
    size_t edits;         /* PATCHes it took */
    int deleted;          /* content is then the last one it had */
};
size_t discord_fake_sent_count(const struct discord_fake *df,
                               const char *channel);
/* i-th sent message overall (channel NULL) or of channel; NULL past end. */
int discord_fake_sent_get(const struct discord_fake *df, const char *channel,
                          size_t i, struct discord_fake_sent *out);
/* The bot's message id: 0, or -1 when there is none. */
int discord_fake_sent_find(const struct discord_fake *df, const char *id,
                           struct discord_fake_sent *out);
/* When each edit of the bot's message id came (fake_now_ms, in order). */
size_t discord_fake_edit_times(const struct discord_fake *df, const char *id,
                               const int64_t **v);
/* The most edits of message id within any window_ms. */
size_t discord_fake_edits_in(const struct discord_fake *df, const char *id,
                             int64_t window_ms);

/* ---- slash commands ----
 * READY carries application {id: DISCORD_FAKE_APP_ID}.
 *   PUT /applications/{app}/commands (Bot auth; another app → 403 50001)
 *        → 200, the body echoed; recorded (discord_fake_commands).
 *   POST /interactions/{id}/{token}/callback {type 4|5} (no auth: the
 *        token is the credential) → 204; unknown, or later than the
 *        deadline (3 s) → 404 10062; a second one → 400 40060.
 *   PATCH /webhooks/{app}/{token}/messages/@original {content,
 *        allowed_mentions} → the message: the first posts it in the
 *        interaction's channel (the deferred "thinking…" gets content),
 *        later ones edit it; POST /webhooks/{app}/{token}[?wait=true] →
 *        a follow-up message; PATCH/DELETE …/messages/{id} of one of
 *        them → as for a channel message.  Before the callback → 404
 *        10015; after the token's life (15 min) → 401 50027.  Their own
 *        bucket per interaction (5 per 5 s).  Webhook messages are the
 *        bot's: discord_fake_sent_* and reactions see them.
 */
struct discord_fake_ia {
    const char *id;      /* NULL: a new interaction; else replay this one */
    const char *channel; /* where it was used */
    const char *guild;   /* NULL or "" = a DM */
    const char *user;
    const char *name;
    const char *permissions; /* member.permissions (guild), NULL = "0" */
    const char *text;        /* the text option, NULL = none given */
    const char *command;     /* data.name, NULL = "parley" */
};
/* An INTERACTION_CREATE (APPLICATION_COMMAND); its id into id.  Returns
 * the sequence number, 0 when no session exists, -1 on error. */
int64_t discord_fake_interaction(struct discord_fake *df,
                                 const struct discord_fake_ia *x, char *id,
                                 size_t cap);
struct discord_fake_ia_state {
    int callbacks;        /* callback requests, refused ones too */
    int type;             /* the accepted callback's type, 0 = none */
    int64_t ack_after_ms; /* from the dispatch to the callback, -1 none */
    const char *original; /* the @original message id, "" = none */
    size_t followups;
    const char *followup; /* the first follow-up's id, "" */
};
int discord_fake_ia_get(const struct discord_fake *df, const char *id,
                        struct discord_fake_ia_state *out);
/* Callbacks later than callback_ms after the dispatch and webhook calls
 * later than token_ms are refused (0 = 3 s and 15 min). */
void discord_fake_set_ia_deadline(struct discord_fake *df, int64_t callback_ms,
                                  int64_t token_ms);
/* The last PUT …/commands body, NULL = none. */
const char *discord_fake_commands(const struct discord_fake *df);

/* Heartbeats received: connection number (1-based), time since that
 * connection's HELLO, ms. */
struct discord_fake_beat {
    int conn;
    int64_t since_hello;
    int64_t t_ms;
};
size_t discord_fake_beats(const struct discord_fake *df,
                          const struct discord_fake_beat **v);

#endif
