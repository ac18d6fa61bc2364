/* test_discord_stream: streamed answers on Discord — ACTION_EDIT and
 * ACTION_DELETE through the connector against the fake (enforced buckets),
 * driven as core drives a stream: one action in flight, the newest text
 * next, the final edit with the 👍/👎.  Meanwhile ten other users are
 * answered by the real core in the same channel. */
#include "connectors/discord.h"
#include "core/core.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/discord_fake.h"
#include "tests/t.h"

#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#define STREAM_ID (1ULL << 63) /* send ids core does not know */
#define RESULTS_MAX 64

/* ---- the fixture: fake, real core with the fake asker, connector ---- */

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
    char text[2048];
    struct config *cfg = NULL;
    struct config_diag d;

    memset(&d, 0, sizeof(d));
    snprintf(text, sizeof(text),
             "[bot]\nstate_dir = /tmp\n"
             "[discord]\nenabled = true\ntoken = %s\napi_base = %s\n"
             "[limits]\nuser = 1000/60s\nchat = 1000/60s\n"
             "[llm]\nmodels = main\nmax_output_tokens = 100\n"
             "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"
             "api_key = sk-test\nname = m\n",
             DISCORD_FAKE_TOKEN, base);
    if (config_parse(text, strlen(text), "test.conf", &cfg, &d) < 0 ||
        config_resolve_secrets(cfg, &d) < 0)
        for (size_t i = 0; i < d.nerrors; i++)
            fprintf(stderr, "config: %s\n", d.errors[i]);
    config_diag_release(&d);
    return cfg;
}

static int
fx_init(struct fx *f)
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
    asker = core_fixture_asker_ops(&f->fa);
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

    if (fx_init(&f) < 0) {
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

struct stream {
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
    struct stream *s = f->stream;
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
    struct stream *s = f->stream;

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
    struct stream *s = f->stream;
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
    const struct stream *s = f->stream;

    (void)arg;
    return s->done || s->fails > 0;
}

static int
chunks_at(struct fx *f, const void *arg)
{
    const struct stream *s = f->stream;

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

static void
ten_users(struct fx *f, int round)
{
    char text[96], author[16], name[16];

    for (int u = 0; u < 10; u++) {
        struct discord_fake_msg m = {"800", "9",  author, name,
                                     text,  NULL, 0,      0};

        snprintf(author, sizeof(author), "70%02d", u);
        snprintf(name, sizeof(name), "user%d", u);
        snprintf(text, sizeof(text), "<@" DISCORD_FAKE_BOT_ID "> q%d.%d", u,
                 round);
        discord_fake_message(f->df, &m, NULL, 0);
    }
}

static void
test_stream_busy_channel(void)
{
    struct fx f;
    struct stream s;
    struct discord_fake_sent m;
    struct discord_fake_stats st;
    struct core_stats cs;
    size_t want = 22, per_window, per_minute, answered = 0;
    int half = CHUNKS / 2;
    int64_t t0, el;
    const int64_t *ts;
    size_t nedits;

    if (fx_init(&f) < 0) {
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
    ten_users(&f, 0);
    T_OK(run_until(&f, chunks_at, &half, 20000 + 4 * (int)f.window));
    ten_users(&f, 1);
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

int
main(void)
{
    test_outcomes();
    test_stream_busy_channel();
    return t_done();
}
