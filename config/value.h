/* value: parse and format the scalar value syntaxes of parley.conf. */
#ifndef PARLEY_VALUE_H
#define PARLEY_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A rate "N/DURATION": at most n events per window_ms.  n == 0 is "off". */
struct rate {
    int64_t n;
    int64_t window_ms;
};

/* Bounds: big enough for any sane setting, small enough that now_ms +
 * duration and n * anything cannot overflow an int64_t downstream. */
#define VALUE_DURATION_MAX_MS (3650LL * 86400000LL) /* 3650d */
#define VALUE_RATE_N_MAX 1000000000000LL            /* 10^12 */
#define VALUE_FORMAT_MAX 48 /* buffer size for value_format_* */

/*
 * Parsers take a NUL-terminated, already trimmed value.  They return 0 and
 * store the result, or -1, leave *out untouched and point *why at a static
 * explanation for the user (never containing the input).
 */

/* "1500ms", "60s", "1m30s", "1d"; bare "0" is zero.  Units ms s m h d. */
int value_parse_duration(const char *s, int64_t *out, const char **why);
/* "30/60s", "20/m" (unit alone means 1 of it), or "off". */
int value_parse_rate(const char *s, struct rate *out, const char **why);
/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
int value_parse_bool(const char *s, bool *out, const char **why);
/* Decimal integer in [lo, hi]. */
int value_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out,
                    const char **why);
/* Decimal number in [lo, hi] ("0.40", "1e-3"); no nan, inf or hex. */
int value_parse_double(const char *s, double lo, double hi, double *out,
                       const char **why);

/*
 * Split a comma separated list, trimming blanks around each item.  An empty
 * string is an empty list; an empty item ("a,,b", "a,") is an error, and so
 * is more than max items.  On success *items holds *n new strings (free them
 * with value_list_free); on failure nothing is allocated.
 */
int value_split_list(const char *s, size_t max, char ***items, size_t *n,
                     const char **why);
/* Zeroes every item before freeing it: items may be literal secrets. */
void value_list_free(char **items, size_t n);

/* Canonical forms that value_parse_* read back to the same value. */
void value_format_duration(int64_t ms, char *buf, size_t len);
void value_format_rate(const struct rate *r, char *buf, size_t len);

/* Trim blanks (space, tab, CR, LF) at both ends, in place. */
char *value_trim(char *s);

#endif
