/* discord_fixture: the Discord connector with a real core (fake asker),
 * store, HTTP client and websocket context on one loop, against the
 * Discord fake: what test_discord and test_discord_slash share.  Nothing
 * here calls the t.h checks: results come back for the test to check. */
#ifndef PARLEY_DISCORD_FIXTURE_H
#define PARLEY_DISCORD_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "connectors/discord.h"
#include "core/core.h"
#include "tests/fakes/core_fixture.h"
#include "tests/fakes/discord_fake.h"

/* the fake's heartbeat interval */
#define DISCORD_FX_HB_MS 200

struct discord_fx {
    uv_loop_t loop;
    char dir[64], path[128];
    struct store *st;
    struct config *cfg;
    struct core_fixture_asker fa; /* "answer to: TEXT" after 20 ms */
    struct core *core;
    struct http *http;
    struct ws_ctx *ws;
    struct discord_fake *df;
    struct discord *d;
    int fatals;
    char fatal_why[256];
};

/* A loop predicate: holds for f (arg is the test's). */
typedef int (*discord_fx_pred)(struct discord_fx *f, const void *arg);

/* The config for the fake at base with token. */
struct config *discord_fx_config(const char *base, const char *token);
/* Everything, in /tmp/PREFIX-XXXXXX, the connector started; token NULL:
 * the fake's.  -1 with what was made left for discord_fx_release. */
int discord_fx_init(struct discord_fx *f, const char *prefix,
                    const char *token);
/* A new connector on f's core and config, started. */
int discord_fx_start(struct discord_fx *f);
/* As the daemon does: stop (a resumable close), let the close finish,
 * free the connector.  1 when it closed within 6 s. */
int discord_fx_down(struct discord_fx *f);
/* Frees everything (a connector still up first, as discord_fx_down);
 * 0, or nonzero when it did not close in time or the loop would not. */
int discord_fx_release(struct discord_fx *f);

/* Runs the loop until pred(f, arg) holds (1) or max_ms pass (0); pred
 * NULL: just max_ms. */
int discord_fx_run_until(struct discord_fx *f, discord_fx_pred pred,
                         const void *arg, int max_ms);
/* Until n bot messages are in channel ch. */
int discord_fx_wait_sent(struct discord_fx *f, const char *ch, int n,
                         int max_ms);
/* The fake's counter at offset off of struct discord_fake_stats. */
uint64_t discord_fx_stat(struct discord_fx *f, size_t off);
/* arg: {offset, value}: that counter has reached value. */
int discord_fx_stat_reaches(struct discord_fx *f, const void *arg);
/* Runs f's loop until the fake's counter `field` reaches v (1), or ms. */
#define DISCORD_FX_WAIT_STAT(f, field, v, ms)                                  \
    discord_fx_run_until(                                                      \
        f, discord_fx_stat_reaches,                                            \
        (const uint64_t[]){offsetof(struct discord_fake_stats, field),         \
                           (uint64_t)(v)},                                     \
        ms)
int discord_fx_is_up(struct discord_fx *f, const void *arg);
int discord_fx_disconnected(struct discord_fx *f, const void *arg);
int discord_fx_fatal_seen(struct discord_fx *f, const void *arg);

#endif
