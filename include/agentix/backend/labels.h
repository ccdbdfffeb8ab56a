/* labels.h — every label name agentix writes on a sandbox, in one place: the ownership record.
 * Part of the backend toolkit (toolkit.h); hosts read the same names (fleet.h, `agentix gc`).
 *
 * agx_deployment_create stamps every sandbox — whichever API path created it: plain creates,
 * sessions, fleets, pools, maps, the CLI — with one ownership record in the config's labels,
 * before the backend sees the config. A backend writes the config's labels where its provider
 * keeps them (container labels, cloud metadata, pod labels, its own record) in the first request
 * that makes the sandbox exist, so a create interrupted at any instant leaves something findable
 * by owner or nonce:
 *   agentix.sandbox     = "1"            made by agentix (the backend adds it; every list has it)
 *   agentix.owner.host  = gethostname()
 *   agentix.owner.pid   = the creating process (`agentix create`: the process that ran it)
 *   agentix.owner.start = that process's start time, field 22 of /proc/<pid>/stat (clock ticks
 *                         since boot): tells the owner from a later process that reused its pid
 *   agentix.run         = the run id (agx_run_id(), or a fleet/pool option)
 *   agentix.create      = a fresh nonce per create: what a half-finished create left
 *   agentix.expires     = unix ms after which the sandbox ends itself unless extended (expiry.h;
 *                         providers with mutable labels keep it current as the host extends it)
 * agx_gc collects sandboxes whose owner process is gone or whose expiry has passed. Owner labels a
 * config already carries (fleets, pools, the CLI set them) are kept; the nonce and the expiry are
 * always agx_deployment_create's. */
#ifndef AGENTIX_BACKEND_LABELS_H
#define AGENTIX_BACKEND_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- what every labelled sandbox carries ---- */
#define AGX_LABEL_SANDBOX "agentix.sandbox"
#define AGX_LABEL_CREATE "agentix.create"
#define AGX_LABEL_EXPIRES "agentix.expires"
/* Written by toolkit version 1 only ("<host>:<pid>", no start time); agx_gc still reads it on
 * sandboxes made then. Nothing writes it any more. */
#define AGX_LABEL_CREATOR "agentix.owner"

/* ---- owner labels ---- */
#define AGX_LABEL_OWNER_HOST "agentix.owner.host"
#define AGX_LABEL_OWNER_PID "agentix.owner.pid"
#define AGX_LABEL_OWNER_START "agentix.owner.start"
#define AGX_LABEL_RUN "agentix.run"
#define AGX_RUN_ID_MAX 64 /* [A-Za-z0-9._-], 1..63 bytes */

/* ---- runtime bundles (agentix build) and the docker backend ---- */
#define AGX_LABEL_BUNDLE "agentix.bundle"                /* the bundle image a sandbox runs */
#define AGX_LABEL_BUNDLE_FORMAT "agentix.bundle.format"  /* on a bundle image: its layout version */
#define AGX_LABEL_BUNDLE_DIGEST "agentix.bundle.digest"
#define AGX_LABEL_BUNDLE_NAME "agentix.bundle.name"
#define AGX_LABEL_BUNDLE_PREFIX "agentix.bundle.prefix"
#define AGX_LABEL_CARRIER "agentix.carrier"              /* a bundle's volume carrier container */
#define AGX_LABEL_PORT "agentix.port"                    /* the runtime's published host port */

/* ---- k8s-pool pods (`agentix k8s-pool manifest` writes them, the backend claims by them) ---- */
#define AGX_K8S_LABEL_PREFIX "agentix.dev/" /* reserved: user labels may not use it */
#define AGX_K8S_LABEL_POOL "agentix.dev/pool"
#define AGX_K8S_LABEL_STATE "agentix.dev/state" /* "idle" → "claimed" */
#define AGX_K8S_LABEL_CLAIM "agentix.dev/claim"
#define AGX_K8S_ANNOTATION_BUNDLE "agentix.dev/bundle"
#define AGX_K8S_STATE_IDLE "idle"
#define AGX_K8S_STATE_CLAIMED "claimed"

/* This process's run id: $AGENTIX_RUN_ID when it is set and valid, else "run-" + 16 random hex
 * digits chosen once per process. Never NULL. */
AGX_API const char *agx_run_id(void);
/* Sets the four owner labels on `labels` (run_id NULL = agx_run_id()). The CLI's `create` uses
 * it so shell-created sandboxes are collectable too. */
AGX_API int agx_owner_labels_set(agx_kv *labels, const char *run_id, agx_error *err);
/* The value of AGX_LABEL_CREATOR for this process, "<host>:<pid>", into out (n ≥ 2). Read per
 * call: a forked child names itself. Returns out. Kept for backends built with toolkit 1. */
AGX_API const char *agx_label_creator(char *out, size_t n);
/* What the owner labels say of the process that created a sandbox (for backends that sweep, and
 * agx_gc): ALIVE when it runs on this host; GONE when no process of that pid runs here, or one
 * that started later (the pid was reused; for toolkit 1's agentix.owner=<host>:<pid>, a process
 * that started after created_ms); UNKNOWN when the labels do not tell (another host, missing or
 * malformed labels, pid 0). Looked up in this process's /proc. */
typedef enum agx_owner_verdict {
    AGX_OWNER_UNKNOWN = 0,
    AGX_OWNER_ALIVE,
    AGX_OWNER_GONE
} agx_owner_verdict;
AGX_API agx_owner_verdict agx_owner_judge(const agx_kv *labels, int64_t created_ms);

/* A label holding unix milliseconds (agentix.expires): the value, or 0 when absent or not a
 * decimal in 1..(year 9999). */
AGX_API int64_t agx_label_unix_ms(const char *value);

/* ---- labels kept in a backend's own record (local, ns) ---- */
#define AGX_LABELS_RECORD_MAX 256    /* labels per sandbox */
#define AGX_LABEL_RECORD_KEY_MAX 128 /* bytes of one key */
#define AGX_LABEL_RECORD_VALUE_MAX 512
/* 0 when labels (NULL = none) fit a JSON record: at most AGX_LABELS_RECORD_MAX, keys and values
 * within their bounds, valid UTF-8. Otherwise AGX_ERR_LIMIT or AGX_ERR_INVALID_ARGUMENT naming the
 * label and `backend`. */
AGX_API int agx_labels_check(const agx_kv *labels, const char *backend, agx_error *err);
/* 1 when labels holds every pair of filter (a NULL or empty filter matches all): what list's
 * label filter means on every backend. */
AGX_API int agx_labels_match(const agx_kv *labels, const agx_kv *filter);

#ifdef __cplusplus
}
#endif
#endif
