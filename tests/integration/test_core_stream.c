/* test_core_stream: streamed answers through the real core — a post, paced
 * edits, rollover at the platform's limit, a retry midway, a lost message,
 * a restart midway — with the fake asker and the recording connector. */
#include <stdlib.h>
#include <unistd.h>

#include "core/stream.h"
#include "tests/fakes/core_fixture.h"
#include "tests/t.h"

#define INTERVAL_MS 100

static const struct core_fixture_params params = {
    .tmpdir = "/tmp",
    .admins = "telegram:1",
    .sends_max = 4000,
    .text_max = 4096,
};

static char answer[1000];

static void
make_answer(void)
{
    size_t i;

    for (i = 0; i < sizeof(answer) - 1; i++)
        answer[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 26);
    answer[i] = '\0';
}

/* Streams on: the connector edits, the interval is short, text_max given. */
static int
stream_init(struct core_fixture *f, const char *name, size_t text_max,
            int chunks, int gap_ms)
{
    struct connector_ops ops;

    if (core_fixture_init(f, &params, name,
                          "user = off\nchat = off\nglobal = off\n"
                          "user_tokens = off\nchat_tokens = off\n",
                          0) < 0)
        return -1;
    f->cfg->llm.stream_interval = INTERVAL_MS;
    f->tc.can_edit = 1;
    f->tc.ops_text_max = text_max;
    f->tc.typing_ms = 4000;
    ops = core_fixture_conn_ops(&f->tc, f->tc.typing_ms, text_max);
    core_register_connector(f->core, &ops);
    f->fa.fixed = answer;
    f->fa.stream_chunks = chunks;
    f->fa.stream_gap_ms = gap_ms;
    return 0;
}

static int
reconnect(struct core_fixture *f)
{
    struct connector_ops ops;

    if (core_fixture_start(f, 0) < 0)
        return -1;
    ops = core_fixture_conn_ops(&f->tc, f->tc.typing_ms, f->tc.ops_text_max);
    return core_register_connector(f->core, &ops);
}

/* The messages the chat shows now, in order, concatenated; how many. */
static int
shown(const struct core_fixture *f, char *buf, size_t len, int *last_fb,
      int *fb_count)
{
    int n = 0;
    size_t at = 0;

    buf[0] = '\0';
    *fb_count = 0;
    for (int i = 0; i < f->tc.nsends; i++) {
        const struct core_fixture_msg *m = &f->tc.msgs[i];

        if (m->text == NULL || m->deleted)
            continue;
        at += (size_t)snprintf(buf + at, len - at, "%s", m->text);
        *last_fb = m->feedback;
        *fb_count += m->feedback;
        n++;
    }
    return n;
}

static int
posts(const struct core_fixture *f)
{
    int n = 0;

    for (int i = 0; i < f->tc.nsends; i++)
        n += f->tc.sends[i].kind == ACTION_ANSWER;
    return n;
}

static int64_t
min_gap(const struct core_fixture *f)
{
    int64_t g = INT64_MAX;

    for (int i = 0; i < f->tc.nsends; i++)
        if (f->tc.msgs[i].text != NULL && f->tc.msgs[i].min_gap_ms >= 0 &&
            f->tc.msgs[i].min_gap_ms < g)
            g = f->tc.msgs[i].min_gap_ms;
    return g;
}

static void
ask_one(struct core_fixture *f, const char *id)
{
    struct event ev =
        core_fixture_event("11", "11", id, "tell me", EVENT_PRIVATE);

    T_EQ_INT(core_accept(f->core, &ev), 0);
}

/* One message, 40 partials 20 ms apart: one post, edits at most every
 * INTERVAL_MS, the final text with the controls, typing only before. */
static void
test_one_message(void)
{
    struct core_fixture f;
    char buf[8192];
    int fb = 0, fbn = 0;
    struct core_stats cs;

    if (stream_init(&f, "stream1", 4096, 40, 20) < 0) {
        T_OK(0);
        return;
    }
    ask_one(&f, "1");
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    T_EQ_INT(shown(&f, buf, sizeof(buf), &fb, &fbn), 1);
    T_EQ_STR(buf, answer);
    T_EQ_INT(fb, 1);
    T_EQ_INT(posts(&f), 1);
    T_OKF(f.tc.edits >= 3 && f.tc.edits <= 12, "%d edits in ~800 ms",
          f.tc.edits);
    T_OKF(min_gap(&f) >= INTERVAL_MS - 2, "edits %lld ms apart",
          (long long)min_gap(&f));
    T_EQ_INT(f.fa.partials, 40);
    T_EQ_INT(f.tc.typing, 1); /* the first, before any text */
    core_stats(f.core, &cs);
    T_EQ_INT(cs.streamed, 1);
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM sent_messages"), 1);
    T_EQ_INT(core_fixture_db_int(&f,
                                 "SELECT count(*) FROM connector_state WHERE "
                                 "platform = 'core'"),
             0);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* 999 bytes into 200-byte messages: rollover as the text grows; each
 * message ends with its part of the plain split; controls on the last. */
static void
test_rollover(void)
{
    struct core_fixture f;
    char buf[8192];
    int fb = 0, fbn = 0, n;

    if (stream_init(&f, "stream2", 200, 50, 10) < 0) {
        T_OK(0);
        return;
    }
    ask_one(&f, "1");
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    n = shown(&f, buf, sizeof(buf), &fb, &fbn);
    T_EQ_INT(n, (int)stream_split_count(answer, strlen(answer), 200));
    T_EQ_STR(buf, answer);
    T_EQ_INT(fb, 1);
    T_EQ_INT(fbn, 1);
    T_EQ_INT(posts(&f), n);
    T_OKF(min_gap(&f) >= INTERVAL_MS - 2, "edits %lld ms apart",
          (long long)min_gap(&f));
    T_EQ_INT(core_fixture_db_int(&f, "SELECT count(*) FROM sent_messages"), n);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* A retry midway restarts the text: the messages it had grown to are
 * reused; the user ends with one complete answer, not two. */
static void
test_retry_midway(void)
{
    struct core_fixture f;
    char buf[8192];
    int fb = 0, fbn = 0, n;

    if (stream_init(&f, "stream3", 200, 30, 15) < 0) {
        T_OK(0);
        return;
    }
    f.fa.restart_after = 20;
    ask_one(&f, "1");
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    n = shown(&f, buf, sizeof(buf), &fb, &fbn);
    T_EQ_STR(buf, answer);
    T_EQ_INT(n, (int)stream_split_count(answer, strlen(answer), 200));
    T_EQ_INT(fbn, 1);
    T_EQ_INT(posts(&f), n);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* The first message was deleted by someone: posted again, once. */
static void
test_lost_message(void)
{
    struct core_fixture f;
    char buf[8192];
    int fb = 0, fbn = 0;

    if (stream_init(&f, "stream4", 4096, 20, 20) < 0) {
        T_OK(0);
        return;
    }
    f.tc.not_found_first = 1;
    ask_one(&f, "1");
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    /* the chat still shows the first post (the fixture cannot delete
     * it): the repost is the whole answer */
    T_EQ_INT(posts(&f), 2);
    T_OK(shown(&f, buf, sizeof(buf), &fb, &fbn) == 2);
    T_OK(strstr(buf, answer) != NULL);
    T_EQ_INT(fb, 1);
    T_EQ_INT(core_fixture_release(&f), 0);
}

static int
has_post(struct core_fixture *f)
{
    return posts(f) >= 1 && f->tc.completed >= 1;
}

/* Stopped midway (SIGTERM or a crash after the post): the restarted job
 * asks again and edits the message it had posted instead of posting. */
static void
test_restart_midway(void)
{
    struct core_fixture f;
    char buf[8192];
    int fb = 0, fbn = 0;

    if (stream_init(&f, "stream5", 4096, 40, 30) < 0) {
        T_OK(0);
        return;
    }
    ask_one(&f, "1");
    T_OK(core_fixture_run_until(&f, has_post, 5000));
    core_fixture_stop(&f);
    T_EQ_INT(core_fixture_db_int(&f,
                                 "SELECT count(*) FROM connector_state WHERE "
                                 "platform = 'core' AND key LIKE 'stream:%'"),
             1);
    T_EQ_INT(reconnect(&f), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    T_EQ_INT(posts(&f), 1);
    T_EQ_INT(shown(&f, buf, sizeof(buf), &fb, &fbn), 1);
    T_EQ_STR(buf, answer);
    T_EQ_INT(fb, 1);
    T_EQ_INT(f.fa.asks, 2);
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* A short answer (the whole text by its second partial): the post, an
 * edit, then an edit that only adds the controls.  streams_max 1: of two
 * answers at once, one streams and the other is sent whole.  The two
 * partials are 200 ms apart so chat 11 holds the slot when chat 12's
 * first partial comes, even if the run queue started the two asks a few
 * loop turns apart (a slow, sanitized build). */
static void
test_short_and_bounded(void)
{
    struct core_fixture f;
    struct connector_ops ops;
    struct event e1 = core_fixture_event("11", "11", "1", "a", EVENT_PRIVATE);
    struct event e2 = core_fixture_event("12", "12", "2", "b", EVENT_PRIVATE);
    int controls = 0, edits_12 = 0, posts_12 = 0;

    if (stream_init(&f, "stream7", 4096, 2, 200) < 0) {
        T_OK(0);
        return;
    }
    f.fa.delay_ms = 30;
    f.tc.streams_max = 1;
    ops = core_fixture_conn_ops(&f.tc, 0, 4096);
    core_register_connector(f.core, &ops);
    T_EQ_INT(core_accept(f.core, &e1), 0);
    T_EQ_INT(core_accept(f.core, &e2), 0);
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    for (int i = 0; i < f.tc.nsends; i++) {
        const struct core_fixture_sent *x = &f.tc.sends[i];

        controls += x->controls_only;
        if (strcmp(x->chat, "12") == 0) {
            edits_12 += x->kind == ACTION_EDIT;
            posts_12 += x->kind == ACTION_ANSWER;
        }
        if (x->controls_only)
            T_OK(x->kind == ACTION_EDIT && x->feedback);
    }
    T_EQ_INT(controls, 1); /* chat 11 streamed: post, controls */
    T_EQ_INT(edits_12, 0); /* chat 12 went whole */
    T_EQ_INT(posts_12, 1);
    T_EQ_INT(f.fa.partials, 4); /* chat 12's were not shown: no slot */
    T_EQ_INT(core_fixture_release(&f), 0);
}

/* [llm] stream = false, or a connector that cannot edit: plain sends. */
static void
test_off(void)
{
    struct core_fixture f;

    if (stream_init(&f, "stream6", 4096, 20, 5) < 0) {
        T_OK(0);
        return;
    }
    f.cfg->llm.stream = 0;
    ask_one(&f, "1");
    T_OK(core_fixture_run_until(&f, core_fixture_idle, 10000));
    T_EQ_INT(f.fa.partials, 0);
    T_EQ_INT(f.tc.edits, 0);
    T_EQ_INT(posts(&f), 1);
    T_EQ_STR(f.tc.sends[0].text, answer);
    T_EQ_INT(core_fixture_release(&f), 0);
}

int
main(void)
{
    make_answer();
    test_one_message();
    test_rollover();
    test_retry_midway();
    test_lost_message();
    test_restart_midway();
    test_short_and_bounded();
    test_off();
    return t_done();
}
