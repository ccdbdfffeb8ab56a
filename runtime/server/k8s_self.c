/* k8s_self.c — a claimed Kubernetes pod deletes itself when its expiry passes (docs/K8S.md,
 * "expiry"). In a k8s-pool pod the server ending itself is not enough: restartPolicy Always makes
 * the kubelet restart the container, and the pod object — labelled claimed, useless to every host —
 * stays until a k8s-pool backend's reaper or `agentix gc` deletes it. Kubernetes has no deadline a
 * host could extend, so the pod is the one actor left: just before draining on expiry (expiry.c),
 * the server sends DELETE of its own pod (grace 0, UID precondition so a later pod of the same name
 * is never hit) with the pod's service-account token, over HTTPS to the API server with the
 * cluster CA verified, bounded to AGX_SELF_DELETE_MS in all, and then drains whatever the answer.
 * The token can delete only this pod: the pool's RBAC and admission policy say so (docs/K8S.md).
 *
 * Configured from the pod's environment (the pool manifest sets it; read once at start, each value
 * validated; any problem disables this with one log line):
 *   AGENTIX_K8S_SELF_DELETE=1             on (only with AGENTIX_AUTH=claim: only claimed pods expire)
 *   AGENTIX_POD_NAME / _NAMESPACE / _UID  the downward API's metadata.name / namespace / uid
 *   KUBERNETES_SERVICE_HOST / _PORT       the API server (an IP address, as the kubelet gives it)
 *   AGENTIX_K8S_TOKEN_FILE                default /var/run/secrets/kubernetes.io/serviceaccount/token,
 *                                         read at the moment of the delete (projected tokens rotate)
 *   AGENTIX_K8S_CA_FILE                   default .../serviceaccount/ca.crt
 * It runs on the loop thread and blocks it for at most AGX_SELF_DELETE_MS: the server is ending,
 * nothing it still serves is worth more than the pod object not outliving its sandbox. */
#include "runtime/server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGX_SELF_DELETE_MS 5000   /* connect + TLS + request + status line, in all */
#define ANSWER_MAX 4096           /* bytes of the answer read: the status line is all we need */
#define TOKEN_FILE_MAX (16 << 10) /* a service-account token is ~1 KiB */
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define MSG_MAX 256

typedef struct srv_k8s_self {
    char name[254], ns[64], uid[65];
    char ip[INET6_ADDRSTRLEN];
    char authority[INET6_ADDRSTRLEN + 8]; /* Host: ip:port, an IPv6 address in brackets */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char token_path[PATH_MAX], ca_path[PATH_MAX];
} srv_k8s_self;

/* ---- configuration ---- */

/* 1..max of [a-z0-9-] (and '.' when dots), alphanumeric at both ends: a DNS label or subdomain. */
static bool dns_name(const char *v, size_t max, bool dots)
{
    size_t n = strlen(v);
    if (n == 0 || n > max || v[0] == '-' || v[0] == '.' || v[n - 1] == '-' || v[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
              (dots && v[i] == '.')))
            return false;
    return true;
}

static bool uid_ok(const char *v)
{
    size_t n = strlen(v);
    return n > 0 && n <= 64 && strspn(v, "0123456789abcdefABCDEF-") == n;
}

/* The variable's value, or NULL with msg naming it. */
static const char *need(const char *name, char *msg, size_t len)
{
    const char *v = getenv(name);
    if (!v || !*v)
        srv_bad(msg, len, "%s is not set (in a pod of the pool manifest, Kubernetes sets it)", name);
    return v && *v ? v : NULL;
}

static int pod_identity(srv_k8s_self *k, char *msg, size_t len)
{
    const char *name = need("AGENTIX_POD_NAME", msg, len);
    const char *ns = name ? need("AGENTIX_POD_NAMESPACE", msg, len) : NULL;
    const char *uid = ns ? need("AGENTIX_POD_UID", msg, len) : NULL;
    if (!uid)
        return -1;
    if (!dns_name(name, sizeof k->name - 1, true))
        return srv_bad(msg, len, "AGENTIX_POD_NAME='%.64s' is not a pod name", name);
    if (!dns_name(ns, sizeof k->ns - 1, false))
        return srv_bad(msg, len, "AGENTIX_POD_NAMESPACE='%.64s' is not a namespace", ns);
    if (!uid_ok(uid))
        return srv_bad(msg, len, "AGENTIX_POD_UID='%.64s' is not a UID", uid);
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->ns, sizeof k->ns, "%s", ns);
    snprintf(k->uid, sizeof k->uid, "%s", uid);
    return 0;
}

/* KUBERNETES_SERVICE_HOST (an IPv4 or IPv6 address) and _PORT. */
static int api_endpoint(srv_k8s_self *k, char *msg, size_t len)
{
    const char *host = need("KUBERNETES_SERVICE_HOST", msg, len);
    const char *port = host ? need("KUBERNETES_SERVICE_PORT", msg, len) : NULL;
    if (!port)
        return -1;
    char *end = NULL;
    long p = strlen(port) <= 5 && strspn(port, "0123456789") == strlen(port) ? strtol(port, &end, 10) : 0;
    if (p < 1 || p > 65535)
        return srv_bad(msg, len, "KUBERNETES_SERVICE_PORT='%.16s' is not a port", port);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&k->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&k->addr;
    memset(&k->addr, 0, sizeof k->addr);
    if (strlen(host) < sizeof k->ip && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        k->addr_len = sizeof *v4;
        snprintf(k->authority, sizeof k->authority, "%s:%ld", host, p);
    } else if (strlen(host) < sizeof k->ip && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        k->addr_len = sizeof *v6;
        snprintf(k->authority, sizeof k->authority, "[%s]:%ld", host, p);
    } else {
        return srv_bad(msg, len, "KUBERNETES_SERVICE_HOST='%.64s' is not an IP address", host);
    }
    snprintf(k->ip, sizeof k->ip, "%s", host);
    return 0;
}

/* A file the server can read: env's value, else the service-account folder's file def. */
static int sa_file(const char *env, const char *def, char *out, size_t cap, char *msg, size_t len)
{
    const char *v = getenv(env);
    int n = snprintf(out, cap, "%s", v && *v ? v : def);
    if (n < 0 || (size_t)n >= cap)
        return srv_bad(msg, len, "%s is too long", env);
    if (access(out, R_OK) != 0)
        return srv_bad(msg, len, "cannot read %s '%s' (%s): is the service-account token mounted "
                                 "(automountServiceAccountToken)?", env, out, strerror(errno));
    return 0;
}

static int load(srv_k8s_self *k, const srv_server *s, char *msg, size_t len)
{
    if (s->token.mode != SRV_AUTH_CLAIM)
        return srv_bad(msg, len, "only a runtime in claim mode (AGENTIX_AUTH=claim) deletes its "
                                 "pod: a pool-wide token's pods have no per-claim expiry");
    if (pod_identity(k, msg, len) != 0 || api_endpoint(k, msg, len) != 0 ||
        sa_file("AGENTIX_K8S_TOKEN_FILE", SA_DIR "/token", k->token_path, sizeof k->token_path, msg,
                len) ||
        sa_file("AGENTIX_K8S_CA_FILE", SA_DIR "/ca.crt", k->ca_path, sizeof k->ca_path, msg, len))
        return -1;
    return 0;
}

void srv_k8s_self_init(srv_server *s)
{
    const char *on = getenv("AGENTIX_K8S_SELF_DELETE");
    if (!on || !*on || strcmp(on, "0") == 0)
        return;
    char msg[MSG_MAX];
    srv_k8s_self *k = calloc(1, sizeof *k);
    if (strcmp(on, "1") != 0)
        srv_bad(msg, sizeof msg, "AGENTIX_K8S_SELF_DELETE='%.16s' must be 1 or 0", on);
    else if (!k)
        srv_bad(msg, sizeof msg, "out of memory");
    if (!k || strcmp(on, "1") != 0 || load(k, s, msg, sizeof msg) != 0) {
        fprintf(stderr, "agentix-server: will NOT delete its pod at expiry: %s\n", msg);
        free(k);
        return;
    }
    s->k8s_self = k;
    fprintf(stderr, "agentix-server: deletes pod %s/%s at expiry (API %s)\n", k->ns, k->name,
            k->authority);
}

void srv_k8s_self_free(srv_server *s)
{
    free(s->k8s_self);
    s->k8s_self = NULL;
}

/* ---- the answer ---- */

int srv_http_status(const char *buf, size_t len)
{
    static const char prefix[] = "HTTP/1.";
    size_t p = sizeof prefix - 1;
    if (len < p + 6 || memcmp(buf, prefix, p) != 0 || (buf[p] != '0' && buf[p] != '1') ||
        buf[p + 1] != ' ')
        return -1;
    int status = 0;
    for (size_t i = p + 2; i < p + 5; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        status = status * 10 + (buf[i] - '0');
    }
    char after = buf[p + 5];
    return status >= 100 && status <= 599 && (after == ' ' || after == '\r') ? status : -1;
}

/* ---- the exchange: blocking in effect, each wait bounded by the one deadline ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 0 once fd is ready for events, -1 when the deadline passed or poll failed. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Waits for what the last TLS call on ssl (which returned rc) wants; -1 on any other outcome. */
static int tls_wait(SSL *ssl, int rc, int fd, int64_t deadline)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(fd, POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(fd, POLLOUT, deadline);
    default:
        return -1;
    }
}

static int dial(const srv_k8s_self *k, int64_t deadline, char *msg, size_t len)
{
    int fd = socket(k->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return srv_bad(msg, len, "socket: %s", strerror(errno));
    int rc = connect(fd, (const struct sockaddr *)&k->addr, k->addr_len);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (rc != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
        rc = soerr ? (errno = soerr, -1) : 0;
    if (rc != 0) {
        srv_bad(msg, len, "cannot connect to %s: %s", k->authority,
                errno == EINPROGRESS ? "timed out" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static SSL_CTX *tls_context(const srv_k8s_self *k, char *msg, size_t len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, k->ca_path, NULL) != 1) {
        srv_bad(msg, len, "cannot load the cluster CA '%s'", k->ca_path);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static int tls_handshake(SSL *ssl, const srv_k8s_self *k, int fd, int64_t deadline, char *msg,
                         size_t len)
{
    if (SSL_set_fd(ssl, fd) != 1 || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), k->ip) != 1)
        return srv_bad(msg, len, "cannot set up TLS");
    int rc;
    while ((rc = SSL_connect(ssl)) != 1)
        if (tls_wait(ssl, rc, fd, deadline) != 0) {
            long v = SSL_get_verify_result(ssl);
            return srv_bad(msg, len, "TLS with %s failed: %s", k->authority,
                           v != X509_V_OK ? X509_verify_cert_error_string(v) : "handshake failed or timed out");
        }
    return 0;
}

static int tls_send(SSL *ssl, int fd, const char *data, size_t n, int64_t deadline)
{
    size_t off = 0;
    while (off < n) {
        int rc = SSL_write(ssl, data + off, (int)(n - off));
        if (rc > 0)
            off += (size_t)rc;
        else if (tls_wait(ssl, rc, fd, deadline) != 0)
            return -1;
    }
    return 0;
}

/* Reads until the status line is complete, the peer closes, or ANSWER_MAX bytes. */
static size_t tls_status_line(SSL *ssl, int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t n = 0;
    while (n < cap && !memchr(buf, '\n', n)) {
        int rc = SSL_read(ssl, buf + n, (int)(cap - n));
        if (rc > 0)
            n += (size_t)rc;
        else if (tls_wait(ssl, rc, fd, deadline) != 0)
            break;
    }
    return n;
}

/* The token file's content (trimmed; printable ASCII only) into tok; its length or -1. */
static int read_token(const char *path, char *tok, size_t cap, char *msg, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (size_t)st.st_size >= cap) {
        if (fd >= 0)
            close(fd);
        return srv_bad(msg, len, "cannot read the service-account token '%s' (a file of 1 to "
                                 "%zu bytes)", path, cap - 1);
    }
    ssize_t n = read(fd, tok, cap - 1);
    close(fd);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (tok[i] < 0x21 || tok[i] > 0x7e)
            n = -1;
    if (n <= 0)
        return srv_bad(msg, len, "the service-account token '%s' is empty or not printable", path);
    tok[n] = '\0';
    return (int)n;
}

/* The DELETE request: text into req (cap bytes); its length or -1. */
static int delete_request(const srv_k8s_self *k, const char *tok, char *req, size_t cap)
{
    char body[256];
    int b = snprintf(body, sizeof body, "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"%s\"}}",
                     k->uid);
    int n = snprintf(req, cap, "DELETE /api/v1/namespaces/%s/pods/%s HTTP/1.1\r\nHost: %s\r\n"
                               "Authorization: Bearer %s\r\nAccept: application/json\r\n"
                               "Content-Type: application/json\r\nContent-Length: %d\r\n"
                               "User-Agent: agentix-server\r\nConnection: close\r\n\r\n%s",
                     k->ns, k->name, k->authority, tok, b, body);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* The DELETE over TLS: the answer's status, or -1 with msg. */
static int exchange(const srv_k8s_self *k, const char *req, size_t req_len, char *msg, size_t len)
{
    int64_t deadline = now_ms() + AGX_SELF_DELETE_MS;
    SSL_CTX *ctx = tls_context(k, msg, len);
    int fd = ctx ? dial(k, deadline, msg, len) : -1;
    SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    int status = -1;
    char answer[ANSWER_MAX];
    if (ssl && tls_handshake(ssl, k, fd, deadline, msg, len) == 0) {
        if (tls_send(ssl, fd, req, req_len, deadline) != 0)
            srv_bad(msg, len, "sending the request failed or timed out");
        else if ((status = srv_http_status(answer, tls_status_line(ssl, fd, answer, sizeof answer,
                                                                    deadline))) < 0)
            srv_bad(msg, len, "no HTTP status line within %d ms", AGX_SELF_DELETE_MS);
    } else if (fd >= 0 && !ssl) {
        srv_bad(msg, len, "cannot set up TLS");
    }
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return status;
}

void srv_k8s_self_delete(srv_server *s)
{
    const srv_k8s_self *k = s->k8s_self;
    if (!k || s->draining)
        return;
    char msg[MSG_MAX] = "", tok[TOKEN_FILE_MAX], req[TOKEN_FILE_MAX + 1024];
    int status = -1, n = read_token(k->token_path, tok, sizeof tok, msg, sizeof msg);
    int req_len = n > 0 ? delete_request(k, tok, req, sizeof req) : -1;
    if (n > 0 && req_len < 0)
        srv_bad(msg, sizeof msg, "the request does not fit");
    if (req_len > 0)
        status = exchange(k, req, (size_t)req_len, msg, sizeof msg);
    memset(tok, 0, sizeof tok);
    memset(req, 0, sizeof req);
    if (status >= 0)
        fprintf(stderr, "agentix-server: DELETE of its pod %s/%s answered %d%s\n", k->ns, k->name,
                status, status / 100 == 2 ? "" : " (the pod stays until a reaper or gc)");
    else
        fprintf(stderr, "agentix-server: could not delete its pod %s/%s: %s\n", k->ns, k->name, msg);
}
