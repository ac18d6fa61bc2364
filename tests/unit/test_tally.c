/* test_tally: usage counters summed in memory, drained in key order. */
#include "core/tally.h"
#include "tests/t.h"

#include <stdio.h>
#include <stdlib.h>

struct seen {
    char key[160][128];
    struct tally_counts c[160];
    size_t n;
};

static void
seen_one(void *arg, const char *scope, const char *platform, const char *target,
         int64_t day, const struct tally_counts *c)
{
    struct seen *s = arg;

    if (s->n == sizeof(s->key) / sizeof(s->key[0]))
        return;
    snprintf(s->key[s->n], sizeof(s->key[0]), "%s|%s|%s|%lld", scope, platform,
             target, (long long)day);
    s->c[s->n++] = *c;
}

/* Deltas to one key add up; keys differ by every field. */
static void
test_sum(void)
{
    struct tally *t = tally_new(16);
    struct tally_counts d = {1, 0, 10, 20, 5}, l = {0, 1, 0, 0, 0};
    static struct seen s;

    T_OK(t != NULL);
    T_EQ_INT(tally_add(t, "user", "telegram", "11", 100, &d), 0);
    T_EQ_INT(tally_add(t, "user", "telegram", "11", 100, &d), 0);
    T_EQ_INT(tally_add(t, "user", "telegram", "11", 100, &l), 0);
    T_EQ_INT(tally_keys(t), 1);
    T_EQ_INT(tally_add(t, "chat", "telegram", "11", 100, &d), 0);
    T_EQ_INT(tally_add(t, "user", "discord", "11", 100, &d), 0);
    T_EQ_INT(tally_add(t, "user", "telegram", "1", 100, &d), 0);
    T_EQ_INT(tally_add(t, "user", "telegram", "11", 101, &d), 0);
    /* ("1", "1x") vs ("11", "x"): the strings are not run together */
    T_EQ_INT(tally_add(t, "user", "telegram1", "1", 100, &d), 0);
    T_EQ_INT(tally_keys(t), 6);
    s.n = 0;
    T_EQ_INT(tally_drain(t, seen_one, &s), 6);
    T_EQ_INT(s.n, 6);
    /* the usage table's key order: scope, platform, target, day */
    T_EQ_STR(s.key[0], "chat|telegram|11|100");
    T_EQ_STR(s.key[1], "user|discord|11|100");
    T_EQ_STR(s.key[2], "user|telegram|1|100");
    T_EQ_STR(s.key[3], "user|telegram|11|100");
    T_EQ_STR(s.key[4], "user|telegram|11|101");
    T_EQ_STR(s.key[5], "user|telegram1|1|100");
    T_EQ_INT(s.c[3].requests, 2);
    T_EQ_INT(s.c[3].limited, 1);
    T_EQ_INT(s.c[3].tokens_in, 20);
    T_EQ_INT(s.c[3].tokens_out, 40);
    T_EQ_INT(s.c[3].cost_micro_usd, 10);
    /* drained: empty, and reusable */
    T_EQ_INT(tally_keys(t), 0);
    s.n = 0;
    T_EQ_INT(tally_drain(t, seen_one, &s), 0);
    T_EQ_INT(tally_add(t, "user", "telegram", "11", 100, &l), 0);
    T_EQ_INT(tally_drain(t, seen_one, &s), 1);
    T_EQ_STR(s.key[0], "user|telegram|11|100");
    T_EQ_INT(s.c[0].requests, 0);
    T_EQ_INT(s.c[0].limited, 1);
    tally_free(t);
    tally_free(NULL);
}

/* A drain in chunks: the same key order across calls, adds refused
 * while part-way, empty and reusable once every key was visited. */
static void
test_drain_some(void)
{
    struct tally *t = tally_new(64);
    struct tally_counts d = {1, 0, 0, 0, 0};
    static struct seen s;
    char target[16];

    T_OK(t != NULL);
    for (int i = 9; i >= 0; i--) {
        snprintf(target, sizeof(target), "u%d", i);
        T_EQ_INT(tally_add(t, "user", "telegram", target, 100, &d), 0);
    }
    s.n = 0;
    T_EQ_INT(tally_drain_some(t, 4, seen_one, &s), 4);
    T_EQ_INT(tally_keys(t), 6);
    T_EQ_INT(tally_add(t, "user", "telegram", "u0", 100, &d), -1);
    T_EQ_INT(tally_drain_some(t, 4, seen_one, &s), 4);
    T_EQ_INT(tally_drain_some(t, 4, seen_one, &s), 2);
    T_EQ_INT(s.n, 10);
    for (int i = 0; i < 10; i++) {
        char want[64];

        snprintf(want, sizeof(want), "user|telegram|u%d|100", i);
        T_EQ_STR(s.key[i], want);
        T_EQ_INT(s.c[i].requests, 1);
    }
    T_EQ_INT(tally_keys(t), 0);
    T_EQ_INT(tally_drain_some(t, 4, seen_one, &s), 0);
    T_EQ_INT(tally_add(t, "user", "telegram", "u0", 100, &d), 0);
    /* a full drain finishes a part-way one */
    T_EQ_INT(tally_add(t, "user", "telegram", "u1", 100, &d), 0);
    s.n = 0;
    T_EQ_INT(tally_drain_some(t, 1, seen_one, &s), 1);
    T_EQ_INT(tally_drain(t, seen_one, &s), 1);
    T_EQ_INT(s.n, 2);
    T_EQ_STR(s.key[1], "user|telegram|u1|100");
    tally_free(t);
}

/* The bound: max keys, then -1 (an existing key still adds); strings
 * over their bound are refused. */
static void
test_bounds(void)
{
    struct tally *t = tally_new(100);
    struct tally_counts d = {1, 0, 0, 0, 0};
    char id[80];
    static struct seen s;

    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "%d", i);
        T_EQ_INT(tally_add(t, "user", "slack", id, 7, &d), 0);
    }
    T_EQ_INT(tally_add(t, "user", "slack", "new", 7, &d), -1);
    T_EQ_INT(tally_add(t, "user", "slack", "42", 7, &d), 0);
    T_EQ_INT(tally_keys(t), 100);
    memset(id, '9', 64);
    id[64] = '\0';
    T_EQ_INT(tally_add(t, "user", "slack", id, 7, &d), -1); /* full */
    s.n = 0;
    T_EQ_INT(tally_drain(t, seen_one, &s), 100);
    T_EQ_INT(tally_add(t, "user", "slack", id, 7, &d), 0); /* 64: fits */
    id[64] = '9';
    id[65] = '\0';
    T_EQ_INT(tally_add(t, "user", "slack", id, 7, &d), -1);
    T_EQ_INT(tally_add(t, "user", "a-platform-name-too-long", "1", 7, &d), -1);
    T_EQ_INT(tally_add(t, "usersss!", "slack", "1", 7, &d), -1);
    T_EQ_INT(tally_keys(t), 1);
    tally_free(t);
}

static int64_t total;

static void
sum_one(void *arg, const char *scope, const char *platform, const char *target,
        int64_t day, const struct tally_counts *c)
{
    (void)arg;
    (void)scope;
    (void)platform;
    (void)target;
    (void)day;
    total += c->requests;
}

/* Many keys through growth and several drains: nothing lost. */
static void
test_growth(void)
{
    struct tally *t = tally_new(50000);
    struct tally_counts d = {1, 0, 0, 0, 0};
    char id[16];
    size_t keys = 0;
    int bad = 0;

    total = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40000; i++) {
            snprintf(id, sizeof(id), "%d", i % 20000);
            bad += tally_add(t, "user", "telegram", id, i / 20000, &d) != 0;
        }
        keys = tally_keys(t);
        tally_drain(t, sum_one, NULL);
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(keys, 40000);
    T_EQ_INT(total, 3 * 40000);
    tally_free(t);
}

/* Totals survive a full tally drained as core does. */
static void
test_totals(void)
{
    struct tally *t = tally_new(1000);
    struct tally_counts d = {1, 0, 0, 0, 0};
    char id[16];
    int64_t want = 0;

    total = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof(id), "%d", (i * 7919) % 3000);
        if (tally_add(t, "user", "telegram", id, 1, &d) < 0) {
            tally_drain(t, sum_one, NULL); /* full: as core does */
            T_EQ_INT(tally_add(t, "user", "telegram", id, 1, &d), 0);
        }
        want++;
    }
    tally_drain(t, sum_one, NULL);
    T_EQ_INT(total, want);
    tally_free(t);
}

int
main(void)
{
    test_sum();
    test_drain_some();
    test_bounds();
    test_growth();
    test_totals();
    return t_done();
}
