/* fake_discord: the Discord gateway + REST fake as a standalone process (demo,
 * out-of-process tests). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/discord_fake.h"

/*
 * fake_discord [-p PORT] [-t TOKEN] [-H HEARTBEAT_MS] [-b LIMIT/WINDOW_MS]
 *   prints "port=N" as line 1 of stdout, then serves the REST API at
 *   /api/v10, the gateway at /gateway and the control API at /_fake/ (see
 *   tests/fakes/discord_fake.h); SIGTERM/SIGINT exit 0.
 */

struct main_state {
    struct discord_fake *df;
    uv_signal_t sigterm, sigint;
};

static void
on_signal(uv_signal_t *s, int signum)
{
    struct main_state *m = s->data;

    (void)signum;
    discord_fake_free(m->df);
    m->df = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

int
main(int argc, char **argv)
{
    struct main_state m;
    uv_loop_t loop;
    const char *token = NULL;
    int port = 0, hb = 0, limit = 0, opt;
    long long window = 0;

    memset(&m, 0, sizeof(m));
    while ((opt = getopt(argc, argv, "p:t:H:b:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 't':
            token = optarg;
            break;
        case 'H':
            hb = atoi(optarg);
            break;
        case 'b':
            if (sscanf(optarg, "%d/%lld", &limit, &window) != 2)
                limit = 0;
            break;
        default:
            fprintf(stderr, "usage: fake_discord [-p PORT] [-t TOKEN] "
                            "[-H HEARTBEAT_MS] [-b LIMIT/WINDOW_MS]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    m.df = discord_fake_new(&loop, port, token);
    if (m.df == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    if (hb > 0)
        discord_fake_set_heartbeat(m.df, hb);
    if (limit > 0 && window > 0)
        discord_fake_set_bucket(m.df, limit, window);
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    printf("port=%d\n", discord_fake_port(m.df));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
