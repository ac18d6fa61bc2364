/* openai_codec: OpenAI-compatible chat completions bodies, headers, replies. */
#ifndef PARLEY_OPENAI_CODEC_H
#define PARLEY_OPENAI_CODEC_H

#include <stddef.h>

#include "llm/codec.h"

/*
 * POST {base_url}/chat/completions (the path is OPENAI_PATH).  Pure: no
 * I/O, no clock.  docs/llm.md "Wire formats" has the byte-level detail.
 */
#define OPENAI_PATH "/chat/completions"

/*
 * Body {"model":M,"messages":[{"role":"system","content":S},
 * {"role":"user"|"assistant","content":T},...],"max_tokens":N}, keys in
 * that order, compact, "/" not escaped, non-ASCII UTF-8 as is, control
 * characters as \uXXXX, invalid UTF-8 replaced by U+FFFD.  The system
 * text, when non-empty, is the first message.  max_tokens, not
 * max_completion_tokens: every OpenAI-compatible server (vLLM, llama.cpp,
 * Ollama, Groq, DeepSeek, OpenRouter, Azure) accepts it, OpenAI still
 * does for chat models.  Consecutive same-role messages are kept as they
 * are (the API allows them).
 * With rq->stream, "stream":true,"stream_options":{"include_usage":true}
 * follow max_tokens (the usage then comes in a last chunk).
 * -1 (nothing allocated) when model is NULL/empty, max_tokens <= 0,
 * there is no message, or a text is NULL.
 */
int openai_build_request(const struct llm_request *rq, struct llm_body *out);

/*
 * "Authorization: Bearer KEY" and "Content-Type: application/json".  -1
 * when key is NULL, empty, longer than LLM_KEY_MAX or holds a control
 * character (header injection).  An empty key is refused on purpose:
 * keyless local servers get a dummy key from config.
 */
int openai_build_headers(struct llm_headers *h, const char *key);

/*
 * Parse a 2xx body: choices[0].message.content (a string; null or absent
 * is a bad reply), usage.prompt_tokens/completion_tokens, choices[0].
 * finish_reason, id.  0 with *reply filled (release it), or -1 with *err
 * filled (class ERRCLASS_SERVER, type LLM_BAD_REPLY; or the class of an
 * {"error":...} object some proxies send with 200).  len over
 * LLM_REPLY_MAX, depth over LLM_JSON_DEPTH, text over LLM_TEXT_MAX: -1.
 * body need not be NUL-terminated.
 */
int openai_parse_reply(const char *body, size_t len, struct llm_reply *reply,
                       struct llm_error_info *err);

/*
 * Parse an error reply {"error":{"message","type","param","code"}} (code
 * may be a string, a number or null) and classify it with
 * errclass_from_http(status, type, code, message).  A body that is not
 * that shape still yields a class from the status alone.  Never fails.
 */
void openai_parse_error(int status, const char *body, size_t len,
                        struct llm_error_info *err);

/*
 * Either of the above by status: 2xx → openai_parse_reply, else
 * openai_parse_error and -1.
 */
int openai_parse_response(int status, const char *body, size_t len,
                          struct llm_reply *reply, struct llm_error_info *err);

/*
 * One SSE event of a streamed reply (llm/sse.h gives name and data):
 * "data: [DONE]" ends it (LLM_STREAM_END, and so does anything after);
 * else a JSON chunk: choices[0].delta.content (or .refusal) appended to
 * s, choices[0].finish_reason, usage (the include_usage chunk), id.  A
 * chunk {"error":{...}} is LLM_STREAM_FAIL classified like an error
 * reply (nothing recognisable: ERRCLASS_SERVER); a chunk that is not
 * JSON, or text over LLM_TEXT_MAX, is a bad reply.  The event name is
 * not looked at.
 */
enum llm_stream_status openai_stream_event(struct llm_stream *s,
                                           const char *name, const char *data,
                                           size_t len,
                                           struct llm_error_info *err);

#endif
