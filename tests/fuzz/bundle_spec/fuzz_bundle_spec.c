/* fuzz_bundle_spec.c — libFuzzer target for the bundle spec decoder (runtime/bundle/spec.c): the
 * text of a bundle.agx, `key = value` lines naming the bundle and the modules, tools and files to
 * copy into it. Paths are resolved on this machine; relative ones against a folder that does not
 * exist, so they fail like a typo would. What decodes must hold a valid name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bundle/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_bundle_spec *s;
    agx_error err;
    agx_error_clear(&err);
    if (agx_bundle_spec_new(&s, &err) != 0)
        return 0;
    if (agx_bundle_spec_parse(s, (const char *)data, size, "/nonexistent-agx-fuzz", "fuzz", &err) == 0) {
        const char *name = agx_bundle_spec_name(s);
        if (name) {
            char repo[AGX_BUNDLE_NAME_MAX], tag[256];
            if (agx_bundle_name_split(name, repo, sizeof repo, tag, sizeof tag, &err) != 0)
                abort(); /* a name it stored must split again */
        }
    } else if (!err.message[0]) {
        abort(); /* a refusal always says why */
    }
    agx_bundle_spec_free(s);
    return 0;
}
