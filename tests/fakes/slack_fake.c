/* slack_fake: a Socket Mode + Web API server for tests and the demo. */
#include "tests/fakes/slack_fake.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REDELIVER_MAX 3 /* retries of one event, like Slack's */
#define ACK_DEADLINE_MS 3000
#define TEXT_CAP 40000 /* msg_too_long over this many characters */
/* Slack pings every live socket now and then (its SDKs give up after 30 s
 * without one); the fake pings more often so that short tests see some. */
#define PING_MS 2000

struct sf_ticket {
    struct slack_fake *sf;
    int n;
    int issued, used;
};

struct sf_conn {
    struct slack_fake *sf;
    struct fake_ws *ws;
    int hello;
    int64_t close_at; /* after a disconnect warning, 0 = none */
    int64_t ping_at;  /* next ping, 0 = none (no hello yet) */
    struct sf_conn *next;
};

struct sf_event {
    char *frame_type; /* events_api, slash_commands */
    char *payload;    /* JSON */
    int acked, deliveries;
    int64_t last_sent; /* 0 = waiting for a socket */
};

struct sf_delivery {
    char envelope_id[32];
    size_t event;
    int64_t sent;
    int acked;
};

struct sf_msg {
    char channel[64], ts[32], thread_ts[32], user[64];
    char *text; /* the current text (after edits) */
    int bot, deleted;
    int64_t t_ms;
    int nreactions;
    char reactions[8][40];
    int64_t *edit_t_ms; /* when each chat.update of it was applied */
    size_t nedits, cap_edits;
};

/* A token bucket: a channel's (posts, updates, deletes) or a Tier 3
 * method's for the whole workspace ("\001chat.update"). */
struct sf_bucket {
    char key[64];
    double tokens;
    int64_t at;
};

/* A channel whose Web API calls fail (the bot is not in it). */
struct sf_chan_error {
    char channel[64], error[64];
};

/* A post taken by a response_url (struct slack_fake_resp). */
struct sf_rpost {
    char *text, *type;
    int replace, del, auth;
    int64_t t_ms;
};

/* One slash command's response_url and what was posted to it. */
struct sf_resp {
    char id[48], channel[64];
    int expired, uses;
    struct sf_rpost *posts;
    size_t nposts, cap_posts;
};

struct sf_script {
    char method[48];
    char error[64];
    int status, retry_after;
};

struct slack_fake {
    uv_loop_t *loop;
    struct fake *f;
    char base[64];
    struct sf_ticket tickets[SLACK_FAKE_TICKETS];
    int next_ticket;
    struct sf_conn *conns;
    size_t rr; /* round-robin position */
    struct sf_event *events;
    size_t nevents, cap_events;
    struct sf_delivery *dels;
    size_t ndels, cap_dels;
    struct sf_msg *msgs;
    size_t nmsgs, cap_msgs;
    struct sf_bucket *buckets;
    size_t nbuckets;
    struct sf_script *scripts;
    size_t nscripts;
    struct sf_chan_error *chan_errors;
    size_t nchan_errors;
    struct sf_resp *resps;
    size_t nresps, cap_resps;
    uint64_t ts_counter, env_counter, event_counter;
    int64_t ts_base;
    int redeliver_ms, close_after_ms, hello;
    double rate;
    int burst;
    double tier3_per_min; /* chat.update, chat.delete: each, workspace */
    int tier3_burst;
    char open_error[64], auth_error[64];
    uv_timer_t tick;
    struct slack_fake_stats st;
};

/* ---- small helpers ---- */

static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 16;

    if (need <= *cap)
        return p;
    while (c < need)
        c *= 2;
    p = realloc(p, c * size);
    if (p)
        *cap = c;
    return p;
}

static void
new_ts(struct slack_fake *sf, char *out, size_t cap)
{
    uint64_t n = ++sf->ts_counter;

    snprintf(out, cap, "%lld.%06llu", (long long)(sf->ts_base + n / 1000000),
             (unsigned long long)(n % 1000000));
}

static const char *
json_body(struct slack_fake *sf, json_object *o)
{
    const char *s = fake_printf(
        sf->f, "%s",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(o);
    return s;
}

static const char *
jget(json_object *o, const char *k)
{
    json_object *v;

    if (o && json_object_object_get_ex(o, k, &v) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static struct sf_msg *
msg_find(struct slack_fake *sf, const char *channel, const char *ts)
{
    for (size_t i = 0; i < sf->nmsgs; i++)
        if (strcmp(sf->msgs[i].channel, channel) == 0 &&
            strcmp(sf->msgs[i].ts, ts) == 0)
            return &sf->msgs[i];
    return NULL;
}

static struct sf_msg *
msg_add(struct slack_fake *sf, const char *channel, const char *user,
        const char *text, const char *thread_ts, int bot)
{
    struct sf_msg *m;
    void *p = grow(sf->msgs, &sf->cap_msgs, sf->nmsgs + 1, sizeof(*m));

    if (p == NULL)
        return NULL;
    sf->msgs = p;
    m = &sf->msgs[sf->nmsgs++];
    memset(m, 0, sizeof(*m));
    snprintf(m->channel, sizeof(m->channel), "%s", channel);
    snprintf(m->user, sizeof(m->user), "%s", user);
    snprintf(m->thread_ts, sizeof(m->thread_ts), "%s",
             thread_ts ? thread_ts : "");
    new_ts(sf, m->ts, sizeof(m->ts));
    m->text = strdup(text);
    m->bot = bot;
    m->t_ms = fake_now_ms();
    return m;
}

/* ---- the socket side ---- */

static size_t
live_count(const struct slack_fake *sf)
{
    size_t n = 0;

    for (struct sf_conn *c = sf->conns; c; c = c->next)
        n += c->hello;
    return n;
}

/* The next socket that said hello, round-robin. */
static struct sf_conn *
conn_pick(struct slack_fake *sf)
{
    size_t n = live_count(sf), k, i = 0;

    if (n == 0)
        return NULL;
    k = sf->rr++ % n;
    for (struct sf_conn *c = sf->conns; c; c = c->next)
        if (c->hello && i++ == k)
            return c;
    return NULL;
}

static void
deliver(struct slack_fake *sf, size_t ev)
{
    struct sf_event *e = &sf->events[ev];
    struct sf_conn *c = conn_pick(sf);
    struct sf_delivery *d;
    char *frame;
    int retry = e->deliveries;
    void *p;

    if (c == NULL)
        return; /* waits for a socket */
    p = grow(sf->dels, &sf->cap_dels, sf->ndels + 1, sizeof(*d));
    if (p == NULL)
        return;
    sf->dels = p;
    d = &sf->dels[sf->ndels++];
    memset(d, 0, sizeof(*d));
    snprintf(d->envelope_id, sizeof(d->envelope_id), "env-%llu",
             (unsigned long long)++sf->env_counter);
    d->event = ev;
    d->sent = fake_now_ms();
    if (asprintf(&frame,
                 "{\"envelope_id\":\"%s\",\"payload\":%s,\"type\":\"%s\","
                 "\"accepts_response_payload\":%s,\"retry_attempt\":%d,"
                 "\"retry_reason\":\"%s\"}",
                 d->envelope_id, e->payload, e->frame_type,
                 strcmp(e->frame_type, "events_api") ? "true" : "false", retry,
                 retry ? "timeout" : "") < 0)
        return;
    fake_ws_send(c->ws, frame, strlen(frame));
    free(frame);
    e->deliveries++;
    e->last_sent = d->sent;
    sf->st.deliveries++;
    if (retry)
        sf->st.redeliveries++;
}

static int
event_add(struct slack_fake *sf, const char *type, char *payload)
{
    struct sf_event *e;
    void *p = grow(sf->events, &sf->cap_events, sf->nevents + 1, sizeof(*e));

    if (p == NULL || payload == NULL) {
        free(payload);
        return -1;
    }
    sf->events = p;
    e = &sf->events[sf->nevents++];
    memset(e, 0, sizeof(*e));
    e->frame_type = strdup(type);
    e->payload = payload;
    sf->st.events++;
    deliver(sf, sf->nevents - 1);
    return 0;
}

static void
ws_open(struct fake_ws *ws, void *arg)
{
    struct sf_ticket *t = arg;
    struct slack_fake *sf = t->sf;
    struct sf_conn *c;
    char hello[160];

    if (!t->issued || t->used) {
        sf->st.refused++;
        fake_ws_close(ws, 4001, "invalid ticket");
        return;
    }
    t->used = 1;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        fake_ws_drop(ws);
        return;
    }
    c->sf = sf;
    c->ws = ws;
    c->next = sf->conns;
    sf->conns = c;
    sf->st.connects++;
    if (!sf->hello)
        return;
    c->hello = 1;
    sf->st.hellos++;
    c->ping_at = fake_now_ms() + PING_MS;
    snprintf(hello, sizeof(hello),
             "{\"type\":\"hello\",\"num_connections\":%zu,\"debug_info\":"
             "{\"host\":\"fake-applink\",\"approximate_connection_time\":"
             "18060},\"connection_info\":{\"app_id\":\"A0TEST\"}}",
             live_count(sf));
    fake_ws_send(ws, hello, strlen(hello));
    /* events that waited for a socket */
    for (size_t i = 0; i < sf->nevents; i++)
        if (!sf->events[i].acked && sf->events[i].last_sent == 0)
            deliver(sf, i);
}

static void
ws_text(struct fake_ws *ws, const char *buf, size_t len, void *arg)
{
    struct slack_fake *sf = ((struct sf_ticket *)arg)->sf;
    json_object *o = json_tokener_parse(buf);
    const char *id = jget(o, "envelope_id");
    int64_t now = fake_now_ms();

    (void)ws;
    (void)len;
    if (id == NULL) {
        sf->st.acks_unknown++;
        goto out;
    }
    for (size_t i = 0; i < sf->ndels; i++) {
        struct sf_delivery *d = &sf->dels[i];

        if (strcmp(d->envelope_id, id) != 0)
            continue;
        if (!d->acked) {
            d->acked = 1;
            sf->st.acks++;
            if (now - d->sent > ACK_DEADLINE_MS)
                sf->st.acks_late++;
            if (now - d->sent > sf->st.ack_max_ms)
                sf->st.ack_max_ms = now - d->sent;
            sf->events[d->event].acked = 1;
        }
        goto out;
    }
    sf->st.acks_unknown++;
out:
    json_object_put(o);
}

static void
ws_closed(struct fake_ws *ws, void *arg)
{
    struct slack_fake *sf = ((struct sf_ticket *)arg)->sf;
    struct sf_conn **pp = &sf->conns;

    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->ws == ws) {
            struct sf_conn *c = *pp;

            *pp = c->next;
            free(c);
            return;
        }
}

static const struct fake_ws_ops sf_ws_ops = {ws_open, ws_text, ws_closed};

/* Redeliveries, pings, and the closes that follow disconnect warnings. */
static void
sf_tick(uv_timer_t *t)
{
    struct slack_fake *sf = t->data;
    int64_t now = fake_now_ms();
    uint64_t unacked = 0;

    for (size_t i = 0; i < sf->nevents; i++) {
        struct sf_event *e = &sf->events[i];

        if (e->acked)
            continue;
        unacked++;
        if (e->last_sent && now - e->last_sent >= sf->redeliver_ms &&
            e->deliveries <= REDELIVER_MAX)
            deliver(sf, i);
    }
    sf->st.unacked = unacked;
    for (struct sf_conn *c = sf->conns; c; c = c->next) {
        if (c->hello && c->ping_at && now >= c->ping_at) {
            c->ping_at = now + PING_MS;
            fake_ws_ping(c->ws);
        }
        if (c->close_at && now >= c->close_at) {
            c->close_at = 0;
            c->hello = 0;
            fake_ws_close(c->ws, 1001, "disconnected");
        }
    }
}

int
slack_fake_redeliver_last(struct slack_fake *sf)
{
    if (sf->nevents == 0 || live_count(sf) == 0)
        return -1;
    deliver(sf, sf->nevents - 1);
    sf->st.redeliveries--; /* forced, not caused by a missing ack */
    return 0;
}

void
slack_fake_disconnect(struct slack_fake *sf, const char *reason)
{
    char frame[200];
    int link = strcmp(reason, "link_disabled") == 0;

    snprintf(frame, sizeof(frame),
             "{\"type\":\"disconnect\",\"reason\":\"%s\",\"debug_info\":"
             "{\"host\":\"fake-applink\"}}",
             reason);
    for (struct sf_conn *c = sf->conns; c; c = c->next) {
        if (!c->hello)
            continue;
        fake_ws_send(c->ws, frame, strlen(frame));
        if (link)
            c->close_at = fake_now_ms() + 50; /* after the frame is out */
        else if (c->close_at == 0)
            c->close_at = fake_now_ms() + sf->close_after_ms;
    }
}

void
slack_fake_drop_all(struct slack_fake *sf)
{
    for (struct sf_conn *c = sf->conns; c; c = c->next)
        c->hello = 0;
    fake_ws_drop_all(sf->f);
}

/* ---- Web API ---- */

static const char *
bearer(const struct fake_request *req)
{
    const char *h = fake_request_header(req, "authorization");

    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return "";
    return h + 7;
}

static void
api_error(struct slack_fake *sf, struct fake_response *resp, const char *error)
{
    resp->status = 200;
    resp->body = fake_printf(sf->f, "{\"ok\":false,\"error\":\"%s\"}", error);
}

static void
ratelimited(struct slack_fake *sf, struct fake_response *resp, int wait)
{
    resp->status = 429;
    resp->headers = fake_printf(sf->f, "Retry-After: %d\r\n", wait);
    resp->body = "{\"ok\":false,\"error\":\"ratelimited\"}";
}

static int
scripted(struct slack_fake *sf, const char *method, struct fake_response *resp)
{
    for (size_t i = 0; i < sf->nscripts; i++) {
        struct sf_script s = sf->scripts[i];

        if (strcmp(s.method, method) != 0)
            continue;
        memmove(&sf->scripts[i], &sf->scripts[i + 1],
                (sf->nscripts - i - 1) * sizeof(s));
        sf->nscripts--;
        sf->st.scripted++;
        if (s.status == 429) {
            ratelimited(sf, resp, s.retry_after);
            if (strcmp(method, "chat.postMessage") == 0)
                sf->st.posts_429++;
            else if (strcmp(method, "chat.update") == 0)
                sf->st.updates_429++;
            else if (strcmp(method, "chat.delete") == 0)
                sf->st.deletes_429++;
        } else
            api_error(sf, resp, s.error);
        return 1;
    }
    return 0;
}

static struct sf_bucket *
bucket_get(struct slack_fake *sf, const char *key, int burst)
{
    struct sf_bucket *b;
    void *p;

    for (size_t i = 0; i < sf->nbuckets; i++)
        if (strcmp(sf->buckets[i].key, key) == 0)
            return &sf->buckets[i];
    if ((p = realloc(sf->buckets, (sf->nbuckets + 1) * sizeof(*b))) == NULL)
        return NULL;
    sf->buckets = p;
    b = &sf->buckets[sf->nbuckets++];
    snprintf(b->key, sizeof(b->key), "%s", key);
    b->tokens = burst;
    b->at = fake_now_ms();
    return b;
}

/* Takes a token from key's bucket (rate per second, burst; rate 0 =
 * off): 0, or the whole seconds to wait. */
static int
bucket_take(struct slack_fake *sf, const char *key, double rate, int burst)
{
    struct sf_bucket *b;
    int64_t now = fake_now_ms();

    if (rate <= 0)
        return 0;
    if ((b = bucket_get(sf, key, burst)) == NULL)
        return 1;
    b->tokens += (double)(now - b->at) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->at = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    return (int)ceil((1.0 - b->tokens) / rate);
}

/* The channel's bucket (chat.postMessage, chat.update and chat.delete
 * share it), then the method's workspace bucket for the Tier 3 ones. */
static int
limit_wait(struct slack_fake *sf, const char *method, const char *channel)
{
    char key[64];
    int wait = bucket_take(sf, channel, sf->rate, sf->burst);

    if (wait > 0 || strcmp(method, "chat.postMessage") == 0)
        return wait;
    snprintf(key, sizeof(key), "\001%s", method);
    return bucket_take(sf, key, sf->tier3_per_min / 60.0, sf->tier3_burst);
}

static size_t
utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* The error set for channel by slack_fake_set_channel_error, or NULL. */
static const char *
chan_error(const struct slack_fake *sf, const char *channel)
{
    for (size_t i = 0; channel && i < sf->nchan_errors; i++)
        if (strcmp(sf->chan_errors[i].channel, channel) == 0)
            return sf->chan_errors[i].error;
    return NULL;
}

/* chat.update {channel, ts, text}: the message's text replaced. */
static void
chat_update(struct slack_fake *sf, json_object *body,
            struct fake_response *resp)
{
    const char *channel = jget(body, "channel"), *ts = jget(body, "ts"),
               *text = jget(body, "text");
    struct sf_msg *m;
    json_object *o, *mo;
    char *dup;
    void *p;
    int wait;

    if (scripted(sf, "chat.update", resp))
        return;
    if (chan_error(sf, channel)) {
        api_error(sf, resp, chan_error(sf, channel));
        return;
    }
    if (channel == NULL || !strchr("CDG", channel[0])) {
        api_error(sf, resp, "channel_not_found");
        return;
    }
    if (ts == NULL || text == NULL || text[0] == '\0') {
        api_error(sf, resp, ts == NULL ? "invalid_arguments" : "no_text");
        return;
    }
    if (utf8_chars(text) > TEXT_CAP) {
        api_error(sf, resp, "msg_too_long");
        return;
    }
    if ((wait = limit_wait(sf, "chat.update", channel)) > 0) {
        sf->st.updates_429++;
        ratelimited(sf, resp, wait);
        return;
    }
    if ((m = msg_find(sf, channel, ts)) == NULL || m->deleted) {
        api_error(sf, resp, "message_not_found");
        return;
    }
    if (!m->bot) {
        api_error(sf, resp, "cant_update_message");
        return;
    }
    p = grow(m->edit_t_ms, &m->cap_edits, m->nedits + 1, sizeof(int64_t));
    if (p == NULL || (dup = strdup(text)) == NULL) {
        m->edit_t_ms = p ? p : m->edit_t_ms;
        api_error(sf, resp, "internal_error");
        return;
    }
    m->edit_t_ms = p;
    m->edit_t_ms[m->nedits++] = fake_now_ms();
    free(m->text);
    m->text = dup;
    sf->st.updates++;
    o = json_object_new_object();
    mo = json_object_new_object();
    json_object_object_add(mo, "type", json_object_new_string("message"));
    json_object_object_add(mo, "user", json_object_new_string(m->user));
    json_object_object_add(mo, "bot_id",
                           json_object_new_string(SLACK_FAKE_BOT_ID));
    json_object_object_add(mo, "text", json_object_new_string(m->text));
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "channel", json_object_new_string(channel));
    json_object_object_add(o, "ts", json_object_new_string(m->ts));
    json_object_object_add(o, "text", json_object_new_string(m->text));
    json_object_object_add(o, "message", mo);
    resp->body = json_body(sf, o);
}

/* chat.delete {channel, ts}: the message is gone (kept, marked). */
static void
chat_delete(struct slack_fake *sf, json_object *body,
            struct fake_response *resp)
{
    const char *channel = jget(body, "channel"), *ts = jget(body, "ts");
    struct sf_msg *m;
    int wait;

    if (scripted(sf, "chat.delete", resp))
        return;
    if (chan_error(sf, channel)) {
        api_error(sf, resp, chan_error(sf, channel));
        return;
    }
    if (channel == NULL || !strchr("CDG", channel[0])) {
        api_error(sf, resp, "channel_not_found");
        return;
    }
    if (ts == NULL) {
        api_error(sf, resp, "invalid_arguments");
        return;
    }
    if ((wait = limit_wait(sf, "chat.delete", channel)) > 0) {
        sf->st.deletes_429++;
        ratelimited(sf, resp, wait);
        return;
    }
    if ((m = msg_find(sf, channel, ts)) == NULL || m->deleted) {
        api_error(sf, resp, "message_not_found");
        return;
    }
    if (!m->bot) {
        api_error(sf, resp, "cant_delete_message");
        return;
    }
    m->deleted = 1;
    sf->st.deletes++;
    resp->body =
        fake_printf(sf->f, "{\"ok\":true,\"channel\":\"%s\",\"ts\":\"%s\"}",
                    m->channel, m->ts);
}

static int
api_handler(struct fake *f, const struct fake_request *req,
            struct fake_response *resp, void *arg)
{
    struct slack_fake *sf = arg;
    const char *method = req->path + strlen("/api/");
    json_object *body = NULL, *o;
    const char *channel, *text;

    (void)f;
    resp->status = 200;
    if (strncmp(method, "apps.connections.open", 21) == 0) {
        struct sf_ticket *t;

        sf->st.opens++;
        if (scripted(sf, "apps.connections.open", resp))
            return 0;
        if (sf->open_error[0]) {
            api_error(sf, resp, sf->open_error);
            return 0;
        }
        if (strncmp(bearer(req), "xoxb-", 5) == 0) {
            api_error(sf, resp, "not_allowed_token_type");
            return 0;
        }
        if (strcmp(bearer(req), SLACK_FAKE_APP_TOKEN) != 0) {
            api_error(sf, resp, "invalid_auth");
            return 0;
        }
        if (sf->next_ticket >= SLACK_FAKE_TICKETS) {
            api_error(sf, resp, "internal_error");
            return 0;
        }
        t = &sf->tickets[sf->next_ticket++];
        t->issued = 1;
        resp->body = fake_printf(sf->f,
                                 "{\"ok\":true,\"url\":\"ws://127.0.0.1:%d/"
                                 "link/%d?ticket=t%d&app_id=A0TEST\"}",
                                 fake_port(sf->f), t->n, t->n);
        return 0;
    }
    if (strcmp(bearer(req), SLACK_FAKE_BOT_TOKEN) != 0) {
        if (strncmp(method, "auth.test", 9) == 0)
            sf->st.auth_tests++;
        api_error(sf, resp, "invalid_auth");
        return 0;
    }
    if (strncmp(method, "auth.test", 9) == 0) {
        sf->st.auth_tests++;
        if (scripted(sf, "auth.test", resp))
            return 0;
        if (sf->auth_error[0]) {
            api_error(sf, resp, sf->auth_error);
            return 0;
        }
        resp->body = "{\"ok\":true,\"url\":\"https://fake.slack.com/\","
                     "\"team\":\"Fake\",\"user\":\"parley\",\"team_id\":"
                     "\"T0FAKE\",\"user_id\":\"" SLACK_FAKE_USER_ID
                     "\",\"bot_id\":\"" SLACK_FAKE_BOT_ID "\"}";
        return 0;
    }
    body = req->body ? json_tokener_parse(req->body) : NULL;
    channel = jget(body, "channel");
    if (strncmp(method, "chat.postMessage", 16) == 0) {
        struct sf_msg *m;
        int wait;

        text = jget(body, "text");
        if (scripted(sf, "chat.postMessage", resp))
            goto out;
        if (chan_error(sf, channel)) {
            sf->st.posts_refused++;
            api_error(sf, resp, chan_error(sf, channel));
            goto out;
        }
        if (channel == NULL || !strchr("CDG", channel[0])) {
            api_error(sf, resp, "channel_not_found");
            goto out;
        }
        if (text == NULL || text[0] == '\0') {
            api_error(sf, resp, "no_text");
            goto out;
        }
        if (utf8_chars(text) > TEXT_CAP) {
            api_error(sf, resp, "msg_too_long");
            goto out;
        }
        if ((wait = limit_wait(sf, "chat.postMessage", channel)) > 0) {
            sf->st.posts_429++;
            ratelimited(sf, resp, wait);
            goto out;
        }
        m = msg_add(sf, channel, SLACK_FAKE_USER_ID, text,
                    jget(body, "thread_ts"), 1);
        if (m == NULL)
            return -1;
        sf->st.posts++;
        o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "channel", json_object_new_string(channel));
        json_object_object_add(o, "ts", json_object_new_string(m->ts));
        resp->body = json_body(sf, o);
        goto out;
    }
    if (strncmp(method, "chat.update", 11) == 0) {
        chat_update(sf, body, resp);
        goto out;
    }
    if (strncmp(method, "chat.delete", 11) == 0) {
        chat_delete(sf, body, resp);
        goto out;
    }
    if (strncmp(method, "reactions.add", 13) == 0) {
        const char *ts = jget(body, "timestamp"), *name = jget(body, "name");
        struct sf_msg *m;

        if (scripted(sf, "reactions.add", resp))
            goto out;
        if (channel == NULL || ts == NULL || name == NULL) {
            api_error(sf, resp, "invalid_arguments");
            goto out;
        }
        if ((m = msg_find(sf, channel, ts)) == NULL || m->deleted) {
            api_error(sf, resp, "message_not_found");
            goto out;
        }
        for (int i = 0; i < m->nreactions; i++)
            if (strcmp(m->reactions[i], name) == 0) {
                api_error(sf, resp, "already_reacted");
                goto out;
            }
        if (m->nreactions == 8) {
            api_error(sf, resp, "too_many_reactions");
            goto out;
        }
        snprintf(m->reactions[m->nreactions++], sizeof(m->reactions[0]), "%s",
                 name);
        sf->st.reactions++;
        resp->body = "{\"ok\":true}";
        goto out;
    }
    resp->status = 404;
    resp->body = "{\"ok\":false,\"error\":\"unknown_method\"}";
out:
    json_object_put(body);
    return 0;
}

/* ---- events in ---- */

static char *
events_payload(struct slack_fake *sf, json_object *event)
{
    json_object *p = json_object_new_object();
    char id[32];
    char *s;

    snprintf(id, sizeof(id), "Ev%06llu",
             (unsigned long long)++sf->event_counter);
    json_object_object_add(p, "token", json_object_new_string("fake"));
    json_object_object_add(p, "team_id", json_object_new_string("T0FAKE"));
    json_object_object_add(p, "api_app_id", json_object_new_string("A0TEST"));
    json_object_object_add(p, "event", event);
    json_object_object_add(p, "type", json_object_new_string("event_callback"));
    json_object_object_add(p, "event_id", json_object_new_string(id));
    json_object_object_add(p, "event_time",
                           json_object_new_int64((int64_t)time(NULL)));
    s = strdup(json_object_to_json_string_ext(
        p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(p);
    return s;
}

int
slack_fake_event(struct slack_fake *sf, const char *event_json)
{
    json_object *ev = json_tokener_parse(event_json);

    if (ev == NULL)
        return -1;
    return event_add(sf, "events_api", events_payload(sf, ev));
}

static int
user_message(struct slack_fake *sf, const char *type, const char *channel,
             const char *user, const char *text, const char *thread_ts,
             char *ts_out, size_t cap)
{
    json_object *ev = json_object_new_object();
    struct sf_msg *m;
    char full[8192];

    if (strcmp(type, "app_mention") == 0)
        snprintf(full, sizeof(full), "<@%s> %s", SLACK_FAKE_USER_ID, text);
    else
        snprintf(full, sizeof(full), "%s", text);
    m = msg_add(sf, channel, user, full, thread_ts, 0);
    if (m == NULL) {
        json_object_put(ev);
        return -1;
    }
    if (ts_out)
        snprintf(ts_out, cap, "%s", m->ts);
    json_object_object_add(ev, "type", json_object_new_string(type));
    json_object_object_add(ev, "user", json_object_new_string(user));
    json_object_object_add(ev, "text", json_object_new_string(full));
    json_object_object_add(ev, "ts", json_object_new_string(m->ts));
    json_object_object_add(ev, "channel", json_object_new_string(channel));
    json_object_object_add(ev, "event_ts", json_object_new_string(m->ts));
    if (thread_ts && thread_ts[0])
        json_object_object_add(ev, "thread_ts",
                               json_object_new_string(thread_ts));
    if (strcmp(type, "message") == 0)
        json_object_object_add(ev, "channel_type",
                               json_object_new_string("im"));
    return event_add(sf, "events_api", events_payload(sf, ev));
}

int
slack_fake_mention(struct slack_fake *sf, const char *channel, const char *user,
                   const char *text, const char *thread_ts, char *ts_out,
                   size_t cap)
{
    return user_message(sf, "app_mention", channel, user, text, thread_ts,
                        ts_out, cap);
}

int
slack_fake_dm(struct slack_fake *sf, const char *channel, const char *user,
              const char *text, char *ts_out, size_t cap)
{
    return user_message(sf, "message", channel, user, text, NULL, ts_out, cap);
}

static int
reaction_event(struct slack_fake *sf, const char *type, const char *channel,
               const char *ts, const char *user, const char *reaction)
{
    json_object *ev = json_object_new_object(), *item;
    struct sf_msg *m = msg_find(sf, channel, ts);

    item = json_object_new_object();
    json_object_object_add(item, "type", json_object_new_string("message"));
    json_object_object_add(item, "channel", json_object_new_string(channel));
    json_object_object_add(item, "ts", json_object_new_string(ts));
    json_object_object_add(ev, "type", json_object_new_string(type));
    json_object_object_add(ev, "user", json_object_new_string(user));
    json_object_object_add(ev, "reaction", json_object_new_string(reaction));
    json_object_object_add(ev, "item_user",
                           json_object_new_string(m ? m->user : "U0NOBODY"));
    json_object_object_add(ev, "item", item);
    json_object_object_add(ev, "event_ts", json_object_new_string("1.0"));
    return event_add(sf, "events_api", events_payload(sf, ev));
}

int
slack_fake_reaction(struct slack_fake *sf, const char *channel, const char *ts,
                    const char *user, const char *reaction)
{
    return reaction_event(sf, "reaction_added", channel, ts, user, reaction);
}

int
slack_fake_reaction_remove(struct slack_fake *sf, const char *channel,
                           const char *ts, const char *user,
                           const char *reaction)
{
    return reaction_event(sf, "reaction_removed", channel, ts, user, reaction);
}

static struct sf_resp *
resp_find(const struct slack_fake *sf, const char *id)
{
    for (size_t i = 0; id && i < sf->nresps; i++)
        if (strcmp(sf->resps[i].id, id) == 0)
            return &sf->resps[i];
    return NULL;
}

int
slack_fake_slash(struct slack_fake *sf, const char *channel, const char *user,
                 const char *text)
{
    return slack_fake_slash_ex(sf, channel, user, text, NULL, NULL, 0);
}

int
slack_fake_slash_ex(struct slack_fake *sf, const char *channel,
                    const char *user, const char *text,
                    const char *response_url, char *id_out, size_t cap)
{
    json_object *p;
    char trig[48], url[256];
    struct sf_resp *r;
    char *s;
    void *g;

    snprintf(trig, sizeof(trig), "%llu.%llu.fake",
             (unsigned long long)++sf->event_counter,
             (unsigned long long)sf->ts_counter);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/response/%s",
             fake_port(sf->f), trig);
    if (response_url != NULL)
        snprintf(url, sizeof(url), "%s", response_url);
    g = grow(sf->resps, &sf->cap_resps, sf->nresps + 1, sizeof(*r));
    if (g == NULL)
        return -1;
    sf->resps = g;
    r = &sf->resps[sf->nresps++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", trig);
    snprintf(r->channel, sizeof(r->channel), "%s", channel);
    if (id_out)
        snprintf(id_out, cap, "%s", trig);
    p = json_object_new_object();
    json_object_object_add(p, "token", json_object_new_string("fake"));
    json_object_object_add(p, "team_id", json_object_new_string("T0FAKE"));
    json_object_object_add(p, "channel_id", json_object_new_string(channel));
    json_object_object_add(p, "user_id", json_object_new_string(user));
    json_object_object_add(p, "command", json_object_new_string("/parley"));
    json_object_object_add(p, "text", json_object_new_string(text));
    json_object_object_add(p, "response_url", json_object_new_string(url));
    json_object_object_add(p, "trigger_id", json_object_new_string(trig));
    s = strdup(json_object_to_json_string_ext(
        p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(p);
    return event_add(sf, "slash_commands", s);
}

/* ---- control API ---- */

static json_object *
stats_json(const struct slack_fake_stats *s)
{
    json_object *o = json_object_new_object();

#define N(k) json_object_object_add(o, #k, json_object_new_int64((int64_t)s->k))
    N(opens);
    N(auth_tests);
    N(connects);
    N(refused);
    N(hellos);
    N(events);
    N(deliveries);
    N(redeliveries);
    N(acks);
    N(acks_late);
    N(acks_unknown);
    N(unacked);
    N(ack_max_ms);
    N(posts);
    N(posts_429);
    N(updates);
    N(updates_429);
    N(deletes);
    N(deletes_429);
    N(reactions);
    N(scripted);
    N(posts_refused);
    N(responses);
    N(responses_refused);
    N(responses_authorized);
    N(live);
#undef N
    return o;
}

static void
response_refuse(struct slack_fake *sf, struct fake_response *resp, int status,
                const char *error)
{
    sf->st.responses_refused++;
    resp->status = status;
    resp->content_type = "text/plain";
    resp->body = error;
}

/*
 * POST <response_url> {"text","response_type","replace_original"} or
 * {"delete_original":true}: 5 posts, then 404 used_url; 404 expired_url
 * once expired (or unknown); 400 invalid_payload, no_text.  "ok".
 */
static void
response_post(struct slack_fake *sf, const struct fake_request *req,
              const char *id, json_object *b, struct fake_response *resp)
{
    struct sf_resp *r = resp_find(sf, id);
    struct sf_rpost *p;
    const char *text = jget(b, "text"), *type = jget(b, "response_type");
    json_object *v;
    int del = 0;
    void *g;

    if (fake_request_header(req, "authorization") != NULL)
        sf->st.responses_authorized++;
    if (r == NULL || r->expired) {
        response_refuse(sf, resp, 404, "expired_url");
        return;
    }
    if (r->uses >= 5) {
        response_refuse(sf, resp, 404, "used_url");
        return;
    }
    if (b == NULL || !json_object_is_type(b, json_type_object)) {
        response_refuse(sf, resp, 400, "invalid_payload");
        return;
    }
    if (json_object_object_get_ex(b, "delete_original", &v))
        del = json_object_get_boolean(v);
    if (!del && (text == NULL || text[0] == '\0')) {
        response_refuse(sf, resp, 400, "no_text");
        return;
    }
    g = grow(r->posts, &r->cap_posts, r->nposts + 1, sizeof(*p));
    if (g == NULL) {
        response_refuse(sf, resp, 500, "internal_error");
        return;
    }
    r->posts = g;
    p = &r->posts[r->nposts++];
    memset(p, 0, sizeof(*p));
    p->text = strdup(text ? text : "");
    p->type = strdup(type ? type : "");
    if (json_object_object_get_ex(b, "replace_original", &v))
        p->replace = json_object_get_boolean(v);
    p->del = del;
    p->auth = fake_request_header(req, "authorization") != NULL;
    p->t_ms = fake_now_ms();
    r->uses++;
    sf->st.responses++;
    resp->content_type = "text/plain";
    resp->body = "ok";
}

static int
control_handler(struct fake *f, const struct fake_request *req,
                struct fake_response *resp, void *arg)
{
    struct slack_fake *sf = arg;
    const char *what = req->path + strlen("/_fake/");
    json_object *b = req->body ? json_tokener_parse(req->body) : NULL, *o;
    const char *ch = jget(b, "channel"), *user = jget(b, "user"),
               *text = jget(b, "text");
    char ts[32] = "";
    int rc = 0;

    (void)f;
    resp->status = 200;
    resp->body = "{\"ok\":true}";
    if (strncmp(what, "stats", 5) == 0) {
        struct slack_fake_stats s;

        slack_fake_stats(sf, &s);
        resp->body = json_body(sf, stats_json(&s));
    } else if (strncmp(what, "messages", 8) == 0) {
        const char *q = strstr(what, "channel=");
        char chan[64] = "";
        json_object *arr = json_object_new_array();

        if (q)
            snprintf(chan, sizeof(chan), "%.*s", (int)strcspn(q + 8, "&"),
                     q + 8);
        for (size_t i = 0; i < sf->nmsgs; i++) {
            struct sf_msg *m = &sf->msgs[i];
            json_object *mo, *re;

            if (chan[0] && strcmp(chan, m->channel) != 0)
                continue;
            mo = json_object_new_object();
            re = json_object_new_array();
            json_object_object_add(mo, "channel",
                                   json_object_new_string(m->channel));
            json_object_object_add(mo, "ts", json_object_new_string(m->ts));
            json_object_object_add(mo, "thread_ts",
                                   json_object_new_string(m->thread_ts));
            json_object_object_add(mo, "user", json_object_new_string(m->user));
            json_object_object_add(
                mo, "text", json_object_new_string(m->text ? m->text : ""));
            json_object_object_add(mo, "bot", json_object_new_boolean(m->bot));
            json_object_object_add(mo, "t_ms", json_object_new_int64(m->t_ms));
            json_object_object_add(mo, "edits",
                                   json_object_new_int64((int64_t)m->nedits));
            json_object_object_add(mo, "deleted",
                                   json_object_new_boolean(m->deleted));
            for (int k = 0; k < m->nreactions; k++)
                json_object_array_add(re,
                                      json_object_new_string(m->reactions[k]));
            json_object_object_add(mo, "reactions", re);
            json_object_array_add(arr, mo);
        }
        o = json_object_new_object();
        json_object_object_add(o, "messages", arr);
        resp->body = json_body(sf, o);
    } else if (strncmp(what, "mention", 7) == 0 && ch && user && text) {
        rc = slack_fake_mention(sf, ch, user, text, jget(b, "thread_ts"), ts,
                                sizeof(ts));
        resp->body = fake_printf(sf->f, "{\"ok\":true,\"ts\":\"%s\"}", ts);
    } else if (strncmp(what, "dm", 2) == 0 && ch && user && text) {
        rc = slack_fake_dm(sf, ch, user, text, ts, sizeof(ts));
        resp->body = fake_printf(sf->f, "{\"ok\":true,\"ts\":\"%s\"}", ts);
    } else if (strncmp(what, "reaction", 8) == 0 && ch && user &&
               jget(b, "ts") && jget(b, "reaction")) {
        rc = slack_fake_reaction(sf, ch, jget(b, "ts"), user,
                                 jget(b, "reaction"));
    } else if (strncmp(what, "slash", 5) == 0 && ch && user) {
        rc = slack_fake_slash(sf, ch, user, text ? text : "");
    } else if (strncmp(what, "disconnect", 10) == 0 && jget(b, "reason")) {
        slack_fake_disconnect(sf, jget(b, "reason"));
    } else if (strncmp(what, "script", 6) == 0 && jget(b, "method")) {
        json_object *v;
        int status = 0, ra = 1;

        if (json_object_object_get_ex(b, "status", &v))
            status = json_object_get_int(v);
        if (json_object_object_get_ex(b, "retry_after", &v))
            ra = json_object_get_int(v);
        rc = slack_fake_script(sf, jget(b, "method"), jget(b, "error"), status,
                               ra);
    } else if (strncmp(what, "response/", 9) == 0) {
        response_post(sf, req, what + 9, b, resp);
    } else if (strncmp(what, "expire", 6) == 0) {
        slack_fake_response_expire(sf, jget(b, "id"));
    } else if (strncmp(what, "channel_error", 13) == 0 && ch) {
        slack_fake_set_channel_error(sf, ch, jget(b, "error"));
    } else {
        resp->status = 400;
        resp->body = "{\"ok\":false,\"error\":\"bad control request\"}";
    }
    if (rc < 0) {
        resp->status = 500;
        resp->body = "{\"ok\":false,\"error\":\"failed\"}";
    }
    json_object_put(b);
    return 0;
}

/* ---- lifecycle and settings ---- */

struct slack_fake *
slack_fake_new(uv_loop_t *loop, int port)
{
    struct slack_fake *sf = calloc(1, sizeof(*sf));
    char path[32];

    if (sf == NULL)
        return NULL;
    sf->loop = loop;
    sf->redeliver_ms = 3000;
    sf->close_after_ms = 10000;
    sf->hello = 1;
    sf->rate = 1.0;
    sf->burst = 3;
    sf->tier3_per_min = 50;
    sf->tier3_burst = 3;
    sf->ts_base = (int64_t)time(NULL);
    if ((sf->f = fake_new(loop, port)) == NULL) {
        free(sf);
        return NULL;
    }
    snprintf(sf->base, sizeof(sf->base), "http://127.0.0.1:%d/api",
             fake_port(sf->f));
    fake_route(sf->f, "POST", "/api/", api_handler, sf);
    fake_route(sf->f, NULL, "/_fake/", control_handler, sf);
    for (int i = 0; i < SLACK_FAKE_TICKETS; i++) {
        sf->tickets[i].sf = sf;
        sf->tickets[i].n = i + 1;
        snprintf(path, sizeof(path), "/link/%d", i + 1);
        fake_ws_route(sf->f, path, &sf_ws_ops, &sf->tickets[i]);
    }
    uv_timer_init(loop, &sf->tick);
    sf->tick.data = sf;
    uv_timer_start(&sf->tick, sf_tick, 50, 50);
    return sf;
}

static void
sf_tick_closed(uv_handle_t *h)
{
    struct slack_fake *sf = h->data;

    for (size_t i = 0; i < sf->nevents; i++) {
        free(sf->events[i].frame_type);
        free(sf->events[i].payload);
    }
    for (size_t i = 0; i < sf->nmsgs; i++) {
        free(sf->msgs[i].text);
        free(sf->msgs[i].edit_t_ms);
    }
    while (sf->conns) {
        struct sf_conn *c = sf->conns;

        sf->conns = c->next;
        free(c);
    }
    for (size_t i = 0; i < sf->nresps; i++) {
        for (size_t k = 0; k < sf->resps[i].nposts; k++) {
            free(sf->resps[i].posts[k].text);
            free(sf->resps[i].posts[k].type);
        }
        free(sf->resps[i].posts);
    }
    free(sf->resps);
    free(sf->chan_errors);
    free(sf->events);
    free(sf->dels);
    free(sf->msgs);
    free(sf->buckets);
    free(sf->scripts);
    free(sf);
}

void
slack_fake_free(struct slack_fake *sf)
{
    if (sf == NULL)
        return;
    fake_free(sf->f);
    uv_timer_stop(&sf->tick);
    uv_close((uv_handle_t *)&sf->tick, sf_tick_closed);
}

struct fake *
slack_fake_server(struct slack_fake *sf)
{
    return sf->f;
}

int
slack_fake_port(const struct slack_fake *sf)
{
    return fake_port(sf->f);
}

const char *
slack_fake_base(const struct slack_fake *sf)
{
    return sf->base;
}

void
slack_fake_set_redeliver_ms(struct slack_fake *sf, int ms)
{
    sf->redeliver_ms = ms;
}

void
slack_fake_set_close_after_ms(struct slack_fake *sf, int ms)
{
    sf->close_after_ms = ms;
}

void
slack_fake_set_rate(struct slack_fake *sf, double per_s, int burst)
{
    sf->rate = per_s;
    sf->burst = burst > 0 ? burst : 1;
}

void
slack_fake_set_tier3(struct slack_fake *sf, double per_min, int burst)
{
    sf->tier3_per_min = per_min;
    sf->tier3_burst = burst > 0 ? burst : 1;
}

void
slack_fake_set_hello(struct slack_fake *sf, int on)
{
    sf->hello = on;
}

void
slack_fake_set_open_error(struct slack_fake *sf, const char *error)
{
    snprintf(sf->open_error, sizeof(sf->open_error), "%s", error ? error : "");
}

void
slack_fake_set_auth_error(struct slack_fake *sf, const char *error)
{
    snprintf(sf->auth_error, sizeof(sf->auth_error), "%s", error ? error : "");
}

int
slack_fake_script(struct slack_fake *sf, const char *method, const char *error,
                  int status, int retry_after_s)
{
    struct sf_script *s;
    void *p = realloc(sf->scripts, (sf->nscripts + 1) * sizeof(*s));

    if (p == NULL)
        return -1;
    sf->scripts = p;
    s = &sf->scripts[sf->nscripts++];
    memset(s, 0, sizeof(*s));
    snprintf(s->method, sizeof(s->method), "%s", method);
    snprintf(s->error, sizeof(s->error), "%s", error ? error : "");
    s->status = status;
    s->retry_after = retry_after_s;
    return 0;
}

void
slack_fake_stats(const struct slack_fake *sf, struct slack_fake_stats *s)
{
    uint64_t unacked = 0;

    *s = sf->st;
    for (size_t i = 0; i < sf->nevents; i++)
        unacked += !sf->events[i].acked;
    s->unacked = unacked;
    s->live = 0;
    for (struct sf_conn *c = sf->conns; c; c = c->next)
        s->live++;
}

size_t
slack_fake_count(const struct slack_fake *sf, const char *channel, int bot_only)
{
    size_t n = 0;

    for (size_t i = 0; i < sf->nmsgs; i++)
        if ((channel == NULL || strcmp(sf->msgs[i].channel, channel) == 0) &&
            (!bot_only || sf->msgs[i].bot) && !sf->msgs[i].deleted)
            n++;
    return n;
}

/* The most edits of m in any 60 s (edit times are in order). */
static int
edits_per_min_max(const struct sf_msg *m)
{
    size_t lo = 0, best = 0;

    for (size_t hi = 0; hi < m->nedits; hi++) {
        while (m->edit_t_ms[hi] - m->edit_t_ms[lo] >= 60000)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return (int)best;
}

static void
msg_out(const struct sf_msg *m, struct slack_fake_msg *out)
{
    memset(out, 0, sizeof(*out));
    out->channel = m->channel;
    out->ts = m->ts;
    out->thread_ts = m->thread_ts;
    out->user = m->user;
    out->text = m->text ? m->text : "";
    out->bot = m->bot;
    out->deleted = m->deleted;
    out->t_ms = m->t_ms;
    out->nreactions = m->nreactions;
    for (int r = 0; r < m->nreactions; r++)
        out->reactions[r] = m->reactions[r];
    out->edits = (int)m->nedits;
    out->edit_t_ms = m->edit_t_ms;
    out->edits_per_min_max = edits_per_min_max(m);
}

int
slack_fake_message(const struct slack_fake *sf, const char *channel, size_t i,
                   struct slack_fake_msg *out)
{
    for (size_t k = 0; k < sf->nmsgs; k++) {
        const struct sf_msg *m = &sf->msgs[k];

        if ((channel && strcmp(m->channel, channel) != 0) || m->deleted)
            continue;
        if (i-- > 0)
            continue;
        msg_out(m, out);
        return 0;
    }
    return -1;
}

int
slack_fake_find(const struct slack_fake *sf, const char *channel,
                const char *ts, struct slack_fake_msg *out)
{
    for (size_t k = 0; k < sf->nmsgs; k++)
        if (strcmp(sf->msgs[k].channel, channel) == 0 &&
            strcmp(sf->msgs[k].ts, ts) == 0) {
            msg_out(&sf->msgs[k], out);
            return 0;
        }
    return -1;
}

void
slack_fake_set_channel_error(struct slack_fake *sf, const char *channel,
                             const char *error)
{
    struct sf_chan_error *e = NULL;
    void *p;

    for (size_t i = 0; i < sf->nchan_errors; i++)
        if (strcmp(sf->chan_errors[i].channel, channel) == 0)
            e = &sf->chan_errors[i];
    if (error == NULL || error[0] == '\0') {
        if (e != NULL)
            *e = sf->chan_errors[--sf->nchan_errors];
        return;
    }
    if (e == NULL) {
        p = realloc(sf->chan_errors, (sf->nchan_errors + 1) * sizeof(*e));
        if (p == NULL)
            return;
        sf->chan_errors = p;
        e = &sf->chan_errors[sf->nchan_errors++];
        snprintf(e->channel, sizeof(e->channel), "%s", channel);
    }
    snprintf(e->error, sizeof(e->error), "%s", error);
}

void
slack_fake_response_expire(struct slack_fake *sf, const char *id)
{
    for (size_t i = 0; i < sf->nresps; i++)
        if (id == NULL || strcmp(sf->resps[i].id, id) == 0)
            sf->resps[i].expired = 1;
}

size_t
slack_fake_response_count(const struct slack_fake *sf, const char *id)
{
    const struct sf_resp *r = resp_find(sf, id);

    return r ? r->nposts : 0;
}

int
slack_fake_response(const struct slack_fake *sf, const char *id, size_t i,
                    struct slack_fake_resp *out)
{
    const struct sf_resp *r = resp_find(sf, id);

    if (r == NULL || i >= r->nposts)
        return -1;
    out->text = r->posts[i].text ? r->posts[i].text : "";
    out->response_type = r->posts[i].type ? r->posts[i].type : "";
    out->replace_original = r->posts[i].replace;
    out->delete_original = r->posts[i].del;
    out->authorized = r->posts[i].auth;
    out->t_ms = r->posts[i].t_ms;
    return 0;
}
