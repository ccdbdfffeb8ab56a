/* test_http.c — the toolkit's HTTP client (core/host/http.c), which every backend reaches its
 * service with, against a scripted server on 127.0.0.1 and on a unix socket (tests/support/
 * fake_http.h): requests and bodies, response headers, status → error mapping, retries (with
 * Retry-After), body limits, streaming sinks, refused connections, unanswered requests and
 * escaping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "agentix/backend/http.h"
#include "fake_http.h"

static const char ok_hello[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: Some Value \r\n"
                               "Connection: close\r\n\r\nhello";
static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 28\r\nConnection: "
                                "close\r\n\r\n{\"message\":\"no such widget\"}";
static const char busy[] = "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n"
                           "Connection: close\r\n\r\n";
static const char conflict[] = "HTTP/1.1 409 Conflict\r\nContent-Length: 18\r\nConnection: "
                               "close\r\n\r\n{\"error\":\"taken\"}\n";
static const char big[] = "HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
                          "0123456789012345678901234567890123456789";

static agx_http_request get(const char *url)
{
    return (agx_http_request){.method = "GET", .url = url, .timeout_ms = 10000};
}

/* ---- tests ---- */

static void test_request_and_response(void)
{
    int port;
    agx_fake_http s;
    const char *const answers[] = {ok_hello, ok_hello};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/things?x=1", port);
    agx_http_request req = get(url);
    agx_http_response resp;
    agx_error err;
    CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
    CHECK(resp.status == 200 && resp.body_len == 5);
    CHECK_STREQ(resp.body, "hello");
    CHECK_STREQ(agx_kv_get(resp.headers, "x-thing"), "Some Value");
    CHECK(agx_http_check_status(&resp, "getting things", &err) == 0);
    agx_http_response_clear(&resp);
    CHECK(strncmp(s.last_request, "GET /v1/things?x=1 HTTP/1.1\r\n", 29) == 0);

    agx_kv *h = agx_kv_new();
    CHECK(agx_kv_set(h, "Authorization", "Bearer abc") == 0);
    req = (agx_http_request){.method = "POST", .url = url, .headers = h, .body = "{\"a\":1}",
                             .body_len = 7};
    CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
    agx_http_response_clear(&resp);
    agx_kv_free(h);
    agx_fake_http_stop(&s);
    CHECK(strncmp(s.last_request, "POST /v1/things?x=1 ", 20) == 0);
    CHECK_CONTAINS(s.last_request, "Content-Type: application/json\r\n");
    CHECK_CONTAINS(s.last_request, "Authorization: Bearer abc\r\n");
    CHECK_CONTAINS(s.last_request, "\r\n\r\n{\"a\":1}");
}

static void test_status_mapping(void)
{
    int port;
    agx_fake_http s;
    const char *const answers[] = {not_found, conflict, busy};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 3);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    agx_http_request req = get(url);
    agx_http_response resp;
    agx_error err;
    static const int codes[] = {AGX_ERR_NOT_FOUND, AGX_ERR_CONFLICT, AGX_ERR_BACKEND};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
        CHECK(agx_http_check_status(&resp, "doing it", &err) == codes[i]);
        CHECK(strncmp(err.message, "doing it: HTTP ", 15) == 0);
        CHECK(err.retriable == (i == 2));
        if (i == 0) {
            CHECK_STREQ(err.message, "doing it: HTTP 404: no such widget");
            CHECK_STREQ(err.detail, "{\"message\":\"no such widget\"}");
        }
        if (i == 1)
            CHECK_STREQ(err.message, "doing it: HTTP 409: taken");
        agx_http_response_clear(&resp);
    }
    agx_fake_http_stop(&s);
}

static void test_retry(void)
{
    int port;
    agx_fake_http s;
    const char *const answers[] = {busy, busy, ok_hello, busy, busy};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 5);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    agx_http_request req = get(url);
    agx_http_retry retry = {.max_attempts = 5, .base_delay_ms = 1, .max_delay_ms = 5};
    agx_http_response resp;
    agx_error err;
    CHECK_OK(agx_http_perform_retry(&req, &retry, &resp, &err), &err);
    CHECK(resp.status == 200 && s.served == 3);
    agx_http_response_clear(&resp);
    retry.max_attempts = 2; /* gives up with the last answer */
    CHECK_OK(agx_http_perform_retry(&req, &retry, &resp, &err), &err);
    CHECK(resp.status == 503 && s.served == 5);
    CHECK(agx_http_check_status(&resp, "x", &err) == AGX_ERR_BACKEND && err.retriable);
    agx_http_response_clear(&resp);
    agx_fake_http_stop(&s);
}

static int count_sink(const char *data, size_t len, void *user)
{
    (void)data;
    *(size_t *)user += len;
    return 0;
}

static int stop_sink(const char *data, size_t len, void *user)
{
    (void)data, (void)len, (void)user;
    return 1;
}

static void test_limits_and_sinks(void)
{
    int port;
    agx_fake_http s;
    const char *const answers[] = {big, big, big};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 3);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    agx_http_request req = get(url);
    req.max_body = 10;
    agx_http_response resp;
    agx_error err;
    CHECK(agx_http_perform(&req, &resp, &err) == AGX_ERR_LIMIT);
    CHECK_CONTAINS(err.message, "larger than 10 bytes");
    agx_http_response_clear(&resp);
    size_t got = 0;
    req.sink = count_sink; /* a sink sees everything; max_body bounds buffering only */
    req.sink_user = &got;
    CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
    CHECK(got == 40 && resp.body_len == 0);
    agx_http_response_clear(&resp);
    req.sink = stop_sink;
    CHECK(agx_http_perform(&req, &resp, &err) == AGX_ERR_CANCELLED);
    agx_http_response_clear(&resp);
    agx_fake_http_stop(&s);
}

static void test_transport_errors(void)
{
    int port, fd = agx_fake_http_tcp(&port);
    close(fd); /* nothing listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    agx_http_request req = get(url);
    agx_http_response resp;
    agx_error err;
    CHECK(agx_http_perform(&req, &resp, &err) == AGX_ERR_UNAVAILABLE && err.retriable);
    CHECK_CONTAINS(err.message, url);
    CHECK(resp.status == 0);
    agx_http_response_clear(&resp);

    agx_fake_http s;
    const char *const answers[] = {NULL};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    req = get(url);
    req.timeout_ms = 200;
    CHECK(agx_http_perform(&req, &resp, &err) == AGX_ERR_TIMEOUT && err.retriable);
    agx_http_response_clear(&resp);
    agx_fake_http_stop(&s);

    req = get("http://localhost/");
    req.unix_socket = "/nonexistent/agx-test.sock";
    CHECK(agx_http_perform(&req, &resp, &err) == AGX_ERR_UNAVAILABLE);
    CHECK_CONTAINS(err.message, "via unix socket /nonexistent/agx-test.sock");
    agx_http_response_clear(&resp);
    req = (agx_http_request){0};
    CHECK(agx_http_perform(&req, &resp, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_http_response_clear(&resp);
}

static void test_unix_socket(void)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/agx-test-http-%d.sock", (int)getpid());
    int fd = agx_fake_http_unix(path);
    agx_fake_http s;
    const char *const answers[] = {ok_hello};
    agx_fake_http_start(&s, fd, answers, 1);
    agx_http_request req = get("http://localhost/v1.41/version");
    req.unix_socket = path;
    agx_http_response resp;
    agx_error err;
    CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
    CHECK(resp.status == 200);
    CHECK_STREQ(resp.body, "hello");
    agx_http_response_clear(&resp);
    agx_fake_http_stop(&s);
    unlink(path);
    CHECK_CONTAINS(s.last_request, "GET /v1.41/version HTTP/1.1\r\nHost: localhost\r\n");
}

/* connect_to reaches the URL's host at another address; the Host header keeps the URL's name. */
static void test_connect_to(void)
{
    int port;
    agx_fake_http s;
    const char *const answers[] = {ok_hello};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 1);
    char rule[96];
    snprintf(rule, sizeof rule, "api.example.invalid:443:127.0.0.1:%d", port);
    agx_http_request req = get("http://api.example.invalid:443/v1/ping");
    req.connect_to = rule;
    agx_http_response resp;
    agx_error err;
    CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
    CHECK(resp.status == 200);
    agx_http_response_clear(&resp);
    agx_fake_http_stop(&s);
    CHECK_CONTAINS(s.last_request, "GET /v1/ping HTTP/1.1\r\nHost: api.example.invalid:443\r\n");
}

/* A service-specific retry header is honoured like Retry-After. */
static void test_retry_after_header(void)
{
    static const char busy_own[] = "HTTP/1.1 429 Slow Down\r\nretry-after-sandbox-create: 0\r\n"
                                   "Content-Length: 0\r\nConnection: close\r\n\r\n";
    int port;
    agx_fake_http s;
    const char *const answers[] = {busy_own, ok_hello};
    agx_fake_http_start(&s, agx_fake_http_tcp(&port), answers, 2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    agx_http_request req = get(url);
    agx_http_retry retry = {.max_attempts = 2, .base_delay_ms = 1, .max_delay_ms = 5,
                            .retry_after_header = "retry-after-sandbox-create"};
    agx_http_response resp;
    agx_error err;
    CHECK_OK(agx_http_perform_retry(&req, &retry, &resp, &err), &err);
    CHECK(resp.status == 200 && s.served == 2);
    agx_http_response_clear(&resp);
    agx_fake_http_stop(&s);
}

static void test_escape(void)
{
    char *e = agx_http_escape("a b/c:d~e_f.g-h{\"x\":[1]}é");
    CHECK_STREQ(e, "a%20b%2Fc%3Ad~e_f.g-h%7B%22x%22%3A%5B1%5D%7D%C3%A9");
    free(e);
    e = agx_http_escape("");
    CHECK_STREQ(e, "");
    free(e);
}

int main(void)
{
    TEST_RUN(test_request_and_response);
    TEST_RUN(test_status_mapping);
    TEST_RUN(test_retry);
    TEST_RUN(test_limits_and_sinks);
    TEST_RUN(test_transport_errors);
    TEST_RUN(test_unix_socket);
    TEST_RUN(test_connect_to);
    TEST_RUN(test_retry_after_header);
    TEST_RUN(test_escape);
    return 0;
}
