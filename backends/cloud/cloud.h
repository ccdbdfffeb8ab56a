/* cloud.h (internal) — what the e2b and daytona backends share (a static helper each plugin
 * links; not a backend itself): JSON calls to a vendor's control plane through the toolkit's HTTP
 * client with the vendor's
 * retry rules, the wait until a sandbox's runtime answers /health through its public URL (with the
 * connect-to override), the labels (agentix/backend/labels.h: the ownership record) every sandbox
 * carries, the clean-up after a failed create (bounded, and skipped when the request provably never
 * reached the API), and small checks.
 *
 * Flow: host → e2b/daytona vtable → agx_cloud_request (vendor API) → agx_cloud_wait_health
 * (runtime_url through the vendor's proxy) → agx_sandbox for client.h. */
#ifndef AGX_BACKENDS_CLOUD_H
#define AGX_BACKENDS_CLOUD_H

#include <jansson.h>
#include <stdint.h>

#include "agentix/backend/toolkit.h"
#include "agentix/deployment.h"
#include "agentix/error.h"

#define AGX_CLOUD_CALL_TIMEOUT_MS 60000   /* one API request (the vendors' SDKs use 60 s) */
#define AGX_CLOUD_DELETE_TIMEOUT_MS 60000 /* delete with its retries */
#define AGX_CLOUD_MAX_BACKOFF_MS 5000     /* one wait between attempts (Retry-After up to it) */
#define AGX_CLOUD_ID_MAX 128
#define AGX_CLOUD_MAX_LABELS 64
#define AGX_CLOUD_LABEL_MAX 1024 /* bytes of one label key or value */
#define AGX_CLOUD_MAX_PAGES 1000 /* list pages followed before giving up (a looping cursor) */
/* What the clean-up after a failed create may take past the create's deadline (the sweep by
 * nonce, the delete of a half-made sandbox); what it leaves ends at its expiry and gc finds it. */
#define AGX_CLOUD_CLEANUP_GRACE_MS 500

typedef struct agx_cloud {
    const char *service; /* "E2B" / "Daytona", for messages */
    const char *backend; /* "e2b" / "daytona": admission control's name for it */
    char *api_url;       /* without a trailing slash */
    agx_kv *auth;        /* headers sent with every API call */
    char *connect_to;    /* $AGENTIX_CONNECT_TO for sandbox URLs, NULL = none */
} agx_cloud;

/* Reads the parts every cloud backend has. api_url is copied without trailing slashes. */
int agx_cloud_init(agx_cloud *c, const char *service, const char *backend, const char *api_url,
                   const char *auth_name, const char *auth_value, agx_error *err);
void agx_cloud_fini(agx_cloud *c);

/* An environment variable that must be set and be one printable line; names it when not. */
int agx_cloud_env_required(const char *name, const char **out, agx_error *err);

/* Decides extra retriable responses (e.g. Daytona's quota 400, a delete's 409). */
typedef int (*agx_cloud_retry_fn)(const agx_http_response *resp);

typedef struct agx_cloud_call {
    const char *method;
    const char *path;         /* appended to api_url; escaped by the caller */
    const char *url;          /* full URL instead of api_url + path (toolbox) */
    json_t *body;             /* borrowed; NULL = no body */
    const char *what;         /* "creating the sandbox", for messages */
    int idempotent;           /* retry 5xx and transport errors too (429 is always retried) */
    int64_t deadline_ms;      /* agx_clock_ms() bound of all attempts; 0 = one call's timeout */
    const char *retry_after_header; /* a vendor-specific Retry-After, lower-case */
    agx_cloud_retry_fn retry_also;
    agx_kv **headers_out;     /* when set: the final response's headers (caller frees) */
    int creates;              /* a create: a 429's Retry-After defers every process's next create
                                 (agx_admission_defer) */
    int *maybe_sent;          /* as agx_http_request's: set when an attempt may have arrived */
} agx_cloud_call;

/* Performs the call under its retry rules. 2xx: 0, *out (if out) the parsed JSON body or NULL
 * when empty. Otherwise the error carries the vendor's own message (agx_http_check_status). The
 * final status is in *status (0 when no response came) when status is not NULL. */
int agx_cloud_request(const agx_cloud *c, const agx_cloud_call *call, long *status, json_t **out,
                      agx_error *err);

/* The toolkit's health wait (agx_health_wait_run) through the vendor's proxy until deadline_ms:
 * a 502/503/504 proxy answer (port not open yet) and connection failures mean "not yet"; a 502
 * saying the sandbox was not found, or any other status, fails at once with the proxy's message. */
int agx_cloud_wait_health(const agx_cloud *c, const char *runtime_url, const agx_kv *headers,
                          int64_t deadline_ms, agx_error *err);

/* The config's labels (the ownership record among them) plus the mark, as a JSON object of
 * strings; count, sizes and UTF-8 checked. nonce (33 bytes) gets the record's create nonce (a
 * fresh one if the config has none). */
int agx_cloud_labels(const agx_cloud *c, const agx_sandbox_config *cfg, char nonce[33],
                     json_t **out, agx_error *err);
/* Copies the string members of a vendor's labels object into info's labels; -1 when memory runs
 * out, else 0. */
int agx_cloud_info_labels(agx_sandbox_info *info, json_t *labels);
/* A kv list as a JSON object of strings (env); what names it in errors. */
int agx_cloud_kv_json(const agx_kv *kv, const char *what, json_t **out, agx_error *err);
/* A sandbox id is 1..AGX_CLOUD_ID_MAX-1 of [A-Za-z0-9-]: safe in a path and a host name. */
int agx_cloud_check_id(const agx_cloud *c, const char *id, agx_error *err);
/* The bound of a clean-up after a failed create whose deadline was create_deadline. */
int64_t agx_cloud_cleanup_deadline(int64_t create_deadline);
/* After a create that failed but may have reached the API: finds what carries the nonce
 * (list_fn) and deletes it (delete_fn), all by deadline_ms; best effort. Skipped (0 calls) when
 * maybe_sent is 0: the request provably never arrived. */
typedef int (*agx_cloud_list_fn)(void *self, const agx_kv *labels, int64_t deadline_ms,
                                 agx_sandbox_list *into, agx_error *err);
typedef int (*agx_cloud_delete_fn)(void *self, const char *id, int64_t deadline_ms, agx_error *err);
void agx_cloud_sweep_nonce(void *self, const char *nonce, int maybe_sent, int64_t deadline_ms,
                           agx_cloud_list_fn list, agx_cloud_delete_fn del);

/* Next poll interval: 100 ms for the first 5 s, then ×1.1 per poll up to 1 s (Daytona's SDK). */
int64_t agx_cloud_poll_interval(int64_t started_ms, int64_t now_ms, int64_t prev_ms);

#endif
