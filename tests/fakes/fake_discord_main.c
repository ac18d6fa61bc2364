/* fake_discord: the Discord gateway + REST fake as a standalone process (demo,
 * out-of-process tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/discord_fake.h"
#include "tests/fakes/fake_serve.h"

/*
 * fake_discord [-p PORT] [-t TOKEN] [-H HEARTBEAT_MS] [-b LIMIT/WINDOW_MS]
 *   prints "port=N" as line 1 of stdout, then serves the REST API at
 *   /api/v10, the gateway at /gateway and the control API at /_fake/ (see
 *   tests/fakes/discord_fake.h); SIGTERM/SIGINT exit 0.
 */

static void
fake_free_cb(void *arg)
{
    discord_fake_free(arg);
}

int
main(int argc, char **argv)
{
    struct discord_fake *df;
    uv_loop_t loop;
    const char *token = NULL;
    int port = 0, hb = 0, limit = 0, opt;
    long long window = 0;

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
    uv_loop_init(&loop);
    df = discord_fake_new(&loop, port, token);
    if (df == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    if (hb > 0)
        discord_fake_set_heartbeat(df, hb);
    if (limit > 0 && window > 0)
        discord_fake_set_bucket(df, limit, window);
    return fake_serve_run(&loop, "fake_discord", discord_fake_port(df),
                          fake_free_cb, df);
}
