/* test_http: core/http against a fake HTTP server running in a child process.
 */
#include "core/http.h"
#include "tests/fakes/fake.h"
#include "tests/t.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The fake runs in a child process on its own loop, so the timings below
 * measure the client (core/http on this process's one loop thread), not a
 * server sharing its thread.
 */
#define CONCURRENT 1000
#define SLOW_MS 200
#define SEQUENTIAL 20
#define BIG_LEN 65536

/*
 * The bar: a burst of CONCURRENT requests to a server answering after
 * SLOW_MS finishes in under 2 s.  Sanitizers slow both processes about
 * threefold; that build checks memory, so its bar is scaled.
 */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define SANITIZED 1
#endif
#endif
#ifdef SANITIZED
#define BURST_LIMIT_MS 6000
#else
#define BURST_LIMIT_MS 2000
#endif

static uv_loop_t loop;
static uv_timer_t watchdog, ticker;
static uv_prepare_t prep;
static int timed_out;
static char base[64]; /* http://127.0.0.1:PORT */

/* ---- the fake server (child) ------------------------------------------ */

static int
route_slow(struct fake *f, const struct fake_request *req,
           struct fake_response *resp, void *arg)
{
    (void)arg;
    resp->body = fake_printf(f, "{\"path\":\"%s\"}", req->path);
    resp->delay_ms = SLOW_MS;
    return resp->body ? 0 : -1;
}

static int
route_echo(struct fake *f, const struct fake_request *req,
           struct fake_response *resp, void *arg)
{
    const char *key = fake_request_header(req, "x-api-key");

    (void)arg;
    resp->content_type = "text/plain";
    /* the length shows binary bodies arrived whole (%.*s stops at NUL) */
    resp->body = fake_printf(f, "%s %s %zu:%.*s", req->method, key ? key : "-",
                             req->body_len, (int)req->body_len,
                             req->body ? req->body : "");
    return resp->body ? 0 : -1;
}

static int
route_headers(struct fake *f, const struct fake_request *req,
              struct fake_response *resp, void *arg)
{
    (void)f;
    (void)req;
    (void)arg;
    resp->status = 429;
    resp->body = "{\"error\":\"slow down\"}";
    resp->headers = "Retry-After: 1\r\n"
                    "Retry-After: 7\r\n"
                    "retry-after-ms: 6500\r\n"
                    "x-ratelimit-remaining-requests: 0\r\n";
    return 0;
}

static int
route_fault(struct fake *f, const struct fake_request *req,
            struct fake_response *resp, void *arg)
{
    (void)f;
    (void)req;
    resp->fault = *(const enum fake_fault *)arg;
    resp->body = "{\"partial\":\"this body is cut in half\"}";
    return 0;
}

static char big_body[BIG_LEN];

static int
route_big(struct fake *f, const struct fake_request *req,
          struct fake_response *resp, void *arg)
{
    (void)f;
    (void)req;
    (void)arg;
    resp->content_type = "text/plain";
    resp->body = big_body;
    resp->body_len = sizeof(big_body);
    return 0;
}

/* 80 KiB of response headers: over HTTP_HEADERS_MAX */
static char fat_headers[80 * 1024];

static int
route_fat(struct fake *f, const struct fake_request *req,
          struct fake_response *resp, void *arg)
{
    (void)f;
    (void)req;
    (void)arg;
    resp->headers = fat_headers;
    resp->body = "{}";
    return 0;
}

static void
fat_headers_init(void)
{
    size_t n = 0;
    int i;

    for (i = 0; n + 64 < sizeof(fat_headers); i++)
        n += (size_t)snprintf(fat_headers + n, sizeof(fat_headers) - n,
                              "X-Pad-%d: %040d\r\n", i, i);
}

static void
child_stop(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_stop(s->loop);
}

/* The TLS fakes answer /echo; their certificates are the test ones. */
static struct fake *
child_tls(uv_loop_t *l, const char *name)
{
    char cert[PATH_MAX], key[PATH_MAX], stem[64];
    struct fake *f;

    snprintf(stem, sizeof(stem), "%s.pem", name);
    fake_cert_path(cert, sizeof(cert), stem);
    snprintf(stem, sizeof(stem), "%s.key", name);
    fake_cert_path(key, sizeof(key), stem);
    f = fake_new_tls(l, 0, cert, key);
    if (f)
        fake_route(f, NULL, "/echo", route_echo, NULL);
    return f;
}

/* ports[0]: plain; then TLS with the test certificates server, server2,
 * untrusted and other (tests/fakes/certs/README) */
static void
child_main(int wfd)
{
    static enum fake_fault hang = FAKE_FAULT_HANG, cls = FAKE_FAULT_CLOSE,
                           partial = FAKE_FAULT_PARTIAL;
    uv_loop_t l;
    uv_signal_t sig;
    static const char *const certs[] = {"server", "server2", "untrusted",
                                        "other"};
    struct fake *f, *tls[4];
    int ports[5] = {-1, -1, -1, -1, -1}, ok = 1;

    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    memset(big_body, 'x', sizeof(big_body));
    fat_headers_init();
    uv_loop_init(&l);
    f = fake_new(&l, 0);
    if (f) {
        fake_route(f, "GET", "/slow", route_slow, NULL);
        fake_route(f, NULL, "/echo", route_echo, NULL);
        fake_route(f, "GET", "/headers", route_headers, NULL);
        fake_route(f, "GET", "/big", route_big, NULL);
        fake_route(f, "GET", "/fat", route_fat, NULL);
        fake_route(f, "GET", "/hang", route_fault, &hang);
        fake_route(f, "GET", "/close", route_fault, &cls);
        fake_route(f, "GET", "/partial", route_fault, &partial);
        ports[0] = fake_port(f);
    }
    for (int i = 0; i < 4; i++) {
        tls[i] = child_tls(&l, certs[i]);
        ports[i + 1] = fake_port(tls[i]);
        ok &= tls[i] != NULL;
    }
    if (write(wfd, ports, sizeof(ports)) != (ssize_t)sizeof(ports) || !f || !ok)
        _exit(1);
    close(wfd);
    uv_signal_init(&l, &sig);
    uv_signal_start(&sig, child_stop, SIGTERM);
    uv_run(&l, UV_RUN_DEFAULT);
    _exit(0); /* the test only needs the server to stop */
}

static pid_t
child_start(int *ports)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_main(fds[1]);
    }
    close(fds[1]);
    if (pid < 0 ||
        read(fds[0], ports, 5 * sizeof(*ports)) != 5 * sizeof(*ports) ||
        ports[0] <= 0 || ports[4] <= 0) {
        close(fds[0]);
        return -1;
    }
    close(fds[0]);
    return pid;
}

/* ---- harness: run the loop until a condition, bounded by a watchdog --- */

static void
on_watchdog(uv_timer_t *t)
{
    (void)t;
    timed_out = 1;
}

struct until {
    const int *count;
    int want;
};

/* Runs before the loop blocks: a callback run by a timer in this turn may
 * have met the condition, and without uv_stop the loop would block in
 * poll until the next event. */
static void
on_prepare(uv_prepare_t *p)
{
    const struct until *u = p->data;

    if (*u->count >= u->want || timed_out)
        uv_stop(p->loop);
}

/* Runs the loop until *count reaches want or budget_ms passes. */
static int
run_until(const int *count, int want, uint64_t budget_ms)
{
    struct until u = {count, want};

    timed_out = 0;
    prep.data = &u;
    uv_prepare_start(&prep, on_prepare);
    uv_timer_start(&watchdog, on_watchdog, budget_ms, 0);
    while (*count < want && !timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    uv_prepare_stop(&prep);
    return *count >= want ? 0 : -1;
}

static void
on_tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* Lets the loop run for ms: a timer, never a sleep. */
static void
run_for(uint64_t ms)
{
    int fired = 0;

    ticker.data = &fired;
    uv_timer_start(&ticker, on_tick, ms, 0);
    run_until(&fired, 1, ms + 5000);
    uv_timer_stop(&ticker);
}

static void
url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "%s%s", base, path);
}

/* One finished request, copied out of the callback. */
struct result {
    int calls;
    enum http_error error;
    long status;
    char body[256];
    size_t body_len;
    char retry_after[32], retry_after_ms[32], remaining[32], upper[32];
    int absent_is_null;
    int64_t elapsed_ms;
    char error_text[160];
};

static int finished;

static void
copy_header(char *dst, size_t cap, const struct http_response *r,
            const char *name)
{
    const char *v = http_response_header(r, name);

    snprintf(dst, cap, "%s", v ? v : "(null)");
}

static void
on_done(const struct http_response *r, void *arg)
{
    struct result *res = arg;

    res->calls++;
    res->error = r->error;
    res->status = r->status;
    res->body_len = r->body_len;
    res->elapsed_ms = r->elapsed_ms;
    snprintf(res->error_text, sizeof(res->error_text), "%s", r->error_text);
    snprintf(res->body, sizeof(res->body), "%s", r->body);
    copy_header(res->retry_after, sizeof(res->retry_after), r, "retry-after");
    copy_header(res->retry_after_ms, sizeof(res->retry_after_ms), r,
                "Retry-After-Ms");
    copy_header(res->remaining, sizeof(res->remaining), r,
                "x-ratelimit-remaining-requests");
    copy_header(res->upper, sizeof(res->upper), r, "RETRY-AFTER");
    res->absent_is_null = http_response_header(r, "x-not-there") == NULL;
    finished++;
}

/* Sends one request and waits for its callback. */
static void
fetch(struct http *h, const struct http_request *rq, struct result *res)
{
    uint64_t t0 = uv_hrtime();

    memset(res, 0, sizeof(*res));
    finished = 0;
    T_OK(http_send(h, rq, on_done, res) != NULL);
    T_OK(run_until(&finished, 1, 10000) == 0);
    T_EQ_INT(res->calls, 1);
    if (getenv("TEST_HTTP_VERBOSE"))
        printf("fetch %s: %s %ld in %lld ms (wall %.1f ms)\n", rq->url,
               http_error_name(res->error), res->status,
               (long long)res->elapsed_ms, (double)(uv_hrtime() - t0) / 1e6);
}

/* ---- 1. a thousand concurrent requests -------------------------------- */

static int *slow_calls, slow_bad, concurrent = CONCURRENT;

static void
on_slow(const struct http_response *r, void *arg)
{
    int i = (int)(intptr_t)arg;
    char want[64];

    slow_calls[i]++;
    snprintf(want, sizeof(want), "{\"path\":\"/slow?id=%d\"}", i);
    if (r->error != HTTP_OK || r->status != 200 || strcmp(r->body, want) != 0) {
        if (slow_bad++ < 5)
            fprintf(stderr, "slow %d: class=%s status=%ld body=%s err=%s\n", i,
                    http_error_name(r->error), r->status, r->body,
                    r->error_text);
    }
    finished++;
}

static double
cpu_ms(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e3 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e3;
}

/* One burst of `concurrent` requests; returns the connections it opened. */
static uint64_t
burst(struct http *h, const char *label)
{
    struct http_request rq = {.timeout_ms = 10000};
    struct http_stats before, after;
    struct rusage ru0, ru;
    char u[128];
    uint64_t t0, t1;
    int i, once = 0;

    http_stats_get(h, &before);
    getrusage(RUSAGE_SELF, &ru0);
    memset(slow_calls, 0, sizeof(*slow_calls) * (size_t)concurrent);
    slow_bad = 0;
    finished = 0;
    t0 = uv_hrtime();
    for (i = 0; i < concurrent; i++) {
        snprintf(u, sizeof(u), "%s/slow?id=%d", base, i);
        rq.url = u;
        if (http_send(h, &rq, on_slow, (void *)(intptr_t)i) == NULL)
            break;
    }
    T_EQ_INT(i, concurrent);
    T_EQ_INT(http_in_flight(h), concurrent);
    T_OK(run_until(&finished, concurrent, 20000) == 0);
    t1 = uv_hrtime();
    for (i = 0; i < concurrent; i++)
        once += slow_calls[i] == 1;
    T_EQ_INT(once, concurrent);
    T_EQ_INT(slow_bad, 0);
    T_EQ_INT(http_in_flight(h), 0);
    http_stats_get(h, &after);
    getrusage(RUSAGE_SELF, &ru);
    printf("%s: %d concurrent requests, %d ms server latency: %.1f ms wall "
           "on one loop thread (%.0f ms CPU), %llu new connections, "
           "max RSS %ld MiB\n",
           label, concurrent, SLOW_MS, (double)(t1 - t0) / 1e6,
           cpu_ms(&ru) - cpu_ms(&ru0),
           (unsigned long long)(after.connects - before.connects),
           ru.ru_maxrss / 1024);
    T_OKF((t1 - t0) < BURST_LIMIT_MS * 1000000ULL, "wall %.1f ms, limit %d ms",
          (double)(t1 - t0) / 1e6, BURST_LIMIT_MS);
    return after.connects - before.connects;
}

static void
test_concurrent(struct http *h)
{
    uint64_t fresh, warm;

    slow_calls = calloc((size_t)concurrent, sizeof(*slow_calls));
    T_OK(slow_calls != NULL);
    if (slow_calls == NULL)
        return;
    fresh = burst(h, "cold burst");
    T_OK(fresh > 0);
    /* the same burst again finds the idle connections in the cache, as
     * many as it keeps */
    warm = burst(h, "warm burst");
    T_OKF(warm + HTTP_IDLE_CONNECTIONS_MAX <= fresh || warm <= fresh / 100,
          "warm %llu, cold %llu", (unsigned long long)warm,
          (unsigned long long)fresh);
    free(slow_calls);
    slow_calls = NULL;
}

/* ---- 2. connection reuse on sequential requests ------------------------ */

static int seq_left, seq_ok;
static char seq_url[128];

static void
on_seq(const struct http_response *r, void *arg)
{
    struct http *h = arg;
    struct http_request rq = {.url = seq_url};

    seq_ok += r->error == HTTP_OK && r->status == 200;
    finished++;
    /* the next request starts from this callback: reuse must work there */
    if (--seq_left > 0 && http_send(h, &rq, on_seq, h) == NULL)
        seq_left = 0;
}

static void
test_reuse(void)
{
    struct http *h = http_new(&loop);
    struct http_request rq = {.url = seq_url};
    struct http_stats st;

    T_OK(h != NULL);
    if (h == NULL)
        return;
    url(seq_url, sizeof(seq_url), "/echo");
    finished = seq_ok = 0;
    seq_left = SEQUENTIAL;
    T_OK(http_send(h, &rq, on_seq, h) != NULL);
    T_OK(run_until(&finished, SEQUENTIAL, 10000) == 0);
    http_stats_get(h, &st);
    printf("reuse: %d sequential requests, %llu connection(s)\n", SEQUENTIAL,
           (unsigned long long)st.connects);
    T_EQ_INT(seq_ok, SEQUENTIAL);
    T_EQ_INT(st.sent, SEQUENTIAL);
    T_EQ_INT(st.completed, SEQUENTIAL);
    T_EQ_INT(st.connects, 1);
    http_free(h);
}

/* ---- 3. methods, bodies, request and response headers ------------------ */

static void
test_post(struct http *h)
{
    static const char *const hdrs[] = {"X-Api-Key: k123",
                                       "Content-Type: application/json", NULL};
    static const char json[] = "{\"model\":\"m\",\"messages\":[]}";
    struct http_request rq = {0};
    struct result res;
    char u[128];

    url(u, sizeof(u), "/echo");
    rq.url = u;
    rq.headers = hdrs;
    rq.body = json;
    rq.body_len = strlen(json);
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_OK);
    T_EQ_INT(res.status, 200);
    T_EQ_STR(res.body, "POST k123 27:{\"model\":\"m\",\"messages\":[]}");

    rq.method = "PUT";
    rq.body = "abc";
    rq.body_len = 3;
    fetch(h, &rq, &res);
    T_EQ_STR(res.body, "PUT k123 3:abc");

    rq.method = "DELETE";
    rq.body = NULL;
    rq.body_len = 0;
    fetch(h, &rq, &res);
    T_EQ_STR(res.body, "DELETE k123 0:");

    /* a binary body with a NUL in it is sent whole */
    rq.method = NULL;
    rq.body = "a\0b";
    rq.body_len = 3;
    fetch(h, &rq, &res);
    T_EQ_STR(res.body, "POST k123 3:a");
}

static void
test_headers(struct http *h)
{
    struct http_request rq = {0};
    struct result res;
    char u[128];

    url(u, sizeof(u), "/headers");
    rq.url = u;
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_OK); /* a 429 is a response, not an error */
    T_EQ_INT(res.status, 429);
    T_EQ_STR(res.retry_after, "7"); /* the last of two */
    T_EQ_STR(res.upper, "7");
    T_EQ_STR(res.retry_after_ms, "6500");
    T_EQ_STR(res.remaining, "0");
    T_OK(res.absent_is_null);
    T_CONTAINS(res.body, "slow down");
}

/* ---- 4. failure classes ------------------------------------------------ */

static int
closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd); /* bound, never listened: connecting is refused */
    return port;
}

static void
test_failures(struct http *h)
{
    struct http_request rq = {0};
    struct result res;
    char u[128];

    url(u, sizeof(u), "/hang");
    rq.url = u;
    rq.timeout_ms = 300;
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_TIMEOUT);
    T_OKF(res.elapsed_ms >= 250 && res.elapsed_ms < 2000, "elapsed %lld",
          (long long)res.elapsed_ms);
    rq.timeout_ms = 0;

    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", closed_port());
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_NETWORK);
    T_EQ_INT(res.status, 0);

    url(u, sizeof(u), "/big");
    rq.max_response = 1024;
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_TOO_LARGE);
    rq.max_response = BIG_LEN;
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_OK);
    T_EQ_INT(res.body_len, BIG_LEN);
    rq.max_response = 0;

    url(u, sizeof(u), "/fat");
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_TOO_LARGE);

    url(u, sizeof(u), "/close");
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_NETWORK);
    url(u, sizeof(u), "/partial");
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_NETWORK);

    snprintf(u, sizeof(u), "ftp://127.0.0.1:%d/", closed_port());
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_ERR_INTERNAL);

    /* refused synchronously, no callback */
    rq.method = "GE T";
    T_OK(http_send(h, &rq, on_done, &res) == NULL);
    rq.method = NULL;
    {
        static const char *const bad[] = {"X-A: b\r\nX-Injected: 1", NULL};
        rq.headers = bad;
        T_OK(http_send(h, &rq, on_done, &res) == NULL);
    }
    T_EQ_INT(http_in_flight(h), 0);
}

/* ---- 5. streaming ------------------------------------------------------ */

/* on_data and done share the request's one arg. */
struct stream {
    size_t bytes;
    int chunks;
    int stop_after; /* return nonzero after this many chunks; 0 = never */
    struct http_req *self;
    int cancel_self;
    struct http *h;
    int send_inside; /* http_send from inside on_data */
    struct result inner;
    int calls;
    enum http_error error;
    size_t body_len;
};

static int
on_chunk(const char *buf, size_t len, void *arg)
{
    struct stream *s = arg;
    struct http_request rq = {0};
    char u[128];

    (void)buf;
    s->bytes += len;
    s->chunks++;
    if (s->cancel_self && s->self) {
        http_cancel(s->self);
        s->self = NULL;
        finished++; /* no callback will count it */
    }
    if (s->send_inside) {
        s->send_inside = 0;
        url(u, sizeof(u), "/echo");
        rq.url = u;
        if (http_send(s->h, &rq, on_done, &s->inner) == NULL)
            fprintf(stderr, "send from on_data failed\n");
    }
    return s->stop_after && s->chunks >= s->stop_after;
}

static void
on_stream_done(const struct http_response *r, void *arg)
{
    struct stream *s = arg;

    s->calls++;
    s->error = r->error;
    s->body_len = r->body_len;
    finished++;
}

static void
test_stream(struct http *h)
{
    struct http_request rq = {.on_data = on_chunk};
    struct stream s;
    char u[128];

    url(u, sizeof(u), "/big");
    rq.url = u;

    /* the whole body through on_data, none accumulated; a request sent
     * from inside on_data (inside libcurl) still runs */
    memset(&s, 0, sizeof(s));
    s.h = h;
    s.send_inside = 1;
    finished = 0;
    T_OK(http_send(h, &rq, on_stream_done, &s) != NULL);
    T_OK(run_until(&finished, 2, 10000) == 0);
    T_EQ_INT(s.calls, 1);
    T_EQ_INT(s.error, HTTP_OK);
    T_EQ_INT(s.bytes, BIG_LEN);
    T_EQ_INT(s.body_len, 0);
    T_EQ_INT(s.inner.calls, 1);
    T_EQ_INT(s.inner.status, 200);

    /* max_response bounds a stream too */
    memset(&s, 0, sizeof(s));
    rq.max_response = 1000;
    finished = 0;
    T_OK(http_send(h, &rq, on_stream_done, &s) != NULL);
    T_OK(run_until(&finished, 1, 10000) == 0);
    T_EQ_INT(s.error, HTTP_ERR_TOO_LARGE);
    T_OK(s.bytes <= 1000);
    rq.max_response = 0;

    /* on_data says stop: done gets HTTP_ERR_CANCELLED */
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    finished = 0;
    T_OK(http_send(h, &rq, on_stream_done, &s) != NULL);
    T_OK(run_until(&finished, 1, 10000) == 0);
    T_EQ_INT(s.calls, 1);
    T_EQ_INT(s.error, HTTP_ERR_CANCELLED);
    T_EQ_INT(s.chunks, 1);

    /* http_cancel of itself from inside on_data: done never runs */
    memset(&s, 0, sizeof(s));
    s.cancel_self = 1;
    finished = 0;
    s.self = http_send(h, &rq, on_stream_done, &s);
    T_OK(s.self != NULL);
    T_OK(run_until(&finished, 1, 10000) == 0);
    run_for(50);
    T_EQ_INT(s.calls, 0);
    T_EQ_INT(s.chunks, 1);
    T_EQ_INT(http_in_flight(h), 0);
}

/* ---- 6. cancel and free ------------------------------------------------ */

static struct result cres[4];
static struct http_req *creq[4];

/* the first to finish cancels request 3 from inside its callback */
static void
on_cancel_done(const struct http_response *r, void *arg)
{
    on_done(r, arg);
    if (creq[3]) {
        http_cancel(creq[3]);
        creq[3] = NULL;
    }
    /* cancelling oneself from one's own callback is a no-op */
    http_cancel(creq[(struct result *)arg - cres]);
}

static void
test_cancel(struct http *h)
{
    struct http_request rq = {.timeout_ms = 5000};
    struct http_stats before, after;
    char u[128];
    int i;

    url(u, sizeof(u), "/slow?id=0");
    rq.url = u;
    memset(cres, 0, sizeof(cres));
    http_stats_get(h, &before);
    finished = 0;
    for (i = 0; i < 3; i++)
        creq[i] = http_send(h, &rq, on_cancel_done, &cres[i]);
    url(u, sizeof(u), "/hang"); /* request 0 surely finishes first */
    creq[3] = http_send(h, &rq, on_cancel_done, &cres[3]);
    T_EQ_INT(http_in_flight(h), 4);
    http_cancel(creq[1]); /* before it ever ran */
    creq[1] = NULL;
    T_EQ_INT(http_in_flight(h), 3);
    run_for(50);
    http_cancel(creq[2]); /* while connected, waiting for the reply */
    creq[2] = NULL;
    T_OK(run_until(&finished, 1, 10000) == 0);
    run_for(SLOW_MS + 100);
    T_EQ_INT(cres[0].calls, 1);
    T_EQ_INT(cres[0].status, 200);
    T_EQ_INT(cres[1].calls, 0);
    T_EQ_INT(cres[2].calls, 0);
    T_EQ_INT(cres[3].calls, 0);
    T_EQ_INT(http_in_flight(h), 0);
    http_stats_get(h, &after);
    T_EQ_INT(after.cancelled - before.cancelled, 3);
    T_EQ_INT(after.completed - before.completed, 1);
}

static int never_calls;

static void
on_never(const struct http_response *r, void *arg)
{
    (void)r;
    (void)arg;
    never_calls++;
}

static int free_inside_calls;

static void
on_free_inside(const struct http_response *r, void *arg)
{
    (void)r;
    free_inside_calls++;
    http_free(arg); /* the others in flight are dropped, uncalled */
}

static int free_chunks;

static int
on_free_chunk(const char *buf, size_t len, void *arg)
{
    (void)buf;
    (void)len;
    free_chunks++;
    http_free(arg); /* inside libcurl: finished when this returns */
    return 0;
}

static void
test_free(void)
{
    struct http_request rq = {0};
    struct http *h;
    char u[128];
    int i, sent = 0;

    /* http_free with requests connecting, waiting and queued */
    h = http_new(&loop);
    T_OK(h != NULL);
    url(u, sizeof(u), "/slow?id=1");
    rq.url = u;
    for (i = 0; h && i < 50; i++)
        sent += http_send(h, &rq, on_never, NULL) != NULL;
    T_EQ_INT(sent, 50);
    run_for(50);
    T_EQ_INT(http_in_flight(h), 50);
    http_free(h);
    run_for(SLOW_MS + 100);
    T_EQ_INT(never_calls, 0);

    /* http_free from inside a done callback */
    h = http_new(&loop);
    T_OK(h != NULL);
    url(u, sizeof(u), "/echo");
    for (i = 0; h && i < 5; i++)
        http_send(h, &rq, on_free_inside, h);
    url(u, sizeof(u), "/slow?id=2");
    for (i = 0; h && i < 5; i++)
        http_send(h, &rq, on_free_inside, h);
    T_OK(run_until(&free_inside_calls, 1, 10000) == 0);
    run_for(SLOW_MS + 100);
    T_EQ_INT(free_inside_calls, 1);

    /* http_free from inside on_data, with more streams in flight */
    h = http_new(&loop);
    T_OK(h != NULL);
    url(u, sizeof(u), "/big");
    rq.on_data = on_free_chunk;
    never_calls = 0;
    for (i = 0; h && i < 3; i++)
        http_send(h, &rq, on_never, h);
    T_OK(run_until(&free_chunks, 1, 10000) == 0);
    run_for(100);
    T_EQ_INT(free_chunks, 1);
    T_EQ_INT(never_calls, 0);

    http_free(NULL);
}

/* ---- 7. TLS: https against TLS fakes --------------------------------- */

static int tls_burst_done, tls_burst_ok;

static void
on_tls_burst(const struct http_response *r, void *arg)
{
    (void)arg;
    if (r->error == HTTP_OK && r->status == 200)
        tls_burst_ok++;
    tls_burst_done++;
}

static struct fake_tls_env tls_saved; /* the variables as found */

/* A client made under fake_tls_env(file, dir), as parleyd would be. */
static struct http *
tls_client(const char *file, const char *dir)
{
    fake_tls_env(&tls_saved, file, dir);
    return http_new(&loop);
}

/* One GET that must fail verification: HTTP_ERR_TLS, no status. */
static void
tls_refused(struct http *h, const char *u, const char *what)
{
    struct http_request rq = {0};
    struct result res;

    rq.url = u;
    fetch(h, &rq, &res);
    T_OKF(res.error == HTTP_ERR_TLS, "%s: %s", what,
          http_error_name(res.error));
    T_EQ_INT(res.status, 0);
    T_CONTAINS(res.error_text, "SSL");
    printf("https %s: %s \"%s\"\n", what, http_error_name(res.error),
           res.error_text);
}

static void
test_tls(const int *ports)
{
    static const char json[] = "{\"model\":\"m\"}";
    struct http *h, *bundle;
    struct http_request rq = {0};
    struct http_stats st, st2;
    struct result res;
    char u[128];
    int i;

    /* h trusts ca.pem (SSL_CERT_FILE) and ca2.pem (SSL_CERT_DIR); bundle
     * has libcurl's compiled-in CAs and the system folder */
    h = tls_client("ca.pem", "cadir");
    fake_tls_env(&tls_saved, NULL, NULL);
    unsetenv("SSL_CERT_FILE");
    bundle = http_new(&loop);
    T_OK(h && bundle);
    if (!h || !bundle)
        goto out;

    /* trusted: by address (the certificate's IP entry) and by name */
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/echo", ports[1]);
    rq.url = u;
    rq.body = json;
    rq.body_len = strlen(json);
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_OK);
    T_EQ_INT(res.status, 200);
    T_EQ_STR(res.body, "POST - 13:{\"model\":\"m\"}");
    snprintf(u, sizeof(u), "https://localhost:%d/echo", ports[1]);
    rq.body = NULL;
    rq.body_len = 0;
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_OK);
    T_EQ_STR(res.body, "GET - 0:");

    /* a burst over TLS multiplexes on fewer connections (ALPN h2) */
    http_stats_get(h, &st);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/echo", ports[1]);
    tls_burst_done = tls_burst_ok = 0;
    for (i = 0; i < 50; i++)
        T_OK(http_send(h, &rq, on_tls_burst, NULL) != NULL);
    T_EQ_INT(run_until(&tls_burst_done, 50, 20000), 0);
    T_EQ_INT(tls_burst_ok, 50);
    http_stats_get(h, &st2);
    printf("https burst of 50: %llu new connections\n",
           (unsigned long long)(st2.connects - st.connects));
    T_OKF(st2.connects - st.connects < 50, "%llu connections",
          (unsigned long long)(st2.connects - st.connects));

    /* by CA 2, found in the SSL_CERT_DIR folder */
    snprintf(u, sizeof(u), "https://localhost:%d/echo", ports[2]);
    fetch(h, &rq, &res);
    T_EQ_INT(res.error, HTTP_OK);
    T_EQ_INT(res.status, 200);

    /* by a CA not trusted; the test CA with the default trust */
    snprintf(u, sizeof(u), "https://localhost:%d/echo", ports[3]);
    tls_refused(h, u, "untrusted CA");
    snprintf(u, sizeof(u), "https://localhost:%d/echo", ports[1]);
    tls_refused(bundle, u, "compiled-in bundle");
    /* by the trusted CA, for another name */
    snprintf(u, sizeof(u), "https://localhost:%d/echo", ports[4]);
    tls_refused(h, u, "other name");
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/echo", ports[4]);
    tls_refused(h, u, "other name, by address");
out:
    http_free(h);
    http_free(bundle);
    fake_tls_env_restore(&tls_saved);
}

/* Runs one test function and says how long it took. */
#define PHASE(call)                                                            \
    do {                                                                       \
        uint64_t t0_ = uv_hrtime();                                            \
        call;                                                                  \
        printf("phase %s: %.1f ms\n", #call,                                   \
               (double)(uv_hrtime() - t0_) / 1e6);                             \
    } while (0)

/* ---- main -------------------------------------------------------------- */

static void
raise_nofile(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int
main(void)
{
    struct http *h = NULL;
    struct rlimit rl;
    pid_t pid;
    int ports[5] = {0, 0, 0, 0, 0}, status;

    /* both sides hold one fd per connection, plus slack */
    if (getenv("TEST_HTTP_CONCURRENT")) /* for measuring bigger bursts */
        concurrent = atoi(getenv("TEST_HTTP_CONCURRENT"));
    if (concurrent < 1)
        concurrent = CONCURRENT;
    raise_nofile(4 * (rlim_t)concurrent + 256);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < 2 * (rlim_t)concurrent + 128) {
        printf("skip: RLIMIT_NOFILE %llu is too low\n",
               (unsigned long long)rl.rlim_cur);
        return 77;
    }
    pid = child_start(ports);
    if (pid < 0) {
        fprintf(stderr, "cannot start the fake server\n");
        return 1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", ports[0]);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &watchdog);
    uv_timer_init(&loop, &ticker);
    uv_prepare_init(&loop, &prep);
    h = http_new(&loop);
    T_OK(h != NULL);
    if (h) {
        PHASE(test_concurrent(h));
        PHASE(test_reuse());
        PHASE(test_post(h));
        PHASE(test_headers(h));
        PHASE(test_failures(h));
        PHASE(test_stream(h));
        PHASE(test_cancel(h));
        PHASE(test_free());
        PHASE(test_tls(ports));
    }
    http_free(h);

    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks free the rest */
    T_EQ_INT(uv_loop_close(&loop), 0);
    curl_global_cleanup();
    return t_done();
}
