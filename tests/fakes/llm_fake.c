/* llm_fake: a fake OpenAI + Anthropic API with rate buckets and scripted
 * faults. */
#include "tests/fakes/llm_fake.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "llm/codec.h"

#define NAME_MAX_ 64
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A continuously refilled bucket: the providers' rpm/tpm shape. */
struct bucket {
    double level;  /* units available */
    int64_t cap;   /* = per-minute limit; 0 = unlimited */
    int64_t at_ms; /* level is as of this time */
};

struct lf_model {
    char name[NAME_MAX_];
    struct llm_fake_model conf;
    struct bucket req, tok;
    int has_default;
    struct llm_fake_fault def;
    char *def_text;
};

struct lf_key {
    char *key;
    enum llm_fake_key_state state;
};

struct lf_script {
    char model[NAME_MAX_]; /* "" = any model */
    struct llm_fake_fault f;
    char *text;
};

struct llm_fake {
    struct fake *fake;
    int latency_ms;
    struct lf_model models[LLM_FAKE_MODELS_MAX];
    size_t nmodels;
    struct lf_model dflt; /* unknown models: no limits */
    struct lf_key keys[LLM_FAKE_KEYS_MAX];
    size_t nkeys;
    struct lf_script *script; /* FIFO in an array, LLM_FAKE_SCRIPT_MAX */
    size_t nscript;
    struct llm_fake_entry *log;
    size_t nlog, caplog;
    struct llm_fake_stats stats;
    uint64_t next_id;
    struct llm_fake_stream stream;
};

static const char *const kind_names[LLM_FAKE_KIND_COUNT] = {
    "ok",      "429",        "quota",        "auth",       "context",
    "status",  "hang",       "close",        "malformed",  "truncated",
    "partial", "stream_cut", "stream_error", "stream_end",
};

static const char *const after_names[LLM_FAKE_AFTER_COUNT] = {
    "none", "seconds",        "float",        "http_date",
    "ms",   "reset_requests", "reset_tokens", "anthropic_reset",
};

const char *
llm_fake_kind_name(enum llm_fake_kind k)
{
    return (unsigned)k < LLM_FAKE_KIND_COUNT ? kind_names[k] : "?";
}

int
llm_fake_kind_parse(const char *s)
{
    for (int i = 0; s != NULL && i < LLM_FAKE_KIND_COUNT; i++)
        if (strcmp(s, kind_names[i]) == 0)
            return i;
    return -1;
}

const char *
llm_fake_after_name(enum llm_fake_after a)
{
    return (unsigned)a < LLM_FAKE_AFTER_COUNT ? after_names[a] : "?";
}

int
llm_fake_after_parse(const char *s)
{
    for (int i = 0; s != NULL && i < LLM_FAKE_AFTER_COUNT; i++)
        if (strcmp(s, after_names[i]) == 0)
            return i;
    return -1;
}

/* ---- buckets ------------------------------------------------------------ */

static void
bucket_set(struct bucket *b, int64_t cap, int64_t now)
{
    b->cap = cap;
    b->level = (double)cap;
    b->at_ms = now;
}

static void
bucket_refill(struct bucket *b, int64_t now)
{
    if (b->cap <= 0)
        return;
    if (now > b->at_ms) {
        b->level += (double)(now - b->at_ms) * (double)b->cap / 60000.0;
        if (b->level > (double)b->cap)
            b->level = (double)b->cap;
    }
    b->at_ms = now;
}

/* ms until n units are available (0 = now); -1 if never (n > cap). */
static int64_t
bucket_wait(const struct bucket *b, double n)
{
    if (b->cap <= 0 || b->level >= n)
        return 0;
    if (n > (double)b->cap)
        return -1;
    return (int64_t)ceil((n - b->level) * 60000.0 / (double)b->cap);
}

/* ms until the bucket is full again (what x-ratelimit-reset-* means). */
static int64_t
bucket_full_in(const struct bucket *b)
{
    return bucket_wait(b, (double)b->cap);
}

/* ---- lookups ------------------------------------------------------------ */

static struct lf_model *
model_find(struct llm_fake *lf, const char *name, int create)
{
    for (size_t i = 0; i < lf->nmodels; i++)
        if (strcmp(lf->models[i].name, name) == 0)
            return &lf->models[i];
    if (!create || lf->nmodels == LLM_FAKE_MODELS_MAX ||
        strlen(name) >= NAME_MAX_)
        return NULL;
    struct lf_model *m = &lf->models[lf->nmodels++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    return m;
}

static enum llm_fake_key_state
key_state(const struct llm_fake *lf, const char *key)
{
    for (size_t i = 0; i < lf->nkeys; i++)
        if (strcmp(lf->keys[i].key, key) == 0)
            return lf->keys[i].state;
    return LLM_FAKE_KEY_OK;
}

/* ---- public setup ------------------------------------------------------- */

void
llm_fake_set_latency(struct llm_fake *lf, int delay_ms)
{
    lf->latency_ms = delay_ms < 0 ? 0 : delay_ms;
}

int
llm_fake_set_model(struct llm_fake *lf, const char *model,
                   const struct llm_fake_model *conf)
{
    struct lf_model *m;
    int64_t now = fake_now_ms();

    if (model == NULL || conf == NULL)
        return -1;
    m = model_find(lf, model, 1);
    if (m == NULL)
        return -1;
    m->conf = *conf;
    bucket_set(&m->req, conf->rpm, now);
    bucket_set(&m->tok, conf->tpm, now);
    return 0;
}

int
llm_fake_set_key(struct llm_fake *lf, const char *key,
                 enum llm_fake_key_state state)
{
    char *k;

    if (key == NULL)
        return -1;
    for (size_t i = 0; i < lf->nkeys; i++) {
        if (strcmp(lf->keys[i].key, key) == 0) {
            lf->keys[i].state = state;
            return 0;
        }
    }
    if (lf->nkeys == LLM_FAKE_KEYS_MAX || (k = strdup(key)) == NULL)
        return -1;
    lf->keys[lf->nkeys].key = k;
    lf->keys[lf->nkeys].state = state;
    lf->nkeys++;
    return 0;
}

int
llm_fake_script(struct llm_fake *lf, const char *model,
                const struct llm_fake_fault *f)
{
    struct lf_script *s;

    if (f == NULL || (unsigned)f->kind >= LLM_FAKE_KIND_COUNT ||
        lf->nscript == LLM_FAKE_SCRIPT_MAX ||
        (model != NULL && strlen(model) >= NAME_MAX_))
        return -1;
    s = &lf->script[lf->nscript];
    memset(s, 0, sizeof(*s));
    snprintf(s->model, sizeof(s->model), "%s", model ? model : "");
    s->f = *f;
    if (f->text != NULL && (s->text = strdup(f->text)) == NULL)
        return -1;
    s->f.text = s->text;
    lf->nscript++;
    return 0;
}

int
llm_fake_set_default(struct llm_fake *lf, const char *model,
                     const struct llm_fake_fault *f)
{
    struct lf_model *m;
    char *text = NULL;

    if (model == NULL)
        return -1;
    m = model_find(lf, model, f != NULL);
    if (m == NULL)
        return f == NULL ? 0 : -1;
    if (f != NULL && (unsigned)f->kind >= LLM_FAKE_KIND_COUNT)
        return -1;
    if (f != NULL && f->text != NULL && (text = strdup(f->text)) == NULL)
        return -1;
    free(m->def_text);
    m->def_text = text;
    m->has_default = f != NULL;
    if (f != NULL) {
        m->def = *f;
        m->def.text = text;
    }
    return 0;
}

size_t
llm_fake_script_pending(const struct llm_fake *lf)
{
    return lf->nscript;
}

size_t
llm_fake_log_size(const struct llm_fake *lf)
{
    return lf->nlog;
}

const struct llm_fake_entry *
llm_fake_log_get(const struct llm_fake *lf, size_t i)
{
    return i < lf->nlog ? &lf->log[i] : NULL;
}

size_t
llm_fake_log_count(const struct llm_fake *lf, const char *model, int status)
{
    size_t n = 0;

    for (size_t i = 0; i < lf->nlog; i++)
        if ((model == NULL || strcmp(lf->log[i].model, model) == 0) &&
            (status == 0 || lf->log[i].status == status))
            n++;
    return n;
}

void
llm_fake_stats(const struct llm_fake *lf, struct llm_fake_stats *out)
{
    *out = lf->stats;
}

static void
script_clear(struct llm_fake *lf)
{
    for (size_t i = 0; i < lf->nscript; i++)
        free(lf->script[i].text);
    lf->nscript = 0;
}

void
llm_fake_reset(struct llm_fake *lf)
{
    int64_t now = fake_now_ms();

    script_clear(lf);
    for (size_t i = 0; i < lf->nmodels; i++) {
        struct lf_model *m = &lf->models[i];
        free(m->def_text);
        m->def_text = NULL;
        m->has_default = 0;
        bucket_set(&m->req, m->conf.rpm, now);
        bucket_set(&m->tok, m->conf.tpm, now);
    }
    lf->nlog = 0;
    memset(&lf->stats, 0, sizeof(lf->stats));
}

/* ---- header formats ----------------------------------------------------- */

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Go's time.Duration.String() for whole ms: "12ms", "1.5s", "6m0s". */
static void
go_duration(char *dst, size_t cap, int64_t ms)
{
    int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60,
            frac = ms % 1000;
    char sec[32];
    int n;

    if (ms < 1000) {
        snprintf(dst, cap, "%" PRId64 "ms", ms);
        return;
    }
    n = snprintf(sec, sizeof(sec), "%" PRId64, s);
    if (frac) {
        snprintf(sec + n, sizeof(sec) - (size_t)n, ".%03" PRId64, frac);
        for (n = (int)strlen(sec); sec[n - 1] == '0'; n--)
            sec[n - 1] = '\0';
    }
    if (h)
        snprintf(dst, cap, "%" PRId64 "h%" PRId64 "m%ss", h, m, sec);
    else if (m)
        snprintf(dst, cap, "%" PRId64 "m%ss", m, sec);
    else
        snprintf(dst, cap, "%ss", sec);
}

static void
http_date(char *dst, size_t cap, int64_t wall)
{
    time_t t = (time_t)wall;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(dst, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void
rfc3339_ms(char *dst, size_t cap, int64_t wall_ms_)
{
    time_t t = (time_t)(wall_ms_ / 1000);
    unsigned ms = (unsigned)(wall_ms_ % 1000) % 1000u;
    struct tm tm;
    char s[24];

    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(dst, cap, "%.23s.%03uZ", s, ms);
}

/* Appends "Name: value\r\n" for the wait header form a of after_ms. */
static size_t
wait_header(char *dst, size_t cap, enum llm_fake_after a, int64_t after_ms)
{
    char v[64];
    int n = 0;

    if (after_ms < 0)
        after_ms = 0;
    switch (a) {
    case LLM_FAKE_AFTER_NONE:
    case LLM_FAKE_AFTER_COUNT:
        return 0;
    case LLM_FAKE_AFTER_SECONDS:
        n = snprintf(dst, cap, "retry-after: %" PRId64 "\r\n",
                     (after_ms + 999) / 1000);
        break;
    case LLM_FAKE_AFTER_FLOAT:
        n = snprintf(dst, cap, "retry-after: %" PRId64 ".%03" PRId64 "\r\n",
                     after_ms / 1000, after_ms % 1000);
        break;
    case LLM_FAKE_AFTER_HTTP_DATE:
        /* a date has whole seconds: rounded up, so never earlier */
        http_date(v, sizeof(v), (wall_ms() + after_ms + 999) / 1000);
        n = snprintf(dst, cap, "retry-after: %s\r\n", v);
        break;
    case LLM_FAKE_AFTER_MS:
        n = snprintf(dst, cap, "retry-after-ms: %" PRId64 "\r\n", after_ms);
        break;
    case LLM_FAKE_AFTER_RESET_REQUESTS:
        go_duration(v, sizeof(v), after_ms);
        n = snprintf(dst, cap, "x-ratelimit-reset-requests: %s\r\n", v);
        break;
    case LLM_FAKE_AFTER_RESET_TOKENS:
        go_duration(v, sizeof(v), after_ms);
        n = snprintf(dst, cap, "x-ratelimit-reset-tokens: %s\r\n", v);
        break;
    case LLM_FAKE_AFTER_ANTHROPIC_RESET:
        rfc3339_ms(v, sizeof(v), wall_ms() + after_ms);
        n = snprintf(dst, cap, "anthropic-ratelimit-requests-reset: %s\r\n", v);
        break;
    }
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Appends the rate-limit state headers of a limited model. */
static size_t
limit_headers(char *dst, size_t cap, char api, const struct lf_model *m)
{
    char r1[64], r2[64];
    size_t o = 0;
    int n;

    if (m->req.cap > 0) {
        if (api == 'o') {
            go_duration(r1, sizeof(r1), bucket_full_in(&m->req));
            n = snprintf(dst + o, cap - o,
                         "x-ratelimit-limit-requests: %" PRId64
                         "\r\nx-ratelimit-remaining-requests: %" PRId64
                         "\r\nx-ratelimit-reset-requests: %s\r\n",
                         m->req.cap, (int64_t)m->req.level, r1);
        } else {
            rfc3339_ms(r1, sizeof(r1), wall_ms() + bucket_full_in(&m->req));
            n = snprintf(dst + o, cap - o,
                         "anthropic-ratelimit-requests-limit: %" PRId64
                         "\r\nanthropic-ratelimit-requests-remaining: %" PRId64
                         "\r\nanthropic-ratelimit-requests-reset: %s\r\n",
                         m->req.cap, (int64_t)m->req.level, r1);
        }
        if (n > 0 && (size_t)n < cap - o)
            o += (size_t)n;
    }
    if (m->tok.cap > 0) {
        if (api == 'o') {
            go_duration(r2, sizeof(r2), bucket_full_in(&m->tok));
            n = snprintf(dst + o, cap - o,
                         "x-ratelimit-limit-tokens: %" PRId64
                         "\r\nx-ratelimit-remaining-tokens: %" PRId64
                         "\r\nx-ratelimit-reset-tokens: %s\r\n",
                         m->tok.cap, (int64_t)m->tok.level, r2);
        } else {
            rfc3339_ms(r2, sizeof(r2), wall_ms() + bucket_full_in(&m->tok));
            n = snprintf(dst + o, cap - o,
                         "anthropic-ratelimit-tokens-limit: %" PRId64
                         "\r\nanthropic-ratelimit-tokens-remaining: %" PRId64
                         "\r\nanthropic-ratelimit-tokens-reset: %s\r\n",
                         m->tok.cap, (int64_t)m->tok.level, r2);
        }
        if (n > 0 && (size_t)n < cap - o)
            o += (size_t)n;
    }
    return o;
}

/* ---- request parsing ---------------------------------------------------- */

/* What the fake needs from a request body. */
struct parsed {
    json_object *root;
    int stream;       /* "stream": true */
    int stream_usage; /* "stream_options": {"include_usage": true} */
    const char *model;
    const char *last_user; /* borrowed from root */
    int64_t max_tokens;
    int64_t prompt_tokens;
};

/* Text of a message content: a string, or the text parts of an array. */
static const char *
content_text(json_object *c, int64_t *tokens)
{
    const char *last = NULL;

    if (json_object_is_type(c, json_type_string)) {
        *tokens += llm_estimate_tokens(json_object_get_string(c),
                                       (size_t)json_object_get_string_len(c));
        return json_object_get_string(c);
    }
    if (json_object_is_type(c, json_type_array)) {
        size_t n = json_object_array_length(c);
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(c, i), *t;
            if (json_object_object_get_ex(p, "text", &t) &&
                json_object_is_type(t, json_type_string)) {
                *tokens +=
                    llm_estimate_tokens(json_object_get_string(t),
                                        (size_t)json_object_get_string_len(t));
                last = json_object_get_string(t);
            }
        }
    }
    return last;
}

static int
parse_request(const struct fake_request *req, struct parsed *p)
{
    json_tokener *tok;
    json_object *v, *msgs;

    memset(p, 0, sizeof(*p));
    if (req->body == NULL)
        return -1;
    tok = json_tokener_new_ex(64);
    if (tok == NULL)
        return -1;
    p->root = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    json_tokener_free(tok);
    if (p->root == NULL || !json_object_is_type(p->root, json_type_object) ||
        !json_object_object_get_ex(p->root, "model", &v) ||
        !json_object_is_type(v, json_type_string))
        return -1;
    p->model = json_object_get_string(v);
    if (json_object_object_get_ex(p->root, "stream", &v) &&
        json_object_is_type(v, json_type_boolean))
        p->stream = json_object_get_boolean(v);
    if (json_object_object_get_ex(p->root, "stream_options", &v) &&
        json_object_object_get_ex(v, "include_usage", &v) &&
        json_object_is_type(v, json_type_boolean))
        p->stream_usage = json_object_get_boolean(v);
    if (json_object_object_get_ex(p->root, "max_tokens", &v) ||
        json_object_object_get_ex(p->root, "max_completion_tokens", &v))
        p->max_tokens = json_object_get_int64(v);
    p->prompt_tokens = LLM_TOKENS_PER_REQUEST;
    if (json_object_object_get_ex(p->root, "system", &v)) {
        p->prompt_tokens += LLM_TOKENS_PER_MESSAGE;
        content_text(v, &p->prompt_tokens);
    }
    if (json_object_object_get_ex(p->root, "messages", &msgs) &&
        json_object_is_type(msgs, json_type_array)) {
        size_t n = json_object_array_length(msgs);
        for (size_t i = 0; i < n; i++) {
            json_object *m = json_object_array_get_idx(msgs, i), *r, *c;
            const char *text = NULL;
            p->prompt_tokens += LLM_TOKENS_PER_MESSAGE;
            if (json_object_object_get_ex(m, "content", &c))
                text = content_text(c, &p->prompt_tokens);
            if (text != NULL && json_object_object_get_ex(m, "role", &r) &&
                json_object_is_type(r, json_type_string) &&
                strcmp(json_object_get_string(r), "user") == 0)
                p->last_user = text;
        }
    }
    return 0;
}

/* The key of a request: Bearer token or x-api-key; "" if none. */
static const char *
request_key(const struct fake_request *req, char api)
{
    const char *k;

    if (api == 'a') {
        k = fake_request_header(req, "x-api-key");
        return k ? k : "";
    }
    k = fake_request_header(req, "authorization");
    if (k == NULL || strncmp(k, "Bearer ", 7) != 0)
        return "";
    return k + 7;
}

/* ---- replies ------------------------------------------------------------ */

/* json-c serialisation copied into the fake's per-reply storage. */
static const char *
emit(struct fake *f, json_object *o)
{
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_FLAGS, &len);
    return s ? fake_printf(f, "%.*s", (int)len, s) : NULL;
}

static json_object *
openai_error(const char *msg, const char *type, const char *param,
             const char *code)
{
    json_object *root = json_object_new_object(), *e = json_object_new_object();

    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "param",
                           param ? json_object_new_string(param) : NULL);
    json_object_object_add(e, "code",
                           code ? json_object_new_string(code) : NULL);
    json_object_object_add(root, "error", e);
    return root;
}

static json_object *
anthropic_error(const char *type, const char *msg)
{
    json_object *root = json_object_new_object(), *e = json_object_new_object();

    json_object_object_add(root, "type", json_object_new_string("error"));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(root, "error", e);
    return root;
}

/* Error reply of kind k in the api's form; status written to *status. */
static json_object *
error_body(char api, enum llm_fake_kind k, int st, const struct parsed *p,
           const struct lf_model *m, int *status)
{
    char msg[512];
    int64_t want = p->prompt_tokens + p->max_tokens;

    switch (k) {
    case LLM_FAKE_429:
        *status = 429;
        if (api == 'o') {
            snprintf(msg, sizeof(msg),
                     "Rate limit reached for %s in organization org-fake on "
                     "requests per min (RPM): Limit %" PRId64 ", Used %" PRId64
                     ", Requested 1.",
                     p->model ? p->model : "?", m->req.cap, m->req.cap);
            return openai_error(msg, "requests", NULL, "rate_limit_exceeded");
        }
        if (m->req.cap > 0)
            snprintf(msg, sizeof(msg),
                     "This request would exceed the rate limit for your "
                     "organization of %" PRId64 " requests per minute.",
                     m->req.cap);
        else
            snprintf(msg, sizeof(msg),
                     "This request would exceed your "
                     "organization's rate limit.");
        return anthropic_error("rate_limit_error", msg);
    case LLM_FAKE_QUOTA:
        if (api == 'o') {
            *status = 429;
            return openai_error(
                "You exceeded your current quota, please check your plan "
                "and billing details.",
                "insufficient_quota", NULL, "insufficient_quota");
        }
        *status = 400;
        return anthropic_error(
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. "
            "Please go to Plans & Billing to upgrade or purchase credits.");
    case LLM_FAKE_AUTH:
        *status = 401;
        if (api == 'o')
            return openai_error("Incorrect API key provided.",
                                "invalid_request_error", NULL,
                                "invalid_api_key");
        return anthropic_error("authentication_error", "invalid x-api-key");
    case LLM_FAKE_CONTEXT:
        *status = 400;
        if (api == 'o') {
            snprintf(msg, sizeof(msg),
                     "This model's maximum context length is %" PRId64
                     " tokens. However, you requested %" PRId64
                     " tokens (%" PRId64 " in the messages, %" PRId64
                     " in the completion). Please reduce the length of the "
                     "messages or completion.",
                     m->conf.context_window, want, p->prompt_tokens,
                     p->max_tokens);
            return openai_error(msg, "invalid_request_error", "messages",
                                "context_length_exceeded");
        }
        snprintf(msg, sizeof(msg),
                 "prompt is too long: %" PRId64 " tokens > %" PRId64 " maximum",
                 want, m->conf.context_window);
        return anthropic_error("invalid_request_error", msg);
    default:
        break;
    }
    /* LLM_FAKE_STATUS */
    *status = st ? st : 503;
    if (api == 'o') {
        const char *txt =
            *status == 503
                ? "The engine is currently overloaded, please try again later."
                : "The server had an error while processing your request.";
        return openai_error(txt, *status == 408 ? "timeout" : "server_error",
                            NULL, NULL);
    }
    if (*status == 529)
        return anthropic_error("overloaded_error", "Overloaded");
    if (*status == 408)
        return anthropic_error("timeout_error", "Request timed out");
    return anthropic_error("api_error", "Internal server error");
}

/* The answer's length and tokens under max_tokens (cut at a character),
 * and the finish reason that says whether it was cut. */
static int64_t
answer_fit(char api, const struct parsed *p, const char *text, size_t *lenp,
           const char **finish)
{
    size_t len = strlen(text);
    int64_t ct = llm_estimate_tokens(text, len);

    *finish = api == 'o' ? "stop" : "end_turn";
    if (p->max_tokens > 0 && ct > p->max_tokens) {
        *finish = api == 'o' ? "length" : "max_tokens";
        while (len > 0 && llm_estimate_tokens(text, len) > p->max_tokens) {
            len--;
            while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
                len--;
        }
        ct = llm_estimate_tokens(text, len);
    }
    *lenp = len;
    return ct;
}

static json_object *
ok_body(struct llm_fake *lf, char api, const struct parsed *p, const char *text,
        int64_t *completion)
{
    json_object *root = json_object_new_object();
    char id[48];
    const char *finish;
    size_t len;
    int64_t ct = answer_fit(api, p, text, &len, &finish);

    *completion = ct;
    lf->next_id++;
    if (api == 'o') {
        json_object *ch = json_object_new_array(),
                    *c0 = json_object_new_object(),
                    *msg = json_object_new_object(),
                    *u = json_object_new_object();
        snprintf(id, sizeof(id), "chatcmpl-fake%" PRIu64, lf->next_id);
        json_object_object_add(root, "id", json_object_new_string(id));
        json_object_object_add(root, "object",
                               json_object_new_string("chat.completion"));
        json_object_object_add(root, "created",
                               json_object_new_int64(wall_ms() / 1000));
        json_object_object_add(root, "model", json_object_new_string(p->model));
        json_object_object_add(c0, "index", json_object_new_int(0));
        json_object_object_add(msg, "role",
                               json_object_new_string("assistant"));
        json_object_object_add(msg, "content",
                               json_object_new_string_len(text, (int)len));
        json_object_object_add(c0, "message", msg);
        json_object_object_add(c0, "finish_reason",
                               json_object_new_string(finish));
        json_object_array_add(ch, c0);
        json_object_object_add(root, "choices", ch);
        json_object_object_add(u, "prompt_tokens",
                               json_object_new_int64(p->prompt_tokens));
        json_object_object_add(u, "completion_tokens",
                               json_object_new_int64(ct));
        json_object_object_add(u, "total_tokens",
                               json_object_new_int64(p->prompt_tokens + ct));
        json_object_object_add(root, "usage", u);
    } else {
        json_object *content = json_object_new_array(),
                    *blk = json_object_new_object(),
                    *u = json_object_new_object();
        snprintf(id, sizeof(id), "msg_fake%" PRIu64, lf->next_id);
        json_object_object_add(root, "id", json_object_new_string(id));
        json_object_object_add(root, "type", json_object_new_string("message"));
        json_object_object_add(root, "role",
                               json_object_new_string("assistant"));
        json_object_object_add(root, "model", json_object_new_string(p->model));
        json_object_object_add(blk, "type", json_object_new_string("text"));
        json_object_object_add(blk, "text",
                               json_object_new_string_len(text, (int)len));
        json_object_array_add(content, blk);
        json_object_object_add(root, "content", content);
        json_object_object_add(root, "stop_reason",
                               json_object_new_string(finish));
        json_object_object_add(root, "stop_sequence", NULL);
        json_object_object_add(u, "input_tokens",
                               json_object_new_int64(p->prompt_tokens));
        json_object_object_add(u, "output_tokens", json_object_new_int64(ct));
        json_object_object_add(root, "usage", u);
    }
    return root;
}

/* ---- streamed replies --------------------------------------------------- */

/* An SSE body being built, with where each event ends. */
struct sse_out {
    char *buf;
    size_t len, cap;
    size_t *ends;
    size_t nends, capends;
    int oom;
};

static void
out_add(struct sse_out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        char *b;
        while (cap < o->len + n + 1)
            cap *= 2;
        if ((b = realloc(o->buf, cap)) == NULL) {
            o->oom = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void
out_str(struct sse_out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

/* A JSON string's content (no quotes). */
static void
out_json(struct sse_out *o, const char *s, size_t n)
{
    size_t need = fake_json_escape(NULL, 0, s, n);
    char *e = malloc(need + 1);

    if (e == NULL) {
        o->oom = 1;
        return;
    }
    fake_json_escape(e, need + 1, s, n);
    out_add(o, e, need);
    free(e);
}

/* The end of an event: "\n\n", and its place noted. */
static void
out_end(struct sse_out *o)
{
    out_str(o, "\n\n");
    if (o->oom)
        return;
    if (o->nends == o->capends) {
        size_t cap = o->capends ? o->capends * 2 : 64;
        size_t *e = realloc(o->ends, cap * sizeof(*e));
        if (e == NULL) {
            o->oom = 1;
            return;
        }
        o->ends = e;
        o->capends = cap;
    }
    o->ends[o->nends++] = o->len;
}

/* The opening of an OpenAI chunk up to "choices":[ */
static void
oa_head(struct sse_out *o, const char *id, const char *model)
{
    char num[32];

    out_str(o, "data: {\"id\":\"");
    out_str(o, id);
    out_str(o, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    snprintf(num, sizeof(num), "%" PRId64, wall_ms() / 1000);
    out_str(o, num);
    out_str(o, ",\"model\":\"");
    out_json(o, model, strlen(model));
    out_str(o, "\",\"choices\":[");
}

/* One text event of n bytes of text. */
static void
out_delta(struct sse_out *o, char api, const char *id, const char *model,
          const char *t, size_t n)
{
    if (api == 'o') {
        oa_head(o, id, model);
        out_str(o, "{\"index\":0,\"delta\":{\"content\":\"");
        out_json(o, t, n);
        out_str(o, "\"},\"finish_reason\":null}],\"usage\":null}");
    } else {
        out_str(o, "event: content_block_delta\ndata: {\"type\":"
                   "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":\"");
        out_json(o, t, n);
        out_str(o, "\"}}");
    }
    out_end(o);
}

static void
out_error(struct sse_out *o, char api)
{
    if (api == 'o')
        out_str(o, "data: {\"error\":{\"message\":\"The server had an error "
                   "while processing your request.\",\"type\":"
                   "\"server_error\",\"param\":null,\"code\":null}}");
    else
        out_str(o, "event: error\ndata: {\"type\":\"error\",\"error\":{"
                   "\"type\":\"overloaded_error\",\"message\":"
                   "\"Overloaded\"}}");
    out_end(o);
}

/* The whole stream of an answer, in the api's shape. */
static void
out_stream(struct llm_fake *lf, struct sse_out *o, char api,
           const struct parsed *p, const char *text, int64_t *completion)
{
    const char *finish;
    size_t len, i = 0;
    int64_t ct = answer_fit(api, p, text, &len, &finish);
    int per = lf->stream.tokens_per_event > 0 ? lf->stream.tokens_per_event : 1;
    char id[48], num[128];

    *completion = ct;
    lf->next_id++;
    if (api == 'o') {
        snprintf(id, sizeof(id), "chatcmpl-fake%" PRIu64, lf->next_id);
        oa_head(o, id, p->model);
        out_str(o,
                "{\"index\":0,\"delta\":{\"role\":\"assistant\","
                "\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}");
        out_end(o);
    } else {
        snprintf(id, sizeof(id), "msg_fake%" PRIu64, lf->next_id);
        out_str(o, "event: message_start\ndata: {\"type\":\"message_start\","
                   "\"message\":{\"id\":\"");
        out_str(o, id);
        out_str(o, "\",\"type\":\"message\",\"role\":\"assistant\","
                   "\"content\":[],\"model\":\"");
        out_json(o, p->model, strlen(p->model));
        snprintf(num, sizeof(num),
                 "\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
                 "\"input_tokens\":%" PRId64 ",\"output_tokens\":1}}}",
                 p->prompt_tokens);
        out_str(o, num);
        out_end(o);
        out_str(o, "event: content_block_start\ndata: {\"type\":"
                   "\"content_block_start\",\"index\":0,\"content_block\":{"
                   "\"type\":\"text\",\"text\":\"\"}}");
        out_end(o);
        out_str(o, "event: ping\ndata: {\"type\": \"ping\"}");
        out_end(o);
    }
    /* tokens: blanks then a word; `per` of them per event */
    while (i < len) {
        size_t start = i;
        for (int k = 0; k < per && i < len; k++) {
            while (i < len && (text[i] == ' ' || text[i] == '\n'))
                i++;
            while (i < len && text[i] != ' ' && text[i] != '\n')
                i++;
        }
        out_delta(o, api, id, p->model, text + start, i - start);
    }
    if (api == 'o') {
        oa_head(o, id, p->model);
        out_str(o, "{\"index\":0,\"delta\":{},\"finish_reason\":\"");
        out_str(o, finish);
        out_str(o, "\"}],\"usage\":null}");
        out_end(o);
        if (p->stream_usage) {
            oa_head(o, id, p->model);
            snprintf(num, sizeof(num),
                     "],\"usage\":{\"prompt_tokens\":%" PRId64
                     ",\"completion_tokens\":%" PRId64
                     ",\"total_tokens\":%" PRId64 "}}",
                     p->prompt_tokens, ct, p->prompt_tokens + ct);
            out_str(o, num);
            out_end(o);
        }
        out_str(o, "data: [DONE]");
        out_end(o);
    } else {
        out_str(o, "event: content_block_stop\ndata: {\"type\":"
                   "\"content_block_stop\",\"index\":0}");
        out_end(o);
        out_str(o, "event: message_delta\ndata: {\"type\":\"message_delta\","
                   "\"delta\":{\"stop_reason\":\"");
        out_str(o, finish);
        snprintf(num, sizeof(num),
                 "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":"
                 "%" PRId64 "}}",
                 ct);
        out_str(o, num);
        out_end(o);
        out_str(o, "event: message_stop\ndata: {\"type\":\"message_stop\"}");
        out_end(o);
    }
}

/* Pieces of o's first `len` bytes: by events or by chunk_bytes. */
static size_t
out_pieces(const struct llm_fake *lf, const struct sse_out *o, size_t len,
           size_t *pieces, size_t max)
{
    size_t n = 0, at = 0;
    int per = lf->stream.events_per_chunk > 0 ? lf->stream.events_per_chunk : 1;

    if (lf->stream.chunk_bytes > 0) {
        while (at < len && n < max) {
            size_t k = len - at < lf->stream.chunk_bytes
                           ? len - at
                           : lf->stream.chunk_bytes;
            pieces[n++] = k;
            at += k;
        }
        return n;
    }
    for (size_t e = 0; e < o->nends && o->ends[e] <= len && n < max;) {
        size_t last = e + (size_t)per - 1;
        if (last >= o->nends || o->ends[last] > len) {
            last = e;
            while (last + 1 < o->nends && o->ends[last + 1] <= len)
                last++;
        }
        pieces[n++] = o->ends[last] - at;
        at = o->ends[last];
        e = last + 1;
    }
    if (at < len && n < max)
        pieces[n++] = len - at;
    return n;
}

/*
 * A streamed reply into *resp (storage from the fake's scratch), with a
 * STREAM_* fault applied when f is one.  -1 when out of memory.
 */
static int
stream_reply(struct llm_fake *lf, char api, const struct parsed *p,
             const char *text, const struct llm_fake_fault *f,
             struct fake_response *resp, int64_t *completion)
{
    struct sse_out o;
    size_t *pieces, n, k, len, max;
    char *body;
    int rc = -1;

    memset(&o, 0, sizeof(o));
    out_stream(lf, &o, api, p, text, completion);
    if (o.oom)
        goto out;
    max = o.nends + 2 +
          (lf->stream.chunk_bytes > 0 ? o.len / lf->stream.chunk_bytes + 1 : 0);
    pieces = fake_alloc(lf->fake, max * sizeof(*pieces));
    if (pieces == NULL)
        goto out;
    len = o.len;
    n = out_pieces(lf, &o, len, pieces, max);
    k = lf->stream.fault_chunks > 0 ? (size_t)lf->stream.fault_chunks : n / 2;
    if (k >= n)
        k = n > 1 ? n - 1 : 0;
    if (f != NULL && f->kind == LLM_FAKE_STREAM_CUT) {
        resp->cut_after = k > 0 ? k : 1;
    } else if (f != NULL && (f->kind == LLM_FAKE_STREAM_ERROR ||
                             f->kind == LLM_FAKE_STREAM_END)) {
        /* the first k pieces, back to the last whole event */
        size_t cut = 0, e = 0;
        for (size_t i = 0; i < k; i++)
            cut += pieces[i];
        while (e < o.nends && o.ends[e] <= cut)
            e++;
        len = e > 0 ? o.ends[e - 1] : 0;
        o.len = len;
        o.nends = e;
        if (f->kind == LLM_FAKE_STREAM_ERROR)
            out_error(&o, api);
        if (o.oom)
            goto out;
        n = out_pieces(lf, &o, len, pieces, max);
        if (o.len > len && n < max)
            pieces[n++] = o.len - len; /* the error event alone */
        len = o.len;
    }
    body = fake_alloc(lf->fake, len + 1);
    if (body == NULL)
        goto out;
    memcpy(body, o.buf, len);
    resp->body = body;
    resp->body_len = len;
    resp->content_type = "text/event-stream";
    resp->pieces = pieces;
    resp->npieces = n;
    resp->piece_delay_ms = lf->stream.chunk_delay_ms;
    resp->on_piece = lf->stream.on_chunk;
    resp->piece_arg = lf->stream.arg;
    rc = 0;
out:
    free(o.buf);
    free(o.ends);
    return rc;
}

void
llm_fake_set_stream(struct llm_fake *lf, const struct llm_fake_stream *st)
{
    if (st == NULL)
        memset(&lf->stream, 0, sizeof(lf->stream));
    else
        lf->stream = *st;
}

static void
log_add(struct llm_fake *lf, const struct llm_fake_entry *e)
{
    if (lf->nlog == lf->caplog) {
        size_t cap = lf->caplog ? lf->caplog * 2 : 256;
        struct llm_fake_entry *n;
        if (cap > LLM_FAKE_LOG_MAX)
            cap = LLM_FAKE_LOG_MAX;
        if (lf->nlog == cap)
            return;
        n = realloc(lf->log, cap * sizeof(*n));
        if (n == NULL)
            return;
        lf->log = n;
        lf->caplog = cap;
    }
    lf->log[lf->nlog++] = *e;
}

/* The scripted fault for model, removed from the FIFO; 0 if none. */
static int
script_take(struct llm_fake *lf, const char *model, struct llm_fake_fault *f,
            char **text)
{
    for (size_t i = 0; i < lf->nscript; i++) {
        struct lf_script *s = &lf->script[i];
        if (s->model[0] != '\0' && strcmp(s->model, model) != 0)
            continue;
        *f = s->f;
        *text = s->text;
        memmove(s, s + 1, (lf->nscript - i - 1) * sizeof(*s));
        lf->nscript--;
        return 1;
    }
    return 0;
}

/* One request to either API. */
static int
serve(struct llm_fake *lf, char api, const struct fake_request *req,
      struct fake_response *resp)
{
    struct fake *f = lf->fake;
    struct parsed p;
    struct llm_fake_entry e;
    struct llm_fake_fault fault;
    struct lf_model *m;
    json_object *body = NULL;
    char hdr[2048], *script_text = NULL;
    size_t ho = 0;
    const char *key;
    int have_fault = 0, status = 200;
    int64_t now = fake_now_ms(), completion = 0;
    enum llm_fake_key_state ks;

    memset(&e, 0, sizeof(e));
    memset(&fault, 0, sizeof(fault));
    hdr[0] = '\0';
    e.t_ms = req->t_ms;
    e.api = api;
    e.done_ms = now;
    lf->stats.requests++;

    key = request_key(req, api);
    {
        size_t kl = strlen(key);
        snprintf(e.key4, sizeof(e.key4), "%s", kl > 4 ? key + kl - 4 : key);
    }

    if (parse_request(req, &p) != 0) {
        status = 400;
        body = api == 'o' ? openai_error("We could not parse the JSON body "
                                         "of your request.",
                                         "invalid_request_error", NULL, NULL)
                          : anthropic_error("invalid_request_error",
                                            "request body is not valid JSON "
                                            "with a model");
        e.kind = LLM_FAKE_STATUS;
        goto reply;
    }
    snprintf(e.model, sizeof(e.model), "%s", p.model);
    e.prompt_tokens = p.prompt_tokens;
    e.stream = p.stream;
    m = model_find(lf, p.model, 0);
    if (m == NULL)
        m = &lf->dflt;
    resp->delay_ms = lf->latency_ms + m->conf.latency_ms;

    ks = key[0] == '\0' ? LLM_FAKE_KEY_INVALID : key_state(lf, key);
    if (ks != LLM_FAKE_KEY_OK) {
        e.kind = ks == LLM_FAKE_KEY_INVALID ? LLM_FAKE_AUTH : LLM_FAKE_QUOTA;
        body = error_body(api, e.kind, 0, &p, m, &status);
        goto reply;
    }

    if (script_take(lf, p.model, &fault, &script_text))
        have_fault = 1;
    else if (m->has_default) {
        fault = m->def;
        have_fault = 1;
    }
    if (have_fault)
        lf->stats.scripted++;

    if (!have_fault) {
        double need_tok = (double)(p.prompt_tokens + p.max_tokens);
        int64_t w1, w2, w;
        bucket_refill(&m->req, now);
        bucket_refill(&m->tok, now);
        w1 = bucket_wait(&m->req, 1);
        w2 = bucket_wait(&m->tok, need_tok);
        if (w1 != 0 || w2 != 0) {
            /* the provider's answer: 429 with how long until it passes;
             * a request bigger than the whole tpm is never going to */
            e.kind = LLM_FAKE_429;
            e.from_bucket = 1;
            lf->stats.bucket_429++;
            body = error_body(api, LLM_FAKE_429, 0, &p, m, &status);
            w = w1 > w2 ? w1 : w2;
            if (w1 < 0 || w2 < 0)
                w = 60000;
            ho += wait_header(hdr + ho, sizeof(hdr) - ho,
                              LLM_FAKE_AFTER_SECONDS, w);
            ho += limit_headers(hdr + ho, sizeof(hdr) - ho, api, m);
            goto reply;
        }
        m->req.level -= m->req.cap > 0 ? 1 : 0;
        m->tok.level -= m->tok.cap > 0 ? need_tok : 0;
        if (m->conf.context_window > 0 &&
            p.prompt_tokens + p.max_tokens > m->conf.context_window) {
            e.kind = LLM_FAKE_CONTEXT;
            body = error_body(api, LLM_FAKE_CONTEXT, 0, &p, m, &status);
            goto reply;
        }
        fault.kind = LLM_FAKE_OK;
    }

    resp->delay_ms += fault.delay_ms;
    e.kind = fault.kind;
    /* a stream fault on a request that does not stream */
    if (!p.stream && fault.kind == LLM_FAKE_STREAM_CUT)
        fault.kind = LLM_FAKE_PARTIAL;
    else if (!p.stream && fault.kind == LLM_FAKE_STREAM_END)
        fault.kind = LLM_FAKE_TRUNCATED;
    else if (!p.stream && fault.kind == LLM_FAKE_STREAM_ERROR) {
        fault.kind = LLM_FAKE_STATUS;
        fault.status = api == 'a' ? 529 : 500;
    }
    switch (fault.kind) {
    case LLM_FAKE_OK:
    case LLM_FAKE_STREAM_CUT:
    case LLM_FAKE_STREAM_ERROR:
    case LLM_FAKE_STREAM_END: {
        const char *ans = fault.text;
        char *echo = NULL;
        int src;
        if (ans == NULL) {
            const char *u = p.last_user ? p.last_user : "";
            size_t n = strlen(u);
            echo = malloc(n + 7);
            if (echo == NULL)
                goto fail;
            memcpy(echo, "echo: ", 6);
            memcpy(echo + 6, u, n + 1);
            ans = echo;
        }
        if (p.stream) {
            src = stream_reply(lf, api, &p, ans,
                               fault.kind == LLM_FAKE_OK ? NULL : &fault, resp,
                               &completion);
            free(echo);
            if (src != 0)
                goto fail;
        } else {
            body = ok_body(lf, api, &p, ans, &completion);
            free(echo);
        }
        if (fault.kind == LLM_FAKE_OK)
            lf->stats.ok++;
        break;
    }
    case LLM_FAKE_429:
    case LLM_FAKE_QUOTA:
    case LLM_FAKE_AUTH:
    case LLM_FAKE_CONTEXT:
    case LLM_FAKE_STATUS:
        body = error_body(api, fault.kind, fault.status, &p, m, &status);
        ho += wait_header(hdr + ho, sizeof(hdr) - ho, fault.after,
                          fault.after_ms);
        break;
    case LLM_FAKE_HANG:
        resp->fault = FAKE_FAULT_HANG;
        status = 0;
        e.done_ms = -1;
        break;
    case LLM_FAKE_CLOSE:
        resp->fault = FAKE_FAULT_CLOSE;
        status = 0;
        break;
    case LLM_FAKE_MALFORMED:
        resp->body = "{\"id\":\"fake\",\"choices\":[<html>502 Bad Gateway"
                     "</html>]}";
        break;
    case LLM_FAKE_TRUNCATED:
    case LLM_FAKE_PARTIAL: {
        const char *full;
        body = ok_body(lf, api, &p, fault.text ? fault.text : "truncated",
                       &completion);
        full = emit(f, body);
        json_object_put(body);
        body = NULL;
        if (full == NULL)
            goto fail;
        if (fault.kind == LLM_FAKE_TRUNCATED) {
            resp->body = full;
            resp->body_len = strlen(full) / 2;
        } else {
            resp->body = full;
            resp->fault = FAKE_FAULT_PARTIAL;
            status = 0;
        }
        break;
    }
    default:
        goto fail;
    }
    if (m->req.cap > 0 || m->tok.cap > 0)
        ho += limit_headers(hdr + ho, sizeof(hdr) - ho, api, m);

reply:
    free(script_text); /* taken out of the FIFO by script_take() */
    if (body != NULL) {
        resp->body = emit(f, body);
        json_object_put(body);
        if (resp->body == NULL) {
            json_object_put(p.root);
            return -1;
        }
    }
    if (ho > 0)
        resp->headers = fake_printf(f, "%s", hdr);
    resp->status = status ? status : 200;
    e.status = status;
    if (status >= 100 && status < 600)
        lf->stats.status[status / 100]++;
    log_add(lf, &e);
    json_object_put(p.root);
    return 0;
fail:
    free(script_text);
    json_object_put(p.root);
    return -1;
}

static int
on_openai(struct fake *f, const struct fake_request *req,
          struct fake_response *resp, void *arg)
{
    (void)f;
    return serve(arg, 'o', req, resp);
}

static int
on_anthropic(struct fake *f, const struct fake_request *req,
             struct fake_response *resp, void *arg)
{
    (void)f;
    return serve(arg, 'a', req, resp);
}

/* ---- control API ----------------------------------------------------------
 */

static json_object *
ctl_parse(const struct fake_request *req)
{
    json_tokener *tok;
    json_object *o;

    if (req->body == NULL)
        return NULL;
    tok = json_tokener_new_ex(16);
    if (tok == NULL)
        return NULL;
    o = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    json_tokener_free(tok);
    if (o != NULL && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static int64_t
jint(json_object *o, const char *k, int64_t dflt)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && v ? json_object_get_int64(v)
                                                    : dflt;
}

static const char *
jstr_(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) &&
                   json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* {"kind":"429","status":503,"after":"ms","after_ms":N,"delay_ms":N,"text"} */
static int
ctl_fault(json_object *o, struct llm_fake_fault *f)
{
    int k, a = 0;

    memset(f, 0, sizeof(*f));
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return -1;
    k = llm_fake_kind_parse(jstr_(o, "kind"));
    if (k < 0)
        return -1;
    if (jstr_(o, "after") != NULL &&
        (a = llm_fake_after_parse(jstr_(o, "after"))) < 0)
        return -1;
    f->kind = (enum llm_fake_kind)k;
    f->after = (enum llm_fake_after)a;
    f->status = (int)jint(o, "status", 0);
    f->after_ms = jint(o, "after_ms", 0);
    f->delay_ms = (int)jint(o, "delay_ms", 0);
    f->text = jstr_(o, "text");
    return 0;
}

static int
ctl_bad(struct fake *f, struct fake_response *resp, const char *why)
{
    resp->status = 400;
    resp->body = fake_printf(f, "{\"ok\":false,\"error\":\"%s\"}", why);
    return 0;
}

static int
on_control(struct fake *f, const struct fake_request *req,
           struct fake_response *resp, void *arg)
{
    struct llm_fake *lf = arg;
    const char *path = req->path + strlen("/_fake/");
    json_object *o = NULL, *v;
    int rc = 0;

    if (strcmp(req->method, "GET") == 0 && strncmp(path, "stats", 5) == 0) {
        const struct llm_fake_stats *s = &lf->stats;
        resp->body = fake_printf(
            f,
            "{\"requests\":%" PRIu64 ",\"ok\":%" PRIu64
            ",\"bucket_429\":%" PRIu64 ",\"scripted\":%" PRIu64
            ",\"2xx\":%" PRIu64 ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64
            ",\"script_pending\":%zu,\"inflight\":%zu,\"log\":%zu}",
            s->requests, s->ok, s->bucket_429, s->scripted, s->status[2],
            s->status[4], s->status[5], lf->nscript, fake_inflight(f),
            lf->nlog);
        return 0;
    }
    if (strcmp(req->method, "GET") == 0 && strncmp(path, "log", 3) == 0) {
        json_object *root = json_object_new_object(),
                    *arr = json_object_new_array();
        for (size_t i = 0; i < lf->nlog; i++) {
            const struct llm_fake_entry *e = &lf->log[i];
            json_object *x = json_object_new_object();
            char api[2] = {e->api, 0};
            json_object_object_add(x, "t_ms", json_object_new_int64(e->t_ms));
            json_object_object_add(x, "api", json_object_new_string(api));
            json_object_object_add(x, "model",
                                   json_object_new_string(e->model));
            json_object_object_add(x, "key4", json_object_new_string(e->key4));
            json_object_object_add(x, "status", json_object_new_int(e->status));
            json_object_object_add(
                x, "kind", json_object_new_string(llm_fake_kind_name(e->kind)));
            json_object_object_add(x, "bucket",
                                   json_object_new_boolean(e->from_bucket));
            json_object_object_add(x, "prompt_tokens",
                                   json_object_new_int64(e->prompt_tokens));
            json_object_array_add(arr, x);
        }
        json_object_object_add(root, "entries", arr);
        resp->body = emit(f, root);
        json_object_put(root);
        return resp->body ? 0 : -1;
    }
    if (strcmp(req->method, "POST") != 0)
        return ctl_bad(f, resp, "unknown control request");
    if (strncmp(path, "reset", 5) == 0) {
        llm_fake_reset(lf);
        resp->body = "{\"ok\":true}";
        return 0;
    }
    o = ctl_parse(req);
    if (o == NULL)
        return ctl_bad(f, resp, "body is not a JSON object");
    if (strncmp(path, "script", 6) == 0) {
        size_t n = 0;
        if (!json_object_object_get_ex(o, "faults", &v) ||
            !json_object_is_type(v, json_type_array)) {
            rc = ctl_bad(f, resp, "faults: want an array");
            goto out;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct llm_fake_fault ff;
            if (ctl_fault(json_object_array_get_idx(v, i), &ff) != 0 ||
                llm_fake_script(lf, jstr_(o, "model"), &ff) != 0) {
                rc = ctl_bad(f, resp, "bad fault or script full");
                goto out;
            }
            n++;
        }
        resp->body = fake_printf(f, "{\"ok\":true,\"queued\":%zu}", n);
    } else if (strncmp(path, "default", 7) == 0) {
        struct llm_fake_fault ff;
        int has = json_object_object_get_ex(o, "fault", &v) && v != NULL;
        if (jstr_(o, "model") == NULL || (has && ctl_fault(v, &ff) != 0) ||
            llm_fake_set_default(lf, jstr_(o, "model"), has ? &ff : NULL)) {
            rc = ctl_bad(f, resp, "want model and fault (or null)");
            goto out;
        }
        resp->body = "{\"ok\":true}";
    } else if (strncmp(path, "model", 5) == 0) {
        struct llm_fake_model mc = {jint(o, "rpm", 0), jint(o, "tpm", 0),
                                    jint(o, "context_window", 0),
                                    (int)jint(o, "latency_ms", 0)};
        if (jstr_(o, "model") == NULL ||
            llm_fake_set_model(lf, jstr_(o, "model"), &mc) != 0) {
            rc = ctl_bad(f, resp, "want model");
            goto out;
        }
        resp->body = "{\"ok\":true}";
    } else if (strncmp(path, "key", 3) == 0) {
        const char *st = jstr_(o, "state");
        enum llm_fake_key_state ks = LLM_FAKE_KEY_OK;
        if (st != NULL && strcmp(st, "invalid") == 0)
            ks = LLM_FAKE_KEY_INVALID;
        else if (st != NULL && strcmp(st, "no_quota") == 0)
            ks = LLM_FAKE_KEY_NO_QUOTA;
        else if (st == NULL || strcmp(st, "ok") != 0) {
            rc = ctl_bad(f, resp, "state: ok, invalid or no_quota");
            goto out;
        }
        if (llm_fake_set_key(lf, jstr_(o, "key"), ks) != 0) {
            rc = ctl_bad(f, resp, "want key");
            goto out;
        }
        resp->body = "{\"ok\":true}";
    } else if (strncmp(path, "latency", 7) == 0) {
        llm_fake_set_latency(lf, (int)jint(o, "ms", 0));
        resp->body = "{\"ok\":true}";
    } else {
        rc = ctl_bad(f, resp, "unknown control request");
    }
out:
    json_object_put(o);
    return rc;
}

/* ---- lifetime ----------------------------------------------------------- */

struct llm_fake *
llm_fake_new(uv_loop_t *loop, int port)
{
    return llm_fake_new_tls(loop, port, NULL, NULL);
}

struct llm_fake *
llm_fake_new_tls(uv_loop_t *loop, int port, const char *cert_file,
                 const char *key_file)
{
    struct llm_fake *lf = calloc(1, sizeof(*lf));

    if (lf == NULL)
        return NULL;
    lf->script = calloc(LLM_FAKE_SCRIPT_MAX, sizeof(*lf->script));
    if (lf->script == NULL)
        goto fail;
    lf->fake = fake_new_tls(loop, port, cert_file, key_file);
    if (lf->fake == NULL)
        goto fail;
    /* /v1 for base_url http://127.0.0.1:PORT/v1, and bare for base_url
     * without it */
    if (fake_route(lf->fake, "POST", "/v1/chat/completions", on_openai, lf) ||
        fake_route(lf->fake, "POST", "/chat/completions", on_openai, lf) ||
        fake_route(lf->fake, "POST", "/v1/messages", on_anthropic, lf) ||
        fake_route(lf->fake, "POST", "/messages", on_anthropic, lf) ||
        fake_route(lf->fake, NULL, "/_fake/", on_control, lf))
        goto fail;
    /* request bodies can be whole conversations */
    fake_set_body_max(lf->fake, 8u * 1024 * 1024);
    return lf;
fail:
    llm_fake_free(lf);
    return NULL;
}

int
llm_fake_port(const struct llm_fake *lf)
{
    return fake_port(lf->fake);
}

struct fake *
llm_fake_fake(struct llm_fake *lf)
{
    return lf->fake;
}

void
llm_fake_free(struct llm_fake *lf)
{
    if (lf == NULL)
        return;
    /* no handler runs after fake_free(), so lf can go at once */
    fake_free(lf->fake);
    if (lf->script != NULL)
        script_clear(lf);
    free(lf->script);
    for (size_t i = 0; i < lf->nmodels; i++)
        free(lf->models[i].def_text);
    for (size_t i = 0; i < lf->nkeys; i++)
        free(lf->keys[i].key);
    free(lf->log);
    free(lf);
}
