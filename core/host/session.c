/* session.c — scoped sandboxes: create on entry, delete on every exit. The rules (deployment.h):
 * a failed create leaves nothing to delete; the body's error wins over a delete failure, which is
 * then appended to err->detail so neither is lost; the delete always runs. */
#include "agentix/deployment.h"

#include <stdio.h>
#include <string.h>

int agx_session_begin(agx_deployment *dep, const agx_sandbox_config *cfg, agx_sandbox **out,
                      agx_error *err)
{
    return agx_deployment_create(dep, cfg, out, err);
}

/* Appends "delete of sandbox <id> failed: CODE: message" to the body error's detail. */
static void agx_session_append_delete(agx_error *err, const char *id, const agx_error *derr)
{
    size_t used = strnlen(err->detail, sizeof err->detail);
    if (used >= sizeof err->detail - 1)
        return;
    snprintf(err->detail + used, sizeof err->detail - used,
             "%sdelete of sandbox %s failed (%s): %s", used ? "\n" : "", id,
             agx_error_code_name(derr->code), derr->message);
}

int agx_session_end(agx_deployment *dep, agx_sandbox *sb, int body_status,
                    const agx_error *body_err, agx_error *err)
{
    /* body_err may be err itself: take a copy before anything writes to err. */
    agx_error body;
    agx_error_copy(&body, body_err);
    if (!body_err)
        agx_error_clear(&body);
    if (body_status != 0 && body.code == AGX_OK) {
        if (err && err->code != AGX_OK)
            agx_error_copy(&body, err); /* the caller kept the body error in err */
        else
            agx_error_set(&body, body_status, "session body failed (%s)",
                          agx_error_code_name(body_status));
    }
    if (!sb) {
        if (body_status != 0)
            agx_error_copy(err, &body);
        return body_status;
    }
    char id[256];
    snprintf(id, sizeof id, "%s", agx_sandbox_id(sb));
    agx_error derr;
    int drc = agx_deployment_delete(dep, agx_sandbox_id(sb), &derr);
    agx_sandbox_free(sb);
    if (body_status != 0) {
        if (drc != 0)
            agx_session_append_delete(&body, id, &derr);
        agx_error_copy(err, &body);
        return body_status;
    }
    agx_error_copy(err, &derr);
    return drc;
}

int agx_session_run(agx_deployment *dep, const agx_sandbox_config *cfg, agx_session_body_fn body,
                    void *user, agx_error *err)
{
    if (!body) {
        agx_error_clear(err);
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_session_run: body is NULL");
    }
    agx_sandbox *sb = NULL;
    int rc = agx_session_begin(dep, cfg, &sb, err);
    if (rc != 0)
        return rc;
    agx_error berr;
    agx_error_clear(&berr);
    rc = body(sb, user, &berr);
    if (rc != 0 && berr.code == AGX_OK)
        agx_error_set(&berr, rc, "session body returned %d (%s) without an error message", rc,
                      agx_error_code_name(rc));
    if (rc != 0)
        berr.code = rc;
    return agx_session_end(dep, sb, rc, &berr, err);
}

void agx_session_scope_cleanup(agx_session_scope *scope)
{
    if (!scope || !scope->sb)
        return;
    agx_error derr;
    int rc = agx_deployment_delete(scope->dep, agx_sandbox_id(scope->sb), &derr);
    agx_sandbox_free(scope->sb);
    scope->sb = NULL;
    if (rc != 0 && scope->err && scope->err->code == AGX_OK)
        agx_error_copy(scope->err, &derr);
}
