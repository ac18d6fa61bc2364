/* test_discord_codec: gateway frames, MESSAGE_CREATE / REACTION_ADD →
 * events, outgoing frames and REST bodies, bounds — table-driven. */
#include "connectors/discord_codec.h"
#include "tests/t.h"

#include <stdio.h>
#include <stdlib.h>

#define SELF "42"
#define AUTHOR "\"author\":{\"id\":\"7\",\"username\":\"ann\"}"

struct frame_case {
    const char *name;
    const char *json;
    int ok;
    int op;
    long long s;
    enum discord_dispatch t;
};

static void
test_frames(void)
{
    static const struct frame_case cases[] = {
        {"hello",
         "{\"op\":10,\"d\":{\"heartbeat_interval\":41250},\"s\":null,"
         "\"t\":null}",
         1, 10, -1, DISCORD_T_NONE},
        {"ack", "{\"op\":11}", 1, 11, -1, DISCORD_T_NONE},
        {"heartbeat request", "{\"op\":1,\"d\":null}", 1, 1, -1,
         DISCORD_T_NONE},
        {"reconnect", "{\"op\":7,\"d\":null}", 1, 7, -1, DISCORD_T_NONE},
        {"invalid true", "{\"op\":9,\"d\":true}", 1, 9, -1, DISCORD_T_NONE},
        {"invalid false", "{\"op\":9,\"d\":false}", 1, 9, -1, DISCORD_T_NONE},
        {"ready",
         "{\"op\":0,\"s\":1,\"t\":\"READY\",\"d\":{\"v\":10,\"session_id\":"
         "\"abc\",\"resume_gateway_url\":\"wss://r.discord.gg\",\"user\":{"
         "\"id\":\"42\",\"username\":\"parley\",\"bot\":true}}}",
         1, 0, 1, DISCORD_T_READY},
        {"resumed", "{\"op\":0,\"s\":5,\"t\":\"RESUMED\",\"d\":{}}", 1, 0, 5,
         DISCORD_T_RESUMED},
        {"other event", "{\"op\":0,\"s\":6,\"t\":\"GUILD_CREATE\",\"d\":{}}", 1,
         0, 6, DISCORD_T_OTHER},
        {"unknown op", "{\"op\":42}", 1, 42, -1, DISCORD_T_NONE},
        {"not json", "hello", 0, 0, 0, 0},
        {"empty", "", 0, 0, 0, 0},
        {"no op", "{\"d\":1}", 0, 0, 0, 0},
        {"op string", "{\"op\":\"1\"}", 0, 0, 0, 0},
        {"array", "[1,2]", 0, 0, 0, 0},
        {"trailing", "{\"op\":11} x", 0, 0, 0, 0},
        {"hello no interval", "{\"op\":10,\"d\":{}}", 0, 0, 0, 0},
        {"hello zero", "{\"op\":10,\"d\":{\"heartbeat_interval\":0}}", 0, 0, 0,
         0},
        {"ready no session",
         "{\"op\":0,\"s\":1,\"t\":\"READY\",\"d\":{\"user\":{\"id\":\"1\"}}}",
         0, 0, 0, 0},
        {"ready no user",
         "{\"op\":0,\"s\":1,\"t\":\"READY\",\"d\":{\"session_id\":\"x\"}}", 0,
         0, 0, 0},
        {"dispatch no t", "{\"op\":0,\"s\":1,\"d\":{}}", 0, 0, 0, 0},
        {"bad utf8", "{\"op\":0,\"s\":1,\"t\":\"\xff\",\"d\":{}}", 0, 0, 0, 0},
    };
    char deep[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct frame_case *c = &cases[i];
        struct discord_frame f;
        const char *why = NULL;
        int rc = discord_codec_frame(c->json, strlen(c->json), SELF, &f, &why);

        T_OKF((rc == 0) == c->ok, "%s: rc %d why %s", c->name, rc,
              why ? why : "-");
        if (c->ok && rc == 0) {
            T_EQ_INT(f.op, c->op);
            T_EQ_INT(f.s, c->s);
            T_EQ_INT(f.t, c->t);
        }
        if (!c->ok)
            T_OKF(why != NULL, "%s has a reason", c->name);
        discord_frame_release(&f);
    }
    {
        struct discord_frame f;
        const char *why;
        const char *j =
            "{\"op\":0,\"s\":1,\"t\":\"READY\",\"d\":{\"session_id\""
            ":\"abc\",\"resume_gateway_url\":\"wss://r.discord.gg"
            "\",\"user\":{\"id\":\"42\",\"username\":\"parley\"}}}";

        T_EQ_INT(discord_codec_frame(j, strlen(j), "", &f, &why), 0);
        T_EQ_STR(f.ready.session_id, "abc");
        T_EQ_STR(f.ready.resume_url, "wss://r.discord.gg");
        T_EQ_STR(f.ready.user_id, "42");
        T_EQ_STR(f.ready.username, "parley");
        discord_frame_release(&f);
        j = "{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}";
        T_EQ_INT(discord_codec_frame(j, strlen(j), "", &f, &why), 0);
        T_EQ_INT(f.heartbeat_interval, 41250);
        j = "{\"op\":9,\"d\":true}";
        T_EQ_INT(discord_codec_frame(j, strlen(j), "", &f, &why), 0);
        T_EQ_INT(f.resumable, 1);
        j = "{\"op\":9,\"d\":false}";
        T_EQ_INT(discord_codec_frame(j, strlen(j), "", &f, &why), 0);
        T_EQ_INT(f.resumable, 0);
        /* JSON nested deeper than DISCORD_JSON_DEPTH */
        memset(deep, '[', sizeof(deep));
        T_EQ_INT(discord_codec_frame(deep, sizeof(deep), "", &f, &why), -1);
        T_EQ_STR(why, "JSON too deep");
        memcpy(deep, "{\"op\":1,\"d\":", 12);
        memset(deep + 12, '[', 100);
        memset(deep + 112, ']', 100);
        memcpy(deep + 212, "}", 2);
        T_EQ_INT(discord_codec_frame(deep, strlen(deep), "", &f, &why), -1);
        T_EQ_STR(why, "JSON too deep");
        T_EQ_INT(discord_codec_frame(deep, DISCORD_BODY_MAX + 1, "", &f, &why),
                 -1);
        T_EQ_STR(why, "body too large");
    }
}

struct msg_case {
    const char *name;
    const char *d; /* the MESSAGE_CREATE d object */
    int event;     /* discord_frame_event succeeds */
    unsigned flags;
    const char *text;
    const char *command;
    const char *reply_to;
    const char *user_name;
};

static void
test_messages(void)
{
    static const struct msg_case cases[] = {
        {"dm",
         "{\"id\":\"100\",\"channel_id\":\"5\"," AUTHOR
         ",\"content\":\"hi there\",\"type\":0}",
         1, EVENT_PRIVATE, "hi there", "", "", "ann"},
        {"guild, not addressed",
         "{\"id\":\"101\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"hello all\",\"mentions\":[]}",
         1, 0, "hello all", "", "", "ann"},
        {"guild mention <@id>",
         "{\"id\":\"102\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"<@42> what is 2+2?\",\"mentions\":[{\"id\":\"42\"}]}",
         1, EVENT_MENTIONED, "what is 2+2?", "", "", "ann"},
        {"nick mention <@!id> mid-text",
         "{\"id\":\"103\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"hey <@!42> and <@43>\"}",
         1, EVENT_MENTIONED, "hey and <@43>", "", "", "ann"},
        {"mentions[] only",
         "{\"id\":\"104\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"yo\",\"mentions\":[{\"id\":\"3\"},{\"id\":\"42\"}]}",
         1, EVENT_MENTIONED, "yo", "", "", "ann"},
        {"someone else mentioned",
         "{\"id\":\"105\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"<@43> yo\",\"mentions\":[{\"id\":\"43\"}]}",
         1, 0, "<@43> yo", "", "", "ann"},
        {"reply to the bot (reply ping is not a mention)",
         "{\"id\":\"106\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"and then?\",\"type\":19,\"mentions\":[{\"id\":\"42\""
         "}],\"message_reference\":{\"message_id\":\"90\"},"
         "\"referenced_message\":{\"id\":\"90\",\"author\":{\"id\":\"42\"}}}",
         1, EVENT_REPLY_TO_BOT, "and then?", "", "90", "ann"},
        {"reply to someone else",
         "{\"id\":\"107\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"true\",\"type\":19,\"message_reference\":{"
         "\"message_id\":\"91\"},\"referenced_message\":{\"id\":\"91\","
         "\"author\":{\"id\":\"8\"}}}",
         1, 0, "true", "", "91", "ann"},
        {"from a bot",
         "{\"id\":\"108\",\"channel_id\":\"5\",\"author\":{\"id\":\"8\","
         "\"bot\":true},\"content\":\"beep\"}",
         1, EVENT_PRIVATE | EVENT_FROM_BOT, "beep", "", "", ""},
        {"from ourselves",
         "{\"id\":\"109\",\"channel_id\":\"5\",\"author\":{\"id\":\"42\","
         "\"bot\":true},\"content\":\"answer\"}",
         1, EVENT_PRIVATE | EVENT_FROM_BOT | EVENT_FROM_SELF, "answer", "", "",
         ""},
        {"webhook",
         "{\"id\":\"110\",\"channel_id\":\"5\",\"guild_id\":\"9\","
         "\"webhook_id\":\"77\"," AUTHOR ",\"content\":\"<@42> hi\"}",
         1, EVENT_FROM_BOT | EVENT_MENTIONED, "hi", "", "", "ann"},
        {"command",
         "{\"id\":\"111\",\"channel_id\":\"5\",\"guild_id\":\"9\","
         "\"member\":{\"nick\":\"Annie\"}," AUTHOR
         ",\"content\":\"/Usage  today \"}",
         1, EVENT_COMMAND, "today", "usage", "", "Annie"},
        {"mention then command",
         "{\"id\":\"112\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
         ",\"content\":\"<@42> /reset\"}",
         1, EVENT_MENTIONED | EVENT_COMMAND, "", "reset", "", "ann"},
        {"a path is not a command",
         "{\"id\":\"113\",\"channel_id\":\"5\"," AUTHOR
         ",\"content\":\"/usr/bin ok\"}",
         1, EVENT_PRIVATE, "/usr/bin ok", "", "", "ann"},
        {"global name",
         "{\"id\":\"114\",\"channel_id\":\"5\",\"author\":{"
         "\"id\":\"7\",\"username\":\"ann\",\"global_name\":"
         "\"Ann B\"},\"content\":\"x\"}",
         1, EVENT_PRIVATE, "x", "", "", "Ann B"},
        {"join message",
         "{\"id\":\"115\",\"channel_id\":\"5\"," AUTHOR
         ",\"content\":\"\",\"type\":7}",
         0, 0, NULL, NULL, NULL, NULL},
        {"no id", "{\"channel_id\":\"5\"," AUTHOR ",\"content\":\"x\"}", 0, 0,
         NULL, NULL, NULL, NULL},
        {"numeric id",
         "{\"id\":116,\"channel_id\":\"5\"," AUTHOR ",\"content\":\"x\"}", 0, 0,
         NULL, NULL, NULL, NULL},
        {"id not a snowflake",
         "{\"id\":\"1a\",\"channel_id\":\"5\"," AUTHOR ",\"content\":\"x\"}", 0,
         0, NULL, NULL, NULL, NULL},
        {"no author", "{\"id\":\"117\",\"channel_id\":\"5\",\"content\":\"x\"}",
         0, 0, NULL, NULL, NULL, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct msg_case *c = &cases[i];
        char json[2048];
        struct discord_frame f;
        struct event ev;
        const char *why = NULL;

        snprintf(json, sizeof(json),
                 "{\"op\":0,\"s\":3,\"t\":\"MESSAGE_CREATE\",\"d\":%s}", c->d);
        T_OKF(discord_codec_frame(json, strlen(json), SELF, &f, &why) == 0,
              "%s: %s", c->name, why ? why : "");
        T_EQ_INT(f.s, 3); /* skipped messages still move the sequence */
        T_OKF((discord_frame_event(&f, &ev) == 0) == c->event, "%s", c->name);
        if (c->event) {
            T_OKF(event_check(&ev, &why) == 0, "%s: %s", c->name,
                  why ? why : "");
            T_OKF(ev.flags == c->flags, "%s: flags %#x want %#x", c->name,
                  ev.flags, c->flags);
            T_EQ_STR(ev.text, c->text);
            T_EQ_STR(ev.command, c->command);
            T_EQ_STR(ev.reply_to, c->reply_to);
            T_EQ_STR(ev.user_name, c->user_name);
            T_EQ_STR(ev.platform, "discord");
            T_EQ_STR(ev.chat, "5");
            T_EQ_STR(ev.thread, "");
            T_EQ_INT(ev.kind, EVENT_MESSAGE);
        }
        discord_frame_release(&f);
    }
    {
        /* a snowflake carries its time; text is cut at EVENT_TEXT_MAX */
        size_t n = EVENT_TEXT_MAX + 100;
        char *json = malloc(n + 200), *p;
        struct discord_frame f;
        struct event ev;
        const char *why;

        p = json + sprintf(json,
                           "{\"op\":0,\"s\":3,\"t\":\"MESSAGE_CREATE\","
                           "\"d\":{\"id\":\"175928847299117063\","
                           "\"channel_id\":\"5\"," AUTHOR ",\"content\":\"");
        for (size_t i = 0; i < n / 2; i++, p += 2)
            memcpy(p, "\xc3\xa9", 2); /* é */
        strcpy(p, "\"}}");
        T_EQ_INT(discord_codec_frame(json, strlen(json), SELF, &f, &why), 0);
        T_EQ_INT(discord_frame_event(&f, &ev), 0);
        T_EQ_INT(strlen(ev.text), EVENT_TEXT_MAX);
        T_EQ_INT(ev.ts_ms, 1462015105796LL); /* Discord's documented example */
        discord_frame_release(&f);
        free(json);
    }
}

/* A reply names its author (a command's WHO), when Discord includes the
 * referenced message. */
static void
test_reply_author(void)
{
    static const struct {
        const char *d, *want;
    } cases[] = {
        {"\"message_reference\":{\"message_id\":\"91\"},"
         "\"referenced_message\":{\"id\":\"91\",\"author\":{\"id\":\"8\"}}",
         "8"},
        {"\"message_reference\":{\"message_id\":\"91\"}", ""},
        {"\"mentions\":[]", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[1024];
        struct discord_frame f;
        struct event ev;
        const char *why = NULL;

        snprintf(
            json, sizeof(json),
            "{\"op\":0,\"s\":3,\"t\":\"MESSAGE_CREATE\",\"d\":{"
            "\"id\":\"120\",\"channel_id\":\"5\",\"guild_id\":\"9\"," AUTHOR
            ",\"content\":\"/ban 1h\",\"type\":19,%s}}",
            cases[i].d);
        T_EQ_INT(discord_codec_frame(json, strlen(json), SELF, &f, &why), 0);
        T_EQ_INT(discord_frame_event(&f, &ev), 0);
        T_OKF(event_check(&ev, &why) == 0, "case %zu: %s", i, why);
        T_EQ_STR(ev.reply_to_user, cases[i].want);
        discord_frame_release(&f);
    }
}

struct react_case {
    const char *name;
    const char *d;
    int vote; /* 0 = no event */
};

static void
test_reactions(void)
{
    static const struct react_case cases[] = {
        {"thumbs up",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":"
         "\"90\",\"guild_id\":\"9\",\"emoji\":{\"id\":null,"
         "\"name\":\"\xf0\x9f\x91\x8d\"}}",
         1},
        {"thumbs down, skin tone",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":\"90\","
         "\"emoji\":{\"name\":\"\xf0\x9f\x91\x8e\xf0\x9f\x8f\xbd\"}}",
         -1},
        {"on our message (message_author_id)",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":\"90\","
         "\"message_author_id\":\"42\",\"emoji\":{\"name\":\"\xf0\x9f\x91\x8d"
         "\"}}",
         1},
        {"on someone else's message",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":\"90\","
         "\"message_author_id\":\"8\",\"emoji\":{\"name\":\"\xf0\x9f\x91\x8d"
         "\"}}",
         0},
        {"our own reaction",
         "{\"user_id\":\"42\",\"channel_id\":\"5\","
         "\"message_id\":\"90\",\"emoji\":{\"name\":"
         "\"\xf0\x9f\x91\x8d\"}}",
         0},
        {"a bot's reaction",
         "{\"user_id\":\"8\",\"channel_id\":\"5\",\"message_id\":\"90\","
         "\"member\":{\"user\":{\"id\":\"8\",\"bot\":true}},\"emoji\":{"
         "\"name\":\"\xf0\x9f\x91\x8d\"}}",
         0},
        {"heart",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":"
         "\"90\",\"emoji\":{\"name\":\"\xe2\x9d\xa4\"}}",
         0},
        {"custom emoji named like it",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":\"90\","
         "\"emoji\":{\"id\":\"123\",\"name\":\"\xf0\x9f\x91\x8d\"}}",
         0},
        {"thumbs up plus junk",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":\"90\","
         "\"emoji\":{\"name\":\"\xf0\x9f\x91\x8dx\"}}",
         0},
        {"no message id",
         "{\"user_id\":\"7\",\"channel_id\":\"5\",\"emoji\":{"
         "\"name\":\"\xf0\x9f\x91\x8d\"}}",
         0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct react_case *c = &cases[i];
        char json[1024];
        struct discord_frame f;
        struct event ev;
        const char *why = NULL;

        snprintf(json, sizeof(json),
                 "{\"op\":0,\"s\":4,\"t\":\"MESSAGE_REACTION_ADD\",\"d\":%s}",
                 c->d);
        T_OKF(discord_codec_frame(json, strlen(json), SELF, &f, &why) == 0,
              "%s: %s", c->name, why ? why : "");
        if (c->vote == 0) {
            T_OKF(discord_frame_event(&f, &ev) < 0, "%s", c->name);
        } else {
            T_OKF(discord_frame_event(&f, &ev) == 0, "%s", c->name);
            T_OKF(event_check(&ev, &why) == 0, "%s: %s", c->name,
                  why ? why : "");
            T_EQ_INT(ev.kind, EVENT_VOTE);
            T_EQ_INT(ev.vote, c->vote);
            T_EQ_STR(ev.target_id, "90");
            T_EQ_STR(ev.user, "7");
            T_EQ_STR(ev.chat, "5");
            T_EQ_INT(ev.flags & EVENT_UNVOTE, 0);
        }
        discord_frame_release(&f);
    }
    /* a reaction taken back: no member, no message author */
    {
        static const char rm[] =
            "{\"op\":0,\"s\":5,\"t\":\"MESSAGE_REACTION_REMOVE\",\"d\":{"
            "\"user_id\":\"7\",\"channel_id\":\"5\",\"message_id\":\"90\","
            "\"guild_id\":\"3\",\"emoji\":{\"id\":null,\"name\":"
            "\"\xf0\x9f\x91\x8e\"},\"burst\":false,\"type\":0}}";
        struct discord_frame f;
        struct event ev;
        const char *why = NULL;

        T_EQ_INT(discord_codec_frame(rm, strlen(rm), SELF, &f, &why), 0);
        T_EQ_INT(f.t, DISCORD_T_REACTION_REMOVE);
        T_EQ_INT(discord_frame_event(&f, &ev), 0);
        T_EQ_INT(event_check(&ev, &why), 0);
        T_EQ_INT(ev.kind, EVENT_VOTE);
        T_EQ_INT(ev.vote, -1);
        T_OK(ev.flags & EVENT_UNVOTE);
        T_EQ_INT(ev.flags & EVENT_PRIVATE, 0);
        discord_frame_release(&f);
    }
}

static void
test_outgoing(void)
{
    char buf[DISCORD_GW_SEND_MAX + 64], big[5000];
    int n;

    n = discord_codec_heartbeat(-1, buf, sizeof(buf));
    T_EQ_STR(buf, "{\"op\":1,\"d\":null}");
    T_EQ_INT(n, strlen(buf));
    discord_codec_heartbeat(1234567, buf, sizeof(buf));
    T_EQ_STR(buf, "{\"op\":1,\"d\":1234567}");
    T_EQ_INT(discord_codec_heartbeat(1, buf, 5), -1);

    T_EQ_INT(DISCORD_INTENTS, 46593);
    n = discord_codec_identify("tok\"en", DISCORD_INTENTS, buf, sizeof(buf));
    T_OK(n > 0);
    T_EQ_STR(buf, "{\"op\":2,\"d\":{\"token\":\"tok\\\"en\",\"intents\":46593,"
                  "\"properties\":{\"os\":\"linux\",\"browser\":\"parley\","
                  "\"device\":\"parley\"}}}");
    n = discord_codec_resume("t", "sess", 17, buf, sizeof(buf));
    T_EQ_STR(buf, "{\"op\":6,\"d\":{\"token\":\"t\",\"session_id\":\"sess\","
                  "\"seq\":17}}");
    T_EQ_INT(n, strlen(buf));
    discord_codec_resume("t", "sess", -1, buf, sizeof(buf));
    T_CONTAINS(buf, "\"seq\":null");
    /* over 4096 bytes: refused, never sent (Discord would close 4002) */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    T_EQ_INT(discord_codec_identify(big, DISCORD_INTENTS, buf, sizeof(buf)),
             -1);
    big[4060] = '\0';
    T_EQ_INT(discord_codec_resume("t", big, 1, buf, sizeof(buf)), -1);
    big[3900] = '\0';
    n = discord_codec_resume("t", big, 1, buf, sizeof(buf));
    T_OK(n > 3900 && n <= DISCORD_GW_SEND_MAX);
    T_EQ_INT(discord_codec_resume("t", "s", 1, buf, 20), -1);
}

static void
test_rest(void)
{
    struct discord_create m = {"hello @everyone", "123", "job:1:0"};
    struct discord_gateway_bot g;
    struct discord_error e;
    char *body, id[DISCORD_SNOWFLAKE_MAX], nonce[DISCORD_NONCE_MAX + 1];
    char nonce2[DISCORD_NONCE_MAX + 1], *longtext;
    const char *why, *j;

    body = discord_codec_create_message(&m);
    T_EQ_STR(body, "{\"content\":\"hello @everyone\",\"message_reference\":{"
                   "\"message_id\":\"123\",\"fail_if_not_exists\":false},"
                   "\"allowed_mentions\":{\"parse\":[],\"replied_user\":"
                   "false},\"nonce\":\"job:1:0\",\"enforce_nonce\":true}");
    free(body);
    m.reply_to = "";
    m.nonce = NULL;
    body = discord_codec_create_message(&m);
    T_EQ_STR(body, "{\"content\":\"hello @everyone\",\"allowed_mentions\":{"
                   "\"parse\":[],\"replied_user\":false}}");
    free(body);
    /* content over 2000 bytes is cut on a UTF-8 boundary */
    longtext = malloc(4001);
    for (int i = 0; i < 2000; i++)
        memcpy(longtext + 2 * i, "\xc3\xa9", 2);
    longtext[4000] = '\0';
    m.content = longtext + 1; /* starts mid-sequence: still valid output */
    body = discord_codec_create_message(&m);
    T_OK(body != NULL && strlen(body) < 2100);
    free(body);
    free(longtext);

    discord_codec_nonce("job:12:3", nonce, sizeof(nonce));
    T_EQ_STR(nonce, "job:12:3");
    discord_codec_nonce("job:9223372036854775807:65535", nonce, sizeof(nonce));
    discord_codec_nonce("job:9223372036854775807:65535", nonce2,
                        sizeof(nonce2));
    T_EQ_INT(strlen(nonce), 17);
    T_EQ_STR(nonce, nonce2);
    discord_codec_nonce("job:9223372036854775807:65534", nonce2,
                        sizeof(nonce2));
    T_OK(strcmp(nonce, nonce2) != 0);

    j = "{\"url\":\"wss://gateway.discord.gg\",\"shards\":2,"
        "\"session_start_limit\":{\"total\":1000,\"remaining\":998,"
        "\"reset_after\":14400000,\"max_concurrency\":1}}";
    T_EQ_INT(discord_codec_gateway_bot(j, strlen(j), &g, &why), 0);
    T_EQ_STR(g.url, "wss://gateway.discord.gg");
    T_EQ_INT(g.shards, 2);
    T_EQ_INT(g.total, 1000);
    T_EQ_INT(g.remaining, 998);
    T_EQ_INT(g.reset_after_ms, 14400000);
    T_EQ_INT(g.max_concurrency, 1);
    j = "{\"url\":\"http://x\"}";
    T_EQ_INT(discord_codec_gateway_bot(j, strlen(j), &g, &why), -1);
    j = "{\"message\":\"401: Unauthorized\",\"code\":0}";
    T_EQ_INT(discord_codec_gateway_bot(j, strlen(j), &g, &why), -1);

    j = "{\"id\":\"1234567890123\",\"channel_id\":\"5\",\"content\":\"x\"}";
    T_EQ_INT(discord_codec_message_id(j, strlen(j), id, sizeof(id), &why), 0);
    T_EQ_STR(id, "1234567890123");
    j = "{\"channel_id\":\"5\"}";
    T_EQ_INT(discord_codec_message_id(j, strlen(j), id, sizeof(id), &why), -1);

    j = "{\"message\":\"You are being rate limited.\",\"retry_after\":"
        "0.345,\"global\":false}";
    T_EQ_INT(discord_codec_error(j, strlen(j), &e), 0);
    T_EQ_INT(e.retry_after_ms, 345);
    T_EQ_INT(e.global, 0);
    T_EQ_STR(e.message, "You are being rate limited.");
    j = "{\"message\":\"x\",\"retry_after\":2,\"global\":true,\"code\":0}";
    T_EQ_INT(discord_codec_error(j, strlen(j), &e), 0);
    T_EQ_INT(e.retry_after_ms, 2000);
    T_EQ_INT(e.global, 1);
    j = "{\"message\":\"Missing Access\",\"code\":50001}";
    T_EQ_INT(discord_codec_error(j, strlen(j), &e), 0);
    T_EQ_INT(e.code, 50001);
    T_EQ_INT(e.retry_after_ms, -1);
    T_EQ_INT(discord_codec_error("<html>", 6, &e), -1);

    T_EQ_INT(discord_codec_seconds_ms("1"), 1000);
    T_EQ_INT(discord_codec_seconds_ms("0.001"), 1);
    T_EQ_INT(discord_codec_seconds_ms("0.0001"), 1);
    T_EQ_INT(discord_codec_seconds_ms("1.234"), 1234);
    T_EQ_INT(discord_codec_seconds_ms("64.57"), 64570);
    T_EQ_INT(discord_codec_seconds_ms("0"), 0);
    T_EQ_INT(discord_codec_seconds_ms("-1"), -1);
    T_EQ_INT(discord_codec_seconds_ms("abc"), -1);
    T_EQ_INT(discord_codec_seconds_ms("1x"), -1);
    T_EQ_INT(discord_codec_seconds_ms("nan"), -1);
    T_EQ_INT(discord_codec_seconds_ms(NULL), -1);
}

/* PATCH bodies and what replies to create / edit / delete mean */
static void
test_edit_outcome(void)
{
    const char *cls = "x";
    char *body, *longtext;

    body = discord_codec_edit_message("hello @everyone");
    T_EQ_STR(body, "{\"content\":\"hello @everyone\",\"allowed_mentions\":{"
                   "\"parse\":[],\"replied_user\":false}}");
    free(body);
    body = discord_codec_edit_message(NULL);
    T_EQ_STR(body, "{\"content\":\"\",\"allowed_mentions\":{\"parse\":[],"
                   "\"replied_user\":false}}");
    free(body);
    /* cut like a new message: 2000 bytes, on a UTF-8 boundary */
    longtext = malloc(4001);
    for (int i = 0; i + 3 <= 3999; i += 3) /* 1333 euro signs */
        memcpy(longtext + i, "\xe2\x82\xac", 3);
    longtext[3999] = '\0';
    body = discord_codec_edit_message(longtext);
    T_OK(body != NULL);
    if (body != NULL) {
        const char *c = strstr(body, "\"content\":\"") + 11;
        size_t n = strcspn(c, "\"");

        T_EQ_INT(n, 1998); /* 666 euro signs: 1998 bytes, not 2000 */
    }
    free(body);
    free(longtext);

    T_EQ_INT(discord_codec_outcome(DISCORD_EDIT, 200, 0, &cls), DISCORD_OUT_OK);
    T_OK(cls == NULL);
    T_EQ_INT(discord_codec_outcome(DISCORD_DELETE, 204, 0, &cls),
             DISCORD_OUT_OK);
    T_EQ_INT(discord_codec_outcome(DISCORD_CREATE, 200, 0, &cls),
             DISCORD_OUT_OK);
    /* 429, 5xx, no response: the connector waits and repeats */
    T_EQ_INT(discord_codec_outcome(DISCORD_EDIT, 429, 0, &cls),
             DISCORD_OUT_AGAIN);
    T_EQ_INT(discord_codec_outcome(DISCORD_EDIT, 502, 0, &cls),
             DISCORD_OUT_AGAIN);
    T_EQ_INT(discord_codec_outcome(DISCORD_DELETE, 0, 0, &cls),
             DISCORD_OUT_AGAIN);
    /* a message gone: an edit fails not_found, a delete is done */
    T_EQ_INT(discord_codec_outcome(DISCORD_EDIT, 404, 10008, &cls),
             DISCORD_OUT_FAILED);
    T_EQ_STR(cls, "not_found");
    T_EQ_INT(discord_codec_outcome(DISCORD_DELETE, 404, 10008, &cls),
             DISCORD_OUT_OK);
    T_OK(cls == NULL);
    /* the channel gone (10003): not_found for a delete too */
    T_EQ_INT(discord_codec_outcome(DISCORD_DELETE, 404, 10003, &cls),
             DISCORD_OUT_FAILED);
    T_EQ_STR(cls, "not_found");
    T_EQ_INT(discord_codec_outcome(DISCORD_EDIT, 403, 50005, &cls),
             DISCORD_OUT_FAILED);
    T_EQ_STR(cls, "forbidden");
    T_EQ_INT(discord_codec_outcome(DISCORD_CREATE, 401, 0, &cls),
             DISCORD_OUT_FAILED);
    T_EQ_STR(cls, "auth");
    T_EQ_INT(discord_codec_outcome(DISCORD_EDIT, 400, 50035, &cls),
             DISCORD_OUT_FAILED);
    T_EQ_STR(cls, "bad_request");
}

/* Opening a user's DM: the body, and the channel of the reply. */
static void
test_dm(void)
{
    const char *why = NULL, *j;
    char id[DISCORD_SNOWFLAKE_MAX], *b;

    b = discord_codec_dm_open("123456789012345678");
    T_EQ_STR(b, "{\"recipient_id\":\"123456789012345678\"}");
    free(b);
    T_OK(discord_codec_dm_open("12a") == NULL);
    T_OK(discord_codec_dm_open("") == NULL);
    T_OK(discord_codec_dm_open("123456789012345678901") == NULL);
    j = "{\"id\":\"319674150115610528\",\"type\":1,\"last_message_id\":null,"
        "\"recipients\":[{\"id\":\"82198898841029460\",\"username\":\"u\"}]}";
    T_EQ_INT(discord_codec_dm_channel(j, strlen(j), id, sizeof(id), &why), 0);
    T_EQ_STR(id, "319674150115610528");
    j = "{\"id\":\"319674150115610528\",\"type\":0}";
    T_EQ_INT(discord_codec_dm_channel(j, strlen(j), id, sizeof(id), &why), -1);
    T_EQ_STR(id, "");
    j = "{\"type\":1}";
    T_EQ_INT(discord_codec_dm_channel(j, strlen(j), id, sizeof(id), &why), -1);
    j = "{\"id\":\"../x\",\"type\":1}";
    T_EQ_INT(discord_codec_dm_channel(j, strlen(j), id, sizeof(id), &why), -1);
    j = "<html>bad gateway";
    T_EQ_INT(discord_codec_dm_channel(j, strlen(j), id, sizeof(id), &why), -1);
    T_OK(why != NULL);
}

/* ---- INTERACTION_CREATE (/parley) ---- */

#define IA_HEAD                                                                \
    "{\"op\":0,\"s\":9,\"t\":\"INTERACTION_CREATE\",\"d\":{\"id\":"            \
    "\"1300000000000000000\",\"application_id\":\"55\",\"type\":2,"            \
    "\"token\":\"aW50.tok_en-1\",\"channel_id\":\"600\","
#define IA_DATA(text)                                                          \
    "\"data\":{\"id\":\"1\",\"name\":\"parley\",\"type\":1,\"options\":[{"     \
    "\"name\":\"text\",\"type\":3,\"value\":\"" text "\"}]}"
#define IA_GUILD(perms)                                                        \
    "\"guild_id\":\"9\",\"member\":{\"permissions\":\"" perms "\","            \
    "\"nick\":\"Annie\",\"user\":{\"id\":\"7\",\"username\":\"ann\"}},"
#define IA_DM "\"user\":{\"id\":\"7\",\"username\":\"ann\"},"

struct ia_case {
    const char *name;
    const char *json;
    int event; /* discord_frame_event gives one */
    const char *command, *text;
    unsigned flags;
};

static void
test_interactions(void)
{
    static const struct ia_case cases[] = {
        {"guild help", IA_HEAD IA_GUILD("0") IA_DATA("help") "}}", 1, "help",
         "", EVENT_COMMAND},
        {"command with args",
         IA_HEAD IA_GUILD("2048") IA_DATA("  Ban 123 1h ") "}}", 1, "ban",
         "123 1h", EVENT_COMMAND},
        {"slash inside", IA_HEAD IA_GUILD("0") IA_DATA("/usage") "}}", 1,
         "usage", "", EVENT_COMMAND},
        {"no option: help",
         IA_HEAD IA_GUILD("0") "\"data\":{\"name\":\"parley\",\"type\":1}}}", 1,
         "help", "", EVENT_COMMAND},
        {"question", IA_HEAD IA_GUILD("0") IA_DATA("what is 2+2") "}}", 1, "",
         "what is 2+2", EVENT_MENTIONED},
        {"administrator",
         IA_HEAD IA_GUILD("8") IA_DATA("limit chat 5/60s") "}}", 1, "limit",
         "chat 5/60s", EVENT_COMMAND | EVENT_ADMIN},
        {"manage guild",
         IA_HEAD IA_GUILD("1099511627808") IA_DATA("stats") "}}", 1, "stats",
         "", EVENT_COMMAND | EVENT_ADMIN},
        {"permissions not a number",
         IA_HEAD IA_GUILD("8x") IA_DATA("stats") "}}", 1, "stats", "",
         EVENT_COMMAND},
        {"dm", IA_HEAD IA_DM IA_DATA("hi there") "}}", 1, "", "hi there",
         EVENT_MENTIONED | EVENT_PRIVATE},
        {"dm command", IA_HEAD IA_DM IA_DATA("reset") "}}", 1, "reset", "",
         EVENT_COMMAND | EVENT_PRIVATE},
        {"other command",
         IA_HEAD IA_DM "\"data\":{\"name\":\"other\",\"type\":1}}}", 0, NULL,
         NULL, 0},
        {"component",
         "{\"op\":0,\"s\":9,\"t\":\"INTERACTION_CREATE\",\"d\":{\"id\":\"13\","
         "\"application_id\":\"55\",\"type\":3,\"token\":\"t\","
         "\"channel_id\":\"600\"," IA_DM IA_DATA("x") "}}",
         0, NULL, NULL, 0},
        {"no token",
         "{\"op\":0,\"s\":9,\"t\":\"INTERACTION_CREATE\",\"d\":{\"id\":\"13\","
         "\"application_id\":\"55\",\"type\":2,\"channel_id\":\"600\"," IA_DM
             IA_DATA("x") "}}",
         0, NULL, NULL, 0},
        {"token not url-safe",
         "{\"op\":0,\"s\":9,\"t\":\"INTERACTION_CREATE\",\"d\":{\"id\":\"13\","
         "\"application_id\":\"55\",\"type\":2,\"token\":\"a/../b\","
         "\"channel_id\":\"600\"," IA_DM IA_DATA("x") "}}",
         0, NULL, NULL, 0},
        {"no user", IA_HEAD "\"data\":{\"name\":\"parley\",\"type\":1}}}", 0,
         NULL, NULL, 0},
        {"bad channel",
         "{\"op\":0,\"s\":9,\"t\":\"INTERACTION_CREATE\",\"d\":{\"id\":\"13\","
         "\"application_id\":\"55\",\"type\":2,\"token\":\"t\","
         "\"channel_id\":\"x1\"," IA_DM IA_DATA("x") "}}",
         0, NULL, NULL, 0},
    };
    struct discord_frame f;
    struct event ev;
    const char *why;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct ia_case *c = &cases[i];
        int rc;

        rc = discord_codec_frame(c->json, strlen(c->json), SELF, &f, &why);
        T_OKF(rc == 0, "%s: decodes (%s)", c->name, why ? why : "");
        T_EQ_INT(f.t, DISCORD_T_INTERACTION_CREATE);
        rc = discord_frame_event(&f, &ev);
        T_OKF((rc == 0) == c->event, "%s: event %d", c->name, rc);
        if (rc == 0 && c->event) {
            T_EQ_INT(ev.kind, EVENT_MESSAGE);
            T_EQ_STR(ev.chat, "600");
            T_EQ_STR(ev.user, "7");
            T_EQ_STR(ev.message_id, "ia:1300000000000000000");
            T_EQ_STR(ev.command, c->command);
            T_EQ_STR(ev.text, c->text);
            T_OKF(ev.flags == c->flags, "%s: flags %#x want %#x", c->name,
                  ev.flags, c->flags);
            T_EQ_STR(f.ia.token, "aW50.tok_en-1");
            T_EQ_STR(f.ia.application_id, "55");
            T_EQ_INT(event_check(&ev, &why), 0);
            if (f.ia.guild_id[0])
                T_EQ_STR(ev.user_name, "Annie");
        }
        discord_frame_release(&f);
    }
    /* READY's application id */
    {
        const char *ready =
            "{\"op\":0,\"s\":1,\"t\":\"READY\",\"d\":{\"session_id\":\"s\","
            "\"user\":{\"id\":\"42\"},\"application\":{\"id\":\"55\","
            "\"flags\":0}}}";

        T_EQ_INT(discord_codec_frame(ready, strlen(ready), SELF, &f, &why), 0);
        T_EQ_STR(f.ready.application_id, "55");
        discord_frame_release(&f);
    }
    T_CONTAINS(discord_codec_commands(), "\"name\":\"parley\"");
    T_CONTAINS(discord_codec_commands(), "\"type\":3");
    T_EQ_STR(discord_codec_interaction_callback(DISCORD_IA_DEFERRED),
             "{\"type\":5}");
}

int
main(void)
{
    test_frames();
    test_messages();
    test_reply_author();
    test_reactions();
    test_outgoing();
    test_rest();
    test_edit_outcome();
    test_dm();
    test_interactions();
    return t_done();
}
