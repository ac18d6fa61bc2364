/* admit: who may ask the model now — bans, admins, request windows and
 * token budgets per user, chat and globally, on core/ratelimit (pure). */
#ifndef PARLEY_ADMIT_H
#define PARLEY_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h" /* enum config_notice, struct rate */
#include "core/ratelimit.h"

/* Which limit refused (the notice names it, docs/core.md). */
enum admit_scope {
    ADMIT_OK = 0,
    ADMIT_BANNED,      /* no reply at all */
    ADMIT_USER,        /* [limits] user: per user, per platform */
    ADMIT_CHAT,        /* [limits] chat */
    ADMIT_GLOBAL,      /* [limits] global */
    ADMIT_USER_TOKENS, /* [limits] user_tokens */
    ADMIT_CHAT_TOKENS, /* [limits] chat_tokens */
    ADMIT_FULL,        /* the limiter's key table is full: refuse-safe */
};

/* The effective limits of one request (config, then overrides). */
struct admit_limits {
    struct rate user, chat, global, user_tokens, chat_tokens;
};

struct admit_request {
    const char *platform, *chat, *user; /* ids, as in struct event */
    int admin;                          /* [bot] admins: never limited */
    int banned;                         /* the caller checked bans */
    struct admit_limits lim;
};

struct admit_result {
    enum admit_scope scope;
    struct rate rate; /* the limit that refused */
    int64_t used;     /* of rate.n: requests in the window / tokens spent */
    int64_t wait_ms;  /* exact: a request at now + wait_ms is admitted */
    int notice;       /* admit_notice(): 1 = tell the user, 0 = stay quiet */
};

struct admit;

/* max_keys bounds the limiter's tracked keys (ratelimit_new). */
struct admit *admit_new(size_t max_keys);
void admit_free(struct admit *a);
/* The limiter underneath, for persistence and eviction (core.c). */
struct ratelimit *admit_limiter(struct admit *a);

/*
 * Step 1, before the prompt is built: bans, admin exemption, and the
 * request windows (user, chat, global).  Records nothing.  Returns 1 if
 * the request may go on to admit_take(), 0 if refused (*res says by
 * what).  When several windows refuse, res names the one with the longest
 * wait: that is when the request would be admitted.
 */
int admit_check(struct admit *a, const struct admit_request *rq, int64_t now_ms,
                struct admit_result *res);

/*
 * Step 2, with the estimate (prompt tokens + max_output_tokens): checks
 * the budgets, and only if everything admits, records the request in
 * every window and reserves the estimate in every budget — a refused
 * request is recorded nowhere, so the windows stay exact.  Returns 1
 * admitted, 0 refused (*res filled as for admit_check).  Admins: 1 at
 * once, nothing recorded or reserved.
 */
int admit_take(struct admit *a, const struct admit_request *rq,
               int64_t estimate, int64_t now_ms, struct admit_result *res);

/* After the answer: the reported usage replaces the estimate in the
 * budgets (refund or charge).  Admins: nothing. */
void admit_settle(struct admit *a, const struct admit_request *rq,
                  int64_t reserved, int64_t actual, int64_t now_ms);

/*
 * For a refused request: should the user get a 429 notice?  NOTICE_ONCE:
 * at most one per (user, chat) per window W of the limit that refused
 * (a window 1/W on the key "n:platform:chat:user", persisted with the
 * limiter).  ALWAYS: yes.  OFF, or banned: no.  Sets res->notice too.
 */
int admit_notice(struct admit *a, const struct admit_request *rq,
                 enum config_notice mode, struct admit_result *res,
                 int64_t now_ms);

/* Peek at one scope's state without recording (usage/limits commands). */
int admit_peek(const struct admit *a, const struct admit_request *rq,
               enum admit_scope scope, int64_t now_ms,
               struct ratelimit_usage *u);

/* "user", "chat", "global", "user_tokens", ... for logs. */
const char *admit_scope_name(enum admit_scope s);

/* Limiter keys by kind: 'u' "u:PLATFORM:USER", 'c' "c:PLATFORM:CHAT",
 * 'g' "g", 'n' "n:PLATFORM:CHAT:USER".  -1 if it does not fit in len. */
int admit_key(char *buf, size_t len, char kind, const struct admit_request *rq);

#endif
