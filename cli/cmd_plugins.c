/* cmd_plugins.c — `agentix plugins`: what plugin discovery sees. Every backend found (in-process
 * or by manifest), its manifest and shared object, whether it loads (or the exact load error),
 * and the folders searched. Diagnoses "no deployment backend 'x'" without reading the source. */
#include "cli/cli.h"

#include "agentix/plugin.h"

#include <jansson.h>
#include <string.h>

static void agx_plugins_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix plugins [--json] [--check]\n\n"
            "List every deployment backend discovery finds: in-process registrations, then the\n"
            "manifests (*.agxplugin) in each folder of $AGENTIX_PLUGIN_PATH, then the plugin\n"
            "folder beside libagentix (<libdir>/agentix/backends). Each backend is loaded\n"
            "(dlopen, entry symbol, ABI check) but not constructed, so no credentials are needed.\n\n"
            "Options:\n"
            "  --json   print one JSON object: {\"search_path\": [...], \"plugins\": [{\"name\",\n"
            "           \"manifest\", \"library\", \"status\": \"ok\"|\"error\", \"code\", \"error\"}]}\n"
            "  --check  exit 1 when any backend fails to load\n"
            "  --help   this text\n\n"
            "Exit status: 0 listed (and with --check: every backend loads), 1 discovery failed or\n"
            "(--check) a backend does not load, 2 usage error.\n");
}

static int agx_plugins_text(const agx_plugin_report *r)
{
    int broken = 0;
    printf("search path: %s\n", agx_plugin_report_search_path(r));
    size_t n = agx_plugin_report_count(r);
    if (n == 0)
        printf("no backends found\n");
    for (size_t i = 0; i < n; i++) {
        const char *msg = NULL;
        int st = agx_plugin_report_status(r, i, &msg);
        const char *name = agx_plugin_report_name(r, i);
        printf("%-16s %-5s %s -> %s\n", *name ? name : "-", st == 0 ? "ok" : "error",
               agx_plugin_report_manifest(r, i), *agx_plugin_report_library(r, i)
                                                     ? agx_plugin_report_library(r, i)
                                                     : "-");
        if (st != 0) {
            printf("    %s: %s\n", agx_error_code_name(st), msg);
            broken++;
        }
    }
    return broken;
}

static json_t *agx_plugins_path_array(const char *path)
{
    json_t *arr = json_array();
    for (const char *p = path; arr && p && *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        json_array_append_new(arr, json_stringn(p, len));
        p = colon ? colon + 1 : p + len;
    }
    return arr;
}

static int agx_plugins_json(const agx_plugin_report *r, int *broken)
{
    json_t *plugins = json_array();
    json_t *root = json_pack("{s:o, s:o}", "search_path",
                             agx_plugins_path_array(agx_plugin_report_search_path(r)), "plugins",
                             plugins);
    if (!root)
        return -1;
    for (size_t i = 0; i < agx_plugin_report_count(r); i++) {
        const char *msg = NULL;
        int st = agx_plugin_report_status(r, i, &msg);
        const char *name = agx_plugin_report_name(r, i);
        json_t *o = json_pack("{s:o, s:s, s:s, s:s}", "name",
                              *name ? json_string(name) : json_null(), "manifest",
                              agx_plugin_report_manifest(r, i), "library",
                              agx_plugin_report_library(r, i), "status", st == 0 ? "ok" : "error");
        if (o && st != 0) {
            json_object_set_new(o, "code", json_string(agx_error_code_name(st)));
            json_object_set_new(o, "error", json_string(msg));
            (*broken)++;
        }
        if (!o || json_array_append_new(plugins, o) != 0) {
            json_decref(root);
            return -1;
        }
    }
    int rc = json_dumpf(root, stdout, JSON_INDENT(2)) == 0 ? 0 : -1;
    putchar('\n');
    json_decref(root);
    return rc;
}

static int agx_plugins_run(int argc, char **argv)
{
    int as_json = 0, check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else
            return agx_cli_usage_error("plugins", "unexpected argument '%s'", argv[i]);
    }
    agx_error err;
    agx_plugin_report *r = NULL;
    if (agx_plugin_report_scan(&r, &err) != 0) {
        fprintf(stderr, "agentix plugins: %s\n", err.message);
        return AGX_CLI_ERROR;
    }
    int broken = 0, rc = 0;
    if (as_json)
        rc = agx_plugins_json(r, &broken);
    else
        broken = agx_plugins_text(r);
    agx_plugin_report_free(r);
    if (rc != 0) {
        fprintf(stderr, "agentix plugins: could not write the JSON report\n");
        return AGX_CLI_ERROR;
    }
    return check && broken ? AGX_CLI_ERROR : AGX_CLI_OK;
}

const agx_cli_command agx_cli_cmd_plugins = {
    .name = "plugins",
    .summary = "list deployment backends, where they were found and whether they load",
    .run = agx_plugins_run,
    .help = agx_plugins_help,
};
