/* test_buf: the shared growable text buffer (core/buf). */
#include "core/buf.h"
#include "tests/t.h"

#include <stdlib.h>
#include <string.h>

static void
test_grow(void)
{
    struct buf b = {0};
    size_t want = 0;

    buf_add(&b, "", 0);
    T_OK(b.p != NULL);
    T_EQ_STR(b.p, "");
    T_EQ_INT(b.len, 0);
    /* past the first allocation several times: always NUL-terminated */
    for (int i = 0; i < 300; i++) {
        buf_str(&b, "abc");
        buf_rep(&b, '-', 2);
        want += 5;
        T_OK(b.len == want && b.p[b.len] == '\0' && b.cap > b.len);
    }
    T_OK(strncmp(b.p, "abc--abc--", 10) == 0);
    T_EQ_INT(b.oom, 0);
    buf_rep(&b, 'x', 0);
    buf_add(&b, "yz", 1);
    T_EQ_INT(b.len, want + 1);
    T_EQ_INT(b.p[b.len - 1], 'y');
    free(b.p);
}

static void
test_sticky_oom(void)
{
    struct buf b = {0};

    buf_str(&b, "kept");
    /* an append that cannot be sized is refused and stays refused */
    buf_add(&b, "x", (size_t)-1 / 2);
    T_EQ_INT(b.oom, 1);
    buf_str(&b, "more");
    T_EQ_STR(b.p, "kept");
    T_EQ_INT(b.len, 4);
    free(b.p);
}

int
main(void)
{
    test_grow();
    test_sticky_oom();
    return t_done();
}
