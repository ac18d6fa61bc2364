/* anthropic_codec: Anthropic messages API bodies, headers, replies. */
#ifndef PARLEY_ANTHROPIC_CODEC_H
#define PARLEY_ANTHROPIC_CODEC_H

#include <stddef.h>

#include "llm/codec.h"

/*
 * POST {base_url}/messages (ANTHROPIC_PATH).  Pure: no I/O, no clock.
 * docs/llm.md "Wire formats" has the byte-level detail.
 */
#define ANTHROPIC_PATH "/messages"
#define ANTHROPIC_VERSION "2023-06-01"

/*
 * Body {"model":M,"max_tokens":N,"system":S,"messages":[{"role":R,
 * "content":T},...]}, keys in that order, compact, "/" not escaped,
 * non-ASCII UTF-8 as is, control characters as \uXXXX, invalid UTF-8
 * replaced by U+FFFD; "system" only when non-empty.  The API wants roles
 * alternating and starting with user, so: leading assistant messages are
 * dropped (the context they gave is lost, which beats a 400), and
 * consecutive same-role messages are merged into one, joined by a blank
 * line ("\n\n").  With rq->stream, "stream":true follows messages.
 * -1 (nothing allocated) when model is NULL/empty, max_tokens <= 0, a
 * text is NULL, or no user message is left.
 */
int anthropic_build_request(const struct llm_request *rq, struct llm_body *out);

/*
 * "x-api-key: KEY", "anthropic-version: 2023-06-01",
 * "Content-Type: application/json".  -1 when key is NULL, empty, longer
 * than LLM_KEY_MAX or holds a control character.
 */
int anthropic_build_headers(struct llm_headers *h, const char *key);

/*
 * Parse a 2xx body: the text blocks of content[] concatenated in order
 * (other block types skipped; content must be an array, an empty one
 * gives ""), usage.input_tokens/output_tokens, stop_reason, id.  A body
 * {"type":"error",...} (an error delivered with 200) is classified like
 * an error reply.  0 with *reply filled, or -1 with *err filled (type
 * LLM_BAD_REPLY, class ERRCLASS_SERVER for a body that cannot be
 * understood).  Same bounds as openai_parse_reply.
 */
int anthropic_parse_reply(const char *body, size_t len, struct llm_reply *reply,
                          struct llm_error_info *err);

/*
 * Parse {"type":"error","error":{"type","message"}} and classify it with
 * errclass_from_http(status, error.type, NULL, message).  The code field
 * is left "" (Anthropic has none).  Never fails.
 */
void anthropic_parse_error(int status, const char *body, size_t len,
                           struct llm_error_info *err);

/* 2xx → anthropic_parse_reply, else anthropic_parse_error and -1. */
int anthropic_parse_response(int status, const char *body, size_t len,
                             struct llm_reply *reply,
                             struct llm_error_info *err);

/*
 * One SSE event of a streamed reply; the type is the data's "type" (the
 * SSE name when it has none).  message_start: id, usage.input_tokens;
 * content_block_start of a text block and content_block_delta of a
 * text_delta: text appended (other blocks, e.g. tool_use or thinking,
 * skipped as in a whole reply); message_delta: stop_reason,
 * usage.output_tokens (cumulative); message_stop: LLM_STREAM_END; ping,
 * content_block_stop and unknown types: nothing.  An "error" event
 * (overloaded_error, api_error, ...) is LLM_STREAM_FAIL classified like
 * the HTTP error of that type (nothing recognisable: ERRCLASS_SERVER); a
 * data that is not JSON, or text over LLM_TEXT_MAX, is a bad reply.
 */
enum llm_stream_status anthropic_stream_event(struct llm_stream *s,
                                              const char *name,
                                              const char *data, size_t len,
                                              struct llm_error_info *err);

#endif
