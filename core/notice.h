/* notice: the text of a 429 reply — which limit, how much, how long (pure). */
#ifndef PARLEY_NOTICE_H
#define PARLEY_NOTICE_H

#include <stddef.h>
#include <stdint.h>

#include "core/admit.h"

#define NOTICE_MAX 256 /* bytes, NUL included: every notice fits */

/*
 * The reply to a refused request (SPEC §4, binding: it contains "429" and
 * "try again in N s").  One sentence per limit, e.g.
 *   429 — you have used 30 of 30 requests per 60 s; try again in 42 s.
 *   429 — this chat has used 120 of 120 requests per 60 s; try again in 5 s.
 *   429 — everyone together has used 1000 of 1000 requests per 60 s; ...
 *   429 — you have used your token budget (199500 of 200000 tokens per
 *         day); try again in 2 h 5 min.
 *   429 — this chat has used its token budget (...); try again in ...
 * The wait is res->wait_ms rounded UP (never earlier than true), in the
 * format of notice_wait().  Returns the length, or -1 (ADMIT_OK / BANNED
 * have no notice, or buf too small).
 */
int notice_format(char *buf, size_t len, const struct admit_result *res);

/*
 * A wait, rounded up, never shorter than the exact one:
 *   under 120 s       "N s"        (1..119; 0 ms reads "1 s")
 *   under 1 h         "N min"      (ceil to whole minutes: 121 s -> 3 min)
 *   under 1 d         "H h M min"  (ceil to whole minutes; "H h" if M = 0)
 *   from 1 d          "D d H h"    (ceil to whole hours; "D d" if H = 0)
 * A carry moves up a unit: 3599.5 s -> 60 min -> "1 h".
 */
void notice_wait(char *buf, size_t len, int64_t wait_ms);

/* A window, exactly: "60 s", "90 s", "5 min", "hour", "6 h", "day",
 * "7 d", "1500 ms" (under 120 s in seconds, as SPEC's "per 60 s"). */
void notice_span(char *buf, size_t len, int64_t window_ms);

#endif
