/* fuzz_telegram_format: markdown → HTML never crashes, always balances its
 * tags and never makes the visible text longer than the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/telegram_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every tag we open is closed in order (what Telegram's parser checks). */
static int
balanced(const char *h)
{
    char stack[64][8];
    int depth = 0;

    for (const char *p = h; (p = strchr(p, '<')) != NULL; p++) {
        int close = p[1] == '/';
        const char *q = p + 1 + close;
        size_t n = strcspn(q, " >");
        if (strchr(p, '>') == NULL || n == 0 || n >= 8)
            return 0;
        if (close) {
            if (depth == 0 || strncmp(stack[depth - 1], q, n) != 0 ||
                stack[depth - 1][n] != '\0')
                return 0;
            depth--;
        } else {
            if (depth == 64)
                return 0;
            memcpy(stack[depth], q, n);
            stack[depth++][n] = '\0';
        }
    }
    return depth == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *md = malloc(size + 1);
    char *h, *p;

    if (md == NULL)
        return 0;
    memcpy(md, data, size);
    md[size] = '\0';
    size = strlen(md); /* the formatter's input is a C string */
    h = telegram_format_html(md, size);
    p = telegram_format_plain(md, size);
    if (h != NULL) {
        if (!balanced(h))
            abort();
        if (telegram_format_visible_len(h, 1) >
            telegram_format_visible_len(md, 0))
            abort();
    }
    free(h);
    free(p);
    free(md);
    return 0;
}
