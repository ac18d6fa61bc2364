/* asker: binds core's ask interface (core/core.h) to the LLM client
 * (llm/llm.h). */
#include "bot/asker.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "llm/llm.h"

/* One ask in flight: core's handle and callback, and the LLM's call. */
struct asker_req {
    struct asker *owner;
    uint64_t id;
    struct llm_call *call;
    core_ask_done_fn done;
    void (*partial)(void *arg, const char *text, size_t len);
    void *arg;
    struct asker_req *prev, *next;
};

struct asker {
    struct llm *llm;
    struct core_asker iface;
    uint64_t next_id;
    size_t n;
    struct asker_req *head; /* in flight, newest first */
};

static void
asker_unlink(struct asker *a, struct asker_req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        a->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    a->n--;
}

static void
asker_on_done(const struct llm_result *res, void *arg)
{
    struct asker_req *r = arg;
    struct asker *a = r->owner;
    struct core_answer ans;

    memset(&ans, 0, sizeof(ans));
    ans.ok = res->ok;
    ans.text = res->ok ? res->text : NULL;
    ans.model = res->model;
    ans.tokens_in = res->prompt_tokens > 0 ? res->prompt_tokens : 0;
    ans.tokens_out = res->completion_tokens > 0 ? res->completion_tokens : 0;
    ans.attempts = res->attempts;
    ans.fallbacks = res->fallbacks;
    if (!res->ok) {
        ans.error_class = errclass_name(res->error_class);
        ans.error = res->error;
    }
    /* unlink first: core may start a new ask from inside done */
    asker_unlink(a, r);
    r->done(r->arg, &ans);
    free(r);
}

static void
asker_on_partial(const char *text, size_t len, void *arg)
{
    struct asker_req *r = arg;

    r->partial(r->arg, text, len);
}

/*
 * core's prompt is role-tagged strings with the system prompt first; the
 * LLM client wants the system text apart and user/assistant turns.
 */
static int
asker_ask(void *ctx, const struct core_prompt *p, core_ask_done_fn done,
          void *arg, uint64_t *handle)
{
    struct asker *a = ctx;
    struct llm_message *msgs = NULL;
    struct asker_req *r = NULL;
    struct llm_ask q;
    size_t i, n = 0;
    int rc = -1;

    memset(&q, 0, sizeof(q));
    msgs = calloc(p->n > 0 ? p->n : 1, sizeof(*msgs));
    r = calloc(1, sizeof(*r));
    if (msgs == NULL || r == NULL)
        goto out;
    q.system = "";
    for (i = 0; i < p->n; i++) {
        const struct core_msg *m = &p->msgs[i];

        if (strcmp(m->role, "system") == 0) {
            q.system = m->text;
            continue;
        }
        msgs[n].role = strcmp(m->role, "assistant") == 0 ? LLM_ROLE_ASSISTANT
                                                         : LLM_ROLE_USER;
        msgs[n].text = m->text;
        n++;
    }
    q.messages = msgs;
    q.nmessages = n;
    q.max_tokens = p->max_output_tokens;
    q.model = p->model;
    q.age_ms = p->age_ms; /* give_up_after runs from the job's creation */
    r->owner = a;
    r->id = ++a->next_id;
    r->done = done;
    r->partial = p->partial;
    r->arg = arg;
    q.partial = p->partial != NULL ? asker_on_partial : NULL;
    r->call = llm_ask(a->llm, &q, asker_on_done, r);
    if (r->call == NULL) {
        log_warnx("asker: the LLM client refused job=%lld",
                  (long long)p->job_id);
        goto out;
    }
    r->next = a->head;
    if (a->head != NULL)
        a->head->prev = r;
    a->head = r;
    a->n++;
    *handle = r->id;
    r = NULL; /* owned by the list until done or cancel */
    rc = 0;
out:
    free(msgs); /* llm_ask copies the messages */
    free(r);
    return rc;
}

static void
asker_cancel(void *ctx, uint64_t handle)
{
    struct asker *a = ctx;
    struct asker_req *r;

    for (r = a->head; r != NULL; r = r->next) {
        if (r->id == handle) {
            llm_cancel(r->call);
            asker_unlink(a, r);
            free(r);
            return;
        }
    }
}

struct asker *
asker_new(struct llm *llm)
{
    struct asker *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->llm = llm;
    a->iface.ctx = a;
    a->iface.ask = asker_ask;
    a->iface.cancel = asker_cancel;
    return a;
}

const struct core_asker *
asker_iface(struct asker *a)
{
    return &a->iface;
}

size_t
asker_in_flight(const struct asker *a)
{
    return a->n;
}

void
asker_free(struct asker *a)
{
    struct asker_req *r, *next;

    if (a == NULL)
        return;
    for (r = a->head; r != NULL; r = next) {
        next = r->next;
        llm_cancel(r->call);
        free(r);
    }
    free(a);
}
