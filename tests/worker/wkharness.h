/* wkharness.h — drives a real agentix-worker over its pipes the way agentix-server does: spawn it,
 * send frames, and read frames back (decoded to value maps) with timeouts, keeping frames that
 * arrive for other calls until asked for. Shared by the worker and module tests. */
#ifndef AGX_TEST_WKHARNESS_H
#define AGX_TEST_WKHARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentix/value.h"
#include "runtime/wire/frame.h"
#include "runtime/wire/ring.h"

typedef struct wkh {
    pid_t pid;
    int to_fd, from_fd;
    agx_frame_reader *reader;
    agx_value *stash[4096]; /* frames read but not yet asked for, in arrival order */
    size_t n_stash;
    bool eof;
    agx_ring ring;       /* wkh_start_ring: the out bulk ring the worker was given (else none) */
    agx_ring in_ring;    /* … and its in ring, which wkh_in fills as agentix-server does */
    bool ring_hold;      /* true: ring items are not released (the worker's ring fills up) */
    size_t ring_items;   /* items that arrived through the ring */
    size_t in_ring_items; /* inputs wkh_in sent through the in ring */
} wkh;

/* Spawns `argv0 [args...]` as the worker with AGENTIX_MODULE_PATH=module_path (NULL: unset) plus
 * extra "K=V" env entries (NULL-terminated, may be NULL), and checks the ready frame. */
wkh *wkh_start(const char *const *argv, const char *module_path, const char *const *env);
/* The same with bulk rings at fds 3 and 4, as agentix-server gives them: ring items are checked
 * like the server checks them (agx_ring_accept), their bytes put in the decoded frame's "value"
 * and released as they are read unless ring_hold is set; wkh_in puts inputs of 16 KiB or more
 * into the in ring when it has room. The worker's pipes are 1 MiB, as the server's. */
wkh *wkh_start_ring(const char *const *argv, const char *module_path, const char *const *env);
/* Releases everything read so far (after ring_hold). */
void wkh_ring_release(wkh *h);
/* Closes its stdin, waits up to timeout_ms for the exit; returns the wait status, or -1 on timeout
 * (the worker is then killed). Frees h. */
int wkh_finish(wkh *h, int timeout_ms);
/* Waits for the worker to exit on its own (without closing stdin); status or -1. Frees h. */
int wkh_wait_exit(wkh *h, int timeout_ms);

void wkh_send_raw(wkh *h, const agx_buf *frames);
/* Sends `call`; args (array) / kwargs (map) may be NULL; they are freed. */
void wkh_call(wkh *h, uint64_t id, const char *target, agx_shape shape, agx_value *args,
              agx_value *kwargs, uint32_t window);
void wkh_simple(wkh *h, agx_frame_type type, uint64_t id);          /* end_in, cancel, shutdown */
void wkh_credit(wkh *h, uint64_t id, uint64_t n);
void wkh_in(wkh *h, uint64_t id, agx_value *item);                  /* frees item */
void wkh_describe(wkh *h, uint64_t id, const char *target);

/* The next frame for call id (any type), decoded; NULL on timeout or EOF. The caller frees it. */
agx_value *wkh_next(wkh *h, uint64_t id, int timeout_ms);
/* The next frame for id that is not in_credit (adding their n to *credits when not NULL). */
agx_value *wkh_next_data(wkh *h, uint64_t id, int timeout_ms, uint64_t *credits);
/* Like wkh_next_data (in_credit frames skipped unless type is "in_credit") but fails the test
 * unless the frame has this type. */
agx_value *wkh_expect(wkh *h, uint64_t id, const char *type, int timeout_ms);
/* Expects a terminal error frame; returns its error map's type (static copy) and message. */
void wkh_expect_error(wkh *h, uint64_t id, const char *type, const char *message_part, bool cancelled);
/* Runs a unary call to completion and returns its result value (caller frees). */
agx_value *wkh_unary(wkh *h, uint64_t id, const char *target, agx_value *args, agx_value *kwargs);

/* Small constructors for argument lists. */
agx_value *wkh_args(int n, ...);            /* n agx_value* items → array */
agx_value *wkh_kwargs(int n, ...);          /* n pairs (const char *key, agx_value *value) → map */
const char *wkh_frame_type(const agx_value *frame);
int64_t wkh_now_ms(void);

#endif
