/* test_slack_stream: streaming through the Slack connector — chat.update
 * and chat.delete driven as core drives them (one action in flight per
 * stream, always the newest text), against the fake's enforced limits,
 * while a real core answers ten other users in the same channel. */
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "connectors/slack.h"
#include "connectors/slack_format.h"
#include "core/core.h"
#include "core/event.h"
#include "core/log.h"
#include "core/stream.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/slack_fake.h"
#include "tests/fakes/slack_fixture.h"
#include "tests/t.h"

static char tmpdir[64];

/* Our send ids: far from core's, which core_send_done ignores. */
#define ID_BASE (1ULL << 60)
#define RESULTS_MAX 64

struct result {
    uint64_t id;
    enum send_status status;
    char message_id[EVENT_ID_MAX + 1];
    char error_class[32];
    int64_t at_ms;
};

struct fixture {
    struct slack_fixture x; /* loop, store, core, fake, connector */
    struct connector_ops ops;
    struct core_fixture_asker fa; /* questions naming no tag below */
    struct core_fixture_asker fl; /* "stream": a long streamed answer */
    struct core_fixture_asker fr; /* "retry": the same, restarted midway */
    struct core_fixture_asker fm; /* "brief": a short streamed answer */
    uint64_t next_id;
    struct result results[RESULTS_MAX];
    int nresults;
    void (*on_result)(struct fixture *fx, const struct result *r);
    void *arg;
};

static void
observe(void *arg, uint64_t send_id, const struct send_result *r)
{
    struct fixture *fx = arg;
    struct result *res;

    if (send_id < ID_BASE || fx->nresults == RESULTS_MAX)
        return; /* core's own */
    res = &fx->results[fx->nresults++];
    memset(res, 0, sizeof(*res));
    res->id = send_id;
    res->status = r->status;
    snprintf(res->message_id, sizeof(res->message_id), "%s",
             r->message_id ? r->message_id : "");
    snprintf(res->error_class, sizeof(res->error_class), "%s",
             r->error_class ? r->error_class : "");
    res->at_ms = fake_now_ms();
    if (fx->on_result)
        fx->on_result(fx, res);
}

/* ---- the asker: one fixture asker per kind of question ---- */

/*
 * Core asks through route_ask: a question naming "stream", "retry" or
 * "brief" goes to that asker, any other to fx->fa.  The partial callback
 * is wrapped to timestamp the first partial that reaches core for each
 * watched question (time to first visible text).  Handles: the inner
 * one times 4 plus the asker's index.
 */
#define WATCH_MAX 8

struct watch {
    char question[48];                   /* the text injected */
    char chat[16], ts[EVENT_ID_MAX + 1]; /* its channel and thread */
    void *arg;                           /* core's job, once asked */
    int64_t partial_ms;                  /* the first partial, or 0 */
    int partials;
};

static struct watch watches[WATCH_MAX];
static int nwatches;
static void (*core_partial)(void *arg, const char *text, size_t len);

static struct core_fixture_asker *
route_pick(struct fixture *fx, const char *q, int *which)
{
    struct core_fixture_asker *fas[4] = {&fx->fa, &fx->fl, &fx->fr, &fx->fm};
    const char *tags[4] = {NULL, "stream", "retry", "brief"};

    *which = 0;
    for (int i = 3; i > 0; i--)
        if (q != NULL && strstr(q, tags[i]) != NULL) {
            *which = i;
            break;
        }
    return fas[*which];
}

static void
route_partial(void *arg, const char *text, size_t len)
{
    for (int i = nwatches - 1; i >= 0; i--)
        if (watches[i].arg == arg) {
            if (watches[i].partials++ == 0)
                watches[i].partial_ms = fake_now_ms();
            break;
        }
    core_partial(arg, text, len);
}

static int
route_ask(void *ctx, const struct core_prompt *cp, core_ask_done_fn done,
          void *arg, uint64_t *handle)
{
    struct fixture *fx = ctx;
    const char *q = cp->msgs[cp->n - 1].text;
    struct core_prompt p = *cp;
    struct core_fixture_asker *fa;
    struct core_asker in;
    uint64_t h = 0;
    int which;

    fa = route_pick(fx, q, &which);
    for (int i = 0; i < nwatches; i++)
        if (watches[i].arg == NULL && q != NULL &&
            strstr(q, watches[i].question) != NULL)
            watches[i].arg = arg;
    if (p.partial != NULL) {
        core_partial = p.partial;
        p.partial = route_partial;
    }
    in = core_fixture_asker_ops(fa);
    if (in.ask(in.ctx, &p, done, arg, &h) < 0)
        return -1;
    *handle = h * 4 + (uint64_t)which;
    return 0;
}

static void
route_cancel(void *ctx, uint64_t handle)
{
    struct fixture *fx = ctx;
    struct core_fixture_asker *fas[4] = {&fx->fa, &fx->fl, &fx->fr, &fx->fm};
    struct core_asker in = core_fixture_asker_ops(fas[handle % 4]);

    in.cancel(in.ctx, handle / 4);
}

/* rate: channel_send_rate; tier3_ms: the connector's Tier 3 gap. */
static int
fixture_init(struct fixture *fx, const char *name, const char *rate,
             int64_t tier3_ms)
{
    struct core_asker asker = {fx, route_ask, route_cancel};
    struct slack_timing tm = {100, 1000, 2000, 1000, 1000, 50, tier3_ms, 0, 0};
    struct slack_fixture_opts o = {rate, &asker, &tm, NULL, NULL};

    memset(fx, 0, sizeof(*fx));
    fx->next_id = ID_BASE;
    fx->fa.loop = &fx->x.loop;
    fx->fa.delay_ms = 200;
    fx->fa.prefix = "**answer** to: ";
    fx->fa.tokens_in = 10;
    fx->fl = fx->fr = fx->fm = fx->fa;
    if (slack_fixture_open(&fx->x, tmpdir, name, &o, NULL) < 0)
        return -1;
    slack_set_send_observer(fx->x.sl, observe, fx);
    slack_connector_ops(fx->x.sl, &fx->ops);
    return 0;
}

static void
drop_askers(void *arg)
{
    struct fixture *fx = arg;

    core_fixture_asker_drop(&fx->fa);
    core_fixture_asker_drop(&fx->fl);
    core_fixture_asker_drop(&fx->fr);
    core_fixture_asker_drop(&fx->fm);
}

static void
fixture_release(struct fixture *fx)
{
    T_EQ_INT(slack_fixture_close(&fx->x, drop_askers, fx), 0);
}

struct until {
    int (*pred)(struct fixture *);
    struct fixture *fx;
};

static int
until_holds(void *arg)
{
    struct until *u = arg;

    return u->pred != NULL && u->pred(u->fx);
}

static int
run_until(struct fixture *fx, int (*pred)(struct fixture *), int max_ms)
{
    struct until u = {pred, fx};

    return core_fixture_loop_until(&fx->x.loop, until_holds, &u, 5, max_ms);
}

static int
is_up(struct fixture *fx)
{
    return slack_is_up(fx->x.sl);
}

static int
never(struct fixture *fx)
{
    (void)fx;
    return 0;
}

/* Hands one action to the connector as core would; its send id. */
static uint64_t
act(struct fixture *fx, enum action_kind kind, const char *chat,
    const char *thread, const char *target, const char *text, int feedback)
{
    struct action a;

    memset(&a, 0, sizeof(a));
    a.kind = kind;
    a.send_id = fx->next_id++;
    a.chat = chat;
    a.thread = thread;
    a.reply_to = "";
    a.text = text ? text : "";
    a.idem_key = "";
    a.part = 0;
    a.parts = 1;
    a.feedback = feedback;
    a.target_id = target ? target : "";
    return fx->ops.send(fx->ops.ctx, &a) == 0 ? a.send_id : 0;
}

static uint64_t waiting_for;

static int
result_seen(struct fixture *fx)
{
    for (int i = 0; i < fx->nresults; i++)
        if (fx->results[i].id == waiting_for)
            return 1;
    return 0;
}

/* Runs until the outcome of send id comes (max_ms), then returns it. */
static const struct result *
wait_result(struct fixture *fx, uint64_t id, int max_ms)
{
    waiting_for = id;
    if (id == 0 || !run_until(fx, result_seen, max_ms))
        return NULL;
    for (int i = 0; i < fx->nresults; i++)
        if (fx->results[i].id == id)
            return &fx->results[i];
    return NULL;
}

/* ---- a stream, driven as core drives one ---- */

/*
 * The generator grows the text every GEN_MS (a fast model); the stream
 * keeps one action in flight and, when it completes, sends the newest
 * text at once (no stream_interval here: the connector's pacing alone
 * must keep the fake content).  First a new message, then edits of it,
 * the last one with feedback.
 */
#define GEN_MS 100

struct hand_stream {
    struct fixture *fx;
    const char *chat, *thread;
    const char *full; /* the whole answer */
    size_t len, shown, sent_len;
    size_t step;
    uint64_t inflight;
    char ts[EVENT_ID_MAX + 1];
    int steps, posts, edits, ok, failed, final_ok;
    uv_timer_t gen;
};

static struct hand_stream *the_stream;

static void
stream_pump(struct hand_stream *sm)
{
    char *text;
    int final;

    if (sm->inflight || sm->final_ok || sm->shown == sm->sent_len || sm->failed)
        return;
    final = sm->shown == sm->len;
    if ((text = strndup(sm->full, sm->shown)) == NULL)
        return;
    if (sm->ts[0] == '\0') {
        sm->inflight =
            act(sm->fx, ACTION_ANSWER, sm->chat, sm->thread, NULL, text, 0);
        sm->posts++;
    } else {
        sm->inflight =
            act(sm->fx, ACTION_EDIT, sm->chat, sm->thread, sm->ts, text, final);
        sm->edits++;
    }
    if (sm->inflight)
        sm->sent_len = sm->shown;
    free(text);
}

static void
stream_result(struct fixture *fx, const struct result *r)
{
    struct hand_stream *sm = the_stream;

    (void)fx;
    if (sm == NULL || r->id != sm->inflight)
        return;
    sm->inflight = 0;
    if (r->status != SEND_OK) {
        sm->failed++;
        fprintf(stderr, "stream: action failed: %d %s\n", (int)r->status,
                r->error_class);
        return;
    }
    sm->ok++;
    if (sm->ts[0] == '\0')
        snprintf(sm->ts, sizeof(sm->ts), "%s", r->message_id);
    else if (strcmp(r->message_id, sm->ts) != 0)
        sm->failed++; /* an edit reports its target */
    if (sm->sent_len == sm->len)
        sm->final_ok = 1;
    stream_pump(sm);
}

static void
stream_gen(uv_timer_t *t)
{
    struct hand_stream *sm = t->data;

    sm->shown = sm->shown + sm->step < sm->len ? sm->shown + sm->step : sm->len;
    sm->steps++;
    if (sm->shown == sm->len)
        uv_timer_stop(t);
    stream_pump(sm);
}

/* A long answer: Markdown to convert, characters to escape. */
static char *
long_answer(size_t want)
{
    static const char *const words[] = {
        "**streamed**", "answer", "with",   "a",  "&", "few",
        "<tags>",       "and",    "`code`", "in", "it"};
    char *s = malloc(want + 64);
    size_t n = 0;

    if (s == NULL)
        return NULL;
    for (size_t i = 0; n < want; i++) {
        const char *w = words[i % (sizeof(words) / sizeof(words[0]))];

        n += (size_t)sprintf(s + n, "%s%s", w, i % 12 == 11 ? "\n" : " ");
    }
    s[n] = '\0';
    return s;
}

/* ---- the must-show, through the real core ---- */

/* A realistic answer of at least want bytes: headings, paragraphs, bullet
 * and numbered lists, inline code, links, a C code block per section, and
 * the characters mrkdwn escapes (&, <, >). */
static char *
md_answer(size_t want)
{
    char *s = malloc(want + 2048);
    size_t n = 0;

    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (int i = 1; n < want; i++)
        n += (size_t)snprintf(
            s + n, want + 2048 - n,
            "## %d. Keeping the event loop responsive\n\n"
            "The **loop** runs every callback on one thread, so a slow "
            "handler delays *all* the others: keep each one short & hand "
            "blocking work to a pool (see [the guide]"
            "(https://docs.example.org/loop/%d)). A timer of `0 ms` runs on "
            "the next turn, not now.\n\n"
            "- measure with `uv_now()` & `uv_hrtime()`\n"
            "- never sleep in a callback\n"
            "- close every handle before `uv_loop_close()`\n\n"
            "1. init the handle\n2. start it\n3. stop & close it\n\n"
            "```c\nstatic void\non_tick_%d(uv_timer_t *t)\n{\n"
            "    struct job *j = t->data;\n\n"
            "    if (j->left > 0 && j->left < LIMIT)\n"
            "        j->left--;\n"
            "    else if (j->flags & JOB_DONE)\n"
            "        uv_timer_stop(t);\n}\n```\n\n"
            "In short: a callback that returns within a millisecond keeps "
            "the latency of every other user below %d ms.\n\n",
            i, i, i, i * 10);
    return s;
}

/* The bot's messages (not deleted) in the thread ts of chan, in order. */
#define THREAD_MAX 16

static int
thread_msgs(const struct slack_fake *sf, const char *chan, const char *ts,
            struct slack_fake_msg *out)
{
    struct slack_fake_msg m;
    int n = 0;

    for (size_t i = 0; slack_fake_message(sf, chan, i, &m) == 0; i++)
        if (m.bot && m.thread_ts != NULL && strcmp(m.thread_ts, ts) == 0 &&
            n < THREAD_MAX)
            out[n++] = m;
    return n;
}

/* A question to watch (its answer is streamed): mentioned in chat. */
static struct watch *
watch_ask(struct fixture *fx, const char *chat, const char *question)
{
    struct watch *w = &watches[nwatches++];

    memset(w, 0, sizeof(*w));
    snprintf(w->question, sizeof(w->question), "%s", question);
    snprintf(w->chat, sizeof(w->chat), "%s", chat);
    slack_fake_mention(fx->x.sf, chat, "U20", question, NULL, w->ts,
                       sizeof(w->ts));
    return w;
}

/* The answer is all there: its last message got the 👍/👎. */
static int
watch_shown(struct fixture *fx, const struct watch *w)
{
    struct slack_fake_msg m[THREAD_MAX];
    int n = thread_msgs(fx->x.sf, w->chat, w->ts, m);

    return n > 0 && m[n - 1].nreactions == 2;
}

static int
quiet(struct fixture *fx)
{
    struct core_stats cs;
    struct slack_status ss;

    core_stats(fx->x.core, &cs);
    slack_status(fx->x.sl, &ss);
    return cs.inflight == 0 && ss.queued == 0;
}

static int
watches_shown(struct fixture *fx)
{
    for (int i = 0; i < nwatches; i++)
        if (!watch_shown(fx, &watches[i]))
            return 0;
    return quiet(fx);
}

/* ten other users, one mention every 400 ms, answered in their threads */
#define OTHERS 10

static int others_sent;
static char others_ts[OTHERS][EVENT_ID_MAX + 1];

static void
others_inject(uv_timer_t *t)
{
    struct fixture *fx = t->data;
    char user[16], text[32];

    if (others_sent == OTHERS) {
        uv_timer_stop(t);
        return;
    }
    snprintf(user, sizeof(user), "U%d", others_sent + 1);
    snprintf(text, sizeof(text), "question %d", others_sent + 1);
    slack_fake_mention(fx->x.sf, "C1", user, text, NULL, others_ts[others_sent],
                       sizeof(others_ts[0]));
    others_sent++;
}

static int
busy_done(struct fixture *fx)
{
    struct slack_fake_msg m[THREAD_MAX];

    for (int i = 0; i < OTHERS; i++)
        if (i >= others_sent ||
            thread_msgs(fx->x.sf, "C1", others_ts[i], m) < 1)
            return 0;
    return watches_shown(fx);
}

/*
 * The messages of watch w show the same texts as ref (the answer sent
 * without streaming), part by part; the 👍/👎 on the last one only; each
 * edited no faster than the interval allows.  Returns how many.
 */
static int
check_like(struct fixture *fx, const struct watch *w,
           const struct slack_fake_msg *ref, int nref, int64_t interval)
{
    struct slack_fake_msg m[THREAD_MAX];
    int n = thread_msgs(fx->x.sf, w->chat, w->ts, m), edits = 0;
    int64_t gap = -1;

    T_OKF(n == nref, "%s: %d messages, %d without streaming", w->question, n,
          nref);
    for (int i = 0; i < n && i < nref; i++) {
        T_OKF(strcmp(m[i].text, ref[i].text) == 0,
              "%s: part %d/%d differs (%zu vs %zu characters)", w->question,
              i + 1, n, strlen(m[i].text), strlen(ref[i].text));
        T_EQ_INT(m[i].nreactions, i == n - 1 ? 2 : 0);
        T_OKF(m[i].edits_per_min_max <= 60000 / interval,
              "%s: part %d edited %d times in a minute", w->question, i + 1,
              m[i].edits_per_min_max);
        /* the first edit may follow the post at once (stream_interval is
         * between edits), so the gaps start at the second */
        for (int e = 1; e < m[i].edits; e++) {
            int64_t prev = m[i].edit_t_ms[e - 1];

            if (gap < 0 || m[i].edit_t_ms[e] - prev < gap)
                gap = m[i].edit_t_ms[e] - prev;
        }
        edits += m[i].edits;
    }
    /* core spaces a message's edits by the interval after each reply */
    T_OKF(gap < 0 || gap >= interval - 50, "%s: edits %lld ms apart",
          w->question, (long long)gap);
    fprintf(stderr,
            "  %s in %s: %d messages, %d edits (closest %lld ms apart), "
            "%d partials\n",
            w->question, w->chat, n, edits, (long long)gap, w->partials);
    return n;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Time to first visible text: the first partial reaching core to the
 * first chat.postMessage of that answer arriving at the fake.  Printed,
 * not asserted (timing is noisy here). */
static void
print_ttfvt(struct fixture *fx)
{
    struct slack_fake_msg m[THREAD_MAX];
    int64_t d[WATCH_MAX];
    int n = 0;

    for (int i = 0; i < nwatches; i++) {
        const struct watch *w = &watches[i];

        if (w->partials == 0 || thread_msgs(fx->x.sf, w->chat, w->ts, m) < 1)
            continue;
        d[n] = m[0].t_ms - w->partial_ms;
        fprintf(stderr, "  first visible text: %s in %s: %lld ms\n",
                w->question, w->chat, (long long)d[n]);
        n++;
    }
    if (n == 0)
        return;
    qsort(d, (size_t)n, sizeof(d[0]), cmp_i64);
    fprintf(stderr,
            "time to first visible text over %d streams: p50 %lld ms, "
            "max %lld ms\n",
            n, (long long)d[(n - 1) / 2], (long long)d[n - 1]);
}

/*
 * The must-show, through the real core.  The same 12,000-byte answer
 * (≈ 3,000 tokens) first sent whole (stream off) into C9: the reference.
 * Then, stream on: streamed into C1 in 120 partials over ≈ 7 s while ten
 * other users chat in C1 and core answers them (one channel queue, 1/s),
 * and into C5 with a retry midway (the text starts again after 50
 * partials).  Zero 429s from the fake (its buckets are enforced); the
 * final messages equal the reference part by part; the 👍/👎 on the last
 * message only; every other answer once; no duplicate messages.  Last,
 * three short streams in quiet channels, for the time to first visible
 * text.
 */
static void
test_stream_real_core(void)
{
    struct fixture fx;
    struct slack_fake_msg ref[THREAD_MAX], m[THREAD_MAX];
    struct slack_fake_stats st;
    struct slack_status ss;
    struct core_stats cs;
    struct watch *wref, *wbusy, *wretry;
    uv_timer_t others;
    char *full, *brief, want[64], *fmt;
    int nref, n, posts;
    int64_t t0, interval = 1500;

    T_OK(fixture_init(&fx, "real", "1/1s", 0) == 0);
    fx.x.cfg->llm.stream_interval = interval; /* the default, said */
    full = md_answer(12000);
    brief = md_answer(1500);
    T_OK(full != NULL && brief != NULL);
    fx.fl.fixed = fx.fr.fixed = full;
    fx.fl.stream_chunks = fx.fr.stream_chunks = 120;
    fx.fl.stream_gap_ms = fx.fr.stream_gap_ms = 60;
    fx.fr.restart_after = 50;
    fx.fm.fixed = brief;
    fx.fm.stream_chunks = 15;
    fx.fm.stream_gap_ms = 60;
    nwatches = 0;
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));

    /* the reference: not streamed */
    fx.x.cfg->llm.stream = 0;
    wref = watch_ask(&fx, "C9", "stream the reference");
    T_OK(run_until(&fx, watches_shown, 15000));
    nref = thread_msgs(fx.x.sf, "C9", wref->ts, ref);
    T_OKF(nref >= 3, "%zu bytes in %d messages", strlen(full), nref);
    /* escaping grew a 4000-byte part past 4000 characters: one message
     * still, as a stream's edits show it (it used to be cut in two) */
    T_OKF(nref > 0 && slack_format_chars(ref[0].text, strlen(ref[0].text)) >
                          SLACK_TEXT_MAX,
          "the first part: %zu characters", nref > 0 ? strlen(ref[0].text) : 0);
    T_EQ_INT(nref, (int)stream_split_count(full, strlen(full), SLACK_TEXT_MAX));
    T_EQ_INT(wref->partials, 0);

    /* streamed, in a busy channel and with a retry midway */
    fx.x.cfg->llm.stream = 1;
    t0 = fake_now_ms();
    others_sent = 0;
    uv_timer_init(&fx.x.loop, &others);
    others.data = &fx;
    uv_timer_start(&others, others_inject, 0, 400);
    wretry = watch_ask(&fx, "C5", "retry it midway");
    /* the busy one once C1's queue holds answers to others */
    run_until(&fx, never, 1200);
    wbusy = watch_ask(&fx, "C1", "stream it, busy channel");
    T_OK(run_until(&fx, busy_done, 60000));
    uv_close((uv_handle_t *)&others, NULL);
    fprintf(stderr, "streams done in %lld ms:\n",
            (long long)(fake_now_ms() - t0));
    T_OKF(wbusy->partials >= 100, "%d partials", wbusy->partials);
    T_OKF(wretry->partials > 120, "%d partials", wretry->partials);
    posts = nref;
    posts += check_like(&fx, wbusy, ref, nref, interval);
    posts += check_like(&fx, wretry, ref, nref, interval);
    /* the ten others: each answered once, in its thread */
    for (int i = 0; i < OTHERS; i++) {
        snprintf(want, sizeof(want), "**answer** to: question %d", i + 1);
        fmt = slack_format(want, strlen(want));
        n = thread_msgs(fx.x.sf, "C1", others_ts[i], m);
        T_OKF(n == 1, "question %d: %d answers", i + 1, n);
        if (n == 1)
            T_EQ_STR(m[0].text, fmt);
        free(fmt);
    }
    posts += OTHERS;
    T_EQ_INT(fx.fa.asks, OTHERS);
    T_EQ_INT(fx.fl.asks, 2); /* the reference and the busy one */
    T_EQ_INT(fx.fr.asks, 1);

    /* three short streams at once, in quiet channels */
    watch_ask(&fx, "C6", "brief one");
    watch_ask(&fx, "C7", "brief two");
    watch_ask(&fx, "C8", "brief three");
    T_OK(run_until(&fx, watches_shown, 20000));
    for (int i = nwatches - 3; i < nwatches; i++) {
        n = thread_msgs(fx.x.sf, watches[i].chat, watches[i].ts, m);
        fmt = slack_format(brief, strlen(brief));
        T_EQ_INT(n, 1);
        if (n == 1)
            T_EQ_STR(m[0].text, fmt);
        free(fmt);
        posts += n;
    }

    /* nothing refused, nothing posted twice */
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.posts_429, 0);
    T_EQ_INT(st.updates_429, 0);
    T_EQ_INT(st.deletes_429, 0);
    T_EQ_INT(st.posts, (uint64_t)posts);
    T_EQ_INT(st.deletes, 0);
    slack_status(fx.x.sl, &ss);
    T_EQ_INT(ss.retries_429, 0);
    core_stats(fx.x.core, &cs);
    /* the busy and the retry stream, and of the three brief ones at
     * once two (SLACK_STREAMS_MAX), the third streaming only if a slot
     * freed before it finished, else sent whole */
    T_OKF(cs.streamed == 4 || cs.streamed == 5, "%llu streamed",
          (unsigned long long)cs.streamed);
    fprintf(
        stderr,
        "real core: reference %d messages; %llu posts, %llu edits, "
        "%llu deletes, 429s: %llu\n",
        nref, (unsigned long long)st.posts, (unsigned long long)st.updates,
        (unsigned long long)st.deletes,
        (unsigned long long)(st.posts_429 + st.updates_429 + st.deletes_429));
    print_ttfvt(&fx);
    free(full);
    free(brief);
    nwatches = 0;
    fixture_release(&fx);
}

/*
 * The outcomes, one at a time (a faster channel rate here, the fake's
 * bucket raised to match, so that they do not wait on each other):
 * formatting, "not modified", feedback, delete (twice), an edit of a
 * message that is gone, cant_update_message, a 429 on an edit.
 */
static void
test_edit_outcomes(void)
{
    struct fixture fx;
    struct slack_fake_msg m;
    struct slack_fake_stats st;
    struct slack_status ss;
    const struct result *r;
    char ts[EVENT_ID_MAX + 1];
    uint64_t id;
    int64_t t0;

    T_OK(fixture_init(&fx, "outcomes", "10/1s", 50) == 0);
    slack_fake_set_rate(fx.x.sf, 10, 3);
    slack_fake_set_tier3(fx.x.sf, 600, 3);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));

    /* post, then an edit formatted like a post */
    r = wait_result(&fx, act(&fx, ACTION_ANSWER, "C2", "", NULL, "first", 0),
                    3000);
    T_OK(r != NULL && r->status == SEND_OK);
    snprintf(ts, sizeof(ts), "%s", r ? r->message_id : "");
    id = act(&fx, ACTION_EDIT, "C2", "", ts, "**b** <x> & y", 0);
    r = wait_result(&fx, id, 3000);
    T_OK(r != NULL && r->status == SEND_OK);
    T_EQ_STR(r ? r->message_id : "", ts);
    T_EQ_INT(slack_fake_find(fx.x.sf, "C2", ts, &m), 0);
    T_EQ_STR(m.text, "*b* &lt;x&gt; &amp; y");
    T_EQ_INT(m.nreactions, 0);

    /* the same text again ("not modified"), with feedback: OK, 👍/👎 */
    r = wait_result(
        &fx, act(&fx, ACTION_EDIT, "C2", "", ts, "**b** <x> & y", 1), 3000);
    T_OK(r != NULL && r->status == SEND_OK);
    run_until(&fx, never, 300);
    T_EQ_INT(slack_fake_find(fx.x.sf, "C2", ts, &m), 0);
    T_EQ_INT(m.nreactions, 2);
    T_EQ_INT(m.edits, 2);

    /* a 429 on an edit: kept, delivered after Retry-After */
    slack_fake_script(fx.x.sf, "chat.update", NULL, 429, 2);
    t0 = fake_now_ms();
    r = wait_result(&fx, act(&fx, ACTION_EDIT, "C2", "", ts, "after 429", 0),
                    6000);
    T_OK(r != NULL && r->status == SEND_OK);
    T_OKF(r && r->at_ms - t0 >= 1900, "delivered %lld ms later (Retry-After 2)",
          r ? (long long)(r->at_ms - t0) : -1LL);
    T_EQ_INT(slack_fake_find(fx.x.sf, "C2", ts, &m), 0);
    T_EQ_STR(m.text, "after 429");

    /* someone else's message: forbidden; edit_window_closed too */
    slack_fake_script(fx.x.sf, "chat.update", "cant_update_message", 0, 0);
    r = wait_result(&fx, act(&fx, ACTION_EDIT, "C2", "", ts, "nope", 0), 3000);
    T_OK(r != NULL && r->status == SEND_FAILED);
    T_EQ_STR(r ? r->error_class : "", "forbidden");
    slack_fake_script(fx.x.sf, "chat.update", "edit_window_closed", 0, 0);
    r = wait_result(&fx, act(&fx, ACTION_EDIT, "C2", "", ts, "nope", 0), 3000);
    T_OK(r != NULL && r->status == SEND_FAILED);

    /* delete; again (already gone): OK both times */
    r = wait_result(&fx, act(&fx, ACTION_DELETE, "C2", "", ts, NULL, 0), 3000);
    T_OK(r != NULL && r->status == SEND_OK);
    T_EQ_STR(r ? r->message_id : "", ts);
    T_EQ_INT(slack_fake_find(fx.x.sf, "C2", ts, &m), 0);
    T_EQ_INT(m.deleted, 1);
    T_EQ_INT(slack_fake_count(fx.x.sf, "C2", 1), 0);
    r = wait_result(&fx, act(&fx, ACTION_DELETE, "C2", "", ts, NULL, 0), 3000);
    T_OK(r != NULL && r->status == SEND_OK);

    /* an edit of the deleted message: not_found (core posts anew) */
    r = wait_result(&fx, act(&fx, ACTION_EDIT, "C2", "", ts, "late", 0), 3000);
    T_OK(r != NULL && r->status == SEND_FAILED);
    T_EQ_STR(r ? r->error_class : "", "not_found");

    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.updates_429, 1); /* the scripted one only */
    T_EQ_INT(st.deletes, 1);
    slack_status(fx.x.sl, &ss);
    T_EQ_INT(ss.retries_429, 1);
    T_EQ_INT(ss.deletes, 2);
    fixture_release(&fx);
}

/*
 * Two channels streaming at once: each paced at 1/s, and chat.update's
 * Tier 3 budget shared by the workspace (the fake enforces 50/min): both
 * streams finish, in turn, without a 429.
 */
static int both_done;
static struct hand_stream *streams[2];

static void
two_result(struct fixture *fx, const struct result *r)
{
    for (int i = 0; i < 2; i++) {
        the_stream = streams[i];
        stream_result(fx, r);
    }
    both_done = streams[0]->final_ok && streams[1]->final_ok;
}

static int
two_done(struct fixture *fx)
{
    (void)fx;
    return both_done || streams[0]->failed || streams[1]->failed;
}

static void
test_two_channels(void)
{
    struct fixture fx;
    struct hand_stream sm[2];
    struct slack_fake_stats st;
    struct slack_fake_msg m;
    char *full;
    const char *chans[2] = {"C3", "C4"};

    T_OK(fixture_init(&fx, "two", "1/1s", 0) == 0);
    /* a burst of 2 only (Slack allows more): the gate must hold */
    slack_fake_set_tier3(fx.x.sf, 50, 2);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    full = long_answer(800);
    both_done = 0;
    for (int i = 0; i < 2; i++) {
        memset(&sm[i], 0, sizeof(sm[i]));
        sm[i].fx = &fx;
        sm[i].chat = chans[i];
        sm[i].thread = "";
        sm[i].full = full;
        sm[i].len = strlen(full);
        sm[i].step = sm[i].len / 30 + 1;
        streams[i] = &sm[i];
        uv_timer_init(&fx.x.loop, &sm[i].gen);
        sm[i].gen.data = &sm[i];
        uv_timer_start(&sm[i].gen, stream_gen, GEN_MS, GEN_MS);
    }
    fx.on_result = two_result;
    T_OK(run_until(&fx, two_done, 20000));
    for (int i = 0; i < 2; i++) {
        uv_close((uv_handle_t *)&sm[i].gen, NULL);
        T_EQ_INT(sm[i].failed, 0);
        T_OK(sm[i].final_ok);
        T_OK(sm[i].edits >= 2);
        T_EQ_INT(slack_fake_find(fx.x.sf, chans[i], sm[i].ts, &m), 0);
        T_EQ_INT(m.edits, sm[i].edits);
    }
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.updates_429, 0);
    T_EQ_INT(st.posts_429, 0);
    fprintf(stderr, "two channels: %d + %d edits, 429s: %llu\n", sm[0].edits,
            sm[1].edits, (unsigned long long)(st.updates_429 + st.posts_429));
    free(full);
    the_stream = NULL;
    fx.on_result = NULL;
    fixture_release(&fx);
}

int
main(void)
{
    const char *only = getenv("TEST_ONLY");

    signal(SIGPIPE, SIG_IGN);
    log_init("test_slack_stream");
    log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_slack_stream.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
#define RUN(name)                                                              \
    if (only == NULL || strcmp(only, #name) == 0)                              \
        test_##name();
    RUN(edit_outcomes);
    RUN(stream_real_core);
    RUN(two_channels);
    rmdir(tmpdir);
    curl_global_cleanup();
    return t_done();
}
