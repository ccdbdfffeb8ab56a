/* cmd_call.c — `agentix call`: one remote function from the shell (host → runtime server → worker).
 * The function's shape comes from agx_client_describe: unary results print as one JSON document,
 * stream items as JSON lines as they arrive, and bidi functions take their input as JSON lines on
 * stdin (end of input closes the sending side). */
#include "cli/cli.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AGX_CALL_LINE_MAX (16u << 20) /* one stdin JSON line for a bidi call */

static void agx_call_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix call [options] URL module::function [ARGS_JSON]\n"
            "       agentix call [options] --sandbox-json FILE module::function [ARGS_JSON]\n\n"
            "Call a function in a sandbox's runtime. ARGS_JSON is a JSON array (positional\n"
            "arguments) or object (keyword arguments); leave it out for none. The function's\n"
            "shape decides the output:\n"
            "  unary   the result as one JSON document\n"
            "  stream  each item as one JSON line, as it arrives\n"
            "  bidi    stdin is read as JSON lines, each sent as an input item (end of input\n"
            "          closes the input); each output item is printed as one JSON line\n"
            "Binary values print as {\"$base64\": \"...\"}.\n\n"
            "Options:\n" AGX_CLI_CONN_HELP
            "  --timeout S           bound on the unary call, or on the wait for each stream\n"
            "                        item, in seconds (default 600; 0 = no bound)\n"
            "  --help                this text\n\n"
            "Exit status: 0 the call succeeded, 1 it failed (connection, remote error: type and\n"
            "message on stderr), 2 usage error or ARGS_JSON is not an array or object.\n");
}

typedef struct agx_call_args {
    agx_cli_conn conn;
    const char *target;
    agx_value *args, *kwargs;
    int timeout_ms;
} agx_call_args;

static int agx_call_args_json(const char *text, agx_call_args *a)
{
    agx_value *v = NULL;
    agx_error err;
    if (agx_value_from_json(text, strlen(text), NULL, &v, &err) != 0)
        return agx_cli_usage_error("call", "ARGS_JSON: %s", err.message);
    agx_value_type t = agx_value_type_of(v);
    if (t == AGX_VALUE_ARRAY) {
        a->args = v;
    } else if (t == AGX_VALUE_MAP) {
        a->kwargs = v;
    } else {
        agx_value_free(v);
        return agx_cli_usage_error("call", "ARGS_JSON must be an array (positional) or an object "
                                           "(keyword arguments), got a %s", agx_value_type_name(t));
    }
    return AGX_CLI_OK;
}

static int agx_call_parse(int argc, char **argv, agx_call_args *a)
{
    static const char *const cmd = "call";
    char *pos[3];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m = agx_cli_conn_opt(cmd, &a->conn, argc, argv, &i);
        if (m == 1)
            continue;
        if (m != 0)
            return m;
        if ((m = agx_cli_opt(cmd, argc, argv, &i, "--timeout", &v)) != 0) {
            int64_t ms;
            if (m < 0)
                return AGX_CLI_USAGE;
            if (agx_cli_duration_ms(v, &ms) != 0 || ms > 86400000)
                return agx_cli_usage_error(cmd, "--timeout wants seconds (0 = none), got '%s'", v);
            a->timeout_ms = ms == 0 ? -1 : (int)ms;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0' && argv[i][1] != '[' && argv[i][1] != '{') {
            return agx_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        } else if (npos == 3) {
            return agx_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        } else {
            pos[npos++] = argv[i];
        }
    }
    int k = 0;
    if (!a->conn.sandbox_json) {
        if (npos < 1)
            return agx_cli_usage_error(cmd, "give the runtime URL (or --sandbox-json FILE)");
        a->conn.url = pos[k++];
    }
    if (k >= npos || !strstr(pos[k], "::"))
        return agx_cli_usage_error(cmd, "give the function as module::function");
    a->target = pos[k++];
    if (k < npos - 1)
        return agx_cli_usage_error(cmd, "unexpected argument '%s'", pos[npos - 1]);
    return k < npos ? agx_call_args_json(pos[k], a) : AGX_CLI_OK;
}

/* One value as one JSON line on stdout. */
static int agx_call_print(const agx_value *v)
{
    char *text = NULL;
    agx_error err;
    if (agx_value_to_json(v, &text, &err) != 0)
        return agx_cli_fail("call", &err);
    int ok = puts(text) >= 0 && fflush(stdout) == 0;
    free(text);
    if (!ok)
        fprintf(stderr, "agentix call: cannot write to stdout\n");
    return ok ? AGX_CLI_OK : AGX_CLI_ERROR;
}

/* Reads a stream or bidi call's items until it ends. */
static int agx_call_drain(agx_call *call, int timeout_ms)
{
    agx_error err;
    agx_value *item = NULL;
    int rc;
    while ((rc = agx_call_next(call, timeout_ms, &item, &err)) == 1) {
        int prc = agx_call_print(item);
        agx_value_free(item);
        if (prc)
            return prc;
    }
    return rc == 0 ? AGX_CLI_OK : agx_cli_fail("call", &err);
}

typedef struct agx_call_feeder {
    agx_call *call;
    int timeout_ms;
    int rc; /* AGX_CLI_* */
} agx_call_feeder;

/* The bidi input side, on its own thread: stdin JSON lines → agx_call_send, then close_send. */
static void *agx_call_feed(void *arg)
{
    agx_call_feeder *f = arg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    agx_error err;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if ((size_t)n > AGX_CALL_LINE_MAX) {
            fprintf(stderr, "agentix call: an input line is longer than %u bytes\n", AGX_CALL_LINE_MAX);
            f->rc = AGX_CLI_ERROR;
            break;
        }
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue;
        agx_value *v = NULL;
        if (agx_value_from_json(line, (size_t)n, NULL, &v, &err) != 0 ||
            agx_call_send(f->call, v, f->timeout_ms, &err) != 0) {
            agx_value_free(v);
            f->rc = agx_cli_fail("call", &err);
            break;
        }
        agx_value_free(v);
    }
    free(line);
    if (f->rc)
        agx_call_cancel(f->call);
    else if (agx_call_close_send(f->call, &err) != 0)
        f->rc = agx_cli_fail("call", &err);
    return NULL;
}

static int agx_call_bidi(agx_client *c, const agx_call_args *a)
{
    agx_call *call = NULL;
    agx_error err;
    if (agx_client_bidi(c, a->target, a->args, a->kwargs, &call, &err) != 0)
        return agx_cli_fail("call", &err);
    agx_call_feeder f = {.call = call, .timeout_ms = a->timeout_ms};
    pthread_t th;
    if (pthread_create(&th, NULL, agx_call_feed, &f) != 0) {
        agx_call_free(call);
        fprintf(stderr, "agentix call: cannot start the input thread\n");
        return AGX_CLI_ERROR;
    }
    int rc = agx_call_drain(call, a->timeout_ms);
    if (rc)
        agx_call_cancel(call); /* the feeder's next send fails and it ends */
    pthread_join(th, NULL);
    agx_call_free(call);
    return rc ? rc : f.rc;
}

static int agx_call_invoke(agx_client *c, const agx_call_args *a)
{
    agx_error err;
    agx_value *desc = NULL;
    if (agx_client_describe(c, a->target, a->timeout_ms, &desc, &err) != 0)
        return agx_cli_fail("call", &err);
    const char *shape = agx_value_get_string(agx_value_map_get(desc, "shape"), NULL);
    int is_stream = shape && strcmp(shape, "stream") == 0;
    int is_bidi = shape && strcmp(shape, "bidi") == 0;
    agx_value_free(desc);
    if (is_bidi)
        return agx_call_bidi(c, a);
    if (is_stream) {
        agx_call *call = NULL;
        if (agx_client_stream(c, a->target, a->args, a->kwargs, &call, &err) != 0)
            return agx_cli_fail("call", &err);
        int rc = agx_call_drain(call, a->timeout_ms);
        agx_call_free(call);
        return rc;
    }
    agx_value *result = NULL;
    if (agx_client_call(c, a->target, a->args, a->kwargs, a->timeout_ms, &result, &err) != 0)
        return agx_cli_fail("call", &err);
    int rc = agx_call_print(result);
    agx_value_free(result);
    return rc;
}

static int agx_call_run(int argc, char **argv)
{
    agx_call_args a = {.timeout_ms = 600000};
    if (agx_cli_conn_init(&a.conn) != 0)
        return AGX_CLI_ERROR;
    int rc = agx_call_parse(argc, argv, &a);
    agx_client *c = NULL;
    if (!rc)
        rc = agx_cli_conn_open("call", &a.conn, &c);
    if (!rc)
        rc = agx_call_invoke(c, &a);
    agx_client_free(c);
    agx_value_free(a.args);
    agx_value_free(a.kwargs);
    agx_cli_conn_free(&a.conn);
    return rc;
}

const agx_cli_command agx_cli_cmd_call = {
    .name = "call",
    .summary = "call module::function in a sandbox; results and stream items as JSON",
    .run = agx_call_run,
    .help = agx_call_help,
};
