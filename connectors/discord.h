/* discord: the Discord connector — gateway in, REST replies out. */
#ifndef PARLEY_DISCORD_H
#define PARLEY_DISCORD_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/http.h"
#include "core/ws.h"
#include "core/event.h"
#include "storage/store.h"

struct core;

/*
 * Glue on core/http.h, core/ws.h, the pure gateway machine
 * (connectors/discord_gw.h), the codec and the REST buckets, and the
 * connector contract (core/event.h); docs/discord.md.  Loop thread only.
 *
 * Start: the saved session ('discord': session_id, resume_url, seq) is
 * restored, GET {api_base}/gateway/bot, then the gateway (RESUME when a
 * session was saved, else IDENTIFY).  MESSAGE_CREATE and our answers'
 * 👍/👎 reactions go to core_accept (the gateway has no ack: duplicates
 * are core's to drop); an event core cannot make durable makes the
 * connector resume from the sequence before it, so Discord replays it.
 *
 * Failures: 401 from /gateway/bot or a fatal close (4004, 4010–4014) →
 * fatal(fatal_arg, why) once, the connector stops and discord_is_up says
 * 0 (the daemon exits 2 or serves /healthz 503).
 *
 * Sends: a queue; each POST /channels/{id}/messages waits for its bucket
 * (connectors/discord_rest.h), replies to the user's message, carries a
 * nonce derived from action.idem_key with enforce_nonce, and
 * allowed_mentions parse:[].  429s and 5xx are retried (delayed, never
 * dropped); 403/404 → SEND_FAILED.  Answers with feedback get 👍 and 👎
 * reactions from the bot.  Typing: POST /channels/{id}/typing, every 8 s
 * while core waits for the model.
 *
 * User DMs: a chat "@<user id>" (core's alerts to admins) is that user's
 * DM: before the first send POST /users/@me/channels opens it, through
 * the same queue, caps, buckets and 429/5xx handling as the send; the
 * channel is kept in memory and in connector_state ('discord',
 * "dm:<user>"); a refusal (403 50007) fails the send like any 403.
 *
 * Streaming (can_edit): ACTION_EDIT is PATCH /channels/{c}/messages/{m}
 * {content, allowed_mentions parse:[]} and ACTION_DELETE is DELETE of the
 * same path, queued with the sends and paced by the same buckets (Discord
 * gives each its own route bucket per channel) and the global limit; 429
 * and 5xx as for sends.  An edit with feedback gets the 👍/👎; 404 on an
 * edit → SEND_FAILED "not_found"; a delete of a message already gone
 * (10008) → SEND_OK.  send_done reports message_id = target_id.
 *
 * Concurrency: at most DISCORD_SENDS_INFLIGHT_MAX sends (creates, edits,
 * deletes) and DISCORD_MISC_INFLIGHT_MAX other calls (typing, reactions)
 * are on the wire at once; the rest wait in the queue, in order, with the
 * buckets, the global limit and 429 handling unchanged.  A typing
 * indicator that waited for a slot is dropped (typing_skipped) when it is
 * older than the typing interval or a send to its channel is queued.
 *
 * Slash commands (docs/discord.md "Slash commands"): after the first
 * READY or RESUMED, PUT /applications/{id}/commands registers /parley
 * (once per process, best effort).  INTERACTION_CREATE of /parley is an
 * event with message id "ia:<interaction id>"; once core_accept made it
 * durable, POST /interactions/{id}/{token}/callback {type 5} defers it;
 * answers to "ia:…" edit @original (part 0) or are follow-ups through
 * the interaction's webhook while its token lives (in memory only, 15
 * minutes), else ordinary messages in the channel.
 *
 * Stop: closes the gateway with 4000 (resumable) and saves the session.
 */
struct discord;

/*
 * The global limit (DISCORD_REST_GLOBAL_N a second) already bounds what
 * goes out to 50 × the round trip in seconds; the caps bound it when
 * Discord answers slowly (up to DC_REST_TIMEOUT, 30 s: 1,500 transfers of
 * ~12 KB each).  256 sustains the 50/s up to a 5 s round trip; reactions
 * are two per answer, and typing best effort.
 */
#define DISCORD_SENDS_INFLIGHT_MAX 256
#define DISCORD_MISC_INFLIGHT_MAX 64

struct discord *discord_new(uv_loop_t *loop, struct http *http,
                            struct ws_ctx *ws, struct core *core,
                            struct store *st, const struct config *cfg,
                            void (*fatal)(void *arg, const char *why),
                            void *fatal_arg);
/* Begins /gateway/bot → gateway; registers with core.  0, or -1 (logged). */
int discord_start(struct discord *d);
/* Closes the gateway resumably, saves the session, cancels requests,
 * unregisters from core (unsent parts stay in their jobs).  Idempotent. */
void discord_stop(struct discord *d);
/*
 * discord_stop, then frees; its handles close on the loop (run it once
 * more).  NULL-safe.  A gateway close still under way is abandoned to
 * core/ws (ws_abandon): it completes without us.  For the close frame to
 * go out at all, run the loop between discord_stop and ws_ctx_free (a
 * few ms; discord_status says !connected when it is done) — otherwise
 * Discord sees 1006, which keeps the session resumable all the same.
 */
void discord_free(struct discord *d);

/* /healthz: 1 while the gateway session is READY (void * for a table of
 * health callbacks). */
int discord_is_up(void *discord);

/* Tests and /metrics. */
struct discord_status {
    int up;
    int connected;    /* a gateway connection exists (also while closing) */
    char reason[160]; /* when down */
    char self_id[32];
    uint64_t events, votes, accept_failures, sends, sent, send_errors,
        retries_429, reactions, typing, identifies, resumes, heartbeats,
        zombies, edits, deletes;
    size_t queued;
    size_t sends_inflight, misc_inflight;         /* on the wire */
    size_t sends_inflight_max, misc_inflight_max; /* high-water marks */
    uint64_t typing_skipped; /* waited for a slot: stale or superseded */
    uint64_t dms_opened;     /* POST /users/@me/channels that gave a DM */
    /* slash commands: /parley interactions accepted (redeliveries too),
     * deferred acknowledgements taken and refused, answers through the
     * interaction's webhook, sends that fell back to the channel (token
     * expired or unknown), 1 once PUT …/commands succeeded */
    uint64_t interactions, ia_acks, ia_ack_failed, ia_answers, ia_fallbacks;
    int commands_registered;
};
void discord_status(const struct discord *d, struct discord_status *s);

/* Tests: drive the connector as core would (connector_ops.send), and see
 * every send outcome before it goes on to core_send_done (which ignores
 * send ids it does not know). */
int discord_send(struct discord *d, const struct action *a);
void discord_set_send_tap(struct discord *d,
                          void (*tap)(void *arg, uint64_t send_id,
                                      const struct send_result *r),
                          void *arg);

/* Tests: override the gateway send budget and the typing interval (0 =
 * defaults).  Call before discord_start. */
void discord_set_limits(struct discord *d, int gw_send_limit,
                        int64_t gw_send_window_ms, int64_t typing_ms);
/* Tests: how long an interaction's token is used (0 = the default, 15
 * minutes less 30 s); after it, answers go to the channel. */
void discord_set_interaction_ttl(struct discord *d, int64_t ms);
/* Tests: lower the caps on calls on the wire (0 = the defaults). */
void discord_set_inflight_max(struct discord *d, size_t sends, size_t misc);

#endif
