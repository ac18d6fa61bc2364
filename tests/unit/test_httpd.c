/* test_httpd: the request-head parser and the /healthz body (pure parts). */
#include <stdio.h>
#include <string.h>

#include "bot/httpd.h"
#include "tests/t.h"

static void
test_parse_table(void)
{
    static const struct {
        const char *in;
        int rc; /* >0: the head's length is checked as strlen(in) */
        int status;
        const char *path;
        int head, keep_alive;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1, 0, "/metrics", 0, 1},
        {"GET /metrics HTTP/1.1\r\n\r\n", 1, 0, "/metrics", 0, 1},
        {"HEAD /healthz HTTP/1.1\r\n\r\n", 1, 0, "/healthz", 1, 1},
        {"GET /metrics?x=1&y HTTP/1.1\r\n\r\n", 1, 0, "/metrics", 0, 1},
        {"GET / HTTP/1.1\nHost: x\n\n", 1, 0, "/", 0, 1}, /* bare LF */
        {"\r\nGET /a HTTP/1.1\r\n\r\n", 1, 0, "/a", 0, 1},
        {"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", 1, 0, "/a", 0, 0},
        {"GET /a HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n", 1, 0, "/a", 0,
         0},
        {"GET /a HTTP/1.0\r\n\r\n", 1, 0, "/a", 0, 0},
        {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, 0, "/a", 0, 1},
        {"GET /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1, 0, "/a", 0, 1},
        /* incomplete */
        {"", 0, 0, NULL, 0, 0},
        {"GET /metrics HTT", 0, 0, NULL, 0, 0},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, 0, NULL, 0, 0},
        /* refused */
        {"POST /metrics HTTP/1.1\r\n\r\n", -1, 405, NULL, 0, 0},
        {"DELETE / HTTP/1.1\r\n\r\n", -1, 405, NULL, 0, 0},
        {"VERYLONGMETHOD / HTTP/1.1\r\n\r\n", -1, 405, NULL, 0, 0},
        {"GET /a HTTP/2.0\r\n\r\n", -1, 505, NULL, 0, 0},
        {"GET /a HTTP/1.1 \r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a FTP/1.1\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET a HTTP/1.1\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET http://x/a HTTP/1.1\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET\r\n\r\n", -1, 400, NULL, 0, 0},
        {" GET / HTTP/1.1\r\n\r\n", -1, 400, NULL, 0, 0},
        {"G(T / HTTP/1.1\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a HTTP/1.1\r\nNoColon\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a HTTP/1.1\r\nHost : x\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a HTTP/1.1\r\n: x\r\n\r\n", -1, 400, NULL, 0, 0},
        {"GET /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", -1, 400, NULL, 0,
         0},
        {"GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -1, 400, NULL,
         0, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct httpd_request req;
        size_t len = strlen(cases[i].in);
        int rc = httpd_parse(cases[i].in, len, &req);

        if (cases[i].rc > 0) {
            T_OKF(rc == (int)len, "case %zu: rc %d, want %zu", i, rc, len);
            T_EQ_STR(req.path, cases[i].path);
            T_EQ_INT(req.head, cases[i].head);
            T_OKF(req.keep_alive == cases[i].keep_alive, "case %zu", i);
        } else {
            T_OKF(rc == cases[i].rc, "case %zu: rc %d, want %d", i, rc,
                  cases[i].rc);
            if (rc < 0)
                T_OKF(req.status == cases[i].status,
                      "case %zu: status %d, want %d", i, req.status,
                      cases[i].status);
        }
    }
}

static void
test_parse_bounds(void)
{
    static char buf[HTTPD_HEAD_MAX + 4096];
    struct httpd_request req;
    size_t n;

    /* a request line that never ends: 414 once it passes the cap */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    T_EQ_INT(httpd_parse(buf, HTTPD_LINE_MAX - 1, &req), 0);
    T_EQ_INT(httpd_parse(buf, HTTPD_LINE_MAX, &req), -1);
    T_EQ_INT(req.status, 414);
    /* a complete but overlong line is 414 too */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /%0*d HTTP/1.1\r\n\r\n",
                         HTTPD_LINE_MAX, 0);
    T_EQ_INT(httpd_parse(buf, n, &req), -1);
    T_EQ_INT(req.status, 414);
    /* a path just under the cap fits the struct */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /%0*d HTTP/1.1\r\n\r\n",
                         HTTPD_LINE_MAX - 20, 0);
    T_EQ_INT(httpd_parse(buf, n, &req), (int)n);
    T_EQ_INT(strlen(req.path), HTTPD_LINE_MAX - 19);

    /* headers that never end: 431 at HTTPD_HEAD_MAX */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    while (n < HTTPD_HEAD_MAX)
        n +=
            (size_t)snprintf(buf + n, sizeof(buf) - n, "X-Pad: %01000d\r\n", 0);
    T_EQ_INT(httpd_parse(buf, HTTPD_HEAD_MAX - 1, &req), 0);
    T_EQ_INT(httpd_parse(buf, HTTPD_HEAD_MAX, &req), -1);
    T_EQ_INT(req.status, 431);

    /* too many header lines, even if small */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTPD_HEADERS_MAX; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "A: b\r\n");
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    T_EQ_INT(httpd_parse(buf, n, &req), -1);
    T_EQ_INT(req.status, 431);

    /* pipelined: the first head's length only */
    n = (size_t)snprintf(buf, sizeof(buf),
                         "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    T_EQ_INT(httpd_parse(buf, n, &req), 19);
    T_EQ_STR(req.path, "/a");
    T_EQ_INT(httpd_parse(buf + 19, n - 19, &req), 19);
    T_EQ_STR(req.path, "/b");
}

static void
test_health(void)
{
    static const struct httpd_health_item up2[] = {{"telegram", 1},
                                                   {"slack", 1}};
    static const struct httpd_health_item one_down[] = {{"telegram", 1},
                                                        {"discord", 0}};
    static const struct httpd_health_item odd[] = {{"te\"le\\g", 1}};
    char buf[256], small[10];
    int status = 0;
    size_t n;

    n = httpd_health_json(1, NULL, 0, buf, sizeof(buf), &status);
    T_EQ_STR(buf,
             "{\"status\":\"ok\",\"database\":\"ok\",\"connectors\":{}}\n");
    T_EQ_INT(n, strlen(buf));
    T_EQ_INT(status, 200);
    httpd_health_json(1, up2, 2, buf, sizeof(buf), &status);
    T_EQ_STR(buf, "{\"status\":\"ok\",\"database\":\"ok\",\"connectors\":"
                  "{\"telegram\":\"up\",\"slack\":\"up\"}}\n");
    T_EQ_INT(status, 200);
    httpd_health_json(1, one_down, 2, buf, sizeof(buf), &status);
    T_EQ_STR(buf, "{\"status\":\"fail\",\"database\":\"ok\",\"connectors\":"
                  "{\"telegram\":\"up\",\"discord\":\"down\"}}\n");
    T_EQ_INT(status, 503);
    httpd_health_json(0, up2, 2, buf, sizeof(buf), &status);
    T_EQ_STR(buf, "{\"status\":\"fail\",\"database\":\"fail\",\"connectors\":"
                  "{\"telegram\":\"up\",\"slack\":\"up\"}}\n");
    T_EQ_INT(status, 503);
    /* names are reduced to [A-Za-z0-9_-]: the JSON stays valid */
    httpd_health_json(1, odd, 1, buf, sizeof(buf), &status);
    T_CONTAINS(buf, "{\"teleg\":\"up\"}");
    /* snprintf-like */
    n = httpd_health_json(1, up2, 2, small, sizeof(small), &status);
    T_EQ_INT(n, strlen("{\"status\":\"ok\",\"database\":\"ok\",\"connectors"
                       "\":{\"telegram\":\"up\",\"slack\":\"up\"}}\n"));
    T_EQ_STR(small, "{\"status\"");
    T_EQ_STR(httpd_reason(431), "Request Header Fields Too Large");
    T_EQ_STR(httpd_reason(299), "");
}

int
main(void)
{
    test_parse_table();
    test_parse_bounds();
    test_health();
    return t_done();
}
