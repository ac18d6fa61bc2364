/* llm: the LLM client -- retries, key rotation, fallbacks, breakers and
 * pacing on the curl multi adapter. */
#ifndef PARLEY_LLM_H
#define PARLEY_LLM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "core/http.h"
#include "llm/breaker.h"
#include "llm/codec.h"
#include "llm/errclass.h"

/*
 * One struct llm per process, on the loop thread.  An ask goes through
 * the models of its route (the preferred model, then [llm] models in
 * order), each with its own pacer (GCRA under rpm/tpm), breaker and
 * queue, and ends with exactly one done callback: the answer, or one
 * classified failure whose text names the cause.  docs/llm.md "Client"
 * has the flow and the numbers.
 *
 * Glue: it reads the monotonic clock (uv_hrtime), the wall clock (only to
 * read HTTP-date/RFC 3339 headers) and libsodium's randomness, and hands
 * them to the pure modules (llm/retry, llm/pacer, llm/breaker).  Every
 * wait is a uv timer.  Not thread-safe.
 */
struct llm;
struct llm_call;

/* Asks in flight at once (queued, waiting or sending); over it llm_ask
 * refuses.  Each holds its own copy of the history. */
#define LLM_CALLS_MAX 100000
/* Messages in one ask (config's history_messages is at most 10000). */
#define LLM_ASK_MESSAGES_MAX 10000
/* A benched insufficient_quota key is tried again after this (the
 * account may have been topped up); an invalid key waits for a reload. */
#define LLM_QUOTA_BENCH_MS ((int64_t)3600 * 1000)
/* The answer text of a failure, bytes with the NUL. */
#define LLM_ERROR_MAX 256

/*
 * Streaming: the answer so far, the whole text of the current attempt
 * (not a delta), NUL-terminated, borrowed for the call.  A retry or a
 * fallback starts a new attempt whose text starts again from its first
 * token, so a caller that shows what it gets replaces, never appends.
 */
typedef void (*llm_partial_fn)(const char *text, size_t len, void *arg);

/*
 * One question.  Everything is copied by llm_ask(); the caller's memory
 * may go away when it returns.
 */
struct llm_ask {
    const char *system; /* NULL: [llm] system_prompt; "": none */
    /* The conversation, oldest first, ending with the user's new
     * message.  Trimming drops from the front and never drops the last
     * message; the system prompt is never dropped. */
    const struct llm_message *messages;
    size_t nmessages;
    int64_t max_tokens; /* <= 0: [llm] max_output_tokens */
    /* A [model.NAME] tried first (a chat's `model` override), then [llm]
     * models in order without it; NULL or unknown: [llm] models only. */
    const char *model;
    /* How long ago the request started, ms (0: now).  give_up_after runs
     * from then, so a durable job resumed after a restart does not get a
     * fresh give_up_after (SPEC §2): bot/asker passes core's job age (the
     * wall-clock time since the job row was created).  Negative counts as
     * 0; it is converted to the monotonic clock once, here, so a later
     * clock jump changes nothing.  An ask whose time is already over is
     * still tried once: its first failure ends it. */
    int64_t age_ms;
    /* Non-NULL and [llm] stream = true: the request streams (SSE) and
     * partial(text, len, arg) runs as text arrives, zero or more times,
     * always before done and never after llm_cancel.  done still carries
     * the final text and usage. */
    llm_partial_fn partial;
};

/* What done receives; valid only during the callback. */
struct llm_result {
    int ok;           /* 1: answered */
    const char *text; /* the answer ("" on failure), NUL-terminated */
    size_t text_len;
    int64_t prompt_tokens;     /* provider's usage; -1 when it sent none */
    int64_t completion_tokens; /* -1 when unknown */
    double cost_usd;           /* from price_in/price_out and usage */
    /* [model.NAME] that answered, or the last one tried; NULL if none
     * was.  key_index is the index into its api_key list, -1 if none. */
    const char *model;
    int key_index;
    int attempts;       /* HTTP attempts, all models and keys */
    int fallbacks;      /* moves from one model to another */
    int trimmed;        /* history messages left out of the answering attempt */
    int64_t elapsed_ms; /* from the request's start (now - age_ms) */
    /* Failure only: one class (the last model's), its HTTP status (0 when
     * none came) and one line naming the cause, for the user:
     * "the model is unavailable (503 from main and backup)". */
    enum errclass error_class;
    int status;
    const char *error;
};

typedef void (*llm_done_fn)(const struct llm_result *res, void *arg);

/*
 * A client on loop, sending through http (which must outlive it), with
 * cfg's [llm], [retry] and [model.*] (the secrets resolved: the api_key
 * values are copied; a model without resolved keys is skipped).  cfg is
 * not kept.  NULL on failure (logged).
 */
struct llm *llm_new(uv_loop_t *loop, struct http *http,
                    const struct config *cfg);

/*
 * SIGHUP: new models, keys, prompts and retry settings.  Models that stay
 * (same NAME) keep their pacer, breaker, queue and counters; a key whose
 * value changed is no longer benched.  Models that are gone take no new
 * asks; asks queued on them move on to their next model.  0, or -1 on
 * out of memory (the old settings stay).
 */
int llm_configure(struct llm *l, const struct config *cfg);

/*
 * Starts an ask.  done is called exactly once, later, from the loop
 * (never from inside llm_ask), unless llm_cancel/llm_free come first.
 * The handle is valid until done returns.  NULL (done never called) when
 * the ask is invalid (no messages, a NULL text, too many messages), when
 * LLM_CALLS_MAX asks are active, or out of memory; logged.
 */
struct llm_call *llm_ask(struct llm *l, const struct llm_ask *req,
                         llm_done_fn done, void *arg);

/* Stops an ask without calling done; an attempt in flight is aborted.
 * NULL, or a call whose done is running, is a no-op. */
void llm_cancel(struct llm_call *c);

/*
 * Cancels every ask without calling done, closes the timers; the memory
 * is released by their close callbacks, so run the loop once more before
 * uv_loop_close.  The http client is not freed.  NULL is a no-op; safe
 * from inside a done callback.
 */
void llm_free(struct llm *l);

/*
 * Breaker settings for every model (config has no keys for them; the
 * defaults are breaker.h's).  Tests use short cooldowns.  State is kept.
 */
void llm_set_breaker(struct llm *l, const struct breaker_config *cfg);

/* Counters per model, for /metrics and `stats`. */
struct llm_model_stats {
    char name[CONFIG_NAME_MAX + 1];
    uint64_t answered;                /* asks this model answered */
    uint64_t attempts;                /* HTTP attempts sent */
    uint64_t errors[ERRCLASS_COUNT];  /* failed attempts, by class */
    uint64_t retries[ERRCLASS_COUNT]; /* same model+key again, by cause */
    uint64_t fallbacks;               /* asks that moved on from this model */
    uint64_t keys_benched;      /* 401 / insufficient_quota bench events */
    uint64_t trims;             /* history trimmed after context overflow */
    uint64_t breaker_skips;     /* asks sent past it while open */
    enum breaker_state breaker; /* now */
    uint64_t breaker_opens;
    uint64_t pacer_waits;     /* asks that waited for the pacer */
    uint64_t pacer_delay_ms;  /* total ms asks waited in its queue */
    uint64_t pacer_penalties; /* 429s that lowered the pace */
    int pacer_factor_pm;      /* the pace now, permille of rpm/tpm */
    size_t queued;            /* waiting in its queue now */
    size_t in_flight;         /* attempts on the wire now */
    uint64_t tokens_in;       /* reported usage */
    uint64_t tokens_out;
    double cost_usd;
};

struct llm_stats {
    uint64_t asks;     /* accepted by llm_ask */
    uint64_t answered; /* done with ok */
    uint64_t failed;   /* done with a failure */
    uint64_t failed_by[ERRCLASS_COUNT];
    uint64_t cancelled; /* llm_cancel, llm_free */
    uint64_t refused;   /* llm_ask returned NULL */
    size_t active;      /* asks not finished */
    uint64_t tokens_in, tokens_out;
    double cost_usd;
    size_t nmodels; /* every [model.NAME] of the configuration */
    struct llm_model_stats models[CONFIG_MODELS_MAX];
};

void llm_stats(const struct llm *l, struct llm_stats *out);

#endif
