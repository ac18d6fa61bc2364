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

#endif
