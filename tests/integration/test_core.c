/* test_core: the core on a real loop and a temp database, with a test
 * connector and a fake asker: limits and notices, floods, budgets,
 * restarts, overrides, typing, votes, send retries, split answers. */
#include "core/core.h"
#include "core/history.h"
#include "tests/fakes/core_fixture.h"
#include "tests/t.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

static const struct core_fixture_params params = {
    .tmpdir = tmpdir,
    .admins = "telegram:999",
    .sends_max = 20000,
    .text_max = 512,
};

/* ---- scenarios ---- */

/* SPEC §4 through the real path: 3/20s at t = 0, 5, 10, 15 s. */
static void
test_spec_example(void)
{
    struct core_fixture f;
    static const char *ids[] = {"1", "2", "3", "4"};
    int notices = 0;

    if (core_fixture_init(&f, &params, "spec",
                          "user = 3/20s\nchat = off\n"
                          "user_tokens = off\n",
                          1) < 0) {
        T_OK(0);
        return;
    }
    for (int i = 0; i < 4; i++) {
        struct event ev =
            core_fixture_event("11", "11", ids[i], "hi", EVENT_PRIVATE);

        f.mono = 1000000 + i * 5000;
        f.wall = 1700000000000 + i * 5000;
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(f.fa.asks, 3);
    T_EQ_INT(f.tc.completed, 4);
    for (int i = 0; i < f.tc.nsends; i++) {
        if (f.tc.sends[i].kind != ACTION_NOTICE)
            continue;
        notices++;
        T_EQ_STR(f.tc.sends[i].reply_to, "4");
        T_CONTAINS(f.tc.sends[i].text, "429");
        T_CONTAINS(f.tc.sends[i].text, "try again in 5 s");
        T_EQ_INT(f.tc.sends[i].feedback, 0);
    }
    T_EQ_INT(notices, 1);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM jobs WHERE state = 'sent'"),
             4);
    T_EQ_INT(core_fixture_db_int(&f,
                                 "SELECT count(*) FROM jobs WHERE error_class ="
                                 " 'rate_limited'"),
             1);
    core_flush_stats(f.core); /* the tick's write, now */
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT requests FROM usage WHERE scope = 'user'"),
             3);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT limited FROM usage WHERE scope = 'user'"),
             1);

    /*
     * A restart is no way around the limit: the limiter state is persisted
     * on stop and imported on start, wall clock mapped onto monotonic.
     */
    core_fixture_stop(&f);
    f.mono = 5000; /* a new boot: the monotonic clock restarted */
    f.wall = 1700000000000 + 16000;
    T_EQ_INT(core_fixture_start(&f, 1), 0);
    {
        struct event ev =
            core_fixture_event("11", "11", "5", "again", EVENT_PRIVATE);
        struct core_stats s;

        T_EQ_INT(core_accept(f.core, &ev), 0);
        core_stats(f.core, &s);
        T_EQ_INT(s.limited, 1);
        T_EQ_INT(s.admitted, 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    /* and notice = once held too: the notice at 15 s covers this one */
    {
        struct core_stats s;

        core_stats(f.core, &s);
        T_EQ_INT(s.notices, 0);
        T_EQ_INT(f.tc.nsends, 4);
    }
    /* at t = 20 s (wall) the first request has left the window */
    f.mono = 5000 + 4000;
    f.wall = 1700000000000 + 20000;
    {
        struct event ev =
            core_fixture_event("11", "11", "6", "later", EVENT_PRIVATE);
        struct core_stats s;

        T_EQ_INT(core_accept(f.core, &ev), 0);
        core_stats(f.core, &s);
        T_EQ_INT(s.admitted, 1);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(core_fixture_release(&f), 0);
}

/*
 * Intake first, one job per user at a time first, refused users last:
 * jobs start from core's run queue after the batch is taken in; a user
 * refused since their jobs were admitted, or with a job being served,
 * waits behind everyone else (docs/core.md "Intake first").
 */
static void
test_run_queue(void)
{
    struct core_fixture f;
    /* a flooder's 5 (3 admitted, a notice, 1 silent), then others; 80
     * twice, with 79 between */
    static const char *users[] = {"66", "66", "66", "66", "66",
                                  "77", "78", "80", "79", "80"};
    static const char *order[] = {"77-5", "78-6", "80-7", "79-8",
                                  "66-0", "66-1", "66-2", "80-9"};
    enum { N = sizeof(users) / sizeof(users[0]) };
    struct event evs[N];
    char ids[N][16], texts[N][32];
    struct core_stats s;

    if (core_fixture_init(&f, &params, "runq", "user = 3/60s\nnotice = once\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.mode = CORE_FIXTURE_NEVER;
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%d", i);
        snprintf(texts[i], sizeof(texts[i]), "%s-%d", users[i], i);
        evs[i] = core_fixture_event(users[i], users[i], ids[i], texts[i],
                                    EVENT_PRIVATE);
    }
    T_EQ_INT(core_accept_batch(f.core, evs, N), 0);
    /* taken in and committed, nothing started yet */
    core_stats(f.core, &s);
    T_EQ_INT(s.accepted, N);
    T_EQ_INT(s.admitted, 8);
    T_EQ_INT(s.limited, 2);
    T_EQ_INT((int)s.runnable, 9); /* 8 asks and the notice */
    T_EQ_INT(f.fa.asks, 0);
    T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
    T_EQ_INT(f.fa.asks, 8);
    /* everyone's first in order; then the flooder's three, and 80's
     * second (80 was being served): each user's in the order they came */
    for (int i = 0; i < 8; i++)
        T_EQ_STR(f.fa.asked[i], order[i]);
    /* the silent refusal keeps no row; the notice's row is there */
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM jobs"), 9);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/*
 * Limiter rows of keys quiet for longer than the longest window in effect
 * and a day go with the retention purge; a 0/W override (one per ten
 * years) keeps them all.
 */
static void
test_limiter_purge(void)
{
    struct core_fixture f;
    const int64_t now = 1700000000000;

    if (core_fixture_init(&f, &params, "lpurge",
                          "user = 3/20s\nchat = off\nuser_tokens = off\n",
                          1) < 0) {
        T_OK(0);
        return;
    }
    f.mono = 1000000;
    f.wall = now;
    {
        struct event ev =
            core_fixture_event("11", "11", "1", "hi", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0); /* the limiter is loaded */
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    core_fixture_db_exec(
        &f, "INSERT INTO limiter_state (key, state, updated_ms) VALUES"
            " ('w|u:telegram:old', x'00', 1700000000000 - 86400000 - 21000),"
            " ('w|u:telegram:new', x'00', 1700000000000 - 86400000 - 19000)");
    T_OK(core_purge(f.core) >= 1);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM limiter_state"
                                     " WHERE key = 'w|u:telegram:old'"),
             0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM limiter_state"
                                     " WHERE key = 'w|u:telegram:new'"),
             1);
    /* ten days on, but a 0/W override is in effect: nothing goes */
    core_fixture_db_exec(
        &f, "INSERT INTO overrides (scope, platform, target, kind, rate_n,"
            " window_ms, set_by, updated_ms) VALUES ('user', 'telegram',"
            " '12', 'limit', 0, 60000, 'test', 1)");
    f.wall = now + 10 * 86400000LL;
    f.mono += 10 * 86400000LL;
    core_fixture_run_until(&f, core_fixture_never, 1200); /* the tick reloads */
    core_purge(f.core);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM limiter_state"
                                     " WHERE key = 'w|u:telegram:new'"),
             1);
    T_EQ_INT(core_fixture_release(&f), 0);
}

static int usage_partial; /* a count seen between 10 and 290 */

static int
usage_complete(struct core_fixture *f)
{
    long long n = core_fixture_db_int(f, "SELECT total(requests) FROM usage"
                                         " WHERE scope = 'user'");

    if (n >= 10 && n <= 290)
        usage_partial = 1;
    return n == 300;
}

/*
 * The usage counters reach the table without a flush: the tick's round
 * (or the last job finishing) hands them to usage_trickle, which writes a
 * chunk per 2 ms tick of its own timer until every key is in.
 */
static void
test_usage_trickle(void)
{
    struct core_fixture f;
    char user[16], id[16];

    if (core_fixture_init(&f, &params, "trickle",
                          "user = off\nchat = off\nuser_tokens = off\n",
                          1) < 0) {
        T_OK(0);
        return;
    }
    f.mono = 1000000;
    f.wall = 1700000000000;
    for (int i = 0; i < 300; i++) {
        struct event ev;

        snprintf(user, sizeof(user), "%d", 100 + i);
        snprintf(id, sizeof(id), "%d", i + 1);
        ev = core_fixture_event(user, user, id, "hi", EVENT_PRIVATE);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    f.mono += 1000; /* a round may start: 250 ms since the last */
    usage_partial = 0;
    T_OK(core_fixture_run_until(&f, usage_complete, 5000));
    /* in chunks (8 keys of 600 a 2 ms tick), not in one turn */
    T_OK(usage_partial);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM usage"
                                     " WHERE scope = 'user'"),
             300);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM usage"
                                     " WHERE scope = 'chat'"),
             300);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* 10,000 messages from one user in one window: one notice, 30 asks. */
static void
test_flood(void)
{
    struct core_fixture f;
    char id[16];
    int notices = 0, answers = 0;
    struct core_stats s;

    if (core_fixture_init(&f, &params, "flood",
                          "user = 30/60s\nnotice = once\n", 0) < 0) {
        T_OK(0);
        return;
    }
    for (int i = 0; i < 10000; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = core_fixture_event("11", "-100", id, "spam", EVENT_MENTIONED);
        if (core_accept(f.core, &ev) != 0) {
            T_OK(0);
            break;
        }
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 20000));
    core_stats(f.core, &s);
    for (int i = 0; i < f.tc.nsends; i++) {
        if (f.tc.sends[i].kind == ACTION_NOTICE) {
            notices++;
            T_EQ_STR(f.tc.sends[i].reply_to, "30");
            T_CONTAINS(f.tc.sends[i].text, "30 of 30 requests per 60 s");
        } else {
            answers++;
        }
    }
    T_EQ_INT(notices, 1);
    T_EQ_INT(answers, 30);
    T_EQ_INT(f.fa.asks, 30);
    T_EQ_INT(s.limited, 9970);
    T_EQ_INT(s.accepted, 10000);
    core_flush_stats(f.core); /* the tick's write, now */
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT limited FROM usage WHERE scope = 'user'"),
             9970);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT limited FROM usage WHERE scope = 'chat'"),
             9970);
    /* silent refusals keep no row; the one notice's row is sent */
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM jobs WHERE state = 'limited'"),
             0);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM jobs WHERE"
                                     " error_class = 'rate_limited'"),
             1);
    /* redelivery of the whole flood: nothing new at all */
    for (int i = 0; i < 10000; i += 97) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = core_fixture_event("11", "-100", id, "spam", EVENT_MENTIONED);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    core_stats(f.core, &s);
    T_EQ_INT(s.accepted, 10000);
    T_OK(s.duplicates >= 104);
    /* an admin floods freely */
    for (int i = 0; i < 50; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "a%d", i);
        ev = core_fixture_event("999", "-100", id, "admin", EVENT_MENTIONED);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(f.fa.asks, 80);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* 50 concurrent requests against a budget that fits 10 estimates. */
static void
test_budget(void)
{
    struct core_fixture f;
    char limits[256], id[16];
    const char *text = "how much is two plus two?";
    int64_t est = history_estimate_tokens("You are terse.", 14) +
                  history_estimate_tokens(text, strlen(text)) + 100;
    long long charged;

    snprintf(limits, sizeof(limits),
             "user = off\nchat = off\nuser_tokens = %lld/1d\n",
             (long long)(10 * est + est / 2));
    if (core_fixture_init(&f, &params, "budget", limits, 0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.delay_ms = 50; /* all 50 arrive before any answer */
    f.fa.extra_tokens = 7;
    for (int i = 0; i < 50; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = core_fixture_event("11", "11", id, text, EVENT_PRIVATE);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
    T_EQ_INT(f.fa.asks, 10);
    T_EQ_INT(f.fa.last_estimate, est);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    core_flush_stats(f.core); /* the tick's write, now */
    charged = core_fixture_db_int(&f, "SELECT tokens_in + tokens_out FROM usage"
                                      " WHERE scope = 'user'");
    T_OKF(charged <= 10 * est + est, "charged %lld, budget %lld + %lld",
          charged, (long long)(10 * est + est / 2), (long long)est);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT requests FROM usage WHERE scope = 'user'"),
             10);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT limited FROM usage WHERE scope = 'user'"),
             40);
    /* cost from price_in/price_out: micro-USD = tokens x USD per 1M */
    T_EQ_INT(
        core_fixture_db_int(&f, "SELECT cost_micro_usd FROM usage WHERE scope ="
                                " 'user'"),
        core_fixture_db_int(&f, "SELECT sum(cost_micro_usd) FROM answers"));
    T_EQ_INT(
        core_fixture_db_int(&f, "SELECT cost_micro_usd FROM answers LIMIT 1"),
        core_fixture_db_int(&f,
                            "SELECT CAST(round(tokens_in * 0.40 + tokens_out *"
                            " 1.60) AS INTEGER) FROM answers LIMIT 1"));
    T_OK(core_fixture_db_int(&f, "SELECT min(cost_micro_usd) FROM answers") >
         0);
    {
        int budget_notices = 0;

        for (int i = 0; i < f.tc.nsends; i++)
            if (f.tc.sends[i].kind == ACTION_NOTICE) {
                budget_notices++;
                T_CONTAINS(f.tc.sends[i].text, "your token budget");
            }
        T_EQ_INT(budget_notices, 1); /* notice = once */
    }
    T_EQ_INT(core_fixture_release(&f), 0);
}

/*
 * give_up_after is durable (SPEC §2): an ask carries the job's age (wall
 * clock since the job row was created), also when a restart resumes it,
 * so the asker does not grant it a new give_up_after; a wall clock that
 * went back gives 0, never a negative age.
 */
static void
test_ask_age(void)
{
    struct core_fixture f;
    struct event ev;

    if (core_fixture_init(&f, &params, "ask_age",
                          "user = off\nchat = off\n"
                          "user_tokens = off\n",
                          1) < 0) {
        T_OK(0);
        return;
    }
    f.fa.mode = CORE_FIXTURE_NEVER;
    ev = core_fixture_event("11", "11", "1", "old question", EVENT_PRIVATE);
    T_EQ_INT(core_accept(f.core, &ev), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
    T_EQ_INT(f.fa.asks, 1);
    T_EQ_INT(f.fa.last_age_ms, 0);
    core_fixture_stop(&f);
    /* back 11 minutes later (wall), on a new boot (monotonic restarted) */
    f.mono = 1000;
    f.wall += 11 * 60000;
    T_EQ_INT(core_fixture_start(&f, 1), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
    T_EQ_INT(f.fa.asks, 2);
    T_EQ_INT(f.fa.last_age_ms, 11 * 60000);
    core_fixture_stop(&f);
    /* the wall clock went back before the creation: age 0 */
    f.mono = 1000;
    f.wall -= 60 * 60000;
    T_EQ_INT(core_fixture_start(&f, 1), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
    T_EQ_INT(f.fa.asks, 3);
    T_EQ_INT(f.fa.last_age_ms, 0);
    core_fixture_stop(&f);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* Jobs in flight at a stop are asked again after a restart, once. */
static void
test_resume(void)
{
    struct core_fixture f;
    char id[16];

    if (core_fixture_init(&f, &params, "resume",
                          "user = off\nchat = off\n"
                          "user_tokens = off\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.mode = CORE_FIXTURE_NEVER;
    for (int i = 0; i < 20; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = core_fixture_event("11", "11", id, "question", EVENT_PRIVATE);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
    T_EQ_INT(f.fa.asks, 20);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM jobs WHERE state = 'asking'"),
             20);
    core_fixture_stop(&f);
    T_EQ_INT(f.fa.cancels, 20);
    /* the new process: the same database, an answering model */
    f.fa.mode = CORE_FIXTURE_ANSWER;
    T_EQ_INT(core_fixture_start(&f, 0), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(f.fa.asks, 40);
    T_EQ_INT(f.tc.completed, 20);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM jobs WHERE state = 'sent'"),
             20);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT max(attempts) FROM jobs"), 1);
    /* history: every question and answer, in one conversation */
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM messages"), 40);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM conversations"), 1);
    /* and the next prompt carries the history within the limits */
    {
        struct event ev =
            core_fixture_event("11", "11", "x", "and now?", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
        T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
        T_EQ_INT(f.fa.last_n, 1 + 20 + 1); /* history_messages = 20 */
        T_EQ_STR(f.fa.last_system, "You are terse.");
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    /* a persona for the chat replaces the system prompt */
    core_fixture_db_exec(
        &f, "INSERT INTO chats (platform, chat_id, persona, created_ms,"
            " updated_ms) VALUES ('telegram', '11', 'You are a pirate.',"
            " 1, 1)");
    {
        struct event ev =
            core_fixture_event("11", "11", "y", "ahoy?", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
        T_OK(core_fixture_run_until(&f, core_fixture_started, 2000));
        T_EQ_STR(f.fa.last_system, "You are a pirate.");
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* parleyctl writes an override and a ban; the core applies them within 1 s. */
static void
test_overrides(void)
{
    struct core_fixture f;
    char id[16];
    int i, sent_before;
    struct core_stats s;

    if (core_fixture_init(&f, &params, "overrides",
                          "user = 30/60s\nnotice = always\n", 0) < 0) {
        T_OK(0);
        return;
    }
    core_fixture_db_exec(
        &f, "INSERT INTO overrides (scope, platform, target, kind,"
            " rate_n, window_ms, updated_ms) VALUES ('user', 'telegram',"
            " '11', 'limit', 2, 60000, 1)");
    core_fixture_run_until(&f, core_fixture_never, 1300); /* one tick passes */
    for (i = 0; i < 3; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = core_fixture_event("11", "11", id, "q", EVENT_PRIVATE);
        core_accept(f.core, &ev);
    }
    core_stats(f.core, &s);
    T_EQ_INT(s.admitted, 2);
    T_EQ_INT(s.limited, 1);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    for (i = 0; i < f.tc.nsends; i++)
        if (f.tc.sends[i].kind == ACTION_NOTICE)
            T_CONTAINS(f.tc.sends[i].text, "2 of 2 requests per 60 s");
    /* a ban: silence, no notice, counted */
    core_fixture_db_exec(
        &f, "INSERT INTO bans (platform, user_id, until_ms, created_ms)"
            " VALUES ('telegram', '12', NULL, 1)");
    core_fixture_run_until(&f, core_fixture_never, 1300);
    sent_before = f.tc.nsends;
    {
        struct event ev =
            core_fixture_event("12", "12", "b1", "hello", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 2000));
    T_EQ_INT(f.tc.nsends, sent_before);
    core_stats(f.core, &s);
    T_EQ_INT(s.limited, 2);
    /* counted in usage, and keeps no row: nothing to send */
    core_flush_stats(f.core); /* the tick's write, now */
    T_EQ_INT(core_fixture_db_int(&f, "SELECT limited FROM usage WHERE"
                                     " scope = 'user' AND target = '12'"),
             1);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM jobs WHERE"
                                     " user_id = '12'"),
             0);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* typing while the model thinks; a send retried; a long answer split */
static void
test_typing_split_retry(void)
{
    struct core_fixture f;
    struct connector_ops ops;
    char longq[400];

    if (core_fixture_init(&f, &params, "typing", "user = off\nchat = off\n",
                          0) < 0) {
        T_OK(0);
        return;
    }
    ops = core_fixture_conn_ops(&f.tc, 100, 64);
    T_EQ_INT(core_register_connector(f.core, &ops), 0);
    f.fa.delay_ms = 450;
    f.tc.retry_first = 1;
    memset(longq, 'x', sizeof(longq));
    for (int i = 0; i < 20; i++)
        longq[i * 15] = ' ';
    longq[sizeof(longq) - 1] = '\0';
    {
        struct event ev =
            core_fixture_event("11", "11", "1", longq, EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    /* at 0, 100, 200, 300, 400 ms: at least 3 even when timers slip
     * under a loaded sanitizer run */
    T_OKF(f.tc.typing >= 3, "typing %d", f.tc.typing);
    T_EQ_INT(f.tc.retried, 1);
    /* "answer to: xxx..." (~411 bytes) in parts of at most 64 */
    T_OK(f.tc.completed >= 7);
    {
        char whole[1024] = "";
        int last = -1;

        for (int i = 0; i < f.tc.nsends; i++) {
            if (f.tc.sends[i].part == last)
                continue; /* the retried send */
            last = f.tc.sends[i].part;
            T_OK(strlen(f.tc.sends[i].text) <= 64);
            T_EQ_INT(f.tc.sends[i].parts, f.tc.completed);
            strcat(whole, f.tc.sends[i].text);
        }
        T_EQ_INT(strlen(whole), strlen("answer to: ") + strlen(longq));
    }
    T_EQ_INT(core_fixture_db_int(&f, "SELECT sent_parts FROM jobs"),
             f.tc.completed);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM sent_messages"),
             f.tc.completed);
    /* a 👍 on the second part maps back to the answer */
    {
        struct event v;
        char target[16];

        memset(&v, 0, sizeof(v));
        snprintf(target, sizeof(target), "s%d", 2);
        v.kind = EVENT_VOTE;
        v.platform = "telegram";
        v.chat = "11";
        v.user = "11";
        v.target_id = target;
        v.vote = 1;
        T_EQ_INT(core_accept(f.core, &v), 0);
        v.vote = -1; /* last vote wins */
        T_EQ_INT(core_accept(f.core, &v), 0);
        v.target_id = "nope";
        T_EQ_INT(core_accept(f.core, &v), 0);
    }
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM feedback"), 1);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT vote FROM feedback"), -1);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* a failing model: one clear reply; a command: the placeholder answers */
static void
test_fail_and_commands(void)
{
    struct core_fixture f;

    if (core_fixture_init(&f, &params, "fail", "user = off\n", 0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.mode = CORE_FIXTURE_FAIL;
    {
        struct event ev =
            core_fixture_event("11", "-5", "1", "hi", EVENT_MENTIONED);

        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(f.tc.completed, 1);
    T_CONTAINS(f.tc.sends[0].text, "503 from main");
    T_EQ_INT(f.tc.sends[0].feedback, 0);
    T_EQ_INT(core_fixture_db_int(
                 &f, "SELECT count(*) FROM jobs WHERE state = 'failed'"
                     " AND error_class = 'server'"),
             1);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM messages"), 0);
    {
        struct event ev =
            core_fixture_event("11", "-5", "2", "", EVENT_COMMAND);

        ev.command = "help";
        T_EQ_INT(core_accept(f.core, &ev), 0);
        ev = core_fixture_event("11", "-5", "3", "user 5", EVENT_COMMAND);
        ev.command = "limit";
        T_EQ_INT(core_accept(f.core, &ev), 0);
        /* not addressed, from a bot: no job */
        ev = core_fixture_event("11", "-5", "4", "hello", 0);
        T_EQ_INT(core_accept(f.core, &ev), 0);
        ev = core_fixture_event("12", "-5", "5", "hello",
                                EVENT_MENTIONED | EVENT_FROM_BOT);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 5000));
    T_EQ_INT(f.fa.asks, 1);
    T_EQ_INT(f.tc.completed, 3);
    T_CONTAINS(f.tc.sends[1].text, "Commands: help");
    T_CONTAINS(f.tc.sends[2].text, "usage: limit user WHO RATE|default");
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM jobs"), 3);
    T_EQ_INT(core_fixture_release(&f), 0);
}

int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/parley-test-core-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    test_spec_example();
    test_flood();
    test_run_queue();
    test_limiter_purge();
    test_usage_trickle();
    test_budget();
    test_resume();
    test_ask_age();
    test_overrides();
    test_typing_split_retry();
    test_fail_and_commands();
    rmdir(tmpdir);
    return t_done();
}
