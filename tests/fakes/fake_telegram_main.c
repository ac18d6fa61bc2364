/* fake_telegram: the Telegram Bot API fake as a standalone process (demo,
 * out-of-process tests). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/telegram_fake.h"

/*
 * fake_telegram [-p PORT] [-t TOKEN] [-u USERNAME] [-i BOT_ID]
 *               [-H HOLD_MAX_MS] [-g GROUP_N/GROUP_WINDOW_MS]
 *   prints "port=N" as line 1 of stdout, then serves the Bot API at
 *   /bot<TOKEN>/<method> and the control API at /_fake/ (see
 *   tests/fakes/telegram_fake.h); SIGTERM/SIGINT exit 0.
 */

struct main_state {
    struct telegram_fake *tf;
    uv_signal_t sigterm, sigint;
};

static void
on_signal(uv_signal_t *s, int signum)
{
    struct main_state *m = s->data;

    (void)signum;
    telegram_fake_free(m->tf);
    m->tf = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

int
main(int argc, char **argv)
{
    struct main_state m;
    uv_loop_t loop;
    const char *token = NULL, *user = NULL;
    long long bot_id = 0;
    int port = 0, hold = -1, group_n = 0, opt;
    long long group_w = 0;

    memset(&m, 0, sizeof(m));
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
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    m.tf = telegram_fake_new(&loop, port, token);
    if (m.tf == NULL) {
        uv_loop_close(&loop);
        return 1;
    }
    if (user != NULL || bot_id != 0)
        telegram_fake_set_me(m.tf, bot_id ? bot_id : TELEGRAM_FAKE_BOT_ID,
                             user ? user : TELEGRAM_FAKE_BOT_NAME);
    if (hold >= 0)
        telegram_fake_set_hold_max(m.tf, hold);
    if (group_n > 0)
        telegram_fake_set_limits(m.tf, 0, 0, group_n, group_w, 0, 0);
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    printf("port=%d\n", telegram_fake_port(m.tf));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
