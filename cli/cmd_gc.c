/* cmd_gc.c — `agentix gc`: deletes sandboxes whose owner process is gone (a host killed with -9,
 * a shell that ran `agentix create` and exited) or whose expiry passed, and on request leftover
 * carrier containers, through each backend's list (agx_gc). */
#include "cli/cli.h"

#include "agentix/fleet.h"
#include "agentix/plugin.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define AGX_GC_MAX_BACKENDS 32

static void agx_gc_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix gc [--backend NAME]... [--older-than D] [--run R] [--grace D]\n"
            "                  [--carriers] [--dry-run] [--json]\n\n"
            "Delete the sandboxes whose owner process on this host no longer exists (labels\n"
            "agentix.owner.host/pid/start, or agentix.owner of older sandboxes) or whose expiry\n"
            "(agentix.expires, or the provider's own deadline) has passed. Sandboxes of live\n"
            "processes are kept, and so are other hosts' until their expiry.\n\n"
            "Options:\n"
            "  --backend NAME   collect on this backend (repeatable). Default: every backend\n"
            "                   discovery finds; those that cannot be constructed here (no daemon,\n"
            "                   no credentials) are reported as skipped\n"
            "  --older-than D   only sandboxes created at least D ago (90s, 10m, 2h, 1d)\n"
            "  --run R          only the sandboxes of run R (label agentix.run)\n"
            "  --grace D        an expiry counts as passed D after it (default 10s)\n"
            "  --carriers       also delete leftover carrier containers no sandbox uses (docker)\n"
            "  --dry-run        report what would be deleted, delete nothing\n"
            "  --json           print {\"backends\": [{\"backend\", \"examined\", \"deleted\", \"kept\",\n"
            "                   \"failed\", \"skipped\" (reason or null), \"sandboxes\": [{\"id\",\n"
            "                   \"verdict\", \"error\"}]}]}; verdicts: deleted, expired, carrier\n"
            "                   (with --dry-run: would-delete, would-expire, would-delete-carrier),\n"
            "                   owner-alive, too-young, kept, delete-failed\n"
            "  --help           this text\n\n"
            "Exit status: 0 every delete succeeded, 1 a delete failed or a named backend could not\n"
            "be loaded or listed, 2 usage error.\n");
}

typedef struct agx_gc_state {
    const char *backend;
    int json, dry_run;
    json_t *items; /* --json: this backend's sandboxes */
} agx_gc_state;

static void agx_gc_on_sandbox(void *user, const agx_sandbox_info *info, agx_gc_verdict v,
                              const agx_error *err)
{
    agx_gc_state *s = user;
    char would[32];
    const char *verdict = agx_gc_verdict_name(v);
    bool doomed = v == AGX_GC_DELETED || v == AGX_GC_EXPIRED || v == AGX_GC_CARRIER;
    if (doomed && s->dry_run) {
        snprintf(would, sizeof would, "%s", v == AGX_GC_DELETED   ? "would-delete"
                                            : v == AGX_GC_EXPIRED ? "would-expire"
                                                                  : "would-delete-carrier");
        verdict = would;
    }
    if (s->json) {
        json_array_append_new(s->items, json_pack("{s:s, s:s, s:o}", "id", agx_sandbox_info_id(info),
                                                  "verdict", verdict, "error",
                                                  err && err->code ? json_string(err->message)
                                                                   : json_null()));
        return;
    }
    if (v == AGX_GC_DELETE_FAILED)
        fprintf(stderr, "agentix gc: %s: %s: delete failed: %s\n", s->backend,
                agx_sandbox_info_id(info), err ? err->message : "");
    else if (doomed)
        printf("%s %s %s\n", verdict, s->backend, agx_sandbox_info_id(info));
}

/* Collects on one backend; fills its JSON entry. AGX_CLI_*. */
static int agx_gc_backend(const char *name, int named, const agx_gc_options *base, int json,
                          json_t *out)
{
    agx_gc_state s = {.backend = name, .json = json, .dry_run = base->dry_run,
                      .items = json_array()};
    agx_gc_options o = *base;
    o.on_sandbox = agx_gc_on_sandbox;
    o.user = &s;
    agx_deployment *dep = NULL;
    agx_gc_report rep = {0};
    agx_error err;
    agx_error_clear(&err);
    int rc = agx_load_deployment(name, &dep, &err);
    int loaded = rc == 0;
    if (loaded)
        rc = agx_gc(dep, &o, &rep, &err);
    agx_deployment_free(dep);
    int skipped = rc && (!loaded || rc == AGX_ERR_UNSUPPORTED) && !named;
    if (rc && !skipped && !json)
        agx_cli_fail("gc", &err);
    else if (skipped && !json)
        fprintf(stderr, "agentix gc: %s: skipped: %s\n", name, err.message);
    if (!json && !rc)
        printf("%s: examined %zu, deleted %zu, kept %zu, failed %zu\n", name, rep.examined,
               rep.deleted, rep.kept, rep.failed);
    json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "backend", name,
                                         "examined", (json_int_t)rep.examined, "deleted", (json_int_t)rep.deleted,
                                         "kept", (json_int_t)rep.kept, "failed", (json_int_t)rep.failed,
                                         "skipped", skipped ? json_string(err.message) : json_null(),
                                         "error", rc && !skipped ? json_string(err.message) : json_null(),
                                         "sandboxes", s.items));
    return rc && !skipped ? AGX_CLI_ERROR : AGX_CLI_OK;
}

/* Every backend discovery finds that loads (names only; construction happens per backend). */
static int agx_gc_all_names(char **names, size_t *n, agx_plugin_report **report)
{
    agx_error err;
    if (agx_plugin_report_scan(report, &err) != 0)
        return agx_cli_fail("gc", &err);
    *n = 0;
    for (size_t i = 0; i < agx_plugin_report_count(*report) && *n < AGX_GC_MAX_BACKENDS; i++) {
        const char *name = agx_plugin_report_name(*report, i);
        if (*name && agx_plugin_report_status(*report, i, NULL) == 0)
            names[(*n)++] = (char *)name;
    }
    return AGX_CLI_OK;
}

static int agx_gc_parse(int argc, char **argv, agx_gc_options *o, int *json, char **names,
                        size_t *n)
{
    static const char *const cmd = "gc";
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (strcmp(argv[i], "--json") == 0) {
            *json = 1;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            o->dry_run = true;
        } else if (strcmp(argv[i], "--carriers") == 0) {
            o->carriers = true;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--backend", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            if (*n == AGX_GC_MAX_BACKENDS)
                return agx_cli_usage_error(cmd, "at most %d --backend", AGX_GC_MAX_BACKENDS);
            names[(*n)++] = (char *)v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--run", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            o->run_id = v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--grace", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            if (agx_cli_duration_ms(v, &o->expiry_grace_ms) != 0)
                return agx_cli_usage_error(cmd, "--grace wants a duration (10s, 2m), got '%s'", v);
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--older-than", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            if (agx_cli_duration_ms(v, &o->older_than_ms) != 0)
                return agx_cli_usage_error(cmd, "--older-than wants a duration (90s, 10m, 2h, 1d), "
                                                "got '%s'", v);
        } else {
            return agx_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    return AGX_CLI_OK;
}

static int agx_gc_run(int argc, char **argv)
{
    agx_gc_options o;
    agx_gc_options_init(&o);
    int json = 0;
    char *names[AGX_GC_MAX_BACKENDS];
    size_t n = 0;
    int rc = agx_gc_parse(argc, argv, &o, &json, names, &n);
    if (rc)
        return rc;
    int named = n > 0;
    agx_plugin_report *report = NULL;
    if (!named && (rc = agx_gc_all_names(names, &n, &report)) != 0)
        return rc;
    json_t *backends = json_array();
    for (size_t i = 0; i < n; i++)
        if (agx_gc_backend(names[i], named, &o, json, backends) != 0)
            rc = AGX_CLI_ERROR;
    agx_plugin_report_free(report);
    if (json) {
        int prc = agx_cli_print_json(json_pack("{s:o}", "backends", backends), 0);
        return rc ? rc : prc;
    }
    json_decref(backends);
    return fflush(stdout) == 0 ? rc : AGX_CLI_ERROR;
}

const agx_cli_command agx_cli_cmd_gc = {
    .name = "gc",
    .summary = "delete sandboxes whose owner process is gone or whose expiry passed",
    .run = agx_gc_run,
    .help = agx_gc_help,
};
