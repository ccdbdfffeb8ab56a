/* test_session.c — sessions never leak a sandbox: create failure (nothing to delete), body
 * failure (delete still runs, body error kept), delete failure (reported; with a body error both
 * are visible), the callback form and the AGX_SESSION scope on return / goto / break paths. The
 * backend is registered in-process and counts every create and delete. */
#include "check.h"

#include "agentix/plugin.h"

#include <stdio.h>
#include <string.h>

static int creates, deletes, live;
static int fail_create, fail_delete;

static int cb_construct(void **self, agx_error *err)
{
    *self = NULL;
    return 0;
}

static int cb_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    if (fail_create)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "counting backend: daemon is down");
    char id[32];
    snprintf(id, sizeof id, "sb-%d", ++creates);
    *out = agx_sandbox_new("counting", id, "ws://127.0.0.1:9/", NULL);
    live++;
    return 0;
}

static int cb_delete(void *self, const char *id, agx_error *err)
{
    if (fail_delete)
        return agx_error_set(err, AGX_ERR_BACKEND, "counting backend: refused to delete %s", id);
    deletes++;
    live--;
    return 0;
}

static int cb_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    return agx_error_set(err, AGX_ERR_UNSUPPORTED, "not needed");
}

static const agx_backend_vtable counting = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "counting",
    .construct = cb_construct,
    .create_sandbox = cb_create,
    .delete_sandbox = cb_delete,
    .get_sandbox = cb_get,
};

static agx_deployment *dep;
static agx_sandbox_config *cfg;

static void reset(void)
{
    creates = deletes = live = fail_create = fail_delete = 0;
}

static void test_begin_end(void)
{
    reset();
    agx_error err;
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(sb && live == 1);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    CHECK(live == 0 && deletes == 1);
    CHECK(agx_session_end(dep, NULL, 0, NULL, &err) == 0); /* NULL is a no-op */
}

static void test_create_failure(void)
{
    reset();
    fail_create = 1;
    agx_error err;
    agx_sandbox *sb = (agx_sandbox *)1;
    CHECK(agx_session_begin(dep, cfg, &sb, &err) == AGX_ERR_UNAVAILABLE);
    CHECK(sb == NULL);
    CHECK_CONTAINS(err.message, "daemon is down");
    CHECK(deletes == 0 && live == 0);
}

static void test_body_failure(void)
{
    reset();
    agx_error err, body;
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_error_set(&body, AGX_ERR_REMOTE, "tool crashed");
    CHECK(agx_session_end(dep, sb, AGX_ERR_REMOTE, &body, &err) == AGX_ERR_REMOTE);
    CHECK(err.code == AGX_ERR_REMOTE);
    CHECK_STREQ(err.message, "tool crashed");
    CHECK(err.detail[0] == '\0');
    CHECK(deletes == 1 && live == 0);

    /* The body's error may live in err itself. */
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_error_set(&err, AGX_ERR_TIMEOUT, "call timed out");
    CHECK(agx_session_end(dep, sb, AGX_ERR_TIMEOUT, &err, &err) == AGX_ERR_TIMEOUT);
    CHECK_STREQ(err.message, "call timed out");
    CHECK(deletes == 2 && live == 0);
}

static void test_delete_failure(void)
{
    reset();
    agx_error err, body;
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    fail_delete = 1;
    CHECK(agx_session_end(dep, sb, 0, NULL, &err) == AGX_ERR_BACKEND);
    CHECK_CONTAINS(err.message, "refused to delete sb-1");

    fail_delete = 0;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    fail_delete = 1;
    agx_error_set(&body, AGX_ERR_REMOTE, "tool crashed");
    agx_error_set_detail(&body, "Traceback ...", (size_t)-1);
    CHECK(agx_session_end(dep, sb, AGX_ERR_REMOTE, &body, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.message, "tool crashed");
    CHECK_CONTAINS(err.detail, "Traceback ...\n");
    CHECK_CONTAINS(err.detail, "delete of sandbox sb-2 failed (BACKEND): counting backend: refused to delete sb-2");
    CHECK(live == 2 && deletes == 0); /* both deletes were attempted and refused */
    fail_delete = 0;
    CHECK_OK(agx_deployment_delete(dep, "sb-1", &err), &err);
    CHECK_OK(agx_deployment_delete(dep, "sb-2", &err), &err);
    CHECK(live == 0);
}

static int body_ok(agx_sandbox *sb, void *user, agx_error *err)
{
    CHECK(live == 1);
    *(int *)user += 1;
    return 0;
}

static int body_fails(agx_sandbox *sb, void *user, agx_error *err)
{
    return agx_error_set(err, AGX_ERR_REMOTE, "body failed in %s", agx_sandbox_id(sb));
}

static int body_fails_silently(agx_sandbox *sb, void *user, agx_error *err)
{
    return AGX_ERR_CANCELLED;
}

static void test_callback_form(void)
{
    reset();
    agx_error err;
    int calls = 0;
    CHECK_OK(agx_session_run(dep, cfg, body_ok, &calls, &err), &err);
    CHECK(calls == 1 && live == 0 && deletes == 1);
    CHECK(agx_session_run(dep, cfg, body_fails, NULL, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.message, "body failed in sb-2");
    CHECK(live == 0 && deletes == 2);
    CHECK(agx_session_run(dep, cfg, body_fails_silently, NULL, &err) == AGX_ERR_CANCELLED);
    CHECK(err.code == AGX_ERR_CANCELLED && err.message[0]);
    fail_delete = 1;
    CHECK(agx_session_run(dep, cfg, body_fails, NULL, &err) == AGX_ERR_REMOTE);
    CHECK_CONTAINS(err.detail, "delete of sandbox sb-4 failed");
    fail_delete = 0;
    CHECK_OK(agx_deployment_delete(dep, "sb-4", &err), &err);
    fail_create = 1;
    calls = 0;
    CHECK(agx_session_run(dep, cfg, body_ok, &calls, &err) == AGX_ERR_UNAVAILABLE);
    CHECK(calls == 0);
    CHECK(agx_session_run(dep, cfg, NULL, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(live == 0 && creates == 4);
}

/* ---- the scoped form ---- */
static int scoped_return(int early)
{
    agx_error err;
    agx_error_clear(&err);
    {
        AGX_SESSION(sb, dep, cfg, &err);
        if (!sb)
            return err.code;
        CHECK(live == 1);
        if (early)
            return 7; /* deleted on the way out */
    }
    CHECK(live == 0);
    return 0;
}

static int scoped_goto(void)
{
    agx_error err;
    agx_error_clear(&err);
    int rc = 0;
    {
        AGX_SESSION(sb, dep, cfg, &err);
        if (!sb)
            return err.code;
        if (live == 1) {
            rc = 3;
            goto out;
        }
    }
out:
    CHECK(live == 0);
    return rc;
}

static void scoped_loop(void)
{
    agx_error err;
    agx_error_clear(&err);
    for (int i = 0; i < 5; i++) {
        AGX_SESSION(sb, dep, cfg, &err);
        CHECK(sb && live == 1);
        if (i == 1)
            continue;
        if (i == 3)
            break;
    }
    CHECK(live == 0);
}

static void test_scope(void)
{
    reset();
    CHECK(scoped_return(0) == 0);
    CHECK(scoped_return(1) == 7);
    CHECK(scoped_goto() == 3);
    scoped_loop();
    CHECK(creates == 7 && deletes == 7 && live == 0);

    fail_create = 1;
    CHECK(scoped_return(0) == AGX_ERR_UNAVAILABLE);
    CHECK(deletes == 7);
    fail_create = 0;

    /* A delete failure lands in the scope's error only when it held none. */
    fail_delete = 1;
    agx_error err;
    agx_error_clear(&err);
    {
        AGX_SESSION(sb, dep, cfg, &err);
        CHECK(sb != NULL);
    }
    CHECK(err.code == AGX_ERR_BACKEND);
    CHECK_CONTAINS(err.message, "refused to delete sb-8");
    {
        AGX_SESSION(sb, dep, cfg, &err);
        CHECK(sb != NULL);
        agx_error_set(&err, AGX_ERR_REMOTE, "body error");
    }
    CHECK_STREQ(err.message, "body error");
    fail_delete = 0;
    CHECK_OK(agx_deployment_delete(dep, "sb-8", &err), &err);
    CHECK_OK(agx_deployment_delete(dep, "sb-9", &err), &err);
    CHECK(live == 0);
}

int main(void)
{
    agx_error err;
    CHECK_OK(agx_register_deployment(&counting, &err), &err);
    CHECK_OK(agx_load_deployment("counting", &dep, &err), &err);
    cfg = agx_sandbox_config_new();
    TEST_RUN(test_begin_end);
    TEST_RUN(test_create_failure);
    TEST_RUN(test_body_failure);
    TEST_RUN(test_delete_failure);
    TEST_RUN(test_callback_form);
    TEST_RUN(test_scope);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    CHECK_OK(agx_unregister_deployment("counting", &err), &err);
    return 0;
}
