/* deployment_internal.h (internal) — what the host library's other parts need of a deployment
 * (deployment.c): a reference count, so the background expiry extensions (renewer.c) can keep
 * using a backend instance after the host freed its handle, until its last sandbox is gone. */
#ifndef AGX_CORE_HOST_DEPLOYMENT_INTERNAL_H
#define AGX_CORE_HOST_DEPLOYMENT_INTERNAL_H

#include "agentix/deployment.h"

/* Takes a reference (returns dep); unref drops one and destructs the backend at the last. */
agx_deployment *agx_deployment_ref(agx_deployment *dep);
void agx_deployment_unref(agx_deployment *dep);

#endif
