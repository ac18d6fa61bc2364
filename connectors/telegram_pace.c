/* telegram_pace: when the next Telegram message may go (pure). */
#include "connectors/telegram_pace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ratelimit.h"

struct telegram_pace {
    struct ratelimit *rl;
    struct rate chat, group, global;
};

struct telegram_pace *
telegram_pace_new(size_t max_chats)
{
    struct telegram_pace *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    /* a chat key and a group key per chat, plus the global one */
    p->rl = ratelimit_new(2 * max_chats + 1);
    if (p->rl == NULL) {
        free(p);
        return NULL;
    }
    p->chat = (struct rate){1, 1000};
    p->group = (struct rate){20, 60000};
    p->global = (struct rate){30, 1000};
    return p;
}

void
telegram_pace_free(struct telegram_pace *p)
{
    if (p == NULL)
        return;
    ratelimit_free(p->rl);
    free(p);
}

void
telegram_pace_set_rates(struct telegram_pace *p, struct rate chat,
                        struct rate group, struct rate global)
{
    p->chat = chat;
    p->group = group;
    p->global = global;
}

int64_t
telegram_pace_take(struct telegram_pace *p, int64_t chat, int is_group,
                   int64_t now_ms)
{
    char kc[32], kg[32];
    const char *keys[3];
    struct rate rates[3];
    struct ratelimit_usage u;
    int64_t wait = 0;
    int n = 0;

    snprintf(kc, sizeof(kc), "c:%" PRId64, chat);
    snprintf(kg, sizeof(kg), "g:%" PRId64, chat);
    keys[n] = kc;
    rates[n++] = p->chat;
    if (is_group) {
        keys[n] = kg;
        rates[n++] = p->group;
    }
    keys[n] = "*";
    rates[n++] = p->global;
    /* peek all first, so a refusal records nothing anywhere */
    for (int i = 0; i < n; i++) {
        if (rates[i].n == 0)
            continue;
        if (ratelimit_peek(p->rl, keys[i], rates[i], now_ms, &u) < 0)
            return -1;
        if (u.wait_ms > wait)
            wait = u.wait_ms;
    }
    if (wait > 0)
        return wait;
    for (int i = 0; i < n; i++)
        if (ratelimit_hit(p->rl, keys[i], rates[i], now_ms, &wait) !=
            RATELIMIT_ADMITTED)
            return wait > 0 ? wait : -1;
    return 0;
}

void
telegram_pace_evict(struct telegram_pace *p, int64_t now_ms)
{
    ratelimit_evict(p->rl, now_ms, 1024);
}

int64_t
telegram_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, uint32_t rnd)
{
    int64_t w = base_ms;

    for (int i = 1; i < n && w < cap_ms; i++)
        w *= 2;
    if (w > cap_ms)
        w = cap_ms;
    return w / 2 + (int64_t)(rnd % (uint32_t)(w / 2 + 1));
}
