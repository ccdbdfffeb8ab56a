/* test_e2b.c — the e2b backend end to end against tests/fakes/e2b: the host loads the backend by
 * name, creates sandboxes through the fake API (whose requests and answers are checked against
 * the official spec), and calls demo functions through https-form URLs
 * (8000-<id>.e2b.app) that reach the fake's proxy by AGENTIX_CONNECT_TO.
 *
 * Usage: test_e2b session|faults|lifetime|concurrent|spec. Every scenario ends with zero live
 * sandboxes and zero spec violations in the fake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/clock.h"
#include "agentix/deployment.h"
#include "check.h"
#include "fake_harness.h"

#define KEY "e2b_0123456789abcdef0123456789abcdef"

static agx_fake *start_fake(const char *cap)
{
    const char *argv[] = {AGX_FAKE_SCRIPT, "--server", AGX_TEST_SERVER, "--module-path",
                          AGX_TEST_MODULEDIR, "--spec", AGX_SPEC_DIR "/e2b-openapi.yml",
                          "--api-key", KEY, "--cap", cap, "--template", "agentix",
                          "--template", "other", NULL};
    agx_fake *f = agx_fake_start(argv);
    char url[64], ct[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", agx_fake_port(f));
    snprintf(ct, sizeof ct, "::127.0.0.1:%d", agx_fake_port(f));
    setenv("E2B_API_URL", url, 1);
    setenv("AGENTIX_CONNECT_TO", ct, 1); /* backend health wait and client alike */
    setenv("AGENTIX_E2B_SCHEME", "http", 1);
    setenv("E2B_TEMPLATE_ID", "agentix", 1);
    unsetenv("E2B_DOMAIN");
    return f;
}

static agx_deployment *load(const char *key)
{
    setenv("E2B_API_KEY", key, 1);
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("e2b", &dep, &err), &err);
    return dep;
}

static agx_sandbox_config *config(int64_t timeout_ms)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, timeout_ms) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "test", "e2b") == 0);
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "GREETING", "hello") == 0);
    return cfg;
}

/* create must fail with code and a message containing want, leaving nothing in the fake. */
static void expect_create_fails(agx_deployment *dep, agx_sandbox_config *cfg, agx_fake *f,
                                int code, const char *want)
{
    agx_sandbox *sb = NULL;
    agx_error err;
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    CHECK_MSG(rc == code, "got %d (%s): %s", rc, agx_error_code_name(rc), err.message);
    CHECK(sb == NULL);
    CHECK_CONTAINS(err.message, want);
    CHECK(agx_fake_live(f) == 0);
}

/* ---- scenarios ---- */

static void scenario_session(void)
{
    agx_fake *f = start_fake("100");
    agx_error err;
    agx_deployment *dep = NULL;
    unsetenv("E2B_API_KEY");
    CHECK(agx_load_deployment("e2b", &dep, &err) == AGX_ERR_INVALID_ARGUMENT && !dep);
    CHECK_CONTAINS(err.message, "E2B_API_KEY");

    agx_sandbox_config *cfg = config(60000);
    dep = load("e2b_ffffffffffffffffffffffffffffffff"); /* a key the service does not know */
    expect_create_fails(dep, cfg, f, AGX_ERR_BACKEND, "Invalid API key");
    agx_deployment_free(dep);

    dep = load(KEY);
    CHECK(agx_sandbox_config_set_image(cfg, "nope") == 0);
    expect_create_fails(dep, cfg, f, AGX_ERR_NOT_FOUND, "template 'nope' not found");
    CHECK(agx_sandbox_config_set_image(cfg, "other") == 0);
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 7200 * 1000) == 0); /* the expiry is E2B's timeout */
    expect_create_fails(dep, cfg, f, AGX_ERR_INVALID_ARGUMENT,
                        "Timeout cannot be greater than 1 hours");
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 0) == 0);

    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    const char *url = agx_sandbox_runtime_url(sb);
    CHECK_MSG(strncmp(url, "http://8000-i", 13) == 0 && strlen(url) == 13 + 20 + 8 &&
              strcmp(url + strlen(url) - 8, ".e2b.app") == 0, "runtime_url %s", url);
    CHECK(agx_kv_get(agx_sandbox_headers_const(sb), "e2b-traffic-access-token"));
    agx_fake_session_calls(sb);

    /* Private sandbox: without its traffic token the proxy turns the client away. */
    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = 5000;
    agx_client *c = NULL;
    CHECK(agx_client_connect(url, &o, &c, &err) != 0 && !c);

    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), "test"), "e2b");
    CHECK_STREQ(agx_sandbox_info_runtime_url(info), url);
    agx_sandbox_info_free(info);
    agx_kv *want = agx_kv_new();
    CHECK(want && agx_kv_set(want, "test", "e2b") == 0);
    agx_sandbox_list *list = NULL;
    CHECK_OK(agx_deployment_list(dep, want, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1);
    CHECK_STREQ(agx_sandbox_info_id(agx_sandbox_list_at(list, 0)), agx_sandbox_id(sb));
    agx_sandbox_list_free(list);
    CHECK(agx_kv_set(want, "test", "other") == 0);
    CHECK_OK(agx_deployment_list(dep, want, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0);
    agx_sandbox_list_free(list);
    agx_kv_free(want);

    char id[128];
    snprintf(id, sizeof id, "%s", agx_sandbox_id(sb));
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_deployment_delete(dep, id, &err), &err); /* gone already: still fine */
    CHECK(agx_deployment_get(dep, "a-b-c", &info, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "Invalid sandbox ID");

    /* A public sandbox: no traffic token, and the proxy lets the client in. */
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.public", "1") == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(agx_kv_get(agx_sandbox_headers_const(sb), "e2b-traffic-access-token") == NULL);
    agx_fake_session_calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

static void scenario_faults(void)
{
    agx_fake *f = start_fake("100");
    agx_deployment *dep = load(KEY);
    agx_sandbox_config *cfg = config(60000);
    agx_error err;
    agx_sandbox *sb = NULL;

    /* 429 with Retry-After: retried until it works. */
    agx_fake_faults(f, "{\"create_429\": 2, \"retry_after\": 1}");
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(agx_fake_event_count(f, "429") == 2);
    CHECK(agx_fake_event_gap(f, "429", "create") >= 1.0); /* Retry-After was honoured */
    agx_fake_session_calls(sb);
    /* Delete's 500s are retried (idempotent). */
    agx_fake_faults(f, "{\"delete_500\": 2}");
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    CHECK(agx_fake_event_count(f, "delete_500") == 2);
    CHECK(agx_fake_live(f) == 0);

    /* Create 500/503: not repeated (a create is not idempotent), a clear retriable error. */
    agx_fake_faults(f, "{\"create_500\": 1}");
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    CHECK(rc == AGX_ERR_BACKEND && err.retriable && !sb);
    CHECK_CONTAINS(err.message, "Failed to place sandbox");
    agx_fake_faults(f, "{\"create_503\": 1}");
    rc = agx_deployment_create(dep, cfg, &sb, &err);
    CHECK(rc == AGX_ERR_BACKEND && err.retriable && !sb);
    CHECK_CONTAINS(err.message, "No capacity");
    CHECK(agx_fake_live(f) == 0);

    /* Port not open yet: the health wait waits. */
    agx_fake_faults(f, "{\"port_closed\": 3}");
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_fake_session_calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    agx_fake_faults(f, "{\"port_closed\": 0}");

    /* A create that hangs: the create timeout bounds it, nothing is left. */
    agx_fake_faults(f, "{\"create_hang\": 1, \"hang_ms\": 6000}");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 1500) == 0);
    expect_create_fails(dep, cfg, f, AGX_ERR_TIMEOUT, "creating a sandbox");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);

    /* Killed mid-session: calls fail, reconnecting fails, the session still ends cleanly. */
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_client *c = NULL;
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    agx_fake_exercise(c);
    CHECK(agx_fake_kill(f, agx_sandbox_id(sb)));
    agx_value *res = NULL;
    rc = agx_client_call(c, "demo::add", NULL, NULL, 10000, &res, &err);
    CHECK_MSG(rc != 0 && !res, "a call to a killed sandbox returned %d", rc);
    agx_client_free(c);
    c = NULL;
    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = 5000;
    CHECK(agx_client_connect_sandbox(sb, &o, &c, &err) != 0 && !c);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

static void scenario_lifetime(void)
{
    agx_fake *f = start_fake("100");
    agx_deployment *dep = load(KEY);
    agx_error err;
    agx_sandbox *sb = NULL;

    /* The options of the keep-alive that expiries replaced are refused, naming the way now. */
    agx_sandbox_config *cfg = config(60000);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.keepalive", "1") == 0);
    expect_create_fails(dep, cfg, f, AGX_ERR_INVALID_ARGUMENT, "agx_sandbox_config_set_expiry_ms");
    CHECK(agx_kv_remove(agx_sandbox_config_options(cfg), "e2b.keepalive") == 0);

    /* A sandbox whose E2B timeout is its 2 s expiry lives on while this process extends it: the
     * fake saw timeout renewals past two expiries and ended nothing. */
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 2000) == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    for (int i = 0; i < 200 && agx_fake_event_count(f, "timeout") < 6; i++)
        usleep(100000);
    CHECK(agx_fake_event_count(f, "timeout") >= 6);
    CHECK(agx_fake_event_count(f, "expired") == 0);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK(agx_sandbox_info_expires_at(info) > agx_clock_wall_ms()); /* E2B's endAt */
    agx_sandbox_info_free(info);
    agx_fake_session_calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

static void scenario_concurrent(void)
{
    agx_fake *f = start_fake("20");
    agx_deployment *dep = load(KEY);
    agx_sandbox_config *cfg = config(240000);
    agx_fake_concurrent_sessions(f, dep, cfg, 32);
    CHECK(agx_fake_event_count(f, "cap") > 0); /* the cap was reached and waited out */
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

/* The spec check itself can fail: a create without templateID is refused and recorded. */
static void scenario_spec(void)
{
    agx_fake *f = start_fake("100");
    char *body = NULL;
    long st = agx_fake_raw(f, "POST", "/sandboxes", "X-API-Key: " KEY, "{\"timeout\": 5}", &body);
    CHECK(st == 400);
    CHECK_CONTAINS(body, "required field 'templateID' missing");
    free(body);
    json_t *s = agx_fake_stats(f);
    json_t *v = json_object_get(s, "violations");
    CHECK(json_array_size(v) == 1);
    CHECK_CONTAINS(json_string_value(json_array_get(v, 0)), "templateID");
    json_decref(s);
    CHECK(agx_fake_live(f) == 0);
    agx_fake_stop(f);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc == 2, "usage: test_e2b session|faults|lifetime|concurrent|spec");
    CHECK_MSG(access(AGX_SPEC_DIR "/e2b-openapi.yml", R_OK) == 0,
              "the E2B spec is not at %s (set AGX_CLOUD_SPEC_DIR)", AGX_SPEC_DIR);
    if (strcmp(argv[1], "session") == 0)
        TEST_RUN(scenario_session);
    else if (strcmp(argv[1], "faults") == 0)
        TEST_RUN(scenario_faults);
    else if (strcmp(argv[1], "lifetime") == 0)
        TEST_RUN(scenario_lifetime);
    else if (strcmp(argv[1], "concurrent") == 0)
        TEST_RUN(scenario_concurrent);
    else if (strcmp(argv[1], "spec") == 0)
        TEST_RUN(scenario_spec);
    else
        CHECK_MSG(0, "unknown scenario %s", argv[1]);
    return 0;
}
