/* sio_tls.c — TLS for https:// runtime URLs, on the dialled libuv socket (sio_dial.c), with
 * OpenSSL. The SSL object talks to the socket through a tiny BIO of ours: its reads take the
 * ciphertext of the current read callback (no copy, no per-connection input buffer), its writes go
 * straight to sio_dial_send (try the socket, keep only what it does not take). Plaintext is
 * decrypted into the dialer's shared buffer and fed to the websocket like plain http's bytes, so
 * https runs through the same parser at the same speed. SSL_MODE_RELEASE_BUFFERS gives OpenSSL's
 * record buffers back whenever a connection is idle.
 *
 * Verification is always on: the chain must lead to the configured CA (file and/or hashed
 * folder) or OpenSSL's default store, and the certificate must name the URL's host (DNS name or
 * IP address). One SSL_CTX per CA setting per dialer. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/sio_client_impl.h"

struct sio_tls_ctx {
    sio_tls_ctx *next;
    char *ca_file, *ca_dir;
    SSL_CTX *ctx;
};

/* ---- the BIO between OpenSSL and the socket ---- */

static BIO_METHOD *bio_method;

static int bio_write(BIO *b, const char *p, int n)
{
    agx_sio_client *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    return sio_dial_send(c, (const unsigned char *)p, (size_t)n) == 0 ? n : -1;
}

static int bio_read(BIO *b, char *p, int n)
{
    agx_sio_client *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!c->tls_in_len) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t m = c->tls_in_len < (size_t)n ? c->tls_in_len : (size_t)n;
    memcpy(p, c->tls_in, m);
    c->tls_in += m;
    c->tls_in_len -= m;
    return (int)m;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "agentix-uv");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
}

/* ---- contexts ---- */

static bool same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* OpenSSL's queued errors as one line (and the queue emptied). */
static void ssl_errors(char *buf, size_t cap)
{
    unsigned long e;
    size_t n = 0;
    buf[0] = '\0';
    while ((e = ERR_get_error()) && n + 2 < cap) {
        if (n)
            buf[n++] = ';', buf[n++] = ' ';
        ERR_error_string_n(e, buf + n, cap - n);
        n += strlen(buf + n);
    }
    if (!n)
        snprintf(buf, cap, "no detail from OpenSSL");
}

int sio_tls_ctx_get(agx_sio_dialer *d, const char *ca_file, const char *ca_dir, SSL_CTX **out,
                    agx_error *err)
{
    for (sio_tls_ctx *t = d->tls; t; t = t->next)
        if (same(t->ca_file, ca_file) && same(t->ca_dir, ca_dir)) {
            *out = t->ctx;
            return 0;
        }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bio_method_init);
    sio_tls_ctx *t = calloc(1, sizeof *t);
    if (!bio_method || !t || (ca_file && !(t->ca_file = strdup(ca_file))) ||
        (ca_dir && !(t->ca_dir = strdup(ca_dir))) || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        if (t) {
            free(t->ca_file);
            free(t->ca_dir);
            free(t);
        }
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot set up TLS (out of memory)");
    }
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION); /* so a write never needs a read */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(t->ctx, alpn, sizeof alpn - 1);
    int ok = ca_file || ca_dir ? SSL_CTX_load_verify_locations(t->ctx, ca_file, ca_dir)
                               : SSL_CTX_set_default_verify_paths(t->ctx);
    if (!ok) {
        char why[256];
        ssl_errors(why, sizeof why);
        SSL_CTX_free(t->ctx);
        free(t->ca_file);
        free(t->ca_dir);
        free(t);
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "cannot load the CA certificates (ca_file %s, ca_dir %s): %s",
                             ca_file ? ca_file : "-", ca_dir ? ca_dir : "-", why);
    }
    t->next = d->tls;
    d->tls = t;
    *out = t->ctx;
    return 0;
}

void sio_tls_ctx_free_all(agx_sio_dialer *d)
{
    while (d->tls) {
        sio_tls_ctx *t = d->tls;
        d->tls = t->next;
        SSL_CTX_free(t->ctx);
        free(t->ca_file);
        free(t->ca_dir);
        free(t);
    }
}

/* ---- a session ---- */

/* Why the handshake (or a later record) failed, as the dial's or the conn's error. */
static int tls_failed(agx_sio_client *c, int ret)
{
    int e = SSL_get_error(c->ssl, ret);
    long vr = SSL_get_verify_result(c->ssl);
    char why[256];
    if (c->st == DIAL_TLS && vr != X509_V_OK) {
        ERR_clear_error();
        sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE,
                               "TLS: the server's certificate was not accepted: %s (give the CA "
                               "that signed it with ca_file / ca_dir or AGENTIX_CA_FILE)",
                               X509_verify_cert_error_string(vr));
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, sizeof why, "the server ended the TLS session");
    } else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
        snprintf(why, sizeof why, "the connection closed inside a TLS record");
    } else {
        ssl_errors(why, sizeof why);
    }
    if (c->st == DIAL_TLS)
        sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "TLS handshake failed: %s", why);
    else
        sio_conn_set_why(&c->conn, AGX_ERR_UNAVAILABLE, "TLS: %s", why);
    return -1;
}

static bool is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int handshake(agx_sio_client *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return sio_dial_upgrade(c);
    return SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ ? 0 : tls_failed(c, r);
}

int sio_tls_start(agx_sio_client *c, SSL_CTX *ctx)
{
    BIO *bio = NULL;
    if (!c->d->pbuf)
        c->d->pbuf = malloc(SIO_DIAL_RBUF);
    c->ssl = c->d->pbuf ? SSL_new(ctx) : NULL;
    if (c->ssl)
        bio = BIO_new(bio_method);
    if (!bio) {
        sio_client_dial_failed(c, AGX_ERR_NO_MEMORY, "TLS: out of memory");
        return -1;
    }
    BIO_set_data(bio, c);
    SSL_set_bio(c->ssl, bio, bio);
    const char *name = c->tls_name;
    int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name)
                                 : SSL_set_tlsext_host_name(c->ssl, name) &&
                                       SSL_set1_host(c->ssl, name);
    if (!ok) {
        sio_client_dial_failed(c, AGX_ERR_INVALID_ARGUMENT, "TLS: cannot use '%s' as the name "
                                                            "to verify", name);
        return -1;
    }
    SSL_set_connect_state(c->ssl);
    return handshake(c);
}

int sio_tls_read(agx_sio_client *c, const unsigned char *p, size_t n)
{
    c->tls_in = p;
    c->tls_in_len = n;
    int rc = 0;
    if (c->st == DIAL_TLS)
        rc = handshake(c);
    while (rc == 0 && (c->st == DIAL_UPGRADING || c->st == DIAL_OPEN)) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->d->pbuf, (int)SIO_DIAL_RBUF);
        if (r > 0) {
            rc = sio_dial_feed(c, c->d->pbuf, (size_t)r);
            continue;
        }
        if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
            rc = tls_failed(c, r);
        break;
    }
    c->tls_in = NULL;
    c->tls_in_len = 0;
    return rc;
}

int sio_tls_write(agx_sio_client *c, const unsigned char *p, size_t n)
{
    if (!n)
        return 0;
    ERR_clear_error();
    int r = SSL_write(c->ssl, p, (int)n);
    return r == (int)n ? 0 : tls_failed(c, r);
}

void sio_tls_free(agx_sio_client *c)
{
    SSL_free(c->ssl); /* and its BIO */
    c->ssl = NULL;
}
