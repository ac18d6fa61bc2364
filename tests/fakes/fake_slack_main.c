/* fake_slack: the Slack Socket Mode + Web API fake as a standalone process
 * (demo, out-of-process tests). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/slack_fake.h"

/*
 * fake_slack [-p PORT] [-r REDELIVER_MS] [-R RATE_PER_S/BURST]
 *   prints "port=N" as line 1 of stdout, then serves the Web API at
 *   /api/<method>, Socket Mode at the URLs apps.connections.open hands
 *   out, and the control API at /_fake/ (tests/fakes/slack_fake.h);
 *   tokens are SLACK_FAKE_APP_TOKEN and SLACK_FAKE_BOT_TOKEN.
 *   SIGTERM/SIGINT exit 0.
 */

struct main_state {
    struct slack_fake *sf;
    uv_signal_t sigterm, sigint;
};

static void
on_signal(uv_signal_t *s, int signum)
{
    struct main_state *m = s->data;

    (void)signum;
    slack_fake_free(m->sf);
    m->sf = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

int
main(int argc, char **argv)
{
    struct main_state m;
    uv_loop_t loop;
    int port = 0, redeliver = -1, burst = 0, opt;
    double rate = -1;

    memset(&m, 0, sizeof(m));
    while ((opt = getopt(argc, argv, "p:r:R:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'r':
            redeliver = atoi(optarg);
            break;
        case 'R':
            if (sscanf(optarg, "%lf/%d", &rate, &burst) != 2)
                rate = -1;
            break;
        default:
            fprintf(stderr, "usage: fake_slack [-p PORT] [-r REDELIVER_MS] "
                            "[-R RATE_PER_S/BURST]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    m.sf = slack_fake_new(&loop, port);
    if (m.sf == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    if (redeliver >= 0)
        slack_fake_set_redeliver_ms(m.sf, redeliver);
    if (rate >= 0)
        slack_fake_set_rate(m.sf, rate, burst);
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    printf("port=%d\n", slack_fake_port(m.sf));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
