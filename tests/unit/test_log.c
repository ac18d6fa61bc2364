/* test_log: level parsing and the one-line, prefixed output format. */
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "tests/t.h"

static char *
capture(void (*fn)(void))
{
    static char buf[4096];
    int p[2], saved;
    ssize_t n;

    if (pipe(p) == -1)
        return NULL;
    saved = dup(2);
    dup2(p[1], 2);
    fn();
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void
emit_info(void)
{
    log_info("event=x key=%d", 7);
}

static void
emit_debug(void)
{
    log_debug("hidden");
}

static void
emit_newline(void)
{
    log_warnx("a\nb");
}

int
main(void)
{
    enum log_level l;

    T_EQ_INT(log_level_parse("debug", &l), 0);
    T_EQ_INT(l, LOG_LEVEL_DEBUG);
    T_EQ_INT(log_level_parse("error", &l), 0);
    T_EQ_INT(l, LOG_LEVEL_ERROR);
    T_EQ_INT(log_level_parse("loud", &l), -1);
    T_EQ_STR(log_level_name(LOG_LEVEL_WARN), "warn");

    setenv("JOURNAL_STREAM", "8:1234", 1);
    log_init("test");
    log_set_level(LOG_LEVEL_INFO);
    T_EQ_STR(capture(emit_info), "<6>level=info event=x key=7\n");
    T_EQ_STR(capture(emit_debug), "");
    /* a newline in a message never forges a second line */
    T_EQ_STR(capture(emit_newline), "<4>level=warn a b\n");
    unsetenv("JOURNAL_STREAM");
    log_init("test");
    T_CONTAINS(capture(emit_info), "Z test: level=info event=x key=7\n");
    return t_done();
}
