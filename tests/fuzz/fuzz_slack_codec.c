/* fuzz_slack_codec: Socket Mode frames, Web API replies and the mrkdwn
 * formatter never crash, stay bounded and keep their promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/slack_codec.h"
#include "connectors/slack_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The formatter's promise: no '<' except links it built itself. */
static void
check_format(const char *md, size_t len)
{
    char *out = slack_format(md, len), **parts;
    size_t n = 0, total = 0;

    if (out == NULL)
        return;
    for (const char *p = out; (p = strchr(p, '<')) != NULL; p++)
        if (strncmp(p + 1, "http://", 7) != 0 &&
            strncmp(p + 1, "https://", 8) != 0 &&
            strncmp(p + 1, "mailto:", 7) != 0)
            abort(); /* a ping or a special token from model text */
    parts = slack_format_split(out, 200, &n);
    if (parts == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (slack_format_chars(parts[i], strlen(parts[i])) > 200)
            abort();
        total += strlen(parts[i]);
        free(parts[i]);
    }
    free(parts);
    if (total < strlen(out))
        abort(); /* text lost */
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct slack_self self = {"U0BOT", "B0BOT"};
    const char *buf = (const char *)data, *why;
    struct slack_frame f;
    struct slack_api_error err;
    struct event ev;
    char url[SLACK_URL_MAX], user[64], bot[64], ts[64], ack[256];

    if (slack_frame_decode(buf, size, &self, &f, &why) == 0) {
        if (slack_inbound_event(&f.in, &ev) == 0) {
            if (event_check(&ev, &why) != 0)
                abort(); /* the codec only hands out well-formed events */
            if (strlen(ev.text) > EVENT_TEXT_MAX)
                abort();
        }
        if (f.type == SLACK_FRAME_ENVELOPE &&
            slack_ack_encode(f.envelope_id, ack, sizeof(ack)) < 0)
            abort();
        /* a payload's response_url: only Slack's or api_base's host */
        if (slack_response_url_ok(f.in.response_url, "http://127.0.0.1:1/api",
                                  &why) &&
            strncmp(f.in.response_url, "https://hooks.slack.com/", 24) != 0 &&
            strncasecmp(f.in.response_url, "http://127.0.0.1:1/", 19) != 0 &&
            strcasecmp(f.in.response_url, "http://127.0.0.1:1") != 0)
            abort();
        slack_frame_release(&f);
    }
    slack_open_decode(buf, size, url, sizeof(url), &err);
    slack_auth_decode(buf, size, user, bot, sizeof(user), &err);
    slack_post_decode(buf, size, ts, sizeof(ts), &err);
    slack_response_decode(200, buf, size, &err);
    slack_response_decode(404, buf, size, &err);
    if (size <= 8192)
        check_format(buf, size);
    return 0;
}
