/* stream: the pure planner of a streamed answer (see stream.h). */
#include "core/stream.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The separators a cut prefers, best first. */
static const char *const split_seps[] = {"\n\n", "\n", " "};

/*
 * Fenced code blocks: a line starting with ``` opens or closes one.  1 if
 * pos is inside a block (fences on lines that start before pos count),
 * with *open the line start of its opening fence.  Depends only on the
 * text before pos, so it is stable while the text grows.
 */
static int
fence_at(const char *s, size_t pos, size_t *open)
{
    size_t i = 0;
    const char *nl;
    int in = 0;

    while (i < pos) {
        if (pos - i >= 3 && memcmp(s + i, "```", 3) == 0) {
            if (!in)
                *open = i;
            in = !in;
        }
        if ((nl = memchr(s + i, '\n', pos - i)) == NULL)
            break;
        i = (size_t)(nl - s) + 1;
    }
    return in;
}

static int
has_fence(const char *s, size_t from, size_t to)
{
    return to - from >= 3 && memmem(s + from, to - from, "```", 3) != NULL;
}

/* The bytes a part starting at `at` may take: less room for the fences
 * stream_part_dup adds when a code block is at hand. */
static size_t
split_max(const char *s, size_t len, size_t at, size_t max)
{
    size_t open = 0, end = len - at > max ? at + max : len;

    if (max > 4 * STREAM_FENCE_RESERVE &&
        (fence_at(s, at, &open) || has_fence(s, at, end)))
        max -= STREAM_FENCE_RESERVE;
    return max;
}

/* Where to end the part that starts at `at` when more than max is left. */
static size_t
split_cut(const char *s, size_t len, size_t at, size_t max)
{
    size_t lim = at + max, cut = 0, i, k, n, open = 0;

    /* a block that opens well inside the window moves whole to the next
     * part rather than being cut */
    if (fence_at(s, lim, &open) && open > at + max / 4)
        return open;
    for (k = 0; k < sizeof(split_seps) / sizeof(split_seps[0]) && cut == 0;
         k++) {
        n = strlen(split_seps[k]);
        for (i = lim; i > at + max / 2; i--)
            if (memcmp(s + i - n, split_seps[k], n) == 0) {
                cut = i;
                break;
            }
    }
    if (cut == 0)
        cut = at + event_text_cut(s + at, len - at, max);
    if (cut <= at)
        cut = lim;
    return cut;
}

char *
stream_part_dup(const char *text, size_t from, size_t to)
{
    size_t open = 0, info = 0, n = to - from;
    int in_from = fence_at(text, from, &open);
    const char *pre = text + open + 3;
    char *out, *p;

    if (in_from) {
        while (open + 3 + info < from && pre[info] != '\n' &&
               info < STREAM_FENCE_INFO_MAX)
            info++;
        if (open + 3 + info < from && pre[info] != '\n')
            info = 0; /* too long to be a language name: drop it */
    }
    if ((out = malloc(n + info + STREAM_FENCE_RESERVE + 1)) == NULL)
        return NULL;
    p = out;
    if (in_from) {
        memcpy(p, "```", 3);
        memcpy(p + 3, pre, info);
        p[3 + info] = '\n';
        p += 4 + info;
    }
    memcpy(p, text + from, n);
    p += n;
    if (fence_at(text, to, &open)) {
        if (n > 0 && p[-1] != '\n')
            *p++ = '\n';
        memcpy(p, "```", 3);
        p += 3;
    }
    *p = '\0';
    return out;
}

/* The part's identity for the planner: its bytes and its fences. */
static uint64_t
part_hash(const char *text, size_t from, size_t to)
{
    size_t open;
    uint64_t h = stream_hash(text + from, to - from);

    if (fence_at(text, from, &open))
        h ^= 0x9e3779b97f4a7c15ULL;
    if (fence_at(text, to, &open))
        h ^= 0xc2b2ae3d27d4eb4fULL;
    return h;
}

size_t
stream_split_next(const char *text, size_t len, size_t at, size_t max)
{
    if (max < 16)
        max = 16;
    if (at >= len)
        return len;
    max = split_max(text, len, at, max);
    if (len - at <= max)
        return len;
    return split_cut(text, len, at, max);
}

size_t
stream_split_count(const char *text, size_t len, size_t max)
{
    size_t at = 0, n = 0;

    while (at < len) {
        at = stream_split_next(text, len, at, max);
        n++;
    }
    return n > 0 ? n : 1;
}

int
stream_reserve(struct stream *s, int n)
{
    struct stream_msg *m;
    int cap;

    if (n <= s->cap)
        return 0;
    if (n > STREAM_MSGS_MAX)
        return -1;
    cap = s->cap > 0 ? s->cap : 4;
    while (cap < n)
        cap *= 2;
    if (cap > STREAM_MSGS_MAX)
        cap = STREAM_MSGS_MAX;
    if ((m = realloc(s->msgs, (size_t)cap * sizeof(*m))) == NULL)
        return -1;
    memset(m + s->cap, 0, (size_t)(cap - s->cap) * sizeof(*m));
    s->msgs = m;
    s->cap = cap;
    return 0;
}

void
stream_release(struct stream *s)
{
    free(s->msgs);
    s->msgs = NULL;
    s->n = s->cap = 0;
}

uint64_t
stream_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int
msg_shows(const struct stream_msg *m, uint64_t hash, size_t len)
{
    return m->known && m->hash == hash && m->len == len;
}

/* Keeps the earliest of the waits seen so far. */
static void
step_wait(struct stream_step *out, int64_t at)
{
    if (out->op == STREAM_WAIT && at < out->at_ms)
        out->at_ms = at;
}

static void
step_set(struct stream_step *out, enum stream_op op, int part, size_t from,
         size_t to, int feedback, uint64_t hash)
{
    out->op = op;
    out->part = part;
    out->from = from;
    out->to = to;
    out->feedback = feedback;
    out->hash = hash;
}

void
stream_next(const struct stream *s, const char *text, size_t len, int final,
            int feedback, int64_t now_ms, struct stream_step *out)
{
    size_t from = 0, to, count = stream_split_count(text, len, s->text_max);
    int k, nparts = count > STREAM_MSGS_MAX ? STREAM_MSGS_MAX : (int)count;

    memset(out, 0, sizeof(*out));
    out->op = STREAM_WAIT;
    out->at_ms = INT64_MAX;
    for (k = 0; k < nparts; k++, from = to) {
        const struct stream_msg *m = &s->msgs[k];
        int fb = final && feedback && k == nparts - 1;
        uint64_t h;

        to = stream_split_next(text, len, from, s->text_max);
        h = part_hash(text, from, to);
        if (k >= s->n || m->id[0] == '\0') {
            if (to == from && !final)
                return; /* nothing to show in it yet */
            step_set(out, STREAM_POST, k, from, to, fb, h);
            return;
        }
        if (msg_shows(m, h, to - from) && (!fb || m->feedback))
            continue;
        if (now_ms < m->last_ms + s->interval_ms) {
            step_wait(out, m->last_ms + s->interval_ms);
            continue;
        }
        step_set(out, STREAM_EDIT, k, from, to, fb, h);
        out->controls_only = msg_shows(m, h, to - from);
        return;
    }
    if (final && s->n > nparts) {
        step_set(out, STREAM_DELETE, s->n - 1, 0, 0, 0, 0);
        return;
    }
    if (final && out->at_ms == INT64_MAX)
        out->op = STREAM_DONE;
}

int
stream_ids_encode(const struct stream *s, char *buf, size_t len)
{
    size_t at = 0;
    int k, n;

    if (len == 0)
        return -1;
    buf[0] = '\0';
    for (k = 0; k < s->n; k++) {
        const char *id = s->msgs[k].id[0] ? s->msgs[k].id : "-";

        n = snprintf(buf + at, len - at, "%s%s", k > 0 ? " " : "", id);
        if (n < 0 || (size_t)n >= len - at)
            return -1;
        at += (size_t)n;
    }
    return 0;
}

int
stream_ids_decode(struct stream *s, const char *ids)
{
    const char *p = ids;

    s->n = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        struct stream_msg *m;

        if (n == 0 || n > EVENT_ID_MAX || stream_reserve(s, s->n + 1) < 0)
            return -1;
        m = &s->msgs[s->n++];
        memset(m, 0, sizeof(*m));
        m->last_ms = INT64_MIN / 4; /* never edited by this process */
        if (!(n == 1 && p[0] == '-'))
            memcpy(m->id, p, n);
        p += n;
        if (*p == ' ')
            p++;
    }
    return 0;
}
