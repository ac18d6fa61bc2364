/* test_commands: the chat commands on a real core, loop and temp database,
 * with a test connector and a fake asker: user and admin commands, roles,
 * audit, forget (every table scanned), the feedback alert, a model answer
 * that reads like a command, and parleyctl changing limits live. */
#include "core/core.h"
#include "tests/fakes/core_fixture.h"
#include "tests/t.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

static const struct core_fixture_params params = {
    .tmpdir = tmpdir,
    .admins = "telegram:999, discord:22",
    .sends_max = 2000,
    .text_max = 4096,
};

/* A command from user in chat; args after the name; reply_to may be "". */
static int
cmd(struct core_fixture *f, const char *user, const char *chat, const char *id,
    const char *name, const char *args, unsigned flags, const char *reply_to)
{
    struct event ev =
        core_fixture_event(user, chat, id, args, EVENT_COMMAND | flags);

    ev.command = name;
    ev.reply_to = reply_to;
    return core_accept(f->core, &ev);
}

/* The text of the last send replying to message id, or NULL. */
static const char *
reply_of(struct core_fixture *f, const char *id)
{
    for (int i = f->tc.nsends - 1; i >= 0; i--)
        if (strcmp(f->tc.sends[i].reply_to, id) == 0)
            return f->tc.sends[i].text;
    return NULL;
}

/* Runs one command to its reply. */
static const char *
run_cmd(struct core_fixture *f, const char *user, const char *chat,
        const char *id, const char *name, const char *args, unsigned flags,
        const char *reply_to)
{
    T_EQ_INT(cmd(f, user, chat, id, name, args, flags, reply_to), 0);
    T_OK(core_fixture_run_until(f, core_fixture_idle, 5000));
    return reply_of(f, id);
}

static void
ask(struct core_fixture *f, const char *user, const char *chat, const char *id,
    const char *text, unsigned flags)
{
    struct event ev = core_fixture_event(user, chat, id, text, flags);

    T_EQ_INT(core_accept(f->core, &ev), 0);
    /* started: the prompt is built */
    T_OK(core_fixture_run_until(f, core_fixture_started, 2000));
}

/* ---- scenarios ---- */

/* help, usage, limits, reset for a plain user; help for an admin */
static void
test_user_commands(void)
{
    struct core_fixture f;
    const char *r;

    if (core_fixture_init(&f, &params, "user",
                          "user = 30/60s\nchat = 120/60s\n", 0) < 0) {
        T_OK(0);
        return;
    }
    ask(&f, "11", "-100", "q1", "first question", EVENT_MENTIONED);
    ask(&f, "11", "-100", "q2", "second question", EVENT_MENTIONED);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    r = run_cmd(&f, "11", "-100", "c1", "help", "", 0, "");
    T_CONTAINS(r, "Commands: help, reset, usage, limits, forget.");
    T_OK(r != NULL && strstr(r, "ban WHO") == NULL);
    r = run_cmd(&f, "999", "-100", "c2", "help", "", 0, "");
    T_CONTAINS(r, "ban WHO [DURATION]");
    T_CONTAINS(r, "limit user WHO RATE|default");
    r = run_cmd(&f, "12", "-100", "c3", "help", "", EVENT_ADMIN, "");
    T_CONTAINS(r, "limit chat RATE|default");
    /* SPEC §7: a chat's administrators act on its limits only */
    T_OK(r != NULL && strstr(r, "persona") == NULL);
    T_OK(r != NULL && strstr(r, "ban WHO") == NULL);
    /* usage: the two questions and this command are in the window */
    r = run_cmd(&f, "11", "-100", "c4", "usage", "", 0, "");
    T_CONTAINS(r, "your requests: 4 of 30 requests per 60 s used, 26 left");
    T_CONTAINS(r, "today: 4 requests (0 limited)");
    T_CONTAINS(r, "$0.");
    r = run_cmd(&f, "11", "-100", "c5", "limits", "", 0, "");
    T_CONTAINS(r, "your requests: 30/1m\n");
    T_CONTAINS(r, "this chat's requests: 120/1m");
    /* unknown command, usage error */
    r = run_cmd(&f, "11", "-100", "c6", "frobnicate", "", 0, "");
    T_CONTAINS(r, "unknown command \"frobnicate\"; try help");
    r = run_cmd(&f, "999", "-100", "c7", "limit", "user", 0, "");
    T_CONTAINS(r, "usage: limit user WHO RATE|default");
    /* reset: this conversation's history goes */
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM messages"), 4);
    r = run_cmd(&f, "11", "-100", "c8", "reset", "", 0, "");
    T_CONTAINS(r, "starts over");
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM messages"), 0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM audit"), 0);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* admin commands: overrides, bans by reply, model, persona, stats, audit */
static void
test_admin_commands(void)
{
    struct core_fixture f;
    const char *r;
    struct core_stats s;
    char id[16];

    if (core_fixture_init(&f, &params, "admin",
                          "user = 30/60s\nchat = 120/60s\nnotice = always\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    /* a plain user is refused, nothing written */
    r = run_cmd(&f, "11", "-100", "a1", "limit", "user 12 5/60s", 0, "");
    T_CONTAINS(r, "only the bot's admins may use \"limit user\"");
    r = run_cmd(&f, "11", "-100", "a2", "limit", "chat 5/60s", 0, "");
    T_CONTAINS(r, "only this chat's administrators and the bot's admins");
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM overrides"), 0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM audit"), 0);
    /* the global admin: applies at once (no tick needed) */
    r = run_cmd(&f, "999", "-100", "a3", "limit", "user 12 2/60s", 0, "");
    T_CONTAINS(r, "the request limit of telegram:12 is now 2/1m");
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "u12-%d", i);
        ask(&f, "12", "-100", id, "hello", EVENT_MENTIONED);
    }
    core_stats(f.core, &s);
    T_EQ_INT(s.limited, 1);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_CONTAINS(reply_of(&f, "u12-2"), "2 of 2 requests per 60 s");
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM audit WHERE actor ="
                     " 'telegram:999' AND action = 'limit user' AND target"
                     " = 'telegram:12' AND detail = '2/1m'"),
             1);
    r = run_cmd(&f, "999", "-100", "a4", "limit", "user 12 default", 0, "");
    T_CONTAINS(r, "back to the default");
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM overrides"), 0);
    /* a chat administrator: their chat, tighten only */
    r = run_cmd(&f, "13", "-100", "a5", "limit", "chat 50/60s", EVENT_ADMIN,
                "");
    T_CONTAINS(r, "this chat's request limit is now 50/1m");
    r = run_cmd(&f, "13", "-100", "a6", "limit", "chat 500/60s", EVENT_ADMIN,
                "");
    T_CONTAINS(r, "may only tighten");
    r = run_cmd(&f, "13", "-100", "a7", "budget", "chat 1000/1d", EVENT_ADMIN,
                "");
    T_CONTAINS(r, "this chat's token budget is now 1000/1d");
    r = run_cmd(&f, "13", "-100", "a8", "limit", "user 12 1/60s", EVENT_ADMIN,
                "");
    T_CONTAINS(r, "only the bot's admins");
    r = run_cmd(&f, "13", "-100", "a9", "ban", "12", EVENT_ADMIN, "");
    T_CONTAINS(r, "only the bot's admins may use \"ban\"");
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM overrides WHERE scope = 'chat'"
                     " AND target = '-100'"),
             2);
    r = run_cmd(&f, "13", "-100", "a10", "limits", "", 0, "");
    T_CONTAINS(r, "this chat's requests: 50/1m (set by an admin)");
    r = run_cmd(&f, "13", "-100", "a10b", "limit", "chat default", EVENT_ADMIN,
                "");
    T_CONTAINS(r, "this chat's request limit is back to the default");
    /* ban by reply: 14 wrote m14, the admin replies "ban 1h" */
    ask(&f, "14", "-100", "m14", "hi bot", EVENT_MENTIONED);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    r = run_cmd(&f, "999", "-100", "a11", "ban", "1h", 0, "m14");
    T_CONTAINS(r, "I ignore telegram:14 for 1h");
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM bans WHERE user_id = '14' AND"
                     " until_ms > 0"),
             1);
    {
        int before = f.tc.nsends;

        ask(&f, "14", "-100", "m14b", "still there?", EVENT_MENTIONED);
        T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
        T_EQ_INT(f.tc.nsends, before); /* silence */
    }
    r = run_cmd(&f, "999", "-100", "a12", "unban", "", 0, "m14");
    T_CONTAINS(r, "telegram:14 is no longer banned");
    r = run_cmd(&f, "999", "-100", "a13", "ban", "", 0, "nosuchmsg");
    T_CONTAINS(r, "I don't know who wrote that message");
    /* the platform named the replied message's author (a message the bot
     * never saw): that is WHO, and it stays with the job until it runs */
    {
        struct event ev =
            core_fixture_event("999", "-100", "a13b", "1h", EVENT_COMMAND);

        ev.command = "ban";
        ev.reply_to = "unseen77";
        ev.reply_to_user = "77";
        T_EQ_INT(core_accept(f.core, &ev), 0);
        T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
        T_CONTAINS(reply_of(&f, "a13b"), "I ignore telegram:77 for 1h");
        T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM jobs WHERE"
                                         " message_id = 'a13b' AND"
                                         " reply_to_user = '77'"),
                 1);
        r = run_cmd(&f, "999", "-100", "a13c", "unban", "77", 0, "");
        T_CONTAINS(r, "telegram:77 is no longer banned");
    }
    r = run_cmd(&f, "999", "-100", "a14", "ban", "@someone", 0, "");
    T_CONTAINS(r, "Telegram does not tell bots who @someone is");
    r = run_cmd(&f, "999", "-100", "a15", "ban", "999", 0, "");
    T_CONTAINS(r, "cannot be banned");
    /* model and persona */
    r = run_cmd(&f, "999", "-100", "a16", "model", "nosuch", 0, "");
    T_CONTAINS(r, "There is no model \"nosuch\"; the models are: main.");
    r = run_cmd(&f, "999", "-100", "a17", "model", "main", 0, "");
    T_CONTAINS(r, "this chat asks main first");
    r = run_cmd(&f, "13", "-100", "a18", "model", "main", EVENT_ADMIN, "");
    T_CONTAINS(r, "only the bot's admins");
    /* the persona is the bot's admins' (SPEC §7): a chat's own
     * administrator is refused, and so is a user in their private chat */
    r = run_cmd(&f, "13", "-100", "a19", "persona", "evil", EVENT_ADMIN, "");
    T_CONTAINS(r, "only the bot's admins may use \"persona\"");
    r = run_cmd(&f, "999", "-100", "a19b", "persona",
                "You speak like a pirate, \"arr\".", 0, "");
    T_CONTAINS(r, "system prompt is set");
    ask(&f, "15", "-100", "p1", "who are you?", EVENT_MENTIONED);
    T_EQ_STR(f.fa.last_system, "You speak like a pirate, \"arr\".");
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    r = run_cmd(&f, "11", "-100", "a20", "persona", "evil", 0, "");
    T_CONTAINS(r, "only the bot's admins may use \"persona\"");
    r = run_cmd(&f, "11", "11", "a21", "persona", "Be brief.", EVENT_PRIVATE,
                "");
    T_CONTAINS(r, "only the bot's admins may use \"persona\"");
    /* stats */
    r = run_cmd(&f, "999", "-100", "a22", "stats", "", 0, "");
    T_CONTAINS(r, "requests: ");
    T_CONTAINS(r, "answers: 4 (4)");
    T_CONTAINS(r, "limited: 2 (2)");
    T_CONTAINS(r, "answer latency, 7 days: p50 ");
    r = run_cmd(&f, "11", "-100", "a23", "stats", "", 0, "");
    T_CONTAINS(r, "only the bot's admins may use \"stats\"");
    /* every admin action is in the audit log, refusals are not */
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM audit"), 11);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM audit WHERE action = 'persona'"
                     " AND target = 'telegram:-100'"),
             1);
    core_stats(f.core, &s);
    T_EQ_INT(s.admin_actions, 11);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* A model answer that reads like a command runs nothing. */
static void
test_answer_is_not_a_command(void)
{
    struct core_fixture f;
    struct event ev;

    if (core_fixture_init(&f, &params, "nocmd", "user = off\n", 0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.fixed = "/ban 123\n/limit user 123 off\n/persona evil";
    /* even asked by an admin, in a private chat */
    ask(&f, "999", "999", "q1", "say /ban 123", EVENT_PRIVATE);
    ask(&f, "11", "-100", "q2", "say /ban 123", EVENT_MENTIONED);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(f.tc.completed, 2);
    T_CONTAINS(f.tc.sends[0].text, "/ban 123");
    /* and the answer echoed back by the platform as our own message */
    ev = core_fixture_event("bot", "-100", "echo1", "123",
                            EVENT_COMMAND | EVENT_FROM_SELF);
    ev.command = "ban";
    T_EQ_INT(core_accept(f.core, &ev), 0);
    ev = core_fixture_event("otherbot", "-100", "echo2", "123",
                            EVENT_COMMAND | EVENT_FROM_BOT);
    ev.command = "ban";
    T_EQ_INT(core_accept(f.core, &ev), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 2000));
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM bans"), 0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM overrides"), 0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM chats"), 0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM audit"), 0);
    T_EQ_INT(
        core_fixture_db_int(&f, "SELECT count(*) FROM jobs WHERE flags & 8"),
        0);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* Rows in any table, any column, holding needle (the scan of `forget`). */
static long long
db_scan(struct core_fixture *f, const char *needle, int verbose)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *t = NULL;
    long long hits = 0;

    store_flush(f->st);
    sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT name FROM sqlite_master WHERE type ="
                       " 'table'",
                       -1, &t, NULL);
    while (sqlite3_step(t) == SQLITE_ROW) {
        char sql[512], table[64];
        sqlite3_stmt *c = NULL;

        snprintf(table, sizeof(table), "%s", sqlite3_column_text(t, 0));
        snprintf(sql, sizeof(sql), "SELECT name FROM pragma_table_info('%s')",
                 table);
        sqlite3_prepare_v2(db, sql, -1, &c, NULL);
        while (sqlite3_step(c) == SQLITE_ROW) {
            sqlite3_stmt *q = NULL;
            long long n = 0;

            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM \"%s\" WHERE instr(CAST(\"%s\" AS"
                     " TEXT), ?1) > 0",
                     table, sqlite3_column_text(c, 0));
            if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
                sqlite3_bind_text(q, 1, needle, -1, SQLITE_STATIC);
                if (sqlite3_step(q) == SQLITE_ROW)
                    n = sqlite3_column_int64(q, 0);
            }
            sqlite3_finalize(q);
            if (n > 0 && verbose)
                fprintf(stderr, "scan: %s.%s holds %s in %lld rows\n", table,
                        sqlite3_column_text(c, 0), needle, n);
            hits += n;
        }
        sqlite3_finalize(c);
    }
    sqlite3_finalize(t);
    sqlite3_close(db);
    return hits;
}

/* After forget, no row in any table holds the user's id. */
static void
test_forget(void)
{
    struct core_fixture f;
    const char *u = "987654321", *r;
    struct event v;
    long long before;

    if (core_fixture_init(&f, &params, "forget",
                          "user = 20/60s\nchat = 120/60s\nuser_tokens = "
                          "100000/1d\nnotice = once\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    /* the user talks in a group and in private (Telegram: chat id = user
     * id), another user talks too */
    ask(&f, u, "-100", "g1", "hello in the group", EVENT_MENTIONED);
    ask(&f, u, u, "d1", "hello in private", EVENT_PRIVATE);
    ask(&f, "11", "-100", "o1", "someone else", EVENT_MENTIONED);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    /* they vote, and someone votes on their answer */
    memset(&v, 0, sizeof(v));
    v.kind = EVENT_VOTE;
    v.platform = "telegram";
    v.chat = "-100";
    v.user = u;
    v.target_id = "s0";
    v.vote = -1;
    T_EQ_INT(core_accept(f.core, &v), 0);
    v.target_id = "s2";
    T_EQ_INT(core_accept(f.core, &v), 0);
    v.user = "11";
    v.target_id = "s0";
    v.vote = 1;
    T_EQ_INT(core_accept(f.core, &v), 0);
    /* admins acted on them: an override, an expired ban, a chat limit that
     * gives them a notice-once key */
    r = run_cmd(&f, "999", "-100", "x1", "limit", "user 987654321 15/60s", 0,
                "");
    T_CONTAINS(r, "now 15/1m");
    r = run_cmd(&f, "999", "-100", "x2", "ban", "987654321 1s", 0, "");
    T_CONTAINS(r, "for 1s");
    core_fixture_run_until(&f, core_fixture_never, 1100);
    r = run_cmd(&f, "999", "-300", "x3", "limit", "chat 1/60s", 0, "");
    ask(&f, u, "-300", "n1", "one", EVENT_MENTIONED);
    ask(&f, u, "-300", "n2", "two", EVENT_MENTIONED);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_CONTAINS(reply_of(&f, "n2"), "429");
    core_fixture_run_until(&f, core_fixture_never,
                           1300); /* the limiter is persisted */
    before = db_scan(&f, u, 0);
    T_OKF(before > 20, "rows before %lld", before);
    T_OK(core_fixture_db_int(&f,
                             "SELECT count(*) FROM limiter_state WHERE key LIKE"
                             " '%987654321%'") >= 3);
    /* forget, in the group */
    r = run_cmd(&f, u, "-100", "f1", "forget", "", 0, "");
    T_CONTAINS(r, "I deleted everything stored about you");
    T_EQ_INT(db_scan(&f, u, 1), 0);
    /* a tick later the limiter has exported its keys again: still none */
    core_fixture_run_until(&f, core_fixture_never, 1300);
    T_EQ_INT(db_scan(&f, u, 1), 0);
    /* the others' data stays */
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM messages WHERE user_id = '11'"),
             1);
    T_OK(core_fixture_db_int(&f, "SELECT count(*) FROM audit") >= 3);
    /* and the windows still count: the override is gone, 20/60s applies,
     * 5 requests are in it (g1, d1, n1, f1, f2; n2 was refused) */
    r = run_cmd(&f, u, "-100", "f2", "usage", "", 0, "");
    T_CONTAINS(r, "your requests: 5 of 20");
    T_CONTAINS(r, "today: 1 requests");
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* [feedback] alert: the admins hear once an hour, in their private chat:
 * telegram:999 in chat 999, discord:22 in chat "@22" (the Discord
 * connector opens that DM; test_discord test_user_dm). */
static void
test_feedback_alert(void)
{
    struct core_fixture f;
    struct connector_ops dops;
    struct event v;
    char id[16], target[16];
    int alerts = 0;

    if (core_fixture_init(&f, &params, "alert",
                          "user = off\n[feedback]\nalert_ratio = 0.5\n"
                          "alert_window = 4\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    /* the test connector also as the discord one: its sends recorded too */
    dops = core_fixture_conn_ops(&f.tc, 0, 2000);
    dops.platform = "discord";
    T_EQ_INT(core_register_connector(f.core, &dops), 0);
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "q%d", i);
        ask(&f, "11", "-100", id, "question", EVENT_MENTIONED);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    memset(&v, 0, sizeof(v));
    v.kind = EVENT_VOTE;
    v.platform = "telegram";
    v.chat = "-100";
    /* up, down, down: 3 votes < window; then down: 3 of 4 */
    for (int i = 0; i < 4; i++) {
        snprintf(target, sizeof(target), "s%d", i);
        v.user = "21";
        v.target_id = target;
        v.vote = i == 0 ? 1 : -1;
        T_EQ_INT(core_accept(f.core, &v), 0);
        T_OK(core_fixture_run_until(&f, core_fixture_idle, 2000));
        if (i < 3)
            T_EQ_INT(f.tc.nsends, 6);
    }
    for (int i = 0; i < f.tc.nsends; i++)
        if (strstr(f.tc.sends[i].text, "feedback alert") != NULL) {
            T_EQ_STR(f.tc.sends[i].chat, alerts == 0 ? "999" : "@22");
            alerts++;
            T_EQ_STR(f.tc.sends[i].reply_to, "");
            T_EQ_INT(f.tc.sends[i].kind, ACTION_NOTICE);
            T_CONTAINS(f.tc.sends[i].text, "3 of the last 4 votes");
        }
    T_EQ_INT(alerts, 2);
    /* more 👎 within the hour: no second alert, also after a restart */
    v.target_id = "s4";
    T_EQ_INT(core_accept(f.core, &v), 0);
    core_fixture_stop(&f);
    T_EQ_INT(core_fixture_start(&f, 0), 0);
    v.target_id = "s5";
    T_EQ_INT(core_accept(f.core, &v), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 2000));
    T_EQ_INT(f.tc.nsends, 8);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM connector_state WHERE key ="
                     " 'feedback_alert_ms'"),
             1);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* parleyctl writes while the core runs: applied within a second. */
static void
test_parleyctl_live(void)
{
    const char *build = getenv("PARLEY_BUILD");
    char ctl[512], conf[300], line[1200], id[16];
    struct core_fixture f;
    struct core_stats s;
    FILE *cf;
    int64_t t0, t1;
    uint64_t limited0;
    int i;

    if (build == NULL) {
        fprintf(stderr, "parleyctl live: PARLEY_BUILD unset, skipped\n");
        return;
    }
    snprintf(ctl, sizeof(ctl), "%s/parleyctl", build);
    if (access(ctl, X_OK) != 0) {
        fprintf(stderr, "parleyctl live: %s not built, skipped\n", ctl);
        return;
    }
    if (core_fixture_init(&f, &params, "parley", "user = 30/60s\nchat = off\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    snprintf(conf, sizeof(conf), "%s/ctl.conf", tmpdir);
    cf = fopen(conf, "w");
    fprintf(cf, "[bot]\nstate_dir = %s\n", tmpdir);
    fclose(cf);
    ask(&f, "11", "11", "l1", "one", EVENT_PRIVATE);
    ask(&f, "11", "11", "l2", "two", EVENT_PRIVATE);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(store_flush(f.st), 0);
    snprintf(line, sizeof(line), "%s -c %s limit user telegram:11 2/60s", ctl,
             conf);
    T_EQ_INT(system(line), 0);
    t0 = (int64_t)uv_hrtime() / 1000000;
    core_stats(f.core, &s);
    limited0 = s.limited;
    /* probe every 10 ms until a request is refused */
    for (i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "p%d", i);
        ask(&f, "11", "11", id, "probe", EVENT_PRIVATE);
        core_stats(f.core, &s);
        if (s.limited > limited0)
            break;
        core_fixture_run_until(&f, core_fixture_never, 10);
    }
    t1 = (int64_t)uv_hrtime() / 1000000;
    T_OKF(s.limited > limited0, "never limited after %d probes", i);
    fprintf(stderr, "parleyctl limit applied after %lld ms\n",
            (long long)(t1 - t0));
    T_OKF(t1 - t0 <= 1100, "applied after %lld ms", (long long)(t1 - t0));
    /* a ban the same way */
    /* parleyd commits every loop turn; between our loop runs, we do */
    T_EQ_INT(store_flush(f.st), 0);
    snprintf(line, sizeof(line), "%s -c %s ban telegram:12 1h", ctl, conf);
    T_EQ_INT(system(line), 0);
    t0 = (int64_t)uv_hrtime() / 1000000;
    core_stats(f.core, &s);
    limited0 = s.limited;
    /* a banned message is refused silently and keeps no row: counted */
    for (i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "b%d", i);
        ask(&f, "12", "12", id, "probe", EVENT_PRIVATE);
        core_stats(f.core, &s);
        if (s.limited > limited0)
            break;
        T_OK(core_fixture_run_until(&f, core_fixture_idle, 2000));
        core_fixture_run_until(&f, core_fixture_never, 10);
    }
    T_OKF(s.limited > limited0, "never banned after %d probes", i);
    t1 = (int64_t)uv_hrtime() / 1000000;
    fprintf(stderr, "parleyctl ban applied after %lld ms\n",
            (long long)(t1 - t0));
    T_OKF(t1 - t0 <= 1100, "ban applied after %lld ms", (long long)(t1 - t0));
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM audit WHERE platform IS NULL"
                     " AND actor LIKE 'parleyctl:%'"),
             2);
    T_EQ_INT(core_fixture_release(&f), 0);
    unlink(conf);
}

int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/parley-test-commands-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    test_user_commands();
    test_admin_commands();
    test_answer_is_not_a_command();
    test_forget();
    test_feedback_alert();
    test_parleyctl_live();
    rmdir(tmpdir);
    return t_done();
}
