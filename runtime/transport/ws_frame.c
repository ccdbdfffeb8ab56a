/* ws_frame.c — decodes what the agentix-server (or any RFC 6455 server) sends the host's http://
 * client before and after the upgrade: the HTTP 101 response (status, Upgrade, the
 * Sec-WebSocket-Accept check) and then frames. Runs of payload are handed on whole rather than
 * byte by byte (why sio_client.c does not use lws 4.1's parser); every length is bounded. */
#include "runtime/transport/ws_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentix/error.h"

/* ---- the upgrade response ---- */

/* The value of header `name` in the response head (NUL-terminated, lines end in CRLF), trimmed,
 * copied into out; false when absent or too long. */
static bool head_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nl) || line[nl] != ':')
            continue;
        const char *v = line + nl + 1, *end = strstr(v, "\r\n");
        if (!end)
            return false;
        while (*v == ' ' || *v == '\t')
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - v) >= cap)
            return false;
        memcpy(out, v, (size_t)(end - v));
        out[end - v] = '\0';
        return true;
    }
    return false;
}

static int head_fail(const char **why, const char *what, int code)
{
    *why = what;
    return code;
}

/* The complete head (status line and header lines, each ending in CRLF, NUL-terminated). */
static int head_check(const char *head, const char *accept, const char **why, int *status)
{
    if (sscanf(head, "HTTP/1.%*1[01] %3d", status) != 1 || *status < 100) {
        *status = 0;
        return head_fail(why, "not an HTTP response to the upgrade", AGX_ERR_PROTOCOL);
    }
    if (*status != 101)
        return head_fail(why, "the server refused the upgrade: HTTP ", AGX_ERR_UNAVAILABLE);
    *status = 0;
    char v[64];
    if (!head_header(head, "upgrade", v, sizeof v) || strcasecmp(v, "websocket"))
        return head_fail(why, "the 101 response has no Upgrade: websocket", AGX_ERR_PROTOCOL);
    if (!head_header(head, "sec-websocket-accept", v, sizeof v) || strcmp(v, accept))
        return head_fail(why, "wrong Sec-WebSocket-Accept in the 101 response", AGX_ERR_PROTOCOL);
    return 1;
}

int agx_ws_head_feed(agx_ws_head *h, const unsigned char *in, size_t len, const char *accept,
                     size_t *used, const char **why, int *status)
{
    *status = 0;
    size_t take = len < AGX_WS_HEAD_MAX - h->len ? len : AGX_WS_HEAD_MAX - h->len;
    if (!h->buf && !(h->buf = malloc(AGX_WS_HEAD_MAX + 1)))
        return head_fail(why, "out of memory", AGX_ERR_NO_MEMORY);
    size_t old = h->len;
    memcpy(h->buf + old, in, take);
    h->len += take;
    h->buf[h->len] = '\0';
    if (memchr(h->buf + old, '\0', take))
        return head_fail(why, "a NUL byte in the HTTP upgrade response", AGX_ERR_PROTOCOL);
    char *end = strstr(h->buf + (old > 3 ? old - 3 : 0), "\r\n\r\n");
    if (!end)
        return h->len < AGX_WS_HEAD_MAX
                   ? 0
                   : head_fail(why, "the HTTP upgrade response is over 16 KiB", AGX_ERR_PROTOCOL);
    end[2] = '\0'; /* keep the last header's CRLF for head_header */
    *used = (size_t)(end + 4 - h->buf) - old;
    return head_check(h->buf, accept, why, status);
}

void agx_ws_head_free(agx_ws_head *h)
{
    free(h->buf);
    h->buf = NULL;
    h->len = 0;
}

/* ---- frames ---- */

static int frames_fail(const char **why, const char *what)
{
    *why = what;
    return AGX_WS_BAD;
}

/* The header's full length once its first two bytes are in. */
static size_t header_need(const unsigned char *h, size_t have)
{
    if (have < 2)
        return 2;
    unsigned l7 = h[1] & 0x7f;
    return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

static int header_done(agx_ws_frames *f, const char **why)
{
    const unsigned char *h = f->fh;
    if (h[0] & 0x70)
        return frames_fail(why, "a websocket frame with reserved bits set (no extension was agreed)");
    if (h[1] & 0x80)
        return frames_fail(why, "a masked websocket frame from the server");
    uint64_t len = h[1] & 0x7f;
    if (len == 126)
        len = (uint64_t)h[2] << 8 | h[3];
    else if (len == 127)
        for (int i = 2; i < 10; i++)
            len = (i == 2 ? 0 : len << 8) | h[i];
    f->fin = (h[0] & 0x80) != 0;
    f->opcode = h[0] & 0x0f;
    f->left = len;
    if (f->opcode & 0x8) {
        if (!f->fin || len > 125 || f->opcode > 0xA)
            return frames_fail(why, "a bad websocket control frame");
        f->ctl_len = 0;
        return 0;
    }
    if (f->opcode == 0 ? !f->in_message : (f->opcode > 2 || f->in_message))
        return frames_fail(why, "websocket data frames out of order or of an unknown type");
    if (len > SIZE_MAX)
        return frames_fail(why, "a websocket frame larger than memory");
    if (f->opcode) {
        f->in_message = true;
        f->msg_first = true;
        f->msg_binary = f->opcode == 2;
    }
    return 0;
}

/* n payload bytes of the current frame (n may be 0 for an empty frame). */
static int payload(agx_ws_frames *f, const unsigned char *in, size_t n, const agx_ws_sink *s)
{
    f->left -= n;
    if (f->opcode & 0x8) {
        memcpy(f->ctl + f->ctl_len, in, n);
        f->ctl_len += n;
        if (f->left)
            return 0;
        return s->control(s->ud, f->opcode, f->ctl, f->ctl_len) ? AGX_WS_STOP : 0;
    }
    bool final = f->fin && f->left == 0;
    int rc = s->data(s->ud, n ? in : (const unsigned char *)"", n, f->msg_first, final,
                     f->msg_binary, (size_t)f->left);
    f->msg_first = false;
    if (final)
        f->in_message = false;
    return rc ? AGX_WS_STOP : 0;
}

uint64_t agx_ws_frames_data_left(const agx_ws_frames *f)
{
    return f->in_payload && !(f->opcode & 0x8) ? f->left : 0;
}

int agx_ws_frames_feed(agx_ws_frames *f, const unsigned char *in, size_t len,
                       const agx_ws_sink *sink, const char **why)
{
    int rc;
    while (len) {
        if (!f->in_payload) {
            size_t need;
            while ((need = header_need(f->fh, f->fh_len)) > f->fh_len && len) {
                f->fh[f->fh_len++] = *in++;
                len--;
            }
            if (f->fh_len < need)
                return 0;
            f->fh_len = 0;
            if ((rc = header_done(f, why)))
                return rc;
            if (f->left == 0) {
                if ((rc = payload(f, in, 0, sink)))
                    return rc;
                continue;
            }
            f->in_payload = true;
        }
        size_t n = f->left < len ? (size_t)f->left : len;
        if ((rc = payload(f, in, n, sink)))
            return rc;
        in += n;
        len -= n;
        if (f->left == 0)
            f->in_payload = false;
    }
    return 0;
}
