/* http.h — the one HTTP client every backend talks to its service through (host → backend →
 * Docker Engine / E2B / Daytona / Kubernetes API): a request with method, URL, headers and body
 * over TCP or a unix socket, bounded in time and size, answered by status, headers and body; plus
 * a retry loop whose policy the backend decides, and HTTP status → agx_error mapping. Part of the
 * backend toolkit (toolkit.h), in libagentix. libcurl does the transfer; every call is
 * thread-safe (one easy handle per request).
 *
 * Structs passed in start with struct_size: leave it 0 (the layout of toolkit version 1) or set
 * it to sizeof; fields added by later toolkit versions go at the end and are read only when
 * struct_size covers them, so a backend built against an older toolkit keeps working. */
#ifndef AGENTIX_BACKEND_HTTP_H
#define AGENTIX_BACKEND_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGX_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define AGX_HTTP_DEFAULT_TIMEOUT_MS 30000
#define AGX_HTTP_DEFAULT_MAX_BODY (16u << 20)
#define AGX_HTTP_MAX_HEADERS 128 /* response header lines kept; more is AGX_ERR_LIMIT */

/* Receives the response body as it arrives instead of buffering it (streamed APIs such as
 * Docker's image pull). Returns 0 to go on, non-zero to abort the transfer (the request then fails
 * with AGX_ERR_CANCELLED unless the sink set a more precise error of its own in its user data). */
typedef int (*agx_http_sink_fn)(const char *data, size_t len, void *user);
/* Told once the response's status line and headers have arrived (before any body), e.g. that a
 * streamed attach is established. */
typedef void (*agx_http_headers_fn)(long status, void *user);

/* Ends a request in flight from another thread (toolkit 2): agx_http_abort_fire shuts its socket
 * down, so a transfer blocked waiting for data ends at once with AGX_ERR_CANCELLED; a request not
 * yet connected is refused when it tries. One handle serves one request at a time; fire is
 * sticky until the handle is freed. */
typedef struct agx_http_abort agx_http_abort;
AGX_API int agx_http_abort_new(agx_http_abort **out, agx_error *err);
AGX_API void agx_http_abort_fire(agx_http_abort *a);
AGX_API void agx_http_abort_free(agx_http_abort *a);

typedef struct agx_http_request {
    uint32_t struct_size;     /* 0 or sizeof(agx_http_request) */
    const char *method;       /* "GET", "POST", "DELETE", … */
    const char *url;          /* full URL; with unix_socket the host part is only the Host header */
    const char *unix_socket;  /* path of a unix socket to connect to, NULL for TCP */
    const agx_kv *headers;    /* extra request headers, may be NULL */
    const char *body;         /* request body, NULL for none */
    size_t body_len;
    const char *content_type; /* with a body; default "application/json" */
    long connect_timeout_ms;  /* 0 = AGX_HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    long timeout_ms;          /* whole request; 0 = AGX_HTTP_DEFAULT_TIMEOUT_MS */
    size_t max_body;          /* buffered body bound; 0 = AGX_HTTP_DEFAULT_MAX_BODY */
    agx_http_sink_fn sink;    /* NULL: buffer the body into the response */
    void *sink_user;
    /* "HOST:PORT:CONNECT_HOST:CONNECT_PORT" (curl's CONNECT_TO): reach the URL's host at another
     * address while the URL, Host header and TLS name stay as they are; NULL = none. */
    const char *connect_to;
    /* TLS for https URLs (e.g. a Kubernetes API server): PEM blobs (not file names), NULL = none:
     * the CA bundle to verify the server with instead of the system's (without one:
     * $AGENTIX_CA_FILE / $AGENTIX_CA_DIR when set, as for runtime connections, else the system's),
     * and a client certificate with its key. tls_insecure skips server verification
     * (insecure-skip-tls-verify). */
    const char *tls_ca_pem;
    size_t tls_ca_pem_len;
    const char *tls_cert_pem;
    size_t tls_cert_pem_len;
    const char *tls_key_pem;
    size_t tls_key_pem_len;
    int tls_insecure;
    struct agx_http_share *share; /* connection cache to reuse (agx_http_share_new), NULL = none */
    /* Never through a proxy, whatever the environment's proxy variables say (a loopback health
     * check, a local daemon); otherwise libcurl's usual proxy rules apply. */
    int no_proxy;
    /* ---- toolkit 2 (read when struct_size covers them; 0 = version 1's layout) ---- */
    agx_http_headers_fn on_headers; /* with sink_user; NULL = none */
    agx_http_abort *abort;          /* NULL = none */
    /* When not NULL, set to 1 (never cleared) by every attempt that may have reached the service:
     * one whose connection was established. A caller that sets it to 0 first knows afterwards
     * that a failed request provably never arrived (name resolution failed, connection refused
     * or not made in time), e.g. that a create left nothing to clean up. */
    int *maybe_sent;
} agx_http_request;

/* Connection reuse for requests naming it, from any thread: each thread keeps its kept-alive
 * connections (libcurl cannot share one connection cache between concurrent threads), TLS sessions
 * and DNS are shared. A backend making many small API calls (e.g. the Kubernetes API over TLS)
 * keeps one per instance and saves a connect and handshake per call. Free it after its last
 * request, when no thread that used it is still exiting. */
typedef struct agx_http_share agx_http_share;
AGX_API int agx_http_share_new(agx_http_share **out, agx_error *err);
AGX_API void agx_http_share_free(agx_http_share *share);

typedef struct agx_http_response {
    long status;     /* HTTP status; 0 when no response arrived */
    char *body;      /* NUL-terminated (empty with a sink), owned */
    size_t body_len;
    agx_kv *headers; /* lower-cased names; a repeated name keeps its last value; owned */
} agx_http_response;

/* Performs one request. Returns 0 when a response arrived, whatever its status (check
 * resp->status, or use agx_http_check_status). Transport failures: AGX_ERR_UNAVAILABLE (cannot
 * connect; retriable), AGX_ERR_TIMEOUT (retriable), AGX_ERR_LIMIT (body over max_body),
 * AGX_ERR_IO for other transfer errors; the message names the method, URL and socket.
 * resp is reset first and must be released with agx_http_response_clear either way. */
AGX_API int agx_http_perform(const agx_http_request *req, agx_http_response *resp, agx_error *err);
AGX_API void agx_http_response_clear(agx_http_response *resp);

/* ---- status → error ---- */

/* 0 for a 2xx status. Otherwise fills err and returns its code: 400/422 INVALID_ARGUMENT,
 * 404 NOT_FOUND, 409 CONFLICT, 429 RATE_LIMITED and 5xx BACKEND with retriable set, the rest BACKEND.
 * The message is "<what>: HTTP <status>[: <message>]" where <message> is the body's JSON
 * "message" (or "error") string when it has one; the raw body goes to err->detail. */
AGX_API int agx_http_check_status(const agx_http_response *resp, const char *what, agx_error *err);

/* ---- retries ---- */

/* Decides whether an attempt is worth repeating: rc is agx_http_perform's result (resp is valid
 * when rc == 0). Returns 1 to retry. */
typedef int (*agx_http_retry_fn)(int rc, const agx_http_response *resp, const agx_error *err,
                                 void *user);

typedef struct agx_http_retry {
    uint32_t struct_size;      /* 0 or sizeof(agx_http_retry) */
    int max_attempts;          /* ≥ 1; 0 means 1 */
    int base_delay_ms;         /* first backoff; doubles each attempt, with jitter */
    int max_delay_ms;          /* cap of one backoff; Retry-After (seconds) is honoured up to it */
    int64_t deadline_ms;       /* agx_clock_ms() bound: no attempt starts after it; 0 = none */
    agx_http_retry_fn should_retry; /* NULL = agx_http_retry_default */
    void *user;
    /* Extra response header read like Retry-After (e.g. Daytona's "retry-after-sandbox-create",
     * lower-case); the longer of the two wins. NULL = Retry-After only. */
    const char *retry_after_header;
} agx_http_retry;

/* Retries transport errors marked retriable and statuses 429, 502, 503, 504. */
AGX_API int agx_http_retry_default(int rc, const agx_http_response *resp, const agx_error *err, void *user);

/* agx_http_perform under a retry policy (a request with a sink is never repeated: its body was
 * already consumed). Returns what the last attempt returned; resp holds the last response. */
AGX_API int agx_http_perform_retry(const agx_http_request *req, const agx_http_retry *retry,
                           agx_http_response *resp, agx_error *err);

/* ---- small helpers ---- */

/* Percent-encodes s for a URL path segment or query value (RFC 3986 unreserved kept). malloc'd;
 * NULL when out of memory. */
AGX_API char *agx_http_escape(const char *s);

#ifdef __cplusplus
}
#endif
#endif
