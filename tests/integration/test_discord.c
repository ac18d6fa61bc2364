/* test_discord: the Discord connector against the fake (tests/fakes/
 * discord_fake) with a real core and a fake asker: heartbeats, zombie →
 * resume, op 7 without loss, fatal 4004/4014, buckets without 429s, DMs and
 * guild addressing, votes, resume after a restart, user DMs ("@<id>"), the
 * model's Markdown as Discord renders it. */
#include "connectors/discord.h"
#include "core/core.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/discord_fake.h"
#include "tests/fakes/discord_fixture.h"
#include "tests/fakes/send_tally.h"
#include "tests/t.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static int64_t
dm(struct discord_fx *f, const char *channel, const char *guild,
   const char *content, const char *reply_to, char *id)
{
    struct discord_fake_msg m = {channel, guild,    "7", "ann",
                                 content, reply_to, 0,   0};

    return discord_fake_message(f->df, &m, id, 32);
}

static void
test_heartbeat_dm_vote(void)
{
    struct discord_fx f;
    const struct discord_fake_beat *b;
    struct discord_fake_sent s;
    struct discord_fake_stats st;
    struct core_stats cs;
    struct discord_status ds;
    char id[32], vote_id[32];
    size_t n;

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    /* a second of heartbeats */
    discord_fx_run_until(&f, NULL, NULL, 5 * DISCORD_FX_HB_MS + 50);
    n = discord_fake_beats(f.df, &b);
    T_OKF(n >= 4, "beats %zu", n);
    if (n >= 4) {
        /* the first jittered inside [0, interval), then every interval */
        T_OKF(b[0].since_hello >= 0 && b[0].since_hello < DISCORD_FX_HB_MS + 20,
              "first beat %lld ms after HELLO", (long long)b[0].since_hello);
        for (size_t i = 1; i < n; i++)
            T_OKF(b[i].t_ms - b[i - 1].t_ms >= DISCORD_FX_HB_MS - 5 &&
                      b[i].t_ms - b[i - 1].t_ms <= DISCORD_FX_HB_MS + 60,
                  "beat %zu after %lld ms", i,
                  (long long)(b[i].t_ms - b[i - 1].t_ms));
    }
    /* a DM is answered, as a reply, with a nonce, and gets 👍 👎 */
    T_OK(dm(&f, "600", NULL, "hello there", NULL, id) > 0);
    T_OK(discord_fx_wait_sent(&f, "600", 1, 5000));
    T_EQ_INT(discord_fake_sent_get(f.df, "600", 0, &s), 0);
    T_EQ_STR(s.content, "answer to: hello there");
    T_EQ_STR(s.reply_to, id);
    T_OK(strncmp(s.nonce, "job:", 4) == 0);
    T_OK(DISCORD_FX_WAIT_STAT(&f, reactions, 2, 3000));
    discord_fake_sent_get(f.df, "600", 0, &s);
    T_EQ_INT(s.up, 1);
    T_EQ_INT(s.down, 1);
    /* a user's 👎 on the answer is a vote; our own reactions are not */
    snprintf(vote_id, sizeof(vote_id), "%s", s.id);
    discord_fake_reaction(f.df, "600", vote_id, DISCORD_FAKE_BOT_ID,
                          "\xf0\x9f\x91\x8d");
    discord_fake_reaction(f.df, "600", vote_id, "7", "\xf0\x9f\x91\x8e");
    discord_fake_reaction(f.df, "600", vote_id, "7", "\xe2\x9d\xa4");
    discord_fx_run_until(&f, NULL, NULL, 300);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.votes, 1);
    /* taking back a 👍 they did not give leaves the 👎; taking back the
     * 👎 withdraws the vote */
    discord_fake_reaction_remove(f.df, "600", vote_id, "7", "\xf0\x9f\x91\x8d");
    discord_fx_run_until(&f, NULL, NULL, 300);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.unvotes, 0);
    discord_fake_reaction_remove(f.df, "600", vote_id, "7", "\xf0\x9f\x91\x8e");
    discord_fx_run_until(&f, NULL, NULL, 300);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.unvotes, 1);
    T_EQ_INT(cs.votes, 1);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.votes, 3);
    T_EQ_STR(ds.self_id, DISCORD_FAKE_BOT_ID);
    /* typing was shown while the model worked */
    discord_fake_stats(f.df, &st);
    T_OK(st.typing >= 1);
    T_EQ_INT(st.identifies, 1);
    T_EQ_INT(st.caused_429, 0);
    T_EQ_INT(discord_fx_release(&f), 0);
}

static void
test_guild_addressing(void)
{
    struct discord_fx f;
    char id[32], ans[32];
    struct discord_fake_sent s;
    struct core_stats cs;
    struct discord_fake_msg bot = {
        "601", "9", "8", "otherbot", "<@" DISCORD_FAKE_BOT_ID "> hi",
        NULL,  1,   0};

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    /* not addressed: ignored; another bot: ignored; a webhook: ignored */
    dm(&f, "601", "9", "just chatting", NULL, id);
    discord_fake_message(f.df, &bot, NULL, 0);
    bot.bot = 0;
    bot.webhook = 1;
    discord_fake_message(f.df, &bot, NULL, 0);
    discord_fx_run_until(&f, NULL, NULL, 400);
    T_EQ_INT(discord_fake_sent_count(f.df, "601"), 0);
    /* mentioned: answered, the mention removed */
    dm(&f, "601", "9", "<@" DISCORD_FAKE_BOT_ID "> what is 2+2?", NULL, id);
    T_OK(discord_fx_wait_sent(&f, "601", 1, 5000));
    discord_fake_sent_get(f.df, "601", 0, &s);
    T_CONTAINS(s.content, "what is 2+2?");
    T_OK(strstr(s.content, "<@") == NULL);
    snprintf(ans, sizeof(ans), "%s", s.id);
    /* a reply to our answer: answered */
    dm(&f, "601", "9", "and then?", ans, id);
    T_OK(discord_fx_wait_sent(&f, "601", 2, 5000));
    discord_fake_sent_get(f.df, "601", 1, &s);
    T_CONTAINS(s.content, "and then?");
    T_EQ_STR(s.reply_to, id);
    /* a reply to someone else: not answered */
    dm(&f, "601", "9", "me too", id, NULL);
    discord_fx_run_until(&f, NULL, NULL, 400);
    T_EQ_INT(discord_fake_sent_count(f.df, "601"), 2);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.answered, 2);
    /* freed while connected: the close is abandoned to core/ws */
    discord_free(f.d);
    f.d = NULL;
    T_EQ_INT(discord_fx_release(&f), 0);
}

static void
test_zombie_op7(void)
{
    struct discord_fx f;
    const struct discord_fake_beat *b;
    struct discord_fake_stats st;
    struct discord_status ds;
    int64_t t0, t_first = -1, t_resumed;
    size_t n;
    char id[32];

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    discord_fx_run_until(&f, NULL, NULL, 2 * DISCORD_FX_HB_MS);
    /* zombie: the fake stops ACKing */
    discord_fake_set_acks(f.df, 0);
    t0 = fake_now_ms();
    T_OK(DISCORD_FX_WAIT_STAT(&f, resumed, 1, 3000));
    t_resumed = fake_now_ms();
    discord_fake_set_acks(f.df, 1);
    n = discord_fake_beats(f.df, &b);
    for (size_t i = 0; i < n && t_first < 0; i++)
        if (b[i].t_ms >= t0)
            t_first = b[i].t_ms; /* the first beat without an ACK */
    T_OK(t_first >= 0);
    /* detected at the next beat, resumed right after: two intervals */
    T_OKF(t_resumed - t_first <= 2 * DISCORD_FX_HB_MS + 50,
          "resumed %lld ms after the first unanswered beat",
          (long long)(t_resumed - t_first));
    discord_fake_stats(f.df, &st);
    T_OK(st.last_client_close != 1000 && st.last_client_close != 0);
    T_EQ_INT(st.identifies, 1);
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 1000));

    /* op 7, and a message sent in the same instant (it reaches the dying
     * connection, which ignores it): RESUME, replay, answered once */
    T_EQ_INT(discord_fake_op(f.df, 7, 0), 1);
    T_OK(dm(&f, "602", NULL, "are you there?", NULL, id) > 0);
    T_OK(DISCORD_FX_WAIT_STAT(&f, resumed, 2, 3000));
    T_OK(discord_fx_wait_sent(&f, "602", 1, 5000));
    discord_fake_op(f.df, 7, 0);
    T_OK(DISCORD_FX_WAIT_STAT(&f, resumed, 3, 3000));
    dm(&f, "602", NULL, "still there?", NULL, id);
    T_OK(discord_fx_wait_sent(&f, "602", 2, 5000));
    discord_fx_run_until(&f, NULL, NULL, 300);
    T_EQ_INT(discord_fake_sent_count(f.df, "602"), 2);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.identifies, 1); /* no second IDENTIFY */
    T_EQ_INT(st.resumes, 3);
    T_OK(st.replayed >= 1);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.zombies, 1);
    T_EQ_INT(ds.up, 1);
    T_EQ_INT(discord_fx_release(&f), 0);
}

static void
test_fatal(void)
{
    struct discord_fx f;
    struct discord_fake_stats st;

    /* 4004: the token is wrong (the fake's REST answers 401 first, so make
     * the gateway see it: REST accepts any token here) */
    if (discord_fx_init(&f, "test_discord", "not-the-token") < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_fatal_seen, NULL, 5000));
    T_CONTAINS(f.fatal_why, "401");
    T_CONTAINS(f.fatal_why, "token");
    discord_fx_run_until(&f, NULL, NULL, 1000);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.connections, 0);
    T_EQ_INT(f.fatals, 1);
    T_EQ_INT(discord_is_up(f.d), 0);
    T_EQ_INT(discord_fx_release(&f), 0);

    /* a session saved with another token: RESUME → 4004 on the gateway */
    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    T_OK(discord_fx_down(&f));
    config_free(f.cfg);
    f.cfg =
        discord_fx_config(discord_fake_base(f.df), "fake.discord.token-124");
    /* the fake's REST takes only its token: resume goes straight to the
     * gateway (no /gateway/bot), which closes 4004 */
    T_EQ_INT(discord_fx_start(&f), 0);
    T_OK(discord_fx_run_until(&f, discord_fx_fatal_seen, NULL, 5000));
    T_CONTAINS(f.fatal_why, "4004");
    discord_fx_run_until(&f, NULL, NULL, 1000);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.connections, 2); /* no reconnect loop */
    T_EQ_INT(st.identifies, 1);
    T_EQ_INT(f.fatals, 1);
    T_EQ_INT(discord_is_up(f.d), 0);
    T_EQ_INT(discord_fx_release(&f), 0);

    /* 4014: MESSAGE_CONTENT not enabled in the portal */
    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    discord_fake_set_message_content(f.df, 0);
    T_OK(discord_fx_run_until(&f, discord_fx_fatal_seen, NULL, 5000));
    T_CONTAINS(f.fatal_why, "4014");
    T_CONTAINS(f.fatal_why,
               "enable the MESSAGE_CONTENT intent in the developer portal");
    discord_fx_run_until(&f, NULL, NULL, 1000);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.identifies, 1); /* at most one IDENTIFY */
    T_EQ_INT(st.connections, 1);
    T_EQ_INT(discord_fx_release(&f), 0);
}

static void
test_bucket_no_429(void)
{
    struct discord_fx f;
    struct discord_fake_stats st;
    struct core_stats cs;
    const char *env = getenv("DISCORD_TEST_BUCKET_MS");
    int64_t window = env ? atoll(env) : 1000, t0, el;
    char text[64];

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    discord_fake_set_bucket(f.df, 5, window);
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    /* a global 429 first: everything waits for it, nothing else is hit */
    discord_fake_global_429(f.df, 300);
    t0 = fake_now_ms();
    for (int i = 0; i < 50; i++) {
        snprintf(text, sizeof(text), "question %d", i);
        dm(&f, "700", NULL, text, NULL, NULL);
    }
    T_OK(discord_fx_wait_sent(&f, "700", 50, (int)(12 * window) + 5000));
    el = fake_now_ms() - t0;
    discord_fake_stats(f.df, &st);
    core_stats(f.core, &cs);
    T_EQ_INT(discord_fake_sent_count(f.df, "700"), 50);
    T_EQ_INT(st.caused_429, 0);
    T_OK(st.r429_global >= 1);         /* the scripted one (+ any in flight) */
    T_EQ_INT(st.r429, st.r429_global); /* no bucket 429 at all */
    T_EQ_INT(st.dup_nonce, 0);
    /* 5 per window: 50 need at least 9 resets */
    T_OKF(el >= 9 * window, "50 answers in %lld ms", (long long)el);
    printf("50 answers, 5 per %lld ms: %lld ms, 429s caused: %llu\n",
           (long long)window, (long long)el, (unsigned long long)st.caused_429);
    T_EQ_INT(discord_fx_release(&f), 0);
}

static void
test_restart_resumes(void)
{
    struct discord_fx f;
    struct discord_fake_stats st;
    struct core_stats cs;
    char id[32];

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    dm(&f, "603", NULL, "one", NULL, id);
    T_OK(discord_fx_wait_sent(&f, "603", 1, 5000));
    /* a graceful stop closes resumably (not 1000) and saves the session */
    T_OK(discord_fx_down(&f));
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.last_client_close, 4000);
    T_EQ_INT(st.live, 0);
    /* while we are down a message arrives; the restart resumes, replays */
    dm(&f, "603", NULL, "two", NULL, id);
    T_EQ_INT(discord_fx_start(&f), 0);
    T_OK(discord_fx_wait_sent(&f, "603", 2, 5000));
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.identifies, 1);
    T_EQ_INT(st.resumed, 1);
    T_OK(st.replayed >= 1); /* "two" (and maybe a late reaction of ours) */
    /* after a resume (RESUMED names nobody) we still know who we are: a
     * guild mention is answered, our own 👍 is not a vote */
    dm(&f, "604", "9", "<@" DISCORD_FAKE_BOT_ID "> three", NULL, id);
    T_OK(discord_fx_wait_sent(&f, "604", 1, 5000));
    T_OK(DISCORD_FX_WAIT_STAT(&f, reactions, 4, 3000));
    discord_fx_run_until(&f, NULL, NULL, 200);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.votes, 0);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* ---- the cap on calls in flight ---- */

#define CAP_CHANS 50
#define CAP_PER_CHAN 2
#define CAP_FEEDBACK 10 /* channels whose last answer gets 👍/👎 */
#define CAP_SENDS 8
#define CAP_MISC 2
#define CAP_LATENCY_MS 250
#define CAP_ID 0x7c00000000000000ULL

static int
cap_settled(struct discord_fx *f, const void *arg)
{
    struct send_tally *c = (struct send_tally *)(uintptr_t)arg;
    size_t in = fake_inflight(discord_fake_server(f->df));

    if (in > c->fake_max)
        c->fake_max = in;
    return c->done >= CAP_CHANS * CAP_PER_CHAN &&
           discord_fx_stat(f, offsetof(struct discord_fake_stats, reactions)) >=
               2 * CAP_FEEDBACK;
}

/*
 * 100 answers to 50 channels at once, every REST reply 250 ms late, the
 * caps lowered to 8 sends and 2 other calls (the global 50/s alone would
 * allow ~12 on the wire; the real caps, 256 and 64, bind the same way at
 * a 5 s round trip): never more on the wire, each answer once, in order
 * within its channel, no 429 caused.
 */
static void
test_inflight_cap(void)
{
    struct discord_fx f;
    struct send_tally c;
    struct discord_status ds;
    struct discord_fake_stats st;
    struct discord_fake_sent m;
    char chan[32], text[64], idem[48];
    int64_t t0;
    int misordered = 0;

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    send_tally_init(&c, CAP_ID, CAP_CHANS * CAP_PER_CHAN);
    discord_set_send_tap(f.d, send_tally_note, &c);
    discord_set_inflight_max(f.d, CAP_SENDS, CAP_MISC);
    fake_set_latency(discord_fake_server(f.df), CAP_LATENCY_MS);
    t0 = fake_now_ms();
    for (int k = 0; k < CAP_PER_CHAN; k++)
        for (int i = 0; i < CAP_CHANS; i++) {
            struct action a;
            int n = k * CAP_CHANS + i;

            snprintf(chan, sizeof(chan), "%d", 810000 + i);
            snprintf(text, sizeof(text), "answer %d of %s", k, chan);
            snprintf(idem, sizeof(idem), "job:cap%d:0", n);
            memset(&a, 0, sizeof(a));
            a.kind = ACTION_ANSWER;
            a.send_id = CAP_ID | (uint64_t)n;
            a.chat = chan;
            a.thread = "";
            a.reply_to = "";
            a.text = text;
            a.idem_key = idem;
            a.parts = 1;
            a.feedback = k == CAP_PER_CHAN - 1 && i < CAP_FEEDBACK;
            a.target_id = "";
            T_EQ_INT(discord_send(f.d, &a), 0);
        }
    T_OK(discord_fx_run_until(&f, cap_settled, &c, 30000));
    fake_set_latency(discord_fake_server(f.df), 0);
    discord_fx_run_until(&f, NULL, NULL,
                         CAP_LATENCY_MS + 300); /* a duplicate shows */
    discord_status(f.d, &ds);
    discord_fake_stats(f.df, &st);
    printf("inflight cap: %d answers in %lld ms; on the wire at most %zu "
           "sends, %zu other calls, %zu at the fake\n",
           CAP_CHANS * CAP_PER_CHAN, (long long)(fake_now_ms() - t0),
           ds.sends_inflight_max, ds.misc_inflight_max, c.fake_max);
    T_OK(ds.sends_inflight_max <= CAP_SENDS);
    T_EQ_INT(ds.sends_inflight_max, CAP_SENDS); /* the cap bound them */
    T_OK(ds.misc_inflight_max <= CAP_MISC);
    /* + 1 of slack: a reply written but not yet retired at the fake */
    T_OKF(c.fake_max <= CAP_SENDS + CAP_MISC + 1, "%zu at the fake",
          c.fake_max);
    T_EQ_INT(ds.sends_inflight, 0);
    T_EQ_INT(ds.misc_inflight, 0);
    T_EQ_INT(ds.queued, 0);
    T_EQ_INT(c.ok, CAP_CHANS * CAP_PER_CHAN);
    T_EQ_INT(send_tally_not_once(&c), 0);
    for (int i = 0; i < CAP_CHANS; i++) {
        snprintf(chan, sizeof(chan), "%d", 810000 + i);
        T_EQ_INT(discord_fake_sent_count(f.df, chan), CAP_PER_CHAN);
        for (int k = 0; k < CAP_PER_CHAN; k++) {
            snprintf(text, sizeof(text), "answer %d of %s", k, chan);
            if (discord_fake_sent_get(f.df, chan, (size_t)k, &m) != 0 ||
                strcmp(m.content, text) != 0)
                misordered++;
        }
    }
    T_EQ_INT(misordered, 0);
    T_EQ_INT(st.dup_nonce, 0);
    T_EQ_INT(st.caused_429, 0);
    T_EQ_INT(st.reactions, 2 * CAP_FEEDBACK);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/*
 * Six DMs at once, one slot for typing and reactions, REST replies 400 ms
 * late, the model 100 ms: the first channel's typing takes the slot; the
 * others wait for it and by then their answers are queued or on the wire,
 * so they are dropped (typing_skipped), not sent after the answer.
 */
static void
test_typing_superseded(void)
{
    struct discord_fx f;
    struct discord_status ds;
    struct discord_fake_stats st;
    char chan[20];

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    discord_set_inflight_max(f.d, 0, 1);
    f.fa.delay_ms = 100;
    fake_set_latency(discord_fake_server(f.df), 400);
    for (int i = 0; i < 6; i++) {
        snprintf(chan, sizeof(chan), "%d", 820000 + i);
        dm(&f, chan, NULL, "hello", NULL, NULL);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(chan, sizeof(chan), "%d", 820000 + i);
        T_OK(discord_fx_wait_sent(&f, chan, 1, 10000));
    }
    T_OK(DISCORD_FX_WAIT_STAT(&f, reactions, 12, 10000));
    fake_set_latency(discord_fake_server(f.df), 0);
    discord_status(f.d, &ds);
    discord_fake_stats(f.df, &st);
    printf("typing superseded: %llu typing sent, %llu skipped, %zu other "
           "calls on the wire at most\n",
           (unsigned long long)st.typing, (unsigned long long)ds.typing_skipped,
           ds.misc_inflight_max);
    T_OK(ds.typing_skipped >= 1);
    T_OK(st.typing < 6);
    T_EQ_INT(ds.misc_inflight_max, 1);
    for (int i = 0; i < 6; i++) {
        snprintf(chan, sizeof(chan), "%d", 820000 + i);
        T_EQ_INT(discord_fake_sent_count(f.df, chan), 1);
    }
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* ---- a user's DM: "@<user id>" ---- */

#define DM_ID 0x7d00000000000000ULL
#define DM_SENDS 8

struct dmcap {
    int done[DM_SENDS];
    enum send_status status[DM_SENDS];
    char cls[DM_SENDS][24];
};

static void
dm_tap(void *arg, uint64_t send_id, const struct send_result *r)
{
    struct dmcap *c = arg;
    uint64_t n = send_id & ~DM_ID;

    if ((send_id & DM_ID) != DM_ID || n >= DM_SENDS)
        return;
    c->done[n]++;
    c->status[n] = r->status;
    snprintf(c->cls[n], sizeof(c->cls[n]), "%s",
             r->error_class ? r->error_class : "");
}

struct dm_wait {
    const struct dmcap *c;
    int n;
};

static int
dm_settled(struct discord_fx *f, const void *arg)
{
    const struct dm_wait *w = arg;

    (void)f;
    return w->c->done[w->n] > 0;
}

/* A notice to chat as core sends its alerts (no reply, no feedback), and
 * the wait for its outcome. */
static int
dm_notice(struct discord_fx *f, const struct dmcap *c, int n, const char *chat,
          const char *text, int wait)
{
    struct dm_wait w = {c, n};
    struct action a;
    char idem[32];

    snprintf(idem, sizeof(idem), "job:dm%d:0", n);
    memset(&a, 0, sizeof(a));
    a.kind = ACTION_NOTICE;
    a.send_id = DM_ID | (uint64_t)n;
    a.chat = chat;
    a.thread = "";
    a.reply_to = "";
    a.text = text;
    a.idem_key = idem;
    a.parts = 1;
    a.target_id = "";
    if (discord_send(f->d, &a) < 0)
        return 0;
    return !wait || discord_fx_run_until(f, dm_settled, &w, 10000);
}

/*
 * Sends to "@<user>" (core's alerts to an admin): the DM is opened once
 * for two sends queued together and a third later, the messages land in
 * it, and its channel is remembered across a restart (connector_state);
 * a user refusing DMs (403 50007 at the open or at the message) and a
 * chat "@" without a user id end as SEND_FAILED.
 */
static void
test_user_dm(void)
{
    struct discord_fx f;
    struct dmcap c;
    struct discord_fake_stats st;
    struct discord_status ds;
    struct discord_fake_sent m;
    struct dm_wait w;
    char ch[32] = "", saved[32] = "";

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    memset(&c, 0, sizeof(c));
    discord_set_send_tap(f.d, dm_tap, &c);
    T_OK(dm_notice(&f, &c, 0, "@777000111", "alert one", 0));
    T_OK(dm_notice(&f, &c, 1, "@777000111", "alert two", 1));
    w.c = &c;
    w.n = 0;
    T_OK(discord_fx_run_until(&f, dm_settled, &w, 10000));
    T_EQ_INT(c.status[0], SEND_OK);
    T_EQ_INT(c.status[1], SEND_OK);
    T_EQ_INT(discord_fake_dm_channel(f.df, "777000111", ch, sizeof(ch)), 0);
    T_EQ_INT(discord_fake_sent_count(f.df, ch), 2);
    T_OK(discord_fake_sent_get(f.df, ch, 0, &m) == 0 &&
         strcmp(m.content, "alert one") == 0);
    T_OK(discord_fake_sent_get(f.df, ch, 1, &m) == 0 &&
         strcmp(m.content, "alert two") == 0);
    T_EQ_INT(
        store_kv_get(f.st, "discord", "dm:777000111", saved, sizeof(saved)), 1);
    T_EQ_STR(saved, ch);
    T_OK(dm_notice(&f, &c, 2, "@777000111", "alert three", 1));
    T_EQ_INT(c.status[2], SEND_OK);
    T_EQ_INT(discord_fake_sent_count(f.df, ch), 3);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.dm_opens, 1);
    T_EQ_INT(st.caused_429, 0);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.dms_opened, 1);
    /* refused at the open: no message, the send fails, nothing saved */
    T_EQ_INT(
        discord_fake_refuse_dm(f.df, "888000111", DISCORD_FAKE_REFUSE_OPEN), 0);
    T_OK(dm_notice(&f, &c, 3, "@888000111", "alert", 1));
    T_EQ_INT(c.status[3], SEND_FAILED);
    T_EQ_STR(c.cls[3], "forbidden");
    T_EQ_INT(
        store_kv_get(f.st, "discord", "dm:888000111", saved, sizeof(saved)), 0);
    /* refused at the message: opened, then the post is 403 50007 */
    T_EQ_INT(
        discord_fake_refuse_dm(f.df, "999000111", DISCORD_FAKE_REFUSE_SEND), 0);
    T_OK(dm_notice(&f, &c, 4, "@999000111", "alert", 1));
    T_EQ_INT(c.status[4], SEND_FAILED);
    T_EQ_STR(c.cls[4], "forbidden");
    /* "@" and no user id: failed, nothing asked of Discord */
    T_OK(dm_notice(&f, &c, 5, "@ann", "alert", 1));
    T_EQ_INT(c.status[5], SEND_FAILED);
    T_EQ_STR(c.cls[5], "bad_request");
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.dm_refused, 2);
    T_EQ_INT(st.dm_opens, 2); /* 777000111 and 999000111 */
    for (int i = 0; i < 6; i++)
        T_EQ_INT(c.done[i], 1);
    /* a restart: the DM channel comes from connector_state */
    T_OK(discord_fx_down(&f));
    T_EQ_INT(discord_fx_start(&f), 0);
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    discord_set_send_tap(f.d, dm_tap, &c);
    T_OK(dm_notice(&f, &c, 6, "@777000111", "after restart", 1));
    T_EQ_INT(c.status[6], SEND_OK);
    T_EQ_INT(discord_fake_sent_count(f.df, ch), 4);
    discord_fake_stats(f.df, &st);
    T_EQ_INT(st.dm_opens, 2);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.queued, 0);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* Whether the first bot message of channel a[0] shows a[1]. */
static int
shows(struct discord_fx *f, const void *arg)
{
    const char *const *a = arg;
    struct discord_fake_sent s;

    return discord_fake_sent_get(f->df, a[0], 0, &s) == 0 &&
           strcmp(s.content, a[1]) == 0;
}

/*
 * The model's Markdown as Discord renders it (discord_format), in a whole
 * answer and in a streamed one (the whole current text converted at each
 * edit): a table arrives as an aligned code block, #### as bold, an image
 * as a link; @everyone goes as text (allowed_mentions keeps pings off).
 */
static void
test_markdown(void)
{
    static const char answer[] =
        "Prices @everyone:\n\n| fruit | € |\n|:--|--:|\n| apple | 3 |\n"
        "| kiwi | 12 |\n\n#### Notes\n![chart](https://x.io/c.png)";
    static const char want[] =
        "Prices @everyone:\n\n```\nfruit |  €\n------+---\napple |  3\n"
        "kiwi  | 12\n```\n\n**Notes**\n[chart](https://x.io/c.png)";
    struct discord_fx f;
    const char *whole[] = {"610", want}, *streamed[] = {"611", want};
    struct discord_fake_sent s;
    char id[32];

    if (discord_fx_init(&f, "test_discord", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    f.fa.fixed = answer;
    T_OK(dm(&f, "610", NULL, "prices?", NULL, id) > 0);
    T_OK(discord_fx_run_until(&f, shows, whole, 5000));
    T_EQ_INT(discord_fake_sent_count(f.df, "610"), 1);
    /* streamed: five growing partials, then the final edit */
    f.fa.stream_chunks = 5;
    f.fa.stream_gap_ms = 300;
    T_OK(dm(&f, "611", NULL, "prices again?", NULL, id) > 0);
    T_OK(discord_fx_run_until(&f, shows, streamed, 10000));
    T_EQ_INT(discord_fake_sent_count(f.df, "611"), 1);
    T_OK(DISCORD_FX_WAIT_STAT(&f, reactions, 4, 3000));
    if (discord_fake_sent_get(f.df, "611", 0, &s) == 0)
        printf("markdown: streamed answer took %zu edits\n", s.edits);
    T_EQ_INT(discord_fx_release(&f), 0);
}
int
main(void)
{
    int64_t t0 = fake_now_ms();

    test_heartbeat_dm_vote();
    test_guild_addressing();
    test_zombie_op7();
    test_fatal();
    test_bucket_no_429();
    test_restart_resumes();
    test_inflight_cap();
    test_typing_superseded();
    test_user_dm();
    test_markdown();
    printf("total %lld ms\n", (long long)(fake_now_ms() - t0));
    return t_done();
}
