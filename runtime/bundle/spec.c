/* spec.c — what goes into a bundle (`agentix build` input): the bundle.agx file and the equivalent
 * command-line flags, validated as they arrive so a typo fails before anything is copied. */
#include "runtime/bundle/bundle_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define AGX_SPEC_MAX_FILE (1u << 20)
#define AGX_SPEC_MAX_LINE 4096
#define AGX_TAG_MAX 128

int agx_bundle_spec_new(agx_bundle_spec **out, agx_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
}

void agx_bundle_spec_free(agx_bundle_spec *s)
{
    if (!s)
        return;
    agx_bundle_copy *lists[] = {s->modules, s->tools, s->files};
    size_t counts[] = {s->nmodules, s->ntools, s->nfiles};
    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            free(lists[l][i].src);
            free(lists[l][i].dst);
        }
        free(lists[l]);
    }
    free(s);
}

const char *agx_bundle_spec_name(const agx_bundle_spec *s)
{
    return s->name[0] ? s->name : NULL;
}

static int name_repo_ok(const char *repo, size_t len)
{
    if (len == 0 || !isalnum((unsigned char)repo[0]))
        return 0;
    const char *slash = memchr(repo, '/', len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)repo[i];
        int registry = slash && repo + i < slash; /* "host:port/" may carry ':' and capitals */
        if (!(islower(c) || isdigit(c) || c == '.' || c == '_' || c == '-' || c == '/' ||
              (registry && (c == ':' || isupper(c)))))
            return 0;
    }
    return repo[len - 1] != '/' && !strstr(repo, "//");
}

static int name_tag_ok(const char *tag)
{
    size_t len = strlen(tag);
    if (len == 0 || len > AGX_TAG_MAX || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)tag[i]) || tag[i] == '_' || tag[i] == '.' || tag[i] == '-'))
            return 0;
    return 1;
}

int agx_bundle_name_split(const char *name, char *repo, size_t nrepo, char *tag, size_t ntag,
                          agx_error *err)
{
    const char *slash = strrchr(name, '/');
    const char *colon = strrchr(slash ? slash : name, ':');
    size_t rlen = colon ? (size_t)(colon - name) : strlen(name);
    const char *t = colon ? colon + 1 : "latest";
    if (rlen >= nrepo || strlen(t) >= ntag || !name_repo_ok(name, rlen) || !name_tag_ok(t))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "bundle name '%s' is not a valid image reference NAME[:TAG] (lower-case "
                             "name of letters, digits, '.', '_', '-', '/'; tag of up to %d "
                             "letters, digits, '.', '_', '-')",
                             name, AGX_TAG_MAX);
    memcpy(repo, name, rlen);
    repo[rlen] = '\0';
    memcpy(tag, t, strlen(t) + 1);
    return 0;
}

/* An absolute, existing host path for value (relative ones are taken from basedir). */
static int spec_resolve_path(const char *what, const char *value, const char *basedir, char **out,
                             agx_error *err)
{
    char joined[PATH_MAX];
    int len = value[0] == '/' || !basedir ? snprintf(joined, sizeof joined, "%s", value)
                                          : snprintf(joined, sizeof joined, "%s/%s", basedir, value);
    if (len < 0 || (size_t)len >= sizeof joined)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s path '%s' is too long", what, value);
    char real[PATH_MAX];
    if (!realpath(joined, real))
        return agx_error_set(err, errno == ENOENT ? AGX_ERR_NOT_FOUND : AGX_ERR_IO,
                             "%s '%s': %s", what, joined, strerror(errno));
    *out = strdup(real);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
}

/* A destination inside the tree: relative, no '.', '..' or empty components, not BUNDLE. */
static int spec_dst_ok(const char *dst)
{
    size_t len = strlen(dst);
    if (len == 0 || len >= 256 || dst[0] == '/' || dst[len - 1] == '/' || strstr(dst, "//") ||
        strcmp(dst, AGX_BUNDLE_META) == 0)
        return 0;
    for (const char *p = dst; p;) {
        const char *next = strchr(p, '/');
        size_t n = next ? (size_t)(next - p) : strlen(p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p = next ? next + 1 : NULL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            return 0;
    return 1;
}

/* Appends {src resolved from src_rel, dst} to a list (takes nothing on failure). */
static int spec_push(agx_bundle_copy **arr, size_t *n, const char *what, const char *src_rel,
                     const char *dst, const char *basedir, agx_error *err)
{
    if (*n >= AGX_BUNDLE_MAX_ITEMS)
        return agx_error_set(err, AGX_ERR_LIMIT, "more than %d %s entries", AGX_BUNDLE_MAX_ITEMS,
                             what);
    agx_bundle_copy c = {0};
    int rc = spec_resolve_path(what, src_rel, basedir, &c.src, err);
    if (rc != 0)
        return rc;
    agx_bundle_copy *grown = realloc(*arr, (*n + 1) * sizeof *grown);
    if (grown)
        *arr = grown;
    if (!grown || !(c.dst = strdup(dst))) {
        free(c.src);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    (*arr)[(*n)++] = c;
    return 0;
}

static int spec_add_file(agx_bundle_spec *s, const char *value, const char *basedir, agx_error *err)
{
    const char *colon = strrchr(value, ':');
    if (!colon || colon == value || !spec_dst_ok(colon + 1))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "file '%s': expected SRC:DST with DST a relative path inside the "
                             "bundle (no '..', not %s)",
                             value, AGX_BUNDLE_META);
    char src_rel[PATH_MAX];
    if ((size_t)(colon - value) >= sizeof src_rel)
        return agx_error_set(err, AGX_ERR_LIMIT, "file '%s': path too long", value);
    memcpy(src_rel, value, (size_t)(colon - value));
    src_rel[colon - value] = '\0';
    return spec_push(&s->files, &s->nfiles, "file", src_rel, colon + 1, basedir, err);
}

int agx_bundle_spec_set(agx_bundle_spec *s, const char *key, const char *value, const char *basedir,
                        agx_error *err)
{
    if (!s || !key || !value || !*value)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "'%s' needs a value", key ? key : "?");
    if (strcmp(key, "name") == 0) {
        char repo[AGX_BUNDLE_NAME_MAX], tag[AGX_TAG_MAX + 1];
        int rc = agx_bundle_name_split(value, repo, sizeof repo, tag, sizeof tag, err);
        if (rc != 0)
            return rc; /* repo and tag are not filled */
        size_t rlen = strlen(repo), tlen = strlen(tag);
        if (rlen + 1 + tlen >= sizeof s->name)
            rc = agx_error_set(err, AGX_ERR_LIMIT, "bundle name '%s' is too long", value);
        if (rc == 0) { /* lengths checked above; memcpy keeps -Wformat-truncation quiet */
            memcpy(s->name, repo, rlen);
            s->name[rlen] = ':';
            memcpy(s->name + rlen + 1, tag, tlen + 1);
        }
        return rc;
    }
    if (strcmp(key, "file") == 0)
        return spec_add_file(s, value, basedir, err);
    int is_module = strcmp(key, "module") == 0;
    if (!is_module && strcmp(key, "tool") != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "unknown setting '%s' (expected name, module, tool or file)", key);
    const char *slash = strrchr(value, '/');
    const char *base = slash ? slash + 1 : value;
    if (!spec_dst_ok(base))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s '%s' must name a file", key, value);
    return is_module ? spec_push(&s->modules, &s->nmodules, key, value, base, basedir, err)
                     : spec_push(&s->tools, &s->ntools, key, value, base, basedir, err);
}

static char *spec_trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        p[--n] = '\0';
    return p;
}

static int spec_line(agx_bundle_spec *s, char *line, const char *basedir, agx_error *err)
{
    char *p = spec_trim(line);
    if (*p == '\0' || *p == '#')
        return 0;
    char *eq = strchr(p, '=');
    if (!eq)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "expected 'key = value'");
    *eq = '\0';
    return agx_bundle_spec_set(s, spec_trim(p), spec_trim(eq + 1), basedir, err);
}

int agx_bundle_spec_parse(agx_bundle_spec *s, const char *text, size_t len, const char *basedir,
                          const char *what, agx_error *err)
{
    if (len > AGX_SPEC_MAX_FILE)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s is larger than %u bytes", what,
                             AGX_SPEC_MAX_FILE);
    char line[AGX_SPEC_MAX_LINE + 1];
    size_t lineno = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        lineno++;
        int rc = 0;
        if (n > AGX_SPEC_MAX_LINE)
            rc = agx_error_set(err, AGX_ERR_LIMIT, "line longer than %d bytes", AGX_SPEC_MAX_LINE);
        else if (memchr(text + at, '\0', n))
            rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "a NUL byte in the line");
        else {
            memcpy(line, text + at, n);
            line[n] = '\0';
            rc = spec_line(s, line, basedir, err);
        }
        if (rc != 0) {
            agx_error_prefix(err, "%s:%zu", what, lineno);
            return rc;
        }
        at += n + (nl ? 1 : 0);
    }
    return 0;
}

int agx_bundle_spec_load(agx_bundle_spec *s, const char *path, agx_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return agx_error_set(err, errno == ENOENT ? AGX_ERR_NOT_FOUND : AGX_ERR_IO,
                             "cannot open bundle file %s: %s", path, strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    char *text = malloc(AGX_SPEC_MAX_FILE + 1);
    size_t len = text ? fread(text, 1, AGX_SPEC_MAX_FILE + 1, f) : 0;
    int rc = 0;
    if (!text)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    else if (ferror(f))
        rc = agx_error_set(err, AGX_ERR_IO, "cannot read bundle file %s", path);
    fclose(f);
    if (rc == 0)
        rc = agx_bundle_spec_parse(s, text, len, dir, path, err);
    free(text);
    return rc;
}
