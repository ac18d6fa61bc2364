/* test_slack_format: Markdown → mrkdwn conversions and the 4000-character cut.
 */
#include <stdlib.h>

#include "connectors/slack_format.h"
#include "tests/t.h"

static const struct {
    const char *md, *want;
} cases[] = {
    {"plain text", "plain text"},
    {"", ""},
    {"**bold** and __bold__", "*bold* and *bold*"},
    {"*italic* and _italic_", "_italic_ and _italic_"},
    {"***both***", "*_both_*"},
    {"~~gone~~", "~gone~"},
    {"snake_case_name stays", "snake_case_name stays"},
    {"2 * 3 * 4", "2 * 3 * 4"},
    {"a ** b", "a ** b"},
    {"`x < y && z`", "`x &lt; y &amp;&amp; z`"},
    {"`**not bold**`", "`**not bold**`"},
    {"```python\nif a < b:\n    print(\"**x**\")\n```",
     "```\nif a &lt; b:\n    print(\"**x**\")\n```"},
    {"[docs](https://example.com/a?b=1&c=2)",
     "<https://example.com/a?b=1&amp;c=2|docs>"},
    {"[a|b](https://x.io)", "<https://x.io|a/b>"},
    {"[click](javascript:alert(1))", "[click](javascript:alert(1))"},
    {"see <https://x.io>", "see <https://x.io>"},
    {"# Title\ntext", "*Title*\ntext"},
    {"## Sub ##", "*Sub*"},
    {"- one\n* two\n  + three", "• one\n• two\n  • three"},
    {"5 > 3 & 2 < 4", "5 &gt; 3 &amp; 2 &lt; 4"},
    /* never a ping or a special token from the model */
    {"<!channel> hi", "&lt;!channel&gt; hi"},
    {"<!here|here>", "&lt;!here|here&gt;"},
    {"<@U123> and <#C1>", "&lt;@U123&gt; and &lt;#C1&gt;"},
    {"[x](<!channel>)", "[x](&lt;!channel&gt;)"},
    {"**<!everyone>**", "*&lt;!everyone&gt;*"},
    {"crlf\r\nline", "crlf\nline"},
    {"unclosed **bold", "unclosed **bold"},
    {"héllo **wörld**", "héllo *wörld*"},
};

static void
test_convert(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = slack_format(cases[i].md, strlen(cases[i].md));

        T_OKF(out != NULL && strcmp(out, cases[i].want) == 0,
              "case %zu: \"%s\" → \"%s\", want \"%s\"", i, cases[i].md,
              out ? out : "(null)", cases[i].want);
        free(out);
    }
}

static void
free_parts(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

static void
test_split(void)
{
    char *big = malloc(20000), **parts;
    size_t n = 0, total = 0;

    T_EQ_INT(slack_format_chars("héllo", 6), 5);
    T_EQ_INT(slack_format_chars("", 0), 0);

    /* short text: one part, unchanged */
    parts = slack_format_split("hello", SLACK_TEXT_MAX, &n);
    T_EQ_INT(n, 1);
    T_EQ_STR(parts[0], "hello");
    free_parts(parts, n);

    /* 3-byte characters: the cap is on characters, not bytes */
    big[0] = '\0';
    for (int i = 0; i < 5000; i++)
        strcat(big, i % 10 == 9 ? " " : "€");
    parts = slack_format_split(big, SLACK_TEXT_MAX, &n);
    T_EQ_INT(n, 2);
    for (size_t i = 0; i < n; i++) {
        size_t c = slack_format_chars(parts[i], strlen(parts[i]));

        T_OKF(c <= SLACK_TEXT_MAX, "part %zu has %zu chars", i, c);
        total += strlen(parts[i]);
    }
    T_EQ_INT(total, strlen(big));
    T_OK(parts[0][strlen(parts[0]) - 1] == ' '); /* a word boundary */
    free_parts(parts, n);

    /* entities are never cut */
    big[0] = '\0';
    for (int i = 0; i < 1000; i++)
        strcat(big, "&amp;");
    parts = slack_format_split(big, 100, &n);
    for (size_t i = 0; i < n; i++)
        T_OKF(strlen(parts[i]) % 5 == 0, "part %zu: %zu bytes", i,
              strlen(parts[i]));
    free_parts(parts, n);

    /* a code block cut in two is closed and reopened */
    strcpy(big, "intro\n```\n");
    for (int i = 0; i < 300; i++)
        strcat(big, "code line\n");
    strcat(big, "```\nafter");
    parts = slack_format_split(big, 1000, &n);
    T_OK(n >= 3);
    for (size_t i = 0; i < n; i++) {
        size_t f = 0;

        for (const char *p = parts[i]; (p = strstr(p, "```")); p += 3)
            f++;
        T_OKF(f % 2 == 0, "part %zu has %zu fences", i, f);
        T_OK(slack_format_chars(parts[i], strlen(parts[i])) <= 1000);
    }
    T_CONTAINS(parts[n - 1], "after");
    free_parts(parts, n);
    free(big);
}

int
main(void)
{
    test_convert();
    test_split();
    return t_done();
}
