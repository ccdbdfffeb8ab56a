/* test_daytona_api.c — what is particular to the daytona backend, against the Daytona fake
 * (tests/fakes/daytona): the vendor's errors (credentials, snapshot), the preview URL with its
 * preview token and the runtime token, every injected fault (429 with the sandbox-create retry
 * header, 500 and 409 on delete, error and build_failed states, a failure inside the create, a
 * hanging create, a sandbox stuck creating, one killed mid-session), a server started through the
 * toolbox, a sandbox built from an image with resources, the concurrency cap, and the spec check
 * failing when it must. What every backend must do is the contract suite's (tests/contract).
 *
 * Usage: test_daytona_api errors|faults|toolbox|cap|spec. Every scenario ends with zero live
 * sandboxes and zero spec violations in the fake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "check.h"
#include "cloud_fake.h"
#include "demo_calls.h"

static agx_deployment *load(const char *key)
{
    setenv("DAYTONA_API_KEY", key, 1);
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("daytona", &dep, &err), &err);
    return dep;
}

static agx_sandbox_config *config(int64_t timeout_ms)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, timeout_ms) == 0);
    CHECK(agx_sandbox_config_set_image(cfg, "agentix") == 0); /* the snapshot */
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "test", "daytona") == 0);
    return cfg;
}

static void calls(const agx_sandbox *sb)
{
    agx_error err;
    CHECK_OK(agx_test_demo_session(sb, &err), &err);
}

static agx_sandbox_state state_of(agx_deployment *dep, const char *id)
{
    agx_sandbox_info *info = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    agx_sandbox_state s = agx_sandbox_info_state(info);
    agx_sandbox_info_free(info);
    return s;
}

/* ---- scenarios ---- */

static void scenario_errors(void)
{
    agx_fake *f = agx_fake_start_daytona(100, NULL);
    agx_error err;
    agx_deployment *dep = NULL;
    unsetenv("DAYTONA_API_KEY");
    CHECK(agx_load_deployment("daytona", &dep, &err) == AGX_ERR_INVALID_ARGUMENT && !dep);
    CHECK_CONTAINS(err.message, "DAYTONA_API_KEY");

    agx_sandbox_config *cfg = config(60000);
    dep = load("dtn_unknown");
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_BACKEND, "Invalid credentials");
    agx_deployment_free(dep);

    dep = load(AGX_FAKE_DAYTONA_KEY);
    CHECK(agx_sandbox_config_set_image(cfg, "nope") == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_INVALID_ARGUMENT, "Snapshot nope not found");
    CHECK(agx_sandbox_config_set_image(cfg, "agentix") == 0);
    /* Resources apply only to a sandbox built from an image: refused for a snapshot. */
    CHECK(agx_sandbox_config_set_cpus(cfg, 2) == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_UNSUPPORTED, "daytona.from=image");
    CHECK(agx_sandbox_config_set_cpus(cfg, 0) == 0);

    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    char want[160];
    snprintf(want, sizeof want, "http://8000-%s." AGX_FAKE_DAYTONA_DOMAIN, agx_sandbox_id(sb));
    CHECK_STREQ(agx_sandbox_runtime_url(sb), want);
    const char *preview = agx_kv_get(agx_sandbox_headers_const(sb), "X-Daytona-Preview-Token");
    CHECK(preview && strlen(preview) == 32);
    CHECK(agx_sandbox_token(sb) && strlen(agx_sandbox_token(sb)) == 32);
    calls(sb);

    /* The proxy wants the preview token (307 to its login otherwise); the runtime its token. */
    char host[160], *body = NULL;
    snprintf(host, sizeof host, "Host: 8000-%s." AGX_FAKE_DAYTONA_DOMAIN, agx_sandbox_id(sb));
    CHECK(agx_fake_raw(f, "GET", "/health", host, NULL, &body) == 307);
    free(body);
    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = AGX_TEST_CONNECT_MS;
    agx_client *c = NULL;
    agx_kv *hdrs = agx_kv_copy(agx_sandbox_headers_const(sb));
    CHECK(hdrs);
    o.headers = hdrs;
    o.token = "wrong";
    CHECK(agx_client_connect(agx_sandbox_runtime_url(sb), &o, &c, &err) != 0 && !c);
    agx_kv_free(hdrs);

    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    CHECK(agx_fake_live(f) == 0); /* delete waited for the 404 */

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

static void scenario_faults(void)
{
    agx_fake *f = agx_fake_start_daytona(100, NULL);
    agx_deployment *dep = load(AGX_FAKE_DAYTONA_KEY);
    agx_sandbox_config *cfg = config(60000);
    agx_error err;
    agx_sandbox *sb = NULL;

    /* 429 with only Retry-After-sandbox-create: honoured. */
    agx_fake_faults(f, "{\"create_429\": 1, \"retry_after\": 2}");
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(agx_fake_event_count(f, "429") == 1);
    CHECK(agx_fake_event_gap(f, "429", "create") >= 2.0);
    calls(sb);
    /* Delete: 500s and 409 "state change in progress" are retried. */
    agx_fake_faults(f, "{\"delete_500\": 1, \"delete_409\": 2}");
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    CHECK(agx_fake_event_count(f, "delete_500") == 1 && agx_fake_event_count(f, "delete_409") == 2);
    CHECK(agx_fake_live(f) == 0);

    agx_fake_faults(f, "{\"create_500\": 1}");
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    CHECK(rc == AGX_ERR_BACKEND && err.retriable && !sb);
    CHECK_CONTAINS(err.message, "An unexpected error occurred.");
    CHECK(agx_fake_live(f) == 0);

    agx_fake_faults(f, "{\"error_state\": 1}");
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_BACKEND,
                                 "failed to start with state: error, error reason: fake: "
                                 "scripted error");
    agx_fake_faults(f, "{\"fail_in_create\": 1}"); /* a 400 naming no id: found by its nonce */
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_INVALID_ARGUMENT, "Sandbox failed to start");
    agx_fake_faults(f, "{\"build_failed\": 1}");
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_BACKEND, "state: build_failed");

    /* A create that hangs far past the create timeout: bounded by it. */
    agx_fake_faults(f, "{\"create_hang\": 1, \"hang_ms\": 8000}");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 2000) == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_TIMEOUT, "creating a sandbox");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);

    /* Stuck in "creating" (forever): the create timeout bounds the wait, the sandbox is deleted. */
    agx_fake_faults(f, "{\"stuck_creating\": 1}");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 2000) == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_TIMEOUT, "is still 'creating'");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);

    /* Killed mid-session. */
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_client *c = NULL;
    CHECK_OK(agx_test_connect(sb, &c, &err), &err);
    CHECK_OK(agx_test_demo_calls(c, &err), &err);
    CHECK(agx_fake_kill(f, agx_sandbox_id(sb)));
    agx_value *res = NULL;
    rc = agx_client_call(c, "demo::add", NULL, NULL, AGX_TEST_CALL_MS, &res, &err);
    CHECK_MSG(rc != 0 && !res, "a call to a killed sandbox returned %d", rc);
    agx_client_free(c);
    CHECK(state_of(dep, agx_sandbox_id(sb)) == AGX_SANDBOX_GONE);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

/* A snapshot without an entrypoint: the server is started through the toolbox session API; then
 * a sandbox built from an image. */
static void scenario_toolbox(void)
{
    agx_fake *f = agx_fake_start_daytona(100, NULL);
    agx_deployment *dep = load(AGX_FAKE_DAYTONA_KEY);
    agx_sandbox_config *cfg = config(60000);
    CHECK(agx_sandbox_config_set_image(cfg, "bare") == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 3000) == 0);
    agx_error err;
    agx_sandbox *sb = NULL;
    /* Nothing starts the server in a bare snapshot: the health wait runs out (never answers, so
     * the outcome does not depend on the machine's speed). */
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_TIMEOUT, "");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "daytona.start", "toolbox") == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    /* From an image (a declarative build, pending_build → building_snapshot → started), with
     * resources, which Daytona takes only with a build. */
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "daytona.from", "image") == 0);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "daytona.start", "entrypoint") == 0);
    CHECK(agx_sandbox_config_set_image(cfg, "agentix") == 0);
    CHECK(agx_sandbox_config_set_cpus(cfg, 1.5) == 0);
    CHECK(agx_sandbox_config_set_memory(cfg, 1536ull << 20) == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(agx_fake_event_count(f, "build cpu=2 memory=2") == 1);
    calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

/* 32 sessions against a cap of 20: the backend waits the cap out within its create timeout. */
static void scenario_cap(void)
{
    agx_fake *f = agx_fake_start_daytona(20, NULL);
    agx_deployment *dep = load(AGX_FAKE_DAYTONA_KEY);
    agx_sandbox_config *cfg = config(240000);
    agx_fake_concurrent_sessions(f, dep, cfg, 32);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

/* The spec check itself can fail: a create with a non-string env value is refused and recorded. */
/* The expiry is Daytona's auto-stop (with auto-delete on stop): a sandbox lives on past several
 * auto-stop intervals while this process extends it (last-activity, the agentix.expires label);
 * the option it replaced is refused. The fake's minute is 2 s here: an expiry of 2 s is one. */
static void scenario_expiry(void)
{
    agx_fake *f = agx_fake_start_daytona_minute(100, 2);
    agx_deployment *dep = load(AGX_FAKE_DAYTONA_KEY);
    agx_sandbox_config *cfg = config(60000);
    agx_error err;
    agx_sandbox *sb = NULL;
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "daytona.auto_stop_min", "5") == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_INVALID_ARGUMENT,
                                 "agx_sandbox_config_set_expiry_ms");
    CHECK(agx_kv_remove(agx_sandbox_config_options(cfg), "daytona.auto_stop_min") == 0);
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 2000) == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    int64_t first = agx_sandbox_info_expires_at(info);
    agx_sandbox_info_free(info);
    for (int i = 0; i < 300 && agx_fake_event_count(f, "last-activity") < 9; i++)
        usleep(100000);
    CHECK(agx_fake_event_count(f, "last-activity") >= 9); /* ≥ 3 auto-stop intervals */
    CHECK(agx_fake_event_count(f, "autostop") == 0);
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK(agx_sandbox_info_expires_at(info) > first); /* the label follows the extensions */
    agx_sandbox_info_free(info);
    CHECK_OK(agx_test_demo_session(sb, &err), &err);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

static void scenario_spec(void)
{
    agx_fake_expect_spec_refusal(agx_fake_start_daytona(100, NULL), "POST", "/api/sandbox",
                                 "Authorization: Bearer " AGX_FAKE_DAYTONA_KEY,
                                 "{\"env\": {\"A\": 1}}", "is not a string", "env.A");
}

int main(int argc, char **argv)
{
    static const check_scenario scenarios[] = {{"errors", scenario_errors}, {"faults", scenario_faults},
                                               {"toolbox", scenario_toolbox}, {"cap", scenario_cap},
                                               {"expiry", scenario_expiry}, {"spec", scenario_spec}};
    return check_run_named(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios);
}
