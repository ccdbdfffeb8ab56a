/* ns_image.c — from the config's image name to the ordered lower dirs of a sandbox's overlayfs
 * root and the image's environment:
 *
 *   dir:/path or /path    a rootfs folder, used as the only lower dir as it is
 *   oci:/path[:ref]       an OCI image layout (index.json, blobs/sha256/…): each layer blob is
 *                         unpacked into the cache once, checked against its digest
 *   NAME[:TAG]            an image of the local Docker Engine: its id is asked once per deployment
 *                         instance (GET /images/{name}/json); an image id seen before is served from
 *                         the cache without the daemon; otherwise it is exported once
 *                         (GET /images/{id}/get, a docker-save tarball, saved to the cache's tmp/)
 *                         and each layer unpacked, its SHA-256 checked against the config's diff_ids.
 * The Engine is asked through libcurl on its Unix socket, never the docker CLI. */
#include "backends/ns/ns_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#define JSON_MAX (4u << 20)
#define EXPORT_TIMEOUT_MS (30 * 60 * 1000)

typedef struct agx_ns_image_memo {
    char *name;
    char id[65];
    struct agx_ns_image_memo *next;
} agx_ns_image_memo;

void agx_ns_layers_clear(agx_ns_layers *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->dir[i]);
    for (int i = 0; l->env && l->env[i]; i++)
        free(l->env[i]);
    free(l->env);
    memset(l, 0, sizeof *l);
}

void agx_ns_image_memo_free(agx_ns *ns)
{
    for (agx_ns_image_memo *m = ns->images, *next; m; m = next) {
        next = m->next;
        free(m->name);
        free(m);
    }
    ns->images = NULL;
}

static int add_dir(agx_ns_layers *l, const char *dir, agx_error *err)
{
    if (l->n >= AGX_NS_MAX_LAYERS)
        return agx_error_set(err, AGX_ERR_LIMIT, "the image has more than %d layers",
                             AGX_NS_MAX_LAYERS);
    if (!(l->dir[l->n] = strdup(dir)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    l->n++;
    return 0;
}

static int set_env(agx_ns_layers *l, json_t *env)
{
    size_t n = json_is_array(env) ? json_array_size(env) : 0;
    if (n > 4096)
        return -1;
    l->env = calloc(n + 1, sizeof *l->env);
    if (!l->env)
        return -1;
    for (size_t i = 0, k = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(env, i));
        if (s && strchr(s, '=') && !(l->env[k++] = strdup(s)))
            return -1;
    }
    return 0;
}

/* "sha256:<64 hex>" → the hex part, or NULL. */
static const char *digest_hex(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return NULL;
    for (int i = 7; i < 71; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
            return NULL;
    return d + 7;
}

/* ---- the image record in the cache: {"layers":[hex…], "env":[…]} ---- */

static int image_path(const agx_ns *ns, const char *key, char *out, size_t n, agx_error *err)
{
    char dir[AGX_NS_PATH_MAX];
    int rc = agx_ns_cache_dir(ns, "images", dir, sizeof dir, err);
    if (!rc && (size_t)snprintf(out, n, "%s/%s.json", dir, key) >= n)
        rc = agx_error_set(err, AGX_ERR_LIMIT, "cache path too long");
    return rc;
}

/* 0 with *out filled when the image is cached and every layer is present. */
static int image_load(const agx_ns *ns, const char *key, agx_ns_layers *out)
{
    char path[AGX_NS_PATH_MAX + 128], dir[AGX_NS_PATH_MAX];
    if (image_path(ns, key, path, sizeof path, NULL))
        return -1;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    json_t *layers = json_object_get(doc, "layers"), *v;
    size_t i;
    int rc = json_is_array(layers) ? 0 : -1;
    json_array_foreach(layers, i, v) {
        if (rc || agx_ns_cache_layer_path(ns, json_string_value(v), dir, sizeof dir) != 0 ||
            add_dir(out, dir, NULL) != 0)
            rc = -1;
    }
    if (!rc && set_env(out, json_object_get(doc, "env")) != 0)
        rc = -1;
    json_decref(doc);
    if (rc)
        agx_ns_layers_clear(out);
    return rc;
}

static int image_store(const agx_ns *ns, const char *key, json_t *hexes, json_t *env,
                       agx_error *err)
{
    char path[AGX_NS_PATH_MAX + 128];
    int rc = image_path(ns, key, path, sizeof path, err);
    json_t *doc = rc ? NULL : json_pack("{s:O, s:O}", "layers", hexes, "env",
                                        env ? env : json_array());
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!rc && !text)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        rc = agx_fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* ---- unpacking a layer from an fd (OCI blobs) ---- */

typedef struct fd_fill {
    int fd;
    const char *what;
} fd_fill;

static int fill_from_fd(int dirfd, void *user, char *hex, agx_error *err)
{
    fd_fill *f = user;
    agx_ns_layer_limits lim;
    agx_ns_layer_limits_default(&lim);
    return agx_ns_layer_unpack(f->fd, dirfd, &lim, f->what, hex, err);
}

/* ---- OCI image layout ---- */

static json_t *load_json(const char *path, agx_error *err)
{
    struct stat st;
    json_error_t je;
    if (stat(path, &st) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "'%s': %s", path, strerror(errno)), NULL;
    if (st.st_size > (off_t)JSON_MAX)
        return agx_error_set(err, AGX_ERR_LIMIT, "'%s' is larger than 4 MiB", path), NULL;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        agx_error_set(err, AGX_ERR_PROTOCOL, "'%s' is not JSON: %s", path, je.text);
    return doc;
}

static json_t *load_blob(const char *layout, const char *digest, agx_error *err)
{
    const char *hex = digest_hex(digest);
    if (!hex)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "OCI layout '%s': bad digest '%.80s'",
                             layout, digest ? digest : "(none)"), NULL;
    char path[AGX_NS_PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout, hex);
    return load_json(path, err);
}

/* index.json → the manifest named ref (annotation org.opencontainers.image.ref.name), or the only
 * one; nested indexes are followed once. */
static json_t *oci_manifest(const char *layout, const char *ref, agx_error *err)
{
    char path[AGX_NS_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/index.json", layout);
    json_t *index = load_json(path, err);
    for (int depth = 0; index && depth < 3; depth++) {
        json_t *ms = json_object_get(index, "manifests"), *m, *pick = NULL;
        size_t i;
        json_array_foreach(ms, i, m) {
            const char *name = json_string_value(
                json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
            if ((ref && name && strcmp(name, ref) == 0) || (!ref && json_array_size(ms) == 1))
                pick = m;
        }
        if (!pick) {
            json_decref(index);
            return agx_error_set(err, AGX_ERR_NOT_FOUND,
                                 "OCI layout '%s' has no manifest %s%s", layout,
                                 ref ? "named " : "(several: name one with oci:PATH:REF)",
                                 ref ? ref : ""), NULL;
        }
        const char *mt = json_string_value(json_object_get(pick, "mediaType"));
        json_t *next = load_blob(layout, json_string_value(json_object_get(pick, "digest")), err);
        json_decref(index);
        if (!next || !mt || !strstr(mt, "index"))
            return next;
        index = next;
        ref = NULL; /* a nested index: its only manifest */
    }
    json_decref(index);
    return NULL;
}

static int resolve_oci(agx_ns *ns, const char *spec, agx_ns_layers *out, agx_error *err)
{
    char layout[AGX_NS_PATH_MAX];
    snprintf(layout, sizeof layout, "%s", spec);
    char *ref = NULL, *colon = strrchr(layout, ':');
    if (colon && !strchr(colon, '/')) {
        *colon = '\0';
        ref = colon + 1;
    }
    json_t *manifest = oci_manifest(layout, ref, err);
    if (!manifest)
        return err ? err->code : AGX_ERR_NOT_FOUND;
    json_t *config = load_blob(layout, json_string_value(json_object_get(
                                           json_object_get(manifest, "config"), "digest")), err);
    json_t *layers = json_object_get(manifest, "layers"), *l;
    int rc = config && json_is_array(layers) ? 0 : (err ? err->code : AGX_ERR_PROTOCOL);
    if (!rc && !json_is_array(layers))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "OCI layout '%s': manifest without layers", layout);
    size_t i;
    json_array_foreach(layers, i, l) {
        if (rc)
            break;
        const char *hex = digest_hex(json_string_value(json_object_get(l, "digest")));
        char blob[AGX_NS_PATH_MAX + 128], dir[AGX_NS_PATH_MAX], got[65];
        if (!hex) {
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "OCI layout '%s': layer %zu has a bad digest",
                               layout, i);
            break;
        }
        snprintf(blob, sizeof blob, "%s/blobs/sha256/%s", layout, hex);
        fd_fill f = {.fd = -1, .what = blob};
        if (agx_ns_cache_layer_path(ns, hex, dir, sizeof dir) != 0) {
            if ((f.fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "OCI layout '%s': layer blob '%s': %s",
                                   layout, blob, strerror(errno));
            if (!rc)
                rc = agx_ns_cache_layer_put(ns, hex, fill_from_fd, &f, got, err);
            if (f.fd >= 0)
                close(f.fd);
            if (!rc)
                agx_ns_cache_layer_path(ns, hex, dir, sizeof dir);
        }
        if (!rc)
            rc = add_dir(out, dir, err);
    }
    if (!rc && set_env(out, json_object_get(json_object_get(config, "config"), "Env")) != 0)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    json_decref(config);
    json_decref(manifest);
    return rc;
}

/* ---- Docker Engine ---- */

static int engine(const agx_ns *ns, const char *path, agx_http_sink_fn sink, void *user,
                  long timeout_ms, agx_http_response *resp, agx_error *err)
{
    char url[1024];
    int n = snprintf(url, sizeof url, "http://localhost/v1.41%s", path);
    if (n < 0 || (size_t)n >= sizeof url)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "Docker Engine path too long "
                             "(%zu bytes; the limit is %zu): %.64s...", strlen(path),
                             sizeof url - 24, path);
    agx_http_request req = {.method = "GET", .url = url, .unix_socket = ns->docker_socket,
                            .timeout_ms = timeout_ms, .sink = sink, .sink_user = user,
                            .max_body = JSON_MAX};
    int rc = agx_http_perform(&req, resp, err);
    if (rc)
        agx_error_prefix(err, "asking the Docker Engine at %s (the ns backend exports task images "
                         "from it once)", ns->docker_socket);
    return rc;
}

/* The image's id (hex) and, for the cache, its environment. */
static int docker_inspect(const agx_ns *ns, const char *name, char *id, json_t **env,
                          agx_error *err)
{
    char *esc = agx_http_escape(name), path[1024];
    if (!esc)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    snprintf(path, sizeof path, "/images/%s/json", esc);
    free(esc);
    agx_http_response resp;
    int rc = engine(ns, path, NULL, NULL, 60000, &resp, err);
    if (!rc && resp.status == 404)
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND,
                           "image '%s' is not in the local Docker Engine; pull or load it first "
                           "(`docker pull`, `docker load`), or give oci:PATH or dir:PATH", name);
    if (!rc)
        rc = agx_http_check_status(&resp, "inspecting the image", err);
    json_t *doc = rc ? NULL : json_loadb(resp.body, resp.body_len, 0, NULL);
    const char *hex = digest_hex(json_string_value(json_object_get(doc, "Id")));
    if (!rc && !hex)
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "the Docker Engine's answer for image '%s' has "
                           "no image id", name);
    if (!rc) {
        snprintf(id, 65, "%s", hex);
        if (env)
            *env = json_incref(json_object_get(json_object_get(doc, "Config"), "Env"));
    }
    json_decref(doc);
    agx_http_response_clear(&resp);
    return rc;
}

static int to_file(const char *data, size_t len, void *user)
{
    int fd = *(int *)user;
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* One entry of the docker-save tarball read as a layer through the outer archive. */
typedef struct nested {
    struct archive *outer;
    char first[512];
    size_t first_len, first_off;
} nested;

static int fill_nested(int dirfd, void *user, char *hex, agx_error *err);

typedef struct save_entry {
    char path[256];
    char hex[65];   /* layers: the SHA-256 of their bytes */
    json_t *json;   /* small JSON documents (manifest.json, configs) */
} save_entry;

typedef struct save {
    save_entry *e;
    size_t n, cap;
} save;

static save_entry *save_find(save *s, const char *path)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].path, path) == 0)
            return &s->e[i];
    return NULL;
}

static void save_free(save *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->e[i].json);
    free(s->e);
}

static int read_json_entry(struct archive *a, const char *first, size_t flen, json_t **out)
{
    size_t cap = JSON_MAX, len = flen;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    memcpy(buf, first, flen);
    for (;;) {
        ssize_t n = archive_read_data(a, buf + len, cap - len);
        if (n < 0 || (n == 0 && len == cap)) {
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    return *out ? 0 : -1;
}

static int walk_save(agx_ns *ns, struct archive *a, save *s, agx_error *err)
{
    struct archive_entry *ae;
    int r;
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        const char *p = archive_entry_pathname(ae);
        if (archive_entry_filetype(ae) != AE_IFREG || !p || strlen(p) >= 256)
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 32;
            save_entry *g = cap < 100000 ? realloc(s->e, cap * sizeof *g) : NULL;
            if (!g)
                return agx_error_set(err, AGX_ERR_LIMIT, "too many entries in the image export");
            s->e = g;
            s->cap = cap;
        }
        save_entry *e = &s->e[s->n];
        memset(e, 0, sizeof *e);
        snprintf(e->path, sizeof e->path, "%s", p);
        nested nd = {.outer = a};
        ssize_t k = archive_read_data(a, nd.first, sizeof nd.first);
        if (k < 0)
            return agx_error_set(err, AGX_ERR_PROTOCOL, "image export: %s", archive_error_string(a));
        nd.first_len = (size_t)k;
        size_t sp = 0;
        while (sp < nd.first_len && (nd.first[sp] == ' ' || nd.first[sp] == '\n'))
            sp++;
        int is_json = sp < nd.first_len && (nd.first[sp] == '{' || nd.first[sp] == '[') &&
                      archive_entry_size(ae) <= (la_int64_t)JSON_MAX;
        size_t pl = strlen(p);
        int is_layer = (pl > 10 && strcmp(p + pl - 10, "/layer.tar") == 0) ||
                       strncmp(p, "blobs/sha256/", 13) == 0;
        if (is_json) {
            if (read_json_entry(a, nd.first, nd.first_len, &e->json) != 0)
                continue; /* not JSON after all: nothing refers to it as a document */
        } else if (!is_layer) {
            continue; /* VERSION files, legacy per-layer json: not needed */
        } else {
            int rc = agx_ns_cache_layer_put(ns, NULL, fill_nested, &nd, e->hex, err);
            if (rc)
                return agx_error_prefix(err, "image export entry '%s'", p), rc;
        }
        s->n++;
    }
    if (r != ARCHIVE_EOF)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "the image export is not a valid tar: %s",
                             archive_error_string(a));
    return 0;
}

static la_ssize_t nested_read(struct archive *a, void *user, const void **out)
{
    (void)a;
    nested *nd = user;
    if (nd->first_off < nd->first_len) {
        *out = nd->first + nd->first_off;
        la_ssize_t n = (la_ssize_t)(nd->first_len - nd->first_off);
        nd->first_off = nd->first_len;
        return n;
    }
    static __thread char buf[64 * 1024];
    ssize_t n = archive_read_data(nd->outer, buf, sizeof buf);
    *out = buf;
    return n < 0 ? -1 : n;
}

/* A pipe between the outer entry and the layer unpacker would cost a thread; instead the entry is
 * copied to a temporary file in the layer's tmp folder and unpacked from there with its digest. */
static int fill_nested(int dirfd, void *user, char *hex, agx_error *err)
{
    nested *nd = user;
    int fd = openat(dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int tmp = fd >= 0 ? openat(fd, "layer.tar", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (fd >= 0)
        close(fd);
    if (tmp < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot stage a layer: %s", strerror(errno));
    int rc = 0;
    for (;;) {
        const void *p;
        la_ssize_t n = nested_read(NULL, nd, &p);
        if (n < 0) {
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "image export: %s",
                               archive_error_string(nd->outer));
            break;
        }
        if (n == 0)
            break;
        if (to_file(p, (size_t)n, &tmp) != 0) {
            rc = agx_error_set(err, AGX_ERR_IO, "cannot stage a layer: %s", strerror(errno));
            break;
        }
    }
    if (!rc && lseek(tmp, 0, SEEK_SET) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot stage a layer: %s", strerror(errno));
    if (!rc) {
        agx_ns_layer_limits lim;
        agx_ns_layer_limits_default(&lim);
        rc = agx_ns_layer_unpack(tmp, dirfd, &lim, "of the image export", hex, err);
    }
    close(tmp);
    return rc;
}

/* manifest.json → [{Config, Layers:[paths]}]: the layers' digests in order must equal the
 * config's rootfs.diff_ids. */
static int save_order(save *s, json_t *hexes, json_t **env, agx_error *err)
{
    save_entry *m = save_find(s, "manifest.json");
    json_t *first = m ? json_array_get(m->json, 0) : NULL;
    save_entry *c = first ? save_find(s, json_string_value(json_object_get(first, "Config")) ?: "")
                          : NULL;
    json_t *layers = json_object_get(first, "Layers");
    json_t *diff = json_object_get(json_object_get(c ? c->json : NULL, "rootfs"), "diff_ids");
    if (!c || !c->json || !json_is_array(layers) || !json_is_array(diff) ||
        json_array_size(layers) != json_array_size(diff))
        return agx_error_set(err, AGX_ERR_PROTOCOL, "the image export has no usable "
                             "manifest.json/config (not a docker-save tarball?)");
    for (size_t i = 0; i < json_array_size(layers); i++) {
        save_entry *l = save_find(s, json_string_value(json_array_get(layers, i)) ?: "");
        const char *want = digest_hex(json_string_value(json_array_get(diff, i)));
        if (!l || !l->hex[0] || !want || strcmp(l->hex, want) != 0)
            return agx_error_set(err, AGX_ERR_PROTOCOL,
                                 "layer %zu of the image export does not match the config's "
                                 "diff_id: the export is damaged", i);
        json_array_append_new(hexes, json_string(l->hex));
    }
    *env = json_incref(json_object_get(json_object_get(c->json, "config"), "Env"));
    return 0;
}

static int docker_export(agx_ns *ns, const char *id, agx_error *err)
{
    char tmpdir[AGX_NS_PATH_MAX], file[AGX_NS_PATH_MAX + 64], hex[9], path[128];
    int rc = agx_ns_cache_dir(ns, "tmp", tmpdir, sizeof tmpdir, err);
    if (!rc)
        rc = agx_random_hex(hex, 4, err);
    if (rc)
        return rc;
    snprintf(file, sizeof file, "%s/%d-%lld-export-%s.tar", tmpdir, (int)getpid(),
             (long long)ns->owner_start, hex);
    int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", file, strerror(errno));
    snprintf(path, sizeof path, "/images/sha256:%s/get", id);
    agx_http_response resp;
    rc = engine(ns, path, to_file, &fd, EXPORT_TIMEOUT_MS, &resp, err);
    if (!rc)
        rc = agx_http_check_status(&resp, "exporting the image", err);
    agx_http_response_clear(&resp);
    struct archive *a = rc ? NULL : archive_read_new();
    save s = {0};
    json_t *hexes = json_array(), *env = NULL;
    if (!rc && (!a || archive_read_support_format_tar(a) != ARCHIVE_OK ||
                lseek(fd, 0, SEEK_SET) != 0 || archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "cannot read the image export");
    if (!rc)
        rc = walk_save(ns, a, &s, err);
    if (!rc)
        rc = save_order(&s, hexes, &env, err);
    if (!rc)
        rc = image_store(ns, id, hexes, env, err);
    if (a)
        archive_read_free(a);
    save_free(&s);
    json_decref(hexes);
    json_decref(env);
    close(fd);
    unlink(file);
    return rc;
}

static const char *memo_get(agx_ns *ns, const char *name)
{
    for (agx_ns_image_memo *m = ns->images; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m->id;
    return NULL;
}

static void memo_put(agx_ns *ns, const char *name, const char *id)
{
    agx_ns_image_memo *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name))) {
        free(m);
        return; /* only a cache */
    }
    snprintf(m->id, sizeof m->id, "%s", id);
    m->next = ns->images;
    ns->images = m;
}

static int resolve_docker(agx_ns *ns, const char *name, agx_ns_layers *out, agx_error *err)
{
    char id[65];
    pthread_mutex_lock(&ns->mu);
    const char *known = memo_get(ns, name);
    if (known)
        snprintf(id, sizeof id, "%s", known);
    pthread_mutex_unlock(&ns->mu);
    if (!known) {
        int rc = docker_inspect(ns, name, id, NULL, err);
        if (rc)
            return rc;
        pthread_mutex_lock(&ns->mu);
        if (!memo_get(ns, name))
            memo_put(ns, name, id);
        pthread_mutex_unlock(&ns->mu);
    }
    if (image_load(ns, id, out) == 0)
        return 0;
    char lock_name[80];
    snprintf(lock_name, sizeof lock_name, "image-%s", id);
    int lock = agx_ns_cache_lock(ns, lock_name, err);
    if (lock < 0)
        return lock;
    int rc = image_load(ns, id, out) == 0 ? 0 : docker_export(ns, id, err);
    if (!rc && out->n == 0 && image_load(ns, id, out) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "image '%s' was exported but its cache entry cannot "
                           "be read back", name);
    close(lock);
    return rc;
}

int agx_ns_image_resolve(agx_ns *ns, const char *image, agx_ns_layers *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    const char *dir = strncmp(image, "dir:", 4) == 0 ? image + 4 : image[0] == '/' ? image : NULL;
    int rc;
    if (dir) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return agx_error_set(err, AGX_ERR_NOT_FOUND, "image '%s': '%s' is not a folder",
                                 image, dir);
        if (strchr(dir, ',') || strchr(dir, ':'))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "rootfs folder '%s' contains ',' or ':', which overlayfs "
                                 "options cannot carry", dir);
        rc = add_dir(out, dir, err);
    } else if (strncmp(image, "oci:", 4) == 0) {
        rc = resolve_oci(ns, image + 4, out, err);
    } else {
        rc = resolve_docker(ns, image, out, err);
    }
    if (rc)
        agx_ns_layers_clear(out);
    return rc;
}
