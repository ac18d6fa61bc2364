/* buf: a growable, always NUL-terminated byte buffer for the formatters
 * and codecs that build text piece by piece. */
#ifndef PARLEY_BUF_H
#define PARLEY_BUF_H

#include <stddef.h>

/*
 * Zero-initialise ({0}) to start.  Out of memory is sticky: oom is set,
 * later appends do nothing, and the owner checks oom once at the end
 * (then frees p).  p is NUL-terminated once anything was appended (also
 * "" after buf_add(b, "", 0)); the owner frees it.
 */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

void buf_add(struct buf *b, const char *s, size_t n);
void buf_str(struct buf *b, const char *s);
/* c, times times */
void buf_rep(struct buf *b, char c, size_t times);

#endif
