/* discord_fake: a Discord gateway + REST server for tests (sessions, resume
 * with replay, zombies, close codes, rate-limit buckets, global 429s). */
#include "tests/fakes/discord_fake.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <json-c/json.h>

#define DF_CONNS_MAX 64
#define DF_SESSIONS_MAX 32
#define DF_LOG_MAX 4096 /* dispatches kept per session for replay */
#define DF_BEATS_MAX 100000
#define DF_BUCKETS_MAX 4096
#define DF_INTENT_MESSAGE_CONTENT 32768
#define DF_DISCORD_EPOCH 1420070400000LL
#define DF_GLOBAL_N 50
#define DF_DMS_MAX 64
#define DF_CANNOT_DM 50007 /* "Cannot send messages to this user" */
#define DF_FRAME_MAX 4096
#define DF_IAS_MAX 256
#define DF_IA_MSGS 16
#define DF_IA_TOKEN_LIFE 900000 /* an interaction token: 15 minutes */

/* Discord gives creating, editing and deleting messages a bucket each */
enum df_route {
    DF_R_MESSAGES = 0,
    DF_R_EDIT,
    DF_R_DELETE,
    DF_R_TYPING,
    DF_R_REACTIONS,
    DF_R_DM,      /* POST /users/@me/channels: no channel, one bucket */
    DF_R_WEBHOOK, /* an interaction's webhook: per interaction */
    DF_R_COUNT
};

static const char *const route_bucket[DF_R_COUNT] = {
    "a1b2c3msg", "b8c9edit", "e0f1del", "d4e5typ",
    "f6a7rxn",   "c2d3dm",   "a9b8hook"};

/* An interaction injected: its token, callback and webhook messages. */
struct df_ia {
    char id[24];
    char token[48];
    char channel[24];
    int64_t created_ms;
    int callbacks; /* callback requests (refused ones too) */
    int type;      /* the accepted callback's type, 0 = none */
    int64_t ack_ms;
    char original[24];         /* the @original message, "" = not posted yet */
    char msgs[DF_IA_MSGS][24]; /* follow-ups */
    size_t nmsgs;
};

/* A user's DM channel with the bot, and whether the user takes DMs. */
struct df_dm {
    char user[24];
    char channel[24];
    int refuse; /* enum discord_fake_refuse */
};

struct df_event {
    int64_t seq;
    char *frame;
};

struct df_session {
    int used, valid;
    char id[40];
    int64_t seq;
    struct df_event *log; /* ring of DF_LOG_MAX */
    size_t head, n;
    struct df_conn *conn; /* attached, or NULL */
    int64_t detached_at;
};

struct df_conn {
    struct fake_ws *ws;
    int no;
    int64_t hello_at;
    int identified;
    struct df_session *sess;
    int64_t *sends; /* ring of send_n */
    size_t sends_head, sends_n;
    int closing;
};

struct df_msg {
    char id[24];
    char channel[24];
    char author[24];
    char *content;
    char reply_to[24];
    char nonce[32];
    int64_t t_ms;
    int by_bot;
    int up, down;
    int deleted;
    int64_t *edit_ms; /* when each edit came (fake_now_ms) */
    size_t edits, edit_cap;
};

struct df_bucket {
    enum df_route route;
    char channel[24];
    int64_t start;
    int count;
};

struct discord_fake {
    uv_loop_t *loop;
    struct fake *f;
    char token[128];
    char base[64];
    int interval;
    int acks;
    int content_allowed;
    int start_remaining;
    int64_t start_reset_after;
    int send_n;
    int64_t send_window;
    int64_t resume_window;
    int conn_no, sess_no;
    uint64_t msg_counter;
    struct df_conn conns[DF_CONNS_MAX];
    struct df_session sessions[DF_SESSIONS_MAX];
    struct df_session *current;
    struct df_msg *msgs;
    size_t nmsgs, capmsgs;
    struct df_dm dms[DF_DMS_MAX];
    size_t ndms;
    struct df_ia ias[DF_IAS_MAX];
    size_t nias;
    int64_t ia_deadline; /* callbacks later than this: 10062 */
    int64_t ia_life;     /* webhook calls later than this: 50027 */
    char *commands;      /* the last PUT …/commands body */
    struct df_bucket buckets[DF_BUCKETS_MAX];
    size_t nbuckets;
    int limits[DF_R_COUNT];
    int64_t windows[DF_R_COUNT];
    int64_t global_until;
    int64_t global_script; /* the next request: a global 429 this long */
    int64_t global_issued; /* when the scripted one went out */
    int64_t edit_script;   /* the next edit: a bucket 429 this long */
    int64_t global_ring[DF_GLOBAL_N];
    size_t gr_head, gr_n;
    struct discord_fake_beat *beats;
    size_t nbeats;
    struct discord_fake_stats st;
};

/* ---- helpers ---- */

static int64_t
wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static char *
to_string(json_object *o)
{
    char *s = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(o);
    return s;
}

static const char *
reply_json(struct fake *f, json_object *o)
{
    char *s = to_string(o);
    const char *r = fake_printf(f, "%s", s ? s : "{}");

    free(s);
    return r;
}

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int64_t
jint(json_object *o, const char *key, int64_t dflt)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        (!json_object_is_type(v, json_type_int) &&
         !json_object_is_type(v, json_type_boolean)))
        return dflt;
    return json_object_get_int64(v);
}

static json_object *
parse(const char *s, size_t len)
{
    json_tokener *tok;
    json_object *o;

    if (s == NULL || len == 0)
        return NULL;
    tok = json_tokener_new_ex(64);
    o = json_tokener_parse_ex(tok, s, (int)len);
    json_tokener_free(tok);
    return o;
}

static void
new_snowflake(struct discord_fake *df, char *buf, size_t cap)
{
    uint64_t v = ((uint64_t)(wall_ms() - DF_DISCORD_EPOCH) << 22) |
                 (df->msg_counter++ & 0x3fffff);

    snprintf(buf, cap, "%" PRIu64, v);
}

/* A message that exists (not deleted). */
static struct df_msg *
msg_find(struct discord_fake *df, const char *channel, const char *id)
{
    for (size_t i = 0; i < df->nmsgs; i++)
        if (!df->msgs[i].deleted && strcmp(df->msgs[i].id, id) == 0 &&
            (channel == NULL || strcmp(df->msgs[i].channel, channel) == 0))
            return &df->msgs[i];
    return NULL;
}

static struct df_msg *
msg_add(struct discord_fake *df)
{
    struct df_msg *m;

    if (df->nmsgs == df->capmsgs) {
        size_t cap = df->capmsgs ? df->capmsgs * 2 : 64;
        struct df_msg *n = realloc(df->msgs, cap * sizeof(*n));

        if (n == NULL)
            return NULL;
        df->msgs = n;
        df->capmsgs = cap;
    }
    m = &df->msgs[df->nmsgs++];
    memset(m, 0, sizeof(*m));
    m->t_ms = fake_now_ms();
    return m;
}

/* ---- gateway ---- */

static struct df_conn *
conn_of(struct discord_fake *df, struct fake_ws *ws)
{
    for (int i = 0; i < DF_CONNS_MAX; i++)
        if (df->conns[i].ws == ws)
            return &df->conns[i];
    return NULL;
}

static void
conn_send(struct df_conn *c, const char *s)
{
    if (c != NULL && c->ws != NULL && !c->closing)
        fake_ws_send(c->ws, s, strlen(s));
}

static void
conn_close(struct df_conn *c, int code, const char *reason)
{
    if (c->ws == NULL || c->closing)
        return;
    c->closing = 1;
    fake_ws_close(c->ws, code, reason);
}

static void
session_detach(struct discord_fake *df, struct df_session *s)
{
    if (s->conn != NULL) {
        s->conn->sess = NULL;
        s->conn = NULL;
    }
    s->detached_at = fake_now_ms();
    (void)df;
}

static void
session_free_log(struct df_session *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->log[(s->head + i) % DF_LOG_MAX].frame);
    free(s->log);
    s->log = NULL;
    s->n = s->head = 0;
}

static void
session_invalidate(struct discord_fake *df, struct df_session *s)
{
    session_detach(df, s);
    s->valid = 0;
    session_free_log(s);
    s->used = 0;
    if (df->current == s)
        df->current = NULL;
    df->st.invalidated++;
}

static struct df_session *
session_new(struct discord_fake *df)
{
    struct df_session *s = NULL;

    for (int i = 0; i < DF_SESSIONS_MAX && s == NULL; i++)
        if (!df->sessions[i].used)
            s = &df->sessions[i];
    if (s == NULL) { /* the oldest detached one goes */
        for (int i = 0; i < DF_SESSIONS_MAX && s == NULL; i++)
            if (df->sessions[i].conn == NULL)
                s = &df->sessions[i];
        if (s == NULL)
            return NULL;
        session_invalidate(df, s);
    }
    memset(s, 0, sizeof(*s));
    if ((s->log = calloc(DF_LOG_MAX, sizeof(*s->log))) == NULL)
        return NULL;
    s->used = s->valid = 1;
    snprintf(s->id, sizeof(s->id), "fake-session-%d", ++df->sess_no);
    return s;
}

static struct df_session *
session_find(struct discord_fake *df, const char *id)
{
    for (int i = 0; i < DF_SESSIONS_MAX; i++)
        if (df->sessions[i].used && df->sessions[i].valid &&
            strcmp(df->sessions[i].id, id) == 0)
            return &df->sessions[i];
    return NULL;
}

/* Frames a dispatch {op:0, s, t, d}, logs it and sends it when attached. */
static int64_t
session_dispatch(struct discord_fake *df, struct df_session *s, const char *t,
                 json_object *d, int log)
{
    json_object *o = json_object_new_object();
    struct df_event *e;
    char *frame;

    s->seq++;
    json_object_object_add(o, "op", json_object_new_int(0));
    json_object_object_add(o, "s", json_object_new_int64(s->seq));
    json_object_object_add(o, "t", json_object_new_string(t));
    json_object_object_add(o, "d", d);
    if ((frame = to_string(o)) == NULL)
        return -1;
    if (s->conn != NULL && s->conn->identified) {
        conn_send(s->conn, frame);
        df->st.dispatched++;
    }
    if (!log) {
        free(frame);
        return s->seq;
    }
    if (s->n == DF_LOG_MAX) {
        free(s->log[s->head].frame);
        s->head = (s->head + 1) % DF_LOG_MAX;
        s->n--;
    }
    e = &s->log[(s->head + s->n) % DF_LOG_MAX];
    e->seq = s->seq;
    e->frame = frame;
    s->n++;
    return s->seq;
}

static void
send_hello(struct discord_fake *df, struct df_conn *c)
{
    char buf[128];

    snprintf(buf, sizeof(buf),
             "{\"op\":10,\"d\":{\"heartbeat_interval\":%d},\"s\":null,"
             "\"t\":null}",
             df->interval);
    c->hello_at = fake_now_ms();
    conn_send(c, buf);
}

static void
gw_open(struct fake_ws *ws, void *arg)
{
    struct discord_fake *df = arg;
    struct df_conn *c = conn_of(df, NULL);

    if (c == NULL) {
        fake_ws_close(ws, 4000, "too many connections");
        return;
    }
    memset(c, 0, sizeof(*c));
    c->ws = ws;
    c->no = ++df->conn_no;
    if (df->send_n > 0)
        c->sends = calloc((size_t)df->send_n, sizeof(*c->sends));
    df->st.connections++;
    df->st.live++;
    send_hello(df, c);
}

static void
gw_closed(struct fake_ws *ws, void *arg)
{
    struct discord_fake *df = arg;
    struct df_conn *c = conn_of(df, ws);
    int code = fake_ws_peer_code(ws);

    if (c == NULL)
        return;
    df->st.live--;
    if (code != 0)
        df->st.last_client_close = code;
    if (c->sess != NULL) {
        struct df_session *s = c->sess;

        /* 1000/1001 from the client ends the session; anything else
         * (4000, a drop) keeps it resumable */
        if (code == 1000 || code == 1001)
            session_invalidate(df, s);
        else
            session_detach(df, s);
    }
    free(c->sends);
    memset(c, 0, sizeof(*c));
}

/* The gateway send limit: 1 when this send is one too many. */
static int
over_send_limit(struct discord_fake *df, struct df_conn *c)
{
    int64_t now = fake_now_ms();

    if (df->send_n <= 0 || c->sends == NULL)
        return 0;
    while (c->sends_n > 0 && c->sends[c->sends_head] <= now - df->send_window) {
        c->sends_head = (c->sends_head + 1) % (size_t)df->send_n;
        c->sends_n--;
    }
    if (c->sends_n == (size_t)df->send_n)
        return 1;
    c->sends[(c->sends_head + c->sends_n) % (size_t)df->send_n] = now;
    c->sends_n++;
    return 0;
}

static void
gw_identify(struct discord_fake *df, struct df_conn *c, json_object *d)
{
    const char *token = jstr(d, "token");
    int64_t intents = jint(d, "intents", -1);
    struct df_session *s;
    json_object *ready, *user;
    char url[96];

    df->st.identifies++;
    if (c->identified) {
        conn_close(c, 4005, "Already authenticated.");
        return;
    }
    if (token == NULL || strcmp(token, df->token) != 0) {
        conn_close(c, 4004, "Authentication failed.");
        return;
    }
    if (intents < 0 || intents >= (1 << 26)) {
        conn_close(c, 4013, "Invalid intent(s).");
        return;
    }
    if ((intents & DF_INTENT_MESSAGE_CONTENT) && !df->content_allowed) {
        conn_close(c, 4014, "Disallowed intent(s).");
        return;
    }
    df->start_remaining--;
    if ((s = session_new(df)) == NULL) {
        conn_close(c, 4000, "no session slot");
        return;
    }
    s->conn = c;
    c->sess = s;
    c->identified = 1;
    df->current = s;
    ready = json_object_new_object();
    user = json_object_new_object();
    json_object_object_add(user, "id",
                           json_object_new_string(DISCORD_FAKE_BOT_ID));
    json_object_object_add(user, "username",
                           json_object_new_string(DISCORD_FAKE_BOT_NAME));
    json_object_object_add(user, "bot", json_object_new_boolean(1));
    json_object_object_add(ready, "v", json_object_new_int(10));
    json_object_object_add(ready, "user", user);
    json_object_object_add(ready, "guilds", json_object_new_array());
    json_object_object_add(ready, "session_id", json_object_new_string(s->id));
    {
        json_object *app = json_object_new_object();

        json_object_object_add(app, "id",
                               json_object_new_string(DISCORD_FAKE_APP_ID));
        json_object_object_add(app, "flags", json_object_new_int(0));
        json_object_object_add(ready, "application", app);
    }
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/resume", fake_port(df->f));
    json_object_object_add(ready, "resume_gateway_url",
                           json_object_new_string(url));
    session_dispatch(df, s, "READY", ready, 0);
    df->st.readies++;
}

static void
gw_resume(struct discord_fake *df, struct df_conn *c, json_object *d)
{
    const char *token = jstr(d, "token"), *sid = jstr(d, "session_id");
    int64_t seq = jint(d, "seq", 0);
    struct df_session *s = sid ? session_find(df, sid) : NULL;

    df->st.resumes++;
    if (token == NULL || strcmp(token, df->token) != 0) {
        conn_close(c, 4004, "Authentication failed.");
        return;
    }
    if (s != NULL && s->conn == NULL &&
        fake_now_ms() - s->detached_at > df->resume_window) {
        session_invalidate(df, s);
        s = NULL;
    }
    if (s == NULL) {
        conn_send(c, "{\"op\":9,\"d\":false,\"s\":null,\"t\":null}");
        return;
    }
    if (s->conn != NULL && s->conn != c) { /* the old socket is dead to us */
        struct df_conn *old = s->conn;

        session_detach(df, s);
        conn_close(old, 4009, "Session timed out.");
    }
    s->conn = c;
    c->sess = s;
    c->identified = 1;
    df->current = s;
    for (size_t i = 0; i < s->n; i++) {
        struct df_event *e = &s->log[(s->head + i) % DF_LOG_MAX];

        if (e->seq > seq) {
            conn_send(c, e->frame);
            df->st.replayed++;
        }
    }
    session_dispatch(df, s, "RESUMED", json_object_new_object(), 0);
    df->st.resumed++;
}

static void
gw_text(struct fake_ws *ws, const char *buf, size_t len, void *arg)
{
    struct discord_fake *df = arg;
    struct df_conn *c = conn_of(df, ws);
    json_object *o = NULL, *d = NULL;
    int64_t op;

    if (c == NULL || c->closing)
        return;
    if (len > DF_FRAME_MAX) {
        conn_close(c, 4002, "Error while decoding payload.");
        return;
    }
    if (over_send_limit(df, c)) {
        conn_close(c, 4008, "Rate limited.");
        return;
    }
    if ((o = parse(buf, len)) == NULL ||
        !json_object_is_type(o, json_type_object)) {
        conn_close(c, 4002, "Error while decoding payload.");
        goto out;
    }
    op = jint(o, "op", -1);
    json_object_object_get_ex(o, "d", &d);
    switch (op) {
    case 1:
        df->st.heartbeats++;
        if (df->nbeats < DF_BEATS_MAX) {
            struct discord_fake_beat *b = &df->beats[df->nbeats++];

            b->conn = c->no;
            b->t_ms = fake_now_ms();
            b->since_hello = b->t_ms - c->hello_at;
        }
        if (df->acks) {
            conn_send(c, "{\"op\":11}");
            df->st.acks++;
        }
        break;
    case 2:
        gw_identify(df, c, d);
        break;
    case 6:
        gw_resume(df, c, d);
        break;
    case 3:
    case 4:
    case 8:
        if (!c->identified)
            conn_close(c, 4003, "Not authenticated.");
        break;
    default:
        conn_close(c, 4001, "Unknown opcode.");
        break;
    }
out:
    if (o != NULL)
        json_object_put(o);
}

int
discord_fake_op(struct discord_fake *df, int op, int d)
{
    char buf[64];
    int n = 0;

    if (op == 7)
        snprintf(buf, sizeof(buf),
                 "{\"op\":7,\"d\":null,\"s\":null,\"t\":null}");
    else if (op == 9)
        snprintf(buf, sizeof(buf), "{\"op\":9,\"d\":%s,\"s\":null,\"t\":null}",
                 d ? "true" : "false");
    else if (op == 1)
        snprintf(buf, sizeof(buf), "{\"op\":1,\"d\":null}");
    else
        return -1;
    for (int i = 0; i < DF_CONNS_MAX; i++) {
        struct df_conn *c = &df->conns[i];

        if (c->ws == NULL || c->closing)
            continue;
        conn_send(c, buf);
        n++;
        if (op == 9 && !d && c->sess != NULL)
            session_invalidate(df, c->sess);
    }
    return n;
}

void
discord_fake_close(struct discord_fake *df, int code)
{
    for (int i = 0; i < DF_CONNS_MAX; i++)
        if (df->conns[i].ws != NULL)
            conn_close(&df->conns[i], code, "closed by the test");
}

void
discord_fake_drop(struct discord_fake *df)
{
    for (int i = 0; i < DF_CONNS_MAX; i++)
        if (df->conns[i].ws != NULL && !df->conns[i].closing) {
            df->conns[i].closing = 1;
            fake_ws_drop(df->conns[i].ws);
        }
}

/* ---- injection ---- */

static json_object *
author_json(const char *id, const char *name, int bot)
{
    json_object *a = json_object_new_object();

    json_object_object_add(a, "id", json_object_new_string(id));
    json_object_object_add(a, "username",
                           json_object_new_string(name ? name : "user"));
    if (bot)
        json_object_object_add(a, "bot", json_object_new_boolean(1));
    return a;
}

int64_t
discord_fake_message(struct discord_fake *df, const struct discord_fake_msg *m,
                     char *id, size_t cap)
{
    json_object *d = json_object_new_object(), *mentions;
    const char *content = m->content ? m->content : "";
    const char *author = m->author ? m->author : "1001";
    struct df_msg *ref = NULL, *nm;
    const char *p;
    int guild = m->guild != NULL && m->guild[0] != '\0';

    if (m->channel == NULL || (nm = msg_add(df)) == NULL) {
        json_object_put(d);
        return -1;
    }
    new_snowflake(df, nm->id, sizeof(nm->id));
    snprintf(nm->channel, sizeof(nm->channel), "%s", m->channel);
    snprintf(nm->author, sizeof(nm->author), "%s", author);
    nm->content = strdup(content);
    if (id != NULL)
        snprintf(id, cap, "%s", nm->id);
    json_object_object_add(d, "id", json_object_new_string(nm->id));
    json_object_object_add(d, "channel_id", json_object_new_string(m->channel));
    if (guild) {
        json_object *member = json_object_new_object();

        json_object_object_add(d, "guild_id", json_object_new_string(m->guild));
        json_object_object_add(member, "roles", json_object_new_array());
        json_object_object_add(d, "member", member);
    }
    json_object_object_add(d, "author", author_json(author, m->name, m->bot));
    json_object_object_add(d, "content", json_object_new_string(content));
    json_object_object_add(d, "timestamp",
                           json_object_new_string("2024-01-01T00:00:00+00:00"));
    json_object_object_add(d, "tts", json_object_new_boolean(0));
    if (m->webhook)
        json_object_object_add(d, "webhook_id",
                               json_object_new_string("999000999"));
    mentions = json_object_new_array();
    for (p = strstr(content, "<@"); p != NULL; p = strstr(p + 2, "<@")) {
        const char *q = p + 2;
        char uid[24];
        size_t n = 0;

        if (*q == '!')
            q++;
        while (q[n] >= '0' && q[n] <= '9' && n < sizeof(uid) - 1)
            n++;
        if (n == 0 || q[n] != '>')
            continue;
        memcpy(uid, q, n);
        uid[n] = '\0';
        json_object_array_add(mentions, author_json(uid, "someone", 0));
    }
    if (m->reply_to != NULL && m->reply_to[0] != '\0' &&
        (ref = msg_find(df, m->channel, m->reply_to)) != NULL) {
        json_object *mr = json_object_new_object(), *rm;

        snprintf(nm->reply_to, sizeof(nm->reply_to), "%s", ref->id);
        json_object_object_add(mr, "message_id",
                               json_object_new_string(ref->id));
        json_object_object_add(mr, "channel_id",
                               json_object_new_string(m->channel));
        json_object_object_add(d, "message_reference", mr);
        rm = json_object_new_object();
        json_object_object_add(rm, "id", json_object_new_string(ref->id));
        json_object_object_add(rm, "channel_id",
                               json_object_new_string(m->channel));
        json_object_object_add(
            rm, "author",
            author_json(ref->author, ref->by_bot ? DISCORD_FAKE_BOT_NAME : "u",
                        ref->by_bot));
        json_object_object_add(rm, "content",
                               json_object_new_string(ref->content));
        json_object_object_add(d, "referenced_message", rm);
        /* a reply pings the replied-to author by default */
        json_object_array_add(mentions, author_json(ref->author, "x", 0));
        json_object_object_add(d, "type", json_object_new_int(19));
    } else {
        json_object_object_add(d, "type", json_object_new_int(0));
    }
    json_object_object_add(d, "mentions", mentions);
    if (df->current == NULL || !df->current->valid) {
        json_object_put(d);
        return 0;
    }
    return session_dispatch(df, df->current, "MESSAGE_CREATE", d, 1);
}

/* MESSAGE_REACTION_ADD (removed 0) or _REMOVE, which, as Discord's, has
 * no member and no message_author_id. */
static int64_t
reaction_dispatch(struct discord_fake *df, const char *channel,
                  const char *message, const char *user, const char *emoji,
                  int removed)
{
    json_object *d, *e;
    struct df_msg *m = removed ? NULL : msg_find(df, channel, message);

    if (df->current == NULL || !df->current->valid)
        return 0;
    d = json_object_new_object();
    e = json_object_new_object();
    json_object_object_add(d, "user_id", json_object_new_string(user));
    json_object_object_add(d, "channel_id", json_object_new_string(channel));
    json_object_object_add(d, "message_id", json_object_new_string(message));
    if (m != NULL)
        json_object_object_add(d, "message_author_id",
                               json_object_new_string(m->author));
    json_object_object_add(e, "id", NULL);
    json_object_object_add(e, "name", json_object_new_string(emoji));
    json_object_object_add(d, "emoji", e);
    json_object_object_add(d, "burst", json_object_new_boolean(0));
    json_object_object_add(d, "type", json_object_new_int(0));
    return session_dispatch(
        df, df->current,
        removed ? "MESSAGE_REACTION_REMOVE" : "MESSAGE_REACTION_ADD", d, 1);
}

int64_t
discord_fake_reaction(struct discord_fake *df, const char *channel,
                      const char *message, const char *user, const char *emoji)
{
    return reaction_dispatch(df, channel, message, user, emoji, 0);
}

int64_t
discord_fake_reaction_remove(struct discord_fake *df, const char *channel,
                             const char *message, const char *user,
                             const char *emoji)
{
    return reaction_dispatch(df, channel, message, user, emoji, 1);
}

/* ---- REST ---- */

static int
rest_error(struct discord_fake *df, struct fake_response *resp, int status,
           const char *message, int code)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "message", json_object_new_string(message));
    json_object_object_add(o, "code", json_object_new_int(code));
    resp->status = status;
    resp->body = reply_json(df->f, o);
    return 0;
}

static int
rest_429(struct discord_fake *df, struct fake_response *resp, int64_t wait,
         int global, const char *bucket_headers)
{
    json_object *o = json_object_new_object();
    char ra[32];

    json_object_object_add(
        o, "message", json_object_new_string("You are being rate limited."));
    json_object_object_add(o, "retry_after",
                           json_object_new_double((double)wait / 1000.0));
    json_object_object_add(o, "global", json_object_new_boolean(global));
    if (global)
        json_object_object_add(o, "code", json_object_new_int(0));
    resp->status = 429;
    resp->body = reply_json(df->f, o);
    snprintf(ra, sizeof(ra), "%" PRId64, (wait + 999) / 1000);
    if (global)
        resp->headers = fake_printf(df->f,
                                    "Retry-After: %s\r\nX-RateLimit-Global: "
                                    "true\r\nX-RateLimit-Scope: global\r\n",
                                    ra);
    else
        resp->headers = fake_printf(df->f, "Retry-After: %s\r\n%s", ra,
                                    bucket_headers ? bucket_headers : "");
    df->st.r429++;
    if (global)
        df->st.r429_global++;
    return 0;
}

/* The global gate: 0 to go on, else a 429 was written. */
static int
global_gate(struct discord_fake *df, struct fake_response *resp)
{
    int64_t now = fake_now_ms();

    if (df->global_script > 0) {
        df->global_until = now + df->global_script;
        df->global_issued = now;
        rest_429(df, resp, df->global_script, 1, NULL);
        df->global_script = 0;
        return 1;
    }
    if (now < df->global_until) {
        /* a request already in flight when the 429 went out is the
         * client's bad luck, not its fault */
        if (now - df->global_issued >= DISCORD_FAKE_SLACK_MS)
            df->st.caused_429++;
        rest_429(df, resp, df->global_until - now, 1, NULL);
        return 1;
    }
    while (df->gr_n > 0 && df->global_ring[df->gr_head] <= now - 1000) {
        df->gr_head = (df->gr_head + 1) % DF_GLOBAL_N;
        df->gr_n--;
    }
    if (df->gr_n == DF_GLOBAL_N) {
        df->st.caused_429++;
        rest_429(df, resp, df->global_ring[df->gr_head] + 1000 - now, 1, NULL);
        return 1;
    }
    df->global_ring[(df->gr_head + df->gr_n) % DF_GLOBAL_N] = now;
    df->gr_n++;
    return 0;
}

/* The route's bucket for the channel, its window rolled on to now. */
static struct df_bucket *
bucket_get(struct discord_fake *df, enum df_route r, const char *channel,
           int64_t now)
{
    struct df_bucket *b = NULL;

    for (size_t i = 0; i < df->nbuckets && b == NULL; i++)
        if (df->buckets[i].route == r &&
            strcmp(df->buckets[i].channel, channel) == 0)
            b = &df->buckets[i];
    if (b == NULL) {
        if (df->nbuckets == DF_BUCKETS_MAX)
            df->nbuckets = 0; /* a test never gets here; stay bounded */
        b = &df->buckets[df->nbuckets++];
        memset(b, 0, sizeof(*b));
        b->route = r;
        snprintf(b->channel, sizeof(b->channel), "%.23s", channel);
        b->start = now;
    }
    if (now >= b->start + df->windows[r]) {
        b->start = now;
        b->count = 0;
    }
    return b;
}

/* A bucket 429 for route r, the bucket empty for `left` ms. */
static void
bucket_429(struct discord_fake *df, enum df_route r, int64_t left,
           struct fake_response *resp)
{
    const char *hdr =
        fake_printf(df->f,
                    "X-RateLimit-Limit: %d\r\nX-RateLimit-Remaining: "
                    "0\r\nX-RateLimit-Reset: %.3f\r\n"
                    "X-RateLimit-Reset-After: %.3f\r\n"
                    "X-RateLimit-Bucket: %s\r\nX-RateLimit-Scope: user\r\n",
                    df->limits[r], (double)(wall_ms() + left) / 1000.0,
                    (double)left / 1000.0, route_bucket[r]);

    rest_429(df, resp, left, 0, hdr);
}

/* The route's bucket for the channel: 0 to go on (headers set), else 429. */
static int
bucket_gate(struct discord_fake *df, enum df_route r, const char *channel,
            struct fake_response *resp)
{
    int64_t now = fake_now_ms(), left;
    struct df_bucket *b = bucket_get(df, r, channel, now);

    left = b->start + df->windows[r] - now;
    if (b->count >= df->limits[r]) {
        df->st.caused_429++;
        bucket_429(df, r, left, resp);
        return 1;
    }
    b->count++;
    resp->headers = fake_printf(
        df->f,
        "X-RateLimit-Limit: %d\r\nX-RateLimit-Remaining: %d\r\n"
        "X-RateLimit-Reset: %.3f\r\nX-RateLimit-Reset-After: %.3f\r\n"
        "X-RateLimit-Bucket: %s\r\n",
        df->limits[r], df->limits[r] - b->count,
        (double)(wall_ms() + left) / 1000.0, (double)left / 1000.0,
        route_bucket[r]);
    return 0;
}

/* The scripted 429 on an edit: as long as asked, and at least until the
 * bucket's window ends (so that the client, believing the bucket full
 * again after it, is right). */
static int
edit_429(struct discord_fake *df, const char *channel,
         struct fake_response *resp)
{
    int64_t now = fake_now_ms(), left;
    struct df_bucket *b = bucket_get(df, DF_R_EDIT, channel, now);

    left = b->start + df->windows[DF_R_EDIT] - now;
    if (left < df->edit_script)
        left = df->edit_script;
    df->edit_script = 0;
    bucket_429(df, DF_R_EDIT, left, resp);
    return 0;
}

/* UTF-8 characters (code points) in s. */
static size_t
utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* The message object Discord answers a create or an edit with. */
static json_object *
message_json(const struct df_msg *m)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(m->id));
    json_object_object_add(o, "channel_id", json_object_new_string(m->channel));
    json_object_object_add(o, "content", json_object_new_string(m->content));
    json_object_object_add(
        o, "author",
        author_json(DISCORD_FAKE_BOT_ID, DISCORD_FAKE_BOT_NAME, 1));
    json_object_object_add(o, "type",
                           json_object_new_int(m->reply_to[0] ? 19 : 0));
    json_object_object_add(o, "timestamp",
                           json_object_new_string("2024-01-01T00:00:00+00:00"));
    json_object_object_add(
        o, "edited_timestamp",
        m->edits > 0 ? json_object_new_string("2024-01-01T00:00:01+00:00")
                     : NULL);
    if (m->nonce[0])
        json_object_object_add(o, "nonce", json_object_new_string(m->nonce));
    return o;
}

/* The body must be {content (1..2000 characters), allowed_mentions
 * {parse: []}}: 0, or an error was written. */
static int
check_content(struct discord_fake *df, json_object *body,
              struct fake_response *resp)
{
    const char *content = jstr(body, "content"), *why = NULL;
    json_object *am = NULL, *parse_list = NULL;
    int code = 50035;

    if (body == NULL || content == NULL || content[0] == '\0') {
        why = "Cannot send an empty message";
        code = 50006;
    } else if (utf8_chars(content) > 2000) {
        why = "Invalid Form Body";
    } else if (!json_object_object_get_ex(body, "allowed_mentions", &am) ||
               !json_object_object_get_ex(am, "parse", &parse_list) ||
               json_object_array_length(parse_list) != 0) {
        /* echoed text must not ping anyone */
        why = "fake: allowed_mentions.parse must be []";
    }
    if (why == NULL)
        return 0;
    rest_error(df, resp, 400, why, code);
    return -1;
}

static int
record_edit(struct df_msg *m)
{
    if (m->edits == m->edit_cap) {
        size_t cap = m->edit_cap ? m->edit_cap * 2 : 16;
        int64_t *n = realloc(m->edit_ms, cap * sizeof(*n));

        if (n == NULL)
            return -1;
        m->edit_ms = n;
        m->edit_cap = cap;
    }
    m->edit_ms[m->edits++] = fake_now_ms();
    return 0;
}

/* Discord tells the gateway about edits and deletes too (the bot must
 * not take them for new messages). */
static void
dispatch_change(struct discord_fake *df, const struct df_msg *m, int deleted)
{
    json_object *d;

    if (df->current == NULL || !df->current->valid)
        return;
    if (deleted) {
        d = json_object_new_object();
        json_object_object_add(d, "id", json_object_new_string(m->id));
        json_object_object_add(d, "channel_id",
                               json_object_new_string(m->channel));
    } else {
        d = message_json(m);
    }
    session_dispatch(df, df->current,
                     deleted ? "MESSAGE_DELETE" : "MESSAGE_UPDATE", d, 1);
}

/* PATCH /channels/{c}/messages/{m}: 200 with the message, also when the
 * content is the same (Discord has no "not modified"). */
static int
rest_edit(struct discord_fake *df, const char *channel, const char *id,
          const struct fake_request *req, struct fake_response *resp)
{
    json_object *body = parse(req->body, req->body_len);
    struct df_msg *m = msg_find(df, channel, id);
    char *content;

    if (m == NULL) {
        df->st.unknown_message++;
        rest_error(df, resp, 404, "Unknown Message", 10008);
        goto out;
    }
    if (!m->by_bot) {
        rest_error(df, resp, 403,
                   "Cannot edit a message authored by another user", 50005);
        goto out;
    }
    if (check_content(df, body, resp) < 0)
        goto out;
    if (strcmp(m->content, jstr(body, "content")) == 0)
        df->st.edit_same++;
    if ((content = strdup(jstr(body, "content"))) == NULL ||
        record_edit(m) < 0) {
        free(content);
        rest_error(df, resp, 500, "fake: out of memory", 0);
        goto out;
    }
    free(m->content);
    m->content = content;
    df->st.edits++;
    resp->status = 200;
    resp->body = reply_json(df->f, message_json(m));
    dispatch_change(df, m, 0);
out:
    if (body != NULL)
        json_object_put(body);
    return 0;
}

/* DELETE /channels/{c}/messages/{m}: 204; gone → 404 10008. */
static int
rest_delete(struct discord_fake *df, const char *channel, const char *id,
            struct fake_response *resp)
{
    struct df_msg *m = msg_find(df, channel, id);

    if (m == NULL) {
        df->st.unknown_message++;
        return rest_error(df, resp, 404, "Unknown Message", 10008);
    }
    if (!m->by_bot) /* the fake bot has no Manage Messages */
        return rest_error(df, resp, 403, "Missing Permissions", 50013);
    m->deleted = 1;
    df->st.deletes++;
    resp->status = 204;
    dispatch_change(df, m, 1);
    return 0;
}

static struct df_dm *
dm_of_user(struct discord_fake *df, const char *user)
{
    for (size_t i = 0; i < df->ndms; i++)
        if (strcmp(df->dms[i].user, user) == 0)
            return &df->dms[i];
    return NULL;
}

static struct df_dm *
dm_of_channel(struct discord_fake *df, const char *channel)
{
    for (size_t i = 0; i < df->ndms; i++)
        if (strcmp(df->dms[i].channel, channel) == 0)
            return &df->dms[i];
    return NULL;
}

/* user's entry, made (without a channel yet) when new; NULL when full. */
static struct df_dm *
dm_get(struct discord_fake *df, const char *user)
{
    struct df_dm *m = dm_of_user(df, user);

    if (m != NULL || df->ndms == DF_DMS_MAX)
        return m;
    m = &df->dms[df->ndms++];
    memset(m, 0, sizeof(*m));
    snprintf(m->user, sizeof(m->user), "%.23s", user);
    return m;
}

/* POST /users/@me/channels {recipient_id}: the user's DM channel (the
 * same one every time), or 403 50007 when the user refuses DMs. */
static int
rest_dm_open(struct discord_fake *df, const struct fake_request *req,
             struct fake_response *resp)
{
    json_object *body = parse(req->body, req->body_len), *o, *rs, *u;
    const char *user = jstr(body, "recipient_id");
    struct df_dm *m = NULL;
    int rc = 0;

    if (user == NULL || user[0] == '\0' ||
        strspn(user, "0123456789") != strlen(user) || strlen(user) > 20) {
        rc = rest_error(df, resp, 400, "Invalid Form Body", 50035);
        goto out;
    }
    if ((m = dm_get(df, user)) == NULL) {
        rc = -1;
        goto out;
    }
    if (m->refuse == DISCORD_FAKE_REFUSE_OPEN) {
        df->st.dm_refused++;
        rc = rest_error(df, resp, 403, "Cannot send messages to this user",
                        DF_CANNOT_DM);
        goto out;
    }
    if (m->channel[0] == '\0')
        new_snowflake(df, m->channel, sizeof(m->channel));
    df->st.dm_opens++;
    o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(m->channel));
    json_object_object_add(o, "type", json_object_new_int(1));
    json_object_object_add(o, "last_message_id", NULL);
    rs = json_object_new_array();
    u = json_object_new_object();
    json_object_object_add(u, "id", json_object_new_string(m->user));
    json_object_object_add(u, "username", json_object_new_string("someone"));
    json_object_array_add(rs, u);
    json_object_object_add(o, "recipients", rs);
    resp->status = 200;
    resp->body = reply_json(df->f, o);
out:
    if (body != NULL)
        json_object_put(body);
    return rc;
}

static int
rest_create(struct discord_fake *df, const char *channel,
            const struct fake_request *req, struct fake_response *resp)
{
    json_object *body = parse(req->body, req->body_len), *ref = NULL;
    const char *content = jstr(body, "content"), *nonce = jstr(body, "nonce");
    int enforce = (int)jint(body, "enforce_nonce", 0);
    struct df_msg *m = NULL;
    struct df_dm *dm = dm_of_channel(df, channel);

    if (dm != NULL && dm->refuse == DISCORD_FAKE_REFUSE_SEND) {
        df->st.dm_refused++;
        rest_error(df, resp, 403, "Cannot send messages to this user",
                   DF_CANNOT_DM);
        goto out;
    }
    if (check_content(df, body, resp) < 0)
        goto out;
    if (nonce != NULL && enforce)
        for (size_t i = 0; i < df->nmsgs; i++)
            if (df->msgs[i].by_bot && strcmp(df->msgs[i].nonce, nonce) == 0 &&
                strcmp(df->msgs[i].channel, channel) == 0) {
                m = &df->msgs[i];
                df->st.dup_nonce++;
                break;
            }
    if (m == NULL) {
        if ((m = msg_add(df)) == NULL)
            return -1;
        new_snowflake(df, m->id, sizeof(m->id));
        snprintf(m->channel, sizeof(m->channel), "%.23s", channel);
        snprintf(m->author, sizeof(m->author), "%s", DISCORD_FAKE_BOT_ID);
        m->content = strdup(content);
        m->by_bot = 1;
        snprintf(m->nonce, sizeof(m->nonce), "%s", nonce ? nonce : "");
        if (json_object_object_get_ex(body, "message_reference", &ref))
            snprintf(m->reply_to, sizeof(m->reply_to), "%s",
                     jstr(ref, "message_id") ? jstr(ref, "message_id") : "");
        df->st.created++;
    }
    resp->status = 200;
    resp->body = reply_json(df->f, message_json(m));
out:
    if (body != NULL)
        json_object_put(body);
    return 0;
}

/* ---- interactions (slash commands) ---- */

int64_t
discord_fake_interaction(struct discord_fake *df,
                         const struct discord_fake_ia *x, char *id, size_t cap)
{
    json_object *d, *data, *opts, *opt, *user;
    struct df_ia *ia;
    char iid[24];

    if (x->id != NULL && x->id[0] != '\0') {
        /* the same interaction again (Discord replays it on a resume) */
        snprintf(iid, sizeof(iid), "%s", x->id);
        ia = NULL;
        for (size_t i = 0; i < df->nias; i++)
            if (strcmp(df->ias[i].id, iid) == 0)
                ia = &df->ias[i];
        if (ia == NULL)
            return -1;
    } else {
        if (df->nias == DF_IAS_MAX || x->channel == NULL)
            return -1;
        ia = &df->ias[df->nias++];
        memset(ia, 0, sizeof(*ia));
        new_snowflake(df, iid, sizeof(iid));
        memcpy(ia->id, iid, sizeof(ia->id));
        snprintf(ia->token, sizeof(ia->token), "aW50ZXJhY3Rpb24.%s-tok", iid);
        snprintf(ia->channel, sizeof(ia->channel), "%s", x->channel);
        ia->created_ms = fake_now_ms();
    }
    if (id != NULL)
        snprintf(id, cap, "%s", ia->id);
    d = json_object_new_object();
    json_object_object_add(d, "id", json_object_new_string(ia->id));
    json_object_object_add(d, "application_id",
                           json_object_new_string(DISCORD_FAKE_APP_ID));
    json_object_object_add(d, "type", json_object_new_int(2));
    json_object_object_add(d, "token", json_object_new_string(ia->token));
    json_object_object_add(d, "version", json_object_new_int(1));
    json_object_object_add(d, "channel_id",
                           json_object_new_string(ia->channel));
    user = author_json(x->user ? x->user : "1001", x->name, 0);
    if (x->guild != NULL && x->guild[0] != '\0') {
        json_object *member = json_object_new_object();

        json_object_object_add(d, "guild_id", json_object_new_string(x->guild));
        json_object_object_add(member, "user", user);
        json_object_object_add(member, "roles", json_object_new_array());
        json_object_object_add(
            member, "permissions",
            json_object_new_string(x->permissions ? x->permissions : "0"));
        json_object_object_add(d, "member", member);
    } else {
        json_object_object_add(d, "user", user);
    }
    data = json_object_new_object();
    json_object_object_add(data, "id", json_object_new_string("7777"));
    json_object_object_add(
        data, "name",
        json_object_new_string(x->command ? x->command : "parley"));
    json_object_object_add(data, "type", json_object_new_int(1));
    if (x->text != NULL) {
        opts = json_object_new_array();
        opt = json_object_new_object();
        json_object_object_add(opt, "name", json_object_new_string("text"));
        json_object_object_add(opt, "type", json_object_new_int(3));
        json_object_object_add(opt, "value", json_object_new_string(x->text));
        json_object_array_add(opts, opt);
        json_object_object_add(data, "options", opts);
    }
    json_object_object_add(d, "data", data);
    if (df->current == NULL || !df->current->valid) {
        json_object_put(d);
        return 0;
    }
    return session_dispatch(df, df->current, "INTERACTION_CREATE", d, 1);
}

static struct df_ia *
ia_by_id(struct discord_fake *df, const char *id)
{
    for (size_t i = 0; i < df->nias; i++)
        if (strcmp(df->ias[i].id, id) == 0)
            return &df->ias[i];
    return NULL;
}

static struct df_ia *
ia_by_token(struct discord_fake *df, const char *token)
{
    for (size_t i = 0; i < df->nias; i++)
        if (strcmp(df->ias[i].token, token) == 0)
            return &df->ias[i];
    return NULL;
}

/* POST /interactions/{id}/{token}/callback: once, within the deadline. */
static int
rest_ia_callback(struct discord_fake *df, const char *id, const char *token,
                 const struct fake_request *req, struct fake_response *resp)
{
    struct df_ia *ia = ia_by_id(df, id);
    json_object *body;
    int64_t type;

    if (ia == NULL || strcmp(ia->token, token) != 0)
        return rest_error(df, resp, 404, "Unknown interaction", 10062);
    ia->callbacks++;
    if (ia->type != 0) {
        df->st.ia_refused++;
        return rest_error(df, resp, 400,
                          "Interaction has already been acknowledged.", 40060);
    }
    if (fake_now_ms() - ia->created_ms > df->ia_deadline) {
        df->st.ia_refused++;
        return rest_error(df, resp, 404, "Unknown interaction", 10062);
    }
    body = parse(req->body, req->body_len);
    type = jint(body, "type", 0);
    if (body != NULL)
        json_object_put(body);
    if (type != 4 && type != 5)
        return rest_error(df, resp, 400, "Invalid Form Body", 50035);
    ia->type = (int)type;
    ia->ack_ms = fake_now_ms();
    df->st.ia_callbacks++;
    resp->status = 204;
    return 0;
}

/* A bot message in the interaction's channel (as the webhook posts). */
static struct df_msg *
ia_post(struct discord_fake *df, struct df_ia *ia, const char *content)
{
    struct df_msg *m = msg_add(df);

    if (m == NULL)
        return NULL;
    new_snowflake(df, m->id, sizeof(m->id));
    snprintf(m->channel, sizeof(m->channel), "%s", ia->channel);
    snprintf(m->author, sizeof(m->author), "%s", DISCORD_FAKE_BOT_ID);
    m->content = strdup(content);
    m->by_bot = 1;
    df->st.created++;
    return m;
}

/*
 * /webhooks/{app}/{token}[/messages/{@original|id}]: the interaction's
 * webhook, there once the callback was accepted, for DF_IA_TOKEN_LIFE.
 */
static int
rest_webhook(struct discord_fake *df, char seg[8][96], int n,
             const struct fake_request *req, struct fake_response *resp)
{
    struct df_ia *ia = ia_by_token(df, seg[2]);
    const char *mid = n == 5 ? seg[4] : NULL;
    json_object *body = NULL;
    struct df_msg *m;
    int rc = 0;

    if (strcmp(seg[1], DISCORD_FAKE_APP_ID) != 0 || ia == NULL ||
        ia->type == 0) {
        df->st.ia_webhook_refused++;
        return rest_error(df, resp, 404, "Unknown Webhook", 10015);
    }
    if (fake_now_ms() - ia->created_ms > df->ia_life) {
        df->st.ia_webhook_refused++;
        return rest_error(df, resp, 401, "Invalid Webhook Token", 50027);
    }
    if (bucket_gate(df, DF_R_WEBHOOK, ia->id, resp))
        return 0;
    if (mid != NULL && strcmp(mid, "@original") == 0) {
        if (strcmp(req->method, "PATCH") != 0 &&
            strcmp(req->method, "DELETE") != 0)
            return rest_error(df, resp, 405, "405: Method Not Allowed", 0);
        if (ia->original[0] == '\0' && strcmp(req->method, "PATCH") == 0) {
            /* the deferred "thinking…" gets its first content */
            body = parse(req->body, req->body_len);
            if (check_content(df, body, resp) < 0)
                goto out;
            if ((m = ia_post(df, ia, jstr(body, "content"))) == NULL) {
                rc = -1;
                goto out;
            }
            snprintf(ia->original, sizeof(ia->original), "%s", m->id);
            df->st.ia_originals++;
            resp->status = 200;
            resp->body = reply_json(df->f, message_json(m));
            goto out;
        }
        mid = ia->original;
    }
    if (mid != NULL) {
        int ours = strcmp(mid, ia->original) == 0;

        for (size_t i = 0; i < ia->nmsgs && !ours; i++)
            ours = strcmp(mid, ia->msgs[i]) == 0;
        if (!ours || mid[0] == '\0') {
            df->st.unknown_message++;
            return rest_error(df, resp, 404, "Unknown Message", 10008);
        }
        if (strcmp(req->method, "PATCH") == 0) {
            if (strcmp(mid, ia->original) == 0)
                df->st.ia_originals++;
            return rest_edit(df, ia->channel, mid, req, resp);
        }
        if (strcmp(req->method, "DELETE") == 0)
            return rest_delete(df, ia->channel, mid, resp);
        return rest_error(df, resp, 405, "405: Method Not Allowed", 0);
    }
    if (strcmp(req->method, "POST") != 0)
        return rest_error(df, resp, 405, "405: Method Not Allowed", 0);
    body = parse(req->body, req->body_len);
    if (check_content(df, body, resp) < 0)
        goto out;
    if (ia->nmsgs == DF_IA_MSGS ||
        (m = ia_post(df, ia, jstr(body, "content"))) == NULL) {
        rest_error(df, resp, 400, "fake: too many follow-ups", 0);
        goto out;
    }
    snprintf(ia->msgs[ia->nmsgs++], sizeof(ia->msgs[0]), "%s", m->id);
    df->st.ia_followups++;
    resp->status = 200;
    resp->body = reply_json(df->f, message_json(m));
out:
    if (body != NULL)
        json_object_put(body);
    return rc;
}

/* PUT /applications/{app}/commands: a bulk overwrite, recorded. */
static int
rest_commands(struct discord_fake *df, const char *app,
              const struct fake_request *req, struct fake_response *resp)
{
    json_object *body = parse(req->body, req->body_len);

    if (strcmp(app, DISCORD_FAKE_APP_ID) != 0) {
        if (body != NULL)
            json_object_put(body);
        return rest_error(df, resp, 403, "Missing Access", 50001);
    }
    if (body == NULL || !json_object_is_type(body, json_type_array)) {
        if (body != NULL)
            json_object_put(body);
        return rest_error(df, resp, 400, "Invalid Form Body", 50035);
    }
    free(df->commands);
    df->commands = strndup(req->body, req->body_len);
    df->st.commands_put++;
    resp->status = 200;
    resp->body = reply_json(df->f, body); /* as Discord: the commands */
    return 0;
}

/* Path segments after /api/v10/: up to 8, each into its own buffer. */
static int
split_path(const char *path, char seg[8][96])
{
    int n = 0;
    const char *p = path;

    while (*p == '/')
        p++;
    while (*p != '\0' && *p != '?' && n < 8) {
        size_t k = strcspn(p, "/?");

        if (k >= 96)
            return -1;
        memcpy(seg[n], p, k);
        seg[n][k] = '\0';
        n++;
        p += k;
        while (*p == '/')
            p++;
    }
    return n;
}

static int
rest_handler(struct fake *f, const struct fake_request *req,
             struct fake_response *resp, void *arg)
{
    struct discord_fake *df = arg;
    const char *auth = fake_request_header(req, "authorization");
    char expect[160], seg[8][96];
    int n;

    (void)f;
    n = split_path(req->path + strlen("/api/v10"), seg);
    /* an interaction's routes: the token in the path is the credential */
    if (n == 4 && strcmp(seg[0], "interactions") == 0 &&
        strcmp(seg[3], "callback") == 0 && strcmp(req->method, "POST") == 0)
        return rest_ia_callback(df, seg[1], seg[2], req, resp);
    if ((n == 3 || n == 5) && strcmp(seg[0], "webhooks") == 0 &&
        (n == 3 || strcmp(seg[3], "messages") == 0)) {
        if (global_gate(df, resp))
            return 0;
        return rest_webhook(df, seg, n, req, resp);
    }
    snprintf(expect, sizeof(expect), "Bot %s", df->token);
    if (auth == NULL || strcmp(auth, expect) != 0) {
        df->st.unauthorized++;
        return rest_error(df, resp, 401, "401: Unauthorized", 0);
    }
    if (global_gate(df, resp))
        return 0;
    if (n == 3 && strcmp(seg[0], "applications") == 0 &&
        strcmp(seg[2], "commands") == 0 && strcmp(req->method, "PUT") == 0)
        return rest_commands(df, seg[1], req, resp);
    if (n == 2 && strcmp(seg[0], "gateway") == 0 &&
        strcmp(seg[1], "bot") == 0 && strcmp(req->method, "GET") == 0) {
        resp->body = fake_printf(
            df->f,
            "{\"url\":\"ws://127.0.0.1:%d/gateway\",\"shards\":1,"
            "\"session_start_limit\":{\"total\":1000,\"remaining\":%d,"
            "\"reset_after\":%" PRId64 ",\"max_concurrency\":1}}",
            fake_port(df->f), df->start_remaining < 0 ? 0 : df->start_remaining,
            df->start_reset_after);
        return 0;
    }
    if (n == 3 && strcmp(seg[0], "users") == 0 && strcmp(seg[1], "@me") == 0 &&
        strcmp(seg[2], "channels") == 0 && strcmp(req->method, "POST") == 0) {
        if (bucket_gate(df, DF_R_DM, "", resp))
            return 0;
        return rest_dm_open(df, req, resp);
    }
    if (n >= 3 && strcmp(seg[0], "channels") == 0) {
        const char *ch = seg[1];

        if (n == 3 && strcmp(seg[2], "messages") == 0 &&
            strcmp(req->method, "POST") == 0) {
            if (bucket_gate(df, DF_R_MESSAGES, ch, resp))
                return 0;
            return rest_create(df, ch, req, resp);
        }
        if (n == 4 && strcmp(seg[2], "messages") == 0 &&
            strcmp(req->method, "PATCH") == 0) {
            if (df->edit_script > 0)
                return edit_429(df, ch, resp);
            if (bucket_gate(df, DF_R_EDIT, ch, resp))
                return 0;
            return rest_edit(df, ch, seg[3], req, resp);
        }
        if (n == 4 && strcmp(seg[2], "messages") == 0 &&
            strcmp(req->method, "DELETE") == 0) {
            if (bucket_gate(df, DF_R_DELETE, ch, resp))
                return 0;
            return rest_delete(df, ch, seg[3], resp);
        }
        if (n == 3 && strcmp(seg[2], "typing") == 0 &&
            strcmp(req->method, "POST") == 0) {
            if (bucket_gate(df, DF_R_TYPING, ch, resp))
                return 0;
            df->st.typing++;
            resp->status = 204;
            return 0;
        }
        if (n == 7 && strcmp(seg[2], "messages") == 0 &&
            strcmp(seg[4], "reactions") == 0 && strcmp(seg[6], "@me") == 0 &&
            strcmp(req->method, "PUT") == 0) {
            struct df_msg *m;

            if (bucket_gate(df, DF_R_REACTIONS, ch, resp))
                return 0;
            if ((m = msg_find(df, ch, seg[3])) == NULL)
                return rest_error(df, resp, 404, "Unknown Message", 10008);
            /* lws hands the path over URL-decoded */
            if (strcmp(seg[5], "\xf0\x9f\x91\x8d") == 0)
                m->up = 1;
            else if (strcmp(seg[5], "\xf0\x9f\x91\x8e") == 0)
                m->down = 1;
            df->st.reactions++;
            /* Discord tells the gateway about the bot's own reactions too */
            discord_fake_reaction(df, ch, seg[3], DISCORD_FAKE_BOT_ID, seg[5]);
            resp->status = 204;
            return 0;
        }
    }
    return rest_error(df, resp, 404, "404: Not Found", 0);
}

/* ---- the control API ---- */

static json_object *
sent_json(const struct df_msg *m)
{
    json_object *o = json_object_new_object(), *r = json_object_new_array();

    json_object_object_add(o, "id", json_object_new_string(m->id));
    json_object_object_add(o, "channel", json_object_new_string(m->channel));
    json_object_object_add(o, "content", json_object_new_string(m->content));
    json_object_object_add(o, "reply_to", json_object_new_string(m->reply_to));
    json_object_object_add(o, "nonce", json_object_new_string(m->nonce));
    json_object_object_add(o, "t_ms", json_object_new_int64(m->t_ms));
    json_object_object_add(o, "edits",
                           json_object_new_int64((int64_t)m->edits));
    json_object_object_add(o, "deleted", json_object_new_boolean(m->deleted));
    if (m->up)
        json_object_array_add(r, json_object_new_string("\xf0\x9f\x91\x8d"));
    if (m->down)
        json_object_array_add(r, json_object_new_string("\xf0\x9f\x91\x8e"));
    json_object_object_add(o, "reactions", r);
    return o;
}

static int
control_handler(struct fake *f, const struct fake_request *req,
                struct fake_response *resp, void *arg)
{
    struct discord_fake *df = arg;
    json_object *b = parse(req->body, req->body_len), *o;
    const char *p = req->path + strlen("/_fake/");

    (void)f;
    resp->body = "{\"ok\":true}";
    if (strcmp(p, "message") == 0) {
        struct discord_fake_msg m = {
            jstr(b, "channel"),     jstr(b, "guild"),
            jstr(b, "author"),      jstr(b, "name"),
            jstr(b, "content"),     jstr(b, "reply_to"),
            (int)jint(b, "bot", 0), (int)jint(b, "webhook", 0)};
        char id[32] = "";
        int64_t seq = discord_fake_message(df, &m, id, sizeof(id));

        if (seq < 0)
            resp->status = 400;
        resp->body =
            fake_printf(df->f, "{\"id\":\"%s\",\"seq\":%" PRId64 "}", id, seq);
    } else if (strcmp(p, "interaction") == 0) {
        struct discord_fake_ia x = {jstr(b, "id"),    jstr(b, "channel"),
                                    jstr(b, "guild"), jstr(b, "user"),
                                    jstr(b, "name"),  jstr(b, "permissions"),
                                    jstr(b, "text"),  jstr(b, "command")};
        char id[32] = "";
        int64_t seq = discord_fake_interaction(df, &x, id, sizeof(id));

        if (seq < 0)
            resp->status = 400;
        resp->body =
            fake_printf(df->f, "{\"id\":\"%s\",\"seq\":%" PRId64 "}", id, seq);
    } else if (strcmp(p, "reaction") == 0) {
        const char *ch = jstr(b, "channel"), *m = jstr(b, "message"),
                   *u = jstr(b, "user"), *e = jstr(b, "emoji");

        if (ch == NULL || m == NULL || u == NULL || e == NULL)
            resp->status = 400;
        else
            resp->body = fake_printf(df->f, "{\"seq\":%" PRId64 "}",
                                     discord_fake_reaction(df, ch, m, u, e));
    } else if (strcmp(p, "op") == 0) {
        resp->body = fake_printf(
            df->f, "{\"connections\":%d}",
            discord_fake_op(df, (int)jint(b, "op", 0), (int)jint(b, "d", 0)));
    } else if (strcmp(p, "close") == 0) {
        discord_fake_close(df, (int)jint(b, "code", 4000));
    } else if (strcmp(p, "drop") == 0) {
        discord_fake_drop(df);
    } else if (strcmp(p, "acks") == 0) {
        discord_fake_set_acks(df, (int)jint(b, "on", 1));
    } else if (strcmp(p, "global429") == 0) {
        discord_fake_global_429(df, jint(b, "ms", 1000));
    } else if (strcmp(p, "edit429") == 0) {
        discord_fake_edit_429(df, jint(b, "ms", 1000));
    } else if (strcmp(p, "bucket") == 0) {
        discord_fake_set_bucket(df, (int)jint(b, "limit", 5),
                                jint(b, "window_ms", 5000));
    } else if (strncmp(p, "sent", 4) == 0) {
        const char *q = strstr(p, "channel=");
        char ch[32] = "";
        json_object *arr = json_object_new_array();

        if (q != NULL)
            snprintf(ch, sizeof(ch), "%.*s", (int)strcspn(q + 8, "&"), q + 8);
        for (size_t i = 0; i < df->nmsgs; i++)
            if (df->msgs[i].by_bot &&
                (ch[0] == '\0' || strcmp(df->msgs[i].channel, ch) == 0))
                json_object_array_add(arr, sent_json(&df->msgs[i]));
        o = json_object_new_object();
        json_object_object_add(o, "messages", arr);
        resp->body = reply_json(df->f, o);
    } else if (strcmp(p, "stats") == 0) {
        struct discord_fake_stats s;

        discord_fake_stats(df, &s);
        resp->body = fake_printf(
            df->f,
            "{\"connections\":%" PRIu64 ",\"identifies\":%" PRIu64
            ",\"resumes\":%" PRIu64 ",\"resumed\":%" PRIu64
            ",\"heartbeats\":%" PRIu64 ",\"readies\":%" PRIu64
            ",\"dispatched\":%" PRIu64 ",\"replayed\":%" PRIu64
            ",\"created\":%" PRIu64 ",\"dup_nonce\":%" PRIu64
            ",\"typing\":%" PRIu64 ",\"reactions\":%" PRIu64
            ",\"r429\":%" PRIu64 ",\"caused_429\":%" PRIu64
            ",\"edits\":%" PRIu64 ",\"edit_same\":%" PRIu64
            ",\"deletes\":%" PRIu64 ",\"unknown_message\":%" PRIu64
            ",\"dm_opens\":%" PRIu64 ",\"dm_refused\":%" PRIu64
            ",\"last_client_close\":%d,\"live\":%d}",
            s.connections, s.identifies, s.resumes, s.resumed, s.heartbeats,
            s.readies, s.dispatched, s.replayed, s.created, s.dup_nonce,
            s.typing, s.reactions, s.r429, s.caused_429, s.edits, s.edit_same,
            s.deletes, s.unknown_message, s.dm_opens, s.dm_refused,
            s.last_client_close, s.live);
    } else {
        resp->status = 404;
        resp->body = "{\"ok\":false}";
    }
    if (b != NULL)
        json_object_put(b);
    return 0;
}

/* ---- lifecycle and knobs ---- */

struct discord_fake *
discord_fake_new(uv_loop_t *loop, int port, const char *token)
{
    static const struct fake_ws_ops ops = {gw_open, gw_text, gw_closed};
    struct discord_fake *df = calloc(1, sizeof(*df));

    if (df == NULL)
        return NULL;
    df->loop = loop;
    snprintf(df->token, sizeof(df->token), "%s",
             token ? token : DISCORD_FAKE_TOKEN);
    df->interval = 41250;
    df->acks = 1;
    df->content_allowed = 1;
    df->start_remaining = 1000;
    df->start_reset_after = 86400000;
    df->send_n = 120;
    df->send_window = 60000;
    df->resume_window = 120000;
    for (int r = DF_R_MESSAGES; r <= DF_R_DELETE; r++) {
        df->limits[r] = 5;
        df->windows[r] = 5000;
    }
    df->limits[DF_R_TYPING] = 5;
    df->windows[DF_R_TYPING] = 5000;
    df->limits[DF_R_REACTIONS] = 1;
    df->windows[DF_R_REACTIONS] = 250;
    df->limits[DF_R_DM] = 5;
    df->windows[DF_R_DM] = 5000;
    df->limits[DF_R_WEBHOOK] = 5;
    df->windows[DF_R_WEBHOOK] = 5000;
    df->ia_deadline = 3000;
    df->ia_life = DF_IA_TOKEN_LIFE;
    if ((df->beats = calloc(DF_BEATS_MAX, sizeof(*df->beats))) == NULL ||
        (df->f = fake_new(loop, port)) == NULL) {
        free(df->beats);
        free(df);
        return NULL;
    }
    snprintf(df->base, sizeof(df->base), "http://127.0.0.1:%d/api/v10",
             fake_port(df->f));
    fake_route(df->f, NULL, "/api/v10/", rest_handler, df);
    fake_route(df->f, NULL, "/_fake/", control_handler, df);
    fake_ws_route(df->f, "/gateway", &ops, df);
    fake_ws_route(df->f, "/resume", &ops, df);
    return df;
}

void
discord_fake_free(struct discord_fake *df)
{
    if (df == NULL)
        return;
    /* no callback runs after fake_free: the connections die with it */
    fake_free(df->f);
    for (int i = 0; i < DF_CONNS_MAX; i++)
        free(df->conns[i].sends);
    for (int i = 0; i < DF_SESSIONS_MAX; i++)
        session_free_log(&df->sessions[i]);
    for (size_t i = 0; i < df->nmsgs; i++) {
        free(df->msgs[i].content);
        free(df->msgs[i].edit_ms);
    }
    free(df->msgs);
    free(df->beats);
    free(df->commands);
    free(df);
}

struct fake *
discord_fake_server(struct discord_fake *df)
{
    return df->f;
}

int
discord_fake_port(const struct discord_fake *df)
{
    return fake_port(df->f);
}

const char *
discord_fake_base(const struct discord_fake *df)
{
    return df->base;
}

void
discord_fake_set_heartbeat(struct discord_fake *df, int interval_ms)
{
    df->interval = interval_ms;
}

void
discord_fake_set_acks(struct discord_fake *df, int on)
{
    df->acks = on;
}

void
discord_fake_set_message_content(struct discord_fake *df, int allowed)
{
    df->content_allowed = allowed;
}

void
discord_fake_set_session_start(struct discord_fake *df, int remaining,
                               int64_t reset_after_ms)
{
    df->start_remaining = remaining;
    df->start_reset_after = reset_after_ms;
}

void
discord_fake_set_send_limit(struct discord_fake *df, int n, int64_t window_ms)
{
    /* applies to connections opened from now on */
    df->send_n = n;
    df->send_window = window_ms;
}

void
discord_fake_set_resume_window(struct discord_fake *df, int64_t ms)
{
    df->resume_window = ms;
}

void
discord_fake_set_bucket(struct discord_fake *df, int limit, int64_t window_ms)
{
    /* create, edit and delete: the same size, a bucket each */
    for (int r = DF_R_MESSAGES; r <= DF_R_DELETE; r++) {
        df->limits[r] = limit;
        df->windows[r] = window_ms;
    }
}

void
discord_fake_edit_429(struct discord_fake *df, int64_t retry_after_ms)
{
    df->edit_script = retry_after_ms;
}

void
discord_fake_global_429(struct discord_fake *df, int64_t retry_after_ms)
{
    df->global_script = retry_after_ms;
}

int
discord_fake_refuse_dm(struct discord_fake *df, const char *user,
                       enum discord_fake_refuse how)
{
    struct df_dm *m = dm_get(df, user);

    if (m == NULL)
        return -1;
    m->refuse = how;
    return 0;
}

int
discord_fake_dm_channel(const struct discord_fake *df, const char *user,
                        char *buf, size_t cap)
{
    for (size_t i = 0; i < df->ndms; i++)
        if (strcmp(df->dms[i].user, user) == 0 &&
            df->dms[i].channel[0] != '\0') {
            snprintf(buf, cap, "%s", df->dms[i].channel);
            return 0;
        }
    return -1;
}

void
discord_fake_stats(const struct discord_fake *df, struct discord_fake_stats *st)
{
    *st = df->st;
}

static int
sent_match(const struct df_msg *m, const char *channel)
{
    return m->by_bot && (channel == NULL || strcmp(m->channel, channel) == 0);
}

/* m's index among the sent messages of channel. */
static size_t
sent_index(const struct discord_fake *df, const char *channel,
           const struct df_msg *m)
{
    size_t n = 0;

    for (const struct df_msg *k = df->msgs; k < m; k++)
        n += sent_match(k, channel);
    return n;
}

size_t
discord_fake_sent_count(const struct discord_fake *df, const char *channel)
{
    size_t n = 0;

    for (size_t i = 0; i < df->nmsgs; i++)
        n += sent_match(&df->msgs[i], channel);
    return n;
}

int
discord_fake_sent_get(const struct discord_fake *df, const char *channel,
                      size_t i, struct discord_fake_sent *out)
{
    for (size_t k = 0; k < df->nmsgs; k++) {
        const struct df_msg *m = &df->msgs[k];

        if (!sent_match(m, channel) || i-- > 0)
            continue;
        out->id = m->id;
        out->channel = m->channel;
        out->content = m->content;
        out->reply_to = m->reply_to;
        out->nonce = m->nonce;
        out->t_ms = m->t_ms;
        out->up = m->up;
        out->down = m->down;
        out->edits = m->edits;
        out->deleted = m->deleted;
        return 0;
    }
    return -1;
}

static const struct df_msg *
bot_msg(const struct discord_fake *df, const char *id)
{
    for (size_t k = 0; k < df->nmsgs; k++)
        if (df->msgs[k].by_bot && strcmp(df->msgs[k].id, id) == 0)
            return &df->msgs[k];
    return NULL;
}

int
discord_fake_sent_find(const struct discord_fake *df, const char *id,
                       struct discord_fake_sent *out)
{
    const struct df_msg *m = bot_msg(df, id);

    if (m == NULL)
        return -1;
    return discord_fake_sent_get(df, m->channel, sent_index(df, m->channel, m),
                                 out);
}

size_t
discord_fake_edit_times(const struct discord_fake *df, const char *id,
                        const int64_t **v)
{
    const struct df_msg *m = bot_msg(df, id);

    *v = m != NULL ? m->edit_ms : NULL;
    return m != NULL ? m->edits : 0;
}

size_t
discord_fake_edits_in(const struct discord_fake *df, const char *id,
                      int64_t window_ms)
{
    const int64_t *v;
    size_t n = discord_fake_edit_times(df, id, &v), best = 0, lo = 0;

    /* the edits are in time order: a sliding window */
    for (size_t hi = 0; hi < n; hi++) {
        while (v[hi] - v[lo] >= window_ms)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

size_t
discord_fake_beats(const struct discord_fake *df,
                   const struct discord_fake_beat **v)
{
    *v = df->beats;
    return df->nbeats;
}

void
discord_fake_set_ia_deadline(struct discord_fake *df, int64_t callback_ms,
                             int64_t token_ms)
{
    df->ia_deadline = callback_ms > 0 ? callback_ms : 3000;
    df->ia_life = token_ms > 0 ? token_ms : DF_IA_TOKEN_LIFE;
}

int
discord_fake_ia_get(const struct discord_fake *df, const char *id,
                    struct discord_fake_ia_state *out)
{
    for (size_t i = 0; i < df->nias; i++) {
        const struct df_ia *ia = &df->ias[i];

        if (strcmp(ia->id, id) != 0)
            continue;
        memset(out, 0, sizeof(*out));
        out->callbacks = ia->callbacks;
        out->type = ia->type;
        out->ack_after_ms = ia->type ? ia->ack_ms - ia->created_ms : -1;
        out->original = ia->original;
        out->followups = ia->nmsgs;
        out->followup = ia->nmsgs > 0 ? ia->msgs[0] : "";
        return 0;
    }
    return -1;
}

const char *
discord_fake_commands(const struct discord_fake *df)
{
    return df->commands;
}
