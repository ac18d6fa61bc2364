/* slack_fixture: the Slack integration tests' common set-up. */
#include "tests/fakes/slack_fixture.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/http.h"
#include "core/ws.h"
#include "storage/store.h"
#include "tests/fakes/core_fixture.h"

int
slack_fixture_open(struct slack_fixture *x, const char *dir, const char *name,
                   const struct slack_fixture_opts *o,
                   void (*ready)(struct slack_fixture *x))
{
    char err[256];

    memset(x, 0, sizeof(*x));
    uv_loop_init(&x->loop);
    if ((x->sf = slack_fake_new(&x->loop, 0)) == NULL)
        return -1;
    if (ready != NULL)
        ready(x);
    if ((x->cfg = core_fixture_config(
             "[bot]\nstate_dir = /tmp\n"
             "[slack]\napp_token = %s\nbot_token = %s\napi_base = %s\n"
             "channel_send_rate = %s\n"
             "[limits]\nuser = 1000/60s\nchat = 1000/60s\n"
             "[llm]\nmodels = main\nmax_output_tokens = "
             "100\n" CORE_FIXTURE_MODEL,
             SLACK_FAKE_APP_TOKEN, SLACK_FAKE_BOT_TOKEN, slack_fake_base(x->sf),
             o->send_rate ? o->send_rate : "1/1s")) == NULL)
        return -1;
    snprintf(x->path, sizeof(x->path), "%s/%s.db", dir, name);
    if ((x->st = store_open(x->path, err, sizeof(err))) == NULL) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }
    store_attach_loop(x->st, &x->loop);
    x->core = core_new(&x->loop, x->st, x->cfg, o->asker);
    x->http = http_new(&x->loop);
    x->ws = ws_ctx_new(&x->loop);
    if (x->core == NULL || x->http == NULL || x->ws == NULL)
        return -1;
    x->sl = slack_new(&x->loop, x->http, x->ws, x->core, x->st, x->cfg,
                      o->fatal, o->fatal_arg);
    if (x->sl == NULL)
        return -1;
    slack_set_timing(x->sl, o->timing);
    return 0;
}

int
slack_fixture_close(struct slack_fixture *x, void (*drop)(void *arg), void *arg)
{
    int rc;

    slack_free(x->sl);
    core_free(x->core);
    if (drop != NULL)
        drop(arg);
    ws_ctx_free(x->ws);
    http_free(x->http);
    slack_fake_free(x->sf);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    store_close(x->st);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&x->loop);
    config_free(x->cfg);
    if (x->path[0] != '\0')
        core_fixture_db_unlink(x->path);
    return rc;
}
