/* plugin_report.c — what `agentix plugins` shows: every backend discovery can see (in-process and
 * manifests), whether each one loads (dlopen + symbol + ABI check, never construct — that would
 * need the backend's environment and may contact its service), and the search path. */
#include "core/host/plugin_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct agx_plugin_report_entry {
    char *name;
    char *manifest;
    char *library;
    int status;
    char *message; /* "" when status is 0 */
} agx_plugin_report_entry;

struct agx_plugin_report {
    agx_plugin_report_entry *items;
    size_t count;
    char *search_path;
};

static int agx_report_add(agx_plugin_report *r, const char *name, const char *manifest,
                          const char *library, int status, const char *message)
{
    agx_plugin_report_entry *e = &r->items[r->count];
    e->name = strdup(name);
    e->manifest = strdup(manifest);
    e->library = strdup(library);
    e->message = strdup(message);
    e->status = status;
    r->count++; /* counted even when partly failed, so agx_plugin_report_free frees it */
    if (!e->name || !e->manifest || !e->library || !e->message)
        return AGX_ERR_NO_MEMORY;
    return 0;
}

/* The load status of one manifest candidate, with the same rules agx_load_deployment applies. */
static int agx_report_check(const agx_plugin_scan *scan, size_t i, agx_error *e)
{
    const agx_plugin_candidate *c = &scan->items[i];
    if (c->status != 0) {
        agx_error_copy(e, &c->error);
        return c->status;
    }
    size_t found = 0;
    int rc = agx_plugin_scan_find(scan, c->name, &found, e);
    if (rc != 0)
        return rc;
    const agx_backend_vtable *vt;
    return agx_plugin_resolve(c, &vt, e);
}

int agx_plugin_report_scan(agx_plugin_report **out, agx_error *err)
{
    agx_error_clear(err);
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_plugin_report_scan: out is NULL");
    *out = NULL;
    agx_plugin_scan scan;
    int rc = agx_plugin_scan_run(&scan, err);
    if (rc != 0)
        return rc;
    const agx_backend_vtable *reg[64];
    size_t nreg = agx_plugin_registered_snapshot(reg, 64);
    if (nreg > 64)
        nreg = 64;
    agx_plugin_report *r = calloc(1, sizeof *r);
    if (r)
        r->items = calloc(nreg + scan.count + 1, sizeof *r->items);
    if (r && r->items)
        r->search_path = strdup(scan.search_path);
    rc = r && r->items && r->search_path ? 0 : AGX_ERR_NO_MEMORY;
    for (size_t i = 0; i < nreg && rc == 0; i++)
        rc = agx_report_add(r, reg[i]->name, "(in-process)", "(in-process)", 0, "");
    for (size_t i = 0; i < scan.count && rc == 0; i++) {
        agx_error e;
        agx_error_clear(&e);
        int st = agx_report_check(&scan, i, &e);
        const agx_plugin_candidate *c = &scan.items[i];
        rc = agx_report_add(r, c->name, c->manifest, c->library, st, st ? e.message : "");
    }
    agx_plugin_scan_dispose(&scan);
    if (rc != 0) {
        agx_plugin_report_free(r);
        return agx_error_set(err, rc, "out of memory building the plugin report");
    }
    *out = r;
    return 0;
}

void agx_plugin_report_free(agx_plugin_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->items[i].name);
        free(r->items[i].manifest);
        free(r->items[i].library);
        free(r->items[i].message);
    }
    free(r->items);
    free(r->search_path);
    free(r);
}

size_t agx_plugin_report_count(const agx_plugin_report *r)
{
    return r ? r->count : 0;
}

static const agx_plugin_report_entry *agx_report_at(const agx_plugin_report *r, size_t i)
{
    return r && i < r->count ? &r->items[i] : NULL;
}

const char *agx_plugin_report_name(const agx_plugin_report *r, size_t i)
{
    const agx_plugin_report_entry *e = agx_report_at(r, i);
    return e ? e->name : NULL;
}

const char *agx_plugin_report_manifest(const agx_plugin_report *r, size_t i)
{
    const agx_plugin_report_entry *e = agx_report_at(r, i);
    return e ? e->manifest : NULL;
}

const char *agx_plugin_report_library(const agx_plugin_report *r, size_t i)
{
    const agx_plugin_report_entry *e = agx_report_at(r, i);
    return e ? e->library : NULL;
}

int agx_plugin_report_status(const agx_plugin_report *r, size_t i, const char **message)
{
    const agx_plugin_report_entry *e = agx_report_at(r, i);
    if (message)
        *message = e ? e->message : "no such entry";
    return e ? e->status : AGX_ERR_INVALID_ARGUMENT;
}

const char *agx_plugin_report_search_path(const agx_plugin_report *r)
{
    return r ? r->search_path : NULL;
}
