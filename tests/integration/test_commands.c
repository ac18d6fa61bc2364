/* test_commands: the chat commands on a real core, loop and temp database,
 * with a test connector and a fake asker: user and admin commands, roles,
 * audit, forget (every table scanned), the feedback alert, a model answer
 * that reads like a command, and parleyctl changing limits live. */
#include "core/core.h"
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
    const char *fixed; /* answer this instead of "answer to: ..." */
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
    if (fa->fixed != NULL)
        snprintf(p->text, sizeof(p->text), "%s", fa->fixed);
    else
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

#define SENDS_MAX 2000

struct sent {
    uint64_t send_id;
    enum action_kind kind;
    char reply_to[32];
    char chat[32];
    char text[4096];
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
    "[bot]\nstate_dir = /tmp\nadmins = telegram:999, discord:22\n"
    "[llm]\nmodels = main\nsystem_prompt = You are terse.\n"
    "max_output_tokens = 100\n"
    "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"
    "api_key = sk-test\nname = m\nprice_in = 0.40\nprice_out = 1.60\n";

static struct config *
make_config(const char *limits)
{
    char text[4096];
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

/* ---- helpers ---- */

static struct event
ev_msg(const char *user, const char *chat, const char *id, const char *text,
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

/* A command from user in chat; args after the name; reply_to may be "". */
static int
cmd(struct fixture *f, const char *user, const char *chat, const char *id,
    const char *name, const char *args, unsigned flags, const char *reply_to)
{
    struct event ev = ev_msg(user, chat, id, args, EVENT_COMMAND | flags);

    ev.command = name;
    ev.reply_to = reply_to;
    return core_accept(f->core, &ev);
}

/* The text of the last send replying to message id, or NULL. */
static const char *
reply_of(struct fixture *f, const char *id)
{
    for (int i = f->tc.nsends - 1; i >= 0; i--)
        if (strcmp(f->tc.sends[i].reply_to, id) == 0)
            return f->tc.sends[i].text;
    return NULL;
}

/* Runs one command to its reply. */
static const char *
run_cmd(struct fixture *f, const char *user, const char *chat, const char *id,
        const char *name, const char *args, unsigned flags,
        const char *reply_to)
{
    T_EQ_INT(cmd(f, user, chat, id, name, args, flags, reply_to), 0);
    T_OK(run_until(f, idle, 5000));
    return reply_of(f, id);
}

static void
ask(struct fixture *f, const char *user, const char *chat, const char *id,
    const char *text, unsigned flags)
{
    struct event ev = ev_msg(user, chat, id, text, flags);

    T_EQ_INT(core_accept(f->core, &ev), 0);
}

/* ---- scenarios ---- */

/* help, usage, limits, reset for a plain user; help for an admin */
static void
test_user_commands(void)
{
    struct fixture f;
    const char *r;

    if (fixture_init(&f, "user", "user = 30/60s\nchat = 120/60s\n", 0) < 0) {
        T_OK(0);
        return;
    }
    ask(&f, "11", "-100", "q1", "first question", EVENT_MENTIONED);
    ask(&f, "11", "-100", "q2", "second question", EVENT_MENTIONED);
    T_OK(run_until(&f, idle, 5000));
    r = run_cmd(&f, "11", "-100", "c1", "help", "", 0, "");
    T_CONTAINS(r, "Commands: help, reset, usage, limits, forget.");
    T_OK(r != NULL && strstr(r, "ban WHO") == NULL);
    r = run_cmd(&f, "999", "-100", "c2", "help", "", 0, "");
    T_CONTAINS(r, "ban WHO [DURATION]");
    T_CONTAINS(r, "limit user WHO RATE|default");
    r = run_cmd(&f, "12", "-100", "c3", "help", "", EVENT_ADMIN, "");
    T_CONTAINS(r, "limit chat RATE|default");
    T_CONTAINS(r, "persona TEXT|default");
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
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM messages"), 4);
    r = run_cmd(&f, "11", "-100", "c8", "reset", "", 0, "");
    T_CONTAINS(r, "starts over");
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM messages"), 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit"), 0);
    fixture_release(&f);
}

/* admin commands: overrides, bans by reply, model, persona, stats, audit */
static void
test_admin_commands(void)
{
    struct fixture f;
    const char *r;
    struct core_stats s;
    char id[16];

    if (fixture_init(&f, "admin",
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
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM overrides"), 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit"), 0);
    /* the global admin: applies at once (no tick needed) */
    r = run_cmd(&f, "999", "-100", "a3", "limit", "user 12 2/60s", 0, "");
    T_CONTAINS(r, "the request limit of telegram:12 is now 2/1m");
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "u12-%d", i);
        ask(&f, "12", "-100", id, "hello", EVENT_MENTIONED);
    }
    core_stats(f.core, &s);
    T_EQ_INT(s.limited, 1);
    T_OK(run_until(&f, idle, 5000));
    T_CONTAINS(reply_of(&f, "u12-2"), "2 of 2 requests per 60 s");
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit WHERE actor ="
                        " 'telegram:999' AND action = 'limit user' AND target"
                        " = 'telegram:12' AND detail = '2/1m'"),
             1);
    r = run_cmd(&f, "999", "-100", "a4", "limit", "user 12 default", 0, "");
    T_CONTAINS(r, "back to the default");
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM overrides"), 0);
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
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM overrides WHERE scope = 'chat'"
                        " AND target = '-100'"),
             2);
    r = run_cmd(&f, "13", "-100", "a10", "limits", "", 0, "");
    T_CONTAINS(r, "this chat's requests: 50/1m (set by an admin)");
    r = run_cmd(&f, "13", "-100", "a10b", "limit", "chat default", EVENT_ADMIN,
                "");
    T_CONTAINS(r, "this chat's request limit is back to the default");
    /* ban by reply: 14 wrote m14, the admin replies "ban 1h" */
    ask(&f, "14", "-100", "m14", "hi bot", EVENT_MENTIONED);
    T_OK(run_until(&f, idle, 5000));
    r = run_cmd(&f, "999", "-100", "a11", "ban", "1h", 0, "m14");
    T_CONTAINS(r, "I ignore telegram:14 for 1h");
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM bans WHERE user_id = '14' AND"
                        " until_ms > 0"),
             1);
    {
        int before = f.tc.nsends;

        ask(&f, "14", "-100", "m14b", "still there?", EVENT_MENTIONED);
        T_OK(run_until(&f, idle, 5000));
        T_EQ_INT(f.tc.nsends, before); /* silence */
    }
    r = run_cmd(&f, "999", "-100", "a12", "unban", "", 0, "m14");
    T_CONTAINS(r, "telegram:14 is no longer banned");
    r = run_cmd(&f, "999", "-100", "a13", "ban", "", 0, "nosuchmsg");
    T_CONTAINS(r, "I don't know who wrote that message");
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
    r = run_cmd(&f, "13", "-100", "a19", "persona",
                "You speak like a pirate, \"arr\".", EVENT_ADMIN, "");
    T_CONTAINS(r, "system prompt is set");
    ask(&f, "15", "-100", "p1", "who are you?", EVENT_MENTIONED);
    T_EQ_STR(f.fa.last_system, "You speak like a pirate, \"arr\".");
    T_OK(run_until(&f, idle, 5000));
    r = run_cmd(&f, "11", "-100", "a20", "persona", "evil", 0, "");
    T_CONTAINS(r, "only this chat's administrators");
    /* in a private chat the user administers that chat */
    r = run_cmd(&f, "11", "11", "a21", "persona", "Be brief.", EVENT_PRIVATE,
                "");
    T_CONTAINS(r, "system prompt is set");
    /* stats */
    r = run_cmd(&f, "999", "-100", "a22", "stats", "", 0, "");
    T_CONTAINS(r, "requests: ");
    T_CONTAINS(r, "answers: 4 (4)");
    T_CONTAINS(r, "limited: 2 (2)");
    T_CONTAINS(r, "answer latency, 7 days: p50 ");
    r = run_cmd(&f, "11", "-100", "a23", "stats", "", 0, "");
    T_CONTAINS(r, "only the bot's admins may use \"stats\"");
    /* every admin action is in the audit log, refusals are not */
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit"), 10);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit WHERE action = 'persona'"
                        " AND target = 'telegram:-100'"),
             1);
    core_stats(f.core, &s);
    T_EQ_INT(s.admin_actions, 10);
    fixture_release(&f);
}

/* A model answer that reads like a command runs nothing. */
static void
test_answer_is_not_a_command(void)
{
    struct fixture f;
    struct event ev;

    if (fixture_init(&f, "nocmd", "user = off\n", 0) < 0) {
        T_OK(0);
        return;
    }
    f.fa.fixed = "/ban 123\n/limit user 123 off\n/persona evil";
    /* even asked by an admin, in a private chat */
    ask(&f, "999", "999", "q1", "say /ban 123", EVENT_PRIVATE);
    ask(&f, "11", "-100", "q2", "say /ban 123", EVENT_MENTIONED);
    T_OK(run_until(&f, idle, 5000));
    T_EQ_INT(f.tc.completed, 2);
    T_CONTAINS(f.tc.sends[0].text, "/ban 123");
    /* and the answer echoed back by the platform as our own message */
    ev = ev_msg("bot", "-100", "echo1", "123", EVENT_COMMAND | EVENT_FROM_SELF);
    ev.command = "ban";
    T_EQ_INT(core_accept(f.core, &ev), 0);
    ev = ev_msg("otherbot", "-100", "echo2", "123",
                EVENT_COMMAND | EVENT_FROM_BOT);
    ev.command = "ban";
    T_EQ_INT(core_accept(f.core, &ev), 0);
    T_OK(run_until(&f, idle, 2000));
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM bans"), 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM overrides"), 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM chats"), 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit"), 0);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM jobs WHERE flags & 8"), 0);
    fixture_release(&f);
}

/* Rows in any table, any column, holding needle (the scan of `forget`). */
static long long
db_scan(struct fixture *f, const char *needle, int verbose)
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
    struct fixture f;
    const char *u = "987654321", *r;
    struct event v;
    long long before;

    if (fixture_init(&f, "forget",
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
    T_OK(run_until(&f, idle, 5000));
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
    run_until(&f, never, 1100);
    r = run_cmd(&f, "999", "-300", "x3", "limit", "chat 1/60s", 0, "");
    ask(&f, u, "-300", "n1", "one", EVENT_MENTIONED);
    ask(&f, u, "-300", "n2", "two", EVENT_MENTIONED);
    T_OK(run_until(&f, idle, 5000));
    T_CONTAINS(reply_of(&f, "n2"), "429");
    run_until(&f, never, 1300); /* the limiter is persisted */
    before = db_scan(&f, u, 0);
    T_OKF(before > 20, "rows before %lld", before);
    T_OK(db_int(&f, "SELECT count(*) FROM limiter_state WHERE key LIKE"
                    " '%987654321%'") >= 3);
    /* forget, in the group */
    r = run_cmd(&f, u, "-100", "f1", "forget", "", 0, "");
    T_CONTAINS(r, "I deleted everything stored about you");
    T_EQ_INT(db_scan(&f, u, 1), 0);
    /* a tick later the limiter has exported its keys again: still none */
    run_until(&f, never, 1300);
    T_EQ_INT(db_scan(&f, u, 1), 0);
    /* the others' data stays */
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM messages WHERE user_id = '11'"),
             1);
    T_OK(db_int(&f, "SELECT count(*) FROM audit") >= 3);
    /* and the windows still count: the override is gone, 20/60s applies,
     * 5 requests are in it (g1, d1, n1, f1, f2; n2 was refused) */
    r = run_cmd(&f, u, "-100", "f2", "usage", "", 0, "");
    T_CONTAINS(r, "your requests: 5 of 20");
    T_CONTAINS(r, "today: 1 requests");
    fixture_release(&f);
}

/* [feedback] alert: the admins hear once an hour, Discord is logged. */
static void
test_feedback_alert(void)
{
    struct fixture f;
    struct event v;
    char id[16], target[16];
    int alerts = 0;

    if (fixture_init(&f, "alert",
                     "user = off\n[feedback]\nalert_ratio = 0.5\n"
                     "alert_window = 4\n",
                     0) < 0) {
        T_OK(0);
        return;
    }
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "q%d", i);
        ask(&f, "11", "-100", id, "question", EVENT_MENTIONED);
    }
    T_OK(run_until(&f, idle, 5000));
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
        T_OK(run_until(&f, idle, 2000));
        if (i < 3)
            T_EQ_INT(f.tc.nsends, 6);
    }
    for (int i = 0; i < f.tc.nsends; i++)
        if (strstr(f.tc.sends[i].text, "feedback alert") != NULL) {
            alerts++;
            T_EQ_STR(f.tc.sends[i].chat, "999");
            T_EQ_STR(f.tc.sends[i].reply_to, "");
            T_EQ_INT(f.tc.sends[i].kind, ACTION_NOTICE);
            T_CONTAINS(f.tc.sends[i].text, "3 of the last 4 votes");
        }
    T_EQ_INT(alerts, 1);
    /* more 👎 within the hour: no second alert, also after a restart */
    v.target_id = "s4";
    T_EQ_INT(core_accept(f.core, &v), 0);
    fixture_core_down(&f);
    T_EQ_INT(fixture_core(&f, 0), 0);
    v.target_id = "s5";
    T_EQ_INT(core_accept(f.core, &v), 0);
    T_OK(run_until(&f, idle, 2000));
    T_EQ_INT(f.tc.nsends, 7);
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM connector_state WHERE key ="
                        " 'feedback_alert_ms'"),
             1);
    fixture_release(&f);
}

/* parleyctl writes while the core runs: applied within a second. */
static void
test_parleyctl_live(void)
{
    const char *build = getenv("PARLEY_BUILD");
    char ctl[512], conf[300], line[1200], id[16];
    struct fixture f;
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
    if (fixture_init(&f, "parley", "user = 30/60s\nchat = off\n", 0) < 0) {
        T_OK(0);
        return;
    }
    snprintf(conf, sizeof(conf), "%s/ctl.conf", tmpdir);
    cf = fopen(conf, "w");
    fprintf(cf, "[bot]\nstate_dir = %s\n", tmpdir);
    fclose(cf);
    ask(&f, "11", "11", "l1", "one", EVENT_PRIVATE);
    ask(&f, "11", "11", "l2", "two", EVENT_PRIVATE);
    T_OK(run_until(&f, idle, 5000));
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
        run_until(&f, never, 10);
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
    for (i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "b%d", i);
        ask(&f, "12", "12", id, "probe", EVENT_PRIVATE);
        T_OK(run_until(&f, idle, 2000));
        if (db_int(&f, "SELECT count(*) FROM jobs WHERE error_class ="
                       " 'banned'") > 0)
            break;
        run_until(&f, never, 10);
    }
    t1 = (int64_t)uv_hrtime() / 1000000;
    fprintf(stderr, "parleyctl ban applied after %lld ms\n",
            (long long)(t1 - t0));
    T_OKF(t1 - t0 <= 1100, "ban applied after %lld ms", (long long)(t1 - t0));
    T_EQ_INT(db_int(&f, "SELECT count(*) FROM audit WHERE platform IS NULL"
                        " AND actor LIKE 'parleyctl:%'"),
             2);
    fixture_release(&f);
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
