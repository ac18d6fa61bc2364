/* fuzz_sse: the SSE parser and both stream decoders on arbitrary bytes,
 * split at fuzzer-chosen places. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/anthropic_codec.h"
#include "llm/openai_codec.h"
#include "llm/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct dec {
    struct llm_stream oa, an;
    struct llm_error_info eo, ea;
    int oa_failed, an_failed;
};

static int
valid_utf8(const char *s, size_t n)
{
    size_t m = 0;
    char *c = llm_utf8_clean(s, n, &m);
    int ok = c != NULL && m == n && memcmp(c, s, n) == 0;

    free(c);
    return ok;
}

static void
check_stream(const struct llm_stream *s)
{
    if (s->len > LLM_TEXT_MAX || (s->len > 0 && s->text == NULL) ||
        (s->text != NULL &&
         (s->text[s->len] != '\0' || strlen(s->text) != s->len ||
          !valid_utf8(s->text, s->len))) ||
        s->prompt_tokens < -1 || s->completion_tokens < -1 ||
        memchr(s->finish_reason, 0, sizeof(s->finish_reason)) == NULL ||
        memchr(s->id, 0, sizeof(s->id)) == NULL)
        abort();
}

static void
check_error(const struct llm_error_info *e)
{
    if ((unsigned)e->cls >= ERRCLASS_COUNT ||
        memchr(e->type, 0, sizeof(e->type)) == NULL ||
        memchr(e->code, 0, sizeof(e->code)) == NULL ||
        memchr(e->message, 0, sizeof(e->message)) == NULL)
        abort();
}

static int
on_event(const char *name, const char *d, size_t len, void *arg)
{
    struct dec *x = arg;

    if (name == NULL || d == NULL || d[len] != '\0' ||
        strlen(name) > SSE_NAME_MAX || len > SSE_EVENT_MAX)
        abort();
    if (!x->oa_failed &&
        openai_stream_event(&x->oa, name, d, len, &x->eo) == LLM_STREAM_FAIL) {
        x->oa_failed = 1;
        check_error(&x->eo);
    }
    if (!x->an_failed && anthropic_stream_event(&x->an, name, d, len, &x->ea) ==
                             LLM_STREAM_FAIL) {
        x->an_failed = 1;
        check_error(&x->ea);
    }
    check_stream(&x->oa);
    check_stream(&x->an);
    return 0;
}

static void
finish(struct llm_stream *s, int failed)
{
    struct llm_reply r;
    struct llm_error_info e;

    if (failed)
        return;
    if (llm_stream_reply(s, &r, &e) == 0) {
        if (r.text == NULL || r.id == NULL || r.finish_reason == NULL ||
            !valid_utf8(r.text, strlen(r.text)))
            abort();
    } else {
        check_error(&e);
    }
    llm_reply_release(&r);
}

/* Byte 0: the piece size (1..256, 0 = all at once); the rest the body. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sse p;
    struct dec x;
    const char *body = (const char *)data + 1;
    size_t piece, at = 0, len;

    if (size < 1)
        return 0;
    piece = data[0];
    len = size - 1;
    memset(&x, 0, sizeof(x));
    llm_stream_init(&x.oa);
    llm_stream_init(&x.an);
    sse_init(&p);
    while (at < len) {
        size_t n = piece == 0 || piece > len - at ? len - at : piece;
        if (sse_feed(&p, body + at, n, on_event, &x) != SSE_OK)
            break;
        at += n;
    }
    finish(&x.oa, x.oa_failed);
    finish(&x.an, x.an_failed);
    llm_stream_release(&x.oa);
    llm_stream_release(&x.an);
    sse_release(&p);
    return 0;
}
