/* elf.c — parses the dynamic-linking facts of one ELF64 file (bundle builder, build host side).
 * The file is untrusted input: every table is checked against the file size before it is read,
 * string offsets against DT_STRSZ, and counts are bounded. */
#include "runtime/bundle/elf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct elf_view {
    const uint8_t *data;
    size_t len;
    Elf64_Ehdr eh; /* copied: the buffer need not be aligned */
} elf_view;

int agx_elf_is_elf(const uint8_t *data, size_t len)
{
    return len >= SELFMAG && memcmp(data, ELFMAG, SELFMAG) == 0;
}

static int elf_range_ok(const elf_view *v, uint64_t off, uint64_t size)
{
    return off <= v->len && size <= v->len - off;
}

static Elf64_Phdr elf_phdr(const elf_view *v, size_t i)
{
    Elf64_Phdr ph;
    memcpy(&ph, v->data + v->eh.e_phoff + i * sizeof ph, sizeof ph);
    return ph;
}

/* Maps a virtual address to a file offset through the PT_LOAD segments. */
static int elf_vaddr_to_off(const elf_view *v, uint64_t vaddr, uint64_t *off)
{
    for (size_t i = 0; i < v->eh.e_phnum; i++) {
        Elf64_Phdr ph = elf_phdr(v, i);
        if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz)
            continue;
        *off = ph.p_offset + (vaddr - ph.p_vaddr);
        return 0;
    }
    return -1;
}

static int elf_header_check(elf_view *v, agx_error *err)
{
    if (v->len < sizeof(Elf64_Ehdr) || !agx_elf_is_elf(v->data, v->len))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "not an ELF file (too short or bad magic)");
    if (v->data[EI_CLASS] != ELFCLASS64 || v->data[EI_DATA] != ELFDATA2LSB)
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "only 64-bit little-endian ELF files can be bundled");
    memcpy(&v->eh, v->data, sizeof v->eh);
    if (v->eh.e_phnum && (v->eh.e_phentsize != sizeof(Elf64_Phdr) ||
                           !elf_range_ok(v, v->eh.e_phoff, (uint64_t)v->eh.e_phnum * sizeof(Elf64_Phdr))))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "ELF program header table out of bounds");
    return 0;
}

/* A NUL-terminated string at [off, off+max) of the file, copied; NULL when unterminated. */
static char *elf_strdup_at(const elf_view *v, uint64_t off, uint64_t max)
{
    if (off >= v->len)
        return NULL;
    if (max > v->len - off)
        max = v->len - off;
    const void *nul = memchr(v->data + off, '\0', max);
    if (!nul)
        return NULL;
    return strdup((const char *)(v->data + off));
}

static int elf_read_interp(const elf_view *v, agx_elf_info *out, agx_error *err)
{
    for (size_t i = 0; i < v->eh.e_phnum; i++) {
        Elf64_Phdr ph = elf_phdr(v, i);
        if (ph.p_type == PT_DYNAMIC)
            out->is_dynamic = 1;
        if (ph.p_type != PT_INTERP)
            continue;
        if (!elf_range_ok(v, ph.p_offset, ph.p_filesz) || ph.p_filesz == 0 || out->interp)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "bad PT_INTERP segment");
        out->interp = elf_strdup_at(v, ph.p_offset, ph.p_filesz);
        if (!out->interp)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "PT_INTERP is not a C string");
    }
    return 0;
}

typedef struct elf_dyn_scan {
    uint64_t strtab, strsz, soname, runpath, rpath;
    int has_strtab, has_soname, has_runpath, has_rpath;
    uint64_t needed[AGX_ELF_MAX_NEEDED];
    size_t nneeded;
} elf_dyn_scan;

static int elf_scan_dynamic(const elf_view *v, const Elf64_Phdr *dyn, elf_dyn_scan *s, agx_error *err)
{
    if (!elf_range_ok(v, dyn->p_offset, dyn->p_filesz))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "PT_DYNAMIC out of bounds");
    size_t n = dyn->p_filesz / sizeof(Elf64_Dyn);
    for (size_t i = 0; i < n; i++) {
        Elf64_Dyn d;
        memcpy(&d, v->data + dyn->p_offset + i * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL)
            break;
        uint64_t val = d.d_un.d_val;
        switch (d.d_tag) {
        case DT_STRTAB: s->strtab = val, s->has_strtab = 1; break;
        case DT_STRSZ: s->strsz = val; break;
        case DT_SONAME: s->soname = val, s->has_soname = 1; break;
        case DT_RUNPATH: s->runpath = val, s->has_runpath = 1; break;
        case DT_RPATH: s->rpath = val, s->has_rpath = 1; break;
        case DT_NEEDED:
            if (s->nneeded == AGX_ELF_MAX_NEEDED)
                return agx_error_set(err, AGX_ERR_LIMIT, "more than %d DT_NEEDED entries",
                                     AGX_ELF_MAX_NEEDED);
            s->needed[s->nneeded++] = val;
            break;
        default: break;
        }
    }
    return 0;
}

static int elf_dyn_string(const elf_view *v, uint64_t stroff, const elf_dyn_scan *s, uint64_t at,
                          char **out, agx_error *err)
{
    if (at >= s->strsz || !(*out = elf_strdup_at(v, stroff + at, s->strsz - at)))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "dynamic string out of bounds");
    return 0;
}

static int elf_read_dynamic(const elf_view *v, agx_elf_info *out, agx_error *err)
{
    Elf64_Phdr dyn = {0};
    int found = 0;
    for (size_t i = 0; i < v->eh.e_phnum && !found; i++)
        if ((dyn = elf_phdr(v, i)).p_type == PT_DYNAMIC)
            found = 1;
    if (!found)
        return 0;
    elf_dyn_scan *s = calloc(1, sizeof *s);
    if (!s)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory reading ELF");
    int rc = elf_scan_dynamic(v, &dyn, s, err);
    uint64_t stroff = 0;
    if (rc == 0 && (s->has_soname || s->has_runpath || s->has_rpath || s->nneeded) &&
        (!s->has_strtab || elf_vaddr_to_off(v, s->strtab, &stroff) != 0 ||
         !elf_range_ok(v, stroff, s->strsz)))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "DT_STRTAB missing or out of bounds");
    if (rc == 0 && s->has_soname)
        rc = elf_dyn_string(v, stroff, s, s->soname, &out->soname, err);
    if (rc == 0 && s->has_runpath)
        rc = elf_dyn_string(v, stroff, s, s->runpath, &out->runpath, err);
    if (rc == 0 && s->has_rpath)
        rc = elf_dyn_string(v, stroff, s, s->rpath, &out->rpath, err);
    if (rc == 0 && s->nneeded && !(out->needed = calloc(s->nneeded, sizeof(char *))))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory reading ELF");
    for (size_t i = 0; rc == 0 && i < s->nneeded; i++) {
        rc = elf_dyn_string(v, stroff, s, s->needed[i], &out->needed[i], err);
        if (rc == 0)
            out->nneeded++;
    }
    free(s);
    return rc;
}

int agx_elf_parse(const uint8_t *data, size_t len, agx_elf_info *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    elf_view v = {.data = data, .len = len};
    int rc = elf_header_check(&v, err);
    if (rc == 0) {
        out->type = v.eh.e_type;
        out->machine = v.eh.e_machine;
        rc = elf_read_interp(&v, out, err);
    }
    if (rc == 0)
        rc = elf_read_dynamic(&v, out, err);
    if (rc != 0)
        agx_elf_info_free(out);
    return rc;
}

void agx_elf_info_free(agx_elf_info *info)
{
    if (!info)
        return;
    free(info->interp);
    free(info->soname);
    free(info->runpath);
    free(info->rpath);
    for (size_t i = 0; i < info->nneeded; i++)
        free(info->needed[i]);
    free(info->needed);
    memset(info, 0, sizeof *info);
}

int agx_file_load(const char *path, size_t max, uint8_t **data, size_t *len, agx_error *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return agx_error_set(err, errno == ENOENT ? AGX_ERR_NOT_FOUND : AGX_ERR_IO,
                             "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s is not a regular file", path);
    else if ((uint64_t)st.st_size > max)
        rc = agx_error_set(err, AGX_ERR_LIMIT, "%s is larger than %zu bytes", path, max);
    uint8_t *buf = rc == 0 ? malloc(st.st_size ? (size_t)st.st_size : 1) : NULL;
    if (rc == 0 && !buf)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory reading %s", path);
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot read %s: %s", path,
                               r < 0 ? strerror(errno) : "file shrank while reading");
        else
            got += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return 0;
}

int agx_elf_read(const char *path, agx_elf_info *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t len;
    int rc = agx_file_load(path, AGX_ELF_MAX_FILE, &data, &len, err);
    if (rc != 0)
        return rc;
    if (!agx_elf_is_elf(data, len)) {
        free(data);
        return 1;
    }
    rc = agx_elf_parse(data, len, out, err);
    if (rc != 0)
        agx_error_prefix(err, "%s", path);
    free(data);
    return rc;
}
