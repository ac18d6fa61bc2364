/* fuzz_discord_codec: gateway frames and REST bodies must never crash, leak
 * or hang, and what the decoder accepts must make well-formed events. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/discord_codec.h"
#include "connectors/discord_gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct discord_frame f;
    struct discord_gateway_bot g;
    struct discord_error e;
    struct event ev;
    const char *why;
    char id[DISCORD_SNOWFLAKE_MAX], out[DISCORD_GW_SEND_MAX + 1];

    if (discord_codec_frame(body, size, "42", &f, &why) == 0) {
        if (discord_frame_event(&f, &ev) == 0) {
            if (event_check(&ev, &why) != 0)
                abort();
            /* an interaction's token goes into URL paths */
            if (f.t == DISCORD_T_INTERACTION_CREATE &&
                (f.ia.token[0] == '\0' ||
                 strspn(f.ia.token,
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
                        "NOPQRSTUVWXYZ0123456789._-") != strlen(f.ia.token)))
                abort();
            if (ev.kind == EVENT_MESSAGE && strlen(ev.text) > EVENT_TEXT_MAX)
                abort();
            if (ev.kind == EVENT_VOTE && ev.vote != 1 && ev.vote != -1)
                abort();
            if (ev.kind == EVENT_MESSAGE) {
                /* the text goes back out as a reply */
                struct discord_create m = {ev.text, ev.message_id, "job:1:0"};
                char *b = discord_codec_create_message(&m);

                if (b == NULL || strlen(b) > 6 * DISCORD_CONTENT_MAX + 512)
                    abort();
                free(b);
                /* and as a streamed edit */
                b = discord_codec_edit_message(ev.text);
                if (b == NULL || strlen(b) > 6 * DISCORD_CONTENT_MAX + 512)
                    abort();
                free(b);
            }
        }
        if (f.t == DISCORD_T_READY) {
            /* a READY's session goes back out in a RESUME */
            int n = discord_codec_resume("token", f.ready.session_id, f.s, out,
                                         sizeof(out));
            if (n > DISCORD_GW_SEND_MAX)
                abort();
        }
        /* the machine takes any decoded frame in any state */
        {
            struct discord_gw *gw = discord_gw_new(0, 0);
            struct discord_gw_input in = {.kind = DGW_IN_START};
            struct discord_gw_actions acts;
            struct discord_gateway_bot gb = {"ws://x", 1, 1, 1, 0, 1};

            discord_gw_feed(gw, &in, 0, 0.5, &acts);
            in.kind = DGW_IN_GATEWAY;
            in.gateway = &gb;
            discord_gw_feed(gw, &in, 1, 0.5, &acts);
            in.kind = DGW_IN_OPEN;
            discord_gw_feed(gw, &in, 2, 0.5, &acts);
            in.kind = DGW_IN_FRAME;
            in.frame = &f;
            for (int i = 0; i < 3; i++)
                discord_gw_feed(gw, &in, 3 + i, 0.5, &acts);
            discord_gw_free(gw);
        }
    }
    discord_frame_release(&f);
    discord_codec_gateway_bot(body, size, &g, &why);
    discord_codec_message_id(body, size, id, sizeof(id), &why);
    if (discord_codec_error(body, size, &e) == 0) {
        /* whatever the body says, a reply maps to one outcome */
        const char *cls;
        enum discord_outcome o =
            discord_codec_outcome(DISCORD_DELETE, 404, e.code, &cls);

        if (o != DISCORD_OUT_OK && (cls == NULL || cls[0] == '\0'))
            abort();
    }
    if (size < 64) {
        char s[64];

        memcpy(s, body, size);
        s[size] = '\0';
        discord_codec_seconds_ms(s);
    }
    return 0;
}
