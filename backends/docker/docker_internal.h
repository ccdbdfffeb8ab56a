/* docker_internal.h — the pieces of the `docker` backend (host → docker backend → Docker Engine
 * API over its socket → task container running agentix-server from the bundle's volume):
 * the engine connection (docker_api.c), images, bundles and carriers (docker_image.c), sandbox
 * creation (docker_create.c). docker.c ties them into the backend vtable. */
#ifndef AGX_BACKEND_DOCKER_INTERNAL_H
#define AGX_BACKEND_DOCKER_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/backend/toolkit.h"
#include "agentix/deployment.h"
#include "agentix/error.h"

#define AGX_DOCKER_PREFIX "/opt/agentix"              /* the bundle's VOLUME */
#define AGX_DOCKER_SERVER AGX_DOCKER_PREFIX "/bin/agentix-server"
#define AGX_DOCKER_PORT 8000                          /* the runtime's port inside the container */
#define AGX_DOCKER_API_MIN_MINOR 41                   /* v1.41 (Engine 20.10): platform on create */
#define AGX_DOCKER_API_MAX_MINOR 47                   /* newest version whose shapes we rely on */
#define AGX_DOCKER_DEFAULT_TIMEOUT_MS 120000
#define AGX_DOCKER_PULL_TIMEOUT_MS 600000
#define AGX_DOCKER_CALL_TIMEOUT_MS 60000              /* one engine API call */
/* Removing a half-made container after a failed create: at least this long past the failure. */
#define AGX_DOCKER_UNDO_GRACE_MS 30000
#define AGX_DOCKER_LOG_TAIL 50                        /* log lines quoted in a failed create */
#define AGX_DOCKER_ID_MAX 128
#define AGX_DOCKER_REAP_EVERY_MS 30000                /* containers that never started: see docker.c */
#define AGX_DOCKER_REAP_AGE_MS 30000

typedef struct agx_docker {
    char host[512];        /* DOCKER_HOST as given (for messages) */
    char socket_path[108]; /* unix socket, or "" for TCP */
    char base[320];        /* "http://localhost/v1.41" — every engine URL starts here */
    int host_network;      /* AGENTIX_DOCKER_NETWORK=host */
    _Atomic int64_t reaped_at; /* agx_clock_ms() of the last sweep of never-started containers */
} agx_docker;

/* ---- the engine API (docker_api.c) ---- */

/* Parses DOCKER_HOST (unix:///path, tcp://127.0.0.1:port; unset = the default socket) and
 * negotiates the API version with GET /version. */
int agx_docker_connect(agx_docker *d, agx_error *err);

/* One engine call: method, path below the versioned base ("/containers/json?all=1"), optional
 * JSON body. On 2xx with out != NULL the body is parsed into *out (NULL for an empty body).
 * Non-2xx fails through agx_http_check_status (404 NOT_FOUND, 409 CONFLICT, …) with `what` and
 * the engine's message; the status is stored in *status when not NULL (0 if no answer). */
int agx_docker_call(const agx_docker *d, const char *method, const char *path, json_t *body,
                    long timeout_ms, const char *what, json_t **out, long *status, agx_error *err);

/* The last AGX_DOCKER_LOG_TAIL lines of a container's stdout+stderr (the 8-byte stream headers
 * demultiplexed) into out (NUL-terminated, truncated to n). Best effort: "" when unavailable. */
void agx_docker_logs_tail(const agx_docker *d, const char *id, char *out, size_t n);
/* Demultiplexes a Docker log stream (frames of [stream, 0, 0, 0, u32 big-endian size] + data)
 * into out; a stream without those headers (TTY containers) is copied as it is. Returns the
 * length. */
size_t agx_docker_demux(const char *in, size_t len, char *out, size_t n);

/* Engine calls made by this thread until agx_docker_bound(0) end by deadline_ms (agx_clock_ms):
 * a create bounds all of its calls by its timeout without passing the deadline through every
 * helper. */
void agx_docker_bound(int64_t deadline_ms);
/* ms, shortened to what is left of this thread's bound (≥ 1). */
long agx_docker_bounded_ms(long ms);

/* ---- the owner watch (docker_watch.c, watch_main.c) ---- */

#define AGX_DOCKER_WATCH_NAME "agentix-docker-watch" /* in <libdir>/agentix/bin */
#define AGX_DOCKER_WATCH_FD 3 /* the watch's end of the pipe */
/* Starts this process's watch unless it runs already (once per process; again in a forked child). */
int agx_docker_watch_ensure(agx_error *err);
/* The agentix sandboxes that never started (status created), narrowed by extra "key=value"
 * labels (NULL-terminated, may be NULL): the engine's JSON array into *out. */
int agx_docker_list_unstarted(const agx_docker *d, const char *const *labels, json_t **out,
                              agx_error *err);

/* DELETE /containers/{id}?force=1&v=1; a container already gone is success. */
int agx_docker_remove(const agx_docker *d, const char *id, agx_error *err);

/* Path segment / query value escaping into a caller buffer; AGX_ERR_LIMIT if it does not fit. */
int agx_docker_escape(const char *s, char *out, size_t n, agx_error *err);

/* ---- images, bundles, carriers (docker_image.c) ---- */

/* Makes sure `image` is present locally (pulling it with POST /images/create when missing) and
 * returns its inspect document. platform may be NULL. */
int agx_docker_image_ensure(const agx_docker *d, const char *image, const char *platform,
                            json_t **inspect, agx_error *err);
/* Checks that an image inspect document describes an agentix bundle (label
 * agentix.bundle.format and a VOLUME at AGX_DOCKER_PREFIX). */
int agx_docker_bundle_check(const char *bundle, json_t *inspect, agx_error *err);

/* docker_info.c: a container's inspect document (get) or list summary (list) as a sandbox info;
 * NULL when out of memory, or (summary) it has no Id. */
agx_sandbox_info *agx_docker_info_from_inspect(const char *id, json_t *inspect);
agx_sandbox_info *agx_docker_info_from_summary(json_t *summary);
/* The carrier container of a bundle, created (never started) if missing: its name goes to out. */
int agx_docker_carrier_ensure(const agx_docker *d, const char *bundle, json_t *inspect, char *out,
                              size_t n, agx_error *err);

/* ---- a creating container's output (docker_attach.c) ---- */

typedef struct agx_docker_attach agx_docker_attach;
/* Attaches to container id (created, not started) and waits until the stream is live, at most
 * until deadline_ms. 0 with *out, or -1 (best effort: the create goes on without it). */
int agx_docker_attach_start(const agx_docker *d, const char *id, int64_t deadline_ms,
                            agx_docker_attach **out);
/* The stream's last output (demultiplexed) into out, after waiting up to wait_ms for it to end. */
void agx_docker_attach_tail(agx_docker_attach *a, int wait_ms, char *out, size_t n);
/* Cuts the stream and frees. NULL is a no-op. */
void agx_docker_attach_free(agx_docker_attach *a);

/* ---- carriers gc collects (docker.c) ---- */

/* Carrier containers whose bundle no agentix sandbox container (in any state) uses. */
int agx_docker_list_leftover_carriers(const agx_docker *d, agx_sandbox_list *list, agx_error *err);

/* ---- sandboxes (docker_create.c) ---- */

int agx_docker_create(const agx_docker *d, const agx_sandbox_config *cfg, agx_sandbox **out,
                      agx_error *err);


#endif
