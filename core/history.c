/* history: which past messages of a conversation go into the prompt, and
 * a token estimate for text (pure). */
#include "core/history.h"

#include "llm/codec.h"

int64_t
history_estimate_tokens(const char *text, size_t len)
{
    return llm_estimate_tokens(text, len) + LLM_TOKENS_PER_MESSAGE;
}

size_t
history_select(const struct history_msg *newest_first, size_t n,
               int max_messages, int64_t max_tokens)
{
    int64_t sum = 0;
    size_t k = 0;

    if (max_messages <= 0 || max_tokens <= 0)
        return 0;
    while (k < n && k < (size_t)max_messages) {
        int64_t t = newest_first[k].tokens > 0 ? newest_first[k].tokens : 0;

        if (sum + t > max_tokens)
            break;
        sum += t;
        k++;
    }
    return k;
}
