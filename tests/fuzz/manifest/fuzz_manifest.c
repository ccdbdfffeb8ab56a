/* fuzz_manifest.c — libFuzzer target: any bytes given to the manifest parser must yield either a
 * valid manifest (every field NUL-terminated and within its bound) or an error, never a crash. */
#include "core/host/plugin_manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_manifest m;
    agx_error err;
    int rc = agx_manifest_parse((const char *)data, size, "fuzz", &m, &err);
    if (rc == 0) {
        if (!agx_manifest_name_valid(m.name) || !m.library[0] || !m.symbol[0] ||
            strnlen(m.library, sizeof m.library) == sizeof m.library)
            abort();
    } else if (err.code != rc || !err.message[0] ||
               strnlen(m.name, sizeof m.name) == sizeof m.name) {
        abort();
    }
    return 0;
}
