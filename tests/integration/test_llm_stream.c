/* test_llm_stream: streamed answers (SSE) from the LLM fake -- partial
 * texts, usage, cut/error/early-end streams retried, cancel, stream off. */
#include "config/config.h"
#include "core/http.h"
#include "core/log.h"
#include "llm/llm.h"
#include "tests/fakes/llm_fake.h"
#include "tests/t.h"

#include <curl/curl.h>
#include <stdlib.h>

/*
 * Fake and client share this process's loop.  Each scenario runs the loop
 * until its ask is done (or a deadline); nothing here asserts speed: the
 * chunk-to-partial latency is printed only.
 */
#define MAIN "gpt-main"        /* [model.main], OpenAI API */
#define BACKUP "claude-backup" /* [model.backup], Anthropic API */
#define QUESTION "one two three four five six seven eight nine ten"
#define ANSWER "echo: " QUESTION
#define TIMES_MAX 512

static uv_loop_t loop;
static struct llm_fake *lf;
static struct http *http;
static int port;

/* chunk write times, from the fake's hook (uv_hrtime, ns) */
static uint64_t chunk_ns[TIMES_MAX];
static size_t nchunks;

static int64_t
now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static void
on_chunk(size_t index, void *arg)
{
    (void)index;
    (void)arg;
    if (nchunks < TIMES_MAX)
        chunk_ns[nchunks++] = uv_hrtime();
}

static struct llm *
llm_make(const char *models, int stream, const char *timeout, int attempts,
         const char *give_up)
{
    char text[2048];
    struct config *c = NULL;
    struct config_diag d = {0};
    struct llm *l = NULL;
    int n;

    n = snprintf(text, sizeof(text),
                 "[llm]\nmodels = %s\nstream = %s\ntimeout = %s\n"
                 "give_up_after = %s\nmax_output_tokens = 64\n"
                 "system_prompt = You are a test.\n"
                 "[retry]\nattempts = %d\nmultiplier = 10ms\nmin = 10ms\n"
                 "max = 50ms\njitter = none\n"
                 "[model.main]\napi = openai\n"
                 "base_url = http://127.0.0.1:%d/v1\napi_key = km-1\n"
                 "name = " MAIN "\nprice_in = 1\nprice_out = 2\n"
                 "[model.backup]\napi = anthropic\n"
                 "base_url = http://127.0.0.1:%d/v1\napi_key = kb-1\n"
                 "name = " BACKUP "\n",
                 models, stream ? "true" : "false", timeout, give_up, attempts,
                 port, port);
    if (config_parse(text, (size_t)n, "test.conf", &c, &d) < 0 ||
        config_resolve_secrets(c, &d) < 0) {
        for (size_t i = 0; i < d.nerrors; i++)
            fprintf(stderr, "config: %s\n", d.errors[i]);
    } else {
        l = llm_new(&loop, http, c);
    }
    config_free(c);
    config_diag_release(&d);
    return l;
}

static void
llm_drop(struct llm *l)
{
    llm_free(l);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* ---- asks -------------------------------------------------------------- */

struct got {
    struct llm_call *call;
    int done, ok;
    char text[1024];
    int64_t prompt, completion;
    double cost;
    int attempts;
    enum errclass cls;
    /* partials */
    int npartial;
    int after_done;   /* partial calls after done: must stay 0 */
    int not_prefix;   /* partials that are not a prefix of want */
    int not_growing;  /* same text again, or not NUL-terminated */
    int restarts;     /* partials that do not extend the previous one */
    char last[1024];  /* the previous partial */
    char first[1024]; /* the first partial after the last restart */
    const char *want; /* the final answer, for the prefix check */
    int cancel_at;    /* > 0: llm_cancel from inside that partial call */
    int cancelled;
    uint64_t partial_ns[TIMES_MAX];
};

static void
on_done(const struct llm_result *r, void *arg)
{
    struct got *g = arg;

    g->done++;
    g->ok = r->ok;
    snprintf(g->text, sizeof(g->text), "%s", r->text);
    g->prompt = r->prompt_tokens;
    g->completion = r->completion_tokens;
    g->cost = r->cost_usd;
    g->attempts = r->attempts;
    g->cls = r->error_class;
}

static void
on_partial(const char *text, size_t len, void *arg)
{
    struct got *g = arg;
    size_t plen = strlen(g->last);

    if (g->done || g->cancelled)
        g->after_done++;
    if (g->npartial < TIMES_MAX)
        g->partial_ns[g->npartial] = uv_hrtime();
    g->npartial++;
    if (text[len] != '\0' || strlen(text) != len ||
        (len == plen && strcmp(text, g->last) == 0))
        g->not_growing++;
    if (g->want != NULL && strncmp(g->want, text, len) != 0)
        g->not_prefix++;
    if (g->npartial > 1 && (len < plen || strncmp(text, g->last, plen) != 0))
        g->restarts++;
    if (g->npartial == 1 || len < plen || strncmp(text, g->last, plen) != 0)
        snprintf(g->first, sizeof(g->first), "%s", text);
    snprintf(g->last, sizeof(g->last), "%s", text);
    if (g->cancel_at > 0 && g->npartial == g->cancel_at) {
        g->cancelled = 1;
        llm_cancel(g->call);
    }
}

static struct llm_call *
ask(struct llm *l, struct got *g, int with_partial, const char *want)
{
    struct llm_message m = {LLM_ROLE_USER, QUESTION};
    struct llm_ask a;
    int cancel_at = g->cancel_at;

    memset(&a, 0, sizeof(a));
    a.messages = &m;
    a.nmessages = 1;
    a.partial = with_partial ? on_partial : NULL;
    memset(g, 0, sizeof(*g));
    g->want = want;
    g->cancel_at = cancel_at;
    g->call = llm_ask(l, &a, on_done, g);
    return g->call;
}

static void
tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until g is done or limit_ms passes (then, 0 if done). */
static int
wait_done(struct got *g, int64_t limit_ms)
{
    uv_timer_t t;
    int64_t end = now_ms() + limit_ms;

    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    while (now_ms() < end && (g == NULL || !g->done))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return g == NULL || g->done ? 0 : -1;
}

static void
run_for(int64_t ms)
{
    wait_done(NULL, ms);
}

/* The last n entries of the fake's log that asked for a stream. */
static size_t
streamed(size_t from)
{
    size_t n = 0;

    for (size_t i = from; i < llm_fake_log_size(lf); i++)
        n += llm_fake_log_get(lf, i)->stream != 0;
    return n;
}

static int fault_chunks; /* where stream faults strike; 0 = half */

static void
stream_shape(int tokens, int events, size_t bytes, int delay)
{
    struct llm_fake_stream st;

    memset(&st, 0, sizeof(st));
    st.tokens_per_event = tokens;
    st.events_per_chunk = events;
    st.chunk_bytes = bytes;
    st.chunk_delay_ms = delay;
    st.fault_chunks = fault_chunks;
    st.on_chunk = on_chunk;
    llm_fake_set_stream(lf, &st);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Chunk written -> partial called: the latest chunk before each partial. */
static void
print_latency(const char *what, const struct got *g)
{
    uint64_t lat[TIMES_MAX];
    size_t n = 0, k = 0;
    int np = g->npartial < TIMES_MAX ? g->npartial : TIMES_MAX;

    for (int i = 0; i < np; i++) {
        while (k + 1 < nchunks && chunk_ns[k + 1] <= g->partial_ns[i])
            k++;
        if (k < nchunks && chunk_ns[k] <= g->partial_ns[i])
            lat[n++] = g->partial_ns[i] - chunk_ns[k];
    }
    if (n == 0)
        return;
    qsort(lat, n, sizeof(*lat), cmp_u64);
    printf("%s: chunk -> partial latency over %zu partials: min %.3f ms, "
           "median %.3f ms, max %.3f ms\n",
           what, n, (double)lat[0] / 1e6, (double)lat[n / 2] / 1e6,
           (double)lat[n - 1] / 1e6);
}

/* ---- scenarios ------------------------------------------------------------
 */

/* Streamed and whole answers agree, for both APIs and chunk shapes. */
static void
test_stream_equals_whole(void)
{
    static const struct {
        const char *models, *name;
        int tokens, events;
        size_t bytes;
    } cases[] = {
        {"main", "openai, a token per chunk", 1, 1, 0},
        {"backup", "anthropic, a token per chunk", 1, 1, 0},
        {"main", "openai, 3 events per chunk", 2, 3, 0},
        {"backup", "anthropic, 7-byte chunks", 1, 1, 7},
        {"main", "openai, 1-byte chunks", 1, 1, 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct llm *whole = llm_make(cases[i].models, 1, "5s", 3, "20s");
        struct got w, s;
        size_t from;

        T_OK(whole != NULL);
        if (whole == NULL)
            return;
        stream_shape(cases[i].tokens, cases[i].events, cases[i].bytes,
                     cases[i].bytes > 0 ? 0 : 5);
        /* partial NULL: not streamed even with stream = true */
        from = llm_fake_log_size(lf);
        ask(whole, &w, 0, NULL);
        T_OKF(wait_done(&w, 5000) == 0, "%s: whole", cases[i].name);
        T_OKF(w.ok, "%s: whole ok", cases[i].name);
        T_EQ_STR(w.text, ANSWER);
        T_EQ_INT(streamed(from), 0);

        nchunks = 0;
        from = llm_fake_log_size(lf);
        ask(whole, &s, 1, ANSWER);
        T_OKF(wait_done(&s, 5000) == 0, "%s: stream", cases[i].name);
        T_OKF(s.ok, "%s: stream ok", cases[i].name);
        T_EQ_STR(s.text, w.text);
        T_EQ_INT(streamed(from), 1);
        T_EQ_INT(s.attempts, 1);
        T_EQ_INT(s.prompt, w.prompt);
        T_EQ_INT(s.completion, w.completion);
        T_OK(s.prompt > 0 && s.completion > 0);
        T_OK(s.cost > 0 && s.cost == w.cost);
        T_OKF(s.npartial >= 2, "%s: %d partials", cases[i].name, s.npartial);
        T_EQ_INT(s.after_done, 0);
        T_EQ_INT(s.not_prefix, 0);
        T_EQ_INT(s.not_growing, 0);
        T_EQ_INT(s.restarts, 0);
        if (i < 2)
            print_latency(cases[i].name, &s);
        llm_drop(whole);
    }
}

/* Faults mid-stream (and a 503 before it): one complete answer after a
 * retry, whose partials start again from the first token. */
static void
test_faults_retried(void)
{
    static const struct {
        const char *models, *model, *name;
        struct llm_fake_fault f;
        int restarts; /* partials seen in the failed attempt: 1 */
    } cases[] = {
        {"main",
         MAIN,
         "openai cut",
         {LLM_FAKE_STREAM_CUT, 0, 0, 0, 0, NULL},
         1},
        {"backup",
         BACKUP,
         "anthropic cut",
         {LLM_FAKE_STREAM_CUT, 0, 0, 0, 0, NULL},
         1},
        {"main",
         MAIN,
         "openai error chunk",
         {LLM_FAKE_STREAM_ERROR, 0, 0, 0, 0, NULL},
         1},
        {"backup",
         BACKUP,
         "anthropic overloaded event",
         {LLM_FAKE_STREAM_ERROR, 0, 0, 0, 0, NULL},
         1},
        {"main",
         MAIN,
         "openai ends without [DONE]",
         {LLM_FAKE_STREAM_END, 0, 0, 0, 0, NULL},
         1},
        {"backup",
         BACKUP,
         "anthropic ends without message_stop",
         {LLM_FAKE_STREAM_END, 0, 0, 0, 0, NULL},
         1},
        {"main", MAIN, "openai 503", {LLM_FAKE_STATUS, 503, 0, 0, 0, NULL}, 0},
        {"backup",
         BACKUP,
         "anthropic 529",
         {LLM_FAKE_STATUS, 529, 0, 0, 0, NULL},
         0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct llm *l = llm_make(cases[i].models, 1, "5s", 3, "20s");
        struct got g;
        size_t from = llm_fake_log_size(lf);

        /* after two text chunks: OpenAI has a role chunk first, Anthropic
         * message_start, content_block_start and ping */
        fault_chunks = strcmp(cases[i].model, MAIN) == 0 ? 3 : 5;
        stream_shape(1, 1, 0, 20);

        T_OK(l != NULL);
        if (l == NULL)
            return;
        T_EQ_INT(llm_fake_script(lf, cases[i].model, &cases[i].f), 0);
        ask(l, &g, 1, ANSWER);
        T_OKF(wait_done(&g, 8000) == 0, "%s", cases[i].name);
        T_OKF(g.ok, "%s: ok", cases[i].name);
        T_EQ_STR(g.text, ANSWER);
        T_OKF(g.attempts == 2, "%s: %d attempts", cases[i].name, g.attempts);
        T_EQ_INT(streamed(from), 2);
        T_OKF(g.restarts == cases[i].restarts, "%s: %d restarts", cases[i].name,
              g.restarts);
        /* the retry's partials restart from its first token */
        T_OKF(strlen(g.first) < 12, "%s: restarted at \"%s\"", cases[i].name,
              g.first);
        T_EQ_INT(g.after_done, 0);
        T_EQ_INT(g.not_prefix, 0);
        T_OK(g.prompt > 0 && g.completion > 0);
        llm_drop(l);
    }
    fault_chunks = 0;
}

/* A stream that keeps failing: one failure, classified, nothing after. */
static void
test_fail_and_timeout(void)
{
    struct llm_fake_fault cut = {LLM_FAKE_STREAM_CUT, 0, 0, 0, 0, NULL};
    struct llm *l;
    struct got g;

    fault_chunks = 6;
    stream_shape(1, 1, 0, 10);
    fault_chunks = 0;
    l = llm_make("backup", 1, "5s", 2, "1500ms");
    T_OK(l != NULL);
    if (l == NULL)
        return;
    llm_fake_set_default(lf, BACKUP, &cut);
    ask(l, &g, 1, ANSWER);
    T_OK(wait_done(&g, 8000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.cls, ERRCLASS_NETWORK);
    T_OK(g.attempts >= 2);
    T_OK(g.restarts >= 1);
    T_OK(g.npartial >= 2);
    T_EQ_INT(g.after_done, 0);
    llm_fake_set_default(lf, BACKUP, NULL);
    run_for(100);
    T_EQ_INT(g.after_done, 0);
    llm_drop(l);

    /* chunks 150 ms apart against a 400 ms timeout: cut by the timeout */
    stream_shape(1, 1, 0, 150);
    l = llm_make("main", 1, "400ms", 2, "1500ms");
    T_OK(l != NULL);
    if (l == NULL)
        return;
    ask(l, &g, 1, ANSWER);
    T_OK(wait_done(&g, 8000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.cls, ERRCLASS_TIMEOUT);
    T_OK(g.attempts >= 2);
    T_OK(g.npartial >= 1);
    T_EQ_INT(g.not_prefix, 0);
    run_for(300);
    T_EQ_INT(g.after_done, 0);
    llm_drop(l);
}

/* Cancel mid-stream, from a timer and from inside a partial call. */
static void
test_cancel(void)
{
    struct llm *l;
    struct got g;
    struct llm_stats st;

    stream_shape(1, 1, 0, 40);
    l = llm_make("main", 1, "5s", 3, "20s");
    T_OK(l != NULL);
    if (l == NULL)
        return;

    /* from the loop, once some text came */
    memset(&g, 0, sizeof(g));
    ask(l, &g, 1, ANSWER);
    {
        int64_t end = now_ms() + 5000;
        while (g.npartial < 2 && !g.done && now_ms() < end)
            run_for(5);
    }
    T_OK(g.npartial >= 2 && !g.done);
    llm_cancel(g.call);
    g.cancelled = 1;
    run_for(500);
    T_EQ_INT(g.done, 0);
    T_EQ_INT(g.after_done, 0);

    /* from inside the second partial call */
    memset(&g, 0, sizeof(g));
    g.cancel_at = 2;
    ask(l, &g, 1, ANSWER);
    run_for(800);
    T_EQ_INT(g.npartial, 2);
    T_EQ_INT(g.done, 0);
    T_EQ_INT(g.after_done, 0);
    llm_stats(l, &st);
    T_EQ_INT(st.active, 0);
    T_EQ_INT(st.cancelled, 2);

    /* llm_free while streaming: nothing afterwards either */
    memset(&g, 0, sizeof(g));
    ask(l, &g, 1, ANSWER);
    {
        int64_t end = now_ms() + 5000;
        while (g.npartial < 1 && now_ms() < end)
            run_for(5);
    }
    g.cancelled = 1;
    llm_drop(l);
    run_for(300);
    T_EQ_INT(g.done, 0);
    T_EQ_INT(g.after_done, 0);
}

/*
 * Replies that are not streams to a streaming request: a whole JSON reply
 * (a server that ignored "stream") is the answer; a 429 body is
 * classified from its JSON like without streaming.
 */
static void
test_not_a_stream(void)
{
    static const char whole[] =
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"whole answer\"},\"finish_reason\":"
        "\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}";
    static const char quota[] =
        "{\"error\":{\"message\":\"You exceeded your current quota\","
        "\"type\":\"insufficient_quota\",\"param\":null,\"code\":"
        "\"insufficient_quota\"}}";
    struct fake_response r;
    struct llm *l = llm_make("main", 1, "5s", 3, "20s");
    struct got g;

    T_OK(l != NULL);
    if (l == NULL)
        return;
    memset(&r, 0, sizeof(r));
    r.body = whole;
    T_EQ_INT(fake_script(llm_fake_fake(lf), "POST", "/v1/chat/completions", &r),
             0);
    ask(l, &g, 1, NULL);
    T_OK(wait_done(&g, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.text, "whole answer");
    T_EQ_INT(g.prompt, 5);
    T_EQ_INT(g.completion, 2);
    T_EQ_INT(g.npartial, 0);

    memset(&r, 0, sizeof(r));
    r.status = 429;
    r.body = quota;
    T_EQ_INT(fake_script(llm_fake_fake(lf), "POST", "/v1/chat/completions", &r),
             0);
    ask(l, &g, 1, NULL);
    T_OK(wait_done(&g, 5000) == 0);
    T_OK(!g.ok);
    T_EQ_INT(g.cls, ERRCLASS_QUOTA);
    T_EQ_INT(g.attempts, 1);
    T_EQ_INT(g.npartial, 0);
    llm_drop(l);
}

/* [llm] stream = false: the partial callback is never called. */
static void
test_stream_off(void)
{
    struct llm *l = llm_make("backup", 0, "5s", 3, "20s");
    struct got g;
    size_t from = llm_fake_log_size(lf);

    T_OK(l != NULL);
    if (l == NULL)
        return;
    stream_shape(1, 1, 0, 5);
    ask(l, &g, 1, ANSWER);
    T_OK(wait_done(&g, 5000) == 0);
    T_OK(g.ok);
    T_EQ_STR(g.text, ANSWER);
    T_EQ_INT(g.npartial, 0);
    T_EQ_INT(streamed(from), 0);
    T_EQ_INT(llm_fake_log_size(lf) - from, 1);
    llm_drop(l);
}

int
main(void)
{
    log_init("test_llm_stream");
    log_set_level(getenv("TEST_LLM_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    lf = llm_fake_new(&loop, 0);
    http = http_new(&loop);
    if (lf == NULL || http == NULL) {
        fprintf(stderr, "cannot start the fake or the client\n");
        return 1;
    }
    port = llm_fake_port(lf);

    test_stream_equals_whole();
    test_faults_retried();
    test_fail_and_timeout();
    test_cancel();
    test_stream_off();
    test_not_a_stream();

    http_free(http);
    llm_fake_free(lf);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    curl_global_cleanup();
    return t_done();
}
