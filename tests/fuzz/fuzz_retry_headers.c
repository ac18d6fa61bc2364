/* fuzz_retry_headers: the provider wait-header parsers on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/errclass.h"
#include "llm/retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
header_all(void *arg, const char *name)
{
    (void)name;
    return arg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t wall = INT64_C(1795000000000); /* a fixed "now" */
    char *s = malloc(size + 1);
    int64_t ms;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (retry_parse_seconds(s, &ms) == 0 && ms < 0)
        abort();
    if (retry_parse_ms(s, &ms) == 0 && ms < 0)
        abort();
    if (retry_parse_duration(s, &ms) == 0 && ms < 0)
        abort();
    (void)retry_parse_http_date(s, wall, &ms);
    (void)retry_parse_rfc3339(s, wall, &ms);
    ms = retry_asked_wait(ERRCLASS_RATE_LIMITED, header_all, s, wall);
    if (ms > RETRY_ASKED_MAX_MS)
        abort();
    free(s);
    return 0;
}
