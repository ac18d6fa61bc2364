/* telegram_pace: when the next Telegram message may go (pure). */
#ifndef PARLEY_TELEGRAM_PACE_H
#define PARLEY_TELEGRAM_PACE_H

#include <stdint.h>

#include "config/value.h"

/*
 * Outbound pacing under three limits at once (config chat_send_rate,
 * group_send_rate, global_send_rate): a message to chat C may go when C's
 * window, C's group window (groups and supergroups only) and the global
 * window all admit it; it is then recorded in each.  Exact sliding windows
 * (core/ratelimit): a rate N/W never lets N+1 messages fall in any span of
 * W.  Pure: now_ms is a parameter (monotonic, non-decreasing).
 */
struct telegram_pace;

/* max_chats bounds the tracked keys (idle ones are evicted). */
struct telegram_pace *telegram_pace_new(size_t max_chats);
void telegram_pace_free(struct telegram_pace *p);
/* New rates apply from the next call (SIGHUP). */
void telegram_pace_set_rates(struct telegram_pace *p, struct rate chat,
                             struct rate group, struct rate global);

/*
 * 0: the message may go now and is recorded; else the exact wait in ms
 * until all three windows would admit it (nothing recorded).  -1 on an
 * internal error (treat as "wait a second").
 */
int64_t telegram_pace_take(struct telegram_pace *p, int64_t chat, int is_group,
                           int64_t now_ms);
/* Drop idle keys, a bounded step at a time (call every second or so). */
void telegram_pace_evict(struct telegram_pace *p, int64_t now_ms);

/*
 * Backoff for the n-th consecutive failure (n >= 1): min(cap, base *
 * 2^(n-1)), then "equal jitter" (half fixed, half uniform from rnd), so
 * never below base/2 and never a tight loop.
 */
int64_t telegram_backoff_ms(int n, int64_t base_ms, int64_t cap_ms,
                            uint32_t rnd);

#endif
