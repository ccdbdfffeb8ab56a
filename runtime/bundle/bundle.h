/* bundle.h (internal) — `agentix build`: turns the runtime (agentix-server, agentix-worker, the
 * built-in modules), the user's modules and extra tools into one self-contained tree under
 * AGX_BUNDLE_PREFIX that carries its own dynamic loader and every shared library it needs, so it
 * runs on any task image (see docs/BUNDLES.md). Flow: spec → closure (ELF DT_NEEDED/RUNPATH,
 * known dlopen'ed plugins) → staged tree (copied, rewritten with patchelf) → content digest →
 * optional deterministic tarball → optional Docker image (Engine API import).
 * Compiled into the static library agx_bundle (linked by the CLI and tests, not by libagentix). */
#ifndef AGX_BUNDLE_BUNDLE_H
#define AGX_BUNDLE_BUNDLE_H

#include "agentix/error.h"

#include <stddef.h>
#include <stdio.h>

/* Where the tree lives inside a task container. Fixed: binaries carry it as their interpreter
 * and RUNPATH, and it must fit in place of libwebsockets' compiled-in plugin folder. */
#define AGX_BUNDLE_PREFIX "/opt/agentix"
#define AGX_BUNDLE_FORMAT 1
#define AGX_BUNDLE_META "BUNDLE"         /* metadata file at the top of the tree */
#define AGX_BUNDLE_DIGEST_MAX 80         /* "sha256:" + 64 hex + NUL fits */
#define AGX_BUNDLE_NAME_MAX 256

/* ---- what to bundle ---- */
typedef struct agx_bundle_spec agx_bundle_spec;

int agx_bundle_spec_new(agx_bundle_spec **out, agx_error *err);
void agx_bundle_spec_free(agx_bundle_spec *s);
/* Reads a bundle.agx file (`key = value` lines; see docs/BUNDLES.md). Relative paths in it are
 * relative to the file's folder. */
int agx_bundle_spec_load(agx_bundle_spec *s, const char *path, agx_error *err);
/* The same for the file's text (len bytes, at most 1 MiB, lines at most 4096 bytes, no NUL):
 * what names the source in messages ("<what>:<line>: …"). The decoder behind load (fuzzed). */
int agx_bundle_spec_parse(agx_bundle_spec *s, const char *text, size_t len, const char *basedir,
                          const char *what, agx_error *err);
/* Applies one setting: key is name, module, tool or file; relative paths are resolved against
 * basedir (NULL = the current directory). The command-line flags go through here too. */
int agx_bundle_spec_set(agx_bundle_spec *s, const char *key, const char *value, const char *basedir,
                        agx_error *err);
/* "name:tag" once set (a name without a tag gets ":latest"), else NULL. */
const char *agx_bundle_spec_name(const agx_bundle_spec *s);

/* Splits "repo:tag" (repo may hold a registry host:port). Validates Docker's reference rules. */
int agx_bundle_name_split(const char *name, char *repo, size_t nrepo, char *tag, size_t ntag,
                          agx_error *err);

/* ---- building ---- */
/* Progress: stage is a short phrase ("resolving libraries"); done/total count its items (total 0
 * when unknown); stage_no counts from 1 up to nstages. */
typedef void (*agx_bundle_progress_fn)(void *user, int stage_no, int nstages, const char *stage,
                                       size_t done, size_t total);

typedef struct agx_bundle_build_options {
    /* The folder holding libagentix with agentix/{bin,modules}/ beside it; NULL = the one of the
     * loaded libagentix (build tree or installed prefix). */
    const char *runtime_libdir;
    agx_bundle_progress_fn progress;
    void *progress_user;
} agx_bundle_build_options;

/* Builds the tree into dir (created; must not exist or be an empty folder): dir holds what ends
 * up at AGX_BUNDLE_PREFIX, including the BUNDLE metadata. digest receives "sha256:<hex>". */
int agx_bundle_build_tree(const agx_bundle_spec *s, const char *dir,
                          const agx_bundle_build_options *opts, char digest[AGX_BUNDLE_DIGEST_MAX],
                          agx_error *err);

/* The content digest of a tree: SHA-256 over every entry below dir except the top-level BUNDLE
 * file, in walk order (each folder's names sorted bytewise), covering paths, kinds, normalized
 * modes, symlink targets and file contents. */
int agx_bundle_digest(const char *dir, char digest[AGX_BUNDLE_DIGEST_MAX], agx_error *err);

/* Writes dir as a POSIX ustar stream whose entries sit under AGX_BUNDLE_PREFIX (without the
 * leading '/'): sorted, mtime 0, uid/gid 0, normalized modes, so equal trees give equal bytes. */
int agx_bundle_write_tar(const char *dir, FILE *out, agx_error *err);

/* Reads the BUNDLE metadata of a built tree. */
int agx_bundle_read_meta(const char *dir, char *name, size_t nname,
                         char digest[AGX_BUNDLE_DIGEST_MAX], agx_error *err);

/* ---- Docker ---- */
typedef struct agx_bundle_docker_options {
    const char *docker_host; /* NULL = $DOCKER_HOST, else unix:///var/run/docker.sock */
    long timeout_s;          /* whole import; 0 = 600 */
} agx_bundle_docker_options;

/* Imports a bundle tarball (as written by agx_bundle_write_tar) through the Docker Engine API
 * (POST /images/create?fromSrc=-) with VOLUME at the prefix, CMD running agentix-server and labels
 * agentix.bundle.format / .digest / .name; tags it name:tag and name:latest. image_id receives
 * "sha256:…". tar is read to its end. */
int agx_bundle_docker_import(FILE *tar, const char *name, const char *digest,
                             const agx_bundle_docker_options *opts, char *image_id, size_t nid,
                             agx_error *err);

#endif
