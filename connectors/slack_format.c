/* slack_format: the model's Markdown → Slack mrkdwn, and the 4000-character cut
 * (pure). */
#include "connectors/slack_format.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define INLINE_DEPTH 4 /* nested emphasis levels converted */
#define SLACK_URL_SCAN                                                         \
    2100 /* how far back a cut looks for an open &…; or <…> */

/* Text: only & < > are special to Slack. */
static void
buf_esc(struct buf *b, const char *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        const char *rep = s[i] == '&'   ? "&amp;"
                          : s[i] == '<' ? "&lt;"
                          : s[i] == '>' ? "&gt;"
                                        : NULL;

        if (rep == NULL)
            continue;
        buf_add(b, s + run, i - run);
        buf_str(b, rep);
        run = i + 1;
    }
    buf_add(b, s + run, n - run);
}

/* s[i..n) starts with the delimiter d (len dl) closed later on the line;
 * returns the closing offset or 0.  The inner text must not start or end
 * with a blank (as CommonMark's flanking rules, roughly). */
static size_t
find_close(const char *s, size_t i, size_t n, const char *d, size_t dl)
{
    size_t j;

    if (i + dl >= n || s[i + dl] == ' ' || s[i + dl] == '\t')
        return 0;
    for (j = i + dl + 1; j + dl <= n; j++) {
        if (memcmp(s + j, d, dl) == 0 && s[j - 1] != ' ' && s[j - 1] != '\t') {
            /* "**" must not close a single '*' */
            if (dl == 1 && j + 1 < n && s[j + 1] == d[0])
                continue;
            return j;
        }
    }
    return 0;
}

static int
url_ok(const char *s, size_t n)
{
    if (!((n > 7 && strncmp(s, "http://", 7) == 0) ||
          (n > 8 && strncmp(s, "https://", 8) == 0) ||
          (n > 7 && strncmp(s, "mailto:", 7) == 0)))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '|' || s[i] == '<' || s[i] == '>' ||
            (unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

static void inline_fmt(struct buf *b, const char *s, size_t n, int depth);

/* Emphasis: open, the inner text converted, close. */
static void
emph(struct buf *b, const char *mark, const char *s, size_t n, int depth)
{
    buf_str(b, mark);
    inline_fmt(b, s, n, depth + 1);
    buf_str(b, mark);
}

static int
word_char(char c)
{
    return isalnum((unsigned char)c) || (unsigned char)c >= 0x80;
}

static void
inline_fmt(struct buf *b, const char *s, size_t n, int depth)
{
    size_t i = 0, run = 0, j;

#define FLUSH()                                                                \
    do {                                                                       \
        buf_esc(b, s + run, i - run);                                          \
    } while (0)

    while (i < n) {
        char c = s[i];

        if (c == '`') {
            const char *e = memchr(s + i + 1, '`', n - i - 1);

            if (e && e > s + i + 1) {
                FLUSH();
                buf_str(b, "`");
                buf_esc(b, s + i + 1, (size_t)(e - (s + i + 1)));
                buf_str(b, "`");
                i = (size_t)(e - s) + 1;
                run = i;
                continue;
            }
        } else if (depth < INLINE_DEPTH && c == '*' && i + 2 < n &&
                   s[i + 1] == '*' && s[i + 2] == '*' &&
                   (j = find_close(s, i, n, "***", 3)) != 0) {
            FLUSH();
            buf_str(b, "*");
            emph(b, "_", s + i + 3, j - i - 3, depth + 1);
            buf_str(b, "*");
            i = j + 3;
            run = i;
            continue;
        } else if (depth < INLINE_DEPTH &&
                   ((c == '*' && i + 1 < n && s[i + 1] == '*') ||
                    (c == '_' && i + 1 < n && s[i + 1] == '_' &&
                     (i == 0 || !word_char(s[i - 1]))))) {
            char d[3] = {c, c, '\0'};

            if ((j = find_close(s, i, n, d, 2)) != 0) {
                FLUSH();
                emph(b, "*", s + i + 2, j - i - 2, depth);
                i = j + 2;
                run = i;
                continue;
            }
        } else if (depth < INLINE_DEPTH && c == '~' && i + 1 < n &&
                   s[i + 1] == '~') {
            if ((j = find_close(s, i, n, "~~", 2)) != 0) {
                FLUSH();
                emph(b, "~", s + i + 2, j - i - 2, depth);
                i = j + 2;
                run = i;
                continue;
            }
        } else if (depth < INLINE_DEPTH &&
                   (c == '*' ||
                    (c == '_' && (i == 0 || !word_char(s[i - 1]))))) {
            char d[2] = {c, '\0'};

            if ((j = find_close(s, i, n, d, 1)) != 0 &&
                (c == '*' || j + 1 >= n || !word_char(s[j + 1]))) {
                FLUSH();
                emph(b, "_", s + i + 1, j - i - 1, depth);
                i = j + 1;
                run = i;
                continue;
            }
        } else if (c == '[') {
            const char *mid = memchr(s + i, ']', n - i);

            if (mid && (size_t)(mid - s) + 1 < n && mid[1] == '(') {
                size_t t0 = i + 1, t1 = (size_t)(mid - s), u0 = t1 + 2;
                const char *close = memchr(s + u0, ')', n - u0);

                if (close && t1 > t0 &&
                    url_ok(s + u0, (size_t)(close - s) - u0)) {
                    size_t u1 = (size_t)(close - s);

                    FLUSH();
                    buf_str(b, "<");
                    buf_esc(b, s + u0, u1 - u0);
                    buf_str(b, "|");
                    /* a label with '|' or '>' would end the link early */
                    for (size_t k = t0; k < t1; k++)
                        if (s[k] == '|')
                            buf_str(b, "/");
                        else
                            buf_esc(b, s + k, 1);
                    buf_str(b, ">");
                    i = u1 + 1;
                    run = i;
                    continue;
                }
            }
        } else if (c == '<') {
            const char *e = memchr(s + i, '>', n - i);

            if (e && url_ok(s + i + 1, (size_t)(e - s) - i - 1)) {
                FLUSH();
                buf_str(b, "<");
                buf_esc(b, s + i + 1, (size_t)(e - s) - i - 1);
                buf_str(b, ">");
                i = (size_t)(e - s) + 1;
                run = i;
                continue;
            }
        }
        i++;
    }
    FLUSH();
#undef FLUSH
}

/* "```lang" → 1 (a fence line). */
static int
is_fence(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    return n - i >= 3 && memcmp(s + i, "```", 3) == 0;
}

static void
line_fmt(struct buf *b, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    if (i < n && s[i] == '#') {
        size_t h = i;

        while (h < n && s[h] == '#' && h - i < 6)
            h++;
        if (h < n && s[h] == ' ') {
            while (h < n && s[h] == ' ')
                h++;
            while (n > h && (s[n - 1] == ' ' || s[n - 1] == '#'))
                n--;
            if (n > h)
                emph(b, "*", s + h, n - h, 0);
            return;
        }
    }
    /* list items keep their indentation */
    i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i + 1 < n && (s[i] == '-' || s[i] == '*' || s[i] == '+') &&
        s[i + 1] == ' ') {
        buf_add(b, s, i);
        buf_str(b, "• ");
        inline_fmt(b, s + i + 2, n - i - 2, 0);
        return;
    }
    inline_fmt(b, s, n, 0);
}

char *
slack_format(const char *md, size_t len)
{
    struct buf b = {NULL, 0, 0, 0};
    size_t at = 0;
    int in_code = 0;

    buf_add(&b, "", 0);
    while (at < len) {
        const char *nl = memchr(md + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - md) : len;
        const char *line = md + at;
        size_t n = end - at;

        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (is_fence(line, n)) {
            /* the language tag would show as the code's first line */
            buf_str(&b, "```");
            in_code = !in_code;
        } else if (in_code)
            buf_esc(&b, line, n);
        else
            line_fmt(&b, line, n);
        if (nl)
            buf_str(&b, "\n");
        at = nl ? end + 1 : len;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

size_t
slack_format_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* Bytes of the longest prefix of s with at most max code points. */
static size_t
prefix_bytes(const char *s, size_t len, size_t max)
{
    size_t chars = 0, i = 0;

    while (i < len) {
        size_t step = 1;

        while (i + step < len && ((unsigned char)s[i + step] & 0xc0) == 0x80)
            step++;
        if (chars + 1 > max)
            break;
        chars++;
        i += step;
    }
    return i;
}

/* 1 if a cut at byte k falls inside "&…;" or "<…>". */
static int
inside_token(const char *s, size_t k)
{
    for (size_t j = k; j > 0 && k - j < SLACK_URL_SCAN; j--) {
        char c = s[j - 1];

        if (c == '>' || c == ';' || c == '\n')
            return 0;
        if (c == '<' || c == '&')
            return 1;
    }
    return 0;
}

static size_t
fences_in(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(s + i, "```", 3) == 0) {
            count++;
            i += 2;
        }
    return count;
}

char **
slack_format_split(const char *s, size_t max_chars, size_t *n)
{
    size_t len = strlen(s), at = 0, cap = 4, count = 0;
    char **out = calloc(cap, sizeof(*out));
    int reopen = 0;

    *n = 0;
    if (out == NULL)
        return NULL;
    if (max_chars < 64)
        max_chars = 64;
    do {
        /* room for a reopened and a closing fence */
        size_t budget = max_chars - 8, lim, cut = 0, rest = len - at;
        struct buf b = {NULL, 0, 0, 0};
        const char *seps[] = {"\n\n", "\n", " "};

        lim = at + prefix_bytes(s + at, rest, budget);
        if (lim >= len)
            cut = len;
        for (size_t k = 0; k < 3 && cut == 0; k++) {
            size_t sl = strlen(seps[k]);

            for (size_t i = lim; i > at + (lim - at) / 2 && i >= sl; i--)
                if (memcmp(s + i - sl, seps[k], sl) == 0 &&
                    !inside_token(s, i - sl)) {
                    cut = i;
                    break;
                }
        }
        if (cut == 0) {
            cut = lim;
            while (cut > at + 1 && inside_token(s, cut))
                cut--;
            if (cut <= at)
                cut = lim;
        }
        if (reopen)
            buf_str(&b, "```\n");
        buf_add(&b, s + at, cut - at);
        reopen = (fences_in(s + at, cut - at) + (size_t)reopen) % 2;
        if (reopen && cut < len)
            buf_str(&b, "\n```");
        if (b.oom || b.p == NULL) {
            free(b.p);
            goto fail;
        }
        if (count == cap) {
            char **p = realloc(out, cap * 2 * sizeof(*out));

            if (p == NULL) {
                free(b.p);
                goto fail;
            }
            out = p;
            cap *= 2;
        }
        out[count++] = b.p;
        at = cut;
    } while (at < len);
    *n = count;
    return out;
fail:
    for (size_t i = 0; i < count; i++)
        free(out[i]);
    free(out);
    return NULL;
}
