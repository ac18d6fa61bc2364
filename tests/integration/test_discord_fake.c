/* test_discord_fake: the Discord fake itself — REST auth, gateway/bot, nonce
 * idempotency, enforced buckets, global 429s, reactions, the gateway's
 * HELLO/ACK/IDENTIFY/READY, close codes, resume with replay, the control
 * API.  Raw HTTP (fake_client) and parley's ws client on one loop. */
#include "core/ws.h"
#include "tests/fakes/discord_fake.h"
#include "tests/fakes/fake_client.h"
#include "tests/t.h"

#include <stdlib.h>
#include <unistd.h>

static uv_loop_t loop;
static struct discord_fake *df;
static int port;

/* ---- HTTP: one call at a time ---- */

struct call {
    int done, status;
    char body[8192];
    char hdr[4096];
};

static void
call_done(const struct fake_call_result *r, void *arg)
{
    struct call *c = arg;
    const char *eoh;

    c->done = 1;
    c->status = r->status;
    snprintf(c->body, sizeof(c->body), "%.*s", (int)r->body_len,
             r->body ? r->body : "");
    eoh = r->raw ? strstr(r->raw, "\r\n\r\n") : NULL;
    snprintf(c->hdr, sizeof(c->hdr), "%.*s", eoh ? (int)(eoh - r->raw) : 0,
             r->raw ? r->raw : "");
    uv_stop(&loop);
}

static struct call *
call(const char *method, const char *path, const char *body, int auth)
{
    static struct call c;
    char hdr[256];

    memset(&c, 0, sizeof(c));
    snprintf(hdr, sizeof(hdr), "Authorization: Bot %s\r\n%s",
             auth ? DISCORD_FAKE_TOKEN : "wrong",
             body ? "Content-Type: application/json\r\n" : "");
    /* not "": fake.c answers a Content-Length: 0 request twice (reported) */
    if (body == NULL && strcmp(method, "GET") != 0)
        body = "{}";
    fake_call(&loop, port, method, path, hdr, body, body ? strlen(body) : 0,
              5000, call_done, &c);
    while (!c.done)
        uv_run(&loop, UV_RUN_ONCE);
    return &c;
}

/* ---- websocket: a recorder ---- */

struct gw {
    struct ws_conn *conn;
    int open, closed, code;
    char frames[64][2048];
    int n;
};

static void
gw_open(struct ws_conn *c, void *arg)
{
    struct gw *g = arg;

    (void)c;
    g->open = 1;
}

static void
gw_text(struct ws_conn *c, const char *buf, size_t len, void *arg)
{
    struct gw *g = arg;

    (void)c;
    if (g->n < 64)
        snprintf(g->frames[g->n++], sizeof(g->frames[0]), "%.*s", (int)len,
                 buf);
}

static void
gw_closed(struct ws_conn *c, int code, const char *reason, void *arg)
{
    struct gw *g = arg;

    (void)c;
    (void)reason;
    g->closed = 1;
    g->code = code;
    g->conn = NULL;
}

static void
tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag >= want or ms pass. */
static int
wait_for(const int *flag, int want, int ms)
{
    uv_timer_t t;
    int64_t end = fake_now_ms() + ms;

    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    while (*flag < want && fake_now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *flag >= want;
}

static void
gw_connect(struct ws_ctx *x, struct gw *g, const char *path)
{
    char url[128];
    static const struct ws_conn_ops ops = {gw_open, gw_text, gw_closed};

    memset(g, 0, sizeof(*g));
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d%s?v=10&encoding=json", port,
             path);
    g->conn = ws_connect(x, url, &ops, g);
    T_OK(wait_for(&g->open, 1, 3000));
    T_OK(wait_for(&g->n, 1, 3000));
    T_CONTAINS(g->frames[0], "\"op\":10");
    T_CONTAINS(g->frames[0], "\"heartbeat_interval\":300");
}

static void
gw_send(struct gw *g, const char *s)
{
    T_EQ_INT(ws_send_text(g->conn, s, strlen(s)), 0);
}

static void
test_rest(void)
{
    struct call *c;
    struct discord_fake_stats st;
    struct discord_fake_sent s;
    const char *msg = "{\"content\":\"hi\",\"allowed_mentions\":{\"parse\":[]"
                      "},\"nonce\":\"job:1:0\",\"enforce_nonce\":true}";
    char id[32], path[160];

    c = call("GET", "/api/v10/gateway/bot", NULL, 0);
    T_EQ_INT(c->status, 401);
    T_CONTAINS(c->body, "401: Unauthorized");
    c = call("GET", "/api/v10/gateway/bot", NULL, 1);
    T_EQ_INT(c->status, 200);
    T_CONTAINS(c->body, "/gateway\"");
    T_CONTAINS(c->body, "\"remaining\":1000");
    c = call("GET", "/api/v10/nothing", NULL, 1);
    T_EQ_INT(c->status, 404);

    /* a message, then the same nonce again: one message */
    c = call("POST", "/api/v10/channels/500/messages", msg, 1);
    T_EQ_INT(c->status, 200);
    T_CONTAINS(c->hdr, "X-RateLimit-Limit: 5");
    T_CONTAINS(c->hdr, "X-RateLimit-Remaining: 4");
    T_CONTAINS(c->hdr, "X-RateLimit-Bucket: ");
    T_CONTAINS(c->hdr, "X-RateLimit-Reset-After: ");
    sscanf(strstr(c->body, "\"id\":\"") + 6, "%31[0-9]", id);
    c = call("POST", "/api/v10/channels/500/messages", msg, 1);
    T_EQ_INT(c->status, 200);
    T_CONTAINS(c->body, id);
    T_EQ_INT(discord_fake_sent_count(df, "500"), 1);
    /* allowed_mentions is required to be restrictive; content ≤ 2000 */
    c = call("POST", "/api/v10/channels/500/messages", "{\"content\":\"x\"}",
             1);
    T_EQ_INT(c->status, 400);
    /* the bucket: 5 per window per channel; 3 used, 2 left, then 429 */
    for (int i = 0; i < 2; i++) {
        c = call("POST", "/api/v10/channels/500/messages",
                 "{\"content\":\"more\",\"allowed_mentions\":{\"parse\":[]}}",
                 1);
        T_EQ_INT(c->status, 200);
    }
    c = call("POST", "/api/v10/channels/500/messages",
             "{\"content\":\"over\",\"allowed_mentions\":{\"parse\":[]}}", 1);
    T_EQ_INT(c->status, 429);
    T_CONTAINS(c->body, "\"retry_after\":");
    T_CONTAINS(c->body, "\"global\":false");
    T_CONTAINS(c->hdr, "Retry-After: ");
    T_CONTAINS(c->hdr, "X-RateLimit-Scope: user");
    /* another channel has its own bucket */
    c = call("POST", "/api/v10/channels/501/messages",
             "{\"content\":\"x\",\"allowed_mentions\":{\"parse\":[]}}", 1);
    T_EQ_INT(c->status, 200);
    /* typing, reactions (URL-encoded emoji), unknown message */
    c = call("POST", "/api/v10/channels/500/typing", NULL, 1);
    T_EQ_INT(c->status, 204);
    snprintf(path, sizeof(path),
             "/api/v10/channels/500/messages/%s/reactions/%%F0%%9F%%91%%8D/@me",
             id);
    c = call("PUT", path, NULL, 1);
    T_EQ_INT(c->status, 204);
    T_EQ_INT(discord_fake_sent_get(df, "500", 0, &s), 0);
    T_EQ_INT(s.up, 1);
    T_EQ_STR(s.nonce, "job:1:0");
    c = call("PUT",
             "/api/v10/channels/501/messages/1/reactions/%F0%9F%91%8E/@me",
             NULL, 1);
    T_EQ_INT(c->status, 404);
    T_CONTAINS(c->body, "10008");
    /* a scripted global 429, then everything waits for it */
    discord_fake_global_429(df, 300);
    c = call("POST", "/api/v10/channels/502/typing", NULL, 1);
    T_EQ_INT(c->status, 429);
    T_CONTAINS(c->hdr, "X-RateLimit-Global: true");
    T_CONTAINS(c->body, "\"global\":true");
    c = call("POST", "/api/v10/channels/503/typing", NULL, 1);
    T_EQ_INT(c->status, 429);
    discord_fake_stats(df, &st);
    T_EQ_INT(st.dup_nonce, 1);
    T_EQ_INT(st.r429, 3);
    /* the bucket one; the early request came within the slack */
    T_EQ_INT(st.caused_429, 1);
    T_EQ_INT(st.r429_global, 2);
    T_EQ_INT(st.unauthorized, 1);
}

static void
test_gateway(void)
{
    struct ws_ctx *x = ws_ctx_new(&loop);
    struct gw g, g2;
    struct discord_fake_stats st;
    char id[32], sid[64] = "", buf[512];
    struct discord_fake_msg m = {"500", NULL, "7", "ann", "hello", NULL, 0, 0};
    struct call *c;

    if (x == NULL) {
        T_OK(0);
        return;
    }
    /* a wrong token: 4004 */
    gw_connect(x, &g, "/gateway");
    gw_send(&g, "{\"op\":2,\"d\":{\"token\":\"bad\",\"intents\":1}}");
    T_OK(wait_for(&g.closed, 1, 3000));
    T_EQ_INT(g.code, 4004);
    /* MESSAGE_CONTENT not enabled: 4014 */
    discord_fake_set_message_content(df, 0);
    gw_connect(x, &g, "/gateway");
    gw_send(&g, "{\"op\":2,\"d\":{\"token\":\"" DISCORD_FAKE_TOKEN
                "\",\"intents\":46593}}");
    T_OK(wait_for(&g.closed, 1, 3000));
    T_EQ_INT(g.code, 4014);
    discord_fake_set_message_content(df, 1);
    /* a dispatch before IDENTIFY... an unknown op: 4001 */
    gw_connect(x, &g, "/gateway");
    gw_send(&g, "{\"op\":5}");
    T_OK(wait_for(&g.closed, 1, 3000));
    T_EQ_INT(g.code, 4001);

    /* identify → READY; heartbeat → ACK */
    gw_connect(x, &g, "/gateway");
    gw_send(&g, "{\"op\":2,\"d\":{\"token\":\"" DISCORD_FAKE_TOKEN
                "\",\"intents\":46593}}");
    T_OK(wait_for(&g.n, 2, 3000));
    T_CONTAINS(g.frames[1], "\"t\":\"READY\"");
    T_CONTAINS(g.frames[1], DISCORD_FAKE_BOT_ID);
    T_CONTAINS(g.frames[1], "/resume\"");
    sscanf(strstr(g.frames[1], "\"session_id\":\"") + 14, "%63[^\"]", sid);
    gw_send(&g, "{\"op\":1,\"d\":1}");
    T_OK(wait_for(&g.n, 3, 3000));
    T_EQ_STR(g.frames[2], "{\"op\":11}");
    /* a message through the control API arrives as MESSAGE_CREATE */
    c = call("POST", "/_fake/message",
             "{\"channel\":\"500\",\"guild\":\"9\",\"author\":\"7\","
             "\"content\":\"<@" DISCORD_FAKE_BOT_ID "> hi\"}",
             1);
    T_EQ_INT(c->status, 200);
    T_OK(wait_for(&g.n, 4, 3000));
    T_CONTAINS(g.frames[3], "\"t\":\"MESSAGE_CREATE\"");
    T_CONTAINS(g.frames[3], "\"s\":2");
    T_CONTAINS(g.frames[3], "\"mentions\":[{\"id\":\"" DISCORD_FAKE_BOT_ID);
    T_CONTAINS(g.frames[3], "\"guild_id\":\"9\"");
    /* op 7, and while away two dispatches; resume replays them */
    T_EQ_INT(discord_fake_op(df, 7, 0), 1);
    T_OK(wait_for(&g.n, 5, 3000));
    T_CONTAINS(g.frames[4], "\"op\":7");
    ws_close(g.conn, 4000, "reconnect");
    T_OK(wait_for(&g.closed, 1, 3000));
    T_OK(discord_fake_message(df, &m, id, sizeof(id)) == 3);
    T_OK(discord_fake_reaction(df, "500", id, "7", "\xf0\x9f\x91\x8d") == 4);
    gw_connect(x, &g2, "/resume");
    snprintf(buf, sizeof(buf),
             "{\"op\":6,\"d\":{\"token\":\"" DISCORD_FAKE_TOKEN
             "\",\"session_id\":\"%s\",\"seq\":2}}",
             sid);
    gw_send(&g2, buf);
    T_OK(wait_for(&g2.n, 4, 3000));
    T_CONTAINS(g2.frames[1], "\"s\":3");
    T_CONTAINS(g2.frames[1], "MESSAGE_CREATE");
    T_CONTAINS(g2.frames[2], "MESSAGE_REACTION_ADD");
    T_CONTAINS(g2.frames[3], "RESUMED");
    /* zombie: acks off */
    discord_fake_set_acks(df, 0);
    gw_send(&g2, "{\"op\":1,\"d\":5}");
    T_OK(!wait_for(&g2.n, 5, 300));
    discord_fake_set_acks(df, 1);
    /* the client closes with 1000: the session ends; resume → op 9 false */
    ws_close(g2.conn, 1000, "bye");
    T_OK(wait_for(&g2.closed, 1, 3000));
    discord_fake_stats(df, &st);
    T_EQ_INT(st.last_client_close, 1000);
    gw_connect(x, &g2, "/gateway");
    gw_send(&g2, buf);
    T_OK(wait_for(&g2.n, 2, 3000));
    T_CONTAINS(g2.frames[1], "\"op\":9,\"d\":false");
    /* close on demand */
    discord_fake_close(df, 4009);
    T_OK(wait_for(&g2.closed, 1, 3000));
    T_EQ_INT(g2.code, 4009);
    /* over 4096 bytes: 4002 */
    gw_connect(x, &g2, "/gateway");
    {
        char *big = malloc(5000);

        memset(big, ' ', 4999);
        big[0] = '{';
        memcpy(big + 4990, "\"op\":1}", 8);
        ws_set_frame_max(g2.conn, 8192);
        gw_send(&g2, big);
        free(big);
    }
    T_OK(wait_for(&g2.closed, 1, 3000));
    T_EQ_INT(g2.code, 4002);
    discord_fake_stats(df, &st);
    T_EQ_INT(st.readies, 1);
    T_EQ_INT(st.resumed, 1);
    T_EQ_INT(st.replayed, 2);
    T_EQ_INT(st.invalidated, 1);
    T_OK(st.heartbeats >= 2);
    c = call("GET", "/_fake/stats", NULL, 1);
    T_CONTAINS(c->body, "\"resumed\":1");
    c = call("GET", "/_fake/sent?channel=500", NULL, 1);
    T_CONTAINS(c->body, "\"nonce\":\"job:1:0\"");
    ws_ctx_free(x);
}

static void
wait_ms(int ms)
{
    int64_t until = fake_now_ms() + ms;

    while (fake_now_ms() < until) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

/* PATCH and DELETE of a message: shapes, errors, their own buckets. */
static void
test_edit_delete(void)
{
    struct call *c;
    struct discord_fake_stats st0, st;
    struct discord_fake_sent s;
    struct discord_fake_msg um = {"510", "9", "7", "ann", "mine", NULL, 0, 0};
    const char *ok = "{\"content\":\"v1\",\"allowed_mentions\":{\"parse\":[]}}";
    const int64_t *ts;
    char id[32], uid[32], path[160];

    wait_ms(350); /* test_rest's global 429 */
    discord_fake_stats(df, &st0);
    c = call("POST", "/api/v10/channels/510/messages", ok, 1);
    T_EQ_INT(c->status, 200);
    sscanf(strstr(c->body, "\"id\":\"") + 6, "%31[0-9]", id);
    T_CONTAINS(c->body, "\"edited_timestamp\":null");
    snprintf(path, sizeof(path), "/api/v10/channels/510/messages/%s", id);
    /* an edit: 200 with the message; its own bucket (the create's has 4) */
    c = call("PATCH", path,
             "{\"content\":\"v2\",\"allowed_mentions\":{\"parse\":[]}}", 1);
    T_EQ_INT(c->status, 200);
    T_CONTAINS(c->body, "\"content\":\"v2\"");
    T_CONTAINS(c->body, id);
    T_CONTAINS(c->body, "\"edited_timestamp\":\"");
    T_CONTAINS(c->hdr, "X-RateLimit-Remaining: 4");
    T_CONTAINS(c->hdr, "X-RateLimit-Bucket: b8c9edit");
    /* the same text again: 200 too (no "not modified" on Discord) */
    c = call("PATCH", path,
             "{\"content\":\"v2\",\"allowed_mentions\":{\"parse\":[]}}", 1);
    T_EQ_INT(c->status, 200);
    T_CONTAINS(c->hdr, "X-RateLimit-Remaining: 3");
    /* empty, too long, pinging: 400 */
    c = call("PATCH", path,
             "{\"content\":\"\",\"allowed_mentions\":{\"parse\":[]}}", 1);
    T_EQ_INT(c->status, 400);
    T_CONTAINS(c->body, "50006");
    c = call("PATCH", path, "{\"content\":\"x\"}", 1);
    T_EQ_INT(c->status, 400);
    T_EQ_INT(discord_fake_sent_find(df, id, &s), 0);
    T_EQ_STR(s.content, "v2");
    T_EQ_INT(s.edits, 2);
    T_EQ_INT(discord_fake_edit_times(df, id, &ts), 2);
    T_EQ_INT(discord_fake_edits_in(df, id, 60000), 2);
    /* the bucket: 5 per window; 2 went through, 2 refused still count */
    c = call("PATCH", path, ok, 1);
    T_EQ_INT(c->status, 200);
    c = call("PATCH", path, ok, 1);
    T_EQ_INT(c->status, 429);
    T_CONTAINS(c->hdr, "X-RateLimit-Scope: user");
    T_CONTAINS(c->body, "\"retry_after\":");
    /* someone else's message: 403 50005; unknown: 404 10008 */
    discord_fake_message(df, &um, uid, sizeof(uid));
    snprintf(path, sizeof(path), "/api/v10/channels/511/messages/%s", id);
    c = call("PATCH", path, ok, 1);
    T_EQ_INT(c->status, 404);
    T_CONTAINS(c->body, "\"code\":10008");
    T_CONTAINS(c->body, "Unknown Message");
    snprintf(path, sizeof(path), "/api/v10/channels/510/messages/%s", uid);
    c = call("DELETE", path, NULL, 1);
    T_EQ_INT(c->status, 403);
    /* delete: 204, then 404 10008; an edit of it: 404 */
    snprintf(path, sizeof(path), "/api/v10/channels/510/messages/%s", id);
    c = call("DELETE", path, NULL, 1);
    T_EQ_INT(c->status, 204);
    T_CONTAINS(c->hdr, "X-RateLimit-Bucket: e0f1del");
    c = call("DELETE", path, NULL, 1);
    T_EQ_INT(c->status, 404);
    T_CONTAINS(c->body, "10008");
    T_EQ_INT(discord_fake_sent_find(df, id, &s), 0);
    T_EQ_INT(s.deleted, 1);
    T_EQ_STR(s.content, "v1");
    /* a scripted 429 on the next edit, not counted as caused */
    discord_fake_edit_429(df, 200);
    c = call("PATCH", "/api/v10/channels/512/messages/1", ok, 1);
    T_EQ_INT(c->status, 429);
    T_CONTAINS(c->hdr, "X-RateLimit-Bucket: b8c9edit");
    c = call("GET", "/_fake/sent?channel=510", NULL, 1);
    T_CONTAINS(c->body, "\"edits\":3");
    T_CONTAINS(c->body, "\"deleted\":true");
    discord_fake_stats(df, &st);
    T_EQ_INT(st.edits - st0.edits, 3);
    T_EQ_INT(st.edit_same - st0.edit_same, 1);
    T_EQ_INT(st.deletes - st0.deletes, 1);
    T_EQ_INT(st.unknown_message - st0.unknown_message, 2);
    T_EQ_INT(st.caused_429 - st0.caused_429, 1);
    T_EQ_INT(st.r429 - st0.r429, 2);
}

int
main(void)
{
    uv_loop_init(&loop);
    df = discord_fake_new(&loop, 0, NULL);
    if (df == NULL) {
        printf("cannot start the fake\n");
        return 1;
    }
    port = discord_fake_port(df);
    discord_fake_set_heartbeat(df, 300);
    test_rest();
    test_gateway();
    test_edit_delete();
    discord_fake_free(df);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    return t_done();
}
