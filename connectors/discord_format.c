/* discord_format: the model's Markdown → what Discord renders (pure). */
#include "connectors/discord_format.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define TICKS_MAX 16    /* longer backtick runs never delimit code */
#define SCAN_MAX 2048   /* how far a link destination or <…> is looked for */
#define ALT_MAX 512     /* an image's alt text */
#define TABLE_GROWTH 16 /* a table's rendering ≤ 16 × its source + 1 KiB */

static int
blank(char c)
{
    return c == ' ' || c == '\t';
}

static int
space(char c)
{
    return blank(c) || c == '\n' || c == '\r';
}

static int
word_char(char c)
{
    return isalnum((unsigned char)c) || (unsigned char)c >= 0x80;
}

/* ---- display width ---- */

/* Zero-width: combining marks, variation selectors, joiners. */
static int
cp_zero(uint32_t c)
{
    return (c >= 0x0300 && c <= 0x036f) || (c >= 0x1ab0 && c <= 0x1aff) ||
           (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x200b && c <= 0x200f) ||
           (c >= 0x20d0 && c <= 0x20ff) || (c >= 0xfe00 && c <= 0xfe0f) ||
           (c >= 0xfe20 && c <= 0xfe2f) || (c >= 0xe0100 && c <= 0xe01ef);
}

/* Two columns in a monospace font: East Asian wide and most emoji. */
static int
cp_wide(uint32_t c)
{
    return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) ||
           (c >= 0x3041 && c <= 0x33ff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xa000 && c <= 0xa4cf) ||
           (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
           (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
           (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
           (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd);
}

/* One code point at s[i]: its bytes (≥ 1; a bad sequence is one byte). */
static size_t
utf8_get(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    size_t k, n = s[i] >= 0xf0 ? 4 : s[i] >= 0xe0 ? 3 : s[i] >= 0xc0 ? 2 : 1;
    uint32_t c = n == 4 ? s[i] & 0x07u : n == 3 ? s[i] & 0x0fu : s[i] & 0x1fu;

    if (n == 1 || s[i] > 0xf4 || i + n > len) {
        *cp = s[i] < 0x80 ? s[i] : 0xfffd;
        return 1;
    }
    for (k = 1; k < n; k++) {
        if ((s[i + k] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        c = (c << 6) | (s[i + k] & 0x3fu);
    }
    *cp = c;
    return n;
}

size_t
discord_format_width(const char *s, size_t len)
{
    size_t i = 0, w = 0;

    while (i < len) {
        uint32_t c;

        i += utf8_get((const unsigned char *)s, len, i, &c);
        w += cp_zero(c) ? 0 : cp_wide(c) ? 2 : 1;
    }
    return w;
}

/* ---- inline ---- */

static size_t
ticks(const char *s, size_t i, size_t n)
{
    size_t k = 0;

    while (i + k < n && s[i + k] == '`')
        k++;
    return k;
}

/* The end of the code span whose backtick run starts at s[i] (closed by a
 * run of the same length), 0 if it has no partner. */
static size_t
code_end(const char *s, size_t i, size_t n)
{
    size_t k = ticks(s, i, n), j = i + k;

    if (k > TICKS_MAX)
        return 0;
    while (j < n) {
        size_t m;

        if (s[j] != '`') {
            j++;
            continue;
        }
        if ((m = ticks(s, j, n)) == k)
            return j + m;
        j += m;
    }
    return 0;
}

static const struct {
    const char *tag, *md;
} html_tags[] = {
    {"<br>", "\n"},   {"<br/>", "\n"},    {"<br />", "\n"},    {"<b>", "**"},
    {"</b>", "**"},   {"<strong>", "**"}, {"</strong>", "**"}, {"<i>", "*"},
    {"</i>", "*"},    {"<em>", "*"},      {"</em>", "*"},      {"<u>", "__"},
    {"</u>", "__"},   {"<s>", "~~"},      {"</s>", "~~"},      {"<del>", "~~"},
    {"</del>", "~~"}, {"<strike>", "~~"}, {"</strike>", "~~"},
};

/* An HTML tag we rewrite at s[i]: its length (and *md), else 0. */
static size_t
html_tag(const char *s, size_t i, size_t n, const char **md)
{
    for (size_t t = 0; t < sizeof(html_tags) / sizeof(html_tags[0]); t++) {
        const char *tag = html_tags[t].tag;
        size_t k, tl = strlen(tag);

        if (n - i < tl)
            continue;
        for (k = 0; k < tl; k++)
            if (tolower((unsigned char)s[i + k]) != tag[k])
                break;
        if (k == tl) {
            *md = html_tags[t].md;
            return tl;
        }
    }
    return 0;
}

/*
 * The end of what starts at s[i] and is copied as is: a \-escape, a code
 * span (a backtick run without a partner: the rest of the line, which
 * Discord might pair with a later one), a link destination "](…)", a bare
 * URL, a <…> token (mention, emoji, timestamp, autolink).  0 if none.
 */
static size_t
skip_at(const char *s, size_t i, size_t n)
{
    size_t j, e;

    if (s[i] == '\\' && i + 1 < n && ispunct((unsigned char)s[i + 1]))
        return i + 2;
    if (s[i] == '`')
        return (e = code_end(s, i, n)) != 0 ? e : n;
    if (s[i] == ']' && i + 1 < n && s[i + 1] == '(') {
        for (j = i + 2; j < n && j < i + SCAN_MAX && !space(s[j]); j++)
            if (s[j] == ')')
                return j + 1;
        return 0;
    }
    if ((n - i > 7 && memcmp(s + i, "http://", 7) == 0) ||
        (n - i > 8 && memcmp(s + i, "https://", 8) == 0)) {
        for (j = i; j < n && !space(s[j]); j++)
            ;
        return j;
    }
    if (s[i] == '<' && i + 1 < n && !space(s[i + 1])) {
        for (j = i + 1; j < n && j < i + SCAN_MAX && !space(s[j]); j++)
            if (s[j] == '>')
                return j + 1;
    }
    return 0;
}

/* "__" at s[i] opening strong emphasis (not inside a word, not next to a
 * '*': "**__x__**" is Discord's bold underline): where it closes, else 0.
 * *none is set when no closer is left on the line at all. */
static size_t
under_close(const char *s, size_t i, size_t n, int *none)
{
    size_t j, e;

    if (i + 2 >= n || s[i + 1] != '_' || space(s[i + 2]) || s[i + 2] == '_')
        return 0;
    if (i > 0 && (word_char(s[i - 1]) || s[i - 1] == '_' || s[i - 1] == '*'))
        return 0;
    for (j = i + 2; j + 1 < n;) {
        if ((e = skip_at(s, j, n)) != 0) {
            j = e;
            continue;
        }
        if (s[j] == '_' && s[j + 1] == '_' && !space(s[j - 1]) &&
            s[j - 1] != '_' &&
            (j + 2 >= n ||
             (!word_char(s[j + 2]) && s[j + 2] != '_' && s[j + 2] != '*')))
            return j;
        j++;
    }
    *none = 1;
    return 0;
}

/* "![alt](url)" at s[i]: its end, with the alt and url spans; else 0. */
static size_t
image_at(const char *s, size_t i, size_t n, size_t sp[4])
{
    size_t j, k;

    if (i + 1 >= n || s[i + 1] != '[')
        return 0;
    for (j = i + 2; j < n && j < i + 2 + ALT_MAX && s[j] != ']'; j++)
        if (s[j] == '[')
            return 0;
    if (j + 1 >= n || s[j] != ']' || s[j + 1] != '(')
        return 0;
    sp[0] = i + 2;
    sp[1] = j;
    for (k = j + 2; k < n && blank(s[k]); k++)
        ;
    sp[2] = k;
    while (k < n && k < sp[2] + SCAN_MAX && s[k] != ')' && !blank(s[k]))
        k++;
    sp[3] = k;
    /* a "title" after the URL is dropped */
    while (k < n && k < sp[2] + SCAN_MAX && s[k] != ')')
        k++;
    if (k >= n || s[k] != ')' || sp[3] == sp[2])
        return 0;
    return k + 1;
}

static void
image_put(struct buf *b, const char *s, const size_t sp[4])
{
    size_t a0 = sp[0], a1 = sp[1];

    while (a0 < a1 && blank(s[a0]))
        a0++;
    while (a1 > a0 && blank(s[a1 - 1]))
        a1--;
    if (a1 == a0) {
        buf_add(b, s + sp[2], sp[3] - sp[2]);
        return;
    }
    buf_str(b, "[");
    buf_add(b, s + a0, a1 - a0);
    buf_str(b, "](");
    buf_add(b, s + sp[2], sp[3] - sp[2]);
    buf_str(b, ")");
}

/* One line (or a part of one) outside code blocks.  No construct jumps
 * over the pending "__" closer, so an opened ** is always closed. */
static void
inline_fmt(struct buf *b, const char *s, size_t n)
{
    size_t i = 0, run = 0, close = 0, e, sp[4];
    int none = 0;
    const char *md;

#define FLUSH() buf_add(b, s + run, i - run)
#define JUMPS(end) (close == 0 || close < i || close >= (end))

    while (i < n) {
        if (close != 0 && i == close) {
            FLUSH();
            buf_str(b, "**");
            i += 2;
            run = i;
            close = 0;
            continue;
        }
        if (s[i] == '<' && (e = html_tag(s, i, n, &md)) != 0 && JUMPS(i + e)) {
            FLUSH();
            buf_str(b, md);
            i += e;
            run = i;
            continue;
        }
        if ((e = skip_at(s, i, n)) != 0 && JUMPS(e)) {
            i = e;
            continue;
        }
        if (s[i] == '!' && (e = image_at(s, i, n, sp)) != 0 && JUMPS(e)) {
            FLUSH();
            image_put(b, s, sp);
            i = e;
            run = i;
            continue;
        }
        if (s[i] == '_' && close == 0 && !none &&
            (e = under_close(s, i, n, &none)) != 0) {
            FLUSH();
            buf_str(b, "**");
            close = e;
            i += 2;
            run = i;
            continue;
        }
        i++;
    }
    FLUSH();
#undef FLUSH
#undef JUMPS
}

/*
 * s without its paired ** and __ (and in a cell ~~): each kind removed
 * when it appears an even number of times outside code.  In a cell (a
 * code block shows everything literally) code spans also lose their
 * ticks, \x is x, and <br> and tabs are blanks.
 */
static void
plain_fmt(struct buf *b, const char *s, size_t n, int cell)
{
    static const char *const pairs[] = {"**", "__", "~~"};
    size_t count[3] = {0, 0, 0}, np = cell ? 3 : 2, i, e, k;
    const char *md;

    for (i = 0; i < n;) {
        if (s[i] == '\\') {
            i += 2;
            continue;
        }
        if (s[i] == '`' && (e = code_end(s, i, n)) != 0) {
            i = e;
            continue;
        }
        for (k = 0; k < np; k++)
            if (i + 1 < n && memcmp(s + i, pairs[k], 2) == 0)
                break;
        i += k < np ? 2 : 1;
        if (k < np)
            count[k]++;
    }
    for (i = 0; i < n;) {
        if (s[i] == '\\' && i + 1 < n) {
            if (cell && ispunct((unsigned char)s[i + 1]))
                buf_add(b, s + i + 1, 1);
            else
                buf_add(b, s + i, 2);
            i += 2;
            continue;
        }
        if (s[i] == '`' && (e = code_end(s, i, n)) != 0) {
            size_t t = ticks(s, i, n), c0 = i + t, c1 = e - t;

            if (!cell)
                buf_add(b, s + i, e - i);
            else {
                /* CommonMark: one blank each side is padding */
                if (c1 - c0 >= 2 && s[c0] == ' ' && s[c1 - 1] == ' ') {
                    c0++;
                    c1--;
                }
                buf_add(b, s + c0, c1 - c0);
            }
            i = e;
            continue;
        }
        if (cell && s[i] == '<' && (e = html_tag(s, i, n, &md)) != 0 &&
            md[0] == '\n') {
            buf_str(b, " ");
            i += e;
            continue;
        }
        for (k = 0; k < np; k++)
            if (i + 1 < n && memcmp(s + i, pairs[k], 2) == 0)
                break;
        if (k < np && count[k] % 2 == 0) {
            i += 2;
            continue;
        }
        if (k < np) {
            buf_add(b, s + i, 2);
            i += 2;
            continue;
        }
        buf_add(b, cell && s[i] == '\t' ? " " : s + i, 1);
        i++;
    }
}

/* ---- lines ---- */

/* "---", "***", "___" (3 or more, blanks allowed between). */
static int
is_rule(const char *s, size_t n)
{
    size_t i = 0, count = 0;
    char c = 0;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    for (; i < n; i++) {
        if (blank(s[i]))
            continue;
        if ((s[i] != '-' && s[i] != '*' && s[i] != '_') || (c && s[i] != c))
            return 0;
        c = s[i];
        count++;
    }
    return count >= 3;
}

/* "#### text" to "###### text": the text (closing #'s dropped) in h[]. */
static int
deep_heading(const char *s, size_t n, size_t h[2])
{
    size_t i = 0, k, e, t;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    for (k = i; k < n && s[k] == '#'; k++)
        ;
    if (k - i < 4 || k - i > 6 || (k < n && !blank(s[k])))
        return 0;
    while (k < n && blank(s[k]))
        k++;
    for (e = n; e > k && blank(s[e - 1]); e--)
        ;
    for (t = e; t > k && s[t - 1] == '#'; t--)
        ;
    if (t < e && (t == k || blank(s[t - 1])))
        for (e = t; e > k && blank(s[e - 1]); e--)
            ;
    if (e == k)
        return 0;
    h[0] = k;
    h[1] = e;
    return 1;
}

static void
line_fmt(struct buf *b, const char *s, size_t n)
{
    size_t h[2], i = 0;

    if (is_rule(s, n)) {
        buf_str(b, DISCORD_FORMAT_RULE);
        return;
    }
    if (deep_heading(s, n, h)) {
        struct buf t = {NULL, 0, 0, 0};

        /* its own ** inside would end the bold early */
        plain_fmt(&t, s + h[0], h[1] - h[0], 0);
        if (t.oom)
            b->oom = 1;
        else if (t.len > 0) {
            buf_str(b, "**");
            inline_fmt(b, t.p, t.len);
            buf_str(b, "**");
            free(t.p);
            return;
        }
        free(t.p);
    }
    while (i < n && s[i] == ' ')
        i++;
    if (i + 1 < n && s[i] == '+' && blank(s[i + 1])) {
        buf_add(b, s, i);
        buf_str(b, "-");
        inline_fmt(b, s + i + 1, n - i - 1);
        return;
    }
    inline_fmt(b, s, n);
}

struct line {
    size_t at, n, next; /* start, length without "\r\n", next line */
    int nl;             /* ends with a newline */
};

static void
line_get(const char *md, size_t len, size_t at, struct line *l)
{
    const char *nl = memchr(md + at, '\n', len - at);
    size_t end = nl ? (size_t)(nl - md) : len;

    l->at = at;
    l->nl = nl != NULL;
    l->next = nl ? end + 1 : len;
    l->n = end - at;
    if (l->n > 0 && md[at + l->n - 1] == '\r')
        l->n--;
}

/* A fence line: its character and run length in *c and *k, 0 if none. */
static int
fence_open(const char *s, size_t n, char *c, size_t *k)
{
    size_t i = 0;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    if (i == n || (s[i] != '`' && s[i] != '~'))
        return 0;
    *c = s[i];
    for (*k = 0; i < n && s[i] == *c; i++)
        (*k)++;
    /* "```a```" on one line is inline code, not a fence */
    return *k >= 3 && (*c == '~' || memchr(s + i, '`', n - i) == NULL);
}

static int
fence_close(const char *s, size_t n, char c, size_t k)
{
    size_t i = 0, m = 0;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    for (; i < n && s[i] == c; i++)
        m++;
    while (i < n && blank(s[i]))
        i++;
    return m >= k && i == n;
}

/*
 * A fenced block at `at`: copied as is, through its closing fence (or to
 * the end: core closes a fence its cut leaves open).  A ~~~ fence, which
 * Discord does not know, becomes ```, closed at the end if left open.
 * Returns the end of the block, 0 when at is no fence.
 */
static size_t
fence_block(struct buf *b, const char *md, size_t len, size_t at)
{
    struct line l = {0, 0, 0, 0}, o;
    size_t k, i0, i1, body, end;
    char c;
    int closed = 0;

    line_get(md, len, at, &o);
    if (!fence_open(md + at, o.n, &c, &k))
        return 0;
    body = end = o.next;
    while (end < len) {
        line_get(md, len, end, &l);
        end = l.next;
        if (fence_close(md + l.at, l.n, c, k)) {
            closed = 1;
            break;
        }
    }
    if (c == '`' || memmem(md + body, end - body, "```", 3) != NULL) {
        buf_add(b, md + at, end - at);
        return end;
    }
    /* the language: the first word after the ~'s */
    for (i0 = at; md[i0] != '~'; i0++)
        ;
    for (i0 += k; i0 < at + o.n && blank(md[i0]); i0++)
        ;
    for (i1 = i0; i1 < at + o.n && !blank(md[i1]); i1++)
        ;
    buf_str(b, "```");
    buf_add(b, md + i0, i1 - i0);
    buf_add(b, md + at + o.n, o.next - at - o.n);
    if (closed) {
        buf_add(b, md + body, l.at - body);
        buf_str(b, "```");
        buf_add(b, md + l.at + l.n, l.next - l.at - l.n);
    } else {
        buf_add(b, md + body, end - body);
        if (end > body && md[end - 1] != '\n')
            buf_str(b, "\n");
        else if (end == body && !o.nl)
            buf_str(b, "\n");
        buf_str(b, "```");
    }
    return end;
}

/* ---- tables ---- */

struct span {
    size_t a, z; /* [a, z) */
};

/*
 * Cells of a table row: split at unescaped '|' outside code spans, the
 * outer pipes dropped.  Returns the count (≤ max) or -1: no pipe at all,
 * or more than max cells.
 */
static int
row_split(const char *s, size_t n, struct span *c, int max)
{
    size_t i = 0, start, e;
    int count = 0, pipes = 0;

    while (i < n && blank(s[i]))
        i++;
    while (n > i && blank(s[n - 1]))
        n--;
    if (i < n && s[i] == '|') {
        i++;
        pipes++;
    }
    if (n > i && s[n - 1] == '|' && (n < 2 || s[n - 2] != '\\')) {
        n--;
        pipes++;
    }
    for (start = i; i < n;) {
        if (s[i] == '\\') {
            i += 2;
            continue;
        }
        if (s[i] == '`') {
            i = (e = code_end(s, i, n)) != 0 ? e : i + ticks(s, i, n);
            continue;
        }
        if (s[i] == '|') {
            if (count == max - 1)
                return -1;
            c[count].a = start;
            c[count++].z = i;
            pipes++;
            start = i + 1;
        }
        i++;
    }
    if (pipes == 0)
        return -1;
    c[count].a = start;
    c[count++].z = n < start ? start : n;
    return count;
}

static void
span_trim(const char *s, struct span *c)
{
    while (c->a < c->z && blank(s[c->a]))
        c->a++;
    while (c->z > c->a && blank(s[c->z - 1]))
        c->z--;
}

/* The delimiter row's cells: :--- left, :---: center, ---: right. */
static int
delim_cell(const char *s, struct span c, char *align)
{
    size_t i = c.a, d = 0;
    int left = 0, right = 0;

    span_trim(s, &c);
    i = c.a;
    if (i < c.z && s[i] == ':') {
        left = 1;
        i++;
    }
    for (; i < c.z && s[i] == '-'; i++)
        d++;
    if (i < c.z && s[i] == ':') {
        right = 1;
        i++;
    }
    *align = left && right ? 'c' : right ? 'r' : 'l';
    return d > 0 && i == c.z;
}

/* A delimiter row still being written (the text's last, unfinished line):
 * a '|' then only '|', ':', '-' and blanks. */
static int
delim_partial(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && blank(s[i]))
        i++;
    if (i == n || s[i] != '|')
        return 0;
    for (; i < n; i++)
        if (s[i] != '|' && s[i] != ':' && s[i] != '-' && !blank(s[i]))
            return 0;
    return 1;
}

struct table {
    struct buf text; /* the cells' plain text, one after the other */
    struct span *c;  /* cells, into text */
    size_t nc, cap;  /* cells used and allocated */
    size_t *row;     /* first cell of each row; row[nrow] = nc */
    size_t nrow, rcap;
    size_t ncol, w[DISCORD_FORMAT_COLS_MAX];
    char align[DISCORD_FORMAT_COLS_MAX];
};

static int
table_row(struct table *t, const char *s, const struct span *c, int count)
{
    if (t->nc + (size_t)count > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct span *p;

        while (cap < t->nc + (size_t)count)
            cap *= 2;
        if ((p = realloc(t->c, cap * sizeof(*p))) == NULL)
            return -1;
        t->c = p;
        t->cap = cap;
    }
    if (t->nrow + 2 > t->rcap) {
        size_t cap = t->rcap ? t->rcap * 2 : 16, *p;

        if ((p = realloc(t->row, cap * sizeof(*p))) == NULL)
            return -1;
        t->row = p;
        t->rcap = cap;
    }
    t->row[t->nrow++] = t->nc;
    for (int k = 0; k < count; k++) {
        struct span cell = c[k];
        size_t w;

        span_trim(s, &cell);
        t->c[t->nc].a = t->text.len;
        plain_fmt(&t->text, s + cell.a, cell.z - cell.a, 1);
        t->c[t->nc].z = t->text.len;
        w = discord_format_width(t->text.p + t->c[t->nc].a,
                                 t->text.len - t->c[t->nc].a);
        if (w > DISCORD_FORMAT_PAD_MAX)
            w = DISCORD_FORMAT_PAD_MAX;
        if (w > t->w[k])
            t->w[k] = w;
        t->nc++;
    }
    if ((size_t)count > t->ncol)
        t->ncol = (size_t)count;
    t->row[t->nrow] = t->nc;
    return t->text.oom ? -1 : 0;
}

static void
table_line(struct buf *b, const struct table *t, size_t r)
{
    size_t start = b->len;

    for (size_t k = 0; k < t->row[r + 1] - t->row[r]; k++) {
        const struct span *c = &t->c[t->row[r] + k];
        size_t cw = discord_format_width(t->text.p + c->a, c->z - c->a);
        size_t pad = t->w[k] > cw ? t->w[k] - cw : 0;
        size_t before = t->align[k] == 'r'   ? pad
                        : t->align[k] == 'c' ? pad / 2
                                             : 0;

        if (k > 0)
            buf_str(b, " | ");
        buf_rep(b, ' ', before);
        buf_add(b, t->text.p + c->a, c->z - c->a);
        buf_rep(b, ' ', pad - before);
    }
    while (b->len > start && b->p[b->len - 1] == ' ')
        b->p[--b->len] = '\0';
    buf_str(b, "\n");
}

/* The table as a code block: header, a -+- rule, the rows. */
static int
table_put(struct buf *b, const struct table *t, size_t budget)
{
    struct buf o = {NULL, 0, 0, 0};
    int rc = -1;

    buf_str(&o, "```\n");
    for (size_t r = 0; r < t->nrow && o.len <= budget; r++) {
        table_line(&o, t, r);
        if (r > 0)
            continue;
        for (size_t k = 0; k < t->ncol; k++) {
            if (k > 0)
                buf_str(&o, "-+-");
            buf_rep(&o, '-', t->w[k] > 0 ? t->w[k] : 1);
        }
        buf_str(&o, "\n");
    }
    buf_str(&o, "```");
    if (o.oom)
        b->oom = 1;
    if (o.oom || o.len > budget)
        goto out;
    buf_add(b, o.p, o.len);
    rc = 0;
out:
    free(o.p);
    return rc;
}

/*
 * A table at `at` (a header row, a delimiter row with as many cells, then
 * every following line with a '|' up to a blank or fence line) written
 * as a code block.  Returns the end of its last row's line, 0 when at is
 * no table (or one that cannot be shown as one: a ``` in a cell, too
 * many columns, too much padding: then *plain is where its rows end, so
 * they are not tried again as tables one by one).
 */
static size_t
table_at(struct buf *b, const char *md, size_t len, size_t at, size_t *plain)
{
    struct span c[DISCORD_FORMAT_COLS_MAX];
    struct table t;
    struct line l0, l1, l;
    size_t end = 0, k, eol_at, eol_n;
    int h, d;
    char c0;

    line_get(md, len, at, &l0);
    if (!l0.nl ||
        (h = row_split(md + at, l0.n, c, DISCORD_FORMAT_COLS_MAX)) < 1)
        return 0;
    memset(&t, 0, sizeof(t));
    buf_add(&t.text, "", 0); /* never NULL below */
    for (k = 0; k < DISCORD_FORMAT_COLS_MAX; k++)
        t.align[k] = 'l';
    line_get(md, len, l0.next, &l1);
    d = row_split(md + l1.at, l1.n, c, DISCORD_FORMAT_COLS_MAX);
    for (k = 0; d == h && k < (size_t)d; k++)
        if (!delim_cell(md + l1.at, c[k], &t.align[k]))
            break;
    if (d != h || k < (size_t)d) {
        /* a delimiter row being written: dropped, the header shown */
        if (l1.nl || l1.next < len || !delim_partial(md + l1.at, l1.n))
            goto out;
        for (k = 0; d > 0 && k < (size_t)d && k < (size_t)h; k++)
            if (!delim_cell(md + l1.at, c[k], &c0))
                break;
            else
                t.align[k] = c0;
        for (; k < (size_t)h; k++)
            t.align[k] = 'l';
    }
    h = row_split(md + at, l0.n, c, DISCORD_FORMAT_COLS_MAX);
    if (table_row(&t, md + at, c, h) < 0)
        goto oom;
    eol_at = l1.at + l1.n;
    eol_n = l1.next - eol_at;
    for (k = l1.next; k < len; k = l.next) {
        char fc;
        size_t fk, i;

        line_get(md, len, k, &l);
        for (i = 0; i < l.n && blank(md[k + i]); i++)
            ;
        if (i == l.n || fence_open(md + k, l.n, &fc, &fk) ||
            (d = row_split(md + k, l.n, c, DISCORD_FORMAT_COLS_MAX)) < 1)
            break;
        if (table_row(&t, md + k, c, d) < 0)
            goto oom;
        eol_at = k + l.n;
        eol_n = l.next - eol_at;
    }
    *plain = eol_at + eol_n;
    for (k = 0; k < t.nc; k++)
        if (memmem(t.text.p + t.c[k].a, t.c[k].z - t.c[k].a, "```", 3))
            goto out;
    if (table_put(b, &t, TABLE_GROWTH * (eol_at - at) + 1024) < 0)
        goto out;
    buf_add(b, md + eol_at, eol_n);
    end = eol_at + eol_n;
    goto out;
oom:
    b->oom = 1;
out:
    free(t.text.p);
    free(t.c);
    free(t.row);
    return end;
}

/* ---- the text ---- */

char *
discord_format(const char *md, size_t len)
{
    struct buf b = {NULL, 0, 0, 0};
    size_t at = 0, e, plain = 0;

    if (len > DISCORD_FORMAT_IN_MAX) {
        buf_add(&b, md, len);
        return b.oom ? NULL : b.p;
    }
    buf_add(&b, "", 0);
    while (at < len && !b.oom) {
        struct line l;

        if ((e = fence_block(&b, md, len, at)) != 0 ||
            (at >= plain && (e = table_at(&b, md, len, at, &plain)) != 0)) {
            at = e;
            continue;
        }
        line_get(md, len, at, &l);
        line_fmt(&b, md + at, l.n);
        buf_add(&b, md + at + l.n, l.next - at - l.n);
        at = l.next;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *
discord_format_fit(const char *md, size_t max)
{
    size_t len = strlen(md);
    char *out = discord_format(md, len);

    if (out != NULL && strlen(out) > max) {
        free(out);
        out = strdup(md);
    }
    return out;
}
