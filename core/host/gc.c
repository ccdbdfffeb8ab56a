/* gc.c — collecting what dead hosts left (host → backend list/delete): every agentix sandbox of a
 * backend is judged by its ownership record (labels.h) and its expiry — deleted when its owner on
 * this host is gone (pid absent, or reused: start time differs) or when its expiry passed — and,
 * on request, the backend's leftover carriers. `agentix gc` is this over each backend. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/clock.h"
#include "agentix/fleet.h"
#include "core/host/owner.h"

#define DEFAULT_GRACE_MS 10000
/* What a backend's list answers to this filter: its leftover helpers (docker: carriers no
 * sandbox uses). A valid label value everywhere, so other backends simply find nothing. */
#define CARRIER_FILTER_VALUE "leftover"

void agx_gc_options_init(agx_gc_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->expiry_grace_ms = DEFAULT_GRACE_MS;
}

const char *agx_gc_verdict_name(agx_gc_verdict v)
{
    static const char *const names[] = {"deleted", "owner-alive", "too-young", "delete-failed",
                                        "expired", "kept", "carrier"};
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "unknown";
}


static agx_gc_verdict judge(const agx_sandbox_info *info, const agx_gc_options *o, int64_t grace)
{
    agx_owner_verdict owner = agx_owner_judge(agx_sandbox_info_labels_const(info),
                                              agx_sandbox_info_created_at(info));
    if (owner == AGX_OWNER_ALIVE)
        return AGX_GC_OWNER_ALIVE;
    if (o->older_than_ms > 0) {
        int64_t created = agx_sandbox_info_created_at(info);
        if (created <= 0 || agx_clock_wall_ms() - created < o->older_than_ms)
            return AGX_GC_TOO_YOUNG;
    }
    if (owner == AGX_OWNER_GONE)
        return AGX_GC_DELETED;
    int64_t expires = agx_sandbox_info_expires_at(info);
    return expires > 0 && agx_clock_wall_ms() > expires + grace ? AGX_GC_EXPIRED : AGX_GC_KEPT;
}

typedef struct gc_run {
    agx_deployment *dep;
    const agx_gc_options *o;
    agx_gc_report r;
    int first;
    agx_error *err;
} gc_run;

static void settle(gc_run *g, const agx_sandbox_info *info, agx_gc_verdict v)
{
    agx_error e;
    agx_error_clear(&e);
    bool doomed = v == AGX_GC_DELETED || v == AGX_GC_EXPIRED || v == AGX_GC_CARRIER;
    if (doomed && !g->o->dry_run &&
        agx_deployment_delete(g->dep, agx_sandbox_info_id(info), &e) != 0) {
        v = AGX_GC_DELETE_FAILED;
        if (!g->first) {
            g->first = e.code;
            agx_error_copy(g->err, &e);
            agx_error_prefix(g->err, "gc: deleting %s", agx_sandbox_info_id(info));
        }
    }
    g->r.examined++;
    g->r.deleted += doomed && v != AGX_GC_DELETE_FAILED;
    g->r.kept += !doomed && v != AGX_GC_DELETE_FAILED;
    g->r.failed += v == AGX_GC_DELETE_FAILED;
    if (g->o->on_sandbox)
        g->o->on_sandbox(g->o->user, info, v, v == AGX_GC_DELETE_FAILED ? &e : NULL);
}

/* Lists by filter and settles each entry: judged sandboxes, or (carriers) leftovers to delete. */
static int sweep(gc_run *g, const agx_kv *filter, bool carriers)
{
    agx_sandbox_list *list = NULL;
    int rc = agx_deployment_list(g->dep, filter, &list, g->err);
    if (rc) {
        agx_error_prefix(g->err, "gc: listing %s %s", agx_deployment_name(g->dep),
                         carriers ? "carriers" : "sandboxes");
        return rc;
    }
    int64_t grace = g->o->expiry_grace_ms > 0 ? g->o->expiry_grace_ms : 0;
    for (size_t i = 0; i < agx_sandbox_list_count(list); i++) {
        const agx_sandbox_info *info = agx_sandbox_list_at(list, i);
        if (agx_sandbox_info_state(info) == AGX_SANDBOX_GONE)
            continue;
        settle(g, info, carriers ? AGX_GC_CARRIER : judge(info, g->o, grace));
    }
    agx_sandbox_list_free(list);
    return 0;
}

int agx_gc(agx_deployment *dep, const agx_gc_options *opts, agx_gc_report *report, agx_error *err)
{
    agx_gc_options o;
    agx_gc_options_init(&o);
    if (opts && opts->struct_size >= offsetof(agx_gc_options, expiry_grace_ms) &&
        opts->struct_size <= sizeof o)
        memcpy(&o, opts, opts->struct_size);
    else if (opts)
        o.struct_size = 0;
    if (report)
        memset(report, 0, sizeof *report);
    if (!dep || !o.struct_size)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_gc: a deployment and options from agx_gc_options_init are required");
    if (o.run_id && !agx_run_id_valid(o.run_id))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "run id '%.80s' is not valid", o.run_id);
    agx_kv *filter = agx_kv_new(), *cfilter = agx_kv_new();
    if (!filter || !cfilter || (o.run_id && agx_kv_set(filter, AGX_LABEL_RUN, o.run_id) != 0) ||
        agx_kv_set(cfilter, AGX_LABEL_CARRIER, CARRIER_FILTER_VALUE) != 0) {
        agx_kv_free(filter);
        agx_kv_free(cfilter);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the gc filter");
    }
    gc_run g = {.dep = dep, .o = &o, .err = err};
    int rc = sweep(&g, filter, false);
    /* Carriers go after the sandboxes: those deleted just now no longer hold theirs. */
    if (!rc && o.carriers)
        rc = sweep(&g, cfilter, true);
    agx_kv_free(filter);
    agx_kv_free(cfilter);
    if (report)
        *report = g.r;
    return rc ? rc : g.first;
}
