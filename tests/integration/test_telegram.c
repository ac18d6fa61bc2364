/* test_telegram: the Telegram connector with the real core against the Bot
 * API fake: who gets answered, 429s per chat, long answers, group pacing,
 * kill -9 and restart. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "connectors/telegram.h"
#include "connectors/telegram_format.h"
#include "core/core.h"
#include "core/http.h"
#include "core/log.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/telegram_fake.h"
#include "tests/t.h"

#define GROUP -4001LL
#define FORUM -1001234567890LL

/* ---- a model double: "answer to: TEXT" after delay_ms; "LONG" asks for
 * the long answer ---- */

struct ask {
    uv_timer_t timer; /* first: freed by the close callback */
    struct asker *a;
    struct ask *next;
    uint64_t handle;
    core_ask_done_fn done;
    void *arg;
    char *text;
};

struct asker {
    uv_loop_t *loop;
    int delay_ms;
    uint64_t next;
    struct ask *list;
    int asks;
};

static char *long_answer;

static void
ask_closed(uv_handle_t *h)
{
    struct ask *k = (struct ask *)h;

    free(k->text);
    free(k);
}

static void
ask_unlink(struct ask *k)
{
    for (struct ask **pp = &k->a->list; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            return;
        }
}

static void
ask_fire(uv_timer_t *t)
{
    struct ask *k = (struct ask *)t;
    struct core_answer ans;

    ask_unlink(k);
    memset(&ans, 0, sizeof(ans));
    ans.ok = 1;
    ans.text = k->text;
    ans.tokens_in = 10;
    ans.tokens_out = 10;
    k->done(k->arg, &ans);
    uv_close((uv_handle_t *)&k->timer, ask_closed);
}

static int
asker_ask(void *ctx, const struct core_prompt *p, core_ask_done_fn done,
          void *arg, uint64_t *handle)
{
    struct asker *a = ctx;
    struct ask *k = calloc(1, sizeof(*k));
    const char *q = p->msgs[p->n - 1].text;
    size_t n = strlen(q) + 32;

    if (k == NULL)
        return -1;
    a->asks++;
    if (strstr(q, "LONG") != NULL)
        k->text = strdup(long_answer);
    else if ((k->text = malloc(n)) != NULL)
        snprintf(k->text, n, "answer to: %s", q);
    k->a = a;
    k->handle = ++a->next;
    k->done = done;
    k->arg = arg;
    k->next = a->list;
    a->list = k;
    *handle = k->handle;
    uv_timer_init(a->loop, &k->timer);
    uv_timer_start(&k->timer, ask_fire, (uint64_t)a->delay_ms, 0);
    return 0;
}

static void
asker_cancel(void *ctx, uint64_t handle)
{
    struct asker *a = ctx;

    for (struct ask *k = a->list; k; k = k->next)
        if (k->handle == handle) {
            ask_unlink(k);
            uv_close((uv_handle_t *)&k->timer, ask_closed);
            return;
        }
}

static void
asker_drop(struct asker *a)
{
    while (a->list) {
        struct ask *k = a->list;
        a->list = k->next;
        uv_close((uv_handle_t *)&k->timer, ask_closed);
    }
}

/* ---- a node: store + core + connector on a loop ---- */

struct node {
    uv_loop_t *loop;
    struct store *st;
    struct config *cfg;
    struct http *http;
    struct core *core;
    struct telegram *tg;
    struct asker asker;
    int fatal;
    char fatal_why[200];
};

static void
on_fatal(void *arg, const char *why)
{
    struct node *n = arg;

    n->fatal++;
    snprintf(n->fatal_why, sizeof(n->fatal_why), "%s", why);
}

static int
node_up(struct node *n, uv_loop_t *loop, const char *db, const char *base,
        const char *token, const char *rates, int delay_ms)
{
    char err[256];
    struct core_asker ca;

    memset(n, 0, sizeof(*n));
    n->loop = loop;
    if ((n->cfg = core_fixture_config(
             "[bot]\nstate_dir = /tmp\n"
             "[telegram]\nenabled = true\ntoken = %s\napi_base = %s\n"
             "poll_timeout = 1s\n%s\n"
             "[limits]\nuser = off\nchat = off\n"
             "[llm]\nmodels = main\nmax_output_tokens = "
             "100\n" CORE_FIXTURE_MODEL,
             token, base, rates)) == NULL) {
        return -1;
    }
    if ((n->st = store_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }
    store_attach_loop(n->st, loop);
    n->http = http_new(loop);
    n->asker.loop = loop;
    n->asker.delay_ms = delay_ms;
    ca.ctx = &n->asker;
    ca.ask = asker_ask;
    ca.cancel = asker_cancel;
    n->core = core_new(loop, n->st, n->cfg, &ca);
    if (n->http == NULL || n->core == NULL)
        return -1;
    n->tg = telegram_new(loop, n->http, n->core, n->st, n->cfg, on_fatal, n);
    if (n->tg == NULL || telegram_start(n->tg) < 0)
        return -1;
    return 0;
}

static void
node_down(struct node *n)
{
    telegram_free(n->tg);
    core_free(n->core);
    asker_drop(&n->asker);
    http_free(n->http);
    store_close(n->st);
    uv_run(n->loop, UV_RUN_NOWAIT);
    config_free(n->cfg);
}

/* ---- helpers ---- */

static uv_loop_t loop;
static struct telegram_fake *tf;
static char tmpdir[64];

/* A 20 ms tick keeps uv_run(ONCE) from blocking on a long poll: every
 * wait below is bounded. */
static uv_timer_t tick;

static void
tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond(arg) or ms pass; 1 if cond held. */
static int
run_until(int (*cond)(void *), void *arg, int64_t ms)
{
    int64_t end = fake_now_ms() + ms;

    while (!cond(arg) && fake_now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return cond(arg);
}

static void
run_for(int64_t ms)
{
    int64_t end = fake_now_ms() + ms;

    while (fake_now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
}

struct want {
    int64_t chat;
    size_t n;
};

static int
has_sent(void *arg)
{
    struct want *w = arg;
    const struct telegram_fake_sent *s;

    return telegram_fake_sent(tf, w->chat, &s) >= w->n;
}

static size_t
sent_count(int64_t chat)
{
    const struct telegram_fake_sent *s;

    return telegram_fake_sent(tf, chat, &s);
}

static const struct telegram_fake_sent *
sent_last(int64_t chat)
{
    const struct telegram_fake_sent *s;
    size_t n = telegram_fake_sent(tf, chat, &s);

    return n ? &s[n - 1] : NULL;
}

static int64_t
msg(int64_t chat, const char *type, int64_t from, const char *text,
    int64_t reply_to, int64_t thread)
{
    struct telegram_fake_msg m = {chat, type, from,     NULL,
                                  0,    text, reply_to, thread};
    int64_t mid = 0;

    telegram_fake_message(tf, &m, &mid);
    return mid;
}

/* ---- scenarios ---- */

static void
test_addressing(void)
{
    struct node n;
    char db[128];
    struct want w;
    const struct telegram_fake_sent *s;
    int64_t m1, m2;

    snprintf(db, sizeof(db), "%s/addr.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN, "",
                 0) == 0);

    /* private: answered, as a reply, with buttons */
    m1 = msg(1001, "private", 1001, "hello", 0, 0);
    w = (struct want){1001, 1};
    T_OK(run_until(has_sent, &w, 10000));
    /* the "/" menu was set once at start: the commands everyone may use */
    {
        struct telegram_fake_stats st;

        telegram_fake_stats(tf, &st);
        T_EQ_INT(st.set_my_commands, 1);
        T_EQ_STR(st.my_commands, "help,reset,usage,limits,forget");
    }
    s = sent_last(1001);
    T_OK(s != NULL);
    if (s != NULL) {
        T_EQ_STR(s->text, "answer to: hello");
        T_EQ_INT(s->reply_to, m1);
        T_EQ_INT(s->keyboard, 1);
        T_OK(s->cb_up != NULL && strncmp(s->cb_up, "fb:+:job:", 9) == 0);
    }

    /* a group: only mention, reply to the bot, or command */
    msg(GROUP, "group", 2001, "just chatting", 0, 0);
    msg(GROUP, "group", 2001, "/help@OtherBot", 0, 0);
    {
        struct telegram_fake_msg b = {
            GROUP, "group", 3001, "Bot", 1, "@ParleyBot hi from a bot", 0, 0};
        telegram_fake_message(tf, &b, NULL);
    }
    m1 = msg(GROUP, "group", 2001, "@parleybot what is up", 0, 0);
    w = (struct want){GROUP, 1};
    T_OK(run_until(has_sent, &w, 10000));
    /* core names the speaker in groups: "answer to: User2001: ..." */
    T_CONTAINS(sent_last(GROUP)->text, ": what is up");
    T_EQ_INT(sent_last(GROUP)->reply_to, m1);
    m2 = sent_last(GROUP)->message_id;
    m1 = msg(GROUP, "group", 2002, "and why?", m2, 0);
    w.n = 2;
    T_OK(run_until(has_sent, &w, 10000));
    T_CONTAINS(sent_last(GROUP)->text, ": and why?");
    msg(GROUP, "group", 2002, "/help@ParleyBot", 0, 0);
    w.n = 3;
    T_OK(run_until(has_sent, &w, 10000));
    run_for(1500); /* nothing else may come */
    T_EQ_INT(sent_count(GROUP), 3);

    /* a forum topic keeps its thread */
    m1 = msg(FORUM, "supergroup", 2003, "@ParleyBot in a topic", 0, 42);
    w = (struct want){FORUM, 1};
    T_OK(run_until(has_sent, &w, 10000));
    if (sent_count(FORUM) == 1) {
        T_EQ_INT(sent_last(FORUM)->thread, 42);
        T_EQ_INT(sent_last(FORUM)->reply_to, m1);
    }

    /* a vote: stored by core, and the button press always answered */
    {
        char qid[32];
        struct telegram_status st;
        int64_t target = sent_last(1001)->message_id;
        telegram_fake_callback(tf, 1001, target, 1001, sent_last(1001)->cb_up,
                               qid, sizeof(qid));
        int64_t end = fake_now_ms() + 5000;
        while (telegram_fake_answered(tf, qid) == 0 && fake_now_ms() < end)
            run_for(50);
        T_EQ_INT(telegram_fake_answered(tf, qid), 1);
        telegram_status(n.tg, &st);
        T_EQ_INT(st.callbacks, 1);
        T_EQ_INT(st.up, 1);
        T_EQ_STR(st.username, "ParleyBot");
    }
    {
        struct core_stats cs;
        core_stats(n.core, &cs);
        T_EQ_INT(cs.votes, 1);
        T_EQ_INT(n.asker.asks, 4); /* /help is core's, not the model's */
    }
    node_down(&n);
}

static int
count_rows(void *arg, const char *role, const char *text, int64_t tokens)
{
    (void)role;
    (void)text;
    (void)tokens;
    (*(int *)arg)++;
    return 0;
}

/* A group becomes a supergroup: the answer goes to the new id, the history
 * continues there, and a vote on that answer from the new chat counts. */
static void
test_migrate(void)
{
    const int64_t old = -4008, to = -1004008;
    struct node n;
    char db[128], qid[32];
    struct want w;
    struct core_stats cs;
    int64_t conv = 0, end;
    int rows = 0;

    snprintf(db, sizeof(db), "%s/migrate.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN, "",
                 0) == 0);
    msg(old, "group", 2001, "@ParleyBot first", 0, 0);
    w = (struct want){old, 1};
    T_OK(run_until(has_sent, &w, 10000));
    telegram_fake_migrate(tf, old, to);
    msg(old, "group", 2001, "@ParleyBot second", 0, 0);
    w = (struct want){to, 1};
    T_OK(run_until(has_sent, &w, 10000));
    T_EQ_INT(sent_count(old), 1);
    if (sent_count(to) != 1) {
        node_down(&n);
        return;
    }
    T_CONTAINS(sent_last(to)->text, ": second");
    telegram_fake_callback(tf, to, sent_last(to)->message_id, 2002,
                           sent_last(to)->cb_up, qid, sizeof(qid));
    end = fake_now_ms() + 5000;
    while (telegram_fake_answered(tf, qid) == 0 && fake_now_ms() < end)
        run_for(50);
    T_EQ_INT(telegram_fake_answered(tf, qid), 1);
    core_stats(n.core, &cs);
    T_EQ_INT(cs.votes, 1);
    /* both questions and answers are the new id's history */
    T_EQ_INT(store_conversation_id(n.st, "telegram", "-1004008", "", 1, &conv),
             0);
    T_EQ_INT(store_history_load(n.st, conv, 10, count_rows, &rows), 4);
    node_down(&n);
}

/*
 * The upgrade told by a service message (migrate_from_chat_id in the
 * supergroup), no send refused first: the group's history moves once and
 * the new id's first question continues it.
 */
static void
test_migrate_service(void)
{
    const int64_t old = -4009, to = -1004009;
    struct node n;
    char db[128], raw[256];
    struct want w;
    struct telegram_status ts;
    int64_t conv = 0;
    int rows = 0;

    snprintf(db, sizeof(db), "%s/migrate_service.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN, "",
                 0) == 0);
    msg(old, "group", 2011, "@ParleyBot first", 0, 0);
    w = (struct want){old, 1};
    T_OK(run_until(has_sent, &w, 10000));
    snprintf(raw, sizeof(raw),
             "{\"message\":{\"message_id\":1,\"from\":{\"id\":2011,"
             "\"is_bot\":false,\"first_name\":\"U\"},\"chat\":{\"id\":%lld,"
             "\"type\":\"supergroup\",\"title\":\"G\"},\"date\":1,"
             "\"migrate_from_chat_id\":%lld}}",
             (long long)to, (long long)old);
    telegram_fake_raw(tf, raw);
    msg(to, "supergroup", 2011, "@ParleyBot second", 0, 0);
    w = (struct want){to, 1};
    T_OK(run_until(has_sent, &w, 10000));
    T_EQ_INT(sent_count(old), 1);
    telegram_status(n.tg, &ts);
    T_EQ_INT(ts.migrations, 1);
    /* the old group's question and answer, then the new id's */
    T_EQ_INT(store_conversation_id(n.st, "telegram", "-1004009", "", 1, &conv),
             0);
    T_EQ_INT(store_history_load(n.st, conv, 10, count_rows, &rows), 4);
    node_down(&n);
}

static void
test_429(void)
{
    struct node n;
    char db[128];
    struct want wa = {7001, 1}, wb = {7002, 1};
    int64_t t0, t429 = 0;

    snprintf(db, sizeof(db), "%s/flood.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN, "",
                 0) == 0);
    telegram_fake_script(tf, "sendMessage", 7001, 429, 3, 0, NULL, 1);
    t0 = fake_now_ms();
    msg(7001, "private", 7001, "first chat", 0, 0);
    msg(7002, "private", 7002, "second chat", 0, 0);
    T_OK(run_until(has_sent, &wb, 10000));
    T_OK(run_until(has_sent, &wa, 10000));
    /* the 429 came on the first try: the request log has its time */
    for (size_t i = 0; i < fake_log_size(telegram_fake_server(tf)); i++) {
        const struct fake_request *r =
            fake_log_get(telegram_fake_server(tf), i);
        if (r->t_ms >= t0 && strstr(r->path, "sendMessage") && r->body &&
            strstr(r->body, "\"chat_id\":7001")) {
            t429 = r->t_ms;
            break;
        }
    }
    if (sent_count(7001) && sent_count(7002)) {
        int64_t da = sent_last(7001)->t_ms - t429;
        int64_t db_ = sent_last(7002)->t_ms - t0;
        fprintf(stderr,
                "429 chat answered %" PRId64 " ms after its 429; "
                "other chat %" PRId64 " ms after injection\n",
                da, db_);
        T_OKF(da >= 3000, "%" PRId64, da);
        T_OKF(da < 4500, "%" PRId64, da);
        T_OKF(db_ < 2500, "%" PRId64, db_);
    }
    /* honoured exactly: no early retry that would earn a second 429 */
    T_EQ_INT(telegram_fake_429s(tf, 7001), 1);
    node_down(&n);
}

static void
test_long(void)
{
    struct node n;
    char db[128], *expect, *joined;
    struct want w = {8001, 3};
    const struct telegram_fake_sent *s;
    size_t cnt, len = 0, o = 0;

    /* ~9,000 characters: prose, a code block across a split, prose */
    long_answer = calloc(1, 12000);
    expect = calloc(1, 12000);
    for (int i = 0; i < 40; i++)
        o += (size_t)sprintf(long_answer + o,
                             "Paragraph line %02d: lorem ipsum dolor sit amet, "
                             "consectetur adipiscing elit.\n",
                             i);
    o += (size_t)sprintf(long_answer + o, "```c\n");
    for (int i = 0; i < 60; i++)
        o += (size_t)sprintf(long_answer + o,
                             "int value_%02d = compute(%02d) < limit;\n", i, i);
    o += (size_t)sprintf(long_answer + o, "```\n");
    while (o < 9000)
        o += (size_t)sprintf(long_answer + o,
                             "Closing words, and some more of them here. ");
    long_answer[o] = '\0';
    /* what the user sees: the answer without its fence lines */
    {
        const char *a = strstr(long_answer, "```c\n");
        const char *b = strstr(a + 5, "```\n");
        o = 0;
        memcpy(expect, long_answer, (size_t)(a - long_answer));
        o = (size_t)(a - long_answer);
        memcpy(expect + o, a + 5, (size_t)(b - a - 5));
        o += (size_t)(b - a - 5);
        strcpy(expect + o, b + 4);
    }
    snprintf(db, sizeof(db), "%s/long.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN,
                 "chat_send_rate = 10/1s\n", 0) == 0);
    msg(8001, "private", 8001, "LONG please", 0, 0);
    T_OK(run_until(has_sent, &w, 15000));
    run_for(500);
    cnt = telegram_fake_sent(tf, 8001, &s);
    T_EQ_INT(cnt, 3);
    joined = calloc(1, 24000);
    for (size_t i = 0; i < cnt; i++) {
        size_t u = telegram_format_visible_len(s[i].text, 0);
        T_OKF(u <= 4096, "part %zu: %zu units", i, u);
        /* each part renders its share of the code as code */
        if (strstr(s[i].text, "int value_"))
            T_OK(s[i].html != NULL &&
                 strstr(s[i].html, "<pre><code "
                                   "class=\"language-c\">"));
        T_EQ_INT(s[i].keyboard, i == cnt - 1);
        strcat(joined, s[i].text);
        len += strlen(s[i].text);
    }
    T_OKF(strcmp(joined, expect) == 0, "joined %zu bytes, want %zu", len,
          strlen(expect));
    T_OK(strlen(long_answer) >= 9000);
    free(joined);
    free(expect);
    node_down(&n);
    free(long_answer);
    long_answer = NULL;
}

static void
test_group_pacing(void)
{
    struct node n;
    char db[128], text[64];
    struct want w = {-5005, 100};
    const struct telegram_fake_sent *s;
    size_t cnt;
    int bad = 0;
    int64_t t0;

    /* 20/min shortened to 20/2 s, on both sides; per chat 20/s so the
     * group window is what paces */
    telegram_fake_set_limits(tf, 20, 50, 20, 2000, 0, 0);
    snprintf(db, sizeof(db), "%s/pace.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN,
                 "chat_send_rate = 20/1s\ngroup_send_rate = 20/2s\n", 0) == 0);
    t0 = fake_now_ms();
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "@ParleyBot question %d", i);
        msg(-5005, "group", 9000 + i, text, 0, 0);
    }
    T_OK(run_until(has_sent, &w, 25000));
    cnt = telegram_fake_sent(tf, -5005, &s);
    T_EQ_INT(cnt, 100);
    for (size_t i = 20; i < cnt; i++)
        if (s[i].t_ms - s[i - 20].t_ms < 2000 - TELEGRAM_FAKE_SLACK_MS)
            bad++;
    T_EQ_INT(bad, 0);
    T_EQ_INT(telegram_fake_429s(tf, -5005), 0);
    if (cnt == 100)
        fprintf(stderr,
                "100 group answers in %" PRId64 " ms (4 full windows "
                "of 2 s at least), 0 x 429\n",
                s[99].t_ms - t0);
    T_OK(cnt < 100 || s[99].t_ms - s[0].t_ms >= 4 * 2000);
    telegram_fake_set_limits(tf, 3, 1000, 20, 60000, 0, 0);
    node_down(&n);
}

/* ---- the cap on sends in flight ---- */

#define CAP_CHATS 600
#define CAP_CHAT0 7000000LL
#define CAP_LATENCY_MS 300
#define CAP_ASK_MS 3000

struct cap {
    struct node *n;
    size_t fake_max; /* requests in flight at the fake, the poll included */
};

static int
cap_all_sent(void *arg)
{
    struct cap *c = arg;
    size_t in = fake_inflight(telegram_fake_server(tf));
    int all = 1;

    if (in > c->fake_max)
        c->fake_max = in;
    for (int64_t i = 0; i < CAP_CHATS && all; i++)
        all = sent_count(CAP_CHAT0 + i) >= 1;
    return all;
}

/* The chat of a logged sendMessage, or 0. */
static int64_t
cap_chat_of(const struct fake_request *r)
{
    const char *p;
    size_t n = strlen(r->path), m = strlen("/sendMessage");

    if (n < m || strcmp(r->path + n - m, "/sendMessage") != 0 ||
        r->body == NULL || (p = strstr(r->body, "\"chat_id\":")) == NULL)
        return 0;
    return strtoll(p + strlen("\"chat_id\":"), NULL, 10);
}

static int
cap_all_asked(void *arg)
{
    struct node *n = arg;

    return n->asker.asks >= CAP_CHATS;
}

/*
 * 600 private chats asking at once; the model answers them all 3 s later,
 * when every Bot API reply comes 300 ms late; send pacing off: at most
 * TELEGRAM_SENDS_INFLIGHT_MAX sendMessage and TELEGRAM_MISC_INFLIGHT_MAX
 * other calls on the wire, every answer delivered once, started in the
 * order core handed them over.
 */
static void
test_send_cap(void)
{
    struct node n;
    struct cap c;
    struct telegram_status st;
    char db[128], text[48];
    size_t nlog, k = 0, displaced = 0, dup = 0, max_disp = 0;
    int64_t t0;

    snprintf(db, sizeof(db), "%s/cap.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN,
                 "chat_send_rate = off\ngroup_send_rate = off\n"
                 "global_send_rate = off\n",
                 CAP_ASK_MS) == 0);
    /* the fake's overall 30/s out of the way: its 429s are not the point */
    telegram_fake_set_limits(tf, 0, 0, 0, 0, 1000000, 1000);
    /* registered (getMe answered) before the latency starts */
    run_for(500);
    fake_log_clear(telegram_fake_server(tf));
    t0 = fake_now_ms();
    for (int64_t i = 0; i < CAP_CHATS; i++) {
        snprintf(text, sizeof(text), "q%" PRId64, i);
        msg(CAP_CHAT0 + i, "private", CAP_CHAT0 + i, text, 0, 0);
    }
    /* all taken in at full speed, then the Bot API slows down before the
     * answers come: they all queue at once */
    T_OK(run_until(cap_all_asked, &n, CAP_ASK_MS - 500));
    fake_set_latency(telegram_fake_server(tf), CAP_LATENCY_MS);
    memset(&c, 0, sizeof(c));
    c.n = &n;
    T_OK(run_until(cap_all_sent, &c, 30000));
    fake_set_latency(telegram_fake_server(tf), 0);
    /* the last replies (300 ms late) come back; a duplicate would show */
    run_for(CAP_LATENCY_MS + 1000);
    telegram_status(n.tg, &st);
    fprintf(stderr,
            "cap: %d answers in %" PRId64 " ms; on the wire at most %zu "
            "sends, %zu other calls, %zu at the fake; typing skipped %llu\n",
            CAP_CHATS, fake_now_ms() - t0, st.sends_inflight_max,
            st.misc_inflight_max, c.fake_max,
            (unsigned long long)st.typing_skipped);
    T_OK(st.sends_inflight_max <= TELEGRAM_SENDS_INFLIGHT_MAX);
    /* the cap is what bounded them: 600 answers at once, 300 ms each */
    T_EQ_INT(st.sends_inflight_max, TELEGRAM_SENDS_INFLIGHT_MAX);
    T_OK(st.misc_inflight_max <= TELEGRAM_MISC_INFLIGHT_MAX);
    /* + the poll, + 1 of slack: the fake may not have retired a reply
     * it has written when the next request arrives */
    T_OKF(c.fake_max <=
              TELEGRAM_SENDS_INFLIGHT_MAX + TELEGRAM_MISC_INFLIGHT_MAX + 2,
          "%zu in flight at the fake", c.fake_max);
    T_EQ_INT(st.sends_inflight, 0);
    T_EQ_INT(st.queued, 0);
    T_EQ_INT(st.misc_dropped, 0);
    for (int64_t i = 0; i < CAP_CHATS; i++) {
        snprintf(text, sizeof(text), "answer to: q%" PRId64, i);
        if (sent_count(CAP_CHAT0 + i) != 1)
            dup++;
        else if (strcmp(sent_last(CAP_CHAT0 + i)->text, text) != 0)
            dup++;
    }
    T_EQ_INT(dup, 0);
    /*
     * FIFO: the k-th sendMessage to arrive is chat k's, give or take the
     * requests on the wire together (their connections race).
     */
    nlog = fake_log_size(telegram_fake_server(tf));
    for (size_t i = 0; i < nlog; i++) {
        int64_t chat = cap_chat_of(fake_log_get(telegram_fake_server(tf), i));
        size_t d;
        if (chat < CAP_CHAT0 || chat >= CAP_CHAT0 + CAP_CHATS)
            continue;
        d = (size_t)(chat - CAP_CHAT0) > k ? (size_t)(chat - CAP_CHAT0) - k
                                           : k - (size_t)(chat - CAP_CHAT0);
        if (d > max_disp)
            max_disp = d;
        displaced += d > TELEGRAM_SENDS_INFLIGHT_MAX;
        k++;
    }
    fprintf(stderr, "cap: %zu sendMessage logged, most displaced by %zu\n", k,
            max_disp);
    T_EQ_INT(k, CAP_CHATS);
    T_EQ_INT(displaced, 0);
    telegram_fake_set_limits(tf, 0, 0, 0, 0, 30, 1000);
    node_down(&n);
}

static void
test_fatal(void)
{
    struct node n;
    char db[128];
    int64_t end;

    snprintf(db, sizeof(db), "%s/fatal.db", tmpdir);
    T_OK(node_up(&n, &loop, db, telegram_fake_base(tf), "123456:bad-token", "",
                 0) == 0);
    end = fake_now_ms() + 5000;
    while (n.fatal == 0 && fake_now_ms() < end)
        run_for(20);
    T_EQ_INT(n.fatal, 1);
    T_CONTAINS(n.fatal_why, "401");
    node_down(&n);
}

/* ---- kill -9: a child process runs the node; the parent keeps the fake */

static int
child_main(const char *db, const char *base, int delay_ms)
{
    struct node n;
    uv_loop_t l;

    uv_loop_init(&l);
    log_init("tg-child");
    if (node_up(&n, &l, db, base, TELEGRAM_FAKE_TOKEN,
                "chat_send_rate = 20/1s\n", delay_ms) < 0)
        return 1;
    uv_run(&l, UV_RUN_DEFAULT);
    return 0;
}

static uv_process_t child;
static int child_exited;
static int64_t child_signal;

static void
child_exit(uv_process_t *p, int64_t status, int sig)
{
    (void)status;
    child_exited = 1;
    child_signal = sig;
    uv_close((uv_handle_t *)p, NULL);
}

static int
spawn_child(const char *self, const char *db, int delay_ms)
{
    static char a0[256], a2[256], a3[64], delay[16];
    char a1[] = "--child";
    char *args[] = {a0, a1, a2, a3, delay, NULL};
    uv_process_options_t o;
    uv_stdio_container_t io[3];

    snprintf(a0, sizeof(a0), "%s", self);
    snprintf(a2, sizeof(a2), "%s", db);
    snprintf(a3, sizeof(a3), "%s", telegram_fake_base(tf));
    snprintf(delay, sizeof(delay), "%d", delay_ms);
    memset(&o, 0, sizeof(o));
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_INHERIT_FD;
    io[1].data.fd = 2;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = 2;
    o.file = a0;
    o.args = args;
    o.exit_cb = child_exit;
    o.stdio = io;
    o.stdio_count = 3;
    child_exited = 0;
    return uv_spawn(&loop, &child, &o);
}

static int
child_gone(void *arg)
{
    (void)arg;
    return child_exited;
}

static int64_t want_offset;

static int
confirmed(void *arg)
{
    struct telegram_fake_stats st;

    (void)arg;
    telegram_fake_stats(tf, &st);
    return st.offset >= want_offset;
}

static void
test_kill9(const char *self)
{
    char db[128];
    int64_t mids[20];
    struct telegram_fake_stats st;
    struct want w = {0, 0};
    int ok = 1;

    snprintf(db, sizeof(db), "%s/kill.db", tmpdir);
    for (int i = 0; i < 10; i++) {
        char text[32];
        snprintf(text, sizeof(text), "crash question %d", i);
        mids[i] = msg(11001, "private", 11001, text, 0, 0);
        mids[10 + i] = msg(11002, "private", 11002, text, 0, 0);
    }
    telegram_fake_stats(tf, &st);
    want_offset = st.last_update_id + 1;
    /* the model takes 3 s: the kill lands after getUpdates (offset
     * confirmed, jobs durable) and before any answer */
    telegram_fake_set_limits(tf, 20, 50, 0, 0, 0, 0);
    /* the global window still holds the last group burst: let it pass */
    run_for(1000);
    T_EQ_INT(spawn_child(self, db, 3000), 0);
    T_OK(run_until(confirmed, NULL, 10000));
    T_EQ_INT(sent_count(11001) + sent_count(11002), 0);
    uv_process_kill(&child, SIGKILL);
    T_OK(run_until(child_gone, NULL, 5000));
    T_EQ_INT(child_signal, SIGKILL);
    /* the fake forgot them: nothing is redelivered */
    telegram_fake_stats(tf, &st);
    T_EQ_INT(st.pending, 0);

    T_EQ_INT(spawn_child(self, db, 0), 0);
    w.chat = 11001;
    w.n = 10;
    T_OK(run_until(has_sent, &w, 15000));
    w.chat = 11002;
    T_OK(run_until(has_sent, &w, 15000));
    run_for(1500); /* no duplicates trickling in */
    for (int c = 0; c < 2; c++) {
        const struct telegram_fake_sent *s;
        size_t n = telegram_fake_sent(tf, 11001 + c, &s);
        T_EQ_INT(n, 10);
        for (int i = 0; i < 10; i++) {
            int seen = 0;
            for (size_t k = 0; k < n; k++)
                seen += s[k].reply_to == mids[c * 10 + i];
            if (seen != 1)
                ok = 0;
        }
    }
    T_OKF(ok, "%s", "every message answered exactly once");
    uv_process_kill(&child, SIGKILL);
    run_until(child_gone, NULL, 5000);
    telegram_fake_set_limits(tf, 3, 1000, 0, 0, 0, 0);
}

int
main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return child_main(argv[2], argv[3], atoi(argv[4]));
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init("test_telegram");
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_telegram.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    uv_loop_init(&loop);
    tf = telegram_fake_new(&loop, 0, NULL);
    if (tf == NULL)
        return 1;
    /* an empty long poll returns within 300 ms (see telegram_fake.h) */
    telegram_fake_set_hold_max(tf, 300);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 20, 20);
    test_addressing();
    test_migrate();
    test_migrate_service();
    test_429();
    test_long();
    test_group_pacing();
    test_send_cap();
    test_fatal();
    test_kill9(argv[0]);
    telegram_fake_free(tf);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    curl_global_cleanup();
    return t_done();
}
