/* test_backend.c — a small in-memory deployment backend, built several times as a MODULE with
 * different compile definitions so the discovery tests can load good, ABI-mismatched and
 * misconfigured plugins through real manifests and dlopen. It creates no processes: its sandboxes
 * are records, which is all discovery and the wrappers need to be exercised.
 *   TB_NAME      backend name (vtable->name)
 *   TB_ABI       abi_version to claim (default: the current one)
 *   TB_NEED_ENV  if defined, construct() fails unless this environment variable is set */
#include "agentix/plugin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TB_ABI
#define TB_ABI AGX_PLUGIN_ABI_VERSION
#endif

#define TB_MAX 256

typedef struct tb_self {
    pthread_mutex_t lock;
    unsigned next;
    agx_sandbox_info *live[TB_MAX];
} tb_self;

static int tb_construct(void **self, agx_error *err)
{
#ifdef TB_NEED_ENV
    const char *v = getenv(TB_NEED_ENV);
    if (!v || !*v)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s is not set; export it (any non-empty value) before loading",
                             TB_NEED_ENV);
#endif
    tb_self *s = calloc(1, sizeof *s);
    if (!s)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    *self = s;
    return 0;
}

static void tb_destruct(void *self)
{
    tb_self *s = self;
    for (size_t i = 0; i < TB_MAX; i++)
        agx_sandbox_info_free(s->live[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static long tb_find(tb_self *s, const char *id)
{
    for (size_t i = 0; i < TB_MAX; i++)
        if (s->live[i] && strcmp(agx_sandbox_info_id(s->live[i]), id) == 0)
            return (long)i;
    return -1;
}

static agx_sandbox_info *tb_info_copy(const agx_sandbox_info *src)
{
    agx_sandbox_info *info = agx_sandbox_info_new(agx_sandbox_info_id(src), AGX_SANDBOX_RUNNING);
    if (!info)
        return NULL;
    agx_sandbox_info_set_runtime_url(info, agx_sandbox_info_runtime_url(src));
    const agx_kv *labels = agx_sandbox_info_labels_const(src);
    for (size_t i = 0; i < agx_kv_count(labels); i++)
        agx_kv_set(agx_sandbox_info_labels(info), agx_kv_key_at(labels, i),
                   agx_kv_value_at(labels, i));
    return info;
}

static int tb_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    tb_self *s = self;
    pthread_mutex_lock(&s->lock);
    long slot = -1;
    for (size_t i = 0; i < TB_MAX && slot < 0; i++)
        if (!s->live[i])
            slot = (long)i;
    if (slot < 0) {
        pthread_mutex_unlock(&s->lock);
        return agx_error_set(err, AGX_ERR_LIMIT, "%s: too many sandboxes", TB_NAME);
    }
    char id[64];
    snprintf(id, sizeof id, "%s-%u", TB_NAME, ++s->next);
    const char *url = "ws://127.0.0.1:9/";
    agx_sandbox_info *info = agx_sandbox_info_new(id, AGX_SANDBOX_RUNNING);
    agx_sandbox *sb = agx_sandbox_new(TB_NAME, id, url, "secret");
    if (!info || !sb) {
        pthread_mutex_unlock(&s->lock);
        agx_sandbox_info_free(info);
        agx_sandbox_free(sb);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_sandbox_info_set_runtime_url(info, url);
    const agx_kv *labels = agx_sandbox_config_labels_const(cfg);
    for (size_t i = 0; i < agx_kv_count(labels); i++)
        agx_kv_set(agx_sandbox_info_labels(info), agx_kv_key_at(labels, i),
                   agx_kv_value_at(labels, i));
    s->live[slot] = info;
    pthread_mutex_unlock(&s->lock);
    *out = sb;
    return 0;
}

static int tb_delete(void *self, const char *id, agx_error *err)
{
    tb_self *s = self;
    pthread_mutex_lock(&s->lock);
    long at = tb_find(s, id);
    if (at >= 0) {
        agx_sandbox_info_free(s->live[at]);
        s->live[at] = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return 0; /* already gone is success */
}

static int tb_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    tb_self *s = self;
    pthread_mutex_lock(&s->lock);
    long at = tb_find(s, id);
    agx_sandbox_info *info = at >= 0 ? tb_info_copy(s->live[at]) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (at < 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "%s: no sandbox '%s'", TB_NAME, id);
    if (!info)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    *out = info;
    return 0;
}

static int tb_matches(const agx_sandbox_info *info, const agx_kv *want)
{
    for (size_t i = 0; i < agx_kv_count(want); i++) {
        const char *have = agx_kv_get(agx_sandbox_info_labels_const(info), agx_kv_key_at(want, i));
        if (!have || strcmp(have, agx_kv_value_at(want, i)) != 0)
            return 0;
    }
    return 1;
}

static int tb_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    tb_self *s = self;
    agx_sandbox_list *list = agx_sandbox_list_new();
    if (!list)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < TB_MAX; i++)
        if (s->live[i] && tb_matches(s->live[i], labels))
            agx_sandbox_list_push(list, tb_info_copy(s->live[i]));
    pthread_mutex_unlock(&s->lock);
    *out = list;
    return 0;
}

static const agx_backend_vtable tb_vtable = {
    .abi_version = TB_ABI,
    .struct_size = sizeof(agx_backend_vtable),
    .name = TB_NAME,
    .construct = tb_construct,
    .destruct = tb_destruct,
    .create_sandbox = tb_create,
    .delete_sandbox = tb_delete,
    .get_sandbox = tb_get,
    .list_sandboxes = tb_list,
};

const agx_backend_vtable *agx_test_backend_entry(void);
const agx_backend_vtable *agx_test_backend_entry(void)
{
    return &tb_vtable;
}
