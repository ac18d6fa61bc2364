/* t: a minimal table-friendly test harness shared by unit and integration
 * tests. */
#ifndef PARLEY_T_H
#define PARLEY_T_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*
 * Each test program includes this once.  Checks never abort: they count a
 * failure, print where and what, and let the table go on.  main() returns
 * t_done(), which prints "N checks, N failed" and gives the exit code.
 */
static int t_checks, t_failed;

#define T_FAIL_(fmt, ...)                                                      \
    do {                                                                       \
        t_failed++;                                                            \
        fprintf(stderr, "FAIL %s:%d: " fmt "\n", __FILE__, __LINE__,           \
                __VA_ARGS__);                                                  \
    } while (0)

#define T_OK(cond)                                                             \
    do {                                                                       \
        t_checks++;                                                            \
        if (!(cond))                                                           \
            T_FAIL_("%s", #cond);                                              \
    } while (0)

#define T_OKF(cond, fmt, ...)                                                  \
    do {                                                                       \
        t_checks++;                                                            \
        if (!(cond))                                                           \
            T_FAIL_("%s: " fmt, #cond, __VA_ARGS__);                           \
    } while (0)

#define T_EQ_INT(a, b)                                                         \
    do {                                                                       \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                \
        t_checks++;                                                            \
        if (t_a_ != t_b_)                                                      \
            T_FAIL_("%s == %s: got %lld, want %lld", #a, #b, t_a_, t_b_);      \
    } while (0)

#define T_EQ_STR(a, b)                                                         \
    do {                                                                       \
        const char *t_a_ = (a), *t_b_ = (b);                                   \
        t_checks++;                                                            \
        if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0)           \
            T_FAIL_("%s == %s: got \"%s\", want \"%s\"", #a, #b,               \
                    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");           \
    } while (0)

#define T_CONTAINS(hay, needle)                                                \
    do {                                                                       \
        const char *t_h_ = (hay), *t_n_ = (needle);                            \
        t_checks++;                                                            \
        if (t_h_ == NULL || strstr(t_h_, t_n_) == NULL)                        \
            T_FAIL_("\"%s\" contains \"%s\"", t_h_ ? t_h_ : "(null)", t_n_);   \
    } while (0)

static inline int
t_done(void)
{
    printf("%d checks, %d failed\n", t_checks, t_failed);
    return t_failed ? 1 : 0;
}

#endif
