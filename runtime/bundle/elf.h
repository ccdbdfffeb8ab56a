/* elf.h (internal) — the bundle builder's ELF reader: what the dynamic loader will need for one
 * binary (interpreter, DT_NEEDED, RUNPATH/RPATH, SONAME), read from the file itself so nothing
 * from the build host is ever executed to find out. Only ELF64 little-endian is understood (x86-64
 * and aarch64 Linux); every offset in the file is bounds-checked, so a hostile file fails cleanly. */
#ifndef AGX_BUNDLE_ELF_H
#define AGX_BUNDLE_ELF_H

#include "agentix/error.h"

#include <stddef.h>
#include <stdint.h>

#define AGX_ELF_MAX_NEEDED 512         /* DT_NEEDED entries kept per object */
#define AGX_ELF_MAX_FILE (1024u << 20) /* files larger than 1 GiB are refused */

typedef struct agx_elf_info {
    uint16_t type;    /* ET_EXEC, ET_DYN, ... */
    uint16_t machine; /* EM_X86_64, EM_AARCH64, ... */
    char *interp;     /* PT_INTERP, or NULL for a static binary or a library */
    char *soname;     /* DT_SONAME or NULL */
    char *runpath;    /* DT_RUNPATH or NULL */
    char *rpath;      /* DT_RPATH or NULL */
    char **needed;    /* DT_NEEDED names in file order */
    size_t nneeded;
    int is_dynamic; /* has PT_DYNAMIC */
} agx_elf_info;

/* 1 when the buffer starts with the ELF magic (whatever its class). */
int agx_elf_is_elf(const uint8_t *data, size_t len);

/* Parses an in-memory image. AGX_ERR_UNSUPPORTED for an ELF of another class or byte order,
 * AGX_ERR_INVALID_ARGUMENT for a malformed one (the message says which part), AGX_ERR_LIMIT when
 * it declares more than AGX_ELF_MAX_NEEDED libraries. On failure *out is left empty. */
int agx_elf_parse(const uint8_t *data, size_t len, agx_elf_info *out, agx_error *err);

/* Reads and parses a file. Returns 1 (and an empty *out) when the file is not ELF at all, 0 when
 * parsed, or a negative error. */
int agx_elf_read(const char *path, agx_elf_info *out, agx_error *err);

void agx_elf_info_free(agx_elf_info *info);

/* Loads a whole file (at most max bytes) into a malloc'ed buffer. */
int agx_file_load(const char *path, size_t max, uint8_t **data, size_t *len, agx_error *err);

#endif
