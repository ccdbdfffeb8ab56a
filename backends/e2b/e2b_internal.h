/* e2b_internal.h — shared by the e2b backend's files: the instance and the keep-alive thread that
 * renews the lifetime of long sessions (host → e2b vtable → E2B API). */
#ifndef AGX_BACKENDS_E2B_INTERNAL_H
#define AGX_BACKENDS_E2B_INTERNAL_H

#include <pthread.h>

#include "backends/cloud/cloud.h"

#define AGX_E2B_DEFAULT_LIFETIME_S 300 /* the SDK's default sandbox lifetime */
#define AGX_E2B_MAX_LIFETIME_S 86400   /* Pro plan; the API refuses more than the plan allows */
#define AGX_E2B_RUNTIME_PORT 8000

typedef struct agx_e2b_ka_entry agx_e2b_ka_entry;

typedef struct agx_e2b {
    agx_cloud cloud;
    char *template_id; /* $E2B_TEMPLATE_ID, NULL when unset */
    char *domain;      /* $E2B_DOMAIN or e2b.app */
    char *scheme;      /* "https", or $AGENTIX_E2B_SCHEME ("http" for self-hosted or test proxies) */
    /* keep-alive: sandboxes whose lifetime is renewed until deleted */
    pthread_mutex_t ka_mu;
    pthread_cond_t ka_cv;
    agx_e2b_ka_entry *ka_head;
    int ka_running, ka_stop;
    pthread_t ka_thread;
} agx_e2b;

/* The decoders of E2B's answers (fuzzed: tests/fuzz/cloud_api): a sandbox of a list or get answer
 * as a sandbox info (NULL when it has no usable id, or out of memory), and the create answer as
 * the sandbox the host connects to. */
agx_sandbox_info *agx_e2b_info_from(const agx_e2b *e, json_t *s);
int agx_e2b_sandbox_from(const agx_e2b *e, json_t *resp, agx_sandbox **out, agx_error *err);

int agx_e2b_keepalive_init(agx_e2b *e, agx_error *err);
/* Renews id's lifetime (POST /sandboxes/{id}/timeout) every lifetime/3 until removed. */
int agx_e2b_keepalive_add(agx_e2b *e, const char *id, int lifetime_s, agx_error *err);
void agx_e2b_keepalive_remove(agx_e2b *e, const char *id);
/* Stops and joins the thread, drops every entry. */
void agx_e2b_keepalive_fini(agx_e2b *e);
/* POST /sandboxes/{id}/timeout {"timeout": lifetime_s}: the TTL becomes now + lifetime_s. */
int agx_e2b_set_timeout(const agx_e2b *e, const char *id, int lifetime_s, agx_error *err);

#endif
