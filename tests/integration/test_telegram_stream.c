/* test_telegram_stream: streaming answers by paced edits through the
 * Telegram connector against the Bot API fake (flood limits enforced). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "connectors/telegram.h"
#include "core/commands.h"
#include "core/core.h"
#include "core/event.h"
#include "core/http.h"
#include "core/log.h"
#include "tests/fakes/telegram_fake.h"
#include "tests/t.h"

/*
 * core is played by this file: it defines the five core functions the
 * connector calls, and the command table the codec reads for the "/"
 * menu (so core.o is not linked in), answers every message
 * addressed to the bot at once, and drives one stream the way core does
 * (docs/core.md): at most one action in flight per stream, the next one
 * only after core_send_done, always the newest text; a new message for
 * each part, edits while it grows, the 👍/👎 on the final edit.  That is
 * the connector's side of the contract, tested without waiting for the
 * model, the store of jobs or core's own timers.
 */

#define GROUP -4242LL
#define PRIV 5151LL
#define RESULTS_MAX 4096
#define PARTS_MAX 8

struct result {
    uint64_t send_id;
    int done;
    enum send_status status;
    char message_id[32];
    char error_class[32];
    int64_t t_ms; /* fake_now_ms() at core_send_done */
};

struct stream;

struct core {
    struct connector_ops ops;
    int registered;
    uint64_t next_job;
    struct result results[RESULTS_MAX];
    size_t nresults;
    int answers, answered, answer_failed;
    struct stream *stream; /* told of its own outcomes */
};

static struct result *
result_of(struct core *c, uint64_t send_id)
{
    for (size_t i = 0; i < c->nresults; i++)
        if (c->results[i].send_id == send_id)
            return &c->results[i];
    return NULL;
}

static struct result *
result_new(struct core *c, uint64_t send_id)
{
    struct result *r;

    if (c->nresults >= RESULTS_MAX)
        return NULL;
    r = &c->results[c->nresults++];
    memset(r, 0, sizeof(*r));
    r->send_id = send_id;
    return r;
}

/* core/commands' table, for setMyCommands: none here */
const struct commands_entry *
commands_table(size_t *n)
{
    *n = 0;
    return NULL;
}

int
commands_allowed(const struct commands_entry *e, enum commands_role role)
{
    (void)e;
    (void)role;
    return 0;
}

/* ops->send, remembered; -1 when the connector refused it */
static int
core_send(struct core *c, const struct action *a)
{
    struct result *r = result_new(c, a->send_id);

    if (r == NULL || !c->registered || c->ops.send(c->ops.ctx, a) != 0) {
        if (r != NULL)
            c->nresults--;
        return -1;
    }
    return 0;
}

int
core_register_connector(struct core *c, const struct connector_ops *ops)
{
    c->ops = *ops;
    c->registered = 1;
    return 0;
}

void
core_unregister_connector(struct core *c, const char *platform)
{
    (void)platform;
    c->registered = 0;
}

int
core_chat_migrate(struct core *c, const char *platform, const char *old_chat,
                  const char *new_chat)
{
    (void)c;
    (void)platform;
    (void)old_chat;
    (void)new_chat;
    return 0;
}

int
core_accept_batch(struct core *c, const struct event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct event *ev = &evs[i];
        struct action a;
        char text[256], key[64];

        if (ev->kind != EVENT_MESSAGE ||
            (ev->flags & (EVENT_FROM_BOT | EVENT_FROM_SELF)) ||
            !(ev->flags & (EVENT_MENTIONED | EVENT_PRIVATE)))
            continue;
        memset(&a, 0, sizeof(a));
        a.kind = ACTION_ANSWER;
        a.send_id = (++c->next_job + 1000) << 16;
        snprintf(text, sizeof(text), "answer to: %s", ev->text);
        snprintf(key, sizeof(key), "job:%" PRIu64 ":0", a.send_id >> 16);
        a.chat = ev->chat;
        a.thread = ev->thread;
        a.reply_to = ev->message_id;
        a.text = text;
        a.idem_key = key;
        a.parts = 1;
        a.feedback = 1;
        a.target_id = "";
        if (core_send(c, &a) == 0)
            c->answers++;
    }
    return 0;
}

int
core_accept(struct core *c, const struct event *ev)
{
    return core_accept_batch(c, ev, 1);
}

/* the offset is not this test's: not written */
int
core_accept_batch_kv(struct core *c, const struct event *evs, size_t n,
                     const char *platform, const char *key, const char *value)
{
    (void)platform;
    (void)key;
    (void)value;
    return core_accept_batch(c, evs, n);
}

static void stream_done(struct stream *s, const struct result *r);

void
core_send_done(struct core *c, uint64_t send_id, const struct send_result *res)
{
    struct result *r = result_of(c, send_id);

    if (r == NULL || r->done)
        return; /* like core: unknown or repeated ids are ignored */
    r->done = 1;
    r->status = res->status;
    snprintf(r->message_id, sizeof(r->message_id), "%s",
             res->message_id ? res->message_id : "");
    snprintf(r->error_class, sizeof(r->error_class), "%s",
             res->error_class ? res->error_class : "");
    r->t_ms = fake_now_ms();
    if ((send_id >> 16) > 1000) {
        if (res->status == SEND_OK)
            c->answered++;
        else
            c->answer_failed++;
        return;
    }
    if (c->stream != NULL)
        stream_done(c->stream, r);
}

/* ---- the loop, the fake, the connector ---- */

static uv_loop_t loop;
static struct telegram_fake *tf;
static char tmpdir[64];
static uv_timer_t tick;

static void
tick_cb(uv_timer_t *t)
{
    (void)t;
}

static int
run_until(int (*cond)(void *), void *arg, int64_t ms)
{
    int64_t end = fake_now_ms() + ms;

    while (!cond(arg) && fake_now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return cond(arg);
}

struct node {
    struct core core;
    struct store *st;
    struct config *cfg;
    struct http *http;
    struct telegram *tg;
};

static void
on_fatal(void *arg, const char *why)
{
    (void)arg;
    fprintf(stderr, "fatal: %s\n", why);
}

static int
registered(void *arg)
{
    return ((struct node *)arg)->core.registered;
}

static int
node_up(struct node *n, const char *name, const char *rates)
{
    char text[2048], err[256], db[128];
    struct config_diag d;

    memset(n, 0, sizeof(*n));
    snprintf(text, sizeof(text),
             "[bot]\nstate_dir = /tmp\n"
             "[telegram]\nenabled = true\ntoken = %s\napi_base = %s\n"
             "poll_timeout = 1s\n%s\n"
             "[llm]\nmodels = main\nmax_output_tokens = 100\n"
             "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"
             "api_key = sk-test\nname = m\n",
             TELEGRAM_FAKE_TOKEN, telegram_fake_base(tf), rates);
    memset(&d, 0, sizeof(d));
    if (config_parse(text, strlen(text), "test.conf", &n->cfg, &d) < 0 ||
        config_resolve_secrets(n->cfg, &d) < 0) {
        for (size_t i = 0; i < d.nerrors; i++)
            fprintf(stderr, "config: %s\n", d.errors[i]);
        config_diag_release(&d);
        return -1;
    }
    config_diag_release(&d);
    snprintf(db, sizeof(db), "%s/%s.db", tmpdir, name);
    if ((n->st = store_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }
    store_attach_loop(n->st, &loop);
    if ((n->http = http_new(&loop)) == NULL)
        return -1;
    n->tg = telegram_new(&loop, n->http, &n->core, n->st, n->cfg, on_fatal, n);
    if (n->tg == NULL || telegram_start(n->tg) < 0)
        return -1;
    return run_until(registered, n, 10000) ? 0 : -1;
}

static void
node_down(struct node *n)
{
    telegram_free(n->tg);
    http_free(n->http);
    store_close(n->st);
    uv_run(&loop, UV_RUN_NOWAIT);
    config_free(n->cfg);
}

/* One action from the test, as core would ask it; its result slot. */
static struct result *
act(struct node *n, enum action_kind kind, uint64_t send_id, int64_t chat,
    const char *target, const char *text, int part, int parts, int feedback)
{
    struct action a;
    char cs[24];

    snprintf(cs, sizeof(cs), "%" PRId64, chat);
    memset(&a, 0, sizeof(a));
    a.kind = kind;
    a.send_id = send_id;
    a.chat = cs;
    a.thread = "";
    a.reply_to = "";
    a.text = text;
    a.idem_key = kind == ACTION_ANSWER ? "job:7:0" : "";
    a.part = part;
    a.parts = parts;
    a.feedback = feedback;
    a.target_id = target;
    if (core_send(&n->core, &a) != 0)
        return NULL;
    return result_of(&n->core, send_id);
}

static int
is_done(void *arg)
{
    return ((struct result *)arg)->done;
}

/* Sends one action and waits for its outcome; NULL if refused or none. */
static struct result *
act_wait(struct node *n, enum action_kind kind, uint64_t send_id, int64_t chat,
         const char *target, const char *text, int part, int parts,
         int feedback)
{
    struct result *r =
        act(n, kind, send_id, chat, target, text, part, parts, feedback);

    if (r == NULL || !run_until(is_done, r, 15000))
        return NULL;
    return r;
}

/* ---- a streamed answer: text grows on a timer, core-style actions ---- */

struct stream {
    struct node *n;
    int64_t chat;
    const char *full; /* the whole answer */
    size_t total, produced, step, part_max;
    uv_timer_t grow;
    int growing;
    uint64_t seq;
    struct result *inflight;
    int inflight_part;
    size_t inflight_len; /* bytes of that part's text it carries */
    int inflight_fb;
    char ids[PARTS_MAX][32]; /* our message of each part, "" = none yet */
    size_t sent[PARTS_MAX];  /* bytes of each part confirmed */
    int fb_done, finished, failed;
    int updates, actions, edits, news;
    char fail_why[128];
};

static size_t
part_start(const struct stream *s, int k)
{
    return (size_t)k * s->part_max;
}

/* The bytes of part k in what has been produced so far. */
static size_t
part_len(const struct stream *s, int k)
{
    size_t a = part_start(s, k);

    if (s->produced <= a)
        return 0;
    return s->produced - a < s->part_max ? s->produced - a : s->part_max;
}

static int
parts_of(const struct stream *s, size_t len)
{
    return len == 0 ? 0 : (int)((len + s->part_max - 1) / s->part_max);
}

/* The next action, if none is in flight: the first part whose text the
 * platform does not have yet; at the end, the final edit with buttons. */
static void
stream_step(struct stream *s)
{
    int nparts = parts_of(s, s->produced), last = parts_of(s, s->total) - 1;
    char *text;
    size_t len;
    int k, fb;

    if (s->inflight != NULL || s->finished || s->failed)
        return;
    for (k = 0; k < nparts; k++)
        if (s->sent[k] < part_len(s, k))
            break;
    fb = 0;
    if (k == nparts) {
        if (s->produced < s->total)
            return; /* wait for more text */
        if (s->fb_done) {
            s->finished = 1;
            return;
        }
        k = last;
        fb = 1; /* everything is there: attach the buttons */
    }
    len = part_len(s, k);
    if ((text = strndup(s->full + part_start(s, k), len)) == NULL)
        return;
    s->seq++;
    s->actions++;
    if (s->ids[k][0] == '\0') {
        s->news++;
        s->inflight = act(s->n, ACTION_ANSWER, (1ULL << 16) | s->seq, s->chat,
                          "", text, k, k + 1, 0);
    } else {
        s->edits++;
        s->inflight = act(s->n, ACTION_EDIT, (1ULL << 16) | s->seq, s->chat,
                          s->ids[k], text, k, k + 1, fb);
    }
    free(text);
    if (s->inflight == NULL) {
        s->failed = 1;
        snprintf(s->fail_why, sizeof(s->fail_why), "send refused");
        return;
    }
    s->inflight_part = k;
    s->inflight_len = len;
    s->inflight_fb = fb;
}

static void
stream_done(struct stream *s, const struct result *r)
{
    if (s->inflight == NULL || r != s->inflight)
        return;
    s->inflight = NULL;
    if (r->status != SEND_OK) {
        s->failed = 1;
        snprintf(s->fail_why, sizeof(s->fail_why), "status %d class %s",
                 (int)r->status, r->error_class);
        return;
    }
    if (s->ids[s->inflight_part][0] == '\0')
        snprintf(s->ids[s->inflight_part], sizeof(s->ids[0]), "%s",
                 r->message_id);
    else if (strcmp(s->ids[s->inflight_part], r->message_id) != 0) {
        s->failed = 1;
        snprintf(s->fail_why, sizeof(s->fail_why),
                 "edit reported message %s, want %s", r->message_id,
                 s->ids[s->inflight_part]);
        return;
    }
    s->sent[s->inflight_part] = s->inflight_len;
    if (s->inflight_fb)
        s->fb_done = 1;
    stream_step(s); /* core sends the next one at once: the pacer waits */
}

static void
grow_cb(uv_timer_t *h)
{
    struct stream *s = h->data;

    if (s->produced < s->total) {
        s->produced += s->step;
        if (s->produced > s->total)
            s->produced = s->total;
        s->updates++;
    }
    stream_step(s);
}

static int
stream_over(void *arg)
{
    struct stream *s = arg;

    return s->finished || s->failed;
}

/* ---- scenarios ---- */

static int
answers_in(void *arg)
{
    struct core *c = arg;

    return c->answers >= 10 && c->answered + c->answer_failed >= c->answers;
}

/*
 * A long answer streamed into a group while ten other users chat there:
 * zero 429s, the final text identical, edits per message within the
 * limits.  The limits are Telegram's, shortened ×6 on both sides (group
 * 20 per 10 s instead of 60 s, per chat one per 250 ms) so it runs in
 * seconds; the stream's text grows every 100 ms, far faster than the
 * budget, so most versions must be coalesced away.
 */
static void
test_stream_group(void)
{
    struct node n;
    struct stream s;
    char *full;
    size_t o = 0, total = 7000, bad = 0;
    const struct telegram_fake_sent *m;
    struct telegram_fake_stats st0, st;
    struct telegram_status ts;
    int users = 0, nparts;
    int64_t t0, next_user;

    telegram_fake_set_limits(tf, 3, 250, 20, 10000, 30, 1000);
    T_OK(node_up(&n, "group",
                 "chat_send_rate = 1/250ms\n"
                 "group_send_rate = 20/10s\n") == 0);
    telegram_fake_stats(tf, &st0);
    full = malloc(total + 64);
    while (o < total)
        o += (size_t)sprintf(full + o, "word%zu a<b & c>d, ", o);
    full[total] = '\0';

    memset(&s, 0, sizeof(s));
    s.n = &n;
    s.chat = GROUP;
    s.full = full;
    s.total = total;
    s.step = 120;
    s.part_max = 3000; /* three parts: two rollovers */
    n.core.stream = &s;
    uv_timer_init(&loop, &s.grow);
    s.grow.data = &s;
    uv_timer_start(&s.grow, grow_cb, 100, 100);
    t0 = next_user = fake_now_ms();
    /* ten other users, one question each, every 500 ms while it streams */
    while (!stream_over(&s) && fake_now_ms() - t0 < 60000) {
        if (users < 10 && fake_now_ms() >= next_user) {
            struct telegram_fake_msg um = {
                GROUP, "group", 6000 + users, NULL, 0, NULL, 0, 0};
            char q[64];
            snprintf(q, sizeof(q), "@ParleyBot question %d", users);
            um.text = q;
            telegram_fake_message(tf, &um, NULL);
            users++;
            next_user += 500;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&s.grow);
    T_OKF(s.finished, "stream: %s", s.failed ? s.fail_why : "timed out");
    T_OK(run_until(answers_in, &n.core, 30000));
    T_EQ_INT(n.core.answers, 10);
    T_EQ_INT(n.core.answered, 10);

    /* zero 429s from the fake */
    telegram_fake_stats(tf, &st);
    T_EQ_INT(telegram_fake_429s(tf, GROUP), 0);
    T_EQ_INT(st.err429 - st0.err429, 0);
    telegram_status(n.tg, &ts);
    T_EQ_INT(ts.retries_429, 0);

    /* the final text identical, part by part, buttons on the last */
    nparts = parts_of(&s, total);
    T_EQ_INT(nparts, 3);
    for (int k = 0; k < nparts; k++) {
        const struct telegram_fake_sent *p =
            telegram_fake_find(tf, GROUP, strtoll(s.ids[k], NULL, 10));
        T_OKF(p != NULL, "part %d: message %s", k, s.ids[k]);
        if (p == NULL)
            continue;
        T_OKF(strlen(p->text) == part_len(&s, k) &&
                  strncmp(p->text, full + part_start(&s, k), part_len(&s, k)) ==
                      0,
              "part %d: final text (%zu bytes, want %zu)", k, strlen(p->text),
              part_len(&s, k));
        T_OK(p->html != NULL && strstr(p->html, "a&lt;b &amp; c&gt;d"));
        T_EQ_INT(p->keyboard, k == nparts - 1);
        if (k == nparts - 1)
            T_OK(p->cb_up != NULL && strncmp(p->cb_up, "fb:+:job:1:", 11) == 0);
        /* edits of one message within the group's 20 per window */
        T_OKF(telegram_fake_edits_max(tf, GROUP, p->message_id, 10000) <= 20,
              "part %d: %zu edits in 10 s", k,
              telegram_fake_edits_max(tf, GROUP, p->message_id, 10000));
        fprintf(stderr,
                "part %d: message %" PRId64 ", %" PRId64 " edits, at most "
                "%zu in any 10 s\n",
                k, p->message_id, p->edits,
                telegram_fake_edits_max(tf, GROUP, p->message_id, 10000));
    }
    /* every answer, every edit of the group within its budget */
    T_OKF(telegram_fake_ops_max(tf, GROUP, 10000 - TELEGRAM_FAKE_SLACK_MS) <=
              20,
          "%zu requests in 10 s",
          telegram_fake_ops_max(tf, GROUP, 10000 - TELEGRAM_FAKE_SLACK_MS));
    /* one per 250 ms per chat (+10 % margin) when sent; 150 ms leaves room
     * for the requests' varying latency on a loaded machine */
    T_OKF(telegram_fake_ops_max(tf, GROUP, 150) <= 1, "%zu requests in 150 ms",
          telegram_fake_ops_max(tf, GROUP, 150));
    /* the ten answers are all there, next to the stream's parts */
    {
        size_t cnt = telegram_fake_sent(tf, GROUP, &m), ans = 0;
        for (size_t i = 0; i < cnt; i++)
            if (strncmp(m[i].text, "answer to: question ", 20) == 0)
                ans++;
            else if (m[i].edits == 0)
                bad++;
        T_EQ_INT(ans, 10);
        T_EQ_INT(cnt, 13);
    }
    T_EQ_INT(bad, 0); /* every streamed part was edited at least once */
    /* the budget was short: most versions were coalesced away */
    T_OKF(s.actions < s.updates, "%d actions for %d versions", s.actions,
          s.updates);
    T_EQ_INT(s.news, 3);
    T_EQ_INT(ts.edits, (uint64_t)s.edits);
    fprintf(stderr,
            "streamed %zu bytes in %" PRId64 " ms: %d versions, %d new "
            "messages + %d edits; 10 answers; 0 x 429\n",
            total, fake_now_ms() - t0, s.updates, s.news, s.edits);
    uv_close((uv_handle_t *)&s.grow, NULL);
    n.core.stream = NULL;
    node_down(&n);
    free(full);
}

/* One message's outcomes: not modified, formatting, gone, 429, plain
 * fallback, delete, the buttons, code fences across streamed parts. */
static void
test_edit_outcomes(void)
{
    struct node n;
    struct result *r;
    const struct telegram_fake_sent *p;
    struct telegram_fake_stats st0, st;
    struct telegram_status ts;
    char mid[32], mid2[32];
    int64_t t0;
    uint64_t id = 7ULL << 16;

    /* one per 250 ms per chat on both sides, so it runs in seconds */
    telegram_fake_set_limits(tf, 3, 250, 20, 60000, 30, 1000);
    T_OK(node_up(&n, "outcomes", "chat_send_rate = 1/250ms\n") == 0);
    telegram_fake_stats(tf, &st0);
    r = act_wait(&n, ACTION_ANSWER, id++, PRIV, "", "hello", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    if (r == NULL)
        goto out;
    snprintf(mid, sizeof(mid), "%s", r->message_id);

    /* identical: "message is not modified" is success, the same id */
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid, "hello", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    T_OK(r != NULL && strcmp(r->message_id, mid) == 0);
    telegram_fake_stats(tf, &st);
    T_EQ_INT(st.not_modified - st0.not_modified, 1);

    /* formatted like sends */
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid, "**bold** <x> & `c`", 0, 1,
                 0);
    T_OK(r != NULL && r->status == SEND_OK && strcmp(r->message_id, mid) == 0);
    p = telegram_fake_find(tf, PRIV, strtoll(mid, NULL, 10));
    T_OK(p != NULL && strcmp(p->text, "bold <x> & c") == 0);
    T_OK(p != NULL && p->html != NULL && strstr(p->html, "<b>bold</b>") &&
         strstr(p->html, "&lt;x&gt; &amp; <code>c</code>"));

    /* a 429 on an edit: delayed by retry_after, then delivered */
    telegram_fake_script(tf, "editMessageText", PRIV, 429, 1, 0, NULL, 1);
    t0 = fake_now_ms();
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid, "after the 429", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    T_OKF(r != NULL && r->t_ms - t0 >= 900, "delivered after %" PRId64 " ms",
          r ? r->t_ms - t0 : -1);
    p = telegram_fake_find(tf, PRIV, strtoll(mid, NULL, 10));
    T_OK(p != NULL && strcmp(p->text, "after the 429") == 0);
    telegram_status(n.tg, &ts);
    T_EQ_INT(ts.retries_429, 1);

    /* "can't parse entities" on an edit: the same edit as plain text */
    telegram_fake_script(tf, "editMessageText", PRIV, 400, 0, 0,
                         "Bad Request: can't parse entities: Unsupported "
                         "start tag \"x\" at byte offset 0",
                         1);
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid, "*it* and `co`", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    p = telegram_fake_find(tf, PRIV, strtoll(mid, NULL, 10));
    T_OK(p != NULL && p->html == NULL && strcmp(p->text, "it and co") == 0);

    /* the final edit carries the buttons */
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid, "it and co", 0, 1, 1);
    T_OK(r != NULL && r->status == SEND_OK);
    p = telegram_fake_find(tf, PRIV, strtoll(mid, NULL, 10));
    T_OK(p != NULL && p->keyboard && p->cb_up != NULL &&
         strcmp(p->cb_up, "fb:+:job:7:0") == 0);

    /* a message that never was: not_found */
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, "987654", "x", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_FAILED &&
         strcmp(r->error_class, "not_found") == 0);

    /* delete; again (already gone: still OK); then an edit is not_found */
    r = act_wait(&n, ACTION_DELETE, id++, PRIV, mid, NULL, 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK && strcmp(r->message_id, mid) == 0);
    p = telegram_fake_find(tf, PRIV, strtoll(mid, NULL, 10));
    T_OK(p != NULL && p->deleted);
    r = act_wait(&n, ACTION_DELETE, id++, PRIV, mid, "", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid, "too late", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_FAILED &&
         strcmp(r->error_class, "not_found") == 0);
    /* a bad target is refused at once (core would retry) */
    T_OK(act(&n, ACTION_EDIT, id++, PRIV, "", "x", 0, 1, 0) == NULL);
    T_OK(act(&n, ACTION_DELETE, id++, PRIV, "abc", NULL, 0, 1, 0) == NULL);

    /*
     * A fence open in an early version of part 0 but closed by its final
     * edit: part 1 must not open with a fence (the newest text wins).
     */
    id = 9ULL << 16;
    r = act_wait(&n, ACTION_ANSWER, id++, PRIV, "", "see:\n```c\nint a;", 0, 1,
                 0);
    T_OK(r != NULL && r->status == SEND_OK);
    if (r == NULL)
        goto out;
    snprintf(mid2, sizeof(mid2), "%s", r->message_id);
    p = telegram_fake_find(tf, PRIV, strtoll(mid2, NULL, 10));
    T_OK(p != NULL && p->html != NULL && strstr(p->html, "<pre>"));
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid2,
                 "see:\n```c\nint a;\n```\ndone.", 0, 2, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    r = act_wait(&n, ACTION_ANSWER, id++, PRIV, "", "After the code.", 1, 2, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    if (r != NULL) {
        p = telegram_fake_find(tf, PRIV, strtoll(r->message_id, NULL, 10));
        T_OK(p != NULL && strcmp(p->text, "After the code.") == 0);
        T_OK(p != NULL && (p->html == NULL || strstr(p->html, "<pre") == NULL));
    }
    /* ...and one left open by the final text of part 0 is carried over */
    id = 10ULL << 16;
    r = act_wait(&n, ACTION_ANSWER, id++, PRIV, "", "x", 0, 1, 0);
    T_OK(r != NULL && r->status == SEND_OK);
    if (r == NULL)
        goto out;
    snprintf(mid2, sizeof(mid2), "%s", r->message_id);
    r = act_wait(&n, ACTION_EDIT, id++, PRIV, mid2, "x\n```py\nprint(1)", 0, 2,
                 0);
    T_OK(r != NULL && r->status == SEND_OK);
    r = act_wait(&n, ACTION_ANSWER, id++, PRIV, "", "print(2)\n```\nok", 1, 2,
                 0);
    T_OK(r != NULL && r->status == SEND_OK);
    if (r != NULL) {
        p = telegram_fake_find(tf, PRIV, strtoll(r->message_id, NULL, 10));
        T_OK(p != NULL && p->html != NULL &&
             strstr(p->html, "<pre><code class=\"language-py\">print(2)"));
    }

    /* the only 429 was the scripted one: edits were paced like sends */
    T_EQ_INT(telegram_fake_429s(tf, PRIV), 1);
out:
    node_down(&n);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init("test_telegram_stream");
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tg_stream.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    uv_loop_init(&loop);
    if ((tf = telegram_fake_new(&loop, 0, NULL)) == NULL)
        return 1;
    telegram_fake_set_hold_max(tf, 300);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 20, 20);
    test_edit_outcomes();
    test_stream_group();
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
