/* e2b_internal.h — shared by the e2b backend's files (host → e2b vtable → E2B API). */
#ifndef AGX_BACKENDS_E2B_INTERNAL_H
#define AGX_BACKENDS_E2B_INTERNAL_H

#include "backends/cloud/cloud.h"

#define AGX_E2B_MAX_LIFETIME_S 86400 /* Pro plan; the API refuses more than the plan allows */
#define AGX_E2B_RUNTIME_PORT 8000

typedef struct agx_e2b {
    agx_cloud cloud;
    char *template_id; /* $E2B_TEMPLATE_ID, NULL when unset */
    char *domain;      /* $E2B_DOMAIN or e2b.app */
    char *scheme;      /* "https", or $AGENTIX_E2B_SCHEME ("http" for self-hosted or test proxies) */
} agx_e2b;

/* The decoders of E2B's answers (fuzzed: tests/fuzz/cloud_api): a sandbox of a list or get answer
 * as a sandbox info (NULL when it has no usable id, or out of memory), and the create answer as
 * the sandbox the host connects to (with token, the runtime token it will be claimed with). */
agx_sandbox_info *agx_e2b_info_from(const agx_e2b *e, json_t *s);
int agx_e2b_sandbox_from(const agx_e2b *e, json_t *resp, const char *token, agx_sandbox **out,
                         agx_error *err);

/* POST /sandboxes/{id}/timeout {"timeout": lifetime_s}: E2B ends the sandbox lifetime_s from now. */
int agx_e2b_set_timeout(const agx_e2b *e, const char *id, long lifetime_s, int64_t deadline_ms,
                        agx_error *err);

#endif
