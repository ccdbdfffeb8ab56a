/* http.c — the HTTP client backends reach their services with (host → backend → service API):
 * one libcurl easy handle per request over TCP or a unix socket, bounded time and size, response
 * headers collected into an agx_kv, a retry loop with backoff, and status → agx_error mapping. */
#include "agentix/backend/http.h"

#include "agentix/clock.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stddef.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

/* Never cleaned up: backends come and go, and curl_global_cleanup is not thread-safe. */
static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *agx_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- aborting from another thread ---- */

struct agx_http_abort {
    pthread_mutex_t mu;
    int fired;
    curl_socket_t fd; /* the request's socket while it is open, else CURL_SOCKET_BAD */
};

int agx_http_abort_new(agx_http_abort **out, agx_error *err)
{
    agx_http_abort *a = calloc(1, sizeof *a);
    if (!a)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory for an HTTP abort handle");
    pthread_mutex_init(&a->mu, NULL);
    a->fd = CURL_SOCKET_BAD;
    *out = a;
    return 0;
}

void agx_http_abort_fire(agx_http_abort *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->fired = 1;
    if (a->fd != CURL_SOCKET_BAD)
        shutdown(a->fd, SHUT_RDWR); /* the reading thread's recv returns at once */
    pthread_mutex_unlock(&a->mu);
}

void agx_http_abort_free(agx_http_abort *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static curl_socket_t open_socket(void *user, curlsocktype purpose, struct curl_sockaddr *addr)
{
    agx_http_abort *a = user;
    (void)purpose;
    pthread_mutex_lock(&a->mu);
    curl_socket_t fd = a->fired ? CURL_SOCKET_BAD
                                : socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    a->fd = fd;
    pthread_mutex_unlock(&a->mu);
    return fd;
}

static int close_socket(void *user, curl_socket_t fd)
{
    agx_http_abort *a = user;
    pthread_mutex_lock(&a->mu);
    if (a->fd == fd)
        a->fd = CURL_SOCKET_BAD;
    pthread_mutex_unlock(&a->mu);
    return close(fd);
}

/* The toolkit-2 fields, or zeros for a request of version 1's layout. */
static const agx_http_request *v2(const agx_http_request *req, agx_http_request *copy)
{
    if (req->struct_size >= sizeof *req)
        return req;
    memset(copy, 0, sizeof *copy);
    memcpy(copy, req, req->struct_size ? req->struct_size : offsetof(agx_http_request, on_headers));
    return copy;
}

static int agx_http_aborted(agx_http_abort *a)
{
    pthread_mutex_lock(&a->mu);
    int fired = a->fired;
    pthread_mutex_unlock(&a->mu);
    return fired;
}

/* ---- one transfer ---- */

typedef struct transfer {
    const agx_http_request *req;
    agx_http_response *resp;
    size_t cap, max;
    int too_big;      /* body over max */
    int sink_stopped; /* the sink asked to abort */
    int header_overflow;
    int headers_told;
    size_t header_count;
    struct curl_slist *connect_to; /* the request's connect_to rule, NULL = none */
    CURL *handle;
} transfer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t n = size * nmemb;
    if (t->req->sink) {
        if (t->req->sink(data, n, t->req->sink_user) != 0) {
            t->sink_stopped = 1;
            return 0;
        }
        return n;
    }
    agx_http_response *r = t->resp;
    if (n > t->max - r->body_len) {
        t->too_big = 1;
        return 0;
    }
    if (r->body_len + n + 1 > t->cap) {
        size_t cap = t->cap < 4096 ? 4096 : t->cap;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        t->cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* "Name: value\r\n" lines; the status line and the blank line carry no colon and are skipped.
 * Headers of an earlier response (a redirect or 100 Continue) are overwritten by later ones. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t n = size * nmemb;
    const char *colon = memchr(data, ':', n);
    if ((n == 2 && data[0] == '\r') || (n == 1 && data[0] == '\n')) { /* end of the headers */
        long status = 0;
        if (t->req->on_headers && !t->headers_told &&
            curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status >= 200) {
            t->headers_told = 1;
            t->req->on_headers(status, t->req->sink_user);
        }
        return n;
    }
    if (!colon || colon == data)
        return n;
    if (++t->header_count > AGX_HTTP_MAX_HEADERS) {
        t->header_overflow = 1;
        return 0;
    }
    size_t klen = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *key = strndup(data, klen), *val = strndup(v, (size_t)(end - v));
    int ok = key && val;
    if (ok) {
        for (char *k = key; *k; k++)
            *k = (char)tolower((unsigned char)*k);
        ok = agx_kv_set(t->resp->headers, key, val) == 0;
    }
    free(key);
    free(val);
    return ok ? n : 0;
}

static struct curl_slist *build_headers(const agx_http_request *req, int *oom)
{
    struct curl_slist *list = NULL, *next;
    char line[1024];
    *oom = 0;
    /* Without this curl sends "Expect: 100-continue" for larger bodies and waits for an answer
     * some servers never give. */
    if (!(list = curl_slist_append(list, "Expect:")))
        goto oom;
    if (req->body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 req->content_type ? req->content_type : "application/json");
        if (!(next = curl_slist_append(list, line)))
            goto oom;
        list = next;
    }
    for (size_t i = 0; req->headers && i < agx_kv_count(req->headers); i++) {
        const char *k = agx_kv_key_at(req->headers, i), *v = agx_kv_value_at(req->headers, i);
        char *h = malloc(strlen(k) + strlen(v) + 3);
        if (!h)
            goto oom;
        sprintf(h, "%s: %s", k, v);
        next = curl_slist_append(list, h);
        free(h);
        if (!next)
            goto oom;
        list = next;
    }
    return list;
oom:
    curl_slist_free_all(list);
    *oom = 1;
    return NULL;
}

static int transfer_error(const agx_http_request *req, const transfer *t, CURLcode rc,
                          const char *curl_msg, agx_error *err)
{
    char where[768];
    snprintf(where, sizeof where, "%s %s%s%s", req->method, req->url,
             req->unix_socket ? " via unix socket " : "", req->unix_socket ? req->unix_socket : "");
    if (t->too_big)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s: response body larger than %zu bytes", where,
                             t->max);
    if (t->header_overflow)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s: more than %d response headers", where,
                             AGX_HTTP_MAX_HEADERS);
    if (t->sink_stopped)
        return agx_error_set(err, AGX_ERR_CANCELLED, "%s: the response reader stopped", where);
    const char *msg = curl_msg && *curl_msg ? curl_msg : curl_easy_strerror(rc);
    int code;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        code = AGX_ERR_UNAVAILABLE;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = AGX_ERR_TIMEOUT;
        break;
    case CURLE_OUT_OF_MEMORY:
        code = AGX_ERR_NO_MEMORY;
        break;
    default:
        code = AGX_ERR_IO;
    }
    agx_error_set(err, code, "%s: %s", where, msg);
    if (err && (code == AGX_ERR_UNAVAILABLE || code == AGX_ERR_TIMEOUT))
        err->retriable = 1;
    return code;
}

/* ---- connection reuse ----
 * libcurl does not support one connection cache used by concurrent threads (CURLSHOPT_SHARE of
 * CURL_LOCK_DATA_CONNECT), so each thread keeps its own easy handle — and with it its kept-alive
 * connections — per share, while TLS sessions and DNS are shared (those are thread-safe with
 * locks). Handles are listed so agx_http_share_free can release those of threads still alive. */

typedef struct share_handle {
    CURL *h;
    agx_http_share *owner;
    struct share_handle *next;
} share_handle;

struct agx_http_share {
    CURLSH *sh;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_key_t key;    /* this thread's share_handle */
    pthread_mutex_t mu;   /* guards handles */
    share_handle *handles;
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    (void)h;
    (void)access;
    pthread_mutex_lock(&((agx_http_share *)user)->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
    (void)h;
    pthread_mutex_unlock(&((agx_http_share *)user)->locks[data]);
}

/* Thread exit: the thread's handle goes (with its connections). */
static void share_handle_drop(void *p)
{
    share_handle *sh = p, **pp;
    agx_http_share *s = sh->owner;
    pthread_mutex_lock(&s->mu);
    for (pp = &s->handles; *pp && *pp != sh; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = sh->next;
    pthread_mutex_unlock(&s->mu);
    curl_easy_cleanup(sh->h);
    free(sh);
}

/* This thread's handle for s (reset after each request, connections kept); NULL: no memory. */
static CURL *share_handle_get(agx_http_share *s)
{
    share_handle *sh = pthread_getspecific(s->key);
    if (sh)
        return sh->h;
    if (!(sh = calloc(1, sizeof *sh)) || !(sh->h = curl_easy_init())) {
        free(sh);
        return NULL;
    }
    sh->owner = s;
    if (pthread_setspecific(s->key, sh) != 0) {
        curl_easy_cleanup(sh->h);
        free(sh);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    sh->next = s->handles;
    s->handles = sh;
    pthread_mutex_unlock(&s->mu);
    return sh->h;
}

int agx_http_share_new(agx_http_share **out, agx_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    agx_http_share *s = calloc(1, sizeof *s);
    if (!s || !(s->sh = curl_share_init())) {
        free(s);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory for an HTTP connection cache");
    }
    if (pthread_key_create(&s->key, share_handle_drop) != 0) {
        curl_share_cleanup(s->sh);
        free(s);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "no thread-specific key for an HTTP cache");
    }
    pthread_mutex_init(&s->mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->locks[i], NULL);
    int bad = curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK;
    bad |= curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK;
    bad |= curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s) != CURLSHE_OK;
    bad |= curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK;
    bad |= curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK;
    if (bad) {
        agx_http_share_free(s);
        return agx_error_set(err, AGX_ERR_INTERNAL, "libcurl refused a shared connection cache");
    }
    *out = s;
    return 0;
}

void agx_http_share_free(agx_http_share *s)
{
    if (!s)
        return;
    pthread_key_delete(s->key); /* no destructor runs after this: the list is ours alone */
    for (share_handle *sh = s->handles, *next; sh; sh = next) {
        next = sh->next;
        curl_easy_cleanup(sh->h);
        free(sh);
    }
    curl_share_cleanup(s->sh);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* PEM blobs are copied by libcurl (CURL_BLOB_COPY), so the request need not outlive the call. */
static int set_blob(CURL *h, CURLoption opt, const char *pem, size_t len)
{
    struct curl_blob blob = {(void *)pem, len, CURL_BLOB_COPY};
    return curl_easy_setopt(h, opt, &blob) != CURLE_OK;
}

/* A variable naming a file or folder, or NULL when unset or empty. */
static const char *env_path(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int setup_tls(CURL *h, const agx_http_request *req)
{
    int bad = 0;
    if (req->tls_ca_pem) {
        bad |= set_blob(h, CURLOPT_CAINFO_BLOB, req->tls_ca_pem, req->tls_ca_pem_len);
    } else if (env_path("AGENTIX_CA_FILE") || env_path("AGENTIX_CA_DIR")) {
        /* The host's CA for every https the library makes (the runtime client reads the same
         * variables), instead of the system store: private clouds, test CAs. */
        const char *f = env_path("AGENTIX_CA_FILE"), *d = env_path("AGENTIX_CA_DIR");
        bad |= curl_easy_setopt(h, CURLOPT_CAINFO, f) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_CAPATH, d) != CURLE_OK;
    }
    if (req->tls_cert_pem) {
        bad |= set_blob(h, CURLOPT_SSLCERT_BLOB, req->tls_cert_pem, req->tls_cert_pem_len);
        bad |= curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK;
    }
    if (req->tls_key_pem) {
        bad |= set_blob(h, CURLOPT_SSLKEY_BLOB, req->tls_key_pem, req->tls_key_pem_len);
        bad |= curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK;
    }
    if (req->tls_insecure) {
        bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
    }
    return bad;
}

static int setup_handle(CURL *h, const agx_http_request *req, transfer *t, struct curl_slist *hdrs,
                        char *errbuf)
{
    long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                  : AGX_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    long total_ms = req->timeout_ms > 0 ? req->timeout_ms : AGX_HTTP_DEFAULT_TIMEOUT_MS;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, t) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, t) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
    if (req->unix_socket)
        bad |= curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket) != CURLE_OK;
    if (t->connect_to)
        bad |= curl_easy_setopt(h, CURLOPT_CONNECT_TO, t->connect_to) != CURLE_OK;
    if (req->no_proxy)
        bad |= curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK;
    bad |= setup_tls(h, req);
    if (req->share)
        bad |= curl_easy_setopt(h, CURLOPT_SHARE, req->share->sh) != CURLE_OK;
    if (req->body) {
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) !=
               CURLE_OK;
    }
    if (strcmp(req->method, "HEAD") == 0)
        bad |= curl_easy_setopt(h, CURLOPT_NOBODY, 1L) != CURLE_OK;
    if (req->abort) {
        bad |= curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, req->abort) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_socket) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, req->abort) != CURLE_OK;
        /* A kept-alive connection was opened by another request: never reuse one here. */
        bad |= curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    }
    return bad;
}

void agx_http_response_clear(agx_http_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    agx_kv_free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

/* Whether the attempt got as far as a connection (and so may have delivered the request). */
static void note_sent(CURL *h, const agx_http_request *req)
{
    curl_off_t connected = 0;
    if (!req->maybe_sent)
        return;
    if (curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected) != CURLE_OK || connected > 0)
        *req->maybe_sent = 1;
}

int agx_http_perform(const agx_http_request *req_in, agx_http_response *resp, agx_error *err)
{
    memset(resp, 0, sizeof *resp);
    if (!req_in || !req_in->method || !req_in->url)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "HTTP request without method or URL");
    agx_http_request copy;
    const agx_http_request *req = v2(req_in, &copy);
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return agx_error_set(err, AGX_ERR_INTERNAL, "curl_global_init failed: %s",
                             curl_easy_strerror(curl_init_rc));
    resp->headers = agx_kv_new();
    resp->body = calloc(1, 1);
    int oom = 0;
    struct curl_slist *hdrs = resp->headers && resp->body ? build_headers(req, &oom) : NULL;
    CURL *h = !hdrs ? NULL : req->share ? share_handle_get(req->share) : curl_easy_init();
    if (!h) {
        curl_slist_free_all(hdrs);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory preparing %s %s", req->method,
                             req->url);
    }
    transfer t = {.req = req, .resp = resp, .cap = 1, .handle = h,
                  .max = req->max_body ? req->max_body : AGX_HTTP_DEFAULT_MAX_BODY};
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = 0;
    if (req->connect_to && *req->connect_to &&
        !(t.connect_to = curl_slist_append(NULL, req->connect_to))) {
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory preparing %s %s", req->method,
                           req->url);
    } else if (setup_handle(h, req, &t, hdrs, errbuf)) {
        rc = agx_error_set(err, AGX_ERR_INTERNAL, "libcurl refused an option for %s %s",
                           req->method, req->url);
    } else {
        CURLcode cc = curl_easy_perform(h);
        note_sent(h, req);
        if (cc != CURLE_OK && req->abort && agx_http_aborted(req->abort))
            rc = agx_error_set(err, AGX_ERR_CANCELLED, "%s %s: aborted", req->method, req->url);
        else if (cc != CURLE_OK)
            rc = transfer_error(req, &t, cc, errbuf, err);
        else
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    if (req->share) /* kept, with its connections, for this thread's next request; reset so no */
        curl_easy_reset(h); /* pointer into this call's stack or lists outlives it */
    else
        curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(t.connect_to);
    return rc;
}

/* ---- status → error ---- */

/* The service's own one-line explanation: {"message": "..."} (Docker, Kubernetes, Daytona) or
 * {"error": "..."}. */
static void body_message(const agx_http_response *resp, char *out, size_t n)
{
    out[0] = '\0';
    if (!resp->body || !resp->body_len)
        return;
    json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (!j)
        return;
    json_t *m = json_object_get(j, "message");
    if (!json_is_string(m))
        m = json_object_get(j, "error");
    if (json_is_string(m))
        snprintf(out, n, "%s", json_string_value(m));
    json_decref(j);
}

int agx_http_check_status(const agx_http_response *resp, const char *what, agx_error *err)
{
    long s = resp->status;
    if (s >= 200 && s < 300)
        return 0;
    int code = AGX_ERR_BACKEND, retriable = 0;
    if (s == 400 || s == 422)
        code = AGX_ERR_INVALID_ARGUMENT;
    else if (s == 404)
        code = AGX_ERR_NOT_FOUND;
    else if (s == 409)
        code = AGX_ERR_CONFLICT;
    else if (s == 429)
        code = AGX_ERR_RATE_LIMITED, retriable = 1;
    else if (s >= 500)
        retriable = 1;
    char msg[384];
    body_message(resp, msg, sizeof msg);
    agx_error_set(err, code, "%s: HTTP %ld%s%s", what, s, msg[0] ? ": " : "", msg);
    if (err) {
        err->retriable = retriable;
        agx_error_set_detail(err, resp->body ? resp->body : "", resp->body_len);
    }
    return code;
}

/* ---- retries ---- */

int agx_http_retry_default(int rc, const agx_http_response *resp, const agx_error *err, void *user)
{
    (void)user;
    if (rc != 0)
        return err && err->retriable;
    return resp->status == 429 || resp->status == 502 || resp->status == 503 ||
           resp->status == 504;
}

static int64_t retry_after_ms(const agx_http_response *resp, const char *name)
{
    const char *v = resp->headers && name ? agx_kv_get(resp->headers, name) : NULL;
    if (!v || !isdigit((unsigned char)*v))
        return -1;
    char *end;
    long secs = strtol(v, &end, 10);
    return *end || secs < 0 || secs > 86400 ? -1 : (int64_t)secs * 1000;
}

static int64_t backoff_ms(const agx_http_retry *r, int attempt, const agx_http_response *resp)
{
    int64_t cap = r->max_delay_ms > 0 ? r->max_delay_ms : 10000;
    int64_t d = r->base_delay_ms > 0 ? r->base_delay_ms : 100;
    for (int i = 1; i < attempt && d < cap; i++)
        d *= 2;
    uint16_t jitter = 0;
    if (getrandom(&jitter, sizeof jitter, GRND_NONBLOCK) != (ssize_t)sizeof jitter)
        jitter = 0;
    d = d / 2 + (int64_t)(jitter % (uint16_t)(d / 2 + 1)); /* [d/2, d] spreads a herd of callers */
    int64_t ra = retry_after_ms(resp, "retry-after");
    int64_t rb = retry_after_ms(resp, r->retry_after_header);
    if (rb > ra)
        ra = rb;
    if (ra > d)
        d = ra;
    return d < cap ? d : cap;
}

int agx_http_perform_retry(const agx_http_request *req, const agx_http_retry *retry,
                           agx_http_response *resp, agx_error *err)
{
    int max = retry && retry->max_attempts > 0 ? retry->max_attempts : 1;
    agx_http_retry_fn should = retry && retry->should_retry ? retry->should_retry
                                                            : agx_http_retry_default;
    if (req && req->sink)
        max = 1;
    for (int attempt = 1;; attempt++) {
        int rc = agx_http_perform(req, resp, err);
        if (attempt >= max || !should(rc, resp, err, retry ? retry->user : NULL))
            return rc;
        int64_t wait = backoff_ms(retry, attempt, resp);
        if (retry->deadline_ms && agx_clock_ms() + wait >= retry->deadline_ms)
            return rc;
        agx_http_response_clear(resp);
        agx_clock_sleep_ms(wait);
    }
}
