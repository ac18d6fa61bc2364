/* test_discord_format: Markdown → what Discord renders. */
#include <stdlib.h>

#include "connectors/discord_format.h"
#include "tests/t.h"

#define CB "```\n" /* opens a table's code block */
#define CE "```"   /* closes it */
#define RULE DISCORD_FORMAT_RULE

static const struct {
    const char *md, *want;
} cases[] = {
    /* what Discord renders itself: byte for byte */
    {"", ""},
    {"plain text", "plain text"},
    {"**bold** *it* _it_ ~~s~~ ||spoiler|| `code`",
     "**bold** *it* _it_ ~~s~~ ||spoiler|| `code`"},
    {"# One\n## Two\n### Three\n-# small",
     "# One\n## Two\n### Three\n-# small"},
    {"> quote\n>>> rest\n- a\n* b\n1. c", "> quote\n>>> rest\n- a\n* b\n1. c"},
    {"[docs](https://example.com/a_b__c__d)",
     "[docs](https://example.com/a_b__c__d)"},
    {"see https://x.io/__init__ now", "see https://x.io/__init__ now"},
    {"<@123> <#456> <:e:789> <t:1700000000:R> <https://x.io>",
     "<@123> <#456> <:e:789> <t:1700000000:R> <https://x.io>"},
    {"@everyone and @here", "@everyone and @here"},
    {"snake_case and a__b__c", "snake_case and a__b__c"},
    {"\\*not\\* \\_x\\_", "\\*not\\* \\_x\\_"},
    {"a | b in prose", "a | b in prose"},
    {"crlf\r\nline\r\n", "crlf\r\nline\r\n"},
    {"héllo wörld 日本", "héllo wörld 日本"},
    {"-- not a rule\n**", "-- not a rule\n**"},
    /* fences and inline code untouched */
    {"```md\n| a | b |\n|---|---|\n#### h\n__x__ ![i](u)\n---\n```",
     "```md\n| a | b |\n|---|---|\n#### h\n__x__ ![i](u)\n---\n```"},
    {"`__x__` and `![i](u)` and ``a ` <br> b``",
     "`__x__` and `![i](u)` and ``a ` <br> b``"},
    {"```__x__``` inline", "```__x__``` inline"},
    {"open ` __x__ never closed", "open ` __x__ never closed"},
    {"```\nunclosed __x__\n#### h", "```\nunclosed __x__\n#### h"},
    {"~~~python\nx = 1\n~~~\n", "```python\nx = 1\n```\n"},
    {"~~~\nopen", "```\nopen\n```"},
    {"~~~\n```\n~~~", "~~~\n```\n~~~"},
    /* emphasis Discord reads otherwise */
    {"__bold__ and __more__ here", "**bold** and **more** here"},
    {"**__bold underline__**", "**__bold underline__**"},
    {"__ not__ and __unclosed", "__ not__ and __unclosed"},
    {"__a `__` b__", "**a `__` b**"},
    /* images */
    {"![a cat](https://x.io/cat.png)", "[a cat](https://x.io/cat.png)"},
    {"![](https://x.io/cat.png)", "https://x.io/cat.png"},
    {"![t](https://x.io/c.png \"title\") end", "[t](https://x.io/c.png) end"},
    {"![broken](", "![broken]("},
    /* headings deeper than ### */
    {"#### Four", "**Four**"},
    {"##### Five ##\ntext", "**Five**\ntext"},
    {"###### **Six** `c`", "**Six `c`**"},
    {"####### seven", "####### seven"},
    {"####", "####"},
    {"#### __u__", "**u**"},
    /* rules */
    {"a\n---\nb", "a\n" RULE "\nb"},
    {"***\n___\n- - -", RULE "\n" RULE "\n" RULE},
    /* HTML */
    {"one<br>two<BR/>three<br />four", "one\ntwo\nthree\nfour"},
    {"<b>b</b> <i>i</i> <u>u</u> <s>s</s> <strong>x</strong>",
     "**b** *i* __u__ ~~s~~ **x**"},
    {"<div>kept</div>", "<div>kept</div>"},
    /* lists */
    {"+ one\n  + two", "- one\n  - two"},
    /* tables */
    {"| a | b |\n|---|---|\n| 1 | 2 |", CB "a | b\n--+--\n1 | 2\n" CE},
    {"| Name | Qty |\n|:-----|----:|\n| apple | 3 |\n| kiwi | 12 |\n",
     CB "Name  | Qty\n------+----\napple |   3\nkiwi  |  12\n" CE "\n"},
    {"|x|y|z|\n|:-:|-|-|\n|center|a|b|",
     CB "  x    | y | z\n-------+---+--\ncenter | a | b\n" CE},
    {"a | b\n--|--\nc | d", CB "a | b\n--+--\nc | d\n" CE},
    /* ragged rows: short and long */
    {"| a | b | c |\n|---|---|---|\n| 1 |\n| 1 | 2 | 3 | 4 |",
     CB "a | b | c\n--+---+---+--\n1\n1 | 2 | 3 | 4\n" CE},
    /* pipes in code and escaped; ticks, ** and <br> dropped in cells */
    {"| op | means |\n|---|---|\n| `a|b` | **or** |\n| \\| | x<br>y |",
     CB "op  | means\n----+------\na|b | or\n|   | x y\n" CE},
    /* display width: CJK 2 columns, combining accent 0 */
    {"| k | v |\n|---|---|\n| 日本 | e\xcc\x81 |\n| ab | xy |",
     CB "k    | v\n-----+---\n日本 | e\xcc\x81\nab   | xy\n" CE},
    /* text around the table; it ends at a blank line or a line with no
     * pipe */
    {"Intro:\n| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter.",
     "Intro:\n" CB "a | b\n--+--\n1 | 2\n" CE "\n\nAfter."},
    {"| a | b |\n|---|---|\n| 1 | 2 |\nplain",
     CB "a | b\n--+--\n1 | 2\n" CE "\nplain"},
    /* not tables */
    {"| a | b |\n| c | d |", "| a | b |\n| c | d |"},
    {"| a | b |\n|---|\nmore",
     "| a | b |\n|---|\nmore"}, /* stream: see below */
    {"| a | b |\n|---|---|---|\n| 1 | 2 |",
     "| a | b |\n|---|---|---|\n| 1 | 2 |"},
    {"| a |\n|---|\n| ```x |", "| a |\n|---|\n| ```x |"},
    {"| a | b |\n---", "| a | b |\n" RULE},
};

static void
test_convert(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = discord_format(cases[i].md, strlen(cases[i].md));

        T_OKF(out != NULL && strcmp(out, cases[i].want) == 0,
              "case %zu:\n%s\n→\n%s\nwant\n%s", i, cases[i].md,
              out ? out : "(null)", cases[i].want);
        free(out);
    }
}

static void
test_width(void)
{
    T_EQ_INT(discord_format_width("abc", 3), 3);
    T_EQ_INT(discord_format_width("日本", 6), 4);
    T_EQ_INT(discord_format_width("e\xcc\x81", 3), 1);
    T_EQ_INT(discord_format_width("\xf0\x9f\x98\x80", 4), 2); /* 😀 */
    T_EQ_INT(discord_format_width("\xff\xc3", 2), 2);         /* bad bytes */
    T_EQ_INT(discord_format_width("\xe6\x97", 2), 2);         /* cut sequence */
}

/*
 * A streamed table, one byte more each time: never a code block left
 * open, and once the table shows as one it stays one (no flipping back
 * to raw pipes while it grows).
 */
static void
test_stream(void)
{
    const char *md = "Here:\n| Name | Qty |\n|:---|---:|\n| apple | 3 |\n"
                     "| kiwi | 12 |\n\nDone `x` and ~~~\ncode\n~~~\n";
    size_t len = strlen(md);
    int shown = 0, flips = 0, open = 0;

    for (size_t n = 1; n <= len; n++) {
        char *out = discord_format(md, n);
        size_t fences = 0;
        int table;

        if (out == NULL) {
            T_OK(0);
            return;
        }
        for (const char *p = out; (p = strstr(p, "```")) != NULL; p += 3)
            fences++;
        table = strstr(out, "Name") != NULL && strstr(out, "| Name") == NULL;
        if (fences % 2 != 0)
            open++;
        if (shown && !table)
            flips++;
        shown |= table;
        free(out);
    }
    T_EQ_INT(open, 0);
    T_EQ_INT(flips, 0);
    T_OK(shown);

    /* the header and a delimiter row being written: already a table */
    {
        char *a = discord_format("| a | b |\n|", 11);
        char *b = discord_format("| a | b |\n|--", 13);
        char *c = discord_format("| a | b |\n|---|---|\n| 1 | 2", 27);

        T_EQ_STR(a, CB "a | b\n--+--\n" CE);
        T_EQ_STR(b, CB "a | b\n--+--\n" CE);
        T_EQ_STR(c, CB "a | b\n--+--\n1 | 2\n" CE);
        free(a);
        free(b);
        free(c);
    }
}

/* Near Discord's 2000: a table whose padding would go over falls back to
 * the text as written; one that fits is converted. */
static void
test_fit(void)
{
    char md[2100], *out;
    size_t n = 0;

    n += (size_t)snprintf(md + n, sizeof(md) - n,
                          "| a long key | v |\n"
                          "|---|---|\n");
    while (n < 1960)
        n += (size_t)snprintf(md + n, sizeof(md) - n, "| x | y |\n");
    T_OK(n <= 2000);
    out = discord_format(md, n);
    T_OK(out != NULL && strlen(out) > 2000);
    free(out);
    out = discord_format_fit(md, 2000);
    T_EQ_STR(out, md);
    free(out);

    out = discord_format_fit("| a | b |\n|---|---|\n| 1 | 2 |", 2000);
    T_EQ_STR(out, CB "a | b\n--+--\n1 | 2\n" CE);
    free(out);

    /* over the input cap: unchanged */
    {
        size_t big = DISCORD_FORMAT_IN_MAX + 10;
        char *s = malloc(big + 1);

        memset(s, '_', big);
        memcpy(s, "#### h\n", 7);
        s[big] = '\0';
        out = discord_format(s, big);
        T_OK(out != NULL && strcmp(out, s) == 0);
        free(out);
        free(s);
    }
}

/* Padding is bounded: many empty cells under wide columns stay raw. */
static void
test_bounds(void)
{
    char md[8192], *out;
    size_t n = 0;

    n += (size_t)snprintf(md + n, sizeof(md) - n, "|");
    for (int k = 0; k < 30; k++)
        n += (size_t)snprintf(md + n, sizeof(md) - n, " %s |",
                              "0123456789012345678901234567890123456789"
                              "01234567890123456789");
    n += (size_t)snprintf(md + n, sizeof(md) - n, "\n|");
    for (int k = 0; k < 30; k++)
        n += (size_t)snprintf(md + n, sizeof(md) - n, "-|");
    n += (size_t)snprintf(md + n, sizeof(md) - n, "\n");
    while (n + 40 < sizeof(md))
        n +=
            (size_t)snprintf(md + n, sizeof(md) - n, "|||||||||||||||||||||\n");
    out = discord_format(md, n);
    T_EQ_STR(out, md);
    free(out);

    /* more columns than the cap: as written */
    n = 0;
    for (int k = 0; k < DISCORD_FORMAT_COLS_MAX + 1; k++)
        n += (size_t)snprintf(md + n, sizeof(md) - n, "|c");
    n += (size_t)snprintf(md + n, sizeof(md) - n, "|\n");
    for (int k = 0; k < DISCORD_FORMAT_COLS_MAX + 1; k++)
        n += (size_t)snprintf(md + n, sizeof(md) - n, "|-");
    n += (size_t)snprintf(md + n, sizeof(md) - n, "|");
    out = discord_format(md, n);
    T_EQ_STR(out, md);
    free(out);
}

int
main(void)
{
    test_convert();
    test_width();
    test_stream();
    test_fit();
    test_bounds();
    return t_done();
}
