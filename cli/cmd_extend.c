/* cmd_extend.c — `agentix extend`: moves the expiry of a sandbox `agentix create --json` made
 * (nothing extends a shell's sandbox by itself) through agx_deployment_extend: the runtime's own
 * expiry and the provider's deadline where it has one. */
#include "cli/cli.h"

#include "agentix/expiry.h"

#include <string.h>

static void agx_extend_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix extend --sandbox-json FILE [--expiry D] [--backend NAME]\n\n"
            "Extend a sandbox's expiry: it ends itself D from now unless extended again.\n\n"
            "Options:\n"
            "  --sandbox-json FILE  the sandbox `agentix create --json` printed ('-' = stdin)\n"
            "  --expiry D           from now (90s, 30m, 2h, 1d; default $AGENTIX_EXPIRY_MS ms,\n"
            "                       else 5m)\n"
            "  --backend NAME       deployment backend (default: the document's)\n"
            "  --help               this text\n\n"
            "Exit status: 0 extended, 1 it failed (gone: the sandbox no longer exists), 2 usage\n"
            "error.\n");
}

static int agx_extend_run(int argc, char **argv)
{
    static const char *const cmd = "extend";
    const char *backend = NULL, *doc = NULL;
    int64_t ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if ((m = agx_cli_opt(cmd, argc, argv, &i, "--backend", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            backend = v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--sandbox-json", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            doc = v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--expiry", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            if (agx_cli_duration_ms(v, &ms) != 0 || ms < AGX_EXPIRY_MIN_MS || ms > AGX_EXPIRY_MAX_MS)
                return agx_cli_usage_error(cmd, "--expiry wants a duration from %llds to 7d, got "
                                                "'%s'", (long long)AGX_EXPIRY_MIN_MS / 1000, v);
        } else {
            return agx_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!doc)
        return agx_cli_usage_error(cmd, "--sandbox-json FILE is required");
    agx_error err;
    agx_sandbox *sb = NULL;
    if (agx_cli_sandbox_load(doc, &sb, &err) != 0)
        return agx_cli_fail(cmd, &err);
    agx_deployment *dep = NULL;
    int rc = agx_cli_load(cmd, backend ? backend : agx_sandbox_backend(sb), &dep);
    if (!rc && agx_deployment_extend(dep, sb, ms, &err) != 0)
        rc = agx_cli_fail(cmd, &err);
    else if (!rc)
        printf("extended %s\n", agx_sandbox_id(sb));
    agx_deployment_free(dep);
    agx_sandbox_free(sb);
    return fflush(stdout) == 0 ? rc : AGX_CLI_ERROR;
}

const agx_cli_command agx_cli_cmd_extend = {
    .name = "extend",
    .summary = "extend the expiry of a sandbox `agentix create` made",
    .run = agx_extend_run,
    .help = agx_extend_help,
};
