/* ns_record.c — <root>/sandboxes/<id>/sandbox.json, the on-disk record of an ns sandbox: what
 * get/list/delete in any host process and the stale-sandbox sweep go by. It is written before
 * anything of the sandbox exists (then again as each process starts), in a folder no sandbox can
 * see, and still validated on reading: the cgroup paths it names are removed and their processes
 * killed, so each must be a group of this backend for this very id. */
#include "backends/ns/ns_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/unix_url.h"

#define RECORD_MAX_BYTES (256 * 1024)

int agx_ns_id_valid(const char *id)
{
    size_t n = strnlen(id, AGX_NS_ID_MAX);
    if (n == 0 || n >= AGX_NS_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '_'))
            return 0;
    return 1;
}

int agx_ns_start_ticks(pid_t pid, uint64_t *ticks)
{
    agx_proc_stat st;
    if (agx_proc_stat_read((long)pid, &st) != 0 || st.state == 'Z' || st.state == 'X')
        return -1;
    *ticks = st.start_ticks;
    return 0;
}

void agx_ns_sandbox_dir(const agx_ns *ns, const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s/sandboxes/%.*s", ns->root, AGX_NS_ID_MAX - 1, id);
}

void agx_ns_record_clear(agx_ns_record *r)
{
    agx_kv_free(r->labels);
    memset(r, 0, sizeof *r);
}

int agx_ns_record_write(const agx_ns *ns, const agx_ns_record *r, agx_error *err)
{
    json_t *labels = json_object(), *cgs = json_array();
    for (size_t i = 0; labels && r->labels && i < agx_kv_count(r->labels); i++)
        json_object_set_new(labels, agx_kv_key_at(r->labels, i),
                            json_string(agx_kv_value_at(r->labels, i)));
    for (int i = 0; cgs && i < r->cg.n; i++)
        json_array_append_new(cgs, json_string(r->cg.path[i]));
    json_t *doc = labels && cgs
                      ? json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:i, s:I, s:I, s:I, s:o, s:o}",
                                  "id", r->id, "state", r->state, "pid", (json_int_t)r->pid,
                                  "pid_start", (json_int_t)r->pid_start, "pasta_pid",
                                  (json_int_t)r->pasta_pid, "pasta_start",
                                  (json_int_t)r->pasta_start, "net", r->net, "port", r->port,
                                  "owner_pid", (json_int_t)r->owner_pid, "owner_start",
                                  (json_int_t)r->owner_start, "created_at",
                                  (json_int_t)r->created_at, "cgroups", cgs, "labels", labels)
                      : NULL;
    if (!doc) {
        json_decref(labels);
        json_decref(cgs);
    }
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory writing the record of '%s'",
                             r->id);
    char path[AGX_NS_PATH_MAX];
    agx_ns_sandbox_dir(ns, r->id, path, sizeof path);
    strncat(path, "/sandbox.json", sizeof path - strlen(path) - 1);
    int rc = agx_fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int int_field(json_t *doc, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(doc, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

/* A cgroup of this backend for this id: /sys/fs/cgroup/…/agentix-ns/<id>, no "..". */
static int cgroup_path_ok(const char *p, const char *id)
{
    char tail[AGX_NS_ID_MAX + 16];
    snprintf(tail, sizeof tail, "/agentix-ns/%s", id);
    size_t n = strlen(p), t = strlen(tail);
    return n < 512 && strncmp(p, "/sys/fs/cgroup/", 15) == 0 && !strstr(p, "/../") &&
           !strstr(p, "/./") && !strstr(p, "//") && n > t && strcmp(p + n - t, tail) == 0;
}

static int from_json(json_t *doc, agx_ns_record *r)
{
    json_int_t v[10];
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *state = json_string_value(json_object_get(doc, "state"));
    if (!id || !agx_ns_id_valid(id) || !state || strlen(state) >= sizeof r->state ||
        int_field(doc, "pid", 0, INT32_MAX, &v[0]) ||
        int_field(doc, "pid_start", 0, INT64_MAX, &v[1]) ||
        int_field(doc, "pasta_pid", 0, INT32_MAX, &v[2]) ||
        int_field(doc, "pasta_start", 0, INT64_MAX, &v[3]) || int_field(doc, "net", 0, 1, &v[4]) ||
        int_field(doc, "port", 0, 65535, &v[5]) ||
        int_field(doc, "owner_pid", 0, INT32_MAX, &v[6]) ||
        int_field(doc, "owner_start", 0, INT64_MAX, &v[7]) ||
        int_field(doc, "created_at", 0, INT64_MAX, &v[8]))
        return -1;
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->state, sizeof r->state, "%s", state);
    r->pid = v[0];
    r->pid_start = (uint64_t)v[1];
    r->pasta_pid = v[2];
    r->pasta_start = (uint64_t)v[3];
    r->net = (int)v[4];
    r->port = (int)v[5];
    r->owner_pid = v[6];
    r->owner_start = (uint64_t)v[7];
    r->created_at = v[8];
    json_t *cgs = json_object_get(doc, "cgroups"), *c;
    size_t i;
    if (!json_is_array(cgs) || json_array_size(cgs) > AGX_NS_CG_MAX)
        return -1;
    json_array_foreach(cgs, i, c) {
        const char *p = json_string_value(c);
        if (!p || !cgroup_path_ok(p, r->id))
            return -1;
        snprintf(r->cg.path[r->cg.n++], sizeof r->cg.path[0], "%s", p);
    }
    json_t *labels = json_object_get(doc, "labels"), *lv;
    const char *k;
    if (!json_is_object(labels) || !(r->labels = agx_kv_new()))
        return -1;
    json_object_foreach(labels, k, lv) {
        if (!json_is_string(lv) || agx_kv_set(r->labels, k, json_string_value(lv)) != 0)
            return -1;
    }
    return 0;
}

int agx_ns_record_parse(const char *text, size_t len, const char *what, agx_ns_record *r,
                        agx_error *err)
{
    memset(r, 0, sizeof *r);
    json_error_t jerr;
    json_t *doc = len <= RECORD_MAX_BYTES ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)
                                          : NULL;
    int rc = json_is_object(doc) ? from_json(doc, r) : -1;
    json_decref(doc);
    if (rc) {
        agx_ns_record_clear(r);
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "'%s' is not a valid ns sandbox record (too large, not JSON, or a "
                             "field missing, mistyped or out of range)", what);
    }
    return 0;
}

int agx_ns_record_read(const agx_ns *ns, const char *id, agx_ns_record *r, agx_error *err)
{
    memset(r, 0, sizeof *r);
    char path[AGX_NS_PATH_MAX];
    agx_ns_sandbox_dir(ns, id, path, sizeof path);
    strncat(path, "/sandbox.json", sizeof path - strlen(path) - 1);
    char *text;
    size_t len;
    int rc = agx_file_read(path, RECORD_MAX_BYTES, 1, &text, &len, err);
    if (rc)
        return rc;
    rc = agx_ns_record_parse(text, len, path, r, err);
    if (!rc && strcmp(r->id, id) != 0) {
        agx_ns_record_clear(r);
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "'%s' names another sandbox", path);
    }
    free(text);
    return rc;
}

int agx_ns_runtime_url(const agx_ns *ns, const agx_ns_record *r, char *out, size_t n)
{
    if (r->net == AGX_NS_NET_PRIVATE) {
        snprintf(out, n, "http://127.0.0.1:%d", r->port);
        return 0;
    }
    char sock[AGX_NS_PATH_MAX];
    agx_ns_sandbox_dir(ns, r->id, sock, sizeof sock);
    strncat(sock, "/run/" AGX_NS_SOCKET_NAME, sizeof sock - strlen(sock) - 1);
    return agx_unix_url_format(sock, out, n); /* docs/PROTOCOL.md §1 */
}
