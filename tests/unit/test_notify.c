/* test_notify: NOTIFY_SOCKET and WATCHDOG_* parsing. */
#include <stddef.h>

#include "bot/notify.h"
#include "tests/t.h"

static void
test_addr(void)
{
    static const struct {
        const char *path;
        int rc;
        int abstract;
    } rows[] = {
        {"/run/systemd/notify", 0, 0},
        {"@/org/freedesktop/systemd1/notify/123", 0, 1},
        {"relative/path", -1, 0},
        {"", -1, 0},
        {"@", -1, 0},
        {NULL, -1, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct sockaddr_un a;
        socklen_t len = 0;
        int rc = notify_parse_addr(rows[i].path, &a, &len);

        T_EQ_INT(rc, rows[i].rc);
        if (rc == 0 && rows[i].abstract) {
            T_EQ_INT(a.sun_path[0], '\0');
            T_EQ_STR(a.sun_path + 1, rows[i].path + 1);
            T_EQ_INT(len, offsetof(struct sockaddr_un, sun_path) +
                              strlen(rows[i].path));
        } else if (rc == 0) {
            T_EQ_STR(a.sun_path, rows[i].path);
        }
    }
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    struct sockaddr_un a;
    socklen_t len;
    T_EQ_INT(notify_parse_addr(longpath, &a, &len), -1);
}

static void
test_watchdog(void)
{
    static const struct {
        const char *usec, *pid;
        long mypid;
        long long want;
    } rows[] = {
        {"30000000", NULL, 42, 30000000},
        {"30000000", "42", 42, 30000000},
        {"30000000", "43", 42, 0},
        {"30000000", "4x", 42, 0},
        {"0", NULL, 42, 0},
        {"-5", NULL, 42, 0},
        {"12abc", NULL, 42, 0},
        {"", NULL, 42, 0},
        {NULL, NULL, 42, 0},
        {"99999999999999999999999", NULL, 42, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        T_EQ_INT(
            notify_parse_watchdog(rows[i].usec, rows[i].pid, rows[i].mypid),
            rows[i].want);

    struct notify n = {.fd = -1, .watchdog_usec = 30000000};
    T_EQ_INT(notify_watchdog_interval_ms(&n), 15000);
    n.watchdog_usec = 0;
    T_EQ_INT(notify_watchdog_interval_ms(&n), 0);
    n.watchdog_usec = 1;
    T_EQ_INT(notify_watchdog_interval_ms(&n), 1);
    /* off: sending is a no-op that succeeds */
    T_EQ_INT(notify_send(&n, "READY=1"), 0);
}

int
main(void)
{
    test_addr();
    test_watchdog();
    return t_done();
}
