/* commands: the chat commands as one constant table shared by every
 * platform, and a pure parser: name + arguments + platform + reply target
 * -> a parsed command or a usage error (docs/commands.md). */
#ifndef PARLEY_COMMANDS_H
#define PARLEY_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "config/value.h" /* struct rate */

#define COMMANDS_ID_MAX 64    /* a WHO id, as EVENT_ID_MAX */
#define COMMANDS_ARG_MAX 2000 /* bytes of a persona (NAME is far shorter) */
#define COMMANDS_NAME_MAX 32  /* a model NAME, as CONFIG_NAME_MAX */
#define COMMANDS_ERR_MAX 256  /* usage and refusal texts fit */
#define COMMANDS_HELP_MAX 2048

/* Who may run an entry. */
enum commands_access {
    COMMANDS_EVERYONE = 0,
    COMMANDS_CHAT_ADMIN, /* the chat's administrators, for this chat only
                            (and the bot's admins) */
    COMMANDS_ADMIN,      /* [bot] admins only */
};

/* Who the caller is (core decides: [bot] admins, EVENT_ADMIN, private). */
enum commands_role {
    COMMANDS_ROLE_USER = 0,
    COMMANDS_ROLE_CHAT_ADMIN,
    COMMANDS_ROLE_ADMIN,
};

/* The argument shapes of the table. */
enum commands_args {
    COMMANDS_ARGS_NONE = 0,     /* extra words are ignored */
    COMMANDS_ARGS_WHO_RATE,     /* WHO RATE|default (WHO may be a reply) */
    COMMANDS_ARGS_RATE,         /* RATE|default */
    COMMANDS_ARGS_WHO_DURATION, /* WHO [DURATION] */
    COMMANDS_ARGS_WHO,          /* WHO */
    COMMANDS_ARGS_NAME,         /* NAME|default */
    COMMANDS_ARGS_TEXT,         /* TEXT|default: the rest of the line */
};

enum commands_who_kind {
    COMMANDS_WHO_NONE = 0,
    COMMANDS_WHO_ID,       /* id: a platform user id */
    COMMANDS_WHO_REPLY,    /* id: the message replied to; WHO is its author */
    COMMANDS_WHO_USERNAME, /* id: a Telegram @username without the '@';
                              the Bot API cannot turn it into an id */
};

struct commands_who {
    enum commands_who_kind kind;
    char id[COMMANDS_ID_MAX + 1];
};

struct core;
struct commands_call;

/* A handler: the reply text (heap, the caller frees), NULL on failure. */
typedef char *(*commands_fn)(struct core *c, const struct commands_call *call);

/* One row of the table (tmux's cmd_entry). */
struct commands_entry {
    const char *name;  /* "limit" */
    const char *sub;   /* "user" / "chat" for limit and budget, else NULL */
    const char *usage; /* "limit user WHO RATE|default" */
    const char *help;  /* one line for `help` */
    enum commands_access access;
    enum commands_args args;
    commands_fn handler;
};

struct commands_parsed {
    const struct commands_entry *entry;
    struct commands_who who;
    int is_default;                 /* RATE, NAME or TEXT was "default" */
    struct rate rate;               /* RATE ("off" = n 0) */
    int64_t duration_ms;            /* ban: 0 = until unban */
    char arg[COMMANDS_ARG_MAX + 1]; /* NAME or TEXT */
};

/* What a handler gets (strings borrowed for the call). */
struct commands_call {
    const struct commands_parsed *p;
    const char *platform, *chat, *thread, *user, *reply_to;
    const char *reply_to_user; /* reply_to's author if the platform said */
    enum commands_role role;
    int private_chat;
    int64_t job_id;
};

enum commands_status {
    COMMANDS_OK = 0,
    COMMANDS_UNKNOWN, /* no such command: err says so and points at help */
    COMMANDS_USAGE,   /* wrong arguments: err is "usage: ..." */
};

/* The table, in help order. */
const struct commands_entry *commands_table(size_t *n);

/*
 * Pure.  name: the bare lower-case command ("limit"); args: its arguments
 * (may be NULL); platform: "telegram", "discord", "slack" (decides the WHO
 * forms); reply_to: the message the command replied to ("" or NULL =
 * none), which stands for WHO when WHO is left out.  On COMMANDS_OK *out
 * is filled; otherwise err holds one line for the user.
 */
enum commands_status commands_parse(const char *name, const char *args,
                                    const char *platform, const char *reply_to,
                                    struct commands_parsed *out, char *err,
                                    size_t errlen);

/*
 * One WHO word in the platform's forms: Telegram 123 or @name; Discord
 * 123, <@123> or <@!123>; Slack U123, <@U123> or <@U123|name>.  0 and
 * *who set, or -1.
 */
int commands_parse_who(const char *platform, const char *word,
                       struct commands_who *who);

/* 1 if role may run e (a chat administrator: in their own chat). */
int commands_allowed(const struct commands_entry *e, enum commands_role role);
/* The refusal for a caller that may not run e. */
void commands_refusal(const struct commands_entry *e, char *buf, size_t len);
/* `help` for role: only what role may use.  Length, or -1. */
int commands_help(enum commands_role role, char *buf, size_t len);

/*
 * 1 if r admits no more than cap in any interval (no larger burst, no
 * higher long-run rate); cap off admits anything, r off exceeds any cap.
 * A chat administrator may only tighten their chat's limits.
 */
int commands_rate_within(struct rate r, struct rate cap);

/* `stats` as text (shared with parleyctl).  Length, or -1. */
struct store_stats;
int commands_stats_text(const struct store_stats *s, char *buf, size_t len);

/* "0.012345" USD from micro-USD. */
void commands_usd(int64_t micro_usd, char *buf, size_t len);

/* ---- the handlers: in core/core.c (they touch storage and admission) ---- */

char *core_cmd_help(struct core *c, const struct commands_call *call);
char *core_cmd_reset(struct core *c, const struct commands_call *call);
char *core_cmd_usage(struct core *c, const struct commands_call *call);
char *core_cmd_limits(struct core *c, const struct commands_call *call);
char *core_cmd_forget(struct core *c, const struct commands_call *call);
char *core_cmd_override(struct core *c, const struct commands_call *call);
char *core_cmd_ban(struct core *c, const struct commands_call *call);
char *core_cmd_unban(struct core *c, const struct commands_call *call);
char *core_cmd_stats(struct core *c, const struct commands_call *call);
char *core_cmd_model(struct core *c, const struct commands_call *call);
char *core_cmd_persona(struct core *c, const struct commands_call *call);

#endif
