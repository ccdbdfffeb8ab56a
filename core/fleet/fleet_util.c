/* fleet_util.c — the small machinery fleets, pools and maps share on the host side: the rule that
 * tells a dead sandbox from a failed task, and clients opened and closed one at a time. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/fleet/fleet_internal.h"

bool agx_fleet_error_is_dead_sandbox(int rc, const agx_error *err)
{
    if (rc == AGX_ERR_UNAVAILABLE)
        return true;
    return rc == AGX_ERR_REMOTE && err && strcmp(err->remote_type, AGX_REMOTE_WORKER_EXITED) == 0;
}

/* lws 4.1.6 contexts are not safe to create while another thread creates or destroys one (seen
 * under memcheck: lws_create_context crashing in uv_poll_start, a dial aborted on a freed wsi), so
 * the clients fleets, pools and maps open and close take turns. A connect or close is a few ms;
 * sandbox creates dominate. */
static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;

int agx_fleet_client_connect(const agx_sandbox *sb, const agx_client_options *opts,
                             agx_client **out, agx_error *err)
{
    pthread_mutex_lock(&client_mu);
    int rc = agx_client_connect_sandbox(sb, opts, out, err);
    pthread_mutex_unlock(&client_mu);
    return rc;
}

void agx_fleet_client_free(agx_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&client_mu);
    agx_client_free(c);
    pthread_mutex_unlock(&client_mu);
}
