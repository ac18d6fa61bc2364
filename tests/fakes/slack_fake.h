/* slack_fake: a Socket Mode + Web API server for tests and the demo. */
#ifndef PARLEY_SLACK_FAKE_H
#define PARLEY_SLACK_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/fakes/fake.h"

/*
 * Slack as a Socket Mode bot sees it, on tests/fakes/fake.h (docs/slack.md
 * "The fake"):
 *
 *   POST /api/apps.connections.open  Bearer app token (xapp-…; a bot
 *     token → not_allowed_token_type, anything else → invalid_auth) →
 *     {"ok":true,"url":"ws://127.0.0.1:PORT/link/N?ticket=…"}.  Each URL
 *     is single use: a second connection to it is closed at once with
 *     4001 "invalid ticket" and no hello.
 *   POST /api/auth.test  Bearer bot token → user_id / bot_id.
 *   The socket: hello on open ({"type":"hello","num_connections":N}),
 *     envelopes spread round-robin over the live sockets, each unacked
 *     one REDELIVERED after redeliver_ms (default 3000) as a new envelope
 *     of the same event with retry_attempt + 1 and retry_reason
 *     "timeout", up to 3 retries; acks ({"envelope_id"}) timed; events
 *     injected while no socket is up wait for one.  Disconnects on demand:
 *     warning / refresh_requested (the socket is closed by the fake
 *     close_after_ms later, default 10 s, unless the client closes it
 *     first), link_disabled (closed at once, and every later
 *     apps.connections.open fails with the error set by
 *     slack_fake_set_open_error, if any).  Pings: lws answers the
 *     client's pings with pongs; the fake cannot send pings of its own
 *     (fake.h has no ping), so dead-peer tests stop the process instead.
 *   POST /api/chat.postMessage {channel, text, thread_ts?, mrkdwn}:
 *     stored per channel with a fresh ts; no_text, msg_too_long (> 40000
 *     characters), channel_not_found for ids not starting with C/D/G;
 *     a per-channel token bucket ENFORCED (default 1/s, burst 3): over it
 *     → HTTP 429, Retry-After: whole seconds, {"ok":false,
 *     "error":"ratelimited"}.
 *   POST /api/chat.update {channel, ts, text} → {"ok":true,"channel",
 *     "ts","text","message"}: the message's text replaced, each edit
 *     timed; message_not_found (unknown or deleted), cant_update_message
 *     (not the bot's), no_text, msg_too_long, channel_not_found.  Same
 *     text again is ok (Slack has no "not modified").
 *   POST /api/chat.delete {channel, ts} → {"ok":true,"channel","ts"}:
 *     the message is marked deleted (gone from slack_fake_message and
 *     slack_fake_count; slack_fake_find still sees it); message_not_found
 *     (unknown or already deleted), cant_delete_message.
 *   Flood limits, ENFORCED: postMessage, update and delete share the
 *     channel's bucket above; chat.update and chat.delete are Tier 3,
 *     each with a workspace-wide bucket (default 50/min, burst 3).  Over
 *     either → the same 429.
 *   POST /api/reactions.add {channel, timestamp, name}: message_not_found,
 *     already_reacted.
 *   Scripted failures: the next call(s) of a method answer {"ok":false,
 *     "error":E} or HTTP 429 with Retry-After.
 *   Channels the bot is not in (slack_fake_set_channel_error): every
 *     chat.postMessage / update / delete there answers ok:false with the
 *     error set ("not_in_channel", "channel_not_found").
 *   Slash commands carry "response_url": "http://127.0.0.1:PORT/_fake/
 *     response/<id>" (id = the trigger_id).  POSTs to it are recorded
 *     (text, response_type, replace_original, delete_original, whether an
 *     Authorization header came: it must not); up to 5 are taken ("ok"),
 *     then 404 "used_url"; 404 "expired_url" once expired
 *     (slack_fake_response_expire) or unknown; 400 "invalid_payload" /
 *     "no_text".  fake_script(…, "POST", "/_fake/response/", …) scripts
 *     429s and 5xx.
 *
 * Control API under /_fake/ for out-of-process tests and the demo:
 *   POST /_fake/mention {"channel","user","text","thread_ts"?}  → {"ts",
 *        "event_id"}   (an app_mention with "<@U0BOT> " before text)
 *   POST /_fake/dm {"channel","user","text"}         (message.im)
 *   POST /_fake/reaction {"channel","ts","user","reaction"}
 *   POST /_fake/slash {"channel","user","text"}      (/parley TEXT)
 *   POST /_fake/response/<id> {…}   (a response_url, see above)
 *   POST /_fake/expire {"id"?}      (that response_url, or all, expire)
 *   POST /_fake/channel_error {"channel","error"?}  (no error: cleared)
 *   POST /_fake/disconnect {"reason":"warning"}
 *   POST /_fake/script {"method":"chat.postMessage","error":"…"} or
 *        {"method":…,"status":429,"retry_after":2}
 *   GET  /_fake/messages?channel=C → {"messages":[{"ts","thread_ts",
 *        "user","text","bot","t_ms","reactions":[…]}]}
 *   GET  /_fake/stats → the counters of struct slack_fake_stats
 */

#define SLACK_FAKE_APP_TOKEN "xapp-1-A0TEST-1-fake"
#define SLACK_FAKE_BOT_TOKEN "xoxb-1-fake"
#define SLACK_FAKE_USER_ID "U0BOT"
#define SLACK_FAKE_BOT_ID "B0BOT"
#define SLACK_FAKE_TICKETS 512 /* socket URLs one fake can hand out */

struct slack_fake;

/* port 0 = ephemeral. */
struct slack_fake *slack_fake_new(uv_loop_t *loop, int port);
void slack_fake_free(struct slack_fake *sf); /* asynchronous, as fake_free */
struct fake *slack_fake_server(struct slack_fake *sf);
int slack_fake_port(const struct slack_fake *sf);
/* "http://127.0.0.1:PORT/api": the api_base to configure. */
const char *slack_fake_base(const struct slack_fake *sf);

/* Behaviour (defaults in the comment above). */
void slack_fake_set_redeliver_ms(struct slack_fake *sf, int ms);
void slack_fake_set_close_after_ms(struct slack_fake *sf, int ms);
/* chat.postMessage per channel: rate per second and burst; 0 = off. */
void slack_fake_set_rate(struct slack_fake *sf, double per_s, int burst);
/* chat.update and chat.delete, each, workspace-wide: per minute and
 * burst; 0 = off. */
void slack_fake_set_tier3(struct slack_fake *sf, double per_min, int burst);
/* 0: the socket never says hello (a dead link). */
void slack_fake_set_hello(struct slack_fake *sf, int on);
/* Every apps.connections.open / auth.test answers ok:false with error
 * ("invalid_auth"...) from now on; NULL or "" = normal again. */
void slack_fake_set_open_error(struct slack_fake *sf, const char *error);
void slack_fake_set_auth_error(struct slack_fake *sf, const char *error);
/* The next call of method fails: ok:false error, or status 429 with
 * Retry-After retry_after_s (error NULL).  Queued, FIFO per method. */
int slack_fake_script(struct slack_fake *sf, const char *method,
                      const char *error, int status, int retry_after_s);

/* Events in.  Each returns 0 and the new message's ts (may be NULL). */
int slack_fake_mention(struct slack_fake *sf, const char *channel,
                       const char *user, const char *text,
                       const char *thread_ts, char *ts_out, size_t cap);
int slack_fake_dm(struct slack_fake *sf, const char *channel, const char *user,
                  const char *text, char *ts_out, size_t cap);
int slack_fake_reaction(struct slack_fake *sf, const char *channel,
                        const char *ts, const char *user, const char *reaction);
/* reaction_removed: the user takes it back */
int slack_fake_reaction_remove(struct slack_fake *sf, const char *channel,
                               const char *ts, const char *user,
                               const char *reaction);
int slack_fake_slash(struct slack_fake *sf, const char *channel,
                     const char *user, const char *text);
/* The same; response_url NULL = the fake's own, else sent as given; the
 * command's id (its trigger_id, the response_url's key) in id_out. */
int slack_fake_slash_ex(struct slack_fake *sf, const char *channel,
                        const char *user, const char *text,
                        const char *response_url, char *id_out, size_t cap);
/* chat.postMessage/update/delete in channel fail with error ("not_in_
 * channel", "channel_not_found"); NULL or "" = normal again. */
void slack_fake_set_channel_error(struct slack_fake *sf, const char *channel,
                                  const char *error);
/* The response_url of slash command id (NULL: all) answers expired_url. */
void slack_fake_response_expire(struct slack_fake *sf, const char *id);
/* Any events_api event object (JSON); the fake adds event_id. */
int slack_fake_event(struct slack_fake *sf, const char *event_json);
/* Delivers the last injected event once more as a retry (retry_attempt
 * + 1, same event_id), acked or not: Slack does that when an ack got lost
 * on its side. */
int slack_fake_redeliver_last(struct slack_fake *sf);
/* Sends {"type":"disconnect","reason":reason} on every live socket. */
void slack_fake_disconnect(struct slack_fake *sf, const char *reason);
/* Drops every socket without a close frame. */
void slack_fake_drop_all(struct slack_fake *sf);

/* What it saw. */
struct slack_fake_stats {
    uint64_t opens;      /* apps.connections.open calls */
    uint64_t auth_tests; /* auth.test calls */
    uint64_t connects;   /* sockets accepted with a valid ticket */
    uint64_t refused;    /* sockets with a used or unknown ticket */
    uint64_t hellos;
    uint64_t events;       /* injected */
    uint64_t deliveries;   /* envelopes sent, redeliveries included */
    uint64_t redeliveries; /* of events not acked in time */
    uint64_t acks;         /* for known envelopes */
    uint64_t acks_late;    /* later than 3 s after the delivery */
    uint64_t acks_unknown;
    uint64_t unacked;   /* events without any ack so far */
    int64_t ack_max_ms; /* slowest ack */
    uint64_t posts;     /* chat.postMessage stored */
    uint64_t posts_429;
    uint64_t updates; /* chat.update applied */
    uint64_t updates_429;
    uint64_t deletes; /* chat.delete applied */
    uint64_t deletes_429;
    uint64_t reactions;
    uint64_t scripted;             /* scripted failures answered */
    uint64_t posts_refused;        /* by slack_fake_set_channel_error */
    uint64_t responses;            /* response_url posts taken */
    uint64_t responses_refused;    /* expired, used up, invalid */
    uint64_t responses_authorized; /* with an Authorization header (bad) */
    size_t live;                   /* sockets open now */
};
void slack_fake_stats(const struct slack_fake *sf, struct slack_fake_stats *s);

/* Messages of a channel, in order (users' injected and the bot's).
 * Pointers are valid until the fake changes. */
struct slack_fake_msg {
    const char *channel, *ts, *thread_ts, *user;
    const char *text; /* as now, after any edits */
    int bot;          /* posted through chat.postMessage */
    int deleted;      /* chat.delete (slack_fake_find only) */
    int64_t t_ms;
    int nreactions;
    const char *reactions[8];
    int edits;                /* chat.update calls applied */
    const int64_t *edit_t_ms; /* when, fake_now_ms() */
    int edits_per_min_max;    /* the most edits in any 60 s */
};
/* Messages not deleted. */
size_t slack_fake_count(const struct slack_fake *sf, const char *channel,
                        int bot_only);
/* The i-th message not deleted of the channel (NULL channel: of all):
 * 0, or -1. */
int slack_fake_message(const struct slack_fake *sf, const char *channel,
                       size_t i, struct slack_fake_msg *out);
/* The message (channel, ts), deleted or not: 0, or -1. */
int slack_fake_find(const struct slack_fake *sf, const char *channel,
                    const char *ts, struct slack_fake_msg *out);

/* A post taken by a response_url, in order.  Valid until the fake goes. */
struct slack_fake_resp {
    const char *text;
    const char *response_type; /* "in_channel", "ephemeral", "" */
    int replace_original, delete_original;
    int authorized; /* came with an Authorization header */
    int64_t t_ms;
};
/* Posts taken by slash command id's response_url. */
size_t slack_fake_response_count(const struct slack_fake *sf, const char *id);
int slack_fake_response(const struct slack_fake *sf, const char *id, size_t i,
                        struct slack_fake_resp *out);

#endif
