/* daytona_internal.h — shared by the daytona backend's files (host → daytona vtable → Daytona
 * API → sandbox → preview proxy). */
#ifndef AGX_BACKENDS_DAYTONA_INTERNAL_H
#define AGX_BACKENDS_DAYTONA_INTERNAL_H

#include "backends/cloud/cloud.h"

#define AGX_DAYTONA_DEFAULT_API "https://app.daytona.io/api"
#define AGX_DAYTONA_RUNTIME_PORT 8000
#define AGX_DAYTONA_DEFAULT_SERVER "/opt/agentix/bin/agentix-server" /* docs/BUNDLES.md */
#define AGX_DAYTONA_RETRY_AFTER "retry-after-sandbox-create"

typedef struct agx_daytona {
    agx_cloud cloud;
    char *target; /* $DAYTONA_TARGET, NULL = the organisation's default region */
} agx_daytona;

/* GET /sandbox/{id}: 0 with the DTO, AGX_ERR_NOT_FOUND when gone. */
int agx_daytona_get_dto(const agx_daytona *d, const char *id, json_t **out, agx_error *err);
/* The decoder of a Sandbox DTO (get, list pages) into a sandbox info: NULL when it has no usable
 * id, or out of memory (fuzzed: tests/fuzz/cloud_api). */
agx_sandbox_info *agx_daytona_info_from(const agx_daytona *d, json_t *s);
/* DELETE (409 retried) then waits until GET says 404, both bounded by deadline_ms. Deleting a
 * sandbox that is gone succeeds. */
int agx_daytona_delete_wait(const agx_daytona *d, const char *id, int64_t deadline_ms,
                            agx_error *err);
/* Lists sandboxes carrying every label (plus the agentix mark) into list. */
int agx_daytona_list_into(const agx_daytona *d, const agx_kv *labels, int64_t deadline_ms,
                          agx_sandbox_list *list, agx_error *err);
int agx_daytona_create(agx_daytona *d, const agx_sandbox_config *cfg, agx_sandbox **out,
                       agx_error *err);

#endif
