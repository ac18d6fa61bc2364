/* history: which past messages of a conversation go into the prompt, and
 * a token estimate for text (pure). */
#ifndef PARLEY_HISTORY_H
#define PARLEY_HISTORY_H

#include <stddef.h>
#include <stdint.h>

/* A stored message, as the selection sees it. */
struct history_msg {
    const char *role; /* "user", "assistant" */
    const char *text;
    int64_t tokens; /* estimate stored with the row */
};

/*
 * Tokens one message costs in a prompt: llm_estimate_tokens() (llm/codec.h,
 * conservative, the same estimate the LLM client paces with) plus
 * LLM_TOKENS_PER_MESSAGE of framing.  Stored with each history row.
 */
int64_t history_estimate_tokens(const char *text, size_t len);

/*
 * The selection (SPEC §2 [llm]): given the conversation's messages newest
 * first, returns how many of the newest to keep: at most max_messages,
 * whose tokens sum to at most max_tokens, stopping at the first message
 * that does not fit (a gap in the middle would make the model misread the
 * conversation).  The prompt is then system + those (oldest first) + the
 * new message.
 */
size_t history_select(const struct history_msg *newest_first, size_t n,
                      int max_messages, int64_t max_tokens);

#endif
