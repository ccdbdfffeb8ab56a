/* sandbox.c — the records a backend returns: agx_sandbox (what a client needs to reach the runtime
 * server: id, runtime_url, token, headers), agx_sandbox_info (what get/list report) and
 * agx_sandbox_list. Plain owned data, so a host may copy them and keep them past the deployment. */
#include "agentix/deployment.h"
#include "core/host/records.h"

#include <stdlib.h>
#include <string.h>

struct agx_sandbox {
    char *backend;
    char *id;
    char *runtime_url;
    char *token;
    agx_kv *headers;
};

struct agx_sandbox_info {
    char *id;
    agx_sandbox_state state;
    char *runtime_url;
    char *detail;
    int64_t created_at;
    int64_t expires_at;
    agx_kv *labels;
};

struct agx_sandbox_list {
    agx_sandbox_info **items;
    size_t count;
    size_t cap;
};

static int agx_nonempty(const char *s)
{
    return s && *s;
}

agx_sandbox *agx_sandbox_new(const char *backend, const char *id, const char *runtime_url,
                             const char *token)
{
    if (!agx_nonempty(backend) || !agx_nonempty(id) || !agx_nonempty(runtime_url))
        return NULL;
    agx_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return NULL;
    sb->backend = strdup(backend);
    sb->id = strdup(id);
    sb->runtime_url = strdup(runtime_url);
    sb->token = token ? strdup(token) : NULL;
    sb->headers = agx_kv_new();
    if (!sb->backend || !sb->id || !sb->runtime_url || (token && !sb->token) || !sb->headers) {
        agx_sandbox_free(sb);
        return NULL;
    }
    return sb;
}

void agx_sandbox_free(agx_sandbox *sb)
{
    if (!sb)
        return;
    free(sb->backend);
    free(sb->id);
    free(sb->runtime_url);
    free(sb->token);
    agx_kv_free(sb->headers);
    free(sb);
}

agx_sandbox *agx_sandbox_copy(const agx_sandbox *sb)
{
    if (!sb)
        return NULL;
    agx_sandbox *out = agx_sandbox_new(sb->backend, sb->id, sb->runtime_url, sb->token);
    if (!out)
        return NULL;
    agx_kv_free(out->headers);
    out->headers = agx_kv_copy(sb->headers);
    if (!out->headers) {
        agx_sandbox_free(out);
        return NULL;
    }
    return out;
}

const char *agx_sandbox_id(const agx_sandbox *sb)
{
    return sb ? sb->id : NULL;
}

const char *agx_sandbox_runtime_url(const agx_sandbox *sb)
{
    return sb ? sb->runtime_url : NULL;
}

const char *agx_sandbox_token(const agx_sandbox *sb)
{
    return sb ? sb->token : NULL;
}

const char *agx_sandbox_backend(const agx_sandbox *sb)
{
    return sb ? sb->backend : NULL;
}

agx_kv *agx_sandbox_headers(agx_sandbox *sb)
{
    return sb ? sb->headers : NULL;
}

const agx_kv *agx_sandbox_headers_const(const agx_sandbox *sb)
{
    return sb ? sb->headers : NULL;
}

const char *agx_sandbox_state_name(agx_sandbox_state s)
{
    static const char *const names[] = {"unknown", "creating", "running", "stopped", "error", "gone"};
    if ((unsigned)s >= sizeof names / sizeof names[0])
        return "unknown";
    return names[s];
}

agx_sandbox_info *agx_sandbox_info_new(const char *id, agx_sandbox_state state)
{
    if (!agx_nonempty(id) || (unsigned)state > AGX_SANDBOX_GONE)
        return NULL;
    agx_sandbox_info *info = calloc(1, sizeof *info);
    if (!info)
        return NULL;
    info->id = strdup(id);
    info->state = state;
    info->labels = agx_kv_new();
    if (!info->id || !info->labels) {
        agx_sandbox_info_free(info);
        return NULL;
    }
    return info;
}

void agx_sandbox_info_free(agx_sandbox_info *info)
{
    if (!info)
        return;
    free(info->id);
    free(info->runtime_url);
    free(info->detail);
    agx_kv_free(info->labels);
    free(info);
}

int agx_sandbox_info_set_runtime_url(agx_sandbox_info *info, const char *url)
{
    return info ? agx_str_replace(&info->runtime_url, url) : AGX_ERR_INVALID_ARGUMENT;
}

int agx_sandbox_info_set_detail(agx_sandbox_info *info, const char *detail)
{
    return info ? agx_str_replace(&info->detail, detail) : AGX_ERR_INVALID_ARGUMENT;
}

void agx_sandbox_info_set_created_at(agx_sandbox_info *info, int64_t unix_ms)
{
    if (info)
        info->created_at = unix_ms < 0 ? 0 : unix_ms;
}

void agx_sandbox_info_set_expires_at(agx_sandbox_info *info, int64_t unix_ms)
{
    if (info)
        info->expires_at = unix_ms < 0 ? 0 : unix_ms;
}

const char *agx_sandbox_info_id(const agx_sandbox_info *info)
{
    return info ? info->id : NULL;
}

agx_sandbox_state agx_sandbox_info_state(const agx_sandbox_info *info)
{
    return info ? info->state : AGX_SANDBOX_UNKNOWN;
}

const char *agx_sandbox_info_runtime_url(const agx_sandbox_info *info)
{
    return info ? info->runtime_url : NULL;
}

const char *agx_sandbox_info_detail(const agx_sandbox_info *info)
{
    return info ? info->detail : NULL;
}

int64_t agx_sandbox_info_created_at(const agx_sandbox_info *info)
{
    return info ? info->created_at : 0;
}

int64_t agx_sandbox_info_expires_at(const agx_sandbox_info *info)
{
    return info ? info->expires_at : 0;
}

agx_kv *agx_sandbox_info_labels(agx_sandbox_info *info)
{
    return info ? info->labels : NULL;
}

const agx_kv *agx_sandbox_info_labels_const(const agx_sandbox_info *info)
{
    return info ? info->labels : NULL;
}

agx_sandbox_list *agx_sandbox_list_new(void)
{
    return calloc(1, sizeof(agx_sandbox_list));
}

/* Takes ownership also on failure, so a backend's `push(list, info_new(...))` never leaks. */
int agx_sandbox_list_push(agx_sandbox_list *list, agx_sandbox_info *info)
{
    if (!list || !info) {
        agx_sandbox_info_free(info);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        agx_sandbox_info **items = realloc(list->items, cap * sizeof *items);
        if (!items) {
            agx_sandbox_info_free(info);
            return AGX_ERR_NO_MEMORY;
        }
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = info;
    return 0;
}

size_t agx_sandbox_list_count(const agx_sandbox_list *list)
{
    return list ? list->count : 0;
}

const agx_sandbox_info *agx_sandbox_list_at(const agx_sandbox_list *list, size_t i)
{
    return list && i < list->count ? list->items[i] : NULL;
}

void agx_sandbox_list_free(agx_sandbox_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        agx_sandbox_info_free(list->items[i]);
    free(list->items);
    free(list);
}
