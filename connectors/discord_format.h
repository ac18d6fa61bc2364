/* discord_format: the model's Markdown → what Discord renders (pure). */
#ifndef PARLEY_DISCORD_FORMAT_H
#define PARLEY_DISCORD_FORMAT_H

#include <stddef.h>

/* Longer inputs are returned unchanged (core's parts are ≤ 2000 bytes). */
#define DISCORD_FORMAT_IN_MAX 65536
/* A table with more columns than this stays as written. */
#define DISCORD_FORMAT_COLS_MAX 32
/* Columns are padded to at most this display width (a wider cell just
 * sticks out): keeps the padding, and so the output, bounded. */
#define DISCORD_FORMAT_PAD_MAX 60
/* What a horizontal rule becomes. */
#define DISCORD_FORMAT_RULE "────────"

/*
 * Discord renders most of Markdown itself (**b**, *i*, _i_, ~~s~~, `code`,
 * ``` fences, > quotes, # ## ### headings, lists, [text](url), ||x||), so
 * only what it does not render is rewritten; a text with none of it comes
 * back byte for byte:
 *
 *   | a | b |          a   | b        a ``` code block, columns padded to
 *   |:--|--:|   →      ----+----    their display width (wide CJK/emoji 2,
 *   | x | 1 |          x   |   1    combining marks 0), aligned as the
 *                                   delimiter row says; cells lose their
 *                                   `code` ticks, \| escapes and paired
 *                                   ** __ ~~; <br> in a cell is a blank
 *   ![alt](url)        [alt](url), or url when alt is empty
 *   #### h (to ######) **h** (Discord shows only # ## ### as headings)
 *   --- *** ___        a line of ─ (DISCORD_FORMAT_RULE)
 *   __b__              **b** (Markdown's strong; Discord would underline)
 *   <br> <b> <i> <em> <strong> <u> <s> <del> <strike>
 *                      newline, **, *, *, **, __, ~~, ~~, ~~
 *   + item             - item
 *   ~~~ fence          ``` fence (closed at the end if left open)
 *
 * Never touched: ``` fenced blocks, `code` spans (a backtick run with no
 * partner leaves the rest of its line alone), link destinations, bare
 * URLs, <…> tokens (mentions, emoji, timestamps, autolinks), \-escapes.
 * Nothing here makes a mention: pings are governed by allowed_mentions.
 *
 * Streaming (the same text, longer each time): a table is recognised once
 * its header and the first character of its delimiter row are there (a
 * delimiter row still being written, the last line, is dropped), and the
 * table grows row by row from then on; a half-written row is a short row.
 *
 * Returns a malloc'd NUL-terminated string, NULL on out of memory.
 */
char *discord_format(const char *md, size_t len);

/*
 * What goes on the wire for md (NUL-terminated): discord_format(md) when
 * that is at most max bytes, else md itself (conversion only grows a text
 * by tables' padding and fences; a cut converted text could leave a
 * table's code block open).  Malloc'd, NULL on OOM.
 */
char *discord_format_fit(const char *md, size_t max);

/* Monospace display width of s (len bytes of UTF-8; a bad byte is 1). */
size_t discord_format_width(const char *s, size_t len);

#endif
