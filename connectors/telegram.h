/* telegram: the Telegram connector — long polling in, paced sends out. */
#ifndef PARLEY_TELEGRAM_H
#define PARLEY_TELEGRAM_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/http.h"
#include "storage/store.h"

struct core;

/*
 * Glue on core/http.h and the connector contract (core/event.h);
 * docs/telegram.md.  Not thread-safe: loop thread only.
 *
 * Start: getMe (our id and username, for mentions and commands), then
 * deleteWebhook, then getUpdates long polling with the offset from
 * connector_state ('telegram', 'offset').  The offset is committed only
 * after core_accept_batch returned 0 for the whole batch.
 *
 * Failures: 401/404 from any call → fatal(fatal_arg, why) once, and the
 * connector stops (the daemon exits 2); 409 → warning and 3–30 s backoff;
 * 429 → its retry_after; 5xx, network, timeouts, unreadable replies →
 * exponential backoff 1 s .. 60 s.
 *
 * Sends (connector_ops.send): a queue per chat, paced under
 * chat/group/global_send_rate; a 429 blocks only that chat, exactly
 * retry_after; migrate_to_chat_id → resent to the new id (remembered);
 * 403 → SEND_FAILED "forbidden" for it and every queued send of the chat,
 * the chat marked inactive; 400 "can't parse entities" → resent as plain
 * text; other 4xx → SEND_FAILED "bad_request"; 5xx/network → retried with
 * backoff, never dropped.
 *
 * Edits and deletes (streaming, connector_ops.can_edit): editMessageText
 * and deleteMessage wait in the same per-chat queue and take the same
 * pacer slots as sends, with the same 429 / migrate / 403 / plain-text
 * handling.  "Message is not modified" → SEND_OK; an edit of a message
 * that is gone → SEND_FAILED "not_found"; a delete of one → SEND_OK.
 *
 * Concurrency: at most TELEGRAM_SENDS_INFLIGHT_MAX sends (over all chats)
 * and TELEGRAM_MISC_INFLIGHT_MAX other calls (typing, callback answers)
 * are on the wire at once; the rest wait in memory, sends in their chat
 * queues (served round robin, as the slots free), the other calls in one
 * FIFO of at most TELEGRAM_MISC_QUEUE_MAX.  A queued typing action that
 * waited longer than its refresh interval, or whose chat already has an
 * answer queued or in flight, is dropped (counted in typing_skipped).
 */
struct telegram;

/*
 * Telegram takes about 30 messages per second in all, so more sends on
 * the wire only cost memory: each is a libcurl transfer and an HTTP/1.1
 * connection (~12 KB), where a queued one is ~100 bytes.  256 (3 MB at
 * most) keeps a burst's answers flowing when send pacing is off, as in
 * the benchmarks: with 64, normal users' answers waited up to 370-630 ms
 * behind a flood's (bench_e2e d), with 256 up to 100-170 ms, like with
 * no cap (67-139 ms).
 */
#define TELEGRAM_SENDS_INFLIGHT_MAX 256
#define TELEGRAM_MISC_INFLIGHT_MAX 32
#define TELEGRAM_MISC_QUEUE_MAX 20000

struct telegram *telegram_new(uv_loop_t *loop, struct http *http,
                              struct core *core, struct store *st,
                              const struct config *cfg,
                              void (*fatal)(void *arg, const char *why),
                              void *fatal_arg);
/* Begins getMe → deleteWebhook → polling; registers with core once getMe
 * succeeded.  0, or -1 (logged). */
int telegram_start(struct telegram *t);
/* Stops polling and sending, cancels requests in flight, unregisters from
 * core (unsent parts stay in their jobs for the next start).  Idempotent. */
void telegram_stop(struct telegram *t);
/* telegram_stop, then frees; its timers close on the loop (run it once
 * more).  NULL-safe. */
void telegram_free(struct telegram *t);
/* SIGHUP: new send rates (the token and api_base need a restart). */
void telegram_configure(struct telegram *t, const struct config *cfg);

/* For /healthz and /metrics. */
struct telegram_status {
    int up;            /* the last getUpdates succeeded */
    char reason[160];  /* when down: "starting", "409 conflict", ... */
    char username[65]; /* from getMe, "" before */
    int64_t offset;    /* committed */
    uint64_t polls, updates, events, sends, sent, send_errors, retries_429,
        fallbacks_plain, migrations, callbacks;
    uint64_t edits, deletes; /* of sent: editMessageText, deleteMessage */
    size_t queued;           /* sends waiting in the chat queues */
    size_t sends_inflight;   /* sends on the wire */
    size_t misc_inflight, misc_queued;            /* typing, callback answers */
    size_t sends_inflight_max, misc_inflight_max; /* high-water marks */
    uint64_t typing_skipped; /* stale or superseded by the answer */
    uint64_t misc_dropped;   /* the misc queue was full */
};
void telegram_status(const struct telegram *t, struct telegram_status *s);

#endif
