/* daemon: the loop's root — owns the libuv loop and every long-lived subsystem.
 */
#include "bot/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bot/httpd.h"
#include "config/config.h"
#include "connectors/discord.h"
#include "connectors/slack.h"
#include "connectors/telegram.h"
#include "bot/asker.h"
#include "core/core.h"
#include "core/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/ws.h"
#include "llm/llm.h"
#include "storage/store.h"

#define STOP_DEADLINE_MS 9000
#define DRAIN_TICK_MS 10
#define DRAIN_MAX_MS                                                           \
    1000 /* for close frames to leave */ /* SPEC §9: exit within 10 s of      \
                                            SIGTERM */
/*
 * glibc keeps freed chunks in its arenas and gives back on its own only a
 * free top of the main heap.  After a burst (thousands of requests in
 * flight, then answered) the few objects still alive are spread over the
 * heap, so RSS would stay at the burst's peak for the rest of the
 * process's life.  malloc_trim(0) releases the free pages (madvise) of
 * every arena, the threadpool's too, but holds each arena's lock while it
 * does, and costs a syscall per free run of pages: 2 to 20 ms per MB
 * given back, measured in a small shared VM (page freeing is slow
 * there).  So it runs only when it pays and the loop is quiet: checked
 * every TRIM_CHECK_MS, when at most TRIM_QUIET HTTP requests are in
 * flight (a burst is over), RSS grew by TRIM_SLACK since the last trim
 * and the arenas hold more than TRIM_SLACK free bytes.  Once per burst.
 */
#define TRIM_CHECK_MS 5000
#define TRIM_SLACK (8LL << 20)
#define TRIM_QUIET 64
#define EXIT_OK 0
#define EXIT_RUNTIME 2
#define EXIT_INTERNAL 70

int64_t
daemon_now_ms(struct daemon *d)
{
    (void)d;
    return (int64_t)(uv_hrtime() / 1000000);
}

static int
daemon_platforms(const struct config *c, char *buf, size_t len)
{
    int n = 0;

    buf[0] = '\0';
    if (c->telegram.enabled)
        n += snprintf(buf + strlen(buf), len - strlen(buf), "%stelegram",
                      n ? "," : "") > 0;
    if (c->discord.enabled)
        n += snprintf(buf + strlen(buf), len - strlen(buf), "%sdiscord",
                      n ? "," : "") > 0;
    if (c->slack.enabled)
        n += snprintf(buf + strlen(buf), len - strlen(buf), "%sslack",
                      n ? "," : "") > 0;
    if (n == 0)
        snprintf(buf, len, "none");
    return n;
}

static void
daemon_close_handle(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

static void daemon_trim_start(struct daemon *d);

/*
 * The graceful stop: say STOPPING=1, stop intake, release the subsystems
 * (their handles close on this loop), flush writes.  When the last handle
 * is closed uv_run() returns by itself; the deadline timer is the backstop
 * for anything that does not finish in time.
 */
static void
daemon_stop_deadline(uv_timer_t *t)
{
    struct daemon *d = t->data;

    log_warnx("stop: deadline of %d ms passed, forcing the loop down",
              STOP_DEADLINE_MS);
    uv_stop(&d->loop);
}

/*
 * Releases every subsystem in dependency order: intake first (the metrics
 * endpoint, then the connectors), then core (it persists the limiter and
 * leaves unfinished jobs durable for the next start), then what core used
 * (the asker before the LLM client, which owns the calls), then the
 * transports, and the database last, flushed.  Their handles close on the
 * loop; used by the graceful stop and by daemon_release.
 */
static void
daemon_free_subsystems(struct daemon *d)
{
    httpd_free(d->httpd); /* a scrape during the stop would see half a daemon */
    d->httpd = NULL;
    d->nconnectors = 0;
    telegram_free(d->telegram);
    d->telegram = NULL;
    discord_free(d->discord);
    d->discord = NULL;
    slack_free(d->slack);
    d->slack = NULL;
    if (d->core != NULL)
        core_stop(d->core);
    core_free(d->core);
    d->core = NULL;
    asker_free(d->asker);
    d->asker = NULL;
    llm_free(d->llm);
    d->llm = NULL;
    ws_ctx_free(d->ws);
    d->ws = NULL;
    http_free(d->http);
    d->http = NULL;
    if (d->store != NULL && store_flush(d->store) == -1)
        log_warnx("stop: flushing the database failed");
    store_close(d->store);
    d->store = NULL;
}

/* Waits (bounded) for the websocket connectors to finish closing, then
 * releases everything. */
static void
daemon_on_drain(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct discord_status ds;
    int busy = 0;

    if (d->discord != NULL) {
        discord_status(d->discord, &ds);
        busy |= ds.connected;
    }
    d->drain_ms += DRAIN_TICK_MS;
    if (busy && d->drain_ms < DRAIN_MAX_MS)
        return;
    daemon_close_handle((uv_handle_t *)&d->drain_timer);
    daemon_free_subsystems(d);
}

void
daemon_stop(struct daemon *d, int exit_code)
{
    if (d->stopping) {
        return;
    }
    d->stopping = 1;
    d->exit_code = exit_code;
    notify_send(&d->notify, "STOPPING=1\nSTATUS=stopping");
    log_info("stop: begin exit_code=%d", exit_code);

    daemon_close_handle((uv_handle_t *)&d->sig_hup);
    daemon_close_handle((uv_handle_t *)&d->watchdog);
    daemon_close_handle((uv_handle_t *)&d->trim_timer);
    /* intake stops first; the gateways get a moment to send their
     * resumable close frames before the transports go */
    telegram_stop(d->telegram);
    discord_stop(d->discord);
    slack_stop(d->slack);
    d->drain_ms = 0;
    uv_timer_start(&d->drain_timer, daemon_on_drain, 0, DRAIN_TICK_MS);

    /* the deadline must not keep the loop alive on its own */
    uv_timer_start(&d->stop_timer, daemon_stop_deadline, STOP_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&d->stop_timer);
    daemon_close_handle((uv_handle_t *)&d->sig_term);
    daemon_close_handle((uv_handle_t *)&d->sig_int);
}

static double
daemon_wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

int
daemon_connector_add(struct daemon *d, const char *platform,
                     int (*is_up)(void *arg), void *arg)
{
    struct daemon_connector *c;

    if (d->nconnectors >= DAEMON_CONNECTORS_MAX)
        return -1;
    c = &d->connectors[d->nconnectors++];
    c->platform = platform;
    c->is_up = is_up;
    c->arg = arg;
    return 0;
}

/*
 * The enabled platforms and whether each is up, in config order; an
 * enabled platform whose connector has not registered is down.
 */
static size_t
daemon_health_items(struct daemon *d, struct httpd_health_item *items)
{
    static const char *const names[] = {"telegram", "discord", "slack"};
    const int enabled[] = {d->cfg->telegram.enabled, d->cfg->discord.enabled,
                           d->cfg->slack.enabled};
    size_t i, j, n = 0;

    for (i = 0; i < 3; i++) {
        if (!enabled[i])
            continue;
        items[n].name = names[i];
        items[n].up = 0;
        for (j = 0; j < d->nconnectors; j++)
            if (strcmp(d->connectors[j].platform, names[i]) == 0)
                items[n].up = d->connectors[j].is_up(d->connectors[j].arg);
        n++;
    }
    return n;
}

static void
daemon_on_healthz(void *arg, struct httpd_response *r)
{
    struct daemon *d = arg;
    struct httpd_health_item items[3];
    size_t n = daemon_health_items(d, items), len;
    int db_ok = d->store != NULL && store_writable(d->store);

    len = httpd_health_json(db_ok, items, n, NULL, 0, &r->status);
    r->body = malloc(len + 1);
    if (r->body == NULL) {
        r->status = 500;
        return;
    }
    httpd_health_json(db_ok, items, n, r->body, len + 1, &r->status);
    r->len = len;
    r->content_type = "application/json";
}

/* Open descriptors: entries of /proc/self/fd less the one reading it. */
static long
daemon_count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (dir == NULL)
        return -1;
    while ((e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n - 1;
}

static long long
daemon_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = -1;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

#ifdef __GLIBC__
static void
daemon_on_trim(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct mallinfo2 mi;
    long long rss = daemon_rss_bytes(), after;
    uint64_t t0;

    if (rss < 0 || rss < d->trim_rss + TRIM_SLACK ||
        http_in_flight(d->http) > TRIM_QUIET)
        return;
    mi = mallinfo2();
    if ((long long)mi.fordblks < TRIM_SLACK)
        return;
    t0 = uv_hrtime();
    malloc_trim(0);
    after = daemon_rss_bytes();
    d->trim_rss = after >= 0 ? after : rss;
    d->trims++;
    log_info("malloc_trim: %zu MB free in the arenas, RSS %lld -> %lld MB in "
             "%llu ms",
             mi.fordblks >> 20, rss >> 20, d->trim_rss >> 20,
             (unsigned long long)((uv_hrtime() - t0) / 1000000));
}
#endif

static void
daemon_trim_start(struct daemon *d)
{
#ifdef __GLIBC__
    /* never keeps the loop alive on its own */
    uv_timer_start(&d->trim_timer, daemon_on_trim, TRIM_CHECK_MS,
                   TRIM_CHECK_MS);
    uv_unref((uv_handle_t *)&d->trim_timer);
#else
    (void)d;
#endif
}

static long long
daemon_db_bytes(const char *path)
{
    char wal[PATH_MAX];
    struct stat st;
    long long n = 0;

    if (path == NULL)
        return 0;
    if (stat(path, &st) == 0)
        n += st.st_size;
    snprintf(wal, sizeof(wal), "%s-wal", path);
    if (stat(wal, &st) == 0)
        n += st.st_size;
    return n;
}

/* The process gauges are read at scrape time, not kept up to date. */
/*
 * The subsystems keep plain counters (no registry in their hot paths);
 * a scrape copies them into the registry.  Cumulative counters stay
 * monotonic because the subsystems never reset theirs.
 */
/* A connector's streamed-answer edits and deletes (its status counters). */
static void
daemon_collect_edits(struct daemon *d, const char *platform, uint64_t edits,
                     uint64_t deletes)
{
    metrics_set_total(d->metrics, METRIC_STREAM_EDITS, (double)edits, platform,
                      "edit");
    metrics_set_total(d->metrics, METRIC_STREAM_EDITS, (double)deletes,
                      platform, "delete");
}

static void
daemon_collect_llm(struct daemon *d)
{
    static const double breaker_gauge[] = {0, 2, 1}; /* closed, open, half */
    struct llm_stats *ls;
    size_t i;
    int k;

    if (d->llm == NULL || (ls = calloc(1, sizeof(*ls))) == NULL)
        return;
    llm_stats(d->llm, ls);
    for (i = 0; i < ls->nmodels; i++) {
        const struct llm_model_stats *m = &ls->models[i];

        metrics_set_total(d->metrics, METRIC_LLM_REQUESTS, (double)m->answered,
                          m->name, "ok");
        for (k = 0; k < ERRCLASS_COUNT; k++) {
            if (m->errors[k] > 0)
                metrics_set_total(d->metrics, METRIC_LLM_REQUESTS,
                                  (double)m->errors[k], m->name,
                                  errclass_name((enum errclass)k));
            if (m->retries[k] > 0)
                metrics_set_total(d->metrics, METRIC_LLM_RETRIES,
                                  (double)m->retries[k], m->name,
                                  errclass_name((enum errclass)k));
        }
        metrics_set_total(d->metrics, METRIC_LLM_FALLBACKS,
                          (double)m->fallbacks, m->name, "next");
        metrics_set_total(d->metrics, METRIC_LLM_PACER_DELAY,
                          (double)m->pacer_delay_ms / 1000.0, m->name);
        metrics_set_total(d->metrics, METRIC_LLM_TOKENS, (double)m->tokens_in,
                          m->name, "prompt");
        metrics_set_total(d->metrics, METRIC_LLM_TOKENS, (double)m->tokens_out,
                          m->name, "completion");
        metrics_set_total(d->metrics, METRIC_LLM_COST, m->cost_usd, m->name);
        if ((unsigned)m->breaker < 3)
            metrics_set(d->metrics, METRIC_LLM_BREAKER_STATE,
                        breaker_gauge[m->breaker], m->name);
    }
    free(ls);
}

/* A connector's HTTP calls on the wire, against its caps (docs/metrics.md). */
static void
daemon_collect_inflight(struct daemon *d, const char *platform, size_t sends,
                        size_t other)
{
    metrics_set(d->metrics, METRIC_CONNECTOR_INFLIGHT, (double)sends, platform,
                "send");
    metrics_set(d->metrics, METRIC_CONNECTOR_INFLIGHT, (double)other, platform,
                "other");
}

static void
daemon_collect_pipeline(struct daemon *d)
{
    struct core_stats cs;
    struct telegram_status ts;

    if (d->core != NULL) {
        core_stats(d->core, &cs);
        metrics_set_total(d->metrics, METRIC_NOTICES, (double)cs.notices,
                          "any");
        metrics_set(d->metrics, METRIC_QUEUE_DEPTH, (double)cs.inflight,
                    "in_memory");
    }
    if (d->discord != NULL) {
        struct discord_status ds;

        discord_status(d->discord, &ds);
        metrics_set_total(d->metrics, METRIC_MESSAGES_RECEIVED,
                          (double)ds.events, "discord");
        metrics_set_total(d->metrics, METRIC_ANSWERS_SENT, (double)ds.sent,
                          "discord");
        daemon_collect_edits(d, "discord", ds.edits, ds.deletes);
        daemon_collect_inflight(d, "discord", ds.sends_inflight,
                                ds.misc_inflight);
    }
    if (d->slack != NULL) {
        struct slack_status ss;

        slack_status(d->slack, &ss);
        metrics_set_total(d->metrics, METRIC_MESSAGES_RECEIVED,
                          (double)ss.accepted, "slack");
        metrics_set_total(d->metrics, METRIC_ANSWERS_SENT, (double)ss.sent,
                          "slack");
        daemon_collect_edits(d, "slack", ss.edits, ss.deletes);
        /* Slack counts its reactions with its sends (one cap for both) */
        daemon_collect_inflight(d, "slack", ss.sends_inflight, 0);
    }
    if (d->telegram != NULL) {
        telegram_status(d->telegram, &ts);
        metrics_set_total(d->metrics, METRIC_MESSAGES_RECEIVED,
                          (double)ts.events, "telegram");
        metrics_set_total(d->metrics, METRIC_ANSWERS_SENT, (double)ts.sent,
                          "telegram");
        daemon_collect_edits(d, "telegram", ts.edits, ts.deletes);
        daemon_collect_inflight(d, "telegram", ts.sends_inflight,
                                ts.misc_inflight);
    }
    daemon_collect_llm(d);
}

static void
daemon_collect(struct daemon *d)
{
    struct httpd_health_item items[3];
    size_t i, n = daemon_health_items(d, items);
    long long v;

    metrics_set(d->metrics, METRIC_UPTIME,
                (double)(daemon_now_ms(d) - d->started_ms) / 1000.0);
    if ((v = daemon_rss_bytes()) >= 0)
        metrics_set(d->metrics, METRIC_RSS, (double)v);
    if ((v = daemon_count_fds()) >= 0)
        metrics_set(d->metrics, METRIC_OPEN_FDS, (double)v);
    metrics_set(d->metrics, METRIC_DATABASE_SIZE,
                (double)daemon_db_bytes(d->db_path));
    for (i = 0; i < n; i++)
        metrics_set(d->metrics, METRIC_CONNECTOR_UP, items[i].up,
                    items[i].name);
    daemon_collect_pipeline(d);
}

static void
daemon_on_metrics(void *arg, struct httpd_response *r)
{
    struct daemon *d = arg;
    size_t cap = 65536, len;

    daemon_collect(d);
    for (;;) {
        char *buf = malloc(cap);

        if (buf == NULL) {
            r->status = 500;
            return;
        }
        len = metrics_render(d->metrics, buf, cap);
        if (len < cap) {
            r->body = buf;
            r->len = len;
            break;
        }
        free(buf);
        cap = len + 1;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static struct httpd *
daemon_httpd_start(struct daemon *d, const struct config *c)
{
    char err[256];
    struct httpd *h;

    h = httpd_new(&d->loop, c->bot.metrics_host, c->bot.metrics_port, err,
                  sizeof(err));
    if (h == NULL) {
        log_error("metrics: cannot listen on metrics_listen=%s: %s",
                  c->bot.metrics_listen, err);
        return NULL;
    }
    httpd_route(h, "/metrics", daemon_on_metrics, d);
    httpd_route(h, "/healthz", daemon_on_healthz, d);
    log_info("metrics: listening on %s (/metrics, /healthz) port=%d",
             c->bot.metrics_listen, httpd_port(h));
    return h;
}

/*
 * SIGHUP with a changed metrics_listen: listen on the new address first
 * and close the old listener only when that worked, so a typo or a busy
 * port keeps the endpoint where it was (logged).  Moving to an address
 * that overlaps the old one on the same port (127.0.0.1 → 0.0.0.0) fails
 * that way too: that change needs a restart.
 */
static void
daemon_reload_httpd(struct daemon *d, const struct config *nc)
{
    struct httpd *h;

    const char *want = nc->bot.metrics_port > 0 ? nc->bot.metrics_listen : "";
    char *copy;

    if (strcmp(want, d->httpd_listen ? d->httpd_listen : "") == 0)
        return;
    copy = strdup(want);
    if (copy == NULL) {
        log_error("reload: out of memory; metrics_listen unchanged");
        return;
    }
    if (*want == '\0') {
        h = NULL;
        log_info("reload: metrics endpoint off");
    } else if ((h = daemon_httpd_start(d, nc)) == NULL) {
        log_error("reload: keeping metrics_listen=%s; a restart applies %s",
                  *d->httpd_listen ? d->httpd_listen : "(off)", want);
        free(copy);
        return;
    }
    httpd_free(d->httpd);
    d->httpd = h;
    free(d->httpd_listen);
    d->httpd_listen = copy;
}

static void
daemon_reload(struct daemon *d)
{
    struct config *nc = NULL, *old;
    struct config_diag diag;
    size_t i;

    memset(&diag, 0, sizeof(diag));
    notify_send(&d->notify, "RELOADING=1\nSTATUS=reloading");
    log_info("reload: reading config=%s", d->config_path);
    if (config_load(d->config_path, &nc, &diag) == -1 ||
        config_resolve_secrets(nc, &diag) == -1) {
        for (i = 0; i < diag.nerrors; i++)
            log_error("reload: %s", diag.errors[i]);
        log_error("reload: rejected, keeping the running configuration");
        config_free(nc);
        nc = NULL;
        notify_send(&d->notify, "READY=1\nSTATUS=running (reload rejected)");
        goto out;
    }
    for (i = 0; i < diag.nwarnings; i++)
        log_warnx("reload: %s", diag.warnings[i]);
    if (strcmp(nc->bot.state_dir, d->cfg->bot.state_dir) != 0)
        log_warnx("reload: state_dir changes need a restart; keeping %s",
                  d->cfg->bot.state_dir);
    log_set_level(nc->bot.log_level);
    daemon_reload_httpd(d, nc);
    /* both keep state (pacers, breakers, limiter) across the swap; core
     * keeps a pointer to the config, so it moves before the old is freed */
    if (d->llm != NULL && llm_configure(d->llm, nc) == -1)
        log_warnx("reload: the LLM client kept its old models");
    if (d->core != NULL)
        core_configure(d->core, nc);
    if (d->telegram != NULL)
        telegram_configure(d->telegram, nc);
    if (d->slack != NULL)
        slack_configure(d->slack, nc);
    old = d->cfg;
    d->cfg = nc;
    nc = NULL;
    config_free(old);
    log_info("reload: applied log_level=%s",
             log_level_name(d->cfg->bot.log_level));
    notify_send(&d->notify, "READY=1\nSTATUS=running");
out:
    config_diag_release(&diag);
}

/* Signal handlers only turn a signal into a loop event (redis' rule). */
static void
daemon_on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;

    switch (signum) {
    case SIGHUP:
        daemon_reload(d);
        break;
    case SIGTERM:
    case SIGINT:
        log_info("signal: %s, stopping",
                 signum == SIGTERM ? "SIGTERM" : "SIGINT");
        daemon_stop(d, EXIT_OK);
        break;
    default:
        break;
    }
}

static void
daemon_on_watchdog(uv_timer_t *t)
{
    struct daemon *d = t->data;

    notify_send(&d->notify, "WATCHDOG=1");
}

static int
daemon_mkdir_state(const char *dir)
{
    struct stat st;

    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        log_error("start: state_dir=%s is not a directory", dir);
        return -1;
    }
    if (errno != ENOENT || mkdir(dir, 0700) == -1) {
        log_error("start: state_dir=%s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int
daemon_open_store(struct daemon *d)
{
    char path[PATH_MAX], err[256];
    int n;

    if (daemon_mkdir_state(d->cfg->bot.state_dir) == -1)
        return -1;
    n = snprintf(path, sizeof(path), "%s/parley.db", d->cfg->bot.state_dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        log_error("start: state_dir path too long");
        return -1;
    }
    d->db_path = strdup(path);
    if (d->db_path == NULL) {
        log_error("start: out of memory");
        return -1;
    }
    d->store = store_open(path, err, sizeof(err));
    if (d->store == NULL) {
        log_error("start: database unusable path=%s: %s", path, err);
        return -1;
    }
    if (store_attach_loop(d->store, &d->loop) == -1) {
        log_error("start: cannot attach the database to the loop");
        return -1;
    }
    return 0;
}

static int
daemon_signal(struct daemon *d, uv_signal_t *s, int signum)
{
    s->data = d;
    if (uv_signal_init(&d->loop, s) != 0 ||
        uv_signal_start(s, daemon_on_signal, signum) != 0)
        return -1;
    return 0;
}

/* A platform rejected us (bad token, fatal close code): exit 2 (SPEC §1). */
static void
daemon_on_fatal(void *arg, const char *why)
{
    struct daemon *d = arg;

    log_error("fatal: %s", why);
    daemon_stop(d, EXIT_RUNTIME);
}

static int
daemon_telegram_up(void *arg)
{
    struct telegram_status st;

    telegram_status(arg, &st);
    return st.up;
}

/* Each enabled platform's connector, registered for /healthz.  A connector
 * that cannot start fails the start (exit 2); one the platform later
 * rejects calls daemon_on_fatal.  (Three constructors of different shapes:
 * spelled out rather than forced through one table of casts.) */
static int
daemon_start_connectors(struct daemon *d)
{
    const struct config *c = d->cfg;

    if (c->telegram.enabled) {
        d->telegram = telegram_new(&d->loop, d->http, d->core, d->store, c,
                                   daemon_on_fatal, d);
        if (d->telegram == NULL || telegram_start(d->telegram) == -1) {
            log_error("start: cannot start the telegram connector");
            return -1;
        }
        daemon_connector_add(d, "telegram", daemon_telegram_up, d->telegram);
    }
    if (c->discord.enabled) {
        d->discord = discord_new(&d->loop, d->http, d->ws, d->core, d->store, c,
                                 daemon_on_fatal, d);
        if (d->discord == NULL || discord_start(d->discord) == -1) {
            log_error("start: cannot start the discord connector");
            return -1;
        }
        daemon_connector_add(d, "discord", discord_is_up, d->discord);
    }
    if (c->slack.enabled) {
        d->slack = slack_new(&d->loop, d->http, d->ws, d->core, d->store, c,
                             daemon_on_fatal, d);
        if (d->slack == NULL || slack_start(d->slack) == -1) {
            log_error("start: cannot start the slack connector");
            return -1;
        }
        daemon_connector_add(d, "slack", slack_is_up, d->slack);
    }
    return 0;
}

int
daemon_init(struct daemon *d, const char *config_path, struct config *cfg)
{
    int rc = EXIT_INTERNAL;
    int64_t wd;
    char platforms[64];

    memset(d, 0, sizeof(*d));
    d->config_path = config_path;
    d->cfg = cfg;
    if (uv_loop_init(&d->loop) != 0) {
        log_error("start: uv_loop_init failed");
        goto out;
    }
    d->loop_ready = 1;
    uv_timer_init(&d->loop, &d->watchdog);
    d->watchdog.data = d;
    uv_timer_init(&d->loop, &d->stop_timer);
    d->stop_timer.data = d;
    uv_timer_init(&d->loop, &d->drain_timer);
    d->drain_timer.data = d;
    uv_timer_init(&d->loop, &d->trim_timer);
    d->trim_timer.data = d;
    daemon_trim_start(d);
    d->started_ms = daemon_now_ms(d);
    d->started_unix = daemon_wall_s();
    notify_init(&d->notify);
    d->metrics = metrics_new();
    if (d->metrics == NULL) {
        log_error("start: out of memory");
        goto out;
    }
    metrics_set(d->metrics, METRIC_BUILD_INFO, 1, PARLEY_VERSION);
    metrics_set(d->metrics, METRIC_START_TIME, d->started_unix);
    if (daemon_signal(d, &d->sig_term, SIGTERM) == -1 ||
        daemon_signal(d, &d->sig_int, SIGINT) == -1 ||
        daemon_signal(d, &d->sig_hup, SIGHUP) == -1) {
        log_error("start: cannot install signal handlers");
        goto out;
    }

    rc = EXIT_RUNTIME;
    if (daemon_open_store(d) == -1)
        goto out;
    d->httpd_listen =
        strdup(cfg->bot.metrics_port > 0 ? cfg->bot.metrics_listen : "");
    if (d->httpd_listen == NULL)
        goto out;
    if (cfg->bot.metrics_port > 0) {
        d->httpd = daemon_httpd_start(d, cfg);
        if (d->httpd == NULL)
            goto out;
    }
    d->http = http_new(&d->loop);
    if (d->http == NULL) {
        log_error("start: cannot create the HTTP client");
        goto out;
    }
    if (daemon_platforms(cfg, platforms, sizeof(platforms)) == 0)
        log_warnx("start: no platform enabled; serving the database only");
    if (cfg->discord.enabled || cfg->slack.enabled) {
        d->ws = ws_ctx_new(&d->loop);
        if (d->ws == NULL)
            goto out;
    }
    d->llm = llm_new(&d->loop, d->http, cfg);
    d->asker = d->llm != NULL ? asker_new(d->llm) : NULL;
    if (d->asker == NULL) {
        log_error("start: cannot create the LLM client");
        goto out;
    }
    /* core resumes every unfinished job of the last run from here on */
    d->core = core_new(&d->loop, d->store, cfg, asker_iface(d->asker));
    if (d->core == NULL) {
        log_error("start: cannot start the core");
        goto out;
    }
    core_set_metrics(d->core, d->metrics);
    if (daemon_start_connectors(d) == -1)
        goto out;

    wd = notify_watchdog_interval_ms(&d->notify);
    if (wd > 0) {
        uv_timer_start(&d->watchdog, daemon_on_watchdog, wd, (uint64_t)wd);
        log_info("start: systemd watchdog ping every %lld ms", (long long)wd);
    }
    rc = EXIT_OK;
out:
    return rc;
}

int
daemon_run(struct daemon *d)
{
    char platforms[64];

    daemon_platforms(d->cfg, platforms, sizeof(platforms));
    log_info("ready: version=%s platforms=%s startup_ms=%lld", PARLEY_VERSION,
             platforms, (long long)(daemon_now_ms(d) - d->started_ms));
    notify_send(&d->notify, "READY=1\nSTATUS=running platforms=%s", platforms);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    log_info("stop: done exit_code=%d", d->exit_code);
    return d->exit_code;
}

static void
daemon_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void
daemon_release(struct daemon *d)
{
    if (!d->loop_ready) {
        config_free(d->cfg);
        d->cfg = NULL;
        return;
    }
    /*
     * On an init failure or a forced stop, subsystems may still be open.
     * Free them, then let the loop run so their handles finish closing
     * (lws needs turns to tear down on a foreign loop), with the unref'd
     * deadline as the backstop, and only then close any straggler.
     */
    daemon_close_handle((uv_handle_t *)&d->sig_term);
    daemon_close_handle((uv_handle_t *)&d->sig_int);
    daemon_close_handle((uv_handle_t *)&d->sig_hup);
    daemon_close_handle((uv_handle_t *)&d->watchdog);
    daemon_close_handle((uv_handle_t *)&d->trim_timer);
    daemon_close_handle((uv_handle_t *)&d->drain_timer);
    daemon_free_subsystems(d);
    if (!uv_is_closing((uv_handle_t *)&d->stop_timer)) {
        uv_timer_start(&d->stop_timer, daemon_stop_deadline, 2000, 0);
        uv_unref((uv_handle_t *)&d->stop_timer);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_walk(&d->loop, daemon_walk_close, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) != 0)
        log_warnx("stop: the loop still had open handles");
    notify_release(&d->notify);
    metrics_free(d->metrics);
    d->metrics = NULL;
    free(d->db_path);
    d->db_path = NULL;
    free(d->httpd_listen);
    d->httpd_listen = NULL;
    config_free(d->cfg);
    d->cfg = NULL;
}
