/* asker: binds core's ask interface (core/core.h) to the LLM client
 * (llm/llm.h). */
#ifndef PARLEY_ASKER_H
#define PARLEY_ASKER_H

#include "core/core.h"

struct llm;
struct asker;

/*
 * The glue between two modules that must not know each other: core asks
 * with role-tagged messages and a numeric handle, the LLM client takes an
 * llm_ask and returns a call pointer.  One asker per daemon; asker_free
 * cancels what is in flight without calling core back.
 */
struct asker *asker_new(struct llm *llm);
void asker_free(struct asker *a);
/* The interface to hand to core_new(); valid while the asker lives. */
const struct core_asker *asker_iface(struct asker *a);
size_t asker_in_flight(const struct asker *a);

#endif
