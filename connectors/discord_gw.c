/* discord_gw: the Discord gateway session as a pure state machine. */
#include "connectors/discord_gw.h"

#include <stdlib.h>
#include <string.h>

/* What a connection that is closing leads to once `closed` comes. */
enum gw_after {
    AFTER_RECONNECT = 0,  /* resume if a session exists, else identify */
    AFTER_IDENTIFY_LATER, /* the session is gone: identify in 1–5 s */
};

struct discord_gw {
    enum discord_gw_state st;
    enum gw_after after;
    struct discord_gw_session sess;
    char self_id[DISCORD_SNOWFLAKE_MAX];
    char gateway_url[DISCORD_URL_MAX];
    char connect_url[DISCORD_URL_MAX];
    int have_gateway;
    int wait_fetch;  /* WAITING ends in a fetch, not a connect */
    int fetch_fails; /* consecutive /gateway/bot failures */
    int fails;       /* connections since the last READY/RESUMED */
    int ever_up;     /* a session was up on this connection */
    int64_t start_remaining, start_reset_at;
    int max_concurrency;
    int64_t next_identify_at;
    int64_t interval;
    int ack_pending;
    int64_t last_beat_at;
    int pending_op; /* IDENTIFY or RESUME held by the send budget, 0 none */
    /* the send budget: times of the last send_limit sends (a ring) */
    int send_limit;
    int64_t send_window;
    int64_t *ring;
    size_t ring_head, ring_n;
    struct discord_gw_stats stats;
};

static const char *const state_names[DGW_STATE_COUNT] = {
    [DGW_STATE_IDLE] = "idle",         [DGW_STATE_GATEWAY] = "gateway",
    [DGW_STATE_WAITING] = "waiting",   [DGW_STATE_CONNECTING] = "connecting",
    [DGW_STATE_HELLO] = "hello",       [DGW_STATE_IDENTIFYING] = "identifying",
    [DGW_STATE_RESUMING] = "resuming", [DGW_STATE_READY] = "ready",
    [DGW_STATE_CLOSING] = "closing",   [DGW_STATE_STOPPING] = "stopping",
    [DGW_STATE_STOPPED] = "stopped",
};

const char *
discord_gw_state_name(enum discord_gw_state s)
{
    return (unsigned)s < DGW_STATE_COUNT ? state_names[s] : "?";
}

const char *
discord_gw_action_name(enum discord_gw_action_kind k)
{
    static const char *const names[] = {
        "fetch_gateway", "connect", "send", "close", "arm",
        "disarm",        "up",      "down", "save",  "fatal",
    };

    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

struct discord_gw *
discord_gw_new(int send_limit, int64_t send_window_ms)
{
    struct discord_gw *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    g->send_limit = send_limit > 0 ? send_limit : DISCORD_GW_SEND_LIMIT;
    g->send_window =
        send_window_ms > 0 ? send_window_ms : DISCORD_GW_SEND_WINDOW;
    if ((g->ring = calloc((size_t)g->send_limit, sizeof(*g->ring))) == NULL) {
        free(g);
        return NULL;
    }
    g->sess.seq = -1;
    g->max_concurrency = 1;
    g->start_remaining = 1;
    g->stats.latency_ms = -1;
    return g;
}

void
discord_gw_free(struct discord_gw *g)
{
    if (g == NULL)
        return;
    free(g->ring);
    free(g);
}

void
discord_gw_restore(struct discord_gw *g, const struct discord_gw_session *s)
{
    if (s == NULL || s->session_id[0] == '\0' ||
        strlen(s->session_id) >= sizeof(g->sess.session_id) ||
        strlen(s->resume_url) >= sizeof(g->sess.resume_url) ||
        strlen(s->self_id) >= sizeof(g->self_id))
        return;
    g->sess = *s;
    memcpy(g->self_id, s->self_id, strlen(s->self_id) + 1);
}

void
discord_gw_session(const struct discord_gw *g, struct discord_gw_session *out)
{
    *out = g->sess;
    memcpy(out->self_id, g->self_id, sizeof(out->self_id));
}

enum discord_gw_state
discord_gw_state(const struct discord_gw *g)
{
    return g->st;
}

const char *
discord_gw_self_id(const struct discord_gw *g)
{
    return g->self_id;
}

int64_t
discord_gw_seq(const struct discord_gw *g)
{
    return g->sess.seq;
}

void
discord_gw_stats(const struct discord_gw *g, struct discord_gw_stats *s)
{
    *s = g->stats;
    s->interval_ms = g->interval;
}

/* ---- actions ---- */

static struct discord_gw_action *
act(struct discord_gw_actions *out, enum discord_gw_action_kind k)
{
    struct discord_gw_action *a;

    /* the transitions emit at most a handful; the cap is a backstop */
    if (out->n == DISCORD_GW_ACTIONS_MAX)
        return NULL;
    a = &out->v[out->n++];
    memset(a, 0, sizeof(*a));
    a->kind = k;
    a->seq = -1;
    return a;
}

static void
act_arm(struct discord_gw_actions *out, enum discord_gw_timer t, int64_t at,
        const char *why)
{
    struct discord_gw_action *a = act(out, DGW_ACT_ARM);

    if (a != NULL) {
        a->timer = t;
        a->at_ms = at;
        a->why = why;
    }
}

static void
act_disarm(struct discord_gw_actions *out, enum discord_gw_timer t)
{
    struct discord_gw_action *a = act(out, DGW_ACT_DISARM);

    if (a != NULL)
        a->timer = t;
}

static void
act_why(struct discord_gw_actions *out, enum discord_gw_action_kind k,
        const char *why)
{
    struct discord_gw_action *a = act(out, k);

    if (a != NULL)
        a->why = why;
}

static void
act_close(struct discord_gw *g, struct discord_gw_actions *out, int code,
          enum gw_after after, const char *why)
{
    struct discord_gw_action *a = act(out, DGW_ACT_CLOSE);

    if (a != NULL) {
        a->code = code;
        a->why = why;
    }
    act_disarm(out, DGW_TIMER_HEARTBEAT);
    act_disarm(out, DGW_TIMER_SEND);
    act_why(out, DGW_ACT_DOWN, why);
    g->after = after;
    g->pending_op = 0;
    g->st = DGW_STATE_CLOSING;
}

static void
session_clear(struct discord_gw *g, struct discord_gw_actions *out)
{
    memset(&g->sess, 0, sizeof(g->sess));
    g->sess.seq = -1;
    act(out, DGW_ACT_SAVE);
}

/* ---- the send budget ---- */

static void
budget_trim(struct discord_gw *g, int64_t now)
{
    while (g->ring_n > 0 && g->ring[g->ring_head] <= now - g->send_window) {
        g->ring_head = (g->ring_head + 1) % (size_t)g->send_limit;
        g->ring_n--;
    }
}

static void
budget_record(struct discord_gw *g, int64_t now)
{
    size_t cap = (size_t)g->send_limit;

    if (g->ring_n == cap) { /* full: the oldest goes (conservative) */
        g->ring_head = (g->ring_head + 1) % cap;
        g->ring_n--;
    }
    g->ring[(g->ring_head + g->ring_n) % cap] = now;
    g->ring_n++;
    g->stats.sends++;
}

/*
 * Heartbeats expected in one window stay reserved, so an IDENTIFY or
 * RESUME never takes the room a heartbeat needs (a late heartbeat is a
 * zombie for Discord).  Half the budget at most.
 */
static size_t
budget_reserve(const struct discord_gw *g)
{
    size_t r = 1;

    if (g->interval > 0)
        r = (size_t)(g->send_window / g->interval) + 1;
    if (r > (size_t)g->send_limit / 2)
        r = (size_t)g->send_limit / 2;
    return r;
}

/* 0: a non-heartbeat send may go now; else the time it may. */
static int64_t
budget_next(struct discord_gw *g, int64_t now)
{
    size_t reserve = budget_reserve(g), over;

    budget_trim(g, now);
    if (g->ring_n + reserve < (size_t)g->send_limit)
        return 0;
    /* the entry whose expiry brings the count under the limit */
    over = g->ring_n + reserve - (size_t)g->send_limit;
    return g->ring[(g->ring_head + over) % (size_t)g->send_limit] +
           g->send_window;
}

static void
send_frame(struct discord_gw *g, struct discord_gw_actions *out, int op,
           int64_t now)
{
    struct discord_gw_action *a = act(out, DGW_ACT_SEND);

    if (a == NULL)
        return;
    a->op = op;
    a->seq = g->sess.seq;
    budget_record(g, now);
    if (op == DISCORD_OP_HEARTBEAT) {
        g->stats.heartbeats++;
        g->ack_pending = 1;
        g->last_beat_at = now;
    } else if (op == DISCORD_OP_IDENTIFY) {
        g->stats.identifies++;
        g->start_remaining--;
        g->next_identify_at =
            now + DISCORD_GW_IDENTIFY_SPACING / g->max_concurrency;
    } else if (op == DISCORD_OP_RESUME) {
        g->stats.resumes++;
    }
}

/* IDENTIFY or RESUME now, or held until the budget has room. */
static void
send_or_hold(struct discord_gw *g, struct discord_gw_actions *out, int op,
             int64_t now)
{
    int64_t at = budget_next(g, now);

    if (at == 0) {
        g->pending_op = 0;
        send_frame(g, out, op, now);
        return;
    }
    g->pending_op = op;
    act_arm(out, DGW_TIMER_SEND, at, "gateway send budget");
}

/* ---- connecting ---- */

static int64_t
backoff_ms(int n, double rnd)
{
    int64_t b = 1000;

    while (--n > 0 && b < DISCORD_GW_BACKOFF_MAX)
        b *= 2;
    if (b > DISCORD_GW_BACKOFF_MAX)
        b = DISCORD_GW_BACKOFF_MAX;
    /* equal jitter: never less than half, so a flapping peer is paced */
    return b / 2 + (int64_t)((double)(b / 2) * rnd);
}

static void
fetch(struct discord_gw *g, struct discord_gw_actions *out)
{
    act(out, DGW_ACT_FETCH_GATEWAY);
    g->st = DGW_STATE_GATEWAY;
}

static void
wait_until(struct discord_gw *g, struct discord_gw_actions *out, int64_t at,
           int then_fetch, const char *why)
{
    g->wait_fetch = then_fetch;
    g->st = DGW_STATE_WAITING;
    act_arm(out, DGW_TIMER_RECONNECT, at, why);
}

static void
connect_to(struct discord_gw *g, struct discord_gw_actions *out,
           const char *url)
{
    struct discord_gw_action *a;

    memcpy(g->connect_url, url, strlen(url) + 1);
    if ((a = act(out, DGW_ACT_CONNECT)) != NULL)
        a->url = g->connect_url;
    g->st = DGW_STATE_CONNECTING;
    g->ever_up = 0;
}

/* Connect now if every limit allows, else wait for the one that does not. */
static void
go_connect(struct discord_gw *g, struct discord_gw_actions *out, int64_t now)
{
    if (g->sess.session_id[0] != '\0') {
        /* a resume: no session_start_limit, no identify spacing */
        if (g->sess.resume_url[0] != '\0' && (g->fails < 3 || !g->have_gateway))
            connect_to(g, out, g->sess.resume_url);
        else if (g->have_gateway)
            connect_to(g, out, g->gateway_url);
        else
            fetch(g, out);
        return;
    }
    if (!g->have_gateway) {
        fetch(g, out);
        return;
    }
    if (g->start_remaining <= 0) {
        if (now < g->start_reset_at)
            wait_until(g, out, g->start_reset_at, 1,
                       "session_start_limit exhausted");
        else
            fetch(g, out); /* the limit has reset: learn the new one */
        return;
    }
    if (now < g->next_identify_at) {
        wait_until(g, out, g->next_identify_at, 0, "identify concurrency");
        return;
    }
    connect_to(g, out, g->gateway_url);
}

/* After a connection ended (not fatal, not our stop). */
static void
reconnect(struct discord_gw *g, struct discord_gw_actions *out, int64_t now,
          double rnd, enum gw_after after)
{
    g->stats.reconnects++;
    if (after == AFTER_IDENTIFY_LATER) {
        wait_until(g, out, now + 1000 + (int64_t)(4000.0 * rnd), 0,
                   "new identify after 1-5 s");
        return;
    }
    g->fails++;
    if (g->fails <= 1) {
        go_connect(g, out, now);
        return;
    }
    wait_until(g, out, now + backoff_ms(g->fails - 1, rnd), 0,
               "reconnect backoff");
}

/* ---- close codes ---- */

static const char *
fatal_reason(int code)
{
    switch (code) {
    case 4004:
        return "discord rejected the token (close 4004 authentication "
               "failed): check [discord] token";
    case 4010:
        return "discord: invalid shard (close 4010)";
    case 4011:
        return "discord: sharding required (close 4011): the bot is in too "
               "many guilds for one shard";
    case 4012:
        return "discord: invalid API version (close 4012)";
    case 4013:
        return "discord: invalid intents (close 4013)";
    case 4014:
        return "discord: disallowed intents (close 4014): enable the "
               "MESSAGE_CONTENT intent in the developer portal (Bot → "
               "Privileged Gateway Intents)";
    default:
        return NULL;
    }
}

static void
on_closed(struct discord_gw *g, struct discord_gw_actions *out, int code,
          int64_t now, double rnd)
{
    enum discord_gw_state was = g->st;
    const char *fatal;

    g->ack_pending = 0;
    g->pending_op = 0;
    act_disarm(out, DGW_TIMER_HEARTBEAT);
    act_disarm(out, DGW_TIMER_SEND);
    if (was == DGW_STATE_STOPPING) {
        g->st = DGW_STATE_STOPPED;
        return;
    }
    if (was == DGW_STATE_CLOSING) {
        reconnect(g, out, now, rnd, g->after);
        return;
    }
    if (was < DGW_STATE_CONNECTING || was > DGW_STATE_READY)
        return; /* no connection of ours */
    act_why(out, DGW_ACT_DOWN, "gateway closed");
    if ((fatal = fatal_reason(code)) != NULL) {
        act_disarm(out, DGW_TIMER_RECONNECT);
        act_why(out, DGW_ACT_FATAL, fatal);
        g->st = DGW_STATE_STOPPED;
        return;
    }
    if (code == 4007 || code == 4009) { /* bad sequence, session timed out */
        session_clear(g, out);
        reconnect(g, out, now, rnd, AFTER_IDENTIFY_LATER);
        return;
    }
    /* 4000-4003, 4005, 4008, 1006 and the rest: resume when possible */
    reconnect(g, out, now, rnd, AFTER_RECONNECT);
}

/* ---- frames ---- */

static void
on_hello(struct discord_gw *g, struct discord_gw_actions *out,
         const struct discord_frame *f, int64_t now, double rnd)
{
    if (g->st != DGW_STATE_HELLO)
        return;
    g->interval = f->heartbeat_interval;
    g->ack_pending = 0;
    /* the first heartbeat at interval × random[0,1): a fleet reconnecting
     * at once does not beat in step */
    act_arm(out, DGW_TIMER_HEARTBEAT,
            now + (int64_t)((double)g->interval * rnd), "first heartbeat");
    if (g->sess.session_id[0] != '\0') {
        g->st = DGW_STATE_RESUMING;
        send_or_hold(g, out, DISCORD_OP_RESUME, now);
    } else {
        g->st = DGW_STATE_IDENTIFYING;
        send_or_hold(g, out, DISCORD_OP_IDENTIFY, now);
    }
}

static void
on_dispatch(struct discord_gw *g, struct discord_gw_actions *out,
            const struct discord_frame *f)
{
    if (f->t == DISCORD_T_READY) {
        memcpy(g->sess.session_id, f->ready.session_id,
               sizeof(g->sess.session_id));
        memcpy(g->sess.resume_url, f->ready.resume_url,
               sizeof(g->sess.resume_url));
        memcpy(g->self_id, f->ready.user_id, sizeof(g->self_id));
        g->st = DGW_STATE_READY;
        g->fails = 0;
        g->ever_up = 1;
        act(out, DGW_ACT_UP);
        act(out, DGW_ACT_SAVE);
    } else if (f->t == DISCORD_T_RESUMED) {
        g->st = DGW_STATE_READY;
        g->fails = 0;
        g->ever_up = 1;
        act(out, DGW_ACT_UP);
    }
}

static void
on_frame(struct discord_gw *g, struct discord_gw_actions *out,
         const struct discord_frame *f, int64_t now, double rnd)
{
    /* frames after we decided to close belong to a dead connection */
    if (g->st < DGW_STATE_HELLO || g->st > DGW_STATE_READY)
        return;
    if (f->s >= 0 && f->op == DISCORD_OP_DISPATCH)
        g->sess.seq = f->s;
    switch (f->op) {
    case DISCORD_OP_HELLO:
        on_hello(g, out, f, now, rnd);
        break;
    case DISCORD_OP_HEARTBEAT_ACK:
        if (g->ack_pending)
            g->stats.latency_ms = now - g->last_beat_at;
        g->ack_pending = 0;
        g->stats.acks++;
        break;
    case DISCORD_OP_HEARTBEAT: /* the server asks for one now */
        if (g->st != DGW_STATE_HELLO)
            send_frame(g, out, DISCORD_OP_HEARTBEAT, now);
        break;
    case DISCORD_OP_RECONNECT:
        act_close(g, out, DISCORD_GW_CLOSE_RESUMABLE, AFTER_RECONNECT,
                  "op 7 reconnect");
        break;
    case DISCORD_OP_INVALID_SESSION:
        if (f->resumable && g->sess.session_id[0] != '\0') {
            act_close(g, out, DISCORD_GW_CLOSE_RESUMABLE, AFTER_RECONNECT,
                      "op 9 invalid session (resumable)");
        } else {
            session_clear(g, out);
            act_close(g, out, DISCORD_GW_CLOSE_RESUMABLE, AFTER_IDENTIFY_LATER,
                      "op 9 invalid session");
        }
        break;
    case DISCORD_OP_DISPATCH:
        if (g->st == DGW_STATE_HELLO)
            break;
        on_dispatch(g, out, f);
        break;
    default:
        break;
    }
}

/* ---- timers ---- */

static void
on_timer(struct discord_gw *g, struct discord_gw_actions *out,
         enum discord_gw_timer t, int64_t now)
{
    switch (t) {
    case DGW_TIMER_HEARTBEAT:
        if (g->st == DGW_STATE_HELLO) {
            act_close(g, out, DISCORD_GW_CLOSE_RESUMABLE, AFTER_RECONNECT,
                      "no HELLO");
            break;
        }
        if (g->st < DGW_STATE_IDENTIFYING || g->st > DGW_STATE_READY)
            break;
        if (g->ack_pending) {
            /* no ACK between two heartbeats: the connection is a zombie */
            g->stats.zombies++;
            act_close(g, out, DISCORD_GW_CLOSE_RESUMABLE, AFTER_RECONNECT,
                      "zombie connection (no heartbeat ACK)");
            break;
        }
        send_frame(g, out, DISCORD_OP_HEARTBEAT, now);
        act_arm(out, DGW_TIMER_HEARTBEAT, now + g->interval, "heartbeat");
        break;
    case DGW_TIMER_RECONNECT:
        if (g->st != DGW_STATE_WAITING)
            break;
        if (g->wait_fetch)
            fetch(g, out);
        else
            go_connect(g, out, now);
        break;
    case DGW_TIMER_SEND:
        if ((g->st == DGW_STATE_IDENTIFYING || g->st == DGW_STATE_RESUMING) &&
            g->pending_op != 0)
            send_or_hold(g, out, g->pending_op, now);
        break;
    default:
        break;
    }
}

void
discord_gw_feed(struct discord_gw *g, const struct discord_gw_input *in,
                int64_t now_ms, double rnd, struct discord_gw_actions *out)
{
    out->n = 0;
    if (rnd < 0 || rnd >= 1)
        rnd = 0;
    if (g->st == DGW_STATE_STOPPED)
        return;
    switch (in->kind) {
    case DGW_IN_START:
        if (g->st != DGW_STATE_IDLE)
            break;
        go_connect(g, out, now_ms);
        break;
    case DGW_IN_GATEWAY:
        if (g->st != DGW_STATE_GATEWAY || in->gateway == NULL)
            break;
        memcpy(g->gateway_url, in->gateway->url, sizeof(g->gateway_url));
        g->have_gateway = 1;
        g->fetch_fails = 0;
        g->start_remaining = in->gateway->remaining;
        g->start_reset_at = now_ms + in->gateway->reset_after_ms;
        g->max_concurrency =
            in->gateway->max_concurrency > 0 ? in->gateway->max_concurrency : 1;
        go_connect(g, out, now_ms);
        break;
    case DGW_IN_GATEWAY_FAIL:
        if (g->st != DGW_STATE_GATEWAY)
            break;
        g->fetch_fails++;
        wait_until(g, out, now_ms + backoff_ms(g->fetch_fails, rnd), 1,
                   "gateway/bot failed");
        break;
    case DGW_IN_OPEN:
        if (g->st != DGW_STATE_CONNECTING)
            break;
        g->st = DGW_STATE_HELLO;
        act_arm(out, DGW_TIMER_HEARTBEAT, now_ms + DISCORD_GW_HELLO_TIMEOUT,
                "HELLO timeout");
        break;
    case DGW_IN_CLOSED:
        on_closed(g, out, in->code, now_ms, rnd);
        break;
    case DGW_IN_FRAME:
        if (in->frame != NULL)
            on_frame(g, out, in->frame, now_ms, rnd);
        break;
    case DGW_IN_TIMER:
        on_timer(g, out, in->timer, now_ms);
        break;
    case DGW_IN_RESYNC:
        if (g->st >= DGW_STATE_HELLO && g->st <= DGW_STATE_READY)
            act_close(g, out, DISCORD_GW_CLOSE_RESUMABLE, AFTER_RECONNECT,
                      "an event could not be stored: resume to replay it");
        break;
    case DGW_IN_STOP:
        for (int t = 0; t < DGW_TIMER_COUNT; t++)
            act_disarm(out, (enum discord_gw_timer)t);
        act(out, DGW_ACT_SAVE);
        if (g->st >= DGW_STATE_CONNECTING && g->st <= DGW_STATE_READY) {
            struct discord_gw_action *a = act(out, DGW_ACT_CLOSE);

            if (a != NULL) {
                a->code = DISCORD_GW_CLOSE_RESUMABLE;
                a->why = "shutting down (resumable)";
            }
            act_why(out, DGW_ACT_DOWN, "stopping");
            g->st = DGW_STATE_STOPPING;
        } else if (g->st == DGW_STATE_CLOSING) {
            g->st = DGW_STATE_STOPPING; /* its `closed` ends it */
        } else if (g->st != DGW_STATE_STOPPING) {
            act_why(out, DGW_ACT_DOWN, "stopping");
            g->st = DGW_STATE_STOPPED;
        }
        break;
    }
}
