/* telegram_format: the model's markdown as Telegram HTML or plain text. */
#include "connectors/telegram_format.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* Nesting of inline markers rendered; deeper ones stay literal. */
#define FMT_DEPTH_MAX 8
/* Backtick runs longer than this are never code delimiters. */
#define FMT_TICKS_MAX 16

struct fmt {
    struct buf out;
    int html;
};

static void
put(struct fmt *f, const char *s, size_t n)
{
    buf_add(&f->out, s, n);
}

static void
puts_(struct fmt *f, const char *s)
{
    put(f, s, strlen(s));
}

/* A tag, in HTML mode only. */
static void
tag(struct fmt *f, const char *s)
{
    if (f->html)
        puts_(f, s);
}

/* Text: escaped in HTML mode (quotes too, so it is safe in an href). */
static void
text(struct fmt *f, const char *s, size_t n)
{
    size_t i, run = 0;

    if (!f->html) {
        put(f, s, n);
        return;
    }
    for (i = 0; i < n; i++) {
        const char *e = s[i] == '<'   ? "&lt;"
                        : s[i] == '>' ? "&gt;"
                        : s[i] == '&' ? "&amp;"
                        : s[i] == '"' ? "&quot;"
                                      : NULL;
        if (e == NULL)
            continue;
        put(f, s + run, i - run);
        puts_(f, e);
        run = i + 1;
    }
    put(f, s + run, n - run);
}

static int
blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
alnum(char c)
{
    /* non-ASCII letters count as word characters too: ж_ж is a word */
    return isalnum((unsigned char)c) || (unsigned char)c >= 0x80;
}

/* Closer kinds: '*' and '_' close differently, so they are apart. */
enum mark {
    M_BOLD,
    M_BOLD_US,
    M_ITALIC,
    M_ITALIC_US,
    M_STRIKE,
    M_LINK,
    M_COUNT
};

/* Per render_inline call: a search for a closer of kind k from any
 * position >= nofrom[k] is known to fail (closers do not depend on the
 * opener), which keeps a text full of lone '*' linear. */
struct memo {
    size_t nofrom[M_COUNT];
    size_t ticks[FMT_TICKS_MAX + 1];
};

static void render_inline(struct fmt *f, const char *s, size_t n, int depth);

/* Length of the run of c at s[i]. */
static size_t
run_len(const char *s, size_t n, size_t i, char c)
{
    size_t k = 0;

    while (i + k < n && s[i + k] == c)
        k++;
    return k;
}

/*
 * Closer of a delimiter run of c of width w (1 or 2), searching from
 * `from`: a run of exactly w c's (a longer run is skipped whole), not
 * after a blank, and for '_' not followed by a word character.  n if none.
 */
static size_t
find_closer(const char *s, size_t n, size_t from, char c, size_t w)
{
    size_t j = from;

    while (j < n) {
        size_t k;
        if (s[j] == '\\') {
            j += 2;
            continue;
        }
        if (s[j] != c) {
            j++;
            continue;
        }
        k = run_len(s, n, j, c);
        if (k == w && !blank(s[j - 1]) &&
            (c != '_' || j + k >= n || !alnum(s[j + k])))
            return j;
        j += k;
    }
    return n;
}

/* `code`: the closing run of exactly k backticks after `from`, or n. */
static size_t
find_ticks(const char *s, size_t n, size_t from, size_t k)
{
    size_t j = from;

    while (j < n) {
        size_t r;
        if (s[j] != '`') {
            j++;
            continue;
        }
        r = run_len(s, n, j, '`');
        if (r == k)
            return j;
        j += r;
    }
    return n;
}

static int
url_ok(const char *u, size_t n)
{
    if (!((n > 7 && strncmp(u, "http://", 7) == 0) ||
          (n > 8 && strncmp(u, "https://", 8) == 0)))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (blank(u[i]) || (unsigned char)u[i] < 0x20 || u[i] == '<' ||
            u[i] == '>')
            return 0;
    return 1;
}

/* [text](url) at s[i] == '[': 1 and the spans, or 0. */
static int
find_link(const char *s, size_t n, size_t i, struct memo *m, size_t *te,
          size_t *us, size_t *ue)
{
    size_t j, depth = 0;

    if (i + 1 >= m->nofrom[M_LINK])
        return 0;
    for (j = i + 1; j < n; j++) {
        if (s[j] == '\\') {
            j++;
            continue;
        }
        if (s[j] == '[')
            depth++;
        else if (s[j] == ']') {
            if (depth == 0)
                break;
            depth--;
        }
    }
    if (j >= n) {
        m->nofrom[M_LINK] = i + 1;
        return 0;
    }
    if (j == i + 1 || j + 1 >= n || s[j + 1] != '(')
        return 0;
    *te = j;
    *us = j + 2;
    for (j = *us; j < n && s[j] != ')' && !blank(s[j]); j++)
        ;
    if (j >= n || s[j] != ')' || !url_ok(s + *us, j - *us))
        return 0;
    *ue = j;
    return 1;
}

/* Emphasis at s[i] (a run of c): consumed bytes, or 0 to stay literal. */
static size_t
emphasis(struct fmt *f, const char *s, size_t n, size_t i, struct memo *m,
         int depth)
{
    char c = s[i];
    size_t k = run_len(s, n, i, c), w, close;
    enum mark kind;
    const char *open_tag, *close_tag;

    if (c == '~') {
        if (k != 2)
            return 0;
        w = 2;
        kind = M_STRIKE;
        open_tag = "<s>";
        close_tag = "</s>";
    } else if (k == 1 || k == 2) {
        w = k;
        kind = k == 2 ? (c == '_' ? M_BOLD_US : M_BOLD)
                      : (c == '_' ? M_ITALIC_US : M_ITALIC);
        open_tag = k == 2 ? "<b>" : "<i>";
        close_tag = k == 2 ? "</b>" : "</i>";
    } else {
        return 0;
    }
    /* opens only before a non-blank; '_' only at the start of a word */
    if (i + w >= n || blank(s[i + w]))
        return 0;
    if (c == '_' && i > 0 && alnum(s[i - 1]))
        return 0;
    if (i + w + 1 >= m->nofrom[kind])
        return 0;
    close = find_closer(s, n, i + w + 1, c, w);
    if (close >= n) {
        m->nofrom[kind] = i + w + 1;
        return 0;
    }
    tag(f, open_tag);
    render_inline(f, s + i + w, close - i - w, depth + 1);
    tag(f, close_tag);
    return close + w - i;
}

static void
render_inline(struct fmt *f, const char *s, size_t n, int depth)
{
    struct memo m;
    size_t i = 0, lit = 0, used, te, us, ue;

    if (depth >= FMT_DEPTH_MAX) {
        text(f, s, n);
        return;
    }
    for (size_t k = 0; k < M_COUNT; k++)
        m.nofrom[k] = SIZE_MAX;
    for (size_t k = 0; k <= FMT_TICKS_MAX; k++)
        m.ticks[k] = SIZE_MAX;
#define FLUSH()                                                                \
    do {                                                                       \
        text(f, s + lit, i - lit);                                             \
    } while (0)
    while (i < n) {
        char c = s[i];
        used = 0;
        if (c == '\\' && i + 1 < n && ispunct((unsigned char)s[i + 1])) {
            FLUSH();
            text(f, s + i + 1, 1);
            i += 2;
            lit = i;
            continue;
        }
        if (c == '`') {
            size_t k = run_len(s, n, i, '`'), close = n;
            if (k <= FMT_TICKS_MAX && i + k < m.ticks[k]) {
                close = find_ticks(s, n, i + k, k);
                if (close >= n)
                    m.ticks[k] = i + k;
            }
            if (close < n && close > i + k) {
                FLUSH();
                tag(f, "<code>");
                text(f, s + i + k, close - i - k);
                tag(f, "</code>");
                i = close + k;
                lit = i;
            } else {
                i += k; /* the whole run is literal */
            }
            continue;
        }
        if (c == '*' || c == '_' || c == '~') {
            /* emphasis writes only when it matches; flush first */
            FLUSH();
            lit = i;
            used = emphasis(f, s, n, i, &m, depth);
            if (used > 0) {
                i += used;
                lit = i;
            } else {
                i += run_len(s, n, i, c);
            }
            continue;
        }
        if (c == '[' && find_link(s, n, i, &m, &te, &us, &ue)) {
            FLUSH();
            if (f->html) {
                puts_(f, "<a href=\"");
                text(f, s + us, ue - us);
                puts_(f, "\">");
                render_inline(f, s + i + 1, te - i - 1, depth + 1);
                puts_(f, "</a>");
            } else {
                render_inline(f, s + i + 1, te - i - 1, depth + 1);
                puts_(f, " (");
                put(f, s + us, ue - us);
                puts_(f, ")");
            }
            i = ue + 1;
            lit = i;
            continue;
        }
        i++;
    }
    FLUSH();
#undef FLUSH
}

/* "# Title" .. "###### Title": the title's offset, or 0. */
static size_t
heading(const char *s, size_t n)
{
    size_t k = run_len(s, n, 0, '#');

    if (k >= 1 && k <= 6 && k < n && s[k] == ' ')
        return k + 1;
    return 0;
}

/* Text between code blocks: paragraphs (inline markers stay inside one),
 * heading lines on their own. */
static void
render_text(struct fmt *f, const char *s, size_t n)
{
    size_t i = 0, start = 0;

    while (i <= n) {
        size_t eol = i;
        while (eol < n && s[eol] != '\n')
            eol++;
        size_t h = heading(s + i, eol - i);
        int blank_line = 1;
        for (size_t k = i; k < eol; k++)
            if (!blank(s[k]))
                blank_line = 0;
        if (h > 0 || (blank_line && eol < n)) {
            render_inline(f, s + start, i - start, 0);
            if (h > 0) {
                tag(f, "<b>");
                render_inline(f, s + i + h, eol - i - h, 0);
                tag(f, "</b>");
            } else {
                text(f, s + i, eol - i);
            }
            if (eol < n)
                text(f, "\n", 1);
            start = eol + 1;
        }
        if (eol >= n)
            break;
        i = eol + 1;
    }
    if (start < n)
        render_inline(f, s + start, n - start, 0);
}

/* A fence line: up to 3 spaces, then 3+ backticks; *ticks gets their
 * count and *info the offset of the info string. */
static int
fence(const char *s, size_t n, size_t *ticks, size_t *info)
{
    size_t i = 0;

    while (i < n && i < 3 && s[i] == ' ')
        i++;
    *ticks = run_len(s, n, i, '`');
    *info = i + *ticks;
    return *ticks >= 3;
}

static void
code_block(struct fmt *f, const char *info, size_t ilen, const char *code,
           size_t clen)
{
    size_t l = 0;

    while (l < ilen && blank(info[l]))
        l++;
    info += l;
    ilen -= l;
    for (l = 0; l < ilen && l < 32; l++) {
        char c = info[l];
        if (!isalnum((unsigned char)c) && c != '+' && c != '-' && c != '_' &&
            c != '#' && c != '.')
            break;
    }
    if (l > 0) {
        tag(f, "<pre><code class=\"language-");
        if (f->html)
            put(f, info, l);
        tag(f, "\">");
        text(f, code, clen);
        tag(f, "</code></pre>");
    } else {
        tag(f, "<pre>");
        text(f, code, clen);
        tag(f, "</pre>");
    }
}

static char *
render(const char *md, size_t len, int html)
{
    struct fmt f = {{NULL, 0, 0, 0}, html};
    size_t i = 0, seg = 0, ticks, info;

    buf_add(&f.out, "", 0); /* "" for an empty text */
    while (i < len) {
        size_t eol = i;
        while (eol < len && md[eol] != '\n')
            eol++;
        if (fence(md + i, eol - i, &ticks, &info) &&
            memchr(md + i + info, '`', eol - i - info) == NULL) {
            size_t cstart = eol < len ? eol + 1 : len, j = cstart, cend = len,
                   next = len, t2, i2;
            /* the closing fence: at least as many backticks, nothing else */
            while (j < len) {
                size_t e2 = j;
                while (e2 < len && md[e2] != '\n')
                    e2++;
                if (fence(md + j, e2 - j, &t2, &i2) && t2 >= ticks) {
                    size_t k = i2;
                    while (k < e2 - j && blank(md[j + k]))
                        k++;
                    if (k == e2 - j) {
                        cend = j > cstart ? j - 1 : cstart;
                        next = e2;
                        break;
                    }
                }
                j = e2 < len ? e2 + 1 : len;
            }
            render_text(&f, md + seg, i - seg);
            code_block(&f, md + i + info, eol - i - info, md + cstart,
                       cend > cstart ? cend - cstart : 0);
            seg = i = next;
            continue;
        }
        i = eol < len ? eol + 1 : len;
    }
    render_text(&f, md + seg, len - seg);
    if (f.out.oom) {
        free(f.out.p);
        return NULL;
    }
    return f.out.p;
}

char *
telegram_format_html(const char *md, size_t len)
{
    return render(md != NULL ? md : "", md != NULL ? len : 0, 1);
}

char *
telegram_format_plain(const char *md, size_t len)
{
    return render(md != NULL ? md : "", md != NULL ? len : 0, 0);
}

/* Bytes of the UTF-8 sequence at p, adding its UTF-16 units to *u (a
 * 4-byte sequence is a surrogate pair: two).  An invalid byte is one
 * byte, one unit, as Telegram never sees it (the codec replaces it). */
static size_t
utf8_units(const unsigned char *p, size_t *u)
{
    size_t n = 1;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) {
            n = 1;
            break;
        }
    *u += n == 4 ? 2 : 1;
    return n;
}

size_t
telegram_format_visible_len(const char *s, int html)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t u = 0;

    while (*p) {
        if (html && *p == '<') {
            while (*p && *p != '>')
                p++;
            if (*p)
                p++;
            continue;
        }
        if (html && *p == '&') {
            const unsigned char *q = p + 1;
            while (*q && *q != ';' && q - p < 10)
                q++;
            if (*q == ';') {
                u++;
                p = q + 1;
                continue;
            }
        }
        p += utf8_units(p, &u);
    }
    return u;
}

int
telegram_format_open_fence(const char *md, size_t len, char *lang, size_t cap)
{
    size_t i = 0, ticks = 0, info, open_ticks = 0, t2, i2;
    int open = 0;

    if (cap > 0)
        lang[0] = '\0';
    while (md != NULL && i < len) {
        size_t eol = i;
        while (eol < len && md[eol] != '\n')
            eol++;
        if (!open && fence(md + i, eol - i, &ticks, &info) &&
            memchr(md + i + info, '`', eol - i - info) == NULL) {
            size_t l = info, k = 0;
            open = 1;
            open_ticks = ticks;
            while (l < eol - i && blank(md[i + l]))
                l++;
            while (l < eol - i && k + 1 < cap && k < 32 &&
                   (isalnum((unsigned char)md[i + l]) || md[i + l] == '+' ||
                    md[i + l] == '-' || md[i + l] == '_' || md[i + l] == '#' ||
                    md[i + l] == '.'))
                lang[k++] = md[i + l++];
            if (cap > 0)
                lang[k] = '\0';
        } else if (open && fence(md + i, eol - i, &t2, &i2) &&
                   t2 >= open_ticks) {
            size_t k = i2;
            while (k < eol - i && blank(md[i + k]))
                k++;
            if (k == eol - i) {
                open = 0;
                if (cap > 0)
                    lang[0] = '\0';
            }
        }
        i = eol < len ? eol + 1 : len;
    }
    return open;
}
