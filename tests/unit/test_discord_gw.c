/* test_discord_gw: the gateway state machine, table-driven — (input, now,
 * random draw) → the actions it returns, for every op and close code. */
#include "connectors/discord_gw.h"
#include "tests/t.h"

#include <stdio.h>
#include <stdlib.h>

enum in {
    START,
    GATEWAY, /* arg: "URL REMAINING RESET_AFTER MAX_CONCURRENCY" */
    GWFAIL,
    OPEN,
    CLOSED, /* code */
    FRAME,  /* arg: JSON */
    TIMER,  /* code: the timer */
    RESYNC,
    STOP,
    END
};

struct step {
    enum in in;
    const char *arg;
    int code;
    int64_t now;
    double rnd;
    const char *want; /* the actions, rendered */
};

#define HB DGW_TIMER_HEARTBEAT
#define RC DGW_TIMER_RECONNECT
#define SN DGW_TIMER_SEND

#define GW "ws://gw 1000 0 1"
#define HELLO "{\"op\":10,\"d\":{\"heartbeat_interval\":1000}}"
#define READY                                                                  \
    "{\"op\":0,\"s\":1,\"t\":\"READY\",\"d\":{\"session_id\":\"S1\","          \
    "\"resume_gateway_url\":\"wss://resume\",\"user\":{\"id\":\"42\"}}}"
#define RESUMED "{\"op\":0,\"s\":9,\"t\":\"RESUMED\",\"d\":{}}"
#define ACK "{\"op\":11}"
#define MSG(s)                                                                 \
    "{\"op\":0,\"s\":" #s ",\"t\":\"MESSAGE_CREATE\",\"d\":{\"id\":\"1\"}}"
#define CLOSE_DOWN "close:4000 disarm:hb disarm:send down"
#define CLOSED_QUIET "disarm:hb disarm:send"

static const char *const timer_names[] = {"hb", "rc", "send"};

static void
render(const struct discord_gw_actions *out, char *buf, size_t cap)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < out->n && off < cap; i++) {
        const struct discord_gw_action *a = &out->v[i];
        char one[600];

        switch (a->kind) {
        case DGW_ACT_FETCH_GATEWAY:
            snprintf(one, sizeof(one), "fetch");
            break;
        case DGW_ACT_CONNECT:
            snprintf(one, sizeof(one), "connect:%s", a->url);
            break;
        case DGW_ACT_SEND:
            if (a->op == 2)
                snprintf(one, sizeof(one), "send:2");
            else
                snprintf(one, sizeof(one), "send:%d/%lld", a->op,
                         (long long)a->seq);
            break;
        case DGW_ACT_CLOSE:
            snprintf(one, sizeof(one), "close:%d", a->code);
            break;
        case DGW_ACT_ARM:
            snprintf(one, sizeof(one), "arm:%s@%lld", timer_names[a->timer],
                     (long long)a->at_ms);
            break;
        case DGW_ACT_DISARM:
            snprintf(one, sizeof(one), "disarm:%s", timer_names[a->timer]);
            break;
        default:
            snprintf(one, sizeof(one), "%s", discord_gw_action_name(a->kind));
            break;
        }
        off +=
            (size_t)snprintf(buf + off, cap - off, "%s%s", off ? " " : "", one);
    }
}

/* Runs the steps on g; every step's rendered actions must match. */
static void
run(struct discord_gw *g, const char *name, const struct step *steps)
{
    for (int i = 0; steps[i].in != END; i++) {
        const struct step *s = &steps[i];
        struct discord_gw_input in;
        struct discord_gw_actions out;
        struct discord_gateway_bot gb;
        struct discord_frame f;
        char got[2048];
        const char *why = NULL;

        memset(&in, 0, sizeof(in));
        memset(&f, 0, sizeof(f));
        switch (s->in) {
        case START:
            in.kind = DGW_IN_START;
            break;
        case GATEWAY: {
            long long rem, reset;
            int conc;

            memset(&gb, 0, sizeof(gb));
            sscanf(s->arg, "%511s %lld %lld %d", gb.url, &rem, &reset, &conc);
            gb.remaining = rem;
            gb.reset_after_ms = reset;
            gb.max_concurrency = conc;
            in.kind = DGW_IN_GATEWAY;
            in.gateway = &gb;
            break;
        }
        case GWFAIL:
            in.kind = DGW_IN_GATEWAY_FAIL;
            break;
        case OPEN:
            in.kind = DGW_IN_OPEN;
            break;
        case CLOSED:
            in.kind = DGW_IN_CLOSED;
            in.code = s->code;
            break;
        case FRAME:
            T_OKF(discord_codec_frame(s->arg, strlen(s->arg),
                                      discord_gw_self_id(g), &f, &why) == 0,
                  "%s step %d: %s", name, i, why ? why : "");
            in.kind = DGW_IN_FRAME;
            in.frame = &f;
            break;
        case TIMER:
            in.kind = DGW_IN_TIMER;
            in.timer = (enum discord_gw_timer)s->code;
            break;
        case RESYNC:
            in.kind = DGW_IN_RESYNC;
            break;
        case STOP:
            in.kind = DGW_IN_STOP;
            break;
        case END:
            break;
        }
        discord_gw_feed(g, &in, s->now, s->rnd, &out);
        discord_frame_release(&f);
        render(&out, got, sizeof(got));
        T_OKF(strcmp(got, s->want) == 0,
              "%s step %d (state %s):\n      got  \"%s\"\n      want \"%s\"",
              name, i, discord_gw_state_name(discord_gw_state(g)), got,
              s->want);
    }
}

/* Connected and READY at t=100 (heartbeat at 100 + 1000 × 0.25 = 350). */
#define UP_STEPS                                                               \
    {START, NULL, 0, 0, 0, "fetch"},                                           \
        {GATEWAY, GW, 0, 10, 0, "connect:ws://gw"},                            \
        {OPEN, NULL, 0, 20, 0, "arm:hb@30020"},                                \
        {FRAME, HELLO, 0, 100, 0.25, "arm:hb@350 send:2"},                     \
    {                                                                          \
        FRAME, READY, 0, 110, 0, "up save"                                     \
    }

static void
test_identify_heartbeat_zombie(void)
{
    static const struct step steps[] = {
        UP_STEPS,
        /* heartbeats every interval, carrying the last sequence */
        {TIMER, NULL, HB, 350, 0, "send:1/1 arm:hb@1350"},
        {FRAME, ACK, 0, 360, 0, ""},
        {FRAME, MSG(5), 0, 400, 0, ""},
        {TIMER, NULL, HB, 1350, 0, "send:1/5 arm:hb@2350"},
        /* op 1: a heartbeat now */
        {FRAME, "{\"op\":1,\"d\":null}", 0, 1400, 0, "send:1/5"},
        {FRAME, ACK, 0, 1410, 0, ""},
        {TIMER, NULL, HB, 2350, 0, "send:1/5 arm:hb@3350"},
        /* no ACK before the next beat: zombie → close non-1000, resume */
        {TIMER, NULL, HB, 3350, 0, CLOSE_DOWN},
        {CLOSED, NULL, 4000, 3360, 0.5, CLOSED_QUIET " connect:wss://resume"},
        {OPEN, NULL, 0, 3370, 0, "arm:hb@33370"},
        {FRAME, HELLO, 0, 3380, 0.5, "arm:hb@3880 send:6/5"},
        {FRAME, MSG(6), 0, 3390, 0, ""},
        {FRAME, RESUMED, 0, 3400, 0, "up"},
        {TIMER, NULL, HB, 3880, 0, "send:1/9 arm:hb@4880"},
        {END, NULL, 0, 0, 0, NULL},
    };
    struct discord_gw *g = discord_gw_new(0, 0);
    struct discord_gw_stats st;
    struct discord_gw_session s;

    run(g, "identify/zombie", steps);
    discord_gw_stats(g, &st);
    T_EQ_INT(st.zombies, 1);
    T_EQ_INT(st.identifies, 1);
    T_EQ_INT(st.resumes, 1);
    T_EQ_INT(st.interval_ms, 1000);
    discord_gw_session(g, &s);
    T_EQ_STR(s.session_id, "S1");
    T_EQ_STR(s.resume_url, "wss://resume");
    T_EQ_INT(s.seq, 9);
    T_EQ_STR(discord_gw_self_id(g), "42");
    discord_gw_free(g);
}

static void
test_ops(void)
{
    static const struct step op7[] = {
        UP_STEPS,
        {FRAME, "{\"op\":7,\"d\":null}", 0, 200, 0, CLOSE_DOWN},
        /* frames of the dying connection are ignored */
        {FRAME, MSG(3), 0, 205, 0, ""},
        {CLOSED, NULL, 4000, 210, 0, CLOSED_QUIET " connect:wss://resume"},
        {OPEN, NULL, 0, 220, 0, "arm:hb@30220"},
        {FRAME, HELLO, 0, 230, 0, "arm:hb@230 send:6/1"},
        {FRAME, RESUMED, 0, 240, 0, "up"},
        {END, NULL, 0, 0, 0, NULL},
    };
    static const struct step op9_true[] = {
        UP_STEPS,
        {FRAME, "{\"op\":9,\"d\":true}", 0, 200, 0, CLOSE_DOWN},
        {CLOSED, NULL, 4000, 210, 0, CLOSED_QUIET " connect:wss://resume"},
        {OPEN, NULL, 0, 220, 0, "arm:hb@30220"},
        {FRAME, HELLO, 0, 230, 0, "arm:hb@230 send:6/1"},
        {END, NULL, 0, 0, 0, NULL},
    };
    /* op 9 false: the session is gone; identify again after 1–5 s (and
     * never sooner than 5 s after the last identify) */
    static const struct step op9_false[] = {
        UP_STEPS,
        {FRAME, "{\"op\":9,\"d\":false}", 0, 2000, 0, "save " CLOSE_DOWN},
        {CLOSED, NULL, 4000, 2010, 0.5, CLOSED_QUIET " arm:rc@5010"},
        {TIMER, NULL, RC, 5010, 0, "arm:rc@5100"},
        {TIMER, NULL, RC, 5100, 0, "connect:ws://gw"},
        {OPEN, NULL, 0, 5110, 0, "arm:hb@35110"},
        {FRAME, HELLO, 0, 5120, 0, "arm:hb@5120 send:2"},
        {END, NULL, 0, 0, 0, NULL},
    };
    /* unknown ops and events change nothing */
    static const struct step unknown[] = {
        UP_STEPS,
        {FRAME, "{\"op\":3,\"d\":{}}", 0, 200, 0, ""},
        {FRAME, "{\"op\":0,\"s\":2,\"t\":\"TYPING_START\",\"d\":{}}", 0, 210, 0,
         ""},
        {FRAME, HELLO, 0, 220, 0, ""}, /* a second HELLO */
        {END, NULL, 0, 0, 0, NULL},
    };
    struct discord_gw *g;
    struct discord_gw_session s;

    g = discord_gw_new(0, 0);
    run(g, "op7", op7);
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "op9 true", op9_true);
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "op9 false", op9_false);
    discord_gw_session(g, &s);
    T_EQ_STR(s.session_id, "");
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "unknown", unknown);
    T_EQ_INT(discord_gw_seq(g), 2);
    discord_gw_free(g);
}

static void
test_close_codes(void)
{
    static const int resumable[] = {4000, 4001, 4002, 4003, 4005,
                                    4008, 1006, 1001, 4900};
    static const int reidentify[] = {4007, 4009};
    static const int fatal[] = {4004, 4010, 4011, 4012, 4013, 4014};
    char name[64];

    for (size_t i = 0; i < sizeof(resumable) / sizeof(resumable[0]); i++) {
        const struct step steps[] = {
            UP_STEPS,
            {CLOSED, NULL, resumable[i], 200, 0,
             CLOSED_QUIET " down connect:wss://resume"},
            {OPEN, NULL, 0, 210, 0, "arm:hb@30210"},
            {FRAME, HELLO, 0, 220, 0, "arm:hb@220 send:6/1"},
            {FRAME, RESUMED, 0, 230, 0, "up"},
            /* a second drop right after a good resume: at once again */
            {CLOSED, NULL, resumable[i], 240, 0,
             CLOSED_QUIET " down connect:wss://resume"},
            {END, NULL, 0, 0, 0, NULL},
        };
        struct discord_gw *g = discord_gw_new(0, 0);

        snprintf(name, sizeof(name), "close %d", resumable[i]);
        run(g, name, steps);
        discord_gw_free(g);
    }
    for (size_t i = 0; i < sizeof(reidentify) / sizeof(reidentify[0]); i++) {
        const struct step steps[] = {
            UP_STEPS,
            {CLOSED, NULL, reidentify[i], 6000, 0.25,
             CLOSED_QUIET " down save arm:rc@8000"},
            {TIMER, NULL, RC, 8000, 0, "connect:ws://gw"},
            {OPEN, NULL, 0, 8010, 0, "arm:hb@38010"},
            {FRAME, HELLO, 0, 8020, 0, "arm:hb@8020 send:2"},
            {END, NULL, 0, 0, 0, NULL},
        };
        struct discord_gw *g = discord_gw_new(0, 0);

        snprintf(name, sizeof(name), "close %d", reidentify[i]);
        run(g, name, steps);
        discord_gw_free(g);
    }
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        /* during IDENTIFY (bad token, intents) as it happens in practice */
        const struct step steps[] = {
            {START, NULL, 0, 0, 0, "fetch"},
            {GATEWAY, GW, 0, 10, 0, "connect:ws://gw"},
            {OPEN, NULL, 0, 20, 0, "arm:hb@30020"},
            {FRAME, HELLO, 0, 100, 0.25, "arm:hb@350 send:2"},
            {CLOSED, NULL, fatal[i], 200, 0,
             CLOSED_QUIET " down disarm:rc fatal"},
            /* nothing after a fatal close: no reconnect loop */
            {TIMER, NULL, HB, 350, 0, ""},
            {TIMER, NULL, RC, 400, 0, ""},
            {START, NULL, 0, 500, 0, ""},
            {CLOSED, NULL, 1006, 600, 0, ""},
            {END, NULL, 0, 0, 0, NULL},
        };
        struct discord_gw *g = discord_gw_new(0, 0);
        struct discord_gw_input in = {.kind = DGW_IN_CLOSED, .code = fatal[i]};
        struct discord_gw_actions out;
        struct discord_gw *g2 = discord_gw_new(0, 0);
        const char *why = NULL;

        snprintf(name, sizeof(name), "close %d", fatal[i]);
        run(g, name, steps);
        T_EQ_INT(discord_gw_state(g), DGW_STATE_STOPPED);
        discord_gw_free(g);
        /* the reason names the code; 4014 tells the admin what to do */
        run(g2, name, (const struct step[]){UP_STEPS, {END, 0, 0, 0, 0, 0}});
        discord_gw_feed(g2, &in, 300, 0, &out);
        for (size_t k = 0; k < out.n; k++)
            if (out.v[k].kind == DGW_ACT_FATAL)
                why = out.v[k].why;
        snprintf(name, sizeof(name), "close %d", fatal[i]);
        T_CONTAINS(why, name + 6);
        if (fatal[i] == 4014)
            T_CONTAINS(why, "enable the MESSAGE_CONTENT intent in the "
                            "developer portal");
        if (fatal[i] == 4004)
            T_CONTAINS(why, "token");
        discord_gw_free(g2);
    }
}

static void
test_limits(void)
{
    /* session_start_limit: nothing left → wait reset_after, fetch again */
    static const struct step start_limit[] = {
        {START, NULL, 0, 0, 0, "fetch"},
        {GATEWAY, "wss://gw 0 7000 1", 0, 100, 0, "arm:rc@7100"},
        {TIMER, NULL, RC, 7100, 0, "fetch"},
        {GATEWAY, "wss://gw 999 86400000 1", 0, 7200, 0, "connect:wss://gw"},
        {END, NULL, 0, 0, 0, NULL},
    };
    /* the last identify used the budget up: the next one waits the reset */
    static const struct step start_last[] = {
        {START, NULL, 0, 0, 0, "fetch"},
        {GATEWAY, "ws://gw 1 50000 1", 0, 0, 0, "connect:ws://gw"},
        {OPEN, NULL, 0, 10, 0, "arm:hb@30010"},
        {FRAME, HELLO, 0, 20, 0, "arm:hb@20 send:2"},
        {CLOSED, NULL, 4009, 100, 0, CLOSED_QUIET " down save arm:rc@1100"},
        {TIMER, NULL, RC, 1100, 0, "arm:rc@50000"},
        {TIMER, NULL, RC, 50000, 0, "fetch"},
        {END, NULL, 0, 0, 0, NULL},
    };
    /* /gateway/bot failing: backoff with equal jitter, then fetch again */
    static const struct step gw_fail[] = {
        {START, NULL, 0, 0, 0, "fetch"},
        {GWFAIL, NULL, 0, 100, 0, "arm:rc@600"},
        {TIMER, NULL, RC, 600, 0, "fetch"},
        {GWFAIL, NULL, 0, 700, 0.5, "arm:rc@2200"},
        {TIMER, NULL, RC, 2200, 0, "fetch"},
        {GATEWAY, GW, 0, 2300, 0, "connect:ws://gw"},
        {END, NULL, 0, 0, 0, NULL},
    };
    /* connections failing before HELLO: the first retry at once, then
     * 0.5-1 s, 1-2 s, 2-4 s... (equal jitter; rnd 0 here) */
    static const struct step backoff[] = {
        {START, NULL, 0, 0, 0, "fetch"},
        {GATEWAY, GW, 0, 0, 0, "connect:ws://gw"},
        {CLOSED, NULL, 1006, 10, 0, CLOSED_QUIET " down connect:ws://gw"},
        {CLOSED, NULL, 1006, 20, 0, CLOSED_QUIET " down arm:rc@520"},
        {TIMER, NULL, RC, 520, 0, "connect:ws://gw"},
        {CLOSED, NULL, 1006, 530, 0, CLOSED_QUIET " down arm:rc@1530"},
        {TIMER, NULL, RC, 1530, 0, "connect:ws://gw"},
        {OPEN, NULL, 0, 1540, 0, "arm:hb@31540"},
        /* no HELLO within 30 s: close and try again */
        {TIMER, NULL, HB, 31540, 0, CLOSE_DOWN},
        {CLOSED, NULL, 4000, 31550, 0, CLOSED_QUIET " arm:rc@33550"},
        {END, NULL, 0, 0, 0, NULL},
    };
    struct discord_gw *g;

    g = discord_gw_new(0, 0);
    run(g, "session_start_limit", start_limit);
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "session_start_limit used up", start_last);
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "gateway/bot fails", gw_fail);
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "backoff", backoff);
    discord_gw_free(g);
}

static void
test_send_budget(void)
{
    /* 6 sends per 60 s; with a 100 s interval one heartbeat is reserved:
     * identify + 4 resumes fill 5, the fifth resume waits for the window */
#define HELLO100 "{\"op\":10,\"d\":{\"heartbeat_interval\":100000}}"
#define OP7(t)                                                                 \
    {                                                                          \
        FRAME, "{\"op\":7}", 0, t, 0, CLOSE_DOWN                               \
    }
#define RESUME_AT(t, hb, want)                                                 \
    {CLOSED, NULL, 4000, t, 0, CLOSED_QUIET " connect:wss://resume"},          \
        {OPEN, NULL, 0, t, 0, hb}, {FRAME, HELLO100, 0, t, 0, want},           \
    {                                                                          \
        FRAME, RESUMED, 0, t, 0, "up"                                          \
    }
    static const struct step steps[] = {
        {START, NULL, 0, 0, 0, "fetch"},
        {GATEWAY, GW, 0, 0, 0, "connect:ws://gw"},
        {OPEN, NULL, 0, 1000, 0, "arm:hb@31000"},
        {FRAME, HELLO100, 0, 1000, 0, "arm:hb@1000 send:2"},
        {FRAME, READY, 0, 1000, 0, "up save"},
        OP7(2000),
        RESUME_AT(2000, "arm:hb@32000", "arm:hb@2000 send:6/1"),
        OP7(3000),
        RESUME_AT(3000, "arm:hb@33000", "arm:hb@3000 send:6/9"),
        OP7(4000),
        RESUME_AT(4000, "arm:hb@34000", "arm:hb@4000 send:6/9"),
        OP7(5000),
        RESUME_AT(5000, "arm:hb@35000", "arm:hb@5000 send:6/9"),
        OP7(6000),
        {CLOSED, NULL, 4000, 6000, 0, CLOSED_QUIET " connect:wss://resume"},
        {OPEN, NULL, 0, 6000, 0, "arm:hb@36000"},
        /* 5 sends in the window + 1 reserved = 6: held until the identify
         * at 1000 is 60 s old */
        {FRAME, HELLO100, 0, 6000, 0, "arm:hb@6000 arm:send@61000"},
        /* a heartbeat is never held */
        {TIMER, NULL, HB, 6000, 0, "send:1/9 arm:hb@106000"},
        {FRAME, ACK, 0, 6001, 0, ""},
        {TIMER, NULL, SN, 61000, 0, "arm:send@62000"},
        {TIMER, NULL, SN, 62000, 0, "send:6/9"},
        {FRAME, RESUMED, 0, 62010, 0, "up"},
        {END, NULL, 0, 0, 0, NULL},
    };
    struct discord_gw *g = discord_gw_new(6, 60000);
    struct discord_gw_stats st;

    run(g, "send budget", steps);
    discord_gw_stats(g, &st);
    T_EQ_INT(st.sends, 7);
    discord_gw_free(g);
}

static void
test_restore_stop_resync(void)
{
    static const struct step restored[] = {
        /* a saved session: straight to the resume url, no /gateway/bot */
        {START, NULL, 0, 0, 0, "connect:wss://saved"},
        {OPEN, NULL, 0, 10, 0, "arm:hb@30010"},
        {FRAME, HELLO, 0, 20, 0.5, "arm:hb@520 send:6/77"},
        /* the saved session expired: op 9 false → a fresh identify */
        {FRAME, "{\"op\":9,\"d\":false}", 0, 30, 0, "save " CLOSE_DOWN},
        {CLOSED, NULL, 4000, 40, 0, CLOSED_QUIET " arm:rc@1040"},
        {TIMER, NULL, RC, 1040, 0, "fetch"},
        {GATEWAY, GW, 0, 1050, 0, "connect:ws://gw"},
        {OPEN, NULL, 0, 1060, 0, "arm:hb@31060"},
        {FRAME, HELLO, 0, 1070, 0, "arm:hb@1070 send:2"},
        {FRAME, READY, 0, 1080, 0, "up save"},
        /* core could not store an event: resume from the seq before it */
        {RESYNC, NULL, 0, 1090, 0, CLOSE_DOWN},
        {CLOSED, NULL, 4000, 1100, 0, CLOSED_QUIET " connect:wss://resume"},
        {OPEN, NULL, 0, 1110, 0, "arm:hb@31110"},
        {FRAME, HELLO, 0, 1120, 0, "arm:hb@1120 send:6/1"},
        {FRAME, RESUMED, 0, 1130, 0, "up"},
        /* our shutdown: resumable close, the session saved */
        {STOP, NULL, 0, 1200, 0,
         "disarm:hb disarm:rc disarm:send save close:4000 down"},
        {FRAME, MSG(12), 0, 1210, 0, ""},
        {CLOSED, NULL, 4000, 1220, 0, CLOSED_QUIET},
        {TIMER, NULL, HB, 2000, 0, ""},
        {END, NULL, 0, 0, 0, NULL},
    };
    static const struct step stop_idle[] = {
        {START, NULL, 0, 0, 0, "fetch"},
        {GWFAIL, NULL, 0, 0, 0, "arm:rc@500"},
        {STOP, NULL, 0, 10, 0, "disarm:hb disarm:rc disarm:send save down"},
        {TIMER, NULL, RC, 500, 0, ""},
        {END, NULL, 0, 0, 0, NULL},
    };
    struct discord_gw_session s = {"SAVED", "wss://saved", 77, "4242"}, got;
    struct discord_gw *g = discord_gw_new(0, 0);

    discord_gw_restore(g, &s);
    /* who we are is known before RESUMED (which does not say it) */
    T_EQ_STR(discord_gw_self_id(g), "4242");
    run(g, "restored", restored);
    T_EQ_INT(discord_gw_state(g), DGW_STATE_STOPPED);
    discord_gw_session(g, &got);
    T_EQ_STR(got.session_id, "S1");
    T_EQ_INT(got.seq, 9);
    T_EQ_STR(got.self_id, "42");
    discord_gw_free(g);
    g = discord_gw_new(0, 0);
    run(g, "stop idle", stop_idle);
    discord_gw_free(g);
    T_EQ_STR(discord_gw_state_name(DGW_STATE_READY), "ready");
    discord_gw_free(NULL);
}

int
main(void)
{
    test_identify_heartbeat_zombie();
    test_ops();
    test_close_codes();
    test_limits();
    test_send_budget();
    test_restore_stop_resync();
    return t_done();
}
