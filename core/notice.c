/* notice: the text of a 429 reply — which limit, how much, how long (pure). */
#include "core/notice.h"

#include <stdio.h>

void
notice_wait(char *buf, size_t len, int64_t wait_ms)
{
    int64_t s, m, h;

    if (wait_ms < 1)
        wait_ms = 1;
    s = (wait_ms + 999) / 1000;
    if (s < 120) {
        snprintf(buf, len, "%lld s", (long long)s);
        return;
    }
    m = (s + 59) / 60;
    if (m < 60) {
        snprintf(buf, len, "%lld min", (long long)m);
        return;
    }
    if (m < 24 * 60) {
        if (m % 60 == 0)
            snprintf(buf, len, "%lld h", (long long)(m / 60));
        else
            snprintf(buf, len, "%lld h %lld min", (long long)(m / 60),
                     (long long)(m % 60));
        return;
    }
    h = (s + 3599) / 3600;
    if (h % 24 == 0)
        snprintf(buf, len, "%lld d", (long long)(h / 24));
    else
        snprintf(buf, len, "%lld d %lld h", (long long)(h / 24),
                 (long long)(h % 24));
}

void
notice_span(char *buf, size_t len, int64_t ms)
{
    if (ms % 1000 != 0)
        snprintf(buf, len, "%lld ms", (long long)ms);
    else if (ms < 120000)
        snprintf(buf, len, "%lld s", (long long)(ms / 1000));
    else if (ms == 86400000)
        snprintf(buf, len, "day");
    else if (ms % 86400000 == 0)
        snprintf(buf, len, "%lld d", (long long)(ms / 86400000));
    else if (ms == 3600000)
        snprintf(buf, len, "hour");
    else if (ms % 3600000 == 0)
        snprintf(buf, len, "%lld h", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, len, "%lld min", (long long)(ms / 60000));
    else
        snprintf(buf, len, "%lld s", (long long)(ms / 1000));
}

int
notice_format(char *buf, size_t len, const struct admit_result *res)
{
    char wait[32], span[32];
    long long used = (long long)res->used, n = (long long)res->rate.n;
    int rc;

    notice_wait(wait, sizeof(wait), res->wait_ms);
    notice_span(span, sizeof(span), res->rate.window_ms);
    if (used < 0)
        used = 0;
    switch (res->scope) {
    case ADMIT_USER:
        rc = snprintf(buf, len,
                      "429 — you have used %lld of %lld requests per %s;"
                      " try again in %s.",
                      used, n, span, wait);
        break;
    case ADMIT_CHAT:
        rc = snprintf(buf, len,
                      "429 — this chat has used %lld of %lld requests per %s;"
                      " try again in %s.",
                      used, n, span, wait);
        break;
    case ADMIT_GLOBAL:
        rc = snprintf(buf, len,
                      "429 — everyone together has used %lld of %lld requests"
                      " per %s; try again in %s.",
                      used, n, span, wait);
        break;
    case ADMIT_USER_TOKENS:
        rc = snprintf(buf, len,
                      "429 — you have used your token budget (%lld of %lld"
                      " tokens per %s); try again in %s.",
                      used, n, span, wait);
        break;
    case ADMIT_CHAT_TOKENS:
        rc = snprintf(buf, len,
                      "429 — this chat has used its token budget (%lld of %lld"
                      " tokens per %s); try again in %s.",
                      used, n, span, wait);
        break;
    case ADMIT_FULL:
        rc = snprintf(buf, len,
                      "429 — too many people are asking right now;"
                      " try again in %s.",
                      wait);
        break;
    default:
        return -1;
    }
    if (rc < 0 || (size_t)rc >= len)
        return -1;
    return rc;
}
