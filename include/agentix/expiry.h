/* expiry.h — a sandbox's expiry, the words both ends of the flow share: the host library stamps an
 * expiry on every sandbox it creates and extends it in the background while the host process lives
 * (deployment.h, fleet.h); agentix-server in the sandbox knows its expiry and ends itself (and so
 * its container, process, pod or cloud sandbox) when it passes without being extended. A host
 * killed at any instant therefore leaves nothing running for longer than one expiry.
 *
 * "Expiry" is the name throughout (agx_lease names a pool hand-out, fleet.h). The protocol words
 * (docs/PROTOCOL.md §1.1) are defined here once, for the host library, the backends and the
 * runtime server alike. Part of libagentix-runtime's public headers; macros only. */
#ifndef AGENTIX_EXPIRY_H
#define AGENTIX_EXPIRY_H

/* ---- bounds and defaults (milliseconds) ---- */
#define AGX_EXPIRY_DEFAULT_MS 300000LL           /* 5 min, E2B's default sandbox lifetime too */
#define AGX_EXPIRY_MIN_MS 2000LL                 /* shorter is refused: renewals could not keep up */
#define AGX_EXPIRY_MAX_MS (7LL * 24 * 3600 * 1000) /* a week */
/* The host extends each sandbox's expiry every third of it (so two renewals in a row may fail
 * before it passes), never more often than this. */
#define AGX_EXPIRY_RENEW_DIVISOR 3
#define AGX_EXPIRY_RENEW_MIN_MS 500LL

/* ---- environment ----
 * Host: the default expiry of the sandboxes this process creates (a config's
 * agx_sandbox_config_set_expiry_ms wins). Runtime: agentix-server's expiry, in ms from its start;
 * absent = the server never ends by itself (a pre-warmed pod before its claim). */
#define AGX_EXPIRY_ENV "AGENTIX_EXPIRY_MS"
/* Runtime, claim mode (AGENTIX_AUTH=claim): the secret a claim must present, from a descriptor
 * (read and closed) or the environment (scrubbed). */
#define AGX_CLAIM_SECRET_FD_ENV "AGENTIX_CLAIM_SECRET_FD"
#define AGX_CLAIM_SECRET_ENV "AGENTIX_CLAIM_SECRET"

/* ---- HTTP on the runtime's port (besides GET /health and the Socket.IO upgrade) ----
 * POST /expiry   X-Agentix-Token: <runtime token>, X-Agentix-Expiry-Ms: <ms>
 *                → 200 {"expires_in_ms": <ms>}: the expiry is now + ms.
 * POST /claim    X-Agentix-Claim: <claim secret> (when the server has one),
 *                X-Agentix-Token: <the sandbox's runtime token>, X-Agentix-Expiry-Ms: <ms>
 *                → 200 {"expires_in_ms": <ms>}; 409 when claimed already.
 * Neither takes a body. Secrets travel in headers of their own, never Authorization: proxies in
 * front of runtimes own that one (the Kubernetes API server consumes it, Daytona's preview proxy
 * takes it for its token). */
#define AGX_HTTP_PATH_EXPIRY "/expiry"
#define AGX_HTTP_PATH_CLAIM "/claim"
#define AGX_HTTP_HEADER_EXPIRY_MS "X-Agentix-Expiry-Ms"
#define AGX_HTTP_HEADER_TOKEN "X-Agentix-Token"
#define AGX_HTTP_HEADER_CLAIM "X-Agentix-Claim"
#define AGX_HTTP_FIELD_EXPIRES_IN "expires_in_ms"

#endif
