/* router: is an event addressed to us, and what becomes of it (pure). */
#ifndef PARLEY_ROUTER_H
#define PARLEY_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

enum router_verdict {
    ROUTER_IGNORE = 0, /* not for us: acknowledge and drop */
    ROUTER_ANSWER,     /* ask the model */
    ROUTER_COMMAND,    /* run core_command */
    ROUTER_VOTE,       /* store the vote */
};

enum router_reason {
    ROUTER_R_OK = 0,
    ROUTER_R_INVALID,       /* event_check() failed */
    ROUTER_R_FROM_SELF,     /* our own message */
    ROUTER_R_FROM_BOT,      /* another bot: never answered (SPEC §3) */
    ROUTER_R_NOT_ADDRESSED, /* a group message without mention/reply/command */
    ROUTER_R_EMPTY,         /* nothing to answer (a sticker, a bare mention) */
    ROUTER_R_DUPLICATE,     /* seen recently (router_seen) */
};

/*
 * The decision from the event alone (SPEC §3): our own and other bots'
 * messages are ignored; a command addressed to us is a command; private
 * chats, mentions and replies to the bot are answered; the rest ignored.
 * Duplicates are a separate question (router_seen), because an id may be
 * remembered only once its job is durable.
 */
enum router_verdict router_classify(const struct event *ev,
                                    enum router_reason *why);
const char *router_reason_name(enum router_reason r);

/*
 * The recent-id set: (platform, chat, message id) of the last `max`
 * accepted messages, a fast path before the jobs table's unique key
 * (which stays the authority).  Fixed memory: a ring of 64-bit hashes and
 * an open-addressing index over it.  A hash collision would make
 * router_seen() say 1 for a new id: with 64-bit hashes and 65536 ids the
 * chance per message is ~2^-48.
 */
struct router;

struct router *router_new(size_t max);
void router_free(struct router *r);
/* 1 if the id was remembered and not yet pushed out, else 0. */
int router_seen(const struct router *r, const char *platform, const char *chat,
                const char *message_id);
void router_remember(struct router *r, const char *platform, const char *chat,
                     const char *message_id);
/* The 64-bit hash the set keys on (exposed for tests). */
uint64_t router_hash(const char *platform, const char *chat,
                     const char *message_id);

#endif
