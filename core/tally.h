/* tally: usage counters summed in memory between two writes (pure). */
#ifndef PARLEY_TALLY_H
#define PARLEY_TALLY_H

#include <stddef.h>
#include <stdint.h>

/*
 * core counts every request, limited request and answer into the usage
 * table per (scope, platform, target, day).  Two upserts per event were a
 * fifth of the intake's time and dirtied a page per user per commit; a
 * tally sums the deltas instead and core writes them once a second, on
 * stop, when it goes idle, and before anything reads or deletes usage
 * (docs/core.md "usage").  Fixed bound: at most `max` keys; a full tally
 * refuses the key and the caller writes (drains) first.
 */

#define TALLY_SCOPE_MAX 7
#define TALLY_PLATFORM_MAX 16 /* as EVENT_PLATFORM_MAX */
#define TALLY_TARGET_MAX 64   /* as EVENT_ID_MAX */

struct tally_counts {
    int64_t requests, limited, tokens_in, tokens_out, cost_micro_usd;
};

struct tally;

struct tally *tally_new(size_t max);
void tally_free(struct tally *t); /* NULL-safe */

/*
 * Adds d to the key (scope, platform, target, day).  0 added; -1 not
 * added: the tally holds `max` keys, a string is longer than its bound,
 * or memory is short.  The caller then drains and retries, or writes d
 * itself.
 */
int tally_add(struct tally *t, const char *scope, const char *platform,
              const char *target, int64_t day, const struct tally_counts *d);

/* Keys held (0 = nothing to write). */
size_t tally_keys(const struct tally *t);

/*
 * Calls fn for every key in (scope, platform, target, day) order — the
 * usage table's primary key order (BINARY collation), so the writes walk
 * its B-tree forward — then empties the tally.  Strings are borrowed for
 * the call.  Returns the keys visited.
 */
typedef void (*tally_fn)(void *arg, const char *scope, const char *platform,
                         const char *target, int64_t day,
                         const struct tally_counts *c);
size_t tally_drain(struct tally *t, tally_fn fn, void *arg);

/*
 * As tally_drain, but visits at most max keys, resuming in the same order
 * where the previous call stopped; the tally empties once every key was
 * visited.  While a drain is part-way, tally_add refuses every key and
 * tally_keys counts the keys not yet visited.  Returns the keys visited.
 */
size_t tally_drain_some(struct tally *t, size_t max, tally_fn fn, void *arg);

#endif
