/* random.c — fresh random hex (runtime.h) for what backends must not let anyone guess: runtime
 * tokens, sandbox ids, create nonces. */
#include "agentix/backend/runtime.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int agx_random_hex(char *out, size_t nbytes, agx_error *err)
{
    unsigned char raw[64];
    if (!out || nbytes > sizeof raw)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_random_hex: %zu bytes asked, at most %zu", nbytes, sizeof raw);
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(raw + got, nbytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return agx_error_set(err, AGX_ERR_IO, "getrandom failed: %s", strerror(errno));
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return 0;
}
