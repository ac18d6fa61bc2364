/* fake_slack: the Slack Socket Mode + Web API fake as a standalone process
 * (demo, out-of-process tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/slack_fake.h"
#include "tests/fakes/fake_serve.h"

/*
 * fake_slack [-p PORT] [-r REDELIVER_MS] [-R RATE_PER_S/BURST]
 *   prints "port=N" as line 1 of stdout, then serves the Web API at
 *   /api/<method>, Socket Mode at the URLs apps.connections.open hands
 *   out, and the control API at /_fake/ (tests/fakes/slack_fake.h);
 *   tokens are SLACK_FAKE_APP_TOKEN and SLACK_FAKE_BOT_TOKEN.
 *   SIGTERM/SIGINT exit 0.
 */

static void
fake_free_cb(void *arg)
{
    slack_fake_free(arg);
}

int
main(int argc, char **argv)
{
    struct slack_fake *sf;
    uv_loop_t loop;
    int port = 0, redeliver = -1, burst = 0, opt;
    double rate = -1;

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
    uv_loop_init(&loop);
    sf = slack_fake_new(&loop, port);
    if (sf == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    if (redeliver >= 0)
        slack_fake_set_redeliver_ms(sf, redeliver);
    if (rate >= 0)
        slack_fake_set_rate(sf, rate, burst);
    return fake_serve_run(&loop, "fake_slack", slack_fake_port(sf),
                          fake_free_cb, sf);
}
