/* test_fake: the fake server library: routes, scripts, log, empty bodies,
 * latency, faults, load, websocket pings. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/ws.h"
#include "tests/fakes/fake.h"
#include "tests/fakes/fake_client.h"
#include "tests/t.h"

#define NCONC 1000

static uv_loop_t loop;
static uv_timer_t watchdog;
static int watchdog_fired;

struct got {
    int done;
    int status, timed_out, error;
    long content_length;
    size_t raw_len, body_len;
    char body[512];
    char retry_after[32];
    int64_t elapsed_ms;
};

static void
on_watchdog(uv_timer_t *t)
{
    (void)t;
    watchdog_fired = 1;
}

/* Run the loop until *count reaches want; the watchdog bounds the wait. */
static int
run_until(const int *count, int want, int ms)
{
    watchdog_fired = 0;
    uv_timer_start(&watchdog, on_watchdog, (uint64_t)ms, 0);
    while (*count < want && !watchdog_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    return *count >= want ? 0 : -1;
}

static void
on_done(const struct fake_call_result *r, void *arg)
{
    struct got *g = arg;
    size_t n =
        r->body_len < sizeof(g->body) - 1 ? r->body_len : sizeof(g->body) - 1;

    g->status = r->status;
    g->timed_out = r->timed_out;
    g->error = r->error;
    g->content_length = r->content_length;
    g->raw_len = r->raw_len;
    g->body_len = r->body_len;
    if (r->body)
        memcpy(g->body, r->body, n);
    g->body[n] = '\0';
    fake_call_header(r, "retry-after", g->retry_after, sizeof(g->retry_after));
    g->elapsed_ms = r->elapsed_ms;
    g->done = 1;
}

static struct got
call(int port, const char *method, const char *path, const char *headers,
     const char *body, size_t body_len, int timeout_ms)
{
    struct got g;

    memset(&g, 0, sizeof(g));
    fake_call(&loop, port, method, path, headers, body, body_len, timeout_ms,
              on_done, &g);
    run_until(&g.done, 1, timeout_ms + 2000);
    return g;
}

static int
api_handler(struct fake *f, const struct fake_request *req,
            struct fake_response *resp, void *arg)
{
    int *n = arg;

    resp->body = fake_printf(f, "{\"ok\":true,\"n\":%d,\"len\":%zu}", ++*n,
                             req->body_len);
    return 0;
}

static int
slow_handler(struct fake *f, const struct fake_request *req,
             struct fake_response *resp, void *arg)
{
    (void)f;
    (void)req;
    (void)arg;
    resp->body = "{\"slow\":true}";
    resp->delay_ms = 200;
    return 0;
}

static void
test_routes_scripts_log(struct fake *f, int port)
{
    static const struct fake_response r503 = {.status = 503,
                                              .body = "{\"error\":\"busy\"}"};
    const struct fake_request *rq;
    struct got g;
    static int n;

    T_EQ_INT(fake_route(f, "GET", "/api", api_handler, &n), 0);
    T_EQ_INT(fake_route(f, "POST", "/api/post", api_handler, &n), 0);
    T_EQ_INT(fake_capture_header(f, "X-Custom-Thing"), 0);

    g = call(port, "GET", "/nope", NULL, NULL, 0, 3000);
    T_EQ_INT(g.status, 404);
    T_CONTAINS(g.body, "not found");

    /* "503, 503, then 200" */
    T_EQ_INT(fake_script(f, "GET", "/api", &r503), 0);
    T_EQ_INT(fake_script(f, NULL, "/api", &r503), 0);
    T_EQ_INT(fake_script_pending(f), 2);
    for (int i = 0; i < 3; i++) {
        g = call(port, "GET", "/api/x?offset=5&timeout=50",
                 "X-Api-Key: k1\r\nAuthorization: Bearer t0k\r\n"
                 "X-Custom-Thing: yes\r\nX-Unlisted: no\r\n",
                 NULL, 0, 3000);
        T_EQ_INT(g.status, i < 2 ? 503 : 200);
    }
    T_CONTAINS(g.body, "\"n\":1");
    T_EQ_INT(fake_script_pending(f), 0);

    g = call(port, "POST", "/api/post", "Content-Type: application/json\r\n",
             "{\"hello\":1}", 11, 3000);
    T_EQ_INT(g.status, 200);
    T_CONTAINS(g.body, "\"len\":11");

    T_EQ_INT(fake_log_size(f), 5);
    T_EQ_INT(fake_log_count(f, "/api"), 4);
    T_EQ_INT(fake_log_count(f, "/api/post"), 1);
    T_EQ_INT(fake_log_count(f, NULL), 5);
    rq = fake_log_get(f, 1);
    T_OK(rq != NULL);
    if (rq) {
        T_EQ_STR(rq->method, "GET");
        T_EQ_STR(rq->path, "/api/x?offset=5&timeout=50");
        T_EQ_STR(fake_request_header(rq, "x-api-key"), "k1");
        T_EQ_STR(fake_request_header(rq, "Authorization"), "Bearer t0k");
        T_EQ_STR(fake_request_header(rq, "X-CUSTOM-THING:"), "yes");
        T_OK(fake_request_header(rq, "x-unlisted") == NULL);
        T_OK(rq->body == NULL && rq->body_len == 0);
    }
    rq = fake_log_get(f, 4);
    if (rq) {
        T_EQ_STR(rq->method, "POST");
        T_EQ_STR(rq->body, "{\"hello\":1}");
        T_EQ_INT(rq->body_len, 11);
        T_EQ_STR(fake_request_header(rq, "content-type"), "application/json");
        T_OK(rq->t_ms >= fake_log_get(f, 0)->t_ms);
    }
    T_OK(fake_log_get(f, 5) == NULL);
}

static void
test_latency_faults(struct fake *f, int port)
{
    static const char big[] = "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789";
    struct fake_response r;
    struct got g;
    int64_t t0;
    size_t hung_log;

    /* latency: a timer, the reply comes after the delay */
    memset(&r, 0, sizeof(r));
    r.body = "{}";
    r.delay_ms = 300;
    fake_script(f, NULL, "/lat", &r);
    t0 = fake_now_ms();
    g = call(port, "GET", "/lat", NULL, NULL, 0, 3000);
    T_EQ_INT(g.status, 200);
    T_OKF(g.elapsed_ms >= 290 && g.elapsed_ms < 1500, "elapsed %lld",
          (long long)g.elapsed_ms);
    {
        const struct fake_request *rq = fake_log_get(f, fake_log_size(f) - 1);

        T_OK(rq && rq->t_ms >= t0 && rq->t_ms - t0 < 200);
    }

    /* extra headers and any status */
    memset(&r, 0, sizeof(r));
    r.status = 429;
    r.body = "{\"retry_after\":7}";
    r.headers = "Retry-After: 7\r\nX-RateLimit-Remaining: 0\r\n";
    fake_script(f, NULL, "/limited", &r);
    g = call(port, "GET", "/limited", NULL, NULL, 0, 3000);
    T_EQ_INT(g.status, 429);
    T_EQ_STR(g.retry_after, "7");

    /* close: no reply at all */
    memset(&r, 0, sizeof(r));
    r.fault = FAKE_FAULT_CLOSE;
    fake_script(f, NULL, "/close", &r);
    g = call(port, "GET", "/close", NULL, NULL, 0, 3000);
    T_EQ_INT(g.status, 0);
    T_EQ_INT(g.raw_len, 0);
    T_EQ_INT(g.timed_out, 0);

    /* close after a delay */
    r.delay_ms = 100;
    fake_script(f, NULL, "/close", &r);
    g = call(port, "GET", "/close", NULL, NULL, 0, 3000);
    T_EQ_INT(g.raw_len, 0);
    T_OK(g.elapsed_ms >= 90 && !g.timed_out);

    /* hang: the client gives up; the fake holds the request meanwhile */
    memset(&r, 0, sizeof(r));
    r.fault = FAKE_FAULT_HANG;
    fake_script(f, NULL, "/hang", &r);
    g = call(port, "GET", "/hang", NULL, NULL, 0, 500);
    T_EQ_INT(g.timed_out, 1);
    T_EQ_INT(g.raw_len, 0);
    T_EQ_INT(fake_inflight(f), 1);
    hung_log = fake_log_size(f);

    /* partial: headers promise 80 bytes, 40 arrive, then EOF */
    memset(&r, 0, sizeof(r));
    r.body = big;
    r.fault = FAKE_FAULT_PARTIAL;
    fake_script(f, NULL, "/partial", &r);
    g = call(port, "GET", "/partial", NULL, NULL, 0, 3000);
    T_EQ_INT(g.status, 200);
    T_EQ_INT(g.content_length, 80);
    T_EQ_INT(g.body_len, 40);
    T_EQ_INT(g.timed_out, 0);

    /* body limit */
    {
        char *body = malloc(5000);

        memset(body, 'x', 5000);
        fake_set_body_max(f, 4000);
        g = call(port, "POST", "/api/post", NULL, body, 5000, 3000);
        T_EQ_INT(g.status, 413);
        g = call(port, "POST", "/api/post", NULL, body, 3000, 3000);
        T_EQ_INT(g.status, 200);
        fake_set_body_max(f, FAKE_BODY_MAX_DEFAULT);
        free(body);
    }
    T_EQ_INT(fake_log_size(f), hung_log + 3);
}

/* Content-Length: 0 (an empty POST or PUT) is one request, answered once. */
static void
test_empty_body(struct fake *f, int port)
{
    static const char *const methods[] = {"POST", "PUT"};
    static int n;

    T_EQ_INT(fake_route(f, NULL, "/empty", api_handler, &n), 0);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t before = fake_log_count(f, "/empty");
        const struct fake_request *rq;
        struct got g;
        int was = n;

        g = call(port, methods[i], "/empty/x", NULL, "", 0, 3000);
        T_EQ_INT(g.status, 200);
        T_CONTAINS(g.body, "\"len\":0");
        /* let a second dispatch, if any, happen before counting */
        for (int k = 0; k < 20; k++)
            uv_run(&loop, UV_RUN_NOWAIT);
        T_EQ_INT(n - was, 1);
        T_EQ_INT(fake_log_count(f, "/empty") - before, 1);
        rq = fake_log_get(f, fake_log_size(f) - 1);
        T_OK(rq != NULL);
        if (rq) {
            T_EQ_STR(rq->method, methods[i]);
            T_OK(rq->body == NULL && rq->body_len == 0);
            T_EQ_STR(fake_request_header(rq, "content-length"), "0");
        }
    }
}

/* ---- websocket pings from the server side ---- */

#define NPINGS 3

static struct {
    struct fake_ws *srv;
    struct ws_conn *cli;
    int opened, texts, closed;
    char last[64];
} wp;

static void
wp_srv_open(struct fake_ws *c, void *arg)
{
    (void)arg;
    wp.srv = c;
    wp.opened++;
}

static void
wp_srv_closed(struct fake_ws *c, void *arg)
{
    (void)c;
    (void)arg;
    wp.srv = NULL;
}

static void
wp_cli_text(struct ws_conn *c, const char *buf, size_t len, void *arg)
{
    (void)c;
    (void)arg;
    snprintf(wp.last, sizeof(wp.last), "%.*s", (int)len, buf);
    wp.texts++;
}

static void
wp_cli_closed(struct ws_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    (void)code;
    (void)reason;
    (void)arg;
    wp.cli = NULL;
    wp.closed++;
}

/* pongs counted by the fake, as an int for run_until() */
static int wp_pongs;

static void
wp_poll(uv_timer_t *t)
{
    (void)t;
    wp_pongs = (int)fake_ws_pongs(wp.srv);
}

/*
 * fake_ws_ping(): the client's lws answers each ping with a pong, and
 * pings do not disturb the text frames queued around them.
 */
static void
test_ws_ping(void)
{
    static const struct fake_ws_ops sops = {wp_srv_open, NULL, wp_srv_closed};
    static const struct ws_conn_ops cops = {NULL, wp_cli_text, wp_cli_closed};
    struct fake *f = fake_new(&loop, 0);
    struct ws_ctx *x = ws_ctx_new(&loop);
    uv_timer_t poll;
    char url[64];

    T_OK(f != NULL && x != NULL);
    if (f == NULL || x == NULL)
        goto out;
    T_EQ_INT(fake_ws_route(f, "/ws", &sops, NULL), 0);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", fake_port(f));
    wp.cli = ws_connect(x, url, &cops, NULL);
    T_OK(wp.cli != NULL);
    T_EQ_INT(run_until(&wp.opened, 1, 5000), 0);
    if (wp.srv == NULL)
        goto out;
    T_EQ_INT(fake_ws_pongs(wp.srv), 0);
    T_EQ_INT(fake_ws_send(wp.srv, "before", 6), 0);
    for (int i = 0; i < NPINGS; i++)
        T_EQ_INT(fake_ws_ping(wp.srv), 0);
    T_EQ_INT(fake_ws_send(wp.srv, "after", 5), 0);
    uv_timer_init(&loop, &poll);
    uv_timer_start(&poll, wp_poll, 5, 5);
    T_EQ_INT(run_until(&wp_pongs, NPINGS, 5000), 0);
    T_EQ_INT(run_until(&wp.texts, 2, 5000), 0);
    uv_close((uv_handle_t *)&poll, NULL);
    T_EQ_INT(wp_pongs, NPINGS);
    T_EQ_STR(wp.last, "after");
    T_EQ_INT(wp.closed, 0);
    /* no ping once the socket is closing */
    fake_ws_close(wp.srv, 1000, "done");
    T_EQ_INT(fake_ws_ping(wp.srv), -1);
    T_EQ_INT(run_until(&wp.closed, 1, 5000), 0);
    T_OK(fake_ws_ping(NULL) == -1 && fake_ws_pongs(NULL) == 0);
out:
    ws_ctx_free(x);
    fake_free(f);
}
static struct got many[NCONC];
static int many_done;

static void
on_many(const struct fake_call_result *r, void *arg)
{
    struct got *g = arg;

    g->status = r->status;
    g->elapsed_ms = r->elapsed_ms;
    many_done++;
}

static void
test_concurrency(struct fake *f, int port)
{
    int64_t t0, total, ok = 0, min = 1 << 30, max = 0;

    T_EQ_INT(fake_route(f, "GET", "/slow", slow_handler, NULL), 0);
    fake_log_clear(f);
    t0 = fake_now_ms();
    for (int i = 0; i < NCONC; i++)
        fake_call(&loop, port, "GET", "/slow", NULL, NULL, 0, 15000, on_many,
                  &many[i]);
    T_EQ_INT(run_until(&many_done, NCONC, 16000), 0);
    total = fake_now_ms() - t0;
    for (int i = 0; i < NCONC; i++) {
        ok += many[i].status == 200;
        if (many[i].elapsed_ms < min)
            min = many[i].elapsed_ms;
        if (many[i].elapsed_ms > max)
            max = many[i].elapsed_ms;
    }
    printf("concurrency: %d requests, 200ms delay each: %lld ok, total %lld "
           "ms, per request min %lld max %lld ms\n",
           NCONC, (long long)ok, (long long)total, (long long)min,
           (long long)max);
    T_EQ_INT(ok, NCONC);
    T_OK(min >= 195);
    T_OKF(total < 3000, "total %lld ms", (long long)total);
    T_EQ_INT(fake_log_count(f, "/slow"), NCONC);
}

int
main(void)
{
    struct fake *f;
    int port;

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &watchdog);

    f = fake_new(&loop, 0);
    T_OK(f != NULL);
    if (f == NULL)
        goto out;
    port = fake_port(f);
    T_OK(port > 0);

    test_routes_scripts_log(f, port);
    test_empty_body(f, port);
    test_latency_faults(f, port);
    test_concurrency(f, port);
    test_ws_ping();

    /* a second fake on the same loop, and a fixed port */
    {
        struct fake *g = fake_new(&loop, port);

        T_OK(g == NULL); /* port taken */
        fake_free(g);
    }
out:
    fake_free(f);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    return t_done();
}
