/* router: is an event addressed to us, and what becomes of it (pure). */
#include "core/router.h"

#include <stdlib.h>
#include <string.h>

static const char *const reason_names[] = {
    [ROUTER_R_OK] = "ok",
    [ROUTER_R_INVALID] = "invalid",
    [ROUTER_R_FROM_SELF] = "from_self",
    [ROUTER_R_FROM_BOT] = "from_bot",
    [ROUTER_R_NOT_ADDRESSED] = "not_addressed",
    [ROUTER_R_EMPTY] = "empty",
    [ROUTER_R_DUPLICATE] = "duplicate",
};

const char *
router_reason_name(enum router_reason r)
{
    if ((unsigned)r >= sizeof(reason_names) / sizeof(reason_names[0]))
        return "?";
    return reason_names[r];
}

/* Only blanks: a bare "@bot" after the connector removed the mention. */
static int
text_blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

enum router_verdict
router_classify(const struct event *ev, enum router_reason *why)
{
    enum router_verdict v = ROUTER_IGNORE;
    enum router_reason r = ROUTER_R_OK;
    const char *bad;

    if (event_check(ev, &bad) < 0) {
        r = ROUTER_R_INVALID;
        goto out;
    }
    /* self first: our own messages also carry the from-bot flag */
    if (ev->flags & EVENT_FROM_SELF) {
        r = ROUTER_R_FROM_SELF;
        goto out;
    }
    if (ev->flags & EVENT_FROM_BOT) {
        r = ROUTER_R_FROM_BOT;
        goto out;
    }
    if (ev->kind == EVENT_VOTE) {
        v = ROUTER_VOTE;
        goto out;
    }
    /*
     * The connector sets EVENT_COMMAND only for a command addressed to us
     * (it knows "/cmd@otherbot" is not), so in a group it needs no mention.
     */
    if (ev->flags & EVENT_COMMAND) {
        v = ROUTER_COMMAND;
        goto out;
    }
    if (!(ev->flags & (EVENT_PRIVATE | EVENT_MENTIONED | EVENT_REPLY_TO_BOT))) {
        r = ROUTER_R_NOT_ADDRESSED;
        goto out;
    }
    if (text_blank(ev->text)) {
        r = ROUTER_R_EMPTY;
        goto out;
    }
    v = ROUTER_ANSWER;
out:
    if (why != NULL)
        *why = r;
    return v;
}

/* FNV-1a over the three fields with separators, then a 64-bit mix. */
uint64_t
router_hash(const char *platform, const char *chat, const char *message_id)
{
    const char *parts[3] = {platform, chat, message_id};
    uint64_t h = 1469598103934665603ULL;

    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p;
             p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* a byte no id contains: "ab"+"c" differs from "a"+"bc" */
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h == 0 ? 1 : h; /* 0 marks an empty slot */
}

/*
 * ring[] holds the last max hashes in arrival order; idx[] (a power of two
 * at least 2 * max) maps a hash to its ring position + 1, linear probing,
 * entries removed with backward shift when the ring overwrites them.
 */
struct router {
    uint64_t *ring;
    uint32_t *idx;
    size_t max, head, count, mask;
};

struct router *
router_new(size_t max)
{
    struct router *r;
    size_t slots = 16;

    if (max == 0 || max > (1u << 26))
        return NULL;
    while (slots < 2 * max)
        slots <<= 1;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->ring = calloc(max, sizeof(*r->ring));
    r->idx = calloc(slots, sizeof(*r->idx));
    if (r->ring == NULL || r->idx == NULL) {
        router_free(r);
        return NULL;
    }
    r->max = max;
    r->mask = slots - 1;
    return r;
}

void
router_free(struct router *r)
{
    if (r == NULL)
        return;
    free(r->ring);
    free(r->idx);
    free(r);
}

static int
router_find(const struct router *r, uint64_t h, size_t *slot)
{
    size_t i = (size_t)h & r->mask;

    while (r->idx[i] != 0) {
        if (r->ring[r->idx[i] - 1] == h) {
            *slot = i;
            return 1;
        }
        i = (i + 1) & r->mask;
    }
    *slot = i;
    return 0;
}

/* Backward-shift deletion: no tombstones, probes stay short. */
static void
router_unindex(struct router *r, size_t i)
{
    size_t j = i;

    r->idx[i] = 0;
    for (;;) {
        size_t home;

        j = (j + 1) & r->mask;
        if (r->idx[j] == 0)
            return;
        home = (size_t)r->ring[r->idx[j] - 1] & r->mask;
        /* move j back to i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            r->idx[i] = r->idx[j];
            r->idx[j] = 0;
            i = j;
        }
    }
}

int
router_seen(const struct router *r, const char *platform, const char *chat,
            const char *message_id)
{
    size_t slot;

    return router_find(r, router_hash(platform, chat, message_id), &slot);
}

void
router_remember(struct router *r, const char *platform, const char *chat,
                const char *message_id)
{
    uint64_t h = router_hash(platform, chat, message_id);
    size_t slot;

    if (router_find(r, h, &slot))
        return;
    if (r->count == r->max) {
        size_t old;

        /* the oldest entry leaves the ring, and the index */
        if (router_find(r, r->ring[r->head], &old))
            router_unindex(r, old);
        r->count--;
        router_find(r, h, &slot); /* the shift may have moved the gap */
    }
    r->ring[r->head] = h;
    r->idx[slot] = (uint32_t)(r->head + 1);
    r->head = (r->head + 1) % r->max;
    r->count++;
}
