/* test_retry: wait formulas, jitter bounds, header parsing, the decision table.
 */
#include "llm/retry.h"
#include "tests/t.h"

#include <strings.h>

/* 2025-01-01T00:00:00Z, the fixed wall clock of every absolute form */
#define NOW INT64_C(1735689600000)
#define DAY_MS INT64_C(86400000)
/* the clamp: one day above the largest give_up_after (3650d) */
#define MAX_MS RETRY_ASKED_MAX_MS

static uint32_t rng_state = 0x9e3779b9u;

/* xorshift32: seeded, so every run draws the same numbers */
static uint32_t
rng(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* ---- formula -------------------------------------------------------- */

static void
test_formula(void)
{
    /* protocols/llm.md worked example: multiplier=1, min=8, max=64 */
    struct retry_policy ex = {7, 1000, 8000, 64000, RETRY_JITTER_NONE};
    static const int64_t ex_want[] = {8000,  8000,  8000, 8000,
                                      16000, 32000, 64000};
    /* SPEC [retry] defaults: multiplier=1s, min=1s, max=60s */
    struct retry_policy spec = {6, 1000, 1000, 60000, RETRY_JITTER_NONE};
    static const int64_t spec_want[] = {1000,  2000,  4000,  8000,
                                        16000, 32000, 60000, 60000};
    struct retry_policy minmax = {6, 1000, 5000, 2000, RETRY_JITTER_NONE};
    struct retry_policy zero = {6, 0, 1500, 60000, RETRY_JITTER_NONE};
    struct retry_policy neg = {6, -5, -5, 60000, RETRY_JITTER_NONE};
    struct retry_policy big = {6, INT64_MAX / 2, 0, INT64_MAX,
                               RETRY_JITTER_NONE};

    for (int n = 1; n <= 7; n++)
        T_EQ_INT(retry_wait_exponential(&ex, n), ex_want[n - 1]);
    for (int n = 1; n <= 8; n++)
        T_EQ_INT(retry_wait_exponential(&spec, n), spec_want[n - 1]);
    /* overflow-safe for any attempt number */
    static const int large[] = {20, 40, 62, 63, 64, 65, 100, 1000, 1 << 30};
    for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++) {
        T_EQ_INT(retry_wait_exponential(&spec, large[i]), 60000);
        T_EQ_INT(retry_wait_exponential(&ex, large[i]), 64000);
        T_EQ_INT(retry_wait_exponential(&big, large[i]), INT64_MAX);
    }
    T_EQ_INT(retry_wait_exponential(&big, 1), INT64_MAX / 2);
    T_EQ_INT(retry_wait_exponential(&big, 2), INT64_MAX - 1);
    T_EQ_INT(retry_wait_exponential(&big, 3), INT64_MAX);
    /* attempts < 1 count as the first */
    T_EQ_INT(retry_wait_exponential(&spec, 0), 1000);
    T_EQ_INT(retry_wait_exponential(&spec, -7), 1000);
    /* tenacity: max(max(0, min), min(x, max)) -- min wins over max */
    T_EQ_INT(retry_wait_exponential(&minmax, 1), 5000);
    T_EQ_INT(retry_wait_exponential(&minmax, 9), 5000);
    T_EQ_INT(retry_wait_exponential(&zero, 5), 1500);
    T_EQ_INT(retry_wait_exponential(&neg, 1), 0);
    T_EQ_INT(retry_wait_exponential(&neg, 30), 0);
    /* no jitter: the formula itself, whatever the draw */
    T_EQ_INT(retry_wait_jittered(&spec, 3, 0), 4000);
    T_EQ_INT(retry_wait_jittered(&spec, 3, UINT32_MAX), 4000);
}

static void
test_jitter(void)
{
    struct retry_policy full = {6, 1000, 1000, 60000, RETRY_JITTER_FULL};
    struct retry_policy equal = {6, 1000, 1000, 60000, RETRY_JITTER_EQUAL};
    struct retry_policy huge = {6, INT64_MAX, 0, INT64_MAX, RETRY_JITTER_FULL};
    enum { DRAWS = 100000 };

    for (int n = 1; n <= 8; n++) {
        int64_t w = retry_wait_exponential(&full, n);
        int64_t fmin = INT64_MAX, fmax = -1, emin = INT64_MAX, emax = -1;
        double fsum = 0, esum = 0;
        int fbad = 0, ebad = 0;

        for (int i = 0; i < DRAWS; i++) {
            uint32_t r = rng();
            int64_t f = retry_wait_jittered(&full, n, r);
            int64_t e = retry_wait_jittered(&equal, n, r);
            fbad += f < 0 || f > w;
            ebad += e < w - w / 2 || e > w;
            fmin = f < fmin ? f : fmin;
            fmax = f > fmax ? f : fmax;
            emin = e < emin ? e : emin;
            emax = e > emax ? e : emax;
            fsum += (double)f;
            esum += (double)e;
        }
        T_OKF(fbad == 0, "full n=%d: %d draws outside [0, %" PRId64 "]", n,
              fbad, w);
        T_OKF(ebad == 0,
              "equal n=%d: %d draws outside [%" PRId64 ", %" PRId64 "]", n,
              ebad, w - w / 2, w);
        /* the draws cover the range and centre where they should */
        T_OK(fmin <= w / 100 && fmax >= w - w / 100);
        T_OK(emin <= w / 2 + w / 100 && emax >= w - w / 100);
        T_OKF(fsum / DRAWS > w * 0.49 && fsum / DRAWS < w * 0.51,
              "full n=%d mean %.1f of %" PRId64, n, fsum / DRAWS, w);
        T_OKF(esum / DRAWS > w * 0.74 && esum / DRAWS < w * 0.76,
              "equal n=%d mean %.1f of %" PRId64, n, esum / DRAWS, w);
        /* the extreme draws reach the ends exactly */
        T_EQ_INT(retry_wait_jittered(&full, n, 0), 0);
        T_EQ_INT(retry_wait_jittered(&full, n, UINT32_MAX), w);
        T_EQ_INT(retry_wait_jittered(&equal, n, 0), w - w / 2);
        T_EQ_INT(retry_wait_jittered(&equal, n, UINT32_MAX), w);
    }
    /* odd waits: equal jitter stays within [ceil(w/2), w] */
    struct retry_policy odd = {6, 1001, 0, 60000, RETRY_JITTER_EQUAL};
    T_EQ_INT(retry_wait_jittered(&odd, 1, 0), 501);
    T_EQ_INT(retry_wait_jittered(&odd, 1, UINT32_MAX), 1001);
    T_EQ_INT(retry_wait_jittered(&odd, 1, UINT32_C(1) << 31), 751);
    /* no overflow at the top of the range */
    T_OK(retry_wait_jittered(&huge, 1, UINT32_MAX) >=
         INT64_MAX - (INT64_C(1) << 32));
    T_OK(retry_wait_jittered(&huge, 1, UINT32_C(1) << 31) ==
         (int64_t)(UINT64_C(1) << 62));
    T_EQ_INT(retry_wait_jittered(&huge, 1, 0), 0);
}

/* ---- header values -------------------------------------------------- */

enum kind { SEC, MS, DUR, DATE, RFC };

struct hrow {
    enum kind kind;
    const char *in;
    int64_t want; /* -1: garbage */
};

static const struct hrow hrows[] = {
    /* retry-after: seconds */
    {SEC, "2", 2000},
    {SEC, "1.5", 1500},
    {SEC, "0", 0},
    {SEC, "0.001", 1},
    {SEC, "0.0001", 1},
    {SEC, "0.0010", 1},
    {SEC, "0.0011", 2},
    {SEC, "0.1", 100},
    {SEC, "2.", 2000},
    {SEC, ".25", 250},
    {SEC, " 2 ", 2000},
    {SEC, "\t120\t", 120000},
    {SEC, "007", 7000},
    {SEC, "1.0000000000000000001", 1001},
    {SEC, "86399.999", 86399999},
    {SEC, "86400", DAY_MS},
    /* SPEC §5 "whatever its size": exact up to any give_up_after */
    {SEC, "86401", 86401000},
    {SEC, "31536000", 365 * DAY_MS},
    {SEC, "315360000", 3650 * DAY_MS},
    {SEC, "315446400", MAX_MS},
    {SEC, "315446401", MAX_MS},
    {SEC, "99999999999999999999999999", MAX_MS},
    {SEC, "", -1},
    {SEC, "   ", -1},
    {SEC, "-1", -1},
    {SEC, "+1", -1},
    {SEC, "1e3", -1},
    {SEC, "2s", -1},
    {SEC, "1.2.3", -1},
    {SEC, ".", -1},
    {SEC, "0x10", -1},
    {SEC, "inf", -1},
    {SEC, "nan", -1},
    {SEC, "1 2", -1},
    {SEC, "Wed, 01 Jan 2025 00:00:02 GMT", -1},
    /* retry-after-ms */
    {MS, "1500", 1500},
    {MS, "1500.5", 1501},
    {MS, "0.3", 1},
    {MS, "0", 0},
    {MS, "86400001", 86400001},
    {MS, "315360000000", 3650 * DAY_MS},
    {MS, "999999999999999", MAX_MS},
    {MS, "-5", -1},
    {MS, "abc", -1},
    {MS, "15ms", -1},
    /* x-ratelimit-reset-*: Go durations */
    {DUR, "1s", 1000},
    {DUR, "6m0s", 360000},
    {DUR, "12ms", 12},
    {DUR, "1h2m3.5s", 3723500},
    {DUR, "0s", 0},
    {DUR, "0", 0},
    {DUR, "1.5s", 1500},
    {DUR, "0.1s", 100},
    {DUR, "0.3s", 300},
    {DUR, ".5s", 500},
    {DUR, "1.s", 1000},
    {DUR, "2m30.123456s", 150124},
    {DUR, "30.000000001s", 30001},
    {DUR, "1.0000000001h", 3600001},
    {DUR, "100us", 1},
    {DUR, "1500us", 2},
    {DUR, "1\xc2\xb5s", 1},
    {DUR, "2000\xce\xbcs", 2},
    {DUR, "999999ns", 1},
    {DUR, "1000000ns", 1},
    {DUR, "1000001ns", 2},
    {DUR, "1ms1ns", 2},
    {DUR, "0.5ns", 1},
    {DUR, "1m1ms", 60001},
    {DUR, "1h0m0s", 3600000},
    {DUR, "23h59m59.999s", 86399999},
    {DUR, "25h", 25 * 3600000},
    {DUR, "87600h", 3650 * DAY_MS},
    {DUR, "99999999999h", MAX_MS},
    {DUR, "99999999999999999999999h", MAX_MS},
    {DUR, " 1s ", 1000},
    {DUR, "", -1},
    {DUR, "s", -1},
    {DUR, "1", -1},
    {DUR, "1x", -1},
    {DUR, "-1s", -1},
    {DUR, "+1s", -1},
    {DUR, "1 s", -1},
    {DUR, "1h1", -1},
    {DUR, "1sm", -1},
    {DUR, "abc", -1},
    {DUR, "1.5.5s", -1},
    {DUR, "00", -1},
    {DUR, "\xc2s", -1},
    /* retry-after: HTTP dates, against NOW = 2025-01-01T00:00:00Z */
    {DATE, "Wed, 01 Jan 2025 00:00:02 GMT", 2000},
    {DATE, "Wednesday, 01-Jan-25 00:00:02 GMT", 2000},
    {DATE, "Wed Jan  1 00:00:02 2025", 2000},
    {DATE, "Wed Jan  1 00:10:00 2025", 600000},
    {DATE, "Fri Jan 10 00:00:00 2025", 9 * DAY_MS},
    {DATE, "wed, 01 jan 2025 00:01:00 gmt", 60000},
    {DATE, " Wed, 01 Jan 2025 01:00:00 GMT ", 3600000},
    {DATE, "Tue, 31 Dec 2024 23:59:59 GMT", 0},
    {DATE, "Sun, 06 Nov 1994 08:49:37 GMT", 0},
    {DATE, "Thu, 02 Jan 2025 00:00:01 GMT", 86401000},
    {DATE, "Fri, 01 Jan 2100 00:00:00 GMT", MAX_MS},
    {DATE, "Thu, 29 Feb 2024 12:00:00 GMT", 0},
    {DATE, "Sat, 01 Jan 2025 00:00:60 GMT", 60000},
    /* RFC 850 two-digit years: > 50 years ahead means the past */
    {DATE, "Tuesday, 01-Jan-75 00:00:00 GMT", MAX_MS},
    {DATE, "Wednesday, 01-Jan-76 00:00:00 GMT", 0},
    {DATE, "Sat, 29 Feb 2025 00:00:00 GMT", -1},
    {DATE, "Wed, 32 Jan 2025 00:00:00 GMT", -1},
    {DATE, "Wed, 01 Foo 2025 00:00:00 GMT", -1},
    {DATE, "Wed, 01 Jan 2025 24:00:00 GMT", -1},
    {DATE, "Wed, 01 Jan 2025 00:60:00 GMT", -1},
    {DATE, "Wed, 01 Jan 2025 00:00:02 UTC", -1},
    {DATE, "Wed, 01 Jan 2025 00:00:02", -1},
    {DATE, "Wed, 01 Jan 2025 00:00:02 GMT junk", -1},
    {DATE, "Wed, 1 Jan 2025 00:00:02 GMT", -1},
    {DATE, "Xyz, 01 Jan 2025 00:00:02 GMT", -1},
    {DATE, "Wed Jan 1 00:00:02 2025", -1},
    {DATE, "Wed, 01 Jan 1969 00:00:02 GMT", -1},
    {DATE, "2", -1},
    {DATE, "", -1},
    {DATE, "Wed,", -1},
    /* anthropic-ratelimit-*-reset: RFC 3339 */
    {RFC, "2025-01-01T00:00:30Z", 30000},
    {RFC, "2025-01-01T00:00:30.250Z", 30250},
    {RFC, "2025-01-01T00:00:30.25Z", 30250},
    {RFC, "2025-01-01T00:00:30.2501Z", 30251},
    {RFC, "2025-01-01T00:00:30.250000000Z", 30250},
    {RFC, "2025-01-01T02:00:30+02:00", 30000},
    {RFC, "2024-12-31T23:00:30-01:00", 30000},
    {RFC, "2025-01-01t00:00:30z", 30000},
    {RFC, "2025-01-01 00:00:30Z", 30000},
    {RFC, "2024-12-31T23:59:59Z", 0},
    {RFC, "2025-01-02T00:00:00Z", DAY_MS},
    {RFC, "2030-01-01T00:00:00Z", 1826 * DAY_MS},
    {RFC, "9999-12-31T23:59:59Z", MAX_MS},
    {RFC, "2024-02-29T12:00:00Z", 0},
    {RFC, "2025-13-01T00:00:30Z", -1},
    {RFC, "2025-02-29T00:00:30Z", -1},
    {RFC, "2025-01-01T24:00:00Z", -1},
    {RFC, "2025-01-01T00:00:30", -1},
    {RFC, "2025-01-01T00:00:30.Z", -1},
    {RFC, "2025-1-01T00:00:30Z", -1},
    {RFC, "2025-01-01T00:00:30Zjunk", -1},
    {RFC, "2025-01-01T00:00:30+2:00", -1},
    {RFC, "2025-01-01T00:00:30+24:00", -1},
    {RFC, "2025-01-01", -1},
    {RFC, "1s", -1},
    {RFC, "", -1},
};

static int
parse(enum kind k, const char *in, int64_t *out)
{
    switch (k) {
    case SEC:
        return retry_parse_seconds(in, out);
    case MS:
        return retry_parse_ms(in, out);
    case DUR:
        return retry_parse_duration(in, out);
    case DATE:
        return retry_parse_http_date(in, NOW, out);
    case RFC:
    default:
        return retry_parse_rfc3339(in, NOW, out);
    }
}

static void
test_headers(void)
{
    static char longv[RETRY_HEADER_MAX + 10];

    for (size_t i = 0; i < sizeof(hrows) / sizeof(hrows[0]); i++) {
        const struct hrow *r = &hrows[i];
        int64_t got = -1;
        int rc = parse(r->kind, r->in, &got);

        if (r->want < 0)
            T_OKF(rc == -1, "row %zu \"%s\": want garbage, got %" PRId64, i,
                  r->in, got);
        else
            T_OKF(rc == 0 && got == r->want,
                  "row %zu \"%s\": rc %d got %" PRId64 " want %" PRId64, i,
                  r->in, rc, got, r->want);
    }
    /* NULL and over-long values are garbage for every parser */
    memset(longv, '1', sizeof(longv) - 1);
    for (int k = SEC; k <= RFC; k++) {
        int64_t got = 42;
        T_EQ_INT(parse((enum kind)k, NULL, &got), -1);
        T_EQ_INT(parse((enum kind)k, longv, &got), -1);
        T_EQ_INT(got, 42);
    }
    /* the longest accepted value */
    longv[RETRY_HEADER_MAX] = '\0';
    {
        int64_t got = 0;
        T_EQ_INT(retry_parse_seconds(longv, &got), 0);
        T_EQ_INT(got, MAX_MS);
    }
}

/* Random junk built from the characters the grammars care about: never a
 * crash (the SAN build watches), and anything accepted is in range. */
static void
test_junk(void)
{
    static const char alphabet[] = "0123456789.:-+ ,TZzGMTJanSunhmsuµ\t\xc2";
    char buf[48];
    int bad = 0, accepted = 0;

    for (int i = 0; i < 200000; i++) {
        size_t n = rng() % (sizeof(buf) - 1);
        int64_t got = -7;
        int rc;

        for (size_t j = 0; j < n; j++)
            buf[j] = alphabet[rng() % (sizeof(alphabet) - 1)];
        buf[n] = '\0';
        rc = parse((enum kind)(i % 5), buf, &got);
        accepted += rc == 0;
        if (rc == 0 ? got < 0 || got > MAX_MS : rc != -1 || got != -7)
            bad++;
    }
    T_OKF(bad == 0, "%d junk values out of range or half-written", bad);
    T_OK(accepted > 0); /* the generator does reach valid values */
}

/* a reply's headers, looked up case-insensitively like curl does */
struct hdrs {
    const char *kv[16][2];
};

static const char *
hdr_get(void *arg, const char *name)
{
    const struct hdrs *h = arg;

    for (int i = 0; i < 16 && h->kv[i][0] != NULL; i++)
        if (strcasecmp(h->kv[i][0], name) == 0)
            return h->kv[i][1];
    return NULL;
}

struct arow {
    enum errclass cls;
    struct hdrs h;
    int64_t want;
};

static const struct arow arows[] = {
    {ERRCLASS_RATE_LIMITED, {{{"retry-after", "2"}}}, 2000},
    {ERRCLASS_RATE_LIMITED, {{{"Retry-After", "1.5"}}}, 1500},
    {ERRCLASS_RATE_LIMITED, {{{"retry-after", "0"}}}, 0},
    {ERRCLASS_RATE_LIMITED, {{{"retry-after-ms", "1500"}}}, 1500},
    /* both: the larger, never earlier than either */
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after-ms", "1500"}, {"retry-after", "2"}}},
     2000},
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after-ms", "2500"}, {"retry-after", "2"}}},
     2500},
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "Wed, 01 Jan 2025 00:00:03 GMT"}}},
     3000},
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "soon"}, {"retry-after-ms", "700"}}},
     700},
    {ERRCLASS_RATE_LIMITED, {{{"retry-after", "soon"}}}, -1},
    {ERRCLASS_RATE_LIMITED, {{{"retry-after", "999999999"}}}, MAX_MS},
    {ERRCLASS_RATE_LIMITED, {{{"retry-after", "172800"}}}, 2 * DAY_MS},
    {ERRCLASS_RATE_LIMITED, {{{"x-unrelated", "5"}}}, -1},
    {ERRCLASS_RATE_LIMITED, {{{NULL, NULL}}}, -1},
    /* other retryable classes honour retry-after too */
    {ERRCLASS_SERVER, {{{"retry-after", "5"}}}, 5000},
    {ERRCLASS_OVERLOADED, {{{"retry-after", "30"}}}, 30000},
    {ERRCLASS_NETWORK, {{{"retry-after-ms", "10"}}}, 10},
    /* ... and the reset of a bucket they show empty (a retry before it
     * would be a 429); a reset without an empty bucket describes a
     * refill, not an ask */
    {ERRCLASS_SERVER,
     {{{"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "1s"}}},
     1000},
    {ERRCLASS_OVERLOADED,
     {{{"retry-after", "2"},
       {"anthropic-ratelimit-tokens-remaining", "0"},
       {"anthropic-ratelimit-tokens-reset", "2025-01-01T00:00:09Z"}}},
     9000},
    {ERRCLASS_SERVER,
     {{{"x-ratelimit-remaining-requests", "3"},
       {"x-ratelimit-reset-requests", "1s"}}},
     -1},
    {ERRCLASS_SERVER,
     {{{"retry-after", "2"},
       {"x-ratelimit-reset-requests", "1s"},
       {"x-ratelimit-reset-tokens", "6m0s"}}},
     2000},
    /* non-retryable classes ask for nothing */
    {ERRCLASS_QUOTA, {{{"retry-after", "5"}}}, -1},
    {ERRCLASS_AUTH, {{{"retry-after", "5"}}}, -1},
    {ERRCLASS_BAD_REQUEST, {{{"retry-after", "5"}}}, -1},
    {ERRCLASS_SERVER_PERMANENT, {{{"retry-after", "5"}}}, -1},
    /* OpenAI resets on a 429: the empty bucket's reset */
    {ERRCLASS_RATE_LIMITED,
     {{{"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "1s"},
       {"x-ratelimit-remaining-tokens", "5000"},
       {"x-ratelimit-reset-tokens", "6m0s"}}},
     1000},
    /* requests had room: the tokens bucket is the short one */
    {ERRCLASS_RATE_LIMITED,
     {{{"x-ratelimit-remaining-requests", "10"},
       {"x-ratelimit-reset-requests", "8.64s"},
       {"x-ratelimit-remaining-tokens", "100"},
       {"x-ratelimit-reset-tokens", "12ms"}}},
     12},
    /* nothing says which: the largest */
    {ERRCLASS_RATE_LIMITED,
     {{{"x-ratelimit-reset-requests", "1s"},
       {"x-ratelimit-reset-tokens", "6m0s"}}},
     360000},
    {ERRCLASS_RATE_LIMITED,
     {{{"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "1s"},
       {"x-ratelimit-remaining-tokens", "0"},
       {"x-ratelimit-reset-tokens", "1h2m3.5s"}}},
     3723500},
    /* a garbage remaining count is "unknown" */
    {ERRCLASS_RATE_LIMITED,
     {{{"x-ratelimit-remaining-requests", "lots"},
       {"x-ratelimit-reset-requests", "2s"},
       {"x-ratelimit-reset-tokens", "1s"}}},
     2000},
    {ERRCLASS_RATE_LIMITED,
     {{{"x-ratelimit-reset-requests", "never"},
       {"x-ratelimit-reset-tokens", "-1s"}}},
     -1},
    /* Anthropic: the empty buckets' RFC 3339 resets */
    {ERRCLASS_RATE_LIMITED,
     {{{"anthropic-ratelimit-requests-remaining", "5"},
       {"anthropic-ratelimit-requests-reset", "2025-01-01T00:00:10Z"},
       {"anthropic-ratelimit-tokens-remaining", "0"},
       {"anthropic-ratelimit-tokens-reset", "2025-01-01T00:00:20Z"},
       {"anthropic-ratelimit-input-tokens-remaining", "0"},
       {"anthropic-ratelimit-input-tokens-reset", "2025-01-01T00:00:30Z"},
       {"anthropic-ratelimit-output-tokens-remaining", "1000"},
       {"anthropic-ratelimit-output-tokens-reset", "2025-01-01T00:00:40Z"}}},
     30000},
    {ERRCLASS_RATE_LIMITED,
     {{{"anthropic-ratelimit-requests-remaining", "0"},
       {"anthropic-ratelimit-requests-reset", "2025-01-01T00:00:01.5Z"},
       {"anthropic-ratelimit-tokens-remaining", "12"},
       {"anthropic-ratelimit-tokens-reset", "2025-01-01T00:00:50Z"}}},
     1500},
    {ERRCLASS_RATE_LIMITED,
     {{{"anthropic-ratelimit-output-tokens-reset", "2025-01-01T00:00:07Z"}}},
     7000},
    /* SPEC §5: every header is honoured, never earlier: the largest of
     * retry-after(-ms) and the resets that count */
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "7"},
       {"anthropic-ratelimit-requests-remaining", "0"},
       {"anthropic-ratelimit-requests-reset", "2025-01-01T00:00:40Z"}}},
     40000},
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "7"},
       {"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "1s"}}},
     7000},
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "1"},
       {"retry-after-ms", "1200"},
       {"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "1.5s"},
       {"x-ratelimit-remaining-tokens", "0"},
       {"x-ratelimit-reset-tokens", "2.25s"}}},
     2250},
    /* a reset that does not count (its bucket had room) cannot raise it */
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "1"},
       {"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "500ms"},
       {"x-ratelimit-remaining-tokens", "9000"},
       {"x-ratelimit-reset-tokens", "6m0s"}}},
     1000},
    /* remaining absent: the largest reset, above a shorter retry-after */
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after-ms", "300"}, {"x-ratelimit-reset-tokens", "4s"}}},
     4000},
    /* a garbage reset is no ask at all */
    {ERRCLASS_RATE_LIMITED,
     {{{"retry-after", "3"},
       {"x-ratelimit-remaining-requests", "0"},
       {"x-ratelimit-reset-requests", "soon"}}},
     3000},
    /* a reset already past: go now */
    {ERRCLASS_RATE_LIMITED,
     {{{"anthropic-ratelimit-requests-reset", "2024-12-31T23:00:00Z"}}},
     0},
};

static void
test_asked(void)
{
    for (size_t i = 0; i < sizeof(arows) / sizeof(arows[0]); i++) {
        const struct arow *r = &arows[i];
        struct hdrs h = r->h;
        int64_t got = retry_asked_wait(r->cls, hdr_get, &h, NOW);
        T_OKF(got == r->want, "row %zu (%s): got %" PRId64 " want %" PRId64, i,
              errclass_name(r->cls), got, r->want);
    }
    T_EQ_INT(retry_asked_wait(ERRCLASS_RATE_LIMITED, NULL, NULL, NOW), -1);
}

/* ---- the decision --------------------------------------------------- */

struct drow {
    int attempt;
    enum errclass cls;
    int64_t asked, elapsed, give_up;
    enum retry_action want;
    int64_t want_wait;
};

#define M10 INT64_C(600000)
#define H2 INT64_C(7200000)

static const struct drow drows[] = {
    /* every retryable class retries with the formula: 1, 2, 4 s ... */
    {1, ERRCLASS_NETWORK, -1, 0, M10, RETRY_AFTER, 1000},
    {1, ERRCLASS_TIMEOUT, -1, 0, M10, RETRY_AFTER, 1000},
    {2, ERRCLASS_RATE_LIMITED, -1, 0, M10, RETRY_AFTER, 2000},
    {3, ERRCLASS_SERVER, -1, 0, M10, RETRY_AFTER, 4000},
    {4, ERRCLASS_OVERLOADED, -1, 0, M10, RETRY_AFTER, 8000},
    {5, ERRCLASS_SERVER, -1, 0, M10, RETRY_AFTER, 16000},
    /* attempts exhausted (6 of 6): the next model */
    {6, ERRCLASS_SERVER, -1, 0, M10, RETRY_NEXT_MODEL, 0},
    {7, ERRCLASS_NETWORK, -1, 0, M10, RETRY_NEXT_MODEL, 0},
    {6, ERRCLASS_RATE_LIMITED, 500, 0, M10, RETRY_NEXT_MODEL, 0},
    /* the asked wait when larger, exactly, whatever its size */
    {1, ERRCLASS_RATE_LIMITED, 2000, 0, M10, RETRY_AFTER, 2000},
    {1, ERRCLASS_RATE_LIMITED, 1001, 0, M10, RETRY_AFTER, 1001},
    {3, ERRCLASS_RATE_LIMITED, 2000, 0, M10, RETRY_AFTER, 4000},
    {1, ERRCLASS_RATE_LIMITED, 0, 0, M10, RETRY_AFTER, 1000},
    {1, ERRCLASS_OVERLOADED, 599999, 0, M10, RETRY_AFTER, 599999},
    {1, ERRCLASS_RATE_LIMITED, 3 * DAY_MS, 0, 4 * DAY_MS, RETRY_AFTER,
     3 * DAY_MS},
    {1, ERRCLASS_RATE_LIMITED, MAX_MS - 1, 0, 3650 * DAY_MS, RETRY_NEXT_MODEL,
     MAX_MS - 1},
    /* give_up_after = 0 leaves no time to retry: the first failure ends
     * the request, whatever the class */
    {1, ERRCLASS_RATE_LIMITED, H2, 0, 0, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_SERVER, -1, 0, 0, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_AUTH, -1, 0, 0, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_NOT_FOUND, -1, 0, 0, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_RATE_LIMITED, DAY_MS, 0, -1, RETRY_GIVE_UP, 0},
    /* a request resumed after its give_up_after (durable elapsed) */
    {1, ERRCLASS_SERVER, -1, 2 * M10, M10, RETRY_GIVE_UP, 0},
    /* give_up_after: a wait past what is left fails over at once ... */
    {1, ERRCLASS_RATE_LIMITED, H2, 0, M10, RETRY_NEXT_MODEL, H2},
    {1, ERRCLASS_RATE_LIMITED, 600001, 0, M10, RETRY_NEXT_MODEL, 600001},
    {1, ERRCLASS_RATE_LIMITED, 600000, 0, M10, RETRY_AFTER, 600000},
    {2, ERRCLASS_SERVER, -1, 598001, M10, RETRY_NEXT_MODEL, 2000},
    {2, ERRCLASS_SERVER, -1, 598000, M10, RETRY_AFTER, 2000},
    {1, ERRCLASS_RATE_LIMITED, 30000, 580000, M10, RETRY_NEXT_MODEL, 30000},
    /* ... and no time left at all ends the request, whatever the class */
    {1, ERRCLASS_SERVER, -1, M10, M10, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_AUTH, -1, M10 + 1, M10, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_CONTEXT_OVERFLOW, -1, M10, M10, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_BAD_REQUEST, -1, M10, M10, RETRY_GIVE_UP, 0},
    /* key problems: the next key */
    {1, ERRCLASS_AUTH, -1, 0, M10, RETRY_NEXT_KEY, 0},
    {1, ERRCLASS_QUOTA, 5000, 0, M10, RETRY_NEXT_KEY, 0},
    {6, ERRCLASS_QUOTA, -1, 0, M10, RETRY_NEXT_KEY, 0},
    /* request problems (SPEC §5: 400, 403, 404): this request's next key,
     * else the next model, without waiting */
    {1, ERRCLASS_BAD_REQUEST, -1, 0, M10, RETRY_OTHER_KEY, 0},
    {1, ERRCLASS_FORBIDDEN, -1, 0, M10, RETRY_OTHER_KEY, 0},
    {1, ERRCLASS_NOT_FOUND, 3000, 0, M10, RETRY_OTHER_KEY, 0},
    {6, ERRCLASS_FORBIDDEN, -1, 0, M10, RETRY_OTHER_KEY, 0},
    /* 501, 505, ...: not retried, the next model */
    {1, ERRCLASS_SERVER_PERMANENT, 5000, 0, M10, RETRY_NEXT_MODEL, 0},
    {1, ERRCLASS_CONTEXT_OVERFLOW, -1, 0, M10, RETRY_TRIM_CONTEXT, 0},
    {1, ERRCLASS_INTERNAL, -1, 0, M10, RETRY_GIVE_UP, 0},
    {1, ERRCLASS_COUNT, -1, 0, M10, RETRY_GIVE_UP, 0},
    /* attempt numbers below 1 count as the first */
    {0, ERRCLASS_SERVER, -1, 0, M10, RETRY_AFTER, 1000},
};

static void
test_decide(void)
{
    struct retry_policy spec = {6, 1000, 1000, 60000, RETRY_JITTER_NONE};
    struct retry_policy ex = {3, 1000, 8000, 64000, RETRY_JITTER_NONE};
    struct retry_policy full = {6, 1000, 1000, 60000, RETRY_JITTER_FULL};
    struct retry_policy equal = {6, 1000, 1000, 60000, RETRY_JITTER_EQUAL};
    struct retry_decision d;

    for (size_t i = 0; i < sizeof(drows) / sizeof(drows[0]); i++) {
        const struct drow *r = &drows[i];
        d = retry_decide(&spec, r->attempt, r->cls, r->asked, r->elapsed,
                         r->give_up, rng());
        T_OKF(d.action == r->want && d.wait_ms == r->want_wait,
              "row %zu (%d %s): got %s %" PRId64 ", want %s %" PRId64, i,
              r->attempt, errclass_name(r->cls), retry_action_name(d.action),
              d.wait_ms, retry_action_name(r->want), r->want_wait);
    }

    /* tenacity stop_after_attempt(3) with the worked example: sleeps of 8
     * and 8 seconds, then the third failure moves on */
    d = retry_decide(&ex, 1, ERRCLASS_SERVER, -1, 0, M10, 0);
    T_EQ_INT(d.action, RETRY_AFTER);
    T_EQ_INT(d.wait_ms, 8000);
    d = retry_decide(&ex, 2, ERRCLASS_SERVER, -1, 8000, M10, 0);
    T_EQ_INT(d.action, RETRY_AFTER);
    T_EQ_INT(d.wait_ms, 8000);
    d = retry_decide(&ex, 3, ERRCLASS_SERVER, -1, 16000, M10, 0);
    T_EQ_INT(d.action, RETRY_NEXT_MODEL);

    /* jittered decisions stay in bounds and never undercut the ask */
    for (int i = 0; i < 20000; i++) {
        int n = 1 + i % 5;
        int64_t w = retry_wait_exponential(&full, n);
        int64_t asked = (i % 3 == 0) ? (int64_t)(rng() % 20000) : -1;
        struct retry_decision f =
            retry_decide(&full, n, ERRCLASS_SERVER, asked, 0, M10, rng());
        struct retry_decision e =
            retry_decide(&equal, n, ERRCLASS_SERVER, asked, 0, M10, rng());

        T_OK(f.action == RETRY_AFTER && e.action == RETRY_AFTER);
        T_OK(f.wait_ms >= 0 && f.wait_ms <= (w > asked ? w : asked));
        T_OK(e.wait_ms >= w - w / 2 && e.wait_ms <= (w > asked ? w : asked));
        T_OK(f.wait_ms >= asked && e.wait_ms >= asked);
    }

    /* the "503, 503, 503, 200": three waits, formula and bounds */
    {
        int64_t elapsed = 0;
        for (int n = 1; n <= 3; n++) {
            d = retry_decide(&full, n, ERRCLASS_SERVER, -1, elapsed, M10,
                             rng());
            T_EQ_INT(d.action, RETRY_AFTER);
            T_OK(d.wait_ms >= 0 && d.wait_ms <= (INT64_C(1000) << (n - 1)));
            elapsed += d.wait_ms;
        }
    }

    T_EQ_STR(retry_action_name(RETRY_AFTER), "after");
    T_EQ_STR(retry_action_name(RETRY_NEXT_KEY), "next_key");
    T_EQ_STR(retry_action_name(RETRY_OTHER_KEY), "other_key");
    T_EQ_STR(retry_action_name(RETRY_NEXT_MODEL), "next_model");
    T_EQ_STR(retry_action_name(RETRY_TRIM_CONTEXT), "trim_context");
    T_EQ_STR(retry_action_name(RETRY_GIVE_UP), "give_up");
    T_EQ_STR(retry_action_name((enum retry_action)99), "?");
}

int
main(void)
{
    test_formula();
    test_jitter();
    test_headers();
    test_junk();
    test_asked();
    test_decide();
    return t_done();
}
