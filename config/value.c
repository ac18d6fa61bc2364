/* value: parse and format the scalar value syntaxes of parley.conf. */
#include "value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

static const struct {
    const char *name;
    int64_t ms;
} units[] = {
    /* "ms" before "m": the longest unit name wins */
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

static int
is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

char *
value_trim(char *s)
{
    size_t n;

    while (is_blank(*s))
        s++;
    n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Match a unit name at *s; advance past it. */
static int
unit_match(const char **s, int64_t *ms)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t len = strlen(units[i].name);

        if (strncmp(*s, units[i].name, len) == 0) {
            *s += len;
            *ms = units[i].ms;
            return 0;
        }
    }
    return -1;
}

int
value_parse_duration(const char *s, int64_t *out, const char **why)
{
    int64_t total = 0;
    const char *p = s;

    if (*p == '-') {
        *why = "negative durations are not allowed";
        return -1;
    }
    if (strcmp(p, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*p == '\0') {
        *why = "empty duration";
        return -1;
    }
    /* one or more NUMBER UNIT pairs: "1h30m" */
    while (*p != '\0') {
        int64_t n = 0, unit;

        if (!is_digit(*p)) {
            *why = "expected a number followed by a unit: ms, s, m, h or d";
            return -1;
        }
        while (is_digit(*p)) {
            if (n > (VALUE_DURATION_MAX_MS - (*p - '0')) / 10) {
                *why = "duration too large (max 3650d)";
                return -1;
            }
            n = n * 10 + (*p - '0');
            p++;
        }
        if (unit_match(&p, &unit) < 0) {
            *why = *p == '\0' ? "missing unit: use ms, s, m, h or d"
                              : "unknown unit: use ms, s, m, h or d";
            return -1;
        }
        if (n > (VALUE_DURATION_MAX_MS - total) / unit) {
            *why = "duration too large (max 3650d)";
            return -1;
        }
        total += n * unit;
    }
    *out = total;
    return 0;
}

int
value_parse_rate(const char *s, struct rate *out, const char **why)
{
    const char *slash;
    char num[32];
    int64_t n, window;
    size_t len;

    if (strcasecmp(s, "off") == 0) {
        out->n = 0;
        out->window_ms = 0;
        return 0;
    }
    slash = strchr(s, '/');
    if (slash == NULL) {
        *why = "expected N/DURATION (like 30/60s) or off";
        return -1;
    }
    len = (size_t)(slash - s);
    if (len == 0 || len >= sizeof(num)) {
        *why = "expected N/DURATION (like 30/60s) or off";
        return -1;
    }
    memcpy(num, s, len);
    num[len] = '\0';
    if (value_parse_int(num, 0, VALUE_RATE_N_MAX, &n, why) < 0)
        return -1;
    if (n == 0) {
        *why = "a rate needs a count of at least 1 (write off to disable)";
        return -1;
    }
    slash++;
    if (*slash != '\0' && !is_digit(*slash) && *slash != '-') {
        /* "20/m": a unit alone means one of it */
        const char *p = slash;

        if (unit_match(&p, &window) < 0 || *p != '\0') {
            *why = "unknown unit in rate window: use ms, s, m, h or d";
            return -1;
        }
    } else if (value_parse_duration(slash, &window, why) < 0) {
        return -1;
    }
    if (window <= 0) {
        *why = "a rate window must be longer than 0";
        return -1;
    }
    out->n = n;
    out->window_ms = window;
    return 0;
}

int
value_parse_bool(const char *s, bool *out, const char **why)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    *why = "expected true/false, yes/no, on/off or 1/0";
    return -1;
}

int
value_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out,
                const char **why)
{
    const char *p = s;
    char *end;
    long long v;

    if (*p == '-')
        p++;
    if (!is_digit(*p)) {
        *why = "expected an integer";
        return -1;
    }
    for (; *p != '\0'; p++) {
        if (!is_digit(*p)) {
            *why = "expected an integer";
            return -1;
        }
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || v < lo || v > hi) {
        *why = "integer out of range";
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int
value_parse_double(const char *s, double lo, double hi, double *out,
                   const char **why)
{
    char *end;
    double v;

    /* strtod alone would also take "nan", "inf", "0x1p3" and blanks */
    if (*s == '\0' || strspn(s, "0123456789.eE+-") != strlen(s)) {
        *why = "expected a number";
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (*end != '\0' || end == s) {
        *why = "expected a number";
        return -1;
    }
    if (errno == ERANGE || !isfinite(v) || v < lo || v > hi) {
        *why = "number out of range";
        return -1;
    }
    *out = v;
    return 0;
}

void
value_list_free(char **items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (items[i] != NULL) {
            sodium_memzero(items[i], strlen(items[i]));
            free(items[i]);
        }
    }
    free(items);
}

int
value_split_list(const char *s, size_t max, char ***items, size_t *n,
                 const char **why)
{
    char **v = NULL;
    size_t count = 0;
    const char *p = s;
    int rc = -1;

    while (is_blank(*p))
        p++;
    if (*p == '\0') {
        *items = NULL;
        *n = 0;
        return 0;
    }
    v = calloc(max + 1, sizeof(*v));
    if (v == NULL) {
        *why = "out of memory";
        goto out;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *item;

        if (count == max) {
            *why = "too many items in list";
            goto out;
        }
        item = strndup(p, len);
        if (item == NULL) {
            *why = "out of memory";
            goto out;
        }
        v[count++] = item;
        /* trim in place but keep the pointer free()-able */
        {
            char *t = value_trim(item);

            memmove(item, t, strlen(t) + 1);
        }
        if (*item == '\0') {
            *why = "empty item in comma separated list";
            goto out;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *items = v;
    *n = count;
    v = NULL;
    rc = 0;
out:
    if (v != NULL)
        value_list_free(v, count);
    return rc;
}

void
value_format_duration(int64_t ms, char *buf, size_t len)
{
    size_t i = sizeof(units) / sizeof(units[0]);

    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    /* the largest unit that divides exactly keeps the value exact */
    while (i-- > 1) {
        if (ms % units[i].ms == 0)
            break;
    }
    snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms), units[i].name);
}

void
value_format_rate(const struct rate *r, char *buf, size_t len)
{
    char w[VALUE_FORMAT_MAX];

    if (r->n == 0) {
        snprintf(buf, len, "off");
        return;
    }
    value_format_duration(r->window_ms, w, sizeof(w));
    snprintf(buf, len, "%lld/%s", (long long)r->n, w);
}
