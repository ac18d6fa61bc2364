/* test_slack_fake: the Slack fake itself — tokens, single-use socket URLs,
 * hello, envelopes, redelivery, acks, disconnects, the enforced rate. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/ws.h"
#include "tests/fakes/fake_client.h"
#include "tests/fakes/slack_fake.h"
#include "tests/t.h"

static uv_loop_t loop;
static struct slack_fake *sf;

/* ---- HTTP calls, one at a time ---- */

struct reply {
    int done, status;
    char body[8192];
    char retry_after[16];
};

static void
on_reply(const struct fake_call_result *r, void *arg)
{
    struct reply *rp = arg;

    rp->status = r->status;
    snprintf(rp->body, sizeof(rp->body), "%.*s", (int)r->body_len,
             r->body ? r->body : "");
    if (fake_call_header(r, "retry-after", rp->retry_after,
                         sizeof(rp->retry_after)) == NULL)
        rp->retry_after[0] = '\0';
    rp->done = 1;
}

static void
call(const char *method, const char *path, const char *token, const char *body,
     struct reply *rp)
{
    char headers[256];

    memset(rp, 0, sizeof(*rp));
    snprintf(headers, sizeof(headers),
             "Content-Type: application/json; charset=utf-8\r\n%s%s%s",
             token ? "Authorization: Bearer " : "", token ? token : "",
             token ? "\r\n" : "");
    fake_call(&loop, slack_fake_port(sf), method, path, headers, body,
              body ? strlen(body) : 0, 3000, on_reply, rp);
    while (!rp->done)
        uv_run(&loop, UV_RUN_ONCE);
}

/* ---- a socket client ---- */

struct client {
    struct ws_conn *c;
    int opens, closes, texts, code, hellos, envelopes, disconnects;
    char last[4096], envelope_id[64];
    int retry_attempt;
};

static void
cl_open(struct ws_conn *c, void *arg)
{
    (void)c;
    ((struct client *)arg)->opens++;
}

static void
cl_text(struct ws_conn *c, const char *buf, size_t len, void *arg)
{
    struct client *cl = arg;
    const char *e;

    (void)c;
    cl->texts++;
    snprintf(cl->last, sizeof(cl->last), "%.*s", (int)len, buf);
    if (strstr(buf, "\"type\":\"hello\""))
        cl->hellos++;
    if (strstr(buf, "\"type\":\"disconnect\""))
        cl->disconnects++;
    if ((e = strstr(buf, "\"envelope_id\":\"")) != NULL) {
        const char *r = strstr(buf, "\"retry_attempt\":");

        cl->envelopes++;
        e += 15;
        snprintf(cl->envelope_id, sizeof(cl->envelope_id), "%.*s",
                 (int)strcspn(e, "\""), e);
        cl->retry_attempt = r ? atoi(r + 16) : -1;
    }
}

static void
cl_closed(struct ws_conn *c, int code, const char *reason, void *arg)
{
    struct client *cl = arg;

    (void)c;
    (void)reason;
    cl->code = code;
    cl->c = NULL;
    cl->closes++;
}

static const struct ws_conn_ops cl_ops = {cl_open, cl_text, cl_closed};

static uv_timer_t watchdog;
static int fired;

static void
on_watchdog(uv_timer_t *t)
{
    (void)t;
    fired = 1;
}

static int
wait_for(const int *v, int want, int ms)
{
    fired = 0;
    uv_timer_start(&watchdog, on_watchdog, (uint64_t)ms, 0);
    while (*v < want && !fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    return *v >= want ? 0 : -1;
}

static void
settle(int ms)
{
    int never = 0;

    wait_for(&never, 1, ms);
}

static void
url_of(const char *body, char *url, size_t cap)
{
    const char *u = strstr(body, "\"url\":\"");

    url[0] = '\0';
    if (u)
        snprintf(url, cap, "%.*s", (int)strcspn(u + 7, "\""), u + 7);
}

static void
test_fake(struct ws_ctx *x)
{
    struct reply r;
    struct client a, b;
    struct slack_fake_stats st;
    struct slack_fake_msg m;
    char url[512], ack[128], ts[32], body[256];
    int ok = 0, limited = 0;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));

    /* tokens */
    call("POST", "/api/auth.test", SLACK_FAKE_BOT_TOKEN, "{}", &r);
    T_EQ_INT(r.status, 200);
    T_CONTAINS(r.body, "\"user_id\":\"U0BOT\"");
    call("POST", "/api/auth.test", "xoxb-wrong", "{}", &r);
    T_CONTAINS(r.body, "invalid_auth");
    call("POST", "/api/apps.connections.open", SLACK_FAKE_BOT_TOKEN, "{}", &r);
    T_CONTAINS(r.body, "not_allowed_token_type");
    call("POST", "/api/apps.connections.open", SLACK_FAKE_APP_TOKEN, "{}", &r);
    T_CONTAINS(r.body, "\"ok\":true");
    url_of(r.body, url, sizeof(url));
    T_CONTAINS(url, "ws://127.0.0.1:");

    /* hello, then the URL is spent */
    a.c = ws_connect(x, url, &cl_ops, &a);
    T_EQ_INT(wait_for(&a.hellos, 1, 3000), 0);
    b.c = ws_connect(x, url, &cl_ops, &b);
    T_EQ_INT(wait_for(&b.closes, 1, 3000), 0);
    T_EQ_INT(b.code, 4001);
    T_EQ_INT(b.hellos, 0);

    /* an envelope, not acked: redelivered with retry_attempt 1 */
    slack_fake_set_redeliver_ms(sf, 300);
    T_EQ_INT(slack_fake_mention(sf, "C1", "U1", "hi", NULL, ts, sizeof(ts)), 0);
    T_EQ_INT(wait_for(&a.envelopes, 1, 3000), 0);
    T_CONTAINS(a.last, "\"type\":\"events_api\"");
    T_CONTAINS(a.last, "<@U0BOT> hi");
    T_EQ_INT(a.retry_attempt, 0);
    T_EQ_INT(wait_for(&a.envelopes, 2, 3000), 0);
    T_EQ_INT(a.retry_attempt, 1);
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\"}", a.envelope_id);
    T_EQ_INT(ws_send_text(a.c, ack, strlen(ack)), 0);
    settle(800);
    slack_fake_stats(sf, &st);
    T_EQ_INT(st.events, 1);
    T_EQ_INT(st.deliveries, 2);
    T_EQ_INT(st.redeliveries, 1);
    T_EQ_INT(st.acks, 1);
    T_EQ_INT(st.unacked, 0);
    T_EQ_INT(a.envelopes, 2);

    /* a slash command is an envelope too */
    T_EQ_INT(slack_fake_slash(sf, "C1", "U1", "usage"), 0);
    T_EQ_INT(wait_for(&a.envelopes, 3, 3000), 0);
    T_CONTAINS(a.last, "\"type\":\"slash_commands\"");
    T_CONTAINS(a.last, "\"command\":\"/parley\"");
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\"}", a.envelope_id);
    ws_send_text(a.c, ack, strlen(ack));

    /* posting: the per-channel bucket (burst 3, 1/s) is enforced */
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof(body),
                 "{\"channel\":\"C1\",\"text\":\"answer %d\",\"thread_ts\":"
                 "\"%s\",\"mrkdwn\":true}",
                 i, ts);
        call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN, body, &r);
        if (r.status == 200 && strstr(r.body, "\"ok\":true"))
            ok++;
        else if (r.status == 429) {
            limited++;
            T_EQ_STR(r.retry_after, "1");
            T_CONTAINS(r.body, "ratelimited");
        }
    }
    T_EQ_INT(ok, 3);
    T_EQ_INT(limited, 2);
    T_EQ_INT(slack_fake_count(sf, "C1", 1), 3);
    T_EQ_INT(slack_fake_message(sf, "C1", 1, &m), 0);
    T_EQ_STR(m.text, "answer 0");
    T_EQ_STR(m.thread_ts, ts);
    T_EQ_INT(m.bot, 1);
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"X1\",\"text\":\"x\"}", &r);
    T_CONTAINS(r.body, "channel_not_found");
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C2\",\"text\":\"\"}", &r);
    T_CONTAINS(r.body, "no_text");

    /* reactions */
    snprintf(body, sizeof(body),
             "{\"channel\":\"C1\",\"timestamp\":\"%s\",\"name\":\"+1\"}", m.ts);
    call("POST", "/api/reactions.add", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "\"ok\":true");
    call("POST", "/api/reactions.add", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "already_reacted");
    call("POST", "/api/reactions.add", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C1\",\"timestamp\":\"9.9\",\"name\":\"+1\"}", &r);
    T_CONTAINS(r.body, "message_not_found");

    /* scripted failures, then normal again */
    slack_fake_script(sf, "chat.postMessage", "not_in_channel", 0, 0);
    slack_fake_script(sf, "chat.postMessage", NULL, 429, 7);
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C3\",\"text\":\"x\"}", &r);
    T_CONTAINS(r.body, "not_in_channel");
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C3\",\"text\":\"x\"}", &r);
    T_EQ_INT(r.status, 429);
    T_EQ_STR(r.retry_after, "7");
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C3\",\"text\":\"x\"}", &r);
    T_CONTAINS(r.body, "\"ok\":true");

    /* the control API */
    call("POST", "/_fake/dm", NULL,
         "{\"channel\":\"D1\",\"user\":\"U1\",\"text\":\"hello\"}", &r);
    T_CONTAINS(r.body, "\"ts\":\"");
    T_EQ_INT(wait_for(&a.envelopes, 4, 3000), 0);
    T_CONTAINS(a.last, "\"channel_type\":\"im\"");
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\"}", a.envelope_id);
    ws_send_text(a.c, ack, strlen(ack));
    call("GET", "/_fake/messages?channel=C1", NULL, NULL, &r);
    T_CONTAINS(r.body, "\"text\":\"answer 0\"");
    T_CONTAINS(r.body, "\"reactions\":[\"+1\"]");
    settle(100);
    call("GET", "/_fake/stats", NULL, NULL, &r);
    T_CONTAINS(r.body, "\"acks\":3");
    T_CONTAINS(r.body, "\"posts_429\":3");

    /* a disconnect warning, then the fake closes the socket itself */
    slack_fake_set_close_after_ms(sf, 200);
    slack_fake_disconnect(sf, "warning");
    T_EQ_INT(wait_for(&a.disconnects, 1, 3000), 0);
    T_CONTAINS(a.last, "\"reason\":\"warning\"");
    T_EQ_INT(wait_for(&a.closes, 1, 3000), 0);

    /* link_disabled: sent and closed at once; opens may then fail */
    memset(&a, 0, sizeof(a));
    call("POST", "/api/apps.connections.open", SLACK_FAKE_APP_TOKEN, "{}", &r);
    url_of(r.body, url, sizeof(url));
    a.c = ws_connect(x, url, &cl_ops, &a);
    T_EQ_INT(wait_for(&a.hellos, 1, 3000), 0);
    slack_fake_disconnect(sf, "link_disabled");
    T_EQ_INT(wait_for(&a.closes, 1, 3000), 0);
    T_CONTAINS(a.last, "link_disabled");
    slack_fake_set_open_error(sf, "invalid_auth");
    call("POST", "/api/apps.connections.open", SLACK_FAKE_APP_TOKEN, "{}", &r);
    T_CONTAINS(r.body, "invalid_auth");

    slack_fake_stats(sf, &st);
    T_EQ_INT(st.opens, 4);
    T_EQ_INT(st.refused, 1);
    T_EQ_INT(st.acks_late, 0);
    T_EQ_INT(st.live, 0);
}

/* chat.update / chat.delete: shapes, errors, per-message edit history,
 * the shared channel bucket and the Tier 3 workspace bucket. */
static void
test_edit_api(void)
{
    struct reply r;
    struct slack_fake_stats st;
    struct slack_fake_msg m;
    char ts[32], user_ts[32], body[256];
    const char *p;
    int ok = 0, limited = 0;

    slack_fake_set_rate(sf, 0, 1); /* first: shapes and errors */
    slack_fake_set_tier3(sf, 0, 1);
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C7\",\"text\":\"one\"}", &r);
    T_OK((p = strstr(r.body, "\"ts\":\"")) != NULL);
    snprintf(ts, sizeof(ts), "%.*s", (int)strcspn(p + 6, "\""), p + 6);
    snprintf(body, sizeof(body),
             "{\"channel\":\"C7\",\"ts\":\"%s\",\"text\":\"one two\"}", ts);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_EQ_INT(r.status, 200);
    T_CONTAINS(r.body, "\"ok\":true");
    T_CONTAINS(r.body, "\"text\":\"one two\"");
    T_CONTAINS(r.body, ts);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "\"ok\":true"); /* the same text: fine */
    T_EQ_INT(slack_fake_find(sf, "C7", ts, &m), 0);
    T_EQ_STR(m.text, "one two");
    T_EQ_INT(m.edits, 2);
    T_EQ_INT(m.edits_per_min_max, 2);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C7\",\"ts\":\"1.000009\",\"text\":\"x\"}", &r);
    T_CONTAINS(r.body, "message_not_found");
    snprintf(body, sizeof(body),
             "{\"channel\":\"C7\",\"ts\":\"%s\",\"text\":\"\"}", ts);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "no_text");
    slack_fake_mention(sf, "C7", "U1", "mine", NULL, user_ts, sizeof(user_ts));
    snprintf(body, sizeof(body),
             "{\"channel\":\"C7\",\"ts\":\"%s\",\"text\":\"x\"}", user_ts);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "cant_update_message");
    snprintf(body, sizeof(body), "{\"channel\":\"C7\",\"ts\":\"%s\"}", user_ts);
    call("POST", "/api/chat.delete", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "cant_delete_message");
    slack_fake_script(sf, "chat.update", "edit_window_closed", 0, 0);
    slack_fake_script(sf, "chat.update", NULL, 429, 3);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "edit_window_closed");
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_EQ_INT(r.status, 429);
    T_EQ_STR(r.retry_after, "3");

    /* delete: gone from the channel, found marked; twice → not found */
    snprintf(body, sizeof(body), "{\"channel\":\"C7\",\"ts\":\"%s\"}", ts);
    call("POST", "/api/chat.delete", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "\"ok\":true");
    T_EQ_INT(slack_fake_count(sf, "C7", 1), 0);
    T_EQ_INT(slack_fake_find(sf, "C7", ts, &m), 0);
    T_EQ_INT(m.deleted, 1);
    call("POST", "/api/chat.delete", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "message_not_found");
    snprintf(body, sizeof(body),
             "{\"channel\":\"C7\",\"ts\":\"%s\",\"text\":\"x\"}", ts);
    call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
    T_CONTAINS(r.body, "message_not_found");

    /* flood: posts and updates share the channel's 1/s burst 3 */
    slack_fake_set_rate(sf, 1.0, 3);
    call("POST", "/api/chat.postMessage", SLACK_FAKE_BOT_TOKEN,
         "{\"channel\":\"C8\",\"text\":\"a\"}", &r);
    p = strstr(r.body, "\"ts\":\"");
    snprintf(ts, sizeof(ts), "%.*s", p ? (int)strcspn(p + 6, "\"") : 0,
             p ? p + 6 : "");
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof(body),
                 "{\"channel\":\"C8\",\"ts\":\"%s\",\"text\":\"v%d\"}", ts, i);
        call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
        if (r.status == 429) {
            limited++;
            T_CONTAINS(r.body, "ratelimited");
            T_OK(atoi(r.retry_after) >= 1);
        } else
            ok++;
    }
    T_EQ_INT(ok, 2); /* burst 3: the post and two updates */
    T_EQ_INT(limited, 2);
    /* Tier 3: chat.update's workspace bucket across channels */
    slack_fake_set_rate(sf, 0, 1);
    slack_fake_set_tier3(sf, 1, 2); /* 1 a minute, burst 2 */
    ok = limited = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body),
                 "{\"channel\":\"C8\",\"ts\":\"%s\",\"text\":\"w%d\"}", ts, i);
        call("POST", "/api/chat.update", SLACK_FAKE_BOT_TOKEN, body, &r);
        if (r.status == 429) {
            limited++;
            T_OK(atoi(r.retry_after) >= 30);
        } else
            ok++;
    }
    T_OKF(ok <= 2 && limited >= 1, "tier 3: %d ok, %d limited", ok, limited);
    slack_fake_set_tier3(sf, 50, 3);
    slack_fake_set_rate(sf, 1.0, 3);
    slack_fake_stats(sf, &st);
    T_EQ_INT(st.updates_429, 1 + 2 + (uint64_t)limited);
    T_EQ_INT(st.deletes, 1);
}

int
main(void)
{
    struct ws_ctx *x;

    signal(SIGPIPE, SIG_IGN);
    log_init("test_slack_fake");
    if (getenv("TEST_DEBUG"))
        log_set_level(LOG_LEVEL_DEBUG);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &watchdog);
    x = ws_ctx_new(&loop);
    sf = slack_fake_new(&loop, 0);
    T_OK(x != NULL && sf != NULL);
    if (x && sf) {
        test_fake(x);
        test_edit_api();
    }
    ws_ctx_free(x);
    slack_fake_free(sf);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    return t_done();
}
