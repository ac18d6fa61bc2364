/* notify: the systemd sd_notify protocol over $NOTIFY_SOCKET, and its watchdog.
 */
#include "bot/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

int
notify_parse_addr(const char *path, struct sockaddr_un *addr, socklen_t *len)
{
    size_t n;

    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return -1;
    n = strlen(path);
    if (n < 2 || n >= sizeof(addr->sun_path))
        return -1;
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, n);
    if (path[0] == '@')
        addr->sun_path[0] = '\0'; /* Linux abstract namespace */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                       (path[0] == '/' ? 1 : 0));
    return 0;
}

int64_t
notify_parse_watchdog(const char *usec, const char *pid, long mypid)
{
    char *end;
    long long v;

    if (usec == NULL || *usec == '\0')
        return 0;
    if (pid != NULL && *pid != '\0') {
        errno = 0;
        long p = strtol(pid, &end, 10);
        if (errno != 0 || *end != '\0' || p != mypid)
            return 0; /* meant for another process (e.g. a wrapper) */
    }
    errno = 0;
    v = strtoll(usec, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return 0;
    return (int64_t)v;
}

int
notify_init(struct notify *n)
{
    const char *path = getenv("NOTIFY_SOCKET");
    int rc = -1;

    memset(n, 0, sizeof(*n));
    n->fd = -1;
    n->watchdog_usec = notify_parse_watchdog(
        getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), (long)getpid());
    if (path == NULL || *path == '\0') {
        rc = 0;
        goto out;
    }
    if (notify_parse_addr(path, &n->addr, &n->addrlen) == -1) {
        log_warnx("notify: ignoring malformed NOTIFY_SOCKET");
        rc = 0;
        goto out;
    }
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd == -1) {
        log_warn("notify: socket");
        goto out;
    }
    rc = 0;
out:
    return rc;
}

void
notify_release(struct notify *n)
{
    if (n->fd != -1)
        close(n->fd);
    n->fd = -1;
}

int
notify_send(struct notify *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int len;

    if (n->fd == -1)
        return 0;
    va_start(ap, fmt);
    len = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(msg))
        return -1;
    /* a datagram: either all of it goes or none; never block the loop */
    if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT,
               (struct sockaddr *)&n->addr, n->addrlen) == -1) {
        log_warn("notify: sendto");
        return -1;
    }
    return 0;
}

int64_t
notify_watchdog_interval_ms(const struct notify *n)
{
    if (n->watchdog_usec <= 0)
        return 0;
    int64_t ms = n->watchdog_usec / 2000;
    return ms > 0 ? ms : 1;
}
