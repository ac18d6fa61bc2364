/* httpd: a minimal HTTP/1.1 server on the loop, for /metrics and /healthz. */
#ifndef PARLEY_HTTPD_H
#define PARLEY_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * GET and HEAD only, exact paths, keep-alive, everything bounded: a
 * request head over HTTPD_HEAD_MAX is 431, a request line over
 * HTTPD_LINE_MAX is 414, a client that does not finish a request within
 * the timeout (10 s) gets 408, an idle keep-alive connection is closed
 * after the same time, and at most HTTPD_CONNS_MAX connections are
 * served at once (more are closed at accept).  Errors close the
 * connection after the reply.  Not for the internet: it serves a
 * scraper on a trusted address (SPEC §9).
 */
#define HTTPD_HEAD_MAX 8192
#define HTTPD_LINE_MAX 2048
#define HTTPD_HEADERS_MAX 64
#define HTTPD_CONNS_MAX 64
#define HTTPD_TIMEOUT_MS 10000

struct httpd;

/* What a route handler fills in. */
struct httpd_response {
    int status;               /* 200, 503, …; 0 is taken as 500 */
    const char *content_type; /* a static string */
    char *body;               /* malloc'd by the handler; httpd frees it */
    size_t len;
};

/*
 * Listens on host:port (an IPv4 or IPv6 literal, or a name resolved once,
 * synchronously: this runs at start and on SIGHUP only).  NULL with one
 * line in err ("127.0.0.1:9464: address already in use").
 */
struct httpd *httpd_new(uv_loop_t *loop, const char *host, int port, char *err,
                        size_t errlen);
/*
 * Closes the listener and every connection; the memory goes when their
 * handles are closed, so the loop must run once more.  NULL-safe.
 */
void httpd_free(struct httpd *h);

/* Serves GET/HEAD path (exact; the query string is ignored) with fn. */
int httpd_route(struct httpd *h, const char *path,
                void (*fn)(void *arg, struct httpd_response *r), void *arg);
int httpd_port(const struct httpd *h); /* the bound port */
/* Test hook: the slow-client and idle timeout, in ms. */
void httpd_set_timeout(struct httpd *h, uint64_t ms);

/*
 * Pure: parse one request head from buf.  Returns the head's length when
 * a whole head is there (req filled), 0 when more bytes are needed, -1 on
 * a request to refuse with req->status (400, 405, 414, 431, 505).
 */
struct httpd_request {
    char method[8];
    char path[HTTPD_LINE_MAX]; /* without the query string */
    int head;                  /* 1 for HEAD */
    int keep_alive;            /* after this request */
    int status;                /* on -1: the error status */
};
int httpd_parse(const char *buf, size_t len, struct httpd_request *req);

/*
 * Pure: the /healthz body and status — 200 when the database is ok and
 * every connector is up, else 503:
 * {"status":"ok","database":"ok","connectors":{"telegram":"up"}}
 * Written like snprintf (returns the full length).
 */
struct httpd_health_item {
    const char *name; /* a platform name */
    int up;
};
size_t httpd_health_json(int db_ok, const struct httpd_health_item *items,
                         size_t n, char *buf, size_t len, int *status);

const char *httpd_reason(int status); /* "Not Found"; "" when unknown */

#endif
