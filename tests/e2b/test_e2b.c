/* test_e2b.c — the e2b backend end to end against tests/fakes/e2b: the host loads the backend by
 * name, creates sandboxes through the fake API (whose requests and answers are checked against
 * the official spec), and calls demo functions through https-form URLs
 * (8000-<id>.e2b.app) that reach the fake's proxy by AGENTIX_CONNECT_TO. Scenario tls runs the
 * fake over TLS with a test CA made by openssl at test time: API calls, health waits and runtime
 * connections (https through the engine) all verify it, and a wrong CA or name is refused.
 *
 * Usage: test_e2b session|faults|lifetime|concurrent|spec|tls. Every scenario ends with zero live
 * sandboxes and zero spec violations in the fake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "check.h"
#include "fake_harness.h"

#define KEY "e2b_0123456789abcdef0123456789abcdef"

/* tls_dir NULL: plain http everywhere; else the fake serves https with the certificate there. */
static agx_fake *start_fake_on(const char *cap, const char *tls_dir)
{
    const char *argv[] = {AGX_FAKE_SCRIPT, "--server", AGX_TEST_SERVER, "--module-path",
                          AGX_TEST_MODULEDIR, "--spec", AGX_SPEC_DIR "/e2b-openapi.yml",
                          "--api-key", KEY, "--cap", cap, "--template", "agentix",
                          "--template", "other", tls_dir ? "--tls-dir" : NULL, tls_dir, NULL};
    agx_fake *f = agx_fake_start(argv);
    char url[64], ct[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", tls_dir ? "https" : "http", agx_fake_port(f));
    snprintf(ct, sizeof ct, "::127.0.0.1:%d", agx_fake_port(f));
    setenv("E2B_API_URL", url, 1);
    setenv("AGENTIX_CONNECT_TO", ct, 1); /* backend health wait and client alike */
    setenv("AGENTIX_E2B_SCHEME", tls_dir ? "https" : "http", 1);
    setenv("E2B_TEMPLATE_ID", "agentix", 1);
    unsetenv("E2B_DOMAIN");
    return f;
}

static agx_fake *start_fake(const char *cap) { return start_fake_on(cap, NULL); }

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
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.lifetime_s", "7200") == 0);
    expect_create_fails(dep, cfg, f, AGX_ERR_INVALID_ARGUMENT,
                        "Timeout cannot be greater than 1 hours");
    CHECK(agx_kv_remove(agx_sandbox_config_options(cfg), "e2b.lifetime_s") == 0);

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

    /* Without keep-alive E2B ends the sandbox at its lifetime… */
    agx_sandbox_config *cfg = config(60000);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.lifetime_s", "1") == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    for (int i = 0; i < 100 && agx_fake_event_count(f, "expired") == 0; i++)
        usleep(100000);
    CHECK(agx_fake_event_count(f, "expired") == 1);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    /* …with it, the lifetime is renewed while the session lasts. */
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.lifetime_s", "2") == 0);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.keepalive", "1") == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    for (int i = 0; i < 200 && agx_fake_event_count(f, "timeout") < 4; i++)
        usleep(100000);
    CHECK(agx_fake_event_count(f, "timeout") >= 4); /* past 2 lifetimes */
    CHECK(agx_fake_event_count(f, "expired") == 1);
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

/* The fake over TLS (a test CA made at test time, the certificate naming *.e2b.app and
 * 127.0.0.1): the backend's API calls and health wait verify it through AGENTIX_CA_FILE, the
 * runtime connection (https through the engine) too; another CA, or a name the certificate does
 * not carry, is refused with the reason. */
static void scenario_tls(void)
{
    char dir[] = "/tmp/agx-e2b-tls-XXXXXX", cmd[256], ca[64], other[64];
    CHECK(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "sh %s %s 'IP:127.0.0.1,DNS:*.e2b.app'", AGX_MAKE_TEST_CA, dir);
    CHECK_MSG(system(cmd) == 0, "making the test CA failed (is openssl installed?)");
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(other, sizeof other, "%s/other-ca.crt", dir);
    setenv("AGENTIX_CA_FILE", ca, 1);
    agx_fake *f = start_fake_on("100", dir);
    agx_deployment *dep = load(KEY);
    agx_sandbox_config *cfg = config(60000);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.public", "1") == 0);
    agx_error err;
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    const char *url = agx_sandbox_runtime_url(sb);
    CHECK_MSG(strncmp(url, "https://8000-", 13) == 0, "runtime_url %s", url);
    agx_fake_session_calls(sb); /* unary, stream and bidi over https */

    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = 10000;
    o.ca_file = other; /* a CA that did not sign the certificate */
    agx_client *c = NULL;
    int rc = agx_client_connect_sandbox(sb, &o, &c, &err);
    CHECK_MSG(rc == AGX_ERR_UNAVAILABLE && !c, "another CA: rc %d %s", rc, err.message);
    CHECK_CONTAINS(err.message, "certificate was not accepted");
    o.ca_file = NULL; /* the right CA, a name the certificate does not carry */
    char ct[96];
    snprintf(ct, sizeof ct, "::127.0.0.1:%d", agx_fake_port(f));
    o.connect_to = ct;
    rc = agx_client_connect("https://8000-x.example.org", &o, &c, &err);
    CHECK_MSG(rc == AGX_ERR_UNAVAILABLE && !c, "wrong name: rc %d %s", rc, err.message);
    CHECK_CONTAINS(err.message, "certificate was not accepted");

    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
    unsetenv("AGENTIX_CA_FILE");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc == 2, "usage: test_e2b session|faults|lifetime|concurrent|spec|tls");
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
    else if (strcmp(argv[1], "tls") == 0)
        TEST_RUN(scenario_tls);
    else
        CHECK_MSG(0, "unknown scenario %s", argv[1]);
    return 0;
}
