/* fuzz_config: config_parse must never crash, leak or hang on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    struct config_diag diag;

    memset(&diag, 0, sizeof(diag));
    if (config_parse((const char *)data, size, "fuzz.conf", &cfg, &diag) == 0) {
        /* printing walks every field of whatever was accepted */
        FILE *f = fopen("/dev/null", "w");
        if (f != NULL) {
            config_print(cfg, f);
            fclose(f);
        }
    }
    config_free(cfg);
    config_diag_release(&diag);
    return 0;
}
