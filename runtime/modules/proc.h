/* proc.h — child processes for the agentix.bash module: a shell command (or an interactive shell
 * reading stdin) in its own process group, its output pumped to a sink, with cancellation and a
 * timeout that kill the whole group. */
#ifndef AGX_MODULES_PROC_H
#define AGX_MODULES_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentix/clock.h"
#include "agentix/module.h"

typedef struct proc {
    pid_t pid; /* also the process group id */
    int pidfd; /* readable when the child exits; -1 where the kernel lacks pidfd_open */
    int in_fd; /* the child's stdin (write end), -1 unless asked for */
    int out_fd, err_fd;
    int status; /* wait status once reaped */
    bool reaped;
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

/* Kills the process group. */
void proc_kill(proc *p);
/* Reaps the child (killing the group first when kill_first) and releases everything; returns the
 * exit code: the status, or 128 + signal when a signal ended it (as a shell reports it). */
int proc_finish(proc *p, bool kill_first);

/* Builds the environment-less argument checks shared by the functions: env must be a map of
 * strings. 0, or a failed call. */
int proc_check_env(agx_ctx *ctx, const agx_value *env);

#endif
