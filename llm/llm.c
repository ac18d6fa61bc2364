/* llm: the LLM client -- retries, key rotation, fallbacks, breakers and
 * pacing on the curl multi adapter. */
#include "llm/llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "config/value.h"
#include "core/log.h"
#include "llm/anthropic_codec.h"
#include "llm/openai_codec.h"
#include "llm/pacer.h"
#include "llm/retry.h"
#include "llm/sse.h"

/*
 * Shape (docs/llm.md "Client"):
 *
 *   llm_ask -> route: the first model of the ask's route not tried in
 *   this round, with a usable key, a big enough window (after an
 *   overflow) and a breaker that lets requests go -> that model's queue.
 *
 *   Each model has two FIFO lanes, `retry` before `fresh`, and one uv
 *   timer for the head: the head goes when its own not_before, the
 *   breaker and the pacer all allow; otherwise the timer is armed for the
 *   exact wait.  No busy loop: nothing runs between two events.
 *
 *   The reply is classified (codec, errclass), the breaker and pacer are
 *   told, and llm/retry's retry_decide() says what next: the same
 *   model+key after a wait (429: at the back of the retry lane, holding
 *   the lane until its wait is over, so the limited requests go first;
 *   others: on the ask's own timer, then into the retry lane), the next
 *   key, the next model, a trimmed history, or the end.
 *
 * Ownership: struct llm owns the models and the calls.  A call holds a
 * reference on its current model (so a model removed by a reload lives
 * until its last call leaves).  Every uv handle (a timer per call, one per
 * model) is counted in l->handles; memory is freed in close callbacks and
 * the struct llm itself when the last one closed after llm_free().
 */

/* A streamed body (SSE framing makes it many times the text) */
#define STREAM_BODY_MAX (64u * 1024 * 1024)
#define ROUND_MAX 1000 /* rounds over the route before an ask ends anyway */
/* A request's age (llm_ask.age_ms) is clamped here: far above any
 * give_up_after, small enough for now - age to stay in range. */
#define AGE_MAX_MS ((int64_t)3651 * 24 * 3600 * 1000)

/* A wait asked by a provider is honoured up to any deadline config can
 * name (retry.h); a bigger one only means "after the deadline". */
_Static_assert(RETRY_ASKED_MAX_MS > VALUE_DURATION_MAX_MS,
               "asked waits must be honoured up to the largest give_up_after");
/* Keys a request was refused on are one bit each (llm_call.refused). */
_Static_assert(CONFIG_LIST_MAX <= 64, "api_key lists fit a 64-bit mask");
#define FAILS_MAX                                                              \
    8 /* models named in a failure text (it has LLM_ERROR_MAX)                 \
       */

struct model;

/*
 * One streaming attempt (docs/llm.md "Streaming"): the body goes through
 * the SSE parser into the codec's decoder as it arrives.  Until the first
 * event decodes, the raw bytes are kept too (up to LLM_REPLY_MAX): a
 * non-2xx reply is a JSON error body, and a server that ignored "stream"
 * sends a whole reply.  Owned by its call; freed when the attempt ends.
 */
struct call_stream {
    struct sse sse;
    struct llm_stream dec;
    enum config_api api;
    char *raw;
    size_t raw_len, raw_cap;
    int raw_off;  /* no longer kept: an event decoded, or over the cap */
    int raw_over; /* what is kept is not the whole body */
    int failed;   /* an error event, a bad event, a bound: err says */
    struct llm_error_info err;
    size_t shown; /* text bytes the last partial call had */
    int due;      /* a partial call is armed on the call's timer */
};

struct call_list {
    struct llm_call *head, *tail;
    size_t n;
};

enum call_phase {
    PH_START = 0, /* created, routed on the next loop turn */
    PH_QUEUED,    /* in a model's lane */
    PH_WAIT,      /* own timer: a backoff (m set) or a new round (m NULL) */
    PH_SENDING,   /* HTTP attempt in flight */
    PH_FAILING,   /* failure decided outside the loop's turn; ends soon */
    PH_DONE,      /* done is running or has run */
};

struct fail_note {
    char model[CONFIG_NAME_MAX + 1];
    enum errclass cls;
    int status; /* HTTP status, 0 none */
    /* NULL: from status or class ("503 from main"); else a phrase with its
     * own preposition: "circuit open on", "no usable key for" */
    const char *what;
};

/* Notes that are not replies; the round goes on only after the first. */
#define NOTE_OPEN "circuit open on"
#define NOTE_NOKEY "no usable key for"
#define NOTE_QUEUED "still queued at"
#define NOTE_UNUSABLE "unusable request for"
#define NOTE_INTERNAL "internal error on"

/* The keys of one model that refused one request (llm_call.refused). */
struct call_refusal {
    uint32_t id;
    uint64_t keys;
};

/* models a request's refusals are kept for; more only after reloads */
#define CALL_REFUSALS_MAX (2 * CONFIG_MODELS_MAX)

struct llm_call {
    struct llm *l;
    llm_done_fn done;
    void *arg;
    struct llm_call *prev, *next; /* in a model lane */
    struct call_list *lane;
    struct llm_call *all_prev, *all_next; /* every active call */
    uv_timer_t timer;
    enum call_phase phase;

    /* the ask, copied: one block holds the system text and the texts */
    char *blob;
    const char *system;
    struct llm_message *msgs;
    int64_t *msg_tokens; /* estimate per message, with its framing */
    size_t nmsgs;
    int64_t sys_tokens; /* estimate of the system text with its framing */
    int64_t max_tokens;
    char preferred[CONFIG_NAME_MAX + 1];
    int64_t start_ms, deadline_ms;

    /* where it is */
    struct model *m;     /* holds a reference */
    int key;             /* key of the last attempt on m, -1 none */
    int attempt;         /* attempts on m + key */
    size_t trim_floor;   /* on m: first message after overflow trims */
    size_t first;        /* first message sent in the next/last attempt */
    int64_t need_window; /* > 0: only windows above this (after overflow) */
    int64_t not_before;  /* may not be sent before this (retry lane) */
    int64_t queued_at;
    int64_t reserve; /* tokens the pacer reserves for the attempt */
    int64_t sent_ms;
    int probe;
    int paced; /* counted in pacer_waits for this queue visit */
    struct http_req *req;
    enum errclass fail_cls; /* PH_FAILING */
    llm_partial_fn partial; /* the ask's; streams only with l->stream */
    struct call_stream *st; /* the streaming attempt in flight, or NULL */

    /* the round: models tried, and whether a transient failure was seen */
    uint32_t tried[2 * CONFIG_MODELS_MAX];
    size_t ntried;
    /* per model (by id), for the whole request, every round: the keys
     * that refused THIS request (400/403/404, RETRY_OTHER_KEY), each bit a
     * key index; they are not tried again by it, and stay usable for
     * every other request.  A reload that reorders a model's keys may
     * skip a key once more: harmless, the request moves on.  Allocated
     * at the first refusal: most requests have none, and thousands are
     * in flight at once (docs/architecture.md "Memory under load"). */
    struct call_refusal *refused;
    size_t nrefused;
    int transient;
    int round;

    struct fail_note fails[FAILS_MAX];
    size_t nfails;
    size_t last_fail; /* the newest note */
    int attempts_total, fallbacks;
};

struct model {
    struct llm *l;
    uint32_t id;
    char name[CONFIG_NAME_MAX + 1];
    enum config_api api;
    char *provider; /* the provider's model name */
    char *url;      /* base_url + path */
    char **keys;
    size_t nkeys;
    int64_t *bench_until; /* per key: usable from here (INT64_MAX: reload) */
    enum errclass *bench_cls;
    int *bench_status;
    int64_t context_window;
    double price_in, price_out;
    int listed; /* in the current configuration */
    struct pacer pacer;
    struct breaker breaker;
    struct call_list retry, fresh;
    uv_timer_t timer;
    int64_t timer_due; /* -1: not armed */
    int refs;          /* calls whose m is this one */
    size_t in_flight;
    /* the last failure that counted against its breaker: what an ask that
     * skips it while open is told */
    enum errclass down_cls;
    int down_status; /* 0 with down_cls NETWORK/TIMEOUT, -1 never failed */
    struct llm_model_stats st;
    struct model *gone_next; /* in l->gone once unlisted */
};

struct llm {
    uv_loop_t *loop;
    struct http *http;
    /* settings copied from struct config */
    char *system_prompt;
    int64_t max_output_tokens;
    int64_t timeout_ms;
    int64_t give_up_after_ms;
    int stream; /* [llm] stream */
    struct retry_policy policy;
    struct breaker_config breaker_cfg;

    struct model **models; /* every [model.NAME], file order */
    size_t nmodels;
    struct model **order; /* [llm] models */
    size_t norder;
    struct model *gone; /* unlisted models still referenced */
    uint32_t next_id;

    struct llm_call *calls; /* active */
    size_t ncalls;
    size_t handles; /* uv handles not yet closed */
    int freeing;
    int in_done; /* done callbacks running */

    struct llm_stats st; /* the global part; models filled on demand */
};

/* ---- time, randomness ------------------------------------------------ */

static int64_t
llm_now(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static int64_t
wall_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- lists ----------------------------------------------------------- */

static void
lane_push(struct call_list *q, struct llm_call *c)
{
    c->lane = q;
    c->next = NULL;
    c->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    q->n++;
}

static void
lane_remove(struct llm_call *c)
{
    struct call_list *q = c->lane;

    if (q == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        q->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        q->tail = c->prev;
    q->n--;
    c->prev = c->next = NULL;
    c->lane = NULL;
}

/* ---- models ------------------------------------------------------------ */

static void llm_handle_closed(struct llm *l);
static void model_dispatch(struct model *m);
static void call_route(struct llm_call *c);
static void call_enqueue(struct llm_call *c, struct model *m, int retry_lane);

static void
keys_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n && keys != NULL; i++) {
        if (keys[i] != NULL) {
            sodium_memzero(keys[i], strlen(keys[i]));
            free(keys[i]);
        }
    }
    free(keys);
}

static void
model_closed(uv_handle_t *h)
{
    struct model *m = h->data;
    struct llm *l = m->l;

    free(m->provider);
    free(m->url);
    keys_free(m->keys, m->nkeys);
    free(m->bench_until);
    free(m->bench_cls);
    free(m->bench_status);
    free(m);
    llm_handle_closed(l);
}

static void
model_close(struct model *m)
{
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, model_closed);
}

static void
model_unref(struct model *m)
{
    struct llm *l = m->l;
    struct model **pp;

    if (--m->refs > 0 || m->listed || l->freeing)
        return;
    for (pp = &l->gone; *pp != NULL; pp = &(*pp)->gone_next) {
        if (*pp == m) {
            *pp = m->gone_next;
            break;
        }
    }
    model_close(m);
}

static void
model_ref(struct model *m)
{
    m->refs++;
}

/* Fill m's settings from cfg's section (keys copied, benches kept for the
 * keys that did not change).  -1 on out of memory, m unchanged. */
static int
model_apply(struct model *m, const struct config_model *cm)
{
    const char *path =
        cm->api == CONFIG_API_ANTHROPIC ? ANTHROPIC_PATH : OPENAI_PATH;
    size_t n = cm->napi_keys, ulen;
    char **keys = NULL, *url = NULL, *provider = NULL;
    int64_t *until = NULL;
    enum errclass *bcls = NULL;
    int *bstatus = NULL;
    struct pacer_config pc;
    int rc = -1;

    ulen = strlen(cm->base_url) + strlen(path) + 1;
    url = malloc(ulen);
    provider = strdup(cm->model);
    keys = calloc(n ? n : 1, sizeof(*keys));
    until = calloc(n ? n : 1, sizeof(*until));
    bcls = calloc(n ? n : 1, sizeof(*bcls));
    bstatus = calloc(n ? n : 1, sizeof(*bstatus));
    if (url == NULL || provider == NULL || keys == NULL || until == NULL ||
        bcls == NULL || bstatus == NULL)
        goto out;
    snprintf(url, ulen, "%s%s", cm->base_url, path);
    for (size_t i = 0; i < n; i++) {
        const char *v = cm->api_keys[i].value;

        /* an unresolved key is unusable: benched until a reload */
        keys[i] = strdup(v != NULL ? v : "");
        if (keys[i] == NULL)
            goto out;
        if (v == NULL || v[0] == '\0') {
            until[i] = INT64_MAX;
            bcls[i] = ERRCLASS_AUTH;
        } else if (i < m->nkeys && strcmp(m->keys[i], v) == 0) {
            until[i] = m->bench_until[i];
            bcls[i] = m->bench_cls[i];
            bstatus[i] = m->bench_status[i];
        }
    }
    keys_free(m->keys, m->nkeys);
    free(m->bench_until);
    free(m->bench_cls);
    free(m->bench_status);
    free(m->url);
    free(m->provider);
    m->keys = keys;
    m->nkeys = n;
    m->bench_until = until;
    m->bench_cls = bcls;
    m->bench_status = bstatus;
    m->url = url;
    m->provider = provider;
    keys = NULL;
    until = NULL;
    bcls = NULL;
    bstatus = NULL;
    url = provider = NULL;
    m->api = cm->api;
    m->context_window = cm->context_window;
    m->price_in = cm->price_in;
    m->price_out = cm->price_out;
    pc.rpm = cm->rpm;
    pc.tpm = cm->tpm;
    /* Anthropic meters output tokens as used; OpenAI counts max_tokens at
     * admission (docs/retry.md) */
    pc.settle_refund = cm->api == CONFIG_API_ANTHROPIC;
    pacer_configure(&m->pacer, &pc);
    rc = 0;
out:
    keys_free(keys, n);
    free(until);
    free(bcls);
    free(bstatus);
    free(url);
    free(provider);
    return rc;
}

static void
model_timer_cb(uv_timer_t *t)
{
    struct model *m = t->data;

    m->timer_due = -1;
    model_dispatch(m);
}

static struct model *
model_new(struct llm *l, const struct config_model *cm)
{
    struct model *m = calloc(1, sizeof(*m));
    struct pacer_config pc = {0, 0, 0};

    if (m == NULL)
        return NULL;
    m->l = l;
    m->id = ++l->next_id;
    snprintf(m->name, sizeof(m->name), "%s", cm->name);
    snprintf(m->st.name, sizeof(m->st.name), "%s", cm->name);
    pacer_init(&m->pacer, &pc);
    breaker_init(&m->breaker, &l->breaker_cfg);
    if (model_apply(m, cm) < 0) {
        free(m);
        return NULL;
    }
    uv_timer_init(l->loop, &m->timer);
    m->timer.data = m;
    m->timer_due = -1;
    m->listed = 1;
    m->down_status = -1;
    l->handles++;
    return m;
}

static void
model_arm(struct model *m, int64_t wait_ms, int64_t now)
{
    int64_t due = now + wait_ms;

    if (m->timer_due == due)
        return;
    m->timer_due = due;
    uv_update_time(m->l->loop);
    uv_timer_start(&m->timer, model_timer_cb, (uint64_t)max64(wait_ms, 0), 0);
}

static void
model_disarm(struct model *m)
{
    if (m->timer_due >= 0) {
        uv_timer_stop(&m->timer);
        m->timer_due = -1;
    }
}

/* The first key of m usable at now, -1 when every key is benched. */
static int
model_key(const struct model *m, int64_t now)
{
    for (size_t i = 0; i < m->nkeys; i++)
        if (m->bench_until[i] <= now)
            return (int)i;
    return -1;
}

/* The keys of m that refused this request (a bit per key index). */
static uint64_t
call_refused(const struct llm_call *c, const struct model *m)
{
    for (size_t i = 0; i < c->nrefused; i++)
        if (c->refused[i].id == m->id)
            return c->refused[i].keys;
    return 0;
}

/* Key k of m refused this request: it does not try k on m again. */
static void
call_refuse_key(struct llm_call *c, const struct model *m, int k)
{
    size_t i;

    if (k < 0 || k >= 64)
        return;
    for (i = 0; i < c->nrefused; i++)
        if (c->refused[i].id == m->id)
            break;
    if (i == c->nrefused) {
        struct call_refusal *r;

        if (c->nrefused == CALL_REFUSALS_MAX)
            return; /* only after many reloads: the key may come again */
        r = realloc(c->refused, (c->nrefused + 1) * sizeof(*r));
        if (r == NULL)
            return; /* out of memory: the key may be tried again */
        c->refused = r;
        c->refused[c->nrefused].id = m->id;
        c->refused[c->nrefused].keys = 0;
        c->nrefused++;
    }
    c->refused[i].keys |= UINT64_C(1) << k;
}

/* The first key of m usable at now that has not refused this request,
 * -1 when none is left. */
static int
call_key(const struct llm_call *c, const struct model *m, int64_t now)
{
    uint64_t refused = call_refused(c, m);

    for (size_t i = 0; i < m->nkeys; i++)
        if (m->bench_until[i] <= now &&
            (i >= 64 || !(refused & (UINT64_C(1) << i))))
            return (int)i;
    return -1;
}

/* The class and status that benched m's last key (for failure texts). */
static void
model_bench_reason(const struct model *m, enum errclass *cls, int *status)
{
    *cls = ERRCLASS_AUTH;
    *status = 0;
    for (size_t i = 0; i < m->nkeys; i++) {
        if (m->bench_cls[i] != ERRCLASS_AUTH || m->bench_status[i] != 0) {
            *cls = m->bench_cls[i];
            *status = m->bench_status[i];
        }
    }
}

static struct model *
llm_model_find(const struct llm *l, const char *name)
{
    for (size_t i = 0; i < l->nmodels; i++)
        if (strcmp(l->models[i]->name, name) == 0)
            return l->models[i];
    return NULL;
}

static int
model_failure_class(enum errclass cls)
{
    /* what says the model (not the key, not the request) is in trouble */
    switch (cls) {
    case ERRCLASS_NETWORK:
    case ERRCLASS_TIMEOUT:
    case ERRCLASS_SERVER:
    case ERRCLASS_OVERLOADED:
    case ERRCLASS_NOT_FOUND:
    case ERRCLASS_SERVER_PERMANENT:
    case ERRCLASS_TLS:
        return 1;
    default:
        return 0;
    }
}

/* ---- calls: bookkeeping ------------------------------------------------ */

static void
call_closed(uv_handle_t *h)
{
    struct llm_call *c = h->data;
    struct llm *l = c->l;

    free(c->blob);
    free(c->msgs);
    free(c->msg_tokens);
    free(c->refused);
    free(c);
    llm_handle_closed(l);
}

static void
stream_free(struct call_stream *st)
{
    if (st == NULL)
        return;
    sse_release(&st->sse);
    llm_stream_release(&st->dec);
    free(st->raw);
    free(st);
}

static void
call_stream_free(struct llm_call *c)
{
    struct call_stream *st = c->st;

    c->st = NULL;
    stream_free(st);
}

/* Detach c from everything and free it (asynchronously). */
static void
call_release(struct llm_call *c)
{
    struct llm *l = c->l;
    struct model *m = c->m;

    lane_remove(c);
    if (c->req != NULL) {
        http_cancel(c->req);
        c->req = NULL;
        if (m != NULL)
            m->in_flight--;
        if (m != NULL && c->probe)
            breaker_release(&m->breaker, 1);
    }
    c->probe = 0;
    call_stream_free(c);
    if (c->all_prev != NULL)
        c->all_prev->all_next = c->all_next;
    else
        l->calls = c->all_next;
    if (c->all_next != NULL)
        c->all_next->all_prev = c->all_prev;
    l->ncalls--;
    c->m = NULL;
    if (m != NULL)
        model_unref(m);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, call_closed);
}

static void call_timer_cb(uv_timer_t *t);
static void call_show(struct llm_call *c);

static void
call_arm(struct llm_call *c, int64_t wait_ms)
{
    uv_update_time(c->l->loop);
    uv_timer_start(&c->timer, call_timer_cb, (uint64_t)max64(wait_ms, 0), 0);
}

/* Move c to model m (or off every model with NULL), keeping references
 * straight; a new model starts with fresh attempts and trims. */
static void
call_set_model(struct llm_call *c, struct model *m)
{
    struct model *old = c->m;

    if (old == m)
        return;
    if (m != NULL)
        model_ref(m);
    c->m = m;
    c->key = -1;
    c->attempt = 0;
    c->trim_floor = 0;
    if (old != NULL)
        model_unref(old);
}

static int
call_tried(const struct llm_call *c, const struct model *m)
{
    for (size_t i = 0; i < c->ntried; i++)
        if (c->tried[i] == m->id)
            return 1;
    return 0;
}

static void
call_mark_tried(struct llm_call *c, const struct model *m)
{
    if (!call_tried(c, m) && c->ntried < sizeof(c->tried) / sizeof(c->tried[0]))
        c->tried[c->ntried++] = m->id;
}

static void
call_note(struct llm_call *c, const struct model *m, enum errclass cls,
          int status, const char *what)
{
    struct fail_note *n = NULL;

    for (size_t i = 0; i < c->nfails; i++)
        if (strcmp(c->fails[i].model, m->name) == 0)
            n = &c->fails[i];
    /* notes stay in the order the models were first met (the text names
     * them in route order); the newest one gives the result's class */
    if (n == NULL) {
        if (c->nfails == FAILS_MAX) {
            /* only after reloads renamed models: drop the oldest */
            memmove(&c->fails[0], &c->fails[1],
                    (FAILS_MAX - 1) * sizeof(c->fails[0]));
            c->nfails--;
        }
        n = &c->fails[c->nfails++];
        snprintf(n->model, sizeof(n->model), "%s", m->name);
    } else if (what != NULL && n->what == NULL) {
        /* a real reply says more than "circuit open" later on */
        return;
    }
    c->last_fail = (size_t)(n - c->fails);
    n->cls = cls;
    n->status = status;
    n->what = what;
    /* something that may recover: worth another round over the route */
    if ((what == NULL && errclass_retryable(cls)) ||
        (what != NULL && strcmp(what, NOTE_OPEN) == 0))
        c->transient = 1;
}

/* ---- the end of a call ------------------------------------------------- */

static const char *
fail_cause(enum errclass cls)
{
    switch (cls) {
    case ERRCLASS_RATE_LIMITED:
        return "the model is busy";
    case ERRCLASS_AUTH:
    case ERRCLASS_FORBIDDEN:
        return "the model refused our API keys";
    case ERRCLASS_QUOTA:
        return "the model's API quota is used up";
    case ERRCLASS_CONTEXT_OVERFLOW:
        return "the conversation is too long for the model";
    case ERRCLASS_BAD_REQUEST:
        return "the model rejected the request";
    case ERRCLASS_INTERNAL:
        return "internal error";
    default:
        return "the model is unavailable";
    }
}

static void
fail_detail(const struct fail_note *n, char *buf, size_t len)
{
    if (n->what != NULL)
        snprintf(buf, len, "%s", n->what);
    else if (n->status > 0)
        snprintf(buf, len, "%d from", n->status);
    else if (n->cls == ERRCLASS_TIMEOUT)
        snprintf(buf, len, "timeout from");
    else if (n->cls == ERRCLASS_NETWORK)
        snprintf(buf, len, "connection error from");
    else if (n->cls == ERRCLASS_TLS)
        snprintf(buf, len, "certificate error from");
    else
        snprintf(buf, len, "%s from", errclass_name(n->cls));
}

/*
 * "the model is unavailable (503 from main and backup)": the cause from
 * the last failure, then each distinct detail with the models that gave
 * it, in the order they first appear.
 */
static void
fail_text(const struct llm_call *c, enum errclass cls, const char *alone,
          char *buf, size_t len)
{
    char det[FAILS_MAX][40], part[96];
    int done[FAILS_MAX] = {0};
    size_t off;

    off = (size_t)snprintf(buf, len, "%s", fail_cause(cls));
    if (c->nfails == 0) {
        if (alone != NULL && off < len)
            snprintf(buf + off, len - off, " (%s)", alone);
        return;
    }
    for (size_t i = 0; i < c->nfails; i++)
        fail_detail(&c->fails[i], det[i], sizeof(det[i]));
    for (size_t i = 0; i < c->nfails && off < len; i++) {
        size_t count = 0, k = 0;

        if (done[i])
            continue;
        for (size_t j = i; j < c->nfails; j++)
            if (strcmp(det[j], det[i]) == 0)
                count++;
        off += (size_t)snprintf(buf + off, len - off, "%s%s ",
                                i == 0 ? " (" : ", ", det[i]);
        for (size_t j = i; j < c->nfails && off < len; j++) {
            if (done[j] || strcmp(det[j], det[i]) != 0)
                continue;
            done[j] = 1;
            k++;
            snprintf(part, sizeof(part), "%s%s",
                     k == 1       ? ""
                     : k == count ? " and "
                                  : ", ",
                     c->fails[j].model);
            off += (size_t)snprintf(buf + off, len - off, "%s", part);
        }
    }
    if (off < len)
        snprintf(buf + off, len - off, ")");
}

/* Calls done and frees c.  Runs from the loop only. */
static void
call_finish(struct llm_call *c, struct llm_result *res)
{
    struct llm *l = c->l;

    c->phase = PH_DONE;
    lane_remove(c);
    uv_timer_stop(&c->timer);
    res->attempts = c->attempts_total;
    res->fallbacks = c->fallbacks;
    res->elapsed_ms = llm_now() - c->start_ms;
    if (res->model == NULL && c->m != NULL)
        res->model = c->m->name;
    if (res->ok)
        l->st.answered++;
    else {
        l->st.failed++;
        if ((unsigned)res->error_class < ERRCLASS_COUNT)
            l->st.failed_by[res->error_class]++;
    }
    l->in_done++;
    c->done(res, c->arg);
    l->in_done--;
    call_release(c);
}

static void
call_fail(struct llm_call *c, const char *alone)
{
    struct llm_result res;
    char text[LLM_ERROR_MAX];
    const struct fail_note *last =
        c->nfails > 0 ? &c->fails[c->last_fail] : NULL;
    enum errclass cls = last != NULL ? last->cls : c->fail_cls;

    memset(&res, 0, sizeof(res));
    fail_text(c, cls, alone, text, sizeof(text));
    res.ok = 0;
    res.text = "";
    res.prompt_tokens = res.completion_tokens = -1;
    res.model = last != NULL ? last->model : NULL;
    res.key_index = c->key;
    res.trimmed = (int)c->first;
    res.error_class = cls;
    res.status = last != NULL ? last->status : 0;
    res.error = text;
    log_info("llm give_up model=%s class=%s status=%d attempts=%d "
             "fallbacks=%d elapsed_ms=%lld cause=\"%s\"",
             res.model ? res.model : "-", errclass_name(cls), res.status,
             c->attempts_total, c->fallbacks,
             (long long)(llm_now() - c->start_ms), text);
    call_finish(c, &res);
}

/* ---- calls: routing ---------------------------------------------------- */

/*
 * The model c should go to now: the first of its route not tried in this
 * round that has a usable key, a big enough window and a breaker that
 * lets requests go.  *parked gets the first one skipped only because its
 * breaker is open (the ask can wait there for the probe).  Models without
 * keys are noted as failures on the way.
 */
static struct model *
call_pick(struct llm_call *c, int64_t now, struct model **parked,
          const struct model *except)
{
    struct llm *l = c->l;
    struct model *pref = NULL;

    *parked = NULL;
    if (c->preferred[0] != '\0')
        pref = llm_model_find(l, c->preferred);
    for (size_t i = 0; i <= l->norder; i++) {
        struct model *m = i == 0 ? pref : l->order[i - 1];

        if (m == NULL || (i > 0 && m == pref) || m == except)
            continue;
        if (call_tried(c, m))
            continue;
        if (model_key(m, now) < 0) {
            enum errclass cls;
            int status;

            model_bench_reason(m, &cls, &status);
            call_note(c, m, cls, status,
                      m->nkeys == 0 || status == 0 ? NOTE_NOKEY : NULL);
            call_mark_tried(c, m);
            continue;
        }
        if (call_key(c, m, now) < 0) {
            /* every usable key refused this request: its reply is noted */
            call_mark_tried(c, m);
            continue;
        }
        if (c->need_window > 0 && m->context_window <= c->need_window)
            continue;
        if (breaker_check(&m->breaker, now) == BREAKER_WAIT) {
            /* the user hears why: "503 from backup", the failures that
             * opened it, though this ask did not send it anything */
            if (m->down_status >= 0)
                call_note(c, m, m->down_cls, m->down_status, NULL);
            if (*parked == NULL)
                *parked = m;
            continue;
        }
        return m;
    }
    return NULL;
}

/* Send c's way: the next model, a wait on an open breaker, a new round,
 * or the end. */
static void
call_route(struct llm_call *c)
{
    struct llm *l = c->l;
    int64_t now = llm_now();
    struct model *m, *parked;

    if (now >= c->deadline_ms) {
        call_fail(c, "gave up waiting");
        return;
    }
    m = call_pick(c, now, &parked, NULL);
    if (m != NULL) {
        call_enqueue(c, m, 0);
        return;
    }
    if (parked != NULL) {
        /* every candidate left is in cooldown: wait for a probe there */
        if (!call_tried(c, parked)) {
            call_note(c, parked, ERRCLASS_SERVER, 0, NOTE_OPEN);
            parked->st.breaker_skips++;
        }
        call_enqueue(c, parked, 0);
        return;
    }
    /* this round is over: another one only if something may recover */
    if (c->transient && c->round < ROUND_MAX && c->ntried > 0) {
        int64_t wait =
            retry_wait_jittered(&l->policy, c->round + 1, randombytes_random());

        if (now + wait < c->deadline_ms) {
            c->round++;
            c->ntried = 0;
            c->transient = 0;
            call_set_model(c, NULL);
            c->phase = PH_WAIT;
            c->not_before = now + wait;
            call_arm(c, wait);
            log_debug("llm round round=%d wait_ms=%lld", c->round + 1,
                      (long long)wait);
            return;
        }
    }
    if (c->nfails == 0)
        c->fail_cls = ERRCLASS_INTERNAL;
    call_fail(c, l->norder == 0 ? "no model is configured" : "no usable model");
}

/* Messages [first, n) and the system text, estimated, plus max_tokens. */
static int64_t
call_need(const struct llm_call *c, size_t first)
{
    int64_t t = LLM_TOKENS_PER_REQUEST + c->sys_tokens + c->max_tokens;

    for (size_t i = first; i < c->nmsgs; i++)
        t += c->msg_tokens[i];
    return t;
}

/* The first message to send to m: the trim floor, then as many of the
 * oldest as needed to fit m's window (the last message always stays). */
static size_t
call_fit(const struct llm_call *c, const struct model *m)
{
    size_t first = c->trim_floor;
    int64_t need = call_need(c, first);

    while (first + 1 < c->nmsgs && need > m->context_window) {
        need -= c->msg_tokens[first];
        first++;
    }
    return first;
}

static void
call_request(const struct llm_call *c, const struct model *m,
             struct llm_request *rq)
{
    rq->model = m->provider;
    rq->system = c->system;
    rq->messages = c->msgs + c->first;
    rq->nmessages = c->nmsgs - c->first;
    rq->max_tokens = c->max_tokens;
    rq->stream = 0;
}

/* Put c in m's retry or fresh lane and let m's queue move. */
static void
call_enqueue(struct llm_call *c, struct model *m, int retry_lane)
{
    struct llm_request rq;
    int64_t now = llm_now();

    if (!m->listed) {
        call_set_model(c, NULL);
        call_route(c);
        return;
    }
    call_set_model(c, m);
    c->first = call_fit(c, m);
    call_request(c, m, &rq);
    c->reserve = llm_estimate_request(&rq) + c->max_tokens;
    if (!retry_lane)
        c->not_before = 0;
    c->queued_at = now;
    c->paced = 0;
    c->phase = PH_QUEUED;
    lane_push(retry_lane ? &m->retry : &m->fresh, c);
    call_arm(c, c->deadline_ms - now);
    model_dispatch(m);
}

/* c leaves its model for good in this round. */
static void
call_next_model(struct llm_call *c)
{
    struct model *m = c->m;

    if (m != NULL) {
        call_mark_tried(c, m);
        m->st.fallbacks++;
        c->fallbacks++;
    }
    call_set_model(c, NULL);
    call_route(c);
}

/*
 * A breaker opened: asks queued on m that have somewhere else to go move
 * on at once (SPEC §5: while open, requests go to the next model); the
 * others stay and wait for the probe.
 */
static void
model_evacuate(struct model *m)
{
    struct call_list *lanes[2] = {&m->retry, &m->fresh};
    int64_t now = llm_now();

    model_ref(m); /* m must outlive the moves */
    for (int k = 0; k < 2; k++) {
        struct llm_call *c = lanes[k]->head, *next;

        for (; c != NULL; c = next) {
            struct model *parked, *to;

            next = c->next;
            to = call_pick(c, now, &parked, m);
            if (to == NULL)
                continue;
            lane_remove(c);
            m->st.breaker_skips++;
            m->st.fallbacks++;
            c->fallbacks++;
            call_enqueue(c, to, 0);
        }
    }
    model_unref(m);
}

/* ---- sending ----------------------------------------------------------- */

static void on_http_done(const struct http_response *r, void *arg);
static void call_bench_key(struct llm_call *c, struct model *m,
                           enum errclass cls, int status, int64_t now);

/* ---- streaming ---------------------------------------------------------- */

static void
stream_fail(struct call_stream *st, enum errclass cls, const char *type,
            const char *why)
{
    st->failed = 1;
    memset(&st->err, 0, sizeof(st->err));
    st->err.cls = cls;
    snprintf(st->err.type, sizeof(st->err.type), "%s", type);
    snprintf(st->err.message, sizeof(st->err.message), "%s", why);
}

/* Raw bytes until the first event: an error body or a whole reply. */
static void
stream_keep_raw(struct call_stream *st, const char *buf, size_t len)
{
    size_t cap;
    char *p;

    if (st->raw_off)
        return;
    if (len > LLM_REPLY_MAX - st->raw_len) {
        st->raw_off = st->raw_over = 1; /* what is kept is a prefix */
        return;
    }
    if (st->raw_len + len + 1 > st->raw_cap) {
        cap = st->raw_cap ? st->raw_cap : 1024;
        while (cap < st->raw_len + len + 1)
            cap *= 2;
        p = realloc(st->raw, cap);
        if (p == NULL) {
            st->raw_off = st->raw_over = 1;
            return;
        }
        st->raw = p;
        st->raw_cap = cap;
    }
    memcpy(st->raw + st->raw_len, buf, len);
    st->raw_len += len;
    st->raw[st->raw_len] = '\0';
}

static int
on_sse_event(const char *name, const char *data, size_t len, void *arg)
{
    struct call_stream *st = arg;
    enum llm_stream_status rc;

    rc = st->api == CONFIG_API_ANTHROPIC
             ? anthropic_stream_event(&st->dec, name, data, len, &st->err)
             : openai_stream_event(&st->dec, name, data, len, &st->err);
    if (rc == LLM_STREAM_FAIL) {
        st->failed = 1;
        return 1;
    }
    if (!st->raw_off) {
        /* a stream after all: the raw copy has no use */
        st->raw_off = 1;
        free(st->raw);
        st->raw = NULL;
        st->raw_len = st->raw_cap = 0;
    }
    return 0;
}

/*
 * Body bytes of a streaming attempt, from inside libcurl.  Text that grew
 * is shown by one partial call from the call's timer on the next loop
 * turn: every chunk that arrives meanwhile is coalesced into it, and the
 * caller's callback never runs inside libcurl.
 */
static int
on_stream_data(const char *buf, size_t len, void *arg)
{
    struct llm_call *c = arg;
    struct call_stream *st = c->st;
    enum sse_status ss;

    if (st == NULL || c->phase != PH_SENDING)
        return 1;
    stream_keep_raw(st, buf, len);
    ss = sse_feed(&st->sse, buf, len, on_sse_event, st);
    if (ss != SSE_OK) {
        if (!st->failed && ss == SSE_NOMEM)
            stream_fail(st, ERRCLASS_INTERNAL, "", "out of memory");
        else if (!st->failed)
            stream_fail(st, ERRCLASS_SERVER, LLM_BAD_REPLY,
                        "SSE event over SSE_EVENT_MAX");
        return 1;
    }
    if (c->partial != NULL && st->dec.len > st->shown && !st->due) {
        st->due = 1;
        call_arm(c, 0);
    }
    return 0;
}

/* The armed partial call: the attempt's text so far, if it grew. */
static void
call_show(struct llm_call *c)
{
    struct call_stream *st = c->st;

    if (st == NULL || !st->due)
        return;
    st->due = 0;
    if (c->partial == NULL || st->failed || st->dec.len <= st->shown)
        return;
    st->shown = st->dec.len;
    /* it may cancel c or free l: nothing of either is touched after */
    c->partial(st->dec.text, st->dec.len, c->arg);
}

static int
reply_parse(enum config_api api, int status, const char *body, size_t len,
            struct llm_reply *reply, struct llm_error_info *err)
{
    if (api == CONFIG_API_ANTHROPIC)
        return anthropic_parse_response(status, body, len, reply, err);
    return openai_parse_response(status, body, len, reply, err);
}

/*
 * How a streaming attempt ended: 0 with *reply, or -1 with *err (class
 * and status, 0 when the failure is not an HTTP status).  An error status
 * is classified from its body as without streaming; a 2xx must have
 * reached its terminal event, else it was cut (network); an error event
 * is the class of its error type.
 */
static int
stream_outcome(struct call_stream *st, const struct http_response *r,
               struct llm_reply *reply, struct llm_error_info *err)
{
    int status = (int)r->status, rc;

    memset(reply, 0, sizeof(*reply));
    reply->prompt_tokens = reply->completion_tokens = -1;
    if (r->error == HTTP_OK || (r->error == HTTP_ERR_CANCELLED && st->failed)) {
        if (status < 200 || status > 299)
            return reply_parse(st->api, status, st->raw ? st->raw : "",
                               st->raw_len, reply, err);
        if (st->failed) {
            *err = st->err;
            err->status = 0;
            return -1;
        }
        if (!st->dec.ended && !st->raw_off && st->raw_len > 0)
            /* no event at all: a server that ignored "stream" */
            return reply_parse(st->api, status, st->raw, st->raw_len, reply,
                               err);
        rc = llm_stream_reply(&st->dec, reply, err);
        if (rc != 0)
            err->status = 0;
        return rc;
    }
    memset(err, 0, sizeof(*err));
    err->cls = r->error == HTTP_ERR_TIMEOUT     ? ERRCLASS_TIMEOUT
               : r->error == HTTP_ERR_NETWORK   ? ERRCLASS_NETWORK
               : r->error == HTTP_ERR_TLS       ? ERRCLASS_TLS
               : r->error == HTTP_ERR_TOO_LARGE ? ERRCLASS_SERVER
                                                : ERRCLASS_INTERNAL;
    snprintf(err->message, sizeof(err->message), "%s", r->error_text);
    return -1;
}

/* Fail c from a timer: a failure found while the loop is inside
 * model_dispatch must not run done from there. */
static void
call_fail_soon(struct llm_call *c, enum errclass cls)
{
    c->phase = PH_FAILING;
    c->fail_cls = cls;
    call_arm(c, 0);
}

static void
call_send(struct llm_call *c, int probe, int64_t now)
{
    struct llm *l = c->l;
    struct model *m = c->m;
    struct llm_request rq;
    struct llm_body body = {NULL, 0};
    struct llm_headers hdr;
    struct http_request hr;
    int key = call_key(c, m, now), brc, hrc;

    if (key < 0) {
        /* benched while it waited: the next model */
        if (probe)
            breaker_release(&m->breaker, 1);
        call_next_model(c);
        return;
    }
    if (key != c->key) {
        c->key = key;
        c->attempt = 0;
    }
    call_request(c, m, &rq);
    if (c->partial != NULL && l->stream) {
        /* out of memory here only costs the streaming */
        c->st = calloc(1, sizeof(*c->st));
        if (c->st != NULL) {
            sse_init(&c->st->sse);
            llm_stream_init(&c->st->dec);
            c->st->api = m->api;
            rq.stream = 1;
        }
    }
    if (m->api == CONFIG_API_ANTHROPIC) {
        brc = anthropic_build_request(&rq, &body);
        hrc = anthropic_build_headers(&hdr, m->keys[key]);
    } else {
        brc = openai_build_request(&rq, &body);
        hrc = openai_build_headers(&hdr, m->keys[key]);
    }
    if (brc < 0 || hrc < 0) {
        llm_body_release(&body);
        call_stream_free(c);
        if (probe)
            breaker_release(&m->breaker, 1);
        if (hrc < 0) {
            /* a key with a control character: bench it, try the next */
            log_warnx("llm key unusable model=%s key=%d", m->name, key);
            c->key = key;
            call_bench_key(c, m, ERRCLASS_AUTH, 0, now);
            c->phase = PH_WAIT;
            c->not_before = now;
            call_arm(c, 0);
            return;
        }
        /* the ask itself cannot be sent (e.g. no user message for
         * Anthropic): no model will take it */
        log_warnx("llm cannot build request model=%s", m->name);
        call_note(c, m, ERRCLASS_BAD_REQUEST, 0, NOTE_UNUSABLE);
        call_fail_soon(c, ERRCLASS_BAD_REQUEST);
        return;
    }
    memset(&hr, 0, sizeof(hr));
    hr.method = "POST";
    hr.url = m->url;
    hr.headers = hdr.lines;
    hr.body = body.data;
    hr.body_len = body.len;
    hr.timeout_ms = l->timeout_ms;
    hr.timeout_ms = max64(1, min64(hr.timeout_ms, c->deadline_ms - now));
    if (c->st != NULL) {
        hr.on_data = on_stream_data;
        hr.max_response = STREAM_BODY_MAX;
    }
    c->req = http_send(l->http, &hr, on_http_done, c);
    sodium_memzero(hdr.buf, sizeof(hdr.buf));
    llm_body_release(&body);
    if (c->req == NULL) {
        call_stream_free(c);
        if (probe)
            breaker_release(&m->breaker, 1);
        call_note(c, m, ERRCLASS_INTERNAL, 0, NOTE_INTERNAL);
        call_fail_soon(c, ERRCLASS_INTERNAL);
        return;
    }
    uv_timer_stop(&c->timer);
    c->phase = PH_SENDING;
    c->probe = probe;
    c->sent_ms = now;
    c->attempt++;
    c->attempts_total++;
    m->in_flight++;
    m->st.attempts++;
    m->st.pacer_delay_ms += (uint64_t)max64(0, now - c->queued_at);
    log_debug("llm send model=%s key=%d attempt=%d probe=%d messages=%zu "
              "reserve=%lld stream=%d",
              m->name, key, c->attempt, probe, c->nmsgs - c->first,
              (long long)c->reserve, c->st != NULL);
}

/*
 * Move m's queue: the head goes when its not_before, the breaker and the
 * pacer allow; else the timer is armed for the exact wait (or, while a
 * probe is out, until its verdict calls this again).
 */
static void
model_dispatch(struct model *m)
{
    struct llm *l = m->l;
    int64_t now = llm_now();
    struct llm_call *c;

    if (l->freeing || !m->listed)
        return;
    model_ref(m);
    while ((c = m->retry.head != NULL ? m->retry.head : m->fresh.head) !=
           NULL) {
        int64_t w;
        enum breaker_verdict v;

        if (c->not_before > now) {
            model_arm(m, c->not_before - now, now);
            goto out;
        }
        w = breaker_wait_ms(&m->breaker, now);
        if (w != 0) {
            if (w > 0)
                model_arm(m, w, now);
            else
                model_disarm(m);
            goto out;
        }
        w = pacer_next(&m->pacer, c->reserve, now);
        if (w > 0) {
            if (!c->paced) {
                c->paced = 1;
                m->st.pacer_waits++;
            }
            model_arm(m, w, now);
            goto out;
        }
        lane_remove(c);
        v = breaker_admit(&m->breaker, now);
        pacer_take(&m->pacer, c->reserve, now);
        call_send(c, v == BREAKER_PROBE, now);
        if (l->freeing)
            goto out;
    }
    model_disarm(m);
out:
    model_unref(m);
}

/* ---- replies ----------------------------------------------------------- */

struct hdr_ctx {
    const struct http_response *r;
};

static const char *
hdr_lookup(void *arg, const char *name)
{
    const struct hdr_ctx *h = arg;

    return http_response_header(h->r, name);
}

static void
call_bench_key(struct llm_call *c, struct model *m, enum errclass cls,
               int status, int64_t now)
{
    int k = c->key;

    if (k < 0 || (size_t)k >= m->nkeys || m->bench_until[k] > now)
        return; /* someone else benched it already: logged once */
    m->bench_until[k] =
        cls == ERRCLASS_QUOTA ? now + LLM_QUOTA_BENCH_MS : INT64_MAX;
    m->bench_cls[k] = cls;
    m->bench_status[k] = status;
    m->st.keys_benched++;
    log_warnx("llm key benched model=%s key=%d class=%s status=%d until=%s",
              m->name, k, errclass_name(cls), status,
              cls == ERRCLASS_QUOTA ? "1h" : "reload");
}

/* Drop the older half of what may still be dropped; 0 when nothing can. */
static int
call_trim(struct llm_call *c)
{
    size_t left = c->nmsgs - 1 - c->first, drop;

    if (c->first + 1 >= c->nmsgs || left == 0)
        return 0;
    drop = (left + 1) / 2;
    c->trim_floor = c->first + drop;
    return 1;
}

static void
call_succeed(struct llm_call *c, struct model *m, struct llm_reply *reply,
             int64_t now)
{
    struct llm *l = c->l;
    struct llm_result res;
    int64_t in = reply->prompt_tokens, out = reply->completion_tokens;
    int64_t used = in >= 0 && out >= 0 ? in + out : c->reserve;
    double cost = 0;

    breaker_success(&m->breaker, c->probe, now);
    if (c->probe)
        log_info("llm breaker closed model=%s", m->name);
    c->probe = 0;
    pacer_settle(&m->pacer, c->reserve, used, now);
    if (in >= 0 && out >= 0) {
        cost = ((double)in * m->price_in + (double)out * m->price_out) / 1e6;
        m->st.tokens_in += (uint64_t)in;
        m->st.tokens_out += (uint64_t)out;
        m->st.cost_usd += cost;
        l->st.tokens_in += (uint64_t)in;
        l->st.tokens_out += (uint64_t)out;
        l->st.cost_usd += cost;
    }
    m->st.answered++;
    log_debug("llm answered model=%s key=%d attempt=%d status=200 "
              "tokens_in=%lld tokens_out=%lld ms=%lld",
              m->name, c->key, c->attempt, (long long)in, (long long)out,
              (long long)(now - c->sent_ms));
    memset(&res, 0, sizeof(res));
    res.ok = 1;
    res.text = reply->text;
    res.text_len = strlen(reply->text);
    res.prompt_tokens = in;
    res.completion_tokens = out;
    res.cost_usd = cost;
    res.model = m->name;
    res.key_index = c->key;
    res.trimmed = (int)c->first;
    res.error_class = ERRCLASS_INTERNAL;
    res.error = "";
    call_finish(c, &res);
}

static void
on_http_done(const struct http_response *r, void *arg)
{
    struct llm_call *c = arg;
    struct llm *l = c->l;
    struct model *m = c->m;
    struct llm_reply reply;
    struct llm_error_info err;
    struct retry_decision d;
    struct hdr_ctx hc = {r};
    struct call_stream *st = c->st;
    int64_t now = llm_now(), asked = -1;
    enum errclass cls;
    int status = (int)r->status, probe = c->probe, rc;
    enum breaker_state before;

    c->req = NULL;
    c->st = NULL; /* this attempt's; freed below, a retry starts afresh */
    m->in_flight--;
    memset(&reply, 0, sizeof(reply));
    memset(&err, 0, sizeof(err));
    model_ref(m); /* the call may end below; m stays for the dispatch */
    if (st != NULL) {
        if (stream_outcome(st, r, &reply, &err) == 0) {
            call_succeed(c, m, &reply, now);
            llm_reply_release(&reply);
            goto out;
        }
        cls = err.cls;
        status = err.status;
        log_debug("llm stream error model=%s status=%ld type=\"%s\" "
                  "code=\"%s\" message=\"%s\" events=%zu text=%zu",
                  m->name, r->status, err.type, err.code, err.message,
                  st->dec.events, st->dec.len);
    } else if (r->error == HTTP_OK) {
        if (m->api == CONFIG_API_ANTHROPIC)
            rc = anthropic_parse_response(status, r->body, r->body_len, &reply,
                                          &err);
        else
            rc = openai_parse_response(status, r->body, r->body_len, &reply,
                                       &err);
        if (rc == 0) {
            call_succeed(c, m, &reply, now);
            llm_reply_release(&reply);
            goto out;
        }
        cls = err.cls;
        log_debug("llm error model=%s status=%d type=\"%s\" code=\"%s\" "
                  "message=\"%s\"",
                  m->name, status, err.type, err.code, err.message);
    } else {
        cls = r->error == HTTP_ERR_TIMEOUT     ? ERRCLASS_TIMEOUT
              : r->error == HTTP_ERR_NETWORK   ? ERRCLASS_NETWORK
              : r->error == HTTP_ERR_TLS       ? ERRCLASS_TLS
              : r->error == HTTP_ERR_TOO_LARGE ? ERRCLASS_SERVER
                                               : ERRCLASS_INTERNAL;
        status = 0;
    }
    m->st.errors[cls]++;

    /* the model's health, then its pace */
    before = breaker_state(&m->breaker, now);
    if (model_failure_class(cls)) {
        breaker_failure(&m->breaker, probe, now);
        m->down_cls = cls;
        m->down_status = status;
    } else
        breaker_release(&m->breaker, probe);
    c->probe = 0;
    pacer_settle(&m->pacer, c->reserve, c->reserve, now);
    if (r->error == HTTP_OK)
        asked = retry_asked_wait(cls, hdr_lookup, &hc, wall_now_ms());
    if (cls == ERRCLASS_RATE_LIMITED) {
        int64_t p0 = m->pacer.penalties;

        pacer_penalize(&m->pacer, c->sent_ms, asked, now);
        if (m->pacer.penalties != p0)
            m->st.pacer_penalties++;
    }

    call_note(c, m, cls, status, NULL);
    d = retry_decide(&l->policy, c->attempt, cls, asked, now - c->start_ms,
                     l->give_up_after_ms, randombytes_random());
    log_info("llm attempt model=%s key=%d attempt=%d class=%s status=%d "
             "asked_ms=%lld action=%s wait_ms=%lld",
             m->name, c->key, c->attempt, errclass_name(cls), status,
             (long long)asked, retry_action_name(d.action),
             (long long)d.wait_ms);
    if (breaker_state(&m->breaker, now) == BREAKER_OPEN &&
        before != BREAKER_OPEN) {
        log_warnx("llm breaker open model=%s cooldown_ms=%lld opens=%llu",
                  m->name, (long long)m->breaker.cooldown_ms,
                  (unsigned long long)m->breaker.opens);
        model_evacuate(m);
    }

    switch (d.action) {
    case RETRY_AFTER:
        m->st.retries[cls]++;
        c->not_before = now + d.wait_ms;
        if (cls == ERRCLASS_RATE_LIMITED) {
            /* limited requests go first when capacity returns: the back
             * of the retry lane, holding it until the wait is over */
            call_enqueue(c, m, 1);
        } else {
            c->phase = PH_WAIT;
            call_arm(c, d.wait_ms);
        }
        break;
    case RETRY_NEXT_KEY:
    case RETRY_OTHER_KEY:
        /* SPEC §5: the next key, else the next model.  Auth and quota
         * bench the key for everyone; a 400/403/404 speaks of this
         * request on this model+key, so the key is only refused for it
         * (other requests, another model override or a shorter
         * history, may still use it) */
        if (d.action == RETRY_NEXT_KEY)
            call_bench_key(c, m, cls, status, now);
        else
            call_refuse_key(c, m, c->key);
        if (call_key(c, m, now) >= 0) {
            c->not_before = 0;
            call_enqueue(c, m, 1);
        } else {
            call_next_model(c);
        }
        break;
    case RETRY_TRIM_CONTEXT:
        if (call_trim(c)) {
            m->st.trims++;
            c->not_before = 0;
            call_enqueue(c, m, 1);
        } else {
            /* even the last message alone does not fit this window */
            c->need_window = max64(c->need_window, m->context_window);
            call_next_model(c);
        }
        break;
    case RETRY_NEXT_MODEL:
        call_next_model(c);
        break;
    case RETRY_GIVE_UP:
    default:
        call_fail(c, NULL);
        break;
    }
out:
    stream_free(st);
    if (!l->freeing)
        model_dispatch(m);
    model_unref(m);
}

/* ---- timers ------------------------------------------------------------ */

static void
call_timer_cb(uv_timer_t *t)
{
    struct llm_call *c = t->data;
    int64_t now = llm_now();
    struct model *m = c->m;

    switch (c->phase) {
    case PH_START:
        call_route(c);
        break;
    case PH_QUEUED:
        /* give_up_after ran out in the queue */
        if (now < c->deadline_ms) {
            call_arm(c, c->deadline_ms - now);
            break;
        }
        lane_remove(c);
        if (m != NULL) {
            model_ref(m);
            if (c->nfails == 0)
                call_note(c, m, ERRCLASS_RATE_LIMITED, 0, NOTE_QUEUED);
        }
        call_fail(c, NULL);
        if (m != NULL) {
            model_dispatch(m); /* the head may have changed */
            model_unref(m);
        }
        break;
    case PH_WAIT:
        if (now < c->not_before) {
            call_arm(c, c->not_before - now); /* the loop's clock lagged */
            break;
        }
        if (m == NULL) {
            call_route(c); /* a new round */
        } else if (breaker_check(&m->breaker, now) == BREAKER_WAIT) {
            /* its model opened meanwhile: elsewhere if possible */
            struct model *parked, *to = call_pick(c, now, &parked, m);

            if (to != NULL) {
                m->st.breaker_skips++;
                call_next_model(c);
            } else {
                call_enqueue(c, m, 1);
            }
        } else {
            call_enqueue(c, m, 1);
        }
        break;
    case PH_FAILING:
        call_fail(c, NULL);
        break;
    case PH_SENDING:
        call_show(c);
        break;
    case PH_DONE:
    default:
        break;
    }
}

/* ---- the client -------------------------------------------------------- */

static void
llm_handle_closed(struct llm *l)
{
    if (--l->handles > 0 || !l->freeing)
        return;
    free(l->models);
    free(l->order);
    if (l->system_prompt != NULL)
        free(l->system_prompt);
    free(l);
}

static int
llm_apply(struct llm *l, const struct config *cfg)
{
    struct model **models = NULL, **order = NULL;
    char *prompt = NULL;
    int rc = -1;

    prompt = strdup(cfg->llm.system_prompt ? cfg->llm.system_prompt : "");
    models = calloc(cfg->nmodels + 1, sizeof(*models));
    order = calloc(cfg->llm.nmodels + 1, sizeof(*order));
    if (prompt == NULL || models == NULL || order == NULL)
        goto out;
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct config_model *cm = &cfg->models[i];
        struct model *m = llm_model_find(l, cm->name);

        if (m != NULL) {
            /* out of memory here leaves the models before it with their
             * new settings: harmless, and the reload reports failure */
            if (model_apply(m, cm) < 0)
                goto out;
        } else {
            m = model_new(l, cm);
            if (m == NULL)
                goto out;
        }
        models[i] = m;
    }
    for (size_t i = 0; i < cfg->llm.nmodels; i++) {
        for (size_t j = 0; j < cfg->nmodels; j++)
            if (strcmp(models[j]->name, cfg->llm.models[i]) == 0)
                order[i] = models[j];
        if (order[i] == NULL) {
            log_warnx("llm model %s has no [model.%s] section",
                      cfg->llm.models[i], cfg->llm.models[i]);
            goto out;
        }
    }
    /* commit: the models that are gone take no new asks */
    for (size_t i = 0; i < l->nmodels; i++) {
        struct model *m = l->models[i];
        int kept = 0;

        for (size_t j = 0; j < cfg->nmodels; j++)
            kept |= models[j] == m;
        if (kept)
            continue;
        m->listed = 0;
        model_disarm(m);
        m->gone_next = l->gone;
        l->gone = m;
    }
    free(l->models);
    free(l->order);
    l->models = models;
    l->nmodels = cfg->nmodels;
    l->order = order;
    l->norder = cfg->llm.nmodels;
    models = order = NULL;
    free(l->system_prompt);
    l->system_prompt = prompt;
    prompt = NULL;
    l->max_output_tokens = cfg->llm.max_output_tokens;
    l->timeout_ms = cfg->llm.timeout > 0 ? cfg->llm.timeout : 60000;
    l->give_up_after_ms = cfg->llm.give_up_after;
    l->stream = cfg->llm.stream;
    l->policy.attempts = cfg->retry.attempts;
    l->policy.multiplier_ms = cfg->retry.multiplier;
    l->policy.min_ms = cfg->retry.min;
    l->policy.max_ms = cfg->retry.max;
    l->policy.jitter =
        cfg->retry.jitter == CONFIG_JITTER_NONE    ? RETRY_JITTER_NONE
        : cfg->retry.jitter == CONFIG_JITTER_EQUAL ? RETRY_JITTER_EQUAL
                                                   : RETRY_JITTER_FULL;
    rc = 0;
out:
    if (rc < 0 && models != NULL) {
        /* new models are not referenced by anyone yet */
        for (size_t i = 0; i < cfg->nmodels; i++) {
            if (models[i] != NULL &&
                llm_model_find(l, models[i]->name) == NULL) {
                models[i]->listed = 0;
                model_close(models[i]);
            }
        }
    }
    free(models);
    free(order);
    free(prompt);
    return rc;
}

/* Asks queued on models that are gone move to their next model. */
static void
llm_reroute_gone(struct llm *l)
{
    for (struct model *m = l->gone; m != NULL;) {
        struct model *next = m->gone_next;
        struct call_list *lanes[2] = {&m->retry, &m->fresh};

        model_ref(m);
        for (int k = 0; k < 2; k++) {
            struct llm_call *c;

            while ((c = lanes[k]->head) != NULL) {
                lane_remove(c);
                call_set_model(c, NULL);
                c->phase = PH_START;
                call_arm(c, 0);
            }
        }
        model_unref(m);
        m = next;
    }
}

struct llm *
llm_new(uv_loop_t *loop, struct http *http, const struct config *cfg)
{
    struct llm *l;

    if (sodium_init() < 0) {
        log_warnx("llm: libsodium cannot initialise");
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        log_warnx("llm: out of memory");
        return NULL;
    }
    l->loop = loop;
    l->http = http;
    breaker_config_default(&l->breaker_cfg);
    if (llm_apply(l, cfg) < 0) {
        log_warnx("llm: out of memory");
        if (l->handles == 0) {
            free(l->system_prompt);
            free(l);
        } else {
            l->freeing = 1; /* freed by the last close callback */
        }
        return NULL;
    }
    return l;
}

int
llm_configure(struct llm *l, const struct config *cfg)
{
    if (llm_apply(l, cfg) < 0) {
        log_warnx("llm reload failed: out of memory; the old models stay");
        return -1;
    }
    llm_reroute_gone(l);
    for (struct model *m = l->gone, *next; m != NULL; m = next) {
        next = m->gone_next;
        m->refs++;
        model_unref(m); /* frees it now if nobody holds it */
    }
    for (size_t i = 0; i < l->nmodels; i++)
        model_dispatch(l->models[i]); /* new rates may let heads go */
    log_info("llm configured models=%zu route=%zu", l->nmodels, l->norder);
    return 0;
}

void
llm_set_breaker(struct llm *l, const struct breaker_config *cfg)
{
    l->breaker_cfg = *cfg;
    for (size_t i = 0; i < l->nmodels; i++)
        breaker_configure(&l->models[i]->breaker, cfg);
}

static int
ask_copy(struct llm_call *c, const struct llm *l, const struct llm_ask *a)
{
    const char *sys = a->system != NULL ? a->system : l->system_prompt;
    size_t total = strlen(sys) + 1, off;

    for (size_t i = 0; i < a->nmessages; i++)
        total += strlen(a->messages[i].text) + 1;
    c->blob = malloc(total);
    c->msgs = calloc(a->nmessages, sizeof(*c->msgs));
    c->msg_tokens = calloc(a->nmessages, sizeof(*c->msg_tokens));
    if (c->blob == NULL || c->msgs == NULL || c->msg_tokens == NULL)
        return -1;
    off = strlen(sys) + 1;
    memcpy(c->blob, sys, off);
    c->system = c->blob;
    c->sys_tokens = sys[0] != '\0' ? LLM_TOKENS_PER_MESSAGE +
                                         llm_estimate_tokens(sys, strlen(sys))
                                   : 0;
    for (size_t i = 0; i < a->nmessages; i++) {
        size_t n = strlen(a->messages[i].text) + 1;

        memcpy(c->blob + off, a->messages[i].text, n);
        c->msgs[i].role = a->messages[i].role;
        c->msgs[i].text = c->blob + off;
        c->msg_tokens[i] =
            LLM_TOKENS_PER_MESSAGE + llm_estimate_tokens(c->blob + off, n - 1);
        off += n;
    }
    c->nmsgs = a->nmessages;
    return 0;
}

struct llm_call *
llm_ask(struct llm *l, const struct llm_ask *req, llm_done_fn done, void *arg)
{
    struct llm_call *c = NULL;
    int64_t now = llm_now();

    if (l == NULL || l->freeing || req == NULL || done == NULL ||
        req->messages == NULL || req->nmessages == 0 ||
        req->nmessages > LLM_ASK_MESSAGES_MAX) {
        log_warnx("llm ask refused: invalid");
        goto fail;
    }
    for (size_t i = 0; i < req->nmessages; i++) {
        if (req->messages[i].text == NULL) {
            log_warnx("llm ask refused: message %zu has no text", i);
            goto fail;
        }
    }
    if (l->ncalls >= LLM_CALLS_MAX) {
        log_warnx("llm ask refused: %d asks active", LLM_CALLS_MAX);
        goto fail;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || ask_copy(c, l, req) < 0) {
        log_warnx("llm ask refused: out of memory");
        goto fail;
    }
    c->l = l;
    c->done = done;
    c->arg = arg;
    c->partial = req->partial;
    c->key = -1;
    c->max_tokens =
        req->max_tokens > 0 ? req->max_tokens : l->max_output_tokens;
    if (c->max_tokens <= 0)
        c->max_tokens = 1024;
    if (req->model != NULL)
        snprintf(c->preferred, sizeof(c->preferred), "%s", req->model);
    c->start_ms = now - min64(max64(req->age_ms, 0), AGE_MAX_MS);
    /* give_up_after runs from the request's start.  An ask whose time is
     * already over (a job resumed after its give_up_after, or
     * give_up_after = 0) still gets one attempt of up to [llm] timeout:
     * its first failure ends it (retry_decide: no time left) with the
     * reply naming the cause, instead of a reply that never asked */
    c->deadline_ms = c->start_ms + max64(l->give_up_after_ms, 0);
    if (c->deadline_ms <= now)
        c->deadline_ms = now + l->timeout_ms;
    c->phase = PH_START;
    uv_timer_init(l->loop, &c->timer);
    c->timer.data = c;
    l->handles++;
    c->all_next = l->calls;
    if (l->calls != NULL)
        l->calls->all_prev = c;
    l->calls = c;
    l->ncalls++;
    l->st.asks++;
    call_arm(c, 0); /* routed on the next loop turn: done never runs here */
    return c;
fail:
    if (l != NULL)
        l->st.refused++;
    if (c != NULL) {
        free(c->blob);
        free(c->msgs);
        free(c->msg_tokens);
        free(c->refused);
        free(c);
    }
    return NULL;
}

void
llm_cancel(struct llm_call *c)
{
    struct llm *l;
    struct model *m;

    if (c == NULL || c->phase == PH_DONE)
        return;
    l = c->l;
    m = c->m;
    l->st.cancelled++;
    if (m != NULL)
        model_ref(m);
    call_release(c);
    if (m != NULL) {
        /* it may have been the head of m's queue, or the probe: the next
         * one may go now */
        model_dispatch(m);
        model_unref(m);
    }
}

void
llm_free(struct llm *l)
{
    if (l == NULL || l->freeing)
        return;
    l->freeing = 1;
    l->handles++; /* held until the end of this function */
    for (struct llm_call *c = l->calls, *next; c != NULL; c = next) {
        next = c->all_next;
        /* a call whose done is running is released when done returns */
        if (c->phase == PH_DONE)
            continue;
        l->st.cancelled++;
        c->phase = PH_DONE;
        call_release(c);
    }
    for (size_t i = 0; i < l->nmodels; i++)
        model_close(l->models[i]);
    while (l->gone != NULL) {
        struct model *m = l->gone;

        l->gone = m->gone_next;
        model_close(m);
    }
    llm_handle_closed(l);
}

void
llm_stats(const struct llm *l, struct llm_stats *out)
{
    int64_t now = llm_now();

    *out = l->st;
    out->active = l->ncalls;
    out->nmodels =
        l->nmodels < CONFIG_MODELS_MAX ? l->nmodels : CONFIG_MODELS_MAX;
    for (size_t i = 0; i < out->nmodels; i++) {
        const struct model *m = l->models[i];
        struct llm_model_stats *s = &out->models[i];

        *s = m->st;
        s->breaker = breaker_state(&m->breaker, now);
        s->breaker_opens = m->breaker.opens;
        s->pacer_factor_pm = pacer_factor_pm(&m->pacer, now);
        s->queued = m->retry.n + m->fresh.n;
        s->in_flight = m->in_flight;
    }
}
