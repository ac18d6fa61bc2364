/* test_core: the core on a real loop and a temp database, with a test
 * connector and a fake asker: limits and notices, floods, budgets,
 * restarts, overrides, typing, votes, send retries, split answers. */
#include "core/core.h"
#include "core/history.h"
#include "tests/t.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

/* ---- a fake asker: answers after delay_ms, fails, or never answers ---- */

enum asker_mode { ASK_ANSWER, ASK_FAIL, ASK_NEVER };

struct pending {
    uv_timer_t timer; /* first: the close callback frees it */
    struct fake_asker *fa;
    struct pending *next;
    uint64_t handle;
    core_ask_done_fn done;
    void *arg;
    char text[1024];
    int64_t tokens_in;
};

struct fake_asker {
    uv_loop_t *loop;
    enum asker_mode mode;
    int delay_ms;
    int64_t extra_tokens; /* reported usage = estimate + extra */
    uint64_t next_handle;
    struct pending *list;
    int asks, cancels, answered;
    int64_t last_estimate;
    char last_system[256];
    int last_n;
};

static void
pending_closed(uv_handle_t *h)
{
    free(h);
}

static void
pending_unlink(struct pending *p)
{
    struct pending **pp = &p->fa->list;

    for (; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void
pending_fire(uv_timer_t *t)
{
    struct pending *p = (struct pending *)t;
    struct fake_asker *fa = p->fa;
    struct core_answer a;

    memset(&a, 0, sizeof(a));
    pending_unlink(p);
    if (fa->mode == ASK_FAIL) {
        a.error_class = "server";
        a.error = "the model is unavailable (503 from main)";
    } else {
        a.ok = 1;
        a.text = p->text;
        a.model = "main";
        a.tokens_in = p->tokens_in;
        a.tokens_out = 10 + fa->extra_tokens;
    }
    fa->answered++;
    p->done(p->arg, &a);
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static int
fake_ask(void *ctx, const struct core_prompt *cp, core_ask_done_fn done,
         void *arg, uint64_t *handle)
{
    struct fake_asker *fa = ctx;
    struct pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return -1;
    fa->asks++;
    fa->last_estimate = cp->estimate;
    fa->last_n = (int)cp->n;
    snprintf(fa->last_system, sizeof(fa->last_system), "%s", cp->msgs[0].text);
    p->fa = fa;
    p->handle = ++fa->next_handle;
    p->done = done;
    p->arg = arg;
    /* the answer names the question, so sends can be matched to it */
    snprintf(p->text, sizeof(p->text), "answer to: %s",
             cp->msgs[cp->n - 1].text);
    p->tokens_in = cp->estimate - cp->max_output_tokens;
    p->next = fa->list;
    fa->list = p;
    *handle = p->handle;
    uv_timer_init(fa->loop, &p->timer);
    if (fa->mode != ASK_NEVER)
        uv_timer_start(&p->timer, pending_fire, (uint64_t)fa->delay_ms, 0);
    return 0;
}

static void
fake_cancel(void *ctx, uint64_t handle)
{
    struct fake_asker *fa = ctx;

    for (struct pending *p = fa->list; p != NULL; p = p->next)
        if (p->handle == handle) {
            pending_unlink(p);
            fa->cancels++;
            uv_close((uv_handle_t *)&p->timer, pending_closed);
            return;
        }
}

static void
fake_asker_drop(struct fake_asker *fa)
{
    while (fa->list != NULL) {
        struct pending *p = fa->list;

        fa->list = p->next;
        uv_close((uv_handle_t *)&p->timer, pending_closed);
    }
}

/* ---- a test connector: records sends, completes them a turn later ---- */

#define SENDS_MAX 20000

struct sent {
    uint64_t send_id;
    enum action_kind kind;
    char reply_to[32];
    char chat[32];
    char text[512];
    int part, parts, feedback;
};

struct test_conn {
    uv_loop_t *loop;
    struct core *core;
    uv_timer_t flush;
    struct sent *sends;
    int nsends, completed, typing, retry_first, retried;
    int queue[SENDS_MAX];
    int nqueue;
};

static void
conn_flush(uv_timer_t *t)
{
    struct test_conn *tc = t->data;
    int n = tc->nqueue;

    tc->nqueue = 0;
    for (int i = 0; i < n; i++) {
        struct sent *s = &tc->sends[tc->queue[i]];
        struct send_result r;
        char mid[32];

        memset(&r, 0, sizeof(r));
        if (tc->retry_first && tc->retried < tc->retry_first) {
            tc->retried++;
            r.status = SEND_RETRY;
            r.retry_after_ms = 200;
        } else {
            snprintf(mid, sizeof(mid), "s%d", tc->queue[i]);
            r.status = SEND_OK;
            r.message_id = mid;
            tc->completed++;
        }
        core_send_done(tc->core, s->send_id, &r);
    }
}

static int
conn_send(void *ctx, const struct action *a)
{
    struct test_conn *tc = ctx;
    struct sent *s;

    if (tc->nsends == SENDS_MAX)
        return -1;
    s = &tc->sends[tc->nsends];
    s->send_id = a->send_id;
    s->kind = a->kind;
    s->part = a->part;
    s->parts = a->parts;
    s->feedback = a->feedback;
    snprintf(s->reply_to, sizeof(s->reply_to), "%s", a->reply_to);
    snprintf(s->chat, sizeof(s->chat), "%s", a->chat);
    snprintf(s->text, sizeof(s->text), "%s", a->text);
    tc->queue[tc->nqueue++] = tc->nsends++;
    uv_timer_start(&tc->flush, conn_flush, 0, 0);
    return 0;
}

static void
conn_typing(void *ctx, const char *chat, const char *thread)
{
    struct test_conn *tc = ctx;

    (void)chat;
    (void)thread;
    tc->typing++;
}

static struct connector_ops
conn_ops(struct test_conn *tc, int64_t typing_ms, size_t text_max)
{
    struct connector_ops ops;

    memset(&ops, 0, sizeof(ops));
    ops.platform = "telegram";
    ops.ctx = tc;
    ops.send = conn_send;
    ops.typing = conn_typing;
    ops.typing_interval_ms = typing_ms;
    ops.text_max = text_max;
    return ops;
}

/* ---- the fixture: loop, store, config, core ---- */

struct fixture {
    uv_loop_t loop;
    char path[256];
    struct store *st;
    struct config *cfg;
    struct fake_asker fa;
    struct test_conn tc;
    struct core *core;
    int64_t mono, wall; /* the fake clock, when used */
};

static void
fake_clock(void *arg, int64_t *mono, int64_t *wall)
{
    struct fixture *f = arg;

    *mono = f->mono;
    *wall = f->wall;
}

static const char base_conf[] =
    "[bot]\nstate_dir = /tmp\nadmins = telegram:999\n"
    "[llm]\nmodels = main\nsystem_prompt = You are terse.\n"
    "max_output_tokens = 100\n"
    "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"
    "api_key = sk-test\nname = m\nprice_in = 0.40\nprice_out = 1.60\n";

static struct config *
make_config(const char *limits)
{
    char text[2048];
    struct config *cfg = NULL;
    struct config_diag d;

    memset(&d, 0, sizeof(d));
    snprintf(text, sizeof(text), "%s[limits]\n%s", base_conf, limits);
    if (config_parse(text, strlen(text), "test.conf", &cfg, &d) < 0)
        for (size_t i = 0; i < d.nerrors; i++)
            fprintf(stderr, "config: %s\n", d.errors[i]);
    config_diag_release(&d);
    return cfg;
}

static int
fixture_core(struct fixture *f, int use_clock)
{
    struct core_asker asker = {&f->fa, fake_ask, fake_cancel};
    struct connector_ops ops = conn_ops(&f->tc, 0, 4096);

    f->core = core_new(&f->loop, f->st, f->cfg, &asker);
    if (f->core == NULL)
        return -1;
    if (use_clock)
        core_set_clock(f->core, fake_clock, f);
    f->tc.core = f->core;
    return core_register_connector(f->core, &ops);
}

static int
fixture_init(struct fixture *f, const char *name, const char *limits,
             int use_clock)
{
    char err[256];

    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    snprintf(f->path, sizeof(f->path), "%s/%s.db", tmpdir, name);
    f->cfg = make_config(limits);
    f->st = store_open(f->path, err, sizeof(err));
    if (f->cfg == NULL || f->st == NULL) {
        fprintf(stderr, "fixture %s: %s\n", name, err);
        return -1;
    }
    store_attach_loop(f->st, &f->loop);
    f->fa.loop = &f->loop;
    f->tc.loop = &f->loop;
    f->tc.sends = calloc(SENDS_MAX, sizeof(*f->tc.sends));
    uv_timer_init(&f->loop, &f->tc.flush);
    f->tc.flush.data = &f->tc;
    f->mono = 1000000;
    f->wall = 1700000000000;
    return fixture_core(f, use_clock);
}

/* Stops the core (as SIGTERM would) and frees it; the store stays. */
static void
fixture_core_down(struct fixture *f)
{
    core_free(f->core);
    f->core = NULL;
    fake_asker_drop(&f->fa);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
fixture_release(struct fixture *f)
{
    char p[300];

    if (f->core != NULL)
        fixture_core_down(f);
    store_close(f->st);
    uv_close((uv_handle_t *)&f->tc.flush, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&f->loop), 0);
    config_free(f->cfg);
    free(f->tc.sends);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
}

/* Runs the loop until pred holds or max_ms pass (a uv timer watchdog). */
struct until {
    int (*pred)(struct fixture *);
    struct fixture *f;
    int met;
};

static void
until_check(uv_timer_t *t)
{
    struct until *u = t->data;

    if (u->pred == NULL || u->pred(u->f)) {
        u->met = 1;
        uv_stop(t->loop);
    }
}

static void
until_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int
run_until(struct fixture *f, int (*pred)(struct fixture *), int max_ms)
{
    struct until u = {pred, f, 0};
    uv_timer_t check, deadline;

    uv_timer_init(&f->loop, &check);
    uv_timer_init(&f->loop, &deadline);
    check.data = &u;
    uv_timer_start(&check, until_check, 2, 2);
    uv_timer_start(&deadline, until_deadline, (uint64_t)max_ms, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&check, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return u.met;
}

static int
idle(struct fixture *f)
{
    struct core_stats s;

    core_stats(f->core, &s);
    return s.inflight == 0 && f->tc.nqueue == 0;
}

static int
never(struct fixture *f)
{
    (void)f;
    return 0;
}

static long long
db_int(struct fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long v = -1;

    store_flush(f->st);
    if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL) ==
            SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        fprintf(stderr, "db_int %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void
db_exec(struct fixture *f, const char *sql)
{
    sqlite3 *db = NULL;

    sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "db_exec %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

static struct event
msg(const char *user, const char *chat, const char *id, const char *text,
    unsigned flags)
{
    struct event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = EVENT_MESSAGE;
    ev.platform = "telegram";
    ev.chat = chat;
    ev.thread = "";
    ev.user = user;
    ev.user_name = "Ann";
    ev.message_id = id;
    ev.reply_to = "";
    ev.flags = flags;
    ev.text = text;
    return ev;
}

/* ---- scenarios ---- */

/* SPEC §4 through the real path: 3/20s at t = 0, 5, 10, 15 s. */
static void
test_spec_example(void)
{
    struct fixture f;
    static const char *ids[] = {"1", "2", "3", "4"};
    int notices = 0;

    if (fixture_init(&f, "spec",
                     "user = 3/20s\nchat = off\n"
                     "user_tokens = off\n",
                     1) < 0) {
        T_OK(0);
        return;
    }
    for (int i = 0; i < 4; i++) {
        struct event ev = msg("11", "11", ids[i], "hi", EVENT_PRIVATE);

        f.mono = 1000000 + i * 5000;
        f.wall = 1700000000000 + i * 5000;
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(run_until(&f, idle, 5000));
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
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE state = 'sent'"), 4);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE error_class ="
                        " 'rate_limited'"),
             1);
    T_EQ_INT(db_int(&f, "SELECT requests FROM usage WHERE scope = 'user'"), 3);
    T_EQ_INT(db_int(&f, "SELECT limited FROM usage WHERE scope = 'user'"), 1);

    /*
     * A restart is no way around the limit: the limiter state is persisted
     * on stop and imported on start, wall clock mapped onto monotonic.
     */
    fixture_core_down(&f);
    f.mono = 5000; /* a new boot: the monotonic clock restarted */
    f.wall = 1700000000000 + 16000;
    T_EQ_INT(fixture_core(&f, 1), 0);
    {
        struct event ev = msg("11", "11", "5", "again", EVENT_PRIVATE);
        struct core_stats s;

        T_EQ_INT(core_accept(f.core, &ev), 0);
        core_stats(f.core, &s);
        T_EQ_INT(s.limited, 1);
        T_EQ_INT(s.admitted, 0);
    }
    T_OK(run_until(&f, idle, 5000));
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
        struct event ev = msg("11", "11", "6", "later", EVENT_PRIVATE);
        struct core_stats s;

        T_EQ_INT(core_accept(f.core, &ev), 0);
        core_stats(f.core, &s);
        T_EQ_INT(s.admitted, 1);
    }
    T_OK(run_until(&f, idle, 5000));
    fixture_release(&f);
}

/* 10,000 messages from one user in one window: one notice, 30 asks. */
static void
test_flood(void)
{
    struct fixture f;
    char id[16];
    int notices = 0, answers = 0;
    struct core_stats s;

    if (fixture_init(&f, "flood", "user = 30/60s\nnotice = once\n", 0) < 0) {
        T_OK(0);
        return;
    }
    for (int i = 0; i < 10000; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = msg("11", "-100", id, "spam", EVENT_MENTIONED);
        if (core_accept(f.core, &ev) != 0) {
            T_OK(0);
            break;
        }
    }
    T_OK(run_until(&f, idle, 20000));
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
    T_EQ_INT(db_int(&f, "SELECT limited FROM usage WHERE scope = 'user'"),
             9970);
    T_EQ_INT(db_int(&f, "SELECT limited FROM usage WHERE scope = 'chat'"),
             9970);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE state = 'limited'"),
             9969);
    /* redelivery of the whole flood: nothing new at all */
    for (int i = 0; i < 10000; i += 97) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = msg("11", "-100", id, "spam", EVENT_MENTIONED);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    core_stats(f.core, &s);
    T_EQ_INT(s.accepted, 10000);
    T_OK(s.duplicates >= 104);
    /* an admin floods freely */
    for (int i = 0; i < 50; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "a%d", i);
        ev = msg("999", "-100", id, "admin", EVENT_MENTIONED);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(run_until(&f, idle, 5000));
    T_EQ_INT(f.fa.asks, 80);
    fixture_release(&f);
}

/* 50 concurrent requests against a budget that fits 10 estimates. */
static void
test_budget(void)
{
    struct fixture f;
    char limits[256], id[16];
    const char *text = "how much is two plus two?";
    int64_t est = history_estimate_tokens("You are terse.", 14) +
                  history_estimate_tokens(text, strlen(text)) + 100;
    long long charged;

    snprintf(limits, sizeof(limits),
             "user = off\nchat = off\nuser_tokens = %lld/1d\n",
             (long long)(10 * est + est / 2));
    if (fixture_init(&f, "budget", limits, 0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.delay_ms = 50; /* all 50 arrive before any answer */
    f.fa.extra_tokens = 7;
    for (int i = 0; i < 50; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = msg("11", "11", id, text, EVENT_PRIVATE);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_EQ_INT(f.fa.asks, 10);
    T_EQ_INT(f.fa.last_estimate, est);
    T_OK(run_until(&f, idle, 5000));
    charged = db_int(&f, "SELECT tokens_in + tokens_out FROM usage"
                         " WHERE scope = 'user'");
    T_OKF(charged <= 10 * est + est, "charged %lld, budget %lld + %lld",
          charged, (long long)(10 * est + est / 2), (long long)est);
    T_EQ_INT(db_int(&f, "SELECT requests FROM usage WHERE scope = 'user'"), 10);
    T_EQ_INT(db_int(&f, "SELECT limited FROM usage WHERE scope = 'user'"), 40);
    /* cost from price_in/price_out: micro-USD = tokens x USD per 1M */
    T_EQ_INT(db_int(&f, "SELECT cost_micro_usd FROM usage WHERE scope ="
                        " 'user'"),
             db_int(&f, "SELECT sum(cost_micro_usd) FROM answers"));
    T_EQ_INT(db_int(&f, "SELECT cost_micro_usd FROM answers LIMIT 1"),
             db_int(&f, "SELECT CAST(round(tokens_in * 0.40 + tokens_out *"
                        " 1.60) AS INTEGER) FROM answers LIMIT 1"));
    T_OK(db_int(&f, "SELECT min(cost_micro_usd) FROM answers") > 0);
    {
        int budget_notices = 0;

        for (int i = 0; i < f.tc.nsends; i++)
            if (f.tc.sends[i].kind == ACTION_NOTICE) {
                budget_notices++;
                T_CONTAINS(f.tc.sends[i].text, "your token budget");
            }
        T_EQ_INT(budget_notices, 1); /* notice = once */
    }
    fixture_release(&f);
}

/* Jobs in flight at a stop are asked again after a restart, once. */
static void
test_resume(void)
{
    struct fixture f;
    char id[16];

    if (fixture_init(&f, "resume",
                     "user = off\nchat = off\n"
                     "user_tokens = off\n",
                     0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.mode = ASK_NEVER;
    for (int i = 0; i < 20; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = msg("11", "11", id, "question", EVENT_PRIVATE);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_EQ_INT(f.fa.asks, 20);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE state = 'asking'"),
             20);
    fixture_core_down(&f);
    T_EQ_INT(f.fa.cancels, 20);
    /* the new process: the same database, an answering model */
    f.fa.mode = ASK_ANSWER;
    T_EQ_INT(fixture_core(&f, 0), 0);
    T_OK(run_until(&f, idle, 5000));
    T_EQ_INT(f.fa.asks, 40);
    T_EQ_INT(f.tc.completed, 20);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE state = 'sent'"), 20);
    T_EQ_INT(db_int(&f, "SELECT max(attempts) FROM jobs"), 1);
    /* history: every question and answer, in one conversation */
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM messages"), 40);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM conversations"), 1);
    /* and the next prompt carries the history within the limits */
    {
        struct event ev = msg("11", "11", "x", "and now?", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
        T_EQ_INT(f.fa.last_n, 1 + 20 + 1); /* history_messages = 20 */
        T_EQ_STR(f.fa.last_system, "You are terse.");
    }
    T_OK(run_until(&f, idle, 5000));
    /* a persona for the chat replaces the system prompt */
    db_exec(&f, "INSERT INTO chats (platform, chat_id, persona, created_ms,"
                " updated_ms) VALUES ('telegram', '11', 'You are a pirate.',"
                " 1, 1)");
    {
        struct event ev = msg("11", "11", "y", "ahoy?", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
        T_EQ_STR(f.fa.last_system, "You are a pirate.");
    }
    T_OK(run_until(&f, idle, 5000));
    fixture_release(&f);
}

/* parleyctl writes an override and a ban; the core applies them within 1 s. */
static void
test_overrides(void)
{
    struct fixture f;
    char id[16];
    int i, sent_before;
    struct core_stats s;

    if (fixture_init(&f, "overrides", "user = 30/60s\nnotice = always\n", 0) <
        0) {
        T_OK(0);
        return;
    }
    db_exec(&f, "INSERT INTO overrides (scope, platform, target, kind,"
                " rate_n, window_ms, updated_ms) VALUES ('user', 'telegram',"
                " '11', 'limit', 2, 60000, 1)");
    run_until(&f, never, 1300); /* one tick passes */
    for (i = 0; i < 3; i++) {
        struct event ev;

        snprintf(id, sizeof(id), "%d", i);
        ev = msg("11", "11", id, "q", EVENT_PRIVATE);
        core_accept(f.core, &ev);
    }
    core_stats(f.core, &s);
    T_EQ_INT(s.admitted, 2);
    T_EQ_INT(s.limited, 1);
    T_OK(run_until(&f, idle, 5000));
    for (i = 0; i < f.tc.nsends; i++)
        if (f.tc.sends[i].kind == ACTION_NOTICE)
            T_CONTAINS(f.tc.sends[i].text, "2 of 2 requests per 60 s");
    /* a ban: silence, no notice, counted */
    db_exec(&f, "INSERT INTO bans (platform, user_id, until_ms, created_ms)"
                " VALUES ('telegram', '12', NULL, 1)");
    run_until(&f, never, 1300);
    sent_before = f.tc.nsends;
    {
        struct event ev = msg("12", "12", "b1", "hello", EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(run_until(&f, idle, 2000));
    T_EQ_INT(f.tc.nsends, sent_before);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE error_class ="
                        " 'banned'"),
             1);
    fixture_release(&f);
}

/* typing while the model thinks; a send retried; a long answer split */
static void
test_typing_split_retry(void)
{
    struct fixture f;
    struct connector_ops ops;
    char longq[400];

    if (fixture_init(&f, "typing", "user = off\nchat = off\n", 0) < 0) {
        T_OK(0);
        return;
    }
    ops = conn_ops(&f.tc, 100, 64);
    T_EQ_INT(core_register_connector(f.core, &ops), 0);
    f.fa.delay_ms = 450;
    f.tc.retry_first = 1;
    memset(longq, 'x', sizeof(longq));
    for (int i = 0; i < 20; i++)
        longq[i * 15] = ' ';
    longq[sizeof(longq) - 1] = '\0';
    {
        struct event ev = msg("11", "11", "1", longq, EVENT_PRIVATE);

        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(run_until(&f, idle, 5000));
    T_OKF(f.tc.typing >= 4, "typing %d", f.tc.typing);
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
    T_EQ_INT(db_int(&f, "SELECT sent_parts FROM jobs"), f.tc.completed);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM sent_messages"), f.tc.completed);
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
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM feedback"), 1);
    T_EQ_INT(db_int(&f, "SELECT vote FROM feedback"), -1);
    fixture_release(&f);
}

/* a failing model: one clear reply; a command: the placeholder answers */
static void
test_fail_and_commands(void)
{
    struct fixture f;

    if (fixture_init(&f, "fail", "user = off\n", 0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.mode = ASK_FAIL;
    {
        struct event ev = msg("11", "-5", "1", "hi", EVENT_MENTIONED);

        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(run_until(&f, idle, 5000));
    T_EQ_INT(f.tc.completed, 1);
    T_CONTAINS(f.tc.sends[0].text, "503 from main");
    T_EQ_INT(f.tc.sends[0].feedback, 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE state = 'failed'"
                        " AND error_class = 'server'"),
             1);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM messages"), 0);
    {
        struct event ev = msg("11", "-5", "2", "", EVENT_COMMAND);

        ev.command = "help";
        T_EQ_INT(core_accept(f.core, &ev), 0);
        ev = msg("11", "-5", "3", "user 5", EVENT_COMMAND);
        ev.command = "limit";
        T_EQ_INT(core_accept(f.core, &ev), 0);
        /* not addressed, from a bot: no job */
        ev = msg("11", "-5", "4", "hello", 0);
        T_EQ_INT(core_accept(f.core, &ev), 0);
        ev = msg("12", "-5", "5", "hello", EVENT_MENTIONED | EVENT_FROM_BOT);
        T_EQ_INT(core_accept(f.core, &ev), 0);
    }
    T_OK(run_until(&f, idle, 5000));
    T_EQ_INT(f.fa.asks, 1);
    T_EQ_INT(f.tc.completed, 3);
    T_CONTAINS(f.tc.sends[1].text, "Commands: help");
    T_CONTAINS(f.tc.sends[2].text, "usage: limit user WHO RATE|default");
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs"), 3);
    fixture_release(&f);
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
    test_budget();
    test_resume();
    test_overrides();
    test_typing_split_retry();
    test_fail_and_commands();
    rmdir(tmpdir);
    return t_done();
}
