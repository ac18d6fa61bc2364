/* log: one line per event on stderr, journald <N> prefixes, key=value. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static struct {
    enum log_level level;
    int journal; /* stderr is connected to journald: it stamps the time */
    char ident[32];
} logger = {LOG_LEVEL_INFO, 0, "parley"};

void
log_init(const char *ident)
{
    snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
    logger.journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(enum log_level level)
{
    logger.level = level;
}

enum log_level
log_get_level(void)
{
    return logger.level;
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* syslog priorities: debug 7, info 6, warning 4, err 3 */
static const int level_prio[] = {7, 6, 4, 3};

const char *
log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LEVEL_ERROR)
        return "?";
    return level_names[level];
}

int
log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_LEVEL_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static void
log_vemit(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t n = 0;
    int saved = errno;
    int w;

    if (level < logger.level)
        return;
    w = snprintf(line, sizeof(line), "<%d>", level_prio[level]);
    n = (size_t)w;
    if (!logger.journal) {
        struct timeval tv;
        struct tm tm;

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n += strftime(line + n, sizeof(line) - n, "%Y-%m-%dT%H:%M:%S", &tm);
        w = snprintf(line + n, sizeof(line) - n,
                     ".%03dZ %s: ", (int)(tv.tv_usec / 1000), logger.ident);
        n += (size_t)w;
    }
    w = snprintf(line + n, sizeof(line) - n, "level=%s ", level_names[level]);
    n += (size_t)w;
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (w > 0)
        n += (size_t)w;
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    if (with_errno) {
        w = snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
        if (w > 0)
            n += (size_t)w;
        if (n >= sizeof(line) - 1)
            n = sizeof(line) - 2;
    }
    /* one line per event: a newline inside the message would forge one */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
    errno = saved;
}

#define LOG_FN(name, lvl, errflag)                                             \
    void name(const char *fmt, ...)                                            \
    {                                                                          \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        log_vemit(lvl, errflag, fmt, ap);                                      \
        va_end(ap);                                                            \
    }

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
