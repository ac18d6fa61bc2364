/* slack_fixture: the Slack connector with a real core, store, HTTP client
 * and websocket context on one loop, against the Slack fake: what the
 * Slack integration tests share. */
#ifndef PARLEY_SLACK_FIXTURE_H
#define PARLEY_SLACK_FIXTURE_H

#include <stdint.h>
#include <uv.h>

#include "connectors/slack.h"
#include "core/core.h"
#include "tests/fakes/slack_fake.h"

struct slack_fixture {
    uv_loop_t loop;
    char path[256];
    struct store *st;
    struct config *cfg;
    struct core *core;
    struct http *http;
    struct ws_ctx *ws;
    struct slack_fake *sf;
    struct slack *sl;
};

/* What differs between the tests; fatal and its arg may be NULL. */
struct slack_fixture_opts {
    const char *send_rate;          /* channel_send_rate, NULL "1/1s" */
    const struct core_asker *asker; /* core's */
    const struct slack_timing *timing;
    void (*fatal)(void *arg, const char *why);
    void *fatal_arg;
};

/*
 * The loop, the fake on it (x->sf, before the config that names its
 * base), DIR/NAME.db, core, HTTP, websockets and the connector with the
 * timing.  0, or -1 with what was made left for slack_fixture_close.
 * The fake may be adjusted in `ready` before anything talks to it (NULL:
 * nothing to do).
 */
int slack_fixture_open(struct slack_fixture *x, const char *dir,
                       const char *name, const struct slack_fixture_opts *o,
                       void (*ready)(struct slack_fixture *x));

/*
 * Frees the connector and core, then calls drop(arg) (the test's askers:
 * after core_free, before the loop closes; NULL: none), then the rest;
 * the database file is removed.  Returns uv_loop_close's result.
 */
int slack_fixture_close(struct slack_fixture *x, void (*drop)(void *arg),
                        void *arg);

#endif
