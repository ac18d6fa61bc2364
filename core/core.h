/* core: the glue on the loop between an event and its reply — routing,
 * admission, the durable job queue, history, usage, typing (docs/core.md). */
#ifndef PARLEY_CORE_H
#define PARLEY_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/event.h"
#include "storage/store.h"

/* ---- the asker: how core reaches the model (bound to llm/ by bot/) ---- */

/* One prompt message; role "system", "user" or "assistant". */
struct core_msg {
    const char *role;
    const char *text;
};

/* Borrowed for the duration of ask() only. */
struct core_prompt {
    const struct core_msg *msgs; /* system first, the new message last */
    size_t n;
    const char *model;         /* the chat's model, NULL = [llm] models */
    int64_t max_output_tokens; /* [llm] max_output_tokens */
    int64_t estimate;          /* prompt tokens + max_output_tokens */
    int64_t job_id;            /* for logs */
    /* ms since the job row was created (wall clock, >= 0; 0 when the
     * clock went back): give_up_after runs from the job's creation, not
     * from this ask, so a job resumed after a restart is not granted a
     * new give_up_after (SPEC §2, "durably") */
    int64_t age_ms;
    /* Non-NULL: stream.  The asker calls partial(arg, text, len) with the
     * answer so far (the whole text of the current attempt, which a retry
     * restarts), any number of times before done, never after cancel. */
    void (*partial)(void *arg, const char *text, size_t len);
};

/* What the asker reports, exactly once per ask (unless cancelled). */
struct core_answer {
    int ok;
    const char *text;  /* ok: the answer */
    const char *model; /* the [model.NAME] that answered (prices), or NULL */
    int64_t tokens_in, tokens_out; /* reported usage (0 if unknown) */
    const char *error_class;       /* !ok: "server", "timeout", ... */
    const char *error; /* !ok: the cause for the user, e.g. "the model is
                          unavailable (503 from main and backup)" */
    int attempts;      /* HTTP attempts, every model and key (0 = unknown); the
                          retries in `stats` are attempts - 1 - fallbacks */
    int fallbacks;     /* moves from one model to the next (`stats`) */
};

typedef void (*core_ask_done_fn)(void *arg, const struct core_answer *a);

/*
 * ask: start one request; 0 and *handle set, or -1 (core retries later).
 * done(arg, answer) comes exactly once, from a later loop callback, unless
 * cancel(handle) was called first; the answer is borrowed for the call.
 * The asker owns retries, fallback and give_up_after (from p->age_ms ago;
 * an ask with no time left is still tried once); core adds a backstop
 * deadline (give_up_after + timeout + 30 s from the ask) after which it
 * cancels.
 */
struct core_asker {
    void *ctx;
    int (*ask)(void *ctx, const struct core_prompt *p, core_ask_done_fn done,
               void *arg, uint64_t *handle);
    void (*cancel)(void *ctx, uint64_t handle);
};

/* ---- the core ---- */

struct core;

/* Counters since core_new (metrics, tests). */
struct core_stats {
    uint64_t accepted;   /* messages taken (a job row, or refused silently) */
    uint64_t duplicates; /* redeliveries dropped */
    uint64_t ignored;    /* not addressed to us, from bots, invalid */
    uint64_t votes;
    uint64_t unvotes; /* votes withdrawn (a reaction taken back) */
    uint64_t admitted;
    uint64_t limited; /* refused by a limit or a ban */
    uint64_t notices; /* 429 notices queued */
    uint64_t asked;   /* asks started (re-asks after a restart included) */
    uint64_t answered;
    uint64_t ask_failed;
    uint64_t sends;    /* parts handed to connectors */
    uint64_t sent;     /* parts confirmed */
    uint64_t streamed; /* answers delivered by a stream of edits */
    uint64_t commands;
    uint64_t admin_actions; /* admin commands that changed something */
    uint64_t alerts;        /* [feedback] alerts raised */
    size_t inflight;        /* jobs in memory */
    size_t runnable;        /* of them, waiting in the run queue to start */
    size_t limiter_keys;
};

/*
 * Creates the core on loop, with the store (already attached to the loop,
 * store_attach_loop) and the configuration (borrowed: keep it alive until
 * core_configure replaces it or core_free).  Loads the limiter state,
 * overrides and bans, and schedules the resume of every unfinished job;
 * jobs that need a connector wait until it registers.  NULL on failure
 * (logged).
 */
struct core *core_new(uv_loop_t *loop, struct store *st,
                      const struct config *cfg, const struct core_asker *asker);

/* SIGHUP: new limits, admins, prompts, history settings.  Borrowed. */
void core_configure(struct core *c, const struct config *cfg);

/*
 * A connector joins (copied; ops->ctx borrowed).  One per platform; a
 * second registration for the platform replaces the first.  Jobs waiting
 * to be sent on that platform go now.  0, or -1.
 */
int core_register_connector(struct core *c, const struct connector_ops *ops);
/* The connector leaves (stopping): nothing more is sent through it. */
void core_unregister_connector(struct core *c, const char *platform);

/*
 * Many events, one commit: 0 once all of them are durable (or dropped as
 * in core_accept), -1 if the commit failed (acknowledge none of them).
 * For a connector that receives batches (Telegram getUpdates).
 */
int core_accept_batch(struct core *c, const struct event *evs, size_t n);
/*
 * The same, and connector_state (platform, key) = value written after the
 * events in the same transaction: a platform's read position (Telegram's
 * getUpdates offset) is committed with the events, or not at all — one
 * commit per batch instead of two.  value NULL: as core_accept_batch.
 */
int core_accept_batch_kv(struct core *c, const struct event *evs, size_t n,
                         const char *platform, const char *key,
                         const char *value);

/*
 * A chat's id changed (a Telegram group became a supergroup, learned by
 * the connector): what the store keeps under old_chat moves to new_chat
 * (store_chat_migrate) and the override cache is reloaded.  The limiter's
 * in-memory windows are not moved: the new id starts fresh.  Jobs already
 * taken keep the old id (the connector redirects their sends).  0 / -1.
 */
int core_chat_migrate(struct core *c, const char *platform,
                      const char *old_chat, const char *new_chat);

/*
 * SIGTERM: stop taking events (core_accept returns -1), cancel the asks in
 * flight (their jobs stay `asking` and are asked again after a restart),
 * persist the limiter state, commit.  Idempotent.
 */
void core_stop(struct core *c);
/* core_stop, then frees; its handles close on the loop (run it once
 * more).  NULL-safe. */
void core_free(struct core *c);

void core_stats(const struct core *c, struct core_stats *s);

/* Counts into the daemon's registry as it happens: limited requests by
 * scope, feedback votes, and the answer latency histogram.  m is borrowed
 * and must outlive the core; NULL stops counting. */
struct metrics;
void core_set_metrics(struct core *c, struct metrics *m);

/* Tests and the harness: replace the clocks (monotonic and wall, ms). */
typedef void (*core_clock_fn)(void *arg, int64_t *mono_ms, int64_t *wall_ms);
void core_set_clock(struct core *c, core_clock_fn fn, void *arg);
/* Tests: at most max jobs in memory (the rest wait in the database). */
void core_set_inflight_max(struct core *c, size_t max);
/* Persist dirty limiter keys now (also done every second and on stop). */
int core_persist_limiter(struct core *c);
/* Write the pending bot-wide stats counters now (also every second). */
int core_flush_stats(struct core *c);
/* Run the retention purge step now (also every minute).  Rows, or -1. */
long core_purge(struct core *c);

#endif
