/* daemon: the loop's root — owns the libuv loop and every long-lived subsystem.
 */
#ifndef PARLEY_DAEMON_H
#define PARLEY_DAEMON_H

#include <stdint.h>
#include <uv.h>

#include "bot/notify.h"

struct config;
struct store;
struct http;
struct ws_ctx;
struct metrics;
struct httpd;
struct llm;
struct asker;
struct core;
struct telegram;
struct discord;
struct slack;

#define DAEMON_CONNECTORS_MAX 8

/* A connector's status getter, for /healthz and parley_connector_up. */
struct daemon_connector {
    const char *platform; /* "telegram", "discord", "slack" (static) */
    int (*is_up)(void *arg);
    void *arg;
};

/*
 * The one root object of parleyd.  It lives on main()'s stack; everything
 * else hangs off it, so there are no globals beyond it (and the logger).
 * Signals, the watchdog and the stop deadline are timers and handles on
 * the loop: nothing ever blocks it.
 */
struct daemon {
    uv_loop_t loop;
    const char *config_path;
    struct config *cfg; /* owned; replaced whole on a good SIGHUP */
    struct store *store;
    struct http *http;
    struct ws_ctx *ws;         /* NULL unless a websocket platform is enabled */
    struct llm *llm;           /* the LLM client, on http */
    struct asker *asker;       /* binds core's asks to llm */
    struct core *core;         /* events in, replies out, durable jobs */
    struct telegram *telegram; /* NULL unless enabled */
    struct discord *discord;   /* NULL unless enabled */
    struct slack *slack;       /* NULL unless enabled */
    struct metrics *metrics;   /* the registry: every module may count */
    struct httpd *httpd;       /* NULL when metrics_listen is empty */
    char *httpd_listen;        /* the metrics_listen httpd serves; "" = off */
    char *db_path;             /* state_dir/parley.db as opened */
    struct daemon_connector connectors[DAEMON_CONNECTORS_MAX];
    size_t nconnectors;
    struct notify notify;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;
    uv_timer_t stop_timer;
    uv_timer_t drain_timer; /* the stop waits for close frames */
    uv_timer_t trim_timer;  /* gives freed heap back (daemon.c) */
    uint64_t trims;         /* malloc_trim calls */
    long long trim_rss;     /* RSS after the last one, bytes */
    int64_t drain_ms;
    int loop_ready;
    int64_t started_ms;
    double started_unix; /* wall clock, for parley_process_start_time_seconds */
    int stopping;
    int exit_code;
};

/* Takes ownership of cfg (secrets already resolved).  Returns an exit code:
 * 0 when ready to run, else the code main() must exit with. */
int daemon_init(struct daemon *d, const char *config_path, struct config *cfg);
/* Runs the loop until a graceful stop; returns the process exit code. */
int daemon_run(struct daemon *d);
void daemon_release(struct daemon *d);

/* Ask for a graceful stop (the SIGTERM path), e.g. on a fatal connector. */
void daemon_stop(struct daemon *d, int exit_code);

/*
 * A connector registers how to tell whether it is connected: /healthz is
 * 200 only when every enabled platform has a getter that says up (an
 * enabled platform without one is down) and the database is writable.
 * is_up is called on the loop at each scrape; it must not block.
 * -1 when the table is full.
 */
int daemon_connector_add(struct daemon *d, const char *platform,
                         int (*is_up)(void *arg), void *arg);

/* Monotonic milliseconds: only the glue reads the clock (STYLE point 7). */
int64_t daemon_now_ms(struct daemon *d);

#endif
