/* e2b.c — the `e2b` backend: a sandbox is an E2B microVM resumed from a template that already
 * runs agentix-server on port 8000 (see README.md for building one from an `agentix build` bundle).
 *
 * Flow: host → agx_load_deployment("e2b") → this vtable → E2B API (POST /sandboxes, X-API-Key) →
 * the VM → client.h connects to https://8000-<sandboxID>.<domain> through E2B's proxy, sending
 * e2b-traffic-access-token (sandboxes are private by default). Every sandbox carries metadata
 * agentix.sandbox=1 and the config's labels (the ownership record among them), so get/list/delete
 * work from any process and gc finds leaks. E2B's own timeout is the sandbox's expiry: it is
 * created with it and extend_sandbox moves it (POST /sandboxes/{id}/timeout) with the runtime's.
 *
 * Configuration (environment, read by construct):
 *   E2B_API_KEY         required
 *   E2B_TEMPLATE_ID     template when the config names no image (config.image names a template)
 *   E2B_DOMAIN          default e2b.app; E2B_API_URL default https://api.<domain>
 *   AGENTIX_E2B_SCHEME  scheme of sandbox URLs, default https ("http" for a plain-HTTP proxy)
 *   AGENTIX_CONNECT_TO  HOST:PORT:CONNECT_HOST:CONNECT_PORT for the health wait (the client reads
 *                       the same variable), to reach sandbox host names through another address
 * Options: e2b.public=1 (no traffic token). The sandbox's lifetime is its expiry
 * (agx_sandbox_config_set_expiry_ms); e2b.lifetime_s and e2b.keepalive are refused, pointing there. */
#include "backends/e2b/e2b_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/plugin.h"

/* ---- construct / destruct ---- */

static int dup_env(const char *name, const char *fallback, char **out)
{
    const char *v = getenv(name);
    *out = strdup(v && *v ? v : fallback);
    return *out ? 0 : -1;
}

static int check_scheme(const char *s, agx_error *err)
{
    if (strcmp(s, "https") == 0 || strcmp(s, "http") == 0)
        return 0;
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "AGENTIX_E2B_SCHEME='%s' must be 'https' or 'http'", s);
}

static void e2b_destruct(void *self)
{
    agx_e2b *e = self;
    if (!e)
        return;
    agx_cloud_fini(&e->cloud);
    free(e->template_id);
    free(e->domain);
    free(e->scheme);
    free(e);
}

static int e2b_construct(void **self, agx_error *err)
{
    const char *key;
    int rc = agx_cloud_env_required("E2B_API_KEY", &key, err);
    if (rc)
        return rc;
    agx_e2b *e = calloc(1, sizeof *e);
    if (!e)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the e2b backend");
    const char *tmpl = getenv("E2B_TEMPLATE_ID");
    if ((tmpl && *tmpl && !(e->template_id = strdup(tmpl))) ||
        dup_env("E2B_DOMAIN", "e2b.app", &e->domain) || dup_env("AGENTIX_E2B_SCHEME", "https",
                                                                 &e->scheme)) {
        e2b_destruct(e);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the e2b backend");
    }
    char *api = NULL;
    const char *api_env = getenv("E2B_API_URL");
    if (api_env && *api_env)
        api = strdup(api_env);
    else if (asprintf(&api, "https://api.%s", e->domain) < 0)
        api = NULL;
    rc = api ? check_scheme(e->scheme, err)
             : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the e2b backend");
    size_t dn = strlen(e->domain);
    if (!rc && (dn > 200 || strspn(e->domain, "abcdefghijklmnopqrstuvwxyz0123456789.-") != dn))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                           "E2B_DOMAIN='%.64s' must be a lower-case domain name such as e2b.app",
                           e->domain);
    if (!rc)
        rc = agx_cloud_init(&e->cloud, "E2B", "e2b", api, "X-API-Key", key, err);
    free(api);
    if (rc) {
        e2b_destruct(e);
        return rc;
    }
    *self = e;
    return 0;
}

/* ---- helpers ---- */

/* The domain sandboxes are served under: the answer's when it names one, else E2B_DOMAIN. */
static const char *pick_domain(const agx_e2b *e, json_t *sandbox)
{
    const char *d = json_string_value(json_object_get(sandbox, "domain"));
    size_t n = d ? strlen(d) : 0;
    if (n == 0 || n > 200 ||
        strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
        return e->domain;
    return d;
}

static char *runtime_url(const agx_e2b *e, const char *id, const char *domain)
{
    char *url = NULL;
    if (asprintf(&url, "%s://%d-%s.%s", e->scheme, AGX_E2B_RUNTIME_PORT, id, domain) < 0)
        return NULL;
    return url;
}

static int int_option(const agx_sandbox_config *cfg, const char *key, long lo, long hi, long def,
                      long *out, agx_error *err)
{
    const char *v = agx_kv_get(agx_sandbox_config_options_const(cfg), key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "option %s='%s' must be an integer "
                             "from %ld to %ld", key, v, lo, hi);
    *out = n;
    return 0;
}

/* ---- delete ---- */

static int delete_id(void *self, const char *id, int64_t deadline_ms, agx_error *err)
{
    agx_e2b *e = self;
    char path[AGX_CLOUD_ID_MAX + 16];
    snprintf(path, sizeof path, "/sandboxes/%s", id);
    agx_cloud_call call = {.method = "DELETE", .path = path, .idempotent = 1,
                           .what = "deleting the sandbox", .deadline_ms = deadline_ms};
    int rc = agx_cloud_request(&e->cloud, &call, NULL, NULL, err);
    if (rc == AGX_ERR_NOT_FOUND) { /* already gone: that is what delete wants */
        agx_error_clear(err);
        rc = 0;
    }
    return rc;
}

static int e2b_delete(void *self, const char *id, agx_error *err)
{
    agx_e2b *e = self;
    int rc = agx_cloud_check_id(&e->cloud, id, err);
    if (rc)
        return rc;
    return delete_id(e, id, agx_clock_ms() + AGX_CLOUD_DELETE_TIMEOUT_MS, err);
}

/* ---- list ---- */

/* metadata=<escaped "k=v&k=v"> with each key and value escaped first (the API's rule). */
static char *metadata_query(const agx_kv *labels)
{
    size_t cap = 64, len = 0;
    char *inner = malloc(cap);
    int bad = !inner;
    for (size_t i = 0; !bad && i <= (labels ? agx_kv_count(labels) : 0); i++) {
        const char *k = i == 0 ? AGX_LABEL_SANDBOX : agx_kv_key_at(labels, i - 1);
        const char *v = i == 0 ? "1" : agx_kv_value_at(labels, i - 1);
        char *ek = agx_http_escape(k), *ev = agx_http_escape(v);
        size_t need = len + (ek ? strlen(ek) : 0) + (ev ? strlen(ev) : 0) + 3;
        char *grown = ek && ev && need > cap ? realloc(inner, cap = need * 2) : inner;
        bad = !ek || !ev || !grown;
        if (!bad) {
            inner = grown;
            len += (size_t)sprintf(inner + len, "%s%s=%s", i ? "&" : "", ek, ev);
        }
        free(ek);
        free(ev);
    }
    char *outer = bad ? NULL : agx_http_escape(inner);
    free(inner);
    return outer;
}

agx_sandbox_info *agx_e2b_info_from(const agx_e2b *e, json_t *s)
{
    const char *id = json_string_value(json_object_get(s, "sandboxID"));
    if (!id || agx_cloud_check_id(&e->cloud, id, NULL) != 0)
        return NULL;
    const char *state = json_string_value(json_object_get(s, "state"));
    agx_sandbox_state st = !state                         ? AGX_SANDBOX_UNKNOWN
                           : strcmp(state, "running") == 0 ? AGX_SANDBOX_RUNNING
                           : strcmp(state, "paused") == 0  ? AGX_SANDBOX_STOPPED
                                                           : AGX_SANDBOX_UNKNOWN;
    agx_sandbox_info *info = agx_sandbox_info_new(id, st);
    char *url = runtime_url(e, id, pick_domain(e, s));
    char detail[160];
    snprintf(detail, sizeof detail, "template %.64s, %s until %.40s",
             json_string_value(json_object_get(s, "templateID")) ?: "?", state ? state : "?",
             json_string_value(json_object_get(s, "endAt")) ?: "?");
    int bad = !info || !url || agx_sandbox_info_set_detail(info, detail) != 0 ||
              (st == AGX_SANDBOX_RUNNING && agx_sandbox_info_set_runtime_url(info, url) != 0);
    free(url);
    if (!bad) {
        agx_sandbox_info_set_created_at(
            info, agx_time_parse_ms(json_string_value(json_object_get(s, "startedAt"))));
        /* E2B's own deadline is the expiry: extensions move it. */
        agx_sandbox_info_set_expires_at(
            info, agx_time_parse_ms(json_string_value(json_object_get(s, "endAt"))));
    }
    if (!bad)
        bad = agx_cloud_info_labels(info, json_object_get(s, "metadata"));
    if (bad) {
        agx_sandbox_info_free(info);
        return NULL;
    }
    return info;
}

/* Every page of GET /v2/sandboxes?metadata=… (X-Next-Token), running and paused ones. */
static int list_pages(void *self, const agx_kv *labels, int64_t deadline_ms,
                      agx_sandbox_list *list, agx_error *err)
{
    agx_e2b *e = self;
    char *meta = metadata_query(labels);
    if (!meta)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing E2B sandboxes");
    char *next = NULL;
    int rc = 0;
    for (int page = 0; !rc; page++) {
        char *esc = next ? agx_http_escape(next) : NULL;
        char *path = NULL;
        if ((next && !esc) || asprintf(&path, "/v2/sandboxes?metadata=%s&state=running,paused"
                                              "&limit=100%s%s", meta, esc ? "&nextToken=" : "",
                                       esc ? esc : "") < 0)
            path = NULL;
        free(esc);
        free(next);
        next = NULL;
        if (!path || page >= AGX_CLOUD_MAX_PAGES) {
            free(path);
            rc = agx_error_set(err, path ? AGX_ERR_PROTOCOL : AGX_ERR_NO_MEMORY,
                               "listing E2B sandboxes: %s", path ? "more than 1000 pages"
                                                                 : "out of memory");
            break;
        }
        agx_kv *hdrs = NULL;
        json_t *arr = NULL;
        agx_cloud_call call = {.method = "GET", .path = path, .idempotent = 1,
                               .what = "listing sandboxes", .headers_out = &hdrs,
                               .deadline_ms = deadline_ms};
        rc = agx_cloud_request(&e->cloud, &call, NULL, &arr, err);
        free(path);
        if (!rc && !json_is_array(arr))
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "listing E2B sandboxes: not an array");
        size_t i;
        json_t *s;
        json_array_foreach(arr, i, s) {
            agx_sandbox_info *info = rc ? NULL : agx_e2b_info_from(e, s);
            if (info && agx_sandbox_list_push(list, info) != 0) {
                agx_sandbox_info_free(info);
                rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing E2B sandboxes");
            }
        }
        json_decref(arr);
        const char *nt = hdrs ? agx_kv_get(hdrs, "x-next-token") : NULL;
        if (!rc && nt && *nt && strlen(nt) < 1024 && !(next = strdup(nt)))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing E2B sandboxes");
        agx_kv_free(hdrs);
        if (!next)
            break;
    }
    free(next);
    free(meta);
    return rc;
}

static int e2b_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    *out = NULL;
    agx_sandbox_list *list = agx_sandbox_list_new();
    if (!list)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing E2B sandboxes");
    int rc = list_pages(self, labels, 0, list, err);
    if (rc) {
        agx_sandbox_list_free(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* ---- get ---- */

static int e2b_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    agx_e2b *e = self;
    *out = NULL;
    int rc = agx_cloud_check_id(&e->cloud, id, err);
    if (rc)
        return rc;
    char path[AGX_CLOUD_ID_MAX + 16];
    snprintf(path, sizeof path, "/sandboxes/%s", id);
    json_t *s = NULL;
    agx_cloud_call call = {.method = "GET", .path = path, .idempotent = 1,
                           .what = "getting the sandbox"};
    rc = agx_cloud_request(&e->cloud, &call, NULL, &s, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        agx_error_clear(err);
        rc = 0;
        *out = agx_sandbox_info_new(id, AGX_SANDBOX_GONE);
        if (*out && agx_sandbox_info_set_detail(*out, "no such E2B sandbox (killed, expired or "
                                                      "never created)") != 0) {
            agx_sandbox_info_free(*out);
            *out = NULL;
        }
    } else if (!rc) {
        *out = agx_e2b_info_from(e, s);
    }
    json_decref(s);
    if (rc)
        return rc;
    return *out ? 0 : agx_error_set(err, AGX_ERR_PROTOCOL, "E2B described sandbox '%s' without "
                                                           "a usable sandboxID", id);
}

/* ---- create ---- */

typedef struct create_ctx {
    agx_e2b *e;
    const agx_sandbox_config *cfg;
    int64_t deadline;
    long lifetime, public_traffic;
    char nonce[33];
} create_ctx;

static int create_body(create_ctx *x, json_t **out, agx_error *err)
{
    const char *tmpl = agx_sandbox_config_image(x->cfg);
    if (!tmpl || !*tmpl)
        tmpl = x->e->template_id;
    if (!tmpl)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "no E2B template: set E2B_TEMPLATE_ID or the config's image to a "
                             "template that starts agentix-server (see backends/e2b/README.md)");
    json_t *meta = NULL;
    int rc = agx_cloud_labels(&x->e->cloud, x->cfg, x->nonce, &meta, err);
    if (rc)
        return rc;
    /* Private by default: the proxy then wants the sandbox's traffic token, which needs secure.
     * No envVars: they reach processes envd starts, never the runtime the template's snapshot
     * already runs, so the config's env is refused by the core (see the vtable) rather than sent
     * where no remote call would see it. */
    *out = json_pack("{s:s, s:I, s:o, s:b, s:b, s:{s:b}}", "templateID", tmpl, "timeout",
                     (json_int_t)x->lifetime, "metadata", meta, "secure", 1,
                     "allow_internet_access", 1, "network", "allowPublicTraffic",
                     (int)x->public_traffic);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a sandbox");
}

int agx_e2b_sandbox_from(const agx_e2b *e, json_t *resp, const char *token, agx_sandbox **out,
                         agx_error *err)
{
    *out = NULL;
    const char *id = json_string_value(json_object_get(resp, "sandboxID"));
    if (!id || agx_cloud_check_id(&e->cloud, id, err) != 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "E2B answered the create without a usable "
                                                    "sandboxID");
    char *url = runtime_url(e, id, pick_domain(e, resp));
    agx_sandbox *sb = url ? agx_sandbox_new("e2b", id, url, token) : NULL;
    free(url);
    const char *traffic = json_string_value(json_object_get(resp, "trafficAccessToken"));
    if (!sb || (traffic && *traffic &&
                agx_kv_set(agx_sandbox_headers(sb), "e2b-traffic-access-token", traffic) != 0)) {
        agx_sandbox_free(sb);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory recording sandbox '%s'", id);
    }
    *out = sb;
    return 0;
}

/* E2B counts whole seconds: the expiry, rounded up. */
static long expiry_s(int64_t ms)
{
    long s = (long)((ms + 999) / 1000);
    return s < 1 ? 1 : s;
}

static int read_options(create_ctx *x, agx_error *err)
{
    const agx_kv *o = agx_sandbox_config_options_const(x->cfg);
    const char *gone = agx_kv_get(o, "e2b.lifetime_s") ? "e2b.lifetime_s"
                       : agx_kv_get(o, "e2b.keepalive") ? "e2b.keepalive" : NULL;
    if (gone)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "option %s is gone: a sandbox's E2B "
                             "lifetime is its expiry (agx_sandbox_config_set_expiry_ms, "
                             "$AGENTIX_EXPIRY_MS), which this process extends while it lives", gone);
    x->lifetime = expiry_s(agx_sandbox_config_expiry_ms(x->cfg));
    if (x->lifetime > AGX_E2B_MAX_LIFETIME_S)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "an expiry of %ld s is more than E2B "
                             "allows (%d s on the Pro plan); choose a shorter one (it is extended "
                             "while the host lives)", x->lifetime, AGX_E2B_MAX_LIFETIME_S);
    return int_option(x->cfg, "e2b.public", 0, 1, 0, &x->public_traffic, err);
}

static int e2b_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out,
                      agx_error *err)
{
    *out = NULL;
    create_ctx x = {.e = self, .cfg = cfg,
                    .deadline = agx_clock_ms() + agx_sandbox_config_timeout_ms(cfg)};
    json_t *body = NULL, *resp = NULL;
    int rc = read_options(&x, err);
    if (!rc)
        rc = create_body(&x, &body, err);
    if (rc)
        return rc;
    int maybe_sent = 0;
    agx_cloud_call call = {.method = "POST", .path = "/sandboxes", .body = body,
                           .what = "creating a sandbox", .deadline_ms = x.deadline,
                           .creates = 1, .maybe_sent = &maybe_sent};
    rc = agx_cloud_request(&x.e->cloud, &call, NULL, &resp, err);
    json_decref(body);
    agx_sandbox *sb = NULL;
    char token[33];
    if (!rc)
        rc = agx_random_hex(token, 16, err);
    if (!rc)
        rc = agx_e2b_sandbox_from(x.e, resp, token, &sb, err);
    json_decref(resp);
    if (rc) {
        /* Without a 201 the VM may still exist (a timeout, a 5xx after placement): sweep, unless
         * the request never reached the API. Bounded: what it misses ends at its E2B timeout. */
        agx_cloud_sweep_nonce(x.e, x.nonce, maybe_sent, agx_cloud_cleanup_deadline(x.deadline),
                              list_pages, delete_id);
        return rc;
    }
    rc = agx_cloud_wait_health(&x.e->cloud, agx_sandbox_runtime_url(sb),
                               agx_sandbox_headers_const(sb), x.deadline, err);
    /* The template's runtime started before this sandbox existed (claim mode): it gets its own
     * token now, which exists nowhere in the VM, and its expiry. The first claim wins; the proxy
     * admits only holders of the sandbox's traffic token (private sandboxes), and a claim someone
     * else won is refused, so a runtime whose token another party knows is never used. */
    if (!rc)
        rc = agx_runtime_claim(sb, NULL, agx_sandbox_config_expiry_ms(cfg), x.deadline, err);
    if (rc) {
        agx_error keep;
        agx_error_clear(&keep);
        delete_id(x.e, agx_sandbox_id(sb), agx_cloud_cleanup_deadline(x.deadline), &keep);
        agx_sandbox_free(sb);
        return rc;
    }
    *out = sb;
    return 0;
}

/* ---- expiry ---- */

int agx_e2b_set_timeout(const agx_e2b *e, const char *id, long lifetime_s, int64_t deadline_ms,
                        agx_error *err)
{
    char path[AGX_CLOUD_ID_MAX + 32];
    snprintf(path, sizeof path, "/sandboxes/%s/timeout", id);
    json_t *body = json_pack("{s:I}", "timeout", (json_int_t)lifetime_s);
    if (!body)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory extending a sandbox's expiry");
    agx_cloud_call call = {.method = "POST", .path = path, .body = body, .idempotent = 1,
                           .what = "extending the sandbox's timeout", .deadline_ms = deadline_ms};
    int rc = agx_cloud_request(&e->cloud, &call, NULL, NULL, err);
    json_decref(body);
    return rc;
}

/* E2B's deadline first (it is what ends the VM), then the runtime's own. */
static int e2b_extend(void *self, const agx_sandbox *sb, int64_t expiry_ms, agx_error *err)
{
    agx_e2b *e = self;
    int64_t deadline = agx_clock_ms() + 30000;
    if (expiry_s(expiry_ms) > AGX_E2B_MAX_LIFETIME_S)
        expiry_ms = (int64_t)AGX_E2B_MAX_LIFETIME_S * 1000;
    int rc = agx_cloud_check_id(&e->cloud, agx_sandbox_id(sb), err);
    if (!rc)
        rc = agx_e2b_set_timeout(e, agx_sandbox_id(sb), expiry_s(expiry_ms), deadline, err);
    if (!rc)
        rc = agx_runtime_expiry_extend(sb, expiry_ms, deadline, err);
    return rc;
}

/* The options create() reads (the core refuses other e2b.* keys). */
static const char *const e2b_options[] = {"e2b.lifetime_s", "e2b.keepalive", "e2b.public", NULL};

static const agx_backend_vtable e2b_vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "e2b",
    .construct = e2b_construct,
    .destruct = e2b_destruct,
    .create_sandbox = e2b_create,
    .delete_sandbox = e2b_delete,
    .get_sandbox = e2b_get,
    .list_sandboxes = e2b_list,
    .extend_sandbox = e2b_extend,
    /* image names the template, which holds the bundle and fixes the resources; env cannot reach
     * a runtime the template started at build time (backends/e2b/README.md). */
    .config_fields = AGX_CONFIG_IMAGE,
    .options = e2b_options,
};

AGX_EXPORT const agx_backend_vtable *agx_backend_e2b(void);
const agx_backend_vtable *agx_backend_e2b(void)
{
    return &e2b_vtable;
}
