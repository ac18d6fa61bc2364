/* fuzz_discord_format: Markdown → Discord never crashes, stays bounded,
 * leaves text with nothing to convert alone, opens no code block it does
 * not close, and fits what it must fit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/discord_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ``` runs in s. */
static size_t
fences(const char *s)
{
    size_t n = 0;

    for (const char *p = s; (p = strstr(p, "```")) != NULL; p += 3)
        n++;
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *md = malloc(size + 1), *out, *fit;
    size_t len;

    if (md == NULL)
        return 0;
    memcpy(md, data, size);
    md[size] = '\0';
    len = strlen(md); /* the connector's input is a C string */
    out = discord_format(md, len);
    if (out != NULL) {
        size_t n = strlen(out);

        /* a table pads each cell to at most 60 columns (≤ 21 × a row of
         * "||"), ≤ 16 × its source + 1 KiB; a rule is 24 bytes for 3 */
        if (n > 64 * len + 64)
            abort();
        /* none of the characters any conversion starts with: unchanged */
        if (strpbrk(md, "|#-*_<!+~") == NULL && strcmp(out, md) != 0)
            abort();
        /* without ticks or ~~~ in the input, every ``` we add is paired */
        if (strchr(md, '`') == NULL && strstr(md, "~~~") == NULL &&
            fences(out) % 2 != 0)
            abort();
        /* the same text converts the same way (edits of a stream) */
        {
            char *again = discord_format(md, len);

            if (again != NULL && strcmp(again, out) != 0)
                abort();
            free(again);
        }
    }
    fit = discord_format_fit(md, 2000);
    if (fit != NULL && len <= 2000 && strlen(fit) > 2000)
        abort();
    /* every prefix of a short text (a stream) converts without trouble */
    if (len <= 256)
        for (size_t k = 0; k < len; k++)
            free(discord_format(md, k));
    free(fit);
    free(out);
    free(md);
    return 0;
}
