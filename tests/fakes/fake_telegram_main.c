/* fake_telegram: the Telegram Bot API fake as a standalone process (demo,
 * out-of-process tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/telegram_fake.h"
#include "tests/fakes/fake_serve.h"

/*
 * fake_telegram [-p PORT] [-t TOKEN] [-u USERNAME] [-i BOT_ID]
 *               [-H HOLD_MAX_MS] [-g GROUP_N/GROUP_WINDOW_MS]
 *   prints "port=N" as line 1 of stdout, then serves the Bot API at
 *   /bot<TOKEN>/<method> and the control API at /_fake/ (see
 *   tests/fakes/telegram_fake.h); SIGTERM/SIGINT exit 0.
 */

static void
fake_free_cb(void *arg)
{
    telegram_fake_free(arg);
}

int
main(int argc, char **argv)
{
    struct telegram_fake *tf;
    uv_loop_t loop;
    const char *token = NULL, *user = NULL;
    long long bot_id = 0;
    int port = 0, hold = -1, group_n = 0, opt;
    long long group_w = 0;

    while ((opt = getopt(argc, argv, "p:t:u:i:H:g:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 't':
            token = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'i':
            bot_id = atoll(optarg);
            break;
        case 'H':
            hold = atoi(optarg);
            break;
        case 'g':
            if (sscanf(optarg, "%d/%lld", &group_n, &group_w) != 2)
                group_n = 0;
            break;
        default:
            fprintf(stderr, "usage: fake_telegram [-p PORT] [-t TOKEN] "
                            "[-u USERNAME] [-i BOT_ID] [-H HOLD_MAX_MS] "
                            "[-g N/WINDOW_MS]\n");
            return 2;
        }
    }
    uv_loop_init(&loop);
    tf = telegram_fake_new(&loop, port, token);
    if (tf == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    if (user != NULL || bot_id != 0)
        telegram_fake_set_me(tf, bot_id ? bot_id : TELEGRAM_FAKE_BOT_ID,
                             user ? user : TELEGRAM_FAKE_BOT_NAME);
    if (hold >= 0)
        telegram_fake_set_hold_max(tf, hold);
    if (group_n > 0)
        telegram_fake_set_limits(tf, 0, 0, group_n, group_w, 0, 0);
    return fake_serve_run(&loop, "fake_telegram", telegram_fake_port(tf),
                          fake_free_cb, tf);
}
