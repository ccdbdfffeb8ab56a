/* fuzz_elf.c — libFuzzer target: any bytes given to the bundle's ELF reader must yield either a
 * parse whose strings are all present and NUL-terminated, or an error with a message; never a
 * read outside the buffer. */
#include "runtime/bundle/elf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_elf_info info;
    agx_error err = {0};
    int rc = agx_elf_parse(data, size, &info, &err);
    if (rc != 0) {
        if (err.code != rc || !err.message[0] || info.needed || info.nneeded)
            abort();
        return 0;
    }
    if (info.nneeded > AGX_ELF_MAX_NEEDED)
        abort();
    for (size_t i = 0; i < info.nneeded; i++)
        if (!info.needed[i] || strlen(info.needed[i]) >= size)
            abort();
    agx_elf_info_free(&info);
    return 0;
}
