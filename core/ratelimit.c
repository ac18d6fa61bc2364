/* ratelimit: exact request windows and token budgets per key, time given. */
#include "core/ratelimit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Representation (docs/ratelimit.md has the numbers).
 *
 * The table is open addressing with linear probing over two parallel
 * arrays: 32-bit hashes (0 = empty) and entry pointers, so a probe rejects
 * a mismatch without touching the entry.  Deletion shifts the cluster back
 * (no tombstones), which keeps probes short under churn.
 *
 * Each key is one allocation: a small header, the key bytes (no NUL) and,
 * for a window, a ring of the timestamps admitted within the window.  The
 * ring holds at most N timestamps and only grows as requests are admitted,
 * so a quiet key costs a few bytes however large N is.  Timestamps are
 * stored modulo 2^16 when W <= 65536 ms, modulo 2^32 when W <= 2^32 ms, else
 * whole; `newest` keeps the full value of the newest one.  That is exact
 * because every stored timestamp t satisfies newest - W < t <= newest (older
 * ones are dropped on every touch), so newest - t fits the stored width and
 * t = newest - ((newest - stored) mod 2^width).
 *
 * A bucket keeps its level in units of 1/W token (level = tokens * W), so a
 * refill of N/W tokens per ms adds exactly N per ms: no rounding, no drift.
 */

enum {
    RL_DIRTY = 1, /* changed since the last successful export */
};

#define RL_BLOB_VERSION 1
#define RL_FLOOR (-(INT64_C(1) << 62)) /* deepest bucket debt */
#define RL_TABLE_MIN 16
#define RL_AGE_MAX (INT64_C(1) << 61) /* |age| in a blob */

/*
 * Headers are packed (24 B window, 32 B bucket) because most keys hold a
 * few timestamps and the header would otherwise dominate.  Bytes 0-2 are
 * kind, flags, keylen in both; the window's W (< 2^40 ms, 3650 d is 2^38.2)
 * is split over byte 3 and a 32-bit word; a window's ring head, count and
 * capacity (each <= 2^20, RATELIMIT_WINDOW_MAX_N) share one 64-bit word.
 */
#define RL_F21 ((UINT64_C(1) << 21) - 1)

struct rl_win {
    uint8_t kind; /* RATELIMIT_WINDOW; kind, flags, keylen lead both */
    uint8_t flags;
    uint8_t keylen;
    uint8_t w_hi;         /* bits 32..39 of W of the rate last applied */
    uint32_t w_lo;        /* bits 0..31; W also fixes the stored width */
    uint64_t ring;        /* head | count << 21 | cap << 42 */
    int64_t newest;       /* full value of the newest stored timestamp */
    unsigned char data[]; /* key, then the ring aligned to width */
};

struct rl_bkt {
    uint8_t kind; /* RATELIMIT_BUCKET */
    uint8_t flags;
    uint8_t keylen;
    uint8_t w_hi; /* W of the rate last applied, as in rl_win */
    uint32_t w_lo;
    int64_t level;        /* tokens * W at last_ms; RL_FLOOR..n * W */
    int64_t last_ms;      /* time of level */
    int64_t n;            /* rate last applied */
    unsigned char data[]; /* key */
};

/* A bucket's state by value, so peeks compute on a copy. */
struct bk {
    int64_t level, last_ms, n, w_ms;
};

struct ratelimit {
    uint32_t *hash; /* 0 = empty slot */
    void **ent;     /* struct rl_win * or struct rl_bkt * */
    size_t mask;    /* slots - 1 */
    size_t used;
    size_t max_keys;
    size_t cursor; /* where ratelimit_evict goes on */
    size_t bytes;
    uint64_t full, evicted;
};

/* ---- keys and entries ------------------------------------------------ */

static int
ent_kind(const void *e)
{
    return ((const unsigned char *)e)[0];
}

static size_t
ent_keylen(const void *e)
{
    return ((const unsigned char *)e)[2];
}

static const unsigned char *
ent_key(const void *e)
{
    if (ent_kind(e) == RATELIMIT_WINDOW)
        return ((const struct rl_win *)e)->data;
    return ((const struct rl_bkt *)e)->data;
}

/* W of either kind (the same bytes in both headers). */
static int64_t
ent_wms(const void *e)
{
    const struct rl_win *w = e;

    return (int64_t)w->w_hi << 32 | w->w_lo;
}

static void
ent_set_wms(void *e, int64_t w_ms)
{
    struct rl_win *w = e;

    w->w_hi = (uint8_t)(w_ms >> 32);
    w->w_lo = (uint32_t)w_ms;
}

static uint32_t
win_head(const struct rl_win *w)
{
    return (uint32_t)(w->ring & RL_F21);
}

static uint32_t
win_count(const struct rl_win *w)
{
    return (uint32_t)(w->ring >> 21 & RL_F21);
}

static uint32_t
win_cap(const struct rl_win *w)
{
    return (uint32_t)(w->ring >> 42 & RL_F21);
}

static void
win_set(struct rl_win *w, uint32_t head, uint32_t count, uint32_t cap)
{
    w->ring = (uint64_t)head | (uint64_t)count << 21 | (uint64_t)cap << 42;
}

static unsigned
width_for(int64_t w_ms)
{
    if (w_ms <= 65536)
        return 2;
    if (w_ms <= INT64_C(4294967296))
        return 4;
    return 8;
}

/* Bytes per stored timestamp: a function of W, so it needs no field. */
static unsigned
win_width(const struct rl_win *w)
{
    return width_for(ent_wms(w));
}

static size_t
win_ring_off(size_t keylen, unsigned width)
{
    size_t off = offsetof(struct rl_win, data) + keylen;

    return (off + width - 1) / width * width;
}

static size_t
win_size(size_t keylen, unsigned width, uint32_t cap)
{
    return win_ring_off(keylen, width) + (size_t)cap * width;
}

/*
 * The capacity (>= want, <= limit) to allocate for a ring at ring_off: as
 * many timestamps as fit in the heap chunk that want needs anyway.  glibc
 * (64-bit) hands out chunks of 16-byte multiples, at least 32, with 8 bytes
 * of header, so the slack up to the chunk's end is free memory; on another
 * allocator the rounding costs under 16 bytes.
 */
static uint32_t
win_fit(size_t ring_off, unsigned width, uint32_t want, uint32_t limit)
{
    size_t size = ring_off + (size_t)want * width;
    size_t chunk = (size + 8 + 15) & ~(size_t)15;
    size_t cap;

    if (chunk < 32)
        chunk = 32;
    cap = (chunk - 8 - ring_off) / width;
    return cap < limit ? (uint32_t)cap : limit;
}

static size_t
ent_size(const void *e)
{
    const struct rl_win *w;

    if (ent_kind(e) == RATELIMIT_BUCKET)
        return offsetof(struct rl_bkt, data) + ent_keylen(e);
    w = e;
    return win_size(w->keylen, win_width(w), win_cap(w));
}

static void *
win_ring(struct rl_win *w)
{
    return (unsigned char *)w + win_ring_off(w->keylen, win_width(w));
}

static const void *
win_cring(const struct rl_win *w)
{
    return (const unsigned char *)w + win_ring_off(w->keylen, win_width(w));
}

/* The i-th oldest stored timestamp, decoded against `newest`. */
static int64_t
win_at(const struct rl_win *w, uint32_t i)
{
    const void *ring = win_cring(w);
    uint32_t j = win_head(w) + i, cap = win_cap(w);

    if (j >= cap)
        j -= cap;
    switch (win_width(w)) {
    case 2: {
        uint16_t d =
            (uint16_t)((uint16_t)w->newest - ((const uint16_t *)ring)[j]);
        return w->newest - d;
    }
    case 4: {
        uint32_t d = (uint32_t)w->newest - ((const uint32_t *)ring)[j];
        return w->newest - d;
    }
    default:
        return ((const int64_t *)ring)[j];
    }
}

/* Append t (>= every stored timestamp); the caller made room. */
static void
win_push(struct rl_win *w, int64_t t)
{
    void *ring = win_ring(w);
    uint32_t head = win_head(w), count = win_count(w), cap = win_cap(w);
    uint32_t j = head + count;

    if (j >= cap)
        j -= cap;
    switch (win_width(w)) {
    case 2:
        ((uint16_t *)ring)[j] = (uint16_t)t;
        break;
    case 4:
        ((uint32_t *)ring)[j] = (uint32_t)t;
        break;
    default:
        ((int64_t *)ring)[j] = t;
        break;
    }
    win_set(w, head, count + 1, cap);
    w->newest = t;
}

static void
win_drop(struct rl_win *w, uint32_t k)
{
    uint32_t head = win_head(w) + k, cap = win_cap(w);

    if (head >= cap)
        head -= cap;
    win_set(w, head, win_count(w) - k, cap);
}

/* Timestamps t <= now - W no longer count (the window is (now - W, now]).
 * The ring is sorted, so they are at the front. */
static void
win_expire(struct rl_win *w, int64_t now, int64_t w_ms)
{
    uint32_t k = 0, count = win_count(w);

    while (k < count && win_at(w, k) <= now - w_ms)
        k++;
    if (k > 0)
        win_drop(w, k);
}

/* A new empty window for W = w_ms with room for want..limit timestamps. */
static struct rl_win *
win_alloc(struct ratelimit *rl, const char *key, size_t keylen, int64_t w_ms,
          uint32_t want, uint32_t limit)
{
    unsigned width = width_for(w_ms);
    uint32_t cap = win_fit(win_ring_off(keylen, width), width, want, limit);
    size_t size = win_size(keylen, width, cap);
    struct rl_win *w = malloc(size);

    if (w == NULL)
        return NULL;
    memset(w, 0, offsetof(struct rl_win, data));
    w->kind = RATELIMIT_WINDOW;
    w->keylen = (uint8_t)keylen;
    ent_set_wms(w, w_ms);
    win_set(w, 0, 0, cap);
    memcpy(w->data, key, keylen);
    rl->bytes += size;
    return w;
}

/* A copy of w for window w_ms (which fixes the width) with room for its
 * timestamps, at most limit (>= count), oldest first. */
static struct rl_win *
win_rebuild(struct ratelimit *rl, const struct rl_win *w, int64_t w_ms,
            uint32_t limit)
{
    struct rl_win *nw;
    uint32_t i, count = win_count(w);

    nw = win_alloc(rl, (const char *)w->data, w->keylen, w_ms,
                   count > 2 ? count : (limit < 2 ? limit : 2), limit);
    if (nw == NULL)
        return NULL;
    nw->flags = w->flags;
    nw->newest = w->newest;
    for (i = 0; i < count; i++)
        win_push(nw, win_at(w, i));
    return nw;
}

/*
 * Room for more timestamps in a full ring (count == cap < limit), in place
 * where realloc can: about a quarter more, filled to the heap chunk, so a
 * key's slack stays small and a busy key still grows in O(log) steps.  A
 * wrapped ring moves its older run to the new end.  NULL on out of memory
 * (w untouched).
 */
static struct rl_win *
win_grow(struct ratelimit *rl, struct rl_win *w, uint32_t limit)
{
    uint32_t head = win_head(w), count = win_count(w), cap = win_cap(w);
    uint32_t want = cap + (cap / 4 > 2 ? cap / 4 : 2), ncap;
    unsigned width = win_width(w);
    size_t off = win_ring_off(w->keylen, width);
    struct rl_win *nw;
    unsigned char *ring;

    if (want > limit)
        want = limit;
    ncap = win_fit(off, width, want, limit);
    nw = realloc(w, off + (size_t)ncap * width);
    if (nw == NULL)
        return NULL;
    rl->bytes += (size_t)(ncap - cap) * width;
    ring = (unsigned char *)nw + off;
    if (head > 0 && head + count > cap) {
        memmove(ring + (size_t)(head + ncap - cap) * width,
                ring + (size_t)head * width, (size_t)(cap - head) * width);
        head += ncap - cap;
    }
    win_set(nw, head, count, ncap);
    return nw;
}

static void
ent_free(struct ratelimit *rl, void *e)
{
    if (e == NULL)
        return;
    rl->bytes -= ent_size(e);
    free(e);
}

/* ---- buckets (pure arithmetic on struct bk) --------------------------- */

static uint64_t
ceil_div_u(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* Floor division: a negative level must round towards the debt. */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && a < 0)
        q--;
    return q;
}

static int64_t
bk_cap(const struct bk *b)
{
    return b->n * b->w_ms;
}

/* Bring the level to time t (>= last_ms) at the current rate. */
static void
bk_refill(struct bk *b, int64_t t)
{
    int64_t cap = bk_cap(b);
    uint64_t need, dt;

    if (t > b->last_ms && b->level < cap) {
        need = (uint64_t)cap - (uint64_t)b->level; /* <= 2^63 */
        dt = (uint64_t)(t - b->last_ms);
        if (dt >= ceil_div_u(need, (uint64_t)b->n))
            b->level = cap;
        else
            b->level += (int64_t)(dt * (uint64_t)b->n); /* < need */
    }
    if (t > b->last_ms)
        b->last_ms = t;
}

/* Take tokens; the level saturates at RL_FLOOR rather than overflow. */
static void
bk_charge(struct bk *b, int64_t tokens)
{
    uint64_t room = (uint64_t)b->level - (uint64_t)RL_FLOOR; /* <= 2^63 */
    uint64_t c;

    if (tokens <= 0)
        return;
    if ((uint64_t)tokens > room / (uint64_t)b->w_ms) {
        b->level = RL_FLOOR;
        return;
    }
    c = (uint64_t)tokens * (uint64_t)b->w_ms; /* 1..room */
    b->level = RL_FLOOR + (int64_t)(room - c);
}

/* Give tokens back, never above a full bucket. */
static void
bk_refund(struct bk *b, int64_t tokens)
{
    int64_t cap = bk_cap(b);
    uint64_t gap;

    if (tokens <= 0 || b->level >= cap)
        return;
    gap = (uint64_t)cap - (uint64_t)b->level;
    if ((uint64_t)tokens >= ceil_div_u(gap, (uint64_t)b->w_ms))
        b->level = cap;
    else
        b->level += tokens * b->w_ms;
}

/*
 * Apply a new rate at time t: refill at the old rate up to t, then keep the
 * number of whole tokens (a fraction below one token is dropped, so a change
 * never grants anything), clamped to the new capacity.
 */
static void
bk_rate(struct bk *b, struct rate r, int64_t t)
{
    int64_t tokens;

    if (b->n == r.n && b->w_ms == r.window_ms)
        return;
    bk_refill(b, t);
    tokens = floor_div(b->level, b->w_ms);
    if (tokens > r.n)
        tokens = r.n;
    b->n = r.n;
    b->w_ms = r.window_ms;
    if (tokens >= 0) {
        b->level = tokens * r.window_ms;
    } else {
        b->level = 0;
        bk_charge(b, -tokens);
    }
}

/* ms from last_ms until the level reaches `need` (level units), 0 if it
 * has; at most 2^62 (a bucket of one token per window, deep in debt). */
static int64_t
bk_wait(const struct bk *b, int64_t need)
{
    uint64_t ms;

    if (b->level >= need)
        return 0;
    ms = ceil_div_u((uint64_t)need - (uint64_t)b->level, (uint64_t)b->n);
    return ms > (UINT64_C(1) << 62) ? INT64_C(1) << 62 : (int64_t)ms;
}

/* ---- the table --------------------------------------------------------- */

static uint32_t
key_hash(int kind, const char *key, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ (uint64_t)kind;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= UINT64_C(1099511628211);
    }
    /* FNV's low bits are weak; the murmur3 finaliser spreads them */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return (uint32_t)h ? (uint32_t)h : 1;
}

/* The slot holding (kind, key), or the empty slot ending its probe. */
static size_t
tab_probe(const struct ratelimit *rl, int kind, const char *key, size_t len,
          uint32_t h, bool *found)
{
    size_t i = h & rl->mask;

    for (;;) {
        if (rl->hash[i] == 0) {
            *found = false;
            return i;
        }
        if (rl->hash[i] == h) {
            const void *e = rl->ent[i];
            if (ent_kind(e) == kind && ent_keylen(e) == len &&
                memcmp(ent_key(e), key, len) == 0) {
                *found = true;
                return i;
            }
        }
        i = (i + 1) & rl->mask;
    }
}

static int
tab_resize(struct ratelimit *rl, size_t slots)
{
    uint32_t *nh = NULL;
    void **ne = NULL;
    size_t i, j, mask = slots - 1;
    int rc = -1;

    nh = calloc(slots, sizeof(*nh));
    ne = calloc(slots, sizeof(*ne));
    if (nh == NULL || ne == NULL)
        goto out;
    for (i = 0; i <= rl->mask; i++) {
        if (rl->hash[i] == 0)
            continue;
        j = rl->hash[i] & mask;
        while (nh[j] != 0)
            j = (j + 1) & mask;
        nh[j] = rl->hash[i];
        ne[j] = rl->ent[i];
    }
    rl->bytes -= (rl->mask + 1) * (sizeof(*nh) + sizeof(*ne));
    rl->bytes += slots * (sizeof(*nh) + sizeof(*ne));
    free(rl->hash);
    free(rl->ent);
    rl->hash = nh;
    rl->ent = ne;
    nh = NULL;
    ne = NULL;
    rl->mask = mask;
    rl->cursor &= mask;
    rc = 0;
out:
    free(nh);
    free(ne);
    return rc;
}

/* Empty slot i and shift the rest of its cluster back into place. */
static void
tab_delete(struct ratelimit *rl, size_t i)
{
    size_t j = i, home;

    ent_free(rl, rl->ent[i]);
    for (;;) {
        j = (j + 1) & rl->mask;
        if (rl->hash[j] == 0)
            break;
        home = rl->hash[j] & rl->mask;
        /* the entry at j may fill the hole at i unless its home lies
         * cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        rl->hash[i] = rl->hash[j];
        rl->ent[i] = rl->ent[j];
        i = j;
    }
    rl->hash[i] = 0;
    rl->ent[i] = NULL;
    rl->used--;
}

/* Whether the entry holds nothing that still counts at now; if not, when
 * it will (for the table-full hint). */
static bool
ent_idle(const void *e, int64_t now, int64_t *idle_at)
{
    if (ent_kind(e) == RATELIMIT_WINDOW) {
        const struct rl_win *w = e;
        *idle_at = win_count(w) == 0 ? now : w->newest + ent_wms(w);
    } else {
        const struct rl_bkt *bp = e;
        struct bk b = {bp->level, bp->last_ms, bp->n, ent_wms(bp)};
        *idle_at = b.last_ms + bk_wait(&b, bk_cap(&b));
    }
    return *idle_at <= now;
}

/* Look at up to max slots from the cursor, dropping idle entries. */
static size_t
tab_sweep(struct ratelimit *rl, int64_t now, size_t max, int64_t *soonest)
{
    size_t seen, dropped = 0;
    int64_t at = INT64_MAX;

    *soonest = INT64_MAX;
    for (seen = 0; seen < max && rl->used > 0; seen++) {
        size_t i = rl->cursor;
        if (rl->hash[i] != 0 && ent_idle(rl->ent[i], now, &at)) {
            /* the slot may now hold a shifted entry: look again */
            tab_delete(rl, i);
            dropped++;
            continue;
        }
        if (rl->hash[i] != 0 && at < *soonest)
            *soonest = at;
        rl->cursor = (i + 1) & rl->mask;
    }
    rl->evicted += dropped;
    return dropped;
}

/*
 * Make room for one more key and return the slot to put it in, or -1 with
 * *wait_ms set to a hint when the table is full of live keys (refuse-safe:
 * never grow past max_keys).
 */
static int
tab_reserve(struct ratelimit *rl, int kind, const char *key, size_t len,
            uint32_t h, int64_t now, size_t *slot, int64_t *wait_ms)
{
    int64_t soonest;
    bool found;

    if (rl->used >= rl->max_keys) {
        tab_sweep(rl, now, RATELIMIT_EVICT_SCAN, &soonest);
        if (rl->used >= rl->max_keys) {
            rl->full++;
            *wait_ms =
                soonest == INT64_MAX || soonest <= now ? 1000 : soonest - now;
            return -1;
        }
    }
    /* grow at 7/8 load: linear probing over a hash array stays short */
    if ((rl->used + 1) * 8 > (rl->mask + 1) * 7 &&
        tab_resize(rl, (rl->mask + 1) * 2) < 0) {
        *wait_ms = 1000;
        return -1;
    }
    *slot = tab_probe(rl, kind, key, len, h, &found);
    return 0;
}

static void
tab_put(struct ratelimit *rl, size_t slot, uint32_t h, void *e)
{
    rl->hash[slot] = h;
    rl->ent[slot] = e;
    rl->used++;
}

/* ---- argument checks --------------------------------------------------- */

static int
key_ok(const char *key, size_t *len)
{
    if (key == NULL)
        return 0;
    *len = strnlen(key, RATELIMIT_KEY_MAX + 1);
    return *len >= 1 && *len <= RATELIMIT_KEY_MAX;
}

int64_t
ratelimit_n_max(int64_t window_ms, int bucket)
{
    if (window_ms < 1 || window_ms > RATELIMIT_WINDOW_MAX_MS)
        return 0;
    return bucket ? RATELIMIT_BUCKET_MAX_NW / window_ms
                  : RATELIMIT_WINDOW_MAX_N;
}

int
ratelimit_rate_check(struct rate r, int bucket, char *why, size_t len)
{
    int64_t max = ratelimit_n_max(r.window_ms, bucket);
    char w[VALUE_FORMAT_MAX];

    if (r.n == 0 || (r.n >= 1 && r.n <= max))
        return 0;
    if (max < 1)
        snprintf(why, len, "a window of at most 3650d");
    else if (!bucket)
        snprintf(why, len, "at most %lld requests per window", (long long)max);
    else {
        value_format_duration(r.window_ms, w, sizeof(w));
        snprintf(why, len, "at most %lld tokens per %s", (long long)max, w);
    }
    return -1;
}

static int
window_rate_ok(struct rate r)
{
    return r.n >= 1 && r.n <= ratelimit_n_max(r.window_ms, 0);
}

static int
bucket_rate_ok(struct rate r)
{
    return r.n >= 1 && r.n <= ratelimit_n_max(r.window_ms, 1);
}

/* Times stay far from int64 limits so now + W and now - age never wrap. */
static int
time_ok(int64_t t)
{
    return t >= -(INT64_C(1) << 61) && t <= (INT64_C(1) << 61);
}

/* ---- public ------------------------------------------------------------ */

struct ratelimit *
ratelimit_new(size_t max_keys)
{
    struct ratelimit *rl = NULL, *ret = NULL;

    if (max_keys == 0 || max_keys > (SIZE_MAX >> 8))
        goto out;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        goto out;
    rl->max_keys = max_keys;
    rl->hash = calloc(RL_TABLE_MIN, sizeof(*rl->hash));
    rl->ent = calloc(RL_TABLE_MIN, sizeof(*rl->ent));
    if (rl->hash == NULL || rl->ent == NULL)
        goto out;
    rl->mask = RL_TABLE_MIN - 1;
    rl->bytes =
        sizeof(*rl) + RL_TABLE_MIN * (sizeof(uint32_t) + sizeof(void *));
    ret = rl;
    rl = NULL;
out:
    ratelimit_free(rl);
    return ret;
}

void
ratelimit_free(struct ratelimit *rl)
{
    size_t i;

    if (rl == NULL)
        return;
    if (rl->hash != NULL && rl->ent != NULL)
        for (i = 0; i <= rl->mask; i++)
            if (rl->hash[i] != 0)
                free(rl->ent[i]);
    free(rl->hash);
    free(rl->ent);
    free(rl);
}

/*
 * Bring a live window to time t under rate r: widen the ring if the window
 * outgrew its width, drop what left the window, and keep only the newest n
 * timestamps (older ones cannot matter under n; see docs on rate changes).
 * May replace the entry (returned; NULL on out of memory, the old one kept).
 */
static struct rl_win *
win_update(struct ratelimit *rl, struct rl_win *w, struct rate r, int64_t t)
{
    struct rl_win *nw;
    uint32_t count;

    win_expire(w, t, r.window_ms);
    count = win_count(w);
    if (count > r.n)
        win_drop(w, count - (uint32_t)r.n);
    if (ent_wms(w) == r.window_ms && win_cap(w) <= r.n)
        return w;
    if (ent_wms(w) != r.window_ms)
        w->flags |= RL_DIRTY;
    if (width_for(r.window_ms) == win_width(w) && win_cap(w) <= r.n) {
        ent_set_wms(w, r.window_ms);
        return w;
    }
    /* every kept t is within the new window of t, so it fits the new
     * width whether that is wider or narrower */
    nw = win_rebuild(rl, w, r.window_ms, (uint32_t)r.n);
    if (nw != NULL)
        ent_free(rl, w);
    return nw;
}

int
ratelimit_hit(struct ratelimit *rl, const char *key, struct rate r,
              int64_t now_ms, int64_t *wait_ms)
{
    struct rl_win *w, *nw;
    int64_t wait = 1000, t;
    size_t len, slot;
    uint32_t h;
    bool found;
    int rc = RATELIMIT_ERROR;

    if (rl == NULL || !key_ok(key, &len) || !time_ok(now_ms))
        goto out;
    if (r.n == 0) {
        wait = 0;
        rc = RATELIMIT_ADMITTED;
        goto out;
    }
    if (!window_rate_ok(r))
        goto out;
    h = key_hash(RATELIMIT_WINDOW, key, len);
    slot = tab_probe(rl, RATELIMIT_WINDOW, key, len, h, &found);
    if (!found) {
        if (tab_reserve(rl, RATELIMIT_WINDOW, key, len, h, now_ms, &slot,
                        &wait) < 0)
            goto out;
        /* most keys see a request or two per window: start small */
        w = win_alloc(rl, key, len, r.window_ms, r.n < 2 ? (uint32_t)r.n : 2,
                      (uint32_t)r.n);
        if (w == NULL)
            goto out;
        tab_put(rl, slot, h, w);
    }
    w = rl->ent[slot];
    /* time never runs back on a key: an earlier now counts as its newest */
    t = win_count(w) > 0 && w->newest > now_ms ? w->newest : now_ms;
    nw = win_update(rl, w, r, t);
    if (nw == NULL)
        goto out;
    rl->ent[slot] = w = nw;
    if (win_count(w) >= r.n) {
        /* the oldest relevant request leaves the window at its time + W */
        wait = win_at(w, 0) + r.window_ms - now_ms;
        rc = RATELIMIT_REFUSED;
        goto out;
    }
    if (win_count(w) == win_cap(w)) {
        nw = win_grow(rl, w, (uint32_t)r.n);
        if (nw == NULL)
            goto out;
        rl->ent[slot] = w = nw;
    }
    win_push(w, t);
    w->flags |= RL_DIRTY;
    wait = 0;
    rc = RATELIMIT_ADMITTED;
out:
    if (wait_ms != NULL)
        *wait_ms = wait;
    return rc;
}

int
ratelimit_peek(const struct ratelimit *rl, const char *key, struct rate r,
               int64_t now_ms, struct ratelimit_usage *u)
{
    const struct rl_win *w;
    uint32_t first = 0, live;
    size_t len, slot;
    int64_t t;
    bool found;
    int rc = -1;

    if (rl == NULL || u == NULL || !key_ok(key, &len) || !time_ok(now_ms))
        goto out;
    memset(u, 0, sizeof(*u));
    u->limit = r.n;
    u->remaining = r.n;
    if (r.n == 0)
        goto ok;
    if (!window_rate_ok(r))
        goto out;
    slot = tab_probe(rl, RATELIMIT_WINDOW, key, len,
                     key_hash(RATELIMIT_WINDOW, key, len), &found);
    if (!found)
        goto ok;
    w = rl->ent[slot];
    t = win_count(w) > 0 && w->newest > now_ms ? w->newest : now_ms;
    while (first < win_count(w) && win_at(w, first) <= t - r.window_ms)
        first++;
    live = win_count(w) - first;
    if (live == 0)
        goto ok;
    u->used = live < r.n ? live : r.n;
    u->remaining = r.n - u->used;
    if (live >= r.n)
        u->wait_ms =
            win_at(w, first + live - (uint32_t)r.n) + r.window_ms - now_ms;
    u->reset_ms = w->newest + r.window_ms - now_ms;
ok:
    rc = 0;
out:
    return rc;
}

/* Find or create the bucket for key, with the rate applied at t. */
static struct rl_bkt *
bkt_get(struct ratelimit *rl, const char *key, size_t len, struct rate r,
        int64_t now_ms, struct bk *b, int64_t *wait)
{
    struct rl_bkt *bp;
    size_t slot;
    uint32_t h = key_hash(RATELIMIT_BUCKET, key, len);
    bool found;

    slot = tab_probe(rl, RATELIMIT_BUCKET, key, len, h, &found);
    if (!found) {
        if (tab_reserve(rl, RATELIMIT_BUCKET, key, len, h, now_ms, &slot,
                        wait) < 0)
            return NULL;
        bp = malloc(offsetof(struct rl_bkt, data) + len);
        if (bp == NULL)
            return NULL;
        rl->bytes += offsetof(struct rl_bkt, data) + len;
        memset(bp, 0, offsetof(struct rl_bkt, data));
        bp->kind = RATELIMIT_BUCKET;
        bp->keylen = (uint8_t)len;
        memcpy(bp->data, key, len);
        bp->n = r.n;
        ent_set_wms(bp, r.window_ms);
        bp->level = r.n * r.window_ms; /* a new key starts full */
        bp->last_ms = now_ms;
        tab_put(rl, slot, h, bp);
    }
    bp = rl->ent[slot];
    b->level = bp->level;
    b->last_ms = bp->last_ms;
    b->n = bp->n;
    b->w_ms = ent_wms(bp);
    bk_rate(b, r, now_ms);
    bk_refill(b, now_ms);
    return bp;
}

static void
bkt_store(struct rl_bkt *bp, const struct bk *b)
{
    if (bp->level != b->level || bp->n != b->n || ent_wms(bp) != b->w_ms)
        bp->flags |= RL_DIRTY;
    bp->level = b->level;
    bp->last_ms = b->last_ms;
    bp->n = b->n;
    ent_set_wms(bp, b->w_ms);
}

int
ratelimit_reserve(struct ratelimit *rl, const char *key, struct rate budget,
                  int64_t tokens, int64_t now_ms, int64_t *wait_ms)
{
    struct rl_bkt *bp;
    struct bk b;
    int64_t wait = 1000, need;
    size_t len;
    int rc = RATELIMIT_ERROR;

    if (rl == NULL || !key_ok(key, &len) || tokens < 0 || !time_ok(now_ms))
        goto out;
    if (budget.n == 0) {
        wait = 0;
        rc = RATELIMIT_ADMITTED;
        goto out;
    }
    if (!bucket_rate_ok(budget))
        goto out;
    bp = bkt_get(rl, key, len, budget, now_ms, &b, &wait);
    if (bp == NULL)
        goto out;
    /* an estimate above the capacity needs a full bucket, then overdraws */
    need = (tokens < b.n ? tokens : b.n) * b.w_ms;
    if (b.level < need) {
        /* b.last_ms >= now_ms: the level is as of the key's latest time */
        wait = b.last_ms + bk_wait(&b, need) - now_ms;
        bkt_store(bp, &b);
        rc = RATELIMIT_REFUSED;
        goto out;
    }
    bk_charge(&b, tokens);
    bkt_store(bp, &b);
    wait = 0;
    rc = RATELIMIT_ADMITTED;
out:
    if (wait_ms != NULL)
        *wait_ms = wait;
    return rc;
}

int
ratelimit_settle(struct ratelimit *rl, const char *key, struct rate budget,
                 int64_t reserved, int64_t actual, int64_t now_ms)
{
    struct rl_bkt *bp;
    struct bk b;
    int64_t wait;
    size_t len;
    int rc = -1;

    if (rl == NULL || !key_ok(key, &len) || reserved < 0 || actual < 0 ||
        !time_ok(now_ms))
        goto out;
    if (budget.n == 0)
        goto ok;
    if (!bucket_rate_ok(budget))
        goto out;
    bp = bkt_get(rl, key, len, budget, now_ms, &b, &wait);
    if (bp == NULL)
        goto out;
    if (actual > reserved)
        bk_charge(&b, actual - reserved);
    else
        bk_refund(&b, reserved - actual);
    bkt_store(bp, &b);
ok:
    rc = 0;
out:
    return rc;
}

int
ratelimit_peek_budget(const struct ratelimit *rl, const char *key,
                      struct rate budget, int64_t tokens, int64_t now_ms,
                      struct ratelimit_usage *u)
{
    const struct rl_bkt *bp;
    struct bk b;
    int64_t avail, need;
    size_t len, slot;
    bool found;
    int rc = -1;

    if (rl == NULL || u == NULL || !key_ok(key, &len) || tokens < 0 ||
        !time_ok(now_ms))
        goto out;
    memset(u, 0, sizeof(*u));
    u->limit = budget.n;
    u->remaining = budget.n;
    if (budget.n == 0)
        goto ok;
    if (!bucket_rate_ok(budget))
        goto out;
    slot = tab_probe(rl, RATELIMIT_BUCKET, key, len,
                     key_hash(RATELIMIT_BUCKET, key, len), &found);
    if (!found)
        goto ok;
    bp = rl->ent[slot];
    b.level = bp->level;
    b.last_ms = bp->last_ms;
    b.n = bp->n;
    b.w_ms = ent_wms(bp);
    bk_rate(&b, budget, now_ms);
    bk_refill(&b, now_ms);
    avail = floor_div(b.level, b.w_ms);
    u->used = b.n - avail;
    u->remaining = avail > 0 ? avail : 0;
    need = (tokens < b.n ? tokens : b.n) * b.w_ms;
    if (b.level < need)
        u->wait_ms = b.last_ms + bk_wait(&b, need) - now_ms;
    if (b.level < bk_cap(&b))
        u->reset_ms = b.last_ms + bk_wait(&b, bk_cap(&b)) - now_ms;
ok:
    rc = 0;
out:
    return rc;
}

size_t
ratelimit_keys(const struct ratelimit *rl)
{
    return rl == NULL ? 0 : rl->used;
}

void
ratelimit_stats(const struct ratelimit *rl, struct ratelimit_stats *st)
{
    if (st == NULL)
        return;
    memset(st, 0, sizeof(*st));
    if (rl == NULL)
        return;
    st->keys = rl->used;
    st->bytes = rl->bytes;
    st->full = rl->full;
    st->evicted = rl->evicted;
    st->table_slots = rl->mask + 1;
}

size_t
ratelimit_evict(struct ratelimit *rl, int64_t now_ms, size_t max)
{
    int64_t soonest;

    if (rl == NULL)
        return 0;
    return tab_sweep(rl, now_ms, max, &soonest);
}

/* ---- persistence -------------------------------------------------------- */

/*
 * Blob: version byte, kind byte, then LEB128 varints.
 *   window: W, count, age of the newest timestamp, then count - 1 gaps
 *           between consecutive timestamps, oldest first
 *   bucket: n, W, zigzag(level), age of last_ms
 * Ages are export's now_ms minus the time (zigzag: negative if a caller's
 * clock ran back), so the blob holds no clock value.
 */

struct wbuf {
    unsigned char *p;
    size_t len, cap;
};

static int
wb_room(struct wbuf *wb, size_t need)
{
    unsigned char *np;
    size_t cap;

    if (wb->cap - wb->len >= need)
        return 0;
    cap = wb->cap ? wb->cap : 64;
    while (cap - wb->len < need)
        cap *= 2;
    np = realloc(wb->p, cap);
    if (np == NULL)
        return -1;
    wb->p = np;
    wb->cap = cap;
    return 0;
}

/* The caller reserved 10 bytes. */
static void
wb_varint(struct wbuf *wb, uint64_t v)
{
    while (v >= 0x80) {
        wb->p[wb->len++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    wb->p[wb->len++] = (unsigned char)v;
}

static void
wb_zigzag(struct wbuf *wb, int64_t v)
{
    wb_varint(wb, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

static int
blob_window(struct wbuf *wb, const struct rl_win *w, int64_t now)
{
    uint32_t first = 0, i, count = win_count(w);
    int64_t prev, t, w_ms = ent_wms(w);

    while (first < count && win_at(w, first) <= now - w_ms)
        first++;
    if (first == count)
        return 0; /* idle */
    if (wb_room(wb, 2 + 10 * ((size_t)(count - first) + 3)) < 0)
        return -1;
    wb->p[wb->len++] = RL_BLOB_VERSION;
    wb->p[wb->len++] = RATELIMIT_WINDOW;
    wb_varint(wb, (uint64_t)w_ms);
    wb_varint(wb, count - first);
    wb_zigzag(wb, now - w->newest);
    prev = win_at(w, first);
    for (i = first + 1; i < count; i++) {
        t = win_at(w, i);
        wb_varint(wb, (uint64_t)(t - prev));
        prev = t;
    }
    return 1;
}

static int
blob_bucket(struct wbuf *wb, const struct rl_bkt *bp, int64_t now)
{
    struct bk b = {bp->level, bp->last_ms, bp->n, ent_wms(bp)};

    bk_refill(&b, now);
    if (b.level >= bk_cap(&b))
        return 0; /* idle */
    if (wb_room(wb, 2 + 40) < 0)
        return -1;
    /* the stored state, not the refilled one: import refills it again */
    wb->p[wb->len++] = RL_BLOB_VERSION;
    wb->p[wb->len++] = RATELIMIT_BUCKET;
    wb_varint(wb, (uint64_t)bp->n);
    wb_varint(wb, (uint64_t)ent_wms(bp));
    wb_zigzag(wb, bp->level);
    wb_zigzag(wb, now - bp->last_ms);
    return 1;
}

long
ratelimit_export(struct ratelimit *rl, int64_t now_ms, int dirty_only,
                 ratelimit_export_fn fn, void *arg)
{
    struct wbuf wb = {NULL, 0, 0};
    char key[RATELIMIT_KEY_MAX + 1];
    unsigned char *flags;
    long n = 0, rc = -1;
    size_t i;
    int r;

    if (rl == NULL || fn == NULL || !time_ok(now_ms))
        goto out;
    for (i = 0; i <= rl->mask; i++) {
        void *e = rl->ent[i];
        if (rl->hash[i] == 0)
            continue;
        flags = (unsigned char *)e + 1;
        if (dirty_only && !(*flags & RL_DIRTY))
            continue;
        wb.len = 0;
        if (ent_kind(e) == RATELIMIT_WINDOW)
            r = blob_window(&wb, e, now_ms);
        else
            r = blob_bucket(&wb, e, now_ms);
        if (r < 0)
            goto out;
        if (r == 0) {
            *flags &= (unsigned char)~RL_DIRTY; /* idle: nothing to keep */
            continue;
        }
        memcpy(key, ent_key(e), ent_keylen(e));
        key[ent_keylen(e)] = '\0';
        if (fn(arg, key, (enum ratelimit_kind)ent_kind(e), wb.p, wb.len) != 0)
            goto out;
        *flags &= (unsigned char)~RL_DIRTY;
        n++;
    }
    rc = n;
out:
    free(wb.p);
    return rc;
}

struct rbuf {
    const unsigned char *p;
    size_t len, off;
};

/* A varint of at most 10 bytes whose value fits an int64. */
static int
rb_varint(struct rbuf *rb, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift;

    for (shift = 0; shift < 64; shift += 7) {
        unsigned char c;
        if (rb->off >= rb->len)
            return -1;
        c = rb->p[rb->off++];
        if (shift == 63 && c > 1)
            return -1;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return x <= (uint64_t)INT64_MAX ? 0 : -1;
        }
    }
    return -1;
}

/* A signed varint within +-lim. */
static int
rb_zigzag(struct rbuf *rb, int64_t lim, int64_t *v)
{
    uint64_t zz;

    if (rb_varint(rb, &zz) < 0)
        return -1;
    *v = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
    return *v >= -lim && *v <= lim ? 0 : -1;
}

static struct rl_win *
parse_window(struct ratelimit *rl, const char *key, size_t len, struct rbuf *rb,
             int64_t at)
{
    struct rl_win *w = NULL, *ret = NULL;
    uint64_t wms, count, gap, span = 0;
    int64_t t, age;
    uint32_t i;
    size_t save;

    if (rb_varint(rb, &wms) < 0 || wms < 1 ||
        wms > (uint64_t)RATELIMIT_WINDOW_MAX_MS || rb_varint(rb, &count) < 0 ||
        count < 1 || count > (uint64_t)RATELIMIT_WINDOW_MAX_N ||
        rb_zigzag(rb, RL_AGE_MAX, &age) < 0 || count - 1 > rb->len - rb->off)
        goto out;
    /* first pass: gaps are sane and the span fits in the window */
    save = rb->off;
    for (i = 1; i < count; i++) {
        if (rb_varint(rb, &gap) < 0 || gap >= wms)
            goto out;
        span += gap;
        if (span >= wms)
            goto out;
    }
    if (rb->off != rb->len)
        goto out;
    rb->off = save;
    w = win_alloc(rl, key, len, (int64_t)wms, (uint32_t)count, (uint32_t)count);
    if (w == NULL)
        goto out;
    w->newest = at - age;
    /* the newest is pushed last; decoding relies on it being the base */
    t = w->newest - (int64_t)span;
    win_push(w, t);
    for (i = 1; i < count; i++) {
        (void)rb_varint(rb, &gap);
        t += (int64_t)gap;
        win_push(w, t);
    }
    ret = w;
    w = NULL;
out:
    if (w != NULL)
        ent_free(rl, w);
    return ret;
}

static struct rl_bkt *
parse_bucket(struct ratelimit *rl, const char *key, size_t len, struct rbuf *rb,
             int64_t at)
{
    struct rl_bkt *bp;
    struct rate r;
    uint64_t n, wms;
    int64_t level, age;

    if (rb_varint(rb, &n) < 0 || rb_varint(rb, &wms) < 0 ||
        rb_zigzag(rb, -RL_FLOOR, &level) < 0 ||
        rb_zigzag(rb, RL_AGE_MAX, &age) < 0 || rb->off != rb->len)
        return NULL;
    r.n = (int64_t)n;
    r.window_ms = (int64_t)wms;
    if (!bucket_rate_ok(r) || level < RL_FLOOR || level > r.n * r.window_ms)
        return NULL;
    bp = malloc(offsetof(struct rl_bkt, data) + len);
    if (bp == NULL)
        return NULL;
    rl->bytes += offsetof(struct rl_bkt, data) + len;
    memset(bp, 0, offsetof(struct rl_bkt, data));
    bp->kind = RATELIMIT_BUCKET;
    bp->keylen = (uint8_t)len;
    memcpy(bp->data, key, len);
    bp->n = r.n;
    ent_set_wms(bp, r.window_ms);
    bp->level = level;
    bp->last_ms = at - age;
    return bp;
}

int
ratelimit_import(struct ratelimit *rl, const char *key, const void *blob,
                 size_t len, int64_t at_ms)
{
    struct rbuf rb = {blob, len, 0};
    void *e = NULL;
    size_t klen, slot;
    int64_t wait;
    uint32_t h;
    bool found;
    int kind, rc = -1;

    if (rl == NULL || !key_ok(key, &klen) || blob == NULL || len < 2 ||
        len > (size_t)RATELIMIT_BLOB_MAX || !time_ok(at_ms) ||
        rb.p[0] != RL_BLOB_VERSION)
        goto out;
    kind = rb.p[1];
    rb.off = 2;
    if (kind == RATELIMIT_WINDOW)
        e = parse_window(rl, key, klen, &rb, at_ms);
    else if (kind == RATELIMIT_BUCKET)
        e = parse_bucket(rl, key, klen, &rb, at_ms);
    if (e == NULL)
        goto out;
    h = key_hash(kind, key, klen);
    slot = tab_probe(rl, kind, key, klen, h, &found);
    if (found) {
        ent_free(rl, rl->ent[slot]);
        rl->ent[slot] = e;
    } else {
        if (tab_reserve(rl, kind, key, klen, h, at_ms, &slot, &wait) < 0)
            goto out;
        tab_put(rl, slot, h, e);
    }
    e = NULL;
    rc = 0;
out:
    if (e != NULL)
        ent_free(rl, e);
    return rc;
}
