/* cmd_util.c — what the sandbox subcommands of `agentix` share: option parsing (--opt V, K=V
 * pairs, durations), loading a backend, error printing, the sandbox/info JSON documents that chain
 * `create --json` into `call`/`exec`/`delete --sandbox-json`, and progress output. */
#include "cli/cli.h"

#include "agentix/fdio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int agx_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
                const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        agx_cli_usage_error(cmd, "%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int agx_cli_kv_arg(const char *cmd, const char *opt, agx_kv *kv, const char *arg, char sep)
{
    char key[256];
    const char *v;
    int rc = agx_cli_kv_split(arg, sep, key, sizeof key, &v);
    if (rc == -2)
        return agx_cli_usage_error(cmd, "%s: key longer than %zu bytes", opt, sizeof key - 1);
    if (rc != 0)
        return agx_cli_usage_error(cmd, "%s wants KEY%cVALUE, got '%s'", opt, sep, arg);
    if (agx_kv_set(kv, key, v) != 0) {
        fprintf(stderr, "agentix %s: out of memory\n", cmd);
        return AGX_CLI_ERROR;
    }
    return AGX_CLI_OK;
}

int agx_cli_fail(const char *cmd, const agx_error *err)
{
    fprintf(stderr, "agentix %s: %s (%s%s%s)\n", cmd, err->message, agx_error_code_name(err->code),
            err->remote_type[0] ? " " : "", err->remote_type);
    if (err->detail[0])
        fprintf(stderr, "  %s\n", err->detail);
    return AGX_CLI_ERROR;
}

int agx_cli_load(const char *cmd, const char *backend, agx_deployment **out)
{
    if (!backend)
        backend = getenv("AGENTIX_BACKEND");
    if (!backend || !*backend)
        backend = "local";
    agx_error err;
    if (agx_load_deployment(backend, out, &err) != 0)
        return agx_cli_fail(cmd, &err);
    return AGX_CLI_OK;
}

int agx_cli_print_json(json_t *root, int one_line)
{
    if (!root) {
        fprintf(stderr, "agentix: out of memory building JSON output\n");
        return AGX_CLI_ERROR;
    }
    int rc = json_dumpf(root, stdout, one_line ? JSON_COMPACT : JSON_INDENT(2));
    json_decref(root);
    putchar('\n');
    if (rc != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "agentix: cannot write to stdout\n");
        return AGX_CLI_ERROR;
    }
    return AGX_CLI_OK;
}

static json_t *agx_cli_kv_json(const agx_kv *kv)
{
    json_t *o = json_object();
    for (size_t i = 0; o && kv && i < agx_kv_count(kv); i++)
        if (json_object_set_new(o, agx_kv_key_at(kv, i), json_string(agx_kv_value_at(kv, i))) != 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

json_t *agx_cli_sandbox_json(const agx_sandbox *sb)
{
    const char *tok = agx_sandbox_token(sb);
    return json_pack("{s:s, s:s, s:s, s:o, s:o*}", "backend", agx_sandbox_backend(sb), "id",
                     agx_sandbox_id(sb), "runtime_url", agx_sandbox_runtime_url(sb), "token",
                     tok ? json_string(tok) : json_null(), "headers",
                     agx_cli_kv_json(agx_sandbox_headers_const(sb)));
}

json_t *agx_cli_info_json(const agx_sandbox_info *info)
{
    const char *url = agx_sandbox_info_runtime_url(info);
    const char *detail = agx_sandbox_info_detail(info);
    int64_t created = agx_sandbox_info_created_at(info);
    int64_t expires = agx_sandbox_info_expires_at(info);
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o*}", "id", agx_sandbox_info_id(info),
                     "state", agx_sandbox_state_name(agx_sandbox_info_state(info)), "runtime_url",
                     url ? json_string(url) : json_null(), "detail",
                     detail ? json_string(detail) : json_null(), "created_at",
                     created ? json_integer(created) : json_null(), "expires_at",
                     expires ? json_integer(expires) : json_null(), "labels",
                     agx_cli_kv_json(agx_sandbox_info_labels_const(info)));
}

int agx_cli_sandbox_load(const char *path, agx_sandbox **out, agx_error *err)
{
    *out = NULL;
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t len = 0;
    char *text = NULL;
    int rc = agx_fd_read_all(fileno(f), AGX_CLI_SANDBOX_JSON_MAX, path, &text, &len, err);
    if (!is_stdin)
        fclose(f);
    if (rc)
        return rc;
    rc = agx_cli_sandbox_parse(text, len, path, out, err);
    free(text);
    return rc;
}

static int agx_cli_bar_open;

void agx_cli_progress(const char *cmd, size_t done, size_t total, const char *what)
{
    if (!isatty(STDERR_FILENO)) {
        fprintf(stderr, "agentix %s: %zu/%zu %s\n", cmd, done, total, what ? what : "");
        return;
    }
    enum { WIDTH = 30 };
    size_t fill = total ? done * WIDTH / total : WIDTH;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r\033[Kagentix %s [%s] %zu/%zu %.40s", cmd, bar, done, total,
            what ? what : "");
    agx_cli_bar_open = 1;
}

void agx_cli_progress_done(void)
{
    if (agx_cli_bar_open)
        fputc('\n', stderr);
    agx_cli_bar_open = 0;
}
