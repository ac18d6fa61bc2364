/* stream: the pure planner of a streamed answer — which message to post,
 * edit or delete next, and when (docs/core.md "Streaming"). */
#ifndef PARLEY_STREAM_H
#define PARLEY_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/* Messages one streamed answer may span: the bound on its memory. */
#define STREAM_MSGS_MAX 4096

/*
 * The end of the part of text (len bytes) that starts at `at`, for parts
 * of at most max (>= 16) bytes: len when the rest fits, else a cut on a
 * paragraph, line or word boundary in the second half of the window, else
 * at the last whole UTF-8 sequence.  A fenced code block that opens in the
 * window's last three quarters moves whole to the next part; a longer one
 * is cut on a line (stream_part_dup closes and reopens it).
 * Deterministic and prefix-stable: a
 * part that is not the last one depends only on the text up to at + max,
 * so a growing text keeps its earlier cuts.
 */
size_t stream_split_next(const char *text, size_t len, size_t at, size_t max);
/* What a cut code block costs: "```" + a language name of at most
 * STREAM_FENCE_INFO_MAX bytes + "\n" before, "\n```" after. */
#define STREAM_FENCE_INFO_MAX 24
#define STREAM_FENCE_RESERVE 32

/*
 * The text to send for part [from, to) of text: the bytes, and when a
 * fenced code block is cut at either end, the fence closed at the end of
 * the part and opened again (with its language) at the start of the next,
 * so every message renders its code as code (SPEC §6).  The cut leaves
 * room for them (STREAM_FENCE_RESERVE).  malloc'd, NULL if out of memory.
 */
char *stream_part_dup(const char *text, size_t from, size_t to);

/* How many parts text splits into (an empty text is one empty part). */
size_t stream_split_count(const char *text, size_t len, size_t max);

/* One message of the stream, as core tracks it. */
struct stream_msg {
    char id[EVENT_ID_MAX + 1]; /* the platform's id; "" = not posted (yet) */
    uint64_t hash;             /* of the text it shows, when known */
    size_t len;
    int known;       /* hash/len describe what it shows (0 after a restart) */
    int feedback;    /* the 👍/👎 controls are on it */
    int64_t last_ms; /* monotonic ms of the last post or edit sent */
};

struct stream {
    struct stream_msg *msgs; /* cap of them, n used */
    int n, cap;              /* messages posted */
    int64_t interval_ms;     /* at least this between two edits of a message */
    size_t text_max;         /* the platform's message limit */
};

enum stream_op {
    STREAM_WAIT,   /* nothing due before at_ms (INT64_MAX: nothing to do) */
    STREAM_POST,   /* post part `part` as a new message (index part) */
    STREAM_EDIT,   /* edit message `part` to show its part */
    STREAM_DELETE, /* delete message `part`: the final text is shorter */
    STREAM_DONE,   /* final: every message shows the final text */
};

struct stream_step {
    enum stream_op op;
    int part;          /* the message index (= part index) */
    size_t from, to;   /* STREAM_POST/EDIT: the part's bytes in text */
    int feedback;      /* STREAM_POST/EDIT: attach the controls */
    int controls_only; /* STREAM_EDIT: the text is shown, only controls */
    int64_t at_ms;     /* STREAM_WAIT */
    uint64_t hash;     /* STREAM_POST/EDIT: of text[from, to) */
};

/* Room for n messages (msgs[0..n) zeroed when new): 0, or -1 when out
 * of memory or n > STREAM_MSGS_MAX.  stream_release frees the messages. */
int stream_reserve(struct stream *s, int n);
void stream_release(struct stream *s);

/* FNV-1a 64 of len bytes, the hash stream_msg keeps. */
uint64_t stream_hash(const char *s, size_t len);

/*
 * The next thing to do for text (the answer so far, or the final answer
 * when final = 1) at now_ms.  Earlier parts go first; a post is never held
 * back by the interval (it is a new message), an edit waits until
 * last_ms + interval_ms.  A message whose id is "" was lost (deleted by
 * someone): it is posted again.  Parts past STREAM_MSGS_MAX are not
 * shown while streaming; final text that long is the caller's to send
 * plainly.  Final: parts past the end are deleted (from the
 * last), the last part gets the controls when feedback = 1, and
 * STREAM_DONE when all is shown.  Not final: the growing last part is
 * edited as the interval allows; no deletes, no controls.
 */
void stream_next(const struct stream *s, const char *text, size_t len,
                 int final, int feedback, int64_t now_ms,
                 struct stream_step *out);

/*
 * Encodes the posted ids as "id id id" into buf (for the job's durable
 * record) / decodes them back (messages known = 0: after a restart what
 * they show is unknown, so each is edited once).  -1 when it does not fit
 * or an id is malformed.
 */
int stream_ids_encode(const struct stream *s, char *buf, size_t len);
int stream_ids_decode(struct stream *s, const char *ids);

#endif
