/* local_internal.h — the pieces of the `local` backend (host → local backend → agentix-server child
 * process on 127.0.0.1): process control, the on-disk sandbox record, spawning and readiness.
 * local.c ties them into the backend vtable. */
#ifndef AGX_BACKEND_LOCAL_INTERNAL_H
#define AGX_BACKEND_LOCAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentix/backend/toolkit.h"
#include "agentix/deployment.h"
#include "agentix/error.h"

#define AGX_LOCAL_ID_MAX 64       /* "local-" + 24 hex digits fits with room to spare */
#define AGX_LOCAL_PATH_MAX 4096
#define AGX_LOCAL_STOP_GRACE_MS 5000 /* SIGTERM (the server drains: cancels, kills below) → SIGKILL */
/* SIGKILL → gone; a process stuck in D state fails delete. Generous because an exit is not
 * instant: 200 sandboxes' ASan processes unmapping their shadow memory on 2 busy cores took longer
 * than 5 s in CI, and a delete must not fail on a process that is merely still exiting. */
#define AGX_LOCAL_KILL_WAIT_MS 30000

/* ---- processes (local_proc.c) ---- */

/* One agentix-server process. It leads its own session and is the subreaper of everything below
 * it; its command line is "agentix-server: <sandbox id>" (AGX_LOCAL_ARGV0), which tells it from any
 * other process whatever a record on disk claims. */
typedef struct agx_local_proc {
    pid_t pid;
    uint64_t start_ticks; /* /proc/<pid>/stat starttime: tells our process from a reused pid */
    int is_child;         /* spawned by this process: reaped with waitpid */
    int reaped;           /* is_child only: waited for already (its pid may belong to another) */
    int exit_status;      /* wait status once reaped; -1 when someone else reaped it */
} agx_local_proc;

/* Reads starttime of pid; 0 when it exists and is not a zombie, -1 otherwise. */
int agx_local_proc_start_ticks(pid_t pid, uint64_t *ticks);
/* 1 while the process runs. A child that exited is reaped here once the rest of its session and
 * group (the orphaned worker, user commands) is killed and dead, waiting up to 1 s for that; past
 * it the child stays unreaped, its pid keeping those ids, for a later call or delete. exit_status
 * then says how it ended. */
int agx_local_proc_running(agx_local_proc *p);
#define AGX_LOCAL_ARGV0 "agentix-server: " /* + the sandbox id */
/* Whether the live process at pid is sandbox id's server: its name is agentix-server, its command
 * line the one the backend gave it, and (ticks non-zero) its start time the recorded one. Sandbox
 * code can rewrite a record, not another process's name, command line or start time. */
int agx_local_proc_is_server(pid_t pid, uint64_t ticks, const char *id);
/* Stops sandbox id and everything of it: SIGTERM to its server (which drains and kills what runs
 * below it), after grace_ms the whole tree frozen and killed, then whatever is left of its session
 * and process group. The server is p when trusted (our child, or a record that matches the live
 * process), plus any process carrying the sandbox's command line (a forged record cannot hide the
 * real server). Returns 0 only once a /proc scan finds none of it alive (dead or a zombie, also
 * what was forked or orphaned meanwhile), then reaps a child; after AGX_LOCAL_KILL_WAIT_MS
 * AGX_ERR_TIMEOUT, the child left unreaped for a retry. Gone already → 0. */
int agx_local_proc_stop(agx_local_proc *p, const char *id, int grace_ms, agx_error *err);
/* "exited with status 1" / "was killed by signal 9" into buf. */
void agx_local_proc_describe_exit(int status, char *buf, size_t n);

/* ---- the sandbox record, <workdir>/sandbox.json (local_record.c) ---- */

typedef struct agx_local_record {
    char id[AGX_LOCAL_ID_MAX];
    agx_local_proc proc;
    int port;
    int64_t created_at; /* unix ms */
    int64_t owner_pid;  /* the host process that created it: leak sweepers look for dead owners */
    agx_kv *labels;     /* owned */
} agx_local_record;

void agx_local_record_clear(agx_local_record *r);
int agx_local_record_write(const char *workdir, const agx_local_record *r, agx_error *err);
/* Reads and validates a record; the file is untrusted (user code can write its working dir). */
int agx_local_record_read(const char *workdir, agx_local_record *r, agx_error *err);
/* The decoder behind it (fuzzed): what names the source in messages. */
int agx_local_record_parse(const char *text, size_t len, const char *what, agx_local_record *r,
                           agx_error *err);
/* Ids are names of folders we may delete: [A-Za-z0-9_-], 1..AGX_LOCAL_ID_MAX-1 bytes. */
int agx_local_id_valid(const char *id);

/* ---- starting a server (local_spawn.c) ---- */

#define AGX_LOCAL_WORK "work" /* <workdir>/work: the sandbox's cwd and files root */

/* ---- staging (local_stage.c) ---- */

/* Makes root/.new-<this pid>-<its start ticks>-<id> with its work folder; its path into stage. */
int agx_local_stage_make(const char *root, const char *id, char *stage, size_t n, agx_error *err);
/* Renames stage to dir, never over an existing folder (AGX_ERR_CONFLICT). */
int agx_local_stage_commit(const char *stage, const char *dir, agx_error *err);
/* Removes the staging folders under root whose creator is gone (a host killed mid-create). */
void agx_local_stage_sweep(const char *root);

typedef struct agx_local_spawn_args {
    const char *server;  /* agentix-server path */
    const char *id;      /* the sandbox id: the server's command line says it */
    const char *workdir; /* the backend's folder of the sandbox: server.log, server.port, record */
    const char *token;   /* delivered through a pipe (AGENTIX_TOKEN_FD), never the environment */
    const agx_kv *env;   /* the config's env, may be NULL */
    int64_t timeout_ms;  /* spawn → healthy */
    int64_t expiry_ms;   /* AGENTIX_EXPIRY_MS of the server; 0 = none */
} agx_local_spawn_args;

/* Starts the server in <workdir>/work (it binds port 0 and writes the port it got to
 * <workdir>/server.port). */
int agx_local_spawn(const agx_local_spawn_args *a, agx_local_proc *proc, agx_error *err);
/* Waits until GET /health answers, the server dies or the timeout passes. On failure the log's
 * tail is in err->detail and the server's group is killed and reaped (the caller removes the
 * working dir). */
int agx_local_wait_ready(const agx_local_spawn_args *a, agx_local_proc *proc, int *port,
                         agx_error *err);

#endif
