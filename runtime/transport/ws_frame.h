/* ws_frame.h — the pure websocket decoding of the host's http:// dial (sio_client.c): the
 * server's HTTP upgrade response and its frames, bytes in → callbacks out, no I/O. Kept apart
 * from the socket code so tests/fuzz/ws_frame can drive it with arbitrary network input. */
#ifndef AGX_RUNTIME_TRANSPORT_WS_FRAME_H
#define AGX_RUNTIME_TRANSPORT_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGX_WS_HEAD_MAX 16384 /* bytes of the server's upgrade response we read at most */

/* The upgrade response, gathered until its blank line. Zero-initialise; agx_ws_head_free after. */
typedef struct agx_ws_head {
    char *buf;
    size_t len;
} agx_ws_head;

/* Feeds `len` bytes of the response. `accept` is the Sec-WebSocket-Accept the server must send.
 * Returns 0 while incomplete; 1 once a valid 101 is complete (*used = bytes of `in` that belonged
 * to it, the rest are frames); or a negative agx_error_code with *why naming the problem and
 * *status the HTTP status when that was the problem (else 0). */
int agx_ws_head_feed(agx_ws_head *h, const unsigned char *in, size_t len, const char *accept,
                     size_t *used, const char **why, int *status);
void agx_ws_head_free(agx_ws_head *h);

/* Where the frames go. `data` gets runs of a data message's payload in order (n may be 0):
 * first/final mark the message's first and last run, `left` is what remains of the current
 * frame. `control` gets a whole ping (0x9), pong (0xA) or close (0x8) frame. A nonzero return
 * stops the parser. */
typedef struct agx_ws_sink {
    int (*data)(void *ud, const unsigned char *p, size_t n, bool first, bool final, bool binary,
                size_t left);
    int (*control)(void *ud, unsigned opcode, const unsigned char *p, size_t n);
    void *ud;
} agx_ws_sink;

/* Frame-parser state across reads. Zero-initialise; owns no memory. */
typedef struct agx_ws_frames {
    unsigned char fh[14]; /* the frame header, gathered */
    size_t fh_len;
    bool in_payload;      /* fh is complete; `left` payload bytes still to come */
    uint64_t left;
    unsigned opcode;
    bool fin;
    bool in_message, msg_first, msg_binary;
    unsigned char ctl[125]; /* a control frame's payload */
    size_t ctl_len;
} agx_ws_frames;

/* Payload bytes of the current data frame still to come (0 outside a data frame's payload): a
 * reader may receive exactly these into the sink's own buffer and feed them from there. */
uint64_t agx_ws_frames_data_left(const agx_ws_frames *f);

#define AGX_WS_BAD (-1)  /* the server broke RFC 6455; *why says how */
#define AGX_WS_STOP (-2) /* a sink callback returned nonzero */

/* Parses `len` bytes of server frames (unmasked, no extensions). Returns 0, AGX_WS_BAD or
 * AGX_WS_STOP; after either error the parser must not be fed again. */
int agx_ws_frames_feed(agx_ws_frames *f, const unsigned char *in, size_t len,
                       const agx_ws_sink *sink, const char **why);

#endif
