/* runtime.h — running agentix's runtime from a backend: where the runtime binaries that ship with
 * this libagentix are (to start agentix-server, or to put it into a bundle), and the wait until a
 * sandbox's runtime answers GET /health, the moment create() may return. Part of the backend
 * toolkit (toolkit.h), in libagentix; thread-safe.
 *
 * The build tree and an installed prefix share one layout relative to the library:
 *   <libdir>/libagentix.so, <libdir>/agentix/bin/{agentix-server,agentix-worker},
 *   <libdir>/agentix/modules/, <libdir>/agentix/backends/ */
#ifndef AGENTIX_BACKEND_RUNTIME_H
#define AGENTIX_BACKEND_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The folder holding the loaded libagentix (resolved, computed once), NULL when it cannot be
 * told. */
AGX_API const char *agx_runtime_libdir(void);
/* <libdir>/agentix/bin/<name> into out (e.g. "agentix-server"); does not check that it exists.
 * AGX_ERR_INVALID_ARGUMENT for an empty name or one with '/', AGX_ERR_NOT_FOUND when the libdir is
 * unknown, AGX_ERR_LIMIT when out is too small. */
AGX_API int agx_runtime_bin_path(const char *name, char *out, size_t n, agx_error *err);

/* 2*nbytes lower-case hex digits of fresh randomness (getrandom) and a NUL into out (room for
 * 2*nbytes+1): a runtime's token (AGENTIX_TOKEN), a sandbox id, a create nonce. nbytes ≤ 64. */
AGX_API int agx_random_hex(char *out, size_t nbytes, agx_error *err);

/* ---- a running runtime's expiry and claim (expiry.h, docs/PROTOCOL.md §1.1) ---- */

/* The runtime's expiry becomes now + expiry_ms: over a client connection this process has open
 * to the sandbox when there is one (the `expiry` event), else by POST <runtime_url>/expiry with
 * the sandbox's token and headers (an http+unix:// URL's socket too). Bounded by deadline_ms
 * (agx_clock_ms(); ≤ 10 s per call); $AGENTIX_CONNECT_TO applies as for the client. Errors: AGX_ERR_UNAVAILABLE / TIMEOUT (retriable) when the runtime
 * does not answer, AGX_ERR_NOT_FOUND when a proxy says the sandbox is gone, AGX_ERR_UNSUPPORTED for
 * a runtime without expiries (404), AGX_ERR_BACKEND for a refusal (401: wrong token). The path
 * and the headers besides the sandbox's are exported for backends that reach their runtimes
 * through a client of their own (a Kubernetes API-server proxy): agx_runtime_expiry_headers. */
AGX_API int agx_runtime_expiry_extend(const agx_sandbox *sb, int64_t expiry_ms, int64_t deadline_ms,
                                      agx_error *err);

/* POST <runtime_url>/claim: gives a runtime started in claim mode (AGENTIX_AUTH=claim: a
 * pre-warmed pod, a cloud template started before any sandbox existed) its per-sandbox token and
 * its expiry, once. claim_secret authenticates the claim (the pool's secret; NULL when the
 * runtime takes the first claim, which a proxy that admits only the sandbox's creator already
 * authenticates). The sandbox's token and headers are sent. Bounded by deadline_ms; a refused
 * connection is retried three times within 140 ms (claim a runtime that answered its readiness
 * probe). AGX_ERR_CONFLICT when the runtime was claimed already (by someone else: do not use it). */
/* The headers of POST /expiry (claim_secret NULL) or /claim, added to a copy of the sandbox's. */
AGX_API agx_kv *agx_runtime_expiry_headers(const agx_sandbox *sb, const char *claim_secret,
                                           int64_t expiry_ms);

AGX_API int agx_runtime_claim(const agx_sandbox *sb, const char *claim_secret, int64_t expiry_ms,
                              int64_t deadline_ms, agx_error *err);

/* ---- waiting for /health ---- */

/* Called before every probe: 0 to go on waiting, or an error (set in err) that ends the wait,
 * e.g. "the process exited" — so a runtime that died fails at once instead of at the deadline. */
typedef int (*agx_health_alive_fn)(void *user, agx_error *err);
/* Judges an answer other than 200: 0 = not ready yet (poll again), or an error (set in err) that
 * ends the wait, e.g. a cloud proxy saying the sandbox is gone. NULL: every answer is "not yet". */
typedef int (*agx_health_status_fn)(void *user, long status, const char *body, size_t len,
                                    agx_error *err);

typedef struct agx_health_wait {
    uint32_t struct_size;        /* 0 or sizeof(agx_health_wait); see http.h */
    const char *runtime_url;     /* probes GET <runtime_url>/health */
    const char *what;            /* names the runtime in messages, e.g. "E2B sandbox runtime" */
    const agx_kv *headers;       /* sent with every probe (a proxy's token), may be NULL */
    const char *connect_to;      /* as agx_http_request's, NULL = none */
    int no_proxy;                /* loopback: never through a proxy */
    int64_t deadline_ms;         /* agx_clock_ms() bound of the whole wait (required) */
    int first_interval_ms;       /* pause after the first failed probe, default 10 */
    int max_interval_ms;         /* pauses double up to this, default 500 */
    int probe_timeout_ms;        /* bound of one probe, default 2000 (never past the deadline) */
    agx_health_alive_fn alive;   /* may be NULL */
    agx_health_status_fn on_status; /* may be NULL */
    void *user;                  /* for alive and on_status */
    const char *hint;            /* appended to the timeout message ("; check …"), may be NULL */
} agx_health_wait;

/* Polls until the runtime answers 200 with {"status":"ok"}: 0. Otherwise the error alive or
 * on_status returned, or AGX_ERR_TIMEOUT (retriable) "<what> did not answer /health at <url>
 * within <ms> ms (last: <the last probe's outcome>)<hint>". */
AGX_API int agx_health_wait_run(const agx_health_wait *w, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
