/* fuzz_openai_codec: the openai reply/error parsers and body builder on
 * arbitrary bytes. */
#include "tests/fuzz/fuzz_llm_codec.h"

#include "llm/openai_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fuzz_llm_codec codec = {
    .build_request = openai_build_request,
    .parse_reply = openai_parse_reply,
    .parse_error = openai_parse_error,
    .parse_response = openai_parse_response,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_llm_one(&codec, data, size);
}
