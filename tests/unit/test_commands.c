/* test_commands: the command table and parser (pure): every command with
 * every platform's WHO forms, usage errors, and who may run what — a
 * global admin, a chat administrator and a plain user. */
#include "core/commands.h"
#include "storage/store.h"
#include "tests/t.h"

#include <stdlib.h>

enum { OK = COMMANDS_OK, UNKNOWN = COMMANDS_UNKNOWN, USAGE = COMMANDS_USAGE };
enum {
    NONE = COMMANDS_WHO_NONE,
    ID = COMMANDS_WHO_ID,
    REPLY = COMMANDS_WHO_REPLY,
    NAME = COMMANDS_WHO_USERNAME
};

static const struct {
    const char *platform, *name, *args, *reply;
    int status;
    const char *usage; /* the entry's usage, or the error's start */
    int who;
    const char *id;
    long long n, window_ms, duration_ms;
    int is_default;
    const char *arg;
} cases[] = {
    /* user commands: extra words are ignored */
    {"telegram", "help", "", "", OK, "help", NONE, "", 0, 0, 0, 0, ""},
    {"discord", "reset", "now please", "", OK, "reset", NONE, "", 0, 0, 0, 0,
     ""},
    {"slack", "usage", NULL, "", OK, "usage", NONE, "", 0, 0, 0, 0, ""},
    {"telegram", "limits", "", "77", OK, "limits", NONE, "", 0, 0, 0, 0, ""},
    {"slack", "forget", "", "", OK, "forget", NONE, "", 0, 0, 0, 0, ""},
    /* Telegram's /start, with or without a deep-link payload: help */
    {"telegram", "start", "", "", OK, "help", NONE, "", 0, 0, 0, 0, ""},
    {"telegram", "start", "ref-42", "", OK, "help", NONE, "", 0, 0, 0, 0, ""},
    {"discord", "start", "", "", UNKNOWN, "unknown command \"start\"", NONE, "",
     0, 0, 0, 0, ""},
    {"telegram", "nope", "", "", UNKNOWN, "unknown command \"nope\"; try help",
     NONE, "", 0, 0, 0, 0, ""},
    {"telegram", "LIMIT", "", "", UNKNOWN, "unknown command", NONE, "", 0, 0, 0,
     0, ""},

    /* limit user WHO RATE, every WHO form of every platform */
    {"telegram", "limit", "user 123456789 5/60s", "", OK,
     "limit user WHO RATE|default", ID, "123456789", 5, 60000, 0, 0, ""},
    {"telegram", "limit", "user @ann_b 5/1m", "", OK,
     "limit user WHO RATE|default", NAME, "ann_b", 5, 60000, 0, 0, ""},
    {"telegram", "limit", "user 5/60s", "42", OK, "limit user WHO RATE|default",
     REPLY, "42", 5, 60000, 0, 0, ""},
    {"telegram", "limit", "USER 77 default", "", OK,
     "limit user WHO RATE|default", ID, "77", 0, 0, 0, 1, ""},
    {"telegram", "limit", "user 77 off", "", OK, "limit user WHO RATE|default",
     ID, "77", 0, 0, 0, 0, ""},
    {"discord", "limit", "user <@80351110224678912> 10/1h", "", OK,
     "limit user WHO RATE|default", ID, "80351110224678912", 10, 3600000, 0, 0,
     ""},
    {"discord", "limit", "user <@!80351110224678912> 10/1h", "", OK,
     "limit user WHO RATE|default", ID, "80351110224678912", 10, 3600000, 0, 0,
     ""},
    {"discord", "limit", "user 80351110224678912 10/1h", "", OK,
     "limit user WHO RATE|default", ID, "80351110224678912", 10, 3600000, 0, 0,
     ""},
    {"discord", "limit", "user 10/1h", "1199", OK,
     "limit user WHO RATE|default", REPLY, "1199", 10, 3600000, 0, 0, ""},
    {"slack", "limit", "user <@U024BE7LH> 3/10s", "", OK,
     "limit user WHO RATE|default", ID, "U024BE7LH", 3, 10000, 0, 0, ""},
    {"slack", "limit", "user <@U024BE7LH|bob> 3/10s", "", OK,
     "limit user WHO RATE|default", ID, "U024BE7LH", 3, 10000, 0, 0, ""},
    {"slack", "limit", "user W024BE7LH 3/10s", "", OK,
     "limit user WHO RATE|default", ID, "W024BE7LH", 3, 10000, 0, 0, ""},
    {"slack", "limit", "user 3/10s", "1712345678.000100", OK,
     "limit user WHO RATE|default", REPLY, "1712345678.000100", 3, 10000, 0, 0,
     ""},
    /* wrong WHO forms per platform */
    {"telegram", "limit", "user <@123> 5/60s", "", USAGE,
     "usage: limit user WHO RATE|default (WHO is a numeric user id", 0, "", 0,
     0, 0, 0, ""},
    {"discord", "limit", "user @bob 5/60s", "", USAGE,
     "usage: limit user WHO RATE|default (WHO is a user id, a @mention", 0, "",
     0, 0, 0, 0, ""},
    {"slack", "limit", "user u024 5/60s", "", USAGE,
     "usage: limit user WHO RATE|default (WHO is a user id (U…)", 0, "", 0, 0,
     0, 0, ""},
    {"discord", "limit", "user <@12x> 5/60s", "", USAGE, "usage: limit user", 0,
     "", 0, 0, 0, 0, ""},
    /* wrong RATE, missing parts */
    {"telegram", "limit", "user 77 5/xx", "", USAGE,
     "usage: limit user WHO RATE|default (RATE: unknown unit", 0, "", 0, 0, 0,
     0, ""},
    {"telegram", "limit", "user 77 2000000/1d", "", USAGE,
     "(RATE: at most 1048576 requests per window)", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "budget", "user 77 100000000000/1d", "", USAGE,
     "(RATE: at most 53375995583 tokens per 1d)", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "limit", "user 77", "", USAGE,
     "usage: limit user WHO RATE|default", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "limit", "user 5/60s", "", USAGE,
     "usage: limit user WHO RATE|default (WHO is", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "limit", "user 1 2 3", "", USAGE,
     "usage: limit user WHO RATE|default", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "limit", "", "", USAGE,
     "usage: limit user WHO RATE|default, or limit chat RATE|default", 0, "", 0,
     0, 0, 0, ""},
    {"telegram", "limit", "group 5/60s", "", USAGE,
     "usage: limit user WHO RATE|default, or limit chat RATE|default", 0, "", 0,
     0, 0, 0, ""},

    /* limit chat RATE / budget */
    {"telegram", "limit", "chat 20/60s", "", OK, "limit chat RATE|default",
     NONE, "", 20, 60000, 0, 0, ""},
    {"slack", "limit", "chat default", "", OK, "limit chat RATE|default", NONE,
     "", 0, 0, 0, 1, ""},
    {"discord", "limit", "chat", "", USAGE, "usage: limit chat RATE|default", 0,
     "", 0, 0, 0, 0, ""},
    {"telegram", "budget", "user 11 200000/1d", "", OK,
     "budget user WHO RATE|default", ID, "11", 200000, 86400000, 0, 0, ""},
    {"discord", "budget", "user <@22> default", "", OK,
     "budget user WHO RATE|default", ID, "22", 0, 0, 0, 1, ""},
    {"slack", "budget", "user 5000/1h", "99.1", OK,
     "budget user WHO RATE|default", REPLY, "99.1", 5000, 3600000, 0, 0, ""},
    {"telegram", "budget", "user 11 2000000/1d", "", OK,
     "budget user WHO RATE|default", ID, "11", 2000000, 86400000, 0, 0, ""},
    {"telegram", "budget", "chat 50000/1h", "", OK, "budget chat RATE|default",
     NONE, "", 50000, 3600000, 0, 0, ""},

    /* ban WHO [DURATION], unban WHO */
    {"telegram", "ban", "123", "", OK, "ban WHO [DURATION]", ID, "123", 0, 0, 0,
     0, ""},
    {"telegram", "ban", "123 1h", "", OK, "ban WHO [DURATION]", ID, "123", 0, 0,
     3600000, 0, ""},
    {"telegram", "ban", "@spam_bot 7d", "", OK, "ban WHO [DURATION]", NAME,
     "spam_bot", 0, 0, 7 * 86400000LL, 0, ""},
    {"telegram", "ban", "", "555", OK, "ban WHO [DURATION]", REPLY, "555", 0, 0,
     0, 0, ""},
    {"telegram", "ban", "30m", "555", OK, "ban WHO [DURATION]", REPLY, "555", 0,
     0, 1800000, 0, ""},
    {"telegram", "ban", "123", "555", OK, "ban WHO [DURATION]", ID, "123", 0, 0,
     0, 0, ""},
    {"discord", "ban", "<@!42> 12h", "", OK, "ban WHO [DURATION]", ID, "42", 0,
     0, 43200000, 0, ""},
    {"discord", "ban", "<@42>", "", OK, "ban WHO [DURATION]", ID, "42", 0, 0, 0,
     0, ""},
    {"discord", "ban", "2h", "888", OK, "ban WHO [DURATION]", REPLY, "888", 0,
     0, 7200000, 0, ""},
    {"slack", "ban", "<@U1ABC|eve> 1d", "", OK, "ban WHO [DURATION]", ID,
     "U1ABC", 0, 0, 86400000, 0, ""},
    {"slack", "ban", "U1ABC", "", OK, "ban WHO [DURATION]", ID, "U1ABC", 0, 0,
     0, 0, ""},
    {"slack", "ban", "", "1712345678.000100", OK, "ban WHO [DURATION]", REPLY,
     "1712345678.000100", 0, 0, 0, 0, ""},
    {"telegram", "ban", "", "", USAGE, "usage: ban WHO [DURATION] (WHO is", 0,
     "", 0, 0, 0, 0, ""},
    {"telegram", "ban", "1h", "", USAGE, "usage: ban WHO [DURATION] (WHO is", 0,
     "", 0, 0, 0, 0, ""},
    {"telegram", "ban", "123 soon", "", USAGE,
     "usage: ban WHO [DURATION] (DURATION: expected a number", 0, "", 0, 0, 0,
     0, ""},
    {"telegram", "ban", "123 0s", "", USAGE,
     "usage: ban WHO [DURATION] (DURATION", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "unban", "123", "", OK, "unban WHO", ID, "123", 0, 0, 0, 0,
     ""},
    {"discord", "unban", "<@42>", "", OK, "unban WHO", ID, "42", 0, 0, 0, 0,
     ""},
    {"slack", "unban", "<@U1ABC>", "", OK, "unban WHO", ID, "U1ABC", 0, 0, 0, 0,
     ""},
    {"slack", "unban", "", "7.7", OK, "unban WHO", REPLY, "7.7", 0, 0, 0, 0,
     ""},
    {"telegram", "unban", "", "", USAGE, "usage: unban WHO (WHO is", 0, "", 0,
     0, 0, 0, ""},
    {"telegram", "unban", "1 2", "", USAGE, "usage: unban WHO", 0, "", 0, 0, 0,
     0, ""},

    /* stats, model, persona */
    {"discord", "stats", "", "", OK, "stats", NONE, "", 0, 0, 0, 0, ""},
    {"telegram", "model", "backup", "", OK, "model NAME|default", NONE, "", 0,
     0, 0, 0, "backup"},
    {"slack", "model", "default", "", OK, "model NAME|default", NONE, "", 0, 0,
     0, 1, "default"},
    {"telegram", "model", "", "", USAGE, "usage: model NAME|default", 0, "", 0,
     0, 0, 0, ""},
    {"telegram", "model", "a b", "", USAGE, "usage: model NAME|default", 0, "",
     0, 0, 0, 0, ""},
    {"telegram", "model", "abcdefghijabcdefghijabcdefghijabc", "", USAGE,
     "(NAME: at most 32 characters)", 0, "", 0, 0, 0, 0, ""},
    {"telegram", "persona", "  You are a pirate.\nSay arr.  ", "", OK,
     "persona TEXT|default", NONE, "", 0, 0, 0, 0,
     "You are a pirate.\nSay arr."},
    {"discord", "persona", "default", "", OK, "persona TEXT|default", NONE, "",
     0, 0, 0, 1, "default"},
    {"slack", "persona", "   ", "", USAGE, "usage: persona TEXT|default", 0, "",
     0, 0, 0, 0, ""},
};

static void
test_parse(void)
{
    struct commands_parsed p;
    char err[COMMANDS_ERR_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st =
            (int)commands_parse(cases[i].name, cases[i].args, cases[i].platform,
                                cases[i].reply, &p, err, sizeof(err));

        T_OKF(st == cases[i].status, "case %zu (%s %s %s): status %d, %s", i,
              cases[i].platform, cases[i].name,
              cases[i].args ? cases[i].args : "", st, err);
        if (st != cases[i].status)
            continue;
        if (st != OK) {
            if (cases[i].usage != NULL)
                T_CONTAINS(err, cases[i].usage);
            continue;
        }
        T_EQ_STR(p.entry->usage, cases[i].usage);
        T_OKF((int)p.who.kind == cases[i].who, "case %zu who %d", i,
              (int)p.who.kind);
        T_EQ_STR(p.who.id, cases[i].id);
        T_EQ_INT(p.rate.n, cases[i].n);
        T_EQ_INT(p.rate.window_ms, cases[i].window_ms);
        T_EQ_INT(p.duration_ms, cases[i].duration_ms);
        T_EQ_INT(p.is_default, cases[i].is_default);
        T_EQ_STR(p.arg, cases[i].arg);
        T_OK(p.entry->handler != NULL);
    }
    /* over-long input is bounded: a persona over the cap, a huge word */
    {
        char *big = malloc(COMMANDS_ARG_MAX + 10);

        memset(big, 'x', COMMANDS_ARG_MAX + 9);
        big[COMMANDS_ARG_MAX + 9] = '\0';
        T_EQ_INT(commands_parse("persona", big, "telegram", "", &p, err,
                                sizeof(err)),
                 USAGE);
        T_CONTAINS(err, "at most 2000 bytes");
        T_EQ_INT(
            commands_parse("ban", big, "telegram", "", &p, err, sizeof(err)),
            USAGE);
        free(big);
    }
}

/* Who may run what: each entry for each role (SPEC §7). */
static void
test_roles(void)
{
    static const struct {
        const char *name, *sub;
        int user, chat_admin, admin;
    } want[] = {
        {"help", NULL, 1, 1, 1},     {"reset", NULL, 1, 1, 1},
        {"usage", NULL, 1, 1, 1},    {"limits", NULL, 1, 1, 1},
        {"forget", NULL, 1, 1, 1},   {"limit", "user", 0, 0, 1},
        {"limit", "chat", 0, 1, 1},  {"budget", "user", 0, 0, 1},
        {"budget", "chat", 0, 1, 1}, {"ban", NULL, 0, 0, 1},
        {"unban", NULL, 0, 0, 1},    {"stats", NULL, 0, 0, 1},
        {"model", NULL, 0, 0, 1},    {"persona", NULL, 0, 0, 1},
    };
    const struct commands_entry *t;
    size_t n, found = 0;
    char buf[COMMANDS_ERR_MAX], help[COMMANDS_HELP_MAX];

    t = commands_table(&n);
    T_EQ_INT(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
            if (strcmp(t[i].name, want[k].name) != 0 ||
                (t[i].sub == NULL) != (want[k].sub == NULL) ||
                (t[i].sub && strcmp(t[i].sub, want[k].sub) != 0))
                continue;
            found++;
            T_OKF(commands_allowed(&t[i], COMMANDS_ROLE_USER) == want[k].user,
                  "%s user", t[i].usage);
            T_OKF(commands_allowed(&t[i], COMMANDS_ROLE_CHAT_ADMIN) ==
                      want[k].chat_admin,
                  "%s chat admin", t[i].usage);
            T_OKF(commands_allowed(&t[i], COMMANDS_ROLE_ADMIN) == want[k].admin,
                  "%s admin", t[i].usage);
            commands_refusal(&t[i], buf, sizeof(buf));
            if (!want[k].user)
                T_CONTAINS(buf, want[k].chat_admin
                                    ? "only this chat's administrators"
                                    : "only the bot's admins");
        }
    T_EQ_INT(found, n);
    /* help lists exactly what the role may use */
    T_OK(commands_help(COMMANDS_ROLE_USER, help, sizeof(help)) > 0);
    T_CONTAINS(help, "Commands: help, reset, usage, limits, forget.\n");
    T_OK(strstr(help, "limit chat") == NULL && strstr(help, "WHO") == NULL);
    T_OK(commands_help(COMMANDS_ROLE_CHAT_ADMIN, help, sizeof(help)) > 0);
    T_CONTAINS(help, "forget, limit, budget.");
    T_OK(strstr(help, "persona") == NULL);
    T_CONTAINS(help, "\nlimit chat RATE|default");
    T_OK(strstr(help, "limit user") == NULL && strstr(help, "stats") == NULL);
    T_OK(commands_help(COMMANDS_ROLE_ADMIN, help, sizeof(help)) > 0);
    T_CONTAINS(help, "limit, budget, ban, unban, stats, model, persona.");
    T_CONTAINS(help, "\nban WHO [DURATION]");
    T_OK(commands_help(COMMANDS_ROLE_ADMIN, help, 40) < 0);
}

/* A chat administrator may only tighten: no larger burst, no higher rate. */
static void
test_rate_within(void)
{
    static const struct {
        long long rn, rw, cn, cw;
        int want;
    } t[] = {
        {10, 60000, 120, 60000, 1},
        {120, 60000, 120, 60000, 1},
        {121, 60000, 120, 60000, 0},
        {100, 30000, 120, 60000, 0},
        {120, 120000, 120, 60000, 1},
        {5, 1000, 0, 0, 1},    /* cap off */
        {0, 0, 120, 60000, 0}, /* r off */
        {0, 0, 0, 0, 1},
        {1000000000000LL, 315360000000LL, 1000000000000LL, 315360000000LL, 1},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct rate r = {t[i].rn, t[i].rw}, c = {t[i].cn, t[i].cw};

        T_OKF(commands_rate_within(r, c) == t[i].want, "case %zu", i);
    }
}

static void
test_stats_text(void)
{
    struct store_stats s;
    char buf[2048], usd[32];

    memset(&s, 0, sizeof(s));
    s.week.requests = 12;
    s.total.requests = 30;
    s.week.answers = 10;
    s.week.cost_micro_usd = 1234567;
    s.votes_up = 3;
    s.votes_down = 1;
    s.first_day = 20000; /* 2024-10-04 */
    s.latency_n = 10;
    s.latency_p50_ms = 1279;
    s.latency_p95_ms = 900;
    T_OK(commands_stats_text(&s, buf, sizeof(buf)) > 0);
    T_CONTAINS(buf, "all since 2024-10-04");
    T_CONTAINS(buf, "requests: 12 (30)");
    T_CONTAINS(buf, "cost: $1.234567");
    T_CONTAINS(buf, "3 up, 1 down, 75% up");
    T_CONTAINS(buf, "p50 1.2 s, p95 900 ms (10 answers)");
    commands_usd(-5, usd, sizeof(usd));
    T_EQ_STR(usd, "-0.000005");
    /* latency buckets: upper bounds never below the value, < 12.5% wide */
    for (int64_t ms = 0; ms < 5000000; ms = ms * 5 / 4 + 1) {
        int b = store_latency_bucket(ms);

        T_OKF(store_latency_upper(b) >= ms, "ms %lld", (long long)ms);
        T_OKF(store_latency_upper(b) <= ms + ms / 8 + 1, "ms %lld",
              (long long)ms);
        T_OK(b == 0 || store_latency_upper(b - 1) < ms);
    }
}

int
main(void)
{
    test_parse();
    test_roles();
    test_rate_within();
    test_stats_text();
    return t_done();
}
