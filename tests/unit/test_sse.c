/* test_sse: the SSE parser on sample streams split at every byte. */
#include "llm/sse.h"

#include <stdlib.h>

#include "tests/t.h"

#define N(a) (sizeof(a) / sizeof(*(a)))
/* one expected event: name, unit separator, data, record separator */
#define E(name, data) name "\x1f" data "\x1e"

struct sink {
    char out[8192];
    size_t len;
    int stop_at; /* > 0: return nonzero on that event */
    int n;
};

static int
on_event(const char *name, const char *data, size_t len, void *arg)
{
    struct sink *s = arg;
    size_t nl = strlen(name);

    if (s->len + nl + len + 2 < sizeof(s->out)) {
        memcpy(s->out + s->len, name, nl);
        s->len += nl;
        s->out[s->len++] = '\x1f';
        memcpy(s->out + s->len, data, len);
        s->len += len;
        s->out[s->len++] = '\x1e';
        s->out[s->len] = '\0';
    }
    if (data[len] != '\0')
        s->stop_at = -1000; /* data must be NUL-terminated: noticed below */
    return ++s->n == s->stop_at;
}

static const struct {
    const char *name;
    const char *in;
    const char *want;
} cases[] = {
    {"one event", "data: hello\n\n", E("message", "hello")},
    {"named, CRLF", "event: a\r\ndata: x\r\n\r\n", E("a", "x")},
    {"CR only", "data: x\rdata: y\r\r", E("message", "x\ny")},
    {"mixed ends", "data: x\r\n\rdata: y\n\r\n",
     E("message", "x") E("message", "y")},
    {"multi-line data", "data: a\ndata: b\ndata:\n\n", E("message", "a\nb\n")},
    {"comments", ": keep-alive\n\n:x\ndata: z\n\n", E("message", "z")},
    {"id and retry ignored", "id: 5\nretry: 10\ndata: x\nfoo: bar\n\n",
     E("message", "x")},
    {"no space, two spaces", "data:x\n\ndata:  y\n\n",
     E("message", "x") E("message", " y")},
    {"field alone", "data\n\n", E("message", "")},
    {"event without data", "event: ping\n\ndata: x\n\n", E("message", "x")},
    {"name resets", "event: a\ndata: 1\n\ndata: 2\n\n",
     E("a", "1") E("message", "2")},
    {"last name wins", "event: a\nevent: b\ndata: 1\n\n", E("b", "1")},
    {"empty name is default", "event\ndata: 1\n\n", E("message", "1")},
    {"unterminated event dropped", "data: x\n\ndata: y\n", E("message", "x")},
    {"unterminated line dropped", "data: x\n\ndata: y", E("message", "x")},
    {"bom",
     "\xEF\xBB\xBF"
     "data: x\n\n",
     E("message", "x")},
    {"almost a bom",
     "\xEF\xBB"
     "data: x\n\n",
     ""}, /* a field named "\xEF\xBBdata" */
    {"colon in value", "data: {\"a\":\"b: c\"}\n\n",
     E("message", "{\"a\":\"b: c\"}")},
    {"blank lines only", "\n\n\r\n\r\r", ""},
    {"openai",
     "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\n"
     "data: [DONE]\n\n",
     E("message", "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}")
         E("message", "{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}")
             E("message", "[DONE]")},
    {"anthropic",
     "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
     "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n"
     "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\","
     "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\r\n\r\n"
     "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
     E("message_start", "{\"type\":\"message_start\"}")
         E("ping", "{\"type\": \"ping\"}")
             E("content_block_delta",
               "{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
               "\"text_delta\",\"text\":\"Hi\"}}")
                 E("message_stop", "{\"type\":\"message_stop\"}")},
};

/* in fed as pieces [0, a), [a, b), [b, len); 0 when it went as wanted. */
static int
run(const char *in, size_t len, size_t a, size_t b, const char *want)
{
    struct sse p;
    struct sink s;
    int bad = 0;

    memset(&s, 0, sizeof(s));
    sse_init(&p);
    bad |= sse_feed(&p, in, a, on_event, &s) != SSE_OK;
    bad |= sse_feed(&p, in + a, b - a, on_event, &s) != SSE_OK;
    bad |= sse_feed(&p, in + b, len - b, on_event, &s) != SSE_OK;
    bad |= strcmp(s.out, want) != 0 || s.stop_at < 0;
    sse_release(&p);
    return bad;
}

static void
test_splits(void)
{
    for (size_t i = 0; i < N(cases); i++) {
        const char *in = cases[i].in;
        size_t len = strlen(in), fails = 0, runs = 0;
        struct sse p;
        struct sink s;

        /* whole, every split point, every pair of split points */
        for (size_t a = 0; a <= len; a++) {
            for (size_t b = a; b <= len; b++) {
                fails += (size_t)run(in, len, a, b, cases[i].want);
                runs++;
            }
        }
        T_OKF(fails == 0, "%s: %zu of %zu splits wrong", cases[i].name, fails,
              runs);
        /* a byte at a time */
        memset(&s, 0, sizeof(s));
        sse_init(&p);
        for (size_t k = 0; k < len; k++)
            sse_feed(&p, in + k, 1, on_event, &s);
        T_OKF(strcmp(s.out, cases[i].want) == 0, "%s: bytewise", cases[i].name);
        sse_release(&p);
    }
}

static void
test_nul_in_data(void)
{
    static const char in[] = "data: a\0b\n\n";
    struct sse p;
    struct sink s;

    memset(&s, 0, sizeof(s));
    sse_init(&p);
    T_EQ_INT(sse_feed(&p, in, sizeof(in) - 1, on_event, &s), SSE_OK);
    T_EQ_INT(s.len, strlen("message") + 1 + 3 + 1);
    T_OK(memcmp(s.out,
                "message\x1f"
                "a\0b\x1e",
                12) == 0);
    sse_release(&p);
}

static void
test_bounds(void)
{
    struct sse p;
    struct sink s;
    char *big = malloc(SSE_EVENT_MAX + 16);
    char name[128];

    /* just under the bound passes, split in two */
    memset(&s, 0, sizeof(s));
    sse_init(&p);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', SSE_EVENT_MAX - 8);
    memcpy(big + SSE_EVENT_MAX - 2, "\n\n", 2);
    T_EQ_INT(sse_feed(&p, big, 1000, on_event, &s), SSE_OK);
    T_EQ_INT(sse_feed(&p, big + 1000, SSE_EVENT_MAX - 1000, on_event, &s),
             SSE_OK);
    T_EQ_INT(s.n, 1);
    sse_release(&p);

    /* one line over it, however it comes */
    memset(&s, 0, sizeof(s));
    sse_init(&p);
    memset(big + 6, 'x', SSE_EVENT_MAX);
    T_EQ_INT(sse_feed(&p, big, SSE_EVENT_MAX / 2, on_event, &s), SSE_OK);
    T_EQ_INT(sse_feed(&p, big + SSE_EVENT_MAX / 2, SSE_EVENT_MAX / 2 + 6,
                      on_event, &s),
             SSE_TOO_LARGE);
    /* sticky */
    T_EQ_INT(sse_feed(&p, "data: x\n\n", 9, on_event, &s), SSE_TOO_LARGE);
    T_EQ_INT(s.n, 0);
    sse_release(&p);

    /* many small data lines adding up over it (2 bytes of data each) */
    memset(&s, 0, sizeof(s));
    sse_init(&p);
    {
        enum sse_status st = SSE_OK;
        for (size_t i = 0; i < SSE_EVENT_MAX / 2 + 2 && st == SSE_OK; i++)
            st = sse_feed(&p, "data: x\n", 8, on_event, &s);
        T_EQ_INT(st, SSE_TOO_LARGE);
    }
    sse_release(&p);

    /* empty data lines count too ("\n" each) */
    memset(&s, 0, sizeof(s));
    sse_init(&p);
    {
        enum sse_status st = SSE_OK;
        for (size_t i = 0; i < SSE_EVENT_MAX && st == SSE_OK; i++)
            st = sse_feed(&p, "data\n", 5, on_event, &s);
        T_EQ_INT(st, SSE_TOO_LARGE);
    }
    sse_release(&p);

    /* a name over SSE_NAME_MAX */
    memset(&s, 0, sizeof(s));
    sse_init(&p);
    memset(name, 0, sizeof(name));
    memcpy(name, "event: ", 7);
    memset(name + 7, 'n', SSE_NAME_MAX + 1);
    strcat(name, "\n");
    T_EQ_INT(sse_feed(&p, name, strlen(name), on_event, &s), SSE_TOO_LARGE);
    sse_release(&p);

    /* exactly SSE_NAME_MAX is fine */
    memset(&s, 0, sizeof(s));
    sse_init(&p);
    name[7 + SSE_NAME_MAX] = '\n';
    name[7 + SSE_NAME_MAX + 1] = '\0';
    T_EQ_INT(sse_feed(&p, name, strlen(name), on_event, &s), SSE_OK);
    T_EQ_INT(sse_feed(&p, "data: 1\n\n", 9, on_event, &s), SSE_OK);
    T_EQ_INT(s.n, 1);
    sse_release(&p);
    free(big);
}

static void
test_stop(void)
{
    static const char in[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct sse p;
    struct sink s;

    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    sse_init(&p);
    T_EQ_INT(sse_feed(&p, in, sizeof(in) - 1, on_event, &s), SSE_STOPPED);
    T_EQ_INT(s.n, 2);
    T_EQ_INT(sse_feed(&p, in, sizeof(in) - 1, on_event, &s), SSE_STOPPED);
    T_EQ_INT(s.n, 2);
    T_EQ_STR(sse_status_name(SSE_STOPPED), "stopped");
    T_EQ_STR(sse_status_name(SSE_TOO_LARGE), "too_large");
    sse_release(&p);
    sse_release(NULL);
}

int
main(void)
{
    test_splits();
    test_nul_in_data();
    test_bounds();
    test_stop();
    return t_done();
}
