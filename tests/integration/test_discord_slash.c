/* test_discord_slash: Discord slash commands (/parley, INTERACTION_CREATE)
 * against the fake with a real core and a fake asker: registration once
 * after READY, the deferred acknowledgement, answers as @original and
 * follow-ups, who may run what, questions with 👍/👎, redelivery, an
 * interaction not made durable, an expired token (docs/discord.md). */
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

/* A /parley interaction: its id into id (32 bytes). */
static int64_t
slash(struct discord_fx *f, const char *channel, const char *guild,
      const char *user, const char *perms, const char *text, char *id)
{
    struct discord_fake_ia x;

    memset(&x, 0, sizeof(x));
    x.channel = channel;
    x.guild = guild;
    x.user = user;
    x.name = "ann";
    x.permissions = perms;
    x.text = text;
    return discord_fake_interaction(f->df, &x, id, 32);
}

/* The interaction's @original exists and shows text that contains arg. */
struct shown {
    const char *id, *text;
};

static int
original_shows(struct discord_fx *f, const void *arg)
{
    const struct shown *w = arg;
    struct discord_fake_ia_state st;
    struct discord_fake_sent s;

    return discord_fake_ia_get(f->df, w->id, &st) == 0 &&
           st.original[0] != '\0' &&
           discord_fake_sent_find(f->df, st.original, &s) == 0 &&
           strstr(s.content, w->text) != NULL;
}

/* The content of the interaction's @original ("" when none). */
static const char *
original_text(struct discord_fx *f, const char *id)
{
    struct discord_fake_ia_state st;
    struct discord_fake_sent s;

    if (discord_fake_ia_get(f->df, id, &st) < 0 || st.original[0] == '\0' ||
        discord_fake_sent_find(f->df, st.original, &s) < 0)
        return "";
    return s.content;
}

static int
ia_acked(struct discord_fx *f, const void *arg)
{
    struct discord_fake_ia_state st;

    return discord_fake_ia_get(f->df, arg, &st) == 0 && st.type != 0;
}

/* Registration once after READY; /parley help in a guild: deferred within
 * the window, then the help text as @original. */
static void
test_register_help(void)
{
    struct discord_fx f;
    struct discord_fake_ia_state st;
    struct discord_fake_stats fs;
    struct discord_status ds;
    struct discord_fake_sent s;
    const char *body;
    char id[32];

    if (discord_fx_init(&f, "test_dslash", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    T_OK(DISCORD_FX_WAIT_STAT(&f, commands_put, 1, 3000));
    body = discord_fake_commands(f.df);
    T_OK(body != NULL);
    if (body != NULL) {
        T_CONTAINS(body, "\"name\":\"parley\"");
        T_CONTAINS(body, "\"name\":\"text\"");
        T_CONTAINS(body, "\"type\":3");
    }
    T_OK(slash(&f, "700", "9", "7", NULL, "help", id) > 0);
    T_OK(discord_fx_run_until(&f, ia_acked, id, 3000));
    discord_fake_ia_get(f.df, id, &st);
    T_EQ_INT(st.type, 5);
    T_EQ_INT(st.callbacks, 1);
    T_OKF(st.ack_after_ms >= 0 && st.ack_after_ms < 3000, "acked after %lld ms",
          (long long)st.ack_after_ms);
    T_OK(discord_fx_run_until(&f, original_shows, &(struct shown){id, "limits"},
                              5000));
    T_EQ_INT(discord_fake_sent_count(f.df, "700"), 1);
    discord_fake_ia_get(f.df, id, &st);
    T_EQ_INT(st.followups, 0);
    if (discord_fake_sent_get(f.df, "700", 0, &s) == 0) {
        T_EQ_STR(s.reply_to, "");
        T_EQ_INT(s.up + s.down, 0); /* a command's answer: no votes */
    }
    /* "/parley" alone is help too; "/help" inside the option as well */
    T_OK(slash(&f, "700", "9", "7", NULL, NULL, id) > 0);
    T_OK(discord_fx_run_until(&f, original_shows, &(struct shown){id, "limits"},
                              5000));
    T_OK(slash(&f, "700", "9", "7", NULL, "/usage", id) > 0);
    T_OK(discord_fx_run_until(&f, original_shows,
                              &(struct shown){id, "request"}, 5000));
    /* a reconnect does not register again (once per process) */
    T_EQ_INT(discord_fake_op(f.df, 7, 0), 1);
    T_OK(DISCORD_FX_WAIT_STAT(&f, resumed, 1, 3000));
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 3000));
    discord_fx_run_until(&f, NULL, NULL, 200);
    discord_fake_stats(f.df, &fs);
    T_EQ_INT(fs.commands_put, 1);
    T_EQ_INT(fs.ia_callbacks, 3);
    T_EQ_INT(fs.ia_refused, 0);
    T_EQ_INT(fs.ia_webhook_refused, 0);
    T_EQ_INT(fs.caused_429, 0);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.commands_registered, 1);
    T_EQ_INT(ds.interactions, 3);
    T_EQ_INT(ds.ia_acks, 3);
    T_EQ_INT(ds.ia_answers, 3);
    T_EQ_INT(ds.ia_fallbacks, 0);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* Who may: ban is the bot's admins' (a guild admin is refused too), limit
 * chat also the chat's administrators (ADMINISTRATOR or MANAGE_GUILD), and
 * in a DM the user. */
static void
test_admin(void)
{
    struct discord_fx f;
    char id[32];

    if (discord_fx_init(&f, "test_dslash", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    T_OK(slash(&f, "710", "9", "7", NULL, "ban 123", id) > 0);
    T_OK(discord_fx_run_until(
        &f, original_shows,
        &(struct shown){id, "only the bot's admins may use \"ban\""}, 5000));
    T_OK(slash(&f, "710", "9", "7", "8", "ban 123 1h", id) > 0);
    T_OK(discord_fx_run_until(
        &f, original_shows,
        &(struct shown){id, "only the bot's admins may use \"ban\""}, 5000));
    T_OK(slash(&f, "710", "9", "7", NULL, "limit chat 5/60s", id) > 0);
    T_OK(discord_fx_run_until(
        &f, original_shows,
        &(struct shown){id, "only this chat's administrators"}, 5000));
    /* ADMINISTRATOR (8) */
    T_OK(slash(&f, "710", "9", "7", "8", "limit chat 5/60s", id) > 0);
    T_OK(discord_fx_run_until(&f, original_shows,
                              &(struct shown){id, "Done: this chat's"}, 5000));
    /* MANAGE_GUILD (32) among other bits */
    T_OK(slash(&f, "711", "9", "7", "1099511627808", "limit chat 6/60s", id) >
         0);
    T_OK(discord_fx_run_until(&f, original_shows,
                              &(struct shown){id, "Done: this chat's"}, 5000));
    /* other permissions (2048 = SEND_MESSAGES) do not make an admin */
    T_OK(slash(&f, "712", "9", "7", "2048", "limit chat 6/60s", id) > 0);
    T_OK(discord_fx_run_until(
        &f, original_shows,
        &(struct shown){id, "only this chat's administrators"}, 5000));
    /* a DM: the user administers it */
    T_OK(slash(&f, "713", NULL, "7", NULL, "limit chat 5/60s", id) > 0);
    T_OK(discord_fx_run_until(&f, original_shows,
                              &(struct shown){id, "Done: this chat's"}, 5000));
    T_EQ_INT(discord_fx_release(&f), 0);
}

static int
reactions_on(struct discord_fx *f, const void *arg)
{
    struct discord_fake_sent s;

    return discord_fake_sent_find(f->df, arg, &s) == 0 && s.up && s.down;
}

/* A question: the model's answer as @original with 👍/👎, a vote on it; a
 * long answer: @original + a follow-up, the reactions on the last. */
static void
test_question(void)
{
    struct discord_fx f;
    struct discord_fake_ia_state st;
    struct discord_fake_sent s;
    struct core_stats cs;
    char id[32], orig[32], *long_answer;
    size_t n = 0;

    if (discord_fx_init(&f, "test_dslash", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    T_OK(slash(&f, "720", "9", "7", NULL, "what is 2+2", id) > 0);
    T_OK(discord_fx_run_until(
        &f, original_shows, &(struct shown){id, "answer to: ann: what is 2+2"},
        5000));
    T_EQ_STR(original_text(&f, id), "answer to: ann: what is 2+2");
    discord_fake_ia_get(f.df, id, &st);
    snprintf(orig, sizeof(orig), "%s", st.original);
    T_OK(discord_fx_run_until(&f, reactions_on, orig, 3000));
    /* a user's 👍 on it is a vote */
    discord_fake_reaction(f.df, "720", orig, "7", "\xf0\x9f\x91\x8d");
    discord_fx_run_until(&f, NULL, NULL, 300);
    core_stats(f.core, &cs);
    T_EQ_INT(cs.votes, 1);
    T_EQ_INT(discord_fake_sent_count(f.df, "720"), 1);

    /* over 2000 bytes: two parts */
    if ((long_answer = malloc(3200)) == NULL) {
        T_OK(0);
        T_EQ_INT(discord_fx_release(&f), 0);
        return;
    }
    while (n < 3000) {
        memcpy(long_answer + n, "All work and no play makes a dull bot.\n\n",
               40);
        n += 40;
    }
    long_answer[n] = '\0';
    f.fa.fixed = long_answer;
    T_OK(slash(&f, "721", "9", "7", NULL, "tell me a story", id) > 0);
    T_OK(discord_fx_wait_sent(&f, "721", 2, 5000));
    discord_fake_ia_get(f.df, id, &st);
    T_OK(st.original[0] != '\0');
    T_EQ_INT(st.followups, 1);
    if (st.followups == 1) {
        char fu[32];

        snprintf(fu, sizeof(fu), "%s", st.followup);
        T_OK(discord_fx_run_until(&f, reactions_on, fu, 3000));
        T_EQ_INT(discord_fake_sent_find(f.df, st.original, &s), 0);
        T_EQ_INT(s.up + s.down, 0); /* the first part: none */
        T_OK(strlen(s.content) <= 2000 && strlen(s.content) > 1000);
    }
    T_EQ_INT(discord_fake_sent_count(f.df, "721"), 2);
    f.fa.fixed = NULL;

    /* streamed: @original grows by edits through the webhook */
    f.fa.stream_chunks = 5;
    f.fa.stream_gap_ms = 150;
    T_OK(slash(&f, "722", "9", "7", NULL, "stream it", id) > 0);
    T_OK(discord_fx_run_until(&f, original_shows,
                              &(struct shown){id, "answer to: ann: stream it"},
                              8000));
    discord_fake_ia_get(f.df, id, &st);
    snprintf(orig, sizeof(orig), "%s", st.original);
    T_OK(discord_fx_run_until(&f, reactions_on, orig, 5000));
    T_EQ_STR(original_text(&f, id), "answer to: ann: stream it");
    T_EQ_INT(discord_fake_sent_count(f.df, "722"), 1);
    if (discord_fake_sent_find(f.df, orig, &s) == 0)
        printf("slash: streamed answer took %zu edits of @original\n", s.edits);
    {
        struct discord_fake_stats fs;

        discord_fake_stats(f.df, &fs);
        T_EQ_INT(fs.ia_webhook_refused, 0);
        T_EQ_INT(fs.caused_429, 0);
    }
    free(long_answer);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* The same interaction again after a reconnect: handled once. */
static void
test_redelivered(void)
{
    struct discord_fx f;
    struct discord_fake_ia_state st;
    struct discord_fake_ia x;
    struct discord_status ds;
    struct core_stats cs;
    char id[32];

    if (discord_fx_init(&f, "test_dslash", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    T_OK(slash(&f, "730", "9", "7", NULL, "what now", id) > 0);
    T_OK(discord_fx_run_until(&f, original_shows,
                              &(struct shown){id, "answer to: ann: what now"},
                              5000));
    discord_fake_drop(f.df);
    T_OK(DISCORD_FX_WAIT_STAT(&f, resumed, 1, 5000));
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 3000));
    memset(&x, 0, sizeof(x));
    x.id = id;
    x.channel = "730";
    x.guild = "9";
    x.user = "7";
    x.text = "what now";
    T_OK(discord_fake_interaction(f.df, &x, NULL, 0) > 0);
    discord_fx_run_until(&f, NULL, NULL, 500);
    discord_fake_ia_get(f.df, id, &st);
    T_EQ_INT(st.callbacks, 1);
    T_EQ_INT(discord_fake_sent_count(f.df, "730"), 1);
    core_stats(f.core, &cs);
    T_EQ_INT(f.fa.asks, 1);
    discord_status(f.d, &ds);
    T_EQ_INT(ds.interactions, 2);
    T_EQ_INT(ds.ia_acks, 1);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* core_accept fails (core stopping): no acknowledgement. */
static void
test_not_durable(void)
{
    struct discord_fx f;
    struct discord_fake_ia_state st;
    struct discord_status ds;
    char id[32];

    if (discord_fx_init(&f, "test_dslash", NULL) < 0) {
        T_OK(0);
        return;
    }
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    core_stop(f.core);
    T_OK(slash(&f, "740", "9", "7", NULL, "help", id) > 0);
    discord_fx_run_until(&f, NULL, NULL, 800);
    discord_fake_ia_get(f.df, id, &st);
    T_EQ_INT(st.callbacks, 0);
    T_EQ_INT(discord_fake_sent_count(f.df, "740"), 0);
    discord_status(f.d, &ds);
    T_OK(ds.accept_failures >= 1);
    T_EQ_INT(ds.ia_acks, 0);
    T_EQ_INT(discord_fx_release(&f), 0);
}

/* The token's life is over before the answer: it goes to the channel as an
 * ordinary message, logged. */
static void
test_expired(void)
{
    struct discord_fx f;
    struct discord_fake_ia_state st;
    struct discord_fake_sent s;
    struct discord_status ds;
    char id[32];

    if (discord_fx_init(&f, "test_dslash", NULL) < 0) {
        T_OK(0);
        return;
    }
    discord_set_interaction_ttl(f.d, 300);
    f.fa.delay_ms = 700;
    T_OK(discord_fx_run_until(&f, discord_fx_is_up, NULL, 5000));
    T_OK(slash(&f, "750", "9", "7", NULL, "slow one", id) > 0);
    T_OK(discord_fx_wait_sent(&f, "750", 1, 5000));
    discord_fake_ia_get(f.df, id, &st);
    T_EQ_INT(st.type, 5);
    T_EQ_STR(st.original, "");
    if (discord_fake_sent_get(f.df, "750", 0, &s) == 0) {
        T_EQ_STR(s.content, "answer to: ann: slow one");
        T_EQ_STR(s.reply_to, "");
        T_OK(strncmp(s.nonce, "job:", 4) == 0);
    }
    T_OK(DISCORD_FX_WAIT_STAT(&f, reactions, 2, 3000));
    discord_status(f.d, &ds);
    T_EQ_INT(ds.ia_fallbacks, 1);
    T_EQ_INT(ds.ia_answers, 0);

    /* the fake's webhook refuses (401 50027) though we think it lives */
    discord_set_interaction_ttl(f.d, 0);
    discord_fake_set_ia_deadline(f.df, 0, 300);
    T_OK(slash(&f, "751", "9", "7", NULL, "slow two", id) > 0);
    T_OK(discord_fx_wait_sent(&f, "751", 1, 5000));
    if (discord_fake_sent_get(f.df, "751", 0, &s) == 0)
        T_EQ_STR(s.content, "answer to: ann: slow two");
    discord_status(f.d, &ds);
    T_EQ_INT(ds.ia_fallbacks, 2);
    T_EQ_INT(discord_fx_release(&f), 0);
}

int
main(void)
{
    int64_t t0 = fake_now_ms();

    test_register_help();
    test_admin();
    test_question();
    test_redelivered();
    test_not_durable();
    test_expired();
    printf("total %lld ms\n", (long long)(fake_now_ms() - t0));
    return t_done();
}
