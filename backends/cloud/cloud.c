/* cloud.c — the shared half of the e2b and daytona backends: vendor API calls with retries, the
 * health wait through the sandbox's public URL, owner labels and small checks (see cloud.h). */
#include "backends/cloud/cloud.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- setup ---- */

int agx_cloud_env_required(const char *name, const char **out, agx_error *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s is not set: export it (the backend cannot call its API without it)",
                             name);
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "%s contains a control character: it must be one line", name);
    if (strlen(v) > 4096)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s is longer than 4096 bytes", name);
    *out = v;
    return 0;
}

/* "HOST:PORT:CONNECT_HOST:CONNECT_PORT" (hosts may be [IPv6]); checked here so a typo fails at
 * load naming the variable instead of as a health-wait timeout. */
static int check_connect_to(const char *spec, agx_error *err)
{
    int fields = 1, bracket = 0;
    for (const char *p = spec; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            goto bad;
        if (*p == '[')
            bracket++;
        else if (*p == ']')
            bracket--;
        else if (*p == ':' && bracket == 0)
            fields++;
        if (bracket < 0 || bracket > 1)
            goto bad;
    }
    if (fields == 4 && bracket == 0 && strlen(spec) < 512)
        return 0;
bad:
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "AGENTIX_CONNECT_TO='%.128s' is not HOST:PORT:CONNECT_HOST:CONNECT_PORT",
                         spec);
}

int agx_cloud_init(agx_cloud *c, const char *service, const char *backend, const char *api_url,
                   const char *auth_name, const char *auth_value, agx_error *err)
{
    memset(c, 0, sizeof *c);
    c->service = service;
    c->backend = backend;
    if (strncmp(api_url, "http://", 7) != 0 && strncmp(api_url, "https://", 8) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s API URL '%s' must start with http:// or https://", service,
                             api_url);
    size_t n = strlen(api_url);
    while (n > 0 && api_url[n - 1] == '/')
        n--;
    const char *ct = getenv("AGENTIX_CONNECT_TO");
    if (ct && *ct && check_connect_to(ct, err) != 0)
        return err ? err->code : AGX_ERR_INVALID_ARGUMENT;
    c->api_url = strndup(api_url, n);
    c->auth = agx_kv_new();
    if (ct && *ct)
        c->connect_to = strdup(ct);
    if (!c->api_url || !c->auth || (ct && *ct && !c->connect_to) ||
        agx_kv_set(c->auth, auth_name, auth_value) != 0) {
        agx_cloud_fini(c);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the %s backend",
                             service);
    }
    return 0;
}

void agx_cloud_fini(agx_cloud *c)
{
    free(c->api_url);
    agx_kv_free(c->auth);
    free(c->connect_to);
    memset(c, 0, sizeof *c);
}

/* ---- API calls ---- */

typedef struct attempt {
    const agx_cloud *c;
    const agx_cloud_call *call;
    agx_http_request *req;
    int64_t deadline;
} attempt;

/* A create's 429: every agentix process of the host that rate-limits this backend waits out the
 * Retry-After (seconds) before its next create, not just this request. */
static void defer_creates(const attempt *a, const agx_http_response *resp)
{
    if (!a->call->creates || resp->status != 429 || !resp->headers)
        return;
    const char *hs[] = {a->call->retry_after_header, "retry-after"};
    long best = 0;
    for (size_t i = 0; i < 2; i++) {
        const char *v = hs[i] ? agx_kv_get(resp->headers, hs[i]) : NULL;
        long s = v && strspn(v, "0123456789") == strlen(v) && strlen(v) < 7 ? atol(v) : 0;
        best = s > best ? s : best;
    }
    if (best > 0)
        agx_admission_defer(a->c->backend, best * 1000);
}

static long attempt_timeout(int64_t deadline)
{
    int64_t left = deadline - agx_clock_ms();
    if (left < 1)
        left = 1;
    return left < AGX_CLOUD_CALL_TIMEOUT_MS ? (long)left : AGX_CLOUD_CALL_TIMEOUT_MS;
}

static int decide(int rc, const agx_http_response *resp, const agx_error *err,
                  const agx_cloud_call *call)
{
    if (rc != 0) /* a create that timed out may have happened: only idempotent calls repeat */
        return call->idempotent && err && err->retriable;
    long s = resp->status;
    if (s == 429)
        return 1;
    if (call->idempotent && (s == 500 || s == 502 || s == 503 || s == 504))
        return 1;
    return call->retry_also && call->retry_also(resp);
}

/* Also shortens the next attempt to what is left of the deadline (less the backoff before it,
 * at most max_delay_ms), so a call never runs far past its bound. */
static int should_retry(int rc, const agx_http_response *resp, const agx_error *err, void *user)
{
    attempt *a = user;
    if (rc == 0)
        defer_creates(a, resp);
    int again = decide(rc, resp, err, a->call);
    if (again) {
        a->req->timeout_ms = attempt_timeout(a->deadline);
        if (a->req->timeout_ms < AGX_HTTP_DEFAULT_CONNECT_TIMEOUT_MS)
            a->req->connect_timeout_ms = a->req->timeout_ms;
    }
    return again;
}

int agx_cloud_request(const agx_cloud *c, const agx_cloud_call *call, long *status, json_t **out,
                      agx_error *err)
{
    if (out)
        *out = NULL;
    if (status)
        *status = 0;
    char *url = NULL, *body = NULL;
    if (call->url)
        url = strdup(call->url);
    else if (asprintf(&url, "%s%s", c->api_url, call->path) < 0)
        url = NULL;
    if (call->body)
        body = json_dumps(call->body, JSON_COMPACT);
    if (!url || (call->body && !body)) {
        free(url);
        free(body);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory %s", call->what);
    }
    int64_t deadline = call->deadline_ms ? call->deadline_ms
                                         : agx_clock_ms() + AGX_CLOUD_CALL_TIMEOUT_MS;
    long first = attempt_timeout(deadline);
    agx_http_request req = {
        .struct_size = sizeof req, .method = call->method, .url = url, .headers = c->auth,
        .body = body, .body_len = body ? strlen(body) : 0, .timeout_ms = first,
        .connect_timeout_ms = first < AGX_HTTP_DEFAULT_CONNECT_TIMEOUT_MS ? first : 0,
        .max_body = 8u << 20, .maybe_sent = call->maybe_sent,
    };
    attempt a = {.c = c, .call = call, .req = &req, .deadline = deadline};
    agx_http_retry retry = {
        .max_attempts = 100000, .base_delay_ms = 200, .max_delay_ms = AGX_CLOUD_MAX_BACKOFF_MS,
        .deadline_ms = deadline, .should_retry = should_retry, .user = &a,
        .retry_after_header = call->retry_after_header,
    };
    agx_http_response resp;
    int rc = agx_http_perform_retry(&req, &retry, &resp, err);
    if (!rc) {
        if (status)
            *status = resp.status;
        char what[160];
        snprintf(what, sizeof what, "%s %s", c->service, call->what);
        rc = agx_http_check_status(&resp, what, err);
    } else {
        agx_error_prefix(err, "%s %s", c->service, call->what);
    }
    if (call->headers_out) {
        *call->headers_out = resp.headers;
        resp.headers = NULL;
    }
    if (!rc && out && resp.body_len > 0) {
        json_error_t je;
        *out = json_loadb(resp.body, resp.body_len, 0, &je);
        if (!*out)
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "%s %s: the answer is not JSON (%s)",
                               c->service, call->what, je.text);
    }
    agx_http_response_clear(&resp);
    free(url);
    free(body);
    return rc;
}

/* ---- health wait ---- */

/* The proxy's own words from a JSON body, else the raw start of the body. */
static void proxy_message(const agx_http_response *resp, char *out, size_t n)
{
    json_t *j = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message"));
    snprintf(out, n, "%.200s", m ? m : resp->body ? resp->body : "");
    json_decref(j);
}

int64_t agx_cloud_poll_interval(int64_t started_ms, int64_t now_ms, int64_t prev_ms)
{
    if (now_ms - started_ms < 5000 || prev_ms < 100)
        return 100;
    int64_t next = prev_ms + prev_ms / 10;
    return next > 1000 ? 1000 : next;
}

typedef struct health_ctx {
    const agx_cloud *c;
    const char *runtime_url;
} health_ctx;

/* A 502/503/504 from the proxy means the port is not open yet; a 502 saying the sandbox was not
 * found, or any other status, ends the wait with the proxy's own words. */
static int proxy_verdict(void *user, long status, const char *body, size_t len, agx_error *err)
{
    health_ctx *h = user;
    agx_http_response resp = {.status = status, .body = (char *)body, .body_len = len};
    char msg[220];
    proxy_message(&resp, msg, sizeof msg);
    int gone = strstr(msg, "sandbox was not found") != NULL;
    if (!gone && (status == 502 || status == 503 || status == 504))
        return 0;
    agx_error_set(err, gone ? AGX_ERR_NOT_FOUND : AGX_ERR_BACKEND,
                  "%s sandbox runtime at %s refused the health check: HTTP %ld %s",
                  h->c->service, h->runtime_url, status, msg);
    agx_error_set_detail(err, body ? body : "", len);
    return err ? err->code : AGX_ERR_BACKEND;
}

int agx_cloud_wait_health(const agx_cloud *c, const char *runtime_url, const agx_kv *headers,
                          int64_t deadline_ms, agx_error *err)
{
    char what[64];
    snprintf(what, sizeof what, "%s sandbox runtime", c->service);
    health_ctx h = {c, runtime_url};
    agx_health_wait w = {.runtime_url = runtime_url, .what = what, .headers = headers,
                         .connect_to = c->connect_to, .deadline_ms = deadline_ms,
                         .first_interval_ms = 100, .max_interval_ms = 1000,
                         .probe_timeout_ms = 10000, .on_status = proxy_verdict, .user = &h,
                         .hint = "; check that the template/snapshot starts agentix-server on "
                                 "port 8000"};
    return agx_health_wait_run(&w, err);
}

/* ---- labels, env, ids ---- */

static int put_string(json_t *obj, const char *k, const char *v, const char *what, agx_error *err)
{
    if (strlen(k) == 0 || strlen(k) > AGX_CLOUD_LABEL_MAX || strlen(v) > AGX_CLOUD_LABEL_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s '%.64s': keys must be 1..%d bytes and values at most %d",
                             what, k, AGX_CLOUD_LABEL_MAX, AGX_CLOUD_LABEL_MAX);
    json_t *s = json_string(v);
    if (!s || json_object_set_new(obj, k, s) != 0) /* jansson refuses invalid UTF-8 */
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s '%.64s' is not valid UTF-8 (or out of memory)", what, k);
    return 0;
}

int agx_cloud_kv_json(const agx_kv *kv, const char *what, json_t **out, agx_error *err)
{
    json_t *o = json_object();
    if (!o)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building %s", what);
    size_t n = kv ? agx_kv_count(kv) : 0;
    if (n > 4 * AGX_CLOUD_MAX_LABELS) {
        json_decref(o);
        return agx_error_set(err, AGX_ERR_LIMIT, "%zu %s entries: at most %d", n, what,
                             4 * AGX_CLOUD_MAX_LABELS);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = put_string(o, agx_kv_key_at(kv, i), agx_kv_value_at(kv, i), what, err);
        if (rc) {
            json_decref(o);
            return rc;
        }
    }
    *out = o;
    return 0;
}

int agx_cloud_labels(const agx_cloud *c, const agx_sandbox_config *cfg, char nonce[33],
                     json_t **out, agx_error *err)
{
    (void)c;
    const agx_kv *labels = agx_sandbox_config_labels_const(cfg);
    if (labels && agx_kv_count(labels) > AGX_CLOUD_MAX_LABELS)
        return agx_error_set(err, AGX_ERR_LIMIT, "%zu labels: at most %d",
                             agx_kv_count(labels), AGX_CLOUD_MAX_LABELS);
    const char *given = agx_kv_get(labels, AGX_LABEL_CREATE);
    int rc = 0;
    if (given && strlen(given) == 32)
        memcpy(nonce, given, 33);
    else
        rc = agx_random_hex(nonce, 16, err);
    if (!rc)
        rc = agx_cloud_kv_json(labels, "label", out, err);
    if (rc)
        return rc;
    if (put_string(*out, AGX_LABEL_SANDBOX, "1", "label", err) ||
        put_string(*out, AGX_LABEL_CREATE, nonce, "label", err)) {
        json_decref(*out);
        *out = NULL;
        return err ? err->code : AGX_ERR_NO_MEMORY;
    }
    return 0;
}

int64_t agx_cloud_cleanup_deadline(int64_t create_deadline)
{
    int64_t now = agx_clock_ms();
    return (create_deadline > now ? create_deadline : now) + AGX_CLOUD_CLEANUP_GRACE_MS;
}

void agx_cloud_sweep_nonce(void *self, const char *nonce, int maybe_sent, int64_t deadline_ms,
                           agx_cloud_list_fn list, agx_cloud_delete_fn del)
{
    if (!maybe_sent)
        return; /* never connected: nothing can exist */
    agx_kv *want = agx_kv_new();
    agx_sandbox_list *found = agx_sandbox_list_new();
    agx_error err;
    agx_error_clear(&err);
    if (want && found && agx_kv_set(want, AGX_LABEL_CREATE, nonce) == 0 &&
        list(self, want, deadline_ms, found, &err) == 0)
        for (size_t i = 0; i < agx_sandbox_list_count(found) && agx_clock_ms() < deadline_ms; i++)
            del(self, agx_sandbox_info_id(agx_sandbox_list_at(found, i)), deadline_ms, &err);
    agx_sandbox_list_free(found);
    agx_kv_free(want);
}

int agx_cloud_check_id(const agx_cloud *c, const char *id, agx_error *err)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= AGX_CLOUD_ID_MAX ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "'%.64s' is not a %s sandbox id (letters, digits and '-')",
                             id ? id : "(null)", c->service);
    return 0;
}

int agx_cloud_info_labels(agx_sandbox_info *info, json_t *labels)
{
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        if (json_is_string(v) && agx_kv_set(agx_sandbox_info_labels(info), k, json_string_value(v)) != 0)
            return -1;
    }
    return 0;
}
