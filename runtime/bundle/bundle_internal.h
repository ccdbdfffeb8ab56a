/* bundle_internal.h (internal) — what the bundle builder's files share: the spec's contents, the
 * build plan (every file of the tree and where it comes from), and the helpers each stage uses. */
#ifndef AGX_BUNDLE_INTERNAL_H
#define AGX_BUNDLE_INTERNAL_H

#include "runtime/bundle/bundle.h"

#include <stdint.h>
#include <sys/stat.h>

#define AGX_BUNDLE_MAX_ITEMS 1024   /* modules, tools or files in one spec */
#define AGX_BUNDLE_MAX_ENTRIES 8192 /* files in one tree */
#define AGX_BUNDLE_MAX_DEPTH 32     /* folder depth of a tree */

typedef struct agx_bundle_copy {
    char *src; /* absolute host path */
    char *dst; /* path relative to the prefix */
} agx_bundle_copy;

/* Modules and tools keep the file name they were given (tool = /bin/sh is bin/sh even where
 * /bin/sh links to dash); src is the resolved file. */
struct agx_bundle_spec {
    char name[AGX_BUNDLE_NAME_MAX];
    agx_bundle_copy *modules, *tools, *files;
    size_t nmodules, ntools, nfiles;
};

/* ---- the plan: one entry per file of the tree ---- */
typedef enum agx_plan_kind {
    AGX_PLAN_PLAIN,   /* copied as is (data, scripts, static binaries) */
    AGX_PLAN_EXEC,    /* dynamic executable: interpreter and RUNPATH rewritten */
    AGX_PLAN_LIB,     /* shared object: RUNPATH rewritten */
    AGX_PLAN_INTERP,  /* the dynamic loader itself: copied as is */
    AGX_PLAN_SYMLINK  /* src is the link target */
} agx_plan_kind;

typedef struct agx_plan_entry {
    char *dst;
    char *src;
    agx_plan_kind kind;
    int executable;
    /* libwebsockets: its compiled-in evlib plugin folder (host path) to point at the bundle. */
    char *plugin_dir_from;
} agx_plan_entry;

typedef struct agx_plan {
    agx_plan_entry *e;
    size_t n, cap;
    char *interp_name; /* basename of the loader, e.g. ld-linux-x86-64.so.2 */
    uint16_t machine;
} agx_plan;

void agx_plan_free(agx_plan *p);
agx_plan_entry *agx_plan_find(agx_plan *p, const char *dst);
/* Adds an entry; AGX_ERR_CONFLICT when dst is taken by a different source. *added is 0 when the
 * same dst/src pair was already planned. */
int agx_plan_add(agx_plan *p, const char *dst, const char *src, agx_plan_kind kind,
                 int *added, agx_error *err);

/* closure.c: plans a file given by the user or the runtime at dst, classifying it (dynamic
 * executable, shared object, or a plain file such as a script or a static binary). want_lib
 * requires a shared object (modules). */
int agx_closure_add_root(agx_plan *p, const char *dst, const char *src, int want_lib, agx_error *err);
/* closure.c: adds the roots already in the plan's ELF entries' library closure, the loader and
 * the plugins libraries dlopen at run time. */
int agx_closure_resolve(agx_plan *p, agx_error *err);

/* stage.c: writes the plan into dir and rewrites the ELF files with patchelf. */
int agx_stage_write(const agx_plan *p, const char *dir, const agx_bundle_build_options *o,
                    int stage_no, int nstages, agx_error *err);

/* tree.c: walks a tree in order (each folder's names sorted), calling cb for every entry below
 * dir with its relative path, normalized mode and (for symlinks) target. */
typedef int (*agx_tree_cb)(void *user, const char *rel, const char *full, const struct stat *st,
                           unsigned mode, const char *link, agx_error *err);
int agx_tree_walk(const char *dir, agx_tree_cb cb, void *user, agx_error *err);

/* Small helpers. */
int agx_bundle_mkdirs(const char *base, const char *rel_dir, agx_error *err); /* mkdir -p, 0755 */
char *agx_bundle_join(const char *a, const char *b); /* malloc'ed "a/b", NULL on OOM */
const char *agx_bundle_basename(const char *path);

#endif
