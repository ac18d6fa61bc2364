/* test_telegram_fake: the Bot API fake behaves like Telegram where parley
 * depends on it (offsets, long poll, errors, flood limits, HTML). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/http.h"
#include "tests/fakes/telegram_fake.h"
#include "tests/t.h"

static uv_loop_t loop;
static struct http *http;
static struct telegram_fake *tf;

struct reply {
    int done;
    long status;
    char body[65536];
    int64_t ms;
};

static void
on_done(const struct http_response *r, void *arg)
{
    struct reply *rep = arg;

    rep->done = 1;
    rep->status = r->status;
    rep->ms = r->elapsed_ms;
    snprintf(rep->body, sizeof(rep->body), "%s", r->body);
}

/* One call, the loop run until it completes (10 s at most). */
static struct reply *
call_tok(const char *token, const char *method, const char *body)
{
    static struct reply rep;
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    char url[512];
    struct http_request rq;
    int64_t t0 = fake_now_ms();

    memset(&rep, 0, sizeof(rep));
    snprintf(url, sizeof(url), "%s/bot%s/%s", telegram_fake_base(tf), token,
             method);
    memset(&rq, 0, sizeof(rq));
    rq.url = url;
    rq.method = body ? "POST" : "GET";
    rq.headers = hdrs;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    rq.timeout_ms = 10000;
    if (http_send(http, &rq, on_done, &rep) == NULL)
        return &rep;
    while (!rep.done && fake_now_ms() - t0 < 10000)
        uv_run(&loop, UV_RUN_ONCE);
    return &rep;
}

static struct reply *
call(const char *method, const char *body)
{
    return call_tok(TELEGRAM_FAKE_TOKEN, method, body);
}

static void
test_paths(void)
{
    struct reply *r = call("getMe", NULL);
    T_EQ_INT(r->status, 200);
    T_CONTAINS(r->body, "\"username\":\"ParleyBot\"");
    T_CONTAINS(r->body, "\"id\":777000111");
    r = call_tok("123456:wrong", "getMe", NULL);
    T_EQ_INT(r->status, 401);
    T_EQ_STR(
        r->body,
        "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}");
    r = call("noSuchMethod", "{}");
    T_EQ_INT(r->status, 404);
    T_CONTAINS(r->body, "\"error_code\":404");
    r = call("deleteWebhook", "{\"drop_pending_updates\":false}");
    T_EQ_INT(r->status, 200);
    T_CONTAINS(r->body, "\"result\":true");
}

static void
test_offsets(void)
{
    struct telegram_fake_msg m = {.chat = 1001, .text = "hello"};
    struct telegram_fake_stats st;
    int64_t mid = 0, id1, id2;
    char body[256];
    struct reply *r;

    id1 = telegram_fake_message(tf, &m, &mid);
    m.text = "again";
    id2 = telegram_fake_message(tf, &m, NULL);
    T_OK(id1 > 0 && id2 == id1 + 1);
    T_EQ_INT(mid, 1);
    r = call("getUpdates", "{\"timeout\":0}");
    T_CONTAINS(r->body, "\"text\":\"hello\"");
    T_CONTAINS(r->body, "\"text\":\"again\"");
    /* unconfirmed: delivered again */
    r = call("getUpdates", "{\"timeout\":0,\"limit\":1}");
    T_CONTAINS(r->body, "\"text\":\"hello\"");
    T_OK(strstr(r->body, "again") == NULL);
    /* offset = id1 + 1 confirms the first */
    snprintf(body, sizeof(body), "{\"offset\":%" PRId64 ",\"timeout\":0}",
             id1 + 1);
    r = call("getUpdates", body);
    T_OK(strstr(r->body, "hello") == NULL);
    T_CONTAINS(r->body, "again");
    snprintf(body, sizeof(body), "{\"offset\":%" PRId64 ",\"timeout\":1}",
             id2 + 1);
    r = call("getUpdates", body);
    T_EQ_STR(r->body, "{\"ok\":true,\"result\":[]}");
    /* an empty poll is held for its timeout */
    T_OKF(r->ms >= 950, "held %" PRId64 " ms", r->ms);
    telegram_fake_stats(tf, &st);
    T_EQ_INT(st.pending, 0);
    T_EQ_INT(st.offset, id2 + 1);

    /* allowed_updates filters and is remembered */
    telegram_fake_raw(tf, "{\"poll\":{\"id\":\"1\"}}");
    m.text = "third";
    telegram_fake_message(tf, &m, NULL);
    r = call("getUpdates", "{\"timeout\":0,\"allowed_updates\":[\"message\"]}");
    T_OK(strstr(r->body, "\"poll\"") == NULL);
    T_CONTAINS(r->body, "third");
    r = call("getUpdates", "{\"timeout\":0}");
    T_OK(strstr(r->body, "\"poll\"") == NULL);
    r = call("getUpdates", "{\"timeout\":0,\"allowed_updates\":[]}");
    T_CONTAINS(r->body, "\"poll\"");
    snprintf(body, sizeof(body), "{\"offset\":%" PRId64 ",\"timeout\":0}",
             st.last_update_id + 100);
    call("getUpdates", body);
}

static void
test_conflicts(void)
{
    struct reply *r;

    telegram_fake_script(tf, "getUpdates", 0, 409, 0, 0, NULL, 1);
    r = call("getUpdates", "{\"timeout\":0}");
    T_EQ_INT(r->status, 409);
    T_CONTAINS(r->body, "terminated by other getUpdates request");
    telegram_fake_set_webhook(tf, 1);
    r = call("getUpdates", "{\"timeout\":0}");
    T_EQ_INT(r->status, 409);
    T_CONTAINS(r->body, "webhook is active");
    call("deleteWebhook", "{}");
    r = call("getUpdates", "{\"timeout\":0}");
    T_EQ_INT(r->status, 200);

    /* two overlapping long polls: the second gets 409 */
    {
        static const char *const hdrs[] = {"Content-Type: application/json",
                                           NULL};
        struct reply held;
        char url[256];
        struct http_request rq;
        int64_t t0 = fake_now_ms();

        telegram_fake_set_conflict_on_overlap(tf, 1);
        memset(&held, 0, sizeof(held));
        snprintf(url, sizeof(url), "%s/bot%s/getUpdates",
                 telegram_fake_base(tf), TELEGRAM_FAKE_TOKEN);
        memset(&rq, 0, sizeof(rq));
        rq.url = url;
        rq.headers = hdrs;
        rq.body = "{\"timeout\":1}";
        rq.body_len = strlen(rq.body);
        http_send(http, &rq, on_done, &held);
        while (fake_now_ms() - t0 < 200)
            uv_run(&loop, UV_RUN_NOWAIT);
        r = call("getUpdates", "{\"timeout\":0}");
        T_EQ_INT(r->status, 409);
        while (!held.done && fake_now_ms() - t0 < 5000)
            uv_run(&loop, UV_RUN_ONCE);
        T_EQ_INT(held.status, 200);
        telegram_fake_set_conflict_on_overlap(tf, 0);
    }
}

static void
test_send(void)
{
    const struct telegram_fake_sent *s;
    struct reply *r;
    size_t n;

    r = call("sendMessage", "{\"chat_id\":2002,\"text\":\"<b>x</i>\","
                            "\"parse_mode\":\"HTML\"}");
    T_EQ_INT(r->status, 400);
    T_CONTAINS(r->body, "Bad Request: can't parse entities:");
    r = call("sendMessage", "{\"chat_id\":2002,\"text\":\"<blink>x</blink>\","
                            "\"parse_mode\":\"HTML\"}");
    T_CONTAINS(r->body, "Unsupported start tag \\\"blink\\\"");
    r = call("sendMessage", "{\"chat_id\":2002,\"text\":\"a < b\","
                            "\"parse_mode\":\"HTML\"}");
    T_EQ_INT(r->status, 400);
    r = call("sendMessage", "{\"chat_id\":2002,\"text\":\"  \"}");
    T_CONTAINS(r->body, "message text is empty");
    r = call("sendMessage",
             "{\"chat_id\":2002,\"text\":\"<b>bold</b> &lt;3 <a "
             "href=\\\"https://x.org\\\">x</a>\",\"parse_mode\":\"HTML\","
             "\"reply_parameters\":{\"message_id\":7,"
             "\"allow_sending_without_reply\":true},\"reply_markup\":{"
             "\"inline_keyboard\":[[{\"text\":\"+\",\"callback_data\":"
             "\"fb:+:k\"},{\"text\":\"-\",\"callback_data\":\"fb:-:k\"}]]}}");
    T_EQ_INT(r->status, 200);
    T_CONTAINS(r->body, "\"text\":\"bold <3 x\"");
    n = telegram_fake_sent(tf, 2002, &s);
    T_EQ_INT(n, 1);
    if (n == 1) {
        T_EQ_STR(s[0].text, "bold <3 x");
        T_EQ_INT(s[0].reply_to, 7);
        T_EQ_INT(s[0].keyboard, 1);
        T_EQ_STR(s[0].cb_up, "fb:+:k");
    }
    /* 4097 visible characters is too long; 4096 fits */
    {
        char *big = malloc(4200), *body = malloc(4300);
        memset(big, 'a', 4097);
        big[4097] = '\0';
        snprintf(body, 4300, "{\"chat_id\":3003,\"text\":\"%s\"}", big);
        r = call("sendMessage", body);
        T_CONTAINS(r->body, "message is too long");
        big[4096] = '\0';
        snprintf(body, 4300, "{\"chat_id\":3003,\"text\":\"%s\"}", big);
        r = call("sendMessage", body);
        T_EQ_INT(r->status, 200);
        free(big);
        free(body);
    }
    /* an identical edit is "not modified": text, entities and buttons */
    r = call("editMessageText",
             "{\"chat_id\":2002,\"message_id\":1,\"text\":\"<b>bold</b> "
             "&lt;3 <a href=\\\"https://x.org\\\">x</a>\",\"parse_mode\":"
             "\"HTML\",\"reply_markup\":{\"inline_keyboard\":[[{\"text\":"
             "\"+\",\"callback_data\":\"fb:+:k\"},{\"text\":\"-\","
             "\"callback_data\":\"fb:-:k\"}]]}}");
    T_EQ_INT(r->status, 400);
    T_CONTAINS(r->body, "Bad Request: message is not modified");
    /* the same visible text without entities and buttons is a change */
    r = call("editMessageText", "{\"chat_id\":2002,\"message_id\":1,"
                                "\"text\":\"bold <3 x\"}");
    T_EQ_INT(r->status, 200);
    r = call("editMessageText", "{\"chat_id\":2002,\"message_id\":1,"
                                "\"text\":\"bold <3 x\"}");
    T_CONTAINS(r->body, "message is not modified");
    r = call("editMessageText", "{\"chat_id\":2002,\"message_id\":1,"
                                "\"text\":\"changed\"}");
    T_EQ_INT(r->status, 200);
    n = telegram_fake_sent(tf, 2002, &s);
    if (n >= 1) {
        T_EQ_STR(s[0].text, "changed");
        T_EQ_INT(s[0].edits, 2);
        T_EQ_INT(s[0].nedit_ms, 2);
        T_EQ_INT(s[0].keyboard, 0);
    }
    T_EQ_INT(telegram_fake_edits_max(tf, 2002, 1, 60000), 2);
    r = call("editMessageText", "{\"chat_id\":2002,\"message_id\":99,"
                                "\"text\":\"x\"}");
    T_EQ_INT(r->status, 400);
    T_CONTAINS(r->body, "Bad Request: message to edit not found");
    /* delete (chat 3003: 2002 has spent its burst): once; then the
     * message is gone for edits and deletes */
    r = call("deleteMessage", "{\"chat_id\":3003,\"message_id\":1}");
    T_EQ_INT(r->status, 200);
    T_CONTAINS(r->body, "\"result\":true");
    r = call("deleteMessage", "{\"chat_id\":3003,\"message_id\":1}");
    T_EQ_INT(r->status, 400);
    T_CONTAINS(r->body, "Bad Request: message to delete not found");
    r = call("editMessageText", "{\"chat_id\":3003,\"message_id\":1,"
                                "\"text\":\"again\"}");
    T_CONTAINS(r->body, "Bad Request: message to edit not found");
    T_OK(telegram_fake_find(tf, 3003, 1) != NULL &&
         telegram_fake_find(tf, 3003, 1)->deleted);
    {
        const int64_t *times;
        /* the send and the delete count against the flood limits */
        T_EQ_INT(telegram_fake_ops(tf, 3003, &times), 2);
        T_EQ_INT(telegram_fake_ops_max(tf, 3003, 60000), 2);
    }
    r = call("sendChatAction", "{\"chat_id\":2002,\"action\":\"typing\"}");
    T_CONTAINS(r->body, "\"result\":true");
    T_EQ_INT(telegram_fake_actions(tf, 2002), 1);
}

static void
test_errors(void)
{
    struct reply *r;

    telegram_fake_script(tf, "sendMessage", 4004, 429, 3, 0, NULL, 1);
    r = call("sendMessage", "{\"chat_id\":4004,\"text\":\"x\"}");
    T_EQ_INT(r->status, 429);
    T_CONTAINS(r->body, "\"parameters\":{\"retry_after\":3}");
    /* the chat stays limited for its retry_after */
    r = call("sendMessage", "{\"chat_id\":4004,\"text\":\"x\"}");
    T_EQ_INT(r->status, 429);
    T_EQ_INT(telegram_fake_429s(tf, 4004), 2);
    /* another chat is not */
    r = call("sendMessage", "{\"chat_id\":4005,\"text\":\"x\"}");
    T_EQ_INT(r->status, 200);

    telegram_fake_script(tf, "sendMessage", 4006, 403, 0, 0, NULL, 1);
    r = call("sendMessage", "{\"chat_id\":4006,\"text\":\"x\"}");
    T_EQ_INT(r->status, 403);
    T_CONTAINS(r->body, "bot was blocked by the user");
    telegram_fake_block(tf, -4007);
    r = call("sendMessage", "{\"chat_id\":-4007,\"text\":\"x\"}");
    T_CONTAINS(r->body, "bot was kicked from the group chat");
    telegram_fake_migrate(tf, -4008, -1004008);
    r = call("sendMessage", "{\"chat_id\":-4008,\"text\":\"x\"}");
    T_EQ_INT(r->status, 400);
    T_CONTAINS(r->body, "\"migrate_to_chat_id\":-1004008");
    r = call("sendMessage", "{\"chat_id\":-1004008,\"text\":\"x\"}");
    T_EQ_INT(r->status, 200);
}

static void
test_flood(void)
{
    char body[128];
    struct reply *r;
    int ok = 0;

    /* per chat: a burst of 3, then 429 */
    for (int i = 0; i < 4; i++) {
        r = call("sendMessage", "{\"chat_id\":5005,\"text\":\"x\"}");
        ok += r->status == 200;
    }
    T_EQ_INT(ok, 3);
    T_CONTAINS(r->body, "Too Many Requests: retry after 1");
    T_EQ_INT(r->status, 429);

    /* per group: 5 per 2 s in this test */
    telegram_fake_set_limits(tf, 100, 1, 5, 2000, 0, 0);
    ok = 0;
    for (int i = 0; i < 6; i++) {
        r = call("sendMessage", "{\"chat_id\":-5006,\"text\":\"x\"}");
        ok += r->status == 200;
    }
    T_EQ_INT(ok, 5);
    T_CONTAINS(r->body, "\"retry_after\":2");

    /* overall: 30 per second */
    ok = 0;
    for (int i = 0; i < 31; i++) {
        snprintf(body, sizeof(body), "{\"chat_id\":%d,\"text\":\"x\"}",
                 60000 + i);
        r = call("sendMessage", body);
        ok += r->status == 200;
    }
    T_OKF(ok <= 30, "%d sent", ok);
    T_EQ_INT(r->status, 429);
}

static void
test_callbacks(void)
{
    char qid[32], body[128];
    struct reply *r;
    int64_t id;

    id = telegram_fake_callback(tf, 2002, 1, 1001, "fb:+:job:1:0", qid,
                                sizeof(qid));
    T_OK(id > 0);
    r = call("getUpdates", "{\"timeout\":0}");
    T_CONTAINS(r->body, "\"callback_query\":{\"id\":\"");
    T_CONTAINS(r->body, "\"data\":\"fb:+:job:1:0\"");
    snprintf(body, sizeof(body), "{\"callback_query_id\":\"%s\"}", qid);
    r = call("answerCallbackQuery", body);
    T_EQ_INT(r->status, 200);
    r = call("answerCallbackQuery", body);
    T_CONTAINS(r->body, "query is too old");
    T_EQ_INT(telegram_fake_answered(tf, qid), 2);

    /* a reply to the bot's message carries its author */
    {
        struct telegram_fake_msg m = {
            .chat = 2002, .text = "why", .reply_to = 1};
        telegram_fake_message(tf, &m, NULL);
        r = call("getUpdates", "{\"timeout\":0}");
        T_CONTAINS(r->body, "\"reply_to_message\":{\"message_id\":1,\"from\":{"
                            "\"id\":777000111,\"is_bot\":true");
    }
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    http = http_new(&loop);
    tf = telegram_fake_new(&loop, 0, NULL);
    if (http == NULL || tf == NULL) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    test_paths();
    test_offsets();
    test_conflicts();
    test_send();
    test_errors();
    test_flood();
    test_callbacks();
    telegram_fake_free(tf);
    http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    curl_global_cleanup();
    return t_done();
}
