/* cmd_exec.c — `agentix exec`: a command in a sandbox through agentix.bash::run_stream, its stdout
 * and stderr copied to ours as the items arrive, and its exit code as ours — so a sandbox works in
 * a shell pipeline like `docker exec` does. */
#include "cli/cli.h"

#include <string.h>

#define AGX_EXEC_FAILED 125 /* agentix itself failed: the command's status is unknown */
#define AGX_EXEC_COMMAND_MAX (1u << 20)

static void agx_exec_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix exec [options] URL -- COMMAND [ARG]...\n"
            "       agentix exec [options] --sandbox-json FILE -- COMMAND [ARG]...\n\n"
            "Run a command in a sandbox (agentix.bash::run_stream), copying its stdout and stderr\n"
            "to ours as they arrive, and exit with its exit code. The words after -- are the\n"
            "command and its arguments, each quoted for the shell, like `docker exec`; for shell\n"
            "syntax run a shell: agentix exec URL -- sh -c 'make && make test'.\n\n"
            "Options:\n" AGX_CLI_CONN_HELP
            "  --cwd DIR             working directory in the sandbox\n"
            "  --env K=V             environment of the command (repeatable)\n"
            "  --timeout S           the sandbox kills the command after S seconds (exit code\n"
            "                        128+9); default none\n"
            "  --help                this text\n\n"
            "Exit status: the command's exit code (128+N when signal N ended it); 125 when agentix\n"
            "failed (connection, runtime error) so the command's status is unknown; 2 usage error.\n");
}

typedef struct agx_exec_args {
    agx_cli_conn conn;
    agx_value *kwargs; /* {command, cwd?, env?, timeout?} */
} agx_exec_args;

/* Appends word to buf quoted for a POSIX shell ('…' with ' as '\''). */
static int agx_exec_quote(agx_buf *buf, const char *word)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "_-./=:,+@%";
    if (*word && strspn(word, safe) == strlen(word))
        return agx_buf_append(buf, word, strlen(word));
    int rc = agx_buf_append(buf, "'", 1);
    for (const char *p = word; !rc && *p; p++)
        rc = *p == '\'' ? agx_buf_append(buf, "'\\''", 4) : agx_buf_append(buf, p, 1);
    return rc ? rc : agx_buf_append(buf, "'", 1);
}

static int agx_exec_command(int argc, char **argv, agx_value *kwargs)
{
    agx_buf buf = {0};
    int rc = 0;
    for (int i = 0; !rc && i < argc; i++) {
        if (i)
            rc = agx_buf_append(&buf, " ", 1);
        if (!rc)
            rc = agx_exec_quote(&buf, argv[i]);
    }
    if (!rc && buf.len > AGX_EXEC_COMMAND_MAX)
        rc = agx_cli_usage_error("exec", "the command is longer than %u bytes", AGX_EXEC_COMMAND_MAX);
    else if (!rc)
        rc = agx_value_map_set(kwargs, "command", agx_value_string_n(buf.data, buf.len));
    agx_buf_free(&buf);
    return rc;
}

static int agx_exec_option(int argc, char **argv, int *i, agx_exec_args *a, agx_value *env)
{
    static const char *const cmd = "exec";
    const char *v = NULL;
    int m = agx_cli_conn_opt(cmd, &a->conn, argc, argv, i);
    if (m != 0)
        return m == 1 ? AGX_CLI_OK : m;
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--cwd", &v)) != 0)
        return m < 0 ? AGX_CLI_USAGE : agx_value_map_set(a->kwargs, "cwd", agx_value_string(v));
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--env", &v)) != 0) {
        const char *eq = m > 0 ? strchr(v, '=') : NULL;
        if (!eq || eq == v)
            return m < 0 ? AGX_CLI_USAGE : agx_cli_usage_error(cmd, "--env wants K=V, got '%s'", v);
        return agx_value_map_set_n(env, v, (size_t)(eq - v), agx_value_string(eq + 1));
    }
    if ((m = agx_cli_opt(cmd, argc, argv, i, "--timeout", &v)) != 0) {
        int64_t ms;
        if (m < 0)
            return AGX_CLI_USAGE;
        if (agx_cli_duration_ms(v, &ms) != 0 || ms <= 0)
            return agx_cli_usage_error(cmd, "--timeout wants a positive number of seconds, got '%s'", v);
        return agx_value_map_set(a->kwargs, "timeout", agx_value_double((double)ms / 1000.0));
    }
    return agx_cli_usage_error(cmd, "unknown option '%s'", argv[*i]);
}

static int agx_exec_parse(int argc, char **argv, agx_exec_args *a)
{
    agx_value *env = agx_value_map();
    int rc = env ? 0 : AGX_CLI_ERROR, i = 1;
    for (; !rc && i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (argv[i][0] == '-')
            rc = agx_exec_option(argc, argv, &i, a, env);
        else if (!a->conn.url && !a->conn.sandbox_json)
            a->conn.url = argv[i];
        else
            rc = agx_cli_usage_error("exec", "unexpected argument '%s' (the command goes after --)",
                                     argv[i]);
    }
    if (!rc && !a->conn.url && !a->conn.sandbox_json)
        rc = agx_cli_usage_error("exec", "give the runtime URL (or --sandbox-json FILE)");
    if (!rc && a->conn.url && a->conn.sandbox_json)
        rc = agx_cli_usage_error("exec", "give the URL or --sandbox-json, not both");
    if (!rc && i + 1 >= argc)
        rc = agx_cli_usage_error("exec", "give the command after --");
    if (!rc && agx_value_map_len(env) > 0) {
        rc = agx_value_map_set(a->kwargs, "env", env);
        env = NULL;
    }
    agx_value_free(env);
    if (!rc)
        rc = agx_exec_command(argc - i - 1, argv + i + 1, a->kwargs);
    return rc < 0 ? AGX_CLI_ERROR : rc;
}

/* One run_stream item: output to our stdout/stderr, or the exit item. 1 at exit (*code set). */
static int agx_exec_item(const agx_value *item, int *code)
{
    const char *type = agx_value_get_string(agx_value_map_get(item, "type"), NULL);
    if (type && strcmp(type, "exit") == 0) {
        int64_t c = agx_value_get_int64(agx_value_map_get(item, "exit_code"));
        *code = c >= 0 && c <= 255 ? (int)c : AGX_EXEC_FAILED;
        return 1;
    }
    FILE *to = type && strcmp(type, "stderr") == 0 ? stderr : stdout;
    const agx_value *data = agx_value_map_get(item, "data");
    size_t len = 0;
    const void *bytes = agx_value_type_of(data) == AGX_VALUE_STRING
                            ? (const void *)agx_value_get_string(data, &len)
                            : agx_value_get_binary(data, &len);
    if (bytes && len)
        fwrite(bytes, 1, len, to);
    fflush(to);
    return 0;
}

static int agx_exec_stream(agx_client *c, const agx_value *kwargs)
{
    agx_error err;
    agx_call *call = NULL;
    if (agx_client_stream(c, "agentix.bash::run_stream", NULL, kwargs, &call, &err) != 0)
        return agx_cli_fail("exec", &err), AGX_EXEC_FAILED;
    int code = -1, rc;
    agx_value *item = NULL;
    /* No bound per item: a quiet command may run for hours; --timeout bounds it in the sandbox
     * and a lost connection ends the wait. */
    while ((rc = agx_call_next(call, -1, &item, &err)) == 1) {
        agx_exec_item(item, &code);
        agx_value_free(item);
    }
    agx_call_free(call);
    if (rc != 0)
        return agx_cli_fail("exec", &err), AGX_EXEC_FAILED;
    if (code < 0) {
        fprintf(stderr, "agentix exec: the runtime ended the stream without an exit item\n");
        return AGX_EXEC_FAILED;
    }
    return code;
}

static int agx_exec_run(int argc, char **argv)
{
    agx_exec_args a = {.kwargs = agx_value_map()};
    if (!a.kwargs || agx_cli_conn_init(&a.conn) != 0)
        return AGX_EXEC_FAILED;
    int rc = agx_exec_parse(argc, argv, &a);
    if (rc && rc != AGX_CLI_USAGE)
        rc = AGX_EXEC_FAILED;
    agx_client *c = NULL;
    if (!rc)
        rc = agx_cli_conn_open("exec", &a.conn, &c) ? AGX_EXEC_FAILED : agx_exec_stream(c, a.kwargs);
    agx_client_free(c);
    agx_value_free(a.kwargs);
    agx_cli_conn_free(&a.conn);
    return rc;
}

const agx_cli_command agx_cli_cmd_exec = {
    .name = "exec",
    .summary = "run a command in a sandbox, stream its output, exit with its code",
    .run = agx_exec_run,
    .help = agx_exec_help,
};
