/* tally: usage counters summed in memory between two writes (pure). */
#include "core/tally.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Keys live in a dense array (drained in sort order, then reused); an
 * open-addressing index of array positions + 1 (0 = empty) finds them.
 * The index is at least twice the array's capacity.
 */
struct tally_entry {
    uint64_t hash;
    int64_t day;
    struct tally_counts c;
    char scope[TALLY_SCOPE_MAX + 1];
    char platform[TALLY_PLATFORM_MAX + 1];
    char target[TALLY_TARGET_MAX + 1];
};

struct tally {
    struct tally_entry *e;
    size_t n, cap, max;
    uint32_t *idx;
    size_t icap;   /* power of two, 0 before the first key */
    size_t cursor; /* keys a part-way drain visited */
    int draining;  /* sorted, part-way through tally_drain_some */
};

static uint64_t
tally_mix(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    h ^= 0xff; /* a separator: ("ab", "c") and ("a", "bc") differ */
    h *= 1099511628211ULL;
    return h;
}

static uint64_t
tally_hash(const char *scope, const char *platform, const char *target,
           int64_t day)
{
    uint64_t h = 1469598103934665603ULL;

    h = tally_mix(h, scope);
    h = tally_mix(h, platform);
    h = tally_mix(h, target);
    h ^= (uint64_t)day;
    h *= 1099511628211ULL;
    return h ^ (h >> 29);
}

struct tally *
tally_new(size_t max)
{
    struct tally *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    /* positions + 1 are stored in 32 bits */
    t->max = max > 0 && max < UINT32_MAX / 4 ? max : 1;
    return t;
}

void
tally_free(struct tally *t)
{
    if (t == NULL)
        return;
    free(t->e);
    free(t->idx);
    free(t);
}

size_t
tally_keys(const struct tally *t)
{
    return t->n - t->cursor;
}

static void
tally_index(struct tally *t, size_t pos)
{
    size_t i = t->e[pos].hash & (t->icap - 1);

    while (t->idx[i] != 0)
        i = (i + 1) & (t->icap - 1);
    t->idx[i] = (uint32_t)(pos + 1);
}

/* Room for one more key: the array and the index grow together (the
 * index stays at least twice the capacity, or neither changes). */
static int
tally_grow(struct tally *t)
{
    struct tally_entry *e;
    uint32_t *idx = NULL;
    size_t cap, icap;

    if (t->n < t->cap)
        return 0;
    if (t->n >= t->max)
        return -1;
    cap = t->cap ? t->cap * 2 : 64;
    if (cap > t->max)
        cap = t->max;
    for (icap = 128; icap < cap * 2; icap *= 2)
        ;
    if (icap != t->icap && (idx = calloc(icap, sizeof(*idx))) == NULL)
        return -1;
    if ((e = realloc(t->e, cap * sizeof(*e))) == NULL) {
        free(idx);
        return -1;
    }
    t->e = e;
    t->cap = cap;
    if (idx == NULL)
        return 0;
    free(t->idx);
    t->idx = idx;
    t->icap = icap;
    for (size_t i = 0; i < t->n; i++)
        tally_index(t, i);
    return 0;
}

static struct tally_entry *
tally_find(const struct tally *t, uint64_t h, const char *scope,
           const char *platform, const char *target, int64_t day)
{
    if (t->icap == 0)
        return NULL;
    for (size_t i = h & (t->icap - 1); t->idx[i] != 0;
         i = (i + 1) & (t->icap - 1)) {
        struct tally_entry *x = &t->e[t->idx[i] - 1];

        if (x->hash == h && x->day == day && strcmp(x->target, target) == 0 &&
            strcmp(x->platform, platform) == 0 && strcmp(x->scope, scope) == 0)
            return x;
    }
    return NULL;
}

int
tally_add(struct tally *t, const char *scope, const char *platform,
          const char *target, int64_t day, const struct tally_counts *d)
{
    struct tally_entry *x;
    uint64_t h;

    if (t->draining)
        return -1; /* a part-way drain: the entries are not indexed */
    if (strlen(scope) > TALLY_SCOPE_MAX ||
        strlen(platform) > TALLY_PLATFORM_MAX ||
        strlen(target) > TALLY_TARGET_MAX)
        return -1;
    h = tally_hash(scope, platform, target, day);
    if ((x = tally_find(t, h, scope, platform, target, day)) == NULL) {
        if (tally_grow(t) < 0)
            return -1;
        x = &t->e[t->n];
        memset(x, 0, sizeof(*x));
        x->hash = h;
        x->day = day;
        strcpy(x->scope, scope);
        strcpy(x->platform, platform);
        strcpy(x->target, target);
        tally_index(t, t->n++);
    }
    x->c.requests += d->requests;
    x->c.limited += d->limited;
    x->c.tokens_in += d->tokens_in;
    x->c.tokens_out += d->tokens_out;
    x->c.cost_micro_usd += d->cost_micro_usd;
    return 0;
}

static int
tally_cmp(const void *pa, const void *pb)
{
    const struct tally_entry *a = pa, *b = pb;
    int r;

    if ((r = strcmp(a->scope, b->scope)) != 0 ||
        (r = strcmp(a->platform, b->platform)) != 0 ||
        (r = strcmp(a->target, b->target)) != 0)
        return r;
    return (a->day > b->day) - (a->day < b->day);
}

size_t
tally_drain_some(struct tally *t, size_t max, tally_fn fn, void *arg)
{
    size_t done = 0;

    if (t->n == 0)
        return 0;
    if (!t->draining) {
        qsort(t->e, t->n, sizeof(*t->e), tally_cmp);
        t->draining = 1;
        t->cursor = 0;
    }
    for (; t->cursor < t->n && done < max; t->cursor++, done++) {
        const struct tally_entry *x = &t->e[t->cursor];

        fn(arg, x->scope, x->platform, x->target, x->day, &x->c);
    }
    if (t->cursor == t->n) {
        t->n = t->cursor = 0;
        t->draining = 0;
        memset(t->idx, 0, t->icap * sizeof(*t->idx));
    }
    return done;
}

size_t
tally_drain(struct tally *t, tally_fn fn, void *arg)
{
    return tally_drain_some(t, SIZE_MAX, fn, arg);
}
