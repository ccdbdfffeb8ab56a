/* k8s_api.c — one Kubernetes API request from the backend (host → backend → API server): the
 * URL, credentials, TLS material and JSON headers, retries on 429 and 5xx with backoff honouring
 * Retry-After, one credential refresh on 401; and watch streams split into JSON events. */
#include "backends/k8s-pool/k8s_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_ATTEMPTS 6
#define API_BASE_DELAY_MS 50
#define API_MAX_DELAY_MS 2000

static int should_retry(int rc, const agx_http_response *resp, const agx_error *err, void *user)
{
    agx_k8s_call *call = user;
    call->attempts++;
    if (rc != 0)
        return err && err->retriable;
    return resp->status == 429 || (resp->status >= 500 && resp->status != 501);
}

static int perform(agx_k8s *k, agx_k8s_call *call, int refresh, agx_http_response *resp,
                   agx_error *err)
{
    agx_k8s_cred cred;
    int rc = agx_k8s_cred_get(&k->conn, refresh, &cred, err);
    if (rc)
        return rc;
    char *url = NULL;
    agx_kv *hdrs = call->headers ? agx_kv_copy(call->headers) : agx_kv_new();
    if (!hdrs || asprintf(&url, "%s%s", k->conn.server, call->path) < 0 ||
        agx_kv_set(hdrs, "Accept", "application/json") ||
        (cred.authorization && agx_kv_set(hdrs, "Authorization", cred.authorization))) {
        agx_kv_free(hdrs);
        agx_k8s_cred_clear(&cred);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    int64_t left = call->deadline_ms ? call->deadline_ms - agx_clock_ms() : 0;
    agx_http_request req = {
        .method = call->method,
        .url = url,
        .headers = hdrs,
        .body = call->body,
        .body_len = call->body ? strlen(call->body) : 0,
        .content_type = call->content_type,
        .timeout_ms = call->deadline_ms ? (left > 1 ? left : 1) : 0,
        .max_body = call->max_body,
        .sink = call->sink,
        .sink_user = call->sink_user,
        .connect_to = k->conn.connect_to,
        .tls_ca_pem = k->conn.ca_pem,
        .tls_ca_pem_len = k->conn.ca_len,
        .tls_cert_pem = cred.cert ? cred.cert : k->conn.cert_pem,
        .tls_cert_pem_len = cred.cert ? strlen(cred.cert) : k->conn.cert_len,
        .tls_key_pem = cred.key ? cred.key : k->conn.key_pem,
        .tls_key_pem_len = cred.key ? strlen(cred.key) : k->conn.key_len,
        .tls_insecure = k->conn.insecure,
        .share = call->fresh ? NULL : k->share,
    };
    agx_http_retry retry = {.max_attempts = API_ATTEMPTS, .base_delay_ms = API_BASE_DELAY_MS,
                            .max_delay_ms = API_MAX_DELAY_MS, .deadline_ms = call->deadline_ms,
                            .should_retry = should_retry, .user = call};
    rc = agx_http_perform_retry(&req, &retry, resp, err);
    free(url);
    agx_kv_free(hdrs);
    agx_k8s_cred_clear(&cred);
    return rc;
}

int agx_k8s_api(agx_k8s *k, agx_k8s_call *call, agx_http_response *resp, agx_error *err)
{
    call->attempts = 0;
    if (!call->max_body)
        call->max_body = AGX_K8S_MAX_LIST;
    int rc = perform(k, call, 0, resp, err);
    /* A rotated token or an expired exec credential: fetch a fresh one once. */
    if (rc == 0 && resp->status == 401 && (k->conn.exec || k->conn.token_file) && !call->sink) {
        agx_http_response_clear(resp);
        rc = perform(k, call, 1, resp, err);
    }
    return rc;
}

int agx_k8s_status_error(const agx_http_response *resp, const char *what, agx_error *err)
{
    int rc = agx_http_check_status(resp, what, err);
    if (rc && resp->status == 401)
        agx_error_set(err, AGX_ERR_BACKEND, "%s: HTTP 401 Unauthorized: the API server refused the "
                      "credentials (check the kubeconfig user or service-account token)", what);
    else if (rc && resp->status == 403 && err) {
        char api[sizeof err->message]; /* the message is rewritten from itself: copy it first */
        snprintf(api, sizeof api, "%s", err->message);
        agx_error_set(err, AGX_ERR_BACKEND, "%s (the account needs pods get/list/watch/patch/"
                      "delete in the pool's namespace)", api);
    }
    if (rc && resp->body && err && !err->detail[0])
        snprintf(err->detail, sizeof err->detail, "%s", resp->body);
    return rc;
}

/* ---- watch ---- */

typedef struct watch_state {
    agx_k8s_event_fn fn;
    void *user;
    char *line;
    size_t len, cap;
    int done;     /* fn said done (1) or failed (< 0) */
    agx_error ev_err;
} watch_state;

int agx_k8s_watch_event(const char *line, size_t len, json_t **ev, const char **type,
                        json_t **object, agx_error *err)
{
    json_error_t jerr;
    *ev = json_loadb(line, len, 0, &jerr);
    *type = json_string_value(json_object_get(*ev, "type"));
    *object = json_object_get(*ev, "object");
    if (!*type || !json_is_object(*object))
        return agx_error_set(err, AGX_ERR_PROTOCOL, "watch: an event is not {type, object}: %s",
                             *ev ? "missing or mistyped fields" : jerr.text);
    return 0;
}

static int feed_line(watch_state *w, const char *s, size_t n)
{
    json_t *ev, *obj;
    const char *type;
    if (agx_k8s_watch_event(s, n, &ev, &type, &obj, &w->ev_err) != 0) {
        json_decref(ev);
        w->done = w->ev_err.code;
        return w->done;
    }
    int rc = w->fn(type, obj, w->user, &w->ev_err);
    json_decref(ev);
    if (rc)
        w->done = rc;
    return rc;
}

static int watch_sink(const char *data, size_t len, void *user)
{
    watch_state *w = user;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (w->len == w->cap) {
                if (w->cap >= AGX_K8S_MAX_EVENT) {
                    w->done = agx_error_set(&w->ev_err, AGX_ERR_LIMIT,
                                            "watch: an event is larger than %u bytes", AGX_K8S_MAX_EVENT);
                    return 1;
                }
                size_t cap = w->cap ? w->cap * 2 : 16384;
                char *p = realloc(w->line, cap);
                if (!p) {
                    w->done = agx_error_set(&w->ev_err, AGX_ERR_NO_MEMORY, "out of memory");
                    return 1;
                }
                w->line = p;
                w->cap = cap;
            }
            w->line[w->len++] = data[i];
            continue;
        }
        size_t n = w->len;
        w->len = 0;
        if (n && feed_line(w, w->line, n))
            return 1;
    }
    return 0;
}

int agx_k8s_watch(agx_k8s *k, const char *query, int64_t deadline_ms, agx_k8s_event_fn fn,
                  void *user, agx_error *err)
{
    int64_t left_s = (deadline_ms - agx_clock_ms()) / 1000 + 1;
    char *path = NULL;
    if (asprintf(&path, "/api/v1/namespaces/%s/pods?watch=1&allowWatchBookmarks=true"
                 "&timeoutSeconds=%lld&%s", k->ns, (long long)(left_s > 0 ? left_s : 1), query) < 0)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    watch_state w = {.fn = fn, .user = user};
    agx_error_clear(&w.ev_err);
    agx_k8s_call call = {.method = "GET", .path = path, .deadline_ms = deadline_ms,
                         .sink = watch_sink, .sink_user = &w};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    if (resp.status == 410) {
        rc = 2; /* too old a resourceVersion as an HTTP status: relist */
    } else if (resp.status != 200 && resp.status != 0) {
        rc = agx_k8s_status_error(&resp, "watch pods", err);
    } else if (w.done) { /* the handler ended the stream: done, expired or failed */
        rc = w.done;
        if (w.done < 0 && err)
            *err = w.ev_err;
    } else if (rc == AGX_ERR_TIMEOUT || rc == 0) {
        rc = 0; /* the stream ended (timeoutSeconds or our deadline) without an answer */
    } else if (err && err->retriable) {
        /* A dropped or refused stream: the caller re-reads and watches again, after a pause. */
        agx_clock_sleep_ms(50);
        rc = 2;
    }
    free(w.line);
    free(path);
    agx_http_response_clear(&resp);
    return rc;
}
