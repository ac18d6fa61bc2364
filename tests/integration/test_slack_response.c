/* test_slack_response: slash commands answered through their response_url
 * where the bot cannot post (not_in_channel, channel_not_found), with a
 * real core, the Slack fake and the connector driven as core drives it. */
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
#include "tests/t.h"

static char tmpdir[64];

/* Our send ids: far from core's, which core_send_done ignores. */
#define ID_BASE (1ULL << 60)
#define RESULTS_MAX 64

struct result {
    uint64_t id;
    enum send_status status;
    char message_id[EVENT_ID_MAX + 1];
    char error_class[32];
};

struct fixture {
    struct slack_fixture x; /* loop, store, core, fake, connector */
    struct connector_ops ops;
    struct core_fixture_asker fa;
    uint64_t next_id;
    struct result results[RESULTS_MAX]; /* ours and core's */
    int nresults;
};

static void
observe(void *arg, uint64_t send_id, const struct send_result *r)
{
    struct fixture *fx = arg;
    struct result *res;

    if (fx->nresults == RESULTS_MAX)
        return;
    res = &fx->results[fx->nresults++];
    memset(res, 0, sizeof(*res));
    res->id = send_id;
    res->status = r->status;
    snprintf(res->message_id, sizeof(res->message_id), "%s",
             r->message_id ? r->message_id : "");
    snprintf(res->error_class, sizeof(res->error_class), "%s",
             r->error_class ? r->error_class : "");
}

/* pacing is not the subject */
static void
fake_unpaced(struct slack_fixture *x)
{
    slack_fake_set_rate(x->sf, 0, 1);
}

static int
fixture_init(struct fixture *fx, const char *name, int64_t ttl_ms)
{
    struct core_asker asker;
    struct slack_timing tm = {100, 1000, 2000, 1000, 1000, 50, 0, ttl_ms, 300};
    struct slack_fixture_opts o = {"20/1s", &asker, &tm, NULL, NULL};

    memset(fx, 0, sizeof(*fx));
    fx->next_id = ID_BASE;
    fx->fa.loop = &fx->x.loop;
    fx->fa.prefix = "answer to: ";
    asker = core_fixture_asker_ops(&fx->fa);
    if (slack_fixture_open(&fx->x, tmpdir, name, &o, fake_unpaced) < 0)
        return -1;
    slack_set_send_observer(fx->x.sl, observe, fx);
    slack_connector_ops(fx->x.sl, &fx->ops);
    return 0;
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

static int
run_until(struct fixture *fx, int (*pred)(struct fixture *), int max_ms)
{
    struct until u = {pred, fx};

    return core_fixture_loop_until(&fx->x.loop, until_holds, &u, 5, max_ms);
}

static int
never(struct fixture *fx)
{
    (void)fx;
    return 0;
}

static int
is_up(struct fixture *fx)
{
    return slack_is_up(fx->x.sl);
}

static int want_results;

static int
results_reached(struct fixture *fx)
{
    return fx->nresults >= want_results;
}

static const struct result *
result_of(const struct fixture *fx, uint64_t id)
{
    for (int i = 0; i < fx->nresults; i++)
        if (fx->results[i].id == id)
            return &fx->results[i];
    return NULL;
}

/* One action as core sends it; waits for its outcome. */
static const struct result *
drive(struct fixture *fx, enum action_kind kind, const char *chat,
      const char *reply_to, const char *target, const char *text, int feedback,
      int controls_only)
{
    struct action a;
    uint64_t id = fx->next_id++;

    memset(&a, 0, sizeof(a));
    a.kind = kind;
    a.send_id = id;
    a.chat = chat;
    a.thread = "";
    a.reply_to = reply_to ? reply_to : "";
    a.text = text ? text : "";
    a.idem_key = "";
    a.parts = 1;
    a.feedback = feedback;
    a.target_id = target ? target : "";
    a.controls_only = controls_only;
    if (fx->ops.send(fx->ops.ctx, &a) != 0)
        return NULL;
    want_results = fx->nresults + 1;
    run_until(fx, results_reached, 8000);
    return result_of(fx, id);
}

/* Slash commands: the posts their response_urls took. */
static const char *resp_id;
static size_t resp_want;

static int
resp_reached(struct fixture *fx)
{
    return slack_fake_response_count(fx->x.sf, resp_id) >= resp_want;
}

static int
wait_responses(struct fixture *fx, const char *id, size_t n, int max_ms)
{
    resp_id = id;
    resp_want = n;
    return run_until(fx, resp_reached, max_ms);
}

/*
 * A slash command in a channel the bot is not in is answered through its
 * response_url, exactly once, in_channel, without the bot token; one in a
 * channel the bot is in still goes through chat.postMessage; a DM with
 * someone else (channel_not_found) too; 503 and 429 from the response_url
 * are retried.
 */
static void
test_fallback(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    struct slack_fake_resp rp;
    struct slack_status ss;
    struct fake_response r503 = {.status = 503, .body = "oops"};
    struct fake_response r429 = {
        .status = 429, .headers = "Retry-After: 1\r\n", .body = "rate_limited"};
    char out[48], in[48], dm[48], re[48];
    int64_t t0;

    T_OK(fixture_init(&fx, "fallback", 0) == 0);
    slack_fake_set_channel_error(fx.x.sf, "C7", "not_in_channel");
    slack_fake_set_channel_error(fx.x.sf, "D5", "channel_not_found");
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));

    T_EQ_INT(slack_fake_slash_ex(fx.x.sf, "C7", "U1", "help", NULL, out,
                                 sizeof(out)),
             0);
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "C8", "U1", "help", NULL, in, sizeof(in)),
        0);
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "D5", "U2", "help", NULL, dm, sizeof(dm)),
        0);
    T_OK(wait_responses(&fx, out, 1, 8000));
    T_OK(wait_responses(&fx, dm, 1, 8000));
    run_until(&fx, never, 1500); /* nothing more comes */
    T_EQ_INT(slack_fake_response_count(fx.x.sf, out), 1);
    T_EQ_INT(slack_fake_response(fx.x.sf, out, 0, &rp), 0);
    T_CONTAINS(rp.text, "help");
    T_EQ_STR(rp.response_type, "in_channel");
    T_EQ_INT(rp.replace_original, 0);
    T_EQ_INT(rp.authorized, 0);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, dm), 1);
    T_EQ_INT(slack_fake_count(fx.x.sf, "C7", 1), 0);
    T_EQ_INT(slack_fake_count(fx.x.sf, "D5", 1), 0);
    /* the bot is in C8: chat.postMessage, the response_url unused */
    T_EQ_INT(slack_fake_count(fx.x.sf, "C8", 1), 1);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, in), 0);
    /* core heard SEND_OK with our id for the fallback answers */
    T_EQ_INT(fx.nresults, 3);
    for (int i = 0; i < fx.nresults; i++)
        T_OKF(fx.results[i].status == SEND_OK, "result %d: %d %s", i,
              (int)fx.results[i].status, fx.results[i].error_class);
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.posts_refused, 2);
    T_EQ_INT(st.responses, 2);
    T_EQ_INT(st.responses_authorized, 0);

    /* 503, then 429: retried, delivered once */
    T_EQ_INT(fake_script(slack_fake_server(fx.x.sf), "POST", "/_fake/response/",
                         &r503),
             0);
    T_EQ_INT(fake_script(slack_fake_server(fx.x.sf), "POST", "/_fake/response/",
                         &r429),
             0);
    t0 = fake_now_ms();
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "C7", "U3", "help", NULL, re, sizeof(re)),
        0);
    T_OK(wait_responses(&fx, re, 1, 10000));
    T_OKF(fake_now_ms() - t0 >= 1500, "retried after %lld ms",
          (long long)(fake_now_ms() - t0));
    run_until(&fx, never, 500);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, re), 1);
    T_EQ_INT(fake_script_pending(slack_fake_server(fx.x.sf)), 0);
    T_EQ_INT(fx.nresults, 4);
    T_OK(fx.results[3].status == SEND_OK);
    slack_status(fx.x.sl, &ss);
    T_EQ_INT(ss.responses, 3);
    T_OK(ss.retries_429 >= 1);
    fixture_release(&fx);
}

/*
 * Expired at Slack (404 expired_url): the send fails "forbidden", nothing
 * else is posted.  Expired here (past resp_ttl_ms): the same, without a
 * call.  A response_url on another host (here another port) is never
 * called: the send fails "forbidden" as before.
 */
static void
test_expired_foreign(void)
{
    struct fixture fx;
    struct slack_fake *other;
    struct slack_fake_stats st, ost;
    const struct result *res;
    char id[48], oid[48], url[160], cmd[64];

    T_OK(fixture_init(&fx, "expired", 2000) == 0);
    T_OK((other = slack_fake_new(&fx.x.loop, 0)) != NULL);
    slack_fake_set_channel_error(fx.x.sf, "C7", "not_in_channel");
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));

    /* expired at Slack's end */
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "C7", "U1", "help", NULL, id, sizeof(id)),
        0);
    slack_fake_response_expire(fx.x.sf, id);
    want_results = 1;
    T_OK(run_until(&fx, results_reached, 8000));
    T_OK(fx.results[0].status == SEND_FAILED);
    T_EQ_STR(fx.results[0].error_class, "forbidden");
    run_until(&fx, never, 1000);
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.responses, 0);
    T_EQ_INT(st.responses_refused, 1); /* the one try */
    T_EQ_INT(st.posts, 0);
    T_EQ_INT(fx.nresults, 1);

    /* expired here: 2 s (30 min in production) after the command */
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "C7", "U1", "help", NULL, id, sizeof(id)),
        0);
    T_OK(wait_responses(&fx, id, 1, 8000));
    run_until(&fx, never, 2200);
    snprintf(cmd, sizeof(cmd), "cmd:%s", id);
    res = drive(&fx, ACTION_ANSWER, "C7", cmd, NULL, "late", 0, 0);
    T_OK(res != NULL && res->status == SEND_FAILED);
    T_EQ_STR(res ? res->error_class : "", "forbidden");
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 1);
    T_EQ_INT(st.responses_refused, 1); /* not asked */

    /* a foreign host: never called */
    T_EQ_INT(
        slack_fake_slash_ex(other, "C7", "U9", "x", NULL, oid, sizeof(oid)), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/response/%s",
             slack_fake_port(other), oid);
    fx.nresults = 0;
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "C7", "U1", "help", url, id, sizeof(id)),
        0);
    want_results = 1;
    T_OK(run_until(&fx, results_reached, 8000));
    T_OK(fx.results[0].status == SEND_FAILED);
    T_EQ_STR(fx.results[0].error_class, "forbidden");
    run_until(&fx, never, 500);
    slack_fake_stats(other, &ost);
    T_EQ_INT(ost.responses + ost.responses_refused, 0);
    T_EQ_INT(slack_fake_count(fx.x.sf, "C7", 1), 0);
    slack_fake_free(other);
    fixture_release(&fx);
}

/*
 * A streamed answer where the bot cannot post: the post goes to the
 * response_url, the edits are held (core hears SEND_OK at once) and the
 * text goes out with replace_original when it is final (the feedback
 * edit) or quiet for resp_quiet_ms; controls-only edits and deletes cost
 * nothing; the 5 uses are kept: the sixth post fails "forbidden" without
 * a call.
 */
static void
test_stream(void)
{
    struct fixture fx;
    struct slack_fake_stats st;
    struct slack_fake_resp rp;
    const struct result *res;
    char id[48], cmd[64], target[EVENT_ID_MAX + 1], text[64];
    size_t n;

    T_OK(fixture_init(&fx, "stream", 0) == 0);
    slack_fake_set_channel_error(fx.x.sf, "C7", "not_in_channel");
    T_EQ_INT(slack_start(fx.x.sl), 0);
    T_OK(run_until(&fx, is_up, 5000));
    T_EQ_INT(
        slack_fake_slash_ex(fx.x.sf, "C7", "U1", "help", NULL, id, sizeof(id)),
        0);
    T_OK(wait_responses(&fx, id, 1, 8000)); /* core's help: use 1 */
    snprintf(cmd, sizeof(cmd), "cmd:%s", id);

    /* the stream's first post: chat.postMessage refused, then use 2 */
    res = drive(&fx, ACTION_ANSWER, "C7", cmd, NULL, "part", 0, 0);
    T_OK(res != NULL && res->status == SEND_OK);
    snprintf(target, sizeof(target), "%s", res ? res->message_id : "");
    T_OKF(strncmp(target, "resp:", 5) == 0, "target %s", target);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 2);
    /* partials: held, done at once, nothing posted */
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof(text), "part **%d** more", i);
        res = drive(&fx, ACTION_EDIT, "C7", "", target, text, 0, 0);
        T_OK(res != NULL && res->status == SEND_OK);
        T_EQ_STR(res ? res->message_id : "", target);
    }
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 2);
    /* quiet for 300 ms: the held text goes out (use 3) */
    T_OK(wait_responses(&fx, id, 3, 3000));
    T_EQ_INT(slack_fake_response(fx.x.sf, id, 2, &rp), 0);
    T_EQ_STR(rp.text, "part *7* more");
    T_EQ_INT(rp.replace_original, 1);
    T_EQ_STR(rp.response_type, "in_channel");
    /* the final edit with the same text: nothing to send */
    res = drive(&fx, ACTION_EDIT, "C7", "", target, "part **7** more", 1, 0);
    T_OK(res != NULL && res->status == SEND_OK);
    run_until(&fx, never, 600);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 3);
    /* a new final text: sent at once, replacing (use 4) */
    res = drive(&fx, ACTION_EDIT, "C7", "", target, "the **final** text", 1, 0);
    T_OK(res != NULL && res->status == SEND_OK);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 4);
    T_EQ_INT(slack_fake_response(fx.x.sf, id, 3, &rp), 0);
    T_EQ_STR(rp.text, "the *final* text");
    T_EQ_INT(rp.replace_original, 1);
    /* controls only, a delete: done, no call */
    res = drive(&fx, ACTION_EDIT, "C7", "", target, "the **final** text", 1, 1);
    T_OK(res != NULL && res->status == SEND_OK);
    res = drive(&fx, ACTION_DELETE, "C7", "", target, NULL, 0, 0);
    T_OK(res != NULL && res->status == SEND_OK);
    run_until(&fx, never, 600);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 4);

    /* use 5, straight to the response_url (the channel refused us) */
    slack_fake_stats(fx.x.sf, &st);
    n = st.posts_refused;
    res = drive(&fx, ACTION_ANSWER, "C7", cmd, NULL, "another", 0, 0);
    T_OK(res != NULL && res->status == SEND_OK);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 5);
    /* used up: forbidden, not asked */
    res = drive(&fx, ACTION_ANSWER, "C7", cmd, NULL, "one more", 0, 0);
    T_OK(res != NULL && res->status == SEND_FAILED);
    T_EQ_STR(res ? res->error_class : "", "forbidden");
    slack_fake_stats(fx.x.sf, &st);
    T_EQ_INT(st.posts_refused, n); /* no doomed chat.postMessage */
    T_EQ_INT(st.responses_refused, 0);
    T_EQ_INT(st.responses_authorized, 0);
    T_EQ_INT(st.reactions, 0);
    T_EQ_INT(st.updates, 0);
    T_EQ_INT(slack_fake_response_count(fx.x.sf, id), 5);
    fixture_release(&fx);
}

int
main(void)
{
    const char *only = getenv("TEST_ONLY");

    signal(SIGPIPE, SIG_IGN);
    log_init("test_slack_response");
    log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_slack_resp.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
#define RUN(name)                                                              \
    if (only == NULL || strcmp(only, #name) == 0)                              \
        test_##name();
    RUN(fallback);
    RUN(expired_foreign);
    RUN(stream);
    rmdir(tmpdir);
    curl_global_cleanup();
    return t_done();
}
