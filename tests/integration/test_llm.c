/* test_llm: the LLM client against the LLM fake -- exact waits, keys,
 * fallbacks, trimming, breakers, cancel. */
#include "bot/asker.h"
#include "config/config.h"
#include "core/http.h"
#include "core/log.h"
#include "llm/llm.h"
#include "tests/fakes/fake.h"
#include "tests/fakes/llm_fake.h"
#include "tests/t.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

/*
 * Fake and client share this process's loop.  Every scenario runs the
 * loop until its asks are done, under a deadline, so the file is bounded
 * (~20 s: most of it is the retry-after waits the provider asks for and
 * the every-model-down phase, which lasts give_up_after).
 *
 * Times are checked on the fake's request log (arrival t_ms, and done_ms
 * when the reply was decided), both on the monotonic clock.
 */
#define MAIN "gpt-main"        /* [model.main] name, OpenAI API */
#define BACKUP "claude-backup" /* [model.backup] name, Anthropic API */
/* A wait must be honoured to the ms and the next attempt must not lag it
 * by more than this. */
#define LATE_MS 100

static uv_loop_t loop;
static struct llm_fake *lf;
static struct http *http;
static int port;

static int64_t
now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- config ---------------------------------------------------------- */

struct setup {
    const char *models;  /* [llm] models */
    const char *timeout; /* [llm] timeout */
    const char *give_up; /* [llm] give_up_after */
    int attempts;
    const char *mult, *min, *max, *jitter;
    const char *main_keys, *backup_keys;
    long main_ctx, backup_ctx; /* context_window in config */
    long main_rpm, main_tpm;
};

static const struct setup base_setup = {
    "main, backup", "5s",   "20s",  6,      "100ms", "0", "1s",
    "full",         "km-1", "kb-1", 100000, 200000,  0,   0};

static struct config *
config_make(const struct setup *s)
{
    char text[4096];
    struct config *c = NULL;
    struct config_diag d = {0};
    int n;

    n = snprintf(text, sizeof(text),
                 "[llm]\nmodels = %s\ntimeout = %s\ngive_up_after = %s\n"
                 "max_output_tokens = 64\n"
                 "system_prompt = You are a test.\n"
                 "[retry]\nattempts = %d\nmultiplier = %s\nmin = %s\n"
                 "max = %s\njitter = %s\n"
                 "[model.main]\napi = openai\n"
                 "base_url = http://127.0.0.1:%d/v1\napi_key = %s\n"
                 "name = " MAIN "\ncontext_window = %ld\nrpm = %ld\n"
                 "tpm = %ld\nprice_in = 1\nprice_out = 2\n"
                 "[model.backup]\napi = anthropic\n"
                 "base_url = http://127.0.0.1:%d/v1\napi_key = %s\n"
                 "name = " BACKUP "\ncontext_window = %ld\nrpm = 0\n"
                 "tpm = 0\n",
                 s->models, s->timeout, s->give_up, s->attempts, s->mult,
                 s->min, s->max, s->jitter, port, s->main_keys, s->main_ctx,
                 s->main_rpm, s->main_tpm, port, s->backup_keys, s->backup_ctx);
    if (config_parse(text, (size_t)n, "test.conf", &c, &d) < 0 ||
        config_resolve_secrets(c, &d) < 0) {
        for (size_t i = 0; i < d.nerrors; i++)
            fprintf(stderr, "config: %s\n", d.errors[i]);
        config_free(c);
        c = NULL;
    }
    config_diag_release(&d);
    return c;
}

static struct llm *
llm_make(const struct setup *s)
{
    struct config *c = config_make(s);
    struct llm *l;

    if (c == NULL)
        return NULL;
    l = llm_new(&loop, http, c);
    config_free(c);
    return l;
}

static void
llm_drop(struct llm *l)
{
    llm_free(l);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* ---- asks ------------------------------------------------------------ */

struct got {
    int done;
    int ok;
    char text[256];
    char model[CONFIG_NAME_MAX + 1];
    int key;
    int attempts, fallbacks, trimmed;
    enum errclass cls;
    int status;
    char error[LLM_ERROR_MAX];
    int64_t at_ms, elapsed_ms;
};

static void
on_done(const struct llm_result *r, void *arg)
{
    struct got *g = arg;

    g->done++;
    g->ok = r->ok;
    snprintf(g->text, sizeof(g->text), "%s", r->text);
    snprintf(g->model, sizeof(g->model), "%s", r->model ? r->model : "");
    g->key = r->key_index;
    g->attempts = r->attempts;
    g->fallbacks = r->fallbacks;
    g->trimmed = r->trimmed;
    g->cls = r->error_class;
    g->status = r->status;
    snprintf(g->error, sizeof(g->error), "%s", r->ok ? "" : r->error);
    g->at_ms = now_ms();
    g->elapsed_ms = r->elapsed_ms;
}

/* An ask for a request that started age_ms ago (a resumed job). */
static struct llm_call *
ask_aged(struct llm *l, const char *text, int64_t age_ms, struct got *g)
{
    struct llm_message m = {LLM_ROLE_USER, text};
    struct llm_ask a;

    memset(&a, 0, sizeof(a));
    a.messages = &m;
    a.nmessages = 1;
    a.age_ms = age_ms;
    memset(g, 0, sizeof(*g));
    return llm_ask(l, &a, on_done, g);
}

static struct llm_call *
ask(struct llm *l, const char *text, struct got *g)
{
    return ask_aged(l, text, 0, g);
}

static void
tick(uv_timer_t *t)
{
    (void)t; /* only wakes uv_run so the condition is looked at */
}

/* Run the loop until n asks in g[] are done, or limit_ms passes. */
static int
wait_done(struct got *g, size_t n, int64_t limit_ms)
{
    uv_timer_t t;
    int64_t end = now_ms() + limit_ms;
    size_t done = 0;

    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    while (now_ms() < end) {
        done = 0;
        for (size_t i = 0; i < n; i++)
            done += g[i].done > 0;
        if (done == n)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return done == n ? 0 : -1;
}

/* Run the loop for ms. */
static void
run_for(int64_t ms)
{
    uv_timer_t t;
    int64_t end = now_ms() + ms;

    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    while (now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* The i-th log entry for model, NULL if there is none. */
static const struct llm_fake_entry *
entry(const char *model, size_t nth)
{
    for (size_t i = 0, k = 0; i < llm_fake_log_size(lf); i++) {
        const struct llm_fake_entry *e = llm_fake_log_get(lf, i);

        if (model != NULL && strcmp(e->model, model) != 0)
            continue;
        if (k++ == nth)
            return e;
    }
    return NULL;
}

static int
key_uses(const char *key4)
{
    int n = 0;

    for (size_t i = 0; i < llm_fake_log_size(lf); i++)
        n += strcmp(llm_fake_log_get(lf, i)->key4, key4) == 0;
    return n;
}

/* ---- scenarios ------------------------------------------------------- */

/*
 * A 429 whose wait header says `after_ms` in each form: the next attempt
 * lands no earlier than the provider asked, and at most LATE_MS later.
 * The HTTP date has whole seconds (the fake rounds the instant up), so its
 * wait is measured against the date itself.
 */
static void
test_retry_after_forms(void)
{
    static const struct {
        enum llm_fake_after after;
        int64_t after_ms;
        const char *model; /* which API */
    } cases[] = {
        {LLM_FAKE_AFTER_SECONDS, 2000, MAIN},
        {LLM_FAKE_AFTER_MS, 1500, MAIN},
        {LLM_FAKE_AFTER_FLOAT, 1250, MAIN},
        {LLM_FAKE_AFTER_HTTP_DATE, 1000, MAIN},
        {LLM_FAKE_AFTER_RESET_REQUESTS, 1200, MAIN},
        {LLM_FAKE_AFTER_SECONDS, 1000, BACKUP},
        {LLM_FAKE_AFTER_ANTHROPIC_RESET, 1300, BACKUP},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct setup s = base_setup;
        struct llm_fake_fault f = {LLM_FAKE_429,      0, cases[i].after,
                                   cases[i].after_ms, 0, NULL};
        const struct llm_fake_entry *e1, *e2;
        const char *name = llm_fake_after_name(cases[i].after);
        int64_t want, gap, offset;
        struct llm *l;
        struct got g;

        llm_fake_reset(lf);
        if (strcmp(cases[i].model, BACKUP) == 0)
            s.models = "backup";
        l = llm_make(&s);
        T_OK(l != NULL);
        if (l == NULL)
            return;
        llm_fake_script(lf, cases[i].model, &f);
        offset = wall_ms() - now_ms();
        T_OK(ask(l, "hello", &g) != NULL);
        T_OKF(wait_done(&g, 1, 10000) == 0, "%s: done", name);
        T_OKF(g.ok, "%s: answered (%s)", name, g.error);
        T_EQ_INT(g.attempts, 2);
        e1 = entry(cases[i].model, 0);
        e2 = entry(cases[i].model, 1);
        T_OKF(e1 != NULL && e2 != NULL, "%s: two requests", name);
        if (e1 != NULL && e2 != NULL) {
            want = cases[i].after_ms;
            if (cases[i].after == LLM_FAKE_AFTER_HTTP_DATE) {
                /* the date is ceil((wall at the reply + after) / 1 s) */
                int64_t w = e1->done_ms + offset + cases[i].after_ms;
                want = (w + 999) / 1000 * 1000 - (e1->done_ms + offset);
            }
            gap = e2->t_ms - e1->done_ms;
            T_OKF(e1->status == 429, "%s: first got %d", name, e1->status);
            T_OKF(gap >= want - 1 && gap <= want + LATE_MS,
                  "%s: asked %lld ms, next attempt after %lld ms", name,
                  (long long)want, (long long)gap);
            printf("retry-after form %-18s asked %5lld ms, next attempt "
                   "%5lld ms later\n",
                   name, (long long)want, (long long)gap);
        }
        llm_drop(l);
    }
}

/* A wait longer than what give_up_after leaves: the backup at once. */
static void
test_long_retry_after_fails_over(void)
{
    struct setup s = base_setup;
    struct llm_fake_fault f = {LLM_FAKE_429, 0, LLM_FAKE_AFTER_SECONDS,
                               30000,        0, NULL};
    const struct llm_fake_entry *e1, *e2;
    struct llm *l;
    struct got g;

    llm_fake_reset(lf);
    s.give_up = "5s";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_script(lf, MAIN, &f);
    T_OK(ask(l, "hello", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.model, "backup");
    T_EQ_INT(g.fallbacks, 1);
    e1 = entry(MAIN, 0);
    e2 = entry(BACKUP, 0);
    T_OK(e1 != NULL && e2 != NULL);
    if (e1 != NULL && e2 != NULL) {
        T_OKF(e2->t_ms - e1->done_ms < LATE_MS, "failover took %lld ms",
              (long long)(e2->t_ms - e1->done_ms));
        printf("retry-after 30 s with 5 s left: backup asked %lld ms later\n",
               (long long)(e2->t_ms - e1->done_ms));
    }
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 1);
    llm_drop(l);
}

/*
 * 503, 503, 503, 200: answered; with equal jitter the waits after
 * attempts 1..3 lie in [w/2, w] for w = 200, 400, 800 ms.
 */
static void
test_503s_then_ok(void)
{
    struct setup s = base_setup;
    struct llm_fake_fault f = {
        LLM_FAKE_STATUS, 503, LLM_FAKE_AFTER_NONE, 0, 0, NULL};
    struct llm *l;
    struct got g;

    llm_fake_reset(lf);
    s.mult = "200ms";
    s.max = "10s";
    s.jitter = "equal";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    for (int i = 0; i < 3; i++)
        llm_fake_script(lf, MAIN, &f);
    T_OK(ask(l, "hello", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.model, "main");
    T_EQ_INT(g.attempts, 4);
    T_EQ_INT(g.fallbacks, 0);
    T_CONTAINS(g.text, "hello");
    for (size_t n = 1; n <= 3; n++) {
        const struct llm_fake_entry *a = entry(MAIN, n - 1),
                                    *b = entry(MAIN, n);
        int64_t w = 200 << (n - 1), gap;

        T_OK(a != NULL && b != NULL);
        if (a == NULL || b == NULL)
            continue;
        gap = b->t_ms - a->done_ms;
        T_OKF(gap >= w / 2 && gap <= w + LATE_MS,
              "wait after attempt %zu: %lld ms, want [%lld, %lld]", n,
              (long long)gap, (long long)(w / 2), (long long)w);
        printf("503 #%zu: wait %4lld ms, formula bounds [%lld, %lld]\n", n,
               (long long)gap, (long long)(w / 2), (long long)w);
    }
    llm_drop(l);
}

/* insufficient_quota benches the key: never retried on it; invalid first
 * key: the second; all keys dead: the backup (Anthropic). */
static void
test_keys(void)
{
    struct setup s = base_setup;
    struct llm_stats st;
    struct llm *l;
    struct got g[3];

    /* quota on the first key */
    llm_fake_reset(lf);
    llm_fake_set_key(lf, "kq-quota", LLM_FAKE_KEY_NO_QUOTA);
    s.main_keys = "kq-quota, kq-spare";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    for (int i = 0; i < 3; i++)
        T_OK(ask(l, "quota?", &g[i]) != NULL);
    T_OK(wait_done(g, 3, 5000) == 0);
    for (int i = 0; i < 3; i++) {
        T_OK(g[i].ok);
        T_EQ_STR(g[i].model, "main");
        T_EQ_INT(g[i].key, 1);
    }
    /* three asks at once may each meet the spent key before it is
     * benched; after that it is never used again */
    T_OK(key_uses("uota") >= 1 && key_uses("uota") <= 3);
    T_OK(ask(l, "again", &g[0]) != NULL);
    T_OK(wait_done(g, 1, 5000) == 0);
    T_OK(g[0].ok && g[0].key == 1 && g[0].attempts == 1);
    llm_stats(l, &st);
    T_EQ_INT(st.models[0].keys_benched, 1);
    T_EQ_INT(st.models[0].retries[ERRCLASS_QUOTA], 0);
    llm_drop(l);

    /* invalid first key, one ask: exactly one request with it */
    llm_fake_reset(lf);
    llm_fake_set_key(lf, "kbad-1", LLM_FAKE_KEY_INVALID);
    s.main_keys = "kbad-1, kgood-2";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    T_OK(ask(l, "key?", &g[0]) != NULL);
    T_OK(wait_done(g, 1, 5000) == 0);
    T_OK(g[0].ok);
    T_EQ_INT(g[0].key, 1);
    T_EQ_INT(g[0].attempts, 2);
    T_OK(ask(l, "key again?", &g[1]) != NULL);
    T_OK(wait_done(&g[1], 1, 5000) == 0);
    T_EQ_INT(g[1].key, 1);
    T_EQ_INT(key_uses("ad-1"), 1);
    T_EQ_INT(key_uses("od-2"), 2);
    llm_drop(l);

    /* every key of main dead: the Anthropic backup answers */
    llm_fake_reset(lf);
    llm_fake_set_key(lf, "kdead-1", LLM_FAKE_KEY_INVALID);
    llm_fake_set_key(lf, "kdead-2", LLM_FAKE_KEY_NO_QUOTA);
    s.main_keys = "kdead-1, kdead-2";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    T_OK(ask(l, "anyone?", &g[0]) != NULL);
    T_OK(wait_done(g, 1, 5000) == 0);
    T_OK(g[0].ok);
    T_EQ_STR(g[0].model, "backup");
    T_EQ_INT(g[0].key, 0);
    T_EQ_INT(g[0].attempts, 3);
    T_EQ_INT(g[0].fallbacks, 1);
    T_OK(entry(BACKUP, 0) != NULL && entry(BACKUP, 0)->api == 'a');
    /* the next ask skips main without a request */
    T_OK(ask(l, "anyone else?", &g[1]) != NULL);
    T_OK(wait_done(&g[1], 1, 5000) == 0);
    T_EQ_STR(g[1].model, "backup");
    T_EQ_INT(g[1].attempts, 1);
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 2);
    llm_drop(l);

    /* every key of every model dead: one clear failure, no retry */
    llm_fake_reset(lf);
    llm_fake_set_key(lf, "kdead-3", LLM_FAKE_KEY_INVALID);
    s.main_keys = "kdead-1";
    s.backup_keys = "kdead-3";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    T_OK(ask(l, "anyone?", &g[0]) != NULL);
    T_OK(wait_done(g, 1, 5000) == 0);
    T_OK(!g[0].ok);
    T_EQ_INT(g[0].cls, ERRCLASS_AUTH);
    T_EQ_STR(g[0].error, "the model refused our API keys (401 from main and "
                         "backup)");
    T_EQ_INT(llm_fake_log_size(lf), 2);
    llm_drop(l);
}

/* The key of main's nth request ("" when there is none). */
static const char *
main_key(size_t nth)
{
    const struct llm_fake_entry *e = entry(MAIN, nth);

    return e != NULL ? e->key4 : "";
}

/*
 * SPEC §5: 400, 403, 404 are not retried on the same model+key: this
 * request's next key, else the next model; the key is not benched for
 * other requests.  501/505 are not retried either: the next model.
 */
static void
test_refused_keys(void)
{
    static const int statuses[] = {403, 404, 400};
    struct setup s = base_setup;
    struct llm_fake_fault f = {
        LLM_FAKE_STATUS, 403, LLM_FAKE_AFTER_NONE, 0, 0, NULL};
    struct llm_stats st;
    struct llm *l;
    struct got g;

    s.main_keys = "kr-1, kr-2";
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        /* key 1 refuses: key 2 of the same model answers, at once */
        llm_fake_reset(lf);
        l = llm_make(&s);
        T_OK(l != NULL);
        if (l == NULL)
            return;
        f.status = statuses[i];
        llm_fake_script(lf, MAIN, &f);
        T_OK(ask(l, "refused?", &g) != NULL);
        T_OK(wait_done(&g, 1, 5000) == 0);
        T_OKF(g.ok && strcmp(g.model, "main") == 0 && g.key == 1,
              "%d: ok %d model %s key %d (%s)", statuses[i], g.ok, g.model,
              g.key, g.error);
        T_EQ_INT(g.attempts, 2);
        T_EQ_INT(g.fallbacks, 0);
        T_EQ_STR(main_key(0), "kr-1");
        T_EQ_STR(main_key(1), "kr-2");
        T_OK(entry(MAIN, 0) != NULL && entry(MAIN, 0)->status == statuses[i]);
        T_OKF(entry(MAIN, 1) != NULL &&
                  entry(MAIN, 1)->t_ms - entry(MAIN, 0)->done_ms < LATE_MS,
              "%d: key 2 without a wait", statuses[i]);
        /* key 1 is not benched: the next request starts with it again */
        T_OK(ask(l, "and now?", &g) != NULL);
        T_OK(wait_done(&g, 1, 5000) == 0);
        T_OK(g.ok && g.key == 0 && g.attempts == 1);
        T_EQ_STR(main_key(2), "kr-1");
        llm_stats(l, &st);
        T_EQ_INT(st.models[0].keys_benched, 0);
        T_EQ_INT(st.models[0].retries[ERRCLASS_FORBIDDEN] +
                     st.models[0].retries[ERRCLASS_NOT_FOUND] +
                     st.models[0].retries[ERRCLASS_BAD_REQUEST],
                 0);
        llm_drop(l);
    }

    /* both keys 404: the next model, and each key was asked once */
    llm_fake_reset(lf);
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    f.status = 404;
    llm_fake_script(lf, MAIN, &f);
    llm_fake_script(lf, MAIN, &f);
    T_OK(ask(l, "nobody?", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.model, "backup");
    T_EQ_INT(g.attempts, 3);
    T_EQ_INT(g.fallbacks, 1);
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 2);
    T_EQ_STR(main_key(0), "kr-1");
    T_EQ_STR(main_key(1), "kr-2");
    llm_drop(l);

    /* every key of every model refuses: one failure, no loop over keys
     * (a transient failure elsewhere would start a new round: the keys
     * that refused are still skipped) */
    llm_fake_reset(lf);
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    f.status = 403;
    llm_fake_set_default(lf, MAIN, &f);
    llm_fake_set_default(lf, BACKUP, &f);
    T_OK(ask(l, "anyone?", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.cls, ERRCLASS_FORBIDDEN);
    T_EQ_STR(g.error,
             "the model refused our API keys (403 from main and backup)");
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 2);
    T_EQ_INT(llm_fake_log_count(lf, BACKUP, 0), 1);
    llm_fake_set_default(lf, MAIN, NULL);
    llm_fake_set_default(lf, BACKUP, NULL);
    llm_drop(l);

    /* 501, 505: the server's, not the key's: the next model at once */
    for (int st5 = 501; st5 <= 505; st5 += 4) {
        llm_fake_reset(lf);
        l = llm_make(&s);
        T_OK(l != NULL);
        if (l == NULL)
            return;
        f.status = st5;
        llm_fake_script(lf, MAIN, &f);
        T_OK(ask(l, "implemented?", &g) != NULL);
        T_OK(wait_done(&g, 1, 5000) == 0);
        T_OKF(g.ok && strcmp(g.model, "backup") == 0, "%d: answered by %s", st5,
              g.model);
        T_EQ_INT(g.attempts, 2);
        T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 1);
        llm_stats(l, &st);
        T_EQ_INT(st.models[0].errors[ERRCLASS_SERVER_PERMANENT], 1);
        T_EQ_INT(st.models[0].retries[ERRCLASS_SERVER_PERMANENT], 0);
        llm_drop(l);
    }
}

/* core's side of an ask through bot/asker */
struct core_got {
    int done, ok;
    int attempts;
    char error_class[32];
    char error[LLM_ERROR_MAX];
};

static void
on_core_done(void *arg, const struct core_answer *a)
{
    struct core_got *g = arg;

    g->done++;
    g->ok = a->ok;
    g->attempts = a->attempts;
    snprintf(g->error_class, sizeof(g->error_class), "%s",
             a->error_class ? a->error_class : "");
    snprintf(g->error, sizeof(g->error), "%s", a->error ? a->error : "");
}

/* Run the loop until g is done or limit_ms passes. */
static int
wait_core(struct core_got *g, int64_t limit_ms)
{
    int64_t end = now_ms() + limit_ms;

    while (!g->done && now_ms() < end)
        run_for(10);
    return g->done ? 0 : -1;
}

/*
 * give_up_after is durable (SPEC §2): an ask for a request older than it
 * (a job resumed after a restart) is tried once and its first failure
 * ends it with the reply naming the cause; give_up_after = 0 means the
 * same for every request.
 */
static void
test_durable_give_up(void)
{
    struct setup s = base_setup;
    struct llm_fake_fault down = {
        LLM_FAKE_STATUS, 503, LLM_FAKE_AFTER_SECONDS, 1000, 0, NULL};
    struct llm *l;
    struct got g;

    /* created 60 s ago, give_up_after 20 s: one attempt, no retry */
    llm_fake_reset(lf);
    s.models = "main";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_set_default(lf, MAIN, &down);
    T_OK(ask_aged(l, "resumed", 60000, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.attempts, 1);
    T_EQ_INT(g.cls, ERRCLASS_SERVER);
    T_EQ_STR(g.error, "the model is unavailable (503 from main)");
    T_OKF(g.elapsed_ms >= 60000 && g.elapsed_ms < 60000 + 1000,
          "elapsed %lld ms, counted from the job's creation",
          (long long)g.elapsed_ms);
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 1);
    /* a fresh request on the same client still retries */
    llm_fake_set_default(lf, MAIN, NULL);
    llm_fake_script(lf, MAIN, &down);
    T_OK(ask(l, "fresh", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok && g.attempts == 2);
    /* an old request that the model answers is answered */
    T_OK(ask_aged(l, "old but fine", 3600000, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok && g.attempts == 1);
    /* half of give_up_after left: the retry fits and happens */
    llm_fake_script(lf, MAIN, &down);
    T_OK(ask_aged(l, "half", 10000, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok && g.attempts == 2);
    /* through bot/asker, as core asks for a job resumed after a restart:
     * core_prompt.age_ms reaches the client */
    {
        struct asker *a = asker_new(l);
        const struct core_asker *ai = a != NULL ? asker_iface(a) : NULL;
        struct core_msg msgs[2] = {{"system", "You are a test."},
                                   {"user", "resumed job"}};
        struct core_prompt cp;
        struct core_got cg;
        uint64_t h = 0;

        T_OK(ai != NULL);
        memset(&cp, 0, sizeof(cp));
        memset(&cg, 0, sizeof(cg));
        cp.msgs = msgs;
        cp.n = 2;
        cp.max_output_tokens = 64;
        cp.job_id = 7;
        cp.age_ms = 21000; /* give_up_after is 20 s */
        llm_fake_set_default(lf, MAIN, &down);
        T_OK(ai != NULL && ai->ask(ai->ctx, &cp, on_core_done, &cg, &h) == 0);
        T_OK(wait_core(&cg, 5000) == 0);
        T_OK(!cg.ok);
        T_EQ_INT(cg.attempts, 1);
        T_EQ_STR(cg.error_class, "server");
        T_EQ_STR(cg.error, "the model is unavailable (503 from main)");
        llm_fake_set_default(lf, MAIN, NULL);
        asker_free(a);
    }
    llm_drop(l);

    /* give_up_after = 0: no retry at all, for every request */
    llm_fake_reset(lf);
    s.give_up = "0";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_script(lf, MAIN, &down);
    T_OK(ask(l, "once", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.attempts, 1);
    T_EQ_STR(g.error, "the model is unavailable (503 from main)");
    T_OK(ask(l, "once more", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok && g.attempts == 1);
    llm_drop(l);
}

/* Context overflow: trim the oldest history and retry; when even the last
 * message does not fit, a model with a bigger context_window. */
static void
test_context(void)
{
    struct setup s = base_setup;
    struct llm_fake_model small = {0, 0, 400, 0}, tiny = {0, 0, 60, 0};
    struct llm_message hist[9];
    char texts[9][400];
    struct llm_ask a;
    struct llm *l;
    struct got g;

    for (int i = 0; i < 9; i++) {
        memset(texts[i], 'a' + i, 300); /* ~100 tokens each */
        texts[i][300] = '\0';
        hist[i].role = i % 2 ? LLM_ROLE_ASSISTANT : LLM_ROLE_USER;
        hist[i].text = texts[i];
    }
    snprintf(texts[8], sizeof(texts[8]), "the last question");
    memset(&a, 0, sizeof(a));
    a.messages = hist;
    a.nmessages = 9;

    llm_fake_reset(lf);
    llm_fake_set_model(lf, MAIN, &small);
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    memset(&g, 0, sizeof(g));
    T_OK(llm_ask(l, &a, on_done, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.model, "main");
    T_OK(g.trimmed > 0 && g.trimmed < 8);
    T_CONTAINS(g.text, "the last question");
    T_OK(g.attempts >= 2);
    printf("context overflow: answered after %d attempts, %d of 8 history "
           "messages trimmed\n",
           g.attempts, g.trimmed);
    llm_drop(l);

    /* the config knows main's window: trimmed before sending, no 400 */
    llm_fake_reset(lf);
    s.main_ctx = 400;
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    memset(&g, 0, sizeof(g));
    T_OK(llm_ask(l, &a, on_done, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_INT(g.attempts, 1);
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 400), 0);
    llm_drop(l);

    /* main cannot hold even the question: the bigger backup */
    llm_fake_reset(lf);
    llm_fake_set_model(lf, MAIN, &tiny);
    s.main_ctx = 100000;
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    memset(&g, 0, sizeof(g));
    T_OK(llm_ask(l, &a, on_done, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.model, "backup");
    T_EQ_INT(g.trimmed, 0); /* the bigger window gets the whole history */
    llm_drop(l);

    /* and when no model is bigger: one failure naming the cause */
    llm_fake_reset(lf);
    s.models = "main";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    memset(&g, 0, sizeof(g));
    T_OK(llm_ask(l, &a, on_done, &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.cls, ERRCLASS_CONTEXT_OVERFLOW);
    T_EQ_STR(g.error,
             "the conversation is too long for the model (400 from main)");
    llm_drop(l);
    llm_fake_set_model(lf, MAIN, &(struct llm_fake_model){0, 0, 0, 0});
}

/* A hung attempt ends at [llm] timeout and is retried; a bad body is
 * retried like a 5xx. */
static void
test_timeout_and_bad_bodies(void)
{
    struct setup s = base_setup;
    struct llm_fake_fault hang = {LLM_FAKE_HANG, 0, 0, 0, 0, NULL};
    struct llm_fake_fault bad[] = {
        {LLM_FAKE_MALFORMED, 0, 0, 0, 0, NULL},
        {LLM_FAKE_TRUNCATED, 0, 0, 0, 0, NULL},
        {LLM_FAKE_PARTIAL, 0, 0, 0, 0, NULL},
        {LLM_FAKE_CLOSE, 0, 0, 0, 0, NULL},
    };
    const struct llm_fake_entry *e1, *e2;
    struct llm *l;
    struct got g;

    llm_fake_reset(lf);
    s.timeout = "300ms";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_script(lf, MAIN, &hang);
    T_OK(ask(l, "slow", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    T_EQ_INT(g.attempts, 2);
    e1 = entry(MAIN, 0);
    e2 = entry(MAIN, 1);
    T_OK(e1 != NULL && e2 != NULL);
    if (e1 != NULL && e2 != NULL)
        T_OKF(e2->t_ms - e1->t_ms >= 300 &&
                  e2->t_ms - e1->t_ms < 300 + 100 + LATE_MS,
              "second attempt %lld ms after the first",
              (long long)(e2->t_ms - e1->t_ms));
    llm_drop(l);

    llm_fake_reset(lf);
    l = llm_make(&base_setup);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        llm_fake_script(lf, MAIN, &bad[i]);
    T_OK(ask(l, "bodies", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_OK(g.ok);
    /* libcurl itself retries a request once when a reused connection
     * closes without a reply, so the close may cost no attempt of ours */
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 5);
    T_OK(g.attempts == 4 || g.attempts == 5);
    T_EQ_STR(g.model, "main");
    llm_drop(l);
}

/* llm_cancel and llm_free never call done; a preferred model goes first. */
static void
test_cancel_free_preferred(void)
{
    struct llm_fake_fault hang = {LLM_FAKE_HANG, 0, 0, 0, 0, NULL};
    struct llm_message m = {LLM_ROLE_USER, "prefer"};
    struct llm_ask a;
    struct llm_stats st;
    struct llm_call *c;
    struct llm *l;
    struct got g[4];

    llm_fake_reset(lf);
    l = llm_make(&base_setup);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_script(lf, MAIN, &hang);
    c = ask(l, "hang", &g[0]);
    T_OK(c != NULL);
    run_for(200);
    T_EQ_INT(llm_fake_log_count(lf, MAIN, 0), 1);
    llm_cancel(c);
    run_for(100);
    T_EQ_INT(g[0].done, 0);

    /* the preferred model first, then [llm] models without it */
    memset(&a, 0, sizeof(a));
    a.messages = &m;
    a.nmessages = 1;
    a.model = "backup";
    memset(&g[1], 0, sizeof(g[1]));
    T_OK(llm_ask(l, &a, on_done, &g[1]) != NULL);
    T_OK(wait_done(&g[1], 1, 5000) == 0);
    T_EQ_STR(g[1].model, "backup");

    /* an invalid ask is refused, done never called */
    a.nmessages = 0;
    T_OK(llm_ask(l, &a, on_done, &g[1]) == NULL);

    llm_fake_set_default(lf, MAIN, &hang);
    T_OK(ask(l, "a", &g[2]) != NULL);
    T_OK(ask(l, "b", &g[3]) != NULL);
    run_for(100);
    llm_stats(l, &st);
    T_EQ_INT(st.active, 2);
    T_EQ_INT(st.models[0].in_flight, 2);
    T_EQ_INT(st.cancelled, 1);
    T_EQ_INT(st.refused, 1);
    llm_drop(l);
    run_for(50);
    T_EQ_INT(g[2].done + g[3].done, 0);
    llm_fake_set_default(lf, MAIN, NULL);
}

/*
 * Every model down (503 for everyone): each ask ends within give_up_after
 * with one classified failure; the breakers keep the requests to a dead
 * model to about one probe per cooldown; recovery is picked up by the
 * next probe, within one probe interval.
 */
#define DOWN_ASKS 40
static void
test_all_down(void)
{
    struct setup s = base_setup;
    struct llm_fake_fault down = {
        LLM_FAKE_STATUS, 503, LLM_FAKE_AFTER_NONE, 0, 0, NULL};
    struct breaker_config bc = {3, 20, 10, 500, 250, 1000};
    static struct got g[DOWN_ASKS];
    struct llm_stats st;
    struct llm *l;
    int64_t t0, late = 0, t_open, rec;
    size_t main_late = 0, backup_late = 0, n_main, n_backup;
    int ok = 0, same = 1;

    llm_fake_reset(lf);
    s.give_up = "3s";
    s.attempts = 2;
    s.mult = "50ms";
    s.max = "200ms";
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_set_breaker(l, &bc);
    llm_fake_set_default(lf, MAIN, &down);
    llm_fake_set_default(lf, BACKUP, &down);
    t0 = now_ms();
    for (int i = 0; i < DOWN_ASKS; i++)
        T_OK(ask(l, "down?", &g[i]) != NULL);
    T_OK(wait_done(g, DOWN_ASKS, 6000) == 0);
    for (int i = 0; i < DOWN_ASKS; i++) {
        ok += g[i].ok;
        late = g[i].elapsed_ms > late ? g[i].elapsed_ms : late;
        same &= g[i].cls == ERRCLASS_SERVER && g[i].status == 503 &&
                strcmp(g[i].error, g[0].error) == 0;
    }
    T_EQ_INT(ok, 0);
    T_OK(same);
    T_EQ_STR(g[0].error, "the model is unavailable (503 from main and backup)");
    T_OKF(late <= 3000 + LATE_MS, "the last ask ended after %lld ms",
          (long long)late);
    /* after the first second only probes reach the dead models: with a
     * cooldown of 250 ms doubling to 1 s, at most a handful */
    t_open = t0 + 1000;
    n_main = llm_fake_log_count(lf, MAIN, 0);
    n_backup = llm_fake_log_count(lf, BACKUP, 0);
    for (size_t i = 0; i < llm_fake_log_size(lf); i++) {
        const struct llm_fake_entry *e = llm_fake_log_get(lf, i);

        if (e->t_ms < t_open)
            continue;
        main_late += strcmp(e->model, MAIN) == 0;
        backup_late += strcmp(e->model, BACKUP) == 0;
    }
    printf("all down: %d asks ended in <= %lld ms; requests main %zu "
           "(%zu after 1 s), backup %zu (%zu after 1 s)\n",
           DOWN_ASKS, (long long)late, n_main, main_late, n_backup,
           backup_late);
    T_OKF(main_late <= 4 && backup_late <= 4,
          "after 1 s: %zu to main, %zu to backup", main_late, backup_late);
    T_OK(n_main <= 2 * DOWN_ASKS + 4);
    llm_stats(l, &st);
    T_OK(st.models[0].breaker_opens >= 1);
    T_EQ_INT(st.models[0].breaker, BREAKER_OPEN);
    T_EQ_INT(st.failed, DOWN_ASKS);
    T_EQ_INT(st.failed_by[ERRCLASS_SERVER], DOWN_ASKS);

    /* main comes back: the next probe finds it, within one cooldown (the
     * cap, 1 s) */
    llm_fake_set_default(lf, MAIN, NULL);
    rec = now_ms();
    T_OK(ask(l, "back?", &g[0]) != NULL);
    T_OK(wait_done(g, 1, 3000) == 0);
    T_OK(g[0].ok);
    T_EQ_STR(g[0].model, "main");
    T_OKF(g[0].at_ms - rec <= 1000 + LATE_MS, "recovered after %lld ms",
          (long long)(g[0].at_ms - rec));
    printf("recovery: answered %lld ms after main came back (cooldown cap "
           "1000 ms)\n",
           (long long)(g[0].at_ms - rec));
    llm_stats(l, &st);
    T_EQ_INT(st.models[0].breaker, BREAKER_CLOSED);
    llm_fake_set_default(lf, BACKUP, NULL);
    llm_drop(l);
}

/*
 * A model behind TLS whose certificate we refuse (a CA we do not trust):
 * no retry on it, the next model at once (ERRCLASS_TLS), and the reply
 * names the cause when every model refuses.
 */
static void
test_tls_refused(void)
{
    char text[2048], cert[512], key[512];
    struct config *c = NULL;
    struct config_diag d = {0};
    struct llm_fake *tls;
    struct llm *l = NULL;
    struct got g;
    int n, tport;

    fake_cert_path(cert, sizeof(cert), "untrusted.pem");
    fake_cert_path(key, sizeof(key), "untrusted.key");
    tls = llm_fake_new_tls(&loop, 0, cert, key);
    T_OK(tls != NULL);
    if (tls == NULL)
        return;
    tport = llm_fake_port(tls);
    for (int both = 0; both < 2; both++) {
        n = snprintf(text, sizeof(text),
                     "[llm]\nmodels = main, backup\ntimeout = 5s\n"
                     "give_up_after = 20s\nmax_output_tokens = 64\n"
                     "[retry]\nattempts = 6\nmultiplier = 200ms\n"
                     "[model.main]\napi = openai\n"
                     "base_url = https://127.0.0.1:%d/v1\napi_key = km-1\n"
                     "name = " MAIN "\n"
                     "[model.backup]\napi = anthropic\n"
                     "base_url = %s://127.0.0.1:%d/v1\napi_key = kb-1\n"
                     "name = " BACKUP "\n",
                     tport, both ? "https" : "http", both ? tport : port);
        T_OK(config_parse(text, (size_t)n, "tls.conf", &c, &d) == 0 &&
             config_resolve_secrets(c, &d) == 0);
        config_diag_release(&d);
        l = c != NULL ? llm_new(&loop, http, c) : NULL;
        config_free(c);
        c = NULL;
        T_OK(l != NULL);
        if (l == NULL)
            break;
        llm_fake_reset(lf);
        T_OK(ask(l, "secure?", &g) != NULL);
        T_OK(wait_done(&g, 1, 8000) == 0);
        if (!both) {
            T_OK(g.ok);
            T_EQ_STR(g.model, "backup");
            T_EQ_INT(g.attempts, 2);
            T_EQ_INT(g.fallbacks, 1);
        } else {
            T_OK(!g.ok);
            T_EQ_INT(g.cls, ERRCLASS_TLS);
            T_EQ_STR(g.error, "the model is unavailable (certificate error "
                              "from main and backup)");
        }
        /* refused in the handshake: no request ever reached the server,
         * and no wait was spent on retrying it */
        T_EQ_INT(llm_fake_log_size(tls), 0);
        T_OKF(g.elapsed_ms < 2000, "took %lld ms", (long long)g.elapsed_ms);
        llm_drop(l);
        l = NULL;
    }
    llm_fake_free(tls);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* SIGHUP: a reload keeps the pacer and breaker of a model that stays and
 * routes asks by the new order. */
static void
test_reload(void)
{
    struct setup s = base_setup;
    struct breaker_config bc = {1, 20, 10, 500, 60000, 60000};
    struct llm_fake_fault down = {
        LLM_FAKE_STATUS, 500, LLM_FAKE_AFTER_NONE, 0, 0, NULL};
    struct config *c;
    struct llm_stats st;
    struct llm *l;
    struct got g;

    llm_fake_reset(lf);
    s.attempts = 1;
    l = llm_make(&s);
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_set_breaker(l, &bc);
    llm_fake_script(lf, MAIN, &down);
    T_OK(ask(l, "open it", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_EQ_STR(g.model, "backup");
    s.models = "backup, main";
    s.main_rpm = 100;
    c = config_make(&s);
    T_OK(c != NULL && llm_configure(l, c) == 0);
    config_free(c);
    llm_stats(l, &st);
    T_EQ_INT(st.nmodels, 2);
    T_EQ_INT(st.models[0].breaker, BREAKER_OPEN); /* main kept its state */
    T_EQ_INT(st.models[0].errors[ERRCLASS_SERVER], 1);
    T_OK(ask(l, "reloaded", &g) != NULL);
    T_OK(wait_done(&g, 1, 5000) == 0);
    T_EQ_STR(g.model, "backup");
    /* main alone, and open for a minute: the ask waits for a probe until
     * give_up_after, then one failure names the cause */
    s.models = "main";
    s.give_up = "1s";
    c = config_make(&s);
    T_OK(c != NULL && llm_configure(l, c) == 0);
    config_free(c);
    T_OK(ask(l, "stuck", &g) != NULL);
    T_OK(wait_done(&g, 1, 3000) == 0);
    T_OK(!g.ok);
    T_EQ_STR(g.error, "the model is unavailable (500 from main)");
    T_OKF(g.elapsed_ms >= 1000 && g.elapsed_ms <= 1000 + LATE_MS,
          "ended after %lld ms", (long long)g.elapsed_ms);
    llm_drop(l);
}

int
main(void)
{
    struct http *h;

    log_init("test_llm");
    log_set_level(getenv("TEST_LLM_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    lf = llm_fake_new(&loop, 0);
    h = http_new(&loop);
    if (lf == NULL || h == NULL) {
        fprintf(stderr, "cannot start the fake or the client\n");
        return 1;
    }
    http = h;
    port = llm_fake_port(lf);

    test_retry_after_forms();
    test_long_retry_after_fails_over();
    test_503s_then_ok();
    test_keys();
    test_refused_keys();
    test_durable_give_up();
    test_context();
    test_timeout_and_bad_bodies();
    test_cancel_free_preferred();
    test_all_down();
    test_reload();
    test_tls_refused();

    http_free(http);
    llm_fake_free(lf);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    curl_global_cleanup();
    return t_done();
}
