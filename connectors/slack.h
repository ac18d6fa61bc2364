/* slack: the Slack connector — Socket Mode in, paced Web API sends out. */
#ifndef PARLEY_SLACK_H
#define PARLEY_SLACK_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/http.h"
#include "core/ws.h"
#include "storage/store.h"

struct core;

/*
 * Glue on core/http.h, core/ws.h, the pure connectors/slack_sm (the
 * connection state machine), slack_codec and slack_format, and the
 * connector contract (core/event.h); docs/slack.md.  Loop thread only.
 *
 * Start: auth.test with the bot token (our user_id and bot_id), then
 * apps.connections.open with the app token and the socket; registers
 * with core once auth.test succeeded.  Every envelope is handed to
 * core_accept and acknowledged only when it returned 0 (durable or
 * deliberately dropped) — in the same loop turn, so well within Slack's
 * 3 s and never after the model.  Reconnects, refreshes and stops follow
 * slack_sm.  A fatal auth error or link_disabled → fatal(fatal_arg, why)
 * once, no reconnect loop (the daemon exits 2).
 *
 * Sends (connector_ops.send): mrkdwn from slack_format, cut at 4000
 * characters (core cuts parts at 4000 bytes; escaping can grow a part, so
 * a part may go out as several messages: the last one's ts is reported),
 * in the thread, a queue per channel paced at channel_send_rate; a 429 or
 * ratelimited waits Retry-After and keeps the message queued; ok:false
 * errors: not_in_channel, is_archived, missing_scope → SEND_FAILED
 * "forbidden"; channel_not_found → "not_found"; msg_too_long →
 * "too_long"; other client errors → "bad_request"; auth errors → fatal
 * and SEND_RETRY (the job waits for the next start); 5xx, network,
 * internal_error → retried here with backoff, then SEND_RETRY.  Answers
 * get +1 and -1 reactions (on their last message), paced on their own
 * queue.
 *
 * Streaming (can_edit): ACTION_EDIT → chat.update with the text formatted
 * as a post's (one message, not cut), ACTION_DELETE → chat.delete, both in
 * the channel's queue under the same channel_send_rate as posts, and on
 * top of it one workspace-wide gate per method (Tier 3, tier3_interval_ms
 * apart); 429s as for posts; message_not_found → SEND_FAILED "not_found"
 * for an edit, SEND_OK for a delete; cant_update_message,
 * edit_window_closed → "forbidden".  An edit with feedback gets the
 * reactions like an answer's last message.  Both report message_id =
 * target_id.
 *
 * Slash commands: the response_url of each (hooks.slack.com or api_base's
 * host only) is remembered in memory for 30 minutes and 5 posts, keyed
 * by (channel, "cmd:<trigger_id>") = the answer's reply_to.  When
 * chat.postMessage refuses the answer (not_in_channel, channel_not_found)
 * it is posted there instead (in_channel, no token) and reported as
 * "resp:<serial>.<n>"; edits of such a message are held and sent final
 * with replace_original; used up or expired → SEND_FAILED "forbidden".
 *
 * Concurrency: each channel has at most one call on the wire, and all
 * channels together (reactions included) at most SLACK_CALLS_INFLIGHT_MAX;
 * the rest wait in their channel queues (pacing, Retry-After and the Tier 3
 * gates unchanged), and a freed slot goes to the channel whose head has
 * waited longest.
 */
struct slack;

/*
 * A call on the wire is a libcurl transfer and an HTTP/1.1 connection
 * (~12 KB), a queued message ~300 bytes and its text: thousands of answers
 * coming back at once to as many channels would otherwise all be on the wire
 * together. 256 sustains 1 post per channel per second to 256 channels up to a
 * 1 s round trip.
 */
#define SLACK_CALLS_INFLIGHT_MAX 256

struct slack *slack_new(uv_loop_t *loop, struct http *http, struct ws_ctx *ws,
                        struct core *core, struct store *st,
                        const struct config *cfg,
                        void (*fatal)(void *arg, const char *why),
                        void *fatal_arg);
/* Begins auth.test → apps.connections.open → socket.  0, or -1. */
int slack_start(struct slack *s);
/* Closes the sockets (unacked envelopes are redelivered to the next
 * start), cancels requests, drops queued sends (their parts stay in their
 * jobs) and unregisters from core.  Idempotent. */
void slack_stop(struct slack *s);
/* slack_stop, then frees; its timers close on the loop (run it once
 * more).  NULL-safe. */
void slack_free(struct slack *s);
/* SIGHUP: the new channel_send_rate (tokens and api_base need a restart). */
void slack_configure(struct slack *s, const struct config *cfg);
/* /healthz: 1 when a socket said hello and the connector is not stopped. */
int slack_is_up(void *slack);

/* Tests: faster timers (0 fields keep the defaults, in parentheses). */
/* Answers that may stream at once (connector_ops.streams_max). */
#define SLACK_STREAMS_MAX 2

struct slack_timing {
    int64_t backoff_min_ms;       /* 1000 */
    int64_t backoff_max_ms;       /* 60000 */
    int64_t hello_timeout_ms;     /* 10000 */
    int64_t ping_interval_ms;     /* 10000 */
    int64_t ping_timeout_ms;      /* 10000 */
    int64_t reaction_interval_ms; /* 1200: reactions.add is Tier 3 */
    int64_t tier3_interval_ms;    /* 1200: chat.update, chat.delete each */
    int64_t resp_ttl_ms;          /* 1800000: a response_url's life (Slack's) */
    int64_t resp_quiet_ms;        /* 3000: a held streamed text goes out */
};
void slack_set_timing(struct slack *s, const struct slack_timing *t);

/* The connector_ops it registers with core (tests drive send directly). */
struct connector_ops;
void slack_connector_ops(struct slack *s, struct connector_ops *ops);
/* Tests: fn also hears every send outcome reported to core (after core). */
struct send_result;
void slack_set_send_observer(struct slack *s,
                             void (*fn)(void *arg, uint64_t send_id,
                                        const struct send_result *r),
                             void *arg);

/* For /healthz and /metrics. */
struct slack_status {
    int up;
    char reason[160];  /* when down: "starting", "link_disabled: …" */
    const char *state; /* slack_sm state name */
    char user_id[65], bot_id[65];
    uint64_t connects, hellos, envelopes, acks, not_acked, duplicates, ignored,
        accepted, sends, sent, send_errors, retries_429, reactions, edits,
        deletes, responses;    /* responses: posts taken by a response_url */
    int64_t ack_max_ms;        /* envelope in → ack queued, slowest */
    size_t queued;             /* messages waiting in the channel queues */
    size_t sends_inflight;     /* Web API calls on the wire (not setup) */
    size_t sends_inflight_max; /* high-water mark */
};
void slack_status(const struct slack *s, struct slack_status *out);

#endif
