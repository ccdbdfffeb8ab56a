/* buf.c — the growable byte buffer encoders and framers append to (value codecs, Socket.IO and
 * worker framing), so a payload is written once into the buffer that goes on the wire. */
#include "agentix/value.h"

#include <stdlib.h>
#include <string.h>

int agx_buf_reserve(agx_buf *b, size_t extra)
{
    if (!b)
        return AGX_ERR_INVALID_ARGUMENT;
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX - b->len)
        return AGX_ERR_NO_MEMORY;
    size_t need = b->len + extra;
    /* Doubling keeps appends amortised O(1); start at a size that fits typical small frames. */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return AGX_ERR_NO_MEMORY;
    b->data = p;
    b->cap = cap;
    return 0;
}

int agx_buf_append(agx_buf *b, const void *data, size_t len)
{
    if (!b || (!data && len))
        return AGX_ERR_INVALID_ARGUMENT;
    int rc = agx_buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void agx_buf_free(agx_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
