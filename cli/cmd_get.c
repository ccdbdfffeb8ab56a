/* cmd_get.c — `agentix get` and `agentix ls`: what a backend reports about its sandboxes
 * (agx_deployment_get / agx_deployment_list), as aligned text or JSON. */
#include "cli/cli.h"

#include <string.h>
#include <time.h>

static void agx_get_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix get [--backend NAME] [--json] ID...\n\n"
            "Show each sandbox's state (creating, running, stopped, error, gone), runtime URL,\n"
            "creation time, detail and labels.\n\n"
            "Options:\n"
            "  --backend NAME   deployment backend (default $AGENTIX_BACKEND, else local)\n"
            "  --json           print a JSON array of {\"id\", \"state\", \"runtime_url\", \"detail\",\n"
            "                   \"created_at\" (unix ms or null), \"labels\"}\n"
            "  --help           this text\n\n"
            "Exit status: 0 every sandbox was found (a deleted one reports state gone), 1 the\n"
            "backend failed or an id is unknown to it, 2 usage error.\n");
}

static void agx_ls_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix ls [--backend NAME] [--label K=V]... [--json]\n\n"
            "List the sandboxes agentix created on a backend, optionally only those carrying every\n"
            "given label (e.g. --label agentix.run=RUN for one rollout).\n\n"
            "Options:\n"
            "  --backend NAME   deployment backend (default $AGENTIX_BACKEND, else local)\n"
            "  --label K=V      filter (repeatable; all must match)\n"
            "  --json           print a JSON array of {\"id\", \"state\", \"runtime_url\", \"detail\",\n"
            "                   \"created_at\", \"labels\"}\n"
            "  --help           this text\n\n"
            "Exit status: 0 listed (also when empty), 1 the backend failed or has no list,\n"
            "2 usage error.\n");
}

static void agx_get_print_row(const agx_sandbox_info *info)
{
    char when[32] = "-";
    int64_t ms = agx_sandbox_info_created_at(info);
    if (ms > 0) {
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    }
    const char *url = agx_sandbox_info_runtime_url(info);
    const char *detail = agx_sandbox_info_detail(info);
    printf("%-34s %-9s %-20s %s%s%s\n", agx_sandbox_info_id(info),
           agx_sandbox_state_name(agx_sandbox_info_state(info)), when, url ? url : "-",
           detail ? "  " : "", detail ? detail : "");
}

static void agx_get_print_header(void)
{
    printf("%-34s %-9s %-20s %s\n", "ID", "STATE", "CREATED", "RUNTIME_URL");
}

/* Shared option loop: --backend, --json, and (ls only) --label; positionals into ids. */
typedef struct agx_get_args {
    const char *backend;
    int json;
    agx_kv *labels; /* NULL: --label not accepted */
    char **ids;
    int nids;
} agx_get_args;

static int agx_get_parse(const char *cmd, int argc, char **argv, agx_get_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--backend", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            a->backend = v;
        } else if (a->labels && (m = agx_cli_opt(cmd, argc, argv, &i, "--label", &v)) != 0) {
            int rc = m < 0 ? AGX_CLI_USAGE : agx_cli_kv_arg(cmd, "--label", a->labels, v, '=');
            if (rc)
                return rc;
        } else if (argv[i][0] == '-') {
            return agx_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        } else {
            argv[a->nids++] = argv[i]; /* compact positionals in place */
        }
    }
    a->ids = argv;
    return AGX_CLI_OK;
}

static int agx_get_run(int argc, char **argv)
{
    agx_get_args a = {0};
    int rc = agx_get_parse("get", argc, argv, &a);
    if (rc)
        return rc;
    if (a.nids == 0)
        return agx_cli_usage_error("get", "give at least one sandbox id");
    agx_deployment *dep = NULL;
    if ((rc = agx_cli_load("get", a.backend, &dep)) != 0)
        return rc;
    json_t *arr = a.json ? json_array() : NULL;
    if (!a.json)
        agx_get_print_header();
    for (int i = 0; i < a.nids; i++) {
        agx_sandbox_info *info = NULL;
        agx_error err;
        if (agx_deployment_get(dep, a.ids[i], &info, &err) != 0) {
            rc = agx_cli_fail("get", &err);
            continue;
        }
        if (arr)
            json_array_append_new(arr, agx_cli_info_json(info));
        else
            agx_get_print_row(info);
        agx_sandbox_info_free(info);
    }
    agx_deployment_free(dep);
    if (arr) {
        int prc = agx_cli_print_json(arr, 0);
        return rc ? rc : prc;
    }
    return fflush(stdout) == 0 ? rc : AGX_CLI_ERROR;
}

static int agx_ls_run(int argc, char **argv)
{
    agx_get_args a = {.labels = agx_kv_new()};
    if (!a.labels)
        return AGX_CLI_ERROR;
    int rc = agx_get_parse("ls", argc, argv, &a);
    if (!rc && a.nids > 0)
        rc = agx_cli_usage_error("ls", "unexpected argument '%s'", a.ids[0]);
    agx_deployment *dep = NULL;
    if (!rc)
        rc = agx_cli_load("ls", a.backend, &dep);
    agx_sandbox_list *list = NULL;
    agx_error err;
    if (!rc && agx_deployment_list(dep, agx_kv_count(a.labels) ? a.labels : NULL, &list, &err) != 0)
        rc = agx_cli_fail("ls", &err);
    if (!rc && a.json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < agx_sandbox_list_count(list); i++)
            json_array_append_new(arr, agx_cli_info_json(agx_sandbox_list_at(list, i)));
        rc = agx_cli_print_json(arr, 0);
    } else if (!rc) {
        agx_get_print_header();
        for (size_t i = 0; i < agx_sandbox_list_count(list); i++)
            agx_get_print_row(agx_sandbox_list_at(list, i));
        rc = fflush(stdout) == 0 ? AGX_CLI_OK : AGX_CLI_ERROR;
    }
    agx_sandbox_list_free(list);
    agx_deployment_free(dep);
    agx_kv_free(a.labels);
    return rc;
}

const agx_cli_command agx_cli_cmd_get = {
    .name = "get",
    .summary = "show sandboxes' state, runtime URL and labels",
    .run = agx_get_run,
    .help = agx_get_help,
};

const agx_cli_command agx_cli_cmd_ls = {
    .name = "ls",
    .summary = "list a backend's sandboxes, optionally by label",
    .run = agx_ls_run,
    .help = agx_ls_help,
};
