/* slack_format: the model's Markdown → Slack mrkdwn, and the 4000-character cut
 * (pure). */
#ifndef PARLEY_SLACK_FORMAT_H
#define PARLEY_SLACK_FORMAT_H

#include <stddef.h>

/* Characters (code points) per chat.postMessage text (SPEC §6): the
 * text_max core splits answers at (in bytes of Markdown). */
#define SLACK_TEXT_MAX 4000
/* Slack's hard limit: longer texts fail msg_too_long (or are truncated). */
#define SLACK_MSG_MAX 40000

/*
 * Markdown as models write it → mrkdwn (heap, caller frees; NULL on OOM):
 *   **b** __b__ → *b*      *i* _i_ → _i_      ~~s~~ → ~s~
 *   `code` and ``` fences kept (a fence's language tag dropped)
 *   [text](http…) → <http…|text>     <http…> autolinks kept
 *   # Heading → *Heading*            "- " / "* " / "+ " items → "• "
 * Everything else is text: only & < > are escaped (&amp; &lt; &gt;), so
 * model output can never form <!channel>, <!here>, <@U…> or any other
 * special token: the only '<' in the result open links built above, and
 * those take http(s)/mailto URLs only.
 */
char *slack_format(const char *md, size_t len);

/* Code points in s (len bytes; invalid bytes count one each). */
size_t slack_format_chars(const char *s, size_t len);

/*
 * Splits mrkdwn into messages of at most max_chars code points each, on a
 * paragraph, line or word boundary when one exists in the second half,
 * never inside an &entity; or a <link>, never inside a UTF-8 sequence; a
 * ``` fence cut in two is closed at the end of one message and reopened
 * in the next.  Returns a heap array of *n heap strings (free each, then
 * the array), NULL on OOM.  Text that fits is one message.
 */
char **slack_format_split(const char *mrkdwn, size_t max_chars, size_t *n);

#endif
