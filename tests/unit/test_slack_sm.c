/* test_slack_sm: the Socket Mode state machine as tables of inputs and expected
 * actions. */
#include <stdlib.h>

#include "connectors/slack_sm.h"
#include "tests/t.h"

/*
 * One step: an input and what must come out, written compactly:
 * actions as "name[conn]" separated by spaces ("open", "connect2",
 * "close1", "accept2", "ack1", "up", "down", "fatal"), the state after,
 * and, when wake >= 0, slack_sm_wake() - now (0 = no timer wanted).
 */
struct step {
    enum slack_sm_input_kind in;
    int64_t now;
    unsigned conn;
    int fatal_or_ok;  /* *_FAIL: fatal; ACCEPTED: ok */
    int64_t retry_ms; /* *_FAIL: retry_after; WS_CLOSED: code */
    enum slack_disconnect reason;
    const char *acts;
    enum slack_sm_state state;
    int64_t wake; /* -1 = not checked */
};

#define S(in, now, conn, f, r, reason, acts, state, wake)                      \
    {                                                                          \
        SLACK_SM_IN_##in, now, conn, f, r, reason, acts, SLACK_SM_##state,     \
            wake                                                               \
    }
#define NO SLACK_DISC_OTHER

static const struct step happy_refresh[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 10, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 20, 0, 0, 0, NO, "connect1", CONNECTING, 10000),
    S(WS_OPEN, 30, 1, 0, 0, NO, "", CONNECTING, -1),
    S(HELLO, 40, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(ENVELOPE, 50, 1, 0, 0, NO, "accept1", CONNECTED, 0),
    S(ACCEPTED, 50, 1, 1, 0, NO, "ack1", CONNECTED, 0),
    /* not durable: no ack, Slack redelivers */
    S(ENVELOPE, 60, 1, 0, 0, NO, "accept1", CONNECTED, 0),
    S(ACCEPTED, 60, 1, 0, 0, NO, "", CONNECTED, 0),
    /* refresh_requested: a new connection first */
    S(DISCONNECT, 70, 1, 0, 0, SLACK_DISC_REFRESH, "open", REFRESHING, 0),
    S(ENVELOPE, 80, 1, 0, 0, NO, "accept1", REFRESHING, 0),
    S(ACCEPTED, 80, 1, 1, 0, NO, "ack1", REFRESHING, 0),
    S(OPEN_OK, 90, 0, 0, 0, NO, "connect2", REFRESHING, 10000),
    /* both live: envelopes from either are handled */
    S(ENVELOPE, 95, 2, 0, 0, NO, "accept2", REFRESHING, -1),
    S(ACCEPTED, 95, 2, 1, 0, NO, "ack2", REFRESHING, -1),
    S(ENVELOPE, 96, 1, 0, 0, NO, "accept1", REFRESHING, -1),
    /* the new hello closes the old one */
    S(HELLO, 100, 2, 0, 0, NO, "close1", CONNECTED, 0),
    S(ACCEPTED, 101, 1, 1, 0, NO, "ack1", CONNECTED, 0),
    S(WS_CLOSED, 110, 1, 0, 1000, NO, "", CONNECTED, 0),
    /* a second refresh works the same way */
    S(DISCONNECT, 120, 2, 0, 0, SLACK_DISC_WARNING, "open", REFRESHING, 0),
    S(DISCONNECT, 121, 2, 0, 0, SLACK_DISC_REFRESH, "", REFRESHING, 0),
    S(OPEN_OK, 130, 0, 0, 0, NO, "connect3", REFRESHING, 10000),
    S(HELLO, 140, 3, 0, 0, NO, "close2", CONNECTED, 0),
    S(STOP, 150, 0, 0, 0, NO, "close3 down", STOPPED, 0),
    S(ENVELOPE, 160, 3, 0, 0, NO, "", STOPPED, 0),
};

/* The old socket dies (warning: ~10 s later) before the new hello. */
static const struct step warning_old_dies[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 0, 0, 0, 0, NO, "connect1", CONNECTING, 10000),
    S(HELLO, 0, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(DISCONNECT, 1000, 1, 0, 0, SLACK_DISC_WARNING, "open", REFRESHING, 0),
    S(OPEN_OK, 2000, 0, 0, 0, NO, "connect2", REFRESHING, 10000),
    S(WS_CLOSED, 3000, 1, 0, 1000, NO, "down", CONNECTING, 9000),
    S(HELLO, 4000, 2, 0, 0, NO, "up2", CONNECTED, 0),
};

/* The old socket dies while the new url is being asked for. */
static const struct step refresh_old_dies_opening[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 0, 0, 0, 0, NO, "connect1", CONNECTING, -1),
    S(HELLO, 0, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(DISCONNECT, 0, 1, 0, 0, SLACK_DISC_REFRESH, "open", REFRESHING, 0),
    S(WS_CLOSED, 5, 1, 0, 1006, NO, "down", OPENING, 0),
    S(OPEN_OK, 10, 0, 0, 0, NO, "connect2", CONNECTING, 10000),
    S(HELLO, 20, 2, 0, 0, NO, "up2", CONNECTED, 0),
};

/* The replacement fails: the old one keeps serving, a retry follows. */
static const struct step refresh_new_fails[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 0, 0, 0, 0, NO, "connect1", CONNECTING, -1),
    S(HELLO, 0, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(DISCONNECT, 0, 1, 0, 0, SLACK_DISC_REFRESH, "open", REFRESHING, 0),
    S(OPEN_FAIL, 10, 0, 0, 0, NO, "", REFRESHING, 500),
    S(TICK, 509, 0, 0, 0, NO, "", REFRESHING, 1),
    S(TICK, 510, 0, 0, 0, NO, "open", REFRESHING, 0),
    S(OPEN_OK, 520, 0, 0, 0, NO, "connect2", REFRESHING, 10000),
    S(WS_CLOSED, 530, 2, 0, 1006, NO, "", REFRESHING, 1000),
    S(TICK, 1530, 0, 0, 0, NO, "open", REFRESHING, 0),
    S(OPEN_OK, 1540, 0, 0, 0, NO, "connect3", REFRESHING, 10000),
    /* no hello within 10 s: closed, try again */
    S(TICK, 11540, 0, 0, 0, NO, "close3", REFRESHING, 2000),
    S(TICK, 13540, 0, 0, 0, NO, "open", REFRESHING, 0),
    S(OPEN_OK, 13550, 0, 0, 0, NO, "connect4", REFRESHING, -1),
    S(HELLO, 13560, 4, 0, 0, NO, "close1", CONNECTED, 0),
};

/* Unexpected closes: backoff 500, 1000, 2000 … (rnd 0: w/2), fresh url
 * every time, retry_after honoured, a hello resets the count. */
static const struct step backoff[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 0, 0, 0, 0, NO, "connect1", CONNECTING, -1),
    S(HELLO, 0, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(WS_CLOSED, 1000, 1, 0, 1006, NO, "down", BACKOFF, 500),
    S(TICK, 1499, 0, 0, 0, NO, "", BACKOFF, 1),
    S(TICK, 1500, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_FAIL, 1600, 0, 0, 0, NO, "", BACKOFF, 1000),
    S(TICK, 2600, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_FAIL, 2700, 0, 0, 30000, NO, "", BACKOFF, 30000),
    S(TICK, 32700, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 32800, 0, 0, 0, NO, "connect2", CONNECTING, 10000),
    /* refused / dropped before hello */
    S(WS_CLOSED, 32900, 2, 0, 1006, NO, "", BACKOFF, 4000),
    S(TICK, 36900, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 37000, 0, 0, 0, NO, "connect3", CONNECTING, 10000),
    /* open but silent: the hello deadline closes it */
    S(TICK, 47000, 0, 0, 0, NO, "close3", BACKOFF, 8000),
    S(TICK, 55000, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 55000, 0, 0, 0, NO, "connect4", CONNECTING, 10000),
    S(HELLO, 56000, 4, 0, 0, NO, "up4", CONNECTED, 0),
    S(WS_CLOSED, 57000, 4, 0, 1006, NO, "down", BACKOFF, 500),
    /* a late close of an old socket changes nothing */
    S(WS_CLOSED, 57001, 3, 0, 1000, NO, "", BACKOFF, 499),
};

static const struct step auth_transient[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_FAIL, 0, 0, 0, 0, NO, "", BACKOFF, 500),
    S(TICK, 500, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 600, 0, 0, 0, NO, "open", OPENING, 0),
};

/* No reconnect loop: every later input is ignored. */
static const struct step auth_fatal[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_FAIL, 10, 0, 1, 0, NO, "fatal", STOPPED, 0),
    S(TICK, 100000, 0, 0, 0, NO, "", STOPPED, 0),
    S(START, 100001, 0, 0, 0, NO, "", STOPPED, 0),
};

static const struct step open_fatal[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_FAIL, 10, 0, 1, 0, NO, "fatal", STOPPED, 0),
    S(TICK, 100000, 0, 0, 0, NO, "", STOPPED, 0),
};

static const struct step open_fatal_refreshing[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 0, 0, 0, 0, NO, "connect1", CONNECTING, -1),
    S(HELLO, 0, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(DISCONNECT, 0, 1, 0, 0, SLACK_DISC_WARNING, "open", REFRESHING, 0),
    S(OPEN_FAIL, 10, 0, 1, 0, NO, "close1 fatal", STOPPED, 0),
};

static const struct step link_disabled[] = {
    S(START, 0, 0, 0, 0, NO, "auth", AUTH, 0),
    S(AUTH_OK, 0, 0, 0, 0, NO, "open", OPENING, 0),
    S(OPEN_OK, 0, 0, 0, 0, NO, "connect1", CONNECTING, -1),
    S(HELLO, 0, 1, 0, 0, NO, "up1", CONNECTED, 0),
    S(DISCONNECT, 10, 1, 0, 0, SLACK_DISC_LINK_DISABLED, "close1 fatal",
      STOPPED, 0),
    S(WS_CLOSED, 20, 1, 0, 1000, NO, "", STOPPED, 0),
    S(TICK, 100000, 0, 0, 0, NO, "", STOPPED, 0),
};

static void
render(const struct slack_sm_action *a, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++) {
        int w;

        if (a[i].conn)
            w = snprintf(out + o, cap - o, "%s%s%u", i ? " " : "",
                         slack_sm_action_name(a[i].kind), a[i].conn);
        else
            w = snprintf(out + o, cap - o, "%s%s", i ? " " : "",
                         slack_sm_action_name(a[i].kind));
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

static void
run(const char *name, const struct step *steps, size_t n)
{
    struct slack_sm *m = slack_sm_new(NULL);
    char url[32];

    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        struct slack_sm_input in;
        struct slack_sm_action acts[SLACK_SM_ACTIONS_MAX];
        char got[256];
        size_t k;
        int64_t wake;

        memset(&in, 0, sizeof(in));
        in.kind = s->in;
        in.now_ms = s->now;
        in.rnd = 0;
        in.conn = s->conn;
        in.fatal = s->fatal_or_ok;
        in.ok = s->fatal_or_ok;
        in.retry_after_ms = s->in == SLACK_SM_IN_WS_CLOSED ? 0 : s->retry_ms;
        in.code = (int)s->retry_ms;
        in.reason = s->reason;
        snprintf(url, sizeof(url), "wss://x/%zu", i);
        in.url = url;
        in.envelope_id = "env";
        in.why = "test";
        k = slack_sm_feed(m, &in, acts, SLACK_SM_ACTIONS_MAX);
        render(acts, k, got, sizeof(got));
        T_OKF(strcmp(got, s->acts) == 0,
              "%s step %zu: actions \"%s\", want "
              "\"%s\"",
              name, i, got, s->acts);
        T_OKF(slack_sm_state(m) == s->state, "%s step %zu: state %s, want %s",
              name, i, slack_sm_state_names[slack_sm_state(m)],
              slack_sm_state_names[s->state]);
        for (size_t j = 0; j < k; j++) {
            if (acts[j].kind == SLACK_SM_ACT_CONNECT)
                T_EQ_STR(acts[j].url, url); /* the fresh url, every time */
            if (acts[j].kind == SLACK_SM_ACT_ACK ||
                acts[j].kind == SLACK_SM_ACT_ACCEPT)
                T_EQ_STR(acts[j].envelope_id, "env");
            if (acts[j].kind == SLACK_SM_ACT_FATAL)
                T_OK(acts[j].reason && acts[j].reason[0]);
        }
        wake = slack_sm_wake(m);
        if (s->wake >= 0)
            T_OKF((s->wake == 0 && wake == 0) ||
                      (s->wake > 0 && wake - s->now == s->wake),
                  "%s step %zu: wake in %lld, want %lld", name, i,
                  (long long)(wake ? wake - s->now : 0), (long long)s->wake);
    }
    slack_sm_free(m);
}

#define RUN(t) run(#t, t, sizeof(t) / sizeof(t[0]))

/* Jitter stays within [w/2, w] and the cap holds. */
static void
test_jitter(void)
{
    struct slack_sm_config cfg = {100, 1000, 500};
    struct slack_sm *m = slack_sm_new(&cfg);
    struct slack_sm_action acts[SLACK_SM_ACTIONS_MAX];
    struct slack_sm_input in;
    int64_t now = 0;
    static const int64_t w[] = {100, 200, 400, 800, 1000, 1000, 1000};

    memset(&in, 0, sizeof(in));
    in.kind = SLACK_SM_IN_START;
    slack_sm_feed(m, &in, acts, SLACK_SM_ACTIONS_MAX);
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        int64_t d;

        in.kind = SLACK_SM_IN_AUTH_FAIL;
        in.now_ms = now;
        in.rnd = 0xffffffffu - (uint32_t)i * 7919u;
        slack_sm_feed(m, &in, acts, SLACK_SM_ACTIONS_MAX);
        d = slack_sm_wake(m) - now;
        T_OKF(d >= w[i] / 2 && d <= w[i],
              "attempt %zu: %lld not in [%lld, "
              "%lld]",
              i + 1, (long long)d, (long long)w[i] / 2, (long long)w[i]);
        now += d;
        in.kind = SLACK_SM_IN_TICK;
        in.now_ms = now;
        T_EQ_INT(slack_sm_feed(m, &in, acts, SLACK_SM_ACTIONS_MAX), 1);
        T_EQ_INT(acts[0].kind, SLACK_SM_ACT_AUTH);
    }
    T_EQ_INT(slack_sm_attempts(m), 7);
    slack_sm_free(m);
    slack_sm_free(NULL);
}

int
main(void)
{
    RUN(happy_refresh);
    RUN(warning_old_dies);
    RUN(refresh_old_dies_opening);
    RUN(refresh_new_fails);
    RUN(backoff);
    RUN(auth_transient);
    RUN(auth_fatal);
    RUN(open_fatal);
    RUN(open_fatal_refreshing);
    RUN(link_disabled);
    test_jitter();
    return t_done();
}
