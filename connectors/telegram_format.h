/* telegram_format: the model's markdown as Telegram HTML or plain text. */
#ifndef PARLEY_TELEGRAM_FORMAT_H
#define PARLEY_TELEGRAM_FORMAT_H

#include <stddef.h>

/*
 * Pure.  What is converted (everything else is text, with < > & escaped):
 *
 *   ```lang\n…\n```   <pre><code class="language-lang">…</code></pre>
 *                     (<pre>…</pre> without a language; a fence left open
 *                     runs to the end of the text, as on GitHub)
 *   `code`            <code>…</code> (any backtick run length)
 *   **b** / __b__     <b>…</b>
 *   *i* / _i_         <i>…</i> (_ only at word boundaries: snake_case
 *                     stays; "2 * 3 * 4" stays: no blank inside a marker)
 *   ~~s~~             <s>…</s>
 *   [text](url)       <a href="url">text</a> for http:// and https://
 *                     only; other schemes stay literal
 *   # Heading         <b>Heading</b>
 *   \*  \_  \`  …     the character itself
 *
 * A marker without its closing partner stays literal.  Inline markers do
 * not span a blank line.  The visible text of the HTML (what Telegram
 * counts against its 4096 limit) is never longer than the input: every
 * construct only removes characters.
 *
 * Both return a malloc'd NUL-terminated string, NULL on out of memory.
 */
char *telegram_format_html(const char *md, size_t len);

/*
 * The plain-text fallback sent without parse_mode when Telegram refuses
 * our HTML ("can't parse entities"): the same reading of the markdown
 * with the markers removed, links as "text (url)" — which can make it
 * longer than the input; callers that must stay under a limit check
 * telegram_format_visible_len() and send the input itself otherwise.
 */
char *telegram_format_plain(const char *md, size_t len);

/*
 * What Telegram counts: UTF-16 code units of the text after entity
 * parsing.  html = 1: tags are not counted and &lt; &gt; &amp; &quot;
 * count one each; html = 0: every character counts.
 */
size_t telegram_format_visible_len(const char *s, int html);

/*
 * 1 when md ends inside a fenced code block (a part of a split answer
 * cut in the middle of one), with the fence's language in lang ("" for
 * none); else 0.  The connector opens the next part with the same fence,
 * so every message renders its share of the code as code.
 */
int telegram_format_open_fence(const char *md, size_t len, char *lang,
                               size_t cap);

/* Telegram's limit on that count for one message. */
#define TELEGRAM_MESSAGE_MAX 4096

#endif
