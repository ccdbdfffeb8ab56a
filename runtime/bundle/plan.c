/* plan.c — the build plan: every file the bundle tree will hold, keyed by its path inside the
 * prefix, with where it comes from on the build host. Two sources claiming one path conflict. */
#include "runtime/bundle/bundle_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void agx_plan_free(agx_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->e[i].dst);
        free(p->e[i].src);
        free(p->e[i].plugin_dir_from);
    }
    free(p->e);
    free(p->interp_name);
    memset(p, 0, sizeof *p);
}

agx_plan_entry *agx_plan_find(agx_plan *p, const char *dst)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->e[i].dst, dst) == 0)
            return &p->e[i];
    return NULL;
}

int agx_plan_add(agx_plan *p, const char *dst, const char *src, agx_plan_kind kind, int *added,
                 agx_error *err)
{
    if (added)
        *added = 0;
    agx_plan_entry *old = agx_plan_find(p, dst);
    if (old) {
        if (strcmp(old->src, src) == 0 && old->kind == kind)
            return 0;
        return agx_error_set(err, AGX_ERR_CONFLICT,
                             "two files claim %s/%s: %s and %s (rename one of them)",
                             AGX_BUNDLE_PREFIX, dst, old->src, src);
    }
    if (p->n >= AGX_BUNDLE_MAX_ENTRIES)
        return agx_error_set(err, AGX_ERR_LIMIT, "more than %d files in the bundle",
                             AGX_BUNDLE_MAX_ENTRIES);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        agx_plan_entry *grown = realloc(p->e, cap * sizeof *grown);
        if (!grown)
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        p->e = grown;
        p->cap = cap;
    }
    agx_plan_entry *e = &p->e[p->n];
    memset(e, 0, sizeof *e);
    e->dst = strdup(dst);
    e->src = strdup(src);
    if (!e->dst || !e->src) {
        free(e->dst);
        free(e->src);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    e->kind = kind;
    e->executable = kind != AGX_PLAN_PLAIN;
    p->n++;
    if (added)
        *added = 1;
    return 0;
}

char *agx_bundle_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = malloc(la + lb + 2);
    if (!out)
        return NULL;
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
    return out;
}

const char *agx_bundle_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int agx_bundle_mkdirs(const char *base, const char *rel_dir, agx_error *err)
{
    char *full = agx_bundle_join(base, rel_dir);
    if (!full)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = 0;
    size_t skip = strlen(base) + 1;
    for (char *p = full + skip;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(full, 0755) != 0 && errno != EEXIST)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot create folder %s: %s", full, strerror(errno));
        else if (chmod(full, 0755) != 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot set mode of %s: %s", full, strerror(errno));
        *p = saved;
        if (rc != 0 || saved == '\0')
            break;
    }
    free(full);
    return rc;
}
