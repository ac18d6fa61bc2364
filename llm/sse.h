/* sse: an incremental, bounded server-sent events (text/event-stream)
 * parser. */
#ifndef PARLEY_SSE_H
#define PARLEY_SSE_H

#include <stddef.h>

/*
 * Pure: bytes in, (event name, data) pairs out, nothing else.  Feed it
 * the body as it arrives, split anywhere; it keeps what it needs between
 * calls.  What it follows of the WHATWG "event stream interpretation":
 *   - lines end with CRLF, LF or CR (a CRLF split across two feeds is one
 *     line end); a UTF-8 BOM at the very start is skipped;
 *   - "field: value" (one space after the colon dropped), "field" alone
 *     is the field with an empty value, a line starting with ':' is a
 *     comment;
 *   - "event" sets the name, "data" lines are joined with "\n", "id",
 *     "retry" and unknown fields are ignored;
 *   - a blank line dispatches: nothing when no data line came, else the
 *     name ("message" when none was given) and the joined data;
 *   - bytes after the last blank line (a stream cut mid-event) are never
 *     dispatched.
 * Bounds (STYLE point 10): an event (its data, name and the line being
 * read) over SSE_EVENT_MAX bytes, or a name over SSE_NAME_MAX, is
 * SSE_TOO_LARGE; the parser then refuses every later feed.  Memory is
 * the largest event seen, kept until sse_release.
 */

#define SSE_EVENT_MAX (1u * 1024 * 1024)
#define SSE_NAME_MAX 64

enum sse_status {
    SSE_OK = 0,
    SSE_TOO_LARGE, /* an event or a name over its bound */
    SSE_NOMEM,     /* out of memory */
    SSE_STOPPED,   /* the event callback returned nonzero */
};

/*
 * One dispatched event.  name is NUL-terminated ("message" by default),
 * data is NUL-terminated too (len without the NUL, may hold NUL bytes);
 * both are borrowed for the call.  Return 0 to go on, nonzero to stop
 * (sse_feed then returns SSE_STOPPED, and so does every later feed).
 */
typedef int (*sse_event_fn)(const char *name, const char *data, size_t len,
                            void *arg);

/* Embedded; zeroed by sse_init, released by sse_release. */
struct sse {
    char *line; /* the line being read */
    size_t line_len, line_cap;
    char *data; /* data lines of the event being read, joined */
    size_t data_len, data_cap;
    int has_data;
    char name[SSE_NAME_MAX + 1];
    size_t name_len;
    int after_cr;  /* the last byte was a CR: a LF next is the same end */
    int bom_check; /* 0..3: bytes of the leading BOM seen so far */
    int started;   /* past the place a BOM may be */
    enum sse_status status; /* sticky once not SSE_OK */
};

void sse_init(struct sse *p);
void sse_release(struct sse *p);

/*
 * Parse len bytes, calling fn for each event completed by them, in
 * order.  SSE_OK, or the (sticky) reason it stopped.
 */
enum sse_status sse_feed(struct sse *p, const char *buf, size_t len,
                         sse_event_fn fn, void *arg);

/* "ok", "too_large", ... for logs. */
const char *sse_status_name(enum sse_status st);

#endif
