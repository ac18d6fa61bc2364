/* sse: an incremental, bounded server-sent events (text/event-stream)
 * parser. */
#include "llm/sse.h"

#include <stdlib.h>
#include <string.h>

static const char bom[3] = {'\xEF', '\xBB', '\xBF'};

void
sse_init(struct sse *p)
{
    memset(p, 0, sizeof(*p));
}

void
sse_release(struct sse *p)
{
    if (p == NULL)
        return;
    free(p->line);
    free(p->data);
    sse_init(p);
}

const char *
sse_status_name(enum sse_status st)
{
    switch (st) {
    case SSE_OK:
        return "ok";
    case SSE_TOO_LARGE:
        return "too_large";
    case SSE_NOMEM:
        return "out_of_memory";
    case SSE_STOPPED:
        return "stopped";
    default:
        return "?";
    }
}

/* Grow *buf to hold need bytes plus a NUL; need is within SSE_EVENT_MAX. */
static int
grow(char **buf, size_t *cap, size_t need)
{
    size_t c = *cap ? *cap : 256;
    char *n;

    if (need + 1 <= *cap)
        return 0;
    while (c < need + 1)
        c *= 2;
    n = realloc(*buf, c);
    if (n == NULL)
        return -1;
    *buf = n;
    *cap = c;
    return 0;
}

/* The bytes an event holds now; the bound covers them all. */
static size_t
event_bytes(const struct sse *p)
{
    return p->line_len + p->data_len + p->name_len;
}

static enum sse_status
line_add(struct sse *p, const char *s, size_t n)
{
    if (n > SSE_EVENT_MAX || event_bytes(p) > SSE_EVENT_MAX - n)
        return SSE_TOO_LARGE;
    if (grow(&p->line, &p->line_cap, p->line_len + n) != 0)
        return SSE_NOMEM;
    memcpy(p->line + p->line_len, s, n);
    p->line_len += n;
    p->line[p->line_len] = '\0';
    return SSE_OK;
}

static enum sse_status
dispatch(struct sse *p, sse_event_fn fn, void *arg)
{
    int stop = 0;

    if (p->has_data) {
        /* the data of every line was followed by "\n": drop the last */
        p->data_len--;
        p->data[p->data_len] = '\0';
        stop = fn(p->name_len ? p->name : "message", p->data, p->data_len, arg);
    }
    p->data_len = 0;
    p->has_data = 0;
    p->name_len = 0;
    p->name[0] = '\0';
    return stop ? SSE_STOPPED : SSE_OK;
}

/* One complete line (without its end) in p->line. */
static enum sse_status
line_end(struct sse *p, sse_event_fn fn, void *arg)
{
    const char *line = p->line, *colon, *value;
    size_t len = p->line_len, flen, vlen;

    p->line_len = 0;
    if (len == 0)
        return dispatch(p, fn, arg);
    if (line[0] == ':')
        return SSE_OK; /* a comment (keep-alives are sent as ones) */
    colon = memchr(line, ':', len);
    flen = colon ? (size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    vlen = len - (size_t)(value - line);
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        /* the line's bytes leave the line buffer: the bound still holds */
        if (grow(&p->data, &p->data_cap, p->data_len + vlen + 1) != 0)
            return SSE_NOMEM;
        memcpy(p->data + p->data_len, value, vlen);
        p->data_len += vlen;
        p->data[p->data_len++] = '\n';
        p->data[p->data_len] = '\0';
        p->has_data = 1;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        if (vlen > SSE_NAME_MAX)
            return SSE_TOO_LARGE;
        memcpy(p->name, value, vlen);
        p->name[vlen] = '\0';
        p->name_len = vlen;
    }
    /* id, retry and anything else: nothing we use */
    return SSE_OK;
}

/* Bytes past the BOM check. */
static enum sse_status
feed(struct sse *p, const char *buf, size_t len, sse_event_fn fn, void *arg)
{
    size_t i = 0;
    enum sse_status st;

    while (i < len) {
        const char *s = buf + i;
        size_t n = len - i, k = 0;

        if (p->after_cr) {
            p->after_cr = 0;
            if (s[0] == '\n') {
                i++;
                continue;
            }
        }
        while (k < n && s[k] != '\r' && s[k] != '\n')
            k++;
        if ((st = line_add(p, s, k)) != SSE_OK)
            return st;
        i += k;
        if (k == n)
            break; /* the line goes on in the next feed */
        p->after_cr = s[k] == '\r';
        i++;
        if ((st = line_end(p, fn, arg)) != SSE_OK)
            return st;
    }
    return SSE_OK;
}

enum sse_status
sse_feed(struct sse *p, const char *buf, size_t len, sse_event_fn fn, void *arg)
{
    size_t i = 0;

    if (p->status != SSE_OK)
        return p->status;
    /* a BOM may only open the stream, and may come split */
    while (!p->started && i < len) {
        if (buf[i] == bom[p->bom_check]) {
            i++;
            if (++p->bom_check == 3)
                p->started = 1;
            continue;
        }
        p->started = 1;
        if (p->bom_check > 0 &&
            (p->status = feed(p, bom, (size_t)p->bom_check, fn, arg)) != SSE_OK)
            return p->status;
    }
    p->status = feed(p, buf + i, len - i, fn, arg);
    return p->status;
}
