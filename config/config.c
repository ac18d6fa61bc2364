/* config: parley.conf (INI) to struct config; validation, secrets, print. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#include "core/ratelimit.h"

/*
 * The whole grammar is one table: every key of every section, its type,
 * where it lives and its default (a string parsed like a value, so that
 * defaults, parsing and printing cannot drift apart).
 */
enum ktype {
    K_STR,      /* text; lo >= 1 means it must not be empty */
    K_URL,      /* http:// or https://, trailing '/' dropped */
    K_LISTEN,   /* HOST:PORT or empty; off is all of struct config_bot */
    K_BOOL,     /* bool */
    K_INT,      /* int in [lo, hi] */
    K_I64,      /* int64_t in [lo, hi] */
    K_DOUBLE,   /* double in [lo, hi] */
    K_DURATION, /* int64_t ms, at least lo */
    K_RATE,     /* struct rate */
    K_LOGLEVEL, /* enum log_level */
    K_NOTICE,   /* enum config_notice */
    K_JITTER,   /* enum config_jitter */
    K_API,      /* enum config_api */
    K_SECRET,   /* struct secret; empty = unset */
    K_SECRETS,  /* struct secret[] at off, size_t count at noff */
    K_NAMES,    /* char *[] of model names at off, count at noff */
    K_ADMINS,   /* struct config_admin[] at off, count at noff */
};

struct key_def {
    const char *name;
    enum ktype type;
    size_t off;      /* field offset from the section's base */
    size_t noff;     /* count field of the list types */
    const char *def; /* default value, NULL = unset */
    double lo, hi;   /* bounds of the number types */
};

struct section_def {
    const char *name;
    const struct key_def *keys;
    size_t nkeys;
};

#define CF(f) offsetof(struct config, f)
#define MF(f) offsetof(struct config_model, f)
#define KEYS_MAX 16
#define BIG 1e9
#define PROMPT_DEFAULT                                                         \
    "You are a helpful assistant in a group chat. Be concise."

static const struct key_def bot_keys[] = {
    {"state_dir", K_STR, CF(bot.state_dir), 0, "/var/lib/parley", 1, 0},
    {"admins", K_ADMINS, CF(bot.admins), CF(bot.nadmins), "", 0, 0},
    {"log_level", K_LOGLEVEL, CF(bot.log_level), 0, "info", 0, 0},
    {"metrics_listen", K_LISTEN, CF(bot), 0, "127.0.0.1:9464", 0, 0},
};

static const struct key_def telegram_keys[] = {
    {"enabled", K_BOOL, CF(telegram.enabled), 0, "false", 0, 0},
    {"token", K_SECRET, CF(telegram.token), 0, NULL, 0, 0},
    {"api_base", K_URL, CF(telegram.api_base), 0, "https://api.telegram.org", 0,
     0},
    {"poll_timeout", K_DURATION, CF(telegram.poll_timeout), 0, "50s", 0, 0},
    {"chat_send_rate", K_RATE, CF(telegram.chat_send_rate), 0, "1/1s", 0, 0},
    {"group_send_rate", K_RATE, CF(telegram.group_send_rate), 0, "20/60s", 0,
     0},
    {"global_send_rate", K_RATE, CF(telegram.global_send_rate), 0, "30/1s", 0,
     0},
};

static const struct key_def discord_keys[] = {
    {"enabled", K_BOOL, CF(discord.enabled), 0, "false", 0, 0},
    {"token", K_SECRET, CF(discord.token), 0, NULL, 0, 0},
    {"api_base", K_URL, CF(discord.api_base), 0, "https://discord.com/api/v10",
     0, 0},
};

static const struct key_def slack_keys[] = {
    {"enabled", K_BOOL, CF(slack.enabled), 0, "false", 0, 0},
    {"app_token", K_SECRET, CF(slack.app_token), 0, NULL, 0, 0},
    {"bot_token", K_SECRET, CF(slack.bot_token), 0, NULL, 0, 0},
    {"api_base", K_URL, CF(slack.api_base), 0, "https://slack.com/api", 0, 0},
    {"channel_send_rate", K_RATE, CF(slack.channel_send_rate), 0, "1/1s", 0, 0},
};

static const struct key_def limits_keys[] = {
    {"user", K_RATE, CF(limits.user), 0, "30/60s", 0, 0},
    {"chat", K_RATE, CF(limits.chat), 0, "120/60s", 0, 0},
    {"global", K_RATE, CF(limits.global), 0, "off", 0, 0},
    {"user_tokens", K_RATE, CF(limits.user_tokens), 0, "200000/1d", 0, 0},
    {"chat_tokens", K_RATE, CF(limits.chat_tokens), 0, "off", 0, 0},
    {"notice", K_NOTICE, CF(limits.notice), 0, "once", 0, 0},
};

static const struct key_def llm_keys[] = {
    {"models", K_NAMES, CF(llm.models), CF(llm.nmodels), "", 0, 0},
    {"system_prompt", K_STR, CF(llm.system_prompt), 0, PROMPT_DEFAULT, 0, 0},
    {"history_messages", K_INT, CF(llm.history_messages), 0, "20", 1, 10000},
    {"history_tokens", K_I64, CF(llm.history_tokens), 0, "6000", 1, BIG},
    {"max_output_tokens", K_I64, CF(llm.max_output_tokens), 0, "1024", 1, BIG},
    {"timeout", K_DURATION, CF(llm.timeout), 0, "60s", 1, 0},
    {"give_up_after", K_DURATION, CF(llm.give_up_after), 0, "10m", 0, 0},
    {"stream", K_BOOL, CF(llm.stream), 0, "true", 0, 0},
    {"stream_interval", K_DURATION, CF(llm.stream_interval), 0, "1500ms", 0, 0},
};

static const struct key_def retry_keys[] = {
    {"attempts", K_INT, CF(retry.attempts), 0, "6", 1, 1000},
    {"multiplier", K_DURATION, CF(retry.multiplier), 0, "1s", 0, 0},
    {"min", K_DURATION, CF(retry.min), 0, "1s", 0, 0},
    {"max", K_DURATION, CF(retry.max), 0, "60s", 0, 0},
    {"jitter", K_JITTER, CF(retry.jitter), 0, "full", 0, 0},
};

static const struct key_def history_keys[] = {
    {"retention", K_DURATION, CF(history.retention), 0, "30d", 0, 0},
};

static const struct key_def feedback_keys[] = {
    {"alert_ratio", K_DOUBLE, CF(feedback.alert_ratio), 0, "0.5", 0, 1},
    {"alert_window", K_INT, CF(feedback.alert_window), 0, "20", 1, 100000},
};

static const struct key_def model_keys[] = {
    {"api", K_API, MF(api), 0, NULL, 0, 0},
    {"base_url", K_URL, MF(base_url), 0, NULL, 0, 0},
    {"api_key", K_SECRETS, MF(api_keys), MF(napi_keys), NULL, 0, 0},
    {"name", K_STR, MF(model), 0, NULL, 1, 0},
    {"context_window", K_I64, MF(context_window), 0, "128000", 1, BIG},
    {"rpm", K_I64, MF(rpm), 0, "500", 0, BIG},
    {"tpm", K_I64, MF(tpm), 0, "200000", 0, 1e12},
    {"price_in", K_DOUBLE, MF(price_in), 0, "0.40", 0, 1e6},
    {"price_out", K_DOUBLE, MF(price_out), 0, "1.60", 0, 1e6},
};

/* Sections in print order; S_MODEL stands for every [model.NAME]. */
enum sect {
    S_BOT = 0,
    S_TELEGRAM,
    S_DISCORD,
    S_SLACK,
    S_LIMITS,
    S_LLM,
    S_RETRY,
    S_HISTORY,
    S_FEEDBACK,
    S_MODEL,
    S_COUNT,
    S_NONE = -1, /* before the first section header */
    S_BAD = -2,  /* inside an unknown section: already reported */
};

#define SECT(n, k)                                                             \
    {                                                                          \
        n, k, sizeof(k) / sizeof(k[0])                                         \
    }
static const struct section_def sections[S_COUNT] = {
    SECT("bot", bot_keys),           SECT("telegram", telegram_keys),
    SECT("discord", discord_keys),   SECT("slack", slack_keys),
    SECT("limits", limits_keys),     SECT("llm", llm_keys),
    SECT("retry", retry_keys),       SECT("history", history_keys),
    SECT("feedback", feedback_keys), SECT("model", model_keys),
};

static const char *const platform_names[] = {"telegram", "discord", "slack"};
static const char *const api_names[] = {"openai", "anthropic"};
static const char *const jitter_names[] = {"none", "full", "equal"};
static const char *const notice_names[] = {"once", "always", "off"};
#define NNAMES(a) (sizeof(a) / sizeof(a[0]))

/* What one config_parse() call carries between inih's callbacks. */
struct parse_ctx {
    const char *text;
    size_t len;
    size_t pos;
    const char *filename;
    int lineno;
    struct config *c;
    struct config_diag *d;
    int nerrors; /* counted even when a message cannot be stored */
    int nkeys;
    int sect;     /* enum sect, S_NONE or S_BAD */
    size_t model; /* index into c->models when sect == S_MODEL */
    /* a value too long for inih's line buffer travels here instead */
    const char *long_value;
    int sect_line[S_COUNT];                      /* first header line */
    int seen[S_MODEL][KEYS_MAX];                 /* line a key was set */
    int model_seen[CONFIG_MODELS_MAX][KEYS_MAX]; /* same, per model */
    char line[CONFIG_LINE_MAX + 1];              /* the current line */
};

const char *
config_platform_name(enum config_platform p)
{
    return (unsigned)p < NNAMES(platform_names) ? platform_names[p] : "?";
}

const char *
config_api_name(enum config_api a)
{
    return (unsigned)a < NNAMES(api_names) ? api_names[a] : "?";
}

const char *
config_jitter_name(enum config_jitter j)
{
    return (unsigned)j < NNAMES(jitter_names) ? jitter_names[j] : "?";
}

const char *
config_notice_name(enum config_notice n)
{
    return (unsigned)n < NNAMES(notice_names) ? notice_names[n] : "?";
}

static int
name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(names[i], s) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- diagnostics ---- */

static void
diag_vadd(struct config_diag *d, bool error, const char *fmt, va_list ap)
{
    char ***list = error ? &d->errors : &d->warnings;
    size_t *n = error ? &d->nerrors : &d->nwarnings;
    char **grown, *msg = NULL;

    if (*n > CONFIG_DIAG_MAX)
        return;
    if (*n == CONFIG_DIAG_MAX) {
        msg = strdup("too many problems; the rest are not listed");
    } else if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
    }
    if (msg == NULL)
        return;
    grown = realloc(*list, (*n + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(msg);
        return;
    }
    grown[(*n)++] = msg;
    *list = grown;
}

static void diag_add(struct config_diag *d, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
diag_add(struct config_diag *d, bool error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(d, error, fmt, ap);
    va_end(ap);
}

void
config_diag_release(struct config_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nerrors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    memset(d, 0, sizeof(*d));
}

static void perr(struct parse_ctx *x, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Report "FILE:LINE: message".  x == NULL (parsing a default) is silent. */
static void
perr(struct parse_ctx *x, int line, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    if (x == NULL)
        return;
    x->nerrors++;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    diag_add(x->d, true, "%s:%d: %s", x->filename, line,
             msg ? msg : "out of memory");
    free(msg);
}

/* ---- values ---- */

/* Echo a user value in a message: bounded, never for secrets. */
#define ECHO_MAX 64
static const char *
echo(const char *v, char *buf, size_t len)
{
    if (strlen(v) <= ECHO_MAX)
        return v;
    snprintf(buf, len, "%.*s...", ECHO_MAX, v);
    return buf;
}

static bool
model_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= CONFIG_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-") == n;
}

static bool
has_space(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return true;
    }
    return false;
}

static int
url_check(const char *v, const char **why)
{
    const char *host;

    if (strncasecmp(v, "http://", 7) == 0)
        host = v + 7;
    else if (strncasecmp(v, "https://", 8) == 0)
        host = v + 8;
    else {
        *why = "must start with http:// or https://";
        return -1;
    }
    if (*host == '\0' || *host == '/') {
        *why = "has no host";
        return -1;
    }
    if (has_space(v)) {
        *why = "must not contain blanks";
        return -1;
    }
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" → host (without brackets) and port. */
static int
listen_parse(const char *v, char **host, int *port, const char **why)
{
    const char *colon, *hs, *he;
    int64_t p;

    *why = "expected HOST:PORT (like 127.0.0.1:9464 or [::1]:9464)";
    if (has_space(v))
        return -1;
    if (*v == '[') {
        he = strchr(v, ']');
        if (he == NULL || he[1] != ':')
            return -1;
        hs = v + 1;
        colon = he + 1;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL)
            return -1;
        if (memchr(v, ':', (size_t)(colon - v)) != NULL) {
            *why = "IPv6 addresses go in brackets: [::1]:9464";
            return -1;
        }
        hs = v;
        he = colon;
    }
    if (he == hs)
        return -1;
    if (value_parse_int(colon + 1, 1, 65535, &p, why) < 0) {
        *why = "port must be a number from 1 to 65535";
        return -1;
    }
    *host = strndup(hs, (size_t)(he - hs));
    if (*host == NULL) {
        *why = "out of memory";
        return -1;
    }
    *port = (int)p;
    return 0;
}

/* Free whatever a key holds and leave it empty. */
static void
key_release(const struct key_def *k, void *base)
{
    char *f = (char *)base + k->off;
    size_t *n = (size_t *)((char *)base + k->noff);

    switch (k->type) {
    case K_STR:
    case K_URL:
        free(*(char **)f);
        *(char **)f = NULL;
        break;
    case K_LISTEN: {
        struct config_bot *b = (struct config_bot *)f;

        free(b->metrics_listen);
        free(b->metrics_host);
        b->metrics_listen = b->metrics_host = NULL;
        b->metrics_port = 0;
        break;
    }
    case K_SECRET:
        secret_release((struct secret *)f);
        break;
    case K_SECRETS: {
        struct secret *v = *(struct secret **)f;

        for (size_t i = 0; v != NULL && i < *n; i++)
            secret_release(&v[i]);
        free(v);
        *(struct secret **)f = NULL;
        *n = 0;
        break;
    }
    case K_NAMES:
        value_list_free(*(char ***)f, *n);
        *(char ***)f = NULL;
        *n = 0;
        break;
    case K_ADMINS: {
        struct config_admin *v = *(struct config_admin **)f;

        for (size_t i = 0; v != NULL && i < *n; i++)
            free(v[i].user);
        free(v);
        *(struct config_admin **)f = NULL;
        *n = 0;
        break;
    }
    default:
        break;
    }
}

static int
store_admins(struct parse_ctx *x, const char *label, const char *v,
             struct config_admin **out, size_t *nout)
{
    char **items = NULL, ebuf[ECHO_MAX + 8];
    size_t n = 0, i;
    struct config_admin *adm = NULL;
    const char *why;
    int line = x ? x->lineno : 0, rc = -1;

    if (value_split_list(v, CONFIG_LIST_MAX, &items, &n, &why) < 0) {
        perr(x, line, "%s: %s (max %d)", label, why, CONFIG_LIST_MAX);
        goto out;
    }
    adm = calloc(n + 1, sizeof(*adm));
    if (adm == NULL) {
        perr(x, line, "%s: out of memory", label);
        goto out;
    }
    for (i = 0; i < n; i++) {
        char *colon = strchr(items[i], ':');
        int p;

        if (colon != NULL)
            *colon = '\0';
        p = colon ? name_index(platform_names, NNAMES(platform_names), items[i])
                  : -1;
        if (colon != NULL)
            *colon = ':';
        if (p < 0 || colon[1] == '\0' || has_space(colon + 1) ||
            strlen(colon + 1) > CONFIG_ADMIN_ID_MAX) {
            perr(x, line,
                 "%s: bad admin \"%s\": expected platform:user-id with "
                 "platform telegram, discord or slack",
                 label, echo(items[i], ebuf, sizeof(ebuf)));
            goto out;
        }
        adm[i].platform = (enum config_platform)p;
        adm[i].user = strdup(colon + 1);
        if (adm[i].user == NULL) {
            perr(x, line, "%s: out of memory", label);
            goto out;
        }
    }
    *out = adm;
    *nout = n;
    adm = NULL;
    rc = 0;
out:
    if (adm != NULL) {
        for (i = 0; i < n; i++)
            free(adm[i].user);
        free(adm);
    }
    value_list_free(items, n);
    return rc;
}

static int
store_names(struct parse_ctx *x, const char *label, const char *v, char ***out,
            size_t *nout)
{
    char **items = NULL, ebuf[ECHO_MAX + 8];
    size_t n = 0;
    const char *why;
    int line = x ? x->lineno : 0, rc = -1;

    if (value_split_list(v, CONFIG_LIST_MAX, &items, &n, &why) < 0) {
        perr(x, line, "%s: %s (max %d)", label, why, CONFIG_LIST_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!model_name_ok(items[i])) {
            perr(x, line,
                 "%s: bad model name \"%s\": use letters, digits, - and _ "
                 "(at most %d)",
                 label, echo(items[i], ebuf, sizeof(ebuf)), CONFIG_NAME_MAX);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(items[i], items[j]) == 0) {
                perr(x, line, "%s: model \"%s\" is listed twice", label,
                     items[i]);
                goto out;
            }
        }
    }
    *out = items;
    *nout = n;
    items = NULL;
    rc = 0;
out:
    value_list_free(items, n);
    return rc;
}

static int
store_secrets(struct parse_ctx *x, const char *label, const char *v,
              struct secret **out, size_t *nout)
{
    char **items = NULL;
    size_t n = 0, i;
    struct secret *sec = NULL;
    const char *why;
    int line = x ? x->lineno : 0, rc = -1;

    if (value_split_list(v, CONFIG_LIST_MAX, &items, &n, &why) < 0) {
        perr(x, line, "%s: %s (max %d)", label, why, CONFIG_LIST_MAX);
        goto out;
    }
    sec = calloc(n + 1, sizeof(*sec));
    if (sec == NULL) {
        perr(x, line, "%s: out of memory", label);
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (secret_check(items[i], &why) < 0) {
            perr(x, line, "%s: bad secret reference (item %zu): %s", label,
                 i + 1, why);
            goto out;
        }
        if (secret_unknown_scheme(items[i]) && x != NULL)
            diag_add(x->d, false,
                     "%s:%d: %s: item %zu looks like a reference with an "
                     "unknown scheme; it is taken as a literal secret "
                     "(forms: env:, file:, cred:)",
                     x->filename, line, label, i + 1);
        if (secret_set(&sec[i], items[i], line) < 0) {
            perr(x, line, "%s: out of memory", label);
            goto out;
        }
    }
    *out = sec;
    *nout = n;
    sec = NULL;
    rc = 0;
out:
    if (sec != NULL) {
        for (i = 0; i < n; i++)
            secret_release(&sec[i]);
        free(sec);
    }
    value_list_free(items, n);
    return rc;
}

static int
store_string(struct parse_ctx *x, const char *label, const char *v,
             char **field)
{
    char *dup = strdup(v);

    if (dup == NULL) {
        perr(x, x ? x->lineno : 0, "%s: out of memory", label);
        return -1;
    }
    free(*field);
    *field = dup;
    return 0;
}

/*
 * Parse v into the key's field of base.  x == NULL applies a default:
 * defaults are known good, so nothing is reported (the unit tests check
 * that every default parses).
 */
static int
key_store(struct parse_ctx *x, const struct key_def *k, void *base,
          const char *v, const char *label)
{
    char *f = (char *)base + k->off;
    size_t *nf = (size_t *)((char *)base + k->noff);
    char ebuf[ECHO_MAX + 8], b1[VALUE_FORMAT_MAX];
    const char *why = NULL;
    int line = x ? x->lineno : 0;
    int64_t i64;
    double dbl;
    int idx;

    switch (k->type) {
    case K_STR:
        if (k->lo >= 1 && *v == '\0') {
            perr(x, line, "%s: must not be empty", label);
            return -1;
        }
        return store_string(x, label, v, (char **)f);
    case K_URL: {
        size_t n = strlen(v);

        if (url_check(v, &why) < 0) {
            perr(x, line, "%s: bad URL \"%s\": %s", label,
                 echo(v, ebuf, sizeof(ebuf)), why);
            return -1;
        }
        if (store_string(x, label, v, (char **)f) < 0)
            return -1;
        /* "{api_base}/bot…" must not become "…//bot…" */
        while (n > 0 && (*(char **)f)[n - 1] == '/')
            (*(char **)f)[--n] = '\0';
        return 0;
    }
    case K_LISTEN: {
        struct config_bot *b = (struct config_bot *)f;
        char *host = NULL;
        int port = 0;

        if (*v != '\0' && listen_parse(v, &host, &port, &why) < 0) {
            perr(x, line, "%s: bad address \"%s\": %s", label,
                 echo(v, ebuf, sizeof(ebuf)), why);
            return -1;
        }
        if (store_string(x, label, v, &b->metrics_listen) < 0) {
            free(host);
            return -1;
        }
        free(b->metrics_host);
        b->metrics_host = host;
        b->metrics_port = port;
        return 0;
    }
    case K_BOOL:
        if (value_parse_bool(v, (bool *)f, &why) < 0) {
            perr(x, line, "%s: bad boolean \"%s\": %s", label,
                 echo(v, ebuf, sizeof(ebuf)), why);
            return -1;
        }
        return 0;
    case K_INT:
    case K_I64:
        if (value_parse_int(v, (int64_t)k->lo, (int64_t)k->hi, &i64, &why) <
            0) {
            perr(x, line, "%s: bad integer \"%s\": %s (%.0f to %.0f)", label,
                 echo(v, ebuf, sizeof(ebuf)), why, k->lo, k->hi);
            return -1;
        }
        if (k->type == K_INT)
            *(int *)f = (int)i64;
        else
            *(int64_t *)f = i64;
        return 0;
    case K_DOUBLE:
        if (value_parse_double(v, k->lo, k->hi, &dbl, &why) < 0) {
            perr(x, line, "%s: bad number \"%s\": %s (%g to %g)", label,
                 echo(v, ebuf, sizeof(ebuf)), why, k->lo, k->hi);
            return -1;
        }
        *(double *)f = dbl;
        return 0;
    case K_DURATION:
        if (value_parse_duration(v, &i64, &why) < 0) {
            perr(x, line, "%s: bad duration \"%s\": %s", label,
                 echo(v, ebuf, sizeof(ebuf)), why);
            return -1;
        }
        if (i64 < (int64_t)k->lo) {
            value_format_duration((int64_t)k->lo, b1, sizeof(b1));
            perr(x, line, "%s: bad duration \"%s\": must be at least %s", label,
                 echo(v, ebuf, sizeof(ebuf)), b1);
            return -1;
        }
        *(int64_t *)f = i64;
        return 0;
    case K_RATE:
        if (value_parse_rate(v, (struct rate *)f, &why) < 0) {
            perr(x, line, "%s: bad rate \"%s\": %s", label,
                 echo(v, ebuf, sizeof(ebuf)), why);
            return -1;
        }
        return 0;
    case K_LOGLEVEL: {
        char low[16];
        size_t i;

        for (i = 0; v[i] != '\0' && i + 1 < sizeof(low); i++)
            low[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
        low[i] = '\0';
        if (v[i] != '\0' || log_level_parse(low, (enum log_level *)f) < 0) {
            perr(x, line,
                 "%s: bad log level \"%s\": use debug, info, warn or error",
                 label, echo(v, ebuf, sizeof(ebuf)));
            return -1;
        }
        return 0;
    }
    case K_NOTICE:
        idx = name_index(notice_names, NNAMES(notice_names), v);
        if (idx < 0) {
            perr(x, line, "%s: bad value \"%s\": use once, always or off",
                 label, echo(v, ebuf, sizeof(ebuf)));
            return -1;
        }
        *(enum config_notice *)f = (enum config_notice)idx;
        return 0;
    case K_JITTER:
        idx = name_index(jitter_names, NNAMES(jitter_names), v);
        if (idx < 0) {
            perr(x, line, "%s: bad jitter \"%s\": use none, full or equal",
                 label, echo(v, ebuf, sizeof(ebuf)));
            return -1;
        }
        *(enum config_jitter *)f = (enum config_jitter)idx;
        return 0;
    case K_API:
        idx = name_index(api_names, NNAMES(api_names), v);
        if (idx < 0) {
            perr(x, line, "%s: bad api \"%s\": use openai or anthropic", label,
                 echo(v, ebuf, sizeof(ebuf)));
            return -1;
        }
        *(enum config_api *)f = (enum config_api)idx;
        return 0;
    case K_SECRET:
        if (*v == '\0') {
            /* "token =" unsets; an enabled platform then reports it */
            secret_release((struct secret *)f);
            return 0;
        }
        if (secret_check(v, &why) < 0) {
            /* no echo: the value may be the secret itself */
            perr(x, line, "%s: bad secret reference: %s", label, why);
            return -1;
        }
        if (secret_unknown_scheme(v) && x != NULL)
            diag_add(x->d, false,
                     "%s:%d: %s: looks like a reference with an unknown "
                     "scheme; it is taken as a literal secret (forms: env:, "
                     "file:, cred:)",
                     x->filename, line, label);
        if (secret_set((struct secret *)f, v, line) < 0) {
            perr(x, line, "%s: out of memory", label);
            return -1;
        }
        return 0;
    case K_SECRETS: {
        struct secret *sec = NULL;
        size_t n = 0;

        if (store_secrets(x, label, v, &sec, &n) < 0)
            return -1;
        key_release(k, base);
        *(struct secret **)f = sec;
        *nf = n;
        return 0;
    }
    case K_NAMES: {
        char **names = NULL;
        size_t n = 0;

        if (store_names(x, label, v, &names, &n) < 0)
            return -1;
        key_release(k, base);
        *(char ***)f = names;
        *nf = n;
        return 0;
    }
    case K_ADMINS: {
        struct config_admin *adm = NULL;
        size_t n = 0;

        if (store_admins(x, label, v, &adm, &n) < 0)
            return -1;
        key_release(k, base);
        *(struct config_admin **)f = adm;
        *nf = n;
        return 0;
    }
    }
    return -1;
}

/* -1 only on out of memory: the defaults themselves are tested. */
static int
section_defaults(const struct section_def *sd, void *base, const char *sname)
{
    char label[64];
    int rc = 0;

    for (size_t i = 0; i < sd->nkeys; i++) {
        if (sd->keys[i].def == NULL)
            continue;
        snprintf(label, sizeof(label), "%s.%s", sname, sd->keys[i].name);
        if (key_store(NULL, &sd->keys[i], base, sd->keys[i].def, label) < 0)
            rc = -1;
    }
    return rc;
}

static void
section_release(const struct section_def *sd, void *base)
{
    for (size_t i = 0; i < sd->nkeys; i++)
        key_release(&sd->keys[i], base);
}

static void
model_release(struct config_model *m)
{
    section_release(&sections[S_MODEL], m);
    free(m->name);
    m->name = NULL;
}

void
config_free(struct config *c)
{
    if (c == NULL)
        return;
    for (int s = 0; s < S_MODEL; s++)
        section_release(&sections[s], c);
    for (size_t i = 0; i < c->nmodels; i++)
        model_release(&c->models[i]);
    free(c->models);
    free(c->filename);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

static struct config *
config_new(const char *filename)
{
    struct config *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->filename = strdup(filename);
    if (c->filename == NULL) {
        free(c);
        return NULL;
    }
    for (int s = 0; s < S_MODEL; s++) {
        if (section_defaults(&sections[s], c, sections[s].name) < 0) {
            config_free(c);
            return NULL;
        }
    }
    return c;
}

const struct config_model *
config_model_find(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    }
    return NULL;
}

/* ---- the inih glue ---- */

/* Cut a comment: ';' at the start or after a blank, unless written "\;". */
static void
strip_comment(char *s)
{
    for (char *p = s; *p != '\0'; p++) {
        if (*p == ';' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

/* "\;" → ";" in place: the escape for a semicolon after a blank. */
static void
unescape(char *s)
{
    char *w = s;

    for (const char *r = s; *r != '\0'; r++) {
        if (r[0] == '\\' && r[1] == ';')
            r++;
        *w++ = *r;
    }
    *w = '\0';
}

static void
section_enter(struct parse_ctx *x, char *s)
{
    size_t n = strlen(s);
    char *name, ebuf[ECHO_MAX + 8];
    struct config *c = x->c;

    x->sect = S_BAD;
    if (s[n - 1] != ']') {
        perr(x, x->lineno, "bad section header: missing ']'");
        return;
    }
    s[n - 1] = '\0';
    name = value_trim(s + 1);
    if (strncmp(name, "model.", 6) == 0) {
        const char *mname = name + 6;
        struct config_model *grown;
        size_t i;

        if (!model_name_ok(mname)) {
            perr(x, x->lineno,
                 "bad model name in [%s]: use letters, digits, - and _ "
                 "(at most %d)",
                 echo(name, ebuf, sizeof(ebuf)), CONFIG_NAME_MAX);
            return;
        }
        /* a section may be reopened: keys still may not repeat */
        for (i = 0; i < c->nmodels; i++) {
            if (strcmp(c->models[i].name, mname) == 0)
                break;
        }
        if (i == c->nmodels) {
            if (c->nmodels == CONFIG_MODELS_MAX) {
                perr(x, x->lineno, "too many [model.NAME] sections (max %d)",
                     CONFIG_MODELS_MAX);
                return;
            }
            grown = realloc(c->models, (c->nmodels + 1) * sizeof(*grown));
            if (grown == NULL) {
                perr(x, x->lineno, "out of memory");
                return;
            }
            c->models = grown;
            memset(&c->models[i], 0, sizeof(c->models[i]));
            c->models[i].name = strdup(mname);
            if (c->models[i].name == NULL) {
                perr(x, x->lineno, "out of memory");
                return;
            }
            c->models[i].line = x->lineno;
            c->nmodels++;
            if (section_defaults(&sections[S_MODEL], &c->models[i], name) < 0) {
                perr(x, x->lineno, "out of memory");
                return;
            }
        }
        x->sect = S_MODEL;
        x->model = i;
        if (x->sect_line[S_MODEL] == 0)
            x->sect_line[S_MODEL] = x->lineno;
        return;
    }
    for (int i = 0; i < S_MODEL; i++) {
        if (strcmp(name, sections[i].name) == 0) {
            x->sect = i;
            if (x->sect_line[i] == 0)
                x->sect_line[i] = x->lineno;
            return;
        }
    }
    if (strcmp(name, "model") == 0)
        perr(x, x->lineno, "unknown section [model]: a model is [model.NAME]");
    else
        perr(x, x->lineno, "unknown section [%s]",
             echo(name, ebuf, sizeof(ebuf)));
}

/*
 * inih's line reader.  Doing the line handling here rather than in inih
 * keeps the rules ours, whatever options the system's libinih was built
 * with: exact line numbers (inih's handler gets none), one error per bad
 * line instead of only the first, lines up to CONFIG_LINE_MAX although
 * Debian's inih has a 200-byte buffer, no continuation lines (an indented
 * key is just a key), and ";" comments as documented.  inih then sees
 * only clean "[section]" and "key=value" lines.
 */
static char *
ctx_reader(char *str, int num, void *stream)
{
    struct parse_ctx *x = stream;
    const char *start, *nl;
    char *s, *eq, *name, *value;
    size_t n, nlen, vlen;

    if (x->pos >= x->len || num < ECHO_MAX + 3)
        return NULL;
    start = x->text + x->pos;
    nl = memchr(start, '\n', x->len - x->pos);
    n = nl ? (size_t)(nl - start) : x->len - x->pos;
    x->pos += n + (nl != NULL);
    x->lineno++;
    x->long_value = NULL;
    snprintf(str, (size_t)num, "\n"); /* what inih sees of a skipped line */

    if (n > CONFIG_LINE_MAX) {
        perr(x, x->lineno, "line too long (max %d bytes)", CONFIG_LINE_MAX);
        return str;
    }
    if (memchr(start, '\0', n) != NULL) {
        perr(x, x->lineno, "NUL byte in line");
        return str;
    }
    memcpy(x->line, start, n);
    x->line[n] = '\0';
    s = x->line;
    if (x->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 byte order mark */
    strip_comment(s);
    s = value_trim(s);
    if (*s == '\0' || *s == '#')
        return str;
    if (*s == '[') {
        section_enter(x, s);
        return str; /* the section is tracked here, not by inih */
    }
    eq = strchr(s, '=');
    if (eq == NULL) {
        perr(x, x->lineno, "expected \"key = value\" or \"[section]\"");
        return str;
    }
    *eq = '\0';
    name = value_trim(s);
    value = value_trim(eq + 1);
    if (*name == '\0') {
        perr(x, x->lineno, "missing key name before '='");
        return str;
    }
    if (strlen(name) > ECHO_MAX || strchr(name, ':') != NULL) {
        perr(x, x->lineno, "bad key name (letters, digits and _)");
        return str;
    }
    if (++x->nkeys > CONFIG_KEYS_MAX) {
        if (x->nkeys == CONFIG_KEYS_MAX + 1)
            perr(x, x->lineno, "too many keys (max %d)", CONFIG_KEYS_MAX);
        return str;
    }
    nlen = strlen(name);
    vlen = strlen(value);
    if (nlen + vlen + 3 > (size_t)num) {
        x->long_value = value;
        vlen = 0;
    }
    /* num >= ECHO_MAX + 3 (checked above) fits any accepted name */
    memcpy(str, name, nlen);
    str[nlen] = '=';
    memcpy(str + nlen + 1, value, vlen);
    memcpy(str + nlen + 1 + vlen, "\n", 2);
    return str;
}

static int
ctx_handler(void *user, const char *section, const char *name,
            const char *value)
{
    struct parse_ctx *x = user;
    const struct section_def *sd;
    const struct key_def *k = NULL;
    char label[96], sect[48], *v = NULL;
    void *base;
    int *seen;
    size_t i;

    (void)section;
    if (name == NULL || x->sect == S_BAD)
        return 1;
    if (x->long_value != NULL)
        value = x->long_value;
    if (x->sect == S_NONE) {
        perr(x, x->lineno, "key \"%s\" is outside of any section", name);
        return 1;
    }
    sd = &sections[x->sect];
    if (x->sect == S_MODEL) {
        snprintf(sect, sizeof(sect), "model.%s", x->c->models[x->model].name);
        base = &x->c->models[x->model];
        seen = x->model_seen[x->model];
    } else {
        snprintf(sect, sizeof(sect), "%s", sd->name);
        base = x->c;
        seen = x->seen[x->sect];
    }
    for (i = 0; i < sd->nkeys; i++) {
        if (strcmp(sd->keys[i].name, name) == 0) {
            k = &sd->keys[i];
            break;
        }
    }
    if (k == NULL) {
        perr(x, x->lineno, "unknown key \"%s\" in [%s]", name, sect);
        return 1;
    }
    if (seen[i] != 0) {
        perr(x, x->lineno,
             "duplicate key \"%s\" in [%s] (first set on line %d)", name, sect,
             seen[i]);
        return 1;
    }
    seen[i] = x->lineno;
    v = strdup(value);
    if (v == NULL) {
        perr(x, x->lineno, "out of memory");
        return 1;
    }
    unescape(v);
    snprintf(label, sizeof(label), "%s.%s", sect, name);
    key_store(x, k, base, v, label);
    sodium_memzero(v, strlen(v));
    free(v);
    return 1;
}

/* ---- whole-file rules ---- */

static int
key_index(enum sect s, const char *name)
{
    for (size_t i = 0; i < sections[s].nkeys; i++) {
        if (strcmp(sections[s].keys[i].name, name) == 0)
            return (int)i;
    }
    return 0; /* not reached: names below are in the tables */
}

static int
seen_line(const struct parse_ctx *x, enum sect s, const char *name)
{
    return x->seen[s][key_index(s, name)];
}

/* The line to blame for a platform: its enabled key, else its header. */
static int
platform_line(const struct parse_ctx *x, enum sect s)
{
    int line = seen_line(x, s, "enabled");

    return line ? line : x->sect_line[s];
}

static void
token_require(struct parse_ctx *x, enum sect s, const struct secret *tok,
              const char *key)
{
    if (tok->ref != NULL)
        return;
    perr(x, platform_line(x, s), "[%s] is enabled but %s.%s is not set",
         sections[s].name, sections[s].name, key);
}

/* [limits] rates the limiter would refuse at every call (every request
 * would be told 429): refused here, where the line is known. */
static void
limits_check(struct parse_ctx *x)
{
    static const struct {
        const char *key;
        size_t off;
        int bucket;
    } keys[] = {
        {"user", offsetof(struct config_limits, user), 0},
        {"chat", offsetof(struct config_limits, chat), 0},
        {"global", offsetof(struct config_limits, global), 0},
        {"user_tokens", offsetof(struct config_limits, user_tokens), 1},
        {"chat_tokens", offsetof(struct config_limits, chat_tokens), 1},
    };
    char why[96];

    for (size_t i = 0; i < NNAMES(keys); i++) {
        const struct rate *r =
            (const struct rate *)((const char *)&x->c->limits + keys[i].off);

        if (ratelimit_rate_check(*r, keys[i].bucket, why, sizeof(why)) < 0)
            perr(x, seen_line(x, S_LIMITS, keys[i].key), "limits.%s: %s",
                 keys[i].key, why);
    }
}

static void
validate(struct parse_ctx *x)
{
    static const char *const required[] = {"api", "base_url", "api_key",
                                           "name"};
    struct config *c = x->c;
    bool *enabled[] = {&c->telegram.enabled, &c->discord.enabled,
                       &c->slack.enabled};
    enum sect psect[] = {S_TELEGRAM, S_DISCORD, S_SLACK};
    int first_enabled = 0, models_line = seen_line(x, S_LLM, "models");
    char b1[VALUE_FORMAT_MAX], b2[VALUE_FORMAT_MAX];

    /* A platform section that is present is on unless it says otherwise. */
    for (int p = 0; p < 3; p++) {
        if (x->sect_line[psect[p]] != 0 &&
            seen_line(x, psect[p], "enabled") == 0)
            *enabled[p] = true;
        if (*enabled[p] && first_enabled == 0)
            first_enabled = platform_line(x, psect[p]);
    }
    if (c->telegram.enabled)
        token_require(x, S_TELEGRAM, &c->telegram.token, "token");
    if (c->discord.enabled)
        token_require(x, S_DISCORD, &c->discord.token, "token");
    if (c->slack.enabled) {
        token_require(x, S_SLACK, &c->slack.app_token, "app_token");
        token_require(x, S_SLACK, &c->slack.bot_token, "bot_token");
    }

    for (size_t i = 0; i < c->llm.nmodels; i++) {
        if (config_model_find(c, c->llm.models[i]) == NULL)
            perr(x, models_line,
                 "llm.models: model \"%s\" has no [model.%s] section",
                 c->llm.models[i], c->llm.models[i]);
    }
    if (c->llm.nmodels == 0 && first_enabled != 0)
        perr(x, models_line ? models_line : first_enabled,
             "llm.models is empty but a platform is enabled: name at least "
             "one [model.NAME] section");

    for (size_t m = 0; m < c->nmodels; m++) {
        for (size_t r = 0; r < NNAMES(required); r++) {
            int k = key_index(S_MODEL, required[r]);
            bool empty = strcmp(required[r], "api_key") == 0 &&
                         c->models[m].napi_keys == 0;

            if (x->model_seen[m][k] == 0 || empty)
                perr(x, c->models[m].line,
                     "[model.%s] is missing required key \"%s\"",
                     c->models[m].name, required[r]);
        }
    }

    limits_check(x);

    if (c->retry.min > c->retry.max) {
        int line = seen_line(x, S_RETRY, "max");

        value_format_duration(c->retry.min, b1, sizeof(b1));
        value_format_duration(c->retry.max, b2, sizeof(b2));
        perr(x, line ? line : seen_line(x, S_RETRY, "min"),
             "retry.min (%s) is greater than retry.max (%s)", b1, b2);
    }

    if (first_enabled == 0)
        diag_add(x->d, false,
                 "%s: no platform is enabled (telegram, discord and slack "
                 "are off): parleyd will only serve metrics",
                 x->filename);
}

/* The line of a "FILE:LINE: ..." message; INT_MAX for "FILE: ...". */
static int
diag_line(const char *msg, size_t flen)
{
    const char *p = msg + flen;
    long v;

    if (strlen(msg) <= flen || *p != ':' || p[1] < '0' || p[1] > '9')
        return INT_MAX;
    v = strtol(p + 1, NULL, 10);
    return v > 0 && v < INT_MAX ? (int)v : INT_MAX;
}

/* Errors in file order: whole-file rules report after the line pass.
 * Stable, so errors of one line keep the order they were found in. */
static void
diag_sort(struct config_diag *d, size_t from, const char *filename)
{
    size_t flen = strlen(filename);

    for (size_t i = from + 1; i < d->nerrors; i++) {
        char *m = d->errors[i];
        int line = diag_line(m, flen);
        size_t j = i;

        while (j > from && diag_line(d->errors[j - 1], flen) > line) {
            d->errors[j] = d->errors[j - 1];
            j--;
        }
        d->errors[j] = m;
    }
}

int
config_parse(const char *text, size_t len, const char *filename,
             struct config **out, struct config_diag *d)
{
    struct parse_ctx *x = NULL;
    struct config *c = NULL;
    size_t first_error = d->nerrors;
    int r, rc = -1;

    *out = NULL;
    if (filename == NULL)
        filename = "<config>";
    x = calloc(1, sizeof(*x));
    c = config_new(filename);
    if (x == NULL || c == NULL) {
        diag_add(d, true, "%s: out of memory", filename);
        goto out;
    }
    x->text = text;
    x->len = len;
    x->filename = filename;
    x->c = c;
    x->d = d;
    x->sect = S_NONE;
    r = ini_parse_stream(ctx_reader, x, ctx_handler, x);
    if (r < 0)
        perr(x, x->lineno, "out of memory");
    else if (r > 0 && x->nerrors == 0)
        perr(x, r, "syntax error"); /* inih disagreed with the reader */
    validate(x);
    diag_sort(d, first_error, filename);
    if (x->nerrors > 0)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (x != NULL) {
        sodium_memzero(x->line, sizeof(x->line));
        free(x);
    }
    config_free(c);
    return rc;
}

int
config_load(const char *path, struct config **out, struct config_diag *d)
{
    char *buf = NULL;
    size_t len = 0;
    int fd, rc = -1;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        diag_add(d, true, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    /* one byte over the cap tells "too large" from "exactly the cap" */
    buf = malloc(CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        diag_add(d, true, "%s: out of memory", path);
        goto out;
    }
    while (len < CONFIG_FILE_MAX + 1) {
        ssize_t r = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            diag_add(d, true, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > CONFIG_FILE_MAX) {
        diag_add(d, true, "%s: too large (the limit is 1 MiB)", path);
        goto out;
    }
    rc = config_parse(buf, len, path, out, d);
out:
    if (buf != NULL) {
        sodium_memzero(buf, len); /* literal secrets */
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int
secret_resolve_one(const struct config *c, struct secret *s, const char *label,
                   struct config_diag *d)
{
    char err[512];

    if (secret_resolve(s, err, sizeof(err)) == 0)
        return 0;
    if (s->line > 0)
        diag_add(d, true, "%s:%d: %s: %s", c->filename, s->line, label, err);
    else
        diag_add(d, true, "%s: %s: %s", c->filename, label, err);
    return -1;
}

int
config_resolve_secrets(struct config *c, struct config_diag *d)
{
    char label[64];
    int rc = 0;

    if (c->telegram.enabled &&
        secret_resolve_one(c, &c->telegram.token, "telegram.token", d) < 0)
        rc = -1;
    if (c->discord.enabled &&
        secret_resolve_one(c, &c->discord.token, "discord.token", d) < 0)
        rc = -1;
    if (c->slack.enabled) {
        if (secret_resolve_one(c, &c->slack.app_token, "slack.app_token", d) <
            0)
            rc = -1;
        if (secret_resolve_one(c, &c->slack.bot_token, "slack.bot_token", d) <
            0)
            rc = -1;
    }
    for (size_t i = 0; i < c->llm.nmodels; i++) {
        struct config_model *m = NULL;

        for (size_t j = 0; j < c->nmodels; j++) {
            if (strcmp(c->models[j].name, c->llm.models[i]) == 0)
                m = &c->models[j];
        }
        if (m == NULL)
            continue; /* config_parse rejects this */
        snprintf(label, sizeof(label), "model.%s.api_key", m->name);
        for (size_t k = 0; k < m->napi_keys; k++) {
            if (secret_resolve_one(c, &m->api_keys[k], label, d) < 0)
                rc = -1;
        }
    }
    return rc;
}

/* ---- printing ---- */

/* Strings go out with ';' escaped so that they read back unchanged. */
static void
print_escaped(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == ';')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void
print_double(FILE *f, double v)
{
    char buf[64];

    /* the shortest form that reads back as the same double */
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

static void
key_print(FILE *f, const struct key_def *k, const void *base)
{
    const char *p = (const char *)base + k->off;
    const size_t *n = (const size_t *)((const char *)base + k->noff);
    char buf[VALUE_FORMAT_MAX];

    fprintf(f, "%s = ", k->name);
    switch (k->type) {
    case K_STR:
    case K_URL:
        print_escaped(f, *(char *const *)p);
        break;
    case K_LISTEN:
        print_escaped(f, ((const struct config_bot *)p)->metrics_listen);
        break;
    case K_BOOL:
        fputs(*(const bool *)p ? "true" : "false", f);
        break;
    case K_INT:
        fprintf(f, "%d", *(const int *)p);
        break;
    case K_I64:
        fprintf(f, "%lld", (long long)*(const int64_t *)p);
        break;
    case K_DOUBLE:
        print_double(f, *(const double *)p);
        break;
    case K_DURATION:
        value_format_duration(*(const int64_t *)p, buf, sizeof(buf));
        fputs(buf, f);
        break;
    case K_RATE:
        value_format_rate((const struct rate *)p, buf, sizeof(buf));
        fputs(buf, f);
        break;
    case K_LOGLEVEL:
        fputs(log_level_name(*(const enum log_level *)p), f);
        break;
    case K_NOTICE:
        fputs(config_notice_name(*(const enum config_notice *)p), f);
        break;
    case K_JITTER:
        fputs(config_jitter_name(*(const enum config_jitter *)p), f);
        break;
    case K_API:
        fputs(config_api_name(*(const enum config_api *)p), f);
        break;
    case K_SECRET:
        print_escaped(f, secret_display((const struct secret *)p));
        break;
    case K_SECRETS:
        for (size_t i = 0; i < *n; i++) {
            fputs(i ? ", " : "", f);
            print_escaped(f, secret_display(&(*(struct secret *const *)p)[i]));
        }
        break;
    case K_NAMES:
        for (size_t i = 0; i < *n; i++)
            fprintf(f, "%s%s", i ? ", " : "", (*(char **const *)p)[i]);
        break;
    case K_ADMINS:
        for (size_t i = 0; i < *n; i++) {
            const struct config_admin *a =
                &(*(struct config_admin *const *)p)[i];

            fprintf(f, "%s%s:", i ? ", " : "",
                    config_platform_name(a->platform));
            print_escaped(f, a->user);
        }
        break;
    }
    fputc('\n', f);
}

static void
section_print(FILE *f, const char *name, const struct section_def *sd,
              const void *base)
{
    fprintf(f, "[%s]\n", name);
    for (size_t i = 0; i < sd->nkeys; i++)
        key_print(f, &sd->keys[i], base);
}

void
config_print(const struct config *c, FILE *f)
{
    char name[48];

    for (int s = 0; s < S_MODEL; s++) {
        if (s > 0)
            fputc('\n', f);
        section_print(f, sections[s].name, &sections[s], c);
        if (s != S_RETRY)
            continue;
        /* models after [retry], where the spec shows them */
        for (size_t m = 0; m < c->nmodels; m++) {
            snprintf(name, sizeof(name), "model.%s", c->models[m].name);
            fputc('\n', f);
            section_print(f, name, &sections[S_MODEL], &c->models[m]);
        }
    }
}
