/* test_telegram_pace: per-chat, per-group and global pacing; backoff. */
#include <stdint.h>

#include "connectors/telegram_pace.h"
#include "tests/t.h"

struct step {
    int64_t t, chat;
    int group;
    int64_t want; /* 0 = goes, else the wait */
};

/* chat 1/1s, group 3/10s, global 4/1s */
static const struct step steps[] = {
    {0, 1, 0, 0},    /* private chat 1 */
    {0, 1, 0, 1000}, /* again: its window */
    {999, 1, 0, 1},      {1000, 1, 0, 0},
    {1000, -5, 1, 0},   /* group */
    {1000, -6, 1, 0},   /* another group */
    {1000, 2, 0, 0},    /* global: 4 in (0, 1000] now */
    {1000, 3, 0, 1000}, /* global full until 2000 (the one at 1000) */
    {2000, -5, 1, 0},    {3000, -5, 1, 0}, /* group -5: 1000, 2000, 3000 */
    {4000, -5, 1, 7000},                   /* until 11000 */
    {10999, -5, 1, 1},   {11000, -5, 1, 0},
    {11000, 1, 0, 0}, /* other chats were never delayed by -5 */
};

static void
test_steps(void)
{
    struct telegram_pace *p = telegram_pace_new(100);

    telegram_pace_set_rates(p, (struct rate){1, 1000}, (struct rate){3, 10000},
                            (struct rate){4, 1000});
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int64_t w =
            telegram_pace_take(p, steps[i].chat, steps[i].group, steps[i].t);
        T_OKF(w == steps[i].want, "step %zu: wait %lld want %lld", i,
              (long long)w, (long long)steps[i].want);
    }
    telegram_pace_free(p);
}

/* 100 sends to one group at 20/60s: never 21 in any 60 s span. */
static void
test_group_property(void)
{
    struct telegram_pace *p = telegram_pace_new(10);
    int64_t t = 0, times[100];
    int sent = 0, bad = 0;

    telegram_pace_set_rates(p, (struct rate){1, 1000}, (struct rate){20, 60000},
                            (struct rate){30, 1000});
    while (sent < 100) {
        int64_t w = telegram_pace_take(p, -100, 1, t);
        if (w == 0)
            times[sent++] = t;
        else
            t += w;
    }
    for (int i = 20; i < 100; i++)
        if (times[i] - times[i - 20] < 60000)
            bad++;
    T_EQ_INT(bad, 0);
    T_EQ_INT(times[20], 60000);
    T_EQ_INT(times[99], 4 * 60000 + 19000);
    telegram_pace_free(p);
}

static void
test_backoff(void)
{
    T_EQ_INT(telegram_backoff_ms(1, 1000, 60000, 0), 500);
    T_EQ_INT(telegram_backoff_ms(1, 1000, 60000, 500), 1000);
    T_EQ_INT(telegram_backoff_ms(3, 1000, 60000, 0), 2000);
    T_EQ_INT(telegram_backoff_ms(30, 1000, 60000, 0), 30000);
    T_EQ_INT(telegram_backoff_ms(30, 1000, 60000, 30000), 60000);
    T_EQ_INT(telegram_backoff_ms(2, 3000, 30000, 3000), 6000);
    T_OK(telegram_backoff_ms(100, 3000, 30000, 12345) <= 30000);
}

int
main(void)
{
    test_steps();
    test_group_property();
    test_backoff();
    return t_done();
}
