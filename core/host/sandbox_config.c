/* sandbox_config.c — agx_sandbox_config, what a host asks a backend to start (image, bundle,
 * resources, env, labels, backend options). Setters reject values no backend could honour so the
 * mistake surfaces at the call that made it, not deep inside a backend. */
#include "agentix/deployment.h"
#include "agentix/expiry.h"
#include "core/host/records.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AGX_CONFIG_DEFAULT_TIMEOUT_MS 120000

struct agx_sandbox_config {
    char *image;
    char *bundle;
    char *platform;
    double cpus;
    uint64_t memory;
    int64_t timeout_ms;
    int64_t expiry_ms; /* 0 = the default */
    agx_kv *env;
    agx_kv *labels;
    agx_kv *options;
};

agx_sandbox_config *agx_sandbox_config_new(void)
{
    agx_sandbox_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->timeout_ms = AGX_CONFIG_DEFAULT_TIMEOUT_MS;
    cfg->env = agx_kv_new();
    cfg->labels = agx_kv_new();
    cfg->options = agx_kv_new();
    if (!cfg->env || !cfg->labels || !cfg->options) {
        agx_sandbox_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void agx_sandbox_config_free(agx_sandbox_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->image);
    free(cfg->bundle);
    free(cfg->platform);
    agx_kv_free(cfg->env);
    agx_kv_free(cfg->labels);
    agx_kv_free(cfg->options);
    free(cfg);
}

/* NULL resets the field to the backend's default; an empty string is always a mistake. */
static int agx_config_set_string(char **slot, const char *s)
{
    if (s && !*s)
        return AGX_ERR_INVALID_ARGUMENT;
    return agx_str_replace(slot, s);
}

static char *agx_strdup_or_null(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *failed = 1;
    return c;
}

agx_sandbox_config *agx_sandbox_config_copy(const agx_sandbox_config *cfg)
{
    if (!cfg)
        return NULL;
    agx_sandbox_config *out = calloc(1, sizeof *out);
    if (!out)
        return NULL;
    int failed = 0;
    out->image = agx_strdup_or_null(cfg->image, &failed);
    out->bundle = agx_strdup_or_null(cfg->bundle, &failed);
    out->platform = agx_strdup_or_null(cfg->platform, &failed);
    out->cpus = cfg->cpus;
    out->memory = cfg->memory;
    out->timeout_ms = cfg->timeout_ms;
    out->expiry_ms = cfg->expiry_ms;
    out->env = agx_kv_copy(cfg->env);
    out->labels = agx_kv_copy(cfg->labels);
    out->options = agx_kv_copy(cfg->options);
    if (failed || !out->env || !out->labels || !out->options) {
        agx_sandbox_config_free(out);
        return NULL;
    }
    return out;
}

int agx_sandbox_config_set_image(agx_sandbox_config *cfg, const char *image)
{
    return cfg ? agx_config_set_string(&cfg->image, image) : AGX_ERR_INVALID_ARGUMENT;
}

int agx_sandbox_config_set_bundle(agx_sandbox_config *cfg, const char *bundle)
{
    return cfg ? agx_config_set_string(&cfg->bundle, bundle) : AGX_ERR_INVALID_ARGUMENT;
}

int agx_sandbox_config_set_platform(agx_sandbox_config *cfg, const char *platform)
{
    return cfg ? agx_config_set_string(&cfg->platform, platform) : AGX_ERR_INVALID_ARGUMENT;
}

int agx_sandbox_config_set_cpus(agx_sandbox_config *cfg, double cpus)
{
    if (!cfg || !isfinite(cpus) || cpus < 0)
        return AGX_ERR_INVALID_ARGUMENT;
    cfg->cpus = cpus;
    return 0;
}

int agx_sandbox_config_set_memory(agx_sandbox_config *cfg, uint64_t bytes)
{
    if (!cfg)
        return AGX_ERR_INVALID_ARGUMENT;
    cfg->memory = bytes;
    return 0;
}

/* A zero or negative timeout would make every create fail at once: reject it here. */
int agx_sandbox_config_set_timeout_ms(agx_sandbox_config *cfg, int64_t ms)
{
    if (!cfg || ms <= 0)
        return AGX_ERR_INVALID_ARGUMENT;
    cfg->timeout_ms = ms;
    return 0;
}

int agx_sandbox_config_set_expiry_ms(agx_sandbox_config *cfg, int64_t ms)
{
    if (!cfg || (ms != 0 && (ms < AGX_EXPIRY_MIN_MS || ms > AGX_EXPIRY_MAX_MS)))
        return AGX_ERR_INVALID_ARGUMENT;
    cfg->expiry_ms = ms;
    return 0;
}

int64_t agx_sandbox_config_expiry_ms(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->expiry_ms : 0;
}

const char *agx_sandbox_config_image(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->image : NULL;
}

const char *agx_sandbox_config_bundle(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->bundle : NULL;
}

const char *agx_sandbox_config_platform(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->platform : NULL;
}

double agx_sandbox_config_cpus(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->cpus : 0;
}

uint64_t agx_sandbox_config_memory(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->memory : 0;
}

int64_t agx_sandbox_config_timeout_ms(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->timeout_ms : AGX_CONFIG_DEFAULT_TIMEOUT_MS;
}

agx_kv *agx_sandbox_config_env(agx_sandbox_config *cfg)
{
    return cfg ? cfg->env : NULL;
}

agx_kv *agx_sandbox_config_labels(agx_sandbox_config *cfg)
{
    return cfg ? cfg->labels : NULL;
}

agx_kv *agx_sandbox_config_options(agx_sandbox_config *cfg)
{
    return cfg ? cfg->options : NULL;
}

const agx_kv *agx_sandbox_config_env_const(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->env : NULL;
}

const agx_kv *agx_sandbox_config_labels_const(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->labels : NULL;
}

const agx_kv *agx_sandbox_config_options_const(const agx_sandbox_config *cfg)
{
    return cfg ? cfg->options : NULL;
}

const char *agx_config_field_name(agx_config_field field)
{
    switch (field) {
    case AGX_CONFIG_IMAGE: return "image";
    case AGX_CONFIG_BUNDLE: return "bundle";
    case AGX_CONFIG_PLATFORM: return "platform";
    case AGX_CONFIG_CPUS: return "cpus";
    case AGX_CONFIG_MEMORY: return "memory";
    case AGX_CONFIG_ENV: return "env";
    }
    return NULL;
}
