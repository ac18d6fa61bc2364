/* test_slack: the Slack connector with a real core, a fake asker and the
 * Slack fake on one loop: acks while the model is slow, redeliveries,
 * refreshes, fatal errors, pacing. */
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "connectors/slack.h"
#include "core/core.h"
#include "core/event.h"
#include "core/log.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/slack_fake.h"
#include "tests/fakes/slack_fixture.h"
#include "tests/fakes/send_tally.h"
#include "tests/t.h"

static char tmpdir[64];

struct fixture {
    struct slack_fixture x; /* loop, store, core, fake, connector */
    /* answers "**answer** to: TEXT & more": Markdown that needs
     * converting, and a character that needs escaping */
    struct core_fixture_asker fa;
    int fatals;
    char fatal_why[200];
};

static void
on_fatal(void *arg, const char *why)
{
    struct fixture *fx = arg;

    fx->fatals++;
    snprintf(fx->fatal_why, sizeof(fx->fatal_why), "%s", why);
}

/* ---- fixture ---- */

static int
fixture_init(struct fixture *fx, const char *name, int delay_ms)
{
    struct core_asker asker;
    struct slack_timing tm = {100, 1000, 2000, 1000, 1000, 50, 0, 0, 0};
    struct slack_fixture_opts o = {"1/1s", &asker, &tm, on_fatal, fx};

    memset(fx, 0, sizeof(*fx));
    fx->fa.loop = &fx->x.loop;
    fx->fa.delay_ms = delay_ms;
    fx->fa.prefix = "**answer** to: ";
    fx->fa.suffix = " & more";
    fx->fa.tokens_in = 10;
    asker = core_fixture_asker_ops(&fx->fa);
    return slack_fixture_open(&fx->x, tmpdir, name, &o, NULL);
}

static void
drop_askers(void *arg)
{
    struct fixture *fx = arg;

    core_fixture_asker_drop(&fx->fa);
}

static void
fixture_release(struct fixture *fx)
{
    T_EQ_INT(slack_fixture_close(&fx->x, drop_askers, fx), 0);
}

/* run_until()'s predicate as a core_fixture_loop_until() one */
struct until {
    int (*pred)(struct fixture *);
    struct fixture *fx;
};

static int
until_holds(void *arg)
{
    struct until *u = arg;

    return u->pred != NULL && u->pred(u->fx);
}

/* Runs the loop until pred holds or max_ms pass (uv timer watchdog). */
static int
run_until(struct fixture *fx, int (*pred)(struct fixture *), int max_ms)
{
    struct until u = {pred, fx};

    return core_fixture_loop_until(&fx->x.loop, until_holds, &u, 5, max_ms);
}

static int
is_up(struct fixture *fx)
{
    return slack_is_up(fx->x.sl);
}

static int want_posts;

static int
posts_reached(struct fixture *fx)
{
    return (int)slack_fake_count(fx->x.sf, NULL, 1) >= want_posts;
}

static int
never(struct fixture *fx)
{
    (void)fx;
    return 0;
}

/* The bot's answers in the thread of ts (channel ch). */
static int
answers_to(struct fixture *fx, const char *ch, const char *thread_ts)
{
    struct slack_fake_msg m;
    int n = 0;

    for (size_t i = 0; slack_fake_message(fx->x.sf, ch, i, &m) == 0; i++)
        if (m.bot && strcmp(m.thread_ts, thread_ts) == 0)
            n++;
    return n;
}

/*
 * Every envelope acked within 3 s while the model takes 5 s (the issue
 * says 30 s; 5 s over a 3 s deadline is the same situation, and keeps the
 * test short): no redelivery is ever caused.  Also: mrkdwn, threads,
 * reactions, votes, a slash command.
 */
static void
test_ack_while_slow(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    struct slack_status ss;
    struct core_stats cs;
    struct slack_fake_msg m;
    char ts[6][32], ch[16];

    T_OK(fixture_init(&fx, "slow", 5000) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    for (int i = 0; i < 6; i++) {
        char text[32];

        snprintf(ch, sizeof(ch), "C%d", i % 2);
        snprintf(text, sizeof(text), "question %d", i);
        T_EQ_INT(slack_fake_mention(fx.x.sf, ch, "U1", text, NULL, ts[i],
                                    sizeof(ts[i])),
                 0);
    }
    T_EQ_INT(slack_fake_dm(fx.x.sf, "D1", "U2", "hello in private", NULL, 0),
             0);
    T_EQ_INT(slack_fake_slash(fx.x.sf, "C9", "U3", "help"), 0);
    /* after 4 s the model has not answered yet; every envelope is acked */
    run_until(&fx, never, 4000);
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.events, 8);
    T_EQ_INT(st.acks, 8);
    T_EQ_INT(st.unacked, 0);
    T_EQ_INT(st.acks_late, 0);
    T_OKF(st.ack_max_ms < 3000, "slowest ack %lld ms",
          (long long)st.ack_max_ms);
    T_EQ_INT(st.redeliveries, 0);
    T_EQ_INT(fx.fa.asks, 7); /* the slash command needs no model */
    T_OK(slack_fake_count(fx.x.sf, "C9", 1) == 1); /* help, in the channel */

    /* the answers: one per question, in the mention's thread */
    want_posts = 8;
    T_OK(run_until(&fx, posts_reached, 15000));
    for (int i = 0; i < 6; i++) {
        snprintf(ch, sizeof(ch), "C%d", i % 2);
        T_EQ_INT(answers_to(&fx, ch, ts[i]), 1);
    }
    T_EQ_INT(slack_fake_count(fx.x.sf, "D1", 1), 1);
    T_EQ_INT(slack_fake_message(fx.x.sf, "D1", 1, &m), 0);
    T_EQ_STR(m.text, "*answer* to: hello in private &amp; more");
    T_EQ_STR(m.thread_ts, ""); /* a DM: answered at top level */

    /* 👍/👎 on every answer; a user's 👍 becomes a stored vote */
    run_until(&fx, never, 1500);
    T_EQ_INT(slack_fake_message(fx.x.sf, "D1", 1, &m), 0);
    T_EQ_INT(m.nreactions, 2);
    T_EQ_INT(slack_fake_reaction(fx.x.sf, "D1", m.ts, "U2", "+1"), 0);
    run_until(&fx, never, 300);
    core_stats(fx.x.core, &cs);
    T_EQ_INT(cs.votes, 1);
    /* taking back a 👎 they did not give changes nothing; the 👍 goes */
    T_EQ_INT(slack_fake_reaction_remove(fx.x.sf, "D1", m.ts, "U2", "-1"), 0);
    run_until(&fx, never, 300);
    core_stats(fx.x.core, &cs);
    T_EQ_INT(cs.unvotes, 0);
    T_EQ_INT(slack_fake_reaction_remove(fx.x.sf, "D1", m.ts, "U2", "+1"), 0);
    run_until(&fx, never, 300);
    core_stats(fx.x.core, &cs);
    T_EQ_INT(cs.unvotes, 1);
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.redeliveries, 0);
    T_EQ_INT(st.acks_late, 0);
    T_EQ_INT(st.posts_429, 0);
    slack_status(fx.x.sl, &ss);
    T_EQ_STR(ss.user_id, SLACK_FAKE_USER_ID);
    T_EQ_INT(ss.acks, st.acks);
    fprintf(stderr,
            "ack_while_slow: fake ack max %lld ms, connector ack max "
            "%lld ms, %llu acks\n",
            (long long)st.ack_max_ms, (long long)ss.ack_max_ms,
            (unsigned long long)st.acks);
    fixture_release(&fx);
}

/*
 * A redelivered envelope is answered once; a mention that arrives twice
 * (app_mention + message.channels) too.
 */
static void
test_redelivered_once(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    struct slack_status ss;
    char ts[32], ev[512];

    T_OK(fixture_init(&fx, "redeliver", 200) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    T_EQ_INT(slack_fake_mention(fx.x.sf, "C1", "U1", "once please", NULL, ts,
                                sizeof(ts)),
             0);
    run_until(&fx, never, 100);
    T_EQ_INT(slack_fake_redeliver_last(fx.x.sf), 0); /* same event_id */
    run_until(&fx, never, 100);
    /* the same message via message.channels: another event_id, same ts */
    snprintf(ev, sizeof(ev),
             "{\"type\":\"message\",\"channel_type\":\"channel\",\"user\":"
             "\"U1\",\"text\":\"<@U0BOT> once please\",\"ts\":\"%s\","
             "\"channel\":\"C1\"}",
             ts);
    T_EQ_INT(slack_fake_event(fx.x.sf, ev), 0);
    want_posts = 1;
    T_OK(run_until(&fx, posts_reached, 5000));
    run_until(&fx, never, 1500);
    T_EQ_INT(answers_to(&fx, "C1", ts), 1);
    T_EQ_INT(fx.fa.asks, 1);
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.acks, 3); /* every copy acknowledged */
    T_EQ_INT(st.unacked, 0);
    slack_status(fx.x.sl, &ss);
    T_EQ_INT(ss.duplicates, 1); /* by event_id, before core */
    fixture_release(&fx);
}

/* refresh_requested and warning mid-stream: nothing lost, nothing twice. */
static struct fixture *refresh_fx;
static int refresh_sent;
static char refresh_ts[20][32];

static void
refresh_inject(uv_timer_t *t)
{
    struct fixture *fx = refresh_fx;
    char ch[16], text[32];

    if (refresh_sent == 20) {
        uv_timer_stop(t);
        return;
    }
    snprintf(ch, sizeof(ch), "D%d", refresh_sent);
    snprintf(text, sizeof(text), "message %d", refresh_sent);
    slack_fake_dm(fx->x.sf, ch, "U1", text, refresh_ts[refresh_sent],
                  sizeof(refresh_ts[0]));
    if (refresh_sent == 5)
        slack_fake_disconnect(fx->x.sf, "refresh_requested");
    if (refresh_sent == 12)
        slack_fake_disconnect(fx->x.sf, "warning");
    refresh_sent++;
}

static void
test_refresh(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    uv_timer_t inj;

    T_OK(fixture_init(&fx, "refresh", 100) == 0);
    slack_fake_set_close_after_ms(fx.x.sf, 400);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    refresh_fx = &fx;
    refresh_sent = 0;
    uv_timer_init(&fx.x.loop, &inj);
    uv_timer_start(&inj, refresh_inject, 50, 50);
    want_posts = 20;
    T_OK(run_until(&fx, posts_reached, 20000));
    uv_close((uv_handle_t *)&inj, NULL);
    run_until(&fx, never, 500);
    for (int i = 0; i < 20; i++) {
        char ch[16];

        snprintf(ch, sizeof(ch), "D%d", i);
        T_OKF(slack_fake_count(fx.x.sf, ch, 1) == 1, "D%d: %zu answers", i,
              slack_fake_count(fx.x.sf, ch, 1));
    }
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.events, 20);
    T_EQ_INT(st.unacked, 0);
    T_EQ_INT(st.redeliveries, 0);
    T_EQ_INT(st.connects, 3); /* the first, and one per disconnect */
    T_EQ_INT(st.opens, 3);
    T_EQ_INT(fx.fa.asks, 20);
    T_OK(slack_is_up(fx.x.sl));
    fixture_release(&fx);
}

/* invalid_auth / link_disabled: one fatal report, no reconnect loop. */
static int
fatal_seen(struct fixture *fx)
{
    return fx->fatals > 0;
}

static void
test_fatal(void)
{
    struct fixture fx;
    struct slack_fake_stats st;

    /* auth.test refused */
    T_OK(fixture_init(&fx, "fatal1", 100) == 0);
    slack_fake_set_auth_error(fx.x.sf, "invalid_auth");
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, fatal_seen, 5000));
    run_until(&fx, never, 1000); /* backoff min is 100 ms: a loop shows */
    T_EQ_INT(fx.fatals, 1);
    T_CONTAINS(fx.fatal_why, "invalid_auth");
    T_OK(!slack_is_up(fx.x.sl));
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.auth_tests, 1);
    T_EQ_INT(st.opens, 0);
    fixture_release(&fx);

    /* apps.connections.open refused (a revoked app token) */
    T_OK(fixture_init(&fx, "fatal2", 100) == 0);
    slack_fake_set_open_error(fx.x.sf, "token_revoked");
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, fatal_seen, 5000));
    run_until(&fx, never, 1000);
    T_EQ_INT(fx.fatals, 1);
    T_CONTAINS(fx.fatal_why, "token_revoked");
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.opens, 1);
    fixture_release(&fx);

    /* link_disabled while connected */
    T_OK(fixture_init(&fx, "fatal3", 100) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    slack_fake_disconnect(fx.x.sf, "link_disabled");
    T_OK(run_until(&fx, fatal_seen, 5000));
    run_until(&fx, never, 1000);
    T_EQ_INT(fx.fatals, 1);
    T_CONTAINS(fx.fatal_why, "link_disabled");
    T_OK(!slack_is_up(fx.x.sl));
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.opens, 1);
    T_EQ_INT(st.connects, 1);
    fixture_release(&fx);

    /* a dropped socket is not fatal: reconnect with a fresh URL */
    T_OK(fixture_init(&fx, "drop", 100) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    slack_fake_drop_all(fx.x.sf);
    run_until(&fx, never, 300);
    T_OK(run_until(&fx, is_up, 5000));
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.opens, 2);
    T_EQ_INT(st.refused, 0);
    T_EQ_INT(fx.fatals, 0);
    fixture_release(&fx);
}

/* 20 answers into one channel: paced at 1/s, zero 429s. */
static void
test_twenty_answers(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    struct slack_fake_msg first, last;
    int64_t t0;

    T_OK(fixture_init(&fx, "twenty", 50) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    for (int i = 0; i < 20; i++) {
        char text[32];

        snprintf(text, sizeof(text), "q%d", i);
        slack_fake_mention(fx.x.sf, "C20", "U1", text, NULL, NULL, 0);
    }
    t0 = fake_now_ms();
    want_posts = 20;
    T_OK(run_until(&fx, posts_reached, 30000));
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.posts, 20);
    T_EQ_INT(st.posts_429, 0);
    T_EQ_INT(slack_fake_message(fx.x.sf, "C20", 20, &first), 0);
    T_EQ_INT(slack_fake_message(fx.x.sf, "C20", 39, &last), 0);
    T_OKF(last.t_ms - first.t_ms >= 18900, "20 posts in %lld ms",
          (long long)(last.t_ms - first.t_ms));
    fprintf(stderr,
            "twenty: 20 posts spread over %lld ms, all done %lld ms "
            "after the mentions, 429s: %llu\n",
            (long long)(last.t_ms - first.t_ms),
            (long long)(fake_now_ms() - t0), (unsigned long long)st.posts_429);
    fixture_release(&fx);
}

/* A scripted 429 and ok:false errors on chat.postMessage. */
static void
test_send_errors(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    struct slack_status ss;
    struct core_stats cs;

    T_OK(fixture_init(&fx, "errors", 50) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    slack_fake_script(fx.x.sf, "chat.postMessage", NULL, 429, 2);
    slack_fake_dm(fx.x.sf, "D1", "U1", "wait for it", NULL, 0);
    want_posts = 1;
    T_OK(run_until(&fx, posts_reached, 6000));
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.posts_429, 1);
    T_EQ_INT(slack_fake_count(fx.x.sf, "D1", 1), 1);
    {
        struct slack_fake_msg a, b;

        slack_fake_message(fx.x.sf, "D1", 0, &a);
        slack_fake_message(fx.x.sf, "D1", 1, &b);
        T_OKF(b.t_ms - a.t_ms >= 2000, "answer after %lld ms (Retry-After 2)",
              (long long)(b.t_ms - a.t_ms));
    }
    /* not_in_channel: the job fails, nothing is retried */
    slack_fake_script(fx.x.sf, "chat.postMessage", "not_in_channel", 0, 0);
    slack_fake_mention(fx.x.sf, "C5", "U1", "hello?", NULL, NULL, 0);
    run_until(&fx, never, 1000);
    T_EQ_INT(slack_fake_count(fx.x.sf, "C5", 1), 0);
    slack_status(fx.x.sl, &ss);
    T_EQ_INT(ss.send_errors, 1);
    core_stats(fx.x.core, &cs);
    T_EQ_INT(cs.inflight, 0);
    fixture_release(&fx);
}

/* ---- the cap on calls in flight ---- */

#define CAP_CHANS 400
#define CAP_PER_CHAN 2
#define CAP_LATENCY_MS 300
#define CAP_ID 0x5c00000000000000ULL

static struct send_tally *scap;

static int
cap_settled(struct fixture *fx)
{
    size_t in = fake_inflight(slack_fake_server(fx->x.sf));

    if (in > scap->fake_max)
        scap->fake_max = in;
    return scap->done >= CAP_CHANS * CAP_PER_CHAN;
}

/*
 * 800 answers to 400 channels at once (two each, paced 1/s per channel),
 * every Web API reply 300 ms late: at most SLACK_CALLS_INFLIGHT_MAX calls
 * on the wire, each answer once, in order within its channel, no 429.
 */
static void
test_inflight_cap(void)
{
    struct fixture fx;
    struct send_tally c;
    struct slack_status ss;
    struct slack_fake_stats st;
    struct slack_fake_msg m;
    struct connector_ops ops;
    char chan[32], text[64];
    int64_t t0;
    int misordered = 0;

    T_OK(fixture_init(&fx, "cap", 50) == 0);
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    send_tally_init(&c, CAP_ID, CAP_CHANS * CAP_PER_CHAN);
    scap = &c;
    slack_set_send_observer(fx.x.sl, send_tally_note, &c);
    slack_connector_ops(fx.x.sl, &ops);
    fake_set_latency(slack_fake_server(fx.x.sf), CAP_LATENCY_MS);
    t0 = fake_now_ms();
    for (int k = 0; k < CAP_PER_CHAN; k++)
        for (int i = 0; i < CAP_CHANS; i++) {
            struct action a;

            snprintf(chan, sizeof(chan), "C%d", 9000 + i);
            snprintf(text, sizeof(text), "answer %d of %s", k, chan);
            memset(&a, 0, sizeof(a));
            a.kind = ACTION_ANSWER;
            a.send_id = CAP_ID | (uint64_t)(k * CAP_CHANS + i);
            a.chat = chan;
            a.thread = "";
            a.reply_to = "";
            a.text = text;
            a.idem_key = "";
            a.parts = 1;
            a.target_id = "";
            T_EQ_INT(ops.send(ops.ctx, &a), 0);
        }
    T_OK(run_until(&fx, cap_settled, 30000));
    fake_set_latency(slack_fake_server(fx.x.sf), 0);
    run_until(&fx, never, CAP_LATENCY_MS + 300); /* a duplicate shows */
    slack_status(fx.x.sl, &ss);
    slack_fake_stats(fx.x.sf, &st);
    fprintf(stderr,
            "inflight cap: %d answers in %lld ms; on the wire at most %zu "
            "calls, %zu at the fake\n",
            CAP_CHANS * CAP_PER_CHAN, (long long)(fake_now_ms() - t0),
            ss.sends_inflight_max, c.fake_max);
    T_OK(ss.sends_inflight_max <= SLACK_CALLS_INFLIGHT_MAX);
    /* the cap is what bound them: 400 channels ready at once */
    T_EQ_INT(ss.sends_inflight_max, SLACK_CALLS_INFLIGHT_MAX);
    /* + 1 of slack: a reply written but not yet retired at the fake */
    T_OKF(c.fake_max <= SLACK_CALLS_INFLIGHT_MAX + 1, "%zu at the fake",
          c.fake_max);
    T_EQ_INT(ss.sends_inflight, 0);
    T_EQ_INT(ss.queued, 0);
    T_EQ_INT(c.ok, CAP_CHANS * CAP_PER_CHAN);
    T_EQ_INT(send_tally_not_once(&c), 0);
    for (int i = 0; i < CAP_CHANS; i++) {
        snprintf(chan, sizeof(chan), "C%d", 9000 + i);
        if (slack_fake_count(fx.x.sf, chan, 1) != CAP_PER_CHAN)
            misordered++;
        for (int k = 0; k < CAP_PER_CHAN; k++) {
            snprintf(text, sizeof(text), "answer %d of %s", k, chan);
            if (slack_fake_message(fx.x.sf, chan, (size_t)k, &m) != 0 ||
                strcmp(m.text, text) != 0)
                misordered++;
        }
    }
    T_EQ_INT(misordered, 0);
    T_EQ_INT(st.posts, CAP_CHANS * CAP_PER_CHAN);
    T_EQ_INT(st.posts_429, 0);
    scap = NULL;
    fixture_release(&fx);
}

int
main(void)
{
    const char *only = getenv("TEST_ONLY");

    signal(SIGPIPE, SIG_IGN);
    log_init("test_slack");
    log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_slack.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
#define RUN(name)                                                              \
    if (only == NULL || strcmp(only, #name) == 0)                              \
        test_##name();
    RUN(ack_while_slow);
    RUN(redelivered_once);
    RUN(refresh);
    RUN(fatal);
    RUN(send_errors);
    RUN(twenty_answers);
    RUN(inflight_cap);
    rmdir(tmpdir);
    curl_global_cleanup();
    return t_done();
}
