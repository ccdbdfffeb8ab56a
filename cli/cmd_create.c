/* cmd_create.c — `agentix create`: one sandbox from the shell (host → backend → running runtime),
 * printed as text or as the JSON document `call`, `exec` and `delete` take with --sandbox-json.
 * Sandboxes carry owner labels naming the process that ran `agentix create` (the calling shell or
 * script), so `agentix gc` collects them once that process is gone. */
#include "cli/cli.h"

#include "agentix/backend/process.h"
#include "agentix/expiry.h"
#include "agentix/fleet.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGX_CLI_DEFAULT_EXPIRY_MS (3600 * 1000LL)

static void agx_create_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix create [--backend NAME] [--image I] [--bundle B] [--env K=V]...\n"
            "                      [--label K=V]... [--option K=V]... [--timeout S] [--expiry D]\n"
            "                      [--run-id R] [--no-owner] [--json]\n\n"
            "Create one sandbox and print how to reach it: id, backend, runtime_url, token and\n"
            "headers. The sandbox runs until `agentix delete` or its expiry, whichever comes\n"
            "first: nothing extends it once this command has returned (`agentix extend` does).\n\n"
            "Options:\n"
            "  --backend NAME   deployment backend (default $AGENTIX_BACKEND, else local)\n"
            "  --image I        task image the sandbox runs in (container backends)\n"
            "  --bundle B       runtime bundle (image or path; see `agentix build`)\n"
            "  --env K=V        environment of the runtime and the functions (repeatable)\n"
            "  --label K=V      label on the sandbox, for `agentix ls --label` (repeatable)\n"
            "  --option K=V     backend option <backend>.<name>, e.g. ns.network=private\n"
            "                   (repeatable; see the backend's README)\n"
            "  --timeout S      create-to-ready bound in seconds (default 120)\n"
            "  --expiry D       the sandbox ends itself D after its creation unless extended\n"
            "                   (90s, 30m, 2h, 1d; default $AGENTIX_EXPIRY_MS ms, else 1h)\n"
            "  --run-id R       the agentix.run label (default $AGENTIX_RUN_ID, else random)\n"
            "  --no-owner       no owner process: `agentix gc` collects it only once its expiry\n"
            "                   has passed\n"
            "  --json           print the sandbox as one JSON object: {\"backend\", \"id\",\n"
            "                   \"runtime_url\", \"token\", \"headers\"}; save it for --sandbox-json\n"
            "  --help           this text\n\n"
            "Owner: the sandbox is labelled agentix.owner.{host,pid,start} with the process that\n"
            "ran this command (its parent: your shell or script). When that process has exited,\n"
            "or the expiry passed, `agentix gc` deletes the sandbox.\n\n"
            "Exit status: 0 created, 1 the create failed (nothing is left behind), 2 usage error.\n");
}

/* Start time of pid in clock ticks (field 22 of /proc/<pid>/stat); 0 when unreadable. */
static uint64_t agx_create_proc_start(long pid)
{
    agx_proc_stat st;
    return agx_proc_stat_read(pid, &st) == 0 ? st.start_ticks : 0;
}

/* Owner labels naming our parent, the process whose lifetime the sandbox should follow; with
 * --no-owner, pid 0: no process, only the expiry ends the sandbox. */
static int agx_create_owner(agx_kv *labels, const char *run_id, int no_owner, agx_error *err)
{
    int rc = agx_owner_labels_set(labels, run_id, err);
    if (rc)
        return rc;
    long ppid = no_owner ? 0 : (long)getppid();
    char pid[24], start[24];
    snprintf(pid, sizeof pid, "%ld", ppid);
    snprintf(start, sizeof start, "%" PRIu64, ppid ? agx_create_proc_start(ppid) : 0);
    if (agx_kv_set(labels, AGX_LABEL_OWNER_PID, pid) || agx_kv_set(labels, AGX_LABEL_OWNER_START, start))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    return 0;
}

static void agx_create_print_text(const agx_sandbox *sb)
{
    const char *tok = agx_sandbox_token(sb);
    printf("id           %s\nbackend      %s\nruntime_url  %s\ntoken        %s\n",
           agx_sandbox_id(sb), agx_sandbox_backend(sb), agx_sandbox_runtime_url(sb),
           tok ? tok : "-");
    const agx_kv *h = agx_sandbox_headers_const(sb);
    for (size_t i = 0; i < agx_kv_count(h); i++)
        printf("header       %s: %s\n", agx_kv_key_at(h, i), agx_kv_value_at(h, i));
}

typedef struct agx_create_args {
    const char *backend, *run_id;
    int json, no_owner;
} agx_create_args;

static int agx_create_parse(int argc, char **argv, agx_sandbox_config *cfg, agx_create_args *a)
{
    static const char *const cmd = "create";
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if (strcmp(argv[i], "--no-owner") == 0) {
            a->no_owner = 1;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--backend", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            a->backend = v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--run-id", &v)) != 0) {
            if (m < 0)
                return AGX_CLI_USAGE;
            a->run_id = v;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--image", &v)) != 0) {
            if (m < 0 || agx_sandbox_config_set_image(cfg, v) != 0)
                return m < 0 ? AGX_CLI_USAGE : agx_cli_usage_error(cmd, "bad --image '%s'", v);
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--bundle", &v)) != 0) {
            if (m < 0 || agx_sandbox_config_set_bundle(cfg, v) != 0)
                return m < 0 ? AGX_CLI_USAGE : agx_cli_usage_error(cmd, "bad --bundle '%s'", v);
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--env", &v)) != 0) {
            int rc = m < 0 ? AGX_CLI_USAGE : agx_cli_kv_arg(cmd, "--env", agx_sandbox_config_env(cfg), v, '=');
            if (rc)
                return rc;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--label", &v)) != 0) {
            int rc = m < 0 ? AGX_CLI_USAGE
                           : agx_cli_kv_arg(cmd, "--label", agx_sandbox_config_labels(cfg), v, '=');
            if (rc)
                return rc;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--option", &v)) != 0) {
            int rc = m < 0 ? AGX_CLI_USAGE
                           : agx_cli_kv_arg(cmd, "--option", agx_sandbox_config_options(cfg), v, '=');
            if (rc)
                return rc;
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--expiry", &v)) != 0) {
            int64_t ms;
            if (m < 0)
                return AGX_CLI_USAGE;
            if (agx_cli_duration_ms(v, &ms) != 0 || agx_sandbox_config_set_expiry_ms(cfg, ms) != 0)
                return agx_cli_usage_error(cmd, "--expiry wants a duration from %llds to 7d, got "
                                                "'%s'", (long long)AGX_EXPIRY_MIN_MS / 1000, v);
        } else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--timeout", &v)) != 0) {
            int64_t ms;
            if (m < 0)
                return AGX_CLI_USAGE;
            if (agx_cli_duration_ms(v, &ms) != 0 || ms <= 0 ||
                agx_sandbox_config_set_timeout_ms(cfg, ms) != 0)
                return agx_cli_usage_error(cmd, "--timeout wants a positive duration, got '%s'", v);
        } else {
            return agx_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    return AGX_CLI_OK;
}

static int agx_create_run(int argc, char **argv)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    if (!cfg) {
        fprintf(stderr, "agentix create: out of memory\n");
        return AGX_CLI_ERROR;
    }
    agx_create_args a = {0};
    int rc = agx_create_parse(argc, argv, cfg, &a);
    agx_error err;
    if (!rc && agx_create_owner(agx_sandbox_config_labels(cfg), a.run_id, a.no_owner, &err) != 0)
        rc = err.code == AGX_ERR_INVALID_ARGUMENT ? agx_cli_usage_error("create", "%s", err.message)
                                                  : agx_cli_fail("create", &err);
    /* Nothing extends a shell's sandbox: a longer default than a library host's. */
    const char *env = getenv(AGX_EXPIRY_ENV);
    if (!rc && !agx_sandbox_config_expiry_ms(cfg) && !(env && *env))
        agx_sandbox_config_set_expiry_ms(cfg, AGX_CLI_DEFAULT_EXPIRY_MS);
    agx_deployment *dep = NULL;
    if (!rc)
        rc = agx_cli_load("create", a.backend, &dep);
    agx_sandbox *sb = NULL;
    if (!rc && agx_deployment_create(dep, cfg, &sb, &err) != 0)
        rc = agx_cli_fail("create", &err);
    if (!rc && a.json) {
        rc = agx_cli_print_json(agx_cli_sandbox_json(sb), 0);
    } else if (!rc) {
        agx_create_print_text(sb);
        if (fflush(stdout) != 0)
            rc = AGX_CLI_ERROR;
    }
    if (rc && sb && agx_deployment_delete(dep, agx_sandbox_id(sb), &err) != 0)
        agx_cli_fail("create", &err); /* could not print it: do not leave it running */
    agx_sandbox_free(sb);
    agx_deployment_free(dep);
    agx_sandbox_config_free(cfg);
    return rc;
}

const agx_cli_command agx_cli_cmd_create = {
    .name = "create",
    .summary = "create a sandbox and print its id, runtime URL and token",
    .run = agx_create_run,
    .help = agx_create_help,
};
