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

#define AGX_CLI_SANDBOX_JSON_MAX (1u << 20)

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
    const char *s = strchr(arg, sep);
    if (!s || s == arg)
        return agx_cli_usage_error(cmd, "%s wants KEY%cVALUE, got '%s'", opt, sep, arg);
    char key[256];
    size_t klen = (size_t)(s - arg);
    if (klen >= sizeof key)
        return agx_cli_usage_error(cmd, "%s: key longer than %zu bytes", opt, sizeof key - 1);
    memcpy(key, arg, klen);
    key[klen] = '\0';
    const char *v = s + 1;
    if (sep == ':')
        v += strspn(v, " ");
    if (agx_kv_set(kv, key, v) != 0) {
        fprintf(stderr, "agentix %s: out of memory\n", cmd);
        return AGX_CLI_ERROR;
    }
    return AGX_CLI_OK;
}

int agx_cli_duration_ms(const char *s, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || v > 1e12)
        return -1;
    double unit;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60e3;
    else if (strcmp(end, "h") == 0)
        unit = 3600e3;
    else if (strcmp(end, "d") == 0)
        unit = 86400e3;
    else
        return -1;
    *out = (int64_t)(v * unit);
    return 0;
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


static const char *agx_cli_json_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int agx_cli_sandbox_from_json(json_t *root, const char *path, agx_sandbox **out,
                                     agx_error *err)
{
    const char *backend = agx_cli_json_str(root, "backend"), *id = agx_cli_json_str(root, "id");
    const char *url = agx_cli_json_str(root, "runtime_url");
    json_t *tok = json_object_get(root, "token"), *hdr = json_object_get(root, "headers");
    if (!backend || !id || !url || (tok && !json_is_string(tok) && !json_is_null(tok)) ||
        (hdr && !json_is_object(hdr) && !json_is_null(hdr)))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s is not the output of `agentix create --json`: it needs string "
                             "backend, id and runtime_url, a string or null token and a headers "
                             "object", path);
    agx_sandbox *sb = agx_sandbox_new(backend, id, url, json_string_value(tok));
    if (!sb)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(hdr, k, v) {
        if (!json_is_string(v)) {
            agx_sandbox_free(sb);
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: header '%.100s' is not a string",
                                 path, k);
        }
        if (agx_kv_set(agx_sandbox_headers(sb), k, json_string_value(v)) != 0) {
            agx_sandbox_free(sb);
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        }
    }
    *out = sb;
    return 0;
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
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s is not a JSON object (%s)", path,
                             root ? "another JSON type" : jerr.text);
    }
    rc = agx_cli_sandbox_from_json(root, path, out, err);
    json_decref(root);
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
