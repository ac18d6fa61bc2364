/* test_stream: the streamed-answer planner, the splitter and the ids
 * record, with a fixed clock. */
#include <stdlib.h>

#include "core/stream.h"
#include "tests/t.h"

/* A simulated platform: what each message shows, driven by the planner. */
struct sim {
    struct stream s;
    char shown[64][512];
    int posts, edits, deletes, feedback_on;
    int64_t last_edit[64];
    int64_t min_gap; /* smallest gap seen between two edits of a message */
};

static void
sim_init(struct sim *m, size_t text_max, int64_t interval)
{
    memset(m, 0, sizeof(*m));
    m->s.text_max = text_max;
    m->s.interval_ms = interval;
    m->min_gap = INT64_MAX;
}

/* Applies one step as a connector that always succeeds would. */
static void
sim_apply(struct sim *m, const char *text, const struct stream_step *sp,
          int64_t now)
{
    struct stream_msg *g;

    if (sp->op == STREAM_DELETE) {
        m->deletes++;
        m->shown[sp->part][0] = '\0';
        m->s.n = sp->part;
        return;
    }
    T_OK(stream_reserve(&m->s, sp->part + 1) == 0);
    g = &m->s.msgs[sp->part];
    if (sp->op == STREAM_POST) {
        m->posts++;
        snprintf(g->id, sizeof(g->id), "m%d", sp->part);
        if (sp->part >= m->s.n)
            m->s.n = sp->part + 1;
    } else {
        m->edits++;
        if (m->last_edit[sp->part] > 0 &&
            now - m->last_edit[sp->part] < m->min_gap)
            m->min_gap = now - m->last_edit[sp->part];
        m->last_edit[sp->part] = now;
    }
    snprintf(m->shown[sp->part], sizeof(m->shown[0]), "%.*s",
             (int)(sp->to - sp->from), text + sp->from);
    g->hash = sp->hash;
    g->len = sp->to - sp->from;
    g->known = 1;
    g->feedback = sp->feedback;
    if (sp->feedback)
        m->feedback_on = sp->part;
    g->last_ms = now;
}

static void
test_split(void)
{
    static const struct {
        const char *text;
        size_t max;
        int parts;
        const char *first; /* the first part */
    } cases[] = {
        {"", 100, 1, ""},
        {"short", 100, 1, "short"},
        {"aaaa aaaa aaaa aaaa bbbb", 20, 2, "aaaa aaaa aaaa aaaa "},
        {"aaaaaaaaaa\n\nbbbbbbbbbbbbbbbbbbbbbbbbb", 20, 3, "aaaaaaaaaa\n\n"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 16, 3,
         "aaaaaaaaaaaaaaaa"},
        /* never inside a UTF-8 sequence: 2-byte é at 15..16 */
        {"aaaaaaaaaaaaaaa\xc3\xa9zzzz", 16, 2, "aaaaaaaaaaaaaaa"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        size_t len = strlen(t), end;

        T_EQ_INT(stream_split_count(t, len, cases[i].max), cases[i].parts);
        end = stream_split_next(t, len, 0, cases[i].max);
        T_OKF(end == strlen(cases[i].first) &&
                  strncmp(t, cases[i].first, end) == 0,
              "case %zu: first part ends at %zu", i, end);
    }
}

/* Prefix stability: cuts of a growing text never move. */
static void
test_split_prefix_stable(void)
{
    char text[4000];
    size_t len = 0, max = 100, full[64], n = 0, at = 0;

    srand(7);
    while (len < sizeof(text) - 1) {
        int r = rand() % 12;

        text[len++] = r == 0 ? '\n' : r < 3 ? ' ' : (char)('a' + r);
    }
    text[len] = '\0';
    while (at < len && n < 64) {
        at = stream_split_next(text, len, at, max);
        full[n++] = at;
    }
    for (size_t pre = 1; pre < len; pre += 37) {
        size_t k = 0, a = 0;

        while (a < pre) {
            a = stream_split_next(text, pre, a, max);
            if (a < pre) /* a finished part: its cut is the full text's */
                T_OKF(a == full[k], "prefix %zu part %zu: %zu vs %zu", pre, k,
                      a, full[k]);
            k++;
        }
    }
}

/* Counts lines that start with ``` in s. */
static int
fences(const char *s)
{
    int n = 0;

    for (const char *p = s; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, "```", 3) == 0)
            n++;
    }
    return n;
}

/* A code block longer than a message: cut on lines, each part closed and
 * the next reopened with the language; a short block moves whole. */
static void
test_split_code(void)
{
    static char text[9000], joined[9000];
    size_t len = 0, at = 0, max = 2000;
    int parts = 0, k;

    len += (size_t)snprintf(text + len, sizeof(text) - len,
                            "Here is the code:\n\n```c\n");
    for (k = 0; len < 6000; k++)
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "int f%d(void) { return %d; }\n", k, k);
    len += (size_t)snprintf(text + len, sizeof(text) - len,
                            "```\n\nThat is all.\n");
    joined[0] = '\0';
    while (at < len) {
        size_t end = stream_split_next(text, len, at, max);
        char *p = stream_part_dup(text, at, end);
        size_t plen = strlen(p);
        const char *body = p;

        T_OKF(plen <= max, "part %d: %zu bytes", parts, plen);
        T_OKF(fences(p) % 2 == 0, "part %d balanced: %d fences", parts,
              fences(p));
        if (parts > 0 && end < len) /* inside the block: reopened as c */
            T_OKF(strncmp(p, "```c\n", 5) == 0, "part %d: %.8s", parts, p);
        if (parts > 0 && strncmp(p, "```c\n", 5) == 0 && at > 30)
            body += 5;
        strncat(joined, body, end - at);
        free(p);
        at = end;
        parts++;
    }
    T_OKF(parts == 4, "%d parts", parts);
    T_OKF(strcmp(joined, text) == 0, "%s",
          "the parts less the added fences "
          "are the text");

    /* a short block that would be cut moves whole to the next part */
    len = 0;
    for (k = 0; len < 1200; k++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "word%d ", k);
    len += (size_t)snprintf(text + len, sizeof(text) - len, "\n```py\n");
    at = len - 6;
    for (k = 0; len < 1800; k++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "x = %d\n", k);
    len += (size_t)snprintf(text + len, sizeof(text) - len, "```\nend\n");
    T_EQ_INT(stream_split_next(text, len, 0, 1500), at);
}

static void
test_first_post_then_interval(void)
{
    struct sim m;
    struct stream_step sp;
    const char *t1 = "Hello", *t2 = "Hello wor", *t3 = "Hello world";

    sim_init(&m, 100, 1500);
    stream_next(&m.s, t1, strlen(t1), 0, 1, 1000, &sp);
    T_EQ_INT(sp.op, STREAM_POST);
    T_EQ_INT(sp.part, 0);
    T_EQ_INT(sp.feedback, 0);
    sim_apply(&m, t1, &sp, 1000);
    /* the interval holds the edit back, and says until when */
    stream_next(&m.s, t2, strlen(t2), 0, 1, 1200, &sp);
    T_EQ_INT(sp.op, STREAM_WAIT);
    T_EQ_INT(sp.at_ms, 2500);
    stream_next(&m.s, t3, strlen(t3), 0, 1, 2499, &sp);
    T_EQ_INT(sp.op, STREAM_WAIT);
    stream_next(&m.s, t3, strlen(t3), 0, 1, 2500, &sp);
    T_EQ_INT(sp.op, STREAM_EDIT);
    T_EQ_INT(sp.controls_only, 0);
    sim_apply(&m, t3, &sp, 2500);
    T_EQ_STR(m.shown[0], t3);
    /* nothing new: nothing to do */
    stream_next(&m.s, t3, strlen(t3), 0, 1, 9000, &sp);
    T_EQ_INT(sp.op, STREAM_WAIT);
    T_EQ_INT(sp.at_ms, INT64_MAX);
    /* final, same text: one edit that only adds the controls */
    stream_next(&m.s, t3, strlen(t3), 1, 1, 9000, &sp);
    T_EQ_INT(sp.op, STREAM_EDIT);
    T_EQ_INT(sp.feedback, 1);
    T_EQ_INT(sp.controls_only, 1);
    sim_apply(&m, t3, &sp, 9000);
    stream_next(&m.s, t3, strlen(t3), 1, 1, 9000, &sp);
    T_EQ_INT(sp.op, STREAM_DONE);
    /* without feedback the same text is already done */
    m.s.msgs[0].feedback = 0;
    stream_next(&m.s, t3, strlen(t3), 1, 0, 9000, &sp);
    T_EQ_INT(sp.op, STREAM_DONE);
    stream_release(&m.s);
}

/* An empty partial shows nothing; an empty final is one (empty) post. */
static void
test_empty(void)
{
    struct sim m;
    struct stream_step sp;

    sim_init(&m, 100, 1500);
    stream_next(&m.s, "", 0, 0, 1, 0, &sp);
    T_EQ_INT(sp.op, STREAM_WAIT);
    stream_next(&m.s, "", 0, 1, 0, 0, &sp);
    T_EQ_INT(sp.op, STREAM_POST);
    stream_release(&m.s);
}

/*
 * A long stream grows 7 bytes every 50 ms into 100-byte messages, each
 * step applied at once: rollover posts without waiting, edits of one
 * message are never closer than the interval, the final text is shown
 * exactly, split as a plain send would, controls on the last message.
 */
static void
test_long_stream(void)
{
    static char text[2100];
    struct sim m;
    struct stream_step sp;
    size_t len, full = sizeof(text) - 1, at, k;
    int64_t now = 0;

    for (k = 0; k < full; k++)
        text[k] = k % 9 == 8 ? ' ' : (char)('a' + k % 26);
    text[full] = '\0';
    sim_init(&m, 100, 300);
    for (len = 7; len < full; len += 7, now += 50)
        for (;;) {
            stream_next(&m.s, text, len, 0, 1, now, &sp);
            if (sp.op == STREAM_WAIT)
                break;
            T_OK(sp.op == STREAM_POST || sp.op == STREAM_EDIT);
            sim_apply(&m, text, &sp, now);
        }
    for (int guard = 0; guard < 1000; guard++, now += 100) {
        stream_next(&m.s, text, full, 1, 1, now, &sp);
        if (sp.op == STREAM_DONE)
            break;
        if (sp.op != STREAM_WAIT)
            sim_apply(&m, text, &sp, now);
    }
    T_EQ_INT(sp.op, STREAM_DONE);
    T_EQ_INT(m.s.n, (int)stream_split_count(text, full, 100));
    T_EQ_INT(m.posts, m.s.n);
    T_OKF(m.min_gap >= 300, "edits %lld ms apart", (long long)m.min_gap);
    for (k = 0, at = 0; k < (size_t)m.s.n; k++) {
        size_t end = stream_split_next(text, full, at, 100);

        T_OKF(strlen(m.shown[k]) == end - at &&
                  memcmp(m.shown[k], text + at, end - at) == 0,
              "message %zu shows its part", k);
        at = end;
    }
    T_EQ_INT(at, full);
    T_EQ_INT(m.feedback_on, m.s.n - 1);
    stream_release(&m.s);
}

/* A retry restarts shorter: the final text deletes the surplus messages
 * from the last one, and a lost message is posted again. */
static void
test_shorter_final_and_lost(void)
{
    struct sim m;
    struct stream_step sp;
    char longt[300];
    const char *fin = "the final answer";
    int64_t now = 0;

    memset(longt, 'x', sizeof(longt) - 1);
    longt[sizeof(longt) - 1] = '\0';
    sim_init(&m, 100, 0);
    for (;;) {
        stream_next(&m.s, longt, strlen(longt), 0, 1, now, &sp);
        if (sp.op == STREAM_WAIT)
            break;
        sim_apply(&m, longt, &sp, now);
    }
    T_EQ_INT(m.s.n, 3);
    stream_next(&m.s, fin, strlen(fin), 1, 1, now, &sp);
    T_EQ_INT(sp.op, STREAM_EDIT);
    T_EQ_INT(sp.part, 0);
    sim_apply(&m, fin, &sp, now);
    stream_next(&m.s, fin, strlen(fin), 1, 1, now, &sp);
    T_EQ_INT(sp.op, STREAM_DELETE);
    T_EQ_INT(sp.part, 2);
    sim_apply(&m, fin, &sp, now);
    stream_next(&m.s, fin, strlen(fin), 1, 1, now, &sp);
    T_EQ_INT(sp.op, STREAM_DELETE);
    T_EQ_INT(sp.part, 1);
    sim_apply(&m, fin, &sp, now);
    stream_next(&m.s, fin, strlen(fin), 1, 1, now, &sp);
    T_EQ_INT(sp.op, STREAM_DONE);
    /* someone deleted message 0: it is posted again, with the controls */
    m.s.msgs[0].id[0] = '\0';
    stream_next(&m.s, fin, strlen(fin), 1, 1, now, &sp);
    T_EQ_INT(sp.op, STREAM_POST);
    T_EQ_INT(sp.feedback, 1);
    stream_release(&m.s);
}

/* After a restart the ids come back, what they show is unknown: each is
 * edited once, the interval not held against it. */
static void
test_ids_roundtrip(void)
{
    struct stream s, r;
    struct stream_step sp;
    char buf[256];

    memset(&s, 0, sizeof(s));
    memset(&r, 0, sizeof(r));
    T_OK(stream_reserve(&s, 3) == 0);
    s.n = 3;
    snprintf(s.msgs[0].id, sizeof(s.msgs[0].id), "1712345678.000100");
    snprintf(s.msgs[2].id, sizeof(s.msgs[2].id), "42");
    T_OK(stream_ids_encode(&s, buf, sizeof(buf)) == 0);
    T_EQ_STR(buf, "1712345678.000100 - 42");
    T_OK(stream_ids_decode(&r, buf) == 0);
    T_EQ_INT(r.n, 3);
    T_EQ_STR(r.msgs[0].id, "1712345678.000100");
    T_EQ_STR(r.msgs[1].id, "");
    T_EQ_STR(r.msgs[2].id, "42");
    T_EQ_INT(r.msgs[0].known, 0);
    T_OK(stream_ids_encode(&s, buf, 10) < 0);
    r.text_max = 100;
    r.interval_ms = 1500;
    stream_next(&r, "hi", 2, 0, 0, 0, &sp);
    T_EQ_INT(sp.op, STREAM_EDIT);
    T_OK(stream_ids_decode(&r, "") == 0);
    T_EQ_INT(r.n, 0);
    T_OK(stream_ids_decode(&r, "a  b") < 0);
    memset(buf, 'x', 70);
    buf[70] = '\0';
    T_OK(stream_ids_decode(&r, buf) < 0);
    stream_release(&s);
    stream_release(&r);
}

int
main(void)
{
    test_split();
    test_split_prefix_stable();
    test_split_code();
    test_first_post_then_interval();
    test_empty();
    test_long_stream();
    test_shorter_final_and_lost();
    test_ids_roundtrip();
    return t_done();
}
