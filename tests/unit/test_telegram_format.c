/* test_telegram_format: markdown → Telegram HTML and plain text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/telegram_format.h"
#include "tests/t.h"

struct fmt_case {
    const char *md;
    const char *html;
    const char *plain;
};

static const struct fmt_case cases[] = {
    {"plain text", "plain text", "plain text"},
    {"a < b && c > d", "a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"},
    {"say \"hi\"", "say &quot;hi&quot;", "say \"hi\""},
    {"**bold** and *it* and _it2_", "<b>bold</b> and <i>it</i> and <i>it2</i>",
     "bold and it and it2"},
    {"__bold__", "<b>bold</b>", "bold"},
    {"~~gone~~", "<s>gone</s>", "gone"},
    {"**bold *nested* here**", "<b>bold <i>nested</i> here</b>",
     "bold nested here"},
    {"*a **b** c*", "<i>a <b>b</b> c</i>", "a b c"},
    {"use `x < 1` here", "use <code>x &lt; 1</code> here", "use x < 1 here"},
    {"``a ` b``", "<code>a ` b</code>", "a ` b"},
    {"`**not bold**`", "<code>**not bold**</code>", "**not bold**"},
    {"snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4",
     "snake_case_name and 2 * 3 * 4"},
    {"**unclosed bold", "**unclosed bold", "**unclosed bold"},
    {"*unclosed it", "*unclosed it", "*unclosed it"},
    {"`unclosed code", "`unclosed code", "`unclosed code"},
    {"** spaced **", "** spaced **", "** spaced **"},
    {"**a\n\nb**", "**a\n\nb**", "**a\n\nb**"},
    {"\\*literal\\*", "*literal*", "*literal*"},
    {"[docs](https://example.com/a?b=1&c=\"2\")",
     "<a href=\"https://example.com/a?b=1&amp;c=&quot;2&quot;\">docs</a>",
     "docs (https://example.com/a?b=1&c=\"2\")"},
    {"[**bold** link](http://x.org)",
     "<a href=\"http://x.org\"><b>bold</b> link</a>",
     "bold link (http://x.org)"},
    {"[js](javascript:alert(1))", "[js](javascript:alert(1))",
     "[js](javascript:alert(1))"},
    {"[x](https://a b)", "[x](https://a b)", "[x](https://a b)"},
    {"[unclosed link", "[unclosed link", "[unclosed link"},
    {"# Title\ntext", "<b>Title</b>\ntext", "Title\ntext"},
    {"## Sub *x*\n", "<b>Sub <i>x</i></b>\n", "Sub x\n"},
    {"#hashtag", "#hashtag", "#hashtag"},
    {"```c\nint a = b < c;\n```",
     "<pre><code class=\"language-c\">int a = b &lt; c;</code></pre>",
     "int a = b < c;"},
    {"before\n```\nraw **x**\n```\nafter *y*",
     "before\n<pre>raw **x**</pre>\nafter <i>y</i>",
     "before\nraw **x**\nafter y"},
    {"```python\ndef f():\n    return 1\n```\n",
     "<pre><code class=\"language-python\">def f():\n    return "
     "1</code></pre>\n",
     "def f():\n    return 1\n"},
    {"```js\nopen fence runs to the end",
     "<pre><code class=\"language-js\">open fence runs to the end</code></pre>",
     "open fence runs to the end"},
    {"````\n```\ninner\n```\n````", "<pre>```\ninner\n```</pre>",
     "```\ninner\n```"},
    {"```c++ extra\nx\n```", "<pre><code class=\"language-c++\">x</code></pre>",
     "x"},
    {"```\"><script>\nx\n```", "<pre>x</pre>", "x"},
    {"\xd0\x9f\xd1\x80\xd0\xb8 **\xf0\x9f\x98\x80**",
     "\xd0\x9f\xd1\x80\xd0\xb8 <b>\xf0\x9f\x98\x80</b>",
     "\xd0\x9f\xd1\x80\xd0\xb8 \xf0\x9f\x98\x80"},
    {"", "", ""},
};

/* Tags balance: every opening tag closes in order. */
static int
balanced(const char *h)
{
    char stack[64][16];
    int depth = 0;

    for (const char *p = h; (p = strchr(p, '<')) != NULL; p++) {
        const char *e = strchr(p, '>');
        char name[16];
        size_t n;
        int close = p[1] == '/';
        const char *q = p + 1 + close;
        if (e == NULL)
            return 0;
        n = strcspn(q, " >");
        if (n >= sizeof(name))
            return 0;
        memcpy(name, q, n);
        name[n] = '\0';
        if (close) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return 0;
            depth--;
        } else {
            if (depth == 64)
                return 0;
            strcpy(stack[depth++], name);
        }
    }
    return depth == 0;
}

static void
test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct fmt_case *c = &cases[i];
        char *h = telegram_format_html(c->md, strlen(c->md));
        char *p = telegram_format_plain(c->md, strlen(c->md));
        T_OKF(h != NULL && strcmp(h, c->html) == 0, "case %zu: html \"%s\"", i,
              h ? h : "(null)");
        T_OKF(p != NULL && strcmp(p, c->plain) == 0, "case %zu: plain \"%s\"",
              i, p ? p : "(null)");
        T_OKF(h != NULL && balanced(h), "case %zu balanced", i);
        /* the visible text never grows */
        T_OKF(h != NULL && telegram_format_visible_len(h, 1) <=
                               telegram_format_visible_len(c->md, 0),
              "case %zu visible", i);
        free(h);
        free(p);
    }
}

static void
test_visible(void)
{
    T_EQ_INT(telegram_format_visible_len("<b>a&amp;b</b>", 1), 3);
    T_EQ_INT(telegram_format_visible_len("<b>a&amp;b</b>", 0), 14);
    T_EQ_INT(telegram_format_visible_len("\xf0\x9f\x98\x80\xd0\x9f!", 1), 4);
    T_EQ_INT(telegram_format_visible_len("<pre><code class=\"language-c\">x"
                                         "</code></pre>",
                                         1),
             1);
}

/* A pathological input stays fast (memoised closer searches). */
static void
test_linear(void)
{
    size_t n = 200000;
    char *s = malloc(n + 1);
    char *h;

    for (size_t i = 0; i < n; i++)
        s[i] = "*_`[~"[i % 5];
    s[n] = '\0';
    h = telegram_format_html(s, n);
    T_OK(h != NULL);
    T_OK(h != NULL && balanced(h));
    free(h);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 2 ? 'a' : '*';
    h = telegram_format_html(s, n);
    T_OK(h != NULL && balanced(h));
    free(h);
    free(s);
}

static void
test_open_fence(void)
{
    char lang[40];
    const char *s;

    s = "text\n```python\ndef f():\n";
    T_EQ_INT(telegram_format_open_fence(s, strlen(s), lang, sizeof(lang)), 1);
    T_EQ_STR(lang, "python");
    s = "```\nx\n```\nafter";
    T_EQ_INT(telegram_format_open_fence(s, strlen(s), lang, sizeof(lang)), 0);
    T_EQ_STR(lang, "");
    s = "```c\na\n```\n```\nb";
    T_EQ_INT(telegram_format_open_fence(s, strlen(s), lang, sizeof(lang)), 1);
    T_EQ_STR(lang, "");
    s = "no fences `x`";
    T_EQ_INT(telegram_format_open_fence(s, strlen(s), lang, sizeof(lang)), 0);
}

int
main(void)
{
    test_cases();
    test_open_fence();
    test_visible();
    test_linear();
    return t_done();
}
