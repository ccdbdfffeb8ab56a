/* main.c — the `agentix` command: dispatches to one subcommand (cli/cmd_<name>.c) from a table,
 * and answers --help / --version. Host-side tool: it drives libagentix like any other host. */
#include "cli/cli.h"

#include "agentix/version.h"

#include <stdarg.h>
#include <string.h>

/* Add a subcommand: write cli/cmd_<name>.c exporting agx_cli_cmd_<name>, declare it in cli.h and
 * list it here (the order is the order of `agentix --help`). */
static const agx_cli_command *const agx_cli_commands[] = {
    &agx_cli_cmd_create,
    &agx_cli_cmd_get,
    &agx_cli_cmd_ls,
    &agx_cli_cmd_delete,
    &agx_cli_cmd_extend,
    &agx_cli_cmd_call,
    &agx_cli_cmd_exec,
    &agx_cli_cmd_gc,
    &agx_cli_cmd_bench,
    &agx_cli_cmd_plugins,
    &agx_cli_cmd_build,
    &agx_cli_cmd_k8s_pool,
};
#define AGX_CLI_NCOMMANDS (sizeof agx_cli_commands / sizeof agx_cli_commands[0])

int agx_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

int agx_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "agentix %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'agentix %s --help'.\n", cmd);
    va_end(ap);
    return AGX_CLI_USAGE;
}

static void agx_cli_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix <command> [options]\n"
            "       agentix --help | --version\n"
            "       agentix help <command>\n\n"
            "Create sandboxes on many backends and call functions inside them.\n\n"
            "Commands:\n");
    for (size_t i = 0; i < AGX_CLI_NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", agx_cli_commands[i]->name, agx_cli_commands[i]->summary);
    fprintf(out,
            "\nEnvironment:\n"
            "  AGENTIX_PLUGIN_PATH  colon-separated folders searched for backend manifests\n"
            "                       (*.agxplugin) before the installed plugin folder\n"
            "  AGENTIX_BACKEND      default for --backend (else local)\n"
            "  AGENTIX_TOKEN        default for --token of call and exec\n"
            "  AGENTIX_RUN_ID       the agentix.run label of sandboxes created here\n\n"
            "Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
            "`agentix exec` exits with the command's code (125 when agentix failed).\n"
            "Every command takes --help. See docs/CLI.md.\n");
}

static const agx_cli_command *agx_cli_find(const char *name)
{
    for (size_t i = 0; i < AGX_CLI_NCOMMANDS; i++)
        if (strcmp(agx_cli_commands[i]->name, name) == 0)
            return agx_cli_commands[i];
    return NULL;
}

static int agx_cli_unknown(const char *name)
{
    fprintf(stderr, "agentix: unknown command '%s'\nTry 'agentix --help'.\n", name);
    return AGX_CLI_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        agx_cli_help(stderr);
        return AGX_CLI_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        agx_cli_help(stdout);
        return AGX_CLI_OK;
    }
    if (strcmp(first, "--version") == 0) {
        printf("agentix %s (libagentix %s)\n", AGX_VERSION_STRING, agx_version());
        return AGX_CLI_OK;
    }
    if (strcmp(first, "help") == 0) {
        if (argc < 3) {
            agx_cli_help(stdout);
            return AGX_CLI_OK;
        }
        const agx_cli_command *cmd = agx_cli_find(argv[2]);
        if (!cmd)
            return agx_cli_unknown(argv[2]);
        cmd->help(stdout);
        return AGX_CLI_OK;
    }
    if (first[0] == '-') {
        fprintf(stderr, "agentix: unknown option '%s'\nTry 'agentix --help'.\n", first);
        return AGX_CLI_USAGE;
    }
    const agx_cli_command *cmd = agx_cli_find(first);
    if (!cmd)
        return agx_cli_unknown(first);
    if (agx_cli_wants_help(argc - 1, argv + 1)) {
        cmd->help(stdout);
        return AGX_CLI_OK;
    }
    return cmd->run(argc - 1, argv + 1);
}
