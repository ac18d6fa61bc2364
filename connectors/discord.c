/* discord: the Discord connector — gateway in, REST replies out. */
#include "connectors/discord.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "connectors/discord_codec.h"
#include "connectors/discord_format.h"
#include "connectors/discord_gw.h"
#include "connectors/discord_rest.h"
#include "core/core.h"
#include "core/event.h"
#include "core/log.h"

#define DC_QUEUE_MAX 4096 /* REST work items waiting */
#define DC_TYPING_MS 8000 /* Discord's typing lasts 10 s */
#define DC_TEXT_MAX 2000  /* core splits in bytes: ≤ 2000 characters */
#define DC_REST_TIMEOUT 30000
#define DC_ATTEMPTS_MAX 5 /* 5xx/network tries before core's retry */
#define DC_CORE_RETRY_MS 30000
#define DC_URL_MAX (DISCORD_URL_MAX + 256)

/* Routes for discord_rest: Discord gives each its own bucket (an edit and
 * a delete do not eat the budget of new messages, nor the other way) */
#define ROUTE_MESSAGES "POST /channels/messages"
#define ROUTE_EDIT "PATCH /channels/messages"
#define ROUTE_DELETE "DELETE /channels/messages"
#define ROUTE_TYPING "POST /channels/typing"
#define ROUTE_REACTIONS "PUT /channels/messages/reactions"
#define ROUTE_DM "POST /users/@me/channels" /* no major parameter */
/* Slash commands (docs/discord.md "Slash commands"): the interaction's
 * routes take its id as the major parameter (Discord keys them by the
 * interaction / webhook token); registration the application id */
#define ROUTE_IA_CALLBACK "POST /interactions/callback"
#define ROUTE_WH_ORIGINAL "PATCH /webhooks/messages/@original"
#define ROUTE_WH_FOLLOWUP "POST /webhooks"
#define ROUTE_WH_EDIT "PATCH /webhooks/messages"
#define ROUTE_WH_DELETE "DELETE /webhooks/messages"
#define ROUTE_COMMANDS "PUT /applications/commands"

/*
 * An interaction's token lets us answer it for 15 minutes; it lives in
 * memory only (never stored, never logged).  After DC_IA_TTL_MS (the 15
 * minutes less a margin for the request on its way) or a restart,
 * answers go to the channel as ordinary messages.
 */
#define DC_IAS_MAX 256
#define DC_IA_MSGS 16 /* our messages per interaction edited through it */
#define DC_IA_TTL_MS (15 * 60 * 1000 - 30 * 1000)

/*
 * A chat "@<user id>" is that user's DM (docs/discord.md "Admin DMs"):
 * the first send opens it, and its channel id is kept here and in
 * connector_state ('discord', "dm:<user>").  Channel ids are snowflakes
 * (digits only): no real channel looks like this.
 */
#define DC_DM_MARK '@'
#define DC_DMS_MAX 64 /* users whose DM channel is remembered in memory */
#define DC_DM_KEY_MAX (DISCORD_SNOWFLAKE_MAX + 8)

/* DC_MSG, DC_EDIT and DC_DELETE are core's sends (one outcome each);
 * typing and reactions are best effort */
enum dc_kind {
    DC_MSG = 0,
    DC_EDIT,
    DC_DELETE,
    DC_TYPING,
    DC_REACT,
    DC_ACK,     /* an interaction's deferred callback (type 5) */
    DC_REGISTER /* PUT the slash command */
};

/* One REST request to make: queued until its bucket lets it go. */
struct dc_item {
    struct dc_item *next;
    struct discord *d;
    enum dc_kind kind;
    uint64_t send_id;
    char chat[DISCORD_SNOWFLAKE_MAX];
    char reply_to[DISCORD_SNOWFLAKE_MAX];
    char target[DISCORD_SNOWFLAKE_MAX]; /* react, edit, delete: ours */
    const char *emoji;                  /* DC_REACT: URL-encoded, static */
    char nonce[DISCORD_NONCE_MAX + 1];
    char *text;
    int feedback;
    int bad_target;    /* edit/delete of an id that is no snowflake */
    int controls_only; /* edit: the text is shown, only the reactions */
    int attempts;
    /* chat was "@user": dm_user is the user; dm_open while the DM must
     * still be opened (the item is then that request), after which chat
     * is the DM channel's id.  bad_dm: "@" and no user id. */
    char dm_user[DISCORD_SNOWFLAKE_MAX];
    int dm_open, bad_dm;
    /* via an interaction's webhook (its id; "" = the channel's routes):
     * ia_original for PATCH @original, else a follow-up */
    char ia[DISCORD_SNOWFLAKE_MAX];
    int ia_original;
    int64_t not_before;
    int64_t since_ms;     /* queued at (typing: stale after typing_ms) */
    int held;             /* waited for a slot on the wire at least once */
    struct http_req *req; /* in flight */
};

/* A slash command being answered: what its webhook needs. */
struct dc_ia {
    char id[DISCORD_SNOWFLAKE_MAX]; /* "" = free */
    char app[DISCORD_SNOWFLAKE_MAX];
    char chat[DISCORD_SNOWFLAKE_MAX];
    char token[DISCORD_IA_TOKEN_MAX]; /* a secret: zeroed when forgotten */
    int64_t at;                       /* received (monotonic ms) */
    int orig_gone;                    /* @original deleted: follow-ups */
    int acked; /* the callback answered (or failed): the webhook may go */
    char msgs[DC_IA_MSGS][DISCORD_SNOWFLAKE_MAX]; /* ours, via the webhook */
    size_t nmsgs;
};

/* A user's DM channel, learnt from POST /users/@me/channels. */
struct dc_dm {
    char user[DISCORD_SNOWFLAKE_MAX];
    char channel[DISCORD_SNOWFLAKE_MAX];
};

struct discord {
    uv_loop_t *loop;
    struct http *http;
    struct ws_ctx *ws;
    struct core *core;
    struct store *st;
    /* copied at discord_new: a SIGHUP frees the config it came from; a new
     * token or api_base needs a restart */
    char *token;
    char *api_base;
    void (*fatal)(void *arg, const char *why);
    void *fatal_arg;
    struct discord_gw *gw;
    struct discord_rest *rest;
    uv_timer_t timers[DGW_TIMER_COUNT];
    uv_timer_t pump;
    int handles; /* open uv handles; the struct goes with the last */
    struct ws_conn *conn;
    struct http_req *gw_req;
    struct dc_item *head, *tail;
    size_t queued;
    int started, stopped, freeing, registered, fatal_done, up;
    char reason[160];
    char auth[DISCORD_URL_MAX]; /* "Authorization: Bot …": a secret */
    char agent[128];
    int gw_send_limit;
    int64_t gw_send_window, typing_ms;
    size_t sends_max, misc_max; /* on the wire; tests may lower them */
    int64_t saved_seq;
    struct dc_dm dms[DC_DMS_MAX];
    size_t ndms, dm_next; /* in use; the next to replace when full */
    struct dc_ia *ias;    /* DC_IAS_MAX */
    size_t ia_next;       /* the next to replace when full */
    int64_t ia_ttl;
    char app_id[DISCORD_SNOWFLAKE_MAX]; /* READY's application.id */
    int cmds_queued;                    /* registered once per process */
    void (*tap)(void *arg, uint64_t send_id, const struct send_result *r);
    void *tap_arg;
    struct discord_status stat;
};

static void dc_feed(struct discord *d, const struct discord_gw_input *in);
static void dc_pump_soon(struct discord *d, int64_t ms);
static void dc_fatal(struct discord *d, const char *why);
static void ia_accepted(struct discord *d, const struct discord_interaction *x);
static void dc_register_commands(struct discord *d);

static int64_t
now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

static double
rnd01(void)
{
    return (double)randombytes_uniform(1u << 30) / (double)(1u << 30);
}

static const char *
token(const struct discord *d)
{
    return d->token != NULL ? d->token : "";
}

/* ---- persistence ---- */

static void
dc_save(struct discord *d)
{
    struct discord_gw_session s;
    char seq[32];

    discord_gw_session(d->gw, &s);
    if (s.session_id[0] == '\0') {
        store_kv_del(d->st, "discord", "session_id");
        store_kv_del(d->st, "discord", "resume_url");
        store_kv_del(d->st, "discord", "seq");
        d->saved_seq = -1;
        /* self_id stays: it is who we are, not the session */
        return;
    }
    snprintf(seq, sizeof(seq), "%" PRId64, s.seq);
    if (store_kv_set(d->st, "discord", "session_id", s.session_id) < 0 ||
        store_kv_set(d->st, "discord", "resume_url", s.resume_url) < 0 ||
        store_kv_set(d->st, "discord", "seq", seq) < 0 ||
        (s.self_id[0] != '\0' &&
         store_kv_set(d->st, "discord", "self_id", s.self_id) < 0))
        log_warnx("discord cannot save the session (a restart will "
                  "identify)");
    d->saved_seq = s.seq;
}

static void
dc_save_seq(struct discord *d)
{
    int64_t seq = discord_gw_seq(d->gw);
    char buf[32];

    if (seq == d->saved_seq || seq < 0)
        return;
    snprintf(buf, sizeof(buf), "%" PRId64, seq);
    if (store_kv_set(d->st, "discord", "seq", buf) == 0)
        d->saved_seq = seq;
}

static void
dc_restore(struct discord *d)
{
    struct discord_gw_session s;
    char seq[32];

    memset(&s, 0, sizeof(s));
    s.seq = -1;
    /* a resumed session sees no READY: the application id from the last */
    if (store_kv_get(d->st, "discord", "application_id", d->app_id,
                     sizeof(d->app_id)) != 1)
        d->app_id[0] = '\0';
    if (store_kv_get(d->st, "discord", "session_id", s.session_id,
                     sizeof(s.session_id)) != 1)
        return;
    if (store_kv_get(d->st, "discord", "resume_url", s.resume_url,
                     sizeof(s.resume_url)) != 1)
        s.resume_url[0] = '\0';
    if (store_kv_get(d->st, "discord", "seq", seq, sizeof(seq)) == 1)
        s.seq = strtoll(seq, NULL, 10);
    if (store_kv_get(d->st, "discord", "self_id", s.self_id,
                     sizeof(s.self_id)) != 1)
        s.self_id[0] = '\0';
    discord_gw_restore(d->gw, &s);
    d->saved_seq = s.seq;
    log_info("discord session restored seq=%" PRId64 " (resume)", s.seq);
}

/* ---- /gateway/bot ---- */

static void
gw_fetched(const struct http_response *r, void *arg)
{
    struct discord *d = arg;
    struct discord_gateway_bot gb;
    struct discord_gw_input in;
    const char *why = NULL;

    d->gw_req = NULL;
    memset(&in, 0, sizeof(in));
    if (r->error == HTTP_OK && r->status == 200 &&
        discord_codec_gateway_bot(r->body, r->body_len, &gb, &why) == 0) {
        log_info("discord gateway/bot url=%s session_start_remaining=%" PRId64
                 " max_concurrency=%d",
                 gb.url, gb.remaining, gb.max_concurrency);
        in.kind = DGW_IN_GATEWAY;
        in.gateway = &gb;
        dc_feed(d, &in);
        return;
    }
    if (r->error == HTTP_OK && r->status == 401) {
        struct discord_gw_input stop = {.kind = DGW_IN_STOP};

        dc_feed(d, &stop); /* no gateway without a token: stop there */
        dc_fatal(d, "discord rejected the token (401 from GET /gateway/bot): "
                    "check [discord] token");
        return;
    }
    log_warnx("discord gateway/bot failed status=%ld error=%s%s%s", r->status,
              http_error_name(r->error), why ? " why=" : "", why ? why : "");
    in.kind = DGW_IN_GATEWAY_FAIL;
    dc_feed(d, &in);
}

static void
gw_fetch(struct discord *d)
{
    const char *hdrs[] = {d->auth, d->agent, NULL};
    struct http_request rq;
    char url[DC_URL_MAX];

    snprintf(url, sizeof(url), "%s/gateway/bot", d->api_base);
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = url;
    rq.headers = hdrs;
    rq.timeout_ms = DC_REST_TIMEOUT;
    if ((d->gw_req = http_send(d->http, &rq, gw_fetched, d)) == NULL) {
        struct discord_gw_input in = {.kind = DGW_IN_GATEWAY_FAIL};

        dc_feed(d, &in);
    }
}

/* ---- the websocket ---- */

static void
ws_on_open(struct ws_conn *c, void *arg)
{
    struct discord *d = arg;
    struct discord_gw_input in = {.kind = DGW_IN_OPEN};

    (void)c;
    dc_feed(d, &in);
}

static void
ws_on_text(struct ws_conn *c, const char *buf, size_t len, void *arg)
{
    struct discord *d = arg;
    struct discord_gw_input in;
    struct discord_frame f;
    struct event ev;
    enum discord_gw_state st;
    const char *why = NULL;

    (void)c;
    if (d->stopped)
        return;
    if (discord_codec_frame(buf, len, discord_gw_self_id(d->gw), &f, &why) <
        0) {
        log_warnx("discord bad gateway frame len=%zu why=%s", len, why);
        return;
    }
    st = discord_gw_state(d->gw);
    memset(&in, 0, sizeof(in));
    if (f.t == DISCORD_T_READY && f.ready.application_id[0] != '\0' &&
        strcmp(f.ready.application_id, d->app_id) != 0) {
        memcpy(d->app_id, f.ready.application_id, sizeof(d->app_id));
        if (store_kv_set(d->st, "discord", "application_id", d->app_id) < 0)
            log_warnx("discord cannot save the application id");
    }
    if (f.t == DISCORD_T_INTERACTION_CREATE && f.ia.skip)
        log_debug("discord interaction ignored (not /%s, or malformed)",
                  DISCORD_SLASH_NAME);
    if (f.op == DISCORD_OP_DISPATCH &&
        (st == DGW_STATE_RESUMING || st == DGW_STATE_READY) &&
        discord_frame_event(&f, &ev) == 0) {
        if (ev.kind == EVENT_VOTE)
            d->stat.votes++;
        else
            d->stat.events++;
        if (core_accept(d->core, &ev) < 0) {
            /* not durable: do not move the sequence past it; a resume
             * from the one before makes Discord send it again */
            d->stat.accept_failures++;
            log_warnx("discord event not stored seq=%" PRId64 ": resuming",
                      f.s);
            in.kind = DGW_IN_RESYNC;
            dc_feed(d, &in);
            discord_frame_release(&f);
            return;
        }
        /* durable: now the interaction may be acknowledged */
        if (f.t == DISCORD_T_INTERACTION_CREATE)
            ia_accepted(d, &f.ia);
    }
    in.kind = DGW_IN_FRAME;
    in.frame = &f;
    dc_feed(d, &in);
    if (f.op == DISCORD_OP_DISPATCH && !d->stopped)
        dc_save_seq(d);
    discord_frame_release(&f);
}

static void
ws_on_closed(struct ws_conn *c, int code, const char *reason, void *arg)
{
    struct discord *d = arg;
    struct discord_gw_input in = {.kind = DGW_IN_CLOSED, .code = code};

    (void)c;
    d->conn = NULL;
    log_info("discord gateway closed code=%d reason=%s", code, reason);
    dc_feed(d, &in);
}

static void
ws_open_url(struct discord *d, const char *url)
{
    static const struct ws_conn_ops ops = {ws_on_open, ws_on_text,
                                           ws_on_closed};
    char full[DC_URL_MAX];

    snprintf(full, sizeof(full), "%s%sv=10&encoding=json", url,
             strchr(url, '?') ? "&" : "?");
    if ((d->conn = ws_connect(d->ws, full, &ops, d)) == NULL) {
        struct discord_gw_input in = {.kind = DGW_IN_CLOSED, .code = 1006};

        log_warnx("discord cannot connect url=%s", url);
        dc_feed(d, &in);
        return;
    }
    ws_set_frame_max(d->conn, DISCORD_GW_SEND_MAX);
    ws_set_msg_max(d->conn, DISCORD_BODY_MAX);
    log_info("discord connecting url=%s", url);
}

static void
ws_send_op(struct discord *d, int op, int64_t seq)
{
    struct discord_gw_session s;
    char buf[DISCORD_GW_SEND_MAX + 1];
    int n = -1;

    if (d->conn == NULL)
        return;
    if (op == DISCORD_OP_HEARTBEAT) {
        n = discord_codec_heartbeat(seq, buf, sizeof(buf));
    } else if (op == DISCORD_OP_IDENTIFY) {
        n = discord_codec_identify(token(d), DISCORD_INTENTS, buf, sizeof(buf));
        d->stat.identifies++;
        log_info("discord identify intents=%d", DISCORD_INTENTS);
    } else if (op == DISCORD_OP_RESUME) {
        discord_gw_session(d->gw, &s);
        n = discord_codec_resume(token(d), s.session_id, seq, buf, sizeof(buf));
        d->stat.resumes++;
        log_info("discord resume seq=%" PRId64, seq);
    }
    if (op == DISCORD_OP_HEARTBEAT)
        d->stat.heartbeats++;
    if (n < 0 || ws_send_text(d->conn, buf, (size_t)n) < 0)
        log_warnx("discord cannot send op=%d", op);
    sodium_memzero(buf, sizeof(buf)); /* identify and resume carry the token */
}

/* ---- timers and the machine ---- */

static void
timer_fired(uv_timer_t *t)
{
    struct discord *d = t->data;
    struct discord_gw_input in = {.kind = DGW_IN_TIMER};

    in.timer = (enum discord_gw_timer)(t - d->timers);
    dc_feed(d, &in);
}

static void
dc_fatal(struct discord *d, const char *why)
{
    d->up = 0;
    snprintf(d->reason, sizeof(d->reason), "%s", why);
    log_error("discord fatal: %s", why);
    if (!d->fatal_done && d->fatal != NULL) {
        d->fatal_done = 1;
        d->fatal(d->fatal_arg, why);
    }
}

static void
dc_apply(struct discord *d, const struct discord_gw_actions *acts)
{
    for (size_t i = 0; i < acts->n; i++) {
        const struct discord_gw_action *a = &acts->v[i];
        int64_t delay;

        switch (a->kind) {
        case DGW_ACT_FETCH_GATEWAY:
            gw_fetch(d);
            break;
        case DGW_ACT_CONNECT:
            ws_open_url(d, a->url);
            break;
        case DGW_ACT_SEND:
            ws_send_op(d, a->op, a->seq);
            break;
        case DGW_ACT_CLOSE:
            log_info("discord closing code=%d why=%s", a->code,
                     a->why ? a->why : "");
            if (a->why != NULL && strstr(a->why, "zombie") != NULL)
                d->stat.zombies++;
            if (d->conn != NULL)
                ws_close(d->conn, a->code, "parley");
            break;
        case DGW_ACT_ARM:
            delay = a->at_ms - now_ms();
            if (delay < 0)
                delay = 0;
            uv_timer_start(&d->timers[a->timer], timer_fired, (uint64_t)delay,
                           0);
            if (a->timer == DGW_TIMER_RECONNECT || a->timer == DGW_TIMER_SEND)
                log_info("discord waiting ms=%" PRId64 " why=%s", delay,
                         a->why ? a->why : "");
            break;
        case DGW_ACT_DISARM:
            uv_timer_stop(&d->timers[a->timer]);
            break;
        case DGW_ACT_UP:
            d->up = 1;
            d->reason[0] = '\0';
            log_info("discord up self=%s state=%s", discord_gw_self_id(d->gw),
                     discord_gw_state_name(discord_gw_state(d->gw)));
            dc_register_commands(d);
            break;
        case DGW_ACT_DOWN:
            d->up = 0;
            if (!d->fatal_done)
                snprintf(d->reason, sizeof(d->reason), "%s",
                         a->why ? a->why : "down");
            break;
        case DGW_ACT_SAVE:
            dc_save(d);
            break;
        case DGW_ACT_FATAL:
            dc_fatal(d, a->why ? a->why : "fatal gateway close");
            break;
        }
    }
}

static void
dc_feed(struct discord *d, const struct discord_gw_input *in)
{
    struct discord_gw_actions acts;

    discord_gw_feed(d->gw, in, now_ms(), rnd01(), &acts);
    dc_apply(d, &acts);
}

/* ---- REST: the queue ---- */

static void
item_unlink(struct discord *d, struct dc_item *it)
{
    struct dc_item **pp = &d->head, *prev = NULL;

    for (; *pp != NULL; prev = *pp, pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            if (d->tail == it)
                d->tail = prev;
            d->queued--;
            return;
        }
}

static void
item_free(struct dc_item *it)
{
    if (it == NULL)
        return;
    free(it->text);
    free(it);
}

static struct dc_item *
item_new(struct discord *d, enum dc_kind kind, const char *chat)
{
    struct dc_item *it;

    if (d->stopped || d->queued >= DC_QUEUE_MAX || chat == NULL ||
        strlen(chat) >= DISCORD_SNOWFLAKE_MAX)
        return NULL;
    if ((it = calloc(1, sizeof(*it))) == NULL)
        return NULL;
    it->d = d;
    it->kind = kind;
    it->since_ms = now_ms();
    memcpy(it->chat, chat, strlen(chat) + 1);
    if (d->tail != NULL)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    d->queued++;
    return it;
}

static const char *
item_route(const struct dc_item *it)
{
    if (it->dm_open)
        return ROUTE_DM;
    if (it->kind == DC_ACK)
        return ROUTE_IA_CALLBACK;
    if (it->kind == DC_REGISTER)
        return ROUTE_COMMANDS;
    if (it->ia[0] != '\0' && it->kind == DC_MSG)
        return it->ia_original ? ROUTE_WH_ORIGINAL : ROUTE_WH_FOLLOWUP;
    if (it->ia[0] != '\0' && it->kind == DC_EDIT)
        return ROUTE_WH_EDIT;
    if (it->ia[0] != '\0' && it->kind == DC_DELETE)
        return ROUTE_WH_DELETE;
    switch (it->kind) {
    case DC_MSG:
        return ROUTE_MESSAGES;
    case DC_EDIT:
        return ROUTE_EDIT;
    case DC_DELETE:
        return ROUTE_DELETE;
    case DC_TYPING:
        return ROUTE_TYPING;
    default:
        return ROUTE_REACTIONS;
    }
}

/* The route's major parameter: the channel, none for opening a DM or
 * registering, the interaction for its callback and webhook. */
static const char *
item_major(const struct dc_item *it)
{
    if (it->dm_open || it->kind == DC_REGISTER)
        return "";
    return it->ia[0] != '\0' ? it->ia : it->chat;
}

/* 1 for core's sends: they report exactly one outcome */
static int
item_is_send(const struct dc_item *it)
{
    return it->kind == DC_MSG || it->kind == DC_EDIT || it->kind == DC_DELETE;
}

/* Whether a slot on the wire is free for it (sends and the other calls,
 * typing and reactions, each have their own). */
static int
slot_free(const struct discord *d, const struct dc_item *it)
{
    if (item_is_send(it))
        return d->stat.sends_inflight < d->sends_max;
    /* an acknowledgement is due within 3 s: it waits for no reaction */
    return it->kind == DC_ACK || d->stat.misc_inflight < d->misc_max;
}

static void
slot_take(struct discord *d, const struct dc_item *it)
{
    if (item_is_send(it)) {
        if (++d->stat.sends_inflight > d->stat.sends_inflight_max)
            d->stat.sends_inflight_max = d->stat.sends_inflight;
    } else if (++d->stat.misc_inflight > d->stat.misc_inflight_max) {
        d->stat.misc_inflight_max = d->stat.misc_inflight;
    }
}

static void
slot_give(struct discord *d, const struct dc_item *it)
{
    if (item_is_send(it))
        d->stat.sends_inflight--;
    else
        d->stat.misc_inflight--;
}

/* A snowflake: 1 to 20 digits (it goes into a URL path). */
static int
is_snowflake(const char *s)
{
    size_t n = s != NULL ? strspn(s, "0123456789") : 0;

    return n > 0 && n < DISCORD_SNOWFLAKE_MAX && s[n] == '\0';
}

/* ---- user DMs: "@<user>" → the DM channel ---- */

static struct dc_dm *
dm_find(struct discord *d, const char *user)
{
    for (size_t i = 0; i < d->ndms; i++)
        if (strcmp(d->dms[i].user, user) == 0)
            return &d->dms[i];
    return NULL;
}

static void
dm_key(const char *user, char *buf, size_t cap)
{
    snprintf(buf, cap, "dm:%s", user);
}

/* Remembers user's DM channel (both snowflakes); save: in the store too. */
static void
dm_remember(struct discord *d, const char *user, const char *channel, int save)
{
    struct dc_dm *m = dm_find(d, user);
    char key[DC_DM_KEY_MAX];

    if (m == NULL) {
        if (d->ndms < DC_DMS_MAX) {
            m = &d->dms[d->ndms++];
        } else {
            m = &d->dms[d->dm_next];
            d->dm_next = (d->dm_next + 1) % DC_DMS_MAX;
        }
        memcpy(m->user, user, strlen(user) + 1);
    }
    memcpy(m->channel, channel, strlen(channel) + 1);
    dm_key(user, key, sizeof(key));
    if (save && store_kv_set(d->st, "discord", key, channel) < 0)
        log_warnx("discord cannot save the DM channel of user=%s (it is "
                  "opened again after a restart)",
                  user);
}

/* user's DM channel is gone (404): the next send opens it again. */
static void
dm_forget(struct discord *d, const char *user)
{
    struct dc_dm *m = dm_find(d, user);
    char key[DC_DM_KEY_MAX];

    if (m != NULL) {
        *m = d->dms[--d->ndms];
        if (d->dm_next >= d->ndms)
            d->dm_next = 0;
    }
    dm_key(user, key, sizeof(key));
    store_kv_del(d->st, "discord", key);
    log_info("discord DM channel of user=%s forgotten", user);
}

/* user's DM channel, from memory or the store: 1 found (into out), 0. */
static int
dm_lookup(struct discord *d, const char *user, char *out, size_t cap)
{
    struct dc_dm *m = dm_find(d, user);
    char key[DC_DM_KEY_MAX], ch[DISCORD_SNOWFLAKE_MAX];

    if (m == NULL) {
        dm_key(user, key, sizeof(key));
        if (store_kv_get(d->st, "discord", key, ch, sizeof(ch)) != 1 ||
            !is_snowflake(ch))
            return 0;
        dm_remember(d, user, ch, 0);
        m = dm_find(d, user);
    }
    snprintf(out, cap, "%s", m->channel);
    return 1;
}

/* Every queued send to user that waits for its DM goes to channel now. */
static void
dm_resolve(struct discord *d, const char *user, const char *channel)
{
    for (struct dc_item *x = d->head; x != NULL; x = x->next)
        if (x->dm_open && x->req == NULL && strcmp(x->dm_user, user) == 0) {
            memcpy(x->chat, channel, strlen(channel) + 1);
            x->dm_open = 0;
            x->attempts = 0; /* the message is a request of its own */
            x->not_before = 0;
        }
}

/* 1 when an earlier item opens the same DM: this one waits for it. */
static int
dm_waits(const struct discord *d, const struct dc_item *it)
{
    for (const struct dc_item *x = d->head; x != NULL && x != it; x = x->next)
        if (x->dm_open && strcmp(x->dm_user, it->dm_user) == 0)
            return 1;
    return 0;
}

/* A send to "@user": to the DM channel if known, else open it first. */
static void
dm_target(struct discord *d, struct dc_item *it)
{
    const char *user = it->chat + 1;
    char ch[DISCORD_SNOWFLAKE_MAX];

    if (!is_snowflake(user)) {
        it->bad_dm = 1; /* reported from the pump, not from here */
        return;
    }
    memcpy(it->dm_user, user, strlen(user) + 1);
    if (dm_lookup(d, user, ch, sizeof(ch)))
        memcpy(it->chat, ch, strlen(ch) + 1);
    else
        it->dm_open = 1;
}

/*
 * A typing indicator that waited for a slot is worth sending only while
 * its channel still waits: not after the refresh interval (core asked
 * again by then), nor once a send to the channel is queued or on its way
 * (the indicator would outlive the answer).
 */
static int
typing_stale(const struct discord *d, const struct dc_item *it, int64_t now)
{
    int64_t ttl = d->typing_ms > 0 ? d->typing_ms : DC_TYPING_MS;

    if (now - it->since_ms > ttl)
        return 1;
    for (const struct dc_item *x = d->head; x != NULL; x = x->next)
        if (item_is_send(x) && strcmp(x->chat, it->chat) == 0)
            return 1;
    return 0;
}

static enum discord_verb
item_verb(const struct dc_item *it)
{
    if (it->dm_open)
        return DISCORD_CREATE;
    if (it->kind == DC_MSG && it->ia[0] != '\0' && it->ia_original)
        return DISCORD_EDIT; /* PATCH @original */
    return it->kind == DC_EDIT     ? DISCORD_EDIT
           : it->kind == DC_DELETE ? DISCORD_DELETE
                                   : DISCORD_CREATE;
}

static void
send_result(struct discord *d, struct dc_item *it, enum send_status st,
            const char *mid, int64_t retry_ms, const char *cls)
{
    struct send_result r;

    memset(&r, 0, sizeof(r));
    r.status = st;
    r.message_id = mid ? mid : "";
    r.retry_after_ms = retry_ms;
    r.error_class = cls;
    if (d->tap != NULL)
        d->tap(d->tap_arg, it->send_id, &r);
    core_send_done(d->core, it->send_id, &r);
}

static void
queue_reaction(struct discord *d, const char *chat, const char *mid,
               const char *emoji)
{
    struct dc_item *it;

    if (strlen(mid) >= DISCORD_SNOWFLAKE_MAX ||
        (it = item_new(d, DC_REACT, chat)) == NULL)
        return;
    memcpy(it->target, mid, strlen(mid) + 1);
    it->emoji = emoji;
}

/* ---- slash commands: interactions ---- */

static struct dc_ia *
ia_find(struct discord *d, const char *id)
{
    if (d->ias == NULL || id == NULL || id[0] == '\0')
        return NULL;
    for (size_t i = 0; i < DC_IAS_MAX; i++)
        if (strcmp(d->ias[i].id, id) == 0)
            return &d->ias[i];
    return NULL;
}

static int
ia_live(const struct discord *d, const struct dc_ia *x, int64_t now)
{
    return x != NULL && now - x->at < d->ia_ttl;
}

static void
ia_forget(struct dc_ia *x)
{
    sodium_memzero(x, sizeof(*x)); /* the token with it */
}

/* The interaction one of our messages was posted through, or NULL. */
static struct dc_ia *
ia_of_message(struct discord *d, const char *mid)
{
    for (size_t i = 0; d->ias != NULL && i < DC_IAS_MAX; i++)
        for (size_t k = 0; d->ias[i].id[0] && k < d->ias[i].nmsgs; k++)
            if (strcmp(d->ias[i].msgs[k], mid) == 0)
                return &d->ias[i];
    return NULL;
}

static void
ia_add_msg(struct dc_ia *x, const char *mid)
{
    for (size_t k = 0; k < x->nmsgs; k++)
        if (strcmp(x->msgs[k], mid) == 0)
            return;
    if (x->nmsgs < DC_IA_MSGS && strlen(mid) < DISCORD_SNOWFLAKE_MAX)
        memcpy(x->msgs[x->nmsgs++], mid, strlen(mid) + 1);
}

/*
 * core_accept made the slash command durable (or dropped it on purpose):
 * remember its token and acknowledge it (deferred: Discord shows
 * "thinking…" until the answer edits @original).  A redelivery (a resume
 * replaying it) is known already: acknowledged once.
 */
static void
ia_accepted(struct discord *d, const struct discord_interaction *x)
{
    struct dc_ia *e;
    struct dc_item *it;
    int64_t now = now_ms();

    d->stat.interactions++;
    if (ia_find(d, x->id) != NULL) {
        log_info("discord interaction %s redelivered: acknowledged already",
                 x->id);
        return;
    }
    e = &d->ias[d->ia_next];
    for (size_t i = 0; i < DC_IAS_MAX; i++)
        if (d->ias[i].id[0] == '\0' || !ia_live(d, &d->ias[i], now)) {
            e = &d->ias[i];
            break;
        }
    if (e == &d->ias[d->ia_next])
        d->ia_next = (d->ia_next + 1) % DC_IAS_MAX;
    ia_forget(e);
    memcpy(e->id, x->id, sizeof(e->id));
    memcpy(e->app, x->application_id, sizeof(e->app));
    memcpy(e->chat, x->channel_id, sizeof(e->chat));
    memcpy(e->token, x->token, sizeof(e->token));
    e->at = now;
    if ((it = item_new(d, DC_ACK, x->channel_id)) == NULL) {
        log_warnx("discord interaction %s not acknowledged: queue full", x->id);
        e->acked = 1;
        return;
    }
    memcpy(it->ia, x->id, sizeof(it->ia));
    log_info("discord interaction %s channel=%s user=%s command=%s", x->id,
             x->channel_id, x->user_id, x->command[0] ? x->command : "-");
    dc_pump_soon(d, 0);
}

/*
 * Before a request on an interaction's webhook goes: is the interaction
 * still ours to answer?  If not (15 minutes passed, a restart forgot the
 * token, Discord said it is gone), the answer goes to the channel as an
 * ordinary message (no reply: the command left no message to reply to),
 * edits and deletes to the channel's routes.  0, or -1: the item is done
 * with (an acknowledgement that is too late).
 */
static int
ia_resolve(struct discord *d, struct dc_item *it, int64_t now)
{
    struct dc_ia *x;

    if (it->ia[0] == '\0')
        return 0;
    x = ia_find(d, it->ia);
    if (it->kind == DC_ACK) {
        if (ia_live(d, x, now) && now - it->since_ms < d->ia_ttl)
            return 0;
        log_warnx("discord interaction %s: acknowledgement dropped (expired)",
                  it->ia);
        if (x != NULL)
            x->acked = 1;
        return -1;
    }
    if (ia_live(d, x, now)) {
        if (it->ia_original && x->orig_gone)
            it->ia_original = 0;
        return 0;
    }
    log_info("discord interaction %s %s: %s goes to channel=%s instead", it->ia,
             x == NULL ? "unknown (restarted?)" : "expired",
             it->kind == DC_MSG ? "the answer" : "the change", it->chat);
    d->stat.ia_fallbacks++;
    if (x != NULL)
        ia_forget(x);
    it->ia[0] = '\0';
    it->ia_original = 0;
    return 0;
}

/* 1 while the interaction's acknowledgement has not been answered: its
 * webhook does not exist for Discord before that (a command's answer is
 * often ready before the callback is sent). */
static int
ia_waits(struct discord *d, const struct dc_item *it)
{
    const struct dc_ia *x;

    if (it->ia[0] == '\0' || it->kind == DC_ACK)
        return 0;
    x = ia_find(d, it->ia);
    return x != NULL && !x->acked;
}

/* After READY (or RESUMED), once per process: PUT the slash command. */
static void
dc_register_commands(struct discord *d)
{
    struct dc_item *it;

    if (d->cmds_queued)
        return;
    if (d->app_id[0] == '\0') {
        log_warnx("discord: no application id known (READY without "
                  "application.id): /%s not registered",
                  DISCORD_SLASH_NAME);
        d->cmds_queued = 1;
        return;
    }
    if ((it = item_new(d, DC_REGISTER, "")) == NULL)
        return;
    d->cmds_queued = 1;
    dc_pump_soon(d, 0);
}

/* The outcome of an acknowledgement or the registration (best effort). */
static void
misc_done(struct discord *d, struct dc_item *it, const struct http_response *r,
          const struct discord_error *e)
{
    int ok = r->error == HTTP_OK && r->status >= 200 && r->status < 300;
    struct dc_ia *x = ia_find(d, it->ia);

    if (it->kind == DC_ACK) {
        if (x != NULL)
            x->acked = 1; /* its answers may go now */
        if (ok) {
            d->stat.ia_acks++;
            return;
        }
        d->stat.ia_ack_failed++;
        log_warnx("discord interaction %s not acknowledged status=%ld "
                  "code=%lld error=%s",
                  it->ia, r->status, (long long)e->code,
                  http_error_name(r->error));
        return;
    }
    if (ok) {
        d->stat.commands_registered = 1;
        log_info("discord slash command /%s registered application=%s",
                 DISCORD_SLASH_NAME, d->app_id);
        return;
    }
    log_warnx("discord slash command /%s not registered status=%ld code=%lld "
              "message=%s error=%s (text commands still work)",
              DISCORD_SLASH_NAME, r->status, (long long)e->code, e->message,
              http_error_name(r->error));
}

#define EMOJI_UP "%F0%9F%91%8D"
#define EMOJI_DOWN "%F0%9F%91%8E"

/* A send Discord took: its outcome, and the 👍/👎 it asked for. */
static void
send_ok(struct discord *d, struct dc_item *it, const struct http_response *r)
{
    char mid[DISCORD_SNOWFLAKE_MAX];
    const char *why = NULL;

    if (it->kind == DC_MSG) {
        if (discord_codec_message_id(r->body, r->body_len, mid, sizeof(mid),
                                     &why) < 0)
            mid[0] = '\0';
        d->stat.sent++;
        if (it->ia[0] != '\0') {
            struct dc_ia *x = ia_find(d, it->ia);

            d->stat.ia_answers++;
            if (x != NULL && mid[0] != '\0')
                ia_add_msg(x, mid); /* its edits go through the webhook */
        }
    } else {
        /* an edit or delete is of our message: the id stays the same */
        memcpy(mid, it->target, sizeof(mid));
        if (it->kind == DC_EDIT)
            d->stat.edits++;
        else
            d->stat.deletes++;
        if (it->kind == DC_DELETE && r->status == 404)
            log_info("discord delete: message already gone channel=%s "
                     "message=%s",
                     it->chat, it->target);
    }
    send_result(d, it, SEND_OK, mid, 0, NULL);
    if (it->feedback && it->kind != DC_DELETE && mid[0] != '\0') {
        queue_reaction(d, it->chat, mid, EMOJI_UP);
        queue_reaction(d, it->chat, mid, EMOJI_DOWN);
    }
}

/* A 5xx or no response: again with backoff (a create's nonce makes the
 * resend idempotent; an edit or delete is idempotent), then back to
 * core's durable retry.  1 when the item is done with. */
static int
send_again(struct discord *d, struct dc_item *it, const struct http_response *r,
           int64_t now)
{
    int drop = 1;

    it->attempts++;
    d->stat.send_errors++;
    if (it->attempts < DC_ATTEMPTS_MAX) {
        it->not_before = now + (1000LL << (it->attempts - 1));
        drop = 0;
    } else {
        send_result(d, it, SEND_RETRY, NULL, DC_CORE_RETRY_MS, NULL);
    }
    log_warnx("discord %s error status=%ld error=%s attempt=%d", item_route(it),
              r->status, http_error_name(r->error), it->attempts);
    return drop;
}

/* The DM opened: its channel, for this send and every other to the user
 * (they go on as messages).  A reply without a DM channel's id is
 * Discord's fault, as a 5xx would be.  0: the item stays queued. */
static int
dm_opened(struct discord *d, struct dc_item *it, const struct http_response *r,
          int64_t now)
{
    char ch[DISCORD_SNOWFLAKE_MAX];
    const char *why = NULL;

    if (discord_codec_dm_channel(r->body, r->body_len, ch, sizeof(ch), &why) <
        0) {
        log_warnx("discord DM of user=%s: bad reply why=%s", it->dm_user,
                  why ? why : "?");
        return send_again(d, it, r, now);
    }
    d->stat.dms_opened++;
    log_info("discord DM opened user=%s channel=%s", it->dm_user, ch);
    dm_remember(d, it->dm_user, ch, 1);
    dm_resolve(d, it->dm_user, ch);
    return 0;
}

/*
 * A 401 or 404 on an interaction's webhook.  Its token is no longer
 * taken (expired, unknown interaction or webhook): the item goes again
 * through the channel's routes.  @original deleted (10008): the answer
 * goes again as a follow-up.  1 when the item is queued again, 0 when
 * the status is the message's own (an edit of a deleted message).
 */
static int
ia_gone(struct discord *d, struct dc_item *it, const struct discord_error *e)
{
    struct dc_ia *x = ia_find(d, it->ia);

    if (e->code == DISCORD_UNKNOWN_MESSAGE) {
        if (it->kind != DC_MSG || !it->ia_original || x == NULL)
            return 0;
        x->orig_gone = 1;
        log_info("discord interaction %s: @original is gone, follow-up",
                 it->ia);
    } else {
        log_warnx("discord interaction %s: webhook refused (code=%lld): "
                  "to channel=%s instead",
                  it->ia, (long long)e->code, it->chat);
        d->stat.ia_fallbacks++;
        if (x != NULL)
            ia_forget(x);
        it->ia[0] = '\0';
    }
    it->ia_original = 0;
    it->attempts = 0;
    it->not_before = 0;
    return 1;
}

/* The outcome of a create, edit or delete (not a 429).  1 when done. */
static int
send_outcome(struct discord *d, struct dc_item *it,
             const struct http_response *r, const struct discord_error *e,
             int64_t now)
{
    long status = r->error == HTTP_OK ? r->status : 0;
    const char *cls = NULL;

    if (it->ia[0] != '\0' && (status == 401 || status == 404) &&
        ia_gone(d, it, e))
        return 0; /* queued again, to the channel or as a follow-up */
    switch (discord_codec_outcome(item_verb(it), status, e->code, &cls)) {
    case DISCORD_OUT_OK:
        if (it->dm_open)
            return dm_opened(d, it, r, now);
        send_ok(d, it, r);
        return 1;
    case DISCORD_OUT_AGAIN:
        return send_again(d, it, r, now);
    case DISCORD_OUT_FAILED:
    default:
        break;
    }
    d->stat.send_errors++;
    log_warnx("discord %s failed status=%ld code=%lld channel=%s class=%s",
              item_route(it), status, (long long)e->code, it->chat, cls);
    send_result(d, it, SEND_FAILED, NULL, 0, cls);
    if (status == 404 && it->dm_user[0] != '\0' && !it->dm_open)
        dm_forget(d, it->dm_user); /* the next send opens it again */
    if (status == 401)
        dc_fatal(d, "discord rejected the token (401 from the REST API)");
    return 1;
}

static void
rest_done(const struct http_response *r, void *arg)
{
    struct dc_item *it = arg;
    struct discord *d = it->d;
    struct discord_rest_headers h;
    struct discord_error e;
    int64_t now = now_ms();
    int drop = 1;

    it->req = NULL;
    slot_give(d, it);
    memset(&e, 0, sizeof(e));
    e.retry_after_ms = -1;
    if (r->error != HTTP_OK) {
        discord_rest_cancel(d->rest, item_route(it), item_major(it));
    } else {
        memset(&h, 0, sizeof(h));
        h.limit = http_response_header(r, "X-RateLimit-Limit");
        h.remaining = http_response_header(r, "X-RateLimit-Remaining");
        h.reset_after = http_response_header(r, "X-RateLimit-Reset-After");
        h.bucket = http_response_header(r, "X-RateLimit-Bucket");
        h.global = http_response_header(r, "X-RateLimit-Global");
        h.scope = http_response_header(r, "X-RateLimit-Scope");
        h.retry_after = http_response_header(r, "Retry-After");
        if (r->status >= 400 &&
            discord_codec_error(r->body, r->body_len, &e) < 0) {
            memset(&e, 0, sizeof(e));
            e.retry_after_ms = -1;
        }
        discord_rest_done(d->rest, item_route(it), item_major(it),
                          (int)r->status, &h,
                          r->status == 429 ? e.retry_after_ms : -1,
                          r->status == 429 && e.global, now);
    }
    if (r->error == HTTP_OK && r->status == 429) {
        /* delayed, never dropped: the bucket now holds it back */
        d->stat.retries_429++;
        log_warnx("discord 429 route=%s channel=%s retry_after_ms=%" PRId64
                  " global=%d",
                  item_route(it), it->chat, e.retry_after_ms, e.global);
        drop = it->kind == DC_TYPING;
    } else if (item_is_send(it)) {
        drop = send_outcome(d, it, r, &e, now);
    } else if (it->kind == DC_ACK || it->kind == DC_REGISTER) {
        misc_done(d, it, r, &e);
    } else if (r->error == HTTP_OK && r->status >= 200 && r->status < 300) {
        if (it->kind == DC_REACT)
            d->stat.reactions++;
        else
            d->stat.typing++;
    } else {
        /* typing and reactions are best effort */
        log_debug("discord %s failed status=%ld", item_route(it), r->status);
    }
    if (drop) {
        item_unlink(d, it);
        item_free(it);
    }
    dc_pump_soon(d, 0);
}

/*
 * An interaction's request: the callback, or its webhook (no
 * Authorization: the token in the path is the credential).  0, or -1
 * when the interaction is not known (cannot happen: ia_resolve ran).
 */
static int
ia_request(struct discord *d, struct dc_item *it, struct http_request *rq,
           char *url, size_t cap, char **body)
{
    const struct dc_ia *x = ia_find(d, it->ia);
    const char *base = d->api_base;

    if (x == NULL)
        return -1;
    if (it->kind == DC_ACK) {
        snprintf(url, cap, "%s/interactions/%s/%s/callback", base, x->id,
                 x->token);
        *body = strdup(discord_codec_interaction_callback(DISCORD_IA_DEFERRED));
        rq->method = "POST";
    } else if (it->kind == DC_MSG && it->ia_original) {
        snprintf(url, cap, "%s/webhooks/%s/%s/messages/@original", base, x->app,
                 x->token);
        *body = discord_codec_edit_message(it->text);
        rq->method = "PATCH";
    } else if (it->kind == DC_MSG) {
        /* wait=true: the reply is the message (its id for edits, votes) */
        snprintf(url, cap, "%s/webhooks/%s/%s?wait=true", base, x->app,
                 x->token);
        *body = discord_codec_edit_message(it->text);
        rq->method = "POST";
    } else {
        snprintf(url, cap, "%s/webhooks/%s/%s/messages/%s", base, x->app,
                 x->token, it->target);
        if (it->kind == DC_EDIT)
            *body = discord_codec_edit_message(it->text);
        rq->method = it->kind == DC_EDIT ? "PATCH" : "DELETE";
    }
    return 0;
}

static void
item_start(struct discord *d, struct dc_item *it)
{
    /* typing and reactions have no body (Content-Length: 0) and no type:
     * "Content-Type:" keeps curl from adding its form-urlencoded default */
    const char *hdrs[] = {d->auth, d->agent, "Content-Type:", NULL};
    const char *ia_hdrs[] = {d->agent, "Content-Type:", NULL};
    const char *base = d->api_base;
    struct http_request rq;
    char url[DC_URL_MAX + DISCORD_IA_TOKEN_MAX], *body = NULL;

    memset(&rq, 0, sizeof(rq));
    rq.headers = hdrs;
    rq.timeout_ms = DC_REST_TIMEOUT;
    rq.url = url;
    if (it->ia[0] != '\0') {
        rq.headers = ia_hdrs;
        if (ia_request(d, it, &rq, url, sizeof(url), &body) < 0) {
            /* ia_resolve decides next time: the channel, or dropped */
            discord_rest_cancel(d->rest, item_route(it), item_major(it));
            it->not_before = now_ms() + 1000;
            return;
        }
    } else if (it->kind == DC_REGISTER) {
        snprintf(url, sizeof(url), "%s/applications/%s/commands", base,
                 d->app_id);
        body = strdup(discord_codec_commands());
        rq.method = "PUT";
    } else if (it->dm_open) {
        snprintf(url, sizeof(url), "%s/users/@me/channels", base);
        if ((body = discord_codec_dm_open(it->dm_user)) == NULL) {
            it->not_before = now_ms() + 1000; /* out of memory */
            discord_rest_cancel(d->rest, item_route(it), item_major(it));
            return;
        }
        rq.method = "POST";
    } else if (it->kind == DC_MSG) {
        struct discord_create m = {it->text, it->reply_to, it->nonce};

        snprintf(url, sizeof(url), "%s/channels/%s/messages", base, it->chat);
        body = discord_codec_create_message(&m);
        rq.method = "POST";
    } else if (it->kind == DC_EDIT || it->kind == DC_DELETE) {
        snprintf(url, sizeof(url), "%s/channels/%s/messages/%s", base, it->chat,
                 it->target);
        if (it->kind == DC_EDIT)
            body = discord_codec_edit_message(it->text);
        rq.method = it->kind == DC_EDIT ? "PATCH" : "DELETE";
    } else if (it->kind == DC_TYPING) {
        snprintf(url, sizeof(url), "%s/channels/%s/typing", base, it->chat);
        rq.method = "POST";
    } else {
        snprintf(url, sizeof(url),
                 "%s/channels/%s/messages/%s/reactions/%s/@me", base, it->chat,
                 it->target, it->emoji);
        rq.method = "PUT";
    }
    if (body != NULL) {
        hdrs[2] = "Content-Type: application/json";
        ia_hdrs[1] = hdrs[2];
        rq.body = body;
        rq.body_len = strlen(body);
    }
    if (it->kind == DC_MSG && !it->dm_open)
        d->stat.sends++;
    it->req = http_send(d->http, &rq, rest_done, it);
    sodium_memzero(url, sizeof(url)); /* may hold an interaction token */
    free(body);
    if (it->req != NULL)
        slot_take(d, it);
    else {
        discord_rest_cancel(d->rest, item_route(it), item_major(it));
        it->not_before = now_ms() + 1000;
    }
}

/* An edit or delete of an id that cannot be a message of ours: not sent.
 * The edit's message "does not exist" (core posts a new one); the delete
 * has nothing to do. */
static void
bad_target_done(struct discord *d, struct dc_item *it)
{
    log_warnx("discord %s: target is not a message id (channel=%s)",
              item_route(it), it->chat);
    if (it->kind == DC_EDIT)
        send_result(d, it, SEND_FAILED, NULL, 0, "not_found");
    else
        send_result(d, it, SEND_OK, it->target, 0, NULL);
    item_unlink(d, it);
    item_free(it);
}

/* A send to "@" and no user id: nobody to open a DM with. */
static void
bad_dm_done(struct discord *d, struct dc_item *it)
{
    log_warnx("discord %s: chat \"%s\" is no user DM", item_route(it),
              it->chat);
    send_result(d, it, SEND_FAILED, NULL, 0, "bad_request");
    item_unlink(d, it);
    item_free(it);
}

/* A final edit that only adds the controls: no PATCH, the reactions. */
static void
controls_done(struct discord *d, struct dc_item *it)
{
    send_result(d, it, SEND_OK, it->target, 0, NULL);
    queue_reaction(d, it->chat, it->target, EMOJI_UP);
    queue_reaction(d, it->chat, it->target, EMOJI_DOWN);
    item_unlink(d, it);
    item_free(it);
}

static void
pump_fired(uv_timer_t *t)
{
    struct discord *d = t->data;
    int64_t now = now_ms(), next = -1;
    struct dc_item *it, *nx;

    for (it = d->head; it != NULL; it = nx) {
        int64_t w;

        nx = it->next;
        if (it->req != NULL)
            continue;
        if (it->bad_target || it->controls_only || it->bad_dm) {
            /* its outcome may have queued more (core's next action):
             * look again at once */
            if (it->bad_dm)
                bad_dm_done(d, it);
            else if (it->bad_target)
                bad_target_done(d, it);
            else
                controls_done(d, it);
            next = 0;
            continue;
        }
        if (it->not_before <= now && ia_resolve(d, it, now) < 0) {
            item_unlink(d, it);
            item_free(it);
            continue;
        }
        if (it->not_before > now) {
            w = it->not_before - now;
        } else if (!slot_free(d, it)) {
            /* every slot of its kind taken: rest_done pumps again */
            it->held = 1;
            continue;
        } else if (it->kind == DC_TYPING && it->held &&
                   typing_stale(d, it, now)) {
            d->stat.typing_skipped++;
            item_unlink(d, it);
            item_free(it);
            continue;
        } else if (ia_waits(d, it)) {
            continue; /* its acknowledgement's reply pumps */
        } else if (it->dm_open && dm_waits(d, it)) {
            continue; /* an earlier send opens it; its reply pumps */
        } else if ((w = discord_rest_acquire(d->rest, item_route(it),
                                             item_major(it), now)) == 0) {
            item_start(d, it);
            continue;
        } else if (it->kind == DC_TYPING) {
            /* stale by the time its bucket opens; core repeats it */
            item_unlink(d, it);
            item_free(it);
            continue;
        }
        if (w < 0)
            w = 1000; /* the bucket table is full of requests in flight */
        if (next < 0 || w < next)
            next = w;
    }
    if (next >= 0)
        uv_timer_start(&d->pump, pump_fired, (uint64_t)next, 0);
}

static void
dc_pump_soon(struct discord *d, int64_t ms)
{
    if (d->stopped)
        return;
    if (uv_is_active((uv_handle_t *)&d->pump) && ms > 0)
        return;
    uv_timer_start(&d->pump, pump_fired, (uint64_t)ms, 0);
}

/* ---- connector_ops ---- */

/*
 * What a message shows: an answer's (or a streamed edit's) Markdown as
 * Discord renders it, the whole current text converted each time, within
 * DISCORD_CONTENT_MAX (else as written: core's parts fit); notices as
 * written.  Pings stay off whatever the text: allowed_mentions.
 */
static char *
item_text(const struct action *a)
{
    const char *text = a->text ? a->text : "";

    if (a->kind == ACTION_ANSWER || a->kind == ACTION_EDIT)
        return discord_format_fit(text, DISCORD_CONTENT_MAX);
    return strdup(text);
}

/*
 * An answer to a slash command (reply_to "ia:<interaction id>"): its
 * first part edits @original (the deferred "thinking…"; a resend edits it
 * again), later parts are follow-ups.  Never a message_reference: "ia:…"
 * is no message.  Whether the interaction can still be answered is
 * decided when the request goes (ia_resolve).
 */
static void
ia_target(struct discord *d, struct dc_item *it, const struct action *a)
{
    const char *rt = a->reply_to ? a->reply_to : "";
    size_t plen = strlen(DISCORD_IA_PREFIX);

    (void)d;
    if (strncmp(rt, DISCORD_IA_PREFIX, plen) != 0) {
        snprintf(it->reply_to, sizeof(it->reply_to), "%s", rt);
        return;
    }
    it->reply_to[0] = '\0';
    if (!is_snowflake(rt + plen))
        return;
    memcpy(it->ia, rt + plen, strlen(rt + plen) + 1);
    it->ia_original = a->part == 0;
}

/*
 * ANSWER and NOTICE: a new message replying to the user's.  EDIT and
 * DELETE: our message target_id, through the same queue, buckets (their
 * own routes, per channel) and global limit, with the same 429 and 5xx
 * handling.  A thread is a channel on Discord: chat is its id.
 */
static int
op_send(void *ctx, const struct action *a)
{
    struct discord *d = ctx;
    struct dc_item *it;
    enum dc_kind kind = a->kind == ACTION_EDIT     ? DC_EDIT
                        : a->kind == ACTION_DELETE ? DC_DELETE
                                                   : DC_MSG;
    const char *target = a->target_id ? a->target_id : "";

    if (kind == DC_MSG && a->reply_to != NULL &&
        strlen(a->reply_to) >= DISCORD_SNOWFLAKE_MAX)
        return -1;
    if ((it = item_new(d, kind, a->chat)) == NULL)
        return -1;
    if (kind != DC_DELETE && (it->text = item_text(a)) == NULL) {
        item_unlink(d, it);
        item_free(it);
        return -1;
    }
    it->send_id = a->send_id;
    if (it->chat[0] == DC_DM_MARK)
        dm_target(d, it);
    /* the 👍/👎 go on an answer's last part only (core asks for them on
     * every part of a whole answer); an edit with feedback is the final
     * edit of the last part */
    it->feedback = a->feedback && (kind == DC_EDIT || a->part + 1 >= a->parts);
    if (kind == DC_MSG) {
        ia_target(d, it, a);
        discord_codec_nonce(a->idem_key, it->nonce, sizeof(it->nonce));
    } else if (is_snowflake(target)) {
        struct dc_ia *x = ia_of_message(d, target);

        memcpy(it->target, target, strlen(target) + 1);
        it->controls_only = kind == DC_EDIT && it->feedback && a->controls_only;
        if (x != NULL) /* posted through an interaction: edited there */
            memcpy(it->ia, x->id, sizeof(it->ia));
    } else {
        it->bad_target = 1; /* reported from the pump, not from here */
    }
    dc_pump_soon(d, 0);
    return 0;
}

static void
op_typing(void *ctx, const char *chat, const char *thread)
{
    struct discord *d = ctx;

    (void)thread; /* a Discord thread is a channel: chat is its id */
    if (chat[0] == DC_DM_MARK)
        return; /* a user's DM: core's own notices, nobody waits */
    for (struct dc_item *it = d->head; it != NULL; it = it->next)
        if (it->kind == DC_TYPING && strcmp(it->chat, chat) == 0)
            return;
    if (item_new(d, DC_TYPING, chat) != NULL)
        dc_pump_soon(d, 0);
}

static void
op_react(void *ctx, const char *chat, const char *message_id, const char *emoji)
{
    struct discord *d = ctx;
    const char *e = strcmp(emoji, "+1") == 0   ? EMOJI_UP
                    : strcmp(emoji, "-1") == 0 ? EMOJI_DOWN
                                               : NULL;

    if (e == NULL || message_id == NULL || chat[0] == DC_DM_MARK)
        return;
    queue_reaction(d, chat, message_id, e);
    dc_pump_soon(d, 0);
}

/* ---- lifecycle ---- */

struct discord *
discord_new(uv_loop_t *loop, struct http *http, struct ws_ctx *ws,
            struct core *core, struct store *st, const struct config *cfg,
            void (*fatal)(void *arg, const char *why), void *fatal_arg)
{
    struct discord *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->loop = loop;
    d->http = http;
    d->ws = ws;
    d->core = core;
    d->st = st;
    d->token = strdup(
        cfg->discord.token.value != NULL ? cfg->discord.token.value : "");
    d->api_base =
        strdup(cfg->discord.api_base != NULL ? cfg->discord.api_base : "");
    if (d->token == NULL || d->api_base == NULL) {
        free(d->token);
        free(d->api_base);
        free(d);
        return NULL;
    }
    d->fatal = fatal;
    d->fatal_arg = fatal_arg;
    d->saved_seq = -1;
    snprintf(d->reason, sizeof(d->reason), "starting");
    snprintf(d->agent, sizeof(d->agent),
             "User-Agent: DiscordBot (https://github.com/parley, %s)",
             PARLEY_VERSION);
    for (int i = 0; i < DGW_TIMER_COUNT; i++) {
        uv_timer_init(loop, &d->timers[i]);
        d->timers[i].data = d;
        d->handles++;
    }
    d->sends_max = DISCORD_SENDS_INFLIGHT_MAX;
    d->misc_max = DISCORD_MISC_INFLIGHT_MAX;
    d->ia_ttl = DC_IA_TTL_MS;
    if ((d->ias = calloc(DC_IAS_MAX, sizeof(*d->ias))) == NULL) {
        free(d->token);
        free(d->api_base);
        free(d);
        return NULL;
    }
    uv_timer_init(loop, &d->pump);
    d->pump.data = d;
    d->handles++;
    return d;
}

void
discord_set_send_tap(struct discord *d,
                     void (*tap)(void *arg, uint64_t send_id,
                                 const struct send_result *r),
                     void *arg)
{
    d->tap = tap;
    d->tap_arg = arg;
}

int
discord_send(struct discord *d, const struct action *a)
{
    return op_send(d, a);
}

void
discord_set_limits(struct discord *d, int gw_send_limit,
                   int64_t gw_send_window_ms, int64_t typing_ms)
{
    d->gw_send_limit = gw_send_limit;
    d->gw_send_window = gw_send_window_ms;
    d->typing_ms = typing_ms;
}

void
discord_set_interaction_ttl(struct discord *d, int64_t ms)
{
    d->ia_ttl = ms > 0 ? ms : DC_IA_TTL_MS;
}

void
discord_set_inflight_max(struct discord *d, size_t sends, size_t misc)
{
    d->sends_max = sends > 0 ? sends : DISCORD_SENDS_INFLIGHT_MAX;
    d->misc_max = misc > 0 ? misc : DISCORD_MISC_INFLIGHT_MAX;
}

int
discord_start(struct discord *d)
{
    struct connector_ops ops;
    struct discord_gw_input in = {.kind = DGW_IN_START};
    int n;

    if (d->started)
        return 0;
    n = snprintf(d->auth, sizeof(d->auth), "Authorization: Bot %s", token(d));
    if (token(d)[0] == '\0' || n < 0 || (size_t)n >= sizeof(d->auth)) {
        log_error("discord: no usable token");
        return -1;
    }
    if (d->ws == NULL || d->http == NULL) {
        log_error("discord: needs the HTTP client and the websocket context");
        return -1;
    }
    d->gw = discord_gw_new(d->gw_send_limit, d->gw_send_window);
    d->rest = discord_rest_new();
    if (d->gw == NULL || d->rest == NULL) {
        log_error("discord: out of memory");
        return -1;
    }
    d->started = 1;
    dc_restore(d);
    memset(&ops, 0, sizeof(ops));
    ops.platform = "discord";
    ops.ctx = d;
    ops.send = op_send;
    ops.typing = op_typing;
    ops.react = op_react;
    ops.typing_interval_ms = d->typing_ms > 0 ? d->typing_ms : DC_TYPING_MS;
    ops.text_max = DC_TEXT_MAX;
    ops.can_edit = 1;
    if (core_register_connector(d->core, &ops) < 0) {
        log_error("discord: cannot register with core");
        return -1;
    }
    d->registered = 1;
    dc_feed(d, &in);
    return 0;
}

void
discord_stop(struct discord *d)
{
    struct discord_gw_input in = {.kind = DGW_IN_STOP};
    struct dc_item *it;

    if (d == NULL || d->stopped || !d->started) {
        if (d != NULL)
            d->stopped = 1;
        return;
    }
    /* the machine closes resumably (4000) and saves the session */
    dc_feed(d, &in);
    d->stopped = 1;
    d->up = 0;
    snprintf(d->reason, sizeof(d->reason), "stopped");
    if (d->registered) {
        core_unregister_connector(d->core, "discord");
        d->registered = 0;
    }
    if (d->gw_req != NULL) {
        http_cancel(d->gw_req);
        d->gw_req = NULL;
    }
    /* unsent parts stay in their jobs; core sends them after a restart */
    while ((it = d->head) != NULL) {
        if (it->req != NULL)
            http_cancel(it->req);
        item_unlink(d, it);
        item_free(it);
    }
    d->stat.sends_inflight = d->stat.misc_inflight = 0;
    for (size_t i = 0; i < DC_IAS_MAX; i++)
        ia_forget(&d->ias[i]); /* tokens die with the process */
    for (int i = 0; i < DGW_TIMER_COUNT; i++)
        uv_timer_stop(&d->timers[i]);
    uv_timer_stop(&d->pump);
}

static void
handle_closed(uv_handle_t *h)
{
    struct discord *d = h->data;

    if (--d->handles == 0) {
        discord_gw_free(d->gw);
        discord_rest_free(d->rest);
        sodium_memzero(d->auth, sizeof(d->auth));
        sodium_memzero(d->token, strlen(d->token));
        sodium_memzero(d->ias, DC_IAS_MAX * sizeof(*d->ias));
        free(d->ias);
        free(d->token);
        free(d->api_base);
        free(d);
    }
}

void
discord_free(struct discord *d)
{
    if (d == NULL || d->freeing)
        return;
    discord_stop(d);
    d->freeing = 1;
    /* a close under way (discord_stop's 4000) finishes without us */
    if (d->conn != NULL) {
        ws_abandon(d->conn, DISCORD_GW_CLOSE_RESUMABLE, "parley");
        d->conn = NULL;
    }
    for (int i = 0; i < DGW_TIMER_COUNT; i++)
        uv_close((uv_handle_t *)&d->timers[i], handle_closed);
    uv_close((uv_handle_t *)&d->pump, handle_closed);
}

int
discord_is_up(void *discord)
{
    const struct discord *d = discord;

    return d != NULL && d->up && !d->stopped;
}

void
discord_status(const struct discord *d, struct discord_status *s)
{
    struct discord_gw_stats gs;

    *s = d->stat;
    s->up = discord_is_up((void *)(uintptr_t)d);
    snprintf(s->reason, sizeof(s->reason), "%s", d->reason);
    s->queued = d->queued;
    s->connected = d->conn != NULL;
    if (d->gw != NULL) {
        discord_gw_stats(d->gw, &gs);
        snprintf(s->self_id, sizeof(s->self_id), "%s",
                 discord_gw_self_id(d->gw));
        s->zombies = gs.zombies;
    }
}
