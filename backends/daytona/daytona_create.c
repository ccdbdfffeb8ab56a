/* daytona_create.c — create for the daytona backend: POST /sandbox (429 and quota refusals
 * retried within the create timeout), poll GET until "started" (Daytona's SDK pacing), start
 * agentix-server through the toolbox when the snapshot's entrypoint does not, fetch the preview
 * URL and token of port 8000, and wait until the runtime answers /health through the proxy. Any
 * failure after the sandbox exists deletes it; a failed POST sweeps by the create's nonce.
 *
 * Options: daytona.start=entrypoint|toolbox (default entrypoint), daytona.server (the server's
 * path for toolbox starts, default /opt/agentix/bin/agentix-server), daytona.public=1 (no preview
 * token needed), daytona.from=snapshot|image
 * (default snapshot). config.image names the snapshot (default: the organisation's default), or
 * with daytona.from=image a Docker image built through buildInfo, where cpus/memory apply. The
 * sandbox's expiry is its auto-stop interval (whole minutes, rounded up) with auto-delete on stop.
 * A failed create's clean-up is bounded and skipped when the POST never reached the API. */
#include "backends/daytona/daytona_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/expiry.h"

typedef struct create_ctx {
    agx_daytona *d;
    const agx_sandbox_config *cfg;
    int64_t deadline;
    int toolbox, public_preview, from_image;
    long auto_stop;
    const char *server;
    char token[33]; /* the runtime's AGENTIX_TOKEN */
    char nonce[33];
    char id[AGX_CLOUD_ID_MAX];
    char *toolbox_url; /* the sandbox's toolboxProxyUrl */
    int maybe_sent;    /* the POST may have reached the API */
} create_ctx;

/* ---- options and body ---- */

static int read_options(create_ctx *x, agx_error *err)
{
    const agx_kv *o = agx_sandbox_config_options_const(x->cfg);
    const char *start = agx_kv_get(o, "daytona.start");
    const char *pub = agx_kv_get(o, "daytona.public");
    x->server = agx_kv_get(o, "daytona.server");
    if (!x->server)
        x->server = AGX_DAYTONA_DEFAULT_SERVER;
    if (start && strcmp(start, "toolbox") != 0 && strcmp(start, "entrypoint") != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "option daytona.start='%.64s' must be 'entrypoint' or 'toolbox'", start);
    x->toolbox = start && strcmp(start, "toolbox") == 0;
    const char *from = agx_kv_get(o, "daytona.from");
    if (from && strcmp(from, "snapshot") != 0 && strcmp(from, "image") != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "option daytona.from='%.64s' must be 'snapshot' or 'image'", from);
    x->from_image = from && strcmp(from, "image") == 0;
    const char *image = agx_sandbox_config_image(x->cfg);
    if (x->from_image && (!image || !*image || strlen(image) > 512 || strpbrk(image, " \t\r\n")))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "daytona.from=image needs the config's "
                             "image: an image reference without spaces, at most 512 bytes");
    if (!x->from_image && (agx_sandbox_config_cpus(x->cfg) > 0 || agx_sandbox_config_memory(x->cfg) > 0))
        return agx_error_set(err, AGX_ERR_UNSUPPORTED, "daytona: cpus and memory apply only to a "
                             "sandbox built from an image (option daytona.from=image); a "
                             "snapshot's resources are fixed when it is made");
    if (pub && strcmp(pub, "0") != 0 && strcmp(pub, "1") != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "option daytona.public='%.16s' must be "
                             "0 or 1", pub);
    x->public_preview = pub && strcmp(pub, "1") == 0;
    size_t n = strlen(x->server);
    if (n == 0 || n > 512 || x->server[0] != '/' ||
        strspn(x->server, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != n)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "option daytona.server='%.64s' must be "
                             "an absolute path of [A-Za-z0-9/._-]", x->server);
    if (agx_kv_get(o, "daytona.auto_stop_min"))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "option daytona.auto_stop_min is "
                             "gone: a sandbox's auto-stop is its expiry "
                             "(agx_sandbox_config_set_expiry_ms, $AGENTIX_EXPIRY_MS), which this "
                             "process extends while it lives");
    /* Idle minutes, rounded up: with the host's extensions resetting the idle timer every third
     * of the expiry, the sandbox stops (and is deleted) only once they stop. */
    x->auto_stop = (long)((agx_sandbox_config_expiry_ms(x->cfg) + 59999) / 60000);
    if (x->auto_stop < 1)
        x->auto_stop = 1;
    return 0;
}

/* The runtime's environment: the config's, then the token and bind address agentix-server needs
 * (the entrypoint sees the sandbox env; a toolbox start passes them on its command line too). */
static int runtime_env(create_ctx *x, json_t **out, agx_error *err)
{
    int rc = agx_random_hex(x->token, 16, err);
    if (!rc)
        rc = agx_cloud_kv_json(agx_sandbox_config_env_const(x->cfg), "environment variable", out,
                               err);
    if (rc)
        return rc;
    char expiry[24];
    snprintf(expiry, sizeof expiry, "%lld", (long long)agx_sandbox_config_expiry_ms(x->cfg));
    if (json_object_set_new(*out, AGX_EXPIRY_ENV, json_string(expiry)) ||
        json_object_set_new(*out, "AGENTIX_TOKEN", json_string(x->token)) ||
        json_object_set_new(*out, "AGENTIX_BIND_HOST", json_string("0.0.0.0")) ||
        json_object_set_new(*out, "AGENTIX_BIND_PORT", json_string("8000"))) {
        json_decref(*out);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a sandbox");
    }
    return 0;
}

static int add_snapshot(create_ctx *x, json_t *body)
{
    const char *snapshot = agx_sandbox_config_image(x->cfg);
    if (!snapshot || !*snapshot)
        return 0; /* the organisation's default snapshot */
    return json_object_set_new(body, "snapshot", json_string(snapshot));
}

/* A declarative build from an image (Daytona builds and caches it; the first create takes long).
 * Resources are allowed only here: whole CPUs and GB, rounded up. */
static int add_build(create_ctx *x, json_t *body)
{
    char *dockerfile = NULL;
    if (asprintf(&dockerfile, "FROM %s\n", agx_sandbox_config_image(x->cfg)) < 0)
        return -1;
    json_t *build = json_pack("{s:s}", "dockerfileContent", dockerfile);
    free(dockerfile);
    int bad = !build || json_object_set_new(body, "buildInfo", build) != 0;
    double cpus = agx_sandbox_config_cpus(x->cfg);
    uint64_t mem = agx_sandbox_config_memory(x->cfg);
    const uint64_t gb = 1024ull * 1024 * 1024;
    if (!bad && cpus > 0)
        bad = json_object_set_new(body, "cpu", json_integer((json_int_t)(cpus + 0.999))) != 0;
    if (!bad && mem > 0)
        bad = json_object_set_new(body, "memory", json_integer((json_int_t)((mem + gb - 1) / gb)))
              != 0;
    return bad ? -1 : 0;
}

static int create_body(create_ctx *x, json_t **out, agx_error *err)
{
    json_t *labels = NULL, *env = NULL;
    int rc = read_options(x, err);
    if (!rc)
        rc = agx_cloud_labels(&x->d->cloud, x->cfg, x->nonce, &labels, err);
    if (!rc)
        rc = runtime_env(x, &env, err);
    if (rc) {
        json_decref(labels);
        return rc;
    }
    /* autoDeleteInterval 0: a stopped sandbox is deleted, so an idle leak ends at auto-stop. */
    *out = json_pack("{s:o, s:o, s:b, s:I, s:I}", "env", env, "labels", labels, "public",
                     x->public_preview, "autoStopInterval", (json_int_t)x->auto_stop,
                     "autoDeleteInterval", (json_int_t)0);
    if (*out && ((x->from_image ? add_build(x, *out) : add_snapshot(x, *out)) != 0 ||
                 (x->d->target &&
                  json_object_set_new(*out, "target", json_string(x->d->target)) != 0))) {
        json_decref(*out);
        *out = NULL;
    }
    return *out ? 0 : agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "cannot build the create "
                                                                   "request (snapshot name not "
                                                                   "UTF-8, or out of memory)");
}

/* ---- steps ---- */

/* Quota refusals are 400s ("Total CPU limit exceeded…"): worth waiting for while others end. */
static int retry_quota(const agx_http_response *resp)
{
    return resp->status == 400 && resp->body && strstr(resp->body, "limit exceeded") != NULL;
}

static int post_create(create_ctx *x, json_t *body, agx_error *err)
{
    json_t *dto = NULL;
    agx_cloud_call call = {.method = "POST", .path = "/sandbox", .body = body,
                           .what = "creating a sandbox", .deadline_ms = x->deadline,
                           .retry_after_header = AGX_DAYTONA_RETRY_AFTER,
                           .retry_also = retry_quota, .creates = 1, .maybe_sent = &x->maybe_sent};
    int rc = agx_cloud_request(&x->d->cloud, &call, NULL, &dto, err);
    const char *id = json_string_value(json_object_get(dto, "id"));
    if (!rc && (!id || agx_cloud_check_id(&x->d->cloud, id, err) != 0))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "Daytona answered the create without a usable "
                                                  "sandbox id");
    if (!rc)
        snprintf(x->id, sizeof x->id, "%s", id);
    json_decref(dto);
    return rc;
}

/* Polls until "started"; error/build_failed fail with Daytona's errorReason. */
static int wait_started(create_ctx *x, agx_error *err)
{
    int64_t start = agx_clock_ms(), interval = 0;
    char state[40] = "creating";
    for (;;) {
        json_t *s = NULL;
        int rc = agx_daytona_get_dto(x->d, x->id, &s, err);
        if (rc) {
            agx_error_prefix(err, "waiting for sandbox %s to start", x->id);
            return rc;
        }
        snprintf(state, sizeof state, "%s", json_string_value(json_object_get(s, "state")) ?: "?");
        const char *tb = json_string_value(json_object_get(s, "toolboxProxyUrl"));
        if (strcmp(state, "started") == 0 && tb && !x->toolbox_url)
            x->toolbox_url = strdup(tb);
        if (strcmp(state, "error") == 0 || strcmp(state, "build_failed") == 0) {
            rc = agx_error_set(err, AGX_ERR_BACKEND, "Daytona sandbox %s failed to start with "
                               "state: %s, error reason: %.300s", x->id, state,
                               json_string_value(json_object_get(s, "errorReason")) ?: "(none)");
        }
        json_decref(s);
        if (rc)
            return rc;
        if (strcmp(state, "started") == 0)
            return x->toolbox_url || !x->toolbox ? 0
                   : agx_error_set(err, AGX_ERR_PROTOCOL, "Daytona sandbox %s has no "
                                                          "toolboxProxyUrl", x->id);
        if (agx_clock_ms() >= x->deadline) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT, "Daytona sandbox %s is still '%s' after "
                               "%lld ms (the create timeout); raise it for cold snapshots",
                               x->id, state, (long long)(agx_clock_ms() - start));
            if (err)
                err->retriable = 1;
            return rc;
        }
        interval = agx_cloud_poll_interval(start, agx_clock_ms(), interval);
        agx_clock_sleep_ms(interval);
    }
}

static int toolbox_post(create_ctx *x, const char *suffix, json_t *body, const char *what,
                        agx_error *err)
{
    char *url = NULL;
    if (asprintf(&url, "%s/%s%s", x->toolbox_url, x->id, suffix) < 0)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory %s", what);
    agx_cloud_call call = {.method = "POST", .url = url, .body = body, .what = what,
                           .deadline_ms = x->deadline};
    int rc = agx_cloud_request(&x->d->cloud, &call, NULL, NULL, err);
    free(url);
    return rc;
}

/* A background session running agentix-server with the token and bind address. */
static int start_by_toolbox(create_ctx *x, agx_error *err)
{
    size_t n = strlen(x->toolbox_url);
    if (strncmp(x->toolbox_url, "http://", 7) != 0 && strncmp(x->toolbox_url, "https://", 8) != 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "Daytona toolboxProxyUrl '%.128s' is not an "
                                                    "http(s) URL", x->toolbox_url);
    while (n > 0 && x->toolbox_url[n - 1] == '/')
        x->toolbox_url[--n] = '\0';
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "AGENTIX_TOKEN=%s AGENTIX_BIND_HOST=0.0.0.0 AGENTIX_BIND_PORT=%d "
             AGX_EXPIRY_ENV "=%lld %s", x->token, AGX_DAYTONA_RUNTIME_PORT,
             (long long)agx_sandbox_config_expiry_ms(x->cfg), x->server);
    json_t *session = json_pack("{s:s}", "sessionId", "agentix");
    json_t *exec = json_pack("{s:s, s:b}", "command", cmd, "runAsync", 1);
    int rc = session && exec ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        rc = toolbox_post(x, "/process/session", session, "creating the toolbox session", err);
    if (!rc)
        rc = toolbox_post(x, "/process/session/agentix/exec", exec, "starting agentix-server "
                                                                    "through the toolbox", err);
    json_decref(session);
    json_decref(exec);
    return rc;
}

static int preview(create_ctx *x, agx_sandbox **out, agx_error *err)
{
    char path[AGX_CLOUD_ID_MAX + 48];
    snprintf(path, sizeof path, "/sandbox/%s/ports/%d/preview-url", x->id,
             AGX_DAYTONA_RUNTIME_PORT);
    json_t *p = NULL;
    agx_cloud_call call = {.method = "GET", .path = path, .idempotent = 1,
                           .what = "getting the preview URL", .deadline_ms = x->deadline};
    int rc = agx_cloud_request(&x->d->cloud, &call, NULL, &p, err);
    const char *url = json_string_value(json_object_get(p, "url"));
    const char *token = json_string_value(json_object_get(p, "token"));
    if (!rc && (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
                strlen(url) > 1024 || !token || strlen(token) > 512))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "Daytona's preview URL answer for sandbox %s "
                                                  "lacks an http(s) url or a token", x->id);
    if (!rc) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
            n--;
        char *clean = strndup(url, n);
        *out = clean ? agx_sandbox_new("daytona", x->id, clean, x->token) : NULL;
        free(clean);
        if (!*out || agx_kv_set(agx_sandbox_headers(*out), "X-Daytona-Preview-Token", token) != 0) {
            agx_sandbox_free(*out);
            *out = NULL;
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory recording sandbox %s", x->id);
        }
    }
    json_decref(p);
    return rc;
}

static int list_fn(void *self, const agx_kv *labels, int64_t deadline_ms, agx_sandbox_list *into,
                   agx_error *err)
{
    return agx_daytona_list_into(self, labels, deadline_ms, into, err);
}

static int delete_fn(void *self, const char *id, int64_t deadline_ms, agx_error *err)
{
    return agx_daytona_delete_wait(self, id, deadline_ms, err);
}

int agx_daytona_create(agx_daytona *d, const agx_sandbox_config *cfg, agx_sandbox **out,
                       agx_error *err)
{
    *out = NULL;
    create_ctx x = {.d = d, .cfg = cfg,
                    .deadline = agx_clock_ms() + agx_sandbox_config_timeout_ms(cfg)};
    json_t *body = NULL;
    int rc = create_body(&x, &body, err);
    if (rc)
        return rc;
    rc = post_create(&x, body, err);
    json_decref(body);
    if (rc) {
        /* The sandbox may exist although no answer named it: a timeout, a 5xx, or the 400
         * "Sandbox failed to start" of a sandbox left in error — unless the POST never arrived. */
        agx_cloud_sweep_nonce(d, x.nonce, x.maybe_sent, agx_cloud_cleanup_deadline(x.deadline),
                              list_fn, delete_fn);
        return rc;
    }
    agx_sandbox *sb = NULL;
    rc = wait_started(&x, err);
    if (!rc && x.toolbox)
        rc = start_by_toolbox(&x, err);
    if (!rc)
        rc = preview(&x, &sb, err);
    if (!rc)
        rc = agx_cloud_wait_health(&d->cloud, agx_sandbox_runtime_url(sb),
                                   agx_sandbox_headers_const(sb), x.deadline, err);
    free(x.toolbox_url);
    if (rc) {
        agx_error keep;
        agx_error_clear(&keep);
        agx_daytona_delete_wait(d, x.id, agx_cloud_cleanup_deadline(x.deadline), &keep);
        agx_sandbox_free(sb);
        return rc;
    }
    *out = sb;
    return 0;
}
