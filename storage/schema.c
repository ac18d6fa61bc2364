/* schema: parley's numbered SQLite migrations (PRAGMA user_version). */
#include "schema.h"

#include <stddef.h>

/*
 * Conventions (docs/storage.md):
 * - ids that come from a platform are TEXT: Telegram ids are int64,
 *   Discord snowflakes uint64, Slack ids strings;
 * - "no thread" is '' rather than NULL, so UNIQUE constraints hold;
 * - timestamps are INTEGER unix milliseconds (wall clock), columns *_ms;
 * - money is INTEGER micro-USD, never a float;
 * - `platform` is one of 'telegram', 'discord', 'slack' (not CHECKed, so
 *   a new connector needs no migration).
 */

/* 1: the tables SPEC §8 lists, except the job queue. */
static const char migration_core[] =
    /* A conversation is (platform, chat, thread): SPEC §3. */
    "CREATE TABLE conversations ("
    " id INTEGER PRIMARY KEY,"
    " platform TEXT NOT NULL,"
    " chat_id TEXT NOT NULL,"
    " thread_id TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " UNIQUE (platform, chat_id, thread_id));"

    /* History sent to the model; `reset` deletes a conversation's rows. */
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY,"
    " conversation_id INTEGER NOT NULL"
    "  REFERENCES conversations(id) ON DELETE CASCADE,"
    " role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),"
    " user_id TEXT," /* author; NULL for the bot's own messages */
    " platform_msg_id TEXT,"
    " text TEXT NOT NULL,"
    " tokens INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"

    /*
     * One row per answer the bot produced.  It outlives the history
     * message (message_id is set NULL by `reset` and retention) so that
     * stats and feedback keep their subject.
     */
    "CREATE TABLE answers ("
    " id INTEGER PRIMARY KEY,"
    " conversation_id INTEGER NOT NULL"
    "  REFERENCES conversations(id) ON DELETE CASCADE,"
    " message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,"
    " platform TEXT NOT NULL,"
    " user_id TEXT NOT NULL," /* who asked */
    " model TEXT NOT NULL DEFAULT '',"
    " tokens_in INTEGER NOT NULL DEFAULT 0,"
    " tokens_out INTEGER NOT NULL DEFAULT 0,"
    " cost_micro_usd INTEGER NOT NULL DEFAULT 0,"
    " latency_ms INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"

    /*
     * The platform messages an answer was sent as (one per split part):
     * a vote arrives as (platform, chat, message id) and maps back here.
     * Telegram message ids are unique per chat, Slack ts per channel.
     */
    "CREATE TABLE sent_messages ("
    " platform TEXT NOT NULL,"
    " chat_id TEXT NOT NULL,"
    " platform_msg_id TEXT NOT NULL,"
    " answer_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,"
    " part INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (platform, chat_id, platform_msg_id)"
    ") WITHOUT ROWID;"

    /* Last vote wins: one row per (answer, user), updated in place. */
    "CREATE TABLE feedback ("
    " answer_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,"
    " platform TEXT NOT NULL,"
    " user_id TEXT NOT NULL,"
    " vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (answer_id, user_id)"
    ") WITHOUT ROWID;"

    /*
     * Counters per user or chat per UTC day (day = unix_ms / 86400000),
     * upserted as requests are admitted, limited and settled.
     */
    "CREATE TABLE usage ("
    " scope TEXT NOT NULL CHECK (scope IN ('user', 'chat')),"
    " platform TEXT NOT NULL,"
    " target TEXT NOT NULL," /* user id or chat id, per scope */
    " day INTEGER NOT NULL,"
    " requests INTEGER NOT NULL DEFAULT 0,"
    " limited INTEGER NOT NULL DEFAULT 0,"
    " tokens_in INTEGER NOT NULL DEFAULT 0,"
    " tokens_out INTEGER NOT NULL DEFAULT 0,"
    " cost_micro_usd INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (scope, platform, target, day)"
    ") WITHOUT ROWID;"

    /*
     * Admin overrides of [limits] (SPEC §7 `limit`, `budget`); `default`
     * deletes the row.  window_ms = 0 means `off` (no limit); rate_n = 0
     * with a window is a real rate that admits nothing.
     */
    "CREATE TABLE overrides ("
    " scope TEXT NOT NULL CHECK (scope IN ('user', 'chat')),"
    " platform TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('limit', 'budget')),"
    " rate_n INTEGER NOT NULL CHECK (rate_n >= 0),"
    " window_ms INTEGER NOT NULL CHECK (window_ms >= 0),"
    " set_by TEXT NOT NULL DEFAULT '',"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (scope, platform, target, kind)"
    ") WITHOUT ROWID;"

    /* until_ms NULL = banned until `unban`. */
    "CREATE TABLE bans ("
    " platform TEXT NOT NULL,"
    " user_id TEXT NOT NULL,"
    " until_ms INTEGER,"
    " banned_by TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (platform, user_id)"
    ") WITHOUT ROWID;"

    /*
     * The limiter's windows and buckets, so a restart is no way around a
     * limit (SPEC §4).  The blob's format belongs to core/ratelimit; times
     * inside it must be wall-clock based to mean anything after a reboot.
     */
    "CREATE TABLE limiter_state ("
    " key TEXT PRIMARY KEY,"
    " state BLOB NOT NULL,"
    " updated_ms INTEGER NOT NULL);"

    /* Every admin action, from chat or parleyctl (SPEC §7). */
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " platform TEXT," /* NULL for parleyctl */
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " target TEXT,"
    " detail TEXT);"

    /* Telegram update offset, Discord session id / resume URL / seq... */
    "CREATE TABLE connector_state ("
    " platform TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (platform, key)"
    ") WITHOUT ROWID;"

    /*
     * Per-chat settings: `model`, `persona` (NULL = the config's), whether
     * the bot is still in the chat, and where a Telegram group went when
     * it became a supergroup (migrate_to_chat_id).
     */
    "CREATE TABLE chats ("
    " platform TEXT NOT NULL,"
    " chat_id TEXT NOT NULL,"
    " active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),"
    " migrated_to TEXT,"
    " model TEXT,"
    " persona TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (platform, chat_id)"
    ") WITHOUT ROWID;";

/*
 * 2: the durable job queue and the indexes.  Every foreign key's child
 * column is indexed: without it each parent delete (reset, retention)
 * would scan the child table.
 */
static const char migration_jobs[] =
    /*
     * One inbound message = one job, inserted before the platform is
     * acknowledged; the UNIQUE key makes a redelivery a no-op (SPEC §3, §8).
     * state: received -> limited | queued -> asking -> answered -> sent,
     * or failed (error_class says why).  next_at_ms is when the job may
     * run again (retry backoff, a platform's retry_after); sent_parts lets
     * a resumed job skip the parts of a split answer already delivered.
     */
    "CREATE TABLE jobs ("
    " id INTEGER PRIMARY KEY,"
    " platform TEXT NOT NULL,"
    " chat_id TEXT NOT NULL,"
    " message_id TEXT NOT NULL,"
    " thread_id TEXT NOT NULL DEFAULT '',"
    " user_id TEXT NOT NULL,"
    " text TEXT NOT NULL DEFAULT '',"
    " flags INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'received' CHECK (state IN ("
    "  'received', 'limited', 'queued', 'asking', 'answered', 'sent',"
    "  'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at_ms INTEGER NOT NULL DEFAULT 0,"
    " answer TEXT,"
    " answer_id INTEGER REFERENCES answers(id) ON DELETE SET NULL,"
    " sent_parts INTEGER NOT NULL DEFAULT 0,"
    " error_class TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " UNIQUE (platform, chat_id, message_id));"
    /* resume on start and "what is due now" are one range scan each */
    "CREATE INDEX jobs_state_next ON jobs (state, next_at_ms);"
    "CREATE INDEX jobs_user ON jobs (platform, user_id);"
    "CREATE INDEX jobs_answer ON jobs (answer_id);"

    /* history: the last N messages of a conversation */
    "CREATE INDEX messages_conversation ON messages (conversation_id, id);"
    /* `forget` */
    "CREATE INDEX messages_user ON messages (user_id)"
    " WHERE user_id IS NOT NULL;"
    /* retention */
    "CREATE INDEX messages_created ON messages (created_ms);"

    "CREATE INDEX answers_conversation ON answers (conversation_id);"
    "CREATE INDEX answers_message ON answers (message_id);"
    "CREATE INDEX answers_user ON answers (platform, user_id);"
    "CREATE INDEX answers_created ON answers (created_ms);"

    "CREATE INDEX sent_messages_answer ON sent_messages (answer_id);"

    "CREATE INDEX feedback_user ON feedback (platform, user_id);"
    /* the alert window: the last N votes */
    "CREATE INDEX feedback_updated ON feedback (updated_ms);"

    "CREATE INDEX usage_day ON usage (day);"
    "CREATE INDEX audit_ts ON audit (ts_ms);"
    "CREATE INDEX limiter_state_updated ON limiter_state (updated_ms);";

/*
 * 3: what core needs on a job to resume it after a crash: the tokens
 * reserved in the budgets (settled against the reported usage, also after
 * a restart) and the author's display name (the prompt names speakers in
 * groups).  Finished jobs are purged by age: jobs_updated.
 */
static const char migration_jobs_core[] =
    "ALTER TABLE jobs ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN user_name TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX jobs_updated ON jobs (updated_ms);";

/*
 * 4: commands (issue 8).  jobs.reply_to: the message a command replied to
 * (WHO given as a reply).  stats_daily: bot-wide counters per UTC day
 * that `stats` reads; they hold no user id, so `forget` and retention
 * leave them alone.  latency_daily: a histogram of answer latencies per
 * day (bucket = store_latency_bucket(), at most 12.5% wide), for p50/p95
 * without keeping a row per answer.
 */
static const char migration_commands[] =
    "ALTER TABLE jobs ADD COLUMN reply_to TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE stats_daily ("
    " day INTEGER PRIMARY KEY," /* unix_ms / 86400000 */
    " requests INTEGER NOT NULL DEFAULT 0,"
    " answers INTEGER NOT NULL DEFAULT 0,"
    " limited INTEGER NOT NULL DEFAULT 0,"
    " errors INTEGER NOT NULL DEFAULT 0,"
    " retries INTEGER NOT NULL DEFAULT 0,"
    " fallbacks INTEGER NOT NULL DEFAULT 0,"
    " tokens_in INTEGER NOT NULL DEFAULT 0,"
    " tokens_out INTEGER NOT NULL DEFAULT 0,"
    " cost_micro_usd INTEGER NOT NULL DEFAULT 0,"
    " commands INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE latency_daily ("
    " day INTEGER NOT NULL,"
    " bucket INTEGER NOT NULL,"
    " n INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, bucket)"
    ") WITHOUT ROWID;"
    /* `forget`: the audit rows naming a user as actor or target */
    "CREATE INDEX audit_actor ON audit (actor);"
    "CREATE INDEX audit_target ON audit (target);";

/*
 * 5: a lighter job insert (docs/core.md "enqueue").  Every index on jobs
 * is written before the platform is acked, so the two that only `forget`
 * and answer deletes read hold only the rows those look for: jobs_user the
 * finished states (forget deletes finished jobs only; a queued row gets
 * its entry when it finishes, off the intake path), jobs_answer the rows
 * that have an answer (none at intake).  Both still serve their queries:
 * store_forget_user names the index's states, and the FK action's
 * "answer_id = ?" implies "answer_id IS NOT NULL".
 */
static const char migration_jobs_lean[] =
    "DROP INDEX jobs_user;"
    "CREATE INDEX jobs_user ON jobs (platform, user_id)"
    " WHERE state = 'limited' OR state = 'sent' OR state = 'failed';"
    "DROP INDEX jobs_answer;"
    "CREATE INDEX jobs_answer ON jobs (answer_id)"
    " WHERE answer_id IS NOT NULL;";

/*
 * 6: a refused message writes no jobs_user entry.  A flood of `limited`
 * rows (one per over-limit message, written before the platform is
 * acked) put one random jobs_user leaf per flooder into every intake
 * commit; `forget` finds a user's limited rows through jobs_state_next
 * instead (the `limited` range, kept two days).
 */
static const char migration_jobs_limited[] =
    "DROP INDEX jobs_user;"
    "CREATE INDEX jobs_user ON jobs (platform, user_id)"
    " WHERE state = 'sent' OR state = 'failed';";

/*
 * 7: the CHECKs on jobs.state and messages.role as OR chains.  SQLite
 * evaluates "x IN (three or more constants)" by building an ephemeral
 * table, once per statement run: a btree opened, filled and closed for
 * every job insert, every job save and every history message (six per
 * answered message).  "x = 'a' OR x = 'b'..." allows the same values and
 * is a few comparisons.  Every stored row already passes it, so the table
 * text is rewritten in place (SQLite's documented procedure for changing
 * a CHECK, https://sqlite.org/lang_altertable.html#otheralter); store.c
 * bumps schema_version in the same transaction (schema_rewrites()).
 */
static const char migration_checks_or[] =
    "PRAGMA writable_schema = ON;"
    "UPDATE sqlite_schema SET sql = replace(sql,"
    " 'CHECK (state IN (  ''received'', ''limited'', ''queued'', ''asking'',"
    " ''answered'', ''sent'',  ''failed''))',"
    " 'CHECK (state = ''received'' OR state = ''limited'' OR"
    " state = ''queued'' OR state = ''asking'' OR state = ''answered'' OR"
    " state = ''sent'' OR state = ''failed'')')"
    " WHERE type = 'table' AND name = 'jobs';"
    "UPDATE sqlite_schema SET sql = replace(sql,"
    " 'CHECK (role IN (''system'', ''user'', ''assistant''))',"
    " 'CHECK (role = ''system'' OR role = ''user'' OR role = ''assistant'')')"
    " WHERE type = 'table' AND name = 'messages';"
    "PRAGMA writable_schema = OFF;";

/*
 * 8: jobs.reply_to_user, the author of the message a command replied to
 * when the platform says (Telegram's reply_to_message.from, Discord's
 * referenced_message.author): an admin's "/ban" as a reply to a message
 * the bot never saw then still names its author.  `forget` clears it.
 */
static const char migration_reply_author[] =
    "ALTER TABLE jobs ADD COLUMN reply_to_user TEXT NOT NULL DEFAULT '';";

static const struct {
    const char *name;
    const char *sql;
} migrations[] = {
    {"core", migration_core},
    {"jobs", migration_jobs},
    {"jobs_core", migration_jobs_core},
    {"commands", migration_commands},
    {"jobs_lean", migration_jobs_lean},
    {"jobs_limited", migration_jobs_limited},
    {"checks_or", migration_checks_or},
    {"reply_author", migration_reply_author},
};

#define MIGRATIONS_N ((int)(sizeof(migrations) / sizeof(migrations[0])))

int
schema_latest(void)
{
    return MIGRATIONS_N;
}

const char *
schema_sql(int version)
{
    if (version < 1 || version > MIGRATIONS_N)
        return NULL;
    return migrations[version - 1].sql;
}

int
schema_rewrites(int version)
{
    return version >= 1 && version <= MIGRATIONS_N &&
           migrations[version - 1].sql == migration_checks_or;
}

const char *
schema_name(int version)
{
    if (version < 1 || version > MIGRATIONS_N)
        return "?";
    return migrations[version - 1].name;
}
