/* discord_fixture: the Discord integration tests' common set-up. */
#include "tests/fakes/discord_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/http.h"
#include "core/ws.h"
#include "storage/store.h"

static void
on_fatal(void *arg, const char *why)
{
    struct discord_fx *f = arg;

    f->fatals++;
    snprintf(f->fatal_why, sizeof(f->fatal_why), "%s", why);
}

struct config *
discord_fx_config(const char *base, const char *token)
{
    return core_fixture_config(
        "[bot]\nstate_dir = /tmp\n"
        "[discord]\nenabled = true\ntoken = %s\napi_base = %s\n"
        "[limits]\nuser = 1000/60s\nchat = 1000/60s\n"
        "[llm]\nmodels = main\nmax_output_tokens = 100\n" CORE_FIXTURE_MODEL,
        token, base);
}

int
discord_fx_start(struct discord_fx *f)
{
    f->d = discord_new(&f->loop, f->http, f->ws, f->core, f->st, f->cfg,
                       on_fatal, f);
    if (f->d == NULL)
        return -1;
    /* heartbeats every 200 ms exceed 120 per 60 s by design here */
    discord_set_limits(f->d, 1000, 60000, 1000);
    return discord_start(f->d);
}

int
discord_fx_init(struct discord_fx *f, const char *prefix, const char *token)
{
    struct core_asker asker;
    char err[256];

    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof(f->dir), "/tmp/%s-XXXXXX", prefix);
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/parley.db", f->dir);
    if ((f->df = discord_fake_new(&f->loop, 0, NULL)) == NULL)
        return -1;
    discord_fake_set_heartbeat(f->df, DISCORD_FX_HB_MS);
    discord_fake_set_send_limit(f->df, 0, 0);
    f->cfg = discord_fx_config(discord_fake_base(f->df),
                               token ? token : DISCORD_FAKE_TOKEN);
    f->st = store_open(f->path, err, sizeof(err));
    if (f->cfg == NULL || f->st == NULL)
        return -1;
    store_attach_loop(f->st, &f->loop);
    f->fa.loop = &f->loop;
    f->fa.delay_ms = 20;
    f->fa.tokens_in = 10;
    asker = core_fixture_asker_ops(&f->fa);
    f->core = core_new(&f->loop, f->st, f->cfg, &asker);
    f->http = http_new(&f->loop);
    f->ws = ws_ctx_new(&f->loop);
    if (f->core == NULL || f->http == NULL || f->ws == NULL)
        return -1;
    return discord_fx_start(f);
}

int
discord_fx_disconnected(struct discord_fx *f, const void *arg)
{
    struct discord_status ds;

    (void)arg;
    discord_status(f->d, &ds);
    return !ds.connected;
}

int
discord_fx_down(struct discord_fx *f)
{
    int ok;

    discord_stop(f->d);
    ok = discord_fx_run_until(f, discord_fx_disconnected, NULL, 6000);
    discord_free(f->d);
    f->d = NULL;
    return ok;
}

int
discord_fx_release(struct discord_fx *f)
{
    int rc, down = 1;

    if (f->d != NULL)
        down = discord_fx_down(f);
    core_free(f->core);
    core_fixture_asker_drop(&f->fa);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    http_free(f->http);
    ws_ctx_free(f->ws);
    discord_fake_free(f->df);
    store_close(f->st);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&f->loop);
    if (rc == 0 && !down)
        rc = -1; /* the connector did not close in time */
    config_free(f->cfg);
    core_fixture_db_unlink(f->path);
    rmdir(f->dir);
    return rc;
}

struct until {
    discord_fx_pred pred;
    struct discord_fx *f;
    const void *arg;
};

static int
until_holds(void *arg)
{
    struct until *u = arg;

    return u->pred != NULL && u->pred(u->f, u->arg);
}

int
discord_fx_run_until(struct discord_fx *f, discord_fx_pred pred,
                     const void *arg, int max_ms)
{
    struct until u = {pred, f, arg};

    if (pred != NULL && pred(f, arg))
        return 1;
    return core_fixture_loop_until(&f->loop, until_holds, &u, 2, max_ms);
}

uint64_t
discord_fx_stat(struct discord_fx *f, size_t off)
{
    struct discord_fake_stats st;

    discord_fake_stats(f->df, &st);
    return *(const uint64_t *)((const char *)&st + off);
}

int
discord_fx_stat_reaches(struct discord_fx *f, const void *arg)
{
    const uint64_t *a = arg; /* {offset, value} */

    return discord_fx_stat(f, (size_t)a[0]) >= a[1];
}

int
discord_fx_is_up(struct discord_fx *f, const void *arg)
{
    (void)arg;
    return discord_is_up(f->d);
}

int
discord_fx_fatal_seen(struct discord_fx *f, const void *arg)
{
    (void)arg;
    return f->fatals > 0;
}

static int
sent_in(struct discord_fx *f, const void *arg)
{
    const int *want = arg;
    const char *ch = (const char *)(want + 1);

    return discord_fake_sent_count(f->df, ch) >= (size_t)*want;
}

int
discord_fx_wait_sent(struct discord_fx *f, const char *ch, int n, int max_ms)
{
    struct {
        int n;
        char ch[28];
    } a;

    a.n = n;
    snprintf(a.ch, sizeof(a.ch), "%s", ch);
    return discord_fx_run_until(f, sent_in, &a, max_ms);
}
