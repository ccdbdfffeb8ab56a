/* proc.h — child processes for the agentix.bash module: a shell command (or an interactive shell
 * reading stdin) under its own subreaper (reaper.h), its output pumped to a sink, with
 * cancellation and a timeout that kill everything the command started — its process group and
 * the daemons it detached — before the call ends. */
#ifndef AGX_MODULES_PROC_H
#define AGX_MODULES_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentix/clock.h"
#include "agentix/module.h"
#include "reaper.h"

typedef struct proc {
    reaper r;  /* the command's subreaper: its status, and the one way to kill it all */
    int in_fd; /* the child's stdin (write end), -1 unless asked for */
    int out_fd, err_fd;
    atomic_bool timed_out;
    /* timeout watchdog */
    pthread_t watchdog;
    bool has_watchdog;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    double timeout_s;
} proc;

/* Starts `bash -c command` (or /bin/sh when bash is not on PATH); command NULL starts the shell
 * reading commands from stdin. env (a map of strings, may be nil) is added to the worker's
 * environment; cwd (may be NULL) must be a directory. timeout_s <= 0: none. On failure the call is
 * failed through agx_ctx_fail and a negative code returned. */
int proc_start(agx_ctx *ctx, proc *p, const char *command, const char *cwd, const agx_value *env,
               bool with_stdin, double timeout_s);

/* Called with each chunk read; stream is 1 (stdout) or 2 (stderr). Non-zero stops the pump. */
typedef int (*proc_sink)(void *arg, int stream, const char *data, size_t len);

/* Reads stdout and stderr into sink until both end (or the child has exited and its output went
 * quiet: background children may hold the pipes open forever), watching for cancellation.
 * 0, AGX_ERR_CANCELLED (the group is killed), or the sink's code. */
int proc_pump(agx_ctx *ctx, proc *p, proc_sink sink, void *arg);

/* Asks for the command's whole tree to be killed (returns at once; any thread). */
void proc_kill(proc *p);
/* Ends the command: with kill_first its whole tree is killed and gone when this returns;
 * otherwise (it exited) what it left running in the background is let be. Releases everything;
 * returns the exit code: the status, or 128 + signal when a signal ended it (as a shell reports
 * it). */
int proc_finish(proc *p, bool kill_first);

/* Builds the environment-less argument checks shared by the functions: env must be a map of
 * strings without NUL bytes. 0, or a failed call. */
int proc_check_env(agx_ctx *ctx, const agx_value *env);
/* A string argument that may be nil: NULL, or its text — the call fails (and *bad is set) when
 * it holds a NUL byte, which C would silently cut at. */
const char *proc_string_arg(agx_ctx *ctx, const char *name, bool *bad);

#endif
