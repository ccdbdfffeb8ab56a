/* local_record.c — <workdir>/sandbox.json, the on-disk record of a local sandbox, so `list` and
 * `delete` also find sandboxes started by other host processes (leak sweeping). The file lives
 * in a folder the sandbox's own code can write, so reading it validates every field. */
#include "backends/local/local_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/fdio.h"

#define RECORD_MAX_BYTES (256 * 1024)

int agx_local_id_valid(const char *id)
{
    size_t n = strnlen(id, AGX_LOCAL_ID_MAX);
    if (n == 0 || n >= AGX_LOCAL_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

void agx_local_record_clear(agx_local_record *r)
{
    agx_kv_free(r->labels);
    memset(r, 0, sizeof *r);
}

static json_t *labels_to_json(const agx_kv *labels)
{
    json_t *o = json_object();
    size_t n = labels ? agx_kv_count(labels) : 0;
    for (size_t i = 0; o && i < n; i++) {
        if (json_object_set_new(o, agx_kv_key_at(labels, i), json_string(agx_kv_value_at(labels, i)))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int agx_local_record_write(const char *workdir, const agx_local_record *r, agx_error *err)
{
    json_t *labels = labels_to_json(r->labels);
    json_t *doc = labels ? json_pack("{s:s, s:I, s:I, s:i, s:o, s:I, s:I}", "id", r->id,
                                     "pid", (json_int_t)r->proc.pid, "pid_start",
                                     (json_int_t)r->proc.start_ticks, "port", r->port, "labels",
                                     labels, "owner_pid", (json_int_t)r->owner_pid, "created_at",
                                     (json_int_t)r->created_at)
                         : NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory encoding sandbox.json for '%s'",
                             r->id);
    char path[AGX_LOCAL_PATH_MAX];
    snprintf(path, sizeof path, "%s/sandbox.json", workdir);
    int rc = agx_fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int bad_record(agx_error *err, const char *path, const char *why)
{
    return agx_error_set(err, AGX_ERR_PROTOCOL, "'%s' is not a valid sandbox record: %s", path, why);
}

static int labels_from_json(json_t *o, agx_kv *labels)
{
    if (!json_is_object(o) || json_object_size(o) > AGX_LABELS_RECORD_MAX)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!json_is_string(v) || agx_kv_set(labels, k, json_string_value(v)) != 0)
            return -1;
    }
    return 0;
}

static int int_field(json_t *doc, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(doc, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int record_from_json(json_t *doc, agx_local_record *r)
{
    json_int_t pid, start, port, owner, created;
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (!id || !agx_local_id_valid(id) || int_field(doc, "pid", 0, INT32_MAX, &pid) || pid == 1 ||
        int_field(doc, "pid_start", 0, INT64_MAX, &start) ||
        int_field(doc, "port", 0, 65535, &port) || int_field(doc, "owner_pid", 0, INT32_MAX, &owner) ||
        int_field(doc, "created_at", 0, INT64_MAX, &created))
        return -1;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->proc.pid = (pid_t)pid;
    r->proc.start_ticks = (uint64_t)start;
    r->proc.is_child = 0;
    r->port = (int)port;
    r->owner_pid = owner;
    r->created_at = created;
    r->labels = agx_kv_new();
    return r->labels ? labels_from_json(json_object_get(doc, "labels"), r->labels) : -1;
}

int agx_local_record_parse(const char *text, size_t len, const char *what, agx_local_record *r,
                           agx_error *err)
{
    memset(r, 0, sizeof *r);
    if (len > RECORD_MAX_BYTES)
        return bad_record(err, what, "larger than 256 KiB");
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return bad_record(err, what, jerr.text);
    int rc = json_is_object(doc) ? record_from_json(doc, r) : -1;
    json_decref(doc);
    if (rc) {
        agx_local_record_clear(r);
        return bad_record(err, what, "a field is missing, of the wrong type or out of range");
    }
    return 0;
}

int agx_local_record_read(const char *workdir, agx_local_record *r, agx_error *err)
{
    memset(r, 0, sizeof *r);
    char path[AGX_LOCAL_PATH_MAX];
    snprintf(path, sizeof path, "%s/sandbox.json", workdir);
    char *text;
    size_t len;
    int rc = agx_file_read(path, RECORD_MAX_BYTES, 1, &text, &len, err);
    if (rc)
        return rc;
    rc = agx_local_record_parse(text, len, path, r, err);
    free(text);
    return rc;
}
