/* retry: tenacity-style waits, provider-asked waits and the retry decision
 * (pure). */
#include "retry.h"

#include <stddef.h>
#include <string.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
/* Parsed durations saturate here (ns); anything above is clamped anyway. */
#define CAP_NS (RETRY_ASKED_MAX_MS * NS_PER_MS)
/* Fraction digits kept exactly; further non-zero digits round up. */
#define FRAC_DIGITS 9

/* ---- the formula ------------------------------------------------------ */

int64_t
retry_wait_exponential(const struct retry_policy *p, int attempt)
{
    int64_t lo = p->min_ms > 0 ? p->min_ms : 0;
    int64_t x = 0, w;
    int e = attempt < 1 ? 0 : attempt - 1;

    /* tenacity: multiplier * 2^(n-1), and OverflowError means max */
    if (p->multiplier_ms > 0) {
        if (e >= 62 || p->multiplier_ms > (INT64_MAX >> e))
            x = INT64_MAX;
        else
            x = p->multiplier_ms << e;
    }
    /* tenacity: max(max(0, min), min(x, max)) -- min wins over max */
    w = x < p->max_ms ? x : p->max_ms;
    return w < lo ? lo : w;
}

/* floor((w + 1) * rnd / 2^32): uniform over the integers 0..w, without
 * overflowing for any w >= 0. */
static int64_t
uniform_upto(int64_t w, uint32_t rnd)
{
    uint64_t n = (uint64_t)w + 1;
    uint64_t hi = n >> 32, lo = n & UINT64_C(0xffffffff);

    return (int64_t)(hi * rnd + ((lo * rnd) >> 32));
}

int64_t
retry_wait_jittered(const struct retry_policy *p, int attempt, uint32_t rnd)
{
    int64_t w = retry_wait_exponential(p, attempt);

    switch (p->jitter) {
    case RETRY_JITTER_FULL:
        return uniform_upto(w, rnd);
    case RETRY_JITTER_EQUAL:
        return (w - w / 2) + uniform_upto(w / 2, rnd);
    case RETRY_JITTER_NONE:
    default:
        return w;
    }
}

/* ---- header value parsing --------------------------------------------- */

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The value without surrounding blanks in [*b, *e); -1 if empty or too
 * long to be a real header value. */
static int
span(const char *s, const char **b, const char **e)
{
    size_t n;

    if (s == NULL)
        return -1;
    n = strnlen(s, RETRY_HEADER_MAX + 1);
    if (n > RETRY_HEADER_MAX)
        return -1;
    *b = s;
    *e = s + n;
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
    return *b < *e ? 0 : -1;
}

/*
 * A non-negative sum of parts in nanoseconds, exact: whole nanoseconds in
 * ns, and the sub-nanosecond rest in sub (units of 1e-9 ns), so rounding up
 * to milliseconds at the end is exact.
 */
struct acc {
    int64_t ns;
    int64_t sub;
};

static void
acc_add_ns(struct acc *a, int64_t ns)
{
    a->ns = ns > CAP_NS - a->ns ? CAP_NS + 1 : a->ns + ns;
}

/* Add (ip + frac / 10^k) * unit_ns, with frac < 10^k (or == 10^k after a
 * round-up) and k <= FRAC_DIGITS. */
static void
acc_add(struct acc *a, int64_t ip, int64_t frac, int k, int64_t unit_ns)
{
    int64_t p10 = 1, q, r;

    for (int i = 0; i < k; i++)
        p10 *= 10;
    if (ip > 0)
        acc_add_ns(a, ip > CAP_NS / unit_ns ? CAP_NS + 1 : ip * unit_ns);
    if (frac == 0)
        return;
    /* frac * unit / 10^k = frac*q + frac*r / 10^k with unit = q*10^k + r;
     * both products stay below 10^18 */
    q = unit_ns / p10;
    r = unit_ns % p10;
    acc_add_ns(a, frac * q + (frac * r) / p10);
    a->sub += ((frac * r) % p10) * (NS_PER_S / p10);
    if (a->sub >= NS_PER_S) {
        a->sub -= NS_PER_S;
        acc_add_ns(a, 1);
    }
}

/* Round up to whole milliseconds and clamp to the documented maximum. */
static int64_t
acc_ms(const struct acc *a)
{
    int64_t ns = a->ns + (a->sub > 0 ? 1 : 0);
    int64_t ms = ns / NS_PER_MS + (ns % NS_PER_MS != 0 ? 1 : 0);

    return ms > RETRY_ASKED_MAX_MS ? RETRY_ASKED_MAX_MS : ms;
}

/*
 * A decimal number "12", "1.5", ".5", "3." at *p: integer part (saturated
 * far above any cap), fraction digits (the first FRAC_DIGITS, rounded up
 * when later digits are non-zero) and their count.  -1 if no digit.
 */
static int
number_scan(const char **p, const char *e, int64_t *ip, int64_t *frac, int *k)
{
    const char *s = *p;
    int digits = 0, rest = 0;

    *ip = 0;
    *frac = 0;
    *k = 0;
    while (s < e && is_digit(*s)) {
        if (*ip < INT64_C(1000000000000000))
            *ip = *ip * 10 + (*s - '0');
        s++;
        digits++;
    }
    if (s < e && *s == '.') {
        s++;
        while (s < e && is_digit(*s)) {
            if (*k < FRAC_DIGITS) {
                *frac = *frac * 10 + (*s - '0');
                (*k)++;
            } else if (*s != '0') {
                rest = 1;
            }
            s++;
            digits++;
        }
    }
    if (digits == 0)
        return -1;
    if (rest)
        (*frac)++; /* a wait is never shortened */
    *p = s;
    return 0;
}

/* One decimal number in unit_ns, nothing else. */
static int
parse_decimal(const char *s, int64_t unit_ns, int64_t *out_ms)
{
    const char *b, *e;
    int64_t ip, frac;
    int k;
    struct acc a = {0, 0};

    if (span(s, &b, &e) < 0 || number_scan(&b, e, &ip, &frac, &k) < 0 || b != e)
        return -1;
    acc_add(&a, ip, frac, k, unit_ns);
    *out_ms = acc_ms(&a);
    return 0;
}

int
retry_parse_seconds(const char *s, int64_t *out_ms)
{
    return parse_decimal(s, NS_PER_S, out_ms);
}

int
retry_parse_ms(const char *s, int64_t *out_ms)
{
    return parse_decimal(s, NS_PER_MS, out_ms);
}

/* Go's time.ParseDuration units, longest first where one prefixes another. */
static const struct {
    const char *name;
    int64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC greek mu */
    {"ms", NS_PER_MS},
    {"s", NS_PER_S},
    {"m", 60 * NS_PER_S},
    {"h", 3600 * NS_PER_S},
};

int
retry_parse_duration(const char *s, int64_t *out_ms)
{
    const char *b, *e;
    struct acc a = {0, 0};

    if (span(s, &b, &e) < 0)
        return -1;
    if (e - b == 1 && *b == '0') { /* Go: "0" needs no unit */
        *out_ms = 0;
        return 0;
    }
    while (b < e) {
        int64_t ip, frac;
        int k;
        size_t u, n = sizeof(duration_units) / sizeof(duration_units[0]);

        if (number_scan(&b, e, &ip, &frac, &k) < 0)
            return -1;
        for (u = 0; u < n; u++) {
            size_t len = strlen(duration_units[u].name);
            /* "m" must not take the "m" of "ms" */
            if ((size_t)(e - b) >= len &&
                memcmp(b, duration_units[u].name, len) == 0 &&
                !(len == 1 && *b == 'm' && e - b >= 2 && b[1] == 's'))
                break;
        }
        if (u == n)
            return -1;
        acc_add(&a, ip, frac, k, duration_units[u].ns);
        b += strlen(duration_units[u].name);
    }
    *out_ms = acc_ms(&a);
    return 0;
}

/* ---- calendar ----------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year of a day count from 1970-01-01 (H. Hinnant's civil_from_days). */
static int64_t
year_from_days(int64_t z)
{
    int64_t era, doe, yoe, doy, mp, y;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    return mp >= 10 ? y + 1 : y;
}

static int
days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Epoch ms of a broken-down UTC time; -1 when a field is out of range. */
static int64_t
epoch_ms(int64_t y, int mo, int d, int h, int mi, int s)
{
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60)
        return -1;
    /* a leap second (:60) simply runs into the next minute */
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
           (int64_t)s * 1000;
}

/* Exactly n digits at *p. */
static int
digits_scan(const char **p, const char *e, int n, int *out)
{
    int v = 0;

    if (e - *p < n)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int
char_scan(const char **p, const char *e, char c)
{
    if (*p >= e || lower((unsigned char)**p) != lower((unsigned char)c))
        return -1;
    (*p)++;
    return 0;
}

/* Case-insensitive word w at *p. */
static int
word_scan(const char **p, const char *e, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(e - *p) < n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)(*p)[i]) != lower((unsigned char)w[i]))
            return -1;
    *p += n;
    return 0;
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};
static const char *const day_names[] = {"Monday",   "Tuesday", "Wednesday",
                                        "Thursday", "Friday",  "Saturday",
                                        "Sunday"};

static int
month_scan(const char **p, const char *e, int *mo)
{
    for (int i = 0; i < 12; i++) {
        if (word_scan(p, e, month_names[i]) == 0) {
            *mo = i + 1;
            return 0;
        }
    }
    return -1;
}

/* A day name, full (RFC 850) when *full, else its first three letters. */
static int
day_scan(const char **p, const char *e, int *full)
{
    for (int i = 0; i < 7; i++) {
        if (word_scan(p, e, day_names[i]) == 0) {
            *full = 1;
            return 0;
        }
    }
    for (int i = 0; i < 7; i++) {
        char abbr[4] = {day_names[i][0], day_names[i][1], day_names[i][2], 0};
        if (word_scan(p, e, abbr) == 0) {
            *full = 0;
            return 0;
        }
    }
    return -1;
}

static int
clock_scan(const char **p, const char *e, int *h, int *mi, int *s)
{
    if (digits_scan(p, e, 2, h) < 0 || char_scan(p, e, ':') < 0 ||
        digits_scan(p, e, 2, mi) < 0 || char_scan(p, e, ':') < 0 ||
        digits_scan(p, e, 2, s) < 0)
        return -1;
    return 0;
}

/* The wait until t_ms, clamped to [0, RETRY_ASKED_MAX_MS]. */
static int64_t
wait_until(int64_t t_ms, int64_t wall_now_ms)
{
    int64_t w;

    if (t_ms <= wall_now_ms)
        return 0;
    w = t_ms - wall_now_ms;
    return w > RETRY_ASKED_MAX_MS ? RETRY_ASKED_MAX_MS : w;
}

int
retry_parse_http_date(const char *str, int64_t wall_now_ms, int64_t *out_ms)
{
    const char *p, *e;
    int full, d = 0, mo = 0, h = 0, mi = 0, s = 0, v;
    int64_t y = 0, t;

    if (span(str, &p, &e) < 0 || day_scan(&p, e, &full) < 0)
        return -1;
    if (!full && char_scan(&p, e, ' ') == 0) {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (month_scan(&p, e, &mo) < 0 || char_scan(&p, e, ' ') < 0)
            return -1;
        if (char_scan(&p, e, ' ') == 0) {
            if (digits_scan(&p, e, 1, &d) < 0)
                return -1;
        } else if (digits_scan(&p, e, 2, &d) < 0) {
            return -1;
        }
        if (char_scan(&p, e, ' ') < 0 || clock_scan(&p, e, &h, &mi, &s) < 0 ||
            char_scan(&p, e, ' ') < 0 || digits_scan(&p, e, 4, &v) < 0)
            return -1;
        y = v;
    } else {
        if (char_scan(&p, e, ',') < 0 || char_scan(&p, e, ' ') < 0 ||
            digits_scan(&p, e, 2, &d) < 0)
            return -1;
        if (!full) {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            if (char_scan(&p, e, ' ') < 0 || month_scan(&p, e, &mo) < 0 ||
                char_scan(&p, e, ' ') < 0 || digits_scan(&p, e, 4, &v) < 0)
                return -1;
            y = v;
        } else {
            /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; RFC 9110: a year
             * more than 50 years ahead is the last such year in the past */
            int64_t now_y;
            if (char_scan(&p, e, '-') < 0 || month_scan(&p, e, &mo) < 0 ||
                char_scan(&p, e, '-') < 0 || digits_scan(&p, e, 2, &v) < 0)
                return -1;
            now_y = year_from_days(wall_now_ms / 86400000);
            y = now_y - now_y % 100 + v;
            if (y > now_y + 50)
                y -= 100;
        }
        if (char_scan(&p, e, ' ') < 0 || clock_scan(&p, e, &h, &mi, &s) < 0 ||
            char_scan(&p, e, ' ') < 0 || word_scan(&p, e, "GMT") < 0)
            return -1;
    }
    if (p != e || (t = epoch_ms(y, mo, d, h, mi, s)) < 0)
        return -1;
    *out_ms = wait_until(t, wall_now_ms);
    return 0;
}

int
retry_parse_rfc3339(const char *str, int64_t wall_now_ms, int64_t *out_ms)
{
    const char *p, *e;
    int y, mo, d, h, mi, s, oh = 0, om = 0, sign = 0;
    int64_t t, frac_ms = 0;

    if (span(str, &p, &e) < 0 || digits_scan(&p, e, 4, &y) < 0 ||
        char_scan(&p, e, '-') < 0 || digits_scan(&p, e, 2, &mo) < 0 ||
        char_scan(&p, e, '-') < 0 || digits_scan(&p, e, 2, &d) < 0)
        return -1;
    if (char_scan(&p, e, 'T') < 0 && char_scan(&p, e, ' ') < 0)
        return -1;
    if (clock_scan(&p, e, &h, &mi, &s) < 0)
        return -1;
    if (p < e && *p == '.') {
        int n = 0, rest = 0;
        p++;
        while (p < e && is_digit(*p)) {
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            else if (*p != '0')
                rest = 1;
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        for (int i = n; i < 3; i++)
            frac_ms *= 10;
        frac_ms += rest; /* never earlier than the stamp */
    }
    if (char_scan(&p, e, 'Z') < 0) {
        if (p < e && (*p == '+' || *p == '-'))
            sign = *p++ == '+' ? 1 : -1;
        if (sign == 0 || digits_scan(&p, e, 2, &oh) < 0 ||
            char_scan(&p, e, ':') < 0 || digits_scan(&p, e, 2, &om) < 0 ||
            oh > 23 || om > 59)
            return -1;
    }
    if (p != e || (t = epoch_ms(y, mo, d, h, mi, s)) < 0)
        return -1;
    /* local = UTC + offset */
    t = t + frac_ms - sign * ((int64_t)oh * 60 + om) * 60000;
    *out_ms = wait_until(t, wall_now_ms);
    return 0;
}

/* An unsigned count ("x-ratelimit-remaining-*"): 0 and *out, or -1. */
static int
parse_count(const char *s, int64_t *out)
{
    const char *b, *e;
    int64_t v = 0;

    if (span(s, &b, &e) < 0)
        return -1;
    for (; b < e; b++) {
        if (!is_digit(*b))
            return -1;
        if (v < INT64_C(1000000000000))
            v = v * 10 + (*b - '0');
    }
    *out = v;
    return 0;
}

/* ---- what the provider asked -------------------------------------------- */

struct reset_header {
    const char *reset;
    const char *remaining;
    int requests; /* 1: the requests bucket, 0: a tokens bucket */
    int rfc3339;  /* 1: RFC 3339 time (Anthropic), 0: Go duration (OpenAI) */
};

static const struct reset_header reset_headers[] = {
    {"x-ratelimit-reset-requests", "x-ratelimit-remaining-requests", 1, 0},
    {"x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens", 0, 0},
    {"anthropic-ratelimit-requests-reset",
     "anthropic-ratelimit-requests-remaining", 1, 1},
    {"anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining",
     0, 1},
    {"anthropic-ratelimit-input-tokens-reset",
     "anthropic-ratelimit-input-tokens-remaining", 0, 1},
    {"anthropic-ratelimit-output-tokens-reset",
     "anthropic-ratelimit-output-tokens-remaining", 0, 1},
};

#define N_RESET (sizeof(reset_headers) / sizeof(reset_headers[0]))

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The reset headers that count (docs/retry.md): the largest of their
 * waits, or -1.  rate_limited: the 429 rule; else only empty buckets. */
static int64_t
reset_wait(enum errclass cls,
           const char *(*header)(void *arg, const char *name), void *arg,
           int64_t wall_now_ms)
{
    int64_t best = -1, wait[N_RESET], left[N_RESET];
    int any_empty = 0, requests_room = 0, any_tokens = 0;
    const char *s;

    for (size_t i = 0; i < N_RESET; i++) {
        const struct reset_header *r = &reset_headers[i];
        int ok;

        wait[i] = -1;
        left[i] = -1;
        if ((s = header(arg, r->reset)) == NULL)
            continue;
        ok = r->rfc3339 ? retry_parse_rfc3339(s, wall_now_ms, &wait[i])
                        : retry_parse_duration(s, &wait[i]);
        if (ok < 0) {
            wait[i] = -1;
            continue;
        }
        if ((s = header(arg, r->remaining)) != NULL &&
            parse_count(s, &left[i]) < 0)
            left[i] = -1;
        any_empty |= left[i] == 0;
        requests_room |= r->requests && left[i] > 0;
        any_tokens |= !r->requests;
    }
    for (size_t i = 0; i < N_RESET; i++) {
        if (wait[i] < 0)
            continue;
        if ((any_empty || cls != ERRCLASS_RATE_LIMITED) && left[i] != 0)
            continue; /* the empty buckets are the cause */
        if (!any_empty && requests_room && any_tokens &&
            reset_headers[i].requests)
            continue; /* requests had room: a tokens bucket is short */
        best = max64(best, wait[i]);
    }
    return best;
}

int64_t
retry_asked_wait(enum errclass cls,
                 const char *(*header)(void *arg, const char *name), void *arg,
                 int64_t wall_now_ms)
{
    int64_t best = -1, v;
    const char *s;

    if (header == NULL || !errclass_retryable(cls))
        return -1;

    /* SPEC §5: each header that asks is honoured, never earlier, so the
     * largest of them: a short retry-after next to the later reset of an
     * empty bucket would only draw another 429 */
    if ((s = header(arg, "retry-after-ms")) != NULL &&
        retry_parse_ms(s, &v) == 0)
        best = max64(best, v);
    if ((s = header(arg, "retry-after")) != NULL &&
        (retry_parse_seconds(s, &v) == 0 ||
         retry_parse_http_date(s, wall_now_ms, &v) == 0))
        best = max64(best, v);
    return max64(best, reset_wait(cls, header, arg, wall_now_ms));
}

/* ---- the decision -------------------------------------------------------- */

/* What each class does when time and attempts are left; RETRY_AFTER marks
 * the retryable ones (SPEC §5). */
static const enum retry_action class_action[ERRCLASS_COUNT] = {
    [ERRCLASS_NETWORK] = RETRY_AFTER,
    [ERRCLASS_TIMEOUT] = RETRY_AFTER,
    [ERRCLASS_RATE_LIMITED] = RETRY_AFTER,
    [ERRCLASS_AUTH] = RETRY_NEXT_KEY,
    [ERRCLASS_BAD_REQUEST] = RETRY_OTHER_KEY,
    [ERRCLASS_CONTEXT_OVERFLOW] = RETRY_TRIM_CONTEXT,
    [ERRCLASS_QUOTA] = RETRY_NEXT_KEY,
    [ERRCLASS_SERVER] = RETRY_AFTER,
    [ERRCLASS_OVERLOADED] = RETRY_AFTER,
    [ERRCLASS_NOT_FOUND] = RETRY_OTHER_KEY,
    [ERRCLASS_FORBIDDEN] = RETRY_OTHER_KEY,
    [ERRCLASS_INTERNAL] = RETRY_GIVE_UP,
    [ERRCLASS_SERVER_PERMANENT] = RETRY_NEXT_MODEL,
    [ERRCLASS_TLS] = RETRY_NEXT_MODEL,
};

struct retry_decision
retry_decide(const struct retry_policy *p, int attempt, enum errclass cls,
             int64_t asked_wait_ms, int64_t elapsed_ms,
             int64_t give_up_after_ms, uint32_t rnd)
{
    struct retry_decision d = {RETRY_GIVE_UP, 0};
    int64_t wait;

    if (elapsed_ms < 0)
        elapsed_ms = 0; /* a clock that went back is no extra time */
    if (give_up_after_ms < 0)
        give_up_after_ms = 0; /* no time to retry at all */
    if ((unsigned)cls >= ERRCLASS_COUNT)
        goto out; /* a class we do not know is our own bug */
    if (elapsed_ms >= give_up_after_ms)
        goto out;
    d.action = class_action[cls];
    if (d.action != RETRY_AFTER)
        goto out;
    if (attempt >= p->attempts) {
        d.action = RETRY_NEXT_MODEL;
        goto out;
    }
    wait = retry_wait_jittered(p, attempt, rnd);
    if (asked_wait_ms > wait)
        wait = asked_wait_ms; /* honoured exactly, whatever its size */
    d.wait_ms = wait;
    /* waiting past the deadline would only end in a failure: fail over
     * now while another model still has the time to answer */
    if (wait > give_up_after_ms - elapsed_ms)
        d.action = RETRY_NEXT_MODEL;
out:
    return d;
}

const char *
retry_action_name(enum retry_action action)
{
    static const char *const names[] = {"after",        "next_key",
                                        "other_key",    "next_model",
                                        "trim_context", "give_up"};

    if ((unsigned)action > RETRY_GIVE_UP)
        return "?";
    return names[action];
}
