/* plugin_manifest.c — reading `*.agxplugin` manifests, the first step of discovery:
 * manifest → (name, shared object, entry symbol) → plugin_registry.c loads it. */
#include "core/host/plugin_manifest.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int agx_manifest_name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return n > 0 && n <= AGX_MANIFEST_NAME_MAX;
}

static int agx_symbol_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalpha(c) || c == '_' || (n > 0 && isdigit(c))))
            return 0;
    }
    return n > 0 && n <= AGX_MANIFEST_SYMBOL_MAX;
}

/* Trims [*b, *e) in place of ASCII blanks. */
static void agx_trim(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t' || **b == '\r'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

typedef struct agx_manifest_field {
    const char *key;
    char *dst;
    size_t cap;
    int seen;
} agx_manifest_field;

static int agx_manifest_line(const char *b, const char *e, const char *origin, unsigned line,
                             agx_manifest_field *fields, size_t nfields, agx_error *err)
{
    const char *hash = memchr(b, '#', (size_t)(e - b));
    if (hash)
        e = hash;
    agx_trim(&b, &e);
    if (b == e)
        return 0;
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s:%u: expected 'key = value' (keys: name, library, symbol)", origin,
                             line);
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    agx_trim(&kb, &ke);
    agx_trim(&vb, &ve);
    size_t klen = (size_t)(ke - kb), vlen = (size_t)(ve - vb);
    if (klen == 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s:%u: missing key before '='",
                             origin, line);
    for (size_t i = 0; i < nfields; i++) {
        agx_manifest_field *f = &fields[i];
        if (strlen(f->key) != klen || memcmp(f->key, kb, klen) != 0)
            continue;
        if (f->seen)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s:%u: '%s' given twice",
                                 origin, line, f->key);
        if (vlen == 0)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s:%u: '%s' has no value",
                                 origin, line, f->key);
        if (vlen >= f->cap)
            return agx_error_set(err, AGX_ERR_LIMIT, "%s:%u: '%s' is longer than %zu bytes",
                                 origin, line, f->key, f->cap - 1);
        char tmp[PATH_MAX];
        memcpy(tmp, vb, vlen);
        tmp[vlen] = '\0';
        if (i == 0 && !agx_manifest_name_valid(tmp))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "%s:%u: name '%s' may only use letters, digits, '.', '_' and '-'",
                                 origin, line, tmp);
        if (i == 2 && !agx_symbol_valid(tmp))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "%s:%u: symbol '%s' is not a C identifier", origin, line, tmp);
        memcpy(f->dst, tmp, vlen + 1);
        f->seen = 1;
        return 0;
    }
    /* Unknown keys are accepted so that manifests written for a newer agentix (with extra,
     * optional keys) still load here. */
    return 0;
}

int agx_manifest_parse(const char *text, size_t len, const char *origin, agx_manifest *out,
                       agx_error *err)
{
    memset(out, 0, sizeof *out);
    if (!origin)
        origin = "(manifest)";
    if (len > AGX_MANIFEST_MAX_BYTES)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s: manifest is larger than %d bytes", origin,
                             AGX_MANIFEST_MAX_BYTES);
    if (memchr(text, '\0', len))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s: contains a NUL byte; a manifest is a text file", origin);
    agx_manifest_field fields[] = {
        {"name", out->name, sizeof out->name, 0},
        {"library", out->library, sizeof out->library, 0},
        {"symbol", out->symbol, sizeof out->symbol, 0},
    };
    const char *p = text, *end = text + len;
    unsigned line = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        int rc = agx_manifest_line(p, le, origin, line, fields, 3, err);
        if (rc != 0)
            return rc;
        p = nl ? nl + 1 : end;
        line++;
    }
    for (size_t i = 0; i < 3; i++)
        if (!fields[i].seen)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "%s: required key '%s' is missing (a manifest needs name, "
                                 "library and symbol)",
                                 origin, fields[i].key);
    return 0;
}

int agx_manifest_read(const char *path, agx_manifest *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "%s: cannot open manifest: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: not a regular file", path);
    }
    /* One byte more than allowed, so an oversized file is detected without trusting st_size. */
    char buf[AGX_MANIFEST_MAX_BYTES + 1];
    size_t len = 0;
    while (len < sizeof buf) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return agx_error_set(err, AGX_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    return agx_manifest_parse(buf, len, path, out, err);
}
