/* store: parley's SQLite database (WAL, migrations, grouped writes). */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct uv_loop_s; /* uv_loop_t, without making every caller include uv.h */

/*
 * Opening.  store_open() sets WAL, busy_timeout 5000 ms, foreign_keys on,
 * synchronous NORMAL, then applies every missing migration (each in its
 * own transaction).  On failure it returns NULL and writes one line into
 * err, e.g. "parley.db: schema version 9 is newer than this parley knows
 * (2)": the caller (bot/) exits 2.  A database with a newer schema, or
 * another program's database (application_id), is refused untouched.
 */
struct store *store_open(const char *path, char *err, size_t errlen);

/*
 * As store_open(), but migrates only up to `version` (0..latest): tests
 * build a database at every earlier version with it, then reopen it with
 * store_open() to check the upgrade path.  Not for production use.
 */
struct store *store_open_at_version(const char *path, int version, char *err,
                                    size_t errlen);

/* Commits pending writes, closes the loop hooks and the db.  NULL-safe. */
void store_close(struct store *st);

int store_schema_version(struct store *st); /* -1 on error */
int store_latest_version(void);

/*
 * Grouped writes.  Every write function starts with store_write_begin(),
 * which opens a transaction (BEGIN IMMEDIATE) unless one is open; the
 * loop commits once per turn through store_attach_loop()'s hooks, so a
 * burst of writes costs one commit.  A write transaction never spans a
 * blocking poll.  Reads on the same store see the pending writes.
 *
 * Durability points (a job row before the platform ack, SPEC §8) call
 * store_sync() right after their writes and ack only on 0: it commits now,
 * and returns -1 if the commit failed or if SQLite rolled back a group of
 * this turn (disk full, I/O error), i.e. a write that returned 0 may be
 * gone.  store_flush() ends a group: it commits and reports (then clears)
 * such a loss; the loop hooks call it, a program without a loop
 * (parleyctl) calls it after its writes.  A committed transaction
 * survives kill -9; with synchronous=NORMAL the last ones may be lost on
 * power failure (docs/storage.md).
 */
int store_write_begin(struct store *st);
int store_flush(struct store *st); /* COMMIT if a write is pending; 0/-1 */
int store_sync(struct store *st);  /* commit now; 0 committed, -1 */

/*
 * Installs a uv_prepare_t (before the loop may block in poll) and a
 * uv_check_t (after the I/O callbacks) that both call store_flush().  The
 * handles are unreferenced (the store never keeps the loop alive);
 * store_close() closes them, and the loop must run once more afterwards
 * to release them, as for any libuv handle.  Once per store.
 */
int store_attach_loop(struct store *st, struct uv_loop_s *loop);

/*
 * 1 when the db takes writes: not read-only and the last commit or write
 * did not fail with an I/O-class error.  No I/O (for /healthz).
 */
int store_writable(struct store *st);

/* Transactions committed so far by this store (metrics, tests). */
uint64_t store_commits(struct store *st);

/*
 * connector_state: small per-platform values (Telegram offset, Discord
 * session).  get: 1 found (copied into buf), 0 missing, -1 error
 * (including a value longer than buflen - 1).
 */
int store_kv_get(struct store *st, const char *platform, const char *key,
                 char *buf, size_t buflen);
int store_kv_set(struct store *st, const char *platform, const char *key,
                 const char *value);
int store_kv_del(struct store *st, const char *platform, const char *key);

/* The audit log (SPEC §7).  platform, target and detail may be NULL. */
int store_audit_add(struct store *st, int64_t ts_ms, const char *platform,
                    const char *actor, const char *action, const char *target,
                    const char *detail);
/* The newest `limit` audit rows (0 = all), oldest first.  Rows, or -1. */
typedef int (*store_audit_fn)(void *arg, int64_t id, int64_t ts_ms,
                              const char *platform, const char *actor,
                              const char *action, const char *target,
                              const char *detail);
long store_audit_list(struct store *st, int limit, store_audit_fn fn,
                      void *arg);

/* ---- the durable job queue (docs/core.md, docs/storage.md "jobs") ---- */

#define STORE_ID_MAX 64       /* platform ids, as EVENT_ID_MAX */
#define STORE_PLATFORM_MAX 16 /* as EVENT_PLATFORM_MAX */
#define STORE_NAME_MAX 128    /* display names */
#define STORE_CLASS_MAX 32    /* error_class */

enum store_job_state {
    STORE_JOB_RECEIVED = 0,
    STORE_JOB_LIMITED,
    STORE_JOB_QUEUED,
    STORE_JOB_ASKING,
    STORE_JOB_ANSWERED,
    STORE_JOB_SENT,
    STORE_JOB_FAILED,
};

/* One jobs row.  text and answer are heap strings owned by the struct
 * (store_job_release frees them); answer NULL = none yet. */
struct store_job {
    int64_t id;
    char platform[STORE_PLATFORM_MAX + 1];
    char chat[STORE_ID_MAX + 1];
    char thread[STORE_ID_MAX + 1];
    char user[STORE_ID_MAX + 1];
    char user_name[STORE_NAME_MAX + 1];
    char message_id[STORE_ID_MAX + 1];
    char *text;
    unsigned flags;
    enum store_job_state state;
    int attempts;
    int64_t next_at_ms;
    char *answer;
    int64_t answer_id; /* 0 = none */
    int sent_parts;
    char error_class[STORE_CLASS_MAX + 1]; /* "" = none */
    int64_t reserved;
    int64_t created_ms;
    char reply_to[STORE_ID_MAX + 1];      /* message replied to, "" = none */
    char reply_to_user[STORE_ID_MAX + 1]; /* its author if known, else "" */
};

const char *store_job_state_name(enum store_job_state s);
void store_job_release(struct store_job *j); /* frees text, answer */

/*
 * Inserts a job (state, text, flags, ids, created_ms, and answer,
 * error_class and reserved from *j: core writes a row already admitted
 * in one statement) unless one with the same (platform, chat,
 * message_id) exists.  Returns 1 inserted (*id set), 0 a duplicate
 * (nothing written), -1 error.
 */
int store_job_insert(struct store *st, const struct store_job *j, int64_t *id);
/* 1 if a job (platform, chat, message_id) exists (pending writes
 * included), 0 if not, -1 error.  One index probe, no write. */
int store_job_exists(struct store *st, const char *platform, const char *chat,
                     const char *message_id);
/* Writes the mutable fields of job j->id: state, attempts, next_at_ms,
 * answer, answer_id, sent_parts, error_class, reserved; updated_ms = now. */
int store_job_save(struct store *st, const struct store_job *j, int64_t now_ms);
/* Reads job id into *j (zeroed first).  1 found, 0 missing, -1 error. */
int store_job_get(struct store *st, int64_t id, struct store_job *j);
/*
 * Unfinished jobs (received, queued, asking, answered, and limited jobs
 * whose notice is not sent yet) with id > after_id, in id order, at most
 * limit: fn gets each (borrowed for the call); a nonzero return stops.
 * Returns the rows visited, or -1.
 */
typedef int (*store_job_fn)(void *arg, const struct store_job *j);
int store_job_scan(struct store *st, int64_t after_id, int limit,
                   store_job_fn fn, void *arg);
/* How many unfinished jobs there are (tests, metrics). */
long store_jobs_unfinished(struct store *st);
/* Deletes at most limit finished jobs (sent, failed, limited without a
 * pending notice) last updated before before_ms.  Returns rows deleted. */
long store_jobs_purge(struct store *st, int64_t before_ms, int limit);

/* ---- history ---- */

/* The conversation (platform, chat, thread) — created if missing. */
int store_conversation_id(struct store *st, const char *platform,
                          const char *chat, const char *thread, int64_t now_ms,
                          int64_t *id);
/* role "user"/"assistant"; user_id NULL for the bot.  *id may be NULL. */
int store_message_add(struct store *st, int64_t conversation_id,
                      const char *role, const char *user_id,
                      const char *platform_msg_id, const char *text,
                      int64_t tokens, int64_t now_ms, int64_t *id);
/* The newest `limit` messages, newest first.  Returns rows, or -1. */
typedef int (*store_message_fn)(void *arg, const char *role, const char *text,
                                int64_t tokens);
int store_history_load(struct store *st, int64_t conversation_id, int limit,
                       store_message_fn fn, void *arg);
/* `reset`: the conversation's messages go (its answers stay, for stats). */
int store_history_reset(struct store *st, const char *platform,
                        const char *chat, const char *thread);
/*
 * `forget`: every row holding the user's id on that platform: their
 * messages and the answers to them (with the bot's history messages of
 * those answers, the sent-message map and votes), their votes, their
 * usage, their per-user overrides and expired bans, their limiter rows,
 * their finished jobs and finished command jobs naming them; in the
 * audit log and in set_by/banned_by the id becomes "forgotten".  A
 * ban still in force stays (forget is no way around a ban: a banned
 * user's commands are refused anyway).  Unfinished jobs stay (they are
 * in flight).  The chat whose id is the user's id (a Telegram DM) is
 * forgotten too (store_forget_chat).
 */
int store_forget_user(struct store *st, const char *platform, const char *user);
/*
 * `forget` of a private chat (a Telegram DM's chat id is the user's id):
 * its conversations (messages, answers, votes), chat usage, overrides,
 * settings, limiter rows and finished jobs.
 */
int store_forget_chat(struct store *st, const char *platform, const char *chat);
/*
 * A chat's id changed (a Telegram group became a supergroup): its
 * conversations (history, answers), per-chat usage and overrides and its
 * model/persona move to new_chat, merging with what new_chat already has
 * (the new id's overrides and settings win, usage adds up); the old chats
 * row stays, inactive, with migrated_to = new_chat, and votes from
 * new_chat on messages recorded under the old id find their answer.
 * jobs, sent_messages and limiter rows stay (store.c says why).  All or
 * nothing, idempotent.  0 / -1.
 */
int store_chat_migrate(struct store *st, const char *platform,
                       const char *old_chat, const char *new_chat,
                       int64_t now_ms);
/* Deletes one job row (a finished `forget` leaves no trace).  0 / -1. */
int store_job_delete(struct store *st, int64_t id);
/*
 * Retention: at most limit rows per table older than before_ms: history
 * messages, answers (with their sent-message map and votes), votes, and
 * per-user and per-chat usage days.  The audit log and the bot-wide
 * stats hold no conversation and are kept.  Returns rows deleted, or -1.
 */
long store_purge_before(struct store *st, int64_t before_ms, int limit);

/* Deletes up to limit limiter_state rows last written before before_ms
 * (keys whose every window has passed): rows deleted, or -1. */
long store_limiter_purge(struct store *st, int64_t before_ms, int limit);
/*
 * Who wrote message_id in (platform, chat): the jobs (messages addressed
 * to us, two days) first, then the history.  1 found (copied into user),
 * 0 unknown, -1 error.  For WHO given as a reply.
 */
int store_message_author(struct store *st, const char *platform,
                         const char *chat, const char *message_id, char *user,
                         size_t len);
/*
 * `history purge`: the history messages of one user (and the bot's
 * replies to them), or of everyone on every platform when platform and
 * user are NULL.  Answers rows stay (stats, feedback).  Rows, or -1.
 */
long store_history_purge(struct store *st, const char *platform,
                         const char *user);

/* One history message, for `history export` (borrowed for the call). */
struct store_history_row {
    int64_t id;
    const char *platform, *chat, *thread;
    const char *role;
    const char *user_id; /* NULL for the bot */
    const char *text;
    int64_t tokens;
    int64_t created_ms;
};
typedef int (*store_history_row_fn)(void *arg,
                                    const struct store_history_row *r);
/* Every history message (platform and user NULL), or one user's and the
 * bot's replies to them, in id order.  Rows, or -1. */
long store_history_export(struct store *st, const char *platform,
                          const char *user, store_history_row_fn fn, void *arg);

/* ---- answers, feedback, usage ---- */

int store_answer_add(struct store *st, int64_t conversation_id,
                     int64_t message_id, const char *platform,
                     const char *user_id, const char *model, int64_t tokens_in,
                     int64_t tokens_out, int64_t cost_micro_usd,
                     int64_t latency_ms, int64_t now_ms, int64_t *id);
/* A platform message an answer was sent as (one per split part). */
int store_sent_add(struct store *st, const char *platform, const char *chat,
                   const char *platform_msg_id, int64_t answer_id, int part,
                   int64_t now_ms);
/* A vote on one of our platform messages: +1/-1 upserts (last vote wins).
 * 1 stored, 0 not one of our answers, -1 error. */
int store_feedback_vote(struct store *st, const char *platform,
                        const char *chat, const char *platform_msg_id,
                        const char *user_id, int vote, int64_t now_ms);
/* A reaction taken back: the user's vote on that answer goes if it is
 * still `vote` (+1/-1; a 👍 taken back after a 👎 leaves the 👎).  1
 * removed, 0 nothing to remove or not ours, -1 error. */
int store_feedback_unvote(struct store *st, const char *platform,
                          const char *chat, const char *platform_msg_id,
                          const char *user_id, int vote);
/* Adds to the daily counters of (scope "user"|"chat", platform, target,
 * day = now_ms / 86400000). */
int store_usage_add(struct store *st, const char *scope, const char *platform,
                    const char *target, int64_t now_ms, int64_t requests,
                    int64_t limited, int64_t tokens_in, int64_t tokens_out,
                    int64_t cost_micro_usd);
/* Reads one day's counters; absent = zeros.  0 ok, -1 error. */
struct store_usage {
    int64_t requests, limited, tokens_in, tokens_out, cost_micro_usd;
};
int store_usage_get(struct store *st, const char *scope, const char *platform,
                    const char *target, int64_t now_ms, struct store_usage *u);
/* The sum over the days [from_day, to_day] (day = unix_ms / 86400000). */
int store_usage_sum(struct store *st, const char *scope, const char *platform,
                    const char *target, int64_t from_day, int64_t to_day,
                    struct store_usage *u);
/* Usage rows of one scope ("user"/"chat"), of one target or all (platform
 * and target NULL), days >= from_day, newest day first.  Rows, or -1. */
typedef int (*store_usage_fn)(void *arg, const char *scope,
                              const char *platform, const char *target,
                              int64_t day, const struct store_usage *u);
long store_usage_list(struct store *st, const char *scope, const char *platform,
                      const char *target, int64_t from_day, store_usage_fn fn,
                      void *arg);

/* One vote with its answer, for `feedback export` (borrowed). */
struct store_feedback_row {
    int64_t answer_id;
    const char *platform, *chat, *thread;
    const char *user_id; /* who voted */
    int vote;            /* +1 / -1 */
    int64_t updated_ms;
    const char *model;
    const char *asker;    /* who asked */
    const char *question; /* NULL when the history is gone (reset, purge) */
    const char *answer;   /* NULL likewise */
};
typedef int (*store_feedback_fn)(void *arg, const struct store_feedback_row *r);
/* Votes last changed at or after since_ms, oldest first.  Rows, or -1. */
long store_feedback_export(struct store *st, int64_t since_ms,
                           store_feedback_fn fn, void *arg);
/* The newest `window` votes: *n of them, *down of them 👎 ([feedback]
 * alert).  0 / -1. */
int store_feedback_recent(struct store *st, int window, int64_t *n,
                          int64_t *down);

/* ---- bot-wide stats (`stats`, migration 4) ---- */

struct store_counters {
    int64_t requests, answers, limited, errors, retries, fallbacks;
    int64_t tokens_in, tokens_out, cost_micro_usd, commands;
};
/* Adds c to the day of now_ms. */
int store_stats_add(struct store *st, int64_t now_ms,
                    const struct store_counters *c);
/* Latency histogram: bucket of a latency, and a bucket's upper bound (a
 * percentile is reported as that bound: never lower than the truth). */
#define STORE_LATENCY_BUCKETS 256
int store_latency_bucket(int64_t ms);
int64_t store_latency_upper(int bucket);
int store_latency_add(struct store *st, int64_t now_ms, int bucket, int64_t n);

struct store_stats {
    struct store_counters week;   /* the last 7 UTC days, today included */
    struct store_counters total;  /* every day stored */
    int64_t first_day;            /* of the stats rows, -1 if none */
    int64_t votes_up, votes_down; /* votes changed in the last 7 days */
    int64_t latency_n;            /* answers in the histogram, 7 days */
    int64_t latency_p50_ms, latency_p95_ms; /* -1 without answers */
};
int store_stats_read(struct store *st, int64_t now_ms, struct store_stats *s);

/* ---- overrides, bans, chat settings (written by parleyctl / commands) ---- */

/* PRAGMA data_version: changes when another connection commits, so one
 * cheap read a second tells core to reload its caches.  -1 on error. */
int64_t store_data_version(struct store *st);
typedef int (*store_override_fn)(void *arg, const char *scope,
                                 const char *platform, const char *target,
                                 const char *kind, int64_t rate_n,
                                 int64_t window_ms);
int store_overrides_load(struct store *st, store_override_fn fn, void *arg);
/* window_ms 0 = off.  set_by "" if unknown. */
int store_override_set(struct store *st, const char *scope,
                       const char *platform, const char *target,
                       const char *kind, int64_t rate_n, int64_t window_ms,
                       const char *set_by, int64_t now_ms);
int store_override_del(struct store *st, const char *scope,
                       const char *platform, const char *target,
                       const char *kind);
/* until_ms: INT64_MAX for "until unban". */
typedef int (*store_ban_fn)(void *arg, const char *platform, const char *user,
                            int64_t until_ms);
int store_bans_load(struct store *st, store_ban_fn fn, void *arg);
/* until_ms 0 = until unban. */
int store_ban_set(struct store *st, const char *platform, const char *user,
                  int64_t until_ms, const char *banned_by, int64_t now_ms);
int store_ban_del(struct store *st, const char *platform, const char *user);
/* The chat's model and persona, heap strings or NULL (= the config's).
 * 1 a row exists, 0 none, -1 error. */
int store_chat_settings(struct store *st, const char *platform,
                        const char *chat, char **model, char **persona);
/* Sets the chat's model or persona (which: "model" / "persona"); value
 * NULL = back to the config's.  0 / -1. */
int store_chat_set(struct store *st, const char *platform, const char *chat,
                   const char *which, const char *value, int64_t now_ms);
/* Every chats row with a model or persona, for `parleyctl limits`. */
typedef int (*store_chat_fn)(void *arg, const char *platform, const char *chat,
                             const char *model, const char *persona);
int store_chats_load(struct store *st, store_chat_fn fn, void *arg);

/* ---- limiter state (core/ratelimit blobs, docs/core.md) ---- */

int store_limiter_save(struct store *st, const char *key, const void *blob,
                       size_t len, int64_t now_ms);
typedef int (*store_limiter_fn)(void *arg, const char *key, const void *blob,
                                size_t len, int64_t updated_ms);
int store_limiter_load(struct store *st, store_limiter_fn fn, void *arg);

#endif
