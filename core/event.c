/* event: checks and bounds for the platform-neutral inbound event. */
#include "core/event.h"

#include <string.h>

/* A string field: required non-empty or optional, at most max bytes. */
static int
field_ok(const char *s, size_t max, int required)
{
    size_t n;

    if (s == NULL)
        return 0;
    n = strnlen(s, max + 1);
    if (n > max)
        return 0;
    return !required || n > 0;
}

int
event_check(const struct event *ev, const char **why)
{
    const char *w = NULL;

    if (ev == NULL)
        w = "no event";
    else if (ev->kind != EVENT_MESSAGE && ev->kind != EVENT_VOTE)
        w = "unknown event kind";
    else if (!field_ok(ev->platform, EVENT_PLATFORM_MAX, 1))
        w = "bad platform";
    else if (!field_ok(ev->chat, EVENT_ID_MAX, 1))
        w = "bad chat id";
    else if (!field_ok(ev->user, EVENT_ID_MAX, 1))
        w = "bad user id";
    else if (ev->thread != NULL && !field_ok(ev->thread, EVENT_ID_MAX, 0))
        w = "bad thread id";
    else if (ev->user_name != NULL &&
             !field_ok(ev->user_name, EVENT_NAME_MAX, 0))
        w = "user name too long";
    else if (ev->reply_to != NULL && !field_ok(ev->reply_to, EVENT_ID_MAX, 0))
        w = "bad reply-to id";
    else if (ev->reply_to_user != NULL &&
             !field_ok(ev->reply_to_user, EVENT_ID_MAX, 0))
        w = "bad reply-to author";
    else if (ev->kind == EVENT_MESSAGE) {
        if (!field_ok(ev->message_id, EVENT_ID_MAX, 1))
            w = "bad message id";
        else if (ev->text == NULL)
            w = "no text";
        else if ((ev->flags & EVENT_COMMAND) &&
                 !field_ok(ev->command, EVENT_COMMAND_MAX, 1))
            w = "bad command name";
    } else {
        if (!field_ok(ev->target_id, EVENT_ID_MAX, 1))
            w = "bad vote target";
        else if (ev->vote != -1 && ev->vote != 1)
            w = "vote out of range";
    }
    if (why != NULL)
        *why = w;
    return w == NULL ? 0 : -1;
}

size_t
event_text_cut(const char *text, size_t len, size_t max)
{
    size_t n;

    if (len <= max)
        return len;
    n = max;
    /* back off continuation bytes so the cut is between two sequences */
    while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
        n--;
    return n;
}
