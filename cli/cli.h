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

#endif
