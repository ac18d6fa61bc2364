/* test_telegram_stream_core: streamed answers through the REAL core and the
 * Telegram connector against the Bot API fake (flood limits enforced):
 * a 3,000-token answer into a busy group, the same answer unstreamed, a
 * retry midway, typing, and the time to the first visible text. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "connectors/telegram.h"
#include "core/core.h"
#include "core/http.h"
#include "core/log.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/telegram_fake.h"
#include "tests/t.h"

/*
 * Telegram's limits are 1 message/s per chat, 20 per 60 s per group, 30/s
 * overall.  To run in seconds the group window W is 10 s by default (×6
 * shorter; TELEGRAM_TEST_WINDOW_MS changes it) and everything scales with
 * it, on both sides (the fake enforces what the connector is told):
 * per chat one per W/40 (250 ms), [llm] stream_interval 1500 ms × W/60 s
 * (250 ms), the model's partials W/200 apart (50 ms: 120 partials of a
 * 12 kB answer in 6 s, the pace of a fast model), the other users' questions
 * W/20 apart.  The global limit stays 30/s.
 */

#define GROUP_A -4242001LL /* the long stream and ten users */
#define GROUP_B -4242002LL /* the same answer, not streamed */
#define GROUP_C -4242003LL /* a retry midway */
#define PRIV0 7100LL       /* short streams, for the time to first text */
#define NPRIV 6
#define USERS 10
#define LONG_AFTER 2 /* the long question comes after the third user */
#define SLOTS_MAX 32
#define PARTS_MAX 8

/* One ask of the long or mid answer, watched on its way to core. */
struct slot {
    struct fx *f;
    void (*partial)(void *arg, const char *text, size_t len);
    core_ask_done_fn done;
    void *arg;
    char q[64];
    int64_t first_ms, done_ms; /* fake_now_ms() */
    int partials;
};

struct fx {
    uv_loop_t loop;
    char dir[64], path[128];
    struct store *st;
    struct config *cfg;
    struct core_fixture_asker fa_short, fa_long, fa_mid;
    struct core *core;
    struct http *http;
    struct telegram *tg;
    struct telegram_fake *tf;
    int64_t window; /* W */
    struct slot slots[SLOTS_MAX];
    int nslots;
    /* the ten users of the group, injected by a timer */
    uv_timer_t users;
    int nusers;
    char *text; /* the long answer */
};

/* ---- the asker: routes LONG / MID / the rest to three fixture askers ---- */

static void
slot_partial(void *arg, const char *text, size_t len)
{
    struct slot *s = arg;

    if (s->partials++ == 0)
        s->first_ms = fake_now_ms();
    s->partial(s->arg, text, len);
}

static void
slot_done(void *arg, const struct core_answer *a)
{
    struct slot *s = arg;

    s->done_ms = fake_now_ms();
    s->done(s->arg, a);
}

static int
route_ask(void *ctx, const struct core_prompt *cp, core_ask_done_fn done,
          void *arg, uint64_t *handle)
{
    struct fx *f = ctx;
    const char *q = cp->msgs[cp->n - 1].text;
    struct core_fixture_asker *fa = &f->fa_short;
    struct core_asker a;
    struct core_prompt p = *cp;
    struct slot *s;
    uint64_t h;
    int which = 0;

    if (strstr(q, "LONG") != NULL) {
        fa = &f->fa_long;
        which = 1;
    } else if (strstr(q, "MID") != NULL) {
        fa = &f->fa_mid;
        which = 2;
    }
    a = core_fixture_asker_ops(fa);
    if (which == 0) {
        if (a.ask(a.ctx, cp, done, arg, &h) < 0)
            return -1;
        *handle = h * 3;
        return 0;
    }
    if (f->nslots == SLOTS_MAX)
        return -1;
    s = &f->slots[f->nslots++];
    memset(s, 0, sizeof(*s));
    s->f = f;
    s->partial = cp->partial;
    s->done = done;
    s->arg = arg;
    snprintf(s->q, sizeof(s->q), "%s", q);
    p.partial = cp->partial != NULL ? slot_partial : NULL;
    if (a.ask(a.ctx, &p, slot_done, s, &h) < 0)
        return -1;
    *handle = h * 3 + (uint64_t)which;
    return 0;
}

static void
route_cancel(void *ctx, uint64_t handle)
{
    struct fx *f = ctx;
    struct core_fixture_asker *fa[3] = {&f->fa_short, &f->fa_long, &f->fa_mid};
    struct core_asker a = core_fixture_asker_ops(fa[handle % 3]);

    a.cancel(a.ctx, handle / 3);
}

static struct slot *
slot_of(struct fx *f, const char *q)
{
    for (int i = f->nslots - 1; i >= 0; i--)
        if (strstr(f->slots[i].q, q) != NULL)
            return &f->slots[i];
    return NULL;
}

/* ---- a realistic long answer: prose, a code block, lists (~12 kB) ---- */

static void
put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < *cap - *len)
            break;
        *cap = (*cap + (size_t)n) * 2;
        if ((*buf = realloc(*buf, *cap)) == NULL)
            abort();
    }
    *len += (size_t)n;
}

/*
 * The code block runs from before the second half of the first 4096-byte
 * window to past its end without a blank line, so the first part is cut
 * inside it and the second part opens inside the fence.
 */
static char *
long_answer(size_t want)
{
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    int i = 0;

    if (b == NULL)
        abort();
    b[0] = '\0';
    put(&b, &len, &cap,
        "# Moving the build to Meson\n\n"
        "Short answer: yes, it is worth it — but do it in **three steps** "
        "so the old `Makefile` keeps working until the new build is "
        "trusted. The main wins are faster incremental builds, proper "
        "dependency tracking (headers included), and a single place to "
        "say which libraries you need (`libuv`, `libcurl`, `sqlite3`).\n\n"
        "Before you start, check what the current build really does: run "
        "`make -n all > plan.txt` and read it. Half of the surprises "
        "come from flags added years ago for a compiler nobody uses now, "
        "and from targets that only work when `a < b && c > d` happens "
        "to hold in the environment.\n\n"
        "Here is a first `meson.build` for the daemon, its tools and the "
        "tests:\n\n```python\n"
        "project('parley', 'c', version: '0.9.0',\n"
        "        default_options: ['c_std=c11', 'warning_level=3'])\n"
        "uv_dep = dependency('libuv', version: '>= 1.40')\n"
        "curl_dep = dependency('libcurl')\n"
        "sqlite_dep = dependency('sqlite3')\n");
    while (len < 4700)
        put(&b, &len, &cap,
            "lib_%02d = static_library('mod%02d', files('src/mod%02d.c'),\n"
            "    dependencies: [uv_dep, curl_dep], install: false)  # %d\n",
            i, i, i, i * 7 % 13),
            i++;
    put(&b, &len, &cap,
        "executable('parleyd', 'bot/parleyd.c', link_with: [lib_00],\n"
        "    install: true)\n```\n\n"
        "## Steps\n\n");
    for (i = 1; i <= 12; i++)
        put(&b, &len, &cap,
            "%d. **Step %d:** move the `%s` targets, then run `meson test "
            "-C build` and compare the binaries with `cmp`; keep the old "
            "rule until both agree on *every* platform you ship.\n",
            i, i,
            i % 3 == 0   ? "tests"
            : i % 3 == 1 ? "library"
                         : "tool");
    put(&b, &len, &cap, "\n## Things that tend to go wrong\n\n");
    for (i = 0; len < want - 400; i++) {
        if (i % 4 == 3)
            put(&b, &len, &cap,
                "\nA longer note on pitfall %d: generated headers must be "
                "listed as sources of every target that includes them, or "
                "a clean build works while an incremental one uses a stale "
                "copy — the classic \"works on CI, fails on my laptop\". "
                "See [the reference](https://mesonbuild.com/Reference-"
                "manual.html) for `custom_target`.\n\n",
                i);
        else
            put(&b, &len, &cap,
                "- *Pitfall %d:* options like `-Db_sanitize=address` are "
                "per build directory, so keep one directory per "
                "configuration (`build`, `build-san`, `build-fuzz`).\n",
                i);
    }
    put(&b, &len, &cap,
        "\nThat is all there is to it. Once every target has moved, delete "
        "the `Makefile`, update the CI to call `meson setup` and `meson "
        "compile`, and tell the team — café, not ceremony. ✓");
    return b;
}

/* ---- the fixture ---- */

static struct config *
make_config(struct fx *f)
{
    struct config *cfg = NULL;
    long long w = (long long)f->window;

    cfg = core_fixture_config(
        "[bot]\nstate_dir = /tmp\n"
        "[telegram]\nenabled = true\ntoken = %s\napi_base = %s\n"
        "poll_timeout = 1s\nchat_send_rate = 1/%lldms\n"
        "group_send_rate = 20/%lldms\n"
        "[limits]\nuser = 1000/60s\nchat = 1000/60s\n"
        "[llm]\nmodels = main\nmax_output_tokens = 4096\n"
        "history_tokens = 20000\nstream_interval = %lldms\n" CORE_FIXTURE_MODEL,
        TELEGRAM_FAKE_TOKEN, telegram_fake_base(f->tf), w / 40, w,
        w * 1500 / 60000);
    return cfg;
}

static void
on_fatal(void *arg, const char *why)
{
    (void)arg;
    fprintf(stderr, "fatal: %s\n", why);
}

static int
fx_init(struct fx *f)
{
    const char *env = getenv("TELEGRAM_TEST_WINDOW_MS");
    struct core_asker asker = {f, route_ask, route_cancel};
    char err[256];

    memset(f, 0, sizeof(*f));
    f->window = env != NULL ? atoll(env) : 10000;
    if (f->window < 2000)
        f->window = 10000;
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_tg_stream_core-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/parley.db", f->dir);
    if ((f->tf = telegram_fake_new(&f->loop, 0, NULL)) == NULL)
        return -1;
    telegram_fake_set_hold_max(f->tf, 300);
    telegram_fake_set_limits(f->tf, 3, f->window / 40, 20, f->window, 30, 1000);
    if ((f->cfg = make_config(f)) == NULL)
        return -1;
    if ((f->st = store_open(f->path, err, sizeof(err))) == NULL) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }
    store_attach_loop(f->st, &f->loop);
    f->text = long_answer(12000);
    f->fa_short.loop = f->fa_long.loop = f->fa_mid.loop = &f->loop;
    f->fa_short.delay_ms = 50;
    f->fa_short.stream_chunks = 2; /* streamed too: a post, an edit */
    f->fa_short.stream_gap_ms = (int)(f->window / 100);
    f->fa_short.tokens_in = f->fa_long.tokens_in = f->fa_mid.tokens_in = 10;
    f->fa_long.fixed = f->text;
    f->fa_long.delay_ms = 200;
    f->fa_long.stream_chunks = 120;
    f->fa_long.stream_gap_ms = (int)(f->window / 200);
    f->fa_long.extra_tokens = 3000;
    uv_timer_init(&f->loop, &f->users);
    f->users.data = f;
    if ((f->core = core_new(&f->loop, f->st, f->cfg, &asker)) == NULL ||
        (f->http = http_new(&f->loop)) == NULL)
        return -1;
    f->tg =
        telegram_new(&f->loop, f->http, f->core, f->st, f->cfg, on_fatal, f);
    if (f->tg == NULL)
        return -1;
    return telegram_start(f->tg);
}

static void
fx_release(struct fx *f)
{
    char cmd[128];

    telegram_free(f->tg);
    core_free(f->core);
    core_fixture_asker_drop(&f->fa_short);
    core_fixture_asker_drop(&f->fa_long);
    core_fixture_asker_drop(&f->fa_mid);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    http_free(f->http);
    telegram_fake_free(f->tf);
    store_close(f->st);
    uv_close((uv_handle_t *)&f->users, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&f->loop), 0);
    config_free(f->cfg);
    free(f->text);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
}

/* ---- running ---- */

struct until {
    int (*pred)(struct fx *, const void *);
    struct fx *f;
    const void *arg;
};

static int
until_holds(void *arg)
{
    struct until *u = arg;

    return u->pred(u->f, u->arg);
}

static int
run_until(struct fx *f, int (*pred)(struct fx *, const void *), const void *arg,
          int max_ms)
{
    struct until u = {pred, f, arg};

    if (pred(f, arg))
        return 1;
    return core_fixture_loop_until(&f->loop, until_holds, &u, 2, max_ms);
}

static int
is_up(struct fx *f, const void *arg)
{
    struct telegram_status ts;

    (void)arg;
    telegram_status(f->tg, &ts);
    return ts.up;
}

/* Every job accepted so far is finished and nothing waits to be sent. */
static int
settled(struct fx *f, const void *arg)
{
    const uint64_t *accepted = arg;
    struct core_stats cs;
    struct telegram_status ts;

    core_stats(f->core, &cs);
    telegram_status(f->tg, &ts);
    return cs.accepted >= *accepted && cs.inflight == 0 && ts.queued == 0 &&
           f->nusers >= USERS;
}

static void
say(struct fx *f, int64_t chat, int64_t from, const char *text)
{
    struct telegram_fake_msg m;

    memset(&m, 0, sizeof(m));
    m.chat = chat;
    m.type = chat < 0 ? "group" : "private";
    m.from = from;
    m.text = text;
    telegram_fake_message(f->tf, &m, NULL);
}

static void
users_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    char q[64];

    snprintf(q, sizeof(q), "@%s question %d", TELEGRAM_FAKE_BOT_NAME,
             f->nusers);
    say(f, GROUP_A, 6000 + f->nusers, q);
    if (f->nusers == LONG_AFTER)
        say(f, GROUP_A, 5000, "@" TELEGRAM_FAKE_BOT_NAME " LONG answer please");
    if (++f->nusers >= USERS)
        uv_timer_stop(t);
}

static uint64_t
accepted(struct fx *f)
{
    struct core_stats cs;

    core_stats(f->core, &cs);
    return cs.accepted;
}

/* ---- what the fake shows ---- */

struct shown {
    int n;
    char *text[PARTS_MAX], *html[PARTS_MAX];
    int keyboard[PARTS_MAX], deleted[PARTS_MAX];
    int64_t id[PARTS_MAX], edits[PARTS_MAX], t_ms[PARTS_MAX];
    int total; /* every message of the chat, "answer to:" ones included */
};

/* The messages of chat that are not short answers, in order. */
static void
shown_get(struct fx *f, int64_t chat, struct shown *sh)
{
    const struct telegram_fake_sent *m;
    size_t n = telegram_fake_sent(f->tf, chat, &m);

    memset(sh, 0, sizeof(*sh));
    sh->total = (int)n;
    for (size_t i = 0; i < n && sh->n < PARTS_MAX; i++) {
        if (strncmp(m[i].text, "answer to: ", 11) == 0)
            continue;
        sh->text[sh->n] = strdup(m[i].text);
        sh->html[sh->n] = m[i].html ? strdup(m[i].html) : NULL;
        sh->keyboard[sh->n] = m[i].keyboard;
        sh->deleted[sh->n] = m[i].deleted;
        sh->id[sh->n] = m[i].message_id;
        sh->edits[sh->n] = m[i].edits;
        sh->t_ms[sh->n] = m[i].t_ms;
        sh->n++;
    }
}

static void
shown_free(struct shown *sh)
{
    for (int i = 0; i < sh->n; i++) {
        free(sh->text[i]);
        free(sh->html[i]);
    }
}

/* Streamed (got) against unstreamed (want), part by part. */
static void
shown_compare(const char *what, const struct shown *got,
              const struct shown *want)
{
    T_OKF(got->n == want->n, "%s: %d parts, want %d", what, got->n, want->n);
    for (int k = 0; k < got->n && k < want->n; k++) {
        T_OKF(strcmp(got->text[k], want->text[k]) == 0,
              "%s part %d: text differs (%zu bytes, want %zu)", what, k,
              strlen(got->text[k]), strlen(want->text[k]));
        T_OKF(got->html[k] == NULL
                  ? want->html[k] == NULL
                  : want->html[k] != NULL &&
                        strcmp(got->html[k], want->html[k]) == 0,
              "%s part %d: html differs", what, k);
        T_OKF(got->keyboard[k] == (k == got->n - 1), "%s part %d: keyboard %d",
              what, k, got->keyboard[k]);
        T_OKF(!got->deleted[k], "%s part %d deleted", what, k);
    }
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* ---- the scenarios ---- */

/* The long answer with stream = false: what streaming must end up as. */
static void
plain_answer(struct fx *f, struct shown *want)
{
    uint64_t acc = accepted(f) + 1;

    f->nusers = USERS; /* none in this group */
    f->cfg->llm.stream = 0;
    say(f, GROUP_B, 5001, "@" TELEGRAM_FAKE_BOT_NAME " LONG answer please");
    T_OK(run_until(f, settled, &acc, 15000 + 2 * (int)f->window));
    f->cfg->llm.stream = 1;
    shown_get(f, GROUP_B, want);
    T_EQ_INT(want->n, 3);
    T_EQ_INT(want->total, 3);
    for (int k = 0; k < want->n; k++) {
        T_EQ_INT(want->edits[k], 0); /* not streamed */
        T_EQ_INT(want->keyboard[k], k == want->n - 1);
    }
    /* the second part opens inside the code block: shown as code */
    T_OK(want->n > 1 && want->html[1] != NULL &&
         strncmp(want->html[1], "<pre><code class=\"language-python\">", 35) ==
             0);
}

static int64_t ttfv[SLOTS_MAX];
static int nttfv;

/* Time from the first partial to the first message of chat. */
static void
note_ttfv(struct fx *f, const char *what, int64_t chat, const char *q)
{
    const struct telegram_fake_sent *m;
    struct slot *s = slot_of(f, q);
    size_t n = telegram_fake_sent(f->tf, chat, &m);

    for (size_t i = 0; i < n; i++)
        if (strncmp(m[i].text, "answer to: ", 11) != 0) {
            if (s == NULL || s->first_ms == 0)
                break;
            fprintf(stderr, "time to first visible text (%s): %" PRId64 " ms\n",
                    what, m[i].t_ms - s->first_ms);
            ttfv[nttfv++] = m[i].t_ms - s->first_ms;
            return;
        }
    fprintf(stderr, "time to first visible text (%s): none\n", what);
}

/*
 * The 3,000-token answer streamed into a group while ten other users ask
 * there: zero 429s, the final texts those of the unstreamed answer, the
 * group's budget kept, the buttons on the last part only, every other
 * answer delivered once.
 */
static void
stream_group(struct fx *f, const struct shown *want)
{
    struct telegram_fake_stats st0, st;
    struct telegram_status ts0, ts;
    struct core_stats cs0, cs;
    struct shown got;
    const struct telegram_fake_sent *m;
    struct slot *s;
    uint64_t acc = accepted(f) + 1 + USERS;
    int64_t t0 = fake_now_ms(), w = f->window;
    size_t n, ans[USERS] = {0};
    int others = 0;

    telegram_fake_stats(f->tf, &st0);
    telegram_status(f->tg, &ts0);
    core_stats(f->core, &cs0);
    f->nusers = 0;
    uv_timer_start(&f->users, users_cb, 0, (uint64_t)w / 20);
    T_OK(run_until(f, settled, &acc, 30000 + 4 * (int)w));
    fprintf(stderr, "group stream: settled after %" PRId64 " ms\n",
            fake_now_ms() - t0);

    s = slot_of(f, "LONG");
    T_OK(s != NULL && s->partials >= 100);
    if (s != NULL)
        fprintf(stderr,
                "group stream: %d partials over %" PRId64 " ms, answer "
                "%zu bytes\n",
                s->partials, s->done_ms - s->first_ms, strlen(f->text));

    /* zero 429s */
    telegram_fake_stats(f->tf, &st);
    telegram_status(f->tg, &ts);
    T_EQ_INT(telegram_fake_429s(f->tf, GROUP_A), 0);
    T_EQ_INT(st.err429 - st0.err429, 0);
    T_EQ_INT(ts.retries_429 - ts0.retries_429, 0);
    /* and nothing refused: no 400, no plain-text fallback, no failure */
    T_EQ_INT(st.err400 - st0.err400, 0);
    T_EQ_INT(ts.fallbacks_plain - ts0.fallbacks_plain, 0);
    T_EQ_INT(ts.send_errors - ts0.send_errors, 0);

    /* the final texts: those of the unstreamed answer, part by part */
    shown_get(f, GROUP_A, &got);
    shown_compare("group", &got, want);
    /* it was streamed: its first part was on screen before the answer
     * was complete, and was edited after */
    T_OKF(s != NULL && got.n > 0 &&
                  got.t_ms[0]<s->done_ms,
                              "first part at %" PRId64
                              ", answer done at %" PRId64,
                              got.n> 0
              ? got.t_ms[0] - t0
              : -1,
          s ? s->done_ms - t0 : -1);
    T_OK(got.n > 0 && got.edits[0] > 0);
    core_stats(f->core, &cs);
    T_EQ_INT(cs.streamed - cs0.streamed, 1 + USERS);

    /* the budget: edits of one message and all requests per group window
     * within the 20 enforced; one per chat interval (W/40, at most one in
     * 60 % of it, room for the requests' varying latency) */
    for (int k = 0; k < got.n; k++) {
        size_t e = telegram_fake_edits_max(f->tf, GROUP_A, got.id[k], w);

        T_OKF(e <= 20, "part %d: %zu edits in one window", k, e);
        fprintf(stderr,
                "group stream part %d: message %" PRId64 ", %" PRId64
                " edits, at most %zu in any %" PRId64 " ms window\n",
                k, got.id[k], got.edits[k], e, w);
    }
    n = telegram_fake_ops_max(f->tf, GROUP_A, w - TELEGRAM_FAKE_SLACK_MS);
    T_OKF(n <= 20, "%zu sends+edits+deletes in one group window", n);
    fprintf(stderr,
            "group: at most %zu sends+edits in any %" PRId64
            " ms window (limit 20)\n",
            n, w);
    n = telegram_fake_ops_max(f->tf, GROUP_A, w / 40 * 6 / 10);
    T_OKF(n <= 1, "%zu requests in %" PRId64 " ms", n, w / 40 * 6 / 10);

    /* the ten other answers: each once, with its buttons */
    n = telegram_fake_sent(f->tf, GROUP_A, &m);
    for (size_t i = 0; i < n; i++) {
        const char *p = strstr(m[i].text, "question ");

        if (strncmp(m[i].text, "answer to: ", 11) != 0)
            continue;
        others++;
        /* streamed (half, then all), whole at the end, with its buttons */
        T_OKF(m[i].keyboard && !m[i].deleted && m[i].edits >= 1,
              "answer \"%s\": keyboard %d, deleted %d, %" PRId64 " edits",
              m[i].text, m[i].keyboard, m[i].deleted, m[i].edits);
        if (p != NULL && strlen(p) == 10 && atoi(p + 9) < USERS)
            ans[atoi(p + 9)]++;
    }
    T_EQ_INT(others, USERS);
    for (int i = 0; i < USERS; i++)
        T_OKF(ans[i] == 1, "question %d answered %zu times", i, ans[i]);
    T_EQ_INT(got.total, got.n + USERS);
    fprintf(stderr,
            "group: %d messages (%d parts + %d answers), %" PRIu64
            " edits, %" PRIu64 " deletes, 0 x 429\n",
            got.total, got.n, others, ts.edits - ts0.edits,
            ts.deletes - ts0.deletes);
    note_ttfv(f, "busy group", GROUP_A, "LONG");
    shown_free(&got);
}

/*
 * A retry midway (the text starts again after half the partials): one
 * complete answer, the same messages edited, none posted twice.  No one
 * else talks in that group, so its typing is the stream's: it stops at
 * the first text.
 */
static void
stream_retry(struct fx *f, const struct shown *want)
{
    struct shown got;
    struct slot *s;
    uint64_t acc = accepted(f) + 1;
    int64_t t0 = fake_now_ms(), last_typing;
    struct telegram_fake_stats st0, st;

    telegram_fake_stats(f->tf, &st0);
    f->fa_long.restart_after = 60;
    f->nusers = USERS;
    say(f, GROUP_C, 5002, "@" TELEGRAM_FAKE_BOT_NAME " LONG again please");
    T_OK(run_until(f, settled, &acc, 30000 + 4 * (int)f->window));
    f->fa_long.restart_after = 0;
    telegram_fake_stats(f->tf, &st);
    T_EQ_INT(st.err429 - st0.err429, 0);
    T_EQ_INT(st.err400 - st0.err400, 0);
    s = slot_of(f, "LONG again");
    T_OK(telegram_fake_ops_max(f->tf, GROUP_C,
                               f->window - TELEGRAM_FAKE_SLACK_MS) <= 20);
    T_OK(s != NULL && s->partials == 180);
    shown_get(f, GROUP_C, &got);
    shown_compare("retry", &got, want);
    T_OKF(got.total == want->n, "retry: %d messages in the group, want %d",
          got.total, want->n);
    /* typing: there, and not after the first text */
    last_typing = telegram_fake_action_ms(f->tf, GROUP_C);
    T_OK(telegram_fake_actions(f->tf, GROUP_C) >= 1);
    T_OKF(got.n > 0 && last_typing <= got.t_ms[0],
          "typing %" PRId64 " ms after the first text",
          got.n > 0 ? last_typing - got.t_ms[0] : 0);
    fprintf(stderr,
            "retry: %d messages, %" PRId64 "+%" PRId64 "+%" PRId64
            " edits; %" PRIu64 " typing, the last %" PRId64
            " ms before the first text; the stream went on %" PRId64
            " ms after it; %" PRId64 " ms in all\n",
            got.total, got.n > 0 ? got.edits[0] : 0,
            got.n > 1 ? got.edits[1] : 0, got.n > 2 ? got.edits[2] : 0,
            telegram_fake_actions(f->tf, GROUP_C),
            got.n > 0 ? got.t_ms[0] - last_typing : 0,
            s != NULL && got.n > 0 ? s->done_ms - got.t_ms[0] : 0,
            fake_now_ms() - t0);
    note_ttfv(f, "retry", GROUP_C, "LONG again");
    shown_free(&got);
}

/* Short streams in private chats, for the time to the first text. */
static void
stream_private(struct fx *f)
{
    uint64_t acc = accepted(f) + NPRIV;
    char q[32], what[32];
    char *mid = strndup(f->text, 1500);

    f->fa_mid.fixed = mid;
    f->fa_mid.delay_ms = 150;
    f->fa_mid.stream_chunks = 12;
    f->fa_mid.stream_gap_ms = (int)(f->window / 200);
    for (int i = 0; i < NPRIV; i++) {
        snprintf(q, sizeof(q), "MID %d", i);
        say(f, PRIV0 + i, PRIV0 + i, q);
    }
    T_OK(run_until(f, settled, &acc, 20000));
    for (int i = 0; i < NPRIV; i++) {
        const struct telegram_fake_sent *m;
        size_t n = telegram_fake_sent(f->tf, PRIV0 + i, &m);

        T_OKF(n == 1 && strlen(m[0].text) > 1000 && m[0].keyboard,
              "private %d: %zu messages", i, n);
        T_OK(telegram_fake_action_ms(f->tf, PRIV0 + i) <=
             (n > 0 ? m[0].t_ms : 0));
        snprintf(q, sizeof(q), "MID %d", i);
        snprintf(what, sizeof(what), "private %d", i);
        note_ttfv(f, what, PRIV0 + i, q);
    }
    free(mid);
    f->fa_mid.fixed = NULL;
}

int
main(void)
{
    struct fx f;
    struct shown want;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init("test_telegram_stream_core");
    signal(SIGPIPE, SIG_IGN);
    if (fx_init(&f) < 0) {
        T_OK(0);
        return t_done();
    }
    T_OK(run_until(&f, is_up, NULL, 10000));
    plain_answer(&f, &want);
    stream_group(&f, &want);
    stream_retry(&f, &want);
    stream_private(&f);
    if (nttfv > 0) {
        qsort(ttfv, (size_t)nttfv, sizeof(ttfv[0]), cmp_i64);
        fprintf(stderr,
                "time to first visible text: p50 %" PRId64 " ms, max %" PRId64
                " ms over %d streams (not asserted)\n",
                ttfv[nttfv / 2], ttfv[nttfv - 1], nttfv);
    }
    shown_free(&want);
    fx_release(&f);
    curl_global_cleanup();
    return t_done();
}
