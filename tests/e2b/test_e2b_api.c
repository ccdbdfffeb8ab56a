/* test_e2b_api.c — what is particular to the e2b backend, against the E2B fake (tests/fakes/e2b):
 * the vendor's errors (key, template, lifetime), the 8000-<id>.<domain> URL and the private
 * sandbox's traffic token, every injected fault (429 with Retry-After, 5xx on create and delete,
 * a closed port, a hanging create, a sandbox killed mid-session), the expiry as E2B's timeout, the
 * concurrency cap, the spec check failing when it must, and (tls) the fake served over TLS with a
 * test CA made by openssl at test time: API calls, health waits and runtime connections (https
 * through the engine) all verify it, and a wrong CA or name is refused. What every backend must
 * do (lifecycle, list, failed creates, refused fields, call shapes) is the contract suite's
 * (tests/contract).
 *
 * Usage: test_e2b_api errors|faults|lifetime|cap|spec|tls. Every scenario ends with zero live
 * sandboxes and zero spec violations in the fake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/clock.h"
#include "agentix/deployment.h"
#include "check.h"
#include "cloud_fake.h"
#include "demo_calls.h"

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
    return cfg;
}

static void calls(const agx_sandbox *sb)
{
    agx_error err;
    CHECK_OK(agx_test_demo_session(sb, &err), &err);
}

/* ---- scenarios ---- */

static void scenario_errors(void)
{
    agx_fake *f = agx_fake_start_e2b(100, NULL);
    agx_error err;
    agx_deployment *dep = NULL;
    unsetenv("E2B_API_KEY");
    CHECK(agx_load_deployment("e2b", &dep, &err) == AGX_ERR_INVALID_ARGUMENT && !dep);
    CHECK_CONTAINS(err.message, "E2B_API_KEY");

    agx_sandbox_config *cfg = config(60000);
    dep = load("e2b_ffffffffffffffffffffffffffffffff"); /* a key the service does not know */
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_BACKEND, "Invalid API key");
    agx_deployment_free(dep);

    dep = load(AGX_FAKE_E2B_KEY);
    CHECK(agx_sandbox_config_set_image(cfg, "nope") == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_NOT_FOUND, "template 'nope' not found");
    CHECK(agx_sandbox_config_set_image(cfg, "other") == 0);
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 7200 * 1000) == 0); /* the expiry is E2B's timeout */
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_INVALID_ARGUMENT,
                                 "Timeout cannot be greater than 1 hours");
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 0) == 0);

    /* A private sandbox: the vendor's URL form, and without its traffic token the proxy turns
     * the client away. */
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    const char *url = agx_sandbox_runtime_url(sb);
    CHECK_MSG(strncmp(url, "http://8000-i", 13) == 0 && strlen(url) == 13 + 20 + 8 &&
              strcmp(url + strlen(url) - 8, ".e2b.app") == 0, "runtime_url %s", url);
    CHECK(agx_kv_get(agx_sandbox_headers_const(sb), "e2b-traffic-access-token"));
    calls(sb);
    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = AGX_TEST_CONNECT_MS;
    agx_client *c = NULL;
    CHECK(agx_client_connect(url, &o, &c, &err) != 0 && !c);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    agx_sandbox_info *info = NULL;
    CHECK(agx_deployment_get(dep, "a-b-c", &info, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "Invalid sandbox ID");

    /* A public sandbox: no traffic token, and the proxy lets the client in. */
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.public", "1") == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(agx_kv_get(agx_sandbox_headers_const(sb), "e2b-traffic-access-token") == NULL);
    calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

static void scenario_faults(void)
{
    agx_fake *f = agx_fake_start_e2b(100, NULL);
    agx_deployment *dep = load(AGX_FAKE_E2B_KEY);
    agx_sandbox_config *cfg = config(60000);
    agx_error err;
    agx_sandbox *sb = NULL;

    /* 429 with Retry-After: retried until it works. */
    agx_fake_faults(f, "{\"create_429\": 2, \"retry_after\": 1}");
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(agx_fake_event_count(f, "429") == 2);
    CHECK(agx_fake_event_gap(f, "429", "create") >= 1.0); /* Retry-After was honoured */
    calls(sb);
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
    calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);
    agx_fake_faults(f, "{\"port_closed\": 0}");

    /* A create that hangs past the create timeout: bounded by it, nothing is left. The hang is
     * far longer than the timeout, so load cannot change the outcome. */
    agx_fake_faults(f, "{\"create_hang\": 1, \"hang_ms\": 8000}");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 2000) == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_TIMEOUT, "creating a sandbox");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);

    /* Killed mid-session: calls fail, reconnecting fails, the session still ends cleanly. */
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    agx_client *c = NULL;
    CHECK_OK(agx_test_connect(sb, &c, &err), &err);
    CHECK_OK(agx_test_demo_calls(c, &err), &err);
    CHECK(agx_fake_kill(f, agx_sandbox_id(sb)));
    agx_value *res = NULL;
    rc = agx_client_call(c, "demo::add", NULL, NULL, AGX_TEST_CALL_MS, &res, &err);
    CHECK_MSG(rc != 0 && !res, "a call to a killed sandbox returned %d", rc);
    agx_client_free(c);
    c = NULL;
    CHECK(agx_test_connect(sb, &c, &err) != 0 && !c);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

/* Waits (bounded, 60 s) until the fake has recorded `what` at least n times. */
static int await_events(agx_fake *f, const char *what, int n)
{
    for (int i = 0; i < 600 && agx_fake_event_count(f, what) < n; i++)
        usleep(100000);
    return agx_fake_event_count(f, what);
}

static void scenario_lifetime(void)
{
    agx_fake *f = agx_fake_start_e2b(100, NULL);
    agx_deployment *dep = load(AGX_FAKE_E2B_KEY);
    agx_error err;
    agx_sandbox *sb = NULL;

    /* The options of the keep-alive that expiries replaced are refused, naming the way now. */
    agx_sandbox_config *cfg = config(60000);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.keepalive", "1") == 0);
    agx_fake_expect_create_fails(f, dep, cfg, AGX_ERR_INVALID_ARGUMENT,
                                 "agx_sandbox_config_set_expiry_ms");
    CHECK(agx_kv_remove(agx_sandbox_config_options(cfg), "e2b.keepalive") == 0);

    /* A sandbox whose E2B timeout is its 2 s expiry lives on while this process extends it: the
     * timeout renewals continue past three expiries and the fake ended nothing (a renewal lands
     * well inside each 2 s expiry only if the extensions work, whatever the machine's speed). */
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 2000) == 0);
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    CHECK(await_events(f, "timeout", 6) >= 6);
    CHECK(agx_fake_event_count(f, "expired") == 0);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK(agx_sandbox_info_expires_at(info) > agx_clock_wall_ms()); /* E2B's endAt */
    agx_sandbox_info_free(info);
    calls(sb);
    CHECK_OK(agx_session_end(dep, sb, 0, NULL, &err), &err);

    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    agx_fake_finish(f);
}

/* 32 sessions against a cap of 20: the backend waits the cap out within its create timeout. */
static void scenario_cap(void)
{
    agx_fake *f = agx_fake_start_e2b(20, NULL);
    agx_deployment *dep = load(AGX_FAKE_E2B_KEY);
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
    agx_fake_expect_spec_refusal(agx_fake_start_e2b(100, NULL), "POST", "/sandboxes",
                                 "X-API-Key: " AGX_FAKE_E2B_KEY, "{\"timeout\": 5}",
                                 "required field 'templateID' missing", "templateID");
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
    agx_fake *f = agx_fake_start_e2b_tls(100, dir);
    agx_deployment *dep = load(AGX_FAKE_E2B_KEY);
    agx_sandbox_config *cfg = config(60000);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "e2b.public", "1") == 0);
    agx_error err;
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_session_begin(dep, cfg, &sb, &err), &err);
    const char *url = agx_sandbox_runtime_url(sb);
    CHECK_MSG(strncmp(url, "https://8000-", 13) == 0, "runtime_url %s", url);
    calls(sb); /* unary, stream and bidi over https */

    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = AGX_TEST_CONNECT_MS;
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
    static const check_scenario scenarios[] = {{"errors", scenario_errors}, {"faults", scenario_faults},
                                               {"lifetime", scenario_lifetime}, {"cap", scenario_cap},
                                               {"spec", scenario_spec}, {"tls", scenario_tls}};
    return check_run_named(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios);
}
