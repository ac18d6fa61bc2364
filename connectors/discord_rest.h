/* discord_rest: Discord REST rate-limit buckets — when may a request go (pure).
 */
#ifndef PARLEY_DISCORD_REST_H
#define PARLEY_DISCORD_REST_H

#include <stddef.h>
#include <stdint.h>

/*
 * Pure: every call takes now_ms (monotonic); nothing reads a clock.
 *
 * A route is a method and path template with the major parameter left
 * out ("POST /channels/messages"); major is the channel (guild, webhook)
 * id.  Discord names a route's bucket in X-RateLimit-Bucket; several
 * routes may share one.  State is kept per (bucket, major):
 *
 *   - a route whose bucket is not known yet allows one request in flight
 *     per major (the first response teaches the bucket);
 *   - a known bucket allows `remaining` requests until `reset`, minus the
 *     requests in flight (counted pessimistically: a reply's Remaining may
 *     or may not include them), and after the reset `limit` again;
 *   - a 429 with X-RateLimit-Global: true or X-RateLimit-Scope: global, or
 *     a body with global:true, pauses every route for retry_after; any
 *     other 429 empties the bucket until retry_after (Retry-After is
 *     honoured: never earlier);
 *   - every request together stays under DISCORD_REST_GLOBAL_N per
 *     DISCORD_REST_GLOBAL_WINDOW ms (Discord's 50 per second).
 *
 * Bounded: at most DISCORD_REST_KEYS_MAX (bucket, major) keys and as many
 * route → bucket names; idle keys past their reset are evicted first.
 */
#define DISCORD_REST_GLOBAL_N 50
#define DISCORD_REST_GLOBAL_WINDOW 1000
#define DISCORD_REST_KEYS_MAX 4096
#define DISCORD_REST_KEY_MAX 96
#define DISCORD_REST_WAIT_INFLIGHT 250 /* re-ask when only in-flight blocks */

struct discord_rest;

/* The rate-limit headers of one response (NULL = absent). */
struct discord_rest_headers {
    const char *limit;       /* X-RateLimit-Limit */
    const char *remaining;   /* X-RateLimit-Remaining */
    const char *reset_after; /* X-RateLimit-Reset-After (s, decimal) */
    const char *bucket;      /* X-RateLimit-Bucket */
    const char *global;      /* X-RateLimit-Global ("true") */
    const char *scope;       /* X-RateLimit-Scope (user/global/shared) */
    const char *retry_after; /* Retry-After (s) */
};

struct discord_rest *discord_rest_new(void);
void discord_rest_free(struct discord_rest *r);

/*
 * May a request on (route, major) go at now_ms?  0: yes, and it is
 * counted (in flight on its bucket, and in the global window) until
 * discord_rest_done or _cancel; else the wait in ms (> 0) after which to
 * ask again (DISCORD_REST_WAIT_INFLIGHT when only requests in flight
 * block it: ask again when one completes).  -1 when the tables are full.
 */
int64_t discord_rest_acquire(struct discord_rest *r, const char *route,
                             const char *major, int64_t now_ms);

/*
 * The response to an acquired request: status and headers.  429s update
 * the pause; retry_after_ms is the 429 body's value (-1 absent) and
 * body_global its "global".  Returns the wait the request itself must
 * observe before going again (0 unless 429).
 */
int64_t discord_rest_done(struct discord_rest *r, const char *route,
                          const char *major, int status,
                          const struct discord_rest_headers *h,
                          int64_t retry_after_ms, int body_global,
                          int64_t now_ms);

/* An acquired request that got no response (network error, cancelled). */
void discord_rest_cancel(struct discord_rest *r, const char *route,
                         const char *major);

/* When the global pause ends (0 = none), for logs and tests. */
int64_t discord_rest_global_until(const struct discord_rest *r);
size_t discord_rest_keys(const struct discord_rest *r);

#endif
