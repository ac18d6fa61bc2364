/* core_fixture: a real core, loop and temp database with a fake asker and a
 * recording test connector (see core_fixture.h). */
#include "tests/fakes/core_fixture.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the fake asker: answers after delay_ms, fails, or never answers ---- */

struct core_fixture_pending {
    uv_timer_t timer; /* first: the close callback frees it */
    struct core_fixture_asker *fa;
    struct core_fixture_pending *next;
    uint64_t handle;
    core_ask_done_fn done;
    void *arg;
    char *text; /* the answer (malloc'd) */
    int64_t tokens_in;
    void (*partial)(void *arg, const char *text, size_t len);
    int chunk, restarted;
};

static void
pending_closed(uv_handle_t *h)
{
    struct core_fixture_pending *p = (struct core_fixture_pending *)h;

    free(p->text);
    free(p);
}

static void
pending_unlink(struct core_fixture_pending *p)
{
    struct core_fixture_pending **pp = &p->fa->list;

    for (; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

/* One growing partial; 1 while more are to come. */
static int
pending_partial(struct core_fixture_pending *p)
{
    struct core_fixture_asker *fa = p->fa;
    size_t len = strlen(p->text);
    int n = fa->stream_chunks;

    if (p->partial == NULL || n <= 0 || fa->mode != CORE_FIXTURE_ANSWER ||
        p->chunk >= n)
        return 0;
    p->chunk++;
    if (fa->restart_after > 0 && !p->restarted &&
        p->chunk > fa->restart_after) {
        p->restarted = 1; /* a retry: the text starts again */
        p->chunk = 1;
    }
    fa->partials++;
    p->partial(p->arg, p->text, len * (size_t)p->chunk / (size_t)n);
    return 1;
}

static void
pending_fire(uv_timer_t *t)
{
    struct core_fixture_pending *p = (struct core_fixture_pending *)t;
    struct core_fixture_asker *fa = p->fa;
    struct core_answer a;

    if (pending_partial(p)) {
        uv_timer_start(&p->timer, pending_fire, (uint64_t)fa->stream_gap_ms, 0);
        return;
    }
    memset(&a, 0, sizeof(a));
    pending_unlink(p);
    if (fa->mode == CORE_FIXTURE_FAIL) {
        a.error_class = "server";
        a.error = "the model is unavailable (503 from main)";
    } else {
        a.ok = 1;
        a.text = p->text;
        a.model = "main";
        a.tokens_in = p->tokens_in;
        a.tokens_out = 10 + fa->extra_tokens;
    }
    fa->answered++;
    p->done(p->arg, &a);
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static int
asker_ask(void *ctx, const struct core_prompt *cp, core_ask_done_fn done,
          void *arg, uint64_t *handle)
{
    struct core_fixture_asker *fa = ctx;
    struct core_fixture_pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return -1;
    if (fa->asks < CORE_FIXTURE_ASKED && cp->n > 0)
        snprintf(fa->asked[fa->asks], sizeof(fa->asked[0]), "%s",
                 cp->msgs[cp->n - 1].text ? cp->msgs[cp->n - 1].text : "");
    fa->asks++;
    fa->last_estimate = cp->estimate;
    fa->last_age_ms = cp->age_ms;
    fa->last_n = (int)cp->n;
    snprintf(fa->last_system, sizeof(fa->last_system), "%s",
             cp->msgs[0].text != NULL ? cp->msgs[0].text : "");
    p->fa = fa;
    p->handle = ++fa->next_handle;
    p->done = done;
    p->partial = cp->partial;
    p->arg = arg;
    /* the answer names the question, so sends can be matched to it */
    if (fa->fixed != NULL)
        p->text = strdup(fa->fixed);
    else if (asprintf(&p->text, "%s%s%s",
                      fa->prefix != NULL ? fa->prefix : "answer to: ",
                      cp->msgs[cp->n - 1].text,
                      fa->suffix != NULL ? fa->suffix : "") < 0)
        p->text = NULL;
    if (p->text == NULL) {
        free(p);
        return -1;
    }
    p->tokens_in = fa->tokens_in != 0 ? fa->tokens_in
                                      : cp->estimate - cp->max_output_tokens;
    p->next = fa->list;
    fa->list = p;
    *handle = p->handle;
    uv_timer_init(fa->loop, &p->timer);
    if (fa->mode != CORE_FIXTURE_NEVER)
        uv_timer_start(&p->timer, pending_fire, (uint64_t)fa->delay_ms, 0);
    return 0;
}

static void
asker_cancel(void *ctx, uint64_t handle)
{
    struct core_fixture_asker *fa = ctx;

    for (struct core_fixture_pending *p = fa->list; p != NULL; p = p->next)
        if (p->handle == handle) {
            pending_unlink(p);
            fa->cancels++;
            uv_close((uv_handle_t *)&p->timer, pending_closed);
            return;
        }
}

struct core_asker
core_fixture_asker_ops(struct core_fixture_asker *fa)
{
    struct core_asker a = {fa, asker_ask, asker_cancel};

    return a;
}

void
core_fixture_asker_drop(struct core_fixture_asker *fa)
{
    while (fa->list != NULL) {
        struct core_fixture_pending *p = fa->list;

        fa->list = p->next;
        uv_close((uv_handle_t *)&p->timer, pending_closed);
    }
}

/* ---- the test connector: records sends, completes them a turn later ---- */

/* An edit or a delete of message "s<N>": what the platform would do. */
static void
conn_edit(struct core_fixture_conn *tc, const struct core_fixture_sent *s,
          struct send_result *r)
{
    struct core_fixture_msg *m;
    int64_t now = (int64_t)uv_now(tc->loop);

    r->status = SEND_OK;
    if (s->target < 0 || s->target >= tc->nsends ||
        (m = &tc->msgs[s->target])->text == NULL || m->deleted ||
        (s->kind == ACTION_EDIT && tc->not_found_first > 0)) {
        if (s->kind == ACTION_EDIT) {
            if (tc->not_found_first > 0)
                tc->not_found_first--;
            r->status = SEND_FAILED;
            r->error_class = "not_found";
        }
        return;
    }
    if (s->kind == ACTION_DELETE) {
        m->deleted = 1;
        tc->deletes++;
        return;
    }
    if (m->edits > 0 &&
        (m->min_gap_ms < 0 || now - m->last_edit_ms < m->min_gap_ms))
        m->min_gap_ms = now - m->last_edit_ms;
    m->edits++;
    m->last_edit_ms = now;
    m->feedback = s->feedback;
    tc->edits++;
    free(m->text);
    m->text = strdup(s->text);
}

static void
conn_flush(uv_timer_t *t)
{
    struct core_fixture_conn *tc = t->data;
    int n = tc->nqueue;

    tc->nqueue = 0;
    for (int i = 0; i < n; i++) {
        struct core_fixture_sent *s = &tc->sends[tc->queue[i]];
        struct send_result r;
        char mid[32];

        memset(&r, 0, sizeof(r));
        if (s->kind == ACTION_EDIT || s->kind == ACTION_DELETE) {
            snprintf(mid, sizeof(mid), "s%d", s->target);
            conn_edit(tc, s, &r);
            r.message_id = mid;
            tc->completed++;
        } else if (tc->retry_first && tc->retried < tc->retry_first) {
            tc->retried++;
            r.status = SEND_RETRY;
            r.retry_after_ms = 200;
        } else {
            snprintf(mid, sizeof(mid), "s%d", tc->queue[i]);
            r.status = SEND_OK;
            r.message_id = mid;
            tc->completed++;
            tc->msgs[tc->queue[i]].text = strdup(s->text);
            tc->msgs[tc->queue[i]].feedback = s->feedback;
            tc->msgs[tc->queue[i]].min_gap_ms = -1;
        }
        core_send_done(tc->core, s->send_id, &r);
    }
}

static int
conn_send(void *ctx, const struct action *a)
{
    struct core_fixture_conn *tc = ctx;
    struct core_fixture_sent *s;

    if (tc->nsends == tc->sends_max)
        return -1;
    s = &tc->sends[tc->nsends];
    s->send_id = a->send_id;
    s->kind = a->kind;
    s->part = a->part;
    s->parts = a->parts;
    s->feedback = a->feedback;
    snprintf(s->reply_to, sizeof(s->reply_to), "%s", a->reply_to);
    snprintf(s->chat, sizeof(s->chat), "%s", a->chat);
    snprintf(s->text, tc->text_max, "%s", a->text);
    s->target = -1;
    s->controls_only = a->controls_only;
    if (a->target_id != NULL && a->target_id[0] == 's')
        s->target = atoi(a->target_id + 1);
    tc->queue[tc->nqueue++] = tc->nsends++;
    uv_timer_start(&tc->flush, conn_flush, 0, 0);
    return 0;
}

static void
conn_typing(void *ctx, const char *chat, const char *thread)
{
    struct core_fixture_conn *tc = ctx;

    (void)chat;
    (void)thread;
    tc->typing++;
}

struct connector_ops
core_fixture_conn_ops(struct core_fixture_conn *tc, int64_t typing_ms,
                      size_t text_max)
{
    struct connector_ops ops;

    memset(&ops, 0, sizeof(ops));
    ops.platform = "telegram";
    ops.ctx = tc;
    ops.send = conn_send;
    ops.typing = conn_typing;
    ops.typing_interval_ms = typing_ms;
    ops.text_max = text_max;
    ops.can_edit = tc->can_edit;
    ops.streams_max = tc->streams_max;
    return ops;
}

/* Sends are preallocated so a test can keep pointers into them. */
static int
conn_init(struct core_fixture_conn *tc, uv_loop_t *loop, int sends_max,
          size_t text_max)
{
    tc->loop = loop;
    tc->sends_max = sends_max;
    tc->text_max = text_max;
    tc->sends = calloc((size_t)sends_max, sizeof(*tc->sends));
    tc->queue = calloc((size_t)sends_max, sizeof(*tc->queue));
    tc->texts = calloc((size_t)sends_max, text_max);
    tc->msgs = calloc((size_t)sends_max, sizeof(*tc->msgs));
    uv_timer_init(loop, &tc->flush);
    tc->flush.data = tc;
    if (tc->sends == NULL || tc->queue == NULL || tc->texts == NULL ||
        tc->msgs == NULL)
        return -1;
    for (int i = 0; i < sends_max; i++)
        tc->sends[i].text = tc->texts + (size_t)i * text_max;
    return 0;
}

static void
conn_release(struct core_fixture_conn *tc)
{
    for (int i = 0; tc->msgs != NULL && i < tc->sends_max; i++)
        free(tc->msgs[i].text);
    free(tc->msgs);
    free(tc->sends);
    free(tc->queue);
    free(tc->texts);
}

/* ---- the fixture: loop, store, config, core ---- */

static void
fixture_clock(void *arg, int64_t *mono, int64_t *wall)
{
    struct core_fixture *f = arg;

    *mono = f->mono;
    *wall = f->wall;
}

struct config *
core_fixture_config(const char *fmt, ...)
{
    char *text = NULL;
    struct config *cfg = NULL;
    struct config_diag d;
    va_list ap;
    int n;

    memset(&d, 0, sizeof(d));
    va_start(ap, fmt);
    n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "config: out of memory\n");
        return NULL;
    }
    if (config_parse(text, (size_t)n, "test.conf", &cfg, &d) < 0 ||
        config_resolve_secrets(cfg, &d) < 0) {
        for (size_t i = 0; i < d.nerrors; i++)
            fprintf(stderr, "config: %s\n", d.errors[i]);
        config_free(cfg);
        cfg = NULL;
    }
    config_diag_release(&d);
    free(text);
    return cfg;
}

static struct config *
fixture_config(const char *admins, const char *limits)
{
    return core_fixture_config("[bot]\nstate_dir = /tmp\nadmins = %s\n"
                               "[llm]\nmodels = main\n"
                               "system_prompt = You are terse.\n"
                               "max_output_tokens = 100\n" CORE_FIXTURE_MODEL
                               "price_in = 0.40\nprice_out = 1.60\n"
                               "[limits]\n%s",
                               admins, limits);
}

int
core_fixture_start(struct core_fixture *f, int use_clock)
{
    struct core_asker asker = core_fixture_asker_ops(&f->fa);
    struct connector_ops ops = core_fixture_conn_ops(
        &f->tc, f->tc.typing_ms,
        f->tc.ops_text_max > 0 ? f->tc.ops_text_max : 4096);

    f->core = core_new(&f->loop, f->st, f->cfg, &asker);
    if (f->core == NULL)
        return -1;
    if (use_clock)
        core_set_clock(f->core, fixture_clock, f);
    f->tc.core = f->core;
    return core_register_connector(f->core, &ops);
}

int
core_fixture_init(struct core_fixture *f, const struct core_fixture_params *p,
                  const char *name, const char *limits, int use_clock)
{
    char err[256] = "";

    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    snprintf(f->path, sizeof(f->path), "%s/%s.db", p->tmpdir, name);
    f->cfg = fixture_config(p->admins, limits);
    f->st = store_open(f->path, err, sizeof(err));
    f->fa.loop = &f->loop;
    if (conn_init(&f->tc, &f->loop, p->sends_max, p->text_max) < 0)
        snprintf(err, sizeof(err), "out of memory");
    if (f->cfg == NULL || f->st == NULL || f->tc.texts == NULL) {
        fprintf(stderr, "fixture %s: %s\n", name, err);
        return -1;
    }
    store_attach_loop(f->st, &f->loop);
    f->mono = 1000000;
    f->wall = 1700000000000;
    return core_fixture_start(f, use_clock);
}

void
core_fixture_stop(struct core_fixture *f)
{
    core_free(f->core);
    f->core = NULL;
    core_fixture_asker_drop(&f->fa);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

int
core_fixture_release(struct core_fixture *f)
{
    int rc;

    if (f->core != NULL)
        core_fixture_stop(f);
    store_close(f->st);
    uv_close((uv_handle_t *)&f->tc.flush, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&f->loop);
    config_free(f->cfg);
    conn_release(&f->tc);
    core_fixture_db_unlink(f->path);
    return rc;
}

/* A telegram message event from "Ann"; the strings are borrowed. */
struct event
core_fixture_event(const char *user, const char *chat, const char *id,
                   const char *text, unsigned flags)
{
    struct event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = EVENT_MESSAGE;
    ev.platform = "telegram";
    ev.chat = chat;
    ev.thread = "";
    ev.user = user;
    ev.user_name = "Ann";
    ev.message_id = id;
    ev.reply_to = "";
    ev.flags = flags;
    ev.text = text;
    return ev;
}

/* ---- running the loop and reading the database ---- */

struct until {
    int (*pred)(void *);
    void *arg;
    int met;
};

static void
until_check(uv_timer_t *t)
{
    struct until *u = t->data;

    if (u->pred(u->arg)) {
        u->met = 1;
        uv_stop(t->loop);
    }
}

static void
until_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

int
core_fixture_loop_until(uv_loop_t *loop, int (*pred)(void *), void *arg,
                        int period_ms, int max_ms)
{
    struct until u = {pred, arg, 0};
    uv_timer_t check, deadline;

    uv_timer_init(loop, &check);
    uv_timer_init(loop, &deadline);
    check.data = &u;
    uv_timer_start(&check, until_check, (uint64_t)period_ms,
                   (uint64_t)period_ms);
    uv_timer_start(&deadline, until_deadline, (uint64_t)max_ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&check, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return u.met;
}

/* core_fixture_run_until()'s predicate as a loop_until one */
struct fixture_pred {
    int (*pred)(struct core_fixture *);
    struct core_fixture *f;
};

static int
fixture_pred_holds(void *arg)
{
    struct fixture_pred *fp = arg;

    return fp->pred == NULL || fp->pred(fp->f);
}

int
core_fixture_run_until(struct core_fixture *f,
                       int (*pred)(struct core_fixture *), int max_ms)
{
    struct fixture_pred fp = {pred, f};

    return core_fixture_loop_until(&f->loop, fixture_pred_holds, &fp, 2,
                                   max_ms);
}

int
core_fixture_idle(struct core_fixture *f)
{
    struct core_stats s;

    core_stats(f->core, &s);
    return s.inflight == 0 && f->tc.nqueue == 0;
}

int
core_fixture_started(struct core_fixture *f)
{
    struct core_stats s;

    core_stats(f->core, &s);
    return s.runnable == 0;
}

int
core_fixture_never(struct core_fixture *f)
{
    (void)f;
    return 0;
}

long long
core_fixture_db_int(struct core_fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long v = -1;

    store_flush(f->st);
    if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL) ==
            SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        fprintf(stderr, "db_int %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

void
core_fixture_db_exec(struct core_fixture *f, const char *sql)
{
    sqlite3 *db = NULL;

    sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "db_exec %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

void
core_fixture_db_unlink(const char *path)
{
    char p[300];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}
