/* core_harness: the core with a scripted test connector and a fake model,
 * for kill -9 tests (tests/integration/test_core_crash.c).
 *
 *   core_harness DB INPUT OUTPUT
 *
 * INPUT has one message id per line.  The "platform" is INPUT read from an
 * offset kept in connector_state, moved only after core_accept returned 0
 * (as the Telegram offset is); each start re-delivers the 20 lines before
 * the offset, so duplicates happen on purpose.  Answers go to OUTPUT, one
 * line "REPLY_TO PART PARTS IDEM_KEY" per message the platform took.  Like
 * Discord's nonce, the platform refuses a second message with an
 * idempotency key it has seen (the keys in OUTPUT) and writes "DUP KEY"
 * instead, so the test can count how often core re-sent.  Exits 0 when
 * every line is fed and no job is unfinished.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "core/log.h"

#define LINES_MAX 100000
#define FEED_PER_TICK 1
#define KEYS_MAX (4 * LINES_MAX)

static char **lines;
static size_t nlines, fed;
static int out_fd = -1;
static uv_loop_t loop;
static struct store *st;
static struct core *core;
static uint64_t rng_state;

/* the platform's memory of idempotency keys: a sorted-insert-free hash */
static char *keys[KEYS_MAX];

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t
key_slot(const char *k)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return (size_t)(h % KEYS_MAX);
}

/* 1 if the key was new (and is now known) */
static int
key_add(const char *k)
{
    size_t i = key_slot(k);

    while (keys[i] != NULL) {
        if (strcmp(keys[i], k) == 0)
            return 0;
        i = (i + 1) % KEYS_MAX;
    }
    keys[i] = strdup(k);
    return 1;
}

static int
load_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[128];

    if (f == NULL)
        return -1;
    lines = calloc(LINES_MAX, sizeof(*lines));
    while (lines != NULL && nlines < LINES_MAX &&
           fgets(buf, sizeof(buf), f) != NULL) {
        buf[strcspn(buf, "\n")] = '\0';
        lines[nlines++] = strdup(buf);
    }
    fclose(f);
    return lines == NULL ? -1 : 0;
}

static void
load_keys(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[256], a[64], b[64], c[64], k[128];

    if (f == NULL)
        return;
    while (fgets(buf, sizeof(buf), f) != NULL)
        if (sscanf(buf, "%63s %63s %63s %127s", a, b, c, k) == 4)
            key_add(k);
    fclose(f);
}

/* ---- the fake model: answers after 0..150 ms ---- */

struct ask {
    uv_timer_t timer;
    core_ask_done_fn done;
    void *arg;
    uint64_t handle;
    struct ask *next;
    char text[128];
};

static struct ask *asks;
static uint64_t next_handle;

static void
ask_closed(uv_handle_t *h)
{
    free(h);
}

static void
ask_unlink(struct ask *a)
{
    for (struct ask **p = &asks; *p != NULL; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            return;
        }
}

static void
ask_fire(uv_timer_t *t)
{
    struct ask *a = (struct ask *)t;
    struct core_answer ans;

    memset(&ans, 0, sizeof(ans));
    ans.ok = 1;
    ans.text = a->text;
    ans.tokens_in = 20;
    ans.tokens_out = 5;
    ask_unlink(a);
    a->done(a->arg, &ans);
    uv_close((uv_handle_t *)&a->timer, ask_closed);
}

static int
h_ask(void *ctx, const struct core_prompt *p, core_ask_done_fn done, void *arg,
      uint64_t *handle)
{
    struct ask *a = calloc(1, sizeof(*a));

    (void)ctx;
    if (a == NULL)
        return -1;
    a->done = done;
    a->arg = arg;
    a->handle = *handle = ++next_handle;
    snprintf(a->text, sizeof(a->text), "re: %s", p->msgs[p->n - 1].text);
    a->next = asks;
    asks = a;
    uv_timer_init(&loop, &a->timer);
    uv_timer_start(&a->timer, ask_fire, rng() % 150, 0);
    return 0;
}

static void
h_cancel(void *ctx, uint64_t handle)
{
    (void)ctx;
    for (struct ask *a = asks; a != NULL; a = a->next)
        if (a->handle == handle) {
            ask_unlink(a);
            uv_close((uv_handle_t *)&a->timer, ask_closed);
            return;
        }
}

/* ---- the scripted connector ---- */

struct send {
    uv_timer_t timer;
    uint64_t send_id;
    char line[256], key[128];
};

static void
send_fire(uv_timer_t *t)
{
    struct send *s = (struct send *)t;
    struct send_result r;
    char buf[300];
    int n;

    memset(&r, 0, sizeof(r));
    /* the platform takes the message (or recognises its key) ... */
    if (key_add(s->key))
        n = snprintf(buf, sizeof(buf), "%s\n", s->line);
    else
        n = snprintf(buf, sizeof(buf), "DUP %s\n", s->key);
    if (write(out_fd, buf, (size_t)n) != n)
        fprintf(stderr, "core_harness: write: %s\n", strerror(errno));
    /* ... and says so; core records it right here */
    r.status = SEND_OK;
    r.message_id = "m";
    core_send_done(core, s->send_id, &r);
    uv_close((uv_handle_t *)&s->timer, ask_closed);
}

static int
h_send(void *ctx, const struct action *a)
{
    struct send *s = calloc(1, sizeof(*s));

    (void)ctx;
    if (s == NULL)
        return -1;
    s->send_id = a->send_id;
    snprintf(s->line, sizeof(s->line), "%s %d %d %s", a->reply_to, a->part,
             a->parts, a->idem_key);
    snprintf(s->key, sizeof(s->key), "%s", a->idem_key);
    uv_timer_init(&loop, &s->timer);
    uv_timer_start(&s->timer, send_fire, rng() % 5, 0);
    return 0;
}

static void
feed(uv_timer_t *t)
{
    struct event evs[FEED_PER_TICK];
    char texts[FEED_PER_TICK][64], users[FEED_PER_TICK][16];
    char off[32];
    size_t n = 0;

    memset(evs, 0, sizeof(evs));
    while (n < FEED_PER_TICK && fed + n < nlines) {
        const char *id = lines[fed + n];

        snprintf(texts[n], sizeof(texts[n]), "q%s", id);
        snprintf(users[n], sizeof(users[n]), "u%d", atoi(id) % 7);
        evs[n].kind = EVENT_MESSAGE;
        evs[n].platform = "telegram";
        evs[n].chat = users[n];
        evs[n].thread = "";
        evs[n].user = users[n];
        evs[n].user_name = "";
        evs[n].message_id = id;
        evs[n].reply_to = "";
        evs[n].flags = EVENT_PRIVATE;
        evs[n].text = texts[n];
        n++;
    }
    if (n == 0) {
        uv_timer_stop(t);
        return;
    }
    if (core_accept_batch(core, evs, n) != 0)
        return; /* not durable: the same lines again next tick */
    fed += n;
    /* the ack: like Telegram's offset, moved only after durability */
    snprintf(off, sizeof(off), "%zu", fed);
    store_kv_set(st, "harness", "offset", off);
}

static uv_timer_t feed_timer, done_timer;

static void
check_done(uv_timer_t *t)
{
    struct core_stats s;

    core_stats(core, &s);
    if (fed < nlines || s.inflight > 0 || store_jobs_unfinished(st) != 0)
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)&feed_timer, NULL);
    uv_close((uv_handle_t *)t, NULL);
    core_free(core);
    core = NULL;
}

static void
cfg_fail(struct config_diag *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        fprintf(stderr, "core_harness: %s\n", d->errors[i]);
}

int
main(int argc, char **argv)
{
    static const char conf[] =
        "[bot]\nstate_dir = /tmp\n"
        "[limits]\nuser = off\nchat = off\nuser_tokens = off\n"
        "[llm]\nmodels = main\n"
        "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"
        "api_key = sk-test\nname = m\n";
    struct core_asker asker = {NULL, h_ask, h_cancel};
    struct connector_ops ops;
    struct config *cfg = NULL;
    struct config_diag d;
    char err[256], off[32];

    if (argc != 4) {
        fprintf(stderr, "usage: core_harness DB INPUT OUTPUT\n");
        return 2;
    }
    log_init("core_harness");
    log_set_level(LOG_LEVEL_WARN);
    rng_state = (uint64_t)getpid() * 2654435761ULL + 1;
    memset(&d, 0, sizeof(d));
    if (config_parse(conf, sizeof(conf) - 1, "harness.conf", &cfg, &d) < 0) {
        cfg_fail(&d);
        return 1;
    }
    config_diag_release(&d);
    if (load_lines(argv[2]) < 0) {
        fprintf(stderr, "core_harness: %s: cannot read\n", argv[2]);
        return 1;
    }
    load_keys(argv[3]);
    if ((out_fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0) {
        fprintf(stderr, "core_harness: %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    uv_loop_init(&loop);
    if ((st = store_open(argv[1], err, sizeof(err))) == NULL) {
        fprintf(stderr, "core_harness: %s\n", err);
        return 2;
    }
    store_attach_loop(st, &loop);
    if (store_kv_get(st, "harness", "offset", off, sizeof(off)) == 1) {
        size_t o = (size_t)strtoul(off, NULL, 10);

        fed = o > 20 ? o - 20 : 0; /* redeliver a little, on purpose */
    }
    if ((core = core_new(&loop, st, cfg, &asker)) == NULL)
        return 2;
    memset(&ops, 0, sizeof(ops));
    ops.platform = "telegram";
    ops.send = h_send;
    ops.text_max = 4096;
    core_register_connector(core, &ops);

    uv_timer_init(&loop, &feed_timer);
    uv_timer_start(&feed_timer, feed, 1, 1);
    uv_timer_init(&loop, &done_timer);
    uv_timer_start(&done_timer, check_done, 20, 20);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(out_fd);
    config_free(cfg);
    printf("fed=%zu\n", fed);
    for (size_t i = 0; i < KEYS_MAX; i++)
        free(keys[i]);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    return 0;
}
