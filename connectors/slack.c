/* slack: the Slack connector — Socket Mode in, paced Web API sends out. */
#include "connectors/slack.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/slack_codec.h"
#include "connectors/slack_format.h"
#include "connectors/slack_sm.h"
#include "core/core.h"
#include "core/event.h"
#include "core/log.h"

#define SLACK_SLOTS 8         /* sockets: 2 live + those closing */
#define SLACK_QUEUE_MAX 10000 /* queued messages, all channels */
#define SLACK_SEEN_MAX 4096   /* event ids remembered for dedupe */
#define SLACK_INPUTS_MAX 16   /* state machine inputs queued in one turn */
#define SLACK_API_TIMEOUT_MS 30000
#define SLACK_SEND_TRIES 5 /* local retries of a 5xx / network error */
#define SLACK_REACT_CHAN "\001reactions"
/* slash commands whose response_url is remembered (docs/slack.md) */
#define SLACK_RESP_MAX 256
#define SLACK_RESP_USES 5         /* Slack takes 5 posts per response_url */
#define SLACK_RESP_PREFIX "resp:" /* our ids for messages posted there */

struct slack;

struct slack_slot {
    struct slack *s;
    unsigned id; /* slack_sm's name for it, 0 = free */
    struct ws_conn *ws;
};

/* FLUSH: a streamed text held back for a response_url (not reported) */
enum item_kind { ITEM_POST, ITEM_EDIT, ITEM_DELETE, ITEM_REACT, ITEM_FLUSH };

/*
 * One queued send: a part (maybe several messages), an edit or a delete
 * of one of our messages (streaming), or a reaction.  Every kind but
 * REACT is reported to core exactly once (item_done).
 */
struct slack_item {
    struct slack_item *next;
    enum item_kind kind;
    uint64_t send_id;
    int64_t queued_at; /* uv_now() ms: the Tier 3 gates serve oldest first */
    char chat[EVENT_ID_MAX + 1];
    char thread[EVENT_ID_MAX + 1];
    char **chunks; /* POST: the messages; EDIT: one, the whole text */
    size_t nchunks, at;
    /* POST: the last posted; EDIT, DELETE, REACT: the target */
    char ts[EVENT_ID_MAX + 1];
    char name[8];      /* REACT: "+1" / "-1" */
    int feedback;      /* POST, EDIT: add the reactions when done */
    int controls_only; /* EDIT: the text is shown; only the reactions */
    int tries;
    /* POST: the command answered ("cmd:<trigger>"), for the fallback */
    char cmd[EVENT_ID_MAX + 1];
    /* != 0: goes to that remembered response_url, not the Web API */
    uint64_t resp;
    int flushing; /* POST via resp: the previous message's text first */
};

/*
 * A slash command's response_url, for answers in channels where the bot
 * cannot post (not_in_channel, channel_not_found).  Slack takes up to
 * SLACK_RESP_USES posts within 30 minutes.  A message posted there has no
 * ts: core gets "resp:<serial>.<n>" (the n-th post) and its edits are
 * held back (pending) and sent with replace_original once final.
 */
struct slack_resp {
    uint64_t serial;             /* 0 = free */
    char chat[EVENT_ID_MAX + 1]; /* the command's channel */
    char cmd[EVENT_ID_MAX + 1];  /* its message id, "cmd:<trigger>" */
    char *url;
    int64_t at;        /* uv_now() ms when it came */
    int uses;          /* posts made (or tried) through it */
    int direct_failed; /* chat.postMessage was refused */
    int posted;        /* messages posted: the last one's n */
    char *shown;       /* the last message's text as posted */
    char *pending;     /* its newer text, not sent yet */
    int64_t flush_at;  /* pending goes out then, 0 = not armed */
};

struct slack_chan {
    struct slack_chan *next;
    char id[EVENT_ID_MAX + 1];
    struct slack_item *head, *tail;
    int64_t next_at; /* uv_now() ms: pacing, Retry-After, backoff */
    int inflight;
};

enum req_kind { REQ_AUTH, REQ_OPEN, REQ_POST, REQ_REACT, REQ_RESP };

struct slack_req {
    struct slack_req *prev, *next;
    struct slack *s;
    enum req_kind kind;
    struct slack_chan *chan;
    struct http_req *r;
};

struct queued_input {
    struct slack_sm_input in;
    char env[EVENT_ID_MAX + 1];
    char url[SLACK_URL_MAX];
    char why[128];
};

struct slack {
    uv_loop_t *loop;
    struct http *http;
    struct ws_ctx *ws;
    struct core *core;
    struct store *st;
    void (*fatal)(void *arg, const char *why);
    void *fatal_arg;
    char *app_token, *bot_token, *api_base;
    struct rate rate;
    struct slack_timing timing;
    /* workspace-wide Tier 3 gates: the next chat.update / chat.delete */
    int64_t update_at, delete_at;
    void (*observer)(void *arg, uint64_t send_id, const struct send_result *r);
    void *observer_arg;
    char user_id[EVENT_ID_MAX + 1], bot_id[EVENT_ID_MAX + 1];
    struct slack_sm *sm;
    uv_timer_t sm_timer, send_timer, resp_timer;
    int timers_open; /* handles to close in slack_free */
    /* heap: a socket closing after slack_free still finds its slot */
    struct slack_slot *slots[SLACK_SLOTS];
    struct slack_chan *chans;
    size_t queued;
    struct slack_req *reqs;
    /* state machine inputs are queued: actions may produce new inputs */
    struct queued_input inq[SLACK_INPUTS_MAX];
    size_t inq_head, inq_len;
    int feeding;
    const struct slack_frame *frame; /* the envelope being accepted */
    int64_t frame_at;
    uint64_t seen[SLACK_SEEN_MAX];
    struct slack_resp resps[SLACK_RESP_MAX];
    uint64_t resp_serial;
    size_t seen_next;
    int registered, started, stopped, up, fatal_pending;
    char reason[SLACK_SM_REASON_MAX];
    struct slack_status stats;
};

/* response_url (below the send queues) */
static void resp_remember(struct slack *s, const struct slack_inbound *in);
static int resp_fallback(struct slack *s, struct slack_chan *ch,
                         const char *error);
static void on_resp_reply(struct slack *s, struct slack_chan *ch,
                          const struct http_response *r);
static void chan_issue_resp(struct slack *s, struct slack_chan *ch);
static void resp_clear(struct slack_resp *e);

/* ---- helpers ---- */

static int64_t
now_ms(const struct slack *s)
{
    return (int64_t)uv_now(s->loop);
}

static uint32_t
draw(void)
{
    /* jitter only: spreading reconnects, not a secret */
    return (uint32_t)random();
}

static uint64_t
id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *id; id++) {
        h ^= (unsigned char)*id;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static int
seen_has(const struct slack *s, uint64_t h)
{
    for (size_t i = 0; i < SLACK_SEEN_MAX; i++)
        if (s->seen[i] == h)
            return 1;
    return 0;
}

static void
seen_add(struct slack *s, uint64_t h)
{
    s->seen[s->seen_next] = h;
    s->seen_next = (s->seen_next + 1) % SLACK_SEEN_MAX;
}

/* Kinds that core asked for and hears about (not reactions). */
static int
item_reports(const struct slack_item *it)
{
    return it->kind != ITEM_REACT && it->kind != ITEM_FLUSH;
}

static void
item_free(struct slack_item *it)
{
    if (it == NULL)
        return;
    for (size_t i = 0; i < it->nchunks; i++)
        free(it->chunks[i]);
    free(it->chunks);
    free(it);
}

static void
secret_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

/* ---- HTTP ---- */

static void api_done(const struct http_response *r, void *arg);

/*
 * POSTs body (JSON) to url, with the token as a Bearer header when token
 * is not NULL (a response_url never sees the bot token).
 */
static struct slack_req *
http_post(struct slack *s, enum req_kind kind, const char *url,
          const char *token, const char *body, struct slack_chan *chan)
{
    struct slack_req *q = calloc(1, sizeof(*q));
    char auth[1024];
    const char *headers[] = {
        auth, "Content-Type: application/json; charset=utf-8", "Expect:", NULL};
    struct http_request rq;

    if (q == NULL)
        return NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             token ? token : "");
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = url;
    rq.headers = token ? headers : headers + 1;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout_ms = SLACK_API_TIMEOUT_MS;
    rq.max_response = SLACK_BODY_MAX;
    q->s = s;
    q->kind = kind;
    q->chan = chan;
    q->r = http_send(s->http, &rq, api_done, q);
    explicit_bzero(auth, sizeof(auth));
    if (q->r == NULL) {
        free(q);
        return NULL;
    }
    q->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = q;
    s->reqs = q;
    return q;
}

static struct slack_req *
api_call(struct slack *s, enum req_kind kind, const char *method,
         const char *token, const char *body, struct slack_chan *chan)
{
    char url[1024];

    snprintf(url, sizeof(url), "%s/%s", s->api_base, method);
    return http_post(s, kind, url, token, body, chan);
}

/* Retry-After seconds → ms (1 s when absent or unreadable). */
static int64_t
retry_after_ms(const struct http_response *r)
{
    const char *h = http_response_header(r, "retry-after");
    long v = h ? strtol(h, NULL, 10) : 0;

    if (v <= 0)
        v = 1;
    if (v > 3600)
        v = 3600;
    return (int64_t)v * 1000;
}

/* ---- the state machine ---- */

static void sm_feed(struct slack *s, const struct slack_sm_input *in);

static struct slack_slot *
slot_of(struct slack *s, unsigned id)
{
    for (size_t i = 0; i < SLACK_SLOTS; i++)
        if (id && s->slots[i] && s->slots[i]->id == id)
            return s->slots[i];
    return NULL;
}

static void
input_init(struct slack *s, struct slack_sm_input *in,
           enum slack_sm_input_kind kind)
{
    memset(in, 0, sizeof(*in));
    in->kind = kind;
    in->now_ms = now_ms(s);
    in->rnd = draw();
}

static void ws_on_open(struct ws_conn *c, void *arg);
static void ws_on_text(struct ws_conn *c, const char *buf, size_t len,
                       void *arg);
static void ws_on_closed(struct ws_conn *c, int code, const char *reason,
                         void *arg);
static const struct ws_conn_ops slack_ws_ops = {ws_on_open, ws_on_text,
                                                ws_on_closed};

static void
do_connect(struct slack *s, const struct slack_sm_action *a)
{
    struct slack_slot *slot = NULL;
    struct slack_sm_input in;
    size_t i;

    for (i = 0; i < SLACK_SLOTS; i++)
        if (s->slots[i] == NULL)
            break;
    if (i < SLACK_SLOTS && (slot = calloc(1, sizeof(*slot))) != NULL) {
        slot->s = s;
        slot->id = a->conn;
        slot->ws = ws_connect(s->ws, a->url, &slack_ws_ops, slot);
        if (slot->ws == NULL) {
            free(slot);
            slot = NULL;
        } else
            s->slots[i] = slot;
    }
    if (slot == NULL) {
        log_warnx("slack: cannot open a socket conn=%u", a->conn);
        input_init(s, &in, SLACK_SM_IN_WS_CLOSED);
        in.conn = a->conn;
        in.code = WS_CLOSE_ABNORMAL;
        in.why = "connect failed";
        sm_feed(s, &in);
        return;
    }
    s->stats.connects++;
    ws_set_msg_max(slot->ws, SLACK_BODY_MAX);
    ws_set_ping(slot->ws, s->timing.ping_interval_ms,
                s->timing.ping_timeout_ms);
    log_info("slack: connecting conn=%u", a->conn);
}

/* ACCEPT: the envelope's event to core; ACCEPTED says whether to ack. */
static void
do_accept(struct slack *s, const struct slack_sm_action *a)
{
    const struct slack_frame *f = s->frame;
    struct slack_sm_input in;
    struct event ev;
    uint64_t h = 0;
    int ok = 1;

    input_init(s, &in, SLACK_SM_IN_ACCEPTED);
    in.conn = a->conn;
    in.envelope_id = a->envelope_id;
    if (f == NULL || strcmp(f->envelope_id, a->envelope_id) != 0) {
        ok = 0; /* cannot happen: ACCEPT follows its ENVELOPE at once */
        goto out;
    }
    if (f->retry_attempt > 0)
        log_info("slack: redelivered envelope attempt=%d reason=%s",
                 f->retry_attempt, f->retry_reason);
    if (slack_inbound_event(&f->in, &ev) < 0) {
        s->stats.ignored++;
        log_debug("slack: envelope ignored: %s",
                  f->in.ignore_why ? f->in.ignore_why : "?");
        goto out;
    }
    if (f->in.event_id[0]) {
        h = id_hash(f->in.event_id);
        if (seen_has(s, h)) {
            s->stats.duplicates++;
            goto out;
        }
    }
    if (f->env_type == SLACK_ENV_SLASH)
        resp_remember(s, &f->in);
    if (s->core == NULL || core_accept(s->core, &ev) < 0) {
        ok = 0;
        s->stats.not_acked++;
        log_warnx("slack: event not durable, not acknowledged (Slack "
                  "redelivers) type=%s",
                  f->in.event_type[0] ? f->in.event_type : "slash_command");
        goto out;
    }
    s->stats.accepted++;
    if (h)
        seen_add(s, h);
out:
    in.ok = ok;
    sm_feed(s, &in);
}

static void
do_ack(struct slack *s, const struct slack_sm_action *a)
{
    struct slack_slot *slot = slot_of(s, a->conn);
    char buf[EVENT_ID_MAX + 32];
    int n = slack_ack_encode(a->envelope_id, buf, sizeof(buf));
    int64_t took = (int64_t)(uv_hrtime() / 1000000) - s->frame_at;

    if (n < 0 || slot == NULL || slot->ws == NULL ||
        ws_send_text(slot->ws, buf, (size_t)n) < 0) {
        log_warnx("slack: ack not sent (socket gone), Slack redelivers");
        return;
    }
    s->stats.acks++;
    if (took > s->stats.ack_max_ms)
        s->stats.ack_max_ms = took;
}

static void
do_action(struct slack *s, const struct slack_sm_action *a)
{
    struct slack_slot *slot;

    switch (a->kind) {
    case SLACK_SM_ACT_AUTH:
        if (api_call(s, REQ_AUTH, "auth.test", s->bot_token, "{}", NULL) ==
            NULL) {
            struct slack_sm_input in;

            input_init(s, &in, SLACK_SM_IN_AUTH_FAIL);
            in.why = "cannot send the request";
            sm_feed(s, &in);
        }
        break;
    case SLACK_SM_ACT_OPEN:
        if (api_call(s, REQ_OPEN, "apps.connections.open", s->app_token, "{}",
                     NULL) == NULL) {
            struct slack_sm_input in;

            input_init(s, &in, SLACK_SM_IN_OPEN_FAIL);
            in.why = "cannot send the request";
            sm_feed(s, &in);
        }
        break;
    case SLACK_SM_ACT_CONNECT:
        do_connect(s, a);
        break;
    case SLACK_SM_ACT_CLOSE:
        if ((slot = slot_of(s, a->conn)) != NULL && slot->ws)
            ws_close(slot->ws, a->code, a->reason);
        break;
    case SLACK_SM_ACT_ACCEPT:
        do_accept(s, a);
        break;
    case SLACK_SM_ACT_ACK:
        do_ack(s, a);
        break;
    case SLACK_SM_ACT_UP:
        s->up = 1;
        s->reason[0] = '\0';
        log_info("slack: connected conn=%u user=%s", a->conn, s->user_id);
        break;
    case SLACK_SM_ACT_DOWN:
        s->up = 0;
        snprintf(s->reason, sizeof(s->reason), "%s",
                 a->reason ? a->reason : "down");
        if (!s->stopped)
            log_warnx("slack: down: %s", s->reason);
        break;
    case SLACK_SM_ACT_FATAL:
        s->up = 0;
        snprintf(s->reason, sizeof(s->reason), "%s",
                 a->reason ? a->reason : "stopped");
        log_error("slack: stopped for good: %s", s->reason);
        s->fatal_pending = 1;
        break;
    }
}

static void sm_timer_cb(uv_timer_t *t);

/*
 * Inputs are queued and fed one at a time: an action (ACCEPT, a failed
 * connect) produces the next input while the machine's previous actions
 * are still being carried out.
 */
static void
sm_feed(struct slack *s, const struct slack_sm_input *in)
{
    struct queued_input *q;
    int64_t wake;

    if (s->inq_len == SLACK_INPUTS_MAX) {
        log_error("slack: state machine input queue full, input dropped");
        return;
    }
    q = &s->inq[(s->inq_head + s->inq_len++) % SLACK_INPUTS_MAX];
    q->in = *in;
    snprintf(q->env, sizeof(q->env), "%s",
             in->envelope_id ? in->envelope_id : "");
    snprintf(q->url, sizeof(q->url), "%s", in->url ? in->url : "");
    snprintf(q->why, sizeof(q->why), "%s", in->why ? in->why : "");
    q->in.envelope_id = q->env;
    q->in.url = q->url;
    q->in.why = q->why;
    if (s->feeding)
        return;
    s->feeding = 1;
    while (s->inq_len > 0) {
        struct queued_input cur = s->inq[s->inq_head];
        struct slack_sm_action acts[SLACK_SM_ACTIONS_MAX];
        size_t n;

        s->inq_head = (s->inq_head + 1) % SLACK_INPUTS_MAX;
        s->inq_len--;
        cur.in.envelope_id = cur.env;
        cur.in.url = cur.url;
        cur.in.why = cur.why;
        n = slack_sm_feed(s->sm, &cur.in, acts, SLACK_SM_ACTIONS_MAX);
        for (size_t i = 0; i < n; i++)
            do_action(s, &acts[i]);
    }
    s->feeding = 0;
    wake = slack_sm_wake(s->sm);
    if (wake > 0) {
        int64_t in_ms = wake - now_ms(s);

        uv_timer_start(&s->sm_timer, sm_timer_cb,
                       (uint64_t)(in_ms > 0 ? in_ms : 0), 0);
    } else
        uv_timer_stop(&s->sm_timer);
    if (s->fatal_pending) {
        s->fatal_pending = 0;
        if (s->fatal)
            s->fatal(s->fatal_arg, s->reason);
    }
}

static void
sm_timer_cb(uv_timer_t *t)
{
    struct slack *s = t->data;
    struct slack_sm_input in;

    input_init(s, &in, SLACK_SM_IN_TICK);
    sm_feed(s, &in);
}

/* ---- sockets ---- */

static void
ws_on_open(struct ws_conn *c, void *arg)
{
    struct slack_slot *slot = arg;
    struct slack_sm_input in;

    (void)c;
    if (slot->s == NULL)
        return;
    input_init(slot->s, &in, SLACK_SM_IN_WS_OPEN);
    in.conn = slot->id;
    sm_feed(slot->s, &in);
}

static void
ws_on_text(struct ws_conn *c, const char *buf, size_t len, void *arg)
{
    struct slack_slot *slot = arg;
    struct slack *s = slot->s;
    struct slack_frame f;
    struct slack_sm_input in;
    struct slack_self self;
    const char *why;

    (void)c;
    if (s == NULL)
        return;
    self.user_id = s->user_id;
    self.bot_id = s->bot_id;
    if (slack_frame_decode(buf, len, &self, &f, &why) < 0) {
        log_warnx("slack: unreadable frame conn=%u: %s", slot->id, why);
        return;
    }
    switch (f.type) {
    case SLACK_FRAME_HELLO:
        s->stats.hellos++;
        input_init(s, &in, SLACK_SM_IN_HELLO);
        in.conn = slot->id;
        sm_feed(s, &in);
        break;
    case SLACK_FRAME_DISCONNECT:
        log_info("slack: disconnect conn=%u reason=%s", slot->id,
                 f.reason_text);
        input_init(s, &in, SLACK_SM_IN_DISCONNECT);
        in.conn = slot->id;
        in.reason = f.reason;
        sm_feed(s, &in);
        break;
    case SLACK_FRAME_ENVELOPE:
        s->stats.envelopes++;
        s->frame = &f;
        s->frame_at = (int64_t)(uv_hrtime() / 1000000); /* not cached */
        input_init(s, &in, SLACK_SM_IN_ENVELOPE);
        in.conn = slot->id;
        in.envelope_id = f.envelope_id;
        sm_feed(s, &in);
        s->frame = NULL;
        break;
    default:
        break;
    }
    slack_frame_release(&f);
}

static void
ws_on_closed(struct ws_conn *c, int code, const char *reason, void *arg)
{
    struct slack_slot *slot = arg;
    struct slack *s = slot->s;
    struct slack_sm_input in;
    unsigned id = slot->id;

    (void)c;
    free(slot);
    if (s == NULL)
        return; /* slack_free came first */
    for (size_t i = 0; i < SLACK_SLOTS; i++)
        if (s->slots[i] == slot)
            s->slots[i] = NULL;
    input_init(s, &in, SLACK_SM_IN_WS_CLOSED);
    in.conn = id;
    in.code = code;
    in.why = reason;
    sm_feed(s, &in);
}

/* ---- Web API replies ---- */

static int core_send(void *ctx, const struct action *a);

void
slack_connector_ops(struct slack *s, struct connector_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->platform = "slack";
    ops->ctx = s;
    ops->send = core_send;
    ops->typing = NULL; /* bots have no typing indicator in the Web API */
    ops->typing_interval_ms = 0;
    /*
     * core cuts parts at text_max BYTES; Slack counts characters, so a
     * part of 4000 bytes always fits before formatting.  Escaping may
     * grow it a little past 4000: it stays one message (see post_text).
     */
    ops->text_max = SLACK_TEXT_MAX;
    ops->can_edit = 1; /* chat.update / chat.delete */
    /*
     * chat.update is Tier 3: ≈50 a minute for the whole workspace, and a
     * streamed answer needs one every stream_interval.  Two streams at a
     * time keep the gate's queue short; other answers go whole (a post
     * and its reactions, no chat.update at all).
     */
    ops->streams_max = SLACK_STREAMS_MAX;
}

static void
register_with_core(struct slack *s)
{
    struct connector_ops ops;

    if (s->registered || s->core == NULL)
        return;
    slack_connector_ops(s, &ops);
    if (core_register_connector(s->core, &ops) == 0)
        s->registered = 1;
    else
        log_error("slack: cannot register with core");
}

/* Which Web API errors end the connector rather than retry. */
static int
err_fatal(enum slack_err e)
{
    return e == SLACK_ERR_AUTH || e == SLACK_ERR_FORBIDDEN;
}

static void
on_setup_reply(struct slack *s, enum req_kind kind,
               const struct http_response *r)
{
    struct slack_sm_input in;
    struct slack_api_error err;
    char why[128], url[SLACK_URL_MAX];
    int is_auth = kind == REQ_AUTH;

    input_init(s, &in, is_auth ? SLACK_SM_IN_AUTH_FAIL : SLACK_SM_IN_OPEN_FAIL);
    in.why = why;
    if (r->error != HTTP_OK) {
        snprintf(why, sizeof(why), "%s", http_error_name(r->error));
    } else if (r->status == 429) {
        in.retry_after_ms = retry_after_ms(r);
        snprintf(why, sizeof(why), "429");
    } else if (r->status != 200) {
        snprintf(why, sizeof(why), "HTTP %ld", r->status);
    } else if (is_auth) {
        if (slack_auth_decode(r->body, r->body_len, s->user_id, s->bot_id,
                              sizeof(s->user_id), &err) == 0) {
            log_info("slack: auth.test user=%s bot=%s", s->user_id, s->bot_id);
            register_with_core(s);
            input_init(s, &in, SLACK_SM_IN_AUTH_OK);
        } else {
            snprintf(why, sizeof(why), "%s", err.error);
            in.fatal = err_fatal(err.cls);
        }
    } else {
        if (slack_open_decode(r->body, r->body_len, url, sizeof(url), &err) ==
            0) {
            input_init(s, &in, SLACK_SM_IN_OPEN_OK);
            in.url = url;
        } else {
            snprintf(why, sizeof(why), "%s", err.error);
            in.fatal = err_fatal(err.cls);
        }
    }
    if (in.kind != SLACK_SM_IN_AUTH_OK && in.kind != SLACK_SM_IN_OPEN_OK)
        log_warnx("slack: %s failed: %s%s",
                  is_auth ? "auth.test" : "apps.connections.open", why,
                  in.fatal ? " (fatal)" : "");
    sm_feed(s, &in);
}

static void send_schedule(struct slack *s);
static void item_done(struct slack *s, struct slack_chan *ch,
                      const struct send_result *res);
static int64_t *item_gate(struct slack *s, const struct slack_item *it);

static void
send_retry_later(struct slack *s, struct slack_chan *ch, const char *why)
{
    struct slack_item *it = ch->head;
    int64_t wait = 1000;

    s->stats.send_errors++;
    for (int i = 1; i < it->tries && wait < 30000; i++)
        wait *= 2;
    if (++it->tries > SLACK_SEND_TRIES && item_reports(it)) {
        struct send_result res = {SEND_RETRY, NULL, 30000, NULL};

        log_warnx("slack: send keeps failing (%s), core retries later", why);
        item_done(s, ch, &res);
        return;
    }
    if (it->tries > SLACK_SEND_TRIES) { /* a reaction: best effort */
        item_done(s, ch, NULL);
        return;
    }
    log_warnx("slack: send failed (%s), retry in %" PRId64 " ms", why, wait);
    ch->next_at = now_ms(s) + wait;
}

/* The Web API method of an item. */
static const char *
item_method(const struct slack_item *it)
{
    switch (it->kind) {
    case ITEM_POST:
        return "chat.postMessage";
    case ITEM_EDIT:
        return "chat.update";
    case ITEM_DELETE:
        return "chat.delete";
    default:
        return "reactions.add";
    }
}

/*
 * A 429 (or ratelimited): the head stays queued and its channel waits
 * Retry-After; a Tier 3 method's limit is the workspace's, so its gate
 * waits too.
 */
static void
hold_for(struct slack *s, struct slack_chan *ch, int64_t wait_ms)
{
    int64_t *gate = item_gate(s, ch->head);

    ch->next_at = now_ms(s) + wait_ms;
    if (gate && *gate < ch->next_at)
        *gate = ch->next_at;
    s->stats.retries_429++;
}

/* The head item's call succeeded (ts: a post's new message). */
static void
on_send_ok(struct slack *s, struct slack_chan *ch, const char *ts)
{
    struct slack_item *it = ch->head;
    struct send_result res = {SEND_OK, it->ts, 0, NULL};

    switch (it->kind) {
    case ITEM_REACT:
    case ITEM_FLUSH: /* cannot happen: a response_url's, on_resp_ok */
        s->stats.reactions += it->kind == ITEM_REACT;
        item_done(s, ch, NULL);
        return;
    case ITEM_POST:
        snprintf(it->ts, sizeof(it->ts), "%s", ts);
        if (++it->at < it->nchunks)
            return; /* the next message of this part, paced */
        s->stats.sent++;
        break;
    case ITEM_EDIT:
        s->stats.edits++;
        break;
    case ITEM_DELETE:
        s->stats.deletes++;
        break;
    }
    item_done(s, ch, &res); /* EDIT, DELETE: message_id = the target */
}

static void
on_send_reply(struct slack *s, struct slack_req *q,
              const struct http_response *r)
{
    struct slack_chan *ch = q->chan;
    struct slack_item *it = ch->head;
    struct slack_api_error err;
    char ts[EVENT_ID_MAX + 1], why[96];
    int rc;

    ch->inflight = 0;
    if (it == NULL)
        return;
    if (q->kind == REQ_RESP) {
        on_resp_reply(s, ch, r);
        return;
    }
    if (r->error != HTTP_OK) {
        send_retry_later(s, ch, http_error_name(r->error));
        return;
    }
    if (r->status == 429) {
        hold_for(s, ch, retry_after_ms(r));
        log_warnx("slack: 429 %s channel=%s retry_after_ms=%" PRId64,
                  item_method(it), ch->id, ch->next_at - now_ms(s));
        return; /* kept queued */
    }
    if (r->status >= 500 || (r->status != 200 && r->status != 201)) {
        snprintf(why, sizeof(why), "HTTP %ld", r->status);
        if (r->status >= 500) {
            send_retry_later(s, ch, why);
            return;
        }
    }
    if (it->kind == ITEM_POST)
        rc = slack_post_decode(r->body, r->body_len, ts, sizeof(ts), &err);
    else
        rc = slack_reply_decode(r->body, r->body_len, &err);
    /* deleting a message that is already gone: done all the same */
    if (rc < 0 && it->kind == ITEM_DELETE &&
        strcmp(err.error, "message_not_found") == 0)
        rc = 0;
    if (rc == 0) {
        on_send_ok(s, ch, ts);
        return;
    }
    if (it->kind == ITEM_POST && resp_fallback(s, ch, err.error))
        return; /* reissued to the response_url */
    switch (err.cls) {
    case SLACK_ERR_RATE_LIMITED:
        hold_for(s, ch, retry_after_ms(r));
        return;
    case SLACK_ERR_SERVER:
    case SLACK_ERR_BAD_REPLY:
        send_retry_later(s, ch, err.error);
        return;
    case SLACK_ERR_DUPLICATE:
        item_done(s, ch, NULL); /* already_reacted: fine */
        return;
    case SLACK_ERR_AUTH: {
        struct send_result res = {SEND_RETRY, NULL, 60000, NULL};

        s->stats.send_errors++;
        log_error("slack: the bot token was rejected: %s", err.error);
        item_done(s, ch, item_reports(it) ? &res : NULL);
        snprintf(s->reason, sizeof(s->reason), "Web API: %s", err.error);
        s->up = 0;
        if (s->fatal)
            s->fatal(s->fatal_arg, s->reason);
        return;
    }
    default: {
        struct send_result res = {SEND_FAILED, NULL, 0,
                                  slack_err_name(err.cls)};

        s->stats.send_errors++;
        log_warnx("slack: %s refused channel=%s error=%s class=%s",
                  item_method(it), ch->id, err.error, slack_err_name(err.cls));
        item_done(s, ch, item_reports(it) ? &res : NULL);
        return;
    }
    }
}

static void
api_done(const struct http_response *r, void *arg)
{
    struct slack_req *q = arg;
    struct slack *s = q->s;

    if (q->prev)
        q->prev->next = q->next;
    else
        s->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    if (q->kind == REQ_POST || q->kind == REQ_REACT || q->kind == REQ_RESP)
        s->stats.sends_inflight--;
    if (!s->stopped) {
        if (q->kind == REQ_AUTH || q->kind == REQ_OPEN)
            on_setup_reply(s, q->kind, r);
        else
            on_send_reply(s, q, r);
        send_schedule(s);
    }
    free(q);
}

/* ---- sending ---- */

static struct slack_chan *
chan_get(struct slack *s, const char *id)
{
    struct slack_chan *ch;

    for (ch = s->chans; ch; ch = ch->next)
        if (strcmp(ch->id, id) == 0)
            return ch;
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        return NULL;
    snprintf(ch->id, sizeof(ch->id), "%s", id);
    ch->next = s->chans;
    s->chans = ch;
    return ch;
}

static void
chan_push(struct slack *s, struct slack_chan *ch, struct slack_item *it)
{
    if (ch->tail)
        ch->tail->next = it;
    else
        ch->head = it;
    ch->tail = it;
    s->queued++;
}

static void
react_queue(struct slack *s, const char *chat, const char *ts, const char *name)
{
    struct slack_chan *ch = chan_get(s, SLACK_REACT_CHAN);
    struct slack_item *it;

    if (ch == NULL || s->queued >= SLACK_QUEUE_MAX ||
        (it = calloc(1, sizeof(*it))) == NULL)
        return; /* best effort */
    it->kind = ITEM_REACT;
    it->queued_at = now_ms(s);
    snprintf(it->chat, sizeof(it->chat), "%s", chat);
    snprintf(it->ts, sizeof(it->ts), "%s", ts);
    snprintf(it->name, sizeof(it->name), "%s", name);
    chan_push(s, ch, it);
}

/* The head item is finished: report it (res NULL: no report). */
static void
item_done(struct slack *s, struct slack_chan *ch, const struct send_result *res)
{
    struct slack_item *it = ch->head;

    ch->head = it->next;
    if (ch->head == NULL)
        ch->tail = NULL;
    s->queued--;
    if ((it->kind == ITEM_POST || it->kind == ITEM_EDIT) && res &&
        res->status == SEND_OK && it->feedback && !it->resp) {
        react_queue(s, it->chat, it->ts, "+1");
        react_queue(s, it->chat, it->ts, "-1");
    }
    if (item_reports(it) && res) {
        if (s->core)
            core_send_done(s->core, it->send_id, res);
        if (s->observer)
            s->observer(s->observer_arg, it->send_id, res);
    }
    item_free(it);
}

static int64_t
chan_interval(const struct slack *s, const struct slack_chan *ch)
{
    if (strcmp(ch->id, SLACK_REACT_CHAN) == 0)
        return s->timing.reaction_interval_ms;
    if (s->rate.n <= 0 || s->rate.window_ms <= 0)
        return 0; /* off */
    return (s->rate.window_ms + s->rate.n - 1) / s->rate.n;
}

/*
 * chat.update and chat.delete are Tier 3 methods (≈50 a minute per
 * workspace, each its own budget): on top of their channel's pacing,
 * all channels share one gate per method.  NULL: not gated.
 */
static int64_t *
item_gate(struct slack *s, const struct slack_item *it)
{
    if (it == NULL || it->resp)
        return NULL;
    if (it->kind == ITEM_EDIT && !it->controls_only)
        return &s->update_at;
    if (it->kind == ITEM_DELETE)
        return &s->delete_at;
    return NULL;
}

/* When the channel's head may go (its pacing, then its method's gate). */
static int64_t
chan_ready_at(struct slack *s, const struct slack_chan *ch)
{
    const int64_t *gate = item_gate(s, ch->head);

    return gate && *gate > ch->next_at ? *gate : ch->next_at;
}

/*
 * Of the channels whose head may go now, the one queued longest.  Slots
 * on the wire (SLACK_CALLS_INFLIGHT_MAX) go oldest first, and so does a
 * Tier 3 gate: of the heads waiting on it, the oldest goes and the gate
 * closes again, so a channel streaming busily cannot starve another.
 */
static struct slack_chan *
chan_oldest_ready(struct slack *s, int64_t now)
{
    struct slack_chan *best = NULL;

    for (struct slack_chan *ch = s->chans; ch; ch = ch->next)
        if (ch->head && !ch->inflight && chan_ready_at(s, ch) <= now &&
            (best == NULL || ch->head->queued_at < best->head->queued_at))
            best = ch;
    return best;
}

static char *
item_body(const struct slack_item *it)
{
    switch (it->kind) {
    case ITEM_POST:
        return slack_post_encode(it->chat, it->chunks[it->at], it->thread);
    case ITEM_EDIT:
        return slack_update_encode(it->chat, it->ts, it->chunks[0]);
    case ITEM_DELETE:
        return slack_delete_encode(it->chat, it->ts);
    default:
        return slack_reaction_encode(it->chat, it->ts, it->name);
    }
}

static void
chan_issue(struct slack *s, struct slack_chan *ch)
{
    struct slack_item *it = ch->head;
    int64_t *gate = item_gate(s, it);
    char *body;
    struct slack_req *q = NULL;
    struct send_result ok;

    if (it->resp || it->kind == ITEM_FLUSH) {
        chan_issue_resp(s, ch);
        return;
    }
    if (it->controls_only) { /* no call: the reactions follow item_done */
        memset(&ok, 0, sizeof(ok));
        ok.status = SEND_OK;
        ok.message_id = it->ts;
        item_done(s, ch, &ok);
        return;
    }
    body = item_body(it);
    if (body != NULL)
        q = api_call(s, it->kind == ITEM_REACT ? REQ_REACT : REQ_POST,
                     item_method(it), s->bot_token, body, ch);
    free(body);
    if (q == NULL) {
        ch->next_at = now_ms(s) + 1000;
        return;
    }
    if (it->kind != ITEM_REACT)
        s->stats.sends++;
    if (++s->stats.sends_inflight > s->stats.sends_inflight_max)
        s->stats.sends_inflight_max = s->stats.sends_inflight;
    ch->inflight = 1;
    ch->next_at = now_ms(s) + chan_interval(s, ch);
    if (gate)
        *gate = now_ms(s) + s->timing.tier3_interval_ms;
}

static void
send_pump(uv_timer_t *t)
{
    struct slack *s = t->data;
    int64_t now = now_ms(s), next = 0;
    struct slack_chan **pp = &s->chans, *ch;
    int full;

    if (s->stopped)
        return;
    while (s->stats.sends_inflight < SLACK_CALLS_INFLIGHT_MAX &&
           (ch = chan_oldest_ready(s, now)) != NULL)
        chan_issue(s, ch);
    /* every slot taken: api_done pumps again when one frees */
    full = s->stats.sends_inflight >= SLACK_CALLS_INFLIGHT_MAX;
    while (*pp) {
        int64_t at;

        ch = *pp;
        if (ch->head == NULL && !ch->inflight && ch->next_at <= now) {
            *pp = ch->next; /* idle and its pacing is over: forget it */
            free(ch);
            continue;
        }
        if (!ch->inflight) {
            /* a head's time, or an idle channel's end of pacing (to
             * forget it); a head ready now waits for a slot */
            at = ch->head ? chan_ready_at(s, ch) : ch->next_at;
            if (at <= now && full)
                at = 0;
            else if (at <= now)
                at = now + 1;
            if (at > 0 && (next == 0 || at < next))
                next = at;
        }
        pp = &ch->next;
    }
    if (next > 0)
        uv_timer_start(&s->send_timer, send_pump,
                       (uint64_t)(next > now ? next - now : 0), 0);
}

static void
send_schedule(struct slack *s)
{
    if (!s->stopped)
        uv_timer_start(&s->send_timer, send_pump, 0, 0);
}

/*
 * An edit's text: formatted as a post's, and like a post's never cut,
 * since one message stays one message.  core's parts are at most 4000
 * bytes, so even fully escaped (& → &amp;) it stays far below the 40,000
 * characters Slack takes in one message.  0, or -1 on OOM.
 */
static int
edit_text(struct slack_item *it, const char *text)
{
    char *md = slack_format(text, strlen(text));

    if (md == NULL || (it->chunks = calloc(1, sizeof(char *))) == NULL) {
        free(md);
        return -1;
    }
    it->chunks[0] = md;
    it->nchunks = 1;
    return 0;
}

/*
 * A post's text: mrkdwn, one message per core part, as an edit's.  Were a
 * part that escaping grew past 4000 characters cut in two here, a stream
 * would differ from the same answer sent whole: core would know only the
 * second message, edit the whole part into it and leave the first one
 * showing a stale copy.  core's parts are at most 4000 bytes, at most
 * 20,000 characters escaped: the cut at Slack's hard limit is a guard.
 */
static int
post_text(struct slack_item *it, const char *text)
{
    char *md = slack_format(text, strlen(text));

    if (md)
        it->chunks = slack_format_split(md, SLACK_MSG_MAX, &it->nchunks);
    free(md);
    return it->chunks && it->nchunks > 0 ? 0 : -1;
}

/* ---- response_url: answers where the bot cannot post ---- */

static void
resp_clear(struct slack_resp *e)
{
    if (e->url != NULL) {
        explicit_bzero(e->url, strlen(e->url)); /* a capability to post */
        free(e->url);
    }
    free(e->shown);
    free(e->pending);
    memset(e, 0, sizeof(*e));
}

static struct slack_resp *
resp_by_serial(struct slack *s, uint64_t serial)
{
    for (size_t i = 0; serial != 0 && i < SLACK_RESP_MAX; i++)
        if (s->resps[i].serial == serial)
            return &s->resps[i];
    return NULL;
}

static struct slack_resp *
resp_by_cmd(struct slack *s, const char *chat, const char *cmd)
{
    for (size_t i = 0; i < SLACK_RESP_MAX; i++) {
        struct slack_resp *e = &s->resps[i];

        if (e->serial != 0 && strcmp(e->chat, chat) == 0 &&
            strcmp(e->cmd, cmd) == 0)
            return e;
    }
    return NULL;
}

/* "resp:<serial>.<n>": the serial, and n in *n; 0 when not one of ours. */
static uint64_t
resp_target(const char *target, int *n)
{
    size_t plen = strlen(SLACK_RESP_PREFIX);
    unsigned long long v;
    char *end;

    *n = 0;
    if (target == NULL || strncmp(target, SLACK_RESP_PREFIX, plen) != 0)
        return 0;
    v = strtoull(target + plen, &end, 10);
    if (*end != '.')
        return 0;
    *n = (int)strtol(end + 1, NULL, 10);
    return (uint64_t)v;
}

/* Why e cannot take another post, or NULL when it can. */
static const char *
resp_unusable(const struct slack *s, const struct slack_resp *e)
{
    if (e == NULL)
        return "forgotten";
    if (now_ms(s) - e->at >= s->timing.resp_ttl_ms)
        return "expired (Slack takes posts for 30 minutes)";
    if (e->uses >= SLACK_RESP_USES)
        return "used up (5 posts)";
    return NULL;
}

/*
 * A slash command came: its response_url is remembered when it may be
 * called (hooks.slack.com or api_base's host), in a free or expired slot,
 * else in the oldest one.  A redelivery finds its entry already there.
 */
static void
resp_remember(struct slack *s, const struct slack_inbound *in)
{
    struct slack_resp *pick = NULL;
    int64_t now = now_ms(s);
    const char *why;

    if (in->response_url[0] == '\0')
        return;
    if (!slack_response_url_ok(in->response_url, s->api_base, &why)) {
        log_warnx("slack: response_url of %s ignored: %s", in->message_id, why);
        return;
    }
    if (resp_by_cmd(s, in->chat, in->message_id) != NULL)
        return;
    for (size_t i = 0; i < SLACK_RESP_MAX; i++) {
        struct slack_resp *e = &s->resps[i];

        if (e->serial == 0 || now - e->at >= s->timing.resp_ttl_ms) {
            pick = e;
            break;
        }
        if (pick == NULL || e->at < pick->at)
            pick = e;
    }
    resp_clear(pick);
    if ((pick->url = strdup(in->response_url)) == NULL) {
        log_warnx("slack: response_url of %s not kept: out of memory",
                  in->message_id);
        return;
    }
    pick->serial = ++s->resp_serial;
    pick->at = now;
    snprintf(pick->chat, sizeof(pick->chat), "%s", in->chat);
    snprintf(pick->cmd, sizeof(pick->cmd), "%s", in->message_id);
}

static void resp_timer_cb(uv_timer_t *t);

/* The quiet timer: at the earliest flush_at of a held text. */
static void
resp_arm(struct slack *s)
{
    int64_t next = 0, now = now_ms(s);

    for (size_t i = 0; i < SLACK_RESP_MAX; i++) {
        const struct slack_resp *e = &s->resps[i];

        if (e->serial && e->pending && e->flush_at &&
            (next == 0 || e->flush_at < next))
            next = e->flush_at;
    }
    if (next > 0 && !s->stopped)
        uv_timer_start(&s->resp_timer, resp_timer_cb,
                       (uint64_t)(next > now ? next - now : 0), 0);
    else
        uv_timer_stop(&s->resp_timer);
}

/*
 * A streamed text quiet for resp_quiet_ms without a final edit (feedback
 * off, or the stream stopped): it goes out on its channel's queue.
 */
static void
resp_timer_cb(uv_timer_t *t)
{
    struct slack *s = t->data;
    int64_t now = now_ms(s);

    for (size_t i = 0; i < SLACK_RESP_MAX && !s->stopped; i++) {
        struct slack_resp *e = &s->resps[i];
        struct slack_chan *ch;
        struct slack_item *it;

        if (!e->serial || !e->pending || !e->flush_at || e->flush_at > now)
            continue;
        if (s->queued >= SLACK_QUEUE_MAX ||
            (ch = chan_get(s, e->chat)) == NULL ||
            (it = calloc(1, sizeof(*it))) == NULL) {
            e->flush_at = now + 1000;
            continue;
        }
        it->kind = ITEM_FLUSH;
        it->resp = e->serial;
        it->queued_at = now;
        snprintf(it->chat, sizeof(it->chat), "%s", e->chat);
        chan_push(s, ch, it);
        e->flush_at = 0;
    }
    resp_arm(s);
    send_schedule(s);
}

/* An edit's text for the last message: held until final. */
static void
resp_hold(struct slack *s, struct slack_resp *e, const char *text)
{
    free(e->pending);
    e->pending = NULL;
    e->flush_at = 0;
    if (e->shown == NULL || strcmp(e->shown, text) != 0) {
        if ((e->pending = strdup(text)) == NULL)
            log_warnx("slack: streamed text of %s dropped: out of memory",
                      e->cmd);
        else
            e->flush_at = now_ms(s) + s->timing.resp_quiet_ms;
    }
    resp_arm(s);
}

/* The held text went out: it is what the message shows now. */
static void
resp_shown(struct slack_resp *e)
{
    if (e == NULL || e->pending == NULL)
        return;
    free(e->shown);
    e->shown = e->pending;
    e->pending = NULL;
    e->flush_at = 0;
}

/* The head is finished without a call (st, error class cls). */
static void
resp_done(struct slack *s, struct slack_chan *ch, enum send_status st,
          const char *cls)
{
    struct slack_item *it = ch->head;
    struct send_result res = {st, it->ts, 0, cls};

    if (st == SEND_FAILED)
        s->stats.send_errors++;
    item_done(s, ch, item_reports(it) ? &res : NULL);
}

/*
 * The head goes to its response_url: a post (after the previous message's
 * held text, if any), the final edit of the last message, or a held text
 * (FLUSH).  Other edits are held and reported done at once; deletes and
 * reactions are not possible there (reported done, logged).
 */
static void
chan_issue_resp(struct slack *s, struct slack_chan *ch)
{
    struct slack_item *it = ch->head;
    struct slack_resp *e = resp_by_serial(s, it->resp);
    const char *why = resp_unusable(s, e);
    struct slack_req *q = NULL;
    char *body = NULL;
    int n = 0;

    if (e != NULL && strcmp(e->chat, it->chat) != 0)
        e = NULL, why = "forgotten";
    switch (it->kind) {
    case ITEM_POST:
        if (why != NULL) {
            log_warnx("slack: answer to %s not sent: channel=%s refuses the "
                      "bot and the command's response_url is %s",
                      it->cmd, ch->id, why);
            resp_done(s, ch, SEND_FAILED, "forbidden");
            return;
        }
        it->flushing = e->pending != NULL;
        body = slack_response_encode(
            it->flushing ? e->pending : it->chunks[it->at], it->flushing);
        break;
    case ITEM_EDIT:
        resp_target(it->ts, &n);
        if (e == NULL) {
            log_info("slack: edit of %s: its response_url is forgotten",
                     it->ts);
            resp_done(s, ch, SEND_FAILED, "not_found"); /* core posts anew */
            return;
        }
        if (n != e->posted) {
            log_debug("slack: edit of %s dropped: a later message was posted "
                      "through its response_url",
                      it->ts);
            resp_done(s, ch, SEND_OK, NULL);
            return;
        }
        if (it->controls_only)
            log_debug("slack: reactions on %s dropped: a response_url message "
                      "takes none",
                      it->ts);
        else
            resp_hold(s, e, it->chunks[0]);
        if (!it->feedback || e->pending == NULL) {
            resp_done(s, ch, SEND_OK, NULL); /* held, or nothing new */
            return;
        }
        if (why != NULL) { /* the final text, and no use left */
            log_warnx("slack: final text of %s not shown: its response_url "
                      "is %s",
                      it->ts, why);
            resp_done(s, ch, SEND_FAILED, "forbidden");
            return;
        }
        body = slack_response_encode(e->pending, 1);
        break;
    case ITEM_FLUSH:
        if (e == NULL || e->pending == NULL) {
            item_done(s, ch, NULL);
            return;
        }
        if (why != NULL) {
            log_warnx("slack: streamed text of %s stays stale: its "
                      "response_url is %s",
                      e->cmd, why);
            free(e->pending);
            e->pending = NULL;
            item_done(s, ch, NULL);
            return;
        }
        body = slack_response_encode(e->pending, 1);
        break;
    default: /* DELETE: a response_url message cannot be deleted by us */
        log_info("slack: %s not deleted: a message posted through a "
                 "response_url stays",
                 it->ts);
        resp_done(s, ch, SEND_OK, NULL);
        return;
    }
    if (body != NULL)
        q = http_post(s, REQ_RESP, e->url, NULL, body, ch);
    free(body);
    if (q == NULL) {
        ch->next_at = now_ms(s) + 1000;
        return;
    }
    e->uses++; /* counted when tried: a lost reply may have used it */
    if (it->kind != ITEM_FLUSH)
        s->stats.sends++;
    if (++s->stats.sends_inflight > s->stats.sends_inflight_max)
        s->stats.sends_inflight_max = s->stats.sends_inflight;
    ch->inflight = 1;
    ch->next_at = now_ms(s) + chan_interval(s, ch);
}

/* The response_url took the head's post. */
static void
on_resp_ok(struct slack *s, struct slack_chan *ch)
{
    struct slack_item *it = ch->head;
    struct slack_resp *e = resp_by_serial(s, it->resp);
    struct send_result res = {SEND_OK, it->ts, 0, NULL};

    s->stats.responses++;
    switch (it->kind) {
    case ITEM_POST:
        if (it->flushing) { /* the previous message is final: now ours */
            resp_shown(e);
            it->flushing = 0;
            return;
        }
        if (e != NULL) {
            e->posted++;
            free(e->shown);
            e->shown = strdup(it->chunks[it->at]);
            snprintf(it->ts, sizeof(it->ts), SLACK_RESP_PREFIX "%llu.%d",
                     (unsigned long long)e->serial, e->posted);
        }
        if (++it->at < it->nchunks)
            return;
        s->stats.sent++;
        if (it->feedback)
            log_debug("slack: reactions on %s dropped: a response_url "
                      "message takes none",
                      it->ts);
        break;
    case ITEM_EDIT:
        resp_shown(e);
        s->stats.edits++;
        break;
    default: /* FLUSH */
        resp_shown(e);
        item_done(s, ch, NULL);
        return;
    }
    item_done(s, ch, &res);
}

/*
 * A response_url reply: 429 waits Retry-After, 5xx and network errors
 * retry like Web API calls, anything else (expired_url, used_url,
 * invalid_payload, 404) fails the send "forbidden" and retires the URL.
 */
static void
on_resp_reply(struct slack *s, struct slack_chan *ch,
              const struct http_response *r)
{
    struct slack_item *it = ch->head;
    struct slack_resp *e = resp_by_serial(s, it->resp);
    struct slack_api_error err;
    struct send_result res = {SEND_FAILED, NULL, 0, "forbidden"};

    if (r->error != HTTP_OK) {
        send_retry_later(s, ch, http_error_name(r->error));
        return;
    }
    if (slack_response_decode(r->status, r->body, r->body_len, &err) == 0) {
        on_resp_ok(s, ch);
        return;
    }
    switch (err.cls) {
    case SLACK_ERR_RATE_LIMITED:
        hold_for(s, ch, retry_after_ms(r));
        log_warnx("slack: 429 response_url channel=%s retry_after_ms=%" PRId64,
                  ch->id, ch->next_at - now_ms(s));
        return;
    case SLACK_ERR_SERVER:
    case SLACK_ERR_BAD_REPLY:
        send_retry_later(s, ch, err.error);
        return;
    default:
        s->stats.send_errors++;
        log_warnx("slack: response_url of %s refused the post: %s (HTTP %ld)",
                  e ? e->cmd : it->ts, err.error, r->status);
        if (e != NULL)
            e->uses = SLACK_RESP_USES; /* Slack will not take more */
        item_done(s, ch, item_reports(it) ? &res : NULL);
        return;
    }
}

/*
 * chat.postMessage refused an answer to a slash command with
 * not_in_channel or channel_not_found: it goes to the command's
 * response_url instead (chan_issue_resp fails it "forbidden" when that is
 * used up or expired), and so do the command's next parts.  0: no
 * fallback, the error stands.
 */
static int
resp_fallback(struct slack *s, struct slack_chan *ch, const char *error)
{
    struct slack_item *it = ch->head;
    struct slack_resp *e;

    if (strcmp(error, "not_in_channel") != 0 &&
        strcmp(error, "channel_not_found") != 0)
        return 0;
    if (it->cmd[0] == '\0' || (e = resp_by_cmd(s, it->chat, it->cmd)) == NULL)
        return 0;
    e->direct_failed = 1;
    it->resp = e->serial;
    ch->next_at = now_ms(s);
    log_info("slack: channel=%s refused the answer to %s (%s): it goes "
             "through the command's response_url (%d of %d used)",
             ch->id, it->cmd, error, e->uses, SLACK_RESP_USES);
    return 1;
}

static int
core_send(void *ctx, const struct action *a)
{
    struct slack *s = ctx;
    struct slack_chan *ch;
    struct slack_item *it;
    int rc = 0, n;

    if (s->stopped || s->queued >= SLACK_QUEUE_MAX)
        return -1;
    if ((ch = chan_get(s, a->chat)) == NULL ||
        (it = calloc(1, sizeof(*it))) == NULL)
        return -1;
    it->send_id = a->send_id;
    it->queued_at = now_ms(s);
    snprintf(it->chat, sizeof(it->chat), "%s", a->chat);
    snprintf(it->thread, sizeof(it->thread), "%s", a->thread ? a->thread : "");
    switch (a->kind) {
    case ACTION_EDIT:
    case ACTION_DELETE:
        it->kind = a->kind == ACTION_EDIT ? ITEM_EDIT : ITEM_DELETE;
        snprintf(it->ts, sizeof(it->ts), "%s",
                 a->target_id ? a->target_id : "");
        it->resp = resp_target(it->ts, &n); /* posted via a response_url */
        /* feedback on an edit: the final edit of the last part */
        it->feedback = a->kind == ACTION_EDIT && a->feedback;
        it->controls_only = it->feedback && a->controls_only;
        if (it->kind == ITEM_EDIT && !it->controls_only)
            rc = edit_text(it, a->text);
        break;
    default:
        it->kind = ITEM_POST;
        /* 👍/👎 once per answer: on its last message */
        it->feedback = a->feedback && a->part == a->parts - 1;
        rc = post_text(it, a->text);
        if (a->reply_to && strncmp(a->reply_to, "cmd:", 4) == 0) {
            struct slack_resp *e = resp_by_cmd(s, a->chat, a->reply_to);

            snprintf(it->cmd, sizeof(it->cmd), "%s", a->reply_to);
            if (e != NULL && e->direct_failed)
                it->resp = e->serial; /* the channel refused us already */
        }
        break;
    }
    if (rc < 0) {
        item_free(it);
        return -1;
    }
    chan_push(s, ch, it);
    send_schedule(s);
    return 0;
}

/* ---- lifecycle ---- */

static char *
dup_secret(const struct secret *sec)
{
    const char *v = sec->value ? sec->value : sec->ref;

    return v ? strdup(v) : NULL;
}

struct slack *
slack_new(uv_loop_t *loop, struct http *http, struct ws_ctx *ws,
          struct core *core, struct store *st, const struct config *cfg,
          void (*fatal)(void *arg, const char *why), void *fatal_arg)
{
    struct slack *s = calloc(1, sizeof(*s));
    struct slack_timing dflt = {1000, 60000, 10000,      10000, 10000,
                                1200, 1200,  30 * 60000, 3000};

    if (s == NULL)
        return NULL;
    s->loop = loop;
    s->http = http;
    s->ws = ws;
    s->core = core;
    s->st = st;
    s->fatal = fatal;
    s->fatal_arg = fatal_arg;
    s->timing = dflt;
    s->app_token = dup_secret(&cfg->slack.app_token);
    s->bot_token = dup_secret(&cfg->slack.bot_token);
    s->api_base = strdup(cfg->slack.api_base ? cfg->slack.api_base
                                             : "https://slack.com/api");
    s->rate = cfg->slack.channel_send_rate;
    uv_timer_init(loop, &s->sm_timer);
    uv_timer_init(loop, &s->send_timer);
    uv_timer_init(loop, &s->resp_timer);
    s->sm_timer.data = s->send_timer.data = s->resp_timer.data = s;
    /* message ids "resp:<serial>.<n>" stay unique across restarts */
    s->resp_serial = (uint64_t)time(NULL) * 1000;
    s->timers_open = 1;
    snprintf(s->reason, sizeof(s->reason), "starting");
    if (s->app_token == NULL || s->bot_token == NULL || s->api_base == NULL ||
        http == NULL || ws == NULL) {
        log_error("slack: %s", http == NULL || ws == NULL
                                   ? "needs the HTTP and websocket clients"
                                   : "app_token and bot_token are required");
        slack_free(s);
        return NULL;
    }
    return s;
}

void
slack_set_send_observer(struct slack *s,
                        void (*fn)(void *arg, uint64_t send_id,
                                   const struct send_result *r),
                        void *arg)
{
    s->observer = fn;
    s->observer_arg = arg;
}

void
slack_set_timing(struct slack *s, const struct slack_timing *t)
{
    if (t->backoff_min_ms > 0)
        s->timing.backoff_min_ms = t->backoff_min_ms;
    if (t->backoff_max_ms > 0)
        s->timing.backoff_max_ms = t->backoff_max_ms;
    if (t->hello_timeout_ms > 0)
        s->timing.hello_timeout_ms = t->hello_timeout_ms;
    if (t->ping_interval_ms > 0)
        s->timing.ping_interval_ms = t->ping_interval_ms;
    if (t->ping_timeout_ms > 0)
        s->timing.ping_timeout_ms = t->ping_timeout_ms;
    if (t->reaction_interval_ms > 0)
        s->timing.reaction_interval_ms = t->reaction_interval_ms;
    if (t->tier3_interval_ms > 0)
        s->timing.tier3_interval_ms = t->tier3_interval_ms;
    if (t->resp_ttl_ms > 0)
        s->timing.resp_ttl_ms = t->resp_ttl_ms;
    if (t->resp_quiet_ms > 0)
        s->timing.resp_quiet_ms = t->resp_quiet_ms;
}

int
slack_start(struct slack *s)
{
    struct slack_sm_config sc;
    struct slack_sm_input in;

    if (s == NULL || s->started)
        return -1;
    sc.backoff_min_ms = s->timing.backoff_min_ms;
    sc.backoff_max_ms = s->timing.backoff_max_ms;
    sc.hello_timeout_ms = s->timing.hello_timeout_ms;
    if ((s->sm = slack_sm_new(&sc)) == NULL)
        return -1;
    s->started = 1;
    input_init(s, &in, SLACK_SM_IN_START);
    sm_feed(s, &in);
    return 0;
}

void
slack_stop(struct slack *s)
{
    struct slack_sm_input in;

    if (s == NULL || s->stopped)
        return;
    s->stopped = 1; /* first: the DOWN that follows is expected */
    if (s->sm) {
        input_init(s, &in, SLACK_SM_IN_STOP);
        sm_feed(s, &in);
    }
    s->up = 0;
    while (s->reqs) {
        struct slack_req *q = s->reqs;

        s->reqs = q->next;
        http_cancel(q->r);
        free(q);
    }
    s->stats.sends_inflight = 0;
    while (s->chans) {
        struct slack_chan *ch = s->chans;

        s->chans = ch->next;
        while (ch->head) {
            struct slack_item *it = ch->head;

            ch->head = it->next;
            item_free(it);
        }
        free(ch);
    }
    s->queued = 0;
    uv_timer_stop(&s->sm_timer);
    uv_timer_stop(&s->send_timer);
    uv_timer_stop(&s->resp_timer);
    if (s->registered && s->core)
        core_unregister_connector(s->core, "slack");
    s->registered = 0;
}

static void
slack_timer_closed(uv_handle_t *h)
{
    struct slack *s = h->data;

    if (--s->timers_open == 0)
        free(s);
}

void
slack_free(struct slack *s)
{
    if (s == NULL)
        return;
    slack_stop(s);
    /* sockets still closing must not call back into freed memory */
    for (size_t i = 0; i < SLACK_SLOTS; i++)
        if (s->slots[i]) {
            ws_abandon(s->slots[i]->ws, 1000, "shutting down");
            free(s->slots[i]);
            s->slots[i] = NULL;
        }
    slack_sm_free(s->sm);
    s->sm = NULL;
    secret_free(s->app_token);
    secret_free(s->bot_token);
    free(s->api_base);
    for (size_t i = 0; i < SLACK_RESP_MAX; i++)
        resp_clear(&s->resps[i]);
    s->timers_open = 3;
    uv_close((uv_handle_t *)&s->sm_timer, slack_timer_closed);
    uv_close((uv_handle_t *)&s->send_timer, slack_timer_closed);
    uv_close((uv_handle_t *)&s->resp_timer, slack_timer_closed);
}

void
slack_configure(struct slack *s, const struct config *cfg)
{
    if (s && cfg)
        s->rate = cfg->slack.channel_send_rate;
}

int
slack_is_up(void *slack)
{
    const struct slack *s = slack;

    return s && s->up && !s->stopped;
}

void
slack_status(const struct slack *s, struct slack_status *out)
{
    *out = s->stats;
    out->up = slack_is_up((void *)(uintptr_t)s);
    snprintf(out->reason, sizeof(out->reason), "%s", s->reason);
    out->state =
        s->sm ? slack_sm_state_names[slack_sm_state(s->sm)] : "stopped";
    snprintf(out->user_id, sizeof(out->user_id), "%s", s->user_id);
    snprintf(out->bot_id, sizeof(out->bot_id), "%s", s->bot_id);
    out->queued = s->queued;
}
