/* hello_host.c — the README's main job, a complete C host: load a backend by name (default
 * `local`), start a sandbox in a scoped session, connect to its runtime and make real remote calls:
 * agentix.bash::run, then the greeter module's unary, stream and bidi functions. The sandbox is
 * deleted on every exit path. */
#include <agentix/agentix.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AGX_HELLO_MODULEDIR
#define AGX_HELLO_MODULEDIR "."
#endif

static int fail(const char *what, const agx_error *err)
{
    fprintf(stderr, "hello: %s failed: %s (%s)%s%s%s\n", what, err->message,
            agx_error_code_name(err->code), err->remote_type[0] ? " [" : "", err->remote_type,
            err->remote_type[0] ? "]" : "");
    if (err->detail[0])
        fprintf(stderr, "  detail: %s\n", err->detail);
    return 1;
}

static int run_bash(agx_client *client, agx_error *err)
{
    agx_value *kwargs = agx_value_map();
    agx_value_map_set(kwargs, "command",
                      agx_value_string("echo \"hello from $(uname -sn), pid $$\"; echo to-stderr >&2; exit 3"));
    agx_value *res = NULL;
    int rc = agx_client_call(client, "agentix.bash::run", NULL, kwargs, 30000, &res, err);
    agx_value_free(kwargs);
    if (rc != 0)
        return fail("agentix.bash::run", err);
    printf("agentix.bash::run -> exit_code=%lld stdout=%s stderr=%s",
           (long long)agx_value_get_int64(agx_value_map_get(res, "exit_code")),
           agx_value_get_string(agx_value_map_get(res, "stdout"), NULL),
           agx_value_get_string(agx_value_map_get(res, "stderr"), NULL));
    int ok = agx_value_get_int64(agx_value_map_get(res, "exit_code")) == 3;
    agx_value_free(res);
    return ok ? 0 : 1;
}

static int run_greet(agx_client *client, agx_error *err)
{
    agx_value *args = agx_value_array();
    agx_value_array_push(args, agx_value_string("agentix"));
    agx_value *res = NULL;
    int rc = agx_client_call(client, "greeter::greet", args, NULL, 10000, &res, err);
    agx_value_free(args);
    if (rc != 0)
        return fail("greeter::greet", err);
    printf("greeter::greet(\"agentix\") -> %s\n", agx_value_get_string(res, NULL));
    agx_value_free(res);
    return 0;
}

static int run_countdown(agx_client *client, agx_error *err)
{
    agx_value *kwargs = agx_value_map();
    agx_value_map_set(kwargs, "from", agx_value_int(5));
    agx_call *call = NULL;
    int rc = agx_client_stream(client, "greeter::countdown", NULL, kwargs, &call, err);
    agx_value_free(kwargs);
    if (rc != 0)
        return fail("greeter::countdown", err);
    printf("greeter::countdown(from=5) ->");
    agx_value *item = NULL;
    while ((rc = agx_call_next(call, 10000, &item, err)) == 1) {
        printf(" %lld", (long long)agx_value_get_int64(item));
        agx_value_free(item);
    }
    printf("\n");
    agx_call_free(call);
    return rc == 0 ? 0 : fail("reading greeter::countdown", err);
}

static int run_shout(agx_client *client, agx_error *err)
{
    agx_call *call = NULL;
    if (agx_client_bidi(client, "greeter::shout", NULL, NULL, &call, err) != 0)
        return fail("greeter::shout", err);
    static const char *const words[] = {"hello", "bidirectional", "world"};
    int rc = 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0] && rc == 0; i++) {
        agx_value *w = agx_value_string(words[i]);
        rc = agx_call_send(call, w, 10000, err);
        agx_value_free(w);
    }
    if (rc == 0)
        rc = agx_call_close_send(call, err);
    printf("greeter::shout <- hello, bidirectional, world ->");
    agx_value *item = NULL;
    while (rc == 0 && (rc = agx_call_next(call, 10000, &item, err)) == 1) {
        printf(" %s", agx_value_get_string(item, NULL));
        agx_value_free(item);
        rc = 0;
    }
    printf("\n");
    agx_call_free(call);
    return rc == 0 ? 0 : fail("greeter::shout", err);
}

static int run_calls(agx_sandbox *sb, agx_error *err)
{
    printf("sandbox %s on backend %s, runtime %s\n", agx_sandbox_id(sb), agx_sandbox_backend(sb),
           agx_sandbox_runtime_url(sb));
    agx_client *client = NULL;
    if (agx_client_connect_sandbox(sb, NULL, &client, err) != 0)
        return fail("connecting to the runtime", err);
    int rc = run_bash(client, err);
    if (rc == 0)
        rc = run_greet(client, err);
    if (rc == 0)
        rc = run_countdown(client, err);
    if (rc == 0)
        rc = run_shout(client, err);
    agx_client_free(client);
    return rc;
}

int main(int argc, char **argv)
{
    const char *backend = "local";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            backend = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--backend NAME]\n", argv[0]);
            return 2;
        }
    }
    agx_error err;
    agx_error_clear(&err);
    agx_deployment *dep = NULL;
    if (agx_load_deployment(backend, &dep, &err) != 0)
        return fail("loading the backend", &err);

    agx_sandbox_config *cfg = agx_sandbox_config_new();
    agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_MODULE_PATH", AGX_HELLO_MODULEDIR);
    agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.example", "hello");
    agx_sandbox_config_set_timeout_ms(cfg, 60000);

    int rc = 1;
    {
        AGX_SESSION(sb, dep, cfg, &err);
        if (!sb) {
            fail("creating the sandbox", &err);
        } else {
            rc = run_calls(sb, &err);
        }
    } /* the sandbox is deleted here, whatever happened above */
    if (rc == 0 && err.code != AGX_OK)
        rc = fail("deleting the sandbox", &err);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    if (rc == 0)
        printf("hello: all calls succeeded; sandbox deleted\n");
    return rc;
}
