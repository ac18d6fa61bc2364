/* soak: parleyd against the Telegram, Discord, Slack and LLM fakes for a long
 * while, with LLM faults, gateway disconnects and kill -9; then every
 * accepted message must have been answered exactly once. */
#include "tests/fakes/discord_fake.h"
#include "tests/fakes/fake.h"
#include "tests/fakes/llm_fake.h"
#include "tests/fakes/parleyd_child.h"
#include "tests/fakes/slack_fake.h"
#include "tests/fakes/telegram_fake.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * usage: soak PARLEYD SECONDS KILL_EVERY_S REPORT.md [RATE [SLACK_RATE]]
 *
 * The fakes live in this process for the whole run, so they keep their
 * state (Telegram's unconfirmed updates, Slack's unacked envelopes,
 * Discord's sessions) across parleyd's deaths, like the real services.
 * Traffic: RATE messages per second (default 15), Telegram and Discord
 * taking turns, and SLACK_RATE (default 0.3) to Slack, private chats (50
 * per platform), each text "skN" (N unique) and SOAK_WORDS - 1 words.
 * Slack gets less because every streamed answer costs at least one
 * chat.update, a Tier 3 method parley sends at most one per 1.2 s per
 * workspace (docs/slack.md "Pacing"): ~50 answers a minute at best, less
 * with the intermediate edits; at 5/s Slack falls behind for good.
 * Answers are streamed ([llm] stream = true): the LLM fake sends the echo
 * STREAM_TOKENS words per event, STREAM_DELAY_MS apart (~2 s an answer),
 * the first event already carrying "skN", so a kill lands mid-stream and
 * every message a stream posts names its message.  Faults while traffic
 * flows:
 *   - LLM: about 1 request in 20 gets a scripted fault (429 with
 *     retry-after 1-3 s, 500/502/503, a hang that parleyd's 5 s timeout
 *     ends, a closed connection, a stream cut or ended by an error event
 *     halfway), and every ~90 s a 4 s outage (503 for everything);
 *   - gateways: every 15-45 s a Discord close (4000), drop or op 7, or a
 *     Slack disconnect (refresh_requested) or drop;
 *   - parleyd: SIGKILL every KILL_EVERY_S (× 0.5-1.5), restarted 0-1 s
 *     later.
 * Then traffic stops, faults stop, and the run waits (at most 180 s) for
 * every message to be answered.  A message is "accepted" when its job row
 * exists in parley.db; it must have exactly one answer at its fake: one
 * bot message not deleted carrying its skN (a streamed answer is one
 * message, posted then edited), showing the whole final answer.
 * Every platform keeps what parleyd has not acknowledged (Telegram's
 * offset, Slack's envelope acks, Discord's RESUME replay, and parleyd
 * persists its Discord session), so every message sent must also be
 * accepted and answered.
 * Exit 0 clean, 1 lost or duplicated messages, 2 set-up failure.
 */

#define CHATS 50
#define RSS_EVERY_US 10000000
#define SOAK_WORDS 40 /* per message, and so per streamed answer */
#define SOAK_TEXT_MAX 512
#define STREAM_TOKENS 2     /* words per streamed event */
#define STREAM_DELAY_MS 100 /* between two streamed events: ~2 s a stream */

enum plat { P_TG, P_DC, P_SL, P_N };
static const char *plat_name[P_N] = {"telegram", "discord", "slack"};

struct smsg {
    enum plat p;
    int chat;
    int64_t t_us;
    int answers; /* bot messages on the platform carrying its skN */
    int stale;   /* of them, not showing the final answer */
    int accepted;
};

struct life {
    int64_t start_us, end_us;
    long first_kb, last_kb, max_kb;
    int samples;
    int killed;
};

struct soak {
    uv_loop_t loop;
    struct telegram_fake *tg;
    struct discord_fake *dc;
    struct slack_fake *sl;
    struct llm_fake *llm;
    struct parleyd_child pd;
    char dir[64];
    /* traffic */
    struct smsg *msgs;
    int n, cap;
    double rate;       /* Telegram and Discord, taking turns */
    double slack_rate; /* Slack, on its own clock */
    int n_main, n_slack;
    int64_t t0_us, end_us;
    /* events */
    int64_t next_kill_us, next_gw_us, next_fault_us, next_outage_us,
        outage_end_us, next_rss_us;
    int kills, restarts, gw_events, faults, outages, ready_fail;
    uint64_t fault_mark; /* LLM requests seen at the last scripted fault */
    int died;            /* exits nobody asked for */
    int last_exit;       /* wait status of the final SIGTERM stop */
    struct life lives[256];
    int nlives;
    long series_kb[4096]; /* every sample of the run, for its trajectory */
    int nseries;
    int traffic_on;
    /* kills mid-stream: when (fake_now_ms), LLM replies in flight then */
    int64_t kill_ms[256];
    int nkill_ms;
    size_t inflight_at_kills;
};

static double
rnd(void)
{
    return (double)random() / ((double)RAND_MAX + 1.0);
}

static int64_t
rnd_us(double lo_s, double hi_s)
{
    return (int64_t)((lo_s + (hi_s - lo_s) * rnd()) * 1e6);
}

/* ---- set-up ------------------------------------------------------------ */

static int
write_conf(struct soak *s)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/parley.conf", s->dir);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "[bot]\nstate_dir = %s/state\nmetrics_listen =\nlog_level = info\n"
            "\n[telegram]\ntoken = %s\napi_base = %s\npoll_timeout = 1s\n"
            "\n[discord]\ntoken = %s\napi_base = %s\n"
            "\n[slack]\napp_token = %s\nbot_token = %s\napi_base = %s\n"
            "\n[limits]\nuser = off\nchat = off\nuser_tokens = off\n"
            "\n[llm]\nmodels = main\nstream = true\ntimeout = 5s\n"
            "give_up_after = 10m\n"
            "\n[retry]\nmultiplier = 250ms\nmin = 250ms\nmax = 4s\n"
            "\n[model.main]\napi = openai\n"
            "base_url = http://127.0.0.1:%d/v1\napi_key = sk-soak-0123456789\n"
            "name = gpt-soak\nrpm = 0\ntpm = 0\n",
            s->dir, TELEGRAM_FAKE_TOKEN, telegram_fake_base(s->tg),
            DISCORD_FAKE_TOKEN, discord_fake_base(s->dc), SLACK_FAKE_APP_TOKEN,
            SLACK_FAKE_BOT_TOKEN, slack_fake_base(s->sl),
            llm_fake_port(s->llm));
    return fclose(f) == 0 ? 0 : -1;
}

static void
life_begin(struct soak *s)
{
    struct life *l;

    if (s->nlives >= (int)(sizeof(s->lives) / sizeof(s->lives[0])))
        return;
    l = &s->lives[s->nlives++];
    memset(l, 0, sizeof(*l));
    l->start_us = mono_us();
    l->first_kb = l->last_kb = l->max_kb = proc_rss_kb(s->pd.pid);
    l->samples = 1;
}

static void
life_sample(struct soak *s)
{
    struct life *l;
    long kb;

    if (s->nlives == 0 || s->pd.pid <= 0)
        return;
    l = &s->lives[s->nlives - 1];
    kb = proc_rss_kb(s->pd.pid);
    if (kb <= 0)
        return;
    l->last_kb = kb;
    if (kb > l->max_kb)
        l->max_kb = kb;
    l->samples++;
    if (s->nseries < (int)(sizeof(s->series_kb) / sizeof(s->series_kb[0])))
        s->series_kb[s->nseries++] = kb;
}

static void
life_end(struct soak *s, int killed)
{
    if (s->nlives == 0)
        return;
    life_sample(s);
    s->lives[s->nlives - 1].end_us = mono_us();
    s->lives[s->nlives - 1].killed = killed;
}

static int
start_parleyd(struct soak *s)
{
    if (parleyd_child_start(&s->pd) == -1)
        return -1;
    if (parleyd_child_wait_ready(&s->pd, &s->loop, 15000) == -1) {
        s->ready_fail++;
        fprintf(stderr, "soak: parleyd not ready after a start\n");
        return -1;
    }
    life_begin(s);
    return 0;
}

/* ---- traffic ------------------------------------------------------------ */

/* Message k's text: "skK" and SOAK_WORDS - 1 plain words (no Markdown, no
 * digits after "sk"), into buf of cap >= SOAK_TEXT_MAX.  The answer is
 * "echo: " + it, streamed STREAM_TOKENS words per event. */
static void
soak_text(int k, char *buf, size_t cap)
{
    static const char *w[] = {"amber", "birch", "cedar", "dune", "ember",
                              "fern",  "grove", "heath", "iris", "juniper"};
    size_t len = (size_t)snprintf(buf, cap, "sk%d", k);

    for (int i = 1; i < SOAK_WORDS && len < cap; i++)
        len +=
            (size_t)snprintf(buf + len, cap - len, " %s",
                             w[(i * 3 + k) % (int)(sizeof(w) / sizeof(w[0]))]);
}

static int
inject(struct soak *s, enum plat p)
{
    struct smsg *m;
    char text[SOAK_TEXT_MAX], id[32], ch[32], user[32];
    int k = s->n;

    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 4096;
        struct smsg *v = realloc(s->msgs, sizeof(*v) * (size_t)cap);
        if (v == NULL)
            return -1;
        s->msgs = v;
        s->cap = cap;
    }
    m = &s->msgs[k];
    memset(m, 0, sizeof(*m));
    m->p = p;
    m->chat = (int)(random() % CHATS);
    m->t_us = mono_us();
    soak_text(k, text, sizeof(text));
    if (p == P_TG) {
        struct telegram_fake_msg tm;
        memset(&tm, 0, sizeof(tm));
        tm.chat = 4000000 + m->chat;
        tm.type = "private";
        tm.text = text;
        if (telegram_fake_message(s->tg, &tm, NULL) < 0)
            return -1;
    } else if (p == P_DC) {
        struct discord_fake_msg dm;
        memset(&dm, 0, sizeof(dm));
        snprintf(ch, sizeof(ch), "71000000000000%04d", m->chat);
        snprintf(user, sizeof(user), "72000000000000%04d", m->chat);
        dm.channel = ch;
        dm.author = user;
        dm.name = "soaker";
        dm.content = text;
        if (discord_fake_message(s->dc, &dm, id, sizeof(id)) < 0)
            return -1;
    } else {
        snprintf(ch, sizeof(ch), "D%04d", m->chat);
        snprintf(user, sizeof(user), "U%04d", m->chat);
        if (slack_fake_dm(s->sl, ch, user, text, id, sizeof(id)) != 0)
            return -1;
    }
    s->n++;
    return 0;
}

/* ---- faults ------------------------------------------------------------- */

static void
llm_fault(struct soak *s)
{
    struct llm_fake_fault f;
    double r = rnd();

    memset(&f, 0, sizeof(f));
    if (r < 0.3) {
        f.kind = LLM_FAKE_429;
        f.after = LLM_FAKE_AFTER_SECONDS;
        f.after_ms = 1000 + (int64_t)(rnd() * 2000);
    } else if (r < 0.55) {
        static const int codes[] = {500, 502, 503};
        f.kind = LLM_FAKE_STATUS;
        f.status = codes[random() % 3];
    } else if (r < 0.65) {
        f.kind = LLM_FAKE_HANG;
    } else if (r < 0.75) {
        f.kind = LLM_FAKE_CLOSE;
    } else if (r < 0.9) {
        f.kind = LLM_FAKE_STREAM_CUT; /* mid-stream, after half of it */
    } else {
        f.kind = LLM_FAKE_STREAM_ERROR;
    }
    if (llm_fake_script(s->llm, NULL, &f) == 0)
        s->faults++;
}

static void
gateway_fault(struct soak *s)
{
    switch (random() % 5) {
    case 0:
        discord_fake_close(s->dc, 4000);
        break;
    case 1:
        discord_fake_drop(s->dc);
        break;
    case 2:
        discord_fake_op(s->dc, 7, 0);
        break;
    case 3:
        slack_fake_disconnect(s->sl, "refresh_requested");
        break;
    default:
        slack_fake_drop_all(s->sl);
        break;
    }
    s->gw_events++;
}

static void
kill_and_restart(struct soak *s)
{
    life_end(s, 1);
    s->inflight_at_kills += fake_inflight(llm_fake_fake(s->llm));
    if (s->nkill_ms < (int)(sizeof(s->kill_ms) / sizeof(s->kill_ms[0])))
        s->kill_ms[s->nkill_ms++] = fake_now_ms();
    parleyd_child_stop(&s->pd, &s->loop, SIGKILL, 5000);
    s->kills++;
    loop_for(&s->loop, (int64_t)(rnd() * 1000));
    if (start_parleyd(s) == 0)
        s->restarts++;
}

/* One tick of the main phase: traffic, faults, samples. */
static int
tick(void *arg)
{
    struct soak *s = arg;
    int64_t now = mono_us();
    double el = (now - s->t0_us) / 1e6;

    while (s->traffic_on && s->n_main < (int64_t)(el * s->rate)) {
        if (inject(s, s->n_main % 2 ? P_DC : P_TG) == -1)
            return 1;
        s->n_main++;
    }
    while (s->traffic_on && s->n_slack < (int64_t)(el * s->slack_rate)) {
        if (inject(s, P_SL) == -1)
            return 1;
        s->n_slack++;
    }
    if (now >= s->next_rss_us) {
        life_sample(s);
        s->next_rss_us = now + RSS_EVERY_US;
    }
    if (!s->traffic_on)
        return 0;
    if (now >= s->next_fault_us) {
        struct llm_fake_stats ls;

        /*
         * Faults go with traffic, about 1 request in 20: queued while the
         * breaker holds requests back, they would all land on its probes
         * (a real provider's faults do not wait for the next request).
         */
        llm_fake_stats(s->llm, &ls);
        if (rnd() < 0.4 && llm_fake_script_pending(s->llm) == 0 &&
            ls.requests >= s->fault_mark + 20) {
            llm_fault(s);
            s->fault_mark = ls.requests;
        }
        s->next_fault_us = now + 500000;
    }
    if (now >= s->next_outage_us) {
        struct llm_fake_fault f;
        memset(&f, 0, sizeof(f));
        f.kind = LLM_FAKE_STATUS;
        f.status = 503;
        llm_fake_set_default(s->llm, NULL, &f);
        s->outages++;
        s->outage_end_us = now + 4000000;
        s->next_outage_us = now + rnd_us(60, 120);
    }
    if (s->outage_end_us && now >= s->outage_end_us) {
        llm_fake_set_default(s->llm, NULL, NULL);
        s->outage_end_us = 0;
    }
    if (now >= s->next_gw_us) {
        gateway_fault(s);
        s->next_gw_us = now + rnd_us(15, 45);
    }
    return now >= s->end_us || (s->next_kill_us && now >= s->next_kill_us) ||
           !parleyd_child_alive(&s->pd);
}

/* ---- counting ------------------------------------------------------------ */

/*
 * One bot message that is on the platform now (deleted ones are not
 * counted: a stream deletes the messages a shorter final text no longer
 * needs).  A streamed answer is one message, posted then edited: it
 * counts once, whatever its edits.  Its text should be the final answer,
 * "echo: " + the message; one left showing a partial text (or anything
 * else with the skN) is counted in `stale` too.
 */
static void
count_text(struct soak *s, const char *text, int *unmatched)
{
    const char *p = text ? strstr(text, "sk") : NULL;
    char want[SOAK_TEXT_MAX + 8];
    int k;

    while (p != NULL && !(p[2] >= '0' && p[2] <= '9'))
        p = strstr(p + 2, "sk");
    if (p == NULL) {
        (*unmatched)++;
        return;
    }
    k = atoi(p + 2);
    if (k < 0 || k >= s->n) {
        (*unmatched)++;
        return;
    }
    s->msgs[k].answers++;
    memcpy(want, "echo: ", 6);
    soak_text(k, want + 6, sizeof(want) - 6);
    if (strcmp(text, want) != 0)
        s->msgs[k].stale++;
}

static void
count_answers(struct soak *s, int unmatched[P_N])
{
    struct discord_fake_sent ds;
    struct slack_fake_msg sm;

    for (int k = 0; k < s->n; k++)
        s->msgs[k].answers = s->msgs[k].stale = 0;
    memset(unmatched, 0, sizeof(int) * P_N);
    for (int c = 0; c < CHATS; c++) {
        const struct telegram_fake_sent *v;
        size_t n = telegram_fake_sent(s->tg, 4000000 + c, &v);
        for (size_t i = 0; i < n; i++)
            if (!v[i].deleted)
                count_text(s, v[i].text, &unmatched[P_TG]);
    }
    for (size_t i = 0; discord_fake_sent_get(s->dc, NULL, i, &ds) == 0; i++)
        if (!ds.deleted)
            count_text(s, ds.content, &unmatched[P_DC]);
    /* slack_fake_message() skips deleted messages itself */
    for (size_t i = 0; slack_fake_message(s->sl, NULL, i, &sm) == 0; i++)
        if (sm.bot)
            count_text(s, sm.text, &unmatched[P_SL]);
}

/* Marks accepted messages from the jobs table; returns unfinished jobs,
 * -1 when the database cannot be read. */
static int
count_accepted(struct soak *s, int states[8])
{
    static const char *names[] = {"received", "limited", "queued", "asking",
                                  "answered", "sent",    "failed"};
    char path[128];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int unfinished = 0, rc = -1;

    snprintf(path, sizeof(path), "file:%s/state/parley.db?mode=ro", s->dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, "SELECT text, state FROM jobs", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    for (int k = 0; k < s->n; k++)
        s->msgs[k].accepted = 0;
    memset(states, 0, sizeof(int) * 8);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        const char *state = (const char *)sqlite3_column_text(st, 1);
        int k, i;
        if (t != NULL && strncmp(t, "sk", 2) == 0 && (k = atoi(t + 2)) >= 0 &&
            k < s->n)
            s->msgs[k].accepted++;
        for (i = 0; i < 7 && state != NULL; i++)
            if (strcmp(state, names[i]) == 0)
                break;
        states[i < 7 ? i : 7]++;
        if (i != 1 && i != 5 && i != 6)
            unfinished++;
    }
    rc = unfinished;
out:
    if (st != NULL)
        sqlite3_finalize(st);
    if (db != NULL)
        sqlite3_close(db);
    return rc;
}

struct drain {
    struct soak *s;
    int64_t next_us;
};

static int
drain_cond(void *arg)
{
    struct drain *d = arg;
    struct soak *s = d->s;
    int states[8], unmatched[P_N], unfinished, missing = 0;

    tick(s);
    if (mono_us() < d->next_us)
        return 0;
    d->next_us = mono_us() + 1000000;
    unfinished = count_accepted(s, states);
    count_answers(s, unmatched);
    for (int k = 0; k < s->n; k++)
        if (s->msgs[k].answers == 0)
            missing++;
    return unfinished == 0 && missing == 0;
}

/* ---- the report ------------------------------------------------------- */

/* 1 when a kill fell between a message's post and its last edit: a
 * stream that went on in the same message after the restart. */
static int
spans_kill(const struct soak *s, int64_t posted_ms, const int64_t *edit_ms,
           size_t nedit)
{
    for (int i = 0; nedit > 0 && i < s->nkill_ms; i++)
        if (posted_ms < s->kill_ms[i] && s->kill_ms[i] < edit_ms[nedit - 1])
            return 1;
    return 0;
}

/* Bot messages, not deleted, whose stream outlived a kill, per platform. */
static void
count_resumed(struct soak *s, int out[P_N])
{
    struct discord_fake_sent ds;
    struct slack_fake_msg sm;

    memset(out, 0, sizeof(int) * P_N);
    for (int c = 0; c < CHATS; c++) {
        const struct telegram_fake_sent *v;
        size_t n = telegram_fake_sent(s->tg, 4000000 + c, &v);
        for (size_t i = 0; i < n; i++)
            if (!v[i].deleted)
                out[P_TG] +=
                    spans_kill(s, v[i].t_ms, v[i].edit_ms, v[i].nedit_ms);
    }
    for (size_t i = 0; discord_fake_sent_get(s->dc, NULL, i, &ds) == 0; i++) {
        const int64_t *v;
        size_t n = discord_fake_edit_times(s->dc, ds.id, &v);
        if (!ds.deleted)
            out[P_DC] += spans_kill(s, ds.t_ms, v, n);
    }
    for (size_t i = 0; slack_fake_message(s->sl, NULL, i, &sm) == 0; i++)
        if (sm.bot)
            out[P_SL] += spans_kill(s, sm.t_ms, sm.edit_t_ms, (size_t)sm.edits);
}

static int
report(struct soak *s, const char *path, double secs, int kill_every,
       int drained, double drain_s)
{
    int states[8] = {0}, unmatched[P_N];
    int sent[P_N] = {0}, acc[P_N] = {0}, ans1[P_N] = {0}, lost[P_N] = {0},
        dup[P_N] = {0}, notacc[P_N] = {0}, extra[P_N] = {0}, stale[P_N] = {0},
        resumed[P_N];
    int bad = 0, unfinished;
    struct telegram_fake_stats ts;
    struct discord_fake_stats ds;
    struct slack_fake_stats ss;
    struct llm_fake_stats ls;
    FILE *f = fopen(path, "w");
    char when[32];
    time_t now = time(NULL);

    unfinished = count_accepted(s, states);
    count_answers(s, unmatched);
    count_resumed(s, resumed);
    for (int k = 0; k < s->n; k++) {
        struct smsg *m = &s->msgs[k];
        sent[m->p]++;
        if (m->accepted > 1)
            extra[m->p]++;
        if (m->accepted) {
            acc[m->p]++;
            if (m->answers == 0)
                lost[m->p]++;
        } else {
            notacc[m->p]++;
            lost[m->p] += m->answers == 0;
        }
        if (m->answers == 1)
            ans1[m->p]++;
        if (m->answers > 1)
            dup[m->p]++;
        if (m->stale > 0)
            stale[m->p]++;
    }
    telegram_fake_stats(s->tg, &ts);
    discord_fake_stats(s->dc, &ds);
    slack_fake_stats(s->sl, &ss);
    llm_fake_stats(s->llm, &ls);
    if (f == NULL)
        f = stdout;
    strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&now));
    fprintf(f,
            "# Soak\n\nWritten by `make soak` (%s); do not edit by hand. "
            "Reproduce with\n`make soak SOAK_SECONDS=%.0f "
            "SOAK_KILL_EVERY=%d` (defaults 600 and 60).\n\n",
            when, secs, kill_every);
    fprintf(f,
            "parleyd (the real daemon, a child process) against the "
            "Telegram, Discord, Slack and\nLLM fakes of `tests/fakes/`, which "
            "live in the driver (`tests/bench/soak.c`) for the\nwhole run "
            "and so keep their state across parleyd's deaths. %.0f s of "
            "traffic at\n%.1f msg/s to Telegram and Discord together and "
            "%.1f msg/s to Slack (unique texts\n`skN` + %d words, private "
            "chats, 50 per platform), **answers streamed** (`[llm]\nstream "
            "= true`, `stream_interval` 1500 ms: a post, then edits) on all "
            "three\nplatforms, the LLM fake streaming %d words per event %d "
            "ms apart (~2 s an answer,\nso a kill lands mid-stream). Slack "
            "gets less: each streamed answer costs at least\none "
            "`chat.update`, which parley sends at most once per 1.2 s per "
            "workspace (Tier 3).\nLLM faults "
            "(429 with retry-after,\n500/502/503, hangs ended by a 5 s "
            "timeout, closed connections, streams cut or ended\nby an error "
            "event halfway, 4 s outages); gateway disconnects (Discord close "
            "4000, drop, op 7; "
            "Slack\n`refresh_requested`, drop); `kill -9` of parleyd about "
            "every %d s and a restart.\nThen a drain: %s after %.1f s.\n\n",
            secs, s->rate, s->slack_rate, SOAK_WORDS - 1, STREAM_TOKENS,
            STREAM_DELAY_MS, kill_every,
            drained ? "every message answered" : "**did not complete**",
            drain_s);
    fprintf(f, "## Messages\n\n| platform | sent | accepted (job row) | "
               "answered once | lost | duplicated | not the final text | never "
               "accepted |\n|---|---|---|---|---|---|---|---|\n");
    for (int p = 0; p < P_N; p++) {
        fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", plat_name[p],
                sent[p], acc[p], ans1[p], lost[p], dup[p], stale[p], notacc[p]);
        bad += lost[p] + dup[p] + extra[p] + stale[p];
    }
    fprintf(f,
            "\nLost: sent and never answered (each platform keeps a message "
            "until it is\nacknowledged: Telegram's offset, Slack's envelope "
            "ack, Discord's RESUME\nreplay). "
            "Duplicated: more than one bot message on the platform now "
            "carrying its\ntext (a streamed answer is one message however "
            "often it was edited; deleted\nmessages do not count). Not the "
            "final text: a message left showing something\nelse than the "
            "whole answer (a partial). Job rows "
            "per message above one: %d. Bot messages without a `skN` text "
            "(error\nreplies): telegram %d, discord %d, slack %d. Jobs not "
            "finished at the end: %d.\n",
            extra[0] + extra[1] + extra[2], unmatched[0], unmatched[1],
            unmatched[2], unfinished);
    fprintf(f, "\n**Result: %s** (%d lost, duplicated or not final).\n",
            bad == 0 && drained && s->died == 0 ? "PASS" : "FAIL", bad);
    fprintf(f, "\n## Faults injected\n\n| what | count |\n|---|---|\n");
    fprintf(f, "| kill -9 of parleyd / restarts (READY=1 seen) | %d / %d |\n",
            s->kills, s->restarts);
    fprintf(f,
            "| parleyd exits nobody asked for / READY=1 missing after a "
            "start / final SIGTERM stop | %d / %d / %s |\n",
            s->died, s->ready_fail,
            s->last_exit != -1 && WIFEXITED(s->last_exit) &&
                    WEXITSTATUS(s->last_exit) == 0
                ? "exit 0"
                : "NOT exit 0");
    fprintf(f,
            "| LLM replies in flight at the kills (streams cut) / answer "
            "messages posted before a kill and edited after it (telegram, "
            "discord, slack) | %zu / %d, %d, %d |\n",
            s->inflight_at_kills, resumed[P_TG], resumed[P_DC], resumed[P_SL]);
    fprintf(f, "| gateway disconnects (Discord + Slack) | %d |\n",
            s->gw_events);
    fprintf(f, "| LLM scripted faults / outages | %d / %d |\n", s->faults,
            s->outages);
    fprintf(f,
            "| LLM requests / 200 / 4xx / 5xx | %llu / %llu / %llu / %llu "
            "|\n",
            (unsigned long long)ls.requests, (unsigned long long)ls.ok,
            (unsigned long long)ls.status[4], (unsigned long long)ls.status[5]);
    fprintf(f,
            "| Telegram getUpdates / sendMessage / 429 | %llu / %llu / %llu "
            "|\n",
            (unsigned long long)ts.get_updates,
            (unsigned long long)ts.send_message, (unsigned long long)ts.err429);
    fprintf(f,
            "| Discord connections / identifies / resumes (resumed) / "
            "replayed / nonce re-sends absorbed | %llu / %llu / %llu (%llu) / "
            "%llu / %llu |\n",
            (unsigned long long)ds.connections,
            (unsigned long long)ds.identifies, (unsigned long long)ds.resumes,
            (unsigned long long)ds.resumed, (unsigned long long)ds.replayed,
            (unsigned long long)ds.dup_nonce);
    fprintf(f,
            "| Slack connects / redeliveries / acks / posts / posts 429 | %llu "
            "/ %llu / %llu / %llu / %llu |\n",
            (unsigned long long)ss.connects,
            (unsigned long long)ss.redeliveries, (unsigned long long)ss.acks,
            (unsigned long long)ss.posts, (unsigned long long)ss.posts_429);
    fprintf(f,
            "| stream edits / deletes: Telegram (not modified) / Discord "
            "(unknown message) / Slack (429) | %llu / %llu (%llu); %llu / "
            "%llu (%llu); %llu / %llu (%llu) |\n",
            (unsigned long long)ts.edit_message,
            (unsigned long long)ts.delete_message,
            (unsigned long long)ts.not_modified, (unsigned long long)ds.edits,
            (unsigned long long)ds.deletes,
            (unsigned long long)ds.unknown_message,
            (unsigned long long)ss.updates, (unsigned long long)ss.deletes,
            (unsigned long long)(ss.updates_429 + ss.deletes_429));
    fprintf(f, "\n## parleyd RSS, sampled every 10 s, per process lifetime\n\n"
               "| # | lived | samples | first | last | max | ended by |\n"
               "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < s->nlives; i++) {
        struct life *l = &s->lives[i];
        fprintf(f, "| %d | %.0f s | %d | %.1f MB | %.1f MB | %.1f MB | %s |\n",
                i + 1,
                ((l->end_us ? l->end_us : mono_us()) - l->start_us) / 1e6,
                l->samples, l->first_kb / 1024.0, l->last_kb / 1024.0,
                l->max_kb / 1024.0, l->killed ? "kill -9" : "SIGTERM");
    }
    if (s->nseries >= 10) {
        /* flat or still climbing: the largest sample of each tenth */
        fprintf(f, "\nRSS over the run, the largest sample of each tenth of "
                   "it (across restarts):");
        for (int t = 0; t < 10; t++) {
            long m = 0;

            for (int i = t * s->nseries / 10; i < (t + 1) * s->nseries / 10;
                 i++)
                m = s->series_kb[i] > m ? s->series_kb[i] : m;
            fprintf(f, "%s %.1f", t ? "," : "", m / 1024.0);
        }
        fprintf(f, " MB.\n");
    }
    fprintf(f, "\nJob states at the end:");
    {
        static const char *names[] = {"received", "limited", "queued", "asking",
                                      "answered", "sent",    "failed", "other"};
        for (int i = 0; i < 8; i++)
            if (states[i])
                fprintf(f, " %s %d", names[i], states[i]);
    }
    fprintf(f, ".\n");
    if (f != stdout)
        fclose(f);
    fprintf(stderr,
            "soak: %d messages, lost %d/%d/%d, duplicated %d/%d/%d, not "
            "final %d/%d/%d (telegram/discord/slack), kills %d, drained %d "
            "-> %s\n",
            s->n, lost[0], lost[1], lost[2], dup[0], dup[1], dup[2], stale[0],
            stale[1], stale[2], s->kills, drained,
            bad == 0 && drained && s->died == 0 ? "PASS" : "FAIL");
    return bad == 0 && drained && s->died == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct soak s;
    struct drain d;
    char conf[128], log[128], cmd[160];
    double secs;
    int kill_every, rc = 2, drained;
    int64_t t_drain;

    if (argc < 5) {
        fprintf(stderr,
                "usage: soak PARLEYD SECONDS KILL_EVERY_S REPORT.md [RATE "
                "[SLACK_RATE]]\n");
        return 2;
    }
    memset(&s, 0, sizeof(s));
    s.pd.notify_fd = -1;
    secs = atof(argv[2]);
    kill_every = atoi(argv[3]);
    s.rate = argc > 5 ? atof(argv[5]) : 15.0;
    s.slack_rate = argc > 6 ? atof(argv[6]) : 0.3;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    signal(SIGPIPE, SIG_IGN);
    snprintf(s.dir, sizeof(s.dir), "/tmp/parley-soak-XXXXXX");
    if (mkdtemp(s.dir) == NULL)
        return 2;
    uv_loop_init(&s.loop);
    s.tg = telegram_fake_new(&s.loop, 0, NULL);
    s.dc = discord_fake_new(&s.loop, 0, NULL);
    s.sl = slack_fake_new(&s.loop, 0);
    s.llm = llm_fake_new(&s.loop, 0);
    if (s.tg == NULL || s.dc == NULL || s.sl == NULL || s.llm == NULL)
        goto out;
    telegram_fake_set_hold_max(s.tg, 1000);
    llm_fake_set_latency(s.llm, 50);
    {
        struct llm_fake_stream st;
        memset(&st, 0, sizeof(st));
        st.tokens_per_event = STREAM_TOKENS;
        st.events_per_chunk = 1;
        st.chunk_delay_ms = STREAM_DELAY_MS;
        llm_fake_set_stream(s.llm, &st);
    }
    discord_fake_set_heartbeat(s.dc, 5000);
    if (write_conf(&s) == -1)
        goto out;
    snprintf(conf, sizeof(conf), "%s/parley.conf", s.dir);
    snprintf(log, sizeof(log), "%s/parleyd.log", s.dir);
    fprintf(stderr,
            "soak: %s, %.0f s, kill -9 every ~%d s, %.1f msg/s + %.1f msg/s "
            "to Slack\n",
            s.dir, secs, kill_every, s.rate, s.slack_rate);
    if (parleyd_child_init(&s.pd, argv[1], conf, log, s.dir) == -1 ||
        start_parleyd(&s) == -1)
        goto out;
    s.t0_us = mono_us();
    s.end_us = s.t0_us + (int64_t)(secs * 1e6);
    s.next_kill_us = kill_every > 0
                         ? s.t0_us + rnd_us(0.5 * kill_every, 1.5 * kill_every)
                         : 0;
    s.next_gw_us = s.t0_us + rnd_us(15, 45);
    s.next_outage_us = s.t0_us + rnd_us(60, 120);
    s.traffic_on = 1;
    while (mono_us() < s.end_us) {
        loop_until(&s.loop, tick, &s, secs * 1000 + 1000);
        if (mono_us() >= s.end_us)
            break;
        if (!parleyd_child_alive(&s.pd)) {
            fprintf(stderr, "soak: parleyd died on its own (log: %s)\n", log);
            s.died++;
            life_end(&s, 0);
            if (start_parleyd(&s) == 0)
                s.restarts++;
            continue;
        }
        if (s.next_kill_us && mono_us() >= s.next_kill_us) {
            kill_and_restart(&s);
            s.next_kill_us =
                mono_us() + rnd_us(0.5 * kill_every, 1.5 * kill_every);
        }
    }
    /* drain: no traffic, no faults */
    s.traffic_on = 0;
    llm_fake_set_default(s.llm, NULL, NULL);
    t_drain = mono_us();
    d.s = &s;
    d.next_us = 0;
    drained = loop_until(&s.loop, drain_cond, &d, 180000);
    fprintf(stderr, "soak: drain %s after %.1f s\n",
            drained ? "complete" : "incomplete", (mono_us() - t_drain) / 1e6);
    life_end(&s, 0);
    s.last_exit = parleyd_child_stop(&s.pd, &s.loop, SIGTERM, 10000);
    rc = report(&s, argv[4], secs, kill_every, drained,
                (mono_us() - t_drain) / 1e6);
    if (rc != 0 || getenv("SOAK_KEEP") != NULL) {
        fprintf(stderr, "soak: state and parleyd.log kept in %s\n", s.dir);
        s.dir[0] = '\0';
    }
out:
    parleyd_child_close(&s.pd);
    if (s.tg)
        telegram_fake_free(s.tg);
    if (s.dc)
        discord_fake_free(s.dc);
    if (s.sl)
        slack_fake_free(s.sl);
    if (s.llm)
        llm_fake_free(s.llm);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    if (s.dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", s.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "soak: cannot remove %s\n", s.dir);
    }
    free(s.msgs);
    return rc;
}
