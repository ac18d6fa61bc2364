/* store: parley's SQLite database (WAL, migrations, grouped writes). */
#include "store.h"

#include "core/log.h"
#include "schema.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define STORE_BUSY_TIMEOUT_MS 5000
/* bounds the -wal file left behind after a checkpoint */
#define STORE_JOURNAL_SIZE_LIMIT (64 * 1024 * 1024)
/*
 * WAL pages between automatic checkpoints (SQLite's default is 1000).  A
 * checkpoint copies each page once however often it was committed since
 * the last one, and fsyncs: under a burst every commit rewrites the same
 * hot pages (the job table's tail, its append-only indexes), so a longer
 * interval writes less.  Each one also ends on the loop (ckpt_tail: the
 * tail's copy and two fsyncs, then the WAL header's fsync when the next
 * commit rewinds it, ~1-4 ms in all): at 1000 msg/s in small groups a
 * message writes ~17 WAL pages, so 4000 pages meant four such stalls a
 * second, enough to be the p99 of bench_e2e's latency.  64 MB of WAL at
 * most (journal_size_limit trims what a rewind leaves beyond it).
 */
#ifndef STORE_WAL_CHECKPOINT_PAGES
#define STORE_WAL_CHECKPOINT_PAGES 16000
#endif
/*
 * The loop connection's page cache, KiB (SQLite's default is 2000).  The
 * jobs table's unique key and jobs_user take one random leaf page per
 * chat / user: past ~2 MB every intake probe and insert read its page
 * back from the WAL or the file (pread).  Grown only as pages are used.
 */
#define STORE_CACHE_KIB 16384
/* WAL pages past a threadpool checkpoint that the loop copies itself */
#define STORE_CKPT_TAIL_MAX 64

/* a usage row that exists already gets the counts added (store_usage_add,
 * store_chat_migrate) */
#define USAGE_ADD_ON_CONFLICT                                                  \
    " ON CONFLICT (scope, platform, target, day) DO UPDATE SET"                \
    " requests = requests + excluded.requests,"                                \
    " limited = limited + excluded.limited,"                                   \
    " tokens_in = tokens_in + excluded.tokens_in,"                             \
    " tokens_out = tokens_out + excluded.tokens_out,"                          \
    " cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd"

/*
 * The statement cache: one slot per statement, prepared on first use with
 * SQLITE_PREPARE_PERSISTENT, reset (and its bindings cleared, so no
 * pointer into a caller's buffer outlives the call) after each use.  A
 * new query is a new enum value plus its SQL below.
 */
enum store_stmt {
    STMT_BEGIN,
    STMT_BEGIN_READ,
    STMT_WRITE_LOCK,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_KV_GET,
    STMT_KV_SET,
    STMT_KV_DEL,
    STMT_AUDIT_ADD,
    STMT_JOB_INSERT,
    STMT_JOB_EXISTS,
    STMT_JOB_SAVE,
    STMT_JOB_GET,
    STMT_JOB_SCAN,
    STMT_JOB_UNFINISHED,
    STMT_JOB_PURGE,
    STMT_CONV_INSERT,
    STMT_CONV_GET,
    STMT_MSG_ADD,
    STMT_HISTORY,
    STMT_RESET,
    STMT_ANSWER_ADD,
    STMT_SENT_ADD,
    STMT_SENT_FIND,
    STMT_VOTE_SET,
    STMT_VOTE_DEL,
    STMT_USAGE_ADD,
    STMT_USAGE_GET,
    STMT_DATA_VERSION,
    STMT_OVERRIDES,
    STMT_OVERRIDE_SET,
    STMT_OVERRIDE_DEL,
    STMT_BANS,
    STMT_BAN_SET,
    STMT_BAN_DEL,
    STMT_CHAT_GET,
    STMT_LIMITER_SAVE,
    STMT_LIMITER_LOAD,
    STMT_N
};

#define JOB_COLS                                                               \
    "id, platform, chat_id, thread_id, user_id, user_name, message_id, text,"  \
    " flags, state, attempts, next_at_ms, answer, answer_id, sent_parts,"      \
    " error_class, reserved, created_ms, reply_to, reply_to_user"
/* "unfinished": what a restart must resume (docs/core.md) */
#define JOB_UNFINISHED                                                         \
    "(state IN ('received', 'queued', 'asking', 'answered')"                   \
    " OR (state = 'limited' AND answer IS NOT NULL))"
/*
 * The states jobs_user indexes (migrations 5, 6): a query must name them
 * in these words for SQLite to use that partial index.  ORs, not IN: an
 * IN list of three or more is an ephemeral table built per execution,
 * and the index predicate is evaluated on every job insert.  `limited`
 * rows are found through jobs_state_next.
 */
#define JOB_USER_INDEXED "(state = 'sent' OR state = 'failed')"

static const char *const stmt_sql[STMT_N] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_BEGIN_READ] = "BEGIN DEFERRED",
    /* writes nothing, but takes the write lock like any write */
    [STMT_WRITE_LOCK] = "DELETE FROM connector_state WHERE 0",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_KV_GET] = "SELECT value FROM connector_state"
                    " WHERE platform = ?1 AND key = ?2",
    [STMT_KV_SET] = "INSERT INTO connector_state"
                    " (platform, key, value, updated_ms)"
                    " VALUES (?1, ?2, ?3, ?4)"
                    " ON CONFLICT (platform, key) DO UPDATE"
                    " SET value = excluded.value,"
                    " updated_ms = excluded.updated_ms",
    [STMT_KV_DEL] = "DELETE FROM connector_state"
                    " WHERE platform = ?1 AND key = ?2",
    [STMT_AUDIT_ADD] = "INSERT INTO audit"
                       " (ts_ms, platform, actor, action, target, detail)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_JOB_INSERT] =
        "INSERT INTO jobs (platform, chat_id, thread_id, user_id, user_name,"
        " message_id, text, flags, state, created_ms, updated_ms, reply_to,"
        " answer, error_class, reserved, reply_to_user)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13,"
        " ?14, ?15) ON CONFLICT (platform, chat_id, message_id) DO NOTHING",
    [STMT_JOB_EXISTS] = "SELECT 1 FROM jobs WHERE platform = ?1 AND"
                        " chat_id = ?2 AND message_id = ?3",
    [STMT_JOB_SAVE] = "UPDATE jobs SET state = ?2, attempts = ?3,"
                      " next_at_ms = ?4, answer = ?5, answer_id = ?6,"
                      " sent_parts = ?7, error_class = ?8, reserved = ?9,"
                      " updated_ms = ?10 WHERE id = ?1",
    [STMT_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [STMT_JOB_SCAN] =
        "SELECT " JOB_COLS " FROM jobs WHERE id > ?1 AND " JOB_UNFINISHED
        " ORDER BY id LIMIT ?2",
    [STMT_JOB_UNFINISHED] = "SELECT count(*) FROM jobs WHERE " JOB_UNFINISHED,
    [STMT_JOB_PURGE] =
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
        " WHERE updated_ms < ?1 AND NOT " JOB_UNFINISHED " LIMIT ?2)",
    [STMT_CONV_INSERT] = "INSERT INTO conversations (platform, chat_id,"
                         " thread_id, created_ms) VALUES (?1, ?2, ?3, ?4)"
                         " ON CONFLICT (platform, chat_id, thread_id)"
                         " DO NOTHING",
    [STMT_CONV_GET] = "SELECT id FROM conversations WHERE platform = ?1"
                      " AND chat_id = ?2 AND thread_id = ?3",
    [STMT_MSG_ADD] = "INSERT INTO messages (conversation_id, role, user_id,"
                     " platform_msg_id, text, tokens, created_ms)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_HISTORY] = "SELECT role, text, tokens FROM messages"
                     " WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?2",
    [STMT_RESET] = "DELETE FROM messages WHERE conversation_id = (SELECT id"
                   " FROM conversations WHERE platform = ?1 AND chat_id = ?2"
                   " AND thread_id = ?3)",
    [STMT_ANSWER_ADD] =
        "INSERT INTO answers (conversation_id, message_id, platform, user_id,"
        " model, tokens_in, tokens_out, cost_micro_usd, latency_ms,"
        " created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STMT_SENT_ADD] = "INSERT INTO sent_messages (platform, chat_id,"
                      " platform_msg_id, answer_id, part, created_ms)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                      " ON CONFLICT DO NOTHING",
    [STMT_SENT_FIND] = "SELECT answer_id FROM sent_messages WHERE"
                       " platform = ?1 AND chat_id = ?2"
                       " AND platform_msg_id = ?3",
    [STMT_VOTE_SET] =
        "INSERT INTO feedback (answer_id, platform, user_id, vote,"
        " created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
        " ON CONFLICT (answer_id, user_id) DO UPDATE SET vote = excluded.vote,"
        " updated_ms = excluded.updated_ms",
    [STMT_VOTE_DEL] = "DELETE FROM feedback WHERE answer_id = ?1"
                      " AND user_id = ?2 AND vote = ?3",
    [STMT_USAGE_ADD] =
        "INSERT INTO usage (scope, platform, target, day, requests, limited,"
        " tokens_in, tokens_out, cost_micro_usd)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)" USAGE_ADD_ON_CONFLICT,
    [STMT_USAGE_GET] = "SELECT requests, limited, tokens_in, tokens_out,"
                       " cost_micro_usd FROM usage WHERE scope = ?1"
                       " AND platform = ?2 AND target = ?3 AND day = ?4",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    [STMT_OVERRIDES] = "SELECT scope, platform, target, kind, rate_n,"
                       " window_ms FROM overrides",
    [STMT_OVERRIDE_SET] =
        "INSERT INTO overrides (scope, platform, target, kind, rate_n,"
        " window_ms, set_by, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
        " ?8) ON CONFLICT (scope, platform, target, kind) DO UPDATE SET"
        " rate_n = excluded.rate_n, window_ms = excluded.window_ms,"
        " set_by = excluded.set_by, updated_ms = excluded.updated_ms",
    [STMT_OVERRIDE_DEL] = "DELETE FROM overrides WHERE scope = ?1"
                          " AND platform = ?2 AND target = ?3 AND kind = ?4",
    [STMT_BANS] = "SELECT platform, user_id, until_ms FROM bans",
    [STMT_BAN_SET] = "INSERT INTO bans (platform, user_id, until_ms,"
                     " banned_by, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
                     " ON CONFLICT (platform, user_id) DO UPDATE SET"
                     " until_ms = excluded.until_ms,"
                     " banned_by = excluded.banned_by",
    [STMT_BAN_DEL] = "DELETE FROM bans WHERE platform = ?1 AND user_id = ?2",
    [STMT_CHAT_GET] = "SELECT model, persona FROM chats WHERE platform = ?1"
                      " AND chat_id = ?2",
    [STMT_LIMITER_SAVE] =
        "INSERT INTO limiter_state (key, state, updated_ms)"
        " VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET"
        " state = excluded.state, updated_ms = excluded.updated_ms",
    [STMT_LIMITER_LOAD] = "SELECT key, state, updated_ms FROM limiter_state",
};

/*
 * The loop hooks live apart from the store: libuv releases a handle only
 * in its close callback, which may run after store_close() has freed the
 * store.
 */
struct store_hooks {
    uv_prepare_t prepare;
    uv_check_t check;
    struct store *st; /* NULL once the store is closed */
    int open;         /* callbacks still due: handle closes, checkpoint */
    /* the WAL checkpoint, on the threadpool (store_attach_loop) */
    uv_work_t ckpt;
    sqlite3 *ckpt_db; /* its own connection, used by one work at a time */
    char *path;
    int ckpt_busy; /* queued or running */
    int ckpt_rc;
    int ckpt_log, ckpt_done; /* WAL frames, frames checkpointed */
    int ckpt_min;            /* WAL pages that start the next one */
    int ckpt_tail;           /* the loop checkpoints what came meanwhile */
    int ckpt_passes;         /* threadpool passes in this round */
    int wal_pages;           /* the WAL's size at the last commit */
};

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[STMT_N];
    int in_tx;  /* our BEGIN IMMEDIATE is open */
    int wrote;  /* the open group has a write (else it only read) */
    int lost;   /* a group was rolled back since the last store_flush() */
    int failed; /* the last write or commit failed: not writable */
    uint64_t commits;
    struct store_hooks *hooks;
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Stored timestamps are wall clock (STYLE 7); waits never read this. */
static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Errors after which the database cannot be trusted to take writes. */
static int
rc_is_fatal(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        return 1;
    default:
        return 0;
    }
}

/*
 * After a failed statement: SQLite rolls a whole transaction back on some
 * errors (FULL, IOERR, NOMEM...).  Writes that earlier callers of this
 * group were told succeeded are then gone; `lost` makes store_sync() and
 * store_flush() say so instead of letting a connector ack them.
 */
static void
store_note_failure(struct store *st, int rc)
{
    if (rc_is_fatal(rc))
        st->failed = 1;
    if (st->in_tx && sqlite3_get_autocommit(st->db)) {
        st->in_tx = 0;
        if (st->wrote) {
            st->lost = 1;
            log_warnx("store transaction rolled back, pending writes lost");
        }
        st->wrote = 0;
    }
}

static sqlite3_stmt *
store_stmt(struct store *st, enum store_stmt id)
{
    int rc;

    if (st->stmt[id] != NULL)
        return st->stmt[id];
    rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                            &st->stmt[id], NULL);
    if (rc != SQLITE_OK) {
        log_warnx("store prepare failed stmt=%d err=\"%s\"", (int)id,
                  sqlite3_errmsg(st->db));
        sqlite3_finalize(st->stmt[id]);
        st->stmt[id] = NULL;
    }
    return st->stmt[id];
}

static void
stmt_release(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Binds a NUL-terminated string, or NULL as SQL NULL. */
static int
bind_text(sqlite3_stmt *s, int idx, const char *v)
{
    if (v == NULL)
        return sqlite3_bind_null(s, idx);
    return sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC);
}

/* Steps a statement that returns no row; logs with `what` on failure. */
static int
store_run(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);

    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        stmt_release(s);
        return 0;
    }
    log_warnx("store %s failed err=\"%s\"", what, sqlite3_errmsg(st->db));
    stmt_release(s);
    store_note_failure(st, rc);
    return -1;
}

static int
pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    *out = sqlite3_column_int(s, 0);
    rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

/*
 * Refuses, without writing anything, a file that is not ours or whose
 * schema is newer than this build: migrating or using it could destroy
 * data a newer parley wrote.
 */
static int
store_check_header(struct store *st, char *err, size_t errlen)
{
    int app = 0, version = 0;

    if (pragma_int(st->db, "PRAGMA application_id", &app) < 0 ||
        pragma_int(st->db, "PRAGMA user_version", &version) < 0) {
        errf(err, errlen, "%s: cannot read the database: %s", st->path,
             sqlite3_errmsg(st->db));
        return -1;
    }
    if (app != 0 && app != SCHEMA_APPLICATION_ID) {
        errf(err, errlen, "%s: not a parley database (application_id 0x%08x)",
             st->path, (unsigned)app);
        return -1;
    }
    if (version > schema_latest()) {
        errf(err, errlen,
             "%s: schema version %d is newer than this parley knows (%d);"
             " run a newer parley or restore a backup",
             st->path, version, schema_latest());
        return -1;
    }
    if (version < 0) {
        errf(err, errlen, "%s: bad schema version %d", st->path, version);
        return -1;
    }
    return 0;
}

static int
store_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        errf(err, errlen, "%s: %s", st->path,
             msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/*
 * After a migration that rewrote table text (schema_rewrites): no IN list
 * may be left in a CHECK of jobs or messages (the rewrite matched), and
 * schema_version goes up by one so every connection, this one included,
 * parses the tables again before its next statement.
 */
static int
store_schema_bump(struct store *st, char *err, size_t errlen)
{
    char sql[64];
    int left = -1, cookie = -1;

    if (pragma_int(st->db,
                   "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                   " AND ((name = 'jobs' AND sql LIKE '%state IN (%')"
                   " OR (name = 'messages' AND sql LIKE '%role IN (%'))",
                   &left) < 0 ||
        pragma_int(st->db, "PRAGMA schema_version", &cookie) < 0) {
        errf(err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
        return -1;
    }
    if (left != 0) {
        errf(err, errlen, "%s: a CHECK was not rewritten", st->path);
        return -1;
    }
    snprintf(sql, sizeof(sql), "PRAGMA schema_version = %d", cookie + 1);
    return store_exec(st, sql, err, errlen);
}

/*
 * Runs a migration that edits sqlite_schema: a SQLite built or configured
 * "defensive" refuses writable_schema, so that is lifted for the
 * migration only and put back as it was.
 */
static int
store_rewrite(struct store *st, const char *sql, char *err, size_t errlen)
{
    int defensive = 0, rc;

    sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, -1, &defensive);
    if (defensive)
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 0, NULL);
    rc = store_exec(st, sql, err, errlen);
    if (rc == 0)
        rc = store_schema_bump(st, err, errlen);
    if (defensive)
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    return rc;
}

/*
 * Applies migrations current+1..target, each in its own transaction that
 * also sets user_version, so a crash leaves the db at a known version.
 * The version is re-read under the write lock: parleyctl and parleyd may
 * open an old database at the same time.
 */
static int
store_migrate(struct store *st, int target, char *err, size_t errlen)
{
    char sql[64];
    int version = 0, applying = 0, rc = -1;

    for (;;) {
        if (store_exec(st, "BEGIN IMMEDIATE", err, errlen) < 0)
            goto out;
        if (pragma_int(st->db, "PRAGMA user_version", &version) < 0) {
            errf(err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
            goto fail;
        }
        if (version > schema_latest()) {
            errf(err, errlen, "%s: schema version %d is newer than %d",
                 st->path, version, schema_latest());
            goto fail;
        }
        if (version >= target)
            break;
        applying = ++version;
        if (version == 1) {
            snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
                     SCHEMA_APPLICATION_ID);
            if (store_exec(st, sql, err, errlen) < 0)
                goto fail;
        }
        if ((schema_rewrites(version)
                 ? store_rewrite(st, schema_sql(version), err, errlen)
                 : store_exec(st, schema_sql(version), err, errlen)) < 0)
            goto fail;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
        if (store_exec(st, sql, err, errlen) < 0 ||
            store_exec(st, "COMMIT", err, errlen) < 0)
            goto fail;
        log_info("store migrated path=%s version=%d name=%s", st->path, version,
                 schema_name(version));
        applying = 0;
    }
    /* nothing left to do: end the read-only transaction */
    if (store_exec(st, "COMMIT", err, errlen) < 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    if (applying > 0 && err != NULL && errlen > 0) {
        char detail[512];

        snprintf(detail, sizeof(detail), "%s", err);
        errf(err, errlen, "migration %d (%s) failed: %s", applying,
             schema_name(applying), detail);
    }
out:
    return rc;
}

struct store *
store_open_at_version(const char *path, int version, char *err, size_t errlen)
{
    struct store *st = NULL, *ret = NULL;
    const char *mode;
    sqlite3_stmt *s = NULL;
    char sql[192];
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

    if (version < 0 || version > schema_latest()) {
        errf(err, errlen, "%s: unknown schema version %d", path, version);
        goto out;
    }
    /*
     * No allocation statistics (nobody reads them): without this every
     * sqlite3_malloc and sqlite3_free takes a process-wide mutex.  Only
     * possible before SQLite initialises, i.e. at the first open; later
     * calls return SQLITE_MISUSE and change nothing.
     */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if ((st = calloc(1, sizeof(*st))) == NULL ||
        (st->path = strdup(path)) == NULL) {
        errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        errf(err, errlen, "%s: %s", path,
             st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(st->db, 1);
    /* parleyctl writes briefly while the daemon runs: wait, don't fail */
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        errf(err, errlen, "%s: database is read-only", path);
        goto out;
    }
    if (store_check_header(st, err, errlen) < 0)
        goto out;

    /* WAL lets parleyctl read while the daemon writes. */
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) !=
            SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        errf(err, errlen, "%s: journal_mode: %s", path, sqlite3_errmsg(st->db));
        goto out;
    }
    mode = (const char *)sqlite3_column_text(s, 0);
    if (mode == NULL ||
        (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
        /* usable, but parleyctl will block on the daemon's writes */
        log_warnx("store WAL unavailable path=%s journal_mode=%s", path,
                  mode ? mode : "?");
    }
    sqlite3_finalize(s);
    s = NULL;

    snprintf(sql, sizeof(sql),
             "PRAGMA journal_size_limit = %d; PRAGMA wal_autocheckpoint = %d;"
             " PRAGMA cache_size = -%d",
             STORE_JOURNAL_SIZE_LIMIT, STORE_WAL_CHECKPOINT_PAGES,
             STORE_CACHE_KIB);
    /*
     * NORMAL in WAL: a commit survives a process crash (kill -9) without an
     * fsync per commit; the loop thread must not wait on the disk per turn.
     */
    if (store_exec(st, "PRAGMA synchronous = NORMAL", err, errlen) < 0 ||
        store_exec(st, "PRAGMA foreign_keys = ON", err, errlen) < 0 ||
        store_exec(st, sql, err, errlen) < 0)
        goto out;

    if (store_migrate(st, version, err, errlen) < 0)
        goto out;
    ret = st;
    st = NULL;
out:
    sqlite3_finalize(s);
    store_close(st);
    return ret;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
    return store_open_at_version(path, schema_latest(), err, errlen);
}

static void
hooks_release(struct store_hooks *hooks)
{
    if (--hooks->open > 0)
        return;
    if (hooks->ckpt_db != NULL)
        sqlite3_close(hooks->ckpt_db);
    free(hooks->path);
    free(hooks);
}

static void
hooks_closed(uv_handle_t *h)
{
    hooks_release(h->data);
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->db != NULL) {
        store_flush(st);
        /* still open only if COMMIT kept failing: sqlite3_close rolls back */
        if (st->in_tx)
            log_warnx("store closing with uncommitted writes path=%s",
                      st->path);
    }
    if (st->hooks != NULL) {
        st->hooks->st = NULL;
        /* the checkpoint connection goes first, so that the main one is
         * the last and checkpoints as it closes; one still working is
         * closed after it (ckpt_after) */
        if (!st->hooks->ckpt_busy && st->hooks->ckpt_db != NULL) {
            sqlite3_close(st->hooks->ckpt_db);
            st->hooks->ckpt_db = NULL;
        }
        uv_close((uv_handle_t *)&st->hooks->prepare, hooks_closed);
        uv_close((uv_handle_t *)&st->hooks->check, hooks_closed);
        st->hooks = NULL;
    }
    for (int i = 0; i < STMT_N; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        log_warnx("store close failed path=%s err=\"%s\"", st->path,
                  sqlite3_errmsg(st->db));
    free(st->path);
    free(st);
}

int
store_schema_version(struct store *st)
{
    int version;

    if (pragma_int(st->db, "PRAGMA user_version", &version) < 0) {
        log_warnx("store user_version failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
        return -1;
    }
    return version;
}

int
store_latest_version(void)
{
    return schema_latest();
}

static int store_commit(struct store *st);

/*
 * Opens the group for a write: BEGIN IMMEDIATE, or, when the turn's reads
 * opened it (store_read_begin), takes the write lock in it.  That fails
 * only if another connection (parleyctl) committed since those reads
 * began; the read-only group is then ended and a new one begun.
 */
int
store_write_begin(struct store *st)
{
    sqlite3_stmt *s;

    if (st->in_tx && st->wrote)
        return 0;
    if (st->in_tx) {
        if ((s = store_stmt(st, STMT_WRITE_LOCK)) == NULL)
            return -1;
        if (sqlite3_step(s) == SQLITE_DONE) {
            stmt_release(s);
            st->wrote = 1;
            return 0;
        }
        stmt_release(s);
        if (store_commit(st) < 0)
            return -1;
    }
    if ((s = store_stmt(st, STMT_BEGIN)) == NULL)
        return -1;
    if (store_run(st, s, "begin") < 0)
        return -1;
    st->in_tx = 1;
    st->wrote = 1;
    return 0;
}

/*
 * A read on the loop joins the turn's group: one transaction (one set of
 * shm locks, one read-mark update) for all the reads and writes of a turn
 * instead of a read transaction per statement.  A group opened by a read
 * is deferred: it holds no write lock until a write comes
 * (store_write_begin), so another connection may still write meanwhile;
 * it ends with the turn like any group, uncounted in store_commits.  Off
 * the loop (start-up, parleyctl), or when BEGIN fails, a read is its own
 * transaction as before.
 */
static void
store_read_begin(struct store *st)
{
    sqlite3_stmt *s;

    if (st->in_tx || st->hooks == NULL || st->failed)
        return;
    if ((s = store_stmt(st, STMT_BEGIN_READ)) == NULL)
        return;
    if (sqlite3_step(s) == SQLITE_DONE)
        st->in_tx = 1;
    stmt_release(s);
}

/* COMMIT the open group; on failure roll it back unless SQLite kept it. */
static int
store_commit(struct store *st)
{
    sqlite3_stmt *s;
    int rc;

    if (!st->in_tx)
        return 0;
    if ((s = store_stmt(st, STMT_COMMIT)) == NULL)
        return -1;
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        stmt_release(s);
        st->in_tx = 0;
        st->failed = 0;
        if (st->wrote)
            st->commits++;
        st->wrote = 0;
        return 0;
    }
    log_warnx("store commit failed err=\"%s\"", sqlite3_errmsg(st->db));
    stmt_release(s);
    store_note_failure(st, rc);
    /*
     * SQLITE_BUSY leaves the transaction open and intact: the next flush
     * retries it.  Anything else: give the group up.
     */
    if (st->in_tx && (rc & 0xff) != SQLITE_BUSY) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        st->in_tx = 0;
        if (st->wrote) {
            st->lost = 1;
            log_warnx("store transaction rolled back, pending writes lost");
        }
        st->wrote = 0;
    }
    return -1;
}

int
store_flush(struct store *st)
{
    int rc = store_commit(st);

    if (st->lost) {
        st->lost = 0;
        rc = -1;
    }
    return rc;
}

int
store_sync(struct store *st)
{
    /*
     * `lost` is not cleared here: every durability point of this turn
     * whose writes went into the lost group must see the failure.
     */
    if (store_commit(st) < 0 || st->lost)
        return -1;
    return 0;
}

static void ckpt_tail(struct store_hooks *hooks);

static void
hooks_prepare(uv_prepare_t *h)
{
    struct store_hooks *hooks = h->data;

    if (hooks->st != NULL)
        store_flush(hooks->st);
    if (hooks->ckpt_tail)
        ckpt_tail(hooks);
}

static void
hooks_check(uv_check_t *h)
{
    struct store_hooks *hooks = h->data;

    if (hooks->st != NULL)
        store_flush(hooks->st);
    if (hooks->ckpt_tail)
        ckpt_tail(hooks);
}

/*
 * The WAL checkpoint runs on the threadpool with a connection of its own:
 * on the loop it copied pages into the database file and fsynced both
 * files in the middle of a turn, every few hundred messages under load,
 * and held every event of that turn (the p99 of bench_e2e's latency).
 * PASSIVE, as SQLite's own auto-checkpoint: it never waits on the loop's
 * connection, which goes on committing to the WAL meanwhile; the WAL is
 * rewound from its start by the first commit after a complete checkpoint.
 */
static void
ckpt_work(uv_work_t *req)
{
    struct store_hooks *hooks = req->data;
    int rc;

    hooks->ckpt_log = hooks->ckpt_done = -1;
    if (hooks->ckpt_db == NULL) {
        rc = sqlite3_open_v2(hooks->path, &hooks->ckpt_db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        /* a first read opens the WAL: without it the connection does not
         * know the database is in WAL mode and checkpoints nothing */
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(hooks->ckpt_db, "PRAGMA schema_version", NULL,
                              NULL, NULL);
        if (rc != SQLITE_OK) {
            sqlite3_close(hooks->ckpt_db);
            hooks->ckpt_db = NULL;
            hooks->ckpt_rc = rc;
            return;
        }
    }
    hooks->ckpt_rc = sqlite3_wal_checkpoint_v2(
        hooks->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &hooks->ckpt_log,
        &hooks->ckpt_done);
}

static int ckpt_queue(struct store_hooks *hooks);

static void
ckpt_after(uv_work_t *req, int status)
{
    struct store_hooks *hooks = req->data;

    hooks->ckpt_busy = 0;
    if (status == 0 && hooks->ckpt_rc != SQLITE_OK &&
        hooks->ckpt_rc != SQLITE_BUSY)
        log_warnx("store checkpoint failed rc=%d (%s)", hooks->ckpt_rc,
                  sqlite3_errstr(hooks->ckpt_rc));
    else
        log_debug("store checkpoint wal=%d done=%d", hooks->ckpt_log,
                  hooks->ckpt_done);
    /*
     * The frames the loop committed meanwhile are not in, and the WAL is
     * only rewound by a group that begins with all of it checkpointed: the
     * loop checkpoints that short tail itself, between two groups
     * (ckpt_tail).  Failed or busy: again once
     * the WAL has grown by a quarter more, not after every commit.
     */
    if (status == 0 && hooks->ckpt_rc == SQLITE_OK && hooks->ckpt_log >= 0) {
        /* a long tail gets another pass first: each is shorter */
        if (hooks->wal_pages - hooks->ckpt_log > STORE_CKPT_TAIL_MAX &&
            hooks->ckpt_passes < 4 && hooks->st != NULL &&
            ckpt_queue(hooks) == 0) {
            hooks_release(hooks);
            return;
        }
        hooks->ckpt_tail = 1;
    } else
        hooks->ckpt_min = (hooks->ckpt_log > 0 ? hooks->ckpt_log
                                               : STORE_WAL_CHECKPOINT_PAGES) +
                          STORE_WAL_CHECKPOINT_PAGES / 4;
    hooks_release(hooks);
}

/*
 * On the loop, no group open: the frames committed while the threadpool
 * checkpointed (a few hundred pages; two fsyncs).  Complete, the next
 * write rewinds the WAL.  Not (a reader in the way): the threadpool tries
 * again after a quarter more.
 */
static void
ckpt_tail(struct store_hooks *hooks)
{
    struct store *st = hooks->st;
    int log = -1, done = -1, rc;

    if (st == NULL || st->in_tx || hooks->ckpt_busy)
        return;
    hooks->ckpt_tail = 0;
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                   &log, &done);
    if (rc == SQLITE_OK && log >= 0 && done >= log)
        hooks->ckpt_min = STORE_WAL_CHECKPOINT_PAGES;
    else
        hooks->ckpt_min = (log > 0 ? log : STORE_WAL_CHECKPOINT_PAGES) +
                          STORE_WAL_CHECKPOINT_PAGES / 4;
}

/* sqlite3_wal_hook: after each commit, with the WAL's size in pages. */
static int
ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct store_hooks *hooks = arg;

    (void)db;
    (void)name;
    hooks->wal_pages = pages;
    if (pages < hooks->ckpt_min || hooks->ckpt_busy || hooks->ckpt_tail ||
        hooks->st == NULL)
        return SQLITE_OK;
    hooks->ckpt_passes = 0;
    ckpt_queue(hooks);
    return SQLITE_OK;
}

static int
ckpt_queue(struct store_hooks *hooks)
{
    hooks->ckpt.data = hooks;
    if (uv_queue_work(hooks->prepare.loop, &hooks->ckpt, ckpt_work,
                      ckpt_after) != 0)
        return -1;
    hooks->ckpt_busy = 1;
    hooks->ckpt_passes++;
    hooks->open++;
    return 0;
}

/*
 * Why both hooks: check runs right after the I/O callbacks, where most
 * writes happen; prepare runs before the loop blocks in poll, so a write
 * made by a timer callback is never held open (with the write lock) for
 * as long as the loop sleeps.
 */
int
store_attach_loop(struct store *st, struct uv_loop_s *loop)
{
    struct store_hooks *hooks;

    if (st->hooks != NULL) {
        log_warnx("store already attached to a loop");
        return -1;
    }
    if ((hooks = calloc(1, sizeof(*hooks))) == NULL ||
        (hooks->path = strdup(st->path)) == NULL) {
        free(hooks);
        log_warnx("store attach: out of memory");
        return -1;
    }
    hooks->st = st;
    hooks->ckpt_min = STORE_WAL_CHECKPOINT_PAGES;
    uv_prepare_init(loop, &hooks->prepare);
    uv_check_init(loop, &hooks->check);
    hooks->prepare.data = hooks;
    hooks->check.data = hooks;
    hooks->open = 2;
    uv_prepare_start(&hooks->prepare, hooks_prepare);
    uv_check_start(&hooks->check, hooks_check);
    uv_unref((uv_handle_t *)&hooks->prepare);
    uv_unref((uv_handle_t *)&hooks->check);
    /* replaces SQLite's auto-checkpoint on this connection */
    sqlite3_wal_hook(st->db, ckpt_hook, hooks);
    st->hooks = hooks;
    return 0;
}

int
store_writable(struct store *st)
{
    if (st == NULL || st->db == NULL)
        return 0;
    return sqlite3_db_readonly(st->db, "main") == 0 && !st->failed;
}

uint64_t
store_commits(struct store *st)
{
    return st->commits;
}

int
store_kv_get(struct store *st, const char *platform, const char *key, char *buf,
             size_t buflen)
{
    sqlite3_stmt *s;
    const unsigned char *v;
    size_t n;
    int rc = -1, step;

    if ((s = store_stmt(st, STMT_KV_GET)) == NULL)
        return -1;
    if (bind_text(s, 1, platform) != SQLITE_OK ||
        bind_text(s, 2, key) != SQLITE_OK) {
        log_warnx("store kv_get bind failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
        goto out;
    }
    step = sqlite3_step(s);
    if (step == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (step != SQLITE_ROW) {
        log_warnx("store kv_get failed platform=%s key=%s err=\"%s\"", platform,
                  key, sqlite3_errmsg(st->db));
        goto out;
    }
    v = sqlite3_column_text(s, 0);
    n = (size_t)sqlite3_column_bytes(s, 0);
    if (v == NULL || n >= buflen) {
        log_warnx("store kv_get value too long platform=%s key=%s len=%zu",
                  platform, key, n);
        goto out;
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    rc = 1;
out:
    stmt_release(s);
    return rc;
}

int
store_kv_set(struct store *st, const char *platform, const char *key,
             const char *value)
{
    sqlite3_stmt *s;

    if (store_write_begin(st) < 0 || (s = store_stmt(st, STMT_KV_SET)) == NULL)
        return -1;
    if (bind_text(s, 1, platform) != SQLITE_OK ||
        bind_text(s, 2, key) != SQLITE_OK ||
        bind_text(s, 3, value) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, wall_ms()) != SQLITE_OK) {
        log_warnx("store kv_set bind failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
        stmt_release(s);
        return -1;
    }
    return store_run(st, s, "kv_set");
}

int
store_kv_del(struct store *st, const char *platform, const char *key)
{
    sqlite3_stmt *s;

    if (store_write_begin(st) < 0 || (s = store_stmt(st, STMT_KV_DEL)) == NULL)
        return -1;
    if (bind_text(s, 1, platform) != SQLITE_OK ||
        bind_text(s, 2, key) != SQLITE_OK) {
        log_warnx("store kv_del bind failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
        stmt_release(s);
        return -1;
    }
    return store_run(st, s, "kv_del");
}

int
store_audit_add(struct store *st, int64_t ts_ms, const char *platform,
                const char *actor, const char *action, const char *target,
                const char *detail)
{
    sqlite3_stmt *s;

    if (store_write_begin(st) < 0 ||
        (s = store_stmt(st, STMT_AUDIT_ADD)) == NULL)
        return -1;
    if (sqlite3_bind_int64(s, 1, ts_ms) != SQLITE_OK ||
        bind_text(s, 2, platform) != SQLITE_OK ||
        bind_text(s, 3, actor) != SQLITE_OK ||
        bind_text(s, 4, action) != SQLITE_OK ||
        bind_text(s, 5, target) != SQLITE_OK ||
        bind_text(s, 6, detail) != SQLITE_OK) {
        log_warnx("store audit_add bind failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
        stmt_release(s);
        return -1;
    }
    return store_run(st, s, "audit_add");
}

/*
 * Binds ?1, ?2... from fmt: 't' text (NULL binds SQL NULL), 'i' int64,
 * 'z' int64 with 0 bound as NULL, 'b' blob (pointer, size_t).  Strings
 * are SQLITE_STATIC: stmt_release() clears them before the call returns.
 */
static int
store_vbind(struct store *st, sqlite3_stmt *s, const char *what,
            const char *fmt, va_list ap)
{
    int idx = 1, rc = SQLITE_OK, nparams = sqlite3_bind_parameter_count(s);

    for (const char *f = fmt; *f != '\0' && rc == SQLITE_OK; f++, idx++) {
        /* a statement of a list may use fewer parameters than the list's
         * format: the extra arguments are consumed, not bound */
        if (idx > nparams) {
            if (*f == 'b') {
                (void)va_arg(ap, const void *);
                (void)va_arg(ap, size_t);
            } else if (*f == 't') {
                (void)va_arg(ap, const char *);
            } else {
                (void)va_arg(ap, int64_t);
            }
            continue;
        }
        switch (*f) {
        case 't':
            rc = bind_text(s, idx, va_arg(ap, const char *));
            break;
        case 'i':
            rc = sqlite3_bind_int64(s, idx, va_arg(ap, int64_t));
            break;
        case 'z': {
            int64_t v = va_arg(ap, int64_t);

            rc = v == 0 ? sqlite3_bind_null(s, idx)
                        : sqlite3_bind_int64(s, idx, v);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);

            rc = sqlite3_bind_blob64(s, idx, p, n, SQLITE_STATIC);
            break;
        }
        default:
            rc = SQLITE_MISUSE;
        }
    }
    if (rc != SQLITE_OK) {
        log_warnx("store %s bind failed err=\"%s\"", what,
                  sqlite3_errmsg(st->db));
        stmt_release(s);
        return -1;
    }
    return 0;
}

/* The cached statement id, bound; for a write also opens the group. */
static sqlite3_stmt *
store_prep(struct store *st, enum store_stmt id, int write, const char *what,
           const char *fmt, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int rc;

    if (!write)
        store_read_begin(st);
    else if (store_write_begin(st) < 0)
        return NULL;
    if ((s = store_stmt(st, id)) == NULL)
        return NULL;
    va_start(ap, fmt);
    rc = store_vbind(st, s, what, fmt, ap);
    va_end(ap);
    return rc < 0 ? NULL : s;
}

/* A rare write, prepared per call (forget, purge): rows changed, or -1. */
static long
store_exec_bound(struct store *st, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    va_list ap;
    long rc = -1;
    int step;

    if (store_write_begin(st) < 0)
        return -1;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        log_warnx("store prepare failed err=\"%s\"", sqlite3_errmsg(st->db));
        goto out;
    }
    va_start(ap, fmt);
    step = store_vbind(st, s, "exec", fmt, ap);
    va_end(ap);
    if (step < 0)
        goto out;
    step = sqlite3_step(s);
    if (step != SQLITE_DONE && step != SQLITE_ROW) {
        log_warnx("store exec failed err=\"%s\"", sqlite3_errmsg(st->db));
        store_note_failure(st, step);
        goto out;
    }
    rc = (long)sqlite3_changes(st->db);
out:
    sqlite3_finalize(s);
    return rc;
}

static const char *const job_state_names[] = {
    [STORE_JOB_RECEIVED] = "received", [STORE_JOB_LIMITED] = "limited",
    [STORE_JOB_QUEUED] = "queued",     [STORE_JOB_ASKING] = "asking",
    [STORE_JOB_ANSWERED] = "answered", [STORE_JOB_SENT] = "sent",
    [STORE_JOB_FAILED] = "failed",
};
#define JOB_STATES_N (sizeof(job_state_names) / sizeof(job_state_names[0]))

const char *
store_job_state_name(enum store_job_state s)
{
    return (unsigned)s < JOB_STATES_N ? job_state_names[s] : "?";
}

static enum store_job_state
job_state_parse(const char *s)
{
    for (size_t i = 0; s != NULL && i < JOB_STATES_N; i++)
        if (strcmp(s, job_state_names[i]) == 0)
            return (enum store_job_state)i;
    return STORE_JOB_FAILED;
}

void
store_job_release(struct store_job *j)
{
    if (j == NULL)
        return;
    free(j->text);
    free(j->answer);
    j->text = NULL;
    j->answer = NULL;
}

/* Copies column i into a fixed buffer, cutting at len - 1 (bounded ids). */
static void
col_copy(sqlite3_stmt *s, int i, char *buf, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);

    snprintf(buf, len, "%s", v ? (const char *)v : "");
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);

    return v ? strdup((const char *)v) : NULL;
}

/* A row of JOB_COLS into *j; -1 on out of memory. */
static int
job_from_row(sqlite3_stmt *s, struct store_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, j->platform, sizeof(j->platform));
    col_copy(s, 2, j->chat, sizeof(j->chat));
    col_copy(s, 3, j->thread, sizeof(j->thread));
    col_copy(s, 4, j->user, sizeof(j->user));
    col_copy(s, 5, j->user_name, sizeof(j->user_name));
    col_copy(s, 6, j->message_id, sizeof(j->message_id));
    j->text = col_dup(s, 7);
    j->flags = (unsigned)sqlite3_column_int64(s, 8);
    j->state = job_state_parse((const char *)sqlite3_column_text(s, 9));
    j->attempts = sqlite3_column_int(s, 10);
    j->next_at_ms = sqlite3_column_int64(s, 11);
    j->answer = col_dup(s, 12);
    j->answer_id = sqlite3_column_int64(s, 13);
    j->sent_parts = sqlite3_column_int(s, 14);
    col_copy(s, 15, j->error_class, sizeof(j->error_class));
    j->reserved = sqlite3_column_int64(s, 16);
    j->created_ms = sqlite3_column_int64(s, 17);
    col_copy(s, 18, j->reply_to, sizeof(j->reply_to));
    col_copy(s, 19, j->reply_to_user, sizeof(j->reply_to_user));
    if (j->text == NULL && (j->text = strdup("")) == NULL) {
        store_job_release(j);
        return -1;
    }
    if (sqlite3_column_type(s, 12) != SQLITE_NULL && j->answer == NULL) {
        store_job_release(j);
        return -1;
    }
    return 0;
}

int
store_job_insert(struct store *st, const struct store_job *j, int64_t *id)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_JOB_INSERT, 1, "job_insert", "tttttttititttit",
                   j->platform, j->chat, j->thread, j->user, j->user_name,
                   j->message_id, j->text ? j->text : "", (int64_t)j->flags,
                   store_job_state_name(j->state), j->created_ms, j->reply_to,
                   j->answer, j->error_class[0] ? j->error_class : NULL,
                   j->reserved, j->reply_to_user);
    if (s == NULL || store_run(st, s, "job_insert") < 0)
        return -1;
    if (sqlite3_changes(st->db) == 0)
        return 0;
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(st->db);
    return 1;
}

int
store_job_exists(struct store *st, const char *platform, const char *chat,
                 const char *message_id)
{
    sqlite3_stmt *s;
    int step;

    s = store_prep(st, STMT_JOB_EXISTS, 0, "job_exists", "ttt", platform, chat,
                   message_id);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    stmt_release(s);
    if (step == SQLITE_ROW)
        return 1;
    if (step == SQLITE_DONE)
        return 0;
    store_note_failure(st, step);
    return -1;
}

int
store_job_save(struct store *st, const struct store_job *j, int64_t now_ms)
{
    sqlite3_stmt *s;

    s = store_prep(
        st, STMT_JOB_SAVE, 1, "job_save", "itiitzitii", j->id,
        store_job_state_name(j->state), (int64_t)j->attempts, j->next_at_ms,
        j->answer, j->answer_id, (int64_t)j->sent_parts,
        j->error_class[0] ? j->error_class : NULL, j->reserved, now_ms);
    if (s == NULL)
        return -1;
    return store_run(st, s, "job_save");
}

int
store_job_get(struct store *st, int64_t id, struct store_job *j)
{
    sqlite3_stmt *s;
    int rc = -1, step;

    memset(j, 0, sizeof(*j));
    if ((s = store_prep(st, STMT_JOB_GET, 0, "job_get", "i", id)) == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_ROW)
        rc = job_from_row(s, j) < 0 ? -1 : 1;
    else
        log_warnx("store job_get failed err=\"%s\"", sqlite3_errmsg(st->db));
    stmt_release(s);
    return rc;
}

int
store_job_scan(struct store *st, int64_t after_id, int limit, store_job_fn fn,
               void *arg)
{
    sqlite3_stmt *s;
    struct store_job j;
    int rows = 0, step;

    s = store_prep(st, STMT_JOB_SCAN, 0, "job_scan", "ii", after_id,
                   (int64_t)limit);
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int stop;

        if (job_from_row(s, &j) < 0) {
            rows = -1;
            break;
        }
        rows++;
        stop = fn(arg, &j);
        store_job_release(&j);
        if (stop)
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_warnx("store job_scan failed err=\"%s\"", sqlite3_errmsg(st->db));
        rows = -1;
    }
    stmt_release(s);
    return rows;
}

/* One integer from a cached read statement; -1 on error. */
static int64_t
store_read_int(struct store *st, sqlite3_stmt *s, const char *what)
{
    int64_t v = -1;

    if (s == NULL)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        log_warnx("store %s failed err=\"%s\"", what, sqlite3_errmsg(st->db));
    stmt_release(s);
    return v;
}

long
store_jobs_unfinished(struct store *st)
{
    return (long)store_read_int(
        st, store_prep(st, STMT_JOB_UNFINISHED, 0, "jobs_unfinished", ""),
        "jobs_unfinished");
}

long
store_jobs_purge(struct store *st, int64_t before_ms, int limit)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_JOB_PURGE, 1, "jobs_purge", "ii", before_ms,
                   (int64_t)limit);
    if (s == NULL || store_run(st, s, "jobs_purge") < 0)
        return -1;
    return (long)sqlite3_changes(st->db);
}

int
store_conversation_id(struct store *st, const char *platform, const char *chat,
                      const char *thread, int64_t now_ms, int64_t *id)
{
    sqlite3_stmt *s;
    int64_t v;

    /* read first: the common case writes nothing */
    s = store_prep(st, STMT_CONV_GET, 0, "conv_get", "ttt", platform, chat,
                   thread);
    if (s == NULL)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        stmt_release(s);
        return 0;
    }
    stmt_release(s);
    s = store_prep(st, STMT_CONV_INSERT, 1, "conv_insert", "ttti", platform,
                   chat, thread, now_ms);
    if (s == NULL || store_run(st, s, "conv_insert") < 0)
        return -1;
    /* the row this insert made (one connection, used by one thread) */
    if (sqlite3_changes(st->db) == 1) {
        *id = sqlite3_last_insert_rowid(st->db);
        return 0;
    }
    s = store_prep(st, STMT_CONV_GET, 0, "conv_get", "ttt", platform, chat,
                   thread);
    if ((v = store_read_int(st, s, "conv_get")) < 0)
        return -1;
    *id = v;
    return 0;
}

int
store_message_add(struct store *st, int64_t conversation_id, const char *role,
                  const char *user_id, const char *platform_msg_id,
                  const char *text, int64_t tokens, int64_t now_ms, int64_t *id)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_MSG_ADD, 1, "message_add",
                   "itttti"
                   "i",
                   conversation_id, role, user_id, platform_msg_id, text,
                   tokens, now_ms);
    if (s == NULL || store_run(st, s, "message_add") < 0)
        return -1;
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int
store_history_load(struct store *st, int64_t conversation_id, int limit,
                   store_message_fn fn, void *arg)
{
    sqlite3_stmt *s;
    int rows = 0, step;

    s = store_prep(st, STMT_HISTORY, 0, "history", "ii", conversation_id,
                   (int64_t)limit);
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *role = (const char *)sqlite3_column_text(s, 0);
        const char *text = (const char *)sqlite3_column_text(s, 1);

        rows++;
        if (fn(arg, role ? role : "user", text ? text : "",
               sqlite3_column_int64(s, 2)))
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_warnx("store history failed err=\"%s\"", sqlite3_errmsg(st->db));
        rows = -1;
    }
    stmt_release(s);
    return rows;
}

int
store_history_reset(struct store *st, const char *platform, const char *chat,
                    const char *thread)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_RESET, 1, "reset", "ttt", platform, chat, thread);
    return s == NULL ? -1 : store_run(st, s, "reset");
}

/*
 * A user's history (?1 platform, ?2 user): the bot's messages that answered
 * them, then their own.  Shared by forget and history purge.
 */
#define SQL_DEL_USER_HISTORY                                                   \
    "DELETE FROM messages WHERE id IN (SELECT message_id FROM answers"         \
    " WHERE platform = ?1 AND user_id = ?2 AND message_id IS NOT NULL)",       \
        "DELETE FROM messages WHERE user_id = ?2 AND conversation_id IN"       \
        " (SELECT id FROM conversations WHERE platform = ?1)"

/* Runs each statement of sql[] with the binding fmt, stopping at an error. */
static int
store_exec_list(struct store *st, const char *const *sql, size_t n,
                const char *fmt, const char *a, const char *b, const char *c)
{
    for (size_t i = 0; i < n; i++)
        if (store_exec_bound(st, sql[i], fmt, a, b, c) < 0)
            return -1;
    return 0;
}

int
store_forget_user(struct store *st, const char *platform, const char *user)
{
    /*
     * ?1 platform, ?2 user, ?3 "platform:user" (how the audit log and
     * set_by/banned_by name people).  The bot's history messages that
     * answered this user go with theirs.
     */
    static const char *const sql[] = {
        SQL_DEL_USER_HISTORY,
        "DELETE FROM answers WHERE platform = ?1 AND user_id = ?2",
        "DELETE FROM feedback WHERE platform = ?1 AND user_id = ?2",
        "DELETE FROM usage WHERE scope = 'user' AND platform = ?1"
        " AND target = ?2",
        "DELETE FROM jobs WHERE platform = ?1 AND user_id = ?2 "
        "AND " JOB_USER_INDEXED " AND NOT " JOB_UNFINISHED,
        /* refused ones (jobs_state_next's `limited` range) */
        "DELETE FROM jobs WHERE state = 'limited' AND platform = ?1 AND "
        "user_id = ?2 AND NOT " JOB_UNFINISHED,
        /* admins' finished commands that named the user (ban 123...,
         * or a reply to one of their messages) */
        "DELETE FROM jobs WHERE platform = ?1 AND (flags & 8) != 0 AND "
        "NOT " JOB_UNFINISHED " AND (instr(text, ?2) > 0"
        " OR instr(coalesce(answer, ''), ?2) > 0 OR reply_to_user = ?2)",
        "DELETE FROM overrides WHERE scope = 'user' AND platform = ?1"
        " AND target = ?2",
        "UPDATE overrides SET set_by = 'forgotten' WHERE set_by = ?3",
        /* a ban in force stays: forget is no way around a ban */
        "DELETE FROM bans WHERE platform = ?1 AND user_id = ?2"
        " AND until_ms IS NOT NULL AND until_ms <= CAST(strftime('%s', 'now')"
        " AS INTEGER) * 1000",
        "UPDATE bans SET banned_by = 'forgotten' WHERE banned_by = ?3",
        "DELETE FROM limiter_state WHERE key IN ('w|u:' || ?1 || ':' || ?2,"
        " 'b|u:' || ?1 || ':' || ?2)",
        /* notice-once keys "w|n:PLATFORM:CHAT:USER" */
        "DELETE FROM limiter_state WHERE key > 'w|n:' || ?1 || ':'"
        " AND key < 'w|n:' || ?1 || ';'"
        " AND substr(key, -length(':' || ?2)) = ':' || ?2",
        "UPDATE audit SET actor = 'forgotten' WHERE actor = ?3",
        "UPDATE audit SET target = 'forgotten' WHERE target = ?3",
    };
    char who[STORE_PLATFORM_MAX + STORE_ID_MAX + 2];

    snprintf(who, sizeof(who), "%s:%s", platform, user);
    if (store_exec_list(st, sql, sizeof(sql) / sizeof(sql[0]), "ttt", platform,
                        user, who) < 0)
        return -1;
    /* a Telegram private chat's id is the user's id */
    return store_forget_chat(st, platform, user);
}

int
store_forget_chat(struct store *st, const char *platform, const char *chat)
{
    static const char *const sql[] = {
        "DELETE FROM conversations WHERE platform = ?1 AND chat_id = ?2",
        "DELETE FROM usage WHERE scope = 'chat' AND platform = ?1"
        " AND target = ?2",
        "DELETE FROM overrides WHERE scope = 'chat' AND platform = ?1"
        " AND target = ?2",
        "DELETE FROM chats WHERE platform = ?1 AND chat_id = ?2",
        "DELETE FROM limiter_state WHERE key IN ('w|c:' || ?1 || ':' || ?2,"
        " 'b|c:' || ?1 || ':' || ?2)",
        "DELETE FROM limiter_state WHERE key > 'w|n:' || ?1 || ':' || ?2"
        " || ':' AND key < 'w|n:' || ?1 || ':' || ?2 || ';'",
        "DELETE FROM sent_messages WHERE platform = ?1 AND chat_id = ?2",
        "DELETE FROM jobs WHERE platform = ?1 AND chat_id = ?2 AND "
        "NOT " JOB_UNFINISHED,
        "UPDATE audit SET target = 'forgotten' WHERE target = ?1 || ':' || ?2",
    };

    return store_exec_list(st, sql, sizeof(sql) / sizeof(sql[0]), "tt",
                           platform, chat, NULL);
}

/*
 * A Telegram group became a supergroup (its id changed).  Per table (?1
 * platform, ?2 old chat, ?3 new chat, ?4 now):
 * - conversations: renamed to the new id, so the history and the answers
 *   (which hang off conversation_id) follow.  When the new id already has
 *   a conversation for the same thread (users spoke in the supergroup
 *   before we learned of the move), the old one's messages and answers
 *   are moved into it and the old row goes: message ids grow with time,
 *   so the history loads as one, the old part first.
 * - usage (scope 'chat'): added into the new id's day rows (one day may
 *   have counts under both ids), then the old rows go.
 * - overrides (scope 'chat'): renamed; where the new id has its own of
 *   the same kind, that one wins (an admin set it for the supergroup).
 * - chats: the old row's model and persona are copied where the new row
 *   has none (the new one's settings win); the old row stays, inactive,
 *   with migrated_to = the new id: store_feedback_vote follows it.
 * - sent_messages stay: Telegram message ids are per chat, so the old
 *   group's ids would collide with the supergroup's.  Answers sent after
 *   the move by jobs of the old chat are recorded by core under the old
 *   id too; a vote from the new chat finds them through chats.migrated_to.
 * - jobs stay: (chat, message_id) is the redelivery key of updates from
 *   the old group, and reply_to names its messages; the connector
 *   redirects their sends.  Finished ones are purged by age as usual.
 * - limiter_state stays: core's limiter lives in memory (loaded once at
 *   start) and writes its keys back over these rows, so a rename here
 *   would be overwritten; the new id's windows and chat budget start
 *   fresh (docs/telegram.md), the old keys expire and are purged.
 * - bans are per user, feedback per answer, connector_state's
 *   'migrated:<old>' is the redirect itself, audit is a log: untouched.
 * Idempotent: a second run finds nothing left under the old id but the
 * chats row, which it rewrites the same way.  A savepoint makes it all or
 * nothing inside the loop's write group.
 */
int
store_chat_migrate(struct store *st, const char *platform, const char *old_chat,
                   const char *new_chat, int64_t now_ms)
{
    static const char *const sql[] = {
        /* same thread under both ids: merge into the new conversation */
        "UPDATE messages SET conversation_id = (SELECT n.id FROM"
        " conversations o JOIN conversations n ON n.platform = o.platform"
        " AND n.chat_id = ?3 AND n.thread_id = o.thread_id"
        " WHERE o.id = messages.conversation_id)"
        " WHERE conversation_id IN (SELECT o.id FROM conversations o"
        " JOIN conversations n ON n.platform = o.platform AND n.chat_id = ?3"
        " AND n.thread_id = o.thread_id WHERE o.platform = ?1"
        " AND o.chat_id = ?2)",
        "UPDATE answers SET conversation_id = (SELECT n.id FROM"
        " conversations o JOIN conversations n ON n.platform = o.platform"
        " AND n.chat_id = ?3 AND n.thread_id = o.thread_id"
        " WHERE o.id = answers.conversation_id)"
        " WHERE conversation_id IN (SELECT o.id FROM conversations o"
        " JOIN conversations n ON n.platform = o.platform AND n.chat_id = ?3"
        " AND n.thread_id = o.thread_id WHERE o.platform = ?1"
        " AND o.chat_id = ?2)",
        /* now empty: nothing cascades */
        "DELETE FROM conversations WHERE platform = ?1 AND chat_id = ?2"
        " AND thread_id IN (SELECT thread_id FROM conversations"
        " WHERE platform = ?1 AND chat_id = ?3)",
        "UPDATE conversations SET chat_id = ?3 WHERE platform = ?1"
        " AND chat_id = ?2",
        "INSERT INTO usage (scope, platform, target, day, requests, limited,"
        " tokens_in, tokens_out, cost_micro_usd) SELECT scope, platform, ?3,"
        " day, requests, limited, tokens_in, tokens_out, cost_micro_usd"
        " FROM usage WHERE scope = 'chat' AND platform = ?1 AND target = "
        "?2" USAGE_ADD_ON_CONFLICT,
        "DELETE FROM usage WHERE scope = 'chat' AND platform = ?1"
        " AND target = ?2",
        "UPDATE OR IGNORE overrides SET target = ?3 WHERE scope = 'chat'"
        " AND platform = ?1 AND target = ?2",
        "DELETE FROM overrides WHERE scope = 'chat' AND platform = ?1"
        " AND target = ?2",
        "INSERT INTO chats (platform, chat_id, model, persona, created_ms,"
        " updated_ms) SELECT platform, ?3, model, persona, ?4, ?4 FROM chats"
        " WHERE platform = ?1 AND chat_id = ?2 AND (model IS NOT NULL"
        " OR persona IS NOT NULL) ON CONFLICT (platform, chat_id) DO UPDATE"
        " SET model = coalesce(model, excluded.model),"
        " persona = coalesce(persona, excluded.persona),"
        " updated_ms = excluded.updated_ms",
        "INSERT INTO chats (platform, chat_id, active, migrated_to,"
        " created_ms, updated_ms) VALUES (?1, ?2, 0, ?3, ?4, ?4)"
        " ON CONFLICT (platform, chat_id) DO UPDATE SET active = 0,"
        " migrated_to = ?3, updated_ms = ?4",
    };
    long rc = 0;

    if (strcmp(old_chat, new_chat) == 0)
        return 0;
    if (store_write_begin(st) < 0 ||
        store_exec_bound(st, "SAVEPOINT chat_migrate", "") < 0)
        return -1;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && rc >= 0; i++)
        rc = store_exec_bound(st, sql[i], "ttti", platform, old_chat, new_chat,
                              now_ms);
    if (rc < 0) {
        store_exec_bound(st, "ROLLBACK TO chat_migrate", "");
        store_exec_bound(st, "RELEASE chat_migrate", "");
        log_warnx("store chat migrate failed platform=%s chat=%s to=%s",
                  platform, old_chat, new_chat);
        return -1;
    }
    return store_exec_bound(st, "RELEASE chat_migrate", "") < 0 ? -1 : 0;
}

int
store_job_delete(struct store *st, int64_t id)
{
    return store_exec_bound(st, "DELETE FROM jobs WHERE id = ?1", "i", id) < 0
               ? -1
               : 0;
}

long
store_purge_before(struct store *st, int64_t before_ms, int limit)
{
    /* ?1 before_ms, ?2 limit, ?3 the day of before_ms */
    static const char *const sql[] = {
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages"
        " WHERE created_ms < ?1 LIMIT ?2)",
        "DELETE FROM feedback WHERE (answer_id, user_id) IN (SELECT"
        " answer_id, user_id FROM feedback WHERE updated_ms < ?1 LIMIT ?2)",
        /* jobs point at answers (SET NULL): a few more writes, no scan */
        "DELETE FROM answers WHERE id IN (SELECT id FROM answers"
        " WHERE created_ms < ?1 LIMIT ?2)",
        "DELETE FROM usage WHERE (scope, platform, target, day) IN (SELECT"
        " scope, platform, target, day FROM usage WHERE day < ?3 LIMIT ?2)",
    };
    long total = 0, n;

    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        if ((n = store_exec_bound(st, sql[i], "iii", before_ms, (int64_t)limit,
                                  before_ms / 86400000)) < 0)
            return -1;
        total += n;
    }
    return total;
}

long
store_limiter_purge(struct store *st, int64_t before_ms, int limit)
{
    return store_exec_bound(st,
                            "DELETE FROM limiter_state WHERE key IN (SELECT key"
                            " FROM limiter_state WHERE updated_ms < ?1"
                            " LIMIT ?2)",
                            "ii", before_ms, (int64_t)limit);
}

int
store_answer_add(struct store *st, int64_t conversation_id, int64_t message_id,
                 const char *platform, const char *user_id, const char *model,
                 int64_t tokens_in, int64_t tokens_out, int64_t cost_micro_usd,
                 int64_t latency_ms, int64_t now_ms, int64_t *id)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_ANSWER_ADD, 1, "answer_add",
                   "izttti"
                   "iiii",
                   conversation_id, message_id, platform, user_id,
                   model ? model : "", tokens_in, tokens_out, cost_micro_usd,
                   latency_ms, now_ms);
    if (s == NULL || store_run(st, s, "answer_add") < 0)
        return -1;
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int
store_sent_add(struct store *st, const char *platform, const char *chat,
               const char *platform_msg_id, int64_t answer_id, int part,
               int64_t now_ms)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_SENT_ADD, 1, "sent_add", "tttiii", platform, chat,
                   platform_msg_id, answer_id, (int64_t)part, now_ms);
    return s == NULL ? -1 : store_run(st, s, "sent_add");
}

/*
 * The answer a message of a chat that migrated to `chat` was recorded
 * for: the newest such row (a send redirected after the move is newer
 * than the old group's own messages).  The answer id, 0 none, -1 error.
 * Only on a vote's miss: chats has no index on migrated_to and needs none
 * (one row per chat with settings or a migration).
 */
static int64_t
sent_find_migrated(struct store *st, const char *platform, const char *chat,
                   const char *platform_msg_id)
{
    sqlite3_stmt *s = NULL;
    int64_t answer = -1;
    int step;

    store_read_begin(st);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT s.answer_id FROM chats c JOIN sent_messages"
                           " s ON s.platform = c.platform AND s.chat_id ="
                           " c.chat_id WHERE c.platform = ?1 AND"
                           " c.migrated_to = ?2 AND s.platform_msg_id = ?3"
                           " ORDER BY s.created_ms DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK) {
        log_warnx("store sent_find_migrated prepare failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
        goto out;
    }
    if (bind_text(s, 1, platform) != SQLITE_OK ||
        bind_text(s, 2, chat) != SQLITE_OK ||
        bind_text(s, 3, platform_msg_id) != SQLITE_OK)
        goto out;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        answer = sqlite3_column_int64(s, 0);
    else if (step == SQLITE_DONE)
        answer = 0;
    else
        log_warnx("store sent_find_migrated failed err=\"%s\"",
                  sqlite3_errmsg(st->db));
out:
    sqlite3_finalize(s);
    return answer;
}

/* The answer a platform message of ours belongs to: > 0, 0 not ours, -1
 * error. */
static int64_t
feedback_answer(struct store *st, const char *platform, const char *chat,
                const char *platform_msg_id)
{
    sqlite3_stmt *s;
    int64_t answer;

    s = store_prep(st, STMT_SENT_FIND, 0, "sent_find", "ttt", platform, chat,
                   platform_msg_id);
    if (s == NULL)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW) {
        answer = sqlite3_column_int64(s, 0);
        stmt_release(s);
        return answer;
    }
    stmt_release(s);
    /* not ours here: perhaps sent by a job of a chat that migrated to
     * this one, recorded under the old id (store_chat_migrate) */
    return sent_find_migrated(st, platform, chat, platform_msg_id);
}

int
store_feedback_vote(struct store *st, const char *platform, const char *chat,
                    const char *platform_msg_id, const char *user_id, int vote,
                    int64_t now_ms)
{
    sqlite3_stmt *s;
    int64_t answer = feedback_answer(st, platform, chat, platform_msg_id);

    if (answer <= 0)
        return answer < 0 ? -1 : 0;
    s = store_prep(st, STMT_VOTE_SET, 1, "vote_set", "ittii", answer, platform,
                   user_id, (int64_t)vote, now_ms);
    if (s == NULL || store_run(st, s, "vote") < 0)
        return -1;
    return 1;
}

int
store_feedback_unvote(struct store *st, const char *platform, const char *chat,
                      const char *platform_msg_id, const char *user_id,
                      int vote)
{
    sqlite3_stmt *s;
    int64_t answer = feedback_answer(st, platform, chat, platform_msg_id);

    if (answer <= 0)
        return answer < 0 ? -1 : 0;
    s = store_prep(st, STMT_VOTE_DEL, 1, "vote_del", "iti", answer, user_id,
                   (int64_t)vote);
    if (s == NULL || store_run(st, s, "unvote") < 0)
        return -1;
    return sqlite3_changes(st->db) > 0 ? 1 : 0;
}

#define DAY_MS 86400000LL

int
store_usage_add(struct store *st, const char *scope, const char *platform,
                const char *target, int64_t now_ms, int64_t requests,
                int64_t limited, int64_t tokens_in, int64_t tokens_out,
                int64_t cost_micro_usd)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_USAGE_ADD, 1, "usage_add", "tttiiiiii", scope,
                   platform, target, now_ms / DAY_MS, requests, limited,
                   tokens_in, tokens_out, cost_micro_usd);
    return s == NULL ? -1 : store_run(st, s, "usage_add");
}

int
store_usage_get(struct store *st, const char *scope, const char *platform,
                const char *target, int64_t now_ms, struct store_usage *u)
{
    sqlite3_stmt *s;
    int step, rc = 0;

    memset(u, 0, sizeof(*u));
    s = store_prep(st, STMT_USAGE_GET, 0, "usage_get", "ttti", scope, platform,
                   target, now_ms / DAY_MS);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        u->requests = sqlite3_column_int64(s, 0);
        u->limited = sqlite3_column_int64(s, 1);
        u->tokens_in = sqlite3_column_int64(s, 2);
        u->tokens_out = sqlite3_column_int64(s, 3);
        u->cost_micro_usd = sqlite3_column_int64(s, 4);
    } else if (step != SQLITE_DONE) {
        rc = -1;
    }
    stmt_release(s);
    return rc;
}

int64_t
store_data_version(struct store *st)
{
    return store_read_int(
        st, store_prep(st, STMT_DATA_VERSION, 0, "data_version", ""),
        "data_version");
}

int
store_overrides_load(struct store *st, store_override_fn fn, void *arg)
{
    sqlite3_stmt *s;
    int rows = 0, step;

    if ((s = store_prep(st, STMT_OVERRIDES, 0, "overrides", "")) == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        rows++;
        if (fn(arg, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1),
               (const char *)sqlite3_column_text(s, 2),
               (const char *)sqlite3_column_text(s, 3),
               sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5)))
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rows = -1;
    stmt_release(s);
    return rows;
}

int
store_override_set(struct store *st, const char *scope, const char *platform,
                   const char *target, const char *kind, int64_t rate_n,
                   int64_t window_ms, const char *set_by, int64_t now_ms)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_OVERRIDE_SET, 1, "override_set", "ttttiiti", scope,
                   platform, target, kind, rate_n, window_ms,
                   set_by ? set_by : "", now_ms);
    return s == NULL ? -1 : store_run(st, s, "override_set");
}

int
store_override_del(struct store *st, const char *scope, const char *platform,
                   const char *target, const char *kind)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_OVERRIDE_DEL, 1, "override_del", "tttt", scope,
                   platform, target, kind);
    return s == NULL ? -1 : store_run(st, s, "override_del");
}

int
store_bans_load(struct store *st, store_ban_fn fn, void *arg)
{
    sqlite3_stmt *s;
    int rows = 0, step;

    if ((s = store_prep(st, STMT_BANS, 0, "bans", "")) == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t until = sqlite3_column_type(s, 2) == SQLITE_NULL
                            ? INT64_MAX
                            : sqlite3_column_int64(s, 2);

        rows++;
        if (fn(arg, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1), until))
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rows = -1;
    stmt_release(s);
    return rows;
}

int
store_ban_set(struct store *st, const char *platform, const char *user,
              int64_t until_ms, const char *banned_by, int64_t now_ms)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_BAN_SET, 1, "ban_set", "ttzti", platform, user,
                   until_ms, banned_by ? banned_by : "", now_ms);
    return s == NULL ? -1 : store_run(st, s, "ban_set");
}

int
store_ban_del(struct store *st, const char *platform, const char *user)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_BAN_DEL, 1, "ban_del", "tt", platform, user);
    return s == NULL ? -1 : store_run(st, s, "ban_del");
}

int
store_chat_settings(struct store *st, const char *platform, const char *chat,
                    char **model, char **persona)
{
    sqlite3_stmt *s;
    int rc = 0, step;

    *model = NULL;
    *persona = NULL;
    s = store_prep(st, STMT_CHAT_GET, 0, "chat_get", "tt", platform, chat);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        *model = col_dup(s, 0);
        *persona = col_dup(s, 1);
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = -1;
    }
    stmt_release(s);
    return rc;
}

int
store_limiter_save(struct store *st, const char *key, const void *blob,
                   size_t len, int64_t now_ms)
{
    sqlite3_stmt *s;

    s = store_prep(st, STMT_LIMITER_SAVE, 1, "limiter_save", "tbi", key, blob,
                   len, now_ms);
    return s == NULL ? -1 : store_run(st, s, "limiter_save");
}

int
store_limiter_load(struct store *st, store_limiter_fn fn, void *arg)
{
    sqlite3_stmt *s;
    int rows = 0, step;

    if ((s = store_prep(st, STMT_LIMITER_LOAD, 0, "limiter_load", "")) == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        const void *blob = sqlite3_column_blob(s, 1);
        size_t len = (size_t)sqlite3_column_bytes(s, 1);

        rows++;
        if (key != NULL && fn(arg, key, blob, len, sqlite3_column_int64(s, 2)))
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rows = -1;
    stmt_release(s);
    return rows;
}

/* ---- rare reads and writes: commands, parleyctl (prepared per call) ---- */

/* A statement prepared for one call and bound from fmt; NULL on error. */
static sqlite3_stmt *
store_query(struct store *st, const char *what, const char *sql,
            const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    va_list ap;
    int rc;

    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        log_warnx("store %s prepare failed err=\"%s\"", what,
                  sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        return NULL;
    }
    va_start(ap, fmt);
    rc = store_vbind(st, s, what, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

/* Ends a row loop: logs a failed step; returns rows, or -1. */
static long
store_rows_end(struct store *st, sqlite3_stmt *s, int step, long rows,
               const char *what)
{
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_warnx("store %s failed err=\"%s\"", what, sqlite3_errmsg(st->db));
        rows = -1;
    }
    sqlite3_finalize(s);
    return rows;
}

static const char *
col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

int
store_message_author(struct store *st, const char *platform, const char *chat,
                     const char *message_id, char *user, size_t len)
{
    static const char *const sql[] = {
        "SELECT user_id FROM jobs WHERE platform = ?1 AND chat_id = ?2"
        " AND message_id = ?3",
        "SELECT m.user_id FROM messages m JOIN conversations c"
        " ON c.id = m.conversation_id WHERE c.platform = ?1"
        " AND c.chat_id = ?2 AND m.platform_msg_id = ?3"
        " AND m.user_id IS NOT NULL LIMIT 1",
    };

    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *s = store_query(st, "message_author", sql[i], "ttt",
                                      platform, chat, message_id);
        int step;

        if (s == NULL)
            return -1;
        step = sqlite3_step(s);
        if (step == SQLITE_ROW && col_text(s, 0) != NULL &&
            col_text(s, 0)[0] != '\0') {
            snprintf(user, len, "%s", col_text(s, 0));
            sqlite3_finalize(s);
            return 1;
        }
        if (store_rows_end(st, s, step, 0, "message_author") < 0)
            return -1;
    }
    return 0;
}

long
store_history_purge(struct store *st, const char *platform, const char *user)
{
    static const char *const one[] = {
        SQL_DEL_USER_HISTORY,
    };
    long total = 0, n;

    if (platform == NULL || user == NULL)
        return store_exec_bound(st, "DELETE FROM messages", "");
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        if ((n = store_exec_bound(st, one[i], "tt", platform, user)) < 0)
            return -1;
        total += n;
    }
    return total;
}

long
store_history_export(struct store *st, const char *platform, const char *user,
                     store_history_row_fn fn, void *arg)
{
    sqlite3_stmt *s;
    long rows = 0;
    int step;

    s = store_query(
        st, "history_export",
        "SELECT m.id, c.platform, c.chat_id, c.thread_id, m.role, m.user_id,"
        " m.text, m.tokens, m.created_ms FROM messages m JOIN conversations c"
        " ON c.id = m.conversation_id WHERE ?1 IS NULL OR (c.platform = ?1"
        " AND (m.user_id = ?2 OR m.id IN (SELECT message_id FROM answers"
        " WHERE platform = ?1 AND user_id = ?2))) ORDER BY m.id",
        "tt", platform, user);
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_history_row r;

        r.id = sqlite3_column_int64(s, 0);
        r.platform = col_text(s, 1);
        r.chat = col_text(s, 2);
        r.thread = col_text(s, 3);
        r.role = col_text(s, 4);
        r.user_id = col_text(s, 5);
        r.text = col_text(s, 6);
        r.tokens = sqlite3_column_int64(s, 7);
        r.created_ms = sqlite3_column_int64(s, 8);
        rows++;
        if (fn(arg, &r))
            break;
    }
    return store_rows_end(st, s, step, rows, "history_export");
}

static void
usage_from_row(sqlite3_stmt *s, int at, struct store_usage *u)
{
    u->requests = sqlite3_column_int64(s, at);
    u->limited = sqlite3_column_int64(s, at + 1);
    u->tokens_in = sqlite3_column_int64(s, at + 2);
    u->tokens_out = sqlite3_column_int64(s, at + 3);
    u->cost_micro_usd = sqlite3_column_int64(s, at + 4);
}

int
store_usage_sum(struct store *st, const char *scope, const char *platform,
                const char *target, int64_t from_day, int64_t to_day,
                struct store_usage *u)
{
    sqlite3_stmt *s;
    int step;

    memset(u, 0, sizeof(*u));
    s = store_query(st, "usage_sum",
                    "SELECT coalesce(sum(requests), 0), coalesce(sum(limited),"
                    " 0), coalesce(sum(tokens_in), 0), coalesce(sum("
                    "tokens_out), 0), coalesce(sum(cost_micro_usd), 0)"
                    " FROM usage WHERE scope = ?1 AND platform = ?2"
                    " AND target = ?3 AND day BETWEEN ?4 AND ?5",
                    "tttii", scope, platform, target, from_day, to_day);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        usage_from_row(s, 0, u);
    return store_rows_end(st, s, step, 0, "usage_sum") < 0 ? -1 : 0;
}

long
store_usage_list(struct store *st, const char *scope, const char *platform,
                 const char *target, int64_t from_day, store_usage_fn fn,
                 void *arg)
{
    sqlite3_stmt *s;
    long rows = 0;
    int step;

    s = store_query(st, "usage_list",
                    "SELECT scope, platform, target, day, requests, limited,"
                    " tokens_in, tokens_out, cost_micro_usd FROM usage"
                    " WHERE scope = ?1 AND (?2 IS NULL OR (platform = ?2"
                    " AND target = ?3)) AND day >= ?4"
                    " ORDER BY day DESC, platform, target",
                    "ttti", scope, platform, target, from_day);
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_usage u;

        usage_from_row(s, 4, &u);
        rows++;
        if (fn(arg, col_text(s, 0), col_text(s, 1), col_text(s, 2),
               sqlite3_column_int64(s, 3), &u))
            break;
    }
    return store_rows_end(st, s, step, rows, "usage_list");
}

long
store_feedback_export(struct store *st, int64_t since_ms, store_feedback_fn fn,
                      void *arg)
{
    sqlite3_stmt *s;
    long rows = 0;
    int step;

    /* the question is the user message stored right before the answer's
     * (job_answered writes the two in one callback) */
    s = store_query(
        st, "feedback_export",
        "SELECT f.answer_id, f.platform, c.chat_id, c.thread_id, f.user_id,"
        " f.vote, f.updated_ms, a.model, a.user_id, (SELECT q.text FROM"
        " messages q WHERE q.id = a.message_id - 1 AND q.role = 'user'"
        " AND q.conversation_id = a.conversation_id), m.text"
        " FROM feedback f JOIN answers a ON a.id = f.answer_id"
        " JOIN conversations c ON c.id = a.conversation_id"
        " LEFT JOIN messages m ON m.id = a.message_id"
        " WHERE f.updated_ms >= ?1 ORDER BY f.updated_ms, f.answer_id,"
        " f.user_id",
        "i", since_ms);
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_feedback_row r;

        r.answer_id = sqlite3_column_int64(s, 0);
        r.platform = col_text(s, 1);
        r.chat = col_text(s, 2);
        r.thread = col_text(s, 3);
        r.user_id = col_text(s, 4);
        r.vote = sqlite3_column_int(s, 5);
        r.updated_ms = sqlite3_column_int64(s, 6);
        r.model = col_text(s, 7);
        r.asker = col_text(s, 8);
        r.question = col_text(s, 9);
        r.answer = col_text(s, 10);
        rows++;
        if (fn(arg, &r))
            break;
    }
    return store_rows_end(st, s, step, rows, "feedback_export");
}

int
store_feedback_recent(struct store *st, int window, int64_t *n, int64_t *down)
{
    sqlite3_stmt *s;
    int step;

    *n = *down = 0;
    s = store_query(st, "feedback_recent",
                    "SELECT count(*), coalesce(sum(vote < 0), 0) FROM (SELECT"
                    " vote FROM feedback ORDER BY updated_ms DESC LIMIT ?1)",
                    "i", (int64_t)window);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        *n = sqlite3_column_int64(s, 0);
        *down = sqlite3_column_int64(s, 1);
    }
    return store_rows_end(st, s, step, 0, "feedback_recent") < 0 ? -1 : 0;
}

int
store_stats_add(struct store *st, int64_t now_ms,
                const struct store_counters *c)
{
    return store_exec_bound(
               st,
               "INSERT INTO stats_daily (day, requests, answers, limited,"
               " errors, retries, fallbacks, tokens_in, tokens_out,"
               " cost_micro_usd, commands) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
               " ?7, ?8, ?9, ?10, ?11) ON CONFLICT (day) DO UPDATE SET"
               " requests = requests + excluded.requests,"
               " answers = answers + excluded.answers,"
               " limited = limited + excluded.limited,"
               " errors = errors + excluded.errors,"
               " retries = retries + excluded.retries,"
               " fallbacks = fallbacks + excluded.fallbacks,"
               " tokens_in = tokens_in + excluded.tokens_in,"
               " tokens_out = tokens_out + excluded.tokens_out,"
               " cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd,"
               " commands = commands + excluded.commands",
               "iiiiiiiiiii", now_ms / DAY_MS, c->requests, c->answers,
               c->limited, c->errors, c->retries, c->fallbacks, c->tokens_in,
               c->tokens_out, c->cost_micro_usd, c->commands) < 0
               ? -1
               : 0;
}

/*
 * Log-linear buckets (as HdrHistogram's): 0..15 ms exactly, then 8
 * buckets per power of two, each at most 12.5% wide.  Bucket 255 holds
 * everything from 2^33 ms (about 99 days) on.
 */
int
store_latency_bucket(int64_t ms)
{
    int e = 0, b;

    if (ms < 16)
        return ms < 0 ? 0 : (int)ms;
    for (int64_t v = ms; v > 1; v >>= 1)
        e++;
    b = 16 + (e - 4) * 8 + (int)((ms >> (e - 3)) & 7);
    return b >= STORE_LATENCY_BUCKETS ? STORE_LATENCY_BUCKETS - 1 : b;
}

int64_t
store_latency_upper(int bucket)
{
    int e, m;

    if (bucket < 16)
        return bucket < 0 ? 0 : bucket;
    e = 4 + (bucket - 16) / 8;
    m = (bucket - 16) % 8;
    return ((int64_t)(9 + m) << (e - 3)) - 1;
}

int
store_latency_add(struct store *st, int64_t now_ms, int bucket, int64_t n)
{
    return store_exec_bound(st,
                            "INSERT INTO latency_daily (day, bucket, n)"
                            " VALUES (?1, ?2, ?3) ON CONFLICT (day, bucket)"
                            " DO UPDATE SET n = n + excluded.n",
                            "iii", now_ms / DAY_MS, (int64_t)bucket, n) < 0
               ? -1
               : 0;
}

static int
stats_counters(struct store *st, int64_t from_day, struct store_counters *c,
               int64_t *first_day)
{
    sqlite3_stmt *s;
    int step;

    memset(c, 0, sizeof(*c));
    s = store_query(
        st, "stats_read",
        "SELECT coalesce(sum(requests), 0), coalesce(sum(answers), 0),"
        " coalesce(sum(limited), 0), coalesce(sum(errors), 0),"
        " coalesce(sum(retries), 0), coalesce(sum(fallbacks), 0),"
        " coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0),"
        " coalesce(sum(cost_micro_usd), 0), coalesce(sum(commands), 0),"
        " coalesce(min(day), -1) FROM stats_daily WHERE day >= ?1",
        "i", from_day);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        c->requests = sqlite3_column_int64(s, 0);
        c->answers = sqlite3_column_int64(s, 1);
        c->limited = sqlite3_column_int64(s, 2);
        c->errors = sqlite3_column_int64(s, 3);
        c->retries = sqlite3_column_int64(s, 4);
        c->fallbacks = sqlite3_column_int64(s, 5);
        c->tokens_in = sqlite3_column_int64(s, 6);
        c->tokens_out = sqlite3_column_int64(s, 7);
        c->cost_micro_usd = sqlite3_column_int64(s, 8);
        c->commands = sqlite3_column_int64(s, 9);
        if (first_day != NULL)
            *first_day = sqlite3_column_int64(s, 10);
    }
    return store_rows_end(st, s, step, 0, "stats_read") < 0 ? -1 : 0;
}

int
store_stats_read(struct store *st, int64_t now_ms, struct store_stats *out)
{
    int64_t from_day = now_ms / DAY_MS - 6, hist[STORE_LATENCY_BUCKETS];
    int64_t p50_rank, p95_rank, cum = 0;
    sqlite3_stmt *s;
    int step;

    memset(out, 0, sizeof(*out));
    memset(hist, 0, sizeof(hist));
    out->latency_p50_ms = out->latency_p95_ms = -1;
    if (stats_counters(st, from_day, &out->week, NULL) < 0 ||
        stats_counters(st, INT64_MIN, &out->total, &out->first_day) < 0)
        return -1;
    s = store_query(st, "stats_votes",
                    "SELECT coalesce(sum(vote > 0), 0), coalesce(sum(vote < 0),"
                    " 0) FROM feedback WHERE updated_ms >= ?1",
                    "i", now_ms - 7 * DAY_MS);
    if (s == NULL)
        return -1;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        out->votes_up = sqlite3_column_int64(s, 0);
        out->votes_down = sqlite3_column_int64(s, 1);
    }
    if (store_rows_end(st, s, step, 0, "stats_votes") < 0)
        return -1;
    s = store_query(st, "stats_latency",
                    "SELECT bucket, sum(n) FROM latency_daily WHERE day >= ?1"
                    " GROUP BY bucket",
                    "i", from_day);
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int b = sqlite3_column_int(s, 0);

        if (b >= 0 && b < STORE_LATENCY_BUCKETS) {
            hist[b] += sqlite3_column_int64(s, 1);
            out->latency_n += sqlite3_column_int64(s, 1);
        }
    }
    if (store_rows_end(st, s, step, 0, "stats_latency") < 0)
        return -1;
    /* nearest-rank percentiles: the smallest bucket holding rank ceil(pN) */
    p50_rank = (out->latency_n + 1) / 2;
    p95_rank = (out->latency_n * 95 + 99) / 100;
    for (int b = 0; b < STORE_LATENCY_BUCKETS && out->latency_n > 0; b++) {
        cum += hist[b];
        if (out->latency_p50_ms < 0 && cum >= p50_rank)
            out->latency_p50_ms = store_latency_upper(b);
        if (out->latency_p95_ms < 0 && cum >= p95_rank)
            out->latency_p95_ms = store_latency_upper(b);
    }
    return 0;
}

int
store_chat_set(struct store *st, const char *platform, const char *chat,
               const char *which, const char *value, int64_t now_ms)
{
    static const char model_sql[] =
        "INSERT INTO chats (platform, chat_id, model, created_ms, updated_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (platform, chat_id) DO"
        " UPDATE SET model = excluded.model, updated_ms = excluded.updated_ms";
    static const char persona_sql[] =
        "INSERT INTO chats (platform, chat_id, persona, created_ms,"
        " updated_ms) VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (platform,"
        " chat_id) DO UPDATE SET persona = excluded.persona,"
        " updated_ms = excluded.updated_ms";
    const char *sql;

    if (strcmp(which, "model") == 0)
        sql = model_sql;
    else if (strcmp(which, "persona") == 0)
        sql = persona_sql;
    else
        return -1;
    return store_exec_bound(st, sql, "ttti", platform, chat, value, now_ms) < 0
               ? -1
               : 0;
}

int
store_chats_load(struct store *st, store_chat_fn fn, void *arg)
{
    sqlite3_stmt *s;
    long rows = 0;
    int step;

    s = store_query(st, "chats_load",
                    "SELECT platform, chat_id, model, persona FROM chats"
                    " WHERE model IS NOT NULL OR persona IS NOT NULL"
                    " ORDER BY platform, chat_id",
                    "");
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        rows++;
        if (fn(arg, col_text(s, 0), col_text(s, 1), col_text(s, 2),
               col_text(s, 3)))
            break;
    }
    return (int)store_rows_end(st, s, step, rows, "chats_load");
}

long
store_audit_list(struct store *st, int limit, store_audit_fn fn, void *arg)
{
    sqlite3_stmt *s;
    long rows = 0;
    int step;

    s = store_query(st, "audit_list",
                    "SELECT id, ts_ms, platform, actor, action, target, detail"
                    " FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1)"
                    " ORDER BY id",
                    "i", (int64_t)(limit > 0 ? limit : -1));
    if (s == NULL)
        return -1;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        rows++;
        if (fn(arg, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
               col_text(s, 2), col_text(s, 3), col_text(s, 4), col_text(s, 5),
               col_text(s, 6)))
            break;
    }
    return store_rows_end(st, s, step, rows, "audit_list");
}
