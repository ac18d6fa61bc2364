/* test_breaker: the per-model circuit breaker, as tables of steps on a fixed
 * clock. */
#include "llm/breaker.h"
#include "tests/t.h"

enum op {
    OP_END = 0,
    OP_OK,      /* breaker_success(probe) */
    OP_FAIL,    /* breaker_failure(probe) */
    OP_RELEASE, /* breaker_release(probe) */
    OP_ADMIT,   /* breaker_admit: expect verdict */
    OP_CHECK,   /* breaker_check: expect verdict, must not change state */
    OP_STATE,   /* expect state */
    OP_WAIT,    /* expect breaker_wait_ms */
    OP_OPENS,   /* expect the opens counter */
};

struct step {
    enum op op;
    int64_t now;
    int probe;
    int64_t want; /* verdict, state, wait or count */
};

struct scenario {
    const char *name;
    struct breaker_config cfg; /* zero consecutive and window = defaults */
    struct step steps[48];
};

#define DEF                                                                    \
    {                                                                          \
        0, 0, 0, 0, 0, 0                                                       \
    }
/* small numbers so a table stays short: 3 in a row; ratio >= 50 % of the
 * last 8 with >= 6 recorded; cooldown 1 s doubling to 4 s */
#define SMALL                                                                  \
    {                                                                          \
        3, 8, 6, 500, 1000, 4000                                               \
    }

static const struct scenario scenarios[] = {
    {"closed lets everything go, successes keep it closed",
     SMALL,
     {{OP_ADMIT, 0, 0, BREAKER_GO},
      {OP_OK, 1, 0, 0},
      {OP_OK, 2, 0, 0},
      {OP_STATE, 3, 0, BREAKER_CLOSED},
      {OP_WAIT, 3, 0, 0},
      {OP_OPENS, 3, 0, 0}}},
    {"consecutive failures open it; a success in between resets the run",
     SMALL,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 1, 0, 0},
      {OP_OK, 2, 0, 0},
      {OP_FAIL, 3, 0, 0},
      {OP_FAIL, 4, 0, 0},
      {OP_STATE, 4, 0, BREAKER_CLOSED},
      {OP_FAIL, 10, 0, 0},
      {OP_STATE, 10, 0, BREAKER_OPEN},
      {OP_OPENS, 10, 0, 1},
      {OP_ADMIT, 10, 0, BREAKER_WAIT},
      {OP_WAIT, 10, 0, 1000},
      {OP_WAIT, 500, 0, 510},
      {OP_ADMIT, 1009, 0, BREAKER_WAIT},
      {OP_STATE, 1010, 0, BREAKER_HALF_OPEN},
      {OP_WAIT, 1010, 0, 0}}},
    {"failure ratio opens it without a run of consecutive failures",
     SMALL,
     /* F F O F O F: 4 of 6 failed, never 3 in a row */
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 1, 0, 0},
      {OP_OK, 2, 0, 0},
      {OP_FAIL, 3, 0, 0},
      {OP_OK, 4, 0, 0},
      {OP_STATE, 4, 0, BREAKER_CLOSED}, /* 3/5, under min_samples */
      {OP_FAIL, 5, 0, 0},
      {OP_STATE, 5, 0, BREAKER_OPEN},
      {OP_WAIT, 5, 0, 1000}}},
    {"the ratio counts only the last `window` outcomes",
     SMALL,
     /* 8 successes, then F F O F F: counted from the start that is 4 of
      * 13, but the last 8 are O O O F F O F F = 4/8 */
     {{OP_OK, 0, 0, 0},
      {OP_OK, 1, 0, 0},
      {OP_OK, 2, 0, 0},
      {OP_OK, 3, 0, 0},
      {OP_OK, 4, 0, 0},
      {OP_OK, 5, 0, 0},
      {OP_OK, 6, 0, 0},
      {OP_OK, 7, 0, 0},
      {OP_FAIL, 8, 0, 0},
      {OP_FAIL, 9, 0, 0},
      {OP_OK, 10, 0, 0},
      {OP_FAIL, 11, 0, 0},
      {OP_STATE, 11, 0, BREAKER_CLOSED}, /* 3/8 */
      {OP_FAIL, 12, 0, 0},
      {OP_STATE, 12, 0, BREAKER_OPEN}}},
    {"exactly one probe in half-open; the others wait for its verdict",
     SMALL,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_CHECK, 1000, 0, BREAKER_PROBE},
      {OP_CHECK, 1000, 0, BREAKER_PROBE}, /* check commits nothing */
      {OP_ADMIT, 1000, 0, BREAKER_PROBE},
      {OP_ADMIT, 1000, 0, BREAKER_WAIT},
      {OP_ADMIT, 1500, 0, BREAKER_WAIT},
      {OP_WAIT, 1500, 0, -1},
      {OP_STATE, 1500, 0, BREAKER_HALF_OPEN},
      /* a request sent before it opened reports late: ignored */
      {OP_OK, 1600, 0, 0},
      {OP_FAIL, 1600, 0, 0},
      {OP_STATE, 1600, 0, BREAKER_HALF_OPEN},
      {OP_ADMIT, 1600, 0, BREAKER_WAIT},
      {OP_OK, 1700, 1, 0},
      {OP_STATE, 1700, 0, BREAKER_CLOSED},
      {OP_ADMIT, 1700, 0, BREAKER_GO},
      {OP_OPENS, 1700, 0, 1}}},
    {"a failed probe reopens with the cooldown doubled up to the cap",
     SMALL,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_WAIT, 0, 0, 1000},
      {OP_ADMIT, 1000, 0, BREAKER_PROBE},
      {OP_FAIL, 1100, 1, 0},
      {OP_STATE, 1100, 0, BREAKER_OPEN},
      {OP_WAIT, 1100, 0, 2000},
      {OP_ADMIT, 3099, 0, BREAKER_WAIT},
      {OP_ADMIT, 3100, 0, BREAKER_PROBE},
      {OP_FAIL, 3100, 1, 0},
      {OP_WAIT, 3100, 0, 4000},
      {OP_ADMIT, 7100, 0, BREAKER_PROBE},
      {OP_FAIL, 7200, 1, 0},
      {OP_WAIT, 7200, 0, 4000}, /* capped */
      {OP_ADMIT, 11200, 0, BREAKER_PROBE},
      {OP_FAIL, 11200, 1, 0},
      {OP_WAIT, 11200, 0, 4000},
      {OP_OPENS, 11200, 0, 5},
      /* success closes it and the cooldown starts over at 1 s */
      {OP_ADMIT, 15200, 0, BREAKER_PROBE},
      {OP_OK, 15300, 1, 0},
      {OP_STATE, 15300, 0, BREAKER_CLOSED},
      {OP_FAIL, 16000, 0, 0},
      {OP_FAIL, 16000, 0, 0},
      {OP_FAIL, 16000, 0, 0},
      {OP_WAIT, 16000, 0, 1000}}},
    {"a released probe lets the next request probe",
     SMALL,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_ADMIT, 1000, 0, BREAKER_PROBE},
      {OP_ADMIT, 1000, 0, BREAKER_WAIT},
      {OP_RELEASE, 1200, 1, 0},
      {OP_WAIT, 1200, 0, 0},
      {OP_ADMIT, 1200, 0, BREAKER_PROBE},
      {OP_RELEASE, 1300, 0, 0}, /* a non-probe release changes nothing */
      {OP_ADMIT, 1300, 0, BREAKER_WAIT},
      {OP_STATE, 1300, 0, BREAKER_HALF_OPEN}}},
    {"after closing, old failures do not count toward the next opening",
     SMALL,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_ADMIT, 1000, 0, BREAKER_PROBE},
      {OP_OK, 1000, 1, 0},
      {OP_FAIL, 1001, 0, 0},
      {OP_FAIL, 1002, 0, 0},
      {OP_STATE, 1002, 0, BREAKER_CLOSED},
      {OP_FAIL, 1003, 0, 0},
      {OP_STATE, 1003, 0, BREAKER_OPEN}}},
    {"defaults: 5 in a row open it for 5 s",
     DEF,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_STATE, 0, 0, BREAKER_CLOSED},
      {OP_FAIL, 0, 0, 0},
      {OP_STATE, 0, 0, BREAKER_OPEN},
      {OP_WAIT, 0, 0, BREAKER_COOLDOWN_MS}}},
    {"defaults: the cooldown doubles 5, 10, 20 ... and stops at 5 min",
     DEF,
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_ADMIT, 5000, 0, BREAKER_PROBE},
      {OP_FAIL, 5000, 1, 0},
      {OP_WAIT, 5000, 0, 10000},
      {OP_ADMIT, 15000, 0, BREAKER_PROBE},
      {OP_FAIL, 15000, 1, 0},
      {OP_WAIT, 15000, 0, 20000},
      {OP_ADMIT, 35000, 0, BREAKER_PROBE},
      {OP_FAIL, 35000, 1, 0},
      {OP_WAIT, 35000, 0, 40000},
      {OP_ADMIT, 75000, 0, BREAKER_PROBE},
      {OP_FAIL, 75000, 1, 0},
      {OP_WAIT, 75000, 0, 80000},
      {OP_ADMIT, 155000, 0, BREAKER_PROBE},
      {OP_FAIL, 155000, 1, 0},
      {OP_WAIT, 155000, 0, 160000},
      {OP_ADMIT, 315000, 0, BREAKER_PROBE},
      {OP_FAIL, 315000, 1, 0},
      {OP_WAIT, 315000, 0, 300000},
      {OP_ADMIT, 615000, 0, BREAKER_PROBE},
      {OP_FAIL, 615000, 1, 0},
      {OP_WAIT, 615000, 0, 300000}}},
    {"consecutive off, ratio only",
     {0, 4, 4, 750, 100, 100},
     {{OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_FAIL, 0, 0, 0},
      {OP_STATE, 0, 0, BREAKER_CLOSED}, /* 3 < min_samples */
      {OP_OK, 0, 0, 0},
      /* 3/4 = 750 permille, but only a failure opens it */
      {OP_STATE, 0, 0, BREAKER_CLOSED},
      {OP_FAIL, 0, 0, 0}, /* F F O F */
      {OP_STATE, 0, 0, BREAKER_OPEN},
      {OP_WAIT, 0, 0, 100}}},
};

static void
run(const struct scenario *sc)
{
    struct breaker_config cfg = sc->cfg;
    struct breaker b;

    if (cfg.consecutive == 0 && cfg.window == 0)
        breaker_config_default(&cfg);
    breaker_init(&b, &cfg);
    for (size_t i = 0; i < sizeof(sc->steps) / sizeof(sc->steps[0]); i++) {
        const struct step *s = &sc->steps[i];
        struct breaker before;

        switch (s->op) {
        case OP_END:
            return;
        case OP_OK:
            breaker_success(&b, s->probe, s->now);
            break;
        case OP_FAIL:
            breaker_failure(&b, s->probe, s->now);
            break;
        case OP_RELEASE:
            breaker_release(&b, s->probe);
            break;
        case OP_ADMIT:
            T_OKF(breaker_admit(&b, s->now) == (enum breaker_verdict)s->want,
                  "%s: step %zu admit", sc->name, i);
            break;
        case OP_CHECK:
            before = b;
            T_OKF(breaker_check(&b, s->now) == (enum breaker_verdict)s->want,
                  "%s: step %zu check", sc->name, i);
            T_OKF(before.probing == b.probing && before.state == b.state,
                  "%s: step %zu check changed state", sc->name, i);
            break;
        case OP_STATE:
            T_OKF(breaker_state(&b, s->now) == (enum breaker_state)s->want,
                  "%s: step %zu state %s, want %s", sc->name, i,
                  breaker_state_name(breaker_state(&b, s->now)),
                  breaker_state_name((enum breaker_state)s->want));
            break;
        case OP_WAIT:
            T_OKF(breaker_wait_ms(&b, s->now) == s->want,
                  "%s: step %zu wait %lld, want %lld", sc->name, i,
                  (long long)breaker_wait_ms(&b, s->now), (long long)s->want);
            break;
        case OP_OPENS:
            T_OKF((int64_t)b.opens == s->want, "%s: step %zu opens %llu",
                  sc->name, i, (unsigned long long)b.opens);
            break;
        }
    }
}

/* Settings out of range are clamped, and a reload keeps the state. */
static void
test_clamp_and_configure(void)
{
    struct breaker_config cfg = {3, 1000, 5000, 2000, 0, -5};
    struct breaker b;

    breaker_init(&b, &cfg);
    T_EQ_INT(b.cfg.window, BREAKER_WINDOW_MAX);
    T_EQ_INT(b.cfg.min_samples, BREAKER_WINDOW_MAX);
    T_EQ_INT(b.cfg.ratio_pm, 1000);
    T_EQ_INT(b.cfg.cooldown_ms, 1);
    T_EQ_INT(b.cfg.cooldown_max_ms, 1);

    cfg = (struct breaker_config){2, 8, 4, 500, 1000, 8000};
    breaker_init(&b, &cfg);
    breaker_failure(&b, 0, 0);
    breaker_failure(&b, 0, 0);
    T_EQ_INT(breaker_admit(&b, 1000), BREAKER_PROBE);
    breaker_failure(&b, 1, 1000); /* cooldown 2 s */
    T_EQ_INT(breaker_wait_ms(&b, 1000), 2000);
    cfg.cooldown_ms = 500;
    cfg.cooldown_max_ms = 1500;
    breaker_configure(&b, &cfg);
    T_EQ_INT(breaker_state(&b, 1000), BREAKER_OPEN); /* state kept */
    T_EQ_INT(b.cooldown_ms, 1500);                   /* clamped to the cap */
    T_EQ_INT(breaker_admit(&b, 3000), BREAKER_PROBE);
    breaker_success(&b, 1, 3000);
    T_EQ_INT(b.cooldown_ms, 500);
    T_EQ_STR(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
}

int
main(void)
{
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        run(&scenarios[i]);
    test_clamp_and_configure();
    return t_done();
}
