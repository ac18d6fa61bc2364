/* fake_llm: the LLM fake (OpenAI + Anthropic APIs) as a standalone process. */
#include "tests/fakes/fake_serve.h"
#include "tests/fakes/llm_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * fake_llm [-p PORT] [-d LATENCY_MS] [-m MODEL[:rpm=N,tpm=N,ctx=N,lat=MS]]...
 *          [-k KEY:invalid|no_quota]...
 *          [-S tokens=N,events=N,bytes=N,delay=MS,fault=N]
 *   prints "port=N" as line 1 of stdout, then serves on 127.0.0.1:PORT
 *   POST /v1/chat/completions, POST /v1/messages and the control API
 *   under /_fake/ (docs/llm.md "LLM fake"); SIGTERM/SIGINT exit 0.
 *   -S shapes streamed replies (struct llm_fake_stream): tokens per text
 *   event, events per chunk, or fixed chunk bytes, the delay between
 *   chunks, and the chunk after which stream_* faults strike.
 */

static void
fake_free_cb(void *arg)
{
    llm_fake_free(arg);
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

/* "tokens=2,events=1,bytes=0,delay=50" */
static int
parse_stream(struct llm_fake *lf, char *arg)
{
    struct llm_fake_stream st;
    char *tok, *save = NULL;

    memset(&st, 0, sizeof(st));
    for (tok = strtok_r(arg, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long long v;
        if (eq == NULL)
            return -1;
        *eq++ = '\0';
        v = atoll(eq);
        if (v < 0)
            return -1;
        if (strcmp(tok, "tokens") == 0)
            st.tokens_per_event = (int)v;
        else if (strcmp(tok, "events") == 0)
            st.events_per_chunk = (int)v;
        else if (strcmp(tok, "bytes") == 0)
            st.chunk_bytes = (size_t)v;
        else if (strcmp(tok, "delay") == 0)
            st.chunk_delay_ms = (int)v;
        else if (strcmp(tok, "fault") == 0)
            st.fault_chunks = (int)v;
        else
            return -1;
    }
    llm_fake_set_stream(lf, &st);
    return 0;
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
    fprintf(
        stderr,
        "usage: fake_llm [-p PORT] [-d LATENCY_MS]\n"
        "                [-m MODEL[:rpm=N,tpm=N,ctx=N,lat=MS]]...\n"
        "                [-k KEY:ok|invalid|no_quota]...\n"
        "                [-S tokens=N,events=N,bytes=N,delay=MS,fault=N]\n");
}

int
main(int argc, char **argv)
{
    struct llm_fake *lf = NULL;
    uv_loop_t loop;
    int port = 0, latency = 0, opt, rc = 1, served = 0;

    uv_loop_init(&loop);
    /* options are read twice: the port first, the rest once the fake
     * exists */
    while ((opt = getopt(argc, argv, "p:d:m:k:S:h")) != -1) {
        if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 'd')
            latency = atoi(optarg);
        else if (opt != 'm' && opt != 'k' && opt != 'S') {
            usage();
            rc = 2;
            goto out;
        }
    }
    lf = llm_fake_new(&loop, port);
    if (lf == NULL)
        goto out;
    llm_fake_set_latency(lf, latency);
    optind = 1;
    while ((opt = getopt(argc, argv, "p:d:m:k:S:h")) != -1) {
        if ((opt == 'm' && parse_model(lf, optarg) != 0) ||
            (opt == 'k' && parse_key(lf, optarg) != 0) ||
            (opt == 'S' && parse_stream(lf, optarg) != 0)) {
            fprintf(stderr, "fake_llm: bad -%c argument\n", opt);
            usage();
            rc = 2;
            goto out;
        }
    }
    rc = fake_serve_run(&loop, "fake_llm", llm_fake_port(lf), fake_free_cb, lf);
    served = 1; /* the fake is freed and the loop closed */
out:
    if (!served) {
        llm_fake_free(lf);
        fake_serve_close(&loop, "fake_llm");
    }
    return rc;
}
