/* docker.c — bundle → Docker image on the build host, through the Docker Engine API (no docker
 * CLI): POST /images/create?fromSrc=- streams the bundle tarball in, with `changes` giving the
 * image a VOLUME at the prefix (so a carrier container can lend it with --volumes-from), a CMD
 * running agentix-server, and agentix.bundle.* labels; then POST /images/{id}/tag adds :latest.
 * Talks HTTP over the unix socket of $DOCKER_HOST (default /var/run/docker.sock) with libcurl. */
#include "runtime/bundle/bundle_internal.h"

#include "agentix/backend/labels.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AGX_DOCKER_DEFAULT_SOCK "/var/run/docker.sock"
#define AGX_DOCKER_REPLY_MAX (1u << 20)
#define AGX_DOCKER_DEFAULT_TIMEOUT_S 600

typedef struct docker_reply {
    char *buf;
    size_t len;
    int overflow;
} docker_reply;

static size_t docker_on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    docker_reply *r = user;
    size_t n = size * nmemb;
    if (r->len + n > AGX_DOCKER_REPLY_MAX) {
        r->overflow = 1; /* keep the head: it holds the error, if any */
        return n;
    }
    char *grown = realloc(r->buf, r->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, ptr, n);
    r->len += n;
    grown[r->len] = '\0';
    r->buf = grown;
    return n;
}

static size_t docker_on_read(char *buf, size_t size, size_t nitems, void *user)
{
    FILE *f = user;
    size_t n = fread(buf, 1, size * nitems, f);
    return ferror(f) ? CURL_READFUNC_ABORT : n;
}

typedef struct docker_conn {
    char sock[512]; /* unix socket path, or "" for tcp */
    char base[512]; /* http://docker or http://host:port */
} docker_conn;

static int docker_conn_init(docker_conn *c, const char *host, agx_error *err)
{
    memset(c, 0, sizeof *c);
    if (!host || !*host)
        host = getenv("DOCKER_HOST");
    if (!host || !*host)
        host = "unix://" AGX_DOCKER_DEFAULT_SOCK;
    if (strncmp(host, "unix://", 7) == 0 && strlen(host + 7) < sizeof c->sock && host[7] == '/') {
        snprintf(c->sock, sizeof c->sock, "%s", host + 7);
        snprintf(c->base, sizeof c->base, "http://docker");
        return 0;
    }
    if (strncmp(host, "tcp://", 6) == 0 && strlen(host + 6) + 8 < sizeof c->base &&
        !strpbrk(host + 6, "/?#@ ")) {
        snprintf(c->base, sizeof c->base, "http://%s", host + 6);
        return 0;
    }
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "DOCKER_HOST '%s' is not supported (use unix:///path/to/docker.sock or "
                         "tcp://host:port)",
                         host);
}

/* The message of an Engine API reply: {"message": …} for a refused request, or the last
 * {"error": …} line of a progress stream. NULL when there is none. */
static const char *docker_reply_error(const docker_reply *r, char *out, size_t n)
{
    const char *found = NULL;
    for (const char *line = r->buf; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        json_t *j = json_loadb(line, len, 0, NULL);
        const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
        if (!msg && j)
            msg = json_string_value(json_object_get(j, "message"));
        if (msg) {
            snprintf(out, n, "%s", msg);
            found = out;
        }
        json_decref(j);
        line = end ? end + 1 : NULL;
    }
    return found;
}

/* The image id an import reports as its last status line: {"status":"sha256:…"}. */
static int docker_reply_image_id(const docker_reply *r, char *out, size_t n)
{
    int ok = 0;
    for (const char *line = r->buf; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        json_t *j = json_loadb(line, len, 0, NULL);
        const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
        if (st && strncmp(st, "sha256:", 7) == 0 && strlen(st) < n) {
            snprintf(out, n, "%s", st);
            ok = 1;
        }
        json_decref(j);
        line = end ? end + 1 : NULL;
    }
    return ok;
}

static int docker_post(const docker_conn *c, const char *path_query, FILE *body, long timeout_s,
                       docker_reply *reply, long *status, agx_error *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot start libcurl");
    char url[8192];
    snprintf(url, sizeof url, "%s%s", c->base, path_query);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-tar");
    hdrs = hdrs ? curl_slist_append(hdrs, "Expect:") : NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (c->sock[0])
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->sock);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(h, CURLOPT_READFUNCTION, docker_on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, body);
        struct stat st;
        long pos = ftell(body);
        if (fstat(fileno(body), &st) == 0 && S_ISREG(st.st_mode) && pos >= 0 && st.st_size >= pos)
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(st.st_size - pos));
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, docker_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    CURLcode cc = hdrs ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT)
        return agx_error_set(err, cc == CURLE_COULDNT_CONNECT ? AGX_ERR_UNAVAILABLE : AGX_ERR_TIMEOUT,
                             "Docker Engine at %s does not answer: %s (is dockerd running? set "
                             "DOCKER_HOST)",
                             c->sock[0] ? c->sock : c->base, curl_easy_strerror(cc));
    if (cc != CURLE_OK)
        return agx_error_set(err, AGX_ERR_BACKEND, "Docker Engine request failed: %s",
                             curl_easy_strerror(cc));
    return 0;
}

/* Appends "&key=<escaped value>" to q. */
static int docker_query_add(CURL *esc, char *q, size_t n, const char *key, const char *value)
{
    char *e = curl_easy_escape(esc, value, 0);
    if (!e)
        return -1;
    size_t used = strlen(q);
    int w = snprintf(q + used, n - used, "&%s=%s", key, e);
    curl_free(e);
    return w < 0 || (size_t)w >= n - used ? -1 : 0;
}

static int docker_import_query(const char *repo, const char *tag, const char *name,
                               const char *digest, char *q, size_t n, agx_error *err)
{
    CURL *esc = curl_easy_init();
    if (!esc)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot start libcurl");
    char label[512];
    snprintf(q, n, "/images/create?fromSrc=-");
    int bad = docker_query_add(esc, q, n, "repo", repo) || docker_query_add(esc, q, n, "tag", tag) ||
              docker_query_add(esc, q, n, "changes", "VOLUME " AGX_BUNDLE_PREFIX) ||
              docker_query_add(esc, q, n, "changes",
                               "CMD [\"" AGX_BUNDLE_PREFIX "/bin/agentix-server\"]");
    snprintf(label, sizeof label, "LABEL " AGX_LABEL_BUNDLE_FORMAT "=%d", AGX_BUNDLE_FORMAT);
    bad = bad || docker_query_add(esc, q, n, "changes", label);
    snprintf(label, sizeof label, "LABEL " AGX_LABEL_BUNDLE_DIGEST "=%s", digest);
    bad = bad || docker_query_add(esc, q, n, "changes", label);
    snprintf(label, sizeof label, "LABEL " AGX_LABEL_BUNDLE_NAME "=%s", name);
    bad = bad || docker_query_add(esc, q, n, "changes", label);
    bad = bad || docker_query_add(esc, q, n, "changes", "LABEL " AGX_LABEL_BUNDLE_PREFIX "=" AGX_BUNDLE_PREFIX);
    bad = bad || docker_query_add(esc, q, n, "message", "agentix build");
    curl_easy_cleanup(esc);
    return bad ? agx_error_set(err, AGX_ERR_LIMIT, "Docker import request too long") : 0;
}

static int docker_check(long status, long want, const docker_reply *r, const char *what,
                        agx_error *err)
{
    if (r->overflow)
        return agx_error_set(err, AGX_ERR_LIMIT, "Docker Engine reply to %s is larger than %u bytes",
                             what, AGX_DOCKER_REPLY_MAX);
    char msg[AGX_ERROR_MESSAGE_MAX / 2];
    const char *e = docker_reply_error(r, msg, sizeof msg);
    if (status == want && !e)
        return 0;
    int rc = agx_error_set(err, AGX_ERR_BACKEND, "Docker Engine refused %s (HTTP %ld): %s", what,
                           status, e ? e : "no message");
    agx_error_set_detail(err, r->buf ? r->buf : "", (size_t)-1);
    return rc;
}

int agx_bundle_docker_import(FILE *tar, const char *name, const char *digest,
                             const agx_bundle_docker_options *opts, char *image_id, size_t nid,
                             agx_error *err)
{
    char repo[AGX_BUNDLE_NAME_MAX], tag[AGX_BUNDLE_NAME_MAX], q[4096];
    if (!tar || !name || !digest || strncmp(digest, "sha256:", 7) != 0 || !image_id || nid < 72)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "docker import needs a tar stream, a name, a sha256 digest and room "
                             "for the image id");
    int rc = agx_bundle_name_split(name, repo, sizeof repo, tag, sizeof tag, err);
    docker_conn c;
    if (rc == 0)
        rc = docker_conn_init(&c, opts ? opts->docker_host : NULL, err);
    if (rc == 0)
        rc = docker_import_query(repo, tag, name, digest, q, sizeof q, err);
    if (rc != 0)
        return rc;
    long timeout = opts && opts->timeout_s > 0 ? opts->timeout_s : AGX_DOCKER_DEFAULT_TIMEOUT_S;
    docker_reply r = {0};
    long status = 0;
    rc = docker_post(&c, q, tar, timeout, &r, &status, err);
    if (rc == 0)
        rc = docker_check(status, 200, &r, "the image import", err);
    if (rc == 0 && !docker_reply_image_id(&r, image_id, nid))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "Docker import did not report an image id");
    free(r.buf);
    if (rc != 0 || strcmp(tag, "latest") == 0)
        return rc;
    /* The :latest alias, so `bundle = NAME` finds the newest build. */
    CURL *esc = curl_easy_init();
    char *erepo = esc ? curl_easy_escape(esc, repo, 0) : NULL;
    int ok = erepo != NULL;
    if (ok)
        snprintf(q, sizeof q, "/images/%s/tag?repo=%s&tag=latest", image_id, erepo);
    curl_free(erepo);
    curl_easy_cleanup(esc);
    if (!ok)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    memset(&r, 0, sizeof r);
    rc = docker_post(&c, q, NULL, 30, &r, &status, err);
    if (rc == 0)
        rc = docker_check(status, 201, &r, "tagging the image :latest", err);
    free(r.buf);
    return rc;
}
