/* send_tally: what a connector's send tap reported for a batch of sends. */
#include "tests/fakes/send_tally.h"

#include <string.h>

int
send_tally_init(struct send_tally *t, uint64_t tag, int n)
{
    memset(t, 0, sizeof(*t));
    if (n < 0 || n > SEND_TALLY_MAX)
        return -1;
    t->tag = tag;
    t->n = n;
    return 0;
}

void
send_tally_note(void *arg, uint64_t send_id, const struct send_result *r)
{
    struct send_tally *t = arg;
    uint64_t k = send_id & ~t->tag;

    if ((send_id & t->tag) != t->tag || k >= (uint64_t)t->n)
        return;
    t->outcomes[k]++;
    t->done++;
    if (r->status == SEND_OK)
        t->ok++;
}

int
send_tally_not_once(const struct send_tally *t)
{
    int bad = 0;

    for (int k = 0; k < t->n; k++)
        if (t->outcomes[k] != 1)
            bad++;
    return bad;
}
