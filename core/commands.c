/* commands: the chat commands as one constant table shared by every
 * platform, and a pure parser for them (docs/commands.md). */
#include "core/commands.h"

#include <ctype.h>
#include <strings.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/ratelimit.h"
#include "storage/store.h"

#define WORDS_MAX 4 /* no shape takes more than 3 words after the sub */

/*
 * The one table (SPEC §7: names binding).  limit and budget have a row
 * per form because the forms differ in who may use them: a chat's
 * administrators act on their chat only.
 */
static const struct commands_entry table[] = {
    {"help", NULL, "help", "what you may use here", COMMANDS_EVERYONE,
     COMMANDS_ARGS_NONE, core_cmd_help},
    {"reset", NULL, "reset", "forget this conversation", COMMANDS_EVERYONE,
     COMMANDS_ARGS_NONE, core_cmd_reset},
    {"usage", NULL, "usage",
     "your requests and tokens in the current windows, what remains, your "
     "cost",
     COMMANDS_EVERYONE, COMMANDS_ARGS_NONE, core_cmd_usage},
    {"limits", NULL, "limits", "the limits that apply to you here",
     COMMANDS_EVERYONE, COMMANDS_ARGS_NONE, core_cmd_limits},
    {"forget", NULL, "forget",
     "delete everything stored about you: history, feedback, usage",
     COMMANDS_EVERYONE, COMMANDS_ARGS_NONE, core_cmd_forget},
    {"limit", "user", "limit user WHO RATE|default",
     "a user's request limit (on this platform)", COMMANDS_ADMIN,
     COMMANDS_ARGS_WHO_RATE, core_cmd_override},
    {"limit", "chat", "limit chat RATE|default", "this chat's request limit",
     COMMANDS_CHAT_ADMIN, COMMANDS_ARGS_RATE, core_cmd_override},
    {"budget", "user", "budget user WHO RATE|default",
     "a user's token budget (on this platform)", COMMANDS_ADMIN,
     COMMANDS_ARGS_WHO_RATE, core_cmd_override},
    {"budget", "chat", "budget chat RATE|default", "this chat's token budget",
     COMMANDS_CHAT_ADMIN, COMMANDS_ARGS_RATE, core_cmd_override},
    {"ban", NULL, "ban WHO [DURATION]",
     "ignore a user, for DURATION or until unban", COMMANDS_ADMIN,
     COMMANDS_ARGS_WHO_DURATION, core_cmd_ban},
    {"unban", NULL, "unban WHO", "lift a ban", COMMANDS_ADMIN,
     COMMANDS_ARGS_WHO, core_cmd_unban},
    {"stats", NULL, "stats", "bot-wide counters, feedback and latency",
     COMMANDS_ADMIN, COMMANDS_ARGS_NONE, core_cmd_stats},
    {"model", NULL, "model NAME|default", "this chat's model", COMMANDS_ADMIN,
     COMMANDS_ARGS_NAME, core_cmd_model},
    {"persona", NULL, "persona TEXT|default", "this chat's system prompt",
     COMMANDS_ADMIN, COMMANDS_ARGS_TEXT, core_cmd_persona},
};

#define TABLE_N (sizeof(table) / sizeof(table[0]))

const struct commands_entry *
commands_table(size_t *n)
{
    *n = TABLE_N;
    return table;
}

static void errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static int
is_blank(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' ||
           ch == '\v';
}

/*
 * Splits s into at most max words (NUL-terminated copies in buf, each at
 * most wlen - 1 bytes).  Returns the word count, max + 1 when there are
 * more words, or -1 when a word is too long.
 */
static int
split_words(const char *s, char (*buf)[COMMANDS_ID_MAX + 1], int max)
{
    int n = 0;

    while (s != NULL && *s != '\0') {
        size_t len;

        while (is_blank((unsigned char)*s))
            s++;
        if (*s == '\0')
            break;
        for (len = 0; s[len] != '\0' && !is_blank((unsigned char)s[len]); len++)
            ;
        if (n == max)
            return max + 1;
        if (len > COMMANDS_ID_MAX)
            return -1;
        memcpy(buf[n], s, len);
        buf[n][len] = '\0';
        n++;
        s += len;
    }
    return n;
}

static int
all_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);

    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Slack user ids: U or W, then upper-case letters and digits. */
static int
slack_id(const char *s, size_t n)
{
    if (n < 2 || n > 24 || (s[0] != 'U' && s[0] != 'W'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static void
who_set(struct commands_who *who, enum commands_who_kind kind, const char *id,
        size_t n)
{
    who->kind = kind;
    memcpy(who->id, id, n);
    who->id[n] = '\0';
}

int
commands_parse_who(const char *platform, const char *w,
                   struct commands_who *who)
{
    size_t n = strlen(w);

    memset(who, 0, sizeof(*who));
    if (n == 0 || n > COMMANDS_ID_MAX)
        return -1;
    if (strcmp(platform, "telegram") == 0) {
        if (all_digits(w, 1, 20)) {
            who_set(who, COMMANDS_WHO_ID, w, n);
            return 0;
        }
        /* usernames: 5-32 of [A-Za-z0-9_]; be lenient on the length */
        if (w[0] == '@' && n >= 2 && n <= 33) {
            for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char)w[i]) && w[i] != '_')
                    return -1;
            who_set(who, COMMANDS_WHO_USERNAME, w + 1, n - 1);
            return 0;
        }
        return -1;
    }
    if (strcmp(platform, "discord") == 0) {
        char id[32];

        if (all_digits(w, 1, 20)) {
            who_set(who, COMMANDS_WHO_ID, w, n);
            return 0;
        }
        /* <@123> or <@!123> (a nickname mention) */
        if (n > 3 && w[0] == '<' && w[1] == '@' && w[n - 1] == '>') {
            size_t at = w[2] == '!' ? 3 : 2;

            if (n - 1 - at >= sizeof(id))
                return -1;
            memcpy(id, w + at, n - 1 - at);
            id[n - 1 - at] = '\0';
            if (!all_digits(id, 1, 20))
                return -1;
            who_set(who, COMMANDS_WHO_ID, id, strlen(id));
            return 0;
        }
        return -1;
    }
    if (strcmp(platform, "slack") == 0) {
        if (slack_id(w, n)) {
            who_set(who, COMMANDS_WHO_ID, w, n);
            return 0;
        }
        /* <@U123> or <@U123|name> */
        if (n > 4 && w[0] == '<' && w[1] == '@' && w[n - 1] == '>') {
            const char *end = memchr(w + 2, '|', n - 3);
            size_t len = (end != NULL ? (size_t)(end - w) : n - 1) - 2;

            if (!slack_id(w + 2, len))
                return -1;
            who_set(who, COMMANDS_WHO_ID, w + 2, len);
            return 0;
        }
        return -1;
    }
    /* a platform this table does not know: one plain id word */
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)w[i]) && w[i] != '_' && w[i] != '-' &&
            w[i] != '.')
            return -1;
    who_set(who, COMMANDS_WHO_ID, w, n);
    return 0;
}

static const char *
who_forms(const char *platform)
{
    if (strcmp(platform, "telegram") == 0)
        return "a numeric user id, an @username, or a reply to their message";
    if (strcmp(platform, "discord") == 0)
        return "a user id, a @mention, or a reply to their message";
    if (strcmp(platform, "slack") == 0)
        return "a user id (U…), a @mention, or a reply in their thread";
    return "a user id, or a reply to their message";
}

static int
is_word(const char *w, const char *want)
{
    return strcasecmp(w, want) == 0;
}

/* RATE|default into out; -1 with err set. */
static int
parse_rate(const struct commands_entry *e, const char *w,
           struct commands_parsed *out, char *err, size_t errlen)
{
    const char *why = NULL;
    char why2[96];

    if (is_word(w, "default")) {
        out->is_default = 1;
        return 0;
    }
    if (value_parse_rate(w, &out->rate, &why) < 0) {
        errf(err, errlen, "usage: %s (RATE: %s)", e->usage, why);
        return -1;
    }
    /* what core/ratelimit takes: a request window holds one slot per
     * request, a budget's refill is exact integer arithmetic */
    if (ratelimit_rate_check(out->rate, strcmp(e->name, "budget") == 0, why2,
                             sizeof(why2)) < 0) {
        errf(err, errlen, "usage: %s (RATE: %s)", e->usage, why2);
        return -1;
    }
    return 0;
}

static int
parse_who(const struct commands_entry *e, const char *platform, const char *w,
          struct commands_parsed *out, char *err, size_t errlen)
{
    if (commands_parse_who(platform, w, &out->who) < 0) {
        errf(err, errlen, "usage: %s (WHO is %s)", e->usage,
             who_forms(platform));
        return -1;
    }
    return 0;
}

static int
parse_duration(const struct commands_entry *e, const char *w,
               struct commands_parsed *out, char *err, size_t errlen)
{
    const char *why = NULL;
    int64_t ms;

    if (value_parse_duration(w, &ms, &why) < 0 || ms <= 0) {
        errf(err, errlen, "usage: %s (DURATION: %s)", e->usage,
             why ? why : "must be longer than 0");
        return -1;
    }
    out->duration_ms = ms;
    return 0;
}

static void
who_reply(struct commands_parsed *out, const char *reply_to)
{
    out->who.kind = COMMANDS_WHO_REPLY;
    snprintf(out->who.id, sizeof(out->who.id), "%s", reply_to);
}

/* The arguments of e (after the sub-word, if any) into out. */
static enum commands_status
parse_args(const struct commands_entry *e, const char *args,
           const char *platform, const char *reply_to,
           struct commands_parsed *out, char *err, size_t errlen)
{
    char w[WORDS_MAX][COMMANDS_ID_MAX + 1];
    int reply = reply_to != NULL && reply_to[0] != '\0' &&
                strlen(reply_to) <= COMMANDS_ID_MAX;
    int n;
    size_t len;

    if (e->args == COMMANDS_ARGS_NONE)
        return COMMANDS_OK;
    if (e->args == COMMANDS_ARGS_TEXT) {
        /* the rest of the line, trimmed */
        while (args != NULL && is_blank((unsigned char)*args))
            args++;
        len = args != NULL ? strlen(args) : 0;
        while (len > 0 && is_blank((unsigned char)args[len - 1]))
            len--;
        if (len == 0) {
            errf(err, errlen, "usage: %s", e->usage);
            return COMMANDS_USAGE;
        }
        if (len > COMMANDS_ARG_MAX) {
            errf(err, errlen, "usage: %s (TEXT: at most %d bytes)", e->usage,
                 COMMANDS_ARG_MAX);
            return COMMANDS_USAGE;
        }
        memcpy(out->arg, args, len);
        out->arg[len] = '\0';
        out->is_default = strcasecmp(out->arg, "default") == 0;
        return COMMANDS_OK;
    }
    n = split_words(args, w, WORDS_MAX - 1);
    if (n < 0) {
        errf(err, errlen, "usage: %s (a word is too long)", e->usage);
        return COMMANDS_USAGE;
    }
    switch (e->args) {
    case COMMANDS_ARGS_WHO_RATE:
        if (n == 2) {
            if (parse_who(e, platform, w[0], out, err, errlen) < 0 ||
                parse_rate(e, w[1], out, err, errlen) < 0)
                return COMMANDS_USAGE;
            return COMMANDS_OK;
        }
        if (n == 1 && reply) {
            who_reply(out, reply_to);
            return parse_rate(e, w[0], out, err, errlen) < 0 ? COMMANDS_USAGE
                                                             : COMMANDS_OK;
        }
        break;
    case COMMANDS_ARGS_RATE:
        if (n == 1)
            return parse_rate(e, w[0], out, err, errlen) < 0 ? COMMANDS_USAGE
                                                             : COMMANDS_OK;
        break;
    case COMMANDS_ARGS_WHO_DURATION:
        if (n == 2) {
            if (parse_who(e, platform, w[0], out, err, errlen) < 0 ||
                parse_duration(e, w[1], out, err, errlen) < 0)
                return COMMANDS_USAGE;
            return COMMANDS_OK;
        }
        if (n == 1) {
            const char *why;
            int64_t ms;

            /* replying, a lone word is the DURATION if it reads as one */
            if (reply && value_parse_duration(w[0], &ms, &why) == 0 && ms > 0) {
                who_reply(out, reply_to);
                out->duration_ms = ms;
                return COMMANDS_OK;
            }
            return parse_who(e, platform, w[0], out, err, errlen) < 0
                       ? COMMANDS_USAGE
                       : COMMANDS_OK;
        }
        if (n == 0 && reply) {
            who_reply(out, reply_to);
            return COMMANDS_OK;
        }
        break;
    case COMMANDS_ARGS_WHO:
        if (n == 1)
            return parse_who(e, platform, w[0], out, err, errlen) < 0
                       ? COMMANDS_USAGE
                       : COMMANDS_OK;
        if (n == 0 && reply) {
            who_reply(out, reply_to);
            return COMMANDS_OK;
        }
        break;
    case COMMANDS_ARGS_NAME:
        if (n == 1) {
            if (strlen(w[0]) > COMMANDS_NAME_MAX) {
                errf(err, errlen, "usage: %s (NAME: at most %d characters)",
                     e->usage, COMMANDS_NAME_MAX);
                return COMMANDS_USAGE;
            }
            snprintf(out->arg, sizeof(out->arg), "%s", w[0]);
            out->is_default = is_word(w[0], "default");
            return COMMANDS_OK;
        }
        break;
    default:
        break;
    }
    if (reply ||
        (e->args != COMMANDS_ARGS_WHO_RATE &&
         e->args != COMMANDS_ARGS_WHO_DURATION && e->args != COMMANDS_ARGS_WHO))
        errf(err, errlen, "usage: %s", e->usage);
    else
        errf(err, errlen, "usage: %s (WHO is %s)", e->usage,
             who_forms(platform));
    return COMMANDS_USAGE;
}

enum commands_status
commands_parse(const char *name, const char *args, const char *platform,
               const char *reply_to, struct commands_parsed *out, char *err,
               size_t errlen)
{
    const struct commands_entry *first = NULL;
    char sub[COMMANDS_ID_MAX + 1] = "";

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (platform == NULL)
        platform = "";
    /* Telegram clients send /start (with a deep-link payload after it)
     * when a user first opens the bot's chat: it is answered with help */
    if (name != NULL && strcmp(name, "start") == 0 &&
        strcmp(platform, "telegram") == 0)
        name = "help";
    for (size_t i = 0; i < TABLE_N; i++)
        if (name != NULL && strcmp(table[i].name, name) == 0) {
            first = &table[i];
            break;
        }
    if (first == NULL) {
        errf(err, errlen, "unknown command \"%.*s\"; try help", 32,
             name ? name : "");
        return COMMANDS_UNKNOWN;
    }
    if (first->sub != NULL) {
        const char *s = args != NULL ? args : "";
        size_t len;

        /* the form word: "limit user ..." / "limit chat ..." */
        while (is_blank((unsigned char)*s))
            s++;
        for (len = 0; s[len] != '\0' && !is_blank((unsigned char)s[len]); len++)
            ;
        if (len < sizeof(sub)) {
            memcpy(sub, s, len);
            sub[len] = '\0';
        }
        for (size_t i = 0; i < TABLE_N; i++)
            if (strcmp(table[i].name, name) == 0 && table[i].sub != NULL &&
                is_word(sub, table[i].sub)) {
                out->entry = &table[i];
                return parse_args(out->entry, s + len, platform, reply_to, out,
                                  err, errlen);
            }
        /* "usage: limit user WHO RATE|default, or limit chat RATE|default" */
        {
            size_t at = 0;

            for (size_t i = 0; i < TABLE_N && err != NULL; i++) {
                int w;

                if (strcmp(table[i].name, name) != 0)
                    continue;
                w = snprintf(err + at, errlen - at, "%s%s",
                             at == 0 ? "usage: " : ", or ", table[i].usage);
                if (w < 0 || (size_t)w >= errlen - at)
                    break;
                at += (size_t)w;
            }
        }
        return COMMANDS_USAGE;
    }
    out->entry = first;
    return parse_args(first, args, platform, reply_to, out, err, errlen);
}

int
commands_allowed(const struct commands_entry *e, enum commands_role role)
{
    switch (e->access) {
    case COMMANDS_EVERYONE:
        return 1;
    case COMMANDS_CHAT_ADMIN:
        return role == COMMANDS_ROLE_CHAT_ADMIN || role == COMMANDS_ROLE_ADMIN;
    case COMMANDS_ADMIN:
    default:
        return role == COMMANDS_ROLE_ADMIN;
    }
}

void
commands_refusal(const struct commands_entry *e, char *buf, size_t len)
{
    char what[64];

    snprintf(what, sizeof(what), "%s%s%s", e->name, e->sub ? " " : "",
             e->sub ? e->sub : "");
    if (e->access == COMMANDS_CHAT_ADMIN)
        snprintf(buf, len,
                 "Sorry, only this chat's administrators and the bot's admins "
                 "may use \"%s\".",
                 what);
    else
        snprintf(buf, len, "Sorry, only the bot's admins may use \"%s\".",
                 what);
}

int
commands_help(enum commands_role role, char *buf, size_t len)
{
    size_t at = 0;
    int w;

    /* a summary line, then one line per form */
    w = snprintf(buf, len, "Commands:");
    if (w < 0 || (size_t)w >= len)
        return -1;
    at = (size_t)w;
    for (size_t i = 0, k = 0; i < TABLE_N; i++) {
        if (!commands_allowed(&table[i], role) ||
            (i > 0 && strcmp(table[i - 1].name, table[i].name) == 0 &&
             commands_allowed(&table[i - 1], role)))
            continue;
        w = snprintf(buf + at, len - at, "%s %s", k++ ? "," : "",
                     table[i].name);
        if (w < 0 || (size_t)w >= len - at)
            return -1;
        at += (size_t)w;
    }
    w = snprintf(buf + at, len - at, ".");
    if (w < 0 || (size_t)w >= len - at)
        return -1;
    at += (size_t)w;
    for (size_t i = 0; i < TABLE_N; i++) {
        if (!commands_allowed(&table[i], role))
            continue;
        w = snprintf(buf + at, len - at, "\n%s — %s", table[i].usage,
                     table[i].help);
        if (w < 0 || (size_t)w >= len - at)
            return -1;
        at += (size_t)w;
    }
    if (role != COMMANDS_ROLE_USER) {
        w = snprintf(buf + at, len - at,
                     "\nWHO: a user id, a mention, or a reply to their "
                     "message. RATE: N/DURATION (30/60s) or off. DURATION: "
                     "30m, 12h, 7d.");
        if (w < 0 || (size_t)w >= len - at)
            return -1;
        at += (size_t)w;
    }
    return (int)at;
}

int
commands_rate_within(struct rate r, struct rate cap)
{
    if (cap.n == 0)
        return 1; /* no cap */
    if (r.n == 0)
        return 0; /* off is above any cap */
    if (r.n > cap.n)
        return 0; /* a larger burst */
    /* r.n / r.w <= cap.n / cap.w, without overflow (n <= 1e12, w <= 3e11) */
    return (long double)r.n * (long double)cap.window_ms <=
           (long double)cap.n * (long double)r.window_ms;
}

void
commands_usd(int64_t micro, char *buf, size_t len)
{
    snprintf(buf, len, "%s%" PRId64 ".%06" PRId64, micro < 0 ? "-" : "",
             (micro < 0 ? -micro : micro) / 1000000,
             (micro < 0 ? -micro : micro) % 1000000);
}

/* "1.2 s", "850 ms", "-" */
static void
fmt_ms(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (ms < 1000)
        snprintf(buf, len, "%" PRId64 " ms", ms);
    else
        snprintf(buf, len, "%" PRId64 ".%" PRId64 " s", ms / 1000,
                 (ms % 1000) / 100);
}

int
commands_stats_text(const struct store_stats *s, char *buf, size_t len)
{
    char since[16] = "-", wk[32], tot[32], p50[24], p95[24], ratio[16] = "-";
    int64_t votes = s->votes_up + s->votes_down;
    int w;

    if (s->first_day >= 0) {
        time_t t = (time_t)(s->first_day * 86400);
        struct tm tm;

        if (gmtime_r(&t, &tm) != NULL)
            strftime(since, sizeof(since), "%Y-%m-%d", &tm);
    }
    commands_usd(s->week.cost_micro_usd, wk, sizeof(wk));
    commands_usd(s->total.cost_micro_usd, tot, sizeof(tot));
    fmt_ms(s->latency_p50_ms, p50, sizeof(p50));
    fmt_ms(s->latency_p95_ms, p95, sizeof(p95));
    if (votes > 0)
        snprintf(ratio, sizeof(ratio), "%" PRId64 "%%",
                 (s->votes_up * 100 + votes / 2) / votes);
    w = snprintf(
        buf, len,
        "Stats: last 7 days (all since %s)\n"
        "requests: %" PRId64 " (%" PRId64 ")\n"
        "answers: %" PRId64 " (%" PRId64 ")\n"
        "limited: %" PRId64 " (%" PRId64 ")\n"
        "retries: %" PRId64 " (%" PRId64 ")\n"
        "fallbacks: %" PRId64 " (%" PRId64 ")\n"
        "errors: %" PRId64 " (%" PRId64 ")\n"
        "commands: %" PRId64 " (%" PRId64 ")\n"
        "tokens: %" PRId64 " in, %" PRId64 " out (%" PRId64 " in, %" PRId64
        " out)\n"
        "cost: $%s ($%s)\n"
        "feedback, 7 days: %" PRId64 " up, %" PRId64 " down, %s up\n"
        "answer latency, 7 days: p50 %s, p95 %s (%" PRId64 " answers)",
        since, s->week.requests, s->total.requests, s->week.answers,
        s->total.answers, s->week.limited, s->total.limited, s->week.retries,
        s->total.retries, s->week.fallbacks, s->total.fallbacks, s->week.errors,
        s->total.errors, s->week.commands, s->total.commands, s->week.tokens_in,
        s->week.tokens_out, s->total.tokens_in, s->total.tokens_out, wk, tot,
        s->votes_up, s->votes_down, ratio, p50, p95, s->latency_n);
    return w < 0 || (size_t)w >= len ? -1 : w;
}
