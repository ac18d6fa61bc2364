/* admit: who may ask the model now — bans, admins, request windows and
 * token budgets per user, chat and globally, on core/ratelimit (pure). */
#include "core/admit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BUF (RATELIMIT_KEY_MAX + 1)

struct admit {
    struct ratelimit *rl;
};

static const char *const scope_names[] = {
    [ADMIT_OK] = "ok",
    [ADMIT_BANNED] = "banned",
    [ADMIT_USER] = "user",
    [ADMIT_CHAT] = "chat",
    [ADMIT_GLOBAL] = "global",
    [ADMIT_USER_TOKENS] = "user_tokens",
    [ADMIT_CHAT_TOKENS] = "chat_tokens",
    [ADMIT_FULL] = "full",
};

const char *
admit_scope_name(enum admit_scope s)
{
    if ((unsigned)s >= sizeof(scope_names) / sizeof(scope_names[0]))
        return "?";
    return scope_names[s];
}

struct admit *
admit_new(size_t max_keys)
{
    struct admit *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    if ((a->rl = ratelimit_new(max_keys)) == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void
admit_free(struct admit *a)
{
    if (a == NULL)
        return;
    ratelimit_free(a->rl);
    free(a);
}

struct ratelimit *
admit_limiter(struct admit *a)
{
    return a->rl;
}

int
admit_key(char *buf, size_t len, char kind, const struct admit_request *rq)
{
    int n;

    switch (kind) {
    case 'u':
        n = snprintf(buf, len, "u:%s:%s", rq->platform, rq->user);
        break;
    case 'c':
        n = snprintf(buf, len, "c:%s:%s", rq->platform, rq->chat);
        break;
    case 'g':
        n = snprintf(buf, len, "g");
        break;
    case 'n':
        n = snprintf(buf, len, "n:%s:%s:%s", rq->platform, rq->chat, rq->user);
        break;
    default:
        return -1;
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The limits in admission order (SPEC §4, docs/core.md). */
static const struct {
    enum admit_scope scope;
    char kind;
    int bucket;
} order[] = {
    {ADMIT_USER, 'u', 0},        {ADMIT_CHAT, 'c', 0},
    {ADMIT_GLOBAL, 'g', 0},      {ADMIT_USER_TOKENS, 'u', 1},
    {ADMIT_CHAT_TOKENS, 'c', 1},
};
#define ORDER_N (sizeof(order) / sizeof(order[0]))

static struct rate
rate_of(const struct admit_limits *l, enum admit_scope s)
{
    switch (s) {
    case ADMIT_USER:
        return l->user;
    case ADMIT_CHAT:
        return l->chat;
    case ADMIT_GLOBAL:
        return l->global;
    case ADMIT_USER_TOKENS:
        return l->user_tokens;
    case ADMIT_CHAT_TOKENS:
        return l->chat_tokens;
    default: {
        struct rate off = {0, 0};
        return off;
    }
    }
}

static void
result_set(struct admit_result *res, enum admit_scope scope, struct rate r,
           int64_t used, int64_t wait)
{
    memset(res, 0, sizeof(*res));
    res->scope = scope;
    res->rate = r;
    res->used = used;
    res->wait_ms = wait;
}

/*
 * Peeks the limits order[from..to) and keeps the refusal with the longest
 * wait: a request is admitted only when every limit admits it, so that
 * is the true wait.  Returns 1 if all admit.
 */
static int
admit_scan(struct admit *a, const struct admit_request *rq, size_t from,
           size_t to, int64_t estimate, int64_t now, struct admit_result *res)
{
    char key[KEY_BUF];
    int ok = 1;

    for (size_t i = from; i < to; i++) {
        struct rate r = rate_of(&rq->lim, order[i].scope);
        struct ratelimit_usage u;
        int rc;

        if (r.n == 0)
            continue;
        if (admit_key(key, sizeof(key), order[i].kind, rq) < 0)
            rc = -1;
        else if (order[i].bucket)
            rc = ratelimit_peek_budget(a->rl, key, r, estimate, now, &u);
        else
            rc = ratelimit_peek(a->rl, key, r, now, &u);
        if (rc < 0) {
            /* a bad rate or key: refuse safely, and say so */
            result_set(res, ADMIT_FULL, r, 0, 1000);
            return 0;
        }
        if (u.wait_ms > 0 && (ok || u.wait_ms > res->wait_ms)) {
            result_set(res, order[i].scope, r, u.used, u.wait_ms);
            ok = 0;
        }
    }
    return ok;
}

int
admit_check(struct admit *a, const struct admit_request *rq, int64_t now_ms,
            struct admit_result *res)
{
    struct rate off = {0, 0};

    result_set(res, ADMIT_OK, off, 0, 0);
    if (rq->banned) {
        res->scope = ADMIT_BANNED;
        return 0;
    }
    if (rq->admin)
        return 1;
    return admit_scan(a, rq, 0, 3, 0, now_ms, res);
}

int
admit_take(struct admit *a, const struct admit_request *rq, int64_t estimate,
           int64_t now_ms, struct admit_result *res)
{
    char key[KEY_BUF];
    int64_t wait;

    if (!admit_check(a, rq, now_ms, res))
        return 0;
    if (rq->admin)
        return 1;
    if (!admit_scan(a, rq, 3, ORDER_N, estimate, now_ms, res))
        return 0;
    /* everything admits: record it everywhere */
    for (size_t i = 0; i < ORDER_N; i++) {
        struct rate r = rate_of(&rq->lim, order[i].scope);
        int rc;

        if (r.n == 0)
            continue;
        admit_key(key, sizeof(key), order[i].kind, rq);
        if (order[i].bucket)
            rc = ratelimit_reserve(a->rl, key, r, estimate, now_ms, &wait);
        else
            rc = ratelimit_hit(a->rl, key, r, now_ms, &wait);
        /*
         * Only the key table being full can refuse after a clean peek
         * (a new key's first record).  Admitting anyway keeps the
         * windows consistent with what the peek said; the table's cap is
         * the memory bound, and ratelimit counts these in stats().full.
         */
        (void)rc;
    }
    return 1;
}

void
admit_settle(struct admit *a, const struct admit_request *rq, int64_t reserved,
             int64_t actual, int64_t now_ms)
{
    char key[KEY_BUF];

    if (rq->admin)
        return;
    for (size_t i = 3; i < ORDER_N; i++) {
        struct rate r = rate_of(&rq->lim, order[i].scope);

        if (r.n == 0 || admit_key(key, sizeof(key), order[i].kind, rq) < 0)
            continue;
        ratelimit_settle(a->rl, key, r, reserved, actual, now_ms);
    }
}

int
admit_notice(struct admit *a, const struct admit_request *rq,
             enum config_notice mode, struct admit_result *res, int64_t now_ms)
{
    char key[KEY_BUF];
    struct rate once;

    res->notice = 0;
    if (res->scope == ADMIT_OK || res->scope == ADMIT_BANNED)
        return 0;
    if (mode == CONFIG_NOTICE_OFF)
        return 0;
    if (mode == CONFIG_NOTICE_ALWAYS) {
        res->notice = 1;
        return 1;
    }
    once.n = 1;
    once.window_ms = res->rate.window_ms > 0 ? res->rate.window_ms : 1000;
    if (admit_key(key, sizeof(key), 'n', rq) < 0)
        return 0;
    res->notice =
        ratelimit_hit(a->rl, key, once, now_ms, NULL) == RATELIMIT_ADMITTED;
    return res->notice;
}

int
admit_peek(const struct admit *a, const struct admit_request *rq,
           enum admit_scope scope, int64_t now_ms, struct ratelimit_usage *u)
{
    char key[KEY_BUF];

    for (size_t i = 0; i < ORDER_N; i++) {
        struct rate r;

        if (order[i].scope != scope)
            continue;
        r = rate_of(&rq->lim, scope);
        if (admit_key(key, sizeof(key), order[i].kind, rq) < 0)
            return -1;
        if (order[i].bucket)
            return ratelimit_peek_budget(a->rl, key, r, 0, now_ms, u);
        return ratelimit_peek(a->rl, key, r, now_ms, u);
    }
    return -1;
}
