/* core_fixture: a real core on its own loop and temp database, with a fake
 * asker and a recording test connector, for the core integration tests. */
#ifndef PARLEY_CORE_FIXTURE_H
#define PARLEY_CORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"

/*
 * Tests read and set the fields directly (asks, sends, the fake clock), so
 * the structs are public.  Nothing here calls the t.h checks: t.h keeps
 * its counters per program, so results come back for the test to check.
 */

enum core_fixture_ask_mode {
    CORE_FIXTURE_ANSWER, /* "answer to: LAST" (or fixed) after delay_ms */
    CORE_FIXTURE_FAIL,   /* a "server" failure after delay_ms */
    CORE_FIXTURE_NEVER,  /* no answer until cancelled */
};

struct core_fixture_pending;

#define CORE_FIXTURE_ASKED 64

struct core_fixture_asker {
    uv_loop_t *loop;
    enum core_fixture_ask_mode mode;
    int delay_ms;
    int64_t extra_tokens; /* reported usage = estimate + extra */
    uint64_t next_handle;
    struct core_fixture_pending *list;
    int asks, cancels, answered;
    int64_t last_estimate;
    int64_t last_age_ms; /* core_prompt.age_ms of the last ask */
    char last_system[256];
    int last_n;
    /* the new message of each of the first CORE_FIXTURE_ASKED asks, cut */
    char asked[CORE_FIXTURE_ASKED][32];
    const char *fixed;           /* answer this instead of PREFIX LAST SUFFIX */
    const char *prefix, *suffix; /* NULL: "answer to: " and "" */
    int64_t tokens_in; /* reported; 0: the estimate less max_output_tokens */
    /* Streaming, when core asks with a partial callback: the answer comes
     * in stream_chunks growing partials stream_gap_ms apart (after
     * delay_ms), then done.  restart_after > 0: after that many chunks the
     * text starts again from nothing once (a retry midway). */
    int stream_chunks, stream_gap_ms, restart_after;
    int partials; /* partial callbacks made */
};

/* The asker's callbacks for core_new(); set fa->loop first. */
struct core_asker core_fixture_asker_ops(struct core_fixture_asker *fa);

/* Closes the asks still unanswered (after core_free()). */
void core_fixture_asker_drop(struct core_fixture_asker *fa);

/* One send the core asked of the test connector. */
struct core_fixture_sent {
    uint64_t send_id;
    enum action_kind kind;
    char reply_to[32];
    char chat[32];
    char *text; /* the first text_max - 1 bytes; storage owned by the conn */
    int part, parts, feedback;
    int target; /* ACTION_EDIT / ACTION_DELETE: the send index posted */
    int controls_only;
};

/* A message the test connector posted (message id "s<send index>"): what
 * it shows now, after the edits (can_edit). */
struct core_fixture_msg {
    char *text; /* malloc'd; NULL = never posted */
    int edits, deleted, feedback;
    int64_t last_edit_ms; /* uv_now of the last edit */
    int64_t min_gap_ms;   /* smallest gap between two edits, or -1 */
};

/* The test connector: records sends and completes them a loop turn later. */
struct core_fixture_conn {
    uv_loop_t *loop;
    struct core *core;
    uv_timer_t flush;
    struct core_fixture_sent *sends;
    int nsends, completed, typing, retry_first, retried;
    int *queue;
    int nqueue;
    int sends_max;
    size_t text_max;
    char *texts;         /* sends_max * text_max bytes */
    int can_edit;        /* set before core_fixture_start: streaming */
    size_t ops_text_max; /* the text_max it tells core; 0 = 4096 */
    int streams_max;     /* its connector_ops.streams_max */
    int64_t typing_ms;   /* its typing interval; 0 = none */
    struct core_fixture_msg *msgs;       /* sends_max, by send index */
    int edits, deletes, not_found_first; /* the first N edits: not_found */
};

/* What differs between the tests that share the fixture. */
struct core_fixture_params {
    const char *tmpdir; /* where the databases go */
    const char *admins; /* the [bot] admins value */
    int sends_max;      /* sends recorded before send fails */
    size_t text_max;    /* bytes kept of each send's text, with the NUL */
};

struct core_fixture {
    uv_loop_t loop;
    char path[256];
    struct store *st;
    struct config *cfg;
    struct core_fixture_asker fa;
    struct core_fixture_conn tc;
    struct core *core;
    int64_t mono, wall; /* the fake clock, when used */
};

/* The telegram connector ops of the test connector. */
struct connector_ops core_fixture_conn_ops(struct core_fixture_conn *tc,
                                           int64_t typing_ms, size_t text_max);

/*
 * Loop, database TMPDIR/NAME.db, config with "[limits]\nLIMITS", then the
 * core (core_fixture_start).  use_clock: the core reads f->mono, f->wall.
 * -1 on failure (said on stderr).
 */
int core_fixture_init(struct core_fixture *f,
                      const struct core_fixture_params *p, const char *name,
                      const char *limits, int use_clock);

/* A new core on the same loop, store and config, with the test connector. */
int core_fixture_start(struct core_fixture *f, int use_clock);

/* Stops the core (as SIGTERM would) and frees it; the store stays. */
void core_fixture_stop(struct core_fixture *f);

/* Frees everything and removes the database; returns uv_loop_close(). */
int core_fixture_release(struct core_fixture *f);

/* A telegram message from user "Ann" in chat, no thread, no reply_to; the
 * strings are borrowed. */
struct event core_fixture_event(const char *user, const char *chat,
                                const char *id, const char *text,
                                unsigned flags);

/* Runs the loop until pred holds (NULL: at once) or max_ms pass (a uv
 * timer watchdog); 1 if pred held. */
int core_fixture_run_until(struct core_fixture *f,
                           int (*pred)(struct core_fixture *), int max_ms);

/* The watchdog under core_fixture_run_until(), for any loop: runs loop
 * until pred(arg) holds (checked every period_ms) or max_ms pass; 1 if
 * it held. */
int core_fixture_loop_until(uv_loop_t *loop, int (*pred)(void *), void *arg,
                            int period_ms, int max_ms);

/* Predicates: nothing in flight or queued; never. */
int core_fixture_idle(struct core_fixture *f);
/* every job admitted so far has started (core's run queue is empty) */
int core_fixture_started(struct core_fixture *f);
int core_fixture_never(struct core_fixture *f);

/* The first column of the first row of sql on the database (after a
 * store flush), -1 on error. */
long long core_fixture_db_int(struct core_fixture *f, const char *sql);

/* The [model.main] every test configuration has: an OpenAI model on a
 * port nothing listens on (the tests' askers never reach it). */
#define CORE_FIXTURE_MODEL                                                     \
    "[model.main]\napi = openai\nbase_url = http://127.0.0.1:9\n"              \
    "api_key = sk-test\nname = m\n"

/* A configuration from printf(fmt, ...): parsed, secrets resolved, every
 * diagnostic on stderr.  NULL on any error. */
struct config *core_fixture_config(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Removes a database file and its -wal and -shm files. */
void core_fixture_db_unlink(const char *path);

/* Runs sql on the database on a connection of its own. */
void core_fixture_db_exec(struct core_fixture *f, const char *sql);

#endif
