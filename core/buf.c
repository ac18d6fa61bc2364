/* buf: a growable, NUL-terminated byte buffer (sticky out of memory). */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

#define BUF_INITIAL 256

static int
buf_room(struct buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->len + n + 1 <= b->cap)
        return 0;
    if (n > (size_t)-1 / 2 - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    cap = b->cap ? b->cap : BUF_INITIAL;
    while (cap < b->len + n + 1)
        cap *= 2;
    if ((p = realloc(b->p, cap)) == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void
buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom || buf_room(b, n) < 0)
        return;
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void
buf_rep(struct buf *b, char c, size_t times)
{
    if (b->oom || buf_room(b, times) < 0)
        return;
    memset(b->p + b->len, c, times);
    b->len += times;
    b->p[b->len] = '\0';
}
