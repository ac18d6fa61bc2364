/* discord_rest: Discord REST rate-limit buckets — when may a request go (pure).
 */
#include "connectors/discord_rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/discord_codec.h"

/* Routes are a small constant set in parley (messages, typing, reactions,
 * gateway): a bounded table of route → bucket names is plenty. */
#define DR_ROUTES_MAX 64
#define DR_BUCKET_MAX 64
/* A reply's Reset-After within this of the known reset is the same window. */
#define DR_SAME_WINDOW_MS 500

struct dr_route {
    char route[DISCORD_REST_KEY_MAX];
    char bucket[DR_BUCKET_MAX];
};

/* One (bucket, major) — or (route, major) while the bucket is unknown. */
struct dr_key {
    char key[DISCORD_REST_KEY_MAX * 2];
    int used;
    int known; /* limit/remaining/reset learnt from headers */
    int64_t limit, remaining;
    int64_t reset_at; /* 0 = unknown (fresh window) */
    int inflight;
};

struct discord_rest {
    struct dr_route routes[DR_ROUTES_MAX];
    size_t nroutes;
    struct dr_key *keys;
    size_t nkeys; /* slots in use */
    int64_t global_until;
    int64_t ring[DISCORD_REST_GLOBAL_N]; /* the last global sends */
    size_t ring_head, ring_n;
};

struct discord_rest *
discord_rest_new(void)
{
    struct discord_rest *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if ((r->keys = calloc(DISCORD_REST_KEYS_MAX, sizeof(*r->keys))) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void
discord_rest_free(struct discord_rest *r)
{
    if (r == NULL)
        return;
    free(r->keys);
    free(r);
}

static struct dr_route *
route_find(struct discord_rest *r, const char *route)
{
    for (size_t i = 0; i < r->nroutes; i++)
        if (strcmp(r->routes[i].route, route) == 0)
            return &r->routes[i];
    return NULL;
}

/* The key string of (route, major) as things stand. */
static void
key_name(struct discord_rest *r, const char *route, const char *major,
         char *buf, size_t cap)
{
    struct dr_route *rt = route_find(r, route);

    if (rt != NULL && rt->bucket[0] != '\0')
        snprintf(buf, cap, "b:%s:%s", rt->bucket, major);
    else
        snprintf(buf, cap, "r:%s:%s", route, major);
}

static struct dr_key *
key_find(struct discord_rest *r, const char *name)
{
    for (size_t i = 0; i < DISCORD_REST_KEYS_MAX; i++)
        if (r->keys[i].used && strcmp(r->keys[i].key, name) == 0)
            return &r->keys[i];
    return NULL;
}

/* A key that is idle and past its window can be forgotten: it would start
 * fresh anyway (unknown → one in flight; known → limit after reset). */
static int
key_idle(const struct dr_key *k, int64_t now)
{
    return k->inflight == 0 && (!k->known || k->reset_at <= now);
}

static struct dr_key *
key_get(struct discord_rest *r, const char *name, int64_t now)
{
    struct dr_key *k = key_find(r, name), *free_slot = NULL;

    if (k != NULL)
        return k;
    for (size_t i = 0; i < DISCORD_REST_KEYS_MAX && free_slot == NULL; i++)
        if (!r->keys[i].used)
            free_slot = &r->keys[i];
    for (size_t i = 0; i < DISCORD_REST_KEYS_MAX && free_slot == NULL; i++)
        if (key_idle(&r->keys[i], now)) {
            free_slot = &r->keys[i];
            r->nkeys--;
        }
    if (free_slot == NULL)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = 1;
    snprintf(free_slot->key, sizeof(free_slot->key), "%s", name);
    r->nkeys++;
    return free_slot;
}

static int64_t
global_wait(struct discord_rest *r, int64_t now)
{
    while (r->ring_n > 0 &&
           r->ring[r->ring_head] <= now - DISCORD_REST_GLOBAL_WINDOW) {
        r->ring_head = (r->ring_head + 1) % DISCORD_REST_GLOBAL_N;
        r->ring_n--;
    }
    if (now < r->global_until)
        return r->global_until - now;
    if (r->ring_n < DISCORD_REST_GLOBAL_N)
        return 0;
    return r->ring[r->ring_head] + DISCORD_REST_GLOBAL_WINDOW - now;
}

int64_t
discord_rest_acquire(struct discord_rest *r, const char *route,
                     const char *major, int64_t now_ms)
{
    char name[DISCORD_REST_KEY_MAX * 2];
    struct dr_key *k;
    int64_t w;

    if ((w = global_wait(r, now_ms)) > 0)
        return w;
    key_name(r, route, major ? major : "", name, sizeof(name));
    if ((k = key_get(r, name, now_ms)) == NULL)
        return -1;
    if (!k->known) {
        if (k->inflight > 0)
            return DISCORD_REST_WAIT_INFLIGHT;
    } else {
        if (k->reset_at != 0 && now_ms >= k->reset_at) {
            k->remaining = k->limit; /* a new window */
            k->reset_at = 0;
        }
        if (k->remaining - k->inflight <= 0) {
            if (k->reset_at > now_ms)
                return k->reset_at - now_ms;
            return DISCORD_REST_WAIT_INFLIGHT;
        }
    }
    k->inflight++;
    r->ring[(r->ring_head + r->ring_n) % DISCORD_REST_GLOBAL_N] = now_ms;
    r->ring_n++;
    return 0;
}

static int
header_int(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (s == NULL)
        return 0;
    v = strtoll(s, &end, 10);
    if (end == s || v < 0 || v > 1000000000LL)
        return 0;
    *out = v;
    return 1;
}

static void
learn_bucket(struct discord_rest *r, const char *route, const char *bucket)
{
    struct dr_route *rt = route_find(r, route);

    if (bucket == NULL || bucket[0] == '\0' || strlen(bucket) >= DR_BUCKET_MAX)
        return;
    if (rt == NULL) {
        if (r->nroutes == DR_ROUTES_MAX || strlen(route) >= sizeof(rt->route))
            return; /* stays "unknown": one in flight, always safe */
        rt = &r->routes[r->nroutes++];
        memcpy(rt->route, route, strlen(route) + 1);
    }
    memcpy(rt->bucket, bucket, strlen(bucket) + 1);
}

int64_t
discord_rest_done(struct discord_rest *r, const char *route, const char *major,
                  int status, const struct discord_rest_headers *h,
                  int64_t retry_after_ms, int body_global, int64_t now_ms)
{
    static const struct discord_rest_headers none;
    char name[DISCORD_REST_KEY_MAX * 2];
    struct dr_key *k;
    int64_t limit = -1, remaining = -1, reset_after = -1, wait = 0;

    if (h == NULL)
        h = &none;
    if (major == NULL)
        major = "";
    /* the request was counted on the key it was acquired on */
    discord_rest_cancel(r, route, major);
    learn_bucket(r, route, h->bucket);
    key_name(r, route, major, name, sizeof(name));
    if ((k = key_get(r, name, now_ms)) == NULL)
        return 0;
    header_int(h->limit, &limit);
    header_int(h->remaining, &remaining);
    reset_after = discord_codec_seconds_ms(h->reset_after);
    if (limit > 0 && remaining >= 0 && reset_after >= 0) {
        int64_t reset_at = now_ms + reset_after;

        if (!k->known || k->reset_at == 0 ||
            reset_at > k->reset_at + DR_SAME_WINDOW_MS) {
            k->remaining = remaining; /* a new window */
        } else if (remaining < k->remaining) {
            k->remaining = remaining; /* replies out of order: the lower */
        }
        if (reset_at > k->reset_at)
            k->reset_at = reset_at;
        k->limit = limit;
        k->known = 1;
    }
    if (status == 429) {
        int64_t hdr = discord_codec_seconds_ms(h->retry_after);
        int global = body_global ||
                     (h->global != NULL && strcmp(h->global, "true") == 0) ||
                     (h->scope != NULL && strcmp(h->scope, "global") == 0);

        wait = retry_after_ms;
        if (hdr > wait)
            wait = hdr;
        if (!global && reset_after > wait)
            wait = reset_after;
        if (wait <= 0)
            wait = 1000; /* a 429 without a wait: a second, not a spin */
        if (global) {
            if (now_ms + wait > r->global_until)
                r->global_until = now_ms + wait;
        } else {
            if (!k->known) {
                k->known = 1;
                k->limit = limit > 0 ? limit : 1;
            }
            k->remaining = 0;
            if (now_ms + wait > k->reset_at)
                k->reset_at = now_ms + wait;
        }
    }
    return wait;
}

void
discord_rest_cancel(struct discord_rest *r, const char *route,
                    const char *major)
{
    char name[DISCORD_REST_KEY_MAX * 2];
    struct dr_key *k;

    if (major == NULL)
        major = "";
    /* acquired before the bucket was learnt: on the route's own key */
    snprintf(name, sizeof(name), "r:%s:%s", route, major);
    if ((k = key_find(r, name)) == NULL || k->inflight == 0) {
        key_name(r, route, major, name, sizeof(name));
        k = key_find(r, name);
    }
    if (k != NULL && k->inflight > 0)
        k->inflight--;
}

int64_t
discord_rest_global_until(const struct discord_rest *r)
{
    return r->global_until;
}

size_t
discord_rest_keys(const struct discord_rest *r)
{
    return r->nkeys;
}
