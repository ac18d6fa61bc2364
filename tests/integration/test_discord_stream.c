/* test_discord_stream: streamed answers on Discord — ACTION_EDIT and
 * ACTION_DELETE through the connector against the fake (enforced buckets),
 * driven as core drives a stream: one action in flight, the newest text
 * next, the final edit with the 👍/👎.  Meanwhile ten other users are
 * answered by the real core in the same channel. */
#include "connectors/discord.h"
#include "core/core.h"
#include "core/stream.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/discord_fake.h"
#include "tests/t.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define STREAM_ID (1ULL << 63) /* send ids core does not know */
#define RESULTS_MAX 64

/* ---- the fixture: fake, real core with the fake asker, connector ---- */

#define RECS_MAX 64
#define PARTIALS_MAX 256

/* One ask core made through the routing asker: which fixture asker took
 * it, core's callbacks, and when each partial reached core. */
struct ask_rec {
    struct fx *f;
    struct core_fixture_asker *fa;
    uint64_t inner; /* fa's handle */
    char text[64];  /* the question, as core put it in the prompt */
    void (*partial)(void *arg, const char *text, size_t len);
    core_ask_done_fn done;
    void *arg;
    int np, done_seen;
    int64_t pt[PARTIALS_MAX]; /* fake_now_ms() as the partial went in */
    size_t plen[PARTIALS_MAX];
};

struct fx {
    uv_loop_t loop;
    char dir[64], path[128];
    struct store *st;
    struct config *cfg;
    struct core_fixture_asker fa;
    struct core *core;
    struct http *http;
    struct ws_ctx *ws;
    struct discord_fake *df;
    struct discord *d;
    int64_t window; /* the fake's message buckets: 5 per window */
    /* outcomes of our own sends (STREAM_ID | n), by n */
    struct {
        int done;
        enum send_status status;
        char mid[32];
        char cls[32];
        int64_t t_ms;
    } res[RESULTS_MAX];
    void (*on_result)(struct fx *f, uint64_t n);
    void *stream;
    /* routed asks (the real core streaming): the long answers, the ten
     * users, and what every ask saw */
    struct core_fixture_asker fa_users, fa_retry;
    struct ask_rec *recs;
    int nrecs;
};

static void
tap(void *arg, uint64_t send_id, const struct send_result *r)
{
    struct fx *f = arg;
    uint64_t n = send_id & ~STREAM_ID;

    if (!(send_id & STREAM_ID))
        return; /* core's own: it hears of them itself */
    if (n < RESULTS_MAX) {
        f->res[n].done = 1;
        f->res[n].status = r->status;
        snprintf(f->res[n].mid, sizeof(f->res[n].mid), "%s",
                 r->message_id ? r->message_id : "");
        snprintf(f->res[n].cls, sizeof(f->res[n].cls), "%s",
                 r->error_class ? r->error_class : "");
        f->res[n].t_ms = fake_now_ms();
    }
    if (f->on_result != NULL)
        f->on_result(f, n);
}

static struct config *
make_config(const char *base)
{
    struct config *cfg = NULL;

    cfg = core_fixture_config(
        "[bot]\nstate_dir = /tmp\n"
        "[discord]\nenabled = true\ntoken = %s\napi_base = %s\n"
        "[limits]\nuser = 1000/60s\nchat = 1000/60s\n"
        "[llm]\nmodels = main\nmax_output_tokens = 100\n" CORE_FIXTURE_MODEL,
        DISCORD_FAKE_TOKEN, base);
    return cfg;
}

/* ---- the routing asker: "long"/"plain" → fa, "retry" → fa_retry, any
 * other question → fa_users; partials timestamped on their way in ---- */

static void
routed_partial(void *arg, const char *text, size_t len)
{
    struct ask_rec *r = arg;

    /* an LLM client hands over whole characters; the fixture cuts bytes
     * (text is its whole answer: text[len] is there to look at) */
    len = event_text_cut(text, len + 1, len);
    if (r->np < PARTIALS_MAX) {
        r->pt[r->np] = fake_now_ms();
        r->plen[r->np] = len;
    }
    r->np++;
    r->partial(r->arg, text, len);
}

static void
routed_done(void *arg, const struct core_answer *a)
{
    struct ask_rec *r = arg;

    r->done_seen = 1;
    r->done(r->arg, a);
}

static int
routed_ask(void *ctx, const struct core_prompt *cp, core_ask_done_fn done,
           void *arg, uint64_t *handle)
{
    struct fx *f = ctx;
    const char *q = cp->msgs[cp->n - 1].text;
    struct core_prompt p = *cp;
    struct core_asker in;
    struct ask_rec *r;

    if (f->nrecs == RECS_MAX)
        return -1;
    r = &f->recs[f->nrecs];
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->fa = strstr(q, "retry") != NULL ? &f->fa_retry
            : strstr(q, "long") != NULL || strstr(q, "plain") != NULL
                ? &f->fa
                : &f->fa_users;
    snprintf(r->text, sizeof(r->text), "%s", q);
    r->partial = cp->partial;
    r->done = done;
    r->arg = arg;
    if (cp->partial != NULL)
        p.partial = routed_partial;
    in = core_fixture_asker_ops(r->fa);
    if (in.ask(in.ctx, &p, routed_done, r, &r->inner) < 0)
        return -1;
    *handle = (uint64_t)++f->nrecs;
    return 0;
}

static void
routed_cancel(void *ctx, uint64_t handle)
{
    struct fx *f = ctx;
    struct ask_rec *r;
    struct core_asker in;

    if (handle == 0 || handle > (uint64_t)f->nrecs)
        return;
    r = &f->recs[handle - 1];
    in = core_fixture_asker_ops(r->fa);
    in.cancel(in.ctx, r->inner);
}

/* routed: the routing asker (three fixture askers) instead of fa alone */
static int
fx_init(struct fx *f, int routed)
{
    const char *env = getenv("DISCORD_TEST_BUCKET_MS");
    struct core_asker asker;
    char err[256];

    memset(f, 0, sizeof(*f));
    f->window = env ? atoll(env) : 1000;
    if (f->window <= 0)
        f->window = 1000;
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_discord_stream-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/parley.db", f->dir);
    if ((f->df = discord_fake_new(&f->loop, 0, NULL)) == NULL)
        return -1;
    discord_fake_set_send_limit(f->df, 0, 0);
    discord_fake_set_bucket(f->df, 5, f->window);
    f->cfg = make_config(discord_fake_base(f->df));
    f->st = store_open(f->path, err, sizeof(err));
    if (f->cfg == NULL || f->st == NULL)
        return -1;
    store_attach_loop(f->st, &f->loop);
    f->fa.loop = &f->loop;
    f->fa.delay_ms = 20;
    f->fa.tokens_in = 10;
    f->fa_users = f->fa;
    f->fa_retry = f->fa;
    asker = core_fixture_asker_ops(&f->fa);
    if (routed) {
        if ((f->recs = calloc(RECS_MAX, sizeof(*f->recs))) == NULL)
            return -1;
        asker.ctx = f;
        asker.ask = routed_ask;
        asker.cancel = routed_cancel;
    }
    f->core = core_new(&f->loop, f->st, f->cfg, &asker);
    f->http = http_new(&f->loop);
    f->ws = ws_ctx_new(&f->loop);
    if (f->core == NULL || f->http == NULL || f->ws == NULL)
        return -1;
    f->d = discord_new(&f->loop, f->http, f->ws, f->core, f->st, f->cfg, NULL,
                       NULL);
    if (f->d == NULL)
        return -1;
    discord_set_limits(f->d, 1000, 60000, 1000);
    discord_set_send_tap(f->d, tap, f);
    return discord_start(f->d);
}

struct until {
    int (*pred)(struct fx *, const void *);
    struct fx *f;
    const void *arg;
};

static int
until_holds(void *arg)
{
    struct until *u = arg;

    return u->pred != NULL && u->pred(u->f, u->arg);
}

static int
run_until(struct fx *f, int (*pred)(struct fx *, const void *), const void *arg,
          int max_ms)
{
    struct until u = {pred, f, arg};

    if (pred != NULL && pred(f, arg))
        return 1;
    return core_fixture_loop_until(&f->loop, until_holds, &u, 2, max_ms);
}

static int
disconnected(struct fx *f, const void *arg)
{
    struct discord_status ds;

    (void)arg;
    discord_status(f->d, &ds);
    return !ds.connected;
}

static void
fx_release(struct fx *f)
{
    if (f->d != NULL) {
        discord_stop(f->d);
        run_until(f, disconnected, NULL, 6000);
        discord_free(f->d);
    }
    core_free(f->core);
    core_fixture_asker_drop(&f->fa);
    core_fixture_asker_drop(&f->fa_users);
    core_fixture_asker_drop(&f->fa_retry);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    http_free(f->http);
    ws_ctx_free(f->ws);
    discord_fake_free(f->df);
    store_close(f->st);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&f->loop), 0);
    config_free(f->cfg);
    core_fixture_db_unlink(f->path);
    rmdir(f->dir);
    free(f->recs);
}

static int
is_up(struct fx *f, const void *arg)
{
    (void)arg;
    return discord_is_up(f->d);
}

static int
result_in(struct fx *f, const void *arg)
{
    return f->res[*(const uint64_t *)arg].done;
}

static int
sent_in(struct fx *f, const void *arg)
{
    const size_t *want = arg;

    return discord_fake_sent_count(f->df, "800") >= *want;
}

static int
reactions_on(struct fx *f, const void *arg)
{
    struct discord_fake_sent s;

    return discord_fake_sent_find(f->df, arg, &s) == 0 && s.up && s.down;
}

/* One action, as core would hand it over; its outcome lands in res[n]. */
static int
act(struct fx *f, uint64_t n, enum action_kind kind, const char *chat,
    const char *target, const char *text, int feedback)
{
    struct action a;
    char idem[32];

    memset(&a, 0, sizeof(a));
    snprintf(idem, sizeof(idem), "job:9%03" PRIu64 ":0", n);
    a.kind = kind;
    a.send_id = STREAM_ID | n;
    a.chat = chat;
    a.thread = "";
    a.reply_to = "";
    a.text = text;
    a.idem_key = idem;
    a.parts = 1;
    a.feedback = feedback;
    a.target_id = target;
    f->res[n].done = 0;
    return discord_send(f->d, &a);
}

/* act, then wait for its outcome. */
static int
act_wait(struct fx *f, uint64_t n, enum action_kind kind, const char *chat,
         const char *target, const char *text, int feedback)
{
    if (act(f, n, kind, chat, target, text, feedback) < 0)
        return 0;
    /* behind a busy channel's queue: a few windows */
    return run_until(f, result_in, &n, 10000 + 6 * (int)f->window);
}

/* ---- the results an edit and a delete can have ---- */

static void
test_outcomes(void)
{
    struct fx f;
    struct discord_fake_sent s;
    struct discord_fake_stats st;
    struct discord_status ds;
    char mid[32], big[2600];
    int64_t t0;

    if (fx_init(&f, 0) < 0) {
        T_OK(0);
        return;
    }
    T_OK(run_until(&f, is_up, NULL, 5000));
    T_OK(act_wait(&f, 0, ACTION_ANSWER, "810", "", "first", 0));
    T_EQ_INT(f.res[0].status, SEND_OK);
    snprintf(mid, sizeof(mid), "%s", f.res[0].mid);
    T_OK(mid[0] != '\0');

    /* an edit: SEND_OK with message_id = target_id */
    T_OK(act_wait(&f, 1, ACTION_EDIT, "810", mid, "first, longer", 0));
    T_EQ_INT(f.res[1].status, SEND_OK);
    T_EQ_STR(f.res[1].mid, mid);
    /* the same text again ("not modified" elsewhere): SEND_OK */
    T_OK(act_wait(&f, 2, ACTION_EDIT, "810", mid, "first, longer", 0));
    T_EQ_INT(f.res[2].status, SEND_OK);
    T_EQ_STR(f.res[2].mid, mid);
    T_EQ_INT(discord_fake_sent_find(f.df, mid, &s), 0);
    T_EQ_STR(s.content, "first, longer");
    T_EQ_INT(s.edits, 2);
    T_EQ_INT(s.up + s.down, 0);

    /* over 2000 bytes: cut like a send (at a UTF-8 boundary) */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof(big) - 2] = '\0';
    T_OK(act_wait(&f, 3, ACTION_EDIT, "810", mid, big, 0));
    T_EQ_INT(f.res[3].status, SEND_OK);
    discord_fake_sent_find(f.df, mid, &s);
    T_EQ_INT(strlen(s.content), 2000);

    /* a 429 on an edit: delayed (the bucket's wait), then delivered */
    discord_fake_edit_429(f.df, 400);
    t0 = fake_now_ms();
    T_OK(act_wait(&f, 4, ACTION_EDIT, "810", mid, "after the 429", 0));
    T_EQ_INT(f.res[4].status, SEND_OK);
    T_OKF(f.res[4].t_ms - t0 >= 400, "delivered %lld ms after",
          (long long)(f.res[4].t_ms - t0));
    discord_fake_sent_find(f.df, mid, &s);
    T_EQ_STR(s.content, "after the 429");
    discord_status(f.d, &ds);
    T_EQ_INT(ds.retries_429, 1);

    /* the final edit with feedback: 👍 and 👎 on the message */
    T_OK(act_wait(&f, 5, ACTION_EDIT, "810", mid, "final", 1));
    T_EQ_INT(f.res[5].status, SEND_OK);
    T_OK(run_until(&f, reactions_on, mid, 5000));

    /* a message that is not there: not_found (core then posts anew) */
    T_OK(act_wait(&f, 6, ACTION_EDIT, "810", "1234567890123456789", "x", 0));
    T_EQ_INT(f.res[6].status, SEND_FAILED);
    T_EQ_STR(f.res[6].cls, "not_found");
    /* no message id at all: the same, without a request */
    T_OK(act_wait(&f, 7, ACTION_EDIT, "810", "../typing", "x", 0));
    T_EQ_INT(f.res[7].status, SEND_FAILED);
    T_EQ_STR(f.res[7].cls, "not_found");

    /* delete: gone; again: still SEND_OK; then an edit: not_found */
    T_OK(act_wait(&f, 8, ACTION_DELETE, "810", mid, NULL, 0));
    T_EQ_INT(f.res[8].status, SEND_OK);
    T_EQ_STR(f.res[8].mid, mid);
    discord_fake_sent_find(f.df, mid, &s);
    T_EQ_INT(s.deleted, 1);
    T_OK(act_wait(&f, 9, ACTION_DELETE, "810", mid, NULL, 0));
    T_EQ_INT(f.res[9].status, SEND_OK);
    T_OK(act_wait(&f, 10, ACTION_EDIT, "810", mid, "too late", 0));
    T_EQ_INT(f.res[10].status, SEND_FAILED);
    T_EQ_STR(f.res[10].cls, "not_found");

    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.edits, 5);
    T_EQ_INT(st.edit_same, 1);
    T_EQ_INT(st.deletes, 1);
    T_EQ_INT(st.unknown_message, 3);
    T_EQ_INT(st.caused_429, 0);
    T_EQ_INT(st.r429, 1); /* the scripted one */
    discord_status(f.d, &ds);
    T_EQ_INT(ds.edits, 5);
    T_EQ_INT(ds.deletes, 2);
    fx_release(&f);
}

/* ---- a long answer streamed while ten users chat in the channel ---- */

/* 120 chunks over three bucket windows (3 s by default) */
#define CHUNKS 120
#define CHUNK_MS(window) ((window) / 40)

struct driven { /* a stream driven by hand, as core would */
    uv_timer_t gen;
    char text[2000];
    size_t len, sent_len;
    int chunks;
    int gen_done, in_flight, final_sent, done;
    uint64_t next;
    char target[32];
    char extra[32]; /* a second part, deleted at the end */
    int oks, fails, edits;
};

static void
stream_kick(struct fx *f)
{
    struct driven *s = f->stream;
    enum action_kind kind = ACTION_EDIT;
    int feedback = 0;
    uint64_t n;

    if (s->in_flight || s->done || s->len == 0 || s->next >= RESULTS_MAX)
        return;
    if (s->target[0] == '\0') {
        kind = ACTION_ANSWER;
    } else if (s->gen_done && !s->final_sent) {
        feedback = 1; /* the final edit: the newest text and the controls */
    } else if (s->len == s->sent_len) {
        return; /* nothing new: wait for the generator */
    }
    n = s->next++;
    s->in_flight = 1;
    s->sent_len = s->len;
    if (feedback)
        s->final_sent = 1;
    if (kind == ACTION_EDIT)
        s->edits++;
    if (act(f, n, kind, "800", s->target, s->text, feedback) < 0) {
        s->in_flight = 0;
        s->fails++;
    }
}

static void
stream_result(struct fx *f, uint64_t n)
{
    struct driven *s = f->stream;

    if (!s->in_flight)
        return; /* the extra part's */
    s->in_flight = 0;
    if (f->res[n].status != SEND_OK) {
        s->fails++;
        return;
    }
    s->oks++;
    if (s->target[0] == '\0')
        snprintf(s->target, sizeof(s->target), "%s", f->res[n].mid);
    else if (strcmp(f->res[n].mid, s->target) != 0)
        s->fails++;
    if (s->final_sent) {
        s->done = 1;
        return;
    }
    stream_kick(f); /* from inside send_done, as core may */
}

static void
gen_tick(uv_timer_t *t)
{
    struct fx *f = t->data;
    struct driven *s = f->stream;
    int n;

    n = snprintf(s->text + s->len, sizeof(s->text) - s->len, "token%03d ",
                 s->chunks);
    if (n > 0 && (size_t)n < sizeof(s->text) - s->len)
        s->len += (size_t)n;
    if (++s->chunks == CHUNKS) {
        s->gen_done = 1;
        uv_timer_stop(t);
    }
    stream_kick(f);
}

static int
stream_done(struct fx *f, const void *arg)
{
    const struct driven *s = f->stream;

    (void)arg;
    return s->done || s->fails > 0;
}

static int
chunks_at(struct fx *f, const void *arg)
{
    const struct driven *s = f->stream;

    return s->chunks >= *(const int *)arg;
}

/* The most requests (times ts, in order) in one of Discord's windows. */
static size_t
max_in_windows(const int64_t *ts, size_t n, int64_t window)
{
    size_t best = 0, count = 0;
    int64_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (count == 0 || ts[i] >= start + window) {
            start = ts[i];
            count = 0;
        }
        if (++count > best)
            best = count;
    }
    return best;
}

/* ids: NULL, or where the ten question ids go */
static void
ten_users(struct fx *f, int round, char (*ids)[32])
{
    char text[96], author[16], name[16];

    for (int u = 0; u < 10; u++) {
        struct discord_fake_msg m = {"800", "9",  author, name,
                                     text,  NULL, 0,      0};

        snprintf(author, sizeof(author), "70%02d", u);
        snprintf(name, sizeof(name), "user%d", u);
        snprintf(text, sizeof(text), "<@" DISCORD_FAKE_BOT_ID "> q%d.%d", u,
                 round);
        discord_fake_message(f->df, &m, ids != NULL ? ids[u] : NULL,
                             ids != NULL ? sizeof(ids[u]) : 0);
    }
}

static void
test_stream_busy_channel(void)
{
    struct fx f;
    struct driven s;
    struct discord_fake_sent m;
    struct discord_fake_stats st;
    struct core_stats cs;
    size_t want = 22, per_window, per_minute, answered = 0;
    int half = CHUNKS / 2;
    int64_t t0, el;
    const int64_t *ts;
    size_t nedits;

    if (fx_init(&f, 0) < 0) {
        T_OK(0);
        return;
    }
    memset(&s, 0, sizeof(s));
    f.stream = &s;
    f.on_result = stream_result;
    T_OK(run_until(&f, is_up, NULL, 5000));
    uv_timer_init(&f.loop, &s.gen);
    s.gen.data = &f;
    t0 = fake_now_ms();
    uv_timer_start(&s.gen, gen_tick, (uint64_t)CHUNK_MS(f.window),
                   (uint64_t)CHUNK_MS(f.window));
    ten_users(&f, 0, NULL);
    T_OK(run_until(&f, chunks_at, &half, 20000 + 4 * (int)f.window));
    ten_users(&f, 1, NULL);
    T_OK(run_until(&f, stream_done, NULL, 60000 + 20 * (int)f.window));
    el = fake_now_ms() - t0;
    T_EQ_INT(s.fails, 0);
    T_EQ_INT(s.done, 1);

    /* a surplus part: posted, then deleted (as core does at the end) */
    f.on_result = NULL;
    T_OK(act_wait(&f, s.next, ACTION_ANSWER, "800", "", "surplus", 0));
    snprintf(s.extra, sizeof(s.extra), "%s", f.res[s.next].mid);
    T_OK(act_wait(&f, s.next + 1, ACTION_DELETE, "800", s.extra, NULL, 0));
    T_EQ_INT(f.res[s.next + 1].status, SEND_OK);

    /* everybody answered: 20 answers + our two messages */
    T_OK(run_until(&f, sent_in, &want, 30000 + 6 * (int)f.window));
    /* reactions: 1 per 250 ms per channel, 42 of them */
    T_OK(run_until(&f, reactions_on, s.target, 20000));
    for (size_t i = 0; discord_fake_sent_get(f.df, "800", i, &m) == 0; i++)
        answered += strncmp(m.content, "answer to: user", 15) == 0 &&
                    strstr(m.content, ": q") != NULL;
    T_EQ_INT(answered, 20);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.answered, 20);

    /* the final text is the whole text; the controls are on it */
    T_EQ_INT(discord_fake_sent_find(f.df, s.target, &m), 0);
    T_EQ_STR(m.content, s.text);
    T_EQ_INT(m.up, 1);
    T_EQ_INT(m.down, 1);
    T_EQ_INT(m.deleted, 0);
    T_EQ_INT(discord_fake_sent_find(f.df, s.extra, &m), 0);
    T_EQ_INT(m.deleted, 1);

    /* edits coalesced under the edit bucket: by Discord's rule (a window
     * opens with the first request after the last one closed) never more
     * than 5 per window; any sliding window may straddle two of them (10),
     * a "minute" of 12 windows 13 of them (65) */
    nedits = discord_fake_edit_times(f.df, s.target, &ts);
    per_window = discord_fake_edits_in(f.df, s.target, f.window);
    per_minute = discord_fake_edits_in(f.df, s.target, 12 * f.window);
    T_EQ_INT(nedits, s.edits);
    T_OKF(max_in_windows(ts, nedits, f.window) <= 5, "%zu edits in a window",
          max_in_windows(ts, nedits, f.window));
    T_OKF(per_window <= 10, "%zu edits in a sliding window", per_window);
    T_OKF(per_minute <= 65, "%zu edits in 12 windows", per_minute);
    T_OKF(nedits < CHUNKS, "%zu edits for %d chunks (coalesced)", nedits,
          CHUNKS);

    /* and not one 429 */
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.r429, 0);
    T_EQ_INT(st.caused_429, 0);
    printf("streamed %zu bytes in %lld ms: %zu edits (at most %zu per "
           "%lld ms window, %zu in any sliding one), 20 answers alongside, "
           "429s: %llu\n",
           strlen(s.text), (long long)el, nedits,
           max_in_windows(ts, nedits, f.window), (long long)f.window,
           per_window, (unsigned long long)st.r429);
    uv_close((uv_handle_t *)&s.gen, NULL);
    fx_release(&f);
}

/* ---- the real core streams: a 3,000-token answer while ten users chat,
 * a retry midway, and the same answer sent whole ---- */

#define LONG_CAP 12288
#define PARTS_MAX 16
#define SOLO 5 /* streams alone in a channel, one at a time */

static void
put(char *s, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(s + *len, LONG_CAP - *len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < LONG_CAP - *len)
        *len += (size_t)n;
}

/* About 12,000 bytes (~3,000 tokens) of markdown-ish text: headings,
 * paragraphs, bullet and numbered lists, a fenced code block, UTF-8. */
static char *
long_text(void)
{
    static const char *const words[] = {
        "the",   "loop",   "runs",    "every",   "callback", "on",
        "one",   "thread", "so",      "state",   "needs",    "no",
        "locks", "and",    "each",    "request", "keeps",    "its",
        "own",   "buffer", "until",   "a",       "peer",     "answers",
        "café",  "naïve",  "résumé",  "—",       "bounded",  "parser",
        "edits", "pace",   "windows", "bucket",  "retries",  "after"};
    size_t nw = sizeof(words) / sizeof(words[0]), len = 0;
    unsigned x = 12345;
    char *s = malloc(LONG_CAP);

    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (int sec = 1; len < LONG_CAP - 900; sec++) {
        put(s, &len, "## %d. Notes on the event loop\n\n", sec);
        for (int w = 0; w < 60; w++) {
            x = x * 1103515245u + 12345u;
            put(s, &len, "%s%s", words[(x >> 16) % nw],
                w == 59        ? ".\n\n"
                : w % 11 == 10 ? ". "
                               : " ");
        }
        if (sec == 3) {
            put(s, &len, "```c\n");
            for (int i = 0; i < 8; i++)
                put(s, &len,
                    "static int\nstep_%d(int x)\n{\n    return x * %d;"
                    "\n}\n",
                    i, i + 2);
            put(s, &len, "```\n\n");
        } else if (sec % 3 == 1) {
            for (int i = 1; i <= 5; i++)
                put(s, &len, "- item %d: %s %s\n", i, words[(sec + i) % nw],
                    words[(sec * i) % nw]);
            put(s, &len, "\n");
        } else {
            for (int i = 1; i <= 4; i++)
                put(s, &len, "%d. step %d — %s\n", i, i, words[(sec + i) % nw]);
            put(s, &len, "\n");
        }
    }
    return s;
}

/* A question from user `author` in channel ch; its id to id. */
static void
ask_in(struct fx *f, const char *ch, const char *author, const char *name,
       const char *tag, char *id, size_t cap)
{
    char text[96];
    struct discord_fake_msg m = {ch, "9", author, name, text, NULL, 0, 0};

    snprintf(text, sizeof(text), "<@" DISCORD_FAKE_BOT_ID "> %s please", tag);
    id[0] = '\0';
    discord_fake_message(f->df, &m, id, cap);
}

/* The bot's messages in ch that reply to qid, in order (up to max kept);
 * how many there are. */
static size_t
replies(struct fx *f, const char *ch, const char *qid,
        struct discord_fake_sent *out, size_t max)
{
    struct discord_fake_sent m;
    size_t n = 0;

    for (size_t i = 0; discord_fake_sent_get(f->df, ch, i, &m) == 0; i++)
        if (strcmp(m.reply_to, qid) == 0) {
            if (n < max)
                out[n] = m;
            n++;
        }
    return n;
}

/* The messages show text cut at Discord's limit part by part, none
 * deleted, the 👍/👎 on the last only. */
static void
check_parts(const char *what, const struct discord_fake_sent *m, size_t n,
            const char *text)
{
    size_t len = strlen(text), at = 0, to;
    size_t want = stream_split_count(text, len, 2000);

    T_OKF(n == want, "%s: %zu messages for %zu parts", what, n, want);
    for (size_t k = 0; k < n && k < want && k < PARTS_MAX; k++, at = to) {
        int last = k + 1 == n;

        to = stream_split_next(text, len, at, 2000);
        T_OKF(strlen(m[k].content) == to - at &&
                  memcmp(m[k].content, text + at, to - at) == 0,
              "%s: part %zu shows its %zu bytes (%zu shown)", what, k, to - at,
              strlen(m[k].content));
        T_OKF(!m[k].deleted, "%s: part %zu deleted", what, k);
        T_OKF(m[k].up == last && m[k].down == last,
              "%s: part %zu of %zu has %d 👍 %d 👎", what, k, n, m[k].up,
              m[k].down);
    }
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Edits of channel ch: the most in one of Discord's windows, over the
 * channel (its messages share the edit bucket) and per message. */
static void
edit_windows(struct fx *f, const char *ch, size_t *chan, size_t *per_msg,
             size_t *total)
{
    struct discord_fake_sent m;
    int64_t *all = NULL, *grown;
    const int64_t *ts;
    size_t n = 0, nt, w;

    *per_msg = 0;
    for (size_t i = 0; discord_fake_sent_get(f->df, ch, i, &m) == 0; i++) {
        nt = discord_fake_edit_times(f->df, m.id, &ts);
        if ((w = max_in_windows(ts, nt, f->window)) > *per_msg)
            *per_msg = w;
        if (nt == 0 || (grown = realloc(all, (n + nt) * sizeof(*all))) == NULL)
            continue;
        all = grown;
        memcpy(all + n, ts, nt * sizeof(*ts));
        n += nt;
    }
    if (n > 0)
        qsort(all, n, sizeof(*all), cmp_i64);
    *chan = max_in_windows(all, n, f->window);
    *total = n;
    free(all);
}

static const struct ask_rec *
rec_of(const struct fx *f, const char *tag)
{
    for (int i = 0; i < f->nrecs; i++)
        if (strstr(f->recs[i].text, tag) != NULL)
            return &f->recs[i];
    return NULL;
}

/* Time to first visible text: from the partial that first held a
 * message's text (as it reached core) to the POST of that message at the
 * fake; first messages to first[], rollover ones to roll[]. */
static void
ttfv_add(const struct ask_rec *r, const struct discord_fake_sent *m, size_t n,
         int64_t *first, size_t *nfirst, int64_t *roll, size_t *nroll)
{
    size_t from = 0;

    for (size_t k = 0; r != NULL && k < n && k < PARTS_MAX; k++) {
        for (int i = 0; i < r->np && i < PARTIALS_MAX; i++)
            if (r->plen[i] > from) {
                if (k == 0)
                    first[(*nfirst)++] = m[k].t_ms - r->pt[i];
                else
                    roll[(*nroll)++] = m[k].t_ms - r->pt[i];
                break;
            }
        from += strlen(m[k].content);
    }
}

static void
print_ms(const char *what, int64_t *v, size_t n)
{
    if (n == 0)
        return;
    qsort(v, n, sizeof(*v), cmp_i64);
    printf("time to first visible text (%s): p50 %lld ms, p90 %lld ms, "
           "max %lld ms over %zu\n",
           what, (long long)v[n / 2], (long long)v[n * 9 / 10],
           (long long)v[n - 1], n);
}

static int
settled(struct fx *f, const void *arg)
{
    const uint64_t *want = arg; /* answers, reactions */
    struct core_stats cs;
    struct discord_fake_stats st;

    core_stats(f->core, &cs);
    discord_fake_stats(f->df, &st);
    return cs.answered >= want[0] && cs.inflight == 0 &&
           st.reactions >= want[1];
}

static int
long_partials(struct fx *f, const void *arg)
{
    return f->fa.partials >= *(const int *)arg;
}

static void
test_core_stream(void)
{
    struct fx f;
    char qlong[32], qretry[32], qplain[32], users[2][10][32], qsolo[SOLO][32];
    struct discord_fake_sent ls[PARTS_MAX], rs[PARTS_MAX], ps[PARTS_MAX], m;
    struct discord_fake_stats st;
    struct discord_status ds;
    struct core_stats cs;
    int64_t first[RECS_MAX], quiet[SOLO], roll[PARTS_MAX], roll2[PARTS_MAX];
    int64_t t0, el;
    size_t nl, nr, np, nfirst = 0, nquiet = 0, nroll = 0, nroll2 = 0;
    size_t chan, per_msg, nedits;
    uint64_t want[2] = {22, 44};
    int half = 75;
    char *text = long_text();
    int gap;

    if (text == NULL || fx_init(&f, 1) < 0) {
        T_OK(0);
        free(text);
        return;
    }
    /* Discord's buckets are 5 per 5 s, here 5 per window (1 s unless
     * DISCORD_TEST_BUCKET_MS says 5000); the edit interval scales with
     * them (1500 ms of 5 s), and so does the stream's pace */
    f.cfg->llm.stream_interval = 1500 * f.window / 5000;
    gap = (int)(30 * f.window / 1000);
    f.fa.fixed = text;
    f.fa.stream_chunks = 150;
    f.fa.stream_gap_ms = gap;
    f.fa_retry = f.fa;
    f.fa_retry.restart_after = 60; /* a retry at 40 %: ~4,800 bytes shown */
    f.fa_retry.stream_gap_ms = gap * 2 / 3;
    f.fa_users.stream_chunks = 3;
    f.fa_users.stream_gap_ms = 2 * gap;
    T_OK(run_until(&f, is_up, NULL, 5000));

    /* the long answer in 800 while ten users ask twice; the retry in 802 */
    t0 = fake_now_ms();
    ask_in(&f, "800", "7100", "asker", "long", qlong, sizeof(qlong));
    ask_in(&f, "802", "7101", "again", "retry", qretry, sizeof(qretry));
    ten_users(&f, 0, users[0]);
    T_OK(run_until(&f, long_partials, &half, 20000 + 10 * (int)f.window));
    ten_users(&f, 1, users[1]);
    T_OK(run_until(&f, settled, want, 60000 + 20 * (int)f.window));
    el = fake_now_ms() - t0;

    /* the same answer sent whole, into 801 */
    f.cfg->llm.stream = 0;
    ask_in(&f, "801", "7102", "whole", "plain", qplain, sizeof(qplain));
    want[0] = 23;
    want[1] = 46;
    T_OK(run_until(&f, settled, want, 20000 + 6 * (int)f.window));

    /* short streams one at a time in a quiet channel, for the time to
     * first visible text without other streams queued in the buckets */
    f.cfg->llm.stream = 1;
    for (int i = 0; i < SOLO; i++) {
        char tag[32];

        snprintf(tag, sizeof(tag), "solo%d", i);
        ask_in(&f, "803", "7103", "solo", tag, qsolo[i], sizeof(qsolo[i]));
        want[0]++;
        want[1] += 2;
        T_OK(run_until(&f, settled, want, 10000 + 4 * (int)f.window));
    }

    nl = replies(&f, "800", qlong, ls, PARTS_MAX);
    nr = replies(&f, "802", qretry, rs, PARTS_MAX);
    np = replies(&f, "801", qplain, ps, PARTS_MAX);
    check_parts("whole", ps, np, text);
    check_parts("streamed", ls, nl, text);
    check_parts("retried", rs, nr, text);
    /* streamed and retried show exactly what the whole answer shows */
    T_EQ_INT(nl, np);
    T_EQ_INT(nr, np);
    for (size_t k = 0; k < np && k < PARTS_MAX; k++) {
        if (k < nl)
            T_EQ_STR(ls[k].content, ps[k].content);
        if (k < nr)
            T_EQ_STR(rs[k].content, ps[k].content);
    }
    /* the retry: one answer, nothing posted twice or deleted */
    T_EQ_INT(discord_fake_sent_count(f.df, "802"), np);
    T_OKF(f.fa_retry.partials > 150, "%d partials (a restart)",
          f.fa_retry.partials);

    /* each of the twenty questions: answered once, 👍/👎 on it */
    for (int r = 0; r < 2; r++)
        for (int u = 0; u < 10; u++) {
            char tag[32];
            size_t n = replies(&f, "800", users[r][u], &m, 1);

            snprintf(tag, sizeof(tag), "q%d.%d", u, r);
            T_OKF(n == 1, "%s answered %zu times", tag, n);
            if (n == 1)
                T_OKF(strstr(m.content, tag) != NULL && !m.deleted &&
                          m.up == 1 && m.down == 1,
                      "%s: \"%s\" deleted %d 👍 %d 👎 %d", tag, m.content,
                      m.deleted, m.up, m.down);
        }
    /* 20 answers + the long one's parts, nothing else */
    T_EQ_INT(discord_fake_sent_count(f.df, "800"), 20 + np);

    /* under the buckets: ≤ 5 edits per window per channel (the edit
     * bucket is the channel's), so per message; not one 429 anywhere */
    edit_windows(&f, "800", &chan, &per_msg, &nedits);
    T_OKF(chan <= 5, "800: %zu edits in a window", chan);
    T_OKF(per_msg <= 5, "800: %zu edits of a message in a window", per_msg);
    printf("800: %zu edits, at most %zu per %lld ms window in the channel, "
           "%zu of one message\n",
           nedits, chan, (long long)f.window, per_msg);
    edit_windows(&f, "802", &chan, &per_msg, &nedits);
    T_OKF(chan <= 5, "802: %zu edits in a window", chan);
    printf("802: %zu edits, at most %zu per window\n", nedits, chan);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.r429, 0);
    T_EQ_INT(st.r429_global, 0);
    T_EQ_INT(st.caused_429, 0);
    T_EQ_INT(st.deletes, 0);
    T_EQ_INT(st.unknown_message, 0);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.retries_429, 0);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.answered, 23 + SOLO);
    T_EQ_INT(cs.streamed, 22 + SOLO);

    /* measured, not asserted */
    ttfv_add(rec_of(&f, "long"), ls, nl, first, &nfirst, roll, &nroll);
    ttfv_add(rec_of(&f, "retry"), rs, nr, first, &nfirst, roll2, &nroll2);
    for (int r = 0; r < 2; r++)
        for (int u = 0; u < 10; u++) {
            char tag[32];

            snprintf(tag, sizeof(tag), "q%d.%d", u, r);
            if (replies(&f, "800", users[r][u], &m, 1) == 1)
                ttfv_add(rec_of(&f, tag), &m, 1, first, &nfirst, roll, &nroll);
        }
    for (int i = 0; i < SOLO; i++) {
        char tag[32];

        snprintf(tag, sizeof(tag), "solo%d", i);
        if (replies(&f, "803", qsolo[i], &m, 1) == 1)
            ttfv_add(rec_of(&f, tag), &m, 1, quiet, &nquiet, roll, &nroll);
    }
    printf("streamed %zu bytes (%zu parts) in 800 and, retried, in 802 in "
           "%lld ms, reactions included (%d + %d partials), alongside 20 "
           "streamed answers; "
           "429s: %llu\n",
           strlen(text), np, (long long)el, f.fa.partials, f.fa_retry.partials,
           (unsigned long long)st.r429);
    print_ms("first message, 22 streams at once", first, nfirst);
    print_ms("first message, one stream at a time", quiet, nquiet);
    print_ms("rollover message, busy channel", roll, nroll);
    print_ms("rollover message, the retry's own channel", roll2, nroll2);
    free(text);
    fx_release(&f);
}

int
main(void)
{
    test_outcomes();
    test_stream_busy_channel();
    test_core_stream();
    return t_done();
}
