/* fake_llm: the LLM fake (OpenAI + Anthropic APIs) as a standalone process. */
#include "tests/fakes/llm_fake.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * fake_llm [-p PORT] [-d LATENCY_MS] [-m MODEL[:rpm=N,tpm=N,ctx=N,lat=MS]]...
 *          [-k KEY:invalid|no_quota]...
 *   prints "port=N" as line 1 of stdout, then serves on 127.0.0.1:PORT
 *   POST /v1/chat/completions, POST /v1/messages and the control API
 *   under /_fake/ (docs/llm.md "LLM fake"); SIGTERM/SIGINT exit 0.
 */

struct prog {
    struct llm_fake *lf;
    uv_signal_t sigterm, sigint;
};

static void
on_signal(uv_signal_t *s, int signum)
{
    struct prog *p = s->data;

    (void)signum;
    llm_fake_free(p->lf);
    p->lf = NULL;
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->sigint, NULL);
}

/* "name:rpm=60,tpm=1000,ctx=8192,lat=100" */
static int
parse_model(struct llm_fake *lf, char *arg)
{
    struct llm_fake_model m;
    char *opts = strchr(arg, ':'), *tok, *save = NULL;

    memset(&m, 0, sizeof(m));
    if (opts != NULL)
        *opts++ = '\0';
    for (tok = opts ? strtok_r(opts, ",", &save) : NULL; tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long long v;
        if (eq == NULL)
            return -1;
        *eq++ = '\0';
        v = atoll(eq);
        if (strcmp(tok, "rpm") == 0)
            m.rpm = v;
        else if (strcmp(tok, "tpm") == 0)
            m.tpm = v;
        else if (strcmp(tok, "ctx") == 0)
            m.context_window = v;
        else if (strcmp(tok, "lat") == 0)
            m.latency_ms = (int)v;
        else
            return -1;
    }
    return llm_fake_set_model(lf, arg, &m);
}

static int
parse_key(struct llm_fake *lf, char *arg)
{
    char *st = strrchr(arg, ':');

    if (st == NULL)
        return -1;
    *st++ = '\0';
    if (strcmp(st, "invalid") == 0)
        return llm_fake_set_key(lf, arg, LLM_FAKE_KEY_INVALID);
    if (strcmp(st, "no_quota") == 0)
        return llm_fake_set_key(lf, arg, LLM_FAKE_KEY_NO_QUOTA);
    if (strcmp(st, "ok") == 0)
        return llm_fake_set_key(lf, arg, LLM_FAKE_KEY_OK);
    return -1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: fake_llm [-p PORT] [-d LATENCY_MS]\n"
                    "                [-m MODEL[:rpm=N,tpm=N,ctx=N,lat=MS]]...\n"
                    "                [-k KEY:ok|invalid|no_quota]...\n");
}

int
main(int argc, char **argv)
{
    struct prog p;
    uv_loop_t loop;
    int port = 0, latency = 0, opt, rc = 1;

    memset(&p, 0, sizeof(p));
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    /* options are read twice: the port first, the rest once the fake
     * exists */
    while ((opt = getopt(argc, argv, "p:d:m:k:h")) != -1) {
        if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 'd')
            latency = atoi(optarg);
        else if (opt != 'm' && opt != 'k') {
            usage();
            rc = 2;
            goto out;
        }
    }
    p.lf = llm_fake_new(&loop, port);
    if (p.lf == NULL)
        goto out;
    llm_fake_set_latency(p.lf, latency);
    optind = 1;
    while ((opt = getopt(argc, argv, "p:d:m:k:h")) != -1) {
        if ((opt == 'm' && parse_model(p.lf, optarg) != 0) ||
            (opt == 'k' && parse_key(p.lf, optarg) != 0)) {
            fprintf(stderr, "fake_llm: bad -%c argument\n", opt);
            usage();
            rc = 2;
            goto out;
        }
    }
    uv_signal_init(&loop, &p.sigterm);
    uv_signal_init(&loop, &p.sigint);
    p.sigterm.data = p.sigint.data = &p;
    uv_signal_start(&p.sigterm, on_signal, SIGTERM);
    uv_signal_start(&p.sigint, on_signal, SIGINT);
    printf("port=%d\n", llm_fake_port(p.lf));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    llm_fake_free(p.lf);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "fake_llm: loop still has handles\n");
    return rc;
}
