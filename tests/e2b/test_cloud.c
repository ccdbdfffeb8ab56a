/* test_cloud.c — unit tests of backends/cloud (shared by the e2b and daytona backends): required
 * variables, label and env checks, ids, poll pacing, time parsing, the health wait's verdicts
 * (through the toolkit HTTP client's connect_to) and a vendor Retry-After header, against a scripted HTTP server
 * on 127.0.0.1. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/cloud/cloud.h"
#include "check.h"
#include "fake_http.h"

static agx_cloud cloud;

static void test_env_required(void)
{
    agx_error err;
    const char *v = NULL;
    unsetenv("AGX_TEST_KEY");
    CHECK(agx_cloud_env_required("AGX_TEST_KEY", &v, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "AGX_TEST_KEY is not set");
    setenv("AGX_TEST_KEY", "a\nb", 1);
    CHECK(agx_cloud_env_required("AGX_TEST_KEY", &v, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "control character");
    setenv("AGX_TEST_KEY", "k", 1);
    CHECK_OK(agx_cloud_env_required("AGX_TEST_KEY", &v, &err), &err);
    CHECK_STREQ(v, "k");
    agx_cloud c;
    CHECK(agx_cloud_init(&c, "X", "x", "ftp://x", "A", "b", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "must start with http:// or https://");
    setenv("AGENTIX_CONNECT_TO", "127.0.0.1:9000", 1);
    CHECK(agx_cloud_init(&c, "X", "x", "http://x", "A", "b", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "AGENTIX_CONNECT_TO='127.0.0.1:9000'");
    setenv("AGENTIX_CONNECT_TO", "[::1]:443:[::1]:8443", 1);
    CHECK_OK(agx_cloud_init(&c, "X", "x", "http://x", "A", "b", &err), &err);
    CHECK_STREQ(c.connect_to, "[::1]:443:[::1]:8443");
    agx_cloud_fini(&c);
    unsetenv("AGENTIX_CONNECT_TO");
}

static void test_labels(void)
{
    agx_error err;
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_kv_set(agx_sandbox_config_labels(cfg), "team", "rl") == 0);
    char nonce[33];
    json_t *o = NULL;
    CHECK_OK(agx_cloud_labels(&cloud, cfg, nonce, &o, &err), &err);
    CHECK(strlen(nonce) == 32);
    CHECK_STREQ(json_string_value(json_object_get(o, "team")), "rl");
    CHECK_STREQ(json_string_value(json_object_get(o, AGX_LABEL_SANDBOX)), "1");
    CHECK_STREQ(json_string_value(json_object_get(o, AGX_LABEL_CREATE)), nonce);
    CHECK(json_object_get(o, AGX_LABEL_CREATOR) == NULL); /* toolkit 1's label: no longer written */
    json_decref(o);
    /* The ownership record's nonce (agx_deployment_create puts one in) is the one used. */
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), AGX_LABEL_CREATE,
                     "0123456789abcdef0123456789abcdef") == 0);
    CHECK_OK(agx_cloud_labels(&cloud, cfg, nonce, &o, &err), &err);
    CHECK_STREQ(nonce, "0123456789abcdef0123456789abcdef");
    json_decref(o);
    CHECK(agx_kv_remove(agx_sandbox_config_labels(cfg), AGX_LABEL_CREATE) == 0);

    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "bad", "\xff\xfe") == 0);
    CHECK(agx_cloud_labels(&cloud, cfg, nonce, &o, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "not valid UTF-8");
    CHECK(agx_kv_remove(agx_sandbox_config_labels(cfg), "bad") == 0);
    char *big = malloc(AGX_CLOUD_LABEL_MAX + 2);
    CHECK(big);
    memset(big, 'v', AGX_CLOUD_LABEL_MAX + 1);
    big[AGX_CLOUD_LABEL_MAX + 1] = '\0';
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "BIG", big) == 0);
    CHECK(agx_cloud_kv_json(agx_sandbox_config_env_const(cfg), "environment variable", &o,
                            &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "environment variable 'BIG'");
    free(big);
    for (int i = 0; i <= AGX_CLOUD_MAX_LABELS; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), k, "v") == 0);
    }
    CHECK(agx_cloud_labels(&cloud, cfg, nonce, &o, &err) == AGX_ERR_LIMIT);
    agx_sandbox_config_free(cfg);
}

static void test_ids_times_polls(void)
{
    agx_error err;
    CHECK_OK(agx_cloud_check_id(&cloud, "i62mff4ahtrdfdkyn2esc", &err), &err);
    CHECK_OK(agx_cloud_check_id(&cloud, "3fa85f64-5717-4562-b3fc-2c963f66afa6", &err), &err);
    CHECK(agx_cloud_check_id(&cloud, "../etc", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_cloud_check_id(&cloud, "a b", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_cloud_check_id(&cloud, "", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_cloud_check_id(&cloud, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_time_parse_ms("2026-11-22T02:00:48.320Z") == 1795312848320LL);
    CHECK(agx_time_parse_ms("garbage") == 0);
    CHECK(agx_time_parse_ms(NULL) == 0);
    CHECK(agx_cloud_poll_interval(0, 1000, 0) == 100);
    CHECK(agx_cloud_poll_interval(0, 6000, 100) == 110);
    CHECK(agx_cloud_poll_interval(0, 60000, 990) == 1000);
}

/* ---- health wait against a scripted server (tests/support/fake_http.h): one answer per
 * connection, in turn ---- */

static int wait_with(const char *const *replies, int64_t budget_ms, agx_error *err)
{
    int port;
    agx_fake_http v;
    int n = 0;
    while (replies[n])
        n++;
    agx_fake_http_start(&v, agx_fake_http_tcp(&port), replies, n);
    /* The URL names a host that does not resolve: only connect_to makes it reachable. */
    char ct[64];
    snprintf(ct, sizeof ct, "::127.0.0.1:%d", port);
    cloud.connect_to = ct;
    int rc = agx_cloud_wait_health(&cloud, "http://8000-abc.sandbox.invalid", NULL,
                                   agx_clock_ms() + budget_ms, err);
    cloud.connect_to = NULL;
    agx_fake_http_abort(&v); /* a verdict may come before every answer was used */
    return rc;
}

static void test_health_wait(void)
{
    agx_error err;
    const char *ok[] = {"502 {\"message\":\"The sandbox is running but port is not open\"}",
                        "503 {}", "200 {\"status\":\"ok\"}", NULL};
    CHECK_OK(wait_with(ok, 30000, &err), &err);
    const char *gone[] = {"502 {\"message\":\"The sandbox was not found\"}", NULL};
    CHECK(wait_with(gone, 30000, &err) == AGX_ERR_NOT_FOUND);
    CHECK_CONTAINS(err.message, "The sandbox was not found");
    const char *refused[] = {"403 {\"message\":\"missing token\"}", NULL};
    CHECK(wait_with(refused, 30000, &err) == AGX_ERR_BACKEND);
    CHECK_CONTAINS(err.message, "HTTP 403 missing token");
    const char *never[] = {"502 {\"message\":\"port is not open\"}", NULL};
    CHECK(wait_with(never, 300, &err) == AGX_ERR_TIMEOUT);
    CHECK_CONTAINS(err.message, "did not answer /health");
    CHECK(err.retriable);
}

/* A vendor's own Retry-After header is honoured: 1 s, where the first backoff alone is <= 200 ms. */
static void test_retry_after_header(void)
{
    const char *replies[] = {"429 Retry-After-Test: 1|{\"message\":\"slow down\"}",
                             "201 {\"id\":\"x\"}", NULL};
    int port;
    agx_fake_http v;
    agx_fake_http_start(&v, agx_fake_http_tcp(&port), replies, 2);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    agx_cloud c;
    agx_error err;
    CHECK_OK(agx_cloud_init(&c, "Test", "test", base, "X-Key", "k", &err), &err);
    json_t *out = NULL;
    long status = 0;
    agx_cloud_call call = {.method = "POST", .path = "/x", .what = "testing",
                           .retry_after_header = "retry-after-test"};
    int64_t t0 = agx_clock_ms();
    CHECK_OK(agx_cloud_request(&c, &call, &status, &out, &err), &err);
    CHECK(agx_clock_ms() - t0 >= 1000);
    CHECK(status == 201);
    CHECK_STREQ(json_string_value(json_object_get(out, "id")), "x");
    json_decref(out);
    agx_cloud_fini(&c);
    agx_fake_http_stop(&v);
}

int main(void)
{
    agx_error err;
    unsetenv("AGENTIX_CONNECT_TO"); /* the health test sets its own */
    CHECK_OK(agx_cloud_init(&cloud, "Test", "test", "http://127.0.0.1:9/", "X-Key", "k", &err), &err);
    CHECK_STREQ(cloud.api_url, "http://127.0.0.1:9");
    TEST_RUN(test_env_required);
    TEST_RUN(test_labels);
    TEST_RUN(test_ids_times_polls);
    TEST_RUN(test_health_wait);
    TEST_RUN(test_retry_after_header);
    agx_cloud_fini(&cloud);
    return 0;
}
