/* core: the glue on the loop between an event and its reply — routing,
 * admission, the durable job queue, history, usage, typing (docs/core.md). */
#include "core/core.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/admit.h"
#include "core/commands.h"
#include "core/history.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notice.h"
#include "core/router.h"
#include "core/stream.h"
#include "core/tally.h"

#define CORE_RECENT_IDS 65536     /* router's recent-id set */
#define CORE_LIMITER_KEYS 1000000 /* ratelimit max_keys: the memory bound */
#define CORE_INFLIGHT_MAX 4096    /* jobs in memory; the rest wait in SQLite */
#define CORE_SCAN_PAGE 256        /* jobs read per resume step */
#define CORE_TICK_MS 1000         /* limiter export, evict, stats */
#define CORE_POLL_MS 250          /* PRAGMA data_version: parleyctl's writes */
#define CORE_EVICT_SLOTS 4096     /* limiter slots examined per tick */
#define CORE_PURGE_MS 60000       /* retention purge period */
#define CORE_PURGE_ROWS 1000      /* rows per table per purge step */
/* finished jobs are kept this long: the dedup horizon for redeliveries */
#define CORE_JOB_KEEP_MS (2LL * 86400000)
/* limiter rows outlive the longest window in effect by this much */
#define CORE_LIMITER_KEEP_MS 86400000LL
#define CORE_RETRY_MS 1000     /* after ask()/send() said "not now" */
#define CORE_HISTORY_MAX 10000 /* rows read per prompt: the config's cap */
#define CORE_CONNECTORS_MAX 8
/* Send ids are (job id << 16) | low: a part, or CORE_SEND_STREAM | seq. */
#define CORE_PART_MAX 32767 /* parts of one answer */
#define CORE_SEND_STREAM 0x8000u
/* The ids of a stream's messages as saved: 4096 ids of up to 64 bytes. */
#define CORE_STREAM_IDS_MAX (STREAM_MSGS_MAX * (EVENT_ID_MAX + 1) + 1)
#define CORE_DEADLINE_SLACK_MS 30000
#define CORE_QUIET_MAX                                                         \
    1024 /* forgotten users whose limiter keys stay unsaved */
#define CORE_QUIET_MAX_MS 86400000LL
#define CORE_ALERT_EVERY_MS 3600000LL /* [feedback] alert: at most hourly */
#define CORE_HOUR_MS 3600000LL
/* usage keys summed in memory before a write is forced (~150 B each) */
#define CORE_TALLY_MAX 65536
/* the intake's idle usage write: at most once per this (a flood of
 * refused messages keeps no job, and wrote two upserts per batch key) */
#define CORE_USAGE_IDLE_MS 250
/*
 * usage_trickle spreads a round of usage writes (every key counted since
 * the last round, ~1.5 us each plus its pages in the next commit) over
 * CORE_USAGE_SLOTS ticks of its timer, CORE_USAGE_EVERY_MS apart, and at
 * least CORE_USAGE_CHUNK_MIN keys a tick: ~200 ms, inside the 250 ms
 * between rounds.  Written in one go, a round of a thousand users' keys
 * held every message of that loop turn 1-2 ms (the p99 of the latency
 * bench).
 */
#define CORE_USAGE_EVERY_MS 2
#define CORE_USAGE_SLOTS 100
#define CORE_USAGE_CHUNK_MIN 8
/* A job core made itself (an alert to an admin): no message to reply to.
 * Above every enum event_flag bit. */
#define CORE_JOB_INTERNAL (1u << 16)
/* core_intake's verdict for a message refused without a notice */
#define CORE_GO_REFUSED 2
/*
 * The run queue (docs/core.md "Intake first"): jobs admitted or resumed
 * start from the loop's idle phase, at most this many or this long per
 * loop turn, so a burst of admissions never holds the next intake back.
 */
#ifndef CORE_RUN_BATCH
#define CORE_RUN_BATCH 32
#endif
#ifndef CORE_RUN_SLICE_NS
#define CORE_RUN_SLICE_NS 2000000ULL
#endif
#define CORE_RUN_LAST_EVERY 16
/* of them from the last lane: a flood's own answers never crowd intake */
#define CORE_RUN_LAST_BATCH 4
/* users refused lately or being served, whose queued jobs go last: slots,
 * probes, how long a refusal keeps a user there */
#define CORE_HOT_SLOTS 4096
#define CORE_HOT_PROBES 8
#define CORE_HOT_MS 60000

/* ---- a small string-keyed map: overrides, bans, admins ---- */

struct kv_entry {
    char *key;
    int64_t a, b;
};

struct kv_map {
    struct kv_entry *e;
    size_t n, cap; /* cap: power of two or 0 */
};

static uint64_t
kv_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void
kv_clear(struct kv_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->e[i].key);
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static struct kv_entry *
kv_find(const struct kv_map *m, const char *key)
{
    size_t i;

    if (m->cap == 0)
        return NULL;
    for (i = kv_hash(key) & (m->cap - 1); m->e[i].key != NULL;
         i = (i + 1) & (m->cap - 1))
        if (strcmp(m->e[i].key, key) == 0)
            return &m->e[i];
    return NULL;
}

static int
kv_put(struct kv_map *m, const char *key, int64_t a, int64_t b)
{
    struct kv_entry *e;
    size_t i;

    if ((e = kv_find(m, key)) != NULL) {
        e->a = a;
        e->b = b;
        return 0;
    }
    if ((m->n + 1) * 2 > m->cap) {
        struct kv_map g = {0};

        g.cap = m->cap ? m->cap * 2 : 16;
        if ((g.e = calloc(g.cap, sizeof(*g.e))) == NULL)
            return -1;
        for (i = 0; i < m->cap; i++) {
            size_t j;

            if (m->e[i].key == NULL)
                continue;
            for (j = kv_hash(m->e[i].key) & (g.cap - 1); g.e[j].key != NULL;
                 j = (j + 1) & (g.cap - 1))
                ;
            g.e[j] = m->e[i];
        }
        g.n = m->n;
        free(m->e);
        *m = g;
    }
    for (i = kv_hash(key) & (m->cap - 1); m->e[i].key != NULL;
         i = (i + 1) & (m->cap - 1))
        ;
    if ((m->e[i].key = strdup(key)) == NULL)
        return -1;
    m->e[i].a = a;
    m->e[i].b = b;
    m->n++;
    return 0;
}

/* ---- jobs in memory ---- */

/*
 * A job in memory: admitted and asking, or with a reply to send.  The
 * row is the truth; this adds what only lives while the process does.
 * The timer is the first member: its close callback frees the job.
 */
struct job {
    uv_timer_t timer;
    struct core *c;
    struct job *hnext; /* id hash chain */
    struct store_job row;
    uint64_t ask_handle;
    int asking;          /* an ask() is outstanding */
    int sending;         /* a send() is outstanding */
    int waiting;         /* timer armed for a retry (ask, send, next_at_ms) */
    int finished;        /* removed from the table; closing */
    int64_t ask_started; /* mono */
    int64_t deadline;    /* mono: the backstop on the asker */
    int64_t typing_next; /* mono */
    size_t *cuts;        /* part boundaries into row.answer */
    int nparts;
    uint64_t saves; /* job_save calls (core_send_done: did job_send save) */
    int resumed;    /* loaded from the database at start (may have a stream) */
    /* streaming (docs/core.md "Streaming"); stream NULL = not streamed */
    struct stream *stream;
    char *stext; /* the newest partial text */
    size_t slen;
    int64_t stream_at;         /* mono: a stream step is due (0 = none) */
    int64_t stream_hold;       /* mono: a 429 said wait until then */
    int stream_off;            /* a partial could not be shown: stop */
    int stream_counted;        /* counts in its connector's streams */
    unsigned stream_seq;       /* of the stream action in flight */
    struct stream_step spend;  /* the stream action in flight */
    struct job *rprev, *rnext; /* run queue links */
    int rq;                    /* run queue it is on: RUN_NONE, _FIRST, _LAST */
    int running;               /* counted in its user's hot entry */
    int last;                  /* counted in its user's hot entry's last */
};

enum { RUN_NONE = -1, RUN_FIRST = 0, RUN_LAST = 1 };

/* A user refused lately (hot_mark) or being served (jobs started and not
 * finished): a hash of platform and user. */
struct hot {
    uint64_t h;
    int64_t until; /* mono: refused lately until then */
    int running;   /* jobs started from the run queue, not finished */
    int last;      /* jobs waiting in RUN_LAST (the user's next go there) */
};

struct connector {
    struct connector_ops ops;
    char platform[EVENT_PLATFORM_MAX + 1];
    int streams; /* answers streaming now (ops.streams_max) */
};

/*
 * A user who ran `forget`: their limiter keys stay in memory (forget is no
 * way around a limit) but are not written back to limiter_state until the
 * windows that held them have passed, so no row holds their id.
 */
struct quiet {
    char platform[EVENT_PLATFORM_MAX + 1];
    char user[EVENT_ID_MAX + 1];
    char chat[EVENT_ID_MAX + 1]; /* their private chat, "" = none */
    int64_t until;               /* mono */
};

struct core {
    uv_loop_t *loop;
    struct store *st;
    const struct config *cfg;
    struct core_asker asker;
    struct router *router;
    struct admit *admit;
    struct connector conn[CORE_CONNECTORS_MAX];
    size_t nconn;

    struct kv_map overrides; /* "scope|platform|target|kind" -> (n, W) */
    struct kv_map bans;      /* "platform|user" -> until_ms */
    struct kv_map admins;    /* "platform|user" */
    int64_t data_version;

    struct job **jobs; /* hash by id, chained */
    size_t jobs_cap, njobs, inflight_max;

    /* jobs waiting to start: [RUN_FIRST], then [RUN_LAST] (hot users) */
    struct job *run_head[2], *run_tail[2];
    size_t nrun;
    unsigned run_pops;
    uv_idle_t *runner;
    struct hot *hot; /* CORE_HOT_SLOTS, allocated on first use */

    int backlog;        /* unfinished jobs may wait in the database */
    int64_t scan_after; /* resume cursor (job id) */
    uv_timer_t *tick, *pump, *purge;

    core_clock_fn clock;
    void *clock_arg;
    struct quiet quiet[CORE_QUIET_MAX];
    size_t nquiet;
    /* bot-wide stats not yet written (every tick) */
    struct store_counters pend;
    int64_t pend_lat[STORE_LATENCY_BUCKETS];
    struct tally *usage;     /* usage counters not yet written (usage_flush) */
    struct tally *usage_out; /* being written, usage_chunk a tick */
    size_t usage_chunk;      /* keys per usage_timer tick, this round */
    uv_timer_t *usage_timer; /* paces usage_out (usage_trickle) */
    int64_t usage_at;        /* mono of the last usage_flush */
    struct metrics *metrics; /* borrowed, may be NULL (core_set_metrics) */
    int pend_dirty;
    int64_t alert_last; /* wall of the last [feedback] alert, -1 = unread */
    int alert_pending;  /* a 👎 came: look at the alert window */
    int loaded;         /* the limiter state is imported (core_loaded) */
    int stopping;
    unsigned ticks; /* of CORE_POLL_MS */
    struct core_stats stats;
};

static void job_step(struct job *j);
static void job_send(struct job *j);
static void job_partial(void *arg, const char *text, size_t len);
static struct stream *job_stream(struct job *j);
static void pump_schedule(struct core *c);
static void usage_flush(struct core *c);
static void usage_trickle(struct core *c);
static int stats_flush(struct core *c, int full);

static void
core_now(const struct core *c, int64_t *mono, int64_t *wall)
{
    struct timespec ts;

    if (c->clock != NULL) {
        c->clock(c->clock_arg, mono, wall);
        return;
    }
    *mono = (int64_t)uv_now(c->loop);
    clock_gettime(CLOCK_REALTIME, &ts);
    *wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
core_mono(const struct core *c)
{
    int64_t m, w;

    core_now(c, &m, &w);
    return m;
}

static int64_t
core_wall(const struct core *c)
{
    int64_t m, w;

    core_now(c, &m, &w);
    return w;
}

static struct connector *
core_connector(struct core *c, const char *platform)
{
    for (size_t i = 0; i < c->nconn; i++)
        if (strcmp(c->conn[i].platform, platform) == 0)
            return &c->conn[i];
    return NULL;
}

/* ---- the job table ---- */

static struct job *
jobs_find(const struct core *c, int64_t id)
{
    struct job *j;

    if (c->jobs_cap == 0)
        return NULL;
    for (j = c->jobs[(uint64_t)id & (c->jobs_cap - 1)]; j != NULL; j = j->hnext)
        if (j->row.id == id)
            return j;
    return NULL;
}

static int
jobs_add(struct core *c, struct job *j)
{
    size_t b;

    if (c->njobs + 1 > c->jobs_cap) {
        size_t cap = c->jobs_cap ? c->jobs_cap * 2 : 256;
        struct job **t = calloc(cap, sizeof(*t));

        if (t == NULL)
            return -1;
        for (size_t i = 0; i < c->jobs_cap; i++) {
            struct job *x = c->jobs[i], *next;

            for (; x != NULL; x = next) {
                next = x->hnext;
                b = (uint64_t)x->row.id & (cap - 1);
                x->hnext = t[b];
                t[b] = x;
            }
        }
        free(c->jobs);
        c->jobs = t;
        c->jobs_cap = cap;
    }
    b = (uint64_t)j->row.id & (c->jobs_cap - 1);
    j->hnext = c->jobs[b];
    c->jobs[b] = j;
    c->njobs++;
    return 0;
}

static void
jobs_remove(struct core *c, struct job *j)
{
    struct job **p = &c->jobs[(uint64_t)j->row.id & (c->jobs_cap - 1)];

    for (; *p != NULL; p = &(*p)->hnext)
        if (*p == j) {
            *p = j->hnext;
            c->njobs--;
            return;
        }
}

static void
job_closed(uv_handle_t *h)
{
    struct job *j = (struct job *)h;

    store_job_release(&j->row);
    free(j->cuts);
    if (j->stream != NULL)
        stream_release(j->stream);
    free(j->stream);
    free(j->stext);
    free(j);
}

/* ---- the run queue: intake first, one job per user first, refused
 * users last ---- */

static uint64_t
hot_hash(const char *platform, const char *user)
{
    uint64_t h = kv_hash(platform);

    return (h ^ kv_hash(user)) * 0x9e3779b97f4a7c15ULL | 1;
}

/*
 * The user's entry, made if need be in place of the probed entry that
 * cools first among those serving no job (NULL: none free, or no memory:
 * fairness is lost, nothing else).
 */
static struct hot *
hot_entry(struct core *c, const struct store_job *r, int64_t mono)
{
    uint64_t h = hot_hash(r->platform, r->user);
    struct hot *slot = NULL;

    if (c->hot == NULL &&
        (c->hot = calloc(CORE_HOT_SLOTS, sizeof(*c->hot))) == NULL)
        return NULL;
    for (unsigned i = 0; i < CORE_HOT_PROBES; i++) {
        struct hot *e = &c->hot[(h + i) & (CORE_HOT_SLOTS - 1)];

        if (e->h == h)
            return e;
        if (e->running == 0 && e->last == 0 &&
            (slot == NULL || e->until < slot->until))
            slot = e;
    }
    if (slot != NULL) {
        slot->h = h;
        slot->until = mono; /* not refused */
        slot->running = slot->last = 0;
    }
    return slot;
}

static struct hot *
hot_find(const struct core *c, const struct store_job *r)
{
    uint64_t h;

    if (c->hot == NULL)
        return NULL;
    h = hot_hash(r->platform, r->user);
    for (unsigned i = 0; i < CORE_HOT_PROBES; i++) {
        struct hot *e = &c->hot[(h + i) & (CORE_HOT_SLOTS - 1)];

        if (e->h == h)
            return e;
    }
    return NULL;
}

/* A user was refused: their queued jobs go after everyone else's. */
static void
hot_mark(struct core *c, const struct store_job *r, int64_t mono)
{
    struct hot *e = hot_entry(c, r, mono);

    if (e != NULL)
        e->until = mono + CORE_HOT_MS;
}

/* Goes last: refused lately, a job of theirs is being served already, or
 * waits last (a user's jobs start in the order they came). */
static int
hot_is(const struct core *c, const struct store_job *r, int64_t mono)
{
    const struct hot *e = hot_find(c, r);

    return e != NULL && (e->until > mono || e->running > 0 || e->last > 0);
}

/* j starts: its user is being served until it finishes. */
static void
hot_start(struct core *c, struct job *j, int64_t mono)
{
    struct hot *e = hot_entry(c, &j->row, mono);

    if (e != NULL) {
        e->running++;
        j->running = 1;
    }
}

static void
hot_done(struct core *c, struct job *j)
{
    struct hot *e;

    if (!j->running)
        return;
    j->running = 0;
    if ((e = hot_find(c, &j->row)) != NULL && e->running > 0)
        e->running--;
}

static void
run_push(struct core *c, struct job *j, int q)
{
    struct hot *e;

    if (q == RUN_LAST && (e = hot_entry(c, &j->row, core_mono(c))) != NULL) {
        e->last++;
        j->last = 1;
    }
    j->rq = q;
    j->rnext = NULL;
    j->rprev = c->run_tail[q];
    if (j->rprev != NULL)
        j->rprev->rnext = j;
    else
        c->run_head[q] = j;
    c->run_tail[q] = j;
    c->nrun++;
}

static void
run_unlink(struct core *c, struct job *j)
{
    int q = j->rq;

    if (q == RUN_NONE)
        return;
    if (j->last) {
        struct hot *e = hot_find(c, &j->row);

        if (e != NULL && e->last > 0)
            e->last--;
        j->last = 0;
    }
    if (j->rprev != NULL)
        j->rprev->rnext = j->rnext;
    else
        c->run_head[q] = j->rnext;
    if (j->rnext != NULL)
        j->rnext->rprev = j->rprev;
    else
        c->run_tail[q] = j->rprev;
    j->rprev = j->rnext = NULL;
    j->rq = RUN_NONE;
    c->nrun--;
}

/* The next job to start: everyone's in order, then (if last) the hot
 * users' — one in CORE_RUN_LAST_EVERY even so: last is not starved. */
static struct job *
run_pop(struct core *c, int64_t mono, int last, int *from_last)
{
    struct job *j;

    *from_last = 1;
    if (last && ++c->run_pops % CORE_RUN_LAST_EVERY == 0 &&
        (j = c->run_head[RUN_LAST]) != NULL) {
        run_unlink(c, j);
        return j;
    }
    *from_last = 0;
    while ((j = c->run_head[RUN_FIRST]) != NULL) {
        run_unlink(c, j);
        if (!hot_is(c, &j->row, mono))
            return j;
        run_push(c, j, RUN_LAST);
    }
    if (!last)
        return NULL;
    if ((j = c->run_head[RUN_LAST]) != NULL) {
        run_unlink(c, j);
        *from_last = 1;
    }
    return j;
}

static void
run_cb(uv_idle_t *h)
{
    struct core *c = h->data;
    uint64_t until = uv_hrtime() + CORE_RUN_SLICE_NS;
    int64_t mono = core_mono(c);
    struct job *j;

    for (int n = 0, last = 0, from; n < CORE_RUN_BATCH && !c->stopping; n++) {
        if ((j = run_pop(c, mono, last < CORE_RUN_LAST_BATCH, &from)) == NULL)
            break;
        last += from;
        hot_start(c, j, mono);
        job_step(j);
        if (uv_hrtime() >= until)
            break;
    }
    if (c->run_head[RUN_FIRST] == NULL && c->run_head[RUN_LAST] == NULL)
        uv_idle_stop(h);
}

/* Starts j from the run queue, after the intake of this loop turn. */
static void
job_run(struct job *j)
{
    struct core *c = j->c;

    if (j->rq != RUN_NONE)
        return;
    run_push(c, j, RUN_FIRST);
    if (c->runner != NULL)
        uv_idle_start(c->runner, run_cb);
}

/* The job leaves memory; its row holds the final (or resumable) state. */
static void
job_finish(struct job *j)
{
    struct core *c = j->c;
    struct connector *k;

    if (j->finished)
        return;
    j->finished = 1;
    run_unlink(c, j);
    hot_done(c, j);
    if (j->stream_counted && (k = core_connector(c, j->row.platform)) != NULL &&
        k->streams > 0)
        k->streams--;
    if (j->asking && c->asker.cancel != NULL)
        c->asker.cancel(c->asker.ctx, j->ask_handle);
    j->asking = 0;
    jobs_remove(c, j);
    uv_close((uv_handle_t *)&j->timer, job_closed);
    /* idle: the counters are current (at most every CORE_USAGE_IDLE_MS:
     * under a flood a job finishing leaves none in memory many times a
     * second, and each write is two upserts per flooder; the tick writes
     * the rest) */
    if (c->njobs == 0 && core_mono(c) - c->usage_at >= CORE_USAGE_IDLE_MS)
        usage_trickle(c);
    if (c->backlog && !c->stopping)
        pump_schedule(c);
}

static void
job_save(struct job *j)
{
    j->saves++;
    if (store_job_save(j->c->st, &j->row, core_wall(j->c)) < 0)
        log_warnx("core job save failed job=%" PRId64 " state=%s", j->row.id,
                  store_job_state_name(j->row.state));
}

static void job_timer_cb(uv_timer_t *t);

static void
job_arm(struct job *j, int64_t in_ms)
{
    if (in_ms < 0)
        in_ms = 0;
    uv_timer_start(&j->timer, job_timer_cb, (uint64_t)in_ms, 0);
}

/* A row becomes a job in memory (the row's strings move into it). */
static struct job *
job_load(struct core *c, struct store_job *row)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->c = c;
    j->row = *row;
    j->rq = RUN_NONE;
    memset(row, 0, sizeof(*row));
    if (jobs_add(c, j) < 0) {
        store_job_release(&j->row);
        free(j);
        return NULL;
    }
    uv_timer_init(c->loop, &j->timer);
    return j;
}

/* ---- effective limits: config, then overrides ---- */

static void
override_apply(const struct core *c, const char *scope, const char *platform,
               const char *target, const char *kind, struct rate *r)
{
    char key[2 * EVENT_ID_MAX + 64];
    const struct kv_entry *e;

    snprintf(key, sizeof(key), "%s|%s|%s|%s", scope, platform, target, kind);
    if ((e = kv_find(&c->overrides, key)) == NULL)
        return;
    /* window 0 = off; rate_n 0 with a window is a real rate admitting none,
     * which ratelimit cannot express (n == 0 is off): one per 100 years */
    if (e->b == 0) {
        r->n = 0;
        r->window_ms = 0;
    } else if (e->a == 0) {
        r->n = 1;
        r->window_ms = RATELIMIT_WINDOW_MAX_MS;
    } else {
        r->n = e->a;
        r->window_ms = e->b;
    }
}

static int
core_is_admin(const struct core *c, const char *platform, const char *user)
{
    char key[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 4];

    snprintf(key, sizeof(key), "%s|%s", platform, user);
    return kv_find(&c->admins, key) != NULL;
}

static int
core_is_banned(const struct core *c, const char *platform, const char *user,
               int64_t wall)
{
    char key[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 4];
    const struct kv_entry *e;

    snprintf(key, sizeof(key), "%s|%s", platform, user);
    e = kv_find(&c->bans, key);
    return e != NULL && e->a > wall;
}

static void
core_request(const struct core *c, const struct store_job *r, int budgets,
             struct admit_request *rq)
{
    const struct config_limits *l = &c->cfg->limits;

    memset(rq, 0, sizeof(*rq));
    rq->platform = r->platform;
    rq->chat = r->chat;
    rq->user = r->user;
    rq->admin = core_is_admin(c, r->platform, r->user);
    rq->banned = core_is_banned(c, r->platform, r->user, core_wall(c));
    rq->lim.user = l->user;
    rq->lim.chat = l->chat;
    rq->lim.global = l->global;
    if (budgets) {
        rq->lim.user_tokens = l->user_tokens;
        rq->lim.chat_tokens = l->chat_tokens;
    }
    override_apply(c, "user", r->platform, r->user, "limit", &rq->lim.user);
    override_apply(c, "chat", r->platform, r->chat, "limit", &rq->lim.chat);
    if (budgets) {
        override_apply(c, "user", r->platform, r->user, "budget",
                       &rq->lim.user_tokens);
        override_apply(c, "chat", r->platform, r->chat, "budget",
                       &rq->lim.chat_tokens);
    }
}

/* ---- caches from storage: overrides and bans, admins from config ---- */

static int
load_override(void *arg, const char *scope, const char *platform,
              const char *target, const char *kind, int64_t n, int64_t w)
{
    char key[512];

    snprintf(key, sizeof(key), "%s|%s|%s|%s", scope ? scope : "",
             platform ? platform : "", target ? target : "", kind ? kind : "");
    return kv_put(arg, key, n, w) < 0;
}

static int
load_ban(void *arg, const char *platform, const char *user, int64_t until)
{
    char key[256];

    snprintf(key, sizeof(key), "%s|%s", platform ? platform : "",
             user ? user : "");
    return kv_put(arg, key, until, 0) < 0;
}

/* Replaces the caches only when both loads succeed. */
static void
core_reload_caches(struct core *c)
{
    struct kv_map o = {0}, b = {0};

    if (store_overrides_load(c->st, load_override, &o) < 0 ||
        store_bans_load(c->st, load_ban, &b) < 0) {
        log_warnx("core reload of overrides and bans failed");
        kv_clear(&o);
        kv_clear(&b);
        return;
    }
    kv_clear(&c->overrides);
    kv_clear(&c->bans);
    c->overrides = o;
    c->bans = b;
    log_debug("core caches reloaded overrides=%zu bans=%zu", o.n, b.n);
}

int
core_chat_migrate(struct core *c, const char *platform, const char *old_chat,
                  const char *new_chat)
{
    if (store_chat_migrate(c->st, platform, old_chat, new_chat, core_wall(c)) <
        0)
        return -1;
    /* our own writes do not move data_version: reload now, so the moved
     * per-chat overrides apply to the new id from the next message on */
    core_reload_caches(c);
    log_info("core chat migrated platform=%s chat=%s to=%s", platform, old_chat,
             new_chat);
    return 0;
}

static void
core_load_admins(struct core *c)
{
    char key[256];

    kv_clear(&c->admins);
    for (size_t i = 0; i < c->cfg->bot.nadmins; i++) {
        const struct config_admin *a = &c->cfg->bot.admins[i];

        snprintf(key, sizeof(key), "%s|%s", config_platform_name(a->platform),
                 a->user);
        if (kv_put(&c->admins, key, 1, 0) < 0)
            log_warnx("core admins: out of memory");
    }
}

/* ---- limiter persistence ---- */

/* 1 if key ("u:P:U", "n:P:C:U", "c:P:C") belongs to a forgotten user. */
static int
quiet_match(struct core *c, const char *key, int64_t mono)
{
    char want[RATELIMIT_KEY_MAX + 1];

    for (size_t i = 0; i < c->nquiet; i++) {
        const struct quiet *q = &c->quiet[i];
        size_t pl = strlen(q->platform), ul = strlen(q->user), kl;

        if (q->until <= mono)
            continue;
        snprintf(want, sizeof(want), "u:%s:%s", q->platform, q->user);
        if (strcmp(key, want) == 0)
            return 1;
        snprintf(want, sizeof(want), "c:%s:%s", q->platform, q->user);
        if (strcmp(key, want) == 0)
            return 1;
        if (q->chat[0] != '\0') {
            snprintf(want, sizeof(want), "c:%s:%s", q->platform, q->chat);
            if (strcmp(key, want) == 0)
                return 1;
        }
        kl = strlen(key);
        if (key[0] == 'n' && key[1] == ':' && kl > pl + ul + 4 &&
            strncmp(key + 2, q->platform, pl) == 0 && key[2 + pl] == ':' &&
            key[kl - ul - 1] == ':' && strcmp(key + kl - ul, q->user) == 0)
            return 1;
    }
    return 0;
}

/* Drops expired quiet entries. */
static void
quiet_expire(struct core *c, int64_t mono)
{
    size_t k = 0;

    for (size_t i = 0; i < c->nquiet; i++)
        if (c->quiet[i].until > mono)
            c->quiet[k++] = c->quiet[i];
    c->nquiet = k;
}

/* Rows are keyed "w|KEY" (window) or "b|KEY" (bucket): one key string may
 * have both kinds, and limiter_state's primary key is the text alone. */
static int
limiter_save_one(void *arg, const char *key, enum ratelimit_kind kind,
                 const void *blob, size_t len)
{
    struct core *c = arg;
    char row[RATELIMIT_KEY_MAX + 3];

    if (c->nquiet > 0 && quiet_match(c, key, core_mono(c)))
        return 0;

    snprintf(row, sizeof(row), "%c|%s", kind == RATELIMIT_BUCKET ? 'b' : 'w',
             key);
    return store_limiter_save(c->st, row, blob, len, core_wall(c)) < 0 ? -1 : 0;
}

int
core_persist_limiter(struct core *c)
{
    long n = ratelimit_export(admit_limiter(c->admit), core_mono(c), 1,
                              limiter_save_one, c);

    if (n < 0) {
        log_warnx("core limiter export failed");
        return -1;
    }
    if (n > 0)
        log_debug("core limiter exported keys=%ld", n);
    return 0;
}

struct limiter_load {
    struct core *c;
    int64_t mono, wall;
    long ok, bad;
};

static int
limiter_load_one(void *arg, const char *row, const void *blob, size_t len,
                 int64_t updated_ms)
{
    struct limiter_load *ll = arg;
    int64_t elapsed = ll->wall - updated_ms;

    if ((row[0] != 'w' && row[0] != 'b') || row[1] != '|') {
        ll->bad++;
        return 0;
    }
    /* the blob's ages count from the export: map that moment onto our
     * monotonic clock (docs/ratelimit.md); a wall clock that went back
     * counts as no time passed, which is strict, never lenient */
    if (elapsed < 0)
        elapsed = 0;
    if (ratelimit_import(admit_limiter(ll->c->admit), row + 2, blob, len,
                         ll->mono - elapsed) == 0)
        ll->ok++;
    else
        ll->bad++;
    return 0;
}

/*
 * Imported on first use rather than in core_new, so that a clock set
 * with core_set_clock right after core_new maps the stored ages.
 */
static void
core_load_limiter(struct core *c)
{
    struct limiter_load ll = {c, 0, 0, 0, 0};

    if (c->loaded)
        return;
    c->loaded = 1;
    core_now(c, &ll.mono, &ll.wall);
    if (store_limiter_load(c->st, limiter_load_one, &ll) < 0)
        log_warnx("core limiter state could not be read");
    log_info("core limiter state loaded keys=%ld rejected=%ld", ll.ok, ll.bad);
}

/* ---- history and the prompt ---- */

struct hist_rows {
    struct history_msg *m;
    size_t n, cap;
};

static int
hist_row(void *arg, const char *role, const char *text, int64_t tokens)
{
    struct hist_rows *h = arg;
    char *role_copy = NULL, *text_copy = NULL;

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct history_msg *m = realloc(h->m, cap * sizeof(*m));

        if (m == NULL)
            return 1;
        h->m = m;
        h->cap = cap;
    }
    if ((role_copy = strdup(role)) == NULL ||
        (text_copy = strdup(text)) == NULL) {
        free(role_copy);
        return 1;
    }
    h->m[h->n].role = role_copy;
    h->m[h->n].text = text_copy;
    h->m[h->n].tokens = tokens;
    h->n++;
    return 0;
}

static void
hist_free(struct hist_rows *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free((char *)(uintptr_t)h->m[i].role);
        free((char *)(uintptr_t)h->m[i].text);
    }
    free(h->m);
    memset(h, 0, sizeof(*h));
}

/* The text a user message has in the prompt and the history: in groups
 * the model needs to know who speaks. */
static char *
job_user_text(const struct store_job *r)
{
    char *s = NULL;

    if ((r->flags & EVENT_PRIVATE) || r->user_name[0] == '\0')
        return strdup(r->text);
    if (asprintf(&s, "%s: %s", r->user_name, r->text) < 0)
        return NULL;
    return s;
}

/* A prompt: system (persona or config), history, the new message. */
struct prompt {
    struct core_msg *msgs;
    size_t n;
    char *persona, *model, *user_text;
    struct hist_rows hist;
    int64_t estimate;
    int64_t conversation;
};

static void
prompt_free(struct prompt *p)
{
    free(p->msgs);
    free(p->persona);
    free(p->model);
    free(p->user_text);
    hist_free(&p->hist);
    memset(p, 0, sizeof(*p));
}

static int
prompt_build(struct core *c, const struct store_job *r, struct prompt *p)
{
    const struct config_llm *llm = &c->cfg->llm;
    const char *system;
    size_t keep, k = 0;
    int limit = llm->history_messages;
    int64_t tokens;

    memset(p, 0, sizeof(*p));
    if (store_chat_settings(c->st, r->platform, r->chat, &p->model,
                            &p->persona) < 0)
        goto fail;
    if (store_conversation_id(c->st, r->platform, r->chat, r->thread,
                              core_wall(c), &p->conversation) < 0)
        goto fail;
    if (limit > CORE_HISTORY_MAX)
        limit = CORE_HISTORY_MAX;
    if (store_history_load(c->st, p->conversation, limit, hist_row, &p->hist) <
        0)
        goto fail;
    keep = history_select(p->hist.m, p->hist.n, llm->history_messages,
                          llm->history_tokens);
    if ((p->user_text = job_user_text(r)) == NULL)
        goto fail;
    if ((p->msgs = calloc(keep + 2, sizeof(*p->msgs))) == NULL)
        goto fail;
    system = p->persona != NULL ? p->persona : llm->system_prompt;
    p->msgs[k].role = "system";
    p->msgs[k++].text = system ? system : "";
    tokens = history_estimate_tokens(p->msgs[0].text, strlen(p->msgs[0].text));
    for (size_t i = keep; i > 0; i--) {
        p->msgs[k].role = p->hist.m[i - 1].role;
        p->msgs[k++].text = p->hist.m[i - 1].text;
        tokens += p->hist.m[i - 1].tokens;
    }
    p->msgs[k].role = "user";
    p->msgs[k++].text = p->user_text;
    tokens += history_estimate_tokens(p->user_text, strlen(p->user_text));
    p->n = k;
    p->estimate = tokens + llm->max_output_tokens;
    return 0;
fail:
    log_warnx("core prompt build failed job=%" PRId64, r->id);
    prompt_free(p);
    return -1;
}

/* ---- usage ---- */

/*
 * Usage counters are summed in c->usage and written by usage_flush():
 * every tick, on stop, when no job is left in memory, and before `usage`,
 * `stats` or `forget` read or delete the table (docs/core.md "usage").
 * A crash loses at most the last second of counters, as it does of the
 * limiter state and the bot-wide stats.
 */
static void
usage_write_one(void *arg, const char *scope, const char *platform,
                const char *target, int64_t day, const struct tally_counts *d)
{
    struct core *c = arg;

    if (store_usage_add(c->st, scope, platform, target, day * 86400000,
                        d->requests, d->limited, d->tokens_in, d->tokens_out,
                        d->cost_micro_usd) < 0)
        log_warnx("core usage write failed scope=%s platform=%s", scope,
                  platform);
}

/* Everything, now: before a read of the table, on stop, when full. */
static void
usage_flush(struct core *c)
{
    c->usage_at = core_mono(c);
    if (c->usage_out != NULL && tally_keys(c->usage_out) > 0)
        tally_drain(c->usage_out, usage_write_one, c);
    if (c->usage != NULL && tally_keys(c->usage) > 0)
        tally_drain(c->usage, usage_write_one, c);
}

static void
usage_tick(uv_timer_t *t)
{
    struct core *c = t->data;

    if (tally_keys(c->usage_out) > 0)
        tally_drain_some(c->usage_out, c->usage_chunk, usage_write_one, c);
    if (tally_keys(c->usage_out) == 0)
        uv_timer_stop(t);
}

/*
 * The periodic writes (the tick, going idle): what was summed so far
 * moves to usage_out, written a chunk per usage_timer tick (see
 * CORE_USAGE_SLOTS), so a thousand users' counters are never one stall of
 * the loop.  A key counted meanwhile sums in c->usage for the next round;
 * a round that comes while one is still being written waits for it.
 */
static void
usage_trickle(struct core *c)
{
    size_t n;

    if (c->usage_timer == NULL) {
        usage_flush(c);
        return;
    }
    if (tally_keys(c->usage_out) > 0 || (n = tally_keys(c->usage)) == 0)
        return;
    {
        struct tally *t = c->usage_out;

        c->usage_out = c->usage;
        c->usage = t;
    }
    c->usage_at = core_mono(c);
    c->usage_chunk = n / CORE_USAGE_SLOTS + 1;
    if (c->usage_chunk < CORE_USAGE_CHUNK_MIN)
        c->usage_chunk = CORE_USAGE_CHUNK_MIN;
    usage_tick(c->usage_timer);
    if (tally_keys(c->usage_out) > 0)
        uv_timer_start(c->usage_timer, usage_tick, CORE_USAGE_EVERY_MS,
                       CORE_USAGE_EVERY_MS);
}

static int
usage_count(struct core *c, const char *scope, const char *platform,
            const char *target, int64_t day, const struct tally_counts *d)
{
    if (c->usage != NULL) {
        if (tally_add(c->usage, scope, platform, target, day, d) == 0)
            return 0;
        usage_flush(c); /* full: write what it holds, then try again */
        if (tally_add(c->usage, scope, platform, target, day, d) == 0)
            return 0;
    }
    return store_usage_add(c->st, scope, platform, target, day * 86400000,
                           d->requests, d->limited, d->tokens_in, d->tokens_out,
                           d->cost_micro_usd);
}

static void
usage_add(struct core *c, const struct store_job *r, int64_t requests,
          int64_t limited, int64_t tin, int64_t tout, int64_t cost)
{
    struct tally_counts d = {requests, limited, tin, tout, cost};
    int64_t day = core_wall(c) / 86400000;

    if (usage_count(c, "user", r->platform, r->user, day, &d) < 0 ||
        usage_count(c, "chat", r->platform, r->chat, day, &d) < 0)
        log_warnx("core usage write failed job=%" PRId64, r->id);
}

/* micro-USD: price is USD per 1M tokens, i.e. micro-USD per token. */
static int64_t
usage_cost(const struct core *c, const char *model, int64_t tin, int64_t tout)
{
    const struct config_model *m = NULL;

    if (model != NULL)
        m = config_model_find(c->cfg, model);
    if (m == NULL && c->cfg->llm.nmodels > 0)
        m = config_model_find(c->cfg, c->cfg->llm.models[0]);
    if (m == NULL)
        return 0;
    return (int64_t)llround((double)tin * m->price_in +
                            (double)tout * m->price_out);
}

/* ---- admission: received -> limited | queued ---- */

/*
 * Decides admission for a received job, in memory only: the row's new
 * state (queued or limited), reserved, error_class and notice are set in
 * *r and the caller writes them — in the job's INSERT for a new event
 * (core_intake: one statement per event, in the same transaction), or
 * with store_job_save for a row resumed as `received` (job_admit).
 * Returns 1 if the job should go on in memory (queued, or limited with a
 * notice to send), 0 if it is done (limited quietly), -1 on error (*r
 * left `received`, nothing recorded).
 */
static int
job_decide(struct core *c, struct store_job *r)
{
    struct admit_request rq;
    struct admit_result res;
    struct prompt p;
    int64_t mono = core_mono(c);
    int command = (r->flags & EVENT_COMMAND) != 0, admitted;

    /* commands cost no tokens: request windows only, so a user whose
     * budget is spent can still ask for `usage` */
    core_request(c, r, !command, &rq);
    admitted = admit_check(c->admit, &rq, mono, &res);
    if (admitted) {
        int64_t estimate = 0;

        if (!command && (rq.lim.user_tokens.n || rq.lim.chat_tokens.n) &&
            !rq.admin) {
            if (prompt_build(c, r, &p) < 0)
                return -1;
            estimate = p.estimate;
            prompt_free(&p);
        }
        admitted = admit_take(c->admit, &rq, estimate, mono, &res);
        if (admitted && (rq.lim.user_tokens.n || rq.lim.chat_tokens.n) &&
            !rq.admin)
            r->reserved = estimate;
    }
    if (admitted) {
        r->state = STORE_JOB_QUEUED;
        c->stats.admitted++;
        if (command)
            c->pend.commands++;
        else
            c->pend.requests++;
        c->pend_dirty = 1;
        usage_add(c, r, 1, 0, 0, 0, 0);
        return 1;
    }
    c->stats.limited++;
    metrics_inc(c->metrics, METRIC_LIMITED, admit_scope_name(res.scope));
    c->pend.limited++;
    c->pend_dirty = 1;
    r->state = STORE_JOB_LIMITED;
    hot_mark(c, r, mono);
    snprintf(r->error_class, sizeof(r->error_class), "%s",
             res.scope == ADMIT_BANNED ? "banned" : "rate_limited");
    usage_add(c, r, 0, 1, 0, 0, 0);
    if (admit_notice(c->admit, &rq, c->cfg->limits.notice, &res, mono)) {
        char text[NOTICE_MAX];

        if (notice_format(text, sizeof(text), &res) > 0 &&
            (r->answer = strdup(text)) != NULL)
            c->stats.notices++;
    }
    log_debug("core limited job=%" PRId64 " scope=%s wait_ms=%" PRId64
              " notice=%d",
              r->id, admit_scope_name(res.scope), res.wait_ms, res.notice);
    return r->answer != NULL;
}

/* Admission of a row resumed as `received` (a crash before it, or a
 * failed decision at intake): decide, then save.  As job_decide. */
static int
job_admit(struct core *c, struct store_job *r)
{
    int rc = job_decide(c, r);

    if (rc >= 0 && store_job_save(c->st, r, core_wall(c)) < 0)
        return -1;
    return rc;
}

/* ---- asking ---- */

static void
job_typing(struct job *j)
{
    struct connector *k = core_connector(j->c, j->row.platform);

    if (k == NULL || k->ops.typing == NULL || k->ops.typing_interval_ms <= 0)
        return;
    k->ops.typing(k->ops.ctx, j->row.chat, j->row.thread);
    j->typing_next = core_mono(j->c) + k->ops.typing_interval_ms;
}

/* Arms the job's timer for the next typing refresh or the deadline. */
static void
job_arm_asking(struct job *j)
{
    int64_t now = core_mono(j->c), next = j->deadline;

    if (j->typing_next > 0 && j->typing_next < next)
        next = j->typing_next;
    if (j->stream_at > 0 && j->stream_at < next)
        next = j->stream_at;
    job_arm(j, next - now);
}

/* The bot-wide counters of one answer (or failure), written each tick. */
static void
core_count_answer(struct core *c, const struct store_job *r,
                  const struct core_answer *a, int64_t tin, int64_t tout,
                  int64_t wall)
{
    struct store_counters *p = &c->pend;

    if (a->ok) {
        p->answers++;
        /* what the user waited: from the message's arrival to the answer */
        if (r->created_ms > 0 && wall >= r->created_ms) {
            c->pend_lat[store_latency_bucket(wall - r->created_ms)]++;
            metrics_observe(c->metrics, METRIC_ANSWER_LATENCY,
                            (double)(wall - r->created_ms) / 1000.0,
                            r->platform);
        }
    } else {
        p->errors++;
    }
    if (a->attempts > 1 + a->fallbacks)
        p->retries += a->attempts - 1 - a->fallbacks;
    if (a->fallbacks > 0)
        p->fallbacks += a->fallbacks;
    p->tokens_in += tin;
    p->tokens_out += tout;
    p->cost_micro_usd += usage_cost(c, a->model, tin, tout);
    c->pend_dirty = 1;
}

static void
job_answered(struct job *j, const struct core_answer *a)
{
    struct core *c = j->c;
    struct store_job *r = &j->row;
    struct admit_request rq;
    int64_t wall = core_wall(c), conv, umsg = 0, amsg = 0, tin, tout, cost;
    char *user_text = NULL;

    core_request(c, r, 1, &rq);
    tin = a->tokens_in > 0 ? a->tokens_in : 0;
    tout = a->tokens_out > 0 ? a->tokens_out : 0;
    core_count_answer(c, r, a, tin, tout, wall);
    /* the reservation gives way to what was really used */
    if (r->reserved > 0)
        admit_settle(c->admit, &rq, r->reserved, tin + tout, core_mono(c));
    r->reserved = 0;
    free(r->answer);
    r->answer = NULL;
    if (!a->ok) {
        const char *why =
            a->error && a->error[0] ? a->error : "the model did not answer";

        c->stats.ask_failed++;
        if (asprintf(&r->answer, "Sorry, no answer: %s.", why) < 0)
            r->answer = NULL;
        snprintf(r->error_class, sizeof(r->error_class), "%s",
                 a->error_class && a->error_class[0] ? a->error_class
                                                     : "internal");
        if (tin + tout > 0)
            usage_add(c, r, 0, 0, tin, tout,
                      usage_cost(c, a->model, tin, tout));
        goto out;
    }
    c->stats.answered++;
    cost = usage_cost(c, a->model, tin, tout);
    usage_add(c, r, 0, 0, tin, tout, cost);
    if (store_conversation_id(c->st, r->platform, r->chat, r->thread, wall,
                              &conv) == 0 &&
        (user_text = job_user_text(r)) != NULL) {
        const char *txt = a->text ? a->text : "";

        store_message_add(
            c->st, conv, "user", r->user, r->message_id, user_text,
            history_estimate_tokens(user_text, strlen(user_text)), wall, &umsg);
        store_message_add(c->st, conv, "assistant", NULL, NULL, txt,
                          history_estimate_tokens(txt, strlen(txt)), wall,
                          &amsg);
        if (store_answer_add(c->st, conv, amsg, r->platform, r->user, a->model,
                             tin, tout, cost, core_mono(c) - j->ask_started,
                             wall, &r->answer_id) < 0)
            r->answer_id = 0;
    }
    free(user_text);
    r->answer = strdup(a->text && a->text[0] ? a->text : "(no answer)");
out:
    if (r->answer == NULL) {
        r->state = STORE_JOB_FAILED;
        snprintf(r->error_class, sizeof(r->error_class), "internal");
    } else {
        r->state = STORE_JOB_ANSWERED;
    }
    r->sent_parts = 0;
    job_save(j);
}

static void
job_ask_done(void *arg, const struct core_answer *a)
{
    struct job *j = arg;

    if (!j->asking || j->finished)
        return;
    j->asking = 0;
    uv_timer_stop(&j->timer);
    job_answered(j, a);
    job_step(j);
}

/* The backstop fired: the asker kept the job past give_up_after. */
static void
job_ask_timeout(struct job *j)
{
    struct core_answer a;

    memset(&a, 0, sizeof(a));
    a.error_class = "timeout";
    a.error = "the model did not answer in time";
    if (j->c->asker.cancel != NULL)
        j->c->asker.cancel(j->c->asker.ctx, j->ask_handle);
    j->asking = 0;
    job_answered(j, &a);
    job_step(j);
}

/* ---- commands (core/commands.c parses; the handlers are here) ---- */

static enum commands_role
core_role(const struct core *c, const struct store_job *r)
{
    if (core_is_admin(c, r->platform, r->user))
        return COMMANDS_ROLE_ADMIN;
    /* in a private chat the user is that chat's only member: its
     * administrator (they may tighten its limits and set its persona) */
    if (r->flags & (EVENT_ADMIN | EVENT_PRIVATE))
        return COMMANDS_ROLE_CHAT_ADMIN;
    return COMMANDS_ROLE_USER;
}

static char *reply_dup(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *
reply_dup(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static void
who_name(char *buf, size_t len, const char *platform, const char *id)
{
    snprintf(buf, len, "%s:%s", platform, id);
}

/*
 * WHO of a command into a platform user id.  0 and id set, or -1 with
 * *reply the explanation for the caller.
 */
static int
who_resolve(struct core *c, const struct commands_call *call, char *id,
            size_t len, char **reply)
{
    const struct commands_who *w = &call->p->who;
    int rc;

    switch (w->kind) {
    case COMMANDS_WHO_ID:
        snprintf(id, len, "%s", w->id);
        return 0;
    case COMMANDS_WHO_REPLY:
        /* the platform named the replied message's author */
        if (call->reply_to_user != NULL && call->reply_to_user[0] != '\0' &&
            strcmp(w->id, call->reply_to) == 0) {
            snprintf(id, len, "%s", call->reply_to_user);
            return 0;
        }
        rc = store_message_author(c->st, call->platform, call->chat, w->id, id,
                                  len);
        if (rc == 1)
            return 0;
        *reply = reply_dup(
            rc < 0 ? "Sorry, I could not look that message up; try again."
                   : "I don't know who wrote that message (I only know "
                     "messages addressed to me); use their user id instead.");
        return -1;
    case COMMANDS_WHO_USERNAME:
        *reply = reply_dup("Telegram does not tell bots who @%s is; use their "
                           "numeric user id, or reply to one of their "
                           "messages to me.",
                           w->id);
        return -1;
    default:
        *reply = reply_dup("usage: %s", call->p->entry->usage);
        return -1;
    }
}

static void
core_audit(struct core *c, const struct commands_call *call, const char *action,
           const char *target, const char *detail)
{
    char actor[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2];

    who_name(actor, sizeof(actor), call->platform, call->user);
    if (store_audit_add(c->st, core_wall(c), call->platform, actor, action,
                        target, detail) < 0)
        log_warnx("core audit write failed action=%s", action);
    c->stats.admin_actions++;
    log_info("core admin action=\"%s\" actor=%s target=%s job=%" PRId64, action,
             actor, target ? target : "-", call->job_id);
}

/* A request of (platform, chat, user) with the effective limits. */
static void
core_request_for(const struct core *c, const char *platform, const char *chat,
                 const char *user, struct admit_request *rq,
                 struct store_job *tmp)
{
    memset(tmp, 0, sizeof(*tmp));
    snprintf(tmp->platform, sizeof(tmp->platform), "%s", platform);
    snprintf(tmp->chat, sizeof(tmp->chat), "%s", chat);
    snprintf(tmp->user, sizeof(tmp->user), "%s", user);
    core_request(c, tmp, 1, rq);
    rq->platform = tmp->platform;
    rq->chat = tmp->chat;
    rq->user = tmp->user;
}

static int
core_has_override(const struct core *c, const char *scope, const char *platform,
                  const char *target, const char *kind)
{
    char key[2 * EVENT_ID_MAX + 64];

    snprintf(key, sizeof(key), "%s|%s|%s|%s", scope, platform, target, kind);
    return kv_find(&c->overrides, key) != NULL;
}

/* "30/60s" / "off" */
static void
rate_text(const struct rate *r, char *buf, size_t len)
{
    value_format_rate(r, buf, len);
}

char *
core_cmd_help(struct core *c, const struct commands_call *call)
{
    char buf[COMMANDS_HELP_MAX];

    (void)c;
    if (commands_help(call->role, buf, sizeof(buf)) < 0)
        return NULL;
    return strdup(buf);
}

char *
core_cmd_reset(struct core *c, const struct commands_call *call)
{
    if (store_history_reset(c->st, call->platform, call->chat, call->thread) <
        0)
        return reply_dup("Sorry, I could not reset this conversation; try "
                         "again.");
    return reply_dup("Done: this conversation starts over; I no longer see "
                     "what was said before.");
}

/* One line on a window or budget from a limiter peek. */
static void
usage_line(char *buf, size_t len, const char *what, const char *unit,
           struct rate r, const struct ratelimit_usage *u, int peeked)
{
    char span[32], wait[32];

    if (r.n == 0) {
        snprintf(buf, len, "\n%s: no limit", what);
        return;
    }
    notice_span(span, sizeof(span), r.window_ms);
    if (!peeked) {
        snprintf(buf, len, "\n%s: %" PRId64 " %s per %s", what, r.n, unit,
                 span);
        return;
    }
    if (u->reset_ms > 0)
        notice_wait(wait, sizeof(wait), u->reset_ms);
    snprintf(buf, len,
             "\n%s: %" PRId64 " of %" PRId64 " %s per %s used, %" PRId64
             " left%s%s%s",
             what, u->used, r.n, unit, span, u->remaining,
             u->reset_ms > 0 ? " (all back in " : "",
             u->reset_ms > 0 ? wait : "", u->reset_ms > 0 ? ")" : "");
}

char *
core_cmd_usage(struct core *c, const struct commands_call *call)
{
    struct admit_request rq;
    struct store_job tmp;
    struct ratelimit_usage u;
    struct store_usage today, week;
    char l1[192], l2[192], l3[192], usd_today[32], usd_week[32];
    int64_t mono = core_mono(c), day = core_wall(c) / 86400000;
    int p1, p2, p3;

    core_load_limiter(c);
    usage_flush(c);
    core_request_for(c, call->platform, call->chat, call->user, &rq, &tmp);
    if (store_usage_sum(c->st, "user", call->platform, call->user, day, day,
                        &today) < 0 ||
        store_usage_sum(c->st, "user", call->platform, call->user, day - 6, day,
                        &week) < 0)
        return reply_dup("Sorry, I could not read your usage; try again.");
    commands_usd(today.cost_micro_usd, usd_today, sizeof(usd_today));
    commands_usd(week.cost_micro_usd, usd_week, sizeof(usd_week));
    if (rq.admin) {
        l1[0] = l2[0] = l3[0] = '\0';
        snprintf(l1, sizeof(l1),
                 "\nYou are one of the bot's admins: no "
                 "limit applies to you.");
    } else {
        p1 = rq.lim.user.n > 0 &&
             admit_peek(c->admit, &rq, ADMIT_USER, mono, &u) == 0;
        usage_line(l1, sizeof(l1), "your requests", "requests", rq.lim.user, &u,
                   p1);
        p2 = rq.lim.user_tokens.n > 0 &&
             admit_peek(c->admit, &rq, ADMIT_USER_TOKENS, mono, &u) == 0;
        usage_line(l2, sizeof(l2), "your tokens", "tokens", rq.lim.user_tokens,
                   &u, p2);
        p3 = rq.lim.chat.n > 0 &&
             admit_peek(c->admit, &rq, ADMIT_CHAT, mono, &u) == 0;
        usage_line(l3, sizeof(l3), "this chat's requests", "requests",
                   rq.lim.chat, &u, p3);
    }
    return reply_dup("Your usage on %s:%s%s%s\n"
                     "today: %" PRId64 " requests (%" PRId64
                     " limited), %" PRId64 " tokens, $%s\n"
                     "last 7 days: %" PRId64 " requests (%" PRId64
                     " limited), %" PRId64 " tokens, $%s",
                     call->platform, l1, l2, l3, today.requests, today.limited,
                     today.tokens_in + today.tokens_out, usd_today,
                     week.requests, week.limited,
                     week.tokens_in + week.tokens_out, usd_week);
}

char *
core_cmd_limits(struct core *c, const struct commands_call *call)
{
    struct admit_request rq;
    struct store_job tmp;
    char u[32], ut[32], ch[32], cht[32], g[32];
    const char *mark = " (set by an admin)";

    core_request_for(c, call->platform, call->chat, call->user, &rq, &tmp);
    rate_text(&rq.lim.user, u, sizeof(u));
    rate_text(&rq.lim.user_tokens, ut, sizeof(ut));
    rate_text(&rq.lim.chat, ch, sizeof(ch));
    rate_text(&rq.lim.chat_tokens, cht, sizeof(cht));
    rate_text(&rq.lim.global, g, sizeof(g));
    return reply_dup(
        "Limits for you here:%s\n"
        "your requests: %s%s\n"
        "your tokens: %s%s\n"
        "this chat's requests: %s%s\n"
        "this chat's tokens: %s%s\n"
        "everyone together: %s requests\n"
        "429 notices: %s",
        rq.admin ? " (you are one of the bot's admins: none of them apply "
                   "to you)"
                 : "",
        u,
        core_has_override(c, "user", call->platform, call->user, "limit") ? mark
                                                                          : "",
        ut,
        core_has_override(c, "user", call->platform, call->user, "budget")
            ? mark
            : "",
        ch,
        core_has_override(c, "chat", call->platform, call->chat, "limit") ? mark
                                                                          : "",
        cht,
        core_has_override(c, "chat", call->platform, call->chat, "budget")
            ? mark
            : "",
        g, config_notice_name(c->cfg->limits.notice));
}

/* Remember a forgotten user so their limiter keys are not saved again. */
static void
quiet_add(struct core *c, const char *platform, const char *user,
          const char *chat, int64_t until)
{
    struct quiet *q;

    quiet_expire(c, core_mono(c));
    if (c->nquiet == CORE_QUIET_MAX) /* the oldest gives way */
        memmove(&c->quiet[0], &c->quiet[1],
                (CORE_QUIET_MAX - 1) * sizeof(c->quiet[0]));
    else
        c->nquiet++;
    q = &c->quiet[c->nquiet - 1];
    snprintf(q->platform, sizeof(q->platform), "%s", platform);
    snprintf(q->user, sizeof(q->user), "%s", user);
    snprintf(q->chat, sizeof(q->chat), "%s", chat ? chat : "");
    q->until = until;
}

char *
core_cmd_forget(struct core *c, const struct commands_call *call)
{
    struct admit_request rq;
    struct store_job tmp;
    int64_t keep = 0;
    const struct rate *r[] = {&rq.lim.user, &rq.lim.user_tokens, &rq.lim.chat};

    usage_flush(c); /* pending counters go with the rest */
    if (store_forget_user(c->st, call->platform, call->user) < 0 ||
        (call->private_chat &&
         store_forget_chat(c->st, call->platform, call->chat) < 0))
        return reply_dup("Sorry, I could not delete your data; nothing or "
                         "only part of it is gone. Try again.");
    /* the windows stay in memory until they have passed: forget is no way
     * around a limit, and no row is written for them meanwhile */
    core_request_for(c, call->platform, call->chat, call->user, &rq, &tmp);
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        if (r[i]->window_ms > keep)
            keep = r[i]->window_ms;
    if (keep > CORE_QUIET_MAX_MS)
        keep = CORE_QUIET_MAX_MS;
    quiet_add(c, call->platform, call->user,
              call->private_chat ? call->chat : NULL,
              core_mono(c) + (keep > 0 ? keep : 60000));
    /* their overrides went with them */
    core_reload_caches(c);
    log_info("core forget platform=%s job=%" PRId64, call->platform,
             call->job_id);
    return reply_dup("Done: I deleted everything stored about you here — "
                     "your messages and my answers to them, your votes and "
                     "your usage. What you send from now on is stored "
                     "again, as for everyone.");
}

char *
core_cmd_override(struct core *c, const struct commands_call *call)
{
    const struct commands_parsed *p = call->p;
    const char *kind = p->entry->name, *scope = p->entry->sub;
    const char *what =
        strcmp(kind, "limit") == 0 ? "request limit" : "token budget";
    char target[EVENT_ID_MAX + 1], tname[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2];
    char rate[32], action[32], *reply = NULL;
    struct rate cap;
    int rc;

    if (strcmp(scope, "chat") == 0) {
        snprintf(target, sizeof(target), "%s", call->chat);
    } else if (who_resolve(c, call, target, sizeof(target), &reply) < 0) {
        return reply;
    }
    who_name(tname, sizeof(tname), call->platform, target);
    if (p->is_default)
        snprintf(rate, sizeof(rate), "default");
    else
        rate_text(&p->rate, rate, sizeof(rate));
    /* a chat's administrators may tighten their chat's limits, never
     * loosen them past the bot's own (the bot's owner pays) */
    if (call->role != COMMANDS_ROLE_ADMIN && !p->is_default) {
        cap = strcmp(kind, "limit") == 0 ? c->cfg->limits.chat
                                         : c->cfg->limits.chat_tokens;
        if (!commands_rate_within(p->rate, cap)) {
            char capt[32];

            rate_text(&cap, capt, sizeof(capt));
            return reply_dup("Sorry, a chat's administrators may only "
                             "tighten its %s (the bot's is %s); ask the "
                             "bot's admins to raise it.",
                             what, capt);
        }
    }
    if (p->is_default)
        rc = store_override_del(c->st, scope, call->platform, target, kind);
    else
        rc = store_override_set(c->st, scope, call->platform, target, kind,
                                p->rate.n, p->rate.n ? p->rate.window_ms : 0,
                                NULL, core_wall(c));
    if (rc < 0)
        return reply_dup("Sorry, I could not save that; try again.");
    snprintf(action, sizeof(action), "%s %s", kind, scope);
    core_audit(c, call, action, tname, rate);
    /* at once, not at the next poll */
    core_reload_caches(c);
    if (strcmp(scope, "chat") == 0)
        return reply_dup(p->is_default
                             ? "Done: this chat's %s is back to the default."
                             : "Done: this chat's %s is now %s.",
                         what, rate);
    return reply_dup(p->is_default ? "Done: the %s of %s is back to the "
                                     "default."
                                   : "Done: the %s of %s is now %s.",
                     what, tname, rate);
}

char *
core_cmd_ban(struct core *c, const struct commands_call *call)
{
    char target[EVENT_ID_MAX + 1], tname[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2];
    char actor[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2], dur[32] = "until unban";
    char *reply = NULL;
    int64_t wall = core_wall(c), ms = call->p->duration_ms;

    if (who_resolve(c, call, target, sizeof(target), &reply) < 0)
        return reply;
    who_name(tname, sizeof(tname), call->platform, target);
    if (core_is_admin(c, call->platform, target))
        return reply_dup("%s is one of the bot's admins ([bot] admins) and "
                         "cannot be banned.",
                         tname);
    who_name(actor, sizeof(actor), call->platform, call->user);
    if (ms > 0)
        value_format_duration(ms, dur, sizeof(dur));
    if (store_ban_set(c->st, call->platform, target, ms > 0 ? wall + ms : 0,
                      actor, wall) < 0)
        return reply_dup("Sorry, I could not save that; try again.");
    core_audit(c, call, "ban", tname, dur);
    core_reload_caches(c);
    if (ms > 0)
        return reply_dup("Done: I ignore %s for %s.", tname, dur);
    return reply_dup("Done: I ignore %s until unban.", tname);
}

char *
core_cmd_unban(struct core *c, const struct commands_call *call)
{
    char target[EVENT_ID_MAX + 1], tname[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2];
    char *reply = NULL;

    if (who_resolve(c, call, target, sizeof(target), &reply) < 0)
        return reply;
    who_name(tname, sizeof(tname), call->platform, target);
    if (store_ban_del(c->st, call->platform, target) < 0)
        return reply_dup("Sorry, I could not save that; try again.");
    core_audit(c, call, "unban", tname, NULL);
    core_reload_caches(c);
    return reply_dup("Done: %s is no longer banned.", tname);
}

char *
core_cmd_stats(struct core *c, const struct commands_call *call)
{
    struct store_stats s;
    char buf[2048];

    (void)call;
    core_flush_stats(c);
    if (store_stats_read(c->st, core_wall(c), &s) < 0 ||
        commands_stats_text(&s, buf, sizeof(buf)) < 0)
        return reply_dup("Sorry, I could not read the stats; try again.");
    return strdup(buf);
}

char *
core_cmd_model(struct core *c, const struct commands_call *call)
{
    const struct commands_parsed *p = call->p;
    char tname[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2], names[512] = "";
    size_t at = 0;

    if (!p->is_default && config_model_find(c->cfg, p->arg) == NULL) {
        for (size_t i = 0; i < c->cfg->nmodels && at < sizeof(names); i++) {
            int w = snprintf(names + at, sizeof(names) - at, "%s%s",
                             i ? ", " : "", c->cfg->models[i].name);

            if (w < 0)
                break;
            at += (size_t)w;
        }
        return reply_dup("There is no model \"%s\"; the models are: %s.",
                         p->arg, names[0] ? names : "(none)");
    }
    who_name(tname, sizeof(tname), call->platform, call->chat);
    if (store_chat_set(c->st, call->platform, call->chat, "model",
                       p->is_default ? NULL : p->arg, core_wall(c)) < 0)
        return reply_dup("Sorry, I could not save that; try again.");
    core_audit(c, call, "model", tname, p->is_default ? "default" : p->arg);
    if (p->is_default)
        return reply_dup("Done: this chat uses the default models again.");
    return reply_dup("Done: this chat asks %s first (then the fallbacks of "
                     "[llm] models).",
                     p->arg);
}

char *
core_cmd_persona(struct core *c, const struct commands_call *call)
{
    const struct commands_parsed *p = call->p;
    char tname[EVENT_PLATFORM_MAX + EVENT_ID_MAX + 2];

    who_name(tname, sizeof(tname), call->platform, call->chat);
    if (store_chat_set(c->st, call->platform, call->chat, "persona",
                       p->is_default ? NULL : p->arg, core_wall(c)) < 0)
        return reply_dup("Sorry, I could not save that; try again.");
    core_audit(c, call, "persona", tname, p->is_default ? "default" : p->arg);
    if (p->is_default)
        return reply_dup("Done: this chat uses the default system prompt "
                         "again.");
    return reply_dup("Done: this chat's system prompt is set (%zu bytes).",
                     strlen(p->arg));
}

/*
 * A command job: parse (core/commands), check who may, run the handler.
 * Commands come only from events the connector marked EVENT_COMMAND, so
 * nothing in a model's answer can ever run one.
 */
static char *
core_command(struct core *c, const struct store_job *r)
{
    char name[EVENT_COMMAND_MAX + 1], err[COMMANDS_ERR_MAX];
    struct commands_parsed *p = calloc(1, sizeof(*p));
    struct commands_call call;
    enum commands_status st;
    size_t n = strcspn(r->text, " ");
    char *out = NULL;

    if (p == NULL)
        return NULL;
    snprintf(name, sizeof(name), "%.*s", (int)n, r->text);
    st = commands_parse(name, r->text[n] ? r->text + n + 1 : "", r->platform,
                        r->reply_to, p, err, sizeof(err));
    if (st != COMMANDS_OK) {
        log_info("core command job=%" PRId64 " name=%s: %s", r->id, name,
                 st == COMMANDS_UNKNOWN ? "unknown" : "usage");
        out = strdup(err);
        goto out;
    }
    memset(&call, 0, sizeof(call));
    call.p = p;
    call.platform = r->platform;
    call.chat = r->chat;
    call.thread = r->thread;
    call.user = r->user;
    call.reply_to = r->reply_to;
    call.reply_to_user = r->reply_to_user;
    call.role = core_role(c, r);
    call.private_chat = (r->flags & EVENT_PRIVATE) != 0;
    call.job_id = r->id;
    if (!commands_allowed(p->entry, call.role)) {
        log_info("core command refused job=%" PRId64 " name=%s", r->id, name);
        commands_refusal(p->entry, err, sizeof(err));
        out = strdup(err);
        goto out;
    }
    log_debug("core command job=%" PRId64 " name=%s", r->id, name);
    out = p->entry->handler(c, &call);
out:
    free(p);
    return out;
}

static void
job_ask(struct job *j)
{
    struct core *c = j->c;
    struct store_job *r = &j->row;
    struct core_prompt cp;
    struct prompt p;
    int64_t now = core_mono(c);

    if (r->flags & EVENT_COMMAND) {
        c->stats.commands++;
        free(r->answer);
        r->answer = core_command(c, r);
        r->state = r->answer ? STORE_JOB_ANSWERED : STORE_JOB_FAILED;
        if (r->answer == NULL)
            snprintf(r->error_class, sizeof(r->error_class), "internal");
        job_save(j);
        job_step(j);
        return;
    }
    if (prompt_build(c, r, &p) < 0) {
        j->waiting = 1;
        job_arm(j, CORE_RETRY_MS);
        return;
    }
    memset(&cp, 0, sizeof(cp));
    cp.msgs = p.msgs;
    cp.n = p.n;
    cp.model = p.model;
    cp.max_output_tokens = c->cfg->llm.max_output_tokens;
    cp.estimate = p.estimate;
    cp.job_id = r->id;
    cp.age_ms = r->created_ms > 0 ? core_wall(c) - r->created_ms : 0;
    if (cp.age_ms < 0)
        cp.age_ms = 0; /* the wall clock went back */
    if (job_stream(j) != NULL)
        cp.partial = job_partial;
    if (r->state != STORE_JOB_ASKING) {
        r->state = STORE_JOB_ASKING;
        r->attempts++;
        job_save(j);
    }
    j->asking = 1;
    j->ask_started = now;
    j->deadline = now + c->cfg->llm.give_up_after + c->cfg->llm.timeout +
                  CORE_DEADLINE_SLACK_MS;
    c->stats.asked++;
    if (c->asker.ask == NULL ||
        c->asker.ask(c->asker.ctx, &cp, job_ask_done, j, &j->ask_handle) < 0) {
        j->asking = 0;
        j->waiting = 1;
        log_warnx("core ask refused job=%" PRId64 ", retrying", r->id);
        job_arm(j, CORE_RETRY_MS);
        prompt_free(&p);
        return;
    }
    prompt_free(&p);
    j->typing_next = 0;
    job_typing(j);
    job_arm_asking(j);
}

/* ---- sending ---- */

/*
 * Splits the answer at the platform's limit (core/stream's rule: a
 * paragraph, line or word boundary, never inside a UTF-8 sequence).
 * Deterministic, so a resumed job finds the same parts and skips the
 * sent_parts already delivered.
 */
static int
job_split(struct job *j, size_t max)
{
    const char *s = j->row.answer;
    size_t len = strlen(s), at = 0, n;

    free(j->cuts);
    j->nparts = 0;
    n = stream_split_count(s, len, max);
    if (n > CORE_PART_MAX)
        n = CORE_PART_MAX;
    if ((j->cuts = malloc((n + 1) * sizeof(*j->cuts))) == NULL)
        return -1;
    j->cuts[0] = 0;
    while ((size_t)j->nparts < n) {
        at = stream_split_next(s, len, at, max);
        j->cuts[++j->nparts] = at;
    }
    return 0;
}

static int
job_is_notice(const struct job *j)
{
    return strcmp(j->row.error_class, "rate_limited") == 0;
}

/* A finished `forget` leaves no row: its text and ids are the user's. */
static int
job_is_forget(const struct job *j)
{
    return (j->row.flags & EVENT_COMMAND) && j->row.text != NULL &&
           strncmp(j->row.text, "forget", 6) == 0 &&
           (j->row.text[6] == '\0' || j->row.text[6] == ' ');
}

static void
job_done_sending(struct job *j)
{
    struct store_job *r = &j->row;

    /* an error reply delivered: the job failed, and the user knows why */
    r->state = r->error_class[0] && !job_is_notice(j) ? STORE_JOB_FAILED
                                                      : STORE_JOB_SENT;
    /*
     * The price: a redelivery of this very message after a crash would
     * run forget again (harmless) and reply twice.  The router's recent-id
     * set still drops redeliveries within this process.
     */
    if (job_is_forget(j) && r->state == STORE_JOB_SENT)
        store_job_delete(j->c->st, r->id);
    else
        job_save(j);
    job_finish(j);
}

/* ---- streaming: partial answers shown by paced edits ---- */

/*
 * The job's stream, made when the connector can edit and
 * [llm] stream is on; a resumed job reads the ids of the messages it had
 * posted before the restart (connector_state "core" / "stream:<job id>"),
 * so the new stream or the final text edits them instead of posting more.
 * NULL: not streamed.
 */
static struct stream *
job_stream(struct job *j)
{
    struct core *c = j->c;
    struct connector *k = core_connector(c, j->row.platform);
    char key[48], *ids = NULL;
    struct stream *st = j->stream;

    if (st != NULL || j->stream_off)
        return st;
    if (k == NULL || !k->ops.can_edit || !c->cfg->llm.stream ||
        (j->row.flags & (CORE_JOB_INTERNAL | EVENT_COMMAND)))
        return NULL;
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return NULL;
    st->interval_ms = c->cfg->llm.stream_interval;
    st->text_max = k->ops.text_max;
    if (j->resumed) {
        snprintf(key, sizeof(key), "stream:%" PRId64, j->row.id);
        if ((ids = malloc(CORE_STREAM_IDS_MAX)) != NULL &&
            store_kv_get(c->st, "core", key, ids, CORE_STREAM_IDS_MAX) == 1 &&
            stream_ids_decode(st, ids) < 0) {
            log_warnx("core stream ids unreadable job=%" PRId64, j->row.id);
            stream_release(st);
        }
        free(ids);
    }
    j->stream = st;
    return st;
}

/* The posted ids, durable: a restart edits these instead of posting. */
static void
job_stream_save(struct job *j)
{
    struct core *c = j->c;
    size_t len = (size_t)(j->stream->n + 1) * (EVENT_ID_MAX + 1);
    char key[48], *ids;

    snprintf(key, sizeof(key), "stream:%" PRId64, j->row.id);
    if ((ids = malloc(len)) == NULL ||
        stream_ids_encode(j->stream, ids, len) < 0 ||
        store_kv_set(c->st, "core", key, ids) < 0 || store_sync(c->st) < 0)
        log_warnx("core stream ids not saved job=%" PRId64, j->row.id);
    free(ids);
}

/* The answer so far, from the asker: shown at once when the budget and
 * the interval allow, else coalesced into the next step. */
static void
job_partial(void *arg, const char *text, size_t len)
{
    struct job *j = arg;
    char *t;

    if (!j->asking || j->finished || j->stream == NULL || j->stream_off)
        return;
    len = event_text_cut(text, len, len); /* whole characters only */
    if ((t = realloc(j->stext, len + 1)) == NULL)
        return; /* the next partial, or the final text, makes up for it */
    memcpy(t, text, len);
    t[len] = '\0';
    j->stext = t;
    j->slen = len;
    job_send(j);
    if (j->sending || j->stream->n > 0)
        j->typing_next = 0; /* text is on its way: no more "typing…" */
    if (j->asking && !j->finished)
        job_arm_asking(j);
}

/* Every message shows the final text: record them for votes, finish. */
static void
job_stream_done(struct job *j)
{
    struct core *c = j->c;
    struct store_job *r = &j->row;
    char key[48];
    int k;

    if (r->answer_id > 0)
        for (k = 0; k < j->stream->n; k++)
            store_sent_add(c->st, r->platform, r->chat, j->stream->msgs[k].id,
                           r->answer_id, k, core_wall(c));
    snprintf(key, sizeof(key), "stream:%" PRId64, r->id);
    store_kv_del(c->st, "core", key);
    r->sent_parts = j->stream->n;
    c->stats.streamed++;
    job_done_sending(j);
}

/*
 * At most ops.streams_max answers stream at once on a platform: a job
 * takes a slot when it would first show text (or already has messages,
 * after a restart) and gives it back when it finishes.  Without a slot it
 * shows nothing yet; if it finishes first, it is sent whole (job_send
 * sends plainly what never posted).  1: it holds a slot.
 */
static int
job_stream_slot(struct job *j, struct connector *k)
{
    if (k->ops.streams_max > 0 && k->streams >= k->ops.streams_max &&
        j->stream->n == 0)
        return 0;
    k->streams++;
    j->stream_counted = 1;
    return 1;
}

/* Waits for at (mono), on the asking timer or the job's own. */
static void
job_stream_wait(struct job *j, int64_t at)
{
    j->stream_at = at;
    if (j->asking) {
        job_arm_asking(j);
    } else {
        j->waiting = 1;
        job_arm(j, at - core_mono(j->c));
    }
}

static int
job_feedback(const struct job *j)
{
    const struct store_job *r = &j->row;

    return r->state == STORE_JOB_ANSWERED && r->error_class[0] == '\0' &&
           r->answer_id > 0;
}

/*
 * One step of the stream: the planner (core/stream) says what is due;
 * at most one action is in flight per job, so the text an edit carries
 * is always the newest (coalescing), and the final text follows the
 * last partial in order.
 */
static void
job_stream_send(struct job *j, struct connector *k)
{
    struct core *c = j->c;
    struct store_job *r = &j->row;
    struct stream *st = j->stream;
    struct stream_step *sp = &j->spend;
    int final = !j->asking;
    const char *text = final ? r->answer : j->stext;
    size_t len = final ? strlen(r->answer) : j->slen;
    int64_t now = core_mono(c);
    char idem[64], *part = NULL;
    struct action a;

    if (text == NULL || (!final && j->stream_off))
        return;
    if (!j->stream_counted && !job_stream_slot(j, k))
        return; /* no slot: the next partial looks again */
    if (j->stream_hold > now) {
        job_stream_wait(j, j->stream_hold);
        return;
    }
    for (;;) {
        stream_next(st, text, len, final, job_feedback(j), now, sp);
        if (sp->op != STREAM_DELETE || st->msgs[sp->part].id[0] != '\0')
            break;
        st->n--; /* lost already: nothing to delete */
    }
    if (sp->op == STREAM_WAIT) {
        if (sp->at_ms != INT64_MAX)
            job_stream_wait(j, sp->at_ms);
        return;
    }
    if (sp->op == STREAM_DONE) {
        job_stream_done(j);
        return;
    }
    if (sp->op != STREAM_DELETE &&
        (part = stream_part_dup(text, sp->from, sp->to)) == NULL) {
        job_stream_wait(j, now + CORE_RETRY_MS);
        return;
    }
    snprintf(idem, sizeof(idem), "job:%" PRId64 ":%d", r->id, sp->part);
    memset(&a, 0, sizeof(a));
    a.kind = sp->op == STREAM_POST   ? ACTION_ANSWER
             : sp->op == STREAM_EDIT ? ACTION_EDIT
                                     : ACTION_DELETE;
    j->stream_seq = (j->stream_seq + 1) & (CORE_SEND_STREAM - 1);
    a.send_id = ((uint64_t)r->id << 16) | CORE_SEND_STREAM | j->stream_seq;
    a.chat = r->chat;
    a.thread = r->thread;
    a.reply_to = sp->op == STREAM_POST ? r->message_id : "";
    a.text = part != NULL ? part : "";
    a.idem_key = idem;
    a.part = sp->part;
    a.parts =
        final ? (int)stream_split_count(text, len, st->text_max) : sp->part + 1;
    a.feedback = sp->feedback;
    a.target_id = sp->op == STREAM_POST ? "" : st->msgs[sp->part].id;
    a.controls_only = sp->op == STREAM_EDIT && sp->controls_only;
    j->sending = 1;
    c->stats.sends++;
    if (k->ops.send(k->ops.ctx, &a) < 0) {
        j->sending = 0;
        job_stream_wait(j, now + CORE_RETRY_MS);
    }
    free(part);
}

/* The outcome of the stream action in flight. */
static void
job_stream_sent(struct job *j, const struct send_result *res)
{
    struct core *c = j->c;
    struct stream *st = j->stream;
    struct stream_step *sp = &j->spend;
    struct stream_msg *m;
    int64_t now = core_mono(c);

    j->sending = 0;
    if (res->status == SEND_RETRY) {
        j->stream_hold =
            now + (res->retry_after_ms > 0 ? res->retry_after_ms : 1000);
        job_send(j);
        return;
    }
    if (res->status == SEND_OK && sp->op == STREAM_POST &&
        (res->message_id == NULL || res->message_id[0] == '\0' ||
         strlen(res->message_id) > EVENT_ID_MAX ||
         stream_reserve(st, sp->part + 1) < 0)) {
        /* posted, but we cannot edit it: no more partials */
        log_warnx("core stream post without an id job=%" PRId64, j->row.id);
        j->stream_off = 1;
        c->stats.sent++;
        return;
    }
    if (res->status == SEND_OK) {
        c->stats.sent++;
        if (sp->op == STREAM_DELETE) {
            st->n = sp->part;
            job_stream_save(j);
        } else {
            m = &st->msgs[sp->part];
            if (sp->op == STREAM_POST)
                snprintf(m->id, sizeof(m->id), "%s", res->message_id);
            m->hash = sp->hash;
            m->len = sp->to - sp->from;
            m->known = 1;
            m->feedback = sp->feedback;
            /* stream_interval is between edits: the first edit after
             * the post (often the final text of a short answer) need not
             * wait for it, only for the platform's pacing */
            m->last_ms = sp->op == STREAM_POST ? now - st->interval_ms : now;
            if (sp->part >= st->n) {
                st->n = sp->part + 1;
                job_stream_save(j);
            } else if (sp->op == STREAM_POST) {
                job_stream_save(j);
            }
        }
        job_send(j);
        return;
    }
    /* SEND_FAILED */
    if (sp->op == STREAM_DELETE ||
        (sp->op == STREAM_EDIT && res->error_class != NULL &&
         strcmp(res->error_class, "not_found") == 0)) {
        st->msgs[sp->part].id[0] = '\0'; /* gone: post it again */
        if (sp->op == STREAM_DELETE)
            st->n = sp->part;
        job_stream_save(j);
        job_send(j);
        return;
    }
    if (j->asking) { /* the final text will try again, once */
        j->stream_off = 1;
        return;
    }
    c->pend.errors++;
    c->pend_dirty = 1;
    j->row.state = STORE_JOB_FAILED;
    snprintf(j->row.error_class, sizeof(j->row.error_class), "%s",
             res->error_class && res->error_class[0] ? res->error_class
                                                     : "send");
    log_warnx("core stream send failed job=%" PRId64 " class=%s", j->row.id,
              j->row.error_class);
    job_save(j);
    job_finish(j);
}

static void
job_send(struct job *j)
{
    struct core *c = j->c;
    struct store_job *r = &j->row;
    struct connector *k;
    struct action a;
    char idem[64], *part;
    int64_t wall = core_wall(c);
    size_t from, to;

    if (j->sending || j->finished || c->stopping)
        return;
    if ((k = core_connector(c, r->platform)) == NULL)
        return; /* core_register_connector will call us again */
    if (j->resumed && !j->asking) { /* it may have streamed before */
        job_stream(j);
        j->resumed = 0;
    }
    if (j->stream != NULL && (j->asking || j->stream->n > 0)) {
        job_stream_send(j, k);
        return;
    }
    if (r->next_at_ms > wall) {
        j->waiting = 1;
        job_arm(j, r->next_at_ms - wall);
        return;
    }
    if (j->cuts == NULL && job_split(j, k->ops.text_max) < 0) {
        j->waiting = 1;
        job_arm(j, CORE_RETRY_MS);
        return;
    }
    if (r->sent_parts >= j->nparts) {
        job_done_sending(j);
        return;
    }
    from = j->cuts[r->sent_parts];
    to = j->cuts[r->sent_parts + 1];
    if ((part = stream_part_dup(r->answer, from, to)) == NULL) {
        j->waiting = 1;
        job_arm(j, CORE_RETRY_MS);
        return;
    }
    snprintf(idem, sizeof(idem), "job:%" PRId64 ":%d", r->id, r->sent_parts);
    memset(&a, 0, sizeof(a));
    a.kind = r->state == STORE_JOB_LIMITED || (r->flags & CORE_JOB_INTERNAL)
                 ? ACTION_NOTICE
                 : ACTION_ANSWER;
    a.send_id = ((uint64_t)r->id << 16) | (uint64_t)r->sent_parts;
    a.chat = r->chat;
    a.thread = r->thread;
    a.reply_to = (r->flags & CORE_JOB_INTERNAL) ? "" : r->message_id;
    a.text = part;
    a.idem_key = idem;
    a.part = r->sent_parts;
    a.parts = j->nparts;
    a.feedback = job_feedback(j);
    j->sending = 1;
    c->stats.sends++;
    if (k->ops.send(k->ops.ctx, &a) < 0) {
        j->sending = 0;
        j->waiting = 1;
        job_arm(j, CORE_RETRY_MS);
    }
    free(part);
}

void
core_send_done(struct core *c, uint64_t send_id, const struct send_result *res)
{
    struct job *j = jobs_find(c, (int64_t)(send_id >> 16));
    struct store_job *r;
    int part = (int)(send_id & 0xffff);
    uint64_t saves;

    if (j != NULL && (part & CORE_SEND_STREAM)) {
        if (j->sending && !j->finished && j->stream != NULL &&
            (unsigned)(part & (CORE_SEND_STREAM - 1)) == j->stream_seq)
            job_stream_sent(j, res);
        return;
    }
    if (j == NULL || !j->sending || j->finished || part != j->row.sent_parts)
        return; /* stale: a send from before a restart or a stop */
    r = &j->row;
    j->sending = 0;
    switch (res->status) {
    case SEND_OK:
        c->stats.sent++;
        if (r->answer_id > 0 && res->message_id && res->message_id[0])
            store_sent_add(c->st, r->platform, r->chat, res->message_id,
                           r->answer_id, part, core_wall(c));
        r->sent_parts++;
        r->next_at_ms = 0;
        /*
         * The at-least-once window: between the platform taking the part
         * and the commit of this save, which the store makes at the end of
         * this loop turn together with every other outcome of the turn
         * (one commit for many sends under load).  After the last part
         * job_send has saved the final state already: one UPDATE, not two
         * (j is freed by its close callback, not before this returns).
         */
        saves = j->saves;
        job_send(j);
        if (j->saves == saves)
            job_save(j);
        break;
    case SEND_RETRY:
        r->next_at_ms = core_wall(c) +
                        (res->retry_after_ms > 0 ? res->retry_after_ms : 1000);
        job_save(j);
        job_send(j);
        break;
    case SEND_FAILED:
    default:
        c->pend.errors++;
        c->pend_dirty = 1;
        r->state = STORE_JOB_FAILED;
        snprintf(r->error_class, sizeof(r->error_class), "%s",
                 res->error_class && res->error_class[0] ? res->error_class
                                                         : "send");
        log_warnx("core send failed job=%" PRId64 " class=%s", r->id,
                  r->error_class);
        job_save(j);
        job_finish(j);
        break;
    }
}

/* ---- the job state machine ---- */

static void
job_step(struct job *j)
{
    struct core *c = j->c;
    int rc;

    if (j->finished || c->stopping)
        return;
    j->waiting = 0;
    switch (j->row.state) {
    case STORE_JOB_RECEIVED:
        rc = job_admit(c, &j->row);
        if (rc < 0) {
            j->waiting = 1;
            job_arm(j, CORE_RETRY_MS);
        } else if (rc == 0) {
            job_finish(j);
        } else {
            job_step(j);
        }
        break;
    case STORE_JOB_QUEUED:
    case STORE_JOB_ASKING:
        if (!j->asking)
            job_ask(j);
        break;
    case STORE_JOB_ANSWERED:
        job_send(j);
        break;
    case STORE_JOB_LIMITED:
        if (j->row.answer != NULL)
            job_send(j);
        else
            job_finish(j);
        break;
    case STORE_JOB_SENT:
    case STORE_JOB_FAILED:
    default:
        job_finish(j);
        break;
    }
}

static void
job_timer_cb(uv_timer_t *t)
{
    struct job *j = (struct job *)t;
    int64_t now = core_mono(j->c);

    if (j->asking) {
        if (now >= j->deadline) {
            job_ask_timeout(j);
            return;
        }
        if (j->typing_next > 0 && now >= j->typing_next)
            job_typing(j);
        if (j->stream_at > 0 && now >= j->stream_at) {
            j->stream_at = 0;
            job_send(j); /* the stream's next step */
        }
        if (j->asking)
            job_arm_asking(j);
        return;
    }
    if (j->waiting)
        job_step(j);
}

/* ---- intake ---- */

/*
 * One message to a global admin's private chat, as a job (durable, paced,
 * retried like any reply).  A Telegram private chat's id is the user's
 * id; Slack's chat.postMessage takes a user id as the channel and posts
 * in the app's DM.  A Discord DM channel must be opened first (POST
 * /users/@me/channels): the chat is "@<user id>", which the Discord
 * connector opens (once) and posts in (docs/discord.md "Admin DMs").
 * 0 queued, -1 not possible (logged).
 */
static int
core_tell_admin(struct core *c, const char *platform, const char *user,
                const char *text, int64_t wall, int seq)
{
    const char *mark = strcmp(platform, "discord") == 0 ? "@" : "";
    struct store_job r;
    struct job *j;
    int64_t id = 0;

    if (strcmp(platform, "telegram") != 0 && strcmp(platform, "slack") != 0 &&
        mark[0] == '\0') {
        log_warnx("core cannot message %s admins privately: alert logged only",
                  platform);
        return -1;
    }
    if (core_connector(c, platform) == NULL) {
        log_warnx("core no %s connector: alert to admin logged only", platform);
        return -1;
    }
    memset(&r, 0, sizeof(r));
    snprintf(r.platform, sizeof(r.platform), "%s", platform);
    snprintf(r.chat, sizeof(r.chat), "%s%s", mark, user);
    snprintf(r.message_id, sizeof(r.message_id), "parley:alert:%" PRId64 ":%d",
             wall, seq);
    r.flags = CORE_JOB_INTERNAL | EVENT_PRIVATE;
    r.state = STORE_JOB_ANSWERED;
    r.created_ms = wall;
    r.text = "";
    if (store_job_insert(c->st, &r, &id) != 1)
        return -1;
    r.id = id;
    r.text = strdup("");
    r.answer = strdup(text);
    if (r.text == NULL || r.answer == NULL ||
        store_job_save(c->st, &r, wall) < 0 || (j = job_load(c, &r)) == NULL) {
        store_job_release(&r);
        c->backlog = 1; /* the row, if written, is resumed */
        pump_schedule(c);
        return 0;
    }
    job_step(j);
    return 0;
}

/*
 * [feedback] alert: when the newest alert_window votes hold at least
 * alert_ratio 👎, tell the global admins, at most once an hour (the time
 * of the last alert is kept in connector_state, so a restart does not
 * repeat it).
 */
static void
core_feedback_alert(struct core *c)
{
    const struct config_feedback *fb = &c->cfg->feedback;
    int64_t n, down, wall = core_wall(c);
    char text[512], buf[32];
    int sent = 0;

    if (fb->alert_ratio <= 0 || fb->alert_window <= 0)
        return;
    if (c->alert_last < 0) {
        c->alert_last = 0;
        if (store_kv_get(c->st, "core", "feedback_alert_ms", buf,
                         sizeof(buf)) == 1)
            c->alert_last = strtoll(buf, NULL, 10);
    }
    if (c->alert_last > 0 && wall - c->alert_last < CORE_ALERT_EVERY_MS)
        return;
    if (store_feedback_recent(c->st, fb->alert_window, &n, &down) < 0 ||
        n < fb->alert_window || (double)down < fb->alert_ratio * (double)n)
        return;
    c->alert_last = wall;
    snprintf(buf, sizeof(buf), "%" PRId64, wall);
    store_kv_set(c->st, "core", "feedback_alert_ms", buf);
    c->stats.alerts++;
    snprintf(text, sizeof(text),
             "parley feedback alert: %" PRId64 " of the last %" PRId64
             " votes are thumbs down (%.0f%%; the alert is at %.0f%%). "
             "See stats, or parleyctl feedback export.",
             down, n, 100.0 * (double)down / (double)n,
             100.0 * fb->alert_ratio);
    log_warnx("core feedback alert down=%" PRId64 " votes=%" PRId64, down, n);
    for (size_t i = 0; i < c->cfg->bot.nadmins; i++) {
        const struct config_admin *a = &c->cfg->bot.admins[i];

        if (core_tell_admin(c, config_platform_name(a->platform), a->user, text,
                            wall, (int)i) == 0)
            sent++;
    }
    log_info("core feedback alert sent=%d admins=%zu", sent,
             c->cfg->bot.nadmins);
}

static int
core_vote(struct core *c, const struct event *ev)
{
    int rc;

    if (ev->flags & EVENT_UNVOTE) {
        rc = store_feedback_unvote(c->st, ev->platform, ev->chat, ev->target_id,
                                   ev->user, ev->vote);
        c->stats.unvotes += rc == 1;
        if (rc == 1)
            metrics_inc(c->metrics, METRIC_FEEDBACK_VOTES, ev->platform,
                        "withdrawn");
        return rc < 0 ? -1 : 0;
    }
    rc = store_feedback_vote(c->st, ev->platform, ev->chat, ev->target_id,
                             ev->user, ev->vote, core_wall(c));
    if (rc < 0)
        return -1;
    c->stats.votes += rc == 1;
    if (rc == 1)
        metrics_inc(c->metrics, METRIC_FEEDBACK_VOTES, ev->platform,
                    ev->vote > 0 ? "up" : "down");
    if (rc == 1 && ev->vote < 0)
        c->alert_pending = 1; /* after the commit, in core_accept_batch */
    return 0;
}

/* As snprintf "%s" into a fixed buffer (cut at len - 1), without the
 * format machinery: six per event on the intake path. */
static void
row_copy(char *dst, size_t len, const char *src)
{
    size_t n = src != NULL ? strnlen(src, len - 1) : 0;

    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

/* Copies the event into a job row; text cut at EVENT_TEXT_MAX. */
static int
job_row_from_event(const struct event *ev, int64_t wall, struct store_job *r)
{
    size_t len = strlen(ev->text),
           cut = event_text_cut(ev->text, len, EVENT_TEXT_MAX);

    memset(r, 0, sizeof(*r));
    row_copy(r->platform, sizeof(r->platform), ev->platform);
    row_copy(r->chat, sizeof(r->chat), ev->chat);
    row_copy(r->thread, sizeof(r->thread), ev->thread);
    row_copy(r->user, sizeof(r->user), ev->user);
    row_copy(r->user_name, sizeof(r->user_name), ev->user_name);
    row_copy(r->message_id, sizeof(r->message_id), ev->message_id);
    /* a command's WHO may be the author of the message it replies to */
    if (ev->reply_to != NULL && strlen(ev->reply_to) <= EVENT_ID_MAX)
        row_copy(r->reply_to, sizeof(r->reply_to), ev->reply_to);
    if ((ev->flags & EVENT_COMMAND) && ev->reply_to_user != NULL &&
        strlen(ev->reply_to_user) <= EVENT_ID_MAX)
        row_copy(r->reply_to_user, sizeof(r->reply_to_user), ev->reply_to_user);
    r->flags = ev->flags & ~CORE_JOB_INTERNAL;
    r->state = STORE_JOB_RECEIVED;
    r->created_ms = wall;
    if (ev->flags & EVENT_COMMAND) {
        /* "name args": core_command reads the name back */
        if (asprintf(&r->text, "%s%s%.*s", ev->command, cut ? " " : "",
                     (int)cut, ev->text) < 0)
            r->text = NULL;
    } else {
        r->text = strndup(ev->text, cut);
    }
    return r->text == NULL ? -1 : 0;
}

/*
 * Writes the job rows of evs, each already admitted (job_decide before
 * its INSERT, in the same transaction: one statement per event, and the
 * commit that makes the row durable makes its admission durable with
 * it).  A duplicate by the unique key is found by an index probe first,
 * so it is never counted.  Fills ids[i] with the new job id (0 for
 * anything that needs no job), rows[i] with the row and go[i] with
 * job_decide's verdict (CORE_GO_REFUSED: refused silently, no row).  -1 on a
 * write error (the caller releases rows).
 */
static int
core_intake(struct core *c, const struct event *evs, size_t n, int64_t *ids,
            struct store_job *rows, signed char *go)
{
    int64_t wall = core_wall(c);

    for (size_t i = 0; i < n; i++) {
        const struct event *ev = &evs[i];
        enum router_reason why;
        enum router_verdict v = router_classify(ev, &why);
        struct store_job *r = &rows[i];
        int rc;

        ids[i] = 0;
        go[i] = 0;
        if (v == ROUTER_IGNORE) {
            c->stats.ignored++;
            if (why == ROUTER_R_INVALID)
                log_warnx("core event dropped: malformed platform=%s",
                          ev && ev->platform ? ev->platform : "?");
            continue;
        }
        if (v == ROUTER_VOTE) {
            if (core_vote(c, ev) < 0)
                return -1;
            continue;
        }
        if (router_seen(c->router, ev->platform, ev->chat, ev->message_id)) {
            c->stats.duplicates++;
            continue;
        }
        if (job_row_from_event(ev, wall, r) < 0)
            return -1;
        rc = store_job_exists(c->st, r->platform, r->chat, r->message_id);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            c->stats.duplicates++;
            store_job_release(r);
            continue;
        }
        /* -1: the row goes in as `received` and is admitted on resume */
        go[i] = (signed char)job_decide(c, r);
        if (go[i] == 0) {
            /* refused with nothing to say: no row (docs/core.md) */
            go[i] = CORE_GO_REFUSED;
            store_job_release(r);
            continue;
        }
        rc = store_job_insert(c->st, r, &ids[i]);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            c->stats.duplicates++;
            ids[i] = 0;
            go[i] = 0;
            store_job_release(r);
            continue;
        }
        r->id = ids[i];
    }
    return 0;
}

/* After the commit: remember the ids, start what can start. */
static void
core_admit_new(struct core *c, const struct event *evs, size_t n,
               const int64_t *ids, struct store_job *rows,
               const signed char *go)
{
    for (size_t i = 0; i < n; i++) {
        struct store_job *r = &rows[i];
        struct job *j;

        if (evs[i].kind != EVENT_MESSAGE || evs[i].message_id == NULL)
            continue;
        if (go[i] == CORE_GO_REFUSED) {
            /* no row: only the fast path knows it from now on */
            router_remember(c->router, evs[i].platform, evs[i].chat,
                            evs[i].message_id);
            c->stats.accepted++;
            continue;
        }
        if (ids[i] == 0) {
            /* a duplicate by the unique key: the fast path learns it */
            if (router_classify(&evs[i], NULL) != ROUTER_IGNORE)
                router_remember(c->router, evs[i].platform, evs[i].chat,
                                evs[i].message_id);
            continue;
        }
        router_remember(c->router, evs[i].platform, evs[i].chat,
                        evs[i].message_id);
        c->stats.accepted++;
        if (go[i] <= 0) {
            if (go[i] < 0)
                c->backlog = 1; /* `received`: admitted when resumed */
            store_job_release(r);
            continue;
        }
        if (c->njobs >= c->inflight_max) {
            c->backlog = 1; /* waits in the database */
            store_job_release(r);
            continue;
        }
        if ((j = job_load(c, r)) == NULL) {
            store_job_release(r);
            c->backlog = 1;
            continue;
        }
        job_run(j);
    }
    if (c->backlog)
        pump_schedule(c);
}

int
core_accept_batch(struct core *c, const struct event *evs, size_t n)
{
    return core_accept_batch_kv(c, evs, n, NULL, NULL, NULL);
}

int
core_accept_batch_kv(struct core *c, const struct event *evs, size_t n,
                     const char *platform, const char *key, const char *value)
{
    int64_t one;
    struct store_job row1;
    signed char go1;
    size_t m = n ? n : 1;
    int64_t *ids = n == 1 ? &one : calloc(m, sizeof(*ids));
    struct store_job *rows = n == 1 ? &row1 : calloc(m, sizeof(*rows));
    signed char *go = n == 1 ? &go1 : calloc(m, sizeof(*go));
    int rc = -1;

    if (ids == NULL || rows == NULL || go == NULL)
        goto out;
    memset(rows, 0, m * sizeof(*rows));
    if (c->stopping)
        goto out;
    core_load_limiter(c);
    rc = core_intake(c, evs, n, ids, rows, go);
    /* no job in memory: nothing else would write the usage counters
     * soon, and in this commit they cost no extra one — unless the last
     * write was just now (a flood of refused messages: the tick's) */
    if (rc == 0 && c->njobs == 0 &&
        core_mono(c) - c->usage_at >= CORE_USAGE_IDLE_MS)
        usage_flush(c);
    /* only after every event of the batch is written: the position never
     * goes past an event the commit would not hold */
    if (rc == 0 && value != NULL &&
        store_kv_set(c->st, platform, key, value) < 0)
        rc = -1;
    if (rc < 0 || store_sync(c->st) < 0) {
        rc = -1;
        /* the limiter may have counted some of these requests: a failed
         * commit errs on the side of refusing, never of admitting more */
        log_warnx("core accept: not durable, the platform will redeliver");
        for (size_t i = 0; i < n; i++)
            store_job_release(&rows[i]);
        goto out;
    }
    rc = 0;
    core_admit_new(c, evs, n, ids, rows, go);
    if (c->alert_pending) {
        c->alert_pending = 0;
        core_feedback_alert(c);
    }
out:
    if (ids != &one)
        free(ids);
    if (rows != &row1)
        free(rows);
    if (go != &go1)
        free(go);
    return rc;
}

int
core_accept(struct core *c, const struct event *ev)
{
    return core_accept_batch(c, ev, 1);
}

/* ---- resume: unfinished jobs from the database ---- */

struct scan_ctx {
    struct core *c;
    int full; /* stopped because memory is full */
};

static int
scan_one(void *arg, const struct store_job *row)
{
    struct scan_ctx *sc = arg;
    struct core *c = sc->c;
    struct store_job copy;
    struct job *j;

    c->scan_after = row->id;
    if (jobs_find(c, row->id) != NULL)
        return 0;
    if (c->njobs >= c->inflight_max) {
        sc->full = 1;
        c->scan_after = row->id - 1;
        return 1;
    }
    /* the row is borrowed: copy its strings */
    copy = *row;
    copy.text = strdup(row->text ? row->text : "");
    copy.answer = row->answer ? strdup(row->answer) : NULL;
    if (copy.text == NULL || (row->answer && copy.answer == NULL)) {
        store_job_release(&copy);
        sc->full = 1;
        return 1;
    }
    if ((j = job_load(c, &copy)) == NULL) {
        store_job_release(&copy);
        sc->full = 1;
        return 1;
    }
    j->resumed =
        row->state == STORE_JOB_ASKING || row->state == STORE_JOB_ANSWERED;
    if (row->state == STORE_JOB_ASKING)
        log_info("core resume job=%" PRId64 " state=asking: asking again",
                 row->id);
    job_run(j);
    return 0;
}

static void
pump_cb(uv_timer_t *t)
{
    struct core *c = t->data;
    struct scan_ctx sc = {c, 0};
    int rows;

    if (c->stopping || !c->backlog || c->njobs >= c->inflight_max)
        return;
    core_load_limiter(c);
    rows = store_job_scan(c->st, c->scan_after, CORE_SCAN_PAGE, scan_one, &sc);
    if (rows < 0) {
        uv_timer_start(c->pump, pump_cb, CORE_RETRY_MS, 0);
        return;
    }
    if (sc.full)
        return; /* job_finish schedules the next step */
    if (rows < CORE_SCAN_PAGE) {
        /*
         * The end of a pass.  Rows added meanwhile had larger ids and were
         * seen in it; whoever finds work waiting later sets backlog and
         * starts a pass from the beginning.
         */
        c->backlog = 0;
        c->scan_after = 0;
        return;
    }
    uv_timer_start(c->pump, pump_cb, 0, 0);
}

static void
pump_schedule(struct core *c)
{
    if (c->pump != NULL && !uv_is_active((uv_handle_t *)c->pump))
        uv_timer_start(c->pump, pump_cb, 0, 0);
}

/* ---- timers: overrides poll, limiter export, eviction, retention ---- */

static void
tick_cb(uv_timer_t *t)
{
    struct core *c = t->data;
    int64_t v = store_data_version(c->st);

    /* parleyctl's writes (overrides, bans) show up within CORE_POLL_MS:
     * one cheap read that moves only when another connection commits */
    if (v >= 0 && v != c->data_version) {
        c->data_version = v;
        core_reload_caches(c);
    }
    if (++c->ticks % (CORE_TICK_MS / CORE_POLL_MS) != 0)
        return;
    core_load_limiter(c);
    core_persist_limiter(c);
    stats_flush(c, 0);
    quiet_expire(c, core_mono(c));
    ratelimit_evict(admit_limiter(c->admit), core_mono(c), CORE_EVICT_SLOTS);
}

/* The bot-wide stats, and the usage counters: all of them (full) or in
 * chunks from the loop (usage_trickle). */
static int
stats_flush(struct core *c, int full)
{
    int64_t wall = core_wall(c);
    int rc = 0;

    if (full)
        usage_flush(c);
    else
        usage_trickle(c);
    if (!c->pend_dirty)
        return 0;
    if (store_stats_add(c->st, wall, &c->pend) < 0)
        rc = -1;
    for (int b = 0; b < STORE_LATENCY_BUCKETS && rc == 0; b++)
        if (c->pend_lat[b] > 0 &&
            store_latency_add(c->st, wall, b, c->pend_lat[b]) < 0)
            rc = -1;
    if (rc < 0) {
        log_warnx("core stats write failed");
        return -1; /* kept: the next tick tries again */
    }
    memset(&c->pend, 0, sizeof(c->pend));
    memset(c->pend_lat, 0, sizeof(c->pend_lat));
    c->pend_dirty = 0;
    return 0;
}

int
core_flush_stats(struct core *c)
{
    return stats_flush(c, 1);
}

/* The longest window any limit now in effect counts over (config and
 * overrides; 0 = none): a limiter row older than that holds nothing. */
static int64_t
core_longest_window(const struct core *c)
{
    const struct config_limits *l = &c->cfg->limits;
    const struct rate *r[] = {&l->user, &l->chat, &l->global, &l->user_tokens,
                              &l->chat_tokens};
    int64_t w = 0;

    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        if (r[i]->n > 0 && r[i]->window_ms > w)
            w = r[i]->window_ms;
    for (size_t i = 0; i < c->overrides.cap; i++) {
        const struct kv_entry *e = &c->overrides.e[i];
        /* a 0/W override is one per RATELIMIT_WINDOW_MAX_MS (override_apply) */
        int64_t ow = e->a == 0 && e->b != 0 ? RATELIMIT_WINDOW_MAX_MS : e->b;

        if (e->key != NULL && ow > w)
            w = ow;
    }
    return w;
}

long
core_purge(struct core *c)
{
    int64_t wall = core_wall(c), window = core_longest_window(c);
    long n = 0, m, k = 0;

    if (c->cfg->history.retention > 0 &&
        (n = store_purge_before(c->st, wall - c->cfg->history.retention,
                                CORE_PURGE_ROWS)) < 0)
        n = 0;
    m = store_jobs_purge(c->st, wall - CORE_JOB_KEEP_MS, CORE_PURGE_ROWS);
    /* limiter rows of keys quiet for longer than every window in effect
     * (and a day): they hold nothing; a key still in memory is written
     * again when it next moves */
    if (c->loaded && wall - window - CORE_LIMITER_KEEP_MS > 0)
        k = store_limiter_purge(c->st, wall - window - CORE_LIMITER_KEEP_MS,
                                CORE_PURGE_ROWS);
    if (n > 0 || m > 0 || k > 0)
        log_info("core purge rows=%ld jobs=%ld limiter=%ld", n, m > 0 ? m : 0,
                 k > 0 ? k : 0);
    return n < 0 || m < 0 || k < 0 ? -1 : n + m + k;
}

static void
purge_cb(uv_timer_t *t)
{
    core_purge(t->data);
}

static uv_timer_t *
core_timer(struct core *c)
{
    uv_timer_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    uv_timer_init(c->loop, t);
    t->data = c;
    return t;
}

static void
timer_free_cb(uv_handle_t *h)
{
    free(h);
}

static void
core_timer_close(uv_timer_t **t)
{
    if (*t != NULL)
        uv_close((uv_handle_t *)*t, timer_free_cb);
    *t = NULL;
}

/* ---- lifecycle ---- */

struct core *
core_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
         const struct core_asker *asker)
{
    struct core *c = calloc(1, sizeof(*c)), *ret = NULL;

    if (c == NULL)
        goto out;
    c->loop = loop;
    c->st = st;
    c->cfg = cfg;
    if (asker != NULL)
        c->asker = *asker;
    c->inflight_max = CORE_INFLIGHT_MAX;
    c->alert_last = -1;
    c->usage_at = INT64_MIN / 2; /* never written: the first intake writes */
    if ((c->router = router_new(CORE_RECENT_IDS)) == NULL ||
        (c->admit = admit_new(CORE_LIMITER_KEYS)) == NULL ||
        (c->usage = tally_new(CORE_TALLY_MAX)) == NULL ||
        (c->usage_out = tally_new(CORE_TALLY_MAX)) == NULL)
        goto out;
    if ((c->tick = core_timer(c)) == NULL ||
        (c->pump = core_timer(c)) == NULL ||
        (c->purge = core_timer(c)) == NULL ||
        (c->usage_timer = core_timer(c)) == NULL ||
        (c->runner = malloc(sizeof(*c->runner))) == NULL)
        goto out;
    uv_idle_init(loop, c->runner);
    c->runner->data = c;
    core_load_admins(c);
    c->data_version = store_data_version(st);
    core_reload_caches(c);
    /* periodic work never keeps the loop alive on its own */
    uv_timer_start(c->tick, tick_cb, CORE_POLL_MS, CORE_POLL_MS);
    uv_unref((uv_handle_t *)c->tick);
    uv_timer_start(c->purge, purge_cb, CORE_PURGE_MS, CORE_PURGE_MS);
    uv_unref((uv_handle_t *)c->purge);
    uv_unref((uv_handle_t *)c->usage_timer);
    /* resume every unfinished job, a page per loop turn */
    c->backlog = 1;
    pump_schedule(c);
    log_info("core started unfinished=%ld", store_jobs_unfinished(st));
    ret = c;
    c = NULL;
out:
    if (c != NULL) {
        log_warnx("core_new failed");
        core_free(c);
    }
    return ret;
}

void
core_configure(struct core *c, const struct config *cfg)
{
    c->cfg = cfg;
    core_load_admins(c);
}

int
core_register_connector(struct core *c, const struct connector_ops *ops)
{
    struct connector *k;

    if (ops == NULL || ops->platform == NULL || ops->send == NULL ||
        strlen(ops->platform) > EVENT_PLATFORM_MAX)
        return -1;
    if ((k = core_connector(c, ops->platform)) == NULL) {
        if (c->nconn == CORE_CONNECTORS_MAX)
            return -1;
        k = &c->conn[c->nconn++];
    }
    k->ops = *ops;
    snprintf(k->platform, sizeof(k->platform), "%s", ops->platform);
    k->ops.platform = k->platform;
    /* replies that waited for this connector go now */
    for (size_t i = 0; i < c->jobs_cap; i++)
        for (struct job *j = c->jobs[i]; j != NULL; j = j->hnext)
            if (!j->asking && !j->sending && !j->waiting &&
                strcmp(j->row.platform, ops->platform) == 0 &&
                (j->row.state == STORE_JOB_ANSWERED ||
                 j->row.state == STORE_JOB_LIMITED)) {
                j->waiting = 1;
                job_arm(j, 0); /* from the loop, not inside this call */
            }
    return 0;
}

void
core_unregister_connector(struct core *c, const char *platform)
{
    for (size_t i = 0; i < c->nconn; i++)
        if (strcmp(c->conn[i].platform, platform) == 0) {
            c->conn[i] = c->conn[--c->nconn];
            return;
        }
}

void
core_stop(struct core *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = 1;
    /* jobs stay durable in their state; asks are cancelled, re-asked on
     * the next start */
    for (size_t i = 0; i < c->jobs_cap; i++) {
        struct job *j = c->jobs[i], *next;

        for (; j != NULL; j = next) {
            next = j->hnext;
            job_finish(j);
        }
    }
    if (c->admit != NULL && c->loaded)
        core_persist_limiter(c);
    if (c->st != NULL)
        core_flush_stats(c);
    if (c->st != NULL && store_sync(c->st) < 0)
        log_warnx("core stop: commit failed");
    core_timer_close(&c->tick);
    core_timer_close(&c->pump);
    core_timer_close(&c->purge);
    core_timer_close(&c->usage_timer);
    if (c->runner != NULL)
        uv_close((uv_handle_t *)c->runner, timer_free_cb);
    c->runner = NULL;
}

void
core_free(struct core *c)
{
    if (c == NULL)
        return;
    core_stop(c);
    router_free(c->router);
    admit_free(c->admit);
    tally_free(c->usage);
    tally_free(c->usage_out);
    kv_clear(&c->overrides);
    kv_clear(&c->bans);
    kv_clear(&c->admins);
    free(c->hot);
    free(c->jobs);
    free(c);
}

void
core_set_metrics(struct core *c, struct metrics *m)
{
    c->metrics = m;
}

void
core_stats(const struct core *c, struct core_stats *s)
{
    *s = c->stats;
    s->inflight = c->njobs;
    s->runnable = c->nrun;
    s->limiter_keys = ratelimit_keys(admit_limiter(c->admit));
}

void
core_set_clock(struct core *c, core_clock_fn fn, void *arg)
{
    c->clock = fn;
    c->clock_arg = arg;
}

void
core_set_inflight_max(struct core *c, size_t max)
{
    c->inflight_max = max ? max : 1;
}
