/* health.c — the wait every backend's create() ends with (backend → runtime): GET
 * <runtime_url>/health until the runtime answers {"status":"ok"}, asking the backend between
 * probes whether its runtime is still alive and how to read other answers (runtime.h). */
#include "agentix/backend/runtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/backend/http.h"
#include "agentix/clock.h"

#define HEALTH_BODY_MAX (64u << 10)

/* 200 with {"status":"ok"} is healthy: anything else on the port is not our runtime. */
static int body_ok(const agx_http_response *resp)
{
    json_t *doc = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(doc, "status"));
    int ok = st && strcmp(st, "ok") == 0;
    json_decref(doc);
    return ok;
}

/* One probe: 1 healthy, 0 not yet (last says why), <0 a verdict that ends the wait. */
static int probe(const agx_health_wait *w, const char *url, int64_t left, char *last, size_t n,
                 agx_error *err)
{
    long bound = w->probe_timeout_ms > 0 ? w->probe_timeout_ms : 2000;
    if (left < bound)
        bound = left > 0 ? (long)left : 1;
    agx_http_request req = {.method = "GET", .url = url, .headers = w->headers,
                            .connect_to = w->connect_to, .no_proxy = w->no_proxy,
                            .connect_timeout_ms = bound, .timeout_ms = bound,
                            .max_body = HEALTH_BODY_MAX};
    agx_http_response resp;
    agx_error e;
    agx_error_clear(&e);
    int rc = 0;
    if (agx_http_perform(&req, &resp, &e) != 0) {
        snprintf(last, n, "%.200s", e.message);
    } else if (resp.status == 200 && body_ok(&resp)) {
        rc = 1;
    } else {
        snprintf(last, n, "HTTP %ld %.160s", resp.status, resp.body ? resp.body : "");
        if (resp.status != 200 && w->on_status)
            rc = w->on_status(w->user, resp.status, resp.body, resp.body_len, err);
    }
    agx_http_response_clear(&resp);
    return rc;
}

int agx_health_wait_run(const agx_health_wait *w, agx_error *err)
{
    if (!w || !w->runtime_url || w->deadline_ms <= 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_health_wait_run: a runtime_url and a deadline are required");
    const char *what = w->what ? w->what : "the runtime";
    char *url = NULL;
    if (asprintf(&url, "%s/health", w->runtime_url) < 0)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory waiting for %s", what);
    int64_t start = agx_clock_ms();
    int64_t pause = w->first_interval_ms > 0 ? w->first_interval_ms : 10;
    int64_t max_pause = w->max_interval_ms > 0 ? w->max_interval_ms : 500;
    char last[256] = "no answer yet";
    int rc;
    for (;;) {
        if (w->alive && (rc = w->alive(w->user, err)) != 0)
            break;
        int64_t left = w->deadline_ms - agx_clock_ms();
        if (left > 0 && (rc = probe(w, url, left, last, sizeof last, err)) != 0) {
            rc = rc > 0 ? 0 : rc;
            break;
        }
        left = w->deadline_ms - agx_clock_ms();
        if (left <= 0) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT,
                               "%s did not answer /health at %s within %lld ms (last: %s)%s", what,
                               url, (long long)(agx_clock_ms() - start), last,
                               w->hint ? w->hint : "");
            if (err)
                err->retriable = 1;
            break;
        }
        agx_clock_sleep_ms(pause < left ? pause : left);
        pause = pause * 2 < max_pause ? pause * 2 : max_pause;
    }
    free(url);
    return rc;
}
