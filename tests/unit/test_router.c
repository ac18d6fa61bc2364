/* test_router: addressed-to-us decisions and the recent-id set. */
#include "core/router.h"
#include "tests/t.h"

#include <stdio.h>

#define P EVENT_PRIVATE
#define M EVENT_MENTIONED
#define R EVENT_REPLY_TO_BOT
#define C EVENT_COMMAND
#define B EVENT_FROM_BOT
#define S EVENT_FROM_SELF

static const struct {
    const char *name;
    enum event_kind kind;
    unsigned flags;
    const char *text;
    const char *command;
    enum router_verdict want;
    enum router_reason why;
} cases[] = {
    {"dm", EVENT_MESSAGE, P, "hello", NULL, ROUTER_ANSWER, ROUTER_R_OK},
    {"group plain", EVENT_MESSAGE, 0, "hello all", NULL, ROUTER_IGNORE,
     ROUTER_R_NOT_ADDRESSED},
    {"group mention", EVENT_MESSAGE, M, "what is 2+2", NULL, ROUTER_ANSWER,
     ROUTER_R_OK},
    {"group reply to bot", EVENT_MESSAGE, R, "and 3+3?", NULL, ROUTER_ANSWER,
     ROUTER_R_OK},
    {"group command", EVENT_MESSAGE, C, "", "help", ROUTER_COMMAND,
     ROUTER_R_OK},
    {"dm command", EVENT_MESSAGE, P | C, "", "usage", ROUTER_COMMAND,
     ROUTER_R_OK},
    {"bare mention", EVENT_MESSAGE, M, "  \n", NULL, ROUTER_IGNORE,
     ROUTER_R_EMPTY},
    {"dm empty (sticker)", EVENT_MESSAGE, P, "", NULL, ROUTER_IGNORE,
     ROUTER_R_EMPTY},
    {"other bot mentions us", EVENT_MESSAGE, M | B, "hi", NULL, ROUTER_IGNORE,
     ROUTER_R_FROM_BOT},
    {"other bot in dm", EVENT_MESSAGE, P | B, "hi", NULL, ROUTER_IGNORE,
     ROUTER_R_FROM_BOT},
    {"bot command", EVENT_MESSAGE, C | B, "", "help", ROUTER_IGNORE,
     ROUTER_R_FROM_BOT},
    {"ourselves", EVENT_MESSAGE, P | S | B, "echo", NULL, ROUTER_IGNORE,
     ROUTER_R_FROM_SELF},
    {"ourselves, no bot flag", EVENT_MESSAGE, M | S, "echo", NULL,
     ROUTER_IGNORE, ROUTER_R_FROM_SELF},
    {"vote", EVENT_VOTE, 0, "", NULL, ROUTER_VOTE, ROUTER_R_OK},
    {"vote by a bot", EVENT_VOTE, B, "", NULL, ROUTER_IGNORE,
     ROUTER_R_FROM_BOT},
    {"command without a name", EVENT_MESSAGE, C, "", "", ROUTER_IGNORE,
     ROUTER_R_INVALID},
};

static void
test_classify(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct event ev = {0};
        enum router_reason why = ROUTER_R_OK;
        enum router_verdict v;

        ev.kind = cases[i].kind;
        ev.platform = "telegram";
        ev.chat = "-100";
        ev.thread = "";
        ev.user = "11";
        ev.user_name = "Ann";
        ev.message_id = "42";
        ev.reply_to = "";
        ev.flags = cases[i].flags;
        ev.text = cases[i].text;
        ev.command = cases[i].command;
        ev.target_id = "77";
        ev.vote = 1;
        v = router_classify(&ev, &why);
        T_OKF(v == cases[i].want, "%s: verdict %d want %d", cases[i].name,
              (int)v, (int)cases[i].want);
        T_OKF(why == cases[i].why, "%s: reason %s want %s", cases[i].name,
              router_reason_name(why), router_reason_name(cases[i].why));
    }
}

/* Malformed events are dropped, never crash: NULLs, oversized ids. */
static void
test_invalid(void)
{
    char big[EVENT_ID_MAX + 2];
    struct event ev = {0};
    enum router_reason why;

    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    T_EQ_INT(router_classify(NULL, &why), ROUTER_IGNORE);
    T_EQ_INT(why, ROUTER_R_INVALID);
    ev.platform = "telegram";
    ev.chat = "1";
    ev.user = "2";
    ev.message_id = "3";
    ev.flags = P;
    T_EQ_INT(router_classify(&ev, &why), ROUTER_IGNORE); /* text NULL */
    T_EQ_INT(why, ROUTER_R_INVALID);
    ev.text = "hi";
    T_EQ_INT(router_classify(&ev, &why), ROUTER_ANSWER);
    ev.chat = big;
    T_EQ_INT(router_classify(&ev, &why), ROUTER_IGNORE);
    T_EQ_INT(why, ROUTER_R_INVALID);
    big[EVENT_ID_MAX] = '\0'; /* exactly at the bound: fine */
    T_EQ_INT(router_classify(&ev, &why), ROUTER_ANSWER);
    ev.chat = "";
    T_EQ_INT(router_classify(&ev, &why), ROUTER_IGNORE);
    ev.chat = "1";
    ev.kind = EVENT_VOTE;
    ev.target_id = "5";
    ev.vote = 2;
    T_EQ_INT(router_classify(&ev, &why), ROUTER_IGNORE);
    T_EQ_INT(event_text_cut("ab\xc3\xa9", 4, 3), 2); /* not inside é */
    T_EQ_INT(event_text_cut("ab\xc3\xa9", 4, 4), 4);
    T_EQ_INT(event_text_cut("abc", 3, 10), 3);
}

static void
test_recent(void)
{
    struct router *r = router_new(100);
    char id[32];
    int seen = 0;

    T_OK(r != NULL);
    if (r == NULL)
        return;
    T_EQ_INT(router_seen(r, "telegram", "1", "5"), 0);
    router_remember(r, "telegram", "1", "5");
    T_EQ_INT(router_seen(r, "telegram", "1", "5"), 1);
    /* the key is all three fields, with boundaries */
    T_EQ_INT(router_seen(r, "discord", "1", "5"), 0);
    T_EQ_INT(router_seen(r, "telegram", "15", ""), 0);
    T_EQ_INT(router_seen(r, "telegram", "", "15"), 0);
    T_OK(router_hash("a", "bc", "d") != router_hash("ab", "c", "d"));
    router_remember(r, "telegram", "1", "5"); /* twice: one entry */

    /* 1000 more ids through a set of 100: the last 100 stay, older go */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        router_remember(r, "slack", "C1", id);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        if (router_seen(r, "slack", "C1", id)) {
            seen++;
            T_OKF(i >= 900, "old id %d still there", i);
        }
    }
    T_EQ_INT(seen, 100);
    T_EQ_INT(router_seen(r, "telegram", "1", "5"), 0);
    router_free(r);
    router_free(NULL);
    T_OK(router_new(0) == NULL);
}

int
main(void)
{
    test_classify();
    test_invalid();
    test_recent();
    return t_done();
}
