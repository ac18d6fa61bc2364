/* test_slack_codec: Socket Mode frames, events → struct event, Web API replies
 * and bodies. */
#include <stdlib.h>

#include "connectors/slack_codec.h"
#include "tests/t.h"

static const struct slack_self self = {"U0BOT", "B0BOT"};

#define ENV(type, payload)                                                     \
    "{\"type\":\"" type "\",\"envelope_id\":\"e-1\",\"payload\":" payload      \
    ",\"accepts_response_payload\":false,\"retry_attempt\":0,"                 \
    "\"retry_reason\":\"\"}"
#define EVT(ev)                                                                \
    ENV("events_api", "{\"team_id\":\"T1\",\"event_id\":\"Ev1\","              \
                      "\"event_time\":1,\"type\":\"event_callback\","          \
                      "\"event\":" ev "}")

static const struct {
    const char *name, *json;
    enum slack_in_kind kind;
    const char *chat, *thread, *user, *message_id, *text, *command;
    unsigned flags;
    int vote;
} events[] = {
    {"mention in a channel",
     EVT("{\"type\":\"app_mention\",\"user\":\"U1\","
         "\"text\":\"<@U0BOT> what is 2&amp;2?\","
         "\"ts\":\"1712345678.000100\","
         "\"channel\":\"C1\"}"),
     SLACK_IN_MESSAGE, "C1", "1712345678.000100", "U1", "1712345678.000100",
     "what is 2&2?", "", EVENT_MENTIONED, 0},
    {"mention inside a thread",
     EVT("{\"type\":\"app_mention\",\"user\":\"U1\","
         "\"text\":\"<@U0BOT|parley> hi\","
         "\"ts\":\"2.0\",\"thread_ts\":\"1.0\","
         "\"channel\":\"C1\"}"),
     SLACK_IN_MESSAGE, "C1", "1.0", "U1", "2.0", "hi", "", EVENT_MENTIONED, 0},
    {"same mention via message.channels",
     EVT("{\"type\":\"message\","
         "\"channel_type\":\"channel\","
         "\"user\":\"U1\",\"text\":\"<@"
         "U0BOT> hi\",\"ts\":\"2.0\","
         "\"thread_ts\":\"1.0\","
         "\"channel\":\"C1\"}"),
     SLACK_IN_MESSAGE, "C1", "1.0", "U1", "2.0", "hi", "", EVENT_MENTIONED, 0},
    {"channel chatter",
     EVT("{\"type\":\"message\",\"channel_type\":"
         "\"channel\",\"user\":\"U1\",\"text\":\"lunch?\","
         "\"ts\":\"3.0\",\"channel\":\"C1\"}"),
     SLACK_IN_MESSAGE, "C1", "3.0", "U1", "3.0", "lunch?", "", 0, 0},
    {"DM",
     EVT("{\"type\":\"message\",\"channel_type\":\"im\",\"user\":\"U1\","
         "\"text\":\"hello &lt;there&gt;\",\"ts\":\"4.0\","
         "\"channel\":\"D1\"}"),
     SLACK_IN_MESSAGE, "D1", "", "U1", "4.0", "hello <there>", "",
     EVENT_PRIVATE, 0},
    {"DM command",
     EVT("{\"type\":\"message\",\"channel_type\":\"im\","
         "\"user\":\"U1\",\"text\":\"Usage\",\"ts\":\"4.1\","
         "\"channel\":\"D1\"}"),
     SLACK_IN_MESSAGE, "D1", "", "U1", "4.1", "", "usage",
     EVENT_PRIVATE | EVENT_COMMAND, 0},
    {"@bot command",
     EVT("{\"type\":\"app_mention\",\"user\":\"U1\","
         "\"text\":\"<@U0BOT> limit user U2 5/60s\","
         "\"ts\":\"5.0\",\"channel\":\"C1\"}"),
     SLACK_IN_MESSAGE, "C1", "5.0", "U1", "5.0", "user U2 5/60s", "limit",
     EVENT_MENTIONED | EVENT_COMMAND, 0},
    {"thread_broadcast kept",
     EVT("{\"type\":\"message\",\"subtype\":"
         "\"thread_broadcast\",\"channel_type\":"
         "\"im\",\"user\":\"U1\",\"text\":\"x\","
         "\"ts\":\"6.0\",\"channel\":\"D1\"}"),
     SLACK_IN_MESSAGE, "D1", "", "U1", "6.0", "x", "", EVENT_PRIVATE, 0},
    {"file_share kept",
     EVT("{\"type\":\"message\",\"subtype\":\"file_share\","
         "\"channel_type\":\"im\",\"user\":\"U1\","
         "\"text\":\"look\",\"ts\":\"6.1\","
         "\"channel\":\"D1\"}"),
     SLACK_IN_MESSAGE, "D1", "", "U1", "6.1", "look", "", EVENT_PRIVATE, 0},
    {"edit ignored",
     EVT("{\"type\":\"message\",\"subtype\":"
         "\"message_changed\",\"channel_type\":\"im\","
         "\"ts\":\"7.0\",\"channel\":\"D1\"}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"bot ignored",
     EVT("{\"type\":\"message\",\"channel_type\":\"im\","
         "\"user\":\"U9\",\"bot_id\":\"B9\",\"text\":\"x\","
         "\"ts\":\"8.0\",\"channel\":\"D1\"}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"ourselves ignored",
     EVT("{\"type\":\"message\",\"channel_type\":\"im\","
         "\"user\":\"U0BOT\",\"text\":\"x\","
         "\"ts\":\"9.0\",\"channel\":\"D1\"}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"thumbs up on our answer",
     EVT("{\"type\":\"reaction_added\",\"user\":"
         "\"U1\",\"reaction\":\"+1::skin-tone-3\","
         "\"item_user\":\"U0BOT\",\"item\":{"
         "\"type\":\"message\",\"channel\":\"C1\","
         "\"ts\":\"10.0\"}}"),
     SLACK_IN_VOTE, "C1", "", "U1", "vote:10.0", "", "", 0, 1},
    {"thumbsdown",
     EVT("{\"type\":\"reaction_added\",\"user\":\"U1\","
         "\"reaction\":\"thumbsdown\",\"item_user\":\"U0BOT\","
         "\"item\":{\"type\":\"message\",\"channel\":\"C1\","
         "\"ts\":\"10.0\"}}"),
     SLACK_IN_VOTE, "C1", "", "U1", "vote:10.0", "", "", 0, -1},
    {"other emoji",
     EVT("{\"type\":\"reaction_added\",\"user\":\"U1\","
         "\"reaction\":\"tada\",\"item_user\":\"U0BOT\","
         "\"item\":{\"type\":\"message\",\"channel\":\"C1\","
         "\"ts\":\"10.0\"}}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"vote on someone else",
     EVT("{\"type\":\"reaction_added\",\"user\":"
         "\"U1\",\"reaction\":\"+1\",\"item_user\":"
         "\"U2\",\"item\":{\"type\":\"message\","
         "\"channel\":\"C1\",\"ts\":\"10.0\"}}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"our own +1",
     EVT("{\"type\":\"reaction_added\",\"user\":\"U0BOT\","
         "\"reaction\":\"+1\",\"item_user\":\"U0BOT\","
         "\"item\":{\"type\":\"message\",\"channel\":\"C1\","
         "\"ts\":\"10.0\"}}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"slash command",
     ENV("slash_commands", "{\"command\":\"/parley\",\"text\":\"Budget user "
                           "U2 off\",\"user_id\":\"U1\",\"channel_id\":\"C1\","
                           "\"response_url\":\"https://hooks.slack.com/x\","
                           "\"trigger_id\":\"13.74.ab\"}"),
     SLACK_IN_MESSAGE, "C1", "", "U1", "cmd:13.74.ab", "user U2 off", "budget",
     EVENT_COMMAND, 0},
    {"bare slash command",
     ENV("slash_commands", "{\"command\":\"/parley\",\"text\":\"\","
                           "\"user_id\":\"U1\",\"channel_id\":\"D7\","
                           "\"trigger_id\":\"t2\"}"),
     SLACK_IN_MESSAGE, "D7", "", "U1", "cmd:t2", "", "help",
     EVENT_COMMAND | EVENT_PRIVATE, 0},
    {"interactive acked, unused", ENV("interactive", "{\"type\":\"x\"}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
    {"id too long",
     EVT("{\"type\":\"message\",\"channel_type\":\"im\","
         "\"user\":\"U1\",\"text\":\"x\",\"ts\":\"1.0\","
         "\"channel\":\"D1234567890123456789012345678901234567"
         "8901234567890123456789012345678901\"}"),
     SLACK_IN_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
};

static void
test_events(void)
{
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        struct slack_frame f;
        struct event ev;
        const char *why = NULL;
        int rc = slack_frame_decode(events[i].json, strlen(events[i].json),
                                    &self, &f, &why);

        T_OKF(rc == 0, "%s: %s", events[i].name, why ? why : "");
        if (rc < 0)
            continue;
        T_EQ_INT(f.type, SLACK_FRAME_ENVELOPE);
        T_EQ_STR(f.envelope_id, "e-1");
        T_OKF(f.in.kind == events[i].kind, "%s: kind %d (%s)", events[i].name,
              f.in.kind, f.in.ignore_why ? f.in.ignore_why : "");
        if (events[i].kind == SLACK_IN_NONE) {
            T_OK(f.in.ignore_why != NULL);
            T_EQ_INT(slack_inbound_event(&f.in, &ev), -1);
        } else {
            T_EQ_INT(slack_inbound_event(&f.in, &ev), 0);
            T_EQ_STR(ev.platform, "slack");
            T_EQ_STR(ev.chat, events[i].chat);
            T_EQ_STR(ev.thread, events[i].thread);
            T_EQ_STR(ev.user, events[i].user);
            T_EQ_STR(ev.message_id, events[i].message_id);
            T_EQ_STR(ev.text, events[i].text);
            T_EQ_STR(ev.command, events[i].command);
            T_OKF(ev.flags == events[i].flags, "%s: flags %#x want %#x",
                  events[i].name, ev.flags, events[i].flags);
            T_EQ_INT(ev.vote, events[i].vote);
            T_EQ_INT(event_check(&ev, NULL), 0);
            if (ev.kind == EVENT_VOTE)
                T_EQ_STR(ev.target_id, "10.0");
        }
        slack_frame_release(&f);
    }
}

static void
test_frames(void)
{
    struct slack_frame f;
    const char *why;
    char ack[128];
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"type\":1}",
        "{\"type\":\"hello\"} x",
        "{\"type\":\"events_api\",\"envelope_id\":\"\"}",
        "\xff",
    };

    {
        const char *j = "{\"type\":\"hello\",\"num_connections\":2,"
                        "\"debug_info\":{\"host\":\"x\"}}";

        T_EQ_INT(slack_frame_decode(j, strlen(j), &self, &f, &why), 0);
    }
    T_EQ_INT(f.type, SLACK_FRAME_HELLO);
    T_EQ_INT(f.num_connections, 2);
    slack_frame_release(&f);

    static const struct {
        const char *reason;
        enum slack_disconnect want;
    } disc[] = {
        {"warning", SLACK_DISC_WARNING},
        {"refresh_requested", SLACK_DISC_REFRESH},
        {"link_disabled", SLACK_DISC_LINK_DISABLED},
        {"something_new", SLACK_DISC_OTHER},
    };
    for (size_t i = 0; i < sizeof(disc) / sizeof(disc[0]); i++) {
        char j[128];

        snprintf(j, sizeof(j), "{\"type\":\"disconnect\",\"reason\":\"%s\"}",
                 disc[i].reason);
        T_EQ_INT(slack_frame_decode(j, strlen(j), &self, &f, &why), 0);
        T_EQ_INT(f.type, SLACK_FRAME_DISCONNECT);
        T_EQ_INT(f.reason, disc[i].want);
        T_EQ_STR(f.reason_text, disc[i].reason);
        slack_frame_release(&f);
    }

    /* retries are visible */
    {
        const char *j = "{\"type\":\"events_api\",\"envelope_id\":\"e-9\","
                        "\"retry_attempt\":2,\"retry_reason\":\"timeout\","
                        "\"payload\":{}}";

        T_EQ_INT(slack_frame_decode(j, strlen(j), &self, &f, &why), 0);
        T_EQ_INT(f.retry_attempt, 2);
        T_EQ_STR(f.retry_reason, "timeout");
        T_EQ_INT(f.in.kind, SLACK_IN_NONE);
        slack_frame_release(&f);
    }

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        T_OKF(slack_frame_decode(bad[i], strlen(bad[i]), &self, &f, &why) < 0,
              "bad %zu accepted", i);
        T_OK(why != NULL);
    }

    T_EQ_INT(slack_ack_encode("e-1", ack, sizeof(ack)), 21);
    T_EQ_STR(ack, "{\"envelope_id\":\"e-1\"}");
    T_EQ_INT(slack_ack_encode("e-1", ack, 10), -1);
}

static void
test_web_api(void)
{
    struct slack_api_error err;
    char url[SLACK_URL_MAX], user[64], bot[64], ts[64];
    char *body;
    static const struct {
        const char *error;
        enum slack_err cls;
    } classes[] = {
        {"invalid_auth", SLACK_ERR_AUTH},
        {"not_authed", SLACK_ERR_AUTH},
        {"account_inactive", SLACK_ERR_AUTH},
        {"token_revoked", SLACK_ERR_AUTH},
        {"team_disabled", SLACK_ERR_AUTH},
        {"ratelimited", SLACK_ERR_RATE_LIMITED},
        {"not_in_channel", SLACK_ERR_FORBIDDEN},
        {"is_archived", SLACK_ERR_FORBIDDEN},
        {"channel_not_found", SLACK_ERR_NOT_FOUND},
        {"msg_too_long", SLACK_ERR_TOO_LONG},
        {"no_text", SLACK_ERR_BAD_REQUEST},
        {"internal_error", SLACK_ERR_SERVER},
        {"already_reacted", SLACK_ERR_DUPLICATE},
        {"brand_new_error", SLACK_ERR_BAD_REQUEST},
    };

    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        char j[128];

        snprintf(j, sizeof(j), "{\"ok\":false,\"error\":\"%s\"}",
                 classes[i].error);
        T_EQ_INT(slack_post_decode(j, strlen(j), ts, sizeof(ts), &err), -1);
        T_OKF(err.cls == classes[i].cls, "%s → %s", classes[i].error,
              slack_err_name(err.cls));
        T_EQ_STR(err.error, classes[i].error);
    }

#define J(s) s, strlen(s)
    T_EQ_INT(slack_open_decode(J("{\"ok\":true,\"url\":\"wss://wss.slack.com/"
                                 "link/?ticket=1\"}"),
                               url, sizeof(url), &err),
             0);
    T_EQ_STR(url, "wss://wss.slack.com/link/?ticket=1");
    T_EQ_INT(slack_open_decode(J("{\"ok\":true,\"url\":\"http://x\"}"), url,
                               sizeof(url), &err),
             -1);
    T_EQ_INT(err.cls, SLACK_ERR_BAD_REPLY);
    T_EQ_INT(slack_open_decode(J("{\"ok\":false,\"error\":\"invalid_auth\"}"),
                               url, sizeof(url), &err),
             -1);
    T_EQ_INT(err.cls, SLACK_ERR_AUTH);
    T_EQ_INT(slack_auth_decode(J("{\"ok\":true,\"user_id\":\"U0BOT\","
                                 "\"bot_id\":\"B0BOT\",\"team\":\"x\"}"),
                               user, bot, 64, &err),
             0);
    T_EQ_STR(user, "U0BOT");
    T_EQ_STR(bot, "B0BOT");
    T_EQ_INT(slack_auth_decode(J("{\"ok\":true}"), user, bot, 64, &err), -1);
    T_EQ_INT(slack_post_decode(J("{\"ok\":true,\"channel\":\"C1\",\"ts\":"
                                 "\"11.5\"}"),
                               ts, sizeof(ts), &err),
             0);
    T_EQ_STR(ts, "11.5");
    T_EQ_INT(slack_post_decode(J("<html>502</html>"), ts, sizeof(ts), &err),
             -1);
    T_EQ_INT(err.cls, SLACK_ERR_BAD_REPLY);
    T_EQ_INT(slack_reply_decode(J("{\"ok\":true}"), &err), 0);

    body = slack_post_encode("C1", "a \"q\" <x>", "1.0");
    T_EQ_STR(body, "{\"channel\":\"C1\",\"text\":\"a \\\"q\\\" <x>\","
                   "\"thread_ts\":\"1.0\",\"mrkdwn\":true}");
    free(body);
    body = slack_post_encode("D1", "hi", "");
    T_EQ_STR(body, "{\"channel\":\"D1\",\"text\":\"hi\",\"mrkdwn\":true}");
    free(body);
    body = slack_reaction_encode("C1", "11.5", "+1");
    T_EQ_STR(body,
             "{\"channel\":\"C1\",\"timestamp\":\"11.5\",\"name\":\"+1\"}");
    free(body);
}

/* Streaming: chat.update / chat.delete bodies, replies and errors. */
static void
test_edit_delete(void)
{
    struct slack_api_error err;
    char ts[64];
    char *body;
    static const struct {
        const char *error;
        enum slack_err cls;
    } classes[] = {
        {"message_not_found", SLACK_ERR_NOT_FOUND}, /* core posts anew */
        {"cant_update_message", SLACK_ERR_FORBIDDEN},
        {"edit_window_closed", SLACK_ERR_FORBIDDEN},
        {"cant_delete_message", SLACK_ERR_FORBIDDEN},
        {"ratelimited", SLACK_ERR_RATE_LIMITED},
        {"msg_too_long", SLACK_ERR_TOO_LONG},
    };

    body = slack_update_encode("C1", "11.5", "*new* &amp; \"q\"");
    T_EQ_STR(body, "{\"channel\":\"C1\",\"ts\":\"11.5\",\"text\":"
                   "\"*new* &amp; \\\"q\\\"\"}");
    free(body);
    body = slack_delete_encode("D1", "12.000100");
    T_EQ_STR(body, "{\"channel\":\"D1\",\"ts\":\"12.000100\"}");
    free(body);

    /* chat.update's reply: the edited message's ts */
#define J(s) s, strlen(s)
    T_EQ_INT(slack_post_decode(J("{\"ok\":true,\"channel\":\"C1\",\"ts\":"
                                 "\"11.5\",\"text\":\"new\",\"message\":"
                                 "{\"text\":\"new\"}}"),
                               ts, sizeof(ts), &err),
             0);
    T_EQ_STR(ts, "11.5");
    T_EQ_INT(slack_reply_decode(J("{\"ok\":true,\"channel\":\"C1\",\"ts\":"
                                  "\"11.5\"}"),
                                &err),
             0);
#undef J
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        char j[128];

        snprintf(j, sizeof(j), "{\"ok\":false,\"error\":\"%s\"}",
                 classes[i].error);
        T_EQ_INT(slack_reply_decode(j, strlen(j), &err), -1);
        T_OKF(err.cls == classes[i].cls, "%s → %s", classes[i].error,
              slack_err_name(err.cls));
    }
    T_EQ_STR(slack_err_name(SLACK_ERR_NOT_FOUND), "not_found");
}

/* response_url: which URLs may be called, the body, the replies. */
static void
test_response_url(void)
{
    const char *api = "http://127.0.0.1:8123/api", *why = NULL;
    struct slack_api_error err;
    char *body;
    static const char *const bad[] = {
        "",
        "https://example.com/commands/T1/2/x",
        "http://hooks.slack.com/commands/1",  /* not https */
        "https://hooks.slack.com.evil.net/x", /* another host */
        "https://hooks.slack.com@evil.net/x", /* userinfo */
        "https://evil.net/https://hooks.slack.com/x",
        "http://127.0.0.1:8124/_fake/response/1",  /* another port */
        "http://127.0.0.1/_fake/response/1",       /* no port */
        "https://127.0.0.1:8123/_fake/response/1", /* another scheme */
        "http://127.0.0.1:8123@evil.net/x",
        "http://127.0.0.1:81234/x",
        "http://127.0.0.1:8123/a b",
        "hooks.slack.com/commands/1",
    };

    T_EQ_INT(slack_response_url_ok("https://hooks.slack.com/commands/T1/2/x",
                                   api, &why),
             1);
    T_EQ_INT(slack_response_url_ok("https://hooks.slack.com/commands/T1/2/x",
                                   "https://slack.com/api", &why),
             1);
    T_EQ_INT(slack_response_url_ok("http://127.0.0.1:8123/_fake/response/1",
                                   api, &why),
             1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_OKF(slack_response_url_ok(bad[i], api, &why) == 0, "%s", bad[i]);
        T_OK(why != NULL);
    }

    body = slack_response_encode("*hi* &amp; \"q\"", 0);
    T_EQ_STR(body, "{\"text\":\"*hi* &amp; \\\"q\\\"\",\"response_type\":"
                   "\"in_channel\",\"replace_original\":false}");
    free(body);
    body = slack_response_encode("new", 1);
    T_CONTAINS(body, "\"replace_original\":true");
    free(body);
    body = slack_response_encode(NULL, 0);
    T_EQ_STR(body, "{\"delete_original\":true}");
    free(body);

#define J(s) s, strlen(s)
    T_EQ_INT(slack_response_decode(200, J("ok"), &err), 0);
    T_EQ_INT(slack_response_decode(200, J(""), &err), 0);
    T_EQ_INT(slack_response_decode(200, J("{\"ok\":true}"), &err), 0);
    T_EQ_INT(slack_response_decode(200,
                                   J("{\"ok\":false,\"error\":"
                                     "\"used_url\"}"),
                                   &err),
             -1);
    T_EQ_STR(err.error, "used_url");
    T_OK(err.cls == SLACK_ERR_FORBIDDEN);
    T_EQ_INT(slack_response_decode(404, J("expired_url"), &err), -1);
    T_EQ_STR(err.error, "expired_url");
    T_OK(err.cls == SLACK_ERR_FORBIDDEN);
    T_EQ_INT(slack_response_decode(400, J("invalid_payload\n"), &err), -1);
    T_EQ_STR(err.error, "invalid_payload");
    T_EQ_INT(slack_response_decode(404, J("<html>gone</html>"), &err), -1);
    T_EQ_STR(err.error, "HTTP 404");
    T_EQ_INT(slack_response_decode(
                 410, J("{\"ok\":false,\"error\":\"expired_url\"}"), &err),
             -1);
    T_EQ_STR(err.error, "expired_url");
    T_OK(err.cls == SLACK_ERR_FORBIDDEN);
    T_EQ_INT(slack_response_decode(429, J("rate_limited"), &err), -1);
    T_OK(err.cls == SLACK_ERR_RATE_LIMITED);
    T_EQ_INT(slack_response_decode(503, J(""), &err), -1);
    T_OK(err.cls == SLACK_ERR_SERVER);
    T_EQ_STR(err.error, "HTTP 503");
    T_EQ_INT(slack_response_decode(200, NULL, 0, &err), 0);
#undef J
}

static void
test_commands(void)
{
    char name[EVENT_COMMAND_MAX + 1];
    size_t off = 0;

    T_EQ_INT(slack_command_parse("  HELP me", name, sizeof(name), &off), 1);
    T_EQ_STR(name, "help");
    T_EQ_INT(off, 7);
    T_EQ_INT(slack_command_parse("persona", name, sizeof(name), &off), 1);
    T_EQ_INT(off, 7);
    T_EQ_INT(slack_command_parse("helpful answer", name, sizeof(name), &off),
             0);
    T_EQ_INT(slack_command_parse("", name, sizeof(name), &off), 0);
}

int
main(void)
{
    test_events();
    test_frames();
    test_web_api();
    test_edit_delete();
    test_commands();
    test_response_url();
    return t_done();
}
