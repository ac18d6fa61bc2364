/* send_tally: what a connector's send tap reported for one batch of sends
 * in a test (tests/integration/test_discord.c, test_slack.c). */
#ifndef PARLEY_TESTS_SEND_TALLY_H
#define PARLEY_TESTS_SEND_TALLY_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

#define SEND_TALLY_MAX 1024

/*
 * The batch's send ids are tag | k, k in [0, n): the tag's bits keep them
 * apart from every other send of the test.  outcomes[k] counts the results
 * reported for send k (exactly one each is the contract); ok counts
 * SEND_OK; fake_max is the test's own: most requests in flight at its fake.
 */
struct send_tally {
    uint64_t tag;
    int n;
    int outcomes[SEND_TALLY_MAX];
    int ok, done;
    size_t fake_max;
};

/* Empty, for n (≤ SEND_TALLY_MAX) sends tagged tag; -1 if n is too big. */
int send_tally_init(struct send_tally *t, uint64_t tag, int n);
/* A send tap (discord_set_send_tap, slack_set_send_observer); arg is the
 * tally.  Sends outside the batch are ignored. */
void send_tally_note(void *arg, uint64_t send_id, const struct send_result *r);
/* Sends of the batch whose outcome count is not exactly one. */
int send_tally_not_once(const struct send_tally *t);

#endif
