/* gc.c — collecting what dead hosts left (host → backend list/delete): sandboxes labelled with
 * this machine as owner host whose owner process is gone (pid absent, or reused: start time
 * differs) are deleted, optionally only past an age. `agentix gc` is this over each backend. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/clock.h"
#include "agentix/fleet.h"
#include "core/host/owner.h"

void agx_gc_options_init(agx_gc_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* Whether the owner named by the labels is alive on this host. Unreadable labels count as alive:
 * gc never deletes what it cannot judge. */
static bool owner_alive(const agx_kv *labels)
{
    uint64_t pid, start;
    if (!parse_u64(agx_kv_get(labels, AGX_LABEL_OWNER_PID), &pid) ||
        !parse_u64(agx_kv_get(labels, AGX_LABEL_OWNER_START), &start) || pid == 0 ||
        pid > 0x7fffffff)
        return true;
    uint64_t now_start = agx_owner_proc_start((long)pid);
    return now_start != 0 && now_start == start;
}

static agx_gc_verdict judge(const agx_sandbox_info *info, const agx_gc_options *o)
{
    if (owner_alive(agx_sandbox_info_labels_const(info)))
        return AGX_GC_OWNER_ALIVE;
    if (o->older_than_ms > 0) {
        int64_t created = agx_sandbox_info_created_at(info);
        if (created <= 0 || agx_clock_wall_ms() - created < o->older_than_ms)
            return AGX_GC_TOO_YOUNG;
    }
    return AGX_GC_DELETED;
}

int agx_gc(agx_deployment *dep, const agx_gc_options *opts, agx_gc_report *report, agx_error *err)
{
    agx_gc_options defaults;
    agx_gc_options_init(&defaults);
    const agx_gc_options *o = opts ? opts : &defaults;
    if (report)
        memset(report, 0, sizeof *report);
    if (!dep || o->struct_size != sizeof *o)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_gc: a deployment and options from agx_gc_options_init are required");
    if (o->run_id && !agx_run_id_valid(o->run_id))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "run id '%.80s' is not valid", o->run_id);
    agx_kv *filter = agx_kv_new();
    if (!filter || agx_kv_set(filter, AGX_LABEL_OWNER_HOST, agx_owner_host()) != 0 ||
        (o->run_id && agx_kv_set(filter, AGX_LABEL_RUN, o->run_id) != 0)) {
        agx_kv_free(filter);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the gc filter");
    }
    agx_sandbox_list *list = NULL;
    int rc = agx_deployment_list(dep, filter, &list, err);
    agx_kv_free(filter);
    if (rc) {
        agx_error_prefix(err, "gc: listing %s sandboxes", agx_deployment_name(dep));
        return rc;
    }
    agx_gc_report r = {0};
    int first = 0;
    for (size_t i = 0; i < agx_sandbox_list_count(list); i++) {
        const agx_sandbox_info *info = agx_sandbox_list_at(list, i);
        if (agx_sandbox_info_state(info) == AGX_SANDBOX_GONE)
            continue;
        r.examined++;
        agx_gc_verdict v = judge(info, o);
        agx_error e;
        agx_error_clear(&e);
        if (v == AGX_GC_DELETED && !o->dry_run &&
            agx_deployment_delete(dep, agx_sandbox_info_id(info), &e) != 0) {
            v = AGX_GC_DELETE_FAILED;
            if (!first) {
                first = e.code;
                agx_error_copy(err, &e);
                agx_error_prefix(err, "gc: deleting %s", agx_sandbox_info_id(info));
            }
        }
        r.deleted += v == AGX_GC_DELETED;
        r.kept += v == AGX_GC_OWNER_ALIVE || v == AGX_GC_TOO_YOUNG;
        r.failed += v == AGX_GC_DELETE_FAILED;
        if (o->on_sandbox)
            o->on_sandbox(o->user, info, v, v == AGX_GC_DELETE_FAILED ? &e : NULL);
    }
    agx_sandbox_list_free(list);
    if (report)
        *report = r;
    return first;
}
