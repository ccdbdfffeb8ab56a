/* cli.h (internal) — the `agentix` command's subcommand table. Each subcommand lives in its own
 * cli/cmd_<name>.c and exports one agx_cli_command; main.c lists them in agx_cli_commands[].
 * Exit codes shared by every subcommand: */
#ifndef AGX_CLI_CLI_H
#define AGX_CLI_CLI_H

#include <stdio.h>

#define AGX_CLI_OK 0    /* success */
#define AGX_CLI_ERROR 1 /* the operation failed (message on stderr) */
#define AGX_CLI_USAGE 2 /* bad command line (usage on stderr) */

typedef struct agx_cli_command {
    const char *name;
    const char *summary; /* one line for `agentix --help` */
    /* argv[0] is the subcommand name; returns an AGX_CLI_* exit code. */
    int (*run)(int argc, char **argv);
    /* Full help for `agentix <name> --help` (usage, options, exit codes). */
    void (*help)(FILE *out);
} agx_cli_command;

/* 1 when argv holds --help / -h (subcommands call this before parsing). */
int agx_cli_wants_help(int argc, char **argv);

/* Prints "agentix <cmd>: <message>" on stderr and returns AGX_CLI_USAGE. */
int agx_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

extern const agx_cli_command agx_cli_cmd_plugins;
extern const agx_cli_command agx_cli_cmd_build;
extern const agx_cli_command agx_cli_cmd_create;
extern const agx_cli_command agx_cli_cmd_get;
extern const agx_cli_command agx_cli_cmd_delete;
extern const agx_cli_command agx_cli_cmd_extend;
extern const agx_cli_command agx_cli_cmd_ls;
extern const agx_cli_command agx_cli_cmd_call;
extern const agx_cli_command agx_cli_cmd_exec;
extern const agx_cli_command agx_cli_cmd_gc;
extern const agx_cli_command agx_cli_cmd_bench;
extern const agx_cli_command agx_cli_cmd_k8s_pool;

/* ---- shared by the sandbox subcommands (cli/cmd_util.c, cli/cmd_conn.c) ---- */
#include "agentix/client.h"
#include "agentix/deployment.h"

#include <jansson.h>
#include <stdint.h>

/* Option with a value, as "--name VALUE" or "--name=VALUE": 1 matched (*value set, *i advanced),
 * 0 not this option, -1 the value is missing (usage error printed). */
int agx_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
                const char **value);
/* "K=V" (sep '=') or "K:V" (sep ':') into kv; AGX_CLI_USAGE (printed) when malformed. */
int agx_cli_kv_arg(const char *cmd, const char *opt, agx_kv *kv, const char *arg, char sep);

/* ---- decoders of command-line input (cli/cli_parse.c: pure, fuzzed) ---- */
#define AGX_CLI_SANDBOX_JSON_MAX (1u << 20)
/* Durations: "250ms", "90" or "90s", "5m", "2h", "1d", at most 10^15 ms. 0 or -1 when malformed. */
int agx_cli_duration_ms(const char *s, int64_t *out);
/* Splits "K<sep>V": the key into key (cap bytes), *value at V (for ':', leading spaces skipped).
 * 0, -1 when there is no separator or the key is empty, -2 when the key does not fit. */
int agx_cli_kv_split(const char *arg, char sep, char *key, size_t cap, const char **value);
/* The `create --json` document from its text (len bytes; what names it in messages). */
int agx_cli_sandbox_parse(const char *text, size_t len, const char *what, agx_sandbox **out,
                          agx_error *err);
/* Prints "agentix <cmd>: <message> (CODE)" and the detail on stderr; returns AGX_CLI_ERROR. */
int agx_cli_fail(const char *cmd, const agx_error *err);
/* Loads `backend` (NULL: $AGENTIX_BACKEND, else "local"); AGX_CLI_OK or AGX_CLI_ERROR (printed). */
int agx_cli_load(const char *cmd, const char *backend, agx_deployment **out);
/* Writes root (stolen) to stdout as JSON (indented or one line) and a newline; AGX_CLI_*. */
int agx_cli_print_json(json_t *root, int one_line);
/* {"backend","id","runtime_url","token","headers":{}} — the `create --json` document. */
json_t *agx_cli_sandbox_json(const agx_sandbox *sb);
/* Reads that document back from a file ("-" = stdin; at most 1 MiB). */
int agx_cli_sandbox_load(const char *path, agx_sandbox **out, agx_error *err);
/* {"id","state","runtime_url","detail","created_at","labels":{}} of a get/ls entry. */
json_t *agx_cli_info_json(const agx_sandbox_info *info);
/* Progress of a long operation on stderr: a redrawn bar when stderr is a terminal, else one plain
 * line per step. agx_cli_progress_done ends a bar's line. */
void agx_cli_progress(const char *cmd, size_t done, size_t total, const char *what);
void agx_cli_progress_done(void);

/* Where call/exec connect: a URL (+ --token, --header) or --sandbox-json FILE. */
typedef struct agx_cli_conn {
    const char *url;
    const char *token;        /* --token, else $AGENTIX_TOKEN */
    const char *sandbox_json; /* --sandbox-json FILE */
    agx_kv *headers;          /* --header K:V */
    int connect_timeout_ms;   /* --connect-timeout S, default 30 s */
} agx_cli_conn;
int agx_cli_conn_init(agx_cli_conn *c);
void agx_cli_conn_free(agx_cli_conn *c);
/* Consumes one connection option at argv[*i]: 1 matched, 0 not one, AGX_CLI_USAGE (printed). */
int agx_cli_conn_opt(const char *cmd, agx_cli_conn *c, int argc, char **argv, int *i);
/* Connects; AGX_CLI_OK or AGX_CLI_ERROR (printed). */
int agx_cli_conn_open(const char *cmd, const agx_cli_conn *c, agx_client **out);
/* The help text of those options. */
#define AGX_CLI_CONN_HELP                                                                       \
    "  --token T             runtime token (default $AGENTIX_TOKEN)\n"                          \
    "  --header K:V          extra HTTP header for the connection (repeatable)\n"               \
    "  --sandbox-json FILE   take URL, token and headers from `agentix create --json` output\n" \
    "                        (FILE '-' = stdin); the URL argument is then left out\n"            \
    "  --connect-timeout S   connection bound in seconds (default 30)\n"

#endif
