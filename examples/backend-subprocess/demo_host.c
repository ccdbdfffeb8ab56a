/* demo_host.c — drives the subprocess backend the way any host would: load it by name (its
 * manifest is on $AGENTIX_PLUGIN_PATH), create a sandbox in a scoped session, make a real remote
 * call, and check that a config field the backend cannot honour is refused. */
#include <agentix/agentix.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, const agx_error *err)
{
    fprintf(stderr, "demo: %s failed: %s (%s)\n  detail: %s\n", what, err->message,
            agx_error_code_name(err->code), err->detail);
    return 1;
}

static int call(agx_sandbox *sb, agx_error *err)
{
    agx_client *c;
    if (agx_client_connect_sandbox(sb, NULL, &c, err) != 0)
        return fail("connect", err);
    agx_value *kw = agx_value_map(), *res = NULL;
    agx_value_map_set(kw, "command", agx_value_string("echo hello from $AGX_DEMO"));
    int rc = agx_client_call(c, "agentix.bash::run", NULL, kw, 30000, &res, err);
    agx_value_free(kw);
    agx_client_free(c);
    if (rc != 0)
        return fail("agentix.bash::run", err);
    const char *out = agx_value_get_string(agx_value_map_get(res, "stdout"), NULL);
    int ok = out && strcmp(out, "hello from subprocess\n") == 0;
    printf("demo: %s -> %s", agx_sandbox_id(sb), out ? out : "(no stdout)\n");
    agx_value_free(res);
    return ok ? 0 : 1;
}

int main(void)
{
    agx_error err;
    agx_deployment *dep;
    if (agx_load_deployment("subprocess", &dep, &err) != 0)
        return fail("loading the subprocess backend", &err);
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    agx_kv_set(agx_sandbox_config_env(cfg), "AGX_DEMO", "subprocess");
    int rc = 1;
    {
        AGX_SESSION(sb, dep, cfg, &err);
        if (!sb)
            return fail("create", &err);
        rc = call(sb, &err);
    }
    agx_sandbox_config_set_image(cfg, "debian:12"); /* a field it cannot honour */
    agx_sandbox *sb = NULL;
    if (rc == 0 && (agx_deployment_create(dep, cfg, &sb, &err) != AGX_ERR_UNSUPPORTED ||
                    !strstr(err.message, "'image'"))) {
        fprintf(stderr, "demo: a config with an image was not refused: %s\n", err.message);
        rc = 1;
    }
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    if (rc == 0)
        printf("demo: ok\n");
    return rc;
}
