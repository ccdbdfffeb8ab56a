/* plugin_scan.c — discovery: walks the plugin search path ($AGENTIX_PLUGIN_PATH, then the folder
 * beside libagentix, then the compiled-in install folder), reads every `*.agxplugin` manifest and
 * answers "which manifest provides backend X" with clear NOT_FOUND / CONFLICT errors. A broken
 * manifest becomes a candidate carrying its error, so it never hides the others. */
#include "core/host/paths.h"
#include "core/host/plugin_registry.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AGX_INSTALL_FULL_PLUGINDIR
#define AGX_INSTALL_FULL_PLUGINDIR ""
#endif

#define AGX_MANIFEST_SUFFIX ".agxplugin"

/* A growable string for joined lists (search path, available names). */
typedef struct agx_strbuf {
    char *s;
    size_t len, cap;
    int failed;
} agx_strbuf;

static void agx_strbuf_add(agx_strbuf *b, const char *sep, const char *s)
{
    if (b->failed)
        return;
    size_t need = b->len + (b->len ? strlen(sep) : 0) + strlen(s) + 1;
    if (need > b->cap) {
        size_t cap = need * 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    b->len += (size_t)sprintf(b->s + b->len, "%s%s", b->len ? sep : "", s);
}

static int agx_scan_push(agx_plugin_scan *scan, agx_plugin_candidate **out)
{
    if (scan->count == scan->cap) {
        size_t cap = scan->cap ? scan->cap * 2 : 16;
        agx_plugin_candidate *items = realloc(scan->items, cap * sizeof *items);
        if (!items)
            return AGX_ERR_NO_MEMORY;
        scan->items = items;
        scan->cap = cap;
    }
    *out = &scan->items[scan->count++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int agx_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int agx_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void agx_scan_manifest(agx_plugin_scan *scan, agx_plugin_candidate *c, const char *dir,
                              const char *file)
{
    if (agx_path_join(c->manifest, sizeof c->manifest, dir, file) != 0) {
        snprintf(c->manifest, sizeof c->manifest, "%.*s", (int)(sizeof c->manifest - 1), file);
        c->status = agx_error_set(&c->error, AGX_ERR_LIMIT, "%s/%s: path too long", dir, file);
        return;
    }
    agx_manifest m;
    c->status = agx_manifest_read(c->manifest, &m, &c->error);
    memcpy(c->name, m.name, sizeof c->name);
    if (c->status != 0)
        return;
    memcpy(c->symbol, m.symbol, sizeof c->symbol);
    int rc = m.library[0] == '/'
                 ? (snprintf(c->library, sizeof c->library, "%s", m.library) >= (int)sizeof c->library
                        ? AGX_ERR_LIMIT
                        : 0)
                 : agx_path_join(c->library, sizeof c->library, dir, m.library);
    if (rc != 0)
        c->status = agx_error_set(&c->error, AGX_ERR_LIMIT, "%s: library path is too long",
                                  c->manifest);
    (void)scan;
}

/* Reads one folder's manifests in name order (readdir order is arbitrary; reports and conflict
 * messages should not be). A missing folder is normal (e.g. nothing installed yet). */
static int agx_scan_dir(agx_plugin_scan *scan, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < AGX_PLUGIN_SCAN_MAX) {
        if (!agx_has_suffix(de->d_name, AGX_MANIFEST_SUFFIX))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                rc = AGX_ERR_NO_MEMORY;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = AGX_ERR_NO_MEMORY;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n)
        qsort(names, n, sizeof *names, agx_cmp_str);
    for (size_t i = 0; i < n; i++) {
        agx_plugin_candidate *c;
        if (rc == 0 && scan->count >= AGX_PLUGIN_SCAN_MAX)
            rc = AGX_ERR_LIMIT;
        if (rc == 0 && (rc = agx_scan_push(scan, &c)) == 0)
            agx_scan_manifest(scan, c, dir, names[i]);
        free(names[i]);
    }
    free(names);
    return rc == AGX_ERR_LIMIT ? 0 : rc;
}

/* Folders in search order, without repeats (the same folder reached twice, e.g. the build plugin
 * folder also listed in $AGENTIX_PLUGIN_PATH, must not make every plugin conflict with itself). */
typedef struct agx_dirlist {
    char dirs[64][PATH_MAX];
    char keys[64][PATH_MAX];
    size_t count;
} agx_dirlist;

static void agx_dirlist_add(agx_dirlist *l, const char *dir, size_t len)
{
    if (len == 0 || len >= PATH_MAX || l->count >= sizeof l->dirs / sizeof l->dirs[0])
        return;
    char *d = l->dirs[l->count], *k = l->keys[l->count];
    memcpy(d, dir, len);
    d[len] = '\0';
    if (!realpath(d, k))
        memcpy(k, d, len + 1);
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->keys[i], k) == 0)
            return;
    l->count++;
}

static void agx_dirlist_build(agx_dirlist *l)
{
    l->count = 0;
    const char *env = getenv("AGENTIX_PLUGIN_PATH");
    for (const char *p = env; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        agx_dirlist_add(l, p, len);
        p = colon ? colon + 1 : p + len;
    }
    /* The folder beside the loaded libagentix is the one that matches its ABI; the compiled-in
     * install folder is only a fallback for when dladdr cannot tell where we are. Searching both
     * would make a build tree on a machine with agentix installed see every backend twice. */
    char beside[PATH_MAX];
    if (agx_path_plugin_dir(beside, sizeof beside) == 0)
        agx_dirlist_add(l, beside, strlen(beside));
    else
        agx_dirlist_add(l, AGX_INSTALL_FULL_PLUGINDIR, strlen(AGX_INSTALL_FULL_PLUGINDIR));
}

void agx_plugin_scan_dispose(agx_plugin_scan *scan)
{
    if (!scan)
        return;
    free(scan->items);
    free(scan->search_path);
    memset(scan, 0, sizeof *scan);
}

int agx_plugin_scan_run(agx_plugin_scan *scan, agx_error *err)
{
    memset(scan, 0, sizeof *scan);
    agx_dirlist *dirs = malloc(sizeof *dirs);
    if (!dirs)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory scanning plugins");
    agx_dirlist_build(dirs);
    agx_strbuf path = {0};
    agx_strbuf_add(&path, "", "");
    int rc = 0;
    for (size_t i = 0; i < dirs->count && rc == 0; i++) {
        agx_strbuf_add(&path, ":", dirs->dirs[i]);
        /* Manifests and libraries are named by the canonical folder, so a relative entry in
         * $AGENTIX_PLUGIN_PATH still names the same file after the host changes directory. */
        rc = agx_scan_dir(scan, dirs->keys[i]);
    }
    free(dirs);
    scan->search_path = path.s;
    if (rc == 0 && path.failed)
        rc = AGX_ERR_NO_MEMORY;
    if (rc != 0) {
        agx_plugin_scan_dispose(scan);
        return agx_error_set(err, rc, "scanning the plugin path failed: %s",
                             agx_error_code_name(rc));
    }
    return 0;
}

/* "a, b, c": in-process names first, then manifest names in search order, each once. */
static void agx_available_names(const agx_plugin_scan *scan, agx_strbuf *b)
{
    const agx_backend_vtable *reg[64];
    size_t nreg = agx_plugin_registered_snapshot(reg, 64);
    for (size_t i = 0; i < nreg && i < 64; i++)
        agx_strbuf_add(b, ", ", reg[i]->name);
    for (size_t i = 0; i < scan->count; i++) {
        const char *name = scan->items[i].name;
        int dup = !*name;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(scan->items[j].name, name) == 0;
        for (size_t j = 0; j < nreg && j < 64 && !dup; j++)
            dup = strcmp(reg[j]->name, name) == 0;
        if (!dup)
            agx_strbuf_add(b, ", ", name);
    }
}

static int agx_scan_not_found(const agx_plugin_scan *scan, const char *name, agx_error *err)
{
    agx_strbuf names = {0};
    agx_available_names(scan, &names);
    const char *list = names.s && !names.failed ? names.s : "(none)";
    const char *path = scan->search_path && *scan->search_path ? scan->search_path : "(empty)";
    agx_error_set(err, AGX_ERR_NOT_FOUND,
                  "no deployment backend '%s'; available: %s (searched: %s; add folders with "
                  "AGENTIX_PLUGIN_PATH)",
                  name, list, path);
    /* The message may be truncated; the detail keeps the lists and any unreadable manifests. */
    char detail[AGX_ERROR_DETAIL_MAX];
    int off = snprintf(detail, sizeof detail, "available: %s\nsearched: %s\n", list, path);
    for (size_t i = 0; i < scan->count && off > 0 && (size_t)off < sizeof detail; i++)
        if (scan->items[i].status != 0)
            off += snprintf(detail + off, sizeof detail - (size_t)off, "unreadable: %s\n",
                            scan->items[i].error.message);
    agx_error_set_detail(err, detail, (size_t)-1);
    free(names.s);
    return AGX_ERR_NOT_FOUND;
}

int agx_plugin_scan_find(const agx_plugin_scan *scan, const char *name, size_t *index,
                         agx_error *err)
{
    size_t first = 0, claims = 0, second = 0;
    for (size_t i = 0; i < scan->count; i++) {
        if (strcmp(scan->items[i].name, name) != 0)
            continue;
        if (claims == 0)
            first = i;
        else if (claims == 1)
            second = i;
        claims++;
    }
    if (claims == 0)
        return agx_scan_not_found(scan, name, err);
    if (claims > 1)
        return agx_error_set(err, AGX_ERR_CONFLICT,
                             "backend '%s' is claimed by %zu manifests: %s and %s%s; remove or "
                             "rename one of them",
                             name, claims, scan->items[first].manifest,
                             scan->items[second].manifest, claims > 2 ? " (and more)" : "");
    const agx_plugin_candidate *c = &scan->items[first];
    if (c->status != 0) {
        agx_error_copy(err, &c->error);
        agx_error_prefix(err, "backend '%s'", name);
        return c->status;
    }
    *index = first;
    return 0;
}
