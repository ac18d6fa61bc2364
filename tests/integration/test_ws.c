/* test_ws: the websocket client (core/ws) against fakes: frames, caps, closes,
 * reconnects. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/ws.h"
#include "tests/fakes/fake.h"
#include "tests/fakes/fake_client.h"
#include "tests/t.h"

#define STEP_MS 5000

static uv_loop_t loop;
static uv_timer_t watchdog;
static int watchdog_fired;

/* what the client saw */
static struct {
    struct ws_conn *c;
    int opens, texts, closes;
    size_t last_len;
    char last[256];
    int close_code;
    char close_reason[128];
} cl;

static int server_closed, server_peer_code;
static int http_done;

static void
on_watchdog(uv_timer_t *t)
{
    (void)t;
    watchdog_fired = 1;
}

static int
run_until(const int *count, int want)
{
    watchdog_fired = 0;
    uv_timer_start(&watchdog, on_watchdog, STEP_MS, 0);
    while (*count < want && !watchdog_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    if (*count < want)
        fprintf(stderr, "step timed out: %d < %d\n", *count, want);
    return *count >= want ? 0 : -1;
}

/* ---- the fake's websocket side ---------------------------------------- */

static void
srv_text(struct fake_ws *c, const char *buf, size_t len, void *arg)
{
    (void)arg;
    if (len == 9 && memcmp(buf, "close4000", 9) == 0)
        fake_ws_close(c, 4000, "bye");
    else if (len == 4 && memcmp(buf, "drop", 4) == 0)
        fake_ws_drop(c);
    else if (len > 5 && memcmp(buf, "frag:", 5) == 0) {
        size_t n = strtoul(buf + 5, NULL, 10);
        char *m = malloc(n);

        for (size_t i = 0; i < n; i++)
            m[i] = (char)('a' + i % 26);
        fake_ws_send_fragmented(c, m, n, 5);
        free(m);
    } else if (len > 5 && memcmp(buf, "size:", 5) == 0) {
        size_t n = strtoul(buf + 5, NULL, 10);
        char *m = malloc(n);

        memset(m, 'z', n);
        fake_ws_send(c, m, n);
        free(m);
    } else
        fake_ws_send(c, buf, len);
}

static void
srv_closed(struct fake_ws *c, void *arg)
{
    (void)arg;
    server_peer_code = fake_ws_peer_code(c);
    server_closed++;
}

/* ---- the client ------------------------------------------------------- */

static void
cl_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    T_OK(c == cl.c);
    cl.opens++;
}

static void
cl_text(struct ws_conn *c, const char *buf, size_t len, void *arg)
{
    size_t n = len < sizeof(cl.last) - 1 ? len : sizeof(cl.last) - 1;

    (void)c;
    (void)arg;
    memcpy(cl.last, buf, n);
    cl.last[n] = '\0';
    cl.last_len = len;
    T_EQ_INT(buf[len], '\0');
    /* a reassembled message must be intact */
    if (len > 1000 && buf[0] == 'a')
        for (size_t i = 0; i < len; i++)
            if (buf[i] != (char)('a' + i % 26)) {
                T_OKF(0, "byte %zu of %zu corrupt", i, len);
                break;
            }
    cl.texts++;
}

static void
cl_closed(struct ws_conn *c, int code, const char *reason, void *arg)
{
    (void)arg;
    T_OK(c == cl.c);
    cl.close_code = code;
    snprintf(cl.close_reason, sizeof(cl.close_reason), "%s", reason);
    cl.c = NULL; /* the library frees it after we return */
    cl.closes++;
}

static const struct ws_conn_ops cl_ops = {cl_open, cl_text, cl_closed};

static int
connect_open(struct ws_ctx *x, const char *url)
{
    int want = cl.opens + 1;

    cl.c = ws_connect(x, url, &cl_ops, NULL);
    T_OK(cl.c != NULL);
    if (cl.c == NULL)
        return -1;
    return run_until(&cl.opens, want);
}

static void
on_http(const struct fake_call_result *r, void *arg)
{
    (void)arg;
    T_EQ_INT(r->status, 200);
    http_done++;
}

static void
test_in_process(struct ws_ctx *x, struct fake *f)
{
    static const struct fake_ws_ops srv_ops = {NULL, srv_text, srv_closed};
    char url[128], *big;
    int port = fake_port(f), want;

    T_EQ_INT(fake_ws_route(f, "/ws", &srv_ops, NULL), 0);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", port);

    /* several messages both ways, in order */
    T_EQ_INT(connect_open(x, url), 0);
    T_OK(ws_is_open(cl.c));
    T_EQ_INT(fake_ws_count(f), 1);
    T_EQ_INT(ws_send_text(cl.c, "one", 3), 0);
    T_EQ_INT(ws_send_text(cl.c, "two", 3), 0);
    T_EQ_INT(ws_send_text(cl.c, "three", 5), 0);
    T_EQ_INT(run_until(&cl.texts, 3), 0);
    T_EQ_STR(cl.last, "three");

    /* the outgoing frame cap, default and raised */
    big = malloc(60000);
    memset(big, 'y', 60000);
    T_EQ_INT(ws_send_text(cl.c, big, WS_FRAME_MAX + 1), -1);
    ws_set_frame_max(cl.c, 65536);
    T_EQ_INT(ws_send_text(cl.c, big, 60000), 0);
    T_EQ_INT(run_until(&cl.texts, 4), 0);
    T_EQ_INT(cl.last_len, 60000);
    free(big);

    /* a fragmented message under the cap is reassembled */
    T_EQ_INT(ws_send_text(cl.c, "frag:300000", 11), 0);
    T_EQ_INT(run_until(&cl.texts, 5), 0);
    T_EQ_INT(cl.last_len, 300000);

    /* the fake closes with 4000: observed, then reconnect */
    T_EQ_INT(ws_send_text(cl.c, "close4000", 9), 0);
    T_EQ_INT(run_until(&cl.closes, 1), 0);
    T_EQ_INT(cl.close_code, 4000);
    T_EQ_STR(cl.close_reason, "bye");
    T_OK(cl.c == NULL);
    T_EQ_INT(connect_open(x, url), 0);
    T_EQ_INT(cl.opens, 2);

    /* TCP drop without a close frame: 1006, then reconnect */
    T_EQ_INT(ws_send_text(cl.c, "drop", 4), 0);
    T_EQ_INT(run_until(&cl.closes, 2), 0);
    T_EQ_INT(cl.close_code, 1006);
    T_EQ_INT(connect_open(x, url), 0);

    /* a message over the incoming cap: close 1009 and report */
    ws_set_msg_max(cl.c, 100000);
    want = server_closed + 1;
    T_EQ_INT(ws_send_text(cl.c, "size:150000", 11), 0);
    T_EQ_INT(run_until(&cl.closes, 3), 0);
    T_EQ_INT(cl.close_code, 1009);
    T_EQ_INT(run_until(&server_closed, want), 0);
    T_EQ_INT(server_peer_code, 1009);
    T_EQ_INT(connect_open(x, url), 0);

    /* a graceful close from our side */
    want = server_closed + 1;
    ws_close(cl.c, 1000, "done");
    T_EQ_INT(ws_send_text(cl.c, "late", 4), -1);
    T_EQ_INT(run_until(&cl.closes, 4), 0);
    T_EQ_INT(cl.close_code, 1000);
    T_EQ_INT(run_until(&server_closed, want), 0);
    T_EQ_INT(server_peer_code, 1000);
    T_EQ_INT(fake_ws_count(f), 0);

    /* a host name goes through uv_getaddrinfo */
    snprintf(url, sizeof(url), "ws://localhost:%d/ws", port);
    T_EQ_INT(connect_open(x, url), 0);
    want = server_closed + 1;
    ws_close(cl.c, 4100, "bye from client");
    T_EQ_INT(run_until(&cl.closes, 5), 0);
    T_EQ_INT(cl.close_code, 4100);
    T_EQ_INT(run_until(&server_closed, want), 0);
    T_EQ_INT(server_peer_code, 4100);

    /* refused connection: closed 1006 with a reason, never open */
    cl.c = ws_connect(x, "ws://127.0.0.1:1/ws", &cl_ops, NULL);
    T_OK(cl.c != NULL);
    T_EQ_INT(run_until(&cl.closes, 6), 0);
    T_EQ_INT(cl.close_code, 1006);
    T_CONTAINS(cl.close_reason, "connect");

    /* a path the fake does not serve: the handshake fails */
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/nows", port);
    cl.c = ws_connect(x, url, &cl_ops, NULL);
    T_EQ_INT(run_until(&cl.closes, 7), 0);
    T_EQ_INT(cl.close_code, 1006);

    /* bad URLs are refused up front */
    T_OK(ws_connect(x, "http://127.0.0.1/ws", &cl_ops, NULL) == NULL);
    T_OK(ws_connect(x, "ws://127.0.0.1:99999/", &cl_ops, NULL) == NULL);
    T_EQ_INT(cl.opens, 5);
}

/* ---- fake_echo in a child process ------------------------------------- */

/* fake_echo in a child; over TLS with the test certificate `cert` (stem,
 * e.g. "server") unless NULL. */
static pid_t
echo_spawn(const char *argv0, const char *cert, int *port)
{
    char path[PATH_MAX], line[64], crt[PATH_MAX], key[PATH_MAX], name[64];
    const char *build = getenv("PARLEY_BUILD");
    int fds[2];
    pid_t pid;
    ssize_t n;
    size_t got = 0;

    if (build)
        snprintf(path, sizeof(path), "%s/fake_echo", build);
    else {
        /* BUILD/tests/integration/test_ws -> BUILD/fake_echo */
        const char *s = strstr(argv0, "/tests/integration/");

        snprintf(path, sizeof(path), "%.*s/fake_echo", s ? (int)(s - argv0) : 1,
                 s ? argv0 : ".");
    }
    if (access(path, X_OK) != 0 || pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (cert) {
            snprintf(name, sizeof(name), "%s.pem", cert);
            fake_cert_path(crt, sizeof(crt), name);
            snprintf(name, sizeof(name), "%s.key", cert);
            fake_cert_path(key, sizeof(key), name);
            execl(path, path, "-d", "10", "-c", crt, "-k", key, (char *)NULL);
        } else
            execl(path, path, "-d", "10", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* blocking read of one line before the loop runs: bounded by alarm */
    alarm(10);
    while (got < sizeof(line) - 1 &&
           (n = read(fds[0], line + got, sizeof(line) - 1 - got)) > 0) {
        got += (size_t)n;
        if (memchr(line, '\n', got))
            break;
    }
    alarm(0);
    close(fds[0]);
    line[got] = '\0';
    if (sscanf(line, "port=%d", port) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static void
test_child(struct ws_ctx *x, const char *argv0)
{
    char url[128];
    int port = 0, status = 0, base;
    pid_t pid = echo_spawn(argv0, NULL, &port);

    T_OK(pid > 0);
    if (pid <= 0)
        return;
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", port);
    T_EQ_INT(connect_open(x, url), 0);
    base = cl.texts;
    T_EQ_INT(ws_send_text(cl.c, "hello child", 11), 0);
    T_EQ_INT(run_until(&cl.texts, base + 1), 0);
    T_EQ_STR(cl.last, "hello child");

    /* keepalive: a stopped peer answers no ping → 1006 "ping timeout" */
    {
        uint64_t t0;

        ws_set_ping(cl.c, 100, 300);
        base = cl.closes;
        /* pongs come back: the socket outlives several timeouts */
        watchdog_fired = 0;
        uv_timer_start(&watchdog, on_watchdog, 1000, 0);
        while (!watchdog_fired && cl.closes == base)
            uv_run(&loop, UV_RUN_ONCE);
        T_EQ_INT(cl.closes, base);
        T_OK(ws_is_open(cl.c));
        kill(pid, SIGSTOP);
        t0 = uv_now(&loop);
        T_EQ_INT(run_until(&cl.closes, base + 1), 0);
        T_EQ_INT(cl.close_code, 1006);
        T_EQ_STR(cl.close_reason, "ping timeout");
        T_OKF(uv_now(&loop) - t0 <= 1000, "detected after %llu ms",
              (unsigned long long)(uv_now(&loop) - t0));
        kill(pid, SIGCONT);
        T_EQ_INT(connect_open(x, url), 0);
    }

    /* GET /close-ws closes every ws client with 4000 */
    base = cl.closes;
    fake_call(&loop, port, "GET", "/close-ws", NULL, NULL, 0, 3000, on_http,
              NULL);
    T_EQ_INT(run_until(&cl.closes, base + 1), 0);
    T_EQ_INT(cl.close_code, 4000);
    T_EQ_INT(run_until(&http_done, 1), 0);

    /* reconnect, then the server process goes away */
    T_EQ_INT(connect_open(x, url), 0);
    base = cl.closes;
    kill(pid, SIGTERM);
    T_EQ_INT(run_until(&cl.closes, base + 1), 0);
    T_OKF(cl.close_code == 1006 || cl.close_code == 1001, "code %d",
          cl.close_code);
    T_EQ_INT(waitpid(pid, &status, 0), pid);
    T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- TLS (wss) ---------------------------------------------------------- */

static struct fake_tls_env tls_saved; /* the variables as found */

/* Opens url, echoes one message, closes with 1000. */
static void
tls_round_trip(struct ws_ctx *x, const char *url)
{
    int base;

    T_EQ_INT(connect_open(x, url), 0);
    if (cl.c == NULL)
        return;
    base = cl.texts;
    T_EQ_INT(ws_send_text(cl.c, "over tls", 8), 0);
    T_EQ_INT(run_until(&cl.texts, base + 1), 0);
    T_EQ_STR(cl.last, "over tls");
    base = cl.closes;
    ws_close(cl.c, 1000, "done");
    T_EQ_INT(run_until(&cl.closes, base + 1), 0);
    T_EQ_INT(cl.close_code, 1000);
}

/* Connects to url and expects a TLS failure: closed 1006, never open. */
static void
tls_refused(struct ws_ctx *x, const char *url, const char *what)
{
    int opens = cl.opens, closes = cl.closes;

    cl.c = ws_connect(x, url, &cl_ops, NULL);
    T_OK(cl.c != NULL);
    T_EQ_INT(run_until(&cl.closes, closes + 1), 0);
    T_OKF(cl.close_code == 1006, "%s: code %d", what, cl.close_code);
    T_OKF(cl.opens == opens, "%s: opened", what);
    T_CONTAINS(cl.close_reason, "connect");
    printf("wss %s: closed %d \"%s\"\n", what, cl.close_code, cl.close_reason);
}

/*
 * x trusts ca.pem through SSL_CERT_FILE and ca2.pem through SSL_CERT_DIR
 * (main).  Each TLS server is a fake_echo child presenting one test
 * certificate: lws 4.1.6 leaks the client SSL_CTX of every TLS-initialising
 * lws context of a process but the last one made (docs/io.md), so this
 * process keeps one, x.
 */
static void
test_tls(struct ws_ctx *x, const char *argv0)
{
    static const char *const certs[] = {"server", "server2", "untrusted",
                                        "other"};
    int ports[4] = {0, 0, 0, 0}, status;
    pid_t pids[4] = {-1, -1, -1, -1};
    char url[128];
    size_t i;

    for (i = 0; i < 4; i++) {
        pids[i] = echo_spawn(argv0, certs[i], &ports[i]);
        T_OKF(pids[i] > 0, "fake_echo with %s.pem", certs[i]);
        if (pids[i] <= 0)
            goto out;
    }

    /* by the test CA (SSL_CERT_FILE): by name, and by address (the
     * certificate's IP entry) */
    snprintf(url, sizeof(url), "wss://localhost:%d/ws", ports[0]);
    tls_round_trip(x, url);
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/ws", ports[0]);
    tls_round_trip(x, url);
    /* by CA 2, found in the SSL_CERT_DIR folder */
    snprintf(url, sizeof(url), "wss://localhost:%d/ws", ports[1]);
    tls_round_trip(x, url);
    /* by a CA not trusted */
    snprintf(url, sizeof(url), "wss://localhost:%d/ws", ports[2]);
    tls_refused(x, url, "untrusted CA");
    /* by the trusted CA, for another name */
    snprintf(url, sizeof(url), "wss://localhost:%d/ws", ports[3]);
    tls_refused(x, url, "other name");
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/ws", ports[3]);
    tls_refused(x, url, "other name, by address");
out:
    for (i = 0; i < 4; i++) {
        if (pids[i] <= 0)
            continue;
        kill(pids[i], SIGTERM);
        T_EQ_INT(waitpid(pids[i], &status, 0), pids[i]);
        T_OKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fake_echo %s: status %d", certs[i], status);
    }
}

int
main(int argc, char **argv)
{
    struct ws_ctx *x = NULL;
    struct fake *f = NULL;

    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    log_init("test_ws");
    if (getenv("TEST_DEBUG"))
        log_set_level(LOG_LEVEL_DEBUG);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &watchdog);

    /* both lws contexts (client and fake server) share this one loop */
    fake_tls_env(&tls_saved, "ca.pem",
                 "cadir"); /* for test_tls; read right here */
    x = ws_ctx_new(&loop);
    fake_tls_env_restore(&tls_saved);
    T_OK(x != NULL);
    f = fake_new(&loop, 0);
    T_OK(f != NULL);
    if (x && f)
        test_in_process(x, f);
    if (x) {
        test_child(x, argv[0]);
        test_tls(x, argv[0]);
    }

    ws_ctx_free(x);
    fake_free(f);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    return t_done();
}
