/* notify: the systemd sd_notify protocol over $NOTIFY_SOCKET, and its watchdog.
 */
#ifndef PARLEY_NOTIFY_H
#define PARLEY_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * Embedded in the daemon root.  Without $NOTIFY_SOCKET every call is a
 * no-op, so parleyd behaves the same under systemd and in a terminal.
 */
struct notify {
    int fd; /* -1 when not under a notify-capable supervisor */
    struct sockaddr_un addr;
    socklen_t addrlen;
    int64_t watchdog_usec; /* 0 when the watchdog is off */
};

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment. */
int notify_init(struct notify *n);
void notify_release(struct notify *n);
/* Sends one datagram, e.g. "READY=1\nSTATUS=running"; 0 also when off. */
int notify_send(struct notify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Half the watchdog period in ms (systemd's advice), 0 when off. */
int64_t notify_watchdog_interval_ms(const struct notify *n);

/*
 * Pure parsers, exposed for tests: the socket path ('@' = abstract
 * namespace) into addr, and WATCHDOG_USEC/WATCHDOG_PID into usec
 * (0 when absent, malformed, or meant for another pid).
 */
int notify_parse_addr(const char *path, struct sockaddr_un *addr,
                      socklen_t *len);
int64_t notify_parse_watchdog(const char *usec, const char *pid, long mypid);

#endif
