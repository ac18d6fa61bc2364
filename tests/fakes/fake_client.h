/* fake_client: a tiny raw HTTP/1.1 client on a uv loop, for testing the fakes.
 */
#ifndef PARLEY_FAKE_CLIENT_H
#define PARLEY_FAKE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * Sends one request with "Connection: close" to 127.0.0.1:port and reads
 * until EOF or timeout, without interpreting much: the tests want to see
 * exactly what went over the wire (a dropped connection, half a body).
 * Not for the daemon: parley's HTTP client is core/http.c.
 */

#define FAKE_CALL_MAX (4 * 1024 * 1024) /* response bytes kept */

struct fake_call_result {
    int status;      /* 0 when no status line arrived */
    int timed_out;   /* the timeout fired before EOF */
    int error;       /* a libuv error (connect refused...) or 0 */
    const char *raw; /* everything received, NUL-terminated */
    size_t raw_len;
    const char *body; /* after the blank line, or NULL */
    size_t body_len;
    long content_length; /* -1 if absent */
    int64_t elapsed_ms;
};

/* headers: extra "Name: value\r\n" lines or NULL.  done runs once. */
int fake_call(uv_loop_t *loop, int port, const char *method, const char *path,
              const char *headers, const char *body, size_t body_len,
              int timeout_ms,
              void (*done)(const struct fake_call_result *r, void *arg),
              void *arg);

/* Header value copied into buf (case-insensitive name); NULL if absent. */
const char *fake_call_header(const struct fake_call_result *r, const char *name,
                             char *buf, size_t cap);

#endif
