/* config: parley.conf (INI) to struct config; validation, secrets, print. */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/secret.h"
#include "config/value.h"
#include "core/log.h"

#define CONFIG_DEFAULT_PATH "/etc/parley/parley.conf"

/* Hard caps: a config over any of them is an error, never a truncation. */
#define CONFIG_FILE_MAX (1024 * 1024) /* bytes, config_load */
#define CONFIG_LINE_MAX 4096          /* bytes per line */
#define CONFIG_KEYS_MAX 1024          /* key = value lines per file */
#define CONFIG_LIST_MAX 64            /* items in one comma separated list */
#define CONFIG_MODELS_MAX 16          /* [model.NAME] sections */
#define CONFIG_NAME_MAX 32            /* chars in a model NAME */
#define CONFIG_ADMIN_ID_MAX 64        /* chars in an admin user id */
#define CONFIG_DIAG_MAX 100           /* errors kept; then "too many errors" */

/*
 * Errors and warnings, each "FILE:LINE: message" (or "FILE: message" when
 * no line applies).  Zero-initialise, pass to the config_* calls (they
 * append), read the fields, then config_diag_release().
 */
struct config_diag {
    char **errors;
    size_t nerrors;
    char **warnings;
    size_t nwarnings;
};

enum config_platform {
    CONFIG_PLATFORM_TELEGRAM = 0,
    CONFIG_PLATFORM_DISCORD,
    CONFIG_PLATFORM_SLACK,
};

enum config_api {
    CONFIG_API_OPENAI = 0, /* chat completions */
    CONFIG_API_ANTHROPIC,  /* messages */
};

enum config_jitter {
    CONFIG_JITTER_NONE = 0,
    CONFIG_JITTER_FULL,  /* uniform 0..wait */
    CONFIG_JITTER_EQUAL, /* wait/2 + uniform 0..wait/2 */
};

enum config_notice {
    CONFIG_NOTICE_ONCE = 0, /* one 429 notice per user+chat per window */
    CONFIG_NOTICE_ALWAYS,   /* a notice for every limited message */
    CONFIG_NOTICE_OFF,      /* limited messages get no reply */
};

struct config_admin {
    enum config_platform platform;
    char *user; /* platform user id, as the platform spells it */
};

/* Durations are int64_t milliseconds throughout. */
struct config_bot {
    char *state_dir;
    struct config_admin *admins;
    size_t nadmins;
    enum log_level log_level;
    char *metrics_listen; /* "HOST:PORT", "" = off */
    char *metrics_host;   /* parsed from metrics_listen: "::1" without [] */
    int metrics_port;     /* 0 when off */
};

struct config_telegram {
    bool enabled;
    struct secret token;
    char *api_base; /* no trailing '/' */
    int64_t poll_timeout;
    struct rate chat_send_rate;
    struct rate group_send_rate;
    struct rate global_send_rate;
};

struct config_discord {
    bool enabled;
    struct secret token;
    char *api_base;
};

struct config_slack {
    bool enabled;
    struct secret app_token; /* xapp-… */
    struct secret bot_token; /* xoxb-… */
    char *api_base;
    struct rate channel_send_rate;
};

struct config_limits {
    struct rate user;
    struct rate chat;
    struct rate global;
    struct rate user_tokens;
    struct rate chat_tokens;
    enum config_notice notice;
};

struct config_llm {
    char **models; /* fallback order; each has a config_model */
    size_t nmodels;
    char *system_prompt;
    int history_messages;
    int64_t history_tokens;
    int64_t max_output_tokens;
    int64_t timeout;       /* one HTTP attempt */
    int64_t give_up_after; /* a request keeps retrying this long */
    bool stream;
    int64_t stream_interval;
};

struct config_retry {
    int attempts;
    int64_t multiplier;
    int64_t min;
    int64_t max;
    enum config_jitter jitter;
};

/* One [model.NAME] section. */
struct config_model {
    char *name; /* NAME of [model.NAME] */
    enum config_api api;
    char *base_url; /* no trailing '/' */
    struct secret *api_keys;
    size_t napi_keys;
    char *model; /* the provider's model name: the `name` key */
    int64_t context_window;
    int64_t rpm;
    int64_t tpm;
    double price_in; /* USD per 1M tokens */
    double price_out;
    int line; /* of the section header */
};

struct config_history {
    int64_t retention; /* 0 = keep forever */
};

struct config_feedback {
    double alert_ratio; /* 0 = never alert */
    int alert_window;
};

struct config {
    char *filename; /* for diagnostics after parsing */
    struct config_bot bot;
    struct config_telegram telegram;
    struct config_discord discord;
    struct config_slack slack;
    struct config_limits limits;
    struct config_llm llm;
    struct config_retry retry;
    struct config_model *models; /* every [model.NAME], in file order */
    size_t nmodels;
    struct config_history history;
    struct config_feedback feedback;
};

void config_diag_release(struct config_diag *d);

/*
 * Pure: parse and validate text (need not be NUL-terminated; filename is
 * only used in messages).  On success *out is a new config and 0 is
 * returned; on any error -1, *out is NULL and d->errors lists every error
 * found.  Warnings may be added either way.  Secrets are not resolved.
 */
int config_parse(const char *text, size_t len, const char *filename,
                 struct config **out, struct config_diag *d);
/* Read path (at most CONFIG_FILE_MAX bytes) and config_parse() it. */
int config_load(const char *path, struct config **out, struct config_diag *d);
/*
 * I/O: resolve the secrets of enabled platforms and of the models named in
 * [llm] models.  -1 with one error per secret that failed ("FILE:LINE:
 * telegram.token: env:NAME is not set"), never showing a value.
 */
int config_resolve_secrets(struct config *c, struct config_diag *d);
/* Zeroes every secret before freeing.  NULL-safe. */
void config_free(struct config *c);
/* The effective configuration as INI that config_parse() reads back; every
 * key with its value, secrets only as secret_display() shows them. */
void config_print(const struct config *c, FILE *f);

/* The [model.NAME] section called name, or NULL. */
const struct config_model *config_model_find(const struct config *c,
                                             const char *name);
const char *config_platform_name(enum config_platform p);
const char *config_api_name(enum config_api a);
const char *config_jitter_name(enum config_jitter j);
const char *config_notice_name(enum config_notice n);

#endif
