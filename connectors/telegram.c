/* telegram: the Telegram connector — long polling in, paced sends out. */
#include "connectors/telegram.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/telegram_codec.h"
#include "connectors/telegram_format.h"
#include "connectors/telegram_pace.h"
#include "core/core.h"
#include "core/event.h"
#include "core/log.h"

#define TG_PLATFORM "telegram"
#define TG_TYPING_MS 4000
#define TG_POLL_LIMIT 100
#define TG_POLL_MARGIN_MS 15000 /* HTTP timeout = poll timeout + this */
#define TG_CALL_TIMEOUT_MS 30000
#define TG_BACKOFF_BASE_MS 1000
#define TG_BACKOFF_CAP_MS 60000
#define TG_CONFLICT_BASE_MS 3000
#define TG_CONFLICT_CAP_MS 30000
#define TG_CHAT_QUEUE_MAX 1000 /* sends queued per chat */
#define TG_QUEUE_MAX 100000    /* sends queued in all */
#define TG_CHATS_MAX 100000    /* tracked by the pacer */
#define TG_BUCKETS 1024        /* chat hash */
#define TG_FENCES 256          /* open code fences remembered per part */

enum tg_state {
    TG_IDLE = 0,
    TG_GETME,
    TG_WEBHOOK,
    TG_POLL,
    TG_BACKOFF,
    TG_STOPPED,
    TG_FATAL,
};

static const char *const tg_state_names[] = {
    "idle", "getme", "webhook", "poll", "backoff", "stopped", "fatal",
};

struct tg_chat;

struct tg_send {
    struct tg_send *next;
    struct telegram *t;
    struct tg_chat *c;
    uint64_t send_id;
    enum action_kind kind;
    int64_t target; /* ACTION_EDIT / ACTION_DELETE: our message id */
    int64_t thread, reply_to;
    char *md;
    char fb_key[48]; /* "" = no buttons */
    int part;
    int plain; /* after "can't parse entities" */
    int fails; /* consecutive 5xx / network failures */
    struct http_req *req;
};

struct tg_chat {
    int64_t id;
    int group;
    int inactive;
    int64_t migrated_to;
    int64_t blocked_until; /* mono ms: 429 retry_after or backoff */
    struct tg_send *head, *tail;
    size_t n;
    int inflight;
    struct tg_chat *hnext;
    struct tg_chat *anext, *aprev; /* the list of chats with sends */
    int active;
};

/*
 * A request that is neither the poll nor a send (typing, callbacks):
 * queued (body set, on t->mhead) until a slot frees, then in flight
 * (req set, on t->misc).
 */
struct tg_misc {
    struct tg_misc *next, *prev;
    struct telegram *t;
    struct http_req *req;
    const char *what;
    char *body;       /* while queued */
    int64_t chat;     /* typing: the chat as asked (before migration) */
    int64_t since_ms; /* queued at */
    int typing;
};

struct tg_fence {
    uint64_t job;
    int part; /* the part that starts inside the fence */
    char lang[33];
};

struct telegram {
    uv_loop_t *loop;
    struct http *http;
    struct core *core;
    struct store *st;
    const struct config *cfg;
    void (*fatal)(void *arg, const char *why);
    void *fatal_arg;

    enum tg_state state;
    struct telegram_me me;
    int registered;
    int commands_set; /* setMyCommands sent (once per start) */
    int64_t offset;
    int fails, conflicts;
    struct http_req *req; /* getMe / deleteWebhook / getUpdates */
    uv_timer_t timer;     /* backoff */
    uv_timer_t pump_timer;
    int closing;
    int freeing;

    struct telegram_pace *pace;
    struct tg_chat *buckets[TG_BUCKETS];
    struct tg_chat *ahead, *atail;
    size_t queued;
    struct tg_misc *misc;          /* in flight */
    struct tg_misc *mhead, *mtail; /* queued, FIFO (next links) */
    struct tg_fence fences[TG_FENCES];
    size_t nfence;
    struct telegram_status status;
};

static void poll_start(struct telegram *t);
static void step(struct telegram *t);
static void pump_soon(struct telegram *t, int64_t delay);

/* ---- small helpers ---- */

static int64_t
now_ms(const struct telegram *t)
{
    return (int64_t)uv_now(t->loop);
}

static uint32_t
rnd32(void)
{
    uint64_t x = uv_hrtime();

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static int
parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0')
        return -1;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* {api_base}/bot{token}/{method}: never logged (the token). */
static void
url_of(const struct telegram *t, const char *method, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/bot%s/%s", t->cfg->telegram.api_base,
             t->cfg->telegram.token.value ? t->cfg->telegram.token.value : "",
             method);
}

static struct http_req *
call(struct telegram *t, const char *method, const char *body,
     int64_t timeout_ms, http_done_fn done, void *arg)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct http_request rq;
    char url[1024];

    url_of(t, method, url, sizeof(url));
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = url;
    rq.headers = hdrs;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout_ms = timeout_ms;
    return http_send(t->http, &rq, done, arg);
}

static void
set_down(struct telegram *t, const char *fmt, const char *detail)
{
    t->status.up = 0;
    snprintf(t->status.reason, sizeof(t->status.reason), fmt, detail);
}

/* ---- fatal, stop ---- */

static void cancel_all(struct telegram *t);

/* Token rejected: stop everything, then tell the owner (who may free us
 * from inside the callback, so nothing touches t afterwards). */
static void
tg_fatal(struct telegram *t, const char *method, int code)
{
    char why[150];

    snprintf(why, sizeof(why),
             "telegram rejected the token (%d on %s): check [telegram] token",
             code, method);
    log_error("telegram fatal method=%s status=%d: the token was rejected",
              method, code);
    set_down(t, "%s", why);
    t->state = TG_FATAL;
    cancel_all(t);
    if (t->fatal != NULL)
        t->fatal(t->fatal_arg, why);
}

/* ---- chats and queues ---- */

static size_t
chat_hash(int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

    return (size_t)(x >> 54) % TG_BUCKETS;
}

static struct tg_chat *
chat_find(struct telegram *t, int64_t id)
{
    for (struct tg_chat *c = t->buckets[chat_hash(id)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void
kv_key(char *buf, size_t cap, const char *what, int64_t id)
{
    snprintf(buf, cap, "%s:%" PRId64, what, id);
}

static struct tg_chat *
chat_get(struct telegram *t, int64_t id)
{
    struct tg_chat *c = chat_find(t, id);
    char key[64], val[32];
    size_t b;

    if (c != NULL)
        return c;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->id = id;
    /* negative ids are groups, supergroups and channels */
    c->group = id < 0;
    kv_key(key, sizeof(key), "inactive", id);
    if (store_kv_get(t->st, TG_PLATFORM, key, val, sizeof(val)) == 1)
        c->inactive = 1;
    kv_key(key, sizeof(key), "migrated", id);
    if (store_kv_get(t->st, TG_PLATFORM, key, val, sizeof(val)) == 1)
        parse_i64(val, &c->migrated_to);
    b = chat_hash(id);
    c->hnext = t->buckets[b];
    t->buckets[b] = c;
    return c;
}

/*
 * The group c became a supergroup: later sends go to the new id
 * (connector_state 'migrated:<old>', read back by chat_get), and what
 * core and the store keep under the old id moves there, once per old id
 * and new id (several sends in flight may each get the 400).
 */
static void
chat_migrated(struct telegram *t, struct tg_chat *c, int64_t to)
{
    char key[64], val[32], old[32];

    if (c->migrated_to == to)
        return;
    c->migrated_to = to;
    kv_key(key, sizeof(key), "migrated", c->id);
    snprintf(val, sizeof(val), "%" PRId64, to);
    snprintf(old, sizeof(old), "%" PRId64, c->id);
    if (store_kv_set(t->st, TG_PLATFORM, key, val) < 0)
        log_warnx("telegram chat migration not saved chat=%" PRId64, c->id);
    if (core_chat_migrate(t->core, TG_PLATFORM, old, val) < 0)
        log_warnx("telegram chat data not moved chat=%" PRId64 " to=%" PRId64,
                  c->id, to);
    t->status.migrations++;
    log_warnx("telegram chat migrated chat=%" PRId64 " to=%" PRId64
              " (sends go there now)",
              c->id, to);
}

/* A chat with nothing queued and nothing to remember is dropped, so
 * memory follows the chats with sends, not every chat ever seen. */
static void
chat_maybe_free(struct telegram *t, struct tg_chat *c)
{
    struct tg_chat **pp;

    if (c->head != NULL || c->inflight || c->active || c->inactive ||
        c->migrated_to != 0 || c->blocked_until > now_ms(t))
        return;
    for (pp = &t->buckets[chat_hash(c->id)]; *pp; pp = &(*pp)->hnext)
        if (*pp == c) {
            *pp = c->hnext;
            free(c);
            return;
        }
}

static void
active_add(struct telegram *t, struct tg_chat *c)
{
    if (c->active)
        return;
    c->active = 1;
    c->anext = NULL;
    c->aprev = t->atail;
    if (t->atail)
        t->atail->anext = c;
    else
        t->ahead = c;
    t->atail = c;
}

static void
active_del(struct telegram *t, struct tg_chat *c)
{
    if (!c->active)
        return;
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        t->ahead = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    else
        t->atail = c->aprev;
    c->active = 0;
    c->anext = c->aprev = NULL;
}

static void
send_free(struct tg_send *s)
{
    if (s == NULL)
        return;
    free(s->md);
    free(s);
}

static void
queue_push(struct telegram *t, struct tg_chat *c, struct tg_send *s, int front)
{
    s->c = c;
    if (front) {
        s->next = c->head;
        c->head = s;
        if (c->tail == NULL)
            c->tail = s;
    } else {
        s->next = NULL;
        if (c->tail)
            c->tail->next = s;
        else
            c->head = s;
        c->tail = s;
    }
    c->n++;
    t->queued++;
    active_add(t, c);
}

static struct tg_send *
queue_pop(struct telegram *t, struct tg_chat *c)
{
    struct tg_send *s = c->head;

    if (s == NULL)
        return NULL;
    c->head = s->next;
    if (c->head == NULL)
        c->tail = NULL;
    s->next = NULL;
    c->n--;
    t->queued--;
    if (c->head == NULL && !c->inflight)
        active_del(t, c);
    return s;
}

/* Report one outcome to core; s is freed first (core may send again
 * from inside core_send_done). */
static void
report(struct telegram *t, struct tg_send *s, enum send_status st,
       const char *message_id, const char *cls)
{
    struct send_result r;
    uint64_t id = s->send_id;

    send_free(s);
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.message_id = message_id ? message_id : "";
    r.error_class = cls;
    if (t->registered)
        core_send_done(t->core, id, &r);
}

/* ---- code fences across the parts of one answer ---- */

static struct tg_fence *
fence_find(struct telegram *t, uint64_t job, int part)
{
    for (size_t i = 0; i < TG_FENCES; i++)
        if (t->fences[i].part == part && t->fences[i].job == job && part > 0)
            return &t->fences[i];
    return NULL;
}

/*
 * What the newest text of (job, part) says about the next part: it starts
 * inside a fence with lang (open), or not.  The newest text wins: a
 * streamed part is sent and edited while it grows, and a fence open in an
 * early version may be closed by the final one.
 */
static void
fence_note(struct telegram *t, uint64_t job, int part, int open,
           const char *lang)
{
    struct tg_fence *f = fence_find(t, job, part + 1);

    if (!open) {
        if (f != NULL)
            f->part = 0; /* forgotten */
        return;
    }
    if (f == NULL)
        f = &t->fences[t->nfence++ % TG_FENCES];
    f->job = job;
    f->part = part + 1;
    snprintf(f->lang, sizeof(f->lang), "%s", lang);
}

/* ---- sending ---- */

static void send_done(const struct http_response *r, void *arg);

static const char *
send_method(const struct tg_send *s)
{
    switch (s->kind) {
    case ACTION_EDIT:
        return "editMessageText";
    case ACTION_DELETE:
        return "deleteMessage";
    default:
        return "sendMessage";
    }
}

/*
 * The text of s as Telegram will get it: HTML unless Telegram refused it,
 * plain text otherwise; never over the 4096 visible units when the part
 * itself is not.  Sends and edits alike (an edit replaces the whole text,
 * formatted the same way).  *html says which.
 */
static char *
send_text(struct telegram *t, struct tg_send *s, int *html)
{
    uint64_t job = s->send_id >> 16;
    struct tg_fence *f = fence_find(t, job, s->part);
    char *md = NULL, *text = NULL, lang[33];
    size_t len;

    *html = 0;
    len = strlen(s->md) + (f ? strlen(f->lang) + 8 : 0);
    if ((md = malloc(len + 1)) == NULL)
        goto out;
    snprintf(md, len + 1, "%s%s%s%s", f ? "```" : "", f ? f->lang : "",
             f ? "\n" : "", s->md);
    /* does the next part of this answer start inside an open fence? */
    fence_note(t, job, s->part,
               telegram_format_open_fence(md, strlen(md), lang, sizeof(lang)),
               lang);
    if (!s->plain) {
        text = telegram_format_html(md, strlen(md));
        if (text != NULL &&
            telegram_format_visible_len(text, 1) <= TELEGRAM_MESSAGE_MAX)
            *html = 1;
        else
            s->plain = 1;
    }
    if (s->plain) {
        free(text);
        text = telegram_format_plain(md, strlen(md));
        if (text != NULL &&
            telegram_format_visible_len(text, 0) > TELEGRAM_MESSAGE_MAX) {
            free(text);
            text = strdup(s->md); /* the part itself: within the limit */
        }
    }
out:
    free(md);
    return text;
}

/* The request body for s (sendMessage, editMessageText or deleteMessage). */
static char *
send_body(struct telegram *t, struct tg_send *s)
{
    struct telegram_send ts;
    char *text, *body;
    int64_t chat = s->c->migrated_to ? s->c->migrated_to : s->c->id;

    if (s->kind == ACTION_DELETE)
        return telegram_codec_delete_message(chat, s->target);
    memset(&ts, 0, sizeof(ts));
    if ((text = send_text(t, s, &ts.html)) == NULL)
        return NULL;
    ts.chat_id = chat;
    ts.reply_to = s->reply_to;
    ts.thread_id = s->thread;
    ts.fb_key = s->fb_key[0] ? s->fb_key : NULL;
    ts.text = text;
    if (s->kind == ACTION_EDIT)
        body = telegram_codec_edit_message(&ts, s->target);
    else
        body = telegram_codec_send_message(&ts);
    free(text);
    return body;
}

static void
send_issue(struct telegram *t, struct tg_chat *c)
{
    struct tg_send *s = c->head;
    char *body = send_body(t, s);

    if (body == NULL) {
        c->blocked_until = now_ms(t) + TG_BACKOFF_BASE_MS;
        return;
    }
    s->req = call(t, send_method(s), body, TG_CALL_TIMEOUT_MS, send_done, s);
    free(body);
    if (s->req == NULL) {
        c->blocked_until = now_ms(t) + TG_BACKOFF_BASE_MS;
        return;
    }
    c->inflight = 1;
    t->status.sends++;
    if (++t->status.sends_inflight > t->status.sends_inflight_max)
        t->status.sends_inflight_max = t->status.sends_inflight;
}

/* 403: the chat is gone for us; every queued send fails with it. */
static void
chat_forbidden(struct telegram *t, struct tg_chat *c, const char *why)
{
    char key[64];
    struct tg_send *s;
    size_t dropped = 0;

    c->inactive = 1;
    kv_key(key, sizeof(key), "inactive", c->id);
    store_kv_set(t->st, TG_PLATFORM, key, "1");
    while ((s = queue_pop(t, c)) != NULL) {
        dropped++;
        report(t, s, SEND_FAILED, NULL, "forbidden");
    }
    log_warnx("telegram chat inactive chat=%" PRId64 " dropped=%zu (%s)", c->id,
              dropped, why);
}

static void
send_backoff(struct telegram *t, struct tg_chat *c, struct tg_send *s,
             const char *why)
{
    int64_t w;

    s->fails++;
    w = telegram_backoff_ms(s->fails, TG_BACKOFF_BASE_MS, TG_BACKOFF_CAP_MS,
                            rnd32());
    c->blocked_until = now_ms(t) + w;
    t->status.send_errors++;
    log_warnx("telegram send retry chat=%" PRId64 " in_ms=%" PRId64 " (%s)",
              c->id, w, why);
}

/*
 * The 400s that settle an edit or delete: an identical edit ("message is
 * not modified") did what was asked; a deleted message that is already
 * gone too; an edit of a message that is gone fails "not_found" (core
 * then posts a new one).  1 when s was reported.
 */
static int
edit_settled(struct telegram *t, struct tg_chat *c, struct tg_send *s,
             const struct telegram_error *err)
{
    char idbuf[24];
    int gone = telegram_error_is_gone(err);

    if (s->kind != ACTION_EDIT && s->kind != ACTION_DELETE)
        return 0;
    snprintf(idbuf, sizeof(idbuf), "%" PRId64, s->target);
    if (s->kind == ACTION_EDIT && telegram_error_is_not_modified(err)) {
        queue_pop(t, c);
        t->status.sent++;
        t->status.edits++;
        report(t, s, SEND_OK, idbuf, NULL);
        return 1;
    }
    if (!gone)
        return 0;
    queue_pop(t, c);
    log_info("telegram %s chat=%" PRId64 " message=%" PRId64 ": %s",
             send_method(s), c->id, s->target, err->description);
    if (s->kind == ACTION_DELETE) {
        t->status.sent++;
        t->status.deletes++;
        report(t, s, SEND_OK, idbuf, NULL);
    } else {
        t->status.send_errors++;
        report(t, s, SEND_FAILED, NULL, "not_found");
    }
    return 1;
}

static void
send_done(const struct http_response *r, void *arg)
{
    struct tg_send *s = arg;
    struct telegram *t = s->t;
    struct tg_chat *c = s->c;
    struct telegram_error err;
    enum telegram_parse pr;
    int64_t mid = 0;
    int code;
    char idbuf[24];

    s->req = NULL;
    c->inflight = 0;
    t->status.sends_inflight--;
    if (r->error != HTTP_OK) {
        send_backoff(t, c, s, http_error_name(r->error));
        goto out;
    }
    memset(&err, 0, sizeof(err));
    pr = telegram_codec_parse_result(r->body, r->body_len, &mid, &err);
    code =
        pr == TELEGRAM_PARSE_API_ERROR && err.code ? err.code : (int)r->status;
    if (pr == TELEGRAM_PARSE_OK && r->status == 200) {
        queue_pop(t, c);
        t->status.sent++;
        if (s->kind == ACTION_EDIT)
            t->status.edits++;
        else if (s->kind == ACTION_DELETE)
            t->status.deletes++;
        /* an edit or delete names the message it acted on */
        snprintf(idbuf, sizeof(idbuf), "%" PRId64, s->target ? s->target : mid);
        report(t, s, SEND_OK, s->target || mid > 0 ? idbuf : "", NULL);
        goto out;
    }
    if (code == 401 || code == 404) {
        tg_fatal(t, send_method(s), code);
        return;
    }
    if (code == 429) {
        int64_t ra = err.retry_after > 0 ? err.retry_after : 1;
        /* exactly retry_after, for this chat only */
        c->blocked_until = now_ms(t) + ra * 1000;
        t->status.retries_429++;
        log_warnx("telegram 429 chat=%" PRId64 " retry_after_s=%" PRId64, c->id,
                  ra);
        goto out;
    }
    if (code == 400 && err.migrate_to_chat_id != 0) {
        chat_migrated(t, c, err.migrate_to_chat_id);
        goto out;
    }
    if (code == 400 && edit_settled(t, c, s, &err))
        goto out;
    if (code == 400 && telegram_error_is_parse(&err) && !s->plain) {
        s->plain = 1;
        t->status.fallbacks_plain++;
        log_warnx("telegram html refused chat=%" PRId64 ", resending as plain "
                  "text",
                  c->id);
        goto out;
    }
    if (code == 403) {
        queue_pop(t, c);
        report(t, s, SEND_FAILED, NULL, "forbidden");
        chat_forbidden(t, c, err.description);
        goto out;
    }
    if (code >= 500 || pr == TELEGRAM_PARSE_BAD) {
        send_backoff(t, c, s,
                     pr == TELEGRAM_PARSE_BAD ? "unreadable reply"
                                              : "server error");
        goto out;
    }
    queue_pop(t, c);
    t->status.send_errors++;
    log_warnx("telegram %s failed chat=%" PRId64 " status=%d: %s",
              send_method(s), c->id, code, err.description);
    report(t, s, SEND_FAILED, NULL, "bad_request");
out:
    if (c->head == NULL && !c->inflight) {
        active_del(t, c);
        chat_maybe_free(t, c);
    }
    pump_soon(t, 0);
}

/* Every chat with a send ready and allowed by the pacer gets one. */
static void
pump(struct telegram *t)
{
    int64_t now = now_ms(t), next = -1, w;
    struct tg_chat *c, *stop, *nx;

    if (t->state == TG_STOPPED || t->state == TG_FATAL || !t->registered)
        return;
    stop = t->atail;
    for (c = t->ahead; c != NULL; c = nx) {
        int last = c == stop;
        /* every slot taken: send_done pumps again when one frees */
        if (t->status.sends_inflight >= TELEGRAM_SENDS_INFLIGHT_MAX)
            return;
        nx = c->anext;
        if (c->inflight || c->head == NULL)
            goto next;
        if (c->blocked_until > now) {
            w = c->blocked_until - now;
            if (next < 0 || w < next)
                next = w;
            goto next;
        }
        if (c->inactive) {
            struct tg_send *s;
            while ((s = queue_pop(t, c)) != NULL)
                report(t, s, SEND_FAILED, NULL, "forbidden");
            goto next;
        }
        w = telegram_pace_take(t->pace, c->migrated_to ? c->migrated_to : c->id,
                               c->group, now);
        if (w < 0)
            w = TG_BACKOFF_BASE_MS;
        if (w > 0) {
            if (next < 0 || w < next)
                next = w;
            goto next;
        }
        send_issue(t, c);
        /* round robin: the chat that just sent goes to the back */
        if (c->active && c != t->atail) {
            active_del(t, c);
            active_add(t, c);
        }
    next:
        if (last)
            break;
    }
    if (next >= 0)
        pump_soon(t, next);
}

static void
pump_cb(uv_timer_t *h)
{
    pump(h->data);
}

static void
pump_soon(struct telegram *t, int64_t delay)
{
    if (t->closing || t->state == TG_STOPPED || t->state == TG_FATAL)
        return;
    if (uv_is_active((uv_handle_t *)&t->pump_timer) &&
        (int64_t)uv_timer_get_due_in(&t->pump_timer) <= delay)
        return;
    uv_timer_start(&t->pump_timer, pump_cb, (uint64_t)(delay > 0 ? delay : 0),
                   0);
}

/*
 * Buttons once per answer: on the last part of a plain answer, or on the
 * edit core marks final (streaming).  The key is the job's idem_key
 * ("job:<id>:<part>"); an edit has none, so it is made the same way.
 */
static void
fb_key(struct tg_send *s, const struct action *a)
{
    if (!a->feedback)
        return;
    if (a->kind == ACTION_EDIT)
        snprintf(s->fb_key, sizeof(s->fb_key), "job:%" PRIu64 ":%d",
                 a->send_id >> 16, a->part);
    else if (a->part == a->parts - 1 && a->idem_key)
        snprintf(s->fb_key, sizeof(s->fb_key), "%s", a->idem_key);
}

/* connector_ops.send */
static int
ops_send(void *ctx, const struct action *a)
{
    struct telegram *t = ctx;
    struct tg_send *s;
    struct tg_chat *c;
    int64_t chat, v, target = 0;

    if (t->state == TG_STOPPED || t->state == TG_FATAL ||
        parse_i64(a->chat, &chat) < 0 || chat == 0)
        return -1;
    if (a->kind == ACTION_EDIT || a->kind == ACTION_DELETE) {
        if (parse_i64(a->target_id, &target) < 0 || target <= 0) {
            log_warnx("telegram %s without a message id chat=%s",
                      a->kind == ACTION_EDIT ? "edit" : "delete", a->chat);
            return -1;
        }
    }
    if (a->text == NULL && a->kind != ACTION_DELETE)
        return -1;
    if (t->queued >= TG_QUEUE_MAX || (c = chat_get(t, chat)) == NULL ||
        c->n >= TG_CHAT_QUEUE_MAX)
        return -1; /* core tries again later */
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -1;
    if ((s->md = strdup(a->text ? a->text : "")) == NULL) {
        free(s);
        return -1;
    }
    s->t = t;
    s->send_id = a->send_id;
    s->kind = a->kind;
    s->target = target;
    s->part = a->part;
    if (a->thread && parse_i64(a->thread, &v) == 0)
        s->thread = v;
    if (a->kind != ACTION_EDIT && a->reply_to &&
        parse_i64(a->reply_to, &v) == 0)
        s->reply_to = v;
    fb_key(s, a);
    /* edits and deletes wait in the same queue, under the same pacer:
     * Telegram counts them against the same flood limits */
    queue_push(t, c, s, 0);
    pump_soon(t, 0);
    return 0;
}

static void misc_pump(struct telegram *t);

static void
misc_free(struct tg_misc *m)
{
    if (m == NULL)
        return;
    free(m->body);
    free(m);
}

static void
misc_done(const struct http_response *r, void *arg)
{
    struct tg_misc *m = arg;
    struct telegram *t = m->t;
    struct telegram_error err;
    const char *what = m->what;
    int code = (int)r->status;

    if (m->prev)
        m->prev->next = m->next;
    else
        t->misc = m->next;
    if (m->next)
        m->next->prev = m->prev;
    misc_free(m);
    t->status.misc_inflight--;
    misc_pump(t);
    if (r->error != HTTP_OK) {
        log_debug("telegram %s failed: %s", what, http_error_name(r->error));
        return;
    }
    memset(&err, 0, sizeof(err));
    if (telegram_codec_parse_result(r->body, r->body_len, NULL, &err) ==
        TELEGRAM_PARSE_OK)
        return;
    if (err.code)
        code = err.code;
    if (code == 401 || code == 404) {
        tg_fatal(t, what, code);
        return;
    }
    /* a late answerCallbackQuery ("query is too old") is expected */
    if (!telegram_error_is_query_old(&err))
        log_debug("telegram %s status=%d: %s", what, code, err.description);
}

/* Puts m on the wire; on failure it is dropped (logged by http). */
static void
misc_issue(struct telegram *t, struct tg_misc *m)
{
    m->req = call(t, m->what, m->body, TG_CALL_TIMEOUT_MS, misc_done, m);
    free(m->body);
    m->body = NULL;
    if (m->req == NULL) {
        misc_free(m);
        return;
    }
    m->prev = NULL;
    m->next = t->misc;
    if (t->misc)
        t->misc->prev = m;
    t->misc = m;
    if (++t->status.misc_inflight > t->status.misc_inflight_max)
        t->status.misc_inflight_max = t->status.misc_inflight;
}

/*
 * A queued typing action is worth sending only while its chat still
 * waits: not once the answer is queued or on its way (the status would
 * outlive it), nor after the refresh interval (core asked again by then).
 */
static int
misc_stale(struct telegram *t, const struct tg_misc *m)
{
    struct tg_chat *c;

    if (!m->typing)
        return 0;
    if (now_ms(t) - m->since_ms > TG_TYPING_MS)
        return 1;
    c = chat_find(t, m->chat);
    return c != NULL && (c->head != NULL || c->inflight || c->inactive ||
                         c->blocked_until > now_ms(t));
}

/* Queued calls go out, oldest first, while slots are free. */
static void
misc_pump(struct telegram *t)
{
    struct tg_misc *m;

    if (t->state == TG_STOPPED || t->state == TG_FATAL)
        return;
    while (t->mhead != NULL &&
           t->status.misc_inflight < TELEGRAM_MISC_INFLIGHT_MAX) {
        m = t->mhead;
        t->mhead = m->next;
        if (t->mhead == NULL)
            t->mtail = NULL;
        m->next = NULL;
        t->status.misc_queued--;
        if (misc_stale(t, m)) {
            t->status.typing_skipped++;
            misc_free(m);
            continue;
        }
        misc_issue(t, m);
    }
}

/* Sends body (owned) as method now, or queues it behind the others. */
static void
misc_call(struct telegram *t, const char *method, char *body, int64_t chat,
          int typing)
{
    struct tg_misc *m;

    if (body == NULL)
        return;
    if (t->status.misc_queued >= TELEGRAM_MISC_QUEUE_MAX) {
        t->status.misc_dropped++;
        log_warnx("telegram %s dropped: %zu calls already queued", method,
                  t->status.misc_queued);
        free(body);
        return;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        free(body);
        return;
    }
    m->t = t;
    m->what = method;
    m->body = body;
    m->chat = chat;
    m->typing = typing;
    m->since_ms = now_ms(t);
    if (t->mhead == NULL &&
        t->status.misc_inflight < TELEGRAM_MISC_INFLIGHT_MAX) {
        misc_issue(t, m);
        return;
    }
    if (t->mtail)
        t->mtail->next = m;
    else
        t->mhead = m;
    t->mtail = m;
    t->status.misc_queued++;
}

/* connector_ops.typing */
static void
ops_typing(void *ctx, const char *chat, const char *thread)
{
    struct telegram *t = ctx;
    struct tg_chat *c;
    int64_t id, th = 0;

    if (t->state == TG_STOPPED || t->state == TG_FATAL ||
        parse_i64(chat, &id) < 0)
        return;
    if (thread != NULL && *thread)
        parse_i64(thread, &th);
    c = chat_find(t, id);
    if (c != NULL && (c->inactive || c->blocked_until > now_ms(t)))
        return; /* would only earn another 403 / 429 */
    if (c != NULL && c->migrated_to)
        id = c->migrated_to;
    misc_call(t, "sendChatAction", telegram_codec_chat_action(id, th),
              c != NULL ? c->id : id, 1);
}

/* ---- receiving ---- */

static void
step_cb(uv_timer_t *h)
{
    step(h->data);
}

static void
backoff(struct telegram *t, int conflict, int64_t exact_ms, const char *why)
{
    int64_t w;

    if (exact_ms > 0)
        w = exact_ms;
    else if (conflict)
        w = telegram_backoff_ms(++t->conflicts, TG_CONFLICT_BASE_MS * 2,
                                TG_CONFLICT_CAP_MS, rnd32());
    else
        w = telegram_backoff_ms(++t->fails, TG_BACKOFF_BASE_MS,
                                TG_BACKOFF_CAP_MS, rnd32());
    if (conflict && w < TG_CONFLICT_BASE_MS)
        w = TG_CONFLICT_BASE_MS;
    log_warnx("telegram %s failed: %s; retry in_ms=%" PRId64,
              tg_state_names[t->state], why, w);
    t->status.up = 0;
    snprintf(t->status.reason, sizeof(t->status.reason), "%s", why);
    uv_timer_start(&t->timer, step_cb, (uint64_t)w, 0);
}

static void
my_chat_member(struct telegram *t, const struct telegram_update *u)
{
    struct tg_chat *c = chat_get(t, u->chat_id);
    char key[64];

    if (c == NULL)
        return;
    kv_key(key, sizeof(key), "inactive", u->chat_id);
    if (u->removed) {
        c->inactive = 1;
        store_kv_set(t->st, TG_PLATFORM, key, "1");
        log_info("telegram removed from chat=%" PRId64, u->chat_id);
    } else if (c->inactive) {
        c->inactive = 0;
        store_kv_del(t->st, TG_PLATFORM, key);
        log_info("telegram added to chat=%" PRId64, u->chat_id);
    }
}

/* A service message says a group became a supergroup: the same move as
 * a send's 400 with migrate_to_chat_id (chat_migrated), before the
 * batch's events, which may already come from the new id. */
static void
migrate_update(struct telegram *t, const struct telegram_update *u)
{
    struct tg_chat *c = chat_get(t, u->migrate_from);

    if (c == NULL) {
        log_warnx(
            "telegram chat migration dropped: out of memory chat=%" PRId64,
            u->migrate_from);
        return;
    }
    chat_migrated(t, c, u->migrate_to);
}

static void
poll_done(const struct http_response *r, void *arg)
{
    struct telegram *t = arg;
    struct telegram_updates ups;
    struct telegram_error err;
    enum telegram_parse pr;
    struct event *evs = NULL;
    size_t nev = 0;
    int64_t next_offset;
    char val[32] = "";
    int code;

    t->req = NULL;
    memset(&ups, 0, sizeof(ups));
    if (r->error != HTTP_OK) {
        backoff(t, 0, 0, http_error_name(r->error));
        return;
    }
    memset(&err, 0, sizeof(err));
    pr = telegram_codec_parse_updates(r->body, r->body_len, &t->me, &ups, &err);
    code =
        pr == TELEGRAM_PARSE_API_ERROR && err.code ? err.code : (int)r->status;
    if (pr != TELEGRAM_PARSE_OK || r->status != 200) {
        telegram_updates_release(&ups);
        if (code == 401 || code == 404) {
            tg_fatal(t, "getUpdates", code);
            return;
        }
        if (code == 409) {
            backoff(t, 1, 0, "409 conflict: another getUpdates or a webhook");
            return;
        }
        if (code == 429) {
            backoff(t, 0, (err.retry_after > 0 ? err.retry_after : 1) * 1000,
                    "429 too many requests");
            return;
        }
        backoff(t, 0, 0,
                pr == TELEGRAM_PARSE_BAD ? err.description : "server error");
        return;
    }
    t->fails = t->conflicts = 0;
    t->status.up = 1;
    t->status.reason[0] = '\0';
    t->status.polls++;
    t->status.updates += ups.n;
    if (ups.n > 0 && (evs = calloc(ups.n, sizeof(*evs))) == NULL) {
        telegram_updates_release(&ups);
        backoff(t, 0, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < ups.n; i++) {
        const struct telegram_update *u = &ups.v[i];
        if (u->kind == TELEGRAM_UPDATE_MY_CHAT_MEMBER)
            my_chat_member(t, u);
        else if (u->kind == TELEGRAM_UPDATE_MIGRATE)
            migrate_update(t, u);
        else if (u->kind == TELEGRAM_UPDATE_EDITED)
            log_debug("telegram edit ignored chat=%s", u->chat_s);
        if (telegram_update_event(u, &evs[nev]) == 0)
            nev++;
    }
    if (ups.next_offset > t->offset)
        snprintf(val, sizeof(val), "%" PRId64, ups.next_offset);
    if (nev > 0 &&
        core_accept_batch_kv(t->core, evs, nev, TG_PLATFORM, "offset",
                             ups.next_offset > t->offset ? val : NULL) == 0) {
        /* durable, the offset with them in the same commit */
        if (ups.next_offset > t->offset) {
            t->offset = ups.next_offset;
            t->status.offset = t->offset;
        }
        t->status.events += nev;
    } else if (nev == 0) {
        /* deliberately dropped: now Telegram may forget them */
        if (ups.next_offset > t->offset) {
            if (store_kv_set(t->st, TG_PLATFORM, "offset", val) == 0 &&
                store_sync(t->st) == 0) {
                t->offset = ups.next_offset;
                t->status.offset = t->offset;
            } else {
                log_warnx("telegram offset not committed; updates will be "
                          "delivered again");
            }
        }
        t->status.events += nev;
    } else {
        log_warnx("telegram core did not take %zu events; not confirming", nev);
    }
    /* a button press is always answered, or the user's client spins */
    for (size_t i = 0; i < ups.n; i++)
        if (ups.v[i].kind == TELEGRAM_UPDATE_CALLBACK) {
            t->status.callbacks++;
            misc_call(
                t, "answerCallbackQuery",
                telegram_codec_answer_callback(ups.v[i].callback_id, NULL), 0,
                0);
        }
    next_offset = ups.next_offset;
    free(evs);
    telegram_updates_release(&ups);
    telegram_pace_evict(t->pace, now_ms(t));
    if (t->state != TG_POLL)
        return; /* stopped from inside core (shutdown) */
    if (nev > 0 && t->offset < next_offset) {
        backoff(t, 0, 0, "updates not durable");
        return;
    }
    poll_start(t);
}

static void
poll_start(struct telegram *t)
{
    int64_t pt = t->cfg->telegram.poll_timeout;
    int secs = (int)(pt / 1000);
    char *body;

    if (secs > 50)
        secs = 50; /* Telegram's own maximum */
    if (secs < 0)
        secs = 0;
    t->state = TG_POLL;
    body = telegram_codec_get_updates(t->offset, secs, TG_POLL_LIMIT);
    if (body == NULL) {
        backoff(t, 0, 0, "out of memory");
        return;
    }
    t->req = call(t, "getUpdates", body,
                  (int64_t)secs * 1000 + TG_POLL_MARGIN_MS, poll_done, t);
    free(body);
    if (t->req == NULL)
        backoff(t, 0, 0, "cannot start a request");
}

static void
webhook_done(const struct http_response *r, void *arg)
{
    struct telegram *t = arg;
    struct telegram_error err;
    enum telegram_parse pr;
    int code;

    t->req = NULL;
    if (r->error != HTTP_OK) {
        backoff(t, 0, 0, http_error_name(r->error));
        return;
    }
    memset(&err, 0, sizeof(err));
    pr = telegram_codec_parse_result(r->body, r->body_len, NULL, &err);
    code =
        pr == TELEGRAM_PARSE_API_ERROR && err.code ? err.code : (int)r->status;
    if (pr != TELEGRAM_PARSE_OK || r->status != 200) {
        if (code == 401 || code == 404) {
            tg_fatal(t, "deleteWebhook", code);
            return;
        }
        backoff(t, 0, err.retry_after * 1000, "deleteWebhook refused");
        return;
    }
    t->fails = 0;
    poll_start(t);
}

static void
getme_done(const struct http_response *r, void *arg)
{
    struct telegram *t = arg;
    struct telegram_error err;
    enum telegram_parse pr;
    int code;
    struct connector_ops ops;

    t->req = NULL;
    if (r->error != HTTP_OK) {
        backoff(t, 0, 0, http_error_name(r->error));
        return;
    }
    memset(&err, 0, sizeof(err));
    pr = telegram_codec_parse_me(r->body, r->body_len, &t->me, &err);
    code =
        pr == TELEGRAM_PARSE_API_ERROR && err.code ? err.code : (int)r->status;
    if (pr != TELEGRAM_PARSE_OK || r->status != 200) {
        if (code == 401 || code == 404) {
            tg_fatal(t, "getMe", code);
            return;
        }
        backoff(t, 0, err.retry_after * 1000, "getMe failed");
        return;
    }
    snprintf(t->status.username, sizeof(t->status.username), "%s",
             t->me.username);
    log_info("telegram connected as @%s id=%" PRId64, t->me.username, t->me.id);
    /* the "/" menu of Telegram clients, once per start, best effort */
    if (!t->commands_set) {
        t->commands_set = 1;
        misc_call(t, "setMyCommands", telegram_codec_my_commands(), 0, 0);
    }
    if (!t->registered) {
        memset(&ops, 0, sizeof(ops));
        ops.platform = TG_PLATFORM;
        ops.ctx = t;
        ops.send = ops_send;
        ops.typing = ops_typing;
        ops.typing_interval_ms = TG_TYPING_MS;
        /*
         * core splits by bytes; a UTF-8 byte is never less than a UTF-16
         * unit and formatting only removes characters, so parts of 4096
         * bytes stay within Telegram's 4096 visible units.
         */
        ops.text_max = TELEGRAM_MESSAGE_MAX;
        ops.can_edit = 1; /* editMessageText, deleteMessage */
        /* registered before the first poll: resumed jobs send at once */
        if (core_register_connector(t->core, &ops) == 0)
            t->registered = 1;
        else
            log_warnx("telegram cannot register with core");
    }
    t->fails = 0;
    t->state = TG_WEBHOOK;
    t->req = call(t, "deleteWebhook", "{\"drop_pending_updates\":false}",
                  TG_CALL_TIMEOUT_MS, webhook_done, t);
    if (t->req == NULL)
        backoff(t, 0, 0, "cannot start a request");
    pump_soon(t, 0);
}

/* The next step of the start sequence, or the poll (after a backoff). */
static void
step(struct telegram *t)
{
    if (t->state == TG_STOPPED || t->state == TG_FATAL || t->req != NULL)
        return;
    if (t->me.id == 0) {
        t->state = TG_GETME;
        t->req = call(t, "getMe", "{}", TG_CALL_TIMEOUT_MS, getme_done, t);
    } else if (t->state == TG_WEBHOOK || t->state == TG_GETME) {
        t->state = TG_WEBHOOK;
        t->req = call(t, "deleteWebhook", "{\"drop_pending_updates\":false}",
                      TG_CALL_TIMEOUT_MS, webhook_done, t);
    } else {
        poll_start(t);
        return;
    }
    if (t->req == NULL)
        backoff(t, 0, 0, "cannot start a request");
}

/* ---- lifetime ---- */

struct telegram *
telegram_new(uv_loop_t *loop, struct http *http, struct core *core,
             struct store *st, const struct config *cfg,
             void (*fatal)(void *arg, const char *why), void *fatal_arg)
{
    struct telegram *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->loop = loop;
    t->http = http;
    t->core = core;
    t->st = st;
    t->cfg = cfg;
    t->fatal = fatal;
    t->fatal_arg = fatal_arg;
    t->pace = telegram_pace_new(TG_CHATS_MAX);
    if (t->pace == NULL) {
        free(t);
        return NULL;
    }
    telegram_configure(t, cfg);
    uv_timer_init(loop, &t->timer);
    uv_timer_init(loop, &t->pump_timer);
    t->timer.data = t;
    t->pump_timer.data = t;
    set_down(t, "%s", "starting");
    return t;
}

/*
 * The pacer counts a message when it is sent, Telegram when it arrives
 * and is processed; the gap varies by request, so two sends exactly W
 * apart here can land closer than W there.  A margin of a tenth of the
 * window (at most 1 s: 1.7 % of the group minute) keeps us under.
 */
static struct rate
with_margin(struct rate r)
{
    int64_t m = r.window_ms / 10;

    if (r.n > 0)
        r.window_ms += m < 1000 ? m : 1000;
    return r;
}

void
telegram_configure(struct telegram *t, const struct config *cfg)
{
    t->cfg = cfg;
    telegram_pace_set_rates(t->pace, with_margin(cfg->telegram.chat_send_rate),
                            with_margin(cfg->telegram.group_send_rate),
                            with_margin(cfg->telegram.global_send_rate));
}

int
telegram_start(struct telegram *t)
{
    char buf[32];
    int64_t off;

    if (t->state != TG_IDLE)
        return -1;
    if (t->cfg->telegram.token.value == NULL ||
        t->cfg->telegram.token.value[0] == '\0') {
        log_error("telegram token is not resolved");
        return -1;
    }
    if (store_kv_get(t->st, TG_PLATFORM, "offset", buf, sizeof(buf)) == 1 &&
        parse_i64(buf, &off) == 0 && off > 0)
        t->offset = off;
    t->status.offset = t->offset;
    log_info("telegram starting offset=%" PRId64, t->offset);
    t->state = TG_GETME;
    step(t);
    return 0;
}

static void
cancel_all(struct telegram *t)
{
    http_cancel(t->req);
    t->req = NULL;
    uv_timer_stop(&t->timer);
    uv_timer_stop(&t->pump_timer);
    while (t->misc != NULL) {
        struct tg_misc *m = t->misc;
        t->misc = m->next;
        http_cancel(m->req);
        misc_free(m);
    }
    while (t->mhead != NULL) {
        struct tg_misc *m = t->mhead;
        t->mhead = m->next;
        misc_free(m);
    }
    t->mtail = NULL;
    t->status.misc_inflight = t->status.misc_queued = 0;
    for (size_t b = 0; b < TG_BUCKETS; b++)
        for (struct tg_chat *c = t->buckets[b]; c; c = c->hnext) {
            struct tg_send *s;
            if (c->inflight && c->head && c->head->req) {
                http_cancel(c->head->req);
                c->head->req = NULL;
            }
            c->inflight = 0;
            t->status.sends_inflight = 0;
            /* unsent parts stay in their jobs: the next start sends them */
            while ((s = queue_pop(t, c)) != NULL)
                send_free(s);
        }
    if (t->registered) {
        t->registered = 0;
        core_unregister_connector(t->core, TG_PLATFORM);
    }
}

void
telegram_stop(struct telegram *t)
{
    if (t == NULL || t->state == TG_STOPPED)
        return;
    if (t->state != TG_FATAL) {
        t->state = TG_STOPPED;
        set_down(t, "%s", "stopped");
    }
    cancel_all(t);
}

static void
closed(uv_handle_t *h)
{
    struct telegram *t = h->data;

    if (--t->closing > 0)
        return;
    for (size_t b = 0; b < TG_BUCKETS; b++) {
        struct tg_chat *c = t->buckets[b], *n;
        for (; c; c = n) {
            n = c->hnext;
            free(c);
        }
    }
    telegram_pace_free(t->pace);
    free(t);
}

void
telegram_free(struct telegram *t)
{
    if (t == NULL || t->freeing)
        return;
    telegram_stop(t);
    t->freeing = 1;
    t->closing = 2;
    uv_close((uv_handle_t *)&t->timer, closed);
    uv_close((uv_handle_t *)&t->pump_timer, closed);
}

void
telegram_status(const struct telegram *t, struct telegram_status *s)
{
    *s = t->status;
    s->queued = t->queued;
}
