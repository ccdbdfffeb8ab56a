/* cmd_conn.c — how `agentix call` and `agentix exec` reach a runtime: a URL with --token and
 * --header, or the document `agentix create --json` printed (--sandbox-json), then agx_client. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

int agx_cli_conn_init(agx_cli_conn *c)
{
    memset(c, 0, sizeof *c);
    c->token = getenv("AGENTIX_TOKEN");
    if (c->token && !*c->token)
        c->token = NULL;
    c->connect_timeout_ms = 30000;
    c->headers = agx_kv_new();
    return c->headers ? 0 : -1;
}

void agx_cli_conn_free(agx_cli_conn *c)
{
    agx_kv_free(c->headers);
    c->headers = NULL;
}

int agx_cli_conn_opt(const char *cmd, agx_cli_conn *c, int argc, char **argv, int *i)
{
    const char *v = NULL;
    int m;
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--token", &v)) != 0) {
        c->token = v;
        return m < 0 ? AGX_CLI_USAGE : 1;
    }
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--sandbox-json", &v)) != 0) {
        c->sandbox_json = v;
        return m < 0 ? AGX_CLI_USAGE : 1;
    }
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--header", &v)) != 0) {
        if (m < 0)
            return AGX_CLI_USAGE;
        int rc = agx_cli_kv_arg(cmd, "--header", c->headers, v, ':');
        return rc ? rc : 1;
    }
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--connect-timeout", &v)) != 0) {
        int64_t ms;
        if (m < 0)
            return AGX_CLI_USAGE;
        if (agx_cli_duration_ms(v, &ms) != 0 || ms <= 0 || ms > 3600000)
            return agx_cli_usage_error(cmd, "--connect-timeout wants seconds in (0, 3600], got '%s'",
                                       v);
        c->connect_timeout_ms = (int)ms;
        return 1;
    }
    return 0;
}

int agx_cli_conn_open(const char *cmd, const agx_cli_conn *c, agx_client **out)
{
    agx_error err;
    agx_client_options opts;
    agx_client_options_init(&opts);
    opts.connect_timeout_ms = c->connect_timeout_ms;
    opts.token = c->token;
    opts.headers = c->headers;
    if (!c->sandbox_json)
        return agx_client_connect(c->url, &opts, out, &err) ? agx_cli_fail(cmd, &err) : AGX_CLI_OK;
    agx_sandbox *sb = NULL;
    if (agx_cli_sandbox_load(c->sandbox_json, &sb, &err) != 0)
        return agx_cli_fail(cmd, &err);
    /* Explicit --token and --header win over the document, so a script can override them. */
    agx_kv *headers = agx_kv_copy(agx_sandbox_headers_const(sb));
    int rc = headers ? 0 : agx_error_set(&err, AGX_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; !rc && i < agx_kv_count(c->headers); i++)
        if (agx_kv_set(headers, agx_kv_key_at(c->headers, i), agx_kv_value_at(c->headers, i)))
            rc = agx_error_set(&err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc) {
        opts.token = c->token ? c->token : agx_sandbox_token(sb);
        opts.headers = headers;
        rc = agx_client_connect(agx_sandbox_runtime_url(sb), &opts, out, &err);
    }
    agx_kv_free(headers);
    agx_sandbox_free(sb);
    return rc ? agx_cli_fail(cmd, &err) : AGX_CLI_OK;
}
