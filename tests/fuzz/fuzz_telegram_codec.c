/* fuzz_telegram_codec: the Bot API reply parsers must never crash, leak or
 * hang, and what they accept must make well-formed events. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/telegram_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct telegram_me me = {777000111, "ParleyBot"};
    const char *body = (const char *)data;
    struct telegram_updates ups;
    struct telegram_error err;
    struct telegram_me m;
    int64_t mid;

    if (telegram_codec_parse_updates(body, size, &me, &ups, &err) ==
        TELEGRAM_PARSE_OK) {
        for (size_t i = 0; i < ups.n; i++) {
            struct event ev;
            const char *why;
            if (ups.v[i].update_id + 1 > ups.next_offset)
                abort(); /* the offset must pass every update */
            if (telegram_update_event(&ups.v[i], &ev) == 0) {
                if (event_check(&ev, &why) != 0)
                    abort();
                if (strlen(ev.text) > EVENT_TEXT_MAX)
                    abort();
                /* the text goes back out in a sendMessage */
                struct telegram_send s = {
                    ups.v[i].chat_id,   ev.text, 1, ups.v[i].message_id,
                    ups.v[i].thread_id, ev.text};
                free(telegram_codec_send_message(&s));
                /* and in a streamed edit of that message */
                free(telegram_codec_edit_message(&s, ups.v[i].message_id));
            }
        }
    }
    telegram_updates_release(&ups);
    telegram_codec_parse_me(body, size, &m, &err);
    if (telegram_codec_parse_result(body, size, &mid, &err) ==
        TELEGRAM_PARSE_API_ERROR) {
        /* the classifiers an edit's outcome goes through */
        telegram_error_is_gone(&err);
        telegram_error_is_not_modified(&err);
        telegram_error_is_parse(&err);
    }
    for (int64_t off = 0; off < 8; off++)
        if (telegram_utf16_to_byte(body, size, off) > (long)size)
            abort();
    telegram_utf16_len(body, size);
    return 0;
}
