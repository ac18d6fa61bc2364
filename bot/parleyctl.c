/* parleyctl: the admin CLI on parleyd's config and database (SPEC §10):
 * limits, overrides, bans, usage, stats, exports, history, audit. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bot/ctl_codec.h"
#include "config/config.h"
#include "core/commands.h"
#include "core/log.h"
#include "core/notice.h"
#include "core/ratelimit.h"
#include "storage/store.h"

/* as parleyd: 0 ok, 1 usage or configuration error, 2 database error */
#define EXIT_USAGE 1
#define EXIT_DB 2

#define DAY_MS 86400000LL

struct ctl {
    struct config *cfg;
    struct store *st;
    const char *cfg_path;
    char actor[80]; /* "parleyctl:LOGIN", the audit log's actor */
    int64_t now_ms; /* wall clock, read once */
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: parleyctl [-c FILE] COMMAND [ARGS]\n"
            "\n"
            "  limits                          effective limits, overrides, "
            "bans\n"
            "  limit user|chat WHO RATE|default\n"
            "  budget user|chat WHO RATE|default\n"
            "  ban WHO [DURATION]\n"
            "  unban WHO\n"
            "  usage [WHO]                     requests, tokens, cost per day\n"
            "  stats                           bot-wide counters\n"
            "  feedback export [--format csv|json] [--since DATE]\n"
            "  history export [WHO] [--format csv|json]\n"
            "  history purge [WHO]\n"
            "  audit [N]                       the admin log (newest N)\n"
            "\n"
            "WHO is platform:id (telegram:11, discord:22, slack:U033; for "
            "chat, the chat id).\nRATE is N/DURATION (30/60s) or off; "
            "DURATION 90s, 30m, 12h, 7d;\nDATE is YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM:SSZ (UTC).\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "Exit codes: 0 ok, 1 usage or config error, 2 database error.\n"
            "See parleyctl(8).\n",
            CONFIG_DEFAULT_PATH);
}

static int
usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "parleyctl: ");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\n(parleyctl --help for the commands)\n");
    return EXIT_USAGE;
}

/* ---- small parsers ---- */

static int
platform_known(const char *p, size_t n)
{
    static const char *const names[] = {"telegram", "discord", "slack"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
            return 1;
    return 0;
}

/* "platform:id" into platform and id; -1 if malformed. */
static int
who_parse(const char *s, char *platform, size_t plen, char *id, size_t ilen)
{
    const char *colon = strchr(s, ':');
    size_t n;

    if (colon == NULL || !platform_known(s, (size_t)(colon - s)))
        return -1;
    n = strlen(colon + 1);
    if (n == 0 || n >= ilen || n > 64 || (size_t)(colon - s) >= plen)
        return -1;
    for (const char *p = colon + 1; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            return -1;
    snprintf(platform, plen, "%.*s", (int)(colon - s), s);
    snprintf(id, ilen, "%s", colon + 1);
    return 0;
}

/* YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z], UTC, into unix ms. */
static int
date_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    const char *end;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
        return -1;
    if (*end == 'T' || *end == ' ') {
        const char *e2 = strptime(end + 1, "%H:%M:%S", &tm);

        if (e2 == NULL)
            e2 = strptime(end + 1, "%H:%M", &tm);
        if (e2 == NULL)
            return -1;
        end = e2;
    }
    if (*end == 'Z')
        end++;
    if (*end != '\0')
        return -1;
    if ((t = timegm(&tm)) == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000;
    return 0;
}

static void
iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        snprintf(buf, len, "?");
    else
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
day_date(int64_t day, char *buf, size_t len)
{
    char t[32];

    iso_time(day * DAY_MS, t, sizeof(t));
    snprintf(buf, len, "%.10s", t);
}

/* Commits the writes; 0, or EXIT_DB. */
static int
ctl_commit(struct ctl *x)
{
    if (store_flush(x->st) < 0) {
        fprintf(stderr, "parleyctl: the database did not take the change\n");
        return EXIT_DB;
    }
    return 0;
}

static void
ctl_audit(struct ctl *x, const char *action, const char *target,
          const char *detail)
{
    store_audit_add(x->st, x->now_ms, NULL, x->actor, action, target, detail);
}

/* ---- limits ---- */

static int
print_override(void *arg, const char *scope, const char *platform,
               const char *target, const char *kind, int64_t n, int64_t w)
{
    struct rate r = {n, w};
    char rate[32];

    (void)arg;
    if (w == 0)
        r.n = 0;
    value_format_rate(&r, rate, sizeof(rate));
    printf("  %s %s %s:%s %s\n", kind, scope, platform, target,
           n == 0 && w > 0 ? "0 (nothing admitted)" : rate);
    return 0;
}

static int
print_ban(void *arg, const char *platform, const char *user, int64_t until)
{
    struct ctl *x = arg;
    char t[32];

    if (until == INT64_MAX) {
        printf("  %s:%s until unban\n", platform, user);
    } else {
        iso_time(until, t, sizeof(t));
        printf("  %s:%s until %s%s\n", platform, user, t,
               until <= x->now_ms ? " (over)" : "");
    }
    return 0;
}

static int
print_chat(void *arg, const char *platform, const char *chat, const char *model,
           const char *persona)
{
    (void)arg;
    printf("  %s:%s", platform, chat);
    if (model != NULL)
        printf(" model=%s", model);
    if (persona != NULL)
        printf(" persona=%zu bytes", strlen(persona));
    printf("\n");
    return 0;
}

static int
cmd_limits(struct ctl *x, int argc, char **argv)
{
    const struct config_limits *l = &x->cfg->limits;
    const struct rate *r[] = {&l->user, &l->chat, &l->global, &l->user_tokens,
                              &l->chat_tokens};
    static const char *const names[] = {"user", "chat", "global", "user_tokens",
                                        "chat_tokens"};
    char buf[32];

    (void)argv;
    if (argc != 1)
        return usage_error("limits takes no arguments%s", NULL);
    printf("[limits] in %s:\n", x->cfg_path);
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        value_format_rate(r[i], buf, sizeof(buf));
        printf("  %s = %s\n", names[i], buf);
    }
    printf("  notice = %s\n", config_notice_name(l->notice));
    printf("overrides (limit/budget scope target rate):\n");
    if (store_overrides_load(x->st, print_override, x) < 0)
        return EXIT_DB;
    printf("bans:\n");
    if (store_bans_load(x->st, print_ban, x) < 0)
        return EXIT_DB;
    printf("chat settings:\n");
    if (store_chats_load(x->st, print_chat, x) < 0)
        return EXIT_DB;
    return 0;
}

/* limit|budget user|chat WHO RATE|default */
static int
cmd_override(struct ctl *x, int argc, char **argv)
{
    const char *kind = argv[0], *scope, *why = NULL;
    char platform[16], id[80], target[100], rate[32], why2[96];
    struct rate r;
    int is_default, rc;

    if (argc != 4 ||
        (strcmp(argv[1], "user") != 0 && strcmp(argv[1], "chat") != 0))
        return usage_error("usage: %s user|chat WHO RATE|default", kind);
    scope = argv[1];
    if (who_parse(argv[2], platform, sizeof(platform), id, sizeof(id)) < 0)
        return usage_error("WHO is platform:id, not \"%s\"", argv[2]);
    is_default = strcmp(argv[3], "default") == 0;
    if (!is_default && value_parse_rate(argv[3], &r, &why) < 0) {
        fprintf(stderr, "parleyctl: RATE \"%s\": %s\n", argv[3], why);
        return EXIT_USAGE;
    }
    if (!is_default && ratelimit_rate_check(r, strcmp(kind, "budget") == 0,
                                            why2, sizeof(why2)) < 0)
        return usage_error("RATE: %s", why2);
    snprintf(target, sizeof(target), "%s:%s", platform, id);
    if (is_default) {
        snprintf(rate, sizeof(rate), "default");
        rc = store_override_del(x->st, scope, platform, id, kind);
    } else {
        value_format_rate(&r, rate, sizeof(rate));
        rc = store_override_set(x->st, scope, platform, id, kind, r.n,
                                r.n ? r.window_ms : 0, x->actor, x->now_ms);
    }
    if (rc < 0)
        return EXIT_DB;
    {
        char action[32];

        snprintf(action, sizeof(action), "%s %s", kind, scope);
        ctl_audit(x, action, target, rate);
    }
    if ((rc = ctl_commit(x)) != 0)
        return rc;
    printf("%s %s %s: %s\n", kind, scope, target, rate);
    return 0;
}

static int
cmd_ban(struct ctl *x, int argc, char **argv)
{
    char platform[16], id[80], target[100], dur[32] = "until unban";
    const char *why = NULL;
    int64_t ms = 0;
    int rc;

    if (argc < 2 || argc > 3)
        return usage_error("usage: ban WHO [DURATION]%s", NULL);
    if (who_parse(argv[1], platform, sizeof(platform), id, sizeof(id)) < 0)
        return usage_error("WHO is platform:id, not \"%s\"", argv[1]);
    if (argc == 3) {
        if (value_parse_duration(argv[2], &ms, &why) < 0 || ms <= 0) {
            fprintf(stderr, "parleyctl: DURATION \"%s\": %s\n", argv[2],
                    why ? why : "must be longer than 0");
            return EXIT_USAGE;
        }
        value_format_duration(ms, dur, sizeof(dur));
    }
    for (size_t i = 0; i < x->cfg->bot.nadmins; i++)
        if (strcmp(config_platform_name(x->cfg->bot.admins[i].platform),
                   platform) == 0 &&
            strcmp(x->cfg->bot.admins[i].user, id) == 0) {
            fprintf(stderr,
                    "parleyctl: %s is in [bot] admins and cannot be "
                    "banned\n",
                    argv[1]);
            return EXIT_USAGE;
        }
    snprintf(target, sizeof(target), "%s:%s", platform, id);
    if (store_ban_set(x->st, platform, id, ms > 0 ? x->now_ms + ms : 0,
                      x->actor, x->now_ms) < 0)
        return EXIT_DB;
    ctl_audit(x, "ban", target, dur);
    if ((rc = ctl_commit(x)) != 0)
        return rc;
    printf("banned %s %s%s\n", target, ms > 0 ? "for " : "", dur);
    return 0;
}

static int
cmd_unban(struct ctl *x, int argc, char **argv)
{
    char platform[16], id[80], target[100];
    int rc;

    if (argc != 2)
        return usage_error("usage: unban WHO%s", NULL);
    if (who_parse(argv[1], platform, sizeof(platform), id, sizeof(id)) < 0)
        return usage_error("WHO is platform:id, not \"%s\"", argv[1]);
    snprintf(target, sizeof(target), "%s:%s", platform, id);
    if (store_ban_del(x->st, platform, id) < 0)
        return EXIT_DB;
    ctl_audit(x, "unban", target, NULL);
    if ((rc = ctl_commit(x)) != 0)
        return rc;
    printf("unbanned %s\n", target);
    return 0;
}

/* ---- usage, stats ---- */

struct usage_total {
    struct store_usage sum;
    long rows;
};

static int
print_usage(void *arg, const char *scope, const char *platform,
            const char *target, int64_t day, const struct store_usage *u)
{
    struct usage_total *t = arg;
    char date[16], usd[32];

    (void)scope;
    day_date(day, date, sizeof(date));
    commands_usd(u->cost_micro_usd, usd, sizeof(usd));
    printf("%s  %s:%s  requests=%" PRId64 " limited=%" PRId64
           " tokens_in=%" PRId64 " tokens_out=%" PRId64 " cost=$%s\n",
           date, platform, target, u->requests, u->limited, u->tokens_in,
           u->tokens_out, usd);
    t->sum.requests += u->requests;
    t->sum.limited += u->limited;
    t->sum.tokens_in += u->tokens_in;
    t->sum.tokens_out += u->tokens_out;
    t->sum.cost_micro_usd += u->cost_micro_usd;
    t->rows++;
    return 0;
}

static int
cmd_usage(struct ctl *x, int argc, char **argv)
{
    char platform[16], id[80], usd[32];
    struct usage_total t;

    memset(&t, 0, sizeof(t));
    if (argc > 2)
        return usage_error("usage: usage [WHO]%s", NULL);
    if (argc == 2 &&
        who_parse(argv[1], platform, sizeof(platform), id, sizeof(id)) < 0)
        return usage_error("WHO is platform:id, not \"%s\"", argv[1]);
    if (store_usage_list(x->st, "user", argc == 2 ? platform : NULL,
                         argc == 2 ? id : NULL, 0, print_usage, &t) < 0)
        return EXIT_DB;
    commands_usd(t.sum.cost_micro_usd, usd, sizeof(usd));
    printf("total (%ld user-days): requests=%" PRId64 " limited=%" PRId64
           " tokens_in=%" PRId64 " tokens_out=%" PRId64 " cost=$%s\n",
           t.rows, t.sum.requests, t.sum.limited, t.sum.tokens_in,
           t.sum.tokens_out, usd);
    return 0;
}

static int
cmd_stats(struct ctl *x, int argc, char **argv)
{
    struct store_stats s;
    char buf[2048];

    (void)argv;
    if (argc != 1)
        return usage_error("stats takes no arguments%s", NULL);
    if (store_stats_read(x->st, x->now_ms, &s) < 0)
        return EXIT_DB;
    if (commands_stats_text(&s, buf, sizeof(buf)) < 0)
        return EXIT_DB;
    printf("%s\n", buf);
    return 0;
}

/* ---- exports ---- */

struct export
{
    enum ctl_format fmt;
    long rows;
    int failed;
};

/* --format F and --since DATE, anywhere after the subcommand; the rest
 * stays in argv (compacted), *argc updated.  0, or EXIT_USAGE. */
static int
export_options(int *argc, char **argv, enum ctl_format *fmt, int64_t *since,
               int allow_since)
{
    int k = 0;

    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < *argc) {
            if (ctl_format_parse(argv[++i], fmt) < 0)
                return usage_error("--format is csv or json, not \"%s\"",
                                   argv[i]);
        } else if (strncmp(argv[i], "--format=", 9) == 0) {
            if (ctl_format_parse(argv[i] + 9, fmt) < 0)
                return usage_error("--format is csv or json, not \"%s\"",
                                   argv[i] + 9);
        } else if (allow_since && strcmp(argv[i], "--since") == 0 &&
                   i + 1 < *argc) {
            if (date_parse(argv[++i], since) < 0)
                return usage_error("--since DATE: YYYY-MM-DD or "
                                   "YYYY-MM-DDTHH:MM:SSZ, not \"%s\"",
                                   argv[i]);
        } else if (allow_since && strncmp(argv[i], "--since=", 8) == 0) {
            if (date_parse(argv[i] + 8, since) < 0)
                return usage_error("--since DATE: YYYY-MM-DD or "
                                   "YYYY-MM-DDTHH:MM:SSZ, not \"%s\"",
                                   argv[i] + 8);
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return usage_error("unknown option \"%s\"", argv[i]);
        } else {
            argv[k++] = argv[i];
        }
    }
    *argc = k;
    return 0;
}

static int
feedback_row(void *arg, const struct store_feedback_row *r)
{
    struct export *e = arg;
    char t[32];
    const struct ctl_field f[] = {
        {"answer_id", CTL_INT, NULL, r->answer_id},
        {"time", CTL_STR, t, 0},
        {"platform", CTL_STR, r->platform, 0},
        {"chat", CTL_STR, r->chat, 0},
        {"thread", CTL_STR, r->thread, 0},
        {"voter", CTL_STR, r->user_id, 0},
        {"vote", CTL_INT, NULL, r->vote},
        {"model", CTL_STR, r->model, 0},
        {"asker", CTL_STR, r->asker, 0},
        {"question", CTL_STR, r->question, 0},
        {"answer", CTL_STR, r->answer, 0},
    };

    iso_time(r->updated_ms, t, sizeof(t));
    if (ctl_export_row(stdout, e->fmt, f, sizeof(f) / sizeof(f[0]), e->rows) <
        0) {
        e->failed = 1;
        return 1;
    }
    e->rows++;
    return 0;
}

static const struct ctl_field feedback_cols[] = {
    {"answer_id", CTL_INT, NULL, 0}, {"time", CTL_STR, NULL, 0},
    {"platform", CTL_STR, NULL, 0},  {"chat", CTL_STR, NULL, 0},
    {"thread", CTL_STR, NULL, 0},    {"voter", CTL_STR, NULL, 0},
    {"vote", CTL_INT, NULL, 0},      {"model", CTL_STR, NULL, 0},
    {"asker", CTL_STR, NULL, 0},     {"question", CTL_STR, NULL, 0},
    {"answer", CTL_STR, NULL, 0},
};

static int
cmd_feedback(struct ctl *x, int argc, char **argv)
{
    struct export e = {CTL_CSV, 0, 0};
    int64_t since = 0;
    int rc;

    if ((rc = export_options(&argc, argv, &e.fmt, &since, 1)) != 0)
        return rc;
    if (argc != 2 || strcmp(argv[1], "export") != 0)
        return usage_error("usage: feedback export [--format csv|json] "
                           "[--since DATE]%s",
                           NULL);
    if (ctl_export_begin(stdout, e.fmt, feedback_cols,
                         sizeof(feedback_cols) / sizeof(feedback_cols[0])) < 0)
        return EXIT_USAGE;
    if (store_feedback_export(x->st, since, feedback_row, &e) < 0 && !e.failed)
        return EXIT_DB;
    if (e.failed || ctl_export_end(stdout, e.fmt, e.rows) < 0) {
        fprintf(stderr, "parleyctl: write error: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    fprintf(stderr, "parleyctl: %ld votes exported\n", e.rows);
    return 0;
}

static int
history_row(void *arg, const struct store_history_row *r)
{
    struct export *e = arg;
    char t[32];
    const struct ctl_field f[] = {
        {"id", CTL_INT, NULL, r->id},
        {"time", CTL_STR, t, 0},
        {"platform", CTL_STR, r->platform, 0},
        {"chat", CTL_STR, r->chat, 0},
        {"thread", CTL_STR, r->thread, 0},
        {"role", CTL_STR, r->role, 0},
        {"user", CTL_STR, r->user_id, 0},
        {"tokens", CTL_INT, NULL, r->tokens},
        {"text", CTL_STR, r->text, 0},
    };

    iso_time(r->created_ms, t, sizeof(t));
    if (ctl_export_row(stdout, e->fmt, f, sizeof(f) / sizeof(f[0]), e->rows) <
        0) {
        e->failed = 1;
        return 1;
    }
    e->rows++;
    return 0;
}

static const struct ctl_field history_cols[] = {
    {"id", CTL_INT, NULL, 0},       {"time", CTL_STR, NULL, 0},
    {"platform", CTL_STR, NULL, 0}, {"chat", CTL_STR, NULL, 0},
    {"thread", CTL_STR, NULL, 0},   {"role", CTL_STR, NULL, 0},
    {"user", CTL_STR, NULL, 0},     {"tokens", CTL_INT, NULL, 0},
    {"text", CTL_STR, NULL, 0},
};

static int
cmd_history(struct ctl *x, int argc, char **argv)
{
    struct export e = {CTL_CSV, 0, 0};
    char platform[16], id[80], target[100];
    int64_t since = 0;
    long n;
    int rc, who;

    if ((rc = export_options(&argc, argv, &e.fmt, &since, 0)) != 0)
        return rc;
    if (argc < 2 || argc > 3 ||
        (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "purge") != 0))
        return usage_error("usage: history export|purge [WHO]%s", NULL);
    who = argc == 3;
    if (who &&
        who_parse(argv[2], platform, sizeof(platform), id, sizeof(id)) < 0)
        return usage_error("WHO is platform:id, not \"%s\"", argv[2]);
    if (strcmp(argv[1], "export") == 0) {
        if (ctl_export_begin(stdout, e.fmt, history_cols,
                             sizeof(history_cols) / sizeof(history_cols[0])) <
            0)
            return EXIT_USAGE;
        if (store_history_export(x->st, who ? platform : NULL, who ? id : NULL,
                                 history_row, &e) < 0 &&
            !e.failed)
            return EXIT_DB;
        if (e.failed || ctl_export_end(stdout, e.fmt, e.rows) < 0) {
            fprintf(stderr, "parleyctl: write error: %s\n", strerror(errno));
            return EXIT_USAGE;
        }
        fprintf(stderr, "parleyctl: %ld messages exported\n", e.rows);
        return 0;
    }
    if ((n = store_history_purge(x->st, who ? platform : NULL,
                                 who ? id : NULL)) < 0)
        return EXIT_DB;
    if (who)
        snprintf(target, sizeof(target), "%s:%s", platform, id);
    ctl_audit(x, "history purge", who ? target : "everyone", NULL);
    if ((rc = ctl_commit(x)) != 0)
        return rc;
    printf("deleted %ld history messages\n", n);
    return 0;
}

static int
print_audit(void *arg, int64_t id, int64_t ts, const char *platform,
            const char *actor, const char *action, const char *target,
            const char *detail)
{
    char t[32];

    (void)arg;
    (void)id;
    (void)platform;
    iso_time(ts, t, sizeof(t));
    printf("%s  %s  %s", t, actor ? actor : "?", action ? action : "?");
    if (target != NULL)
        printf(" %s", target);
    if (detail != NULL) {
        /* a persona may hold anything: one line, bounded */
        printf(" ");
        for (size_t i = 0; detail[i] != '\0' && i < 200; i++)
            putchar(detail[i] == '\n' || detail[i] == '\r' ? ' ' : detail[i]);
        if (strlen(detail) > 200)
            printf("…");
    }
    printf("\n");
    return 0;
}

static int
cmd_audit(struct ctl *x, int argc, char **argv)
{
    const char *why = NULL;
    int64_t n = 0;

    if (argc > 2)
        return usage_error("usage: audit [N]%s", NULL);
    if (argc == 2 && value_parse_int(argv[1], 1, 1000000, &n, &why) < 0)
        return usage_error("audit N: a number of rows, not \"%s\"", argv[1]);
    return store_audit_list(x->st, (int)n, print_audit, x) < 0 ? EXIT_DB : 0;
}

/* ---- main ---- */

static const struct {
    const char *name;
    int (*fn)(struct ctl *x, int argc, char **argv);
} commands[] = {
    {"limits", cmd_limits},   {"limit", cmd_override},
    {"budget", cmd_override}, {"ban", cmd_ban},
    {"unban", cmd_unban},     {"usage", cmd_usage},
    {"stats", cmd_stats},     {"feedback", cmd_feedback},
    {"history", cmd_history}, {"audit", cmd_audit},
};

static void
actor_init(struct ctl *x)
{
    const char *who = getenv("SUDO_USER");
    struct passwd *pw;

    if (who == NULL || who[0] == '\0') {
        pw = getpwuid(getuid());
        who = pw != NULL ? pw->pw_name : NULL;
    }
    if (who != NULL)
        snprintf(x->actor, sizeof(x->actor), "parleyctl:%s", who);
    else
        snprintf(x->actor, sizeof(x->actor), "parleyctl:uid%u",
                 (unsigned)getuid());
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct ctl x;
    struct config_diag diag;
    struct timespec ts;
    struct stat sb;
    char path[4096], err[512];
    int ch, rc = EXIT_USAGE;

    memset(&x, 0, sizeof(x));
    memset(&diag, 0, sizeof(diag));
    x.cfg_path = CONFIG_DEFAULT_PATH;
    log_init("parleyctl");
    log_set_level(LOG_LEVEL_WARN);
    /* "+": options end at the command (its own --format, --since) */
    while ((ch = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            x.cfg_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("parleyctl %s\n", PARLEY_VERSION);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[0], commands[i].name) != 0)
            continue;
        if (config_load(x.cfg_path, &x.cfg, &diag) < 0) {
            for (size_t k = 0; k < diag.nerrors; k++)
                fprintf(stderr, "%s\n", diag.errors[k]);
            rc = EXIT_USAGE;
            goto out;
        }
        snprintf(path, sizeof(path), "%s/parley.db", x.cfg->bot.state_dir);
        /* never create it: a file made by another user would lock the
         * daemon out (-wal, -shm ownership) */
        if (stat(path, &sb) < 0) {
            fprintf(stderr, "parleyctl: %s: %s (has parleyd run?)\n", path,
                    strerror(errno));
            rc = EXIT_DB;
            goto out;
        }
        if ((x.st = store_open(path, err, sizeof(err))) == NULL) {
            fprintf(stderr, "parleyctl: %s\n", err);
            rc = EXIT_DB;
            goto out;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        x.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        actor_init(&x);
        rc = commands[i].fn(&x, argc, argv);
        if (rc == 0 && store_flush(x.st) < 0)
            rc = EXIT_DB;
        goto out;
    }
    fprintf(stderr, "parleyctl: unknown command \"%s\"\n", argv[0]);
    usage(stderr);
out:
    store_close(x.st);
    config_free(x.cfg);
    config_diag_release(&diag);
    return rc;
}
