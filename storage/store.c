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
 * The statement cache: one slot per statement, prepared on first use with
 * SQLITE_PREPARE_PERSISTENT, reset (and its bindings cleared, so no
 * pointer into a caller's buffer outlives the call) after each use.  A
 * new query is a new enum value plus its SQL below.
 */
enum store_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_KV_GET,
    STMT_KV_SET,
    STMT_KV_DEL,
    STMT_AUDIT_ADD,
    STMT_N
};

static const char *const stmt_sql[STMT_N] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
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
    int open;         /* handles whose close callback is still due */
};

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[STMT_N];
    int in_tx;  /* our BEGIN IMMEDIATE is open */
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
        st->lost = 1;
        log_warnx("store transaction rolled back, pending writes lost");
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
        if (store_exec(st, schema_sql(version), err, errlen) < 0)
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
    char sql[64];
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

    if (version < 0 || version > schema_latest()) {
        errf(err, errlen, "%s: unknown schema version %d", path, version);
        goto out;
    }
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

    snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d",
             STORE_JOURNAL_SIZE_LIMIT);
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
hooks_closed(uv_handle_t *h)
{
    struct store_hooks *hooks = h->data;

    if (--hooks->open == 0)
        free(hooks);
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

int
store_write_begin(struct store *st)
{
    sqlite3_stmt *s;

    if (st->in_tx)
        return 0;
    if ((s = store_stmt(st, STMT_BEGIN)) == NULL)
        return -1;
    if (store_run(st, s, "begin") < 0)
        return -1;
    st->in_tx = 1;
    return 0;
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
        st->commits++;
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
        st->lost = 1;
        log_warnx("store transaction rolled back, pending writes lost");
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

static void
hooks_prepare(uv_prepare_t *h)
{
    struct store_hooks *hooks = h->data;

    if (hooks->st != NULL)
        store_flush(hooks->st);
}

static void
hooks_check(uv_check_t *h)
{
    struct store_hooks *hooks = h->data;

    if (hooks->st != NULL)
        store_flush(hooks->st);
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
    if ((hooks = calloc(1, sizeof(*hooks))) == NULL) {
        log_warnx("store attach: out of memory");
        return -1;
    }
    hooks->st = st;
    uv_prepare_init(loop, &hooks->prepare);
    uv_check_init(loop, &hooks->check);
    hooks->prepare.data = hooks;
    hooks->check.data = hooks;
    hooks->open = 2;
    uv_prepare_start(&hooks->prepare, hooks_prepare);
    uv_check_start(&hooks->check, hooks_check);
    uv_unref((uv_handle_t *)&hooks->prepare);
    uv_unref((uv_handle_t *)&hooks->check);
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
