/* test_store: storage/store migrations, WAL, grouped commits, accessors. */
#include "storage/store.h"
#include "tests/t.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

static char tmpdir[64];

/* Each test gets its own file; the -wal and -shm companions go with it. */
static void
db_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s.db", tmpdir, name);
}

static void
db_remove(const char *path)
{
    char p[300];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* A second connection, as parleyctl would have: sees committed rows only. */
static sqlite3 *
raw_open(const char *path)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_open %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* First column of the first row as an integer; -1 on error. */
static long long
raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    long long v = -1;

    if (db == NULL)
        return -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_int %s: %s\n", sql, sqlite3_errmsg(db));
        return -1;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int
raw_exec(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec %s: %s\n", sql, sqlite3_errmsg(db));
    return rc;
}

/* The schema as text, to compare an upgraded db with a fresh one. */
static void
raw_schema(sqlite3 *db, char *buf, size_t len)
{
    sqlite3_stmt *s = NULL;
    size_t off = 0;

    buf[0] = '\0';
    if (sqlite3_prepare_v2(db,
                           "SELECT type, name, tbl_name, sql FROM sqlite_master"
                           " ORDER BY type, name",
                           -1, &s, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(s) == SQLITE_ROW && off < len) {
        int n = snprintf(
            buf + off, len - off, "%s %s %s %s\n", sqlite3_column_text(s, 0),
            sqlite3_column_text(s, 1), sqlite3_column_text(s, 2),
            sqlite3_column_text(s, 3) ? (const char *)sqlite3_column_text(s, 3)
                                      : "-");
        if (n < 0)
            break;
        off += (size_t)n;
    }
    sqlite3_finalize(s);
}

static const char *const want_tables[] = {
    "conversations",   "messages",  "answers", "sent_messages", "feedback",
    "usage",           "overrides", "bans",    "limiter_state", "audit",
    "connector_state", "chats",     "jobs",    "stats_daily",   "latency_daily",
};

static const char *const want_indexes[] = {
    "jobs_state_next",  "jobs_updated",          "jobs_user",
    "jobs_answer",      "messages_conversation", "messages_user",
    "messages_created", "answers_conversation",  "answers_message",
    "answers_user",     "answers_created",       "sent_messages_answer",
    "feedback_user",    "feedback_updated",      "usage_day",
    "audit_ts",         "limiter_state_updated", "audit_actor",
    "audit_target",
};

static void
test_fresh(void)
{
    char path[256], err[256] = "", sql[256];
    struct store *st;
    sqlite3 *db;
    sqlite3_stmt *s = NULL;

    db_path(path, sizeof(path), "fresh");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    if (st == NULL)
        return;
    T_OK(store_latest_version() >= 2);
    T_EQ_INT(store_schema_version(st), store_latest_version());
    T_EQ_INT(store_writable(st), 1);

    db = raw_open(path);
    for (size_t i = 0; i < sizeof(want_tables) / sizeof(want_tables[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_master"
                 " WHERE type = 'table' AND name = '%s'",
                 want_tables[i]);
        T_OKF(raw_int(db, sql) == 1, "table %s", want_tables[i]);
    }
    for (size_t i = 0; i < sizeof(want_indexes) / sizeof(want_indexes[0]);
         i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_master"
                 " WHERE type = 'index' AND name = '%s'",
                 want_indexes[i]);
        T_OKF(raw_int(db, sql) == 1, "index %s", want_indexes[i]);
    }
    /* WAL is a property of the file: a second connection sees it too */
    T_OK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) ==
         SQLITE_OK);
    T_OK(sqlite3_step(s) == SQLITE_ROW);
    T_EQ_STR((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    T_EQ_INT(raw_int(db, "PRAGMA user_version"), store_latest_version());
    T_EQ_INT(raw_int(db, "PRAGMA application_id"), 0x50524c59);
    T_EQ_INT(raw_int(db, "PRAGMA foreign_key_check"), -1); /* no rows */
    sqlite3_close(db);

    /* reopening a current db changes nothing */
    store_close(st);
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    T_EQ_INT(st ? store_schema_version(st) : -1, store_latest_version());
    store_close(st);
    db_remove(path);
}

/*
 * Rows a user could have at each version.  `since` is the migration that
 * created the table; an upgrade must keep every one.
 */
static const struct {
    int since;
    const char *table;
    const char *sql;
} seed[] = {
    {1, "conversations",
     "INSERT INTO conversations (id, platform, chat_id, thread_id,"
     " created_ms) VALUES (1, 'telegram', '-1001234567890', '', 1000),"
     " (2, 'slack', 'C024BE91L', '1712345678.000100', 1001)"},
    {1, "messages",
     "INSERT INTO messages (id, conversation_id, role, user_id,"
     " platform_msg_id, text, tokens, created_ms) VALUES"
     " (1, 1, 'user', '9223372036854775807', '42', 'hi @bot', 3, 1000),"
     " (2, 1, 'assistant', NULL, NULL, 'hello', 2, 1001)"},
    {1, "answers",
     "INSERT INTO answers (id, conversation_id, message_id, platform,"
     " user_id, model, tokens_in, tokens_out, cost_micro_usd, latency_ms,"
     " created_ms) VALUES (1, 1, 2, 'telegram', '9223372036854775807',"
     " 'main', 10, 2, 7, 900, 1001)"},
    {1, "sent_messages",
     "INSERT INTO sent_messages (platform, chat_id, platform_msg_id,"
     " answer_id, part, created_ms) VALUES"
     " ('telegram', '-1001234567890', '43', 1, 0, 1002)"},
    {1, "feedback",
     "INSERT INTO feedback (answer_id, platform, user_id, vote,"
     " created_ms, updated_ms) VALUES (1, 'telegram', '11', -1, 1003, 1003)"},
    {1, "usage",
     "INSERT INTO usage (scope, platform, target, day, requests, tokens_in,"
     " tokens_out, cost_micro_usd) VALUES"
     " ('user', 'discord', '18446744073709551615', 19800, 3, 30, 20, 50),"
     " ('chat', 'discord', '1234', 19800, 3, 30, 20, 50)"},
    {1, "overrides",
     "INSERT INTO overrides (scope, platform, target, kind, rate_n,"
     " window_ms, set_by, updated_ms) VALUES"
     " ('user', 'slack', 'U033', 'limit', 5, 60000, 'slack:U01', 1004)"},
    {1, "bans",
     "INSERT INTO bans (platform, user_id, until_ms, created_ms) VALUES"
     " ('telegram', '666', NULL, 1005), ('discord', '667', 99999, 1005)"},
    {1, "limiter_state",
     "INSERT INTO limiter_state (key, state, updated_ms) VALUES"
     " ('u:telegram:11', x'0102', 1006)"},
    {1, "audit",
     "INSERT INTO audit (ts_ms, platform, actor, action, target, detail)"
     " VALUES (1007, 'telegram', '11', 'ban', '666', NULL)"},
    {1, "connector_state",
     "INSERT INTO connector_state (platform, key, value, updated_ms)"
     " VALUES ('telegram', 'offset', '123456789', 1008)"},
    {1, "chats",
     "INSERT INTO chats (platform, chat_id, active, migrated_to, model,"
     " persona, created_ms, updated_ms) VALUES"
     " ('telegram', '-42', 0, '-1001234567890', NULL, NULL, 1, 1)"},
    {2, "jobs",
     "INSERT INTO jobs (platform, chat_id, message_id, user_id, text,"
     " state, created_ms, updated_ms) VALUES"
     " ('telegram', '-1001234567890', '42', '11', 'hi', 'queued', 1, 1)"},
    {3, "jobs",
     "INSERT INTO jobs (platform, chat_id, message_id, user_id, text,"
     " state, reserved, user_name, created_ms, updated_ms) VALUES"
     " ('slack', 'C1', '1.2', 'U1', 'hi', 'asking', 1124, 'Ann', 1, 1)"},
    {4, "jobs",
     "INSERT INTO jobs (platform, chat_id, message_id, user_id, text,"
     " state, reply_to, created_ms, updated_ms) VALUES"
     " ('discord', '55', '56', '57', 'ban', 'queued', '54', 1, 1)"},
    {4, "stats_daily",
     "INSERT INTO stats_daily (day, requests, answers, limited, errors,"
     " retries, fallbacks, tokens_in, tokens_out, cost_micro_usd, commands)"
     " VALUES (19800, 10, 9, 1, 1, 2, 1, 300, 200, 500, 3)"},
    {4, "latency_daily",
     "INSERT INTO latency_daily (day, bucket, n) VALUES (19800, 40, 7)"},
};

#define SEED_N (sizeof(seed) / sizeof(seed[0]))

static void
test_upgrade(void)
{
    char path[256], fresh_path[256], err[256] = "", sql[256];
    static char want[16384], got[16384];
    struct store *st;
    sqlite3 *db;

    /* the reference: a db created at the latest version in one go */
    db_path(fresh_path, sizeof(fresh_path), "reference");
    st = store_open(fresh_path, err, sizeof(err));
    store_close(st);
    db = raw_open(fresh_path);
    raw_schema(db, want, sizeof(want));
    sqlite3_close(db);
    T_OK(strstr(want, "jobs_state_next") != NULL);

    for (int v = 0; v < store_latest_version(); v++) {
        char name[32];
        int inserted[SEED_N] = {0};

        snprintf(name, sizeof(name), "upgrade-from-%d", v);
        db_path(path, sizeof(path), name);
        st = store_open_at_version(path, v, err, sizeof(err));
        T_OKF(st != NULL, "v=%d %s", v, err);
        if (st == NULL)
            continue;
        T_EQ_INT(store_schema_version(st), v);
        store_close(st);

        db = raw_open(path);
        T_EQ_INT(raw_int(db, "PRAGMA user_version"), v);
        raw_exec(db, "PRAGMA foreign_keys = ON");
        for (size_t i = 0; i < SEED_N; i++) {
            if (seed[i].since > v)
                continue;
            T_OKF(raw_exec(db, seed[i].sql) == SQLITE_OK, "v=%d %s", v,
                  seed[i].table);
            inserted[i] = (int)sqlite3_changes(db);
        }
        sqlite3_close(db);

        st = store_open(path, err, sizeof(err));
        T_OKF(st != NULL, "upgrade from v=%d: %s", v, err);
        if (st == NULL)
            continue;
        T_EQ_INT(store_schema_version(st), store_latest_version());
        store_close(st);

        db = raw_open(path);
        for (size_t i = 0; i < SEED_N; i++) {
            int rows = 0;

            if (seed[i].since > v)
                continue;
            /* a table may be seeded at several versions: all its rows */
            for (size_t k = 0; k < SEED_N; k++)
                if (seed[k].since <= v &&
                    strcmp(seed[k].table, seed[i].table) == 0)
                    rows += inserted[k];
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
                     seed[i].table);
            T_OKF(raw_int(db, sql) == rows, "v=%d table %s", v, seed[i].table);
        }
        if (v >= 1) {
            /* int64 / uint64 platform ids survive as text, exactly */
            T_EQ_INT(raw_int(db, "SELECT count(*) FROM messages"
                                 " WHERE user_id = '9223372036854775807'"),
                     1);
            T_EQ_INT(raw_int(db, "SELECT count(*) FROM usage"
                                 " WHERE target = '18446744073709551615'"),
                     1);
        }
        /* the upgraded schema is the fresh one, object for object */
        raw_schema(db, got, sizeof(got));
        T_OKF(strcmp(got, want) == 0, "v=%d schema differs:\n%s\nvs\n%s", v,
              got, want);
        /* and the rows inserted at v still satisfy the foreign keys */
        T_EQ_INT(raw_int(db, "PRAGMA foreign_key_check"), -1);
        sqlite3_close(db);
        db_remove(path);
    }
    db_remove(fresh_path);

    /* bounds of the test hook */
    st = store_open_at_version(path, store_latest_version() + 1, err,
                               sizeof(err));
    T_OK(st == NULL);
    T_CONTAINS(err, "unknown schema version");
    store_close(st);
}

static void
test_refuse(void)
{
    char path[256], err[256] = "", sql[64];
    struct store *st;
    sqlite3 *db;
    FILE *f;

    /* newer than we know: refused, and left as it was */
    db_path(path, sizeof(path), "newer");
    st = store_open(path, err, sizeof(err));
    store_close(st);
    db = raw_open(path);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
             store_latest_version() + 1);
    raw_exec(db, sql);
    sqlite3_close(db);
    err[0] = '\0';
    st = store_open(path, err, sizeof(err));
    T_OK(st == NULL);
    T_CONTAINS(err, "newer than this parley knows");
    T_CONTAINS(err, path);
    store_close(st);
    db = raw_open(path);
    T_EQ_INT(raw_int(db, "PRAGMA user_version"), store_latest_version() + 1);
    sqlite3_close(db);
    db_remove(path);

    /* some other program's database */
    db_path(path, sizeof(path), "foreign");
    db = NULL;
    sqlite3_open(path, &db);
    raw_exec(db, "PRAGMA application_id = 42; CREATE TABLE t (x)");
    sqlite3_close(db);
    err[0] = '\0';
    st = store_open(path, err, sizeof(err));
    T_OK(st == NULL);
    T_CONTAINS(err, "not a parley database");
    store_close(st);
    db_remove(path);

    /* not a database at all */
    db_path(path, sizeof(path), "garbage");
    if ((f = fopen(path, "w")) != NULL) {
        for (int i = 0; i < 200; i++)
            fputs("this is not an sqlite file. ", f);
        fclose(f);
    }
    err[0] = '\0';
    st = store_open(path, err, sizeof(err));
    T_OK(st == NULL);
    T_CONTAINS(err, path);
    store_close(st);
    db_remove(path);

    /* a path that cannot be created */
    err[0] = '\0';
    st = store_open("/nonexistent-dir/parley.db", err, sizeof(err));
    T_OK(st == NULL);
    T_CONTAINS(err, "/nonexistent-dir/parley.db");
    store_close(st);

    store_close(NULL); /* NULL-safe */
}

/*
 * A migration that fails leaves the db at the version before it, with no
 * trace of the half-applied migration: each runs in one transaction.
 */
static void
test_failed_migration(void)
{
    char path[256], err[256] = "";
    struct store *st;
    sqlite3 *db;

    db_path(path, sizeof(path), "failing");
    st = store_open_at_version(path, 1, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    store_close(st);
    db = raw_open(path);
    /* a stray object that migration 2 will trip over half-way */
    raw_exec(db, "CREATE TABLE stray (x);"
                 " CREATE INDEX feedback_user ON stray (x)");
    sqlite3_close(db);

    err[0] = '\0';
    st = store_open(path, err, sizeof(err));
    T_OK(st == NULL);
    T_CONTAINS(err, "migration 2 (jobs) failed");
    T_CONTAINS(err, "feedback_user");
    store_close(st);
    db = raw_open(path);
    T_EQ_INT(raw_int(db, "PRAGMA user_version"), 1);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM sqlite_master"
                         " WHERE name IN ('jobs', 'jobs_state_next',"
                         " 'messages_conversation')"),
             0);
    sqlite3_close(db);
    db_remove(path);
}

static void
test_kv_audit(void)
{
    char path[256], err[256] = "", buf[64], small[4];
    struct store *st;
    sqlite3 *db;

    db_path(path, sizeof(path), "kv");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    if (st == NULL)
        return;

    T_EQ_INT(store_kv_get(st, "telegram", "offset", buf, sizeof(buf)), 0);
    T_EQ_INT(store_kv_set(st, "telegram", "offset", "100"), 0);
    /* reads see the pending (uncommitted) group */
    T_EQ_INT(store_kv_get(st, "telegram", "offset", buf, sizeof(buf)), 1);
    T_EQ_STR(buf, "100");
    T_EQ_INT(store_kv_set(st, "telegram", "offset", "101"), 0);
    T_EQ_INT(store_kv_get(st, "telegram", "offset", buf, sizeof(buf)), 1);
    T_EQ_STR(buf, "101");
    /* keys are per platform */
    T_EQ_INT(store_kv_get(st, "discord", "offset", buf, sizeof(buf)), 0);
    T_EQ_INT(store_kv_set(st, "discord", "session_id", "abcdef0123"), 0);
    /* a value that does not fit is an error, never a silent truncation */
    T_EQ_INT(store_kv_get(st, "discord", "session_id", small, sizeof(small)),
             -1);
    T_EQ_INT(store_kv_set(st, "discord", "seq", ""), 0);
    T_EQ_INT(store_kv_get(st, "discord", "seq", buf, sizeof(buf)), 1);
    T_EQ_STR(buf, "");
    T_EQ_INT(store_kv_del(st, "discord", "seq"), 0);
    T_EQ_INT(store_kv_get(st, "discord", "seq", buf, sizeof(buf)), 0);

    T_EQ_INT(store_audit_add(st, 1700000000000, "telegram", "11", "ban", "666",
                             "1d"),
             0);
    T_EQ_INT(store_audit_add(st, 1700000000001, NULL, "parleyctl", "unban",
                             "telegram:666", NULL),
             0);
    /*
     * A constraint error fails that one write and nothing else: the rest
     * of the group is still committed.
     */
    T_EQ_INT(store_audit_add(st, 1, NULL, NULL, "x", NULL, NULL), -1);
    T_EQ_INT(store_writable(st), 1);
    T_EQ_INT(store_flush(st), 0);

    db = raw_open(path);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM audit"), 2);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM audit WHERE platform IS NULL"
                         " AND detail IS NULL AND actor = 'parleyctl'"),
             1);
    T_EQ_INT(raw_int(db, "SELECT ts_ms FROM audit WHERE action = 'ban'"),
             1700000000000);
    T_EQ_INT(raw_int(db, "SELECT value FROM connector_state"
                         " WHERE platform = 'telegram' AND key = 'offset'"),
             101);
    T_OK(raw_int(db, "SELECT updated_ms FROM connector_state"
                     " WHERE key = 'offset'") > 1600000000000);
    sqlite3_close(db);
    store_close(st);

    /* and it is all there after a reopen */
    st = store_open(path, err, sizeof(err));
    T_EQ_INT(st ? store_kv_get(st, "discord", "session_id", buf, sizeof(buf))
                : -1,
             1);
    T_EQ_STR(buf, "abcdef0123");
    store_close(st);
    db_remove(path);
}

static void
test_grouped(void)
{
    char path[256], err[256] = "";
    struct store *st;
    sqlite3 *db;
    uint64_t c0;

    db_path(path, sizeof(path), "grouped");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    if (st == NULL)
        return;
    db = raw_open(path);
    c0 = store_commits(st);

    T_EQ_INT(store_flush(st), 0); /* nothing pending: no commit */
    T_EQ_INT(store_commits(st), c0);

    T_EQ_INT(store_kv_set(st, "telegram", "a", "1"), 0);
    T_EQ_INT(store_kv_set(st, "telegram", "b", "2"), 0);
    T_EQ_INT(store_kv_set(st, "telegram", "c", "3"), 0);
    T_EQ_INT(store_audit_add(st, 1, "telegram", "11", "x", NULL, NULL), 0);
    /* another connection (parleyctl) sees none of it before the commit */
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM audit"), 0);
    T_EQ_INT(store_commits(st), c0);

    T_EQ_INT(store_flush(st), 0);
    T_EQ_INT(store_commits(st), c0 + 1); /* four writes, one commit */
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 3);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM audit"), 1);

    /* store_sync: the durability point commits at once */
    T_EQ_INT(store_kv_set(st, "slack", "x", "y"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 3);
    T_EQ_INT(store_sync(st), 0);
    T_EQ_INT(store_commits(st), c0 + 2);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 4);
    T_EQ_INT(store_sync(st), 0); /* nothing pending */
    T_EQ_INT(store_commits(st), c0 + 2);

    /* close commits what is pending */
    T_EQ_INT(store_kv_set(st, "slack", "z", "w"), 0);
    store_close(st);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 5);
    sqlite3_close(db);
    db_remove(path);
}

struct loop_ctx {
    struct store *st;
    int fired;
};

static void
on_timer(uv_timer_t *t)
{
    struct loop_ctx *ctx = t->data;

    ctx->fired++;
    store_kv_set(ctx->st, "telegram", "from_timer", "1");
}

static void
on_async(uv_async_t *a)
{
    struct loop_ctx *ctx = a->data;

    ctx->fired++;
    store_kv_set(ctx->st, "discord", "from_io", "1");
    store_audit_add(ctx->st, 2, "discord", "22", "y", NULL, NULL);
}

static void
test_loop(void)
{
    char path[256], err[256] = "";
    struct loop_ctx ctx = {0};
    uv_loop_t loop;
    uv_timer_t timer;
    uv_async_t async;
    sqlite3 *db;
    uint64_t c0;

    db_path(path, sizeof(path), "loop");
    T_EQ_INT(uv_loop_init(&loop), 0);
    ctx.st = store_open(path, err, sizeof(err));
    T_OKF(ctx.st != NULL, "%s", err);
    if (ctx.st == NULL)
        return;
    T_EQ_INT(store_attach_loop(ctx.st, &loop), 0);
    T_EQ_INT(store_attach_loop(ctx.st, &loop), -1); /* once */
    db = raw_open(path);
    c0 = store_commits(ctx.st);

    /* the store's hooks never keep the loop alive on their own */
    T_EQ_INT(uv_loop_alive(&loop), 0);

    /*
     * Turn 1: a write made before the turn and one made by a timer
     * callback are committed together, before the loop could block.
     */
    T_EQ_INT(store_kv_set(ctx.st, "telegram", "before", "1"), 0);
    uv_timer_init(&loop, &timer);
    timer.data = &ctx;
    uv_timer_start(&timer, on_timer, 0, 0);
    uv_async_init(&loop, &async, on_async);
    async.data = &ctx;
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    T_EQ_INT(ctx.fired, 1);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 2);
    T_EQ_INT(store_commits(ctx.st), c0 + 1);

    /* Turn 2: writes from an I/O callback are committed by the check. */
    uv_async_send(&async);
    uv_run(&loop, UV_RUN_NOWAIT);
    T_EQ_INT(ctx.fired, 2);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 3);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM audit"), 1);
    T_EQ_INT(store_commits(ctx.st), c0 + 2);

    /* Turn 3: nothing written, nothing committed. */
    uv_run(&loop, UV_RUN_NOWAIT);
    T_EQ_INT(store_commits(ctx.st), c0 + 2);

    store_close(ctx.st);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_close((uv_handle_t *)&async, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* runs the close callbacks */
    T_EQ_INT(uv_loop_close(&loop), 0);
    sqlite3_close(db);
    db_remove(path);
}

/*
 * On the loop a read opens the turn's group without the write lock:
 * parleyctl can still write, and the group's first write then takes the
 * lock (or, when parleyctl committed since the read, starts over); a group
 * that only read is not counted as a commit.
 */
static void
test_read_group(void)
{
    char path[256], err[256] = "";
    struct store *st;
    struct store_job j;
    uv_loop_t loop;
    sqlite3 *db;
    uint64_t c0;

    db_path(path, sizeof(path), "readgroup");
    T_EQ_INT(uv_loop_init(&loop), 0);
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    if (st == NULL)
        return;
    T_EQ_INT(store_attach_loop(st, &loop), 0);
    db = raw_open(path);
    c0 = store_commits(st);

    /* read, parleyctl writes, then our write: both land */
    T_EQ_INT(store_job_get(st, 1, &j), 0);
    T_EQ_INT(raw_exec(db, "INSERT INTO connector_state (platform, key, value,"
                          " updated_ms) VALUES ('x', 'ctl', '1', 1)"),
             SQLITE_OK);
    T_EQ_INT(store_kv_set(st, "telegram", "a", "1"), 0);
    T_EQ_INT(store_flush(st), 0);
    T_EQ_INT(store_commits(st), c0 + 1);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 2);

    /* read then write with nobody in between: one group, one commit */
    T_EQ_INT(store_job_get(st, 1, &j), 0);
    T_EQ_INT(store_kv_set(st, "telegram", "b", "2"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 2);
    T_EQ_INT(store_flush(st), 0);
    T_EQ_INT(store_commits(st), c0 + 2);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM connector_state"), 3);

    /* a group that only read: ended, not counted */
    T_EQ_INT(store_job_get(st, 1, &j), 0);
    T_EQ_INT(store_flush(st), 0);
    T_EQ_INT(store_commits(st), c0 + 2);
    T_EQ_INT(raw_exec(db, "DELETE FROM connector_state WHERE platform = 'x'"),
             SQLITE_OK);

    store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    sqlite3_close(db);
    db_remove(path);
}

static void
test_jobs_unique(void)
{
    char path[256], err[256] = "";
    struct store *st;
    sqlite3 *db;
    static const char ins[] =
        "INSERT INTO jobs (platform, chat_id, message_id, user_id, text,"
        " created_ms, updated_ms) VALUES ('telegram', '-100', '7', '11',"
        " 'hi', 1, 1)";

    db_path(path, sizeof(path), "jobs");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    store_close(st);
    db = raw_open(path);
    T_EQ_INT(raw_exec(db, ins), SQLITE_OK);
    /* a redelivered message: the same (platform, chat, message id) */
    T_EQ_INT(sqlite3_exec(db, ins, NULL, NULL, NULL), SQLITE_CONSTRAINT);
    T_EQ_INT(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_UNIQUE);
    T_EQ_INT(raw_exec(db, "INSERT OR IGNORE INTO jobs (platform, chat_id,"
                          " message_id, user_id, created_ms, updated_ms)"
                          " VALUES ('telegram', '-100', '7', '11', 2, 2)"),
             SQLITE_OK);
    T_EQ_INT(sqlite3_changes(db), 0);
    /* the same message id in another chat or platform is another job */
    T_EQ_INT(raw_exec(db, "INSERT INTO jobs (platform, chat_id, message_id,"
                          " user_id, created_ms, updated_ms) VALUES"
                          " ('telegram', '-101', '7', '11', 1, 1),"
                          " ('discord', '-100', '7', '11', 1, 1)"),
             SQLITE_OK);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM jobs WHERE state ="
                         " 'received' AND attempts = 0 AND next_at_ms = 0"),
             3);
    /* an unknown state is refused */
    T_OK(sqlite3_exec(db, "UPDATE jobs SET state = 'bogus'", NULL, NULL,
                      NULL) == SQLITE_CONSTRAINT);
    /* resume-on-start uses the (state, next_at_ms) index */
    {
        sqlite3_stmt *s = NULL;
        int uses = 0;

        sqlite3_prepare_v2(db,
                           "EXPLAIN QUERY PLAN SELECT id FROM jobs"
                           " WHERE state = 'queued' AND next_at_ms <= 5",
                           -1, &s, NULL);
        while (s != NULL && sqlite3_step(s) == SQLITE_ROW)
            if (strstr((const char *)sqlite3_column_text(s, 3),
                       "jobs_state_next") != NULL)
                uses = 1;
        sqlite3_finalize(s);
        T_EQ_INT(uses, 1);
    }
    sqlite3_close(db);
    db_remove(path);
}

static int
count_job(void *arg, const struct store_job *j)
{
    int *n = arg;

    (*n)++;
    return j->id < 0;
}

static int
count_limiter(void *arg, const char *key, const void *blob, size_t len,
              int64_t updated)
{
    int *n = arg;

    (*n) += strcmp(key, "w|u:telegram:11") == 0 && len == 3 &&
            memcmp(blob, "\x01\x00\x02", 3) == 0 && updated == 5;
    return 0;
}

static int
count_override(void *arg, const char *scope, const char *platform,
               const char *target, const char *kind, int64_t n, int64_t w)
{
    int *c = arg;

    (*c) += strcmp(scope, "user") == 0 && strcmp(platform, "telegram") == 0 &&
            strcmp(target, "11") == 0 && strcmp(kind, "limit") == 0 && n == 5 &&
            w == 60000;
    return 0;
}

static int
count_ban(void *arg, const char *platform, const char *user, int64_t until)
{
    int *c = arg;

    (void)platform;
    (void)user;
    (*c) += until == INT64_MAX ? 100 : 1;
    return 0;
}

/* The accessors core uses: jobs, history, answers, votes, usage, caches. */
static void
test_core_accessors(void)
{
    char path[256], err[256] = "";
    struct store *st;
    struct store_job j, got;
    struct store_usage u;
    int64_t id = 0, id2 = 0, conv = 0, conv2 = 0, m1 = 0, ans = 0;
    int n = 0;
    char *model, *persona;
    sqlite3 *db;

    db_path(path, sizeof(path), "accessors");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    if (st == NULL)
        return;
    memset(&j, 0, sizeof(j));
    snprintf(j.platform, sizeof(j.platform), "telegram");
    snprintf(j.chat, sizeof(j.chat), "-100");
    snprintf(j.user, sizeof(j.user), "11");
    snprintf(j.user_name, sizeof(j.user_name), "Ann");
    snprintf(j.message_id, sizeof(j.message_id), "42");
    j.text = "hello";
    j.flags = 3;
    j.created_ms = 1000;
    T_EQ_INT(store_job_insert(st, &j, &id), 1);
    T_EQ_INT(store_job_insert(st, &j, &id2), 0); /* redelivery */
    snprintf(j.message_id, sizeof(j.message_id), "43");
    T_EQ_INT(store_job_insert(st, &j, &id2), 1);
    T_OK(id2 > id);
    T_EQ_INT(store_jobs_unfinished(st), 2);
    T_EQ_INT(store_job_get(st, id, &got), 1);
    T_EQ_STR(got.text, "hello");
    T_EQ_STR(got.user_name, "Ann");
    T_EQ_INT(got.state, STORE_JOB_RECEIVED);
    T_EQ_INT(got.flags, 3);
    got.state = STORE_JOB_ANSWERED;
    got.answer = strdup("the answer");
    got.sent_parts = 1;
    got.reserved = 77;
    snprintf(got.error_class, sizeof(got.error_class), "x");
    T_EQ_INT(store_job_save(st, &got, 2000), 0);
    store_job_release(&got);
    T_EQ_INT(store_job_get(st, id, &got), 1);
    T_EQ_STR(got.answer, "the answer");
    T_EQ_INT(got.sent_parts, 1);
    T_EQ_INT(got.reserved, 77);
    T_EQ_STR(got.error_class, "x");
    got.state = STORE_JOB_SENT;
    T_EQ_INT(store_job_save(st, &got, 2000), 0);
    store_job_release(&got);
    T_EQ_INT(store_job_get(st, 999, &got), 0);
    T_EQ_INT(store_job_scan(st, 0, 10, count_job, &n), 1);
    T_EQ_INT(n, 1);
    T_EQ_INT(store_jobs_unfinished(st), 1);
    T_EQ_INT(store_jobs_purge(st, 2001, 10), 1); /* the sent one */
    T_EQ_INT(store_jobs_purge(st, 2001, 10), 0); /* unfinished stay */

    /* history: conversations per thread, newest first, reset, forget */
    T_EQ_INT(store_conversation_id(st, "telegram", "-100", "", 1, &conv), 0);
    T_EQ_INT(store_conversation_id(st, "telegram", "-100", "", 1, &id2), 0);
    T_EQ_INT(conv, id2);
    T_EQ_INT(store_conversation_id(st, "telegram", "-100", "7", 1, &conv2), 0);
    T_OK(conv2 != conv);
    T_EQ_INT(store_message_add(st, conv, "user", "11", "42", "q", 3, 10, &m1),
             0);
    T_EQ_INT(
        store_message_add(st, conv, "assistant", NULL, NULL, "a", 2, 11, &id2),
        0);
    T_EQ_INT(store_answer_add(st, conv, id2, "telegram", "11", "main", 3, 2, 5,
                              100, 11, &ans),
             0);
    T_EQ_INT(store_sent_add(st, "telegram", "-100", "s1", ans, 0, 12), 0);
    T_EQ_INT(store_feedback_vote(st, "telegram", "-100", "s1", "12", 1, 13), 1);
    T_EQ_INT(store_feedback_vote(st, "telegram", "-100", "s1", "12", -1, 14),
             1);
    T_EQ_INT(store_feedback_vote(st, "telegram", "-100", "zz", "12", 1, 14), 0);
    /* a reaction taken back: only the vote it gave goes */
    T_EQ_INT(store_feedback_unvote(st, "telegram", "-100", "s1", "12", 1), 0);
    T_EQ_INT(store_feedback_unvote(st, "telegram", "-100", "zz", "12", -1), 0);
    T_EQ_INT(store_feedback_vote(st, "telegram", "-100", "s1", "13", 1, 14), 1);
    T_EQ_INT(store_feedback_unvote(st, "telegram", "-100", "s1", "13", 1), 1);
    T_EQ_INT(store_feedback_unvote(st, "telegram", "-100", "s1", "13", 1), 0);
    T_EQ_INT(store_usage_add(st, "user", "telegram", "11", 86400000 * 3 + 5, 1,
                             0, 3, 2, 5),
             0);
    T_EQ_INT(store_usage_add(st, "user", "telegram", "11", 86400000 * 3 + 9, 0,
                             1, 0, 0, 0),
             0);
    T_EQ_INT(store_usage_get(st, "user", "telegram", "11", 86400000 * 3, &u),
             0);
    T_EQ_INT(u.requests, 1);
    T_EQ_INT(u.limited, 1);
    T_EQ_INT(u.cost_micro_usd, 5);
    T_EQ_INT(store_history_reset(st, "telegram", "-100", "7"), 0);
    T_EQ_INT(store_forget_user(st, "telegram", "11"), 0);
    T_EQ_INT(store_flush(st), 0);
    db = raw_open(path);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM messages"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM answers"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM feedback"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM usage"), 0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM jobs"), 1); /* unfinished */
    /* retention */
    sqlite3_close(db);
    T_EQ_INT(store_message_add(st, conv, "user", "13", NULL, "old", 1, 5, NULL),
             0);
    T_EQ_INT(
        store_message_add(st, conv, "user", "13", NULL, "new", 1, 50, NULL), 0);
    T_EQ_INT(store_purge_before(st, 10, 100), 1);

    /* caches: overrides, bans, chat settings, limiter rows, data_version */
    T_OK(store_data_version(st) >= 0);
    T_EQ_INT(store_override_set(st, "user", "telegram", "11", "limit", 5, 60000,
                                "admin", 1),
             0);
    n = 0;
    T_EQ_INT(store_overrides_load(st, count_override, &n), 1);
    T_EQ_INT(n, 1);
    T_EQ_INT(store_override_del(st, "user", "telegram", "11", "limit"), 0);
    T_EQ_INT(store_overrides_load(st, count_override, &n), 0);
    T_EQ_INT(store_ban_set(st, "telegram", "66", 0, "admin", 1), 0);
    T_EQ_INT(store_ban_set(st, "telegram", "67", 5000, "admin", 1), 0);
    n = 0;
    T_EQ_INT(store_bans_load(st, count_ban, &n), 2);
    T_EQ_INT(n, 101);
    T_EQ_INT(store_ban_del(st, "telegram", "66"), 0);
    T_EQ_INT(store_chat_settings(st, "telegram", "-100", &model, &persona), 0);
    T_OK(model == NULL && persona == NULL);
    T_EQ_INT(store_limiter_save(st, "w|u:telegram:11", "\x01\x00\x02", 3, 5),
             0);
    n = 0;
    T_EQ_INT(store_limiter_load(st, count_limiter, &n), 1);
    T_EQ_INT(n, 1);
    store_close(st);
    db_remove(path);
}

/* 1 if EXPLAIN QUERY PLAN of sql names index. */
static int
raw_plan_uses(sqlite3 *db, const char *sql, const char *index)
{
    sqlite3_stmt *s = NULL;
    char q[1024];
    int uses = 0;

    snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
        fprintf(stderr, "plan %s: %s\n", sql, sqlite3_errmsg(db));
    while (s != NULL && sqlite3_step(s) == SQLITE_ROW)
        if (strstr((const char *)sqlite3_column_text(s, 3), index) != NULL)
            uses = 1;
    sqlite3_finalize(s);
    return uses;
}

/* How many OpenEphemeral a statement's program has, -1 on error. */
static int
raw_ephemerals(sqlite3 *db, const char *sql)
{
    char ex[1024];
    sqlite3_stmt *s = NULL;
    int n = 0;

    snprintf(ex, sizeof(ex), "EXPLAIN %s", sql);
    if (sqlite3_prepare_v2(db, ex, -1, &s, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(s) == SQLITE_ROW)
        n += strcmp((const char *)sqlite3_column_text(s, 1), "OpenEphemeral") ==
             0;
    sqlite3_finalize(s);
    return n;
}

/*
 * Migration 7: the CHECKs on jobs.state and messages.role are OR chains,
 * so a job insert or save and a message insert build no ephemeral table;
 * they still refuse what they refused.
 */
static void
test_checks_or(void)
{
    char path[256], err[256] = "";
    struct store *st;
    sqlite3 *db;

    db_path(path, sizeof(path), "checks");
    /* a db with rows at version 6, then upgraded */
    st = store_open_at_version(path, 6, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    store_close(st);
    db = raw_open(path);
    T_EQ_INT(raw_exec(db, "INSERT INTO conversations VALUES (1, 'telegram',"
                          " '-1', '', 1);"
                          "INSERT INTO messages (conversation_id, role, text,"
                          " created_ms) VALUES (1, 'user', 'hi', 1);"
                          "INSERT INTO jobs (platform, chat_id, message_id,"
                          " user_id, state, created_ms, updated_ms) VALUES"
                          " ('telegram', '-1', '1', '11', 'queued', 1, 1)"),
             SQLITE_OK);
    sqlite3_close(db);
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    T_EQ_INT(st ? store_schema_version(st) : -1, store_latest_version());
    db = raw_open(path);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE"
                         " (name = 'jobs' AND sql LIKE '%state IN (%') OR"
                         " (name = 'messages' AND sql LIKE '%role IN (%')"),
             0);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE"
                         " name = 'jobs' AND sql LIKE"
                         " '%state = ''sent'' OR state = ''failed'')%'"),
             1);
    T_EQ_INT(raw_ephemerals(db, "INSERT INTO jobs (platform, chat_id,"
                                " message_id, user_id, state, created_ms,"
                                " updated_ms) VALUES ('t', '1', '2', '3',"
                                " 'queued', 1, 1)"),
             0);
    T_EQ_INT(raw_ephemerals(db, "UPDATE jobs SET state = 'sent' WHERE id = 1"),
             0);
    T_EQ_INT(raw_ephemerals(db, "INSERT INTO messages (conversation_id, role,"
                                " text, created_ms) VALUES (1, 'user', 'x',"
                                " 1)"),
             0);
    /* the same values pass, others do not */
    T_EQ_INT(raw_exec(db, "UPDATE jobs SET state = 'failed' WHERE id = 1;"
                          "INSERT INTO messages (conversation_id, role, text,"
                          " created_ms) VALUES (1, 'assistant', 'yo', 2)"),
             SQLITE_OK);
    T_OK(sqlite3_exec(db, "UPDATE jobs SET state = 'done' WHERE id = 1", NULL,
                      NULL, NULL) == SQLITE_CONSTRAINT);
    T_OK(sqlite3_exec(db,
                      "INSERT INTO messages (conversation_id, role, text,"
                      " created_ms) VALUES (1, 'tool', 'x', 3)",
                      NULL, NULL, NULL) == SQLITE_CONSTRAINT);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM messages"), 2);
    {
        sqlite3_stmt *s = NULL;

        T_OK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) ==
             SQLITE_OK);
        T_OK(sqlite3_step(s) == SQLITE_ROW);
        T_EQ_STR((const char *)sqlite3_column_text(s, 0), "ok");
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    store_close(st);
    db_remove(path);
}

/*
 * Migrations 5, 6: jobs_user holds answered and failed jobs only and
 * jobs_answer rows with an answer; forget and the answers FK still find
 * theirs by index.
 */
static void
test_jobs_lean(void)
{
    char path[256], err[256] = "";
    struct store *st;
    sqlite3 *db;

    db_path(path, sizeof(path), "lean");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    db = raw_open(path);
    T_EQ_INT(raw_exec(db,
                      "INSERT INTO conversations VALUES (1, 'telegram', '-1',"
                      " '', 1);"
                      "INSERT INTO answers (id, conversation_id, platform,"
                      " user_id, created_ms) VALUES (5, 1, 'telegram', '12',"
                      " 1);"
                      "INSERT INTO jobs (platform, chat_id, message_id,"
                      " user_id, state, answer, answer_id, created_ms,"
                      " updated_ms) VALUES"
                      " ('telegram', '-1', '1', '11', 'queued', NULL, NULL,"
                      " 1, 1),"
                      " ('telegram', '-1', '2', '11', 'asking', NULL, NULL,"
                      " 1, 1),"
                      " ('telegram', '-1', '3', '11', 'limited', NULL, NULL,"
                      " 1, 1),"
                      " ('telegram', '-1', '4', '11', 'limited', '429', NULL,"
                      " 1, 1),"
                      " ('telegram', '-1', '5', '11', 'sent', 'a', NULL, 1,"
                      " 1),"
                      " ('telegram', '-1', '6', '11', 'failed', NULL, NULL,"
                      " 1, 1),"
                      " ('discord', '-1', '7', '11', 'sent', 'a', NULL, 1,"
                      " 1),"
                      " ('telegram', '-1', '8', '12', 'sent', 'a', 5, 1, 1)"),
             SQLITE_OK);
    /* the index holds the answered and failed rows only (migration 6:
     * not the refused ones, which jobs_state_next finds) */
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM jobs INDEXED BY jobs_user"
                         " WHERE platform = 'telegram' AND user_id = '11'"
                         " AND (state = 'sent' OR state = 'failed')"),
             2);
    T_OK(raw_plan_uses(db,
                       "DELETE FROM jobs WHERE platform = 'telegram' AND"
                       " user_id = '11' AND (state = 'sent' OR state ="
                       " 'failed') AND NOT (state ="
                       " 'limited' AND answer IS NOT NULL)",
                       "jobs_user"));
    T_OK(raw_plan_uses(db,
                       "DELETE FROM jobs WHERE state = 'limited' AND"
                       " platform = 'telegram' AND user_id = '11' AND NOT"
                       " (state = 'limited' AND answer IS NOT NULL)",
                       "jobs_state_next"));
    T_OK(raw_plan_uses(db,
                       "UPDATE jobs SET answer_id = NULL WHERE answer_id"
                       " = 5",
                       "jobs_answer"));
    sqlite3_close(db);
    /* forget: finished jobs go; unfinished ones, a pending notice, other
     * platforms and other users stay */
    T_EQ_INT(store_forget_user(st, "telegram", "11"), 0);
    T_EQ_INT(store_flush(st), 0);
    db = raw_open(path);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM jobs WHERE message_id IN"
                         " ('1', '2', '4', '7', '8')"),
             5);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM jobs"), 5);
    /* the answers FK: SET NULL through the partial index */
    T_EQ_INT(raw_exec(db, "PRAGMA foreign_keys = ON;"
                          "DELETE FROM answers WHERE id = 5"),
             SQLITE_OK);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM jobs WHERE answer_id IS NULL"),
             5);
    sqlite3_close(db);
    store_close(st);
    db_remove(path);
}

/* One stored message, appended to the string arg (history load order). */
static int
cat_message(void *arg, const char *role, const char *text, int64_t tokens)
{
    char *buf = arg;
    size_t n = strlen(buf);

    (void)tokens;
    snprintf(buf + n, 256 - n, "%s%s:%s", n ? "," : "", role, text);
    return 0;
}

/*
 * A group migrates to a supergroup: history, chat usage, overrides and
 * settings move (merging with what the new id has); sent_messages stay
 * and votes from the new id still find them; twice is as once.
 */
static void
test_chat_migrate(void)
{
    char path[256], err[256] = "", hist[256];
    struct store *st;
    struct store_usage u;
    int64_t conv_old = 0, conv_new = 0, conv = 0, m = 0, ans = 0, now = 5000;
    char *model = NULL, *persona = NULL;
    sqlite3 *db;

    db_path(path, sizeof(path), "migrate");
    st = store_open(path, err, sizeof(err));
    T_OKF(st != NULL, "%s", err);
    if (st == NULL)
        return;
    /* old group -4: a conversation, an answer sent as message 7 */
    T_EQ_INT(store_conversation_id(st, "telegram", "-4", "", now, &conv_old),
             0);
    T_EQ_INT(
        store_message_add(st, conv_old, "user", "11", "6", "q1", 1, now, NULL),
        0);
    T_EQ_INT(store_message_add(st, conv_old, "assistant", NULL, "7", "a1", 1,
                               now, &m),
             0);
    T_EQ_INT(store_answer_add(st, conv_old, m, "telegram", "11", "main", 1, 1,
                              0, 1, now, &ans),
             0);
    T_EQ_INT(store_sent_add(st, "telegram", "-4", "7", ans, 0, now), 0);
    /* the supergroup -1004 already has a conversation (same thread) */
    T_EQ_INT(
        store_conversation_id(st, "telegram", "-1004", "", now + 1, &conv_new),
        0);
    T_EQ_INT(store_message_add(st, conv_new, "user", "12", "2", "q2", 1,
                               now + 1, NULL),
             0);
    /* a topic only the old id has: renamed, not merged */
    T_EQ_INT(store_conversation_id(st, "telegram", "-4", "9", now, &conv), 0);
    /* usage of the same day under both, overrides, settings */
    T_EQ_INT(
        store_usage_add(st, "chat", "telegram", "-4", now, 3, 1, 10, 20, 30),
        0);
    T_EQ_INT(
        store_usage_add(st, "chat", "telegram", "-1004", now, 1, 0, 1, 2, 3),
        0);
    T_EQ_INT(store_override_set(st, "chat", "telegram", "-4", "limit", 5, 60000,
                                "", now),
             0);
    T_EQ_INT(store_override_set(st, "chat", "telegram", "-4", "budget", 100,
                                86400000, "", now),
             0);
    T_EQ_INT(store_override_set(st, "chat", "telegram", "-1004", "budget", 7,
                                86400000, "", now),
             0);
    T_EQ_INT(store_chat_set(st, "telegram", "-4", "model", "big", now), 0);
    T_EQ_INT(store_chat_set(st, "telegram", "-4", "persona", "old", now), 0);
    T_EQ_INT(store_chat_set(st, "telegram", "-1004", "persona", "new", now), 0);
    T_EQ_INT(store_flush(st), 0);

    for (int round = 0; round < 2; round++) {
        T_EQ_INT(store_chat_migrate(st, "telegram", "-4", "-1004", now + 2), 0);
        T_EQ_INT(store_flush(st), 0);
        db = raw_open(path);
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM conversations WHERE"
                             " chat_id = '-4'"),
                 0);
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM conversations WHERE"
                             " chat_id = '-1004'"),
                 2);
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM answers WHERE"
                             " conversation_id IN (SELECT id FROM"
                             " conversations WHERE chat_id = '-1004')"),
                 1);
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM usage WHERE target ="
                             " '-4'"),
                 0);
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM overrides WHERE target ="
                             " '-4'"),
                 0);
        /* the new id's own budget wins; the old limit moved */
        T_EQ_INT(raw_int(db, "SELECT rate_n FROM overrides WHERE target ="
                             " '-1004' AND kind = 'budget'"),
                 7);
        T_EQ_INT(raw_int(db, "SELECT rate_n FROM overrides WHERE target ="
                             " '-1004' AND kind = 'limit'"),
                 5);
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM chats WHERE chat_id ="
                             " '-4' AND active = 0 AND migrated_to ="
                             " '-1004'"),
                 1);
        /* sent_messages keep the old group's ids */
        T_EQ_INT(raw_int(db, "SELECT count(*) FROM sent_messages WHERE"
                             " chat_id = '-4'"),
                 1);
        sqlite3_close(db);
        /* usage of the day added up, not doubled by the second round */
        T_EQ_INT(store_usage_get(st, "chat", "telegram", "-1004", now, &u), 0);
        T_EQ_INT(u.requests, 4);
        T_EQ_INT(u.limited, 1);
        T_EQ_INT(u.tokens_in, 11);
        T_EQ_INT(u.tokens_out, 22);
        T_EQ_INT(u.cost_micro_usd, 33);
        /* one history, the old part first */
        T_EQ_INT(store_conversation_id(st, "telegram", "-1004", "", now, &conv),
                 0);
        T_EQ_INT(conv, conv_new);
        hist[0] = '\0';
        T_EQ_INT(store_history_load(st, conv, 10, cat_message, hist), 3);
        T_EQ_STR(hist, "user:q2,assistant:a1,user:q1");
        /* settings: the new persona wins, the old model comes along */
        T_EQ_INT(store_chat_settings(st, "telegram", "-1004", &model, &persona),
                 1);
        T_EQ_STR(model ? model : "(null)", "big");
        T_EQ_STR(persona ? persona : "(null)", "new");
        free(model);
        free(persona);
        model = persona = NULL;
    }
    /* a vote from the new chat on message 7 (recorded under -4) counts;
     * an unknown message does not */
    T_EQ_INT(store_feedback_vote(st, "telegram", "-1004", "7", "12", 1, now),
             1);
    T_EQ_INT(store_feedback_vote(st, "telegram", "-1004", "8", "12", 1, now),
             0);
    T_EQ_INT(store_feedback_vote(st, "telegram", "-4", "7", "11", -1, now), 1);
    T_EQ_INT(store_flush(st), 0);
    db = raw_open(path);
    T_EQ_INT(raw_int(db, "SELECT count(*) FROM feedback"), 2);
    sqlite3_close(db);
    /* the same id: nothing to do */
    T_EQ_INT(store_chat_migrate(st, "telegram", "-1004", "-1004", now), 0);
    store_close(st);
    db_remove(path);
}

int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/parley-test-store-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_fresh();
    test_upgrade();
    test_refuse();
    test_failed_migration();
    test_kv_audit();
    test_grouped();
    test_read_group();
    test_loop();
    test_jobs_unique();
    test_jobs_lean();
    test_checks_or();
    test_core_accessors();
    test_chat_migrate();
    rmdir(tmpdir);
    return t_done();
}
