/* fuzz_anthropic_codec: the anthropic reply/error parsers and body builder on
 * arbitrary bytes. */
#include "tests/fuzz/fuzz_llm_codec.h"

#include "llm/anthropic_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fuzz_llm_codec codec = {
    .build_request = anthropic_build_request,
    .parse_reply = anthropic_parse_reply,
    .parse_error = anthropic_parse_error,
    .parse_response = anthropic_parse_response,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_llm_one(&codec, data, size);
}
