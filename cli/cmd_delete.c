/* cmd_delete.c — `agentix delete`: deletes sandboxes by id, or the one a `create --json` document
 * names (its backend included), through agx_deployment_delete. Already-gone ids succeed. */
#include "cli/cli.h"

#include <string.h>

static void agx_delete_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix delete [--backend NAME] ID...\n"
            "       agentix delete --sandbox-json FILE\n\n"
            "Delete sandboxes. Deleting one that is already gone succeeds.\n\n"
            "Options:\n"
            "  --backend NAME       deployment backend (default: the document's backend with\n"
            "                       --sandbox-json, else $AGENTIX_BACKEND, else local)\n"
            "  --sandbox-json FILE  delete the sandbox `agentix create --json` printed (FILE '-' =\n"
            "                       stdin)\n"
            "  --quiet              print nothing on success (default: one 'deleted ID' line each)\n"
            "  --help               this text\n\n"
            "Exit status: 0 every sandbox is gone, 1 a delete failed (the others were still\n"
            "attempted), 2 usage error.\n");
}

static int agx_delete_run(int argc, char **argv)
{
    static const char *const cmd = "delete";
    const char *backend = NULL, *doc = NULL;
    int quiet = 0, nids = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--backend", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            backend = v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--sandbox-json", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            doc = v;
        } else if (argv[i][0] == '-') {
            return agx_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        } else {
            argv[nids++] = argv[i];
        }
    }
    if ((nids == 0) == !doc)
        return agx_cli_usage_error(cmd, "give sandbox ids or --sandbox-json FILE (not both)");
    agx_error err;
    agx_sandbox *sb = NULL;
    if (doc) {
        if (agx_cli_sandbox_load(doc, &sb, &err) != 0)
            return agx_cli_fail(cmd, &err);
        if (!backend)
            backend = agx_sandbox_backend(sb);
        argv[nids++] = (char *)agx_sandbox_id(sb);
    }
    agx_deployment *dep = NULL;
    int rc = agx_cli_load(cmd, backend, &dep);
    for (int i = 0; dep && i < nids; i++) { /* keep going: delete what can be deleted */
        if (agx_deployment_delete(dep, argv[i], &err) != 0)
            rc = agx_cli_fail(cmd, &err);
        else if (!quiet)
            printf("deleted %s\n", argv[i]);
    }
    agx_deployment_free(dep);
    agx_sandbox_free(sb);
    return fflush(stdout) == 0 ? rc : AGX_CLI_ERROR;
}

const agx_cli_command agx_cli_cmd_delete = {
    .name = "delete",
    .summary = "delete sandboxes by id or by `create --json` document",
    .run = agx_delete_run,
    .help = agx_delete_help,
};
