/* test_telegram_codec: Bot API updates, errors and request bodies. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/telegram_codec.h"
#include "tests/t.h"

static const struct telegram_me me = {777000111, "ParleyBot"};

#define FROM_ANN                                                               \
    "\"from\":{\"id\":1001,\"is_bot\":false,\"first_name\":\"Ann\",\"last_"    \
    "name\":\"Lee\",\"username\":\"ann\",\"language_code\":\"en\"}"
#define PRIV                                                                   \
    "\"chat\":{\"id\":1001,\"first_name\":\"Ann\",\"type\":\"private\"}"
#define GROUP "\"chat\":{\"id\":-4001,\"title\":\"Team\",\"type\":\"group\"}"
#define SUPER                                                                  \
    "\"chat\":{\"id\":-1001234567890,\"title\":\"Forum\",\"type\":"            \
    "\"supergroup\",\"is_forum\":true}"

struct upd_case {
    const char *name;
    const char *update; /* the update object, update_id 10 */
    enum telegram_update_kind kind;
    unsigned flags;
    const char *chat, *thread, *reply, *user, *command, *text;
    int vote;
};

static const struct upd_case upd_cases[] = {
    {"private text",
     "{\"update_id\":10,\"message\":{\"message_id\":5," FROM_ANN "," PRIV
     ",\"date\":1712345678,\"text\":\"hello there\"}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_PRIVATE, "1001", "", "", "1001", "",
     "hello there", 0},
    {"group mention",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1712345678,\"text\":\"@parleybot what is 2+2?\","
     "\"entities\":[{\"offset\":0,\"length\":10,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-4001", "", "", "1001", "",
     "what is 2+2?", 0},
    {"mention in the middle",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"hey @ParleyBot tell me\","
     "\"entities\":[{\"offset\":4,\"length\":10,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-4001", "", "", "1001", "",
     "hey tell me", 0},
    {"other bot mentioned",
     "{\"update_id\":10,\"message\":{\"message_id\":7," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"@otherbot hi\","
     "\"entities\":[{\"offset\":0,\"length\":9,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "", "1001", "", "@otherbot hi",
     0},
    {"prefix of our name is not us",
     "{\"update_id\":10,\"message\":{\"message_id\":7," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"@ParleyBo hi\","
     "\"entities\":[{\"offset\":0,\"length\":9,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "", "1001", "", "@ParleyBo hi",
     0},
    {"command for us",
     "{\"update_id\":10,\"message\":{\"message_id\":8," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"/Help@parleybot\","
     "\"entities\":[{\"offset\":0,\"length\":15,\"type\":\"bot_command\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_COMMAND, "-4001", "", "", "1001", "help",
     "", 0},
    {"command for another bot",
     "{\"update_id\":10,\"message\":{\"message_id\":8," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"/help@OtherBot\","
     "\"entities\":[{\"offset\":0,\"length\":14,\"type\":\"bot_command\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "", "1001", "", "/help@OtherBot",
     0},
    {"bare command with arguments",
     "{\"update_id\":10,\"message\":{\"message_id\":9," FROM_ANN "," PRIV
     ",\"date\":1,\"text\":\"/limit user 42 5/60s\","
     "\"entities\":[{\"offset\":0,\"length\":6,\"type\":\"bot_command\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_PRIVATE | EVENT_COMMAND, "1001", "", "",
     "1001", "limit", "user 42 5/60s", 0},
    {"command not at offset 0",
     "{\"update_id\":10,\"message\":{\"message_id\":9," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"try /help\","
     "\"entities\":[{\"offset\":4,\"length\":5,\"type\":\"bot_command\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "", "1001", "", "try /help", 0},
    {"reply to the bot",
     "{\"update_id\":10,\"message\":{\"message_id\":12," FROM_ANN "," GROUP
     ",\"date\":1,\"reply_to_message\":{\"message_id\":11,\"from\":{\"id\":"
     "777000111,\"is_bot\":true,\"first_name\":\"Parley\",\"username\":"
     "\"ParleyBot\"}," GROUP ",\"date\":1,\"text\":\"4\"},\"text\":\"why?\"}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_REPLY_TO_BOT, "-4001", "", "11", "1001", "",
     "why?", 0},
    {"reply to someone else",
     "{\"update_id\":10,\"message\":{\"message_id\":12," FROM_ANN "," GROUP
     ",\"date\":1,\"reply_to_message\":{\"message_id\":11,\"from\":{\"id\":"
     "5,\"is_bot\":false,\"first_name\":\"Bo\"}," GROUP
     ",\"date\":1,\"text\":\"x\"},\"text\":\"why?\"}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "11", "1001", "", "why?", 0},
    {"forum topic, topic root is not a reply",
     "{\"update_id\":10,\"message\":{\"message_id\":50," FROM_ANN "," SUPER
     ",\"message_thread_id\":42,\"is_topic_message\":true,\"date\":1,"
     "\"reply_to_message\":{\"message_id\":42,\"from\":{\"id\":1001,\"is_bot\":"
     "false,\"first_name\":\"Ann\"}," SUPER ",\"date\":1,\"forum_topic_"
     "created\":{\"name\":\"t\",\"icon_color\":1}},\"text\":\"@ParleyBot "
     "hi\",\"entities\":[{\"offset\":0,\"length\":10,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-1001234567890", "42", "",
     "1001", "", "hi", 0},
    {"thread id without is_topic_message is no topic",
     "{\"update_id\":10,\"message\":{\"message_id\":50," FROM_ANN "," SUPER
     ",\"message_thread_id\":42,\"date\":1,\"text\":\"x\"}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-1001234567890", "", "", "1001", "", "x", 0},
    {"emoji before the mention (UTF-16 offsets)",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd hey @ParleyBot "
     "tell me\",\"entities\":[{\"offset\":9,\"length\":10,\"type\":"
     "\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-4001", "", "", "1001", "",
     "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd hey tell me", 0},
    {"cyrillic before the mention",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
     "@ParleyBot!\",\"entities\":[{\"offset\":7,\"length\":10,\"type\":"
     "\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-4001", "", "", "1001", "",
     "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 !", 0},
    {"entity inside a surrogate pair is ignored",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"\xf0\x9f\x91\x8d@ParleyBot\",\"entities\":[{"
     "\"offset\":1,\"length\":11,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "", "1001", "",
     "\xf0\x9f\x91\x8d@ParleyBot", 0},
    {"entity past the end is ignored",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"@ParleyBot\",\"entities\":[{"
     "\"offset\":0,\"length\":11,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, 0, "-4001", "", "", "1001", "", "@ParleyBot", 0},
    {"text_mention of our id",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"text\":\"hi Parley\",\"entities\":[{\"offset\":3,"
     "\"length\":6,\"type\":\"text_mention\",\"user\":{\"id\":777000111,"
     "\"is_bot\":true,\"first_name\":\"Parley\"}}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-4001", "", "", "1001", "",
     "hi", 0},
    {"caption with a mention",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," GROUP
     ",\"date\":1,\"photo\":[{\"file_id\":\"x\",\"width\":1,\"height\":1}],"
     "\"caption\":\"@ParleyBot what is this\",\"caption_entities\":[{"
     "\"offset\":0,\"length\":10,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_MENTIONED, "-4001", "", "", "1001", "",
     "what is this", 0},
    {"sticker: no text",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN "," PRIV
     ",\"date\":1,\"sticker\":{\"file_id\":\"x\"}}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_PRIVATE, "1001", "", "", "1001", "", "", 0},
    {"from another bot",
     "{\"update_id\":10,\"message\":{\"message_id\":6,\"from\":{\"id\":555,"
     "\"is_bot\":true,\"first_name\":\"B\",\"username\":\"otherbot\"}," GROUP
     ",\"date\":1,\"text\":\"@ParleyBot hi\",\"entities\":[{\"offset\":0,"
     "\"length\":10,\"type\":\"mention\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_FROM_BOT | EVENT_MENTIONED, "-4001", "", "",
     "555", "", "hi", 0},
    {"our own message",
     "{\"update_id\":10,\"message\":{\"message_id\":6,\"from\":{\"id\":"
     "777000111,\"is_bot\":true,\"first_name\":\"Parley\"}," GROUP
     ",\"date\":1,\"text\":\"an answer\"}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_FROM_BOT | EVENT_FROM_SELF, "-4001", "", "",
     "777000111", "", "an answer", 0},
    {"anonymous admin posts as the group",
     "{\"update_id\":10,\"message\":{\"message_id\":6,\"from\":{\"id\":"
     "1087968824,\"is_bot\":true,\"first_name\":\"Group\",\"username\":"
     "\"GroupAnonymousBot\"},\"sender_chat\":{\"id\":-4001,\"title\":\"Team\","
     "\"type\":\"group\"}," GROUP ",\"date\":1,\"text\":\"/help\","
     "\"entities\":[{\"offset\":0,\"length\":5,\"type\":\"bot_command\"}]}}",
     TELEGRAM_UPDATE_MESSAGE, EVENT_COMMAND, "-4001", "", "", "-4001", "help",
     "", 0},
    {"callback query vote",
     "{\"update_id\":10,\"callback_query\":{\"id\":"
     "\"4382bfdwdsb323b2d9\"," FROM_ANN
     ",\"message\":{\"message_id\":900,\"from\":{\"id\":777000111,"
     "\"is_bot\":true,\"first_name\":\"Parley\"}," GROUP
     ",\"date\":1,\"text\":\"4\"},\"chat_instance\":\"-1\",\"data\":"
     "\"fb:-:job:17\"}}",
     TELEGRAM_UPDATE_CALLBACK, 0, "-4001", "", "", "1001", "", NULL, -1},
    {"callback without message (inline)",
     "{\"update_id\":10,\"callback_query\":{\"id\":\"77\"," FROM_ANN
     ",\"inline_message_id\":\"AAA\",\"chat_instance\":\"-1\",\"data\":"
     "\"fb:+:job:17\"}}",
     TELEGRAM_UPDATE_CALLBACK, 0, "", "", "", "1001", "", NULL, 1},
    {"my_chat_member kicked",
     "{\"update_id\":10,\"my_chat_member\":{" GROUP "," FROM_ANN
     ",\"date\":1,\"old_chat_member\":{\"user\":{\"id\":777000111,\"is_bot\":"
     "true,\"first_name\":\"P\"},\"status\":\"member\"},\"new_chat_member\":{"
     "\"user\":{\"id\":777000111,\"is_bot\":true,\"first_name\":\"P\"},"
     "\"status\":\"kicked\",\"until_date\":0}}}",
     TELEGRAM_UPDATE_MY_CHAT_MEMBER, 0, "-4001", "", "", "", "", NULL, 0},
    {"group upgraded: migrate_to_chat_id in the old group",
     "{\"update_id\":10,\"message\":{\"message_id\":12," FROM_ANN "," GROUP
     ",\"date\":1,\"migrate_to_chat_id\":-1004001}}",
     TELEGRAM_UPDATE_MIGRATE, 0, "-4001", "", "", "", "", NULL, 0},
    {"group upgraded: migrate_from_chat_id in the supergroup",
     "{\"update_id\":10,\"message\":{\"message_id\":1," FROM_ANN
     ",\"chat\":{\"id\":-1004001,\"type\":\"supergroup\",\"title\":\"G\"},"
     "\"date\":1,\"migrate_from_chat_id\":-4001}}",
     TELEGRAM_UPDATE_MIGRATE, 0, "-1004001", "", "", "", "", NULL, 0},
    {"edited message is not answered",
     "{\"update_id\":10,\"edited_message\":{\"message_id\":6," FROM_ANN "," PRIV
     ",\"date\":1,\"edit_date\":2,\"text\":\"hello!\"}}",
     TELEGRAM_UPDATE_EDITED, 0, "1001", "", "", "", "", NULL, 0},
    {"unknown kind skipped",
     "{\"update_id\":10,\"poll\":{\"id\":\"1\",\"question\":\"q\"}}",
     TELEGRAM_UPDATE_SKIP, 0, "", "", "", "", "", NULL, 0},
    {"message without chat skipped",
     "{\"update_id\":10,\"message\":{\"message_id\":6," FROM_ANN
     ",\"date\":1,\"text\":\"x\"}}",
     TELEGRAM_UPDATE_SKIP, 0, "", "", "", "", "", NULL, 0},
    {"channel post without from skipped",
     "{\"update_id\":10,\"message\":{\"message_id\":6,\"sender_chat\":{\"id\":"
     "-100555,\"type\":\"channel\"},\"chat\":{\"id\":-100555,\"type\":"
     "\"channel\"},\"date\":1,\"text\":\"x\"}}",
     TELEGRAM_UPDATE_SKIP, 0, "", "", "", "", "", NULL, 0},
};

static void
test_updates(void)
{
    char body[8192];

    for (size_t i = 0; i < sizeof(upd_cases) / sizeof(upd_cases[0]); i++) {
        const struct upd_case *c = &upd_cases[i];
        struct telegram_updates ups;
        struct telegram_error err;
        struct event ev;
        int rc;

        snprintf(body, sizeof(body), "{\"ok\":true,\"result\":[%s]}",
                 c->update);
        rc = telegram_codec_parse_updates(body, strlen(body), &me, &ups, &err);
        T_OKF(rc == TELEGRAM_PARSE_OK, "%s: rc %d %s", c->name, rc,
              err.description);
        if (rc != TELEGRAM_PARSE_OK || ups.n != 1) {
            T_OKF(0, "%s: n=%zu", c->name, ups.n);
            continue;
        }
        T_EQ_INT(ups.next_offset, 11);
        const struct telegram_update *u = &ups.v[0];
        T_OKF(u->kind == c->kind, "%s: kind %d", c->name, u->kind);
        T_OKF(u->flags == c->flags, "%s: flags %#x want %#x", c->name, u->flags,
              c->flags);
        T_OKF(strcmp(u->chat_s, c->chat) == 0, "%s: chat %s", c->name,
              u->chat_s);
        if (c->kind == TELEGRAM_UPDATE_MESSAGE ||
            c->kind == TELEGRAM_UPDATE_CALLBACK) {
            T_OKF(strcmp(u->thread_s, c->thread) == 0, "%s: thread %s", c->name,
                  u->thread_s);
            T_OKF(strcmp(u->reply_s, c->reply) == 0, "%s: reply %s", c->name,
                  u->reply_s);
            T_OKF(strcmp(u->from_s, c->user) == 0, "%s: user %s", c->name,
                  u->from_s);
            T_OKF(strcmp(u->command, c->command) == 0, "%s: command %s",
                  c->name, u->command);
            T_OKF(u->vote == c->vote, "%s: vote %d", c->name, u->vote);
        }
        if (c->text != NULL)
            T_OKF(u->text != NULL && strcmp(u->text, c->text) == 0,
                  "%s: text \"%s\"", c->name, u->text ? u->text : "(null)");
        if (c->kind == TELEGRAM_UPDATE_MY_CHAT_MEMBER)
            T_EQ_INT(u->removed, 1);
        if (c->kind == TELEGRAM_UPDATE_MIGRATE) {
            T_EQ_INT(u->migrate_from, -4001);
            T_EQ_INT(u->migrate_to, -1004001);
        }
        rc = telegram_update_event(u, &ev);
        if (c->kind == TELEGRAM_UPDATE_MESSAGE) {
            const char *why = NULL;
            T_EQ_INT(rc, 0);
            T_OKF(event_check(&ev, &why) == 0, "%s: %s", c->name, why);
            T_EQ_STR(ev.platform, "telegram");
            T_EQ_INT(ev.kind, EVENT_MESSAGE);
            T_EQ_STR(ev.text, c->text);
        } else if (c->kind == TELEGRAM_UPDATE_CALLBACK && c->chat[0]) {
            const char *why = NULL;
            T_EQ_INT(rc, 0);
            T_OKF(event_check(&ev, &why) == 0, "%s: %s", c->name, why);
            T_EQ_INT(ev.kind, EVENT_VOTE);
            T_EQ_STR(ev.target_id, "900");
            T_EQ_INT(ev.vote, -1);
            T_EQ_STR(u->callback_id, "4382bfdwdsb323b2d9");
        } else {
            T_EQ_INT(rc, -1);
        }
        telegram_updates_release(&ups);
    }
}

/* A user name is "first last", cut on a UTF-8 boundary. */
static void
test_names(void)
{
    const char *body =
        "{\"ok\":true,\"result\":[{\"update_id\":3,\"message\":{\"message_id\":"
        "1,\"from\":{\"id\":9,\"is_bot\":false,\"first_name\":\"Zo\xc3\xab\","
        "\"last_name\":\"Kr\xc3\xa4mer\"},\"chat\":{\"id\":9,\"type\":"
        "\"private\"},\"date\":1712345678,\"text\":\"x\"}}]}";
    struct telegram_updates ups;
    struct telegram_error err;
    struct event ev;

    T_EQ_INT(telegram_codec_parse_updates(body, strlen(body), &me, &ups, &err),
             TELEGRAM_PARSE_OK);
    T_EQ_STR(ups.v[0].from_name, "Zo\xc3\xab Kr\xc3\xa4mer");
    T_EQ_INT(telegram_update_event(&ups.v[0], &ev), 0);
    T_EQ_INT(ev.ts_ms, 1712345678000LL);
    T_EQ_STR(ev.message_id, "1");
    telegram_updates_release(&ups);
}

/* A reply names its author (a command's WHO); an anonymous admin is the
 * chat it posted as, as for the sender. */
static void
test_reply_author(void)
{
    static const struct {
        const char *reply, *want;
    } cases[] = {
        {",\"reply_to_message\":{\"message_id\":11,\"from\":{\"id\":5,"
         "\"is_bot\":false,\"first_name\":\"Bo\"}," GROUP
         ",\"date\":1,\"text\":\"x\"}",
         "5"},
        {",\"reply_to_message\":{\"message_id\":11,\"from\":{\"id\":"
         "1087968824,\"is_bot\":true,\"first_name\":\"Group\"},"
         "\"sender_chat\":{\"id\":-4001,\"title\":\"Team\",\"type\":"
         "\"group\"}," GROUP ",\"date\":1,\"text\":\"x\"}",
         "-4001"},
        {",\"reply_to_message\":{\"message_id\":11," GROUP
         ",\"date\":1,\"text\":\"x\"}",
         ""},
        {"", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[1024];
        struct telegram_updates ups;
        struct telegram_error err;
        struct event ev;
        const char *why = NULL;

        snprintf(body, sizeof(body),
                 "{\"ok\":true,\"result\":[{\"update_id\":3,\"message\":{"
                 "\"message_id\":12," FROM_ANN "," GROUP ",\"date\":1%s,"
                 "\"text\":\"/ban\",\"entities\":[{\"offset\":0,"
                 "\"length\":4,\"type\":\"bot_command\"}]}}]}",
                 cases[i].reply);
        T_EQ_INT(
            telegram_codec_parse_updates(body, strlen(body), &me, &ups, &err),
            TELEGRAM_PARSE_OK);
        T_EQ_INT(telegram_update_event(&ups.v[0], &ev), 0);
        T_OKF(event_check(&ev, &why) == 0, "case %zu: %s", i, why);
        T_EQ_STR(ev.reply_to_user, cases[i].want);
        telegram_updates_release(&ups);
    }
}

static void
test_batch(void)
{
    /* three updates out of order, one unknown: the offset passes them all */
    const char *body =
        "{\"ok\":true,\"result\":[{\"update_id\":900000000001,\"message\":{"
        "\"message_id\":1," FROM_ANN "," PRIV ",\"date\":1,\"text\":\"a\"}},"
        "{\"update_id\":900000000003,\"chat_boost\":{}},"
        "{\"update_id\":900000000002,\"message\":{\"message_id\":2," FROM_ANN
        "," PRIV ",\"date\":1,\"text\":\"b\"}}]}";
    struct telegram_updates ups;
    struct telegram_error err;

    T_EQ_INT(telegram_codec_parse_updates(body, strlen(body), &me, &ups, &err),
             TELEGRAM_PARSE_OK);
    T_EQ_INT(ups.n, 3);
    T_EQ_INT(ups.next_offset, 900000000004LL);
    T_EQ_INT(ups.v[1].kind, TELEGRAM_UPDATE_SKIP);
    T_EQ_STR(ups.v[2].text, "b");
    telegram_updates_release(&ups);

    body = "{\"ok\":true,\"result\":[]}";
    T_EQ_INT(telegram_codec_parse_updates(body, strlen(body), &me, &ups, &err),
             TELEGRAM_PARSE_OK);
    T_EQ_INT(ups.n, 0);
    T_EQ_INT(ups.next_offset, 0);
    telegram_updates_release(&ups);
}

struct err_case {
    const char *body;
    enum telegram_parse rc;
    int code;
    int64_t retry_after, migrate;
    int is_parse, is_old, is_not_modified;
};

static const struct err_case err_cases[] = {
    {"{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: "
     "retry after 3\",\"parameters\":{\"retry_after\":3}}",
     TELEGRAM_PARSE_API_ERROR, 429, 3, 0, 0, 0, 0},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: group "
     "chat was upgraded to a supergroup chat\",\"parameters\":{\"migrate_to_"
     "chat_id\":-1001987654321}}",
     TELEGRAM_PARSE_API_ERROR, 400, 0, -1001987654321LL, 0, 0, 0},
    {"{\"ok\":false,\"error_code\":409,\"description\":\"Conflict: "
     "terminated by other getUpdates request; make sure that only one bot "
     "instance is running\"}",
     TELEGRAM_PARSE_API_ERROR, 409, 0, 0, 0, 0, 0},
    {"{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}",
     TELEGRAM_PARSE_API_ERROR, 401, 0, 0, 0, 0, 0},
    {"{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was "
     "blocked by the user\"}",
     TELEGRAM_PARSE_API_ERROR, 403, 0, 0, 0, 0, 0},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: can't "
     "parse entities: Can't find end tag corresponding to start tag "
     "\\\"b\\\"\"}",
     TELEGRAM_PARSE_API_ERROR, 400, 0, 0, 1, 0, 0},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: query "
     "is too old and response timeout expired or query ID is invalid\"}",
     TELEGRAM_PARSE_API_ERROR, 400, 0, 0, 0, 1, 0},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message "
     "is not modified: specified new message content and reply markup are "
     "exactly the same\"}",
     TELEGRAM_PARSE_API_ERROR, 400, 0, 0, 0, 0, 1},
    {"{\"ok\":false,\"error_code\":429,\"parameters\":{\"retry_after\":-5}}",
     TELEGRAM_PARSE_API_ERROR, 429, 0, 0, 0, 0, 0},
    {"<html>502 Bad Gateway</html>", TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
    {"", TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
    {"{\"ok\":true,\"result\":[]} x", TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
    {"{\"ok\":true,\"result\":{}}", TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
    {"{\"ok\":true,\"result\":[{\"message\":{}}]}", TELEGRAM_PARSE_BAD, 0, 0, 0,
     0, 0, 0},
    {"{\"ok\":true,\"result\":[1]}", TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
    {"{\"result\":[]}", TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
    {"{\"ok\":true,\"result\":[{\"update_id\":1,\"message\":\"\xff\"}]}",
     TELEGRAM_PARSE_BAD, 0, 0, 0, 0, 0, 0},
};

static void
test_errors(void)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];
        struct telegram_updates ups;
        struct telegram_error err;
        int rc = telegram_codec_parse_updates(c->body, strlen(c->body), &me,
                                              &ups, &err);

        T_OKF(rc == (int)c->rc, "case %zu: rc %d", i, rc);
        T_OKF(err.code == c->code, "case %zu: code %d", i, err.code);
        T_OKF(err.retry_after == c->retry_after, "case %zu: retry %" PRId64, i,
              err.retry_after);
        T_OKF(err.migrate_to_chat_id == c->migrate, "case %zu: migrate", i);
        T_OKF(telegram_error_is_parse(&err) == c->is_parse, "case %zu", i);
        T_OKF(telegram_error_is_query_old(&err) == c->is_old, "case %zu", i);
        T_OKF(telegram_error_is_not_modified(&err) == c->is_not_modified,
              "case %zu", i);
        T_EQ_INT(ups.n, 0);
        telegram_updates_release(&ups);
    }
}

/* The 400s that say an edit's or delete's message is not there (any more). */
static const struct {
    const char *body;
    int is_gone;
} gone_cases[] = {
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message "
     "to edit not found\"}",
     1},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message "
     "to delete not found\"}",
     1},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: "
     "MESSAGE_ID_INVALID\"}",
     1},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message "
     "can't be edited\"}",
     1},
    /* "can't be deleted" is a refusal, not a message already gone */
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message "
     "can't be deleted for everyone\"}",
     0},
    /* only a 400 says it: a 404 is the wrong token */
    {"{\"ok\":false,\"error_code\":404,\"description\":\"Not Found: message "
     "to edit not found\"}",
     0},
    {"{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message "
     "is not modified\"}",
     0},
};

static void
test_gone(void)
{
    for (size_t i = 0; i < sizeof(gone_cases) / sizeof(gone_cases[0]); i++) {
        struct telegram_error err;
        int64_t mid = -1;

        memset(&err, 0, sizeof(err));
        T_OKF(telegram_codec_parse_result(gone_cases[i].body,
                                          strlen(gone_cases[i].body), &mid,
                                          &err) == TELEGRAM_PARSE_API_ERROR,
              "case %zu", i);
        T_OKF(telegram_error_is_gone(&err) == gone_cases[i].is_gone, "case %zu",
              i);
        T_EQ_INT(mid, 0);
    }
    T_EQ_INT(telegram_error_is_gone(NULL), 0);
}

static void
test_me_result(void)
{
    struct telegram_me m;
    struct telegram_error err;
    int64_t mid = -1;
    const char *b =
        "{\"ok\":true,\"result\":{\"id\":777000111,\"is_bot\":true,"
        "\"first_name\":\"Parley\",\"username\":\"ParleyBot\","
        "\"can_join_groups\":true,\"can_read_all_group_messages\":false}}";

    T_EQ_INT(telegram_codec_parse_me(b, strlen(b), &m, &err),
             TELEGRAM_PARSE_OK);
    T_EQ_INT(m.id, 777000111);
    T_EQ_STR(m.username, "ParleyBot");
    b = "{\"ok\":true,\"result\":{\"id\":1}}";
    T_EQ_INT(telegram_codec_parse_me(b, strlen(b), &m, &err),
             TELEGRAM_PARSE_BAD);
    b = "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}";
    T_EQ_INT(telegram_codec_parse_me(b, strlen(b), &m, &err),
             TELEGRAM_PARSE_API_ERROR);
    T_EQ_INT(err.code, 404);

    b = "{\"ok\":true,\"result\":{\"message_id\":4242,\"chat\":{\"id\":1,"
        "\"type\":\"private\"},\"date\":1,\"text\":\"x\"}}";
    T_EQ_INT(telegram_codec_parse_result(b, strlen(b), &mid, &err),
             TELEGRAM_PARSE_OK);
    T_EQ_INT(mid, 4242);
    b = "{\"ok\":true,\"result\":true}";
    T_EQ_INT(telegram_codec_parse_result(b, strlen(b), &mid, &err),
             TELEGRAM_PARSE_OK);
    T_EQ_INT(mid, 0);
}

struct u16_case {
    const char *s;
    int64_t off;
    long byte;
};

static const struct u16_case u16_cases[] = {
    {"abc", 0, 0},
    {"abc", 3, 3},
    {"abc", 4, -1},
    {"abc", -1, -1},
    {"\xd0\x9f\xd1\x80x", 2, 4},  /* Пр: 2 bytes, 1 unit each */
    {"\xe2\x82\xac!", 1, 3},      /* €: 3 bytes, 1 unit */
    {"\xf0\x9f\x98\x80!", 1, -1}, /* inside 😀's pair */
    {"\xf0\x9f\x98\x80!", 2, 4},  /* 😀: 4 bytes, 2 units */
    {"\xf0\x9f\x98\x80!", 3, 5},
    {"a\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9z", 6, 12}, /* ZWJ seq */
    {"\xff"
     "a",
     1, 1}, /* an invalid byte counts one unit */
};

static void
test_utf16(void)
{
    for (size_t i = 0; i < sizeof(u16_cases) / sizeof(u16_cases[0]); i++) {
        const struct u16_case *c = &u16_cases[i];
        long b = telegram_utf16_to_byte(c->s, strlen(c->s), c->off);
        T_OKF(b == c->byte, "case %zu: %ld want %ld", i, b, c->byte);
    }
    T_EQ_INT(telegram_utf16_len("a\xf0\x9f\x98\x80\xd0\x9f", 7), 4);
}

static void
test_bodies(void)
{
    struct telegram_send s = {-1001234567890LL, "<b>hi</b> & bye", 1, 7, 42,
                              "job:1:0"};
    char key[100];
    char *b;

    b = telegram_codec_send_message(&s);
    T_EQ_STR(b, "{\"chat_id\":-1001234567890,\"message_thread_id\":42,"
                "\"text\":\"<b>hi</b> & bye\",\"parse_mode\":\"HTML\","
                "\"reply_parameters\":{\"message_id\":7,"
                "\"allow_sending_without_reply\":true},\"reply_markup\":{"
                "\"inline_keyboard\":[[{\"text\":\"\xf0\x9f\x91\x8d\","
                "\"callback_data\":\"fb:+:job:1:0\"},{\"text\":"
                "\"\xf0\x9f\x91\x8e\",\"callback_data\":\"fb:-:job:1:0\"}]]}}");
    free(b);

    s = (struct telegram_send){5, "a \"q\" \xff z/", 0, 0, 0, NULL};
    b = telegram_codec_send_message(&s);
    T_EQ_STR(b, "{\"chat_id\":5,\"text\":\"a \\\"q\\\" \xef\xbf\xbd z/\"}");
    free(b);

    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    s = (struct telegram_send){5, "x", 0, 0, 0, key};
    b = telegram_codec_send_message(&s);
    T_CONTAINS(b, "\"callback_data\":\"fb:+:kkkkkkkk");
    {
        const char *p = strstr(b, "fb:+:");
        const char *q = p ? strchr(p, '"') : NULL;
        T_OK(p != NULL && q != NULL && q - p == 64);
    }
    free(b);

    s = (struct telegram_send){0, "x", 0, 0, 0, NULL};
    T_OK(telegram_codec_send_message(&s) == NULL);

    b = telegram_codec_chat_action(-4001, 0);
    T_EQ_STR(b, "{\"chat_id\":-4001,\"action\":\"typing\"}");
    free(b);
    b = telegram_codec_chat_action(-100, 9);
    T_EQ_STR(b, "{\"chat_id\":-100,\"message_thread_id\":9,\"action\":"
                "\"typing\"}");
    free(b);
    b = telegram_codec_answer_callback("abc", NULL);
    T_EQ_STR(b, "{\"callback_query_id\":\"abc\"}");
    free(b);
    b = telegram_codec_get_updates(900000000004LL, 50, 100);
    T_EQ_STR(b, "{\"offset\":900000000004,\"timeout\":50,\"limit\":100,"
                "\"allowed_updates\":[\"message\",\"edited_message\","
                "\"callback_query\",\"my_chat_member\"]}");
    free(b);
    b = telegram_codec_get_updates(0, 0, 1);
    T_EQ_STR(b, "{\"timeout\":0,\"limit\":1,\"allowed_updates\":[\"message\","
                "\"edited_message\",\"callback_query\",\"my_chat_member\"]}");
    free(b);
    b = telegram_codec_delete_webhook();
    T_EQ_STR(b, "{\"drop_pending_updates\":false}");
    free(b);
}

static void
test_edit_bodies(void)
{
    struct telegram_send s = {-1001234567890LL, "<b>hi</b> & bye", 1, 7, 42,
                              "job:1:0"};
    char *b;

    /* reply_to and the thread do not belong in an edit */
    b = telegram_codec_edit_message(&s, 55);
    T_EQ_STR(b, "{\"chat_id\":-1001234567890,\"message_id\":55,"
                "\"text\":\"<b>hi</b> & bye\",\"parse_mode\":\"HTML\","
                "\"reply_markup\":{\"inline_keyboard\":[[{\"text\":"
                "\"\xf0\x9f\x91\x8d\",\"callback_data\":\"fb:+:job:1:0\"},"
                "{\"text\":\"\xf0\x9f\x91\x8e\",\"callback_data\":"
                "\"fb:-:job:1:0\"}]]}}");
    free(b);
    /* plain, no buttons (they go: an intermediate streamed edit) */
    s = (struct telegram_send){5, "a\xff", 0, 0, 0, NULL};
    b = telegram_codec_edit_message(&s, 9007199254740991LL);
    T_EQ_STR(b, "{\"chat_id\":5,\"message_id\":9007199254740991,\"text\":"
                "\"a\xef\xbf\xbd\"}");
    free(b);
    T_OK(telegram_codec_edit_message(&s, 0) == NULL);
    T_OK(telegram_codec_edit_message(NULL, 1) == NULL);
    s.chat_id = 0;
    T_OK(telegram_codec_edit_message(&s, 1) == NULL);

    b = telegram_codec_delete_message(-4001, 12);
    T_EQ_STR(b, "{\"chat_id\":-4001,\"message_id\":12}");
    free(b);
    T_OK(telegram_codec_delete_message(0, 12) == NULL);
    T_OK(telegram_codec_delete_message(5, -1) == NULL);
}

int
main(void)
{
    test_updates();
    test_names();
    test_reply_author();
    test_batch();
    test_errors();
    test_me_result();
    test_utf16();
    test_bodies();
    test_gone();
    test_edit_bodies();
    return t_done();
}
