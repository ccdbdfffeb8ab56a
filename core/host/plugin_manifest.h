/* plugin_manifest.h (internal) — the `*.agxplugin` manifest format (see include/agentix/plugin.h):
 * `key = value` lines, `#` starts a comment, name/library/symbol required. Manifests are input from
 * the filesystem, so the reader bounds the file size and validates every field. */
#ifndef AGX_CORE_PLUGIN_MANIFEST_H
#define AGX_CORE_PLUGIN_MANIFEST_H

#include <limits.h>
#include <stddef.h>

#include "agentix/error.h"

#define AGX_MANIFEST_MAX_BYTES (16 * 1024)
#define AGX_MANIFEST_NAME_MAX 64
#define AGX_MANIFEST_SYMBOL_MAX 128

typedef struct agx_manifest {
    char name[AGX_MANIFEST_NAME_MAX + 1];     /* [A-Za-z0-9._-]+ */
    char library[PATH_MAX];                   /* as written: absolute or relative to the manifest */
    char symbol[AGX_MANIFEST_SYMBOL_MAX + 1]; /* a C identifier */
} agx_manifest;

/* Parses len bytes of text; `origin` (a file name) prefixes every error: "<origin>:<line>: …".
 * On failure out->name still holds the name if a valid name line was seen, so a broken manifest
 * can be reported under the name it claims. */
int agx_manifest_parse(const char *text, size_t len, const char *origin, agx_manifest *out,
                       agx_error *err);

/* Reads and parses a manifest file (at most AGX_MANIFEST_MAX_BYTES). */
int agx_manifest_read(const char *path, agx_manifest *out, agx_error *err);

/* 1 when s is a valid backend name. */
int agx_manifest_name_valid(const char *s);

#endif
