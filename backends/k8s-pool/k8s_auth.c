/* k8s_auth.c — the credentials each API request carries (host → backend → Kubernetes API): a
 * static token, a token file re-read as it rotates (projected service-account tokens), basic auth,
 * or an exec credential plugin (client-go's ExecCredential protocol) whose result is cached until
 * its expirationTimestamp and re-run when the server answers 401. */
#include "backends/k8s-pool/k8s_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TOKEN_FILE_REREAD_MS 10000
#define EXEC_TIMEOUT_MS 30000
#define EXEC_MAX_OUTPUT (1u << 20)

static char **exec_env(const agx_k8s_exec *e)
{
    size_t host = 0, extra = agx_kv_count(e->env);
    while (environ[host])
        host++;
    char **env = calloc(host + extra + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < host; i++)
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) != 0 && !(env[n++] = strdup(environ[i])))
            goto oom;
    for (size_t i = 0; i < extra; i++)
        if (asprintf(&env[n++], "%s=%s", agx_kv_key_at(e->env, i), agx_kv_value_at(e->env, i)) < 0)
            goto oom;
    if (asprintf(&env[n++],
                 "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                 "\"spec\":{\"interactive\":false%s%s}}",
                 e->api_version, e->cluster_json ? ",\"cluster\":" : "",
                 e->cluster_json ? e->cluster_json : "") < 0)
        goto oom;
    return env;
oom:
    for (size_t i = 0; i < n; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* Runs the plugin, returning its stdout (bounded in time and size). */
static int exec_run(const agx_k8s_exec *e, char **out, agx_error *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return agx_error_set(err, AGX_ERR_IO, "exec credential plugin: pipe: %s", strerror(errno));
    char **env = exec_env(e);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int src = env ? posix_spawnp(&pid, e->argv[0], &fa, NULL, e->argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free_env(env);
    close(fds[1]);
    if (src != 0) {
        close(fds[0]);
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "exec credential plugin '%s': %s",
                             e->argv[0], strerror(src));
    }
    char *buf = malloc(EXEC_MAX_OUTPUT + 1);
    size_t n = 0;
    int64_t deadline = agx_clock_ms() + EXEC_TIMEOUT_MS;
    int rc = buf ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    while (rc == 0) {
        int64_t left = deadline - agx_clock_ms();
        struct pollfd p = {fds[0], POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT, "exec credential plugin '%s' gave no answer "
                               "within %d s", e->argv[0], EXEC_TIMEOUT_MS / 1000);
            break;
        }
        ssize_t r = read(fds[0], buf + n, EXEC_MAX_OUTPUT - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == EXEC_MAX_OUTPUT)
            rc = agx_error_set(err, AGX_ERR_LIMIT, "exec credential plugin '%s' wrote more than %u bytes",
                               e->argv[0], EXEC_MAX_OUTPUT);
    }
    close(fds[0]);
    if (rc)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = agx_error_set(err, AGX_ERR_BACKEND, "exec credential plugin '%s' failed (status %d)",
                           e->argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int64_t expiry_ms(const char *ts)
{
    int64_t at = agx_time_parse_ms(ts);
    if (!at)
        return INT64_MAX; /* no expiry: cached until a 401 */
    int64_t left = at - agx_clock_wall_ms() - 10000; /* refresh a little early */
    return agx_clock_ms() + (left > 0 ? left : 0);
}

static int exec_refresh(agx_k8s_conn *c, agx_error *err)
{
    char *out = NULL;
    int rc = exec_run(c->exec, &out, err);
    if (rc)
        return rc;
    json_t *doc = json_loads(out, 0, NULL), *st = json_object_get(doc, "status");
    free(out);
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    const char *token = json_string_value(json_object_get(st, "token"));
    const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
    const char *key = json_string_value(json_object_get(st, "clientKeyData"));
    if (!api || strcmp(api, c->exec->api_version) != 0 || !json_is_object(st) ||
        (!token && !(cert && key))) {
        json_decref(doc);
        return agx_error_set(err, AGX_ERR_BACKEND,
                             "exec credential plugin '%s' did not print an ExecCredential of "
                             "apiVersion %s with status.token or clientCertificateData+clientKeyData",
                             c->exec->argv[0], c->exec->api_version);
    }
    free(c->cached_token);
    free(c->exec_cert);
    free(c->exec_key);
    c->cached_token = token ? strdup(token) : NULL;
    c->exec_cert = cert ? strdup(cert) : NULL;
    c->exec_key = key ? strdup(key) : NULL;
    c->cached_until_ms = expiry_ms(json_string_value(json_object_get(st, "expirationTimestamp")));
    json_decref(doc);
    return 0;
}

static int token_file_refresh(agx_k8s_conn *c, agx_error *err)
{
    char *tok = NULL;
    int rc = agx_file_read(c->token_file, 64 * 1024, 0, &tok, NULL, err);
    if (rc)
        return rc;
    tok[strcspn(tok, "\r\n")] = '\0';
    free(c->cached_token);
    c->cached_token = tok;
    c->cached_until_ms = agx_clock_ms() + TOKEN_FILE_REREAD_MS;
    return 0;
}

static char *basic_header(const char *userpass)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(userpass);
    char *out = malloc(6 + (n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    o += sprintf(o, "Basic ");
    const unsigned char *s = (const unsigned char *)userpass;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

int agx_k8s_cred_get(agx_k8s_conn *c, int force_refresh, agx_k8s_cred *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    int stale = force_refresh || agx_clock_ms() >= c->cached_until_ms;
    if (c->exec && (stale || (!c->cached_token && !c->exec_cert)))
        rc = exec_refresh(c, err);
    else if (!c->exec && !c->token && c->token_file && stale)
        rc = token_file_refresh(c, err);
    const char *token = c->token ? c->token : c->cached_token;
    if (rc == 0 && token && asprintf(&out->authorization, "Bearer %s", token) < 0)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    else if (rc == 0 && !token && c->basic && !(out->authorization = basic_header(c->basic)))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (rc == 0 && c->exec_cert &&
        (!(out->cert = strdup(c->exec_cert)) || !(out->key = strdup(c->exec_key))))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    pthread_mutex_unlock(&c->mu);
    if (rc)
        agx_k8s_cred_clear(out);
    return rc;
}

void agx_k8s_cred_clear(agx_k8s_cred *cr)
{
    free(cr->authorization);
    free(cr->cert);
    free(cr->key);
    memset(cr, 0, sizeof *cr);
}
