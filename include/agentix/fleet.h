/* fleet.h — rollouts at scale on the host: fleets of sandboxes created concurrently, a warm pool
 * over any backend, a map of M tasks over either, owner labels on everything they create, an
 * opt-in SIGINT/SIGTERM cleanup and a garbage collector for what dead hosts left behind.
 *
 * Flow: host → agx_fleet / agx_pool (owner labels, retries, registry of what this process owns)
 *       → agx_deployment_create on any backend → agx_client per sandbox → agx_map runs tasks.
 *
 * Threading: every function here may be called from any thread. A fleet, pool or map may be shared
 * between threads; destroy/free of one object must not race with other calls on that same object
 * except where a function says so (agx_fleet_destroy, agx_map_cancel).
 *
 * Lifetimes: fleets and pools use their deployment until they are freed — free them before the
 * deployment. Every sandbox they create is registered in this process's owner registry until it
 * is deleted, so the cleanup handler (agx_cleanup_install) can delete it on SIGINT/SIGTERM.
 *
 * Owner labels (agentix/backend/labels.h: agentix.owner.{host,pid,start} and agentix.run) are
 * added to the config's labels of every sandbox a fleet or pool creates; agx_gc deletes labelled
 * sandboxes whose owner process is gone.
 *
 * A rollout, one sandbox per task, results as they complete:
 *
 *   agx_cleanup_install(0, &err);                  // Ctrl-C deletes what we created
 *   agx_pool_options po; agx_pool_options_init(&po); po.size = 16;
 *   agx_pool_new(dep, cfg, &po, &pool, &err);      // 16 warm sandboxes, refilled in background
 *   agx_map_options mo; agx_map_options_init(&mo);
 *   mo.pool = pool; mo.tasks = n; mo.parallelism = 16; mo.commands = cmds;
 *   mo.task_timeout_ms = 600000; mo.on_result = print_row; mo.result_user = &table;
 *   rc = agx_map_run(&mo, &err);                   // dead sandboxes retried on fresh ones
 *   agx_pool_free(pool);                           // nothing left running
 *
 * Custom work per task (upload files, stream output): build a lease loop yourself —
 * agx_pool_acquire → agx_lease_client / agx_lease_sandbox → agx_pool_release(clean = false). */
#ifndef AGENTIX_FLEET_H
#define AGENTIX_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/backend/labels.h"
#include "agentix/client.h"
#include "agentix/deployment.h"
#include "agentix/error.h"
#include "agentix/export.h"
#include "agentix/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- retries ---- */

/* Backoff for creates that fail with err->retriable set (429, 5xx, transient timeouts): attempt
 * k (k ≥ 2) waits min(max_backoff_ms, initial_backoff_ms · 2^(k-2)) with ±25 % jitter. Errors
 * without retriable fail at once. */
typedef struct agx_retry_policy {
    unsigned max_attempts;  /* total attempts per sandbox, default 4 (1 = no retry) */
    int initial_backoff_ms; /* default 250 */
    int max_backoff_ms;     /* default 8000 */
} agx_retry_policy;

/* ---- fleet: N sandboxes created concurrently ---- */

typedef struct agx_fleet agx_fleet;

typedef enum agx_fleet_mode {
    AGX_FLEET_ALL_OR_NOTHING = 0, /* one failure deletes the rest; create fails */
    AGX_FLEET_BEST_EFFORT = 1     /* failed items keep their error; create succeeds */
} agx_fleet_mode;

/* Called once per item as it settles (status 0 or its error), on a creating thread; calls are
 * serialised. For progress bars. */
typedef void (*agx_fleet_item_fn)(void *user, size_t index, int status, const agx_error *err);

typedef struct agx_fleet_options {
    uint32_t struct_size;  /* set by agx_fleet_options_init */
    size_t count;          /* N ≥ 1 */
    size_t parallelism;    /* creates in flight at once, default 8; they run on the default
                              engine's blocking pool, so at most its size (engine.h) */
    agx_fleet_mode mode;   /* default AGX_FLEET_ALL_OR_NOTHING */
    agx_retry_policy retry;
    const char *run_id;    /* agentix.run label; NULL = agx_run_id() */
    agx_fleet_item_fn on_item;
    void *user;
} agx_fleet_options;
AGX_API void agx_fleet_options_init(agx_fleet_options *opts);

/* Creates opts->count sandboxes from cfg (copied, owner labels added). All-or-nothing: 0 and every
 * item ready, or an error (the first failure, with "item i of N" in the message) after every
 * sandbox it created was deleted, and *out NULL. Best-effort: 0 unless the arguments are wrong or
 * memory runs out; look at agx_fleet_ready / agx_fleet_status per item. Blocks until every item
 * settled. */
AGX_API int agx_fleet_create(agx_deployment *dep, const agx_sandbox_config *cfg,
                     const agx_fleet_options *opts, agx_fleet **out, agx_error *err);
AGX_API size_t agx_fleet_size(const agx_fleet *f);  /* N */
AGX_API size_t agx_fleet_ready(const agx_fleet *f); /* items holding a live sandbox */
/* Item i's sandbox, NULL when it failed or the fleet was destroyed. The pointer stays valid until
 * agx_fleet_free (also after destroy, when it names a deleted sandbox), except that
 * agx_fleet_replace of item i retires it. */
AGX_API const agx_sandbox *agx_fleet_sandbox(const agx_fleet *f, size_t i);
/* Item i's create status (0 or an agx_error_code); its error is copied into err when not NULL. */
AGX_API int agx_fleet_status(const agx_fleet *f, size_t i, agx_error *err);
AGX_API unsigned agx_fleet_attempts(const agx_fleet *f, size_t i); /* creates tried for item i */
/* Deletes item i's sandbox and creates a fresh one in its place (with the fleet's retries), for
 * a sandbox that died. The caller must be the only user of item i. AGX_ERR_CANCELLED after
 * destroy. On failure item i holds no sandbox and keeps the error. */
AGX_API int agx_fleet_replace(agx_fleet *f, size_t i, agx_error *err);
/* The same without blocking, for a host driving everything from one thread (engine.h): the
 * create runs on the engine's blocking pool (e NULL = the default engine) and cb reports it
 * exactly once like every engine callback, with the fleet (owned by the callback; NULL on
 * failure). cfg and opts are copied; dep must outlive the callback. */
typedef void (*agx_fleet_cb)(void *user, int status, agx_fleet *f, const agx_error *err);
AGX_API int agx_fleet_create_async(agx_engine *e, agx_deployment *dep, const agx_sandbox_config *cfg,
                           const agx_fleet_options *opts, agx_fleet_cb cb, void *user,
                           agx_error *err);
/* Deletes every sandbox the fleet holds, in parallel, each exactly once — also when called from
 * several threads at once, or again (later calls return 0). Returns 0 or the first delete error
 * (the others are attempted anyway; what failed to delete stays registered for agx_cleanup and
 * labelled for agx_gc). */
AGX_API int agx_fleet_destroy(agx_fleet *f, agx_error *err);
/* agx_fleet_destroy on the engine's blocking pool; cb (exactly once) gets its outcome. The fleet
 * stays the caller's: agx_fleet_free it after the callback (it has nothing left to delete). */
typedef void (*agx_fleet_done_cb)(void *user, int status, const agx_error *err);
AGX_API int agx_fleet_destroy_async(agx_engine *e, agx_fleet *f, agx_fleet_done_cb cb, void *user,
                            agx_error *err);
/* Destroys (if not yet) and frees. NULL is a no-op. */
AGX_API void agx_fleet_free(agx_fleet *f);

/* ---- warm pool: K ready sandboxes, handed out at once ---- */

typedef struct agx_pool agx_pool;
/* A sandbox handed out by a pool, with a connected client (both owned by the lease). */
typedef struct agx_lease agx_lease;
AGX_API const agx_sandbox *agx_lease_sandbox(const agx_lease *l);
AGX_API agx_client *agx_lease_client(agx_lease *l);

typedef struct agx_pool_options {
    uint32_t struct_size;     /* set by agx_pool_options_init */
    size_t size;              /* K ≥ 1 ready sandboxes kept */
    size_t refill_parallelism; /* creates in flight at once, default min(K, 4) */
    agx_retry_policy retry;
    const char *run_id;       /* NULL = agx_run_id() */
    /* Health check at acquire, after "client still connected": describe(probe_target) must get an
     * answer (any answer, even NotFound, proves the runtime serves). NULL = connection check
     * only. Default "agentix.bash::run". */
    const char *probe_target;
    int health_timeout_ms;    /* default 2000 */
    int connect_timeout_ms;   /* client connect, default 10000 */
} agx_pool_options;
AGX_API void agx_pool_options_init(agx_pool_options *opts);

/* Starts the pool: returns at once; refill jobs on the default engine's blocking pool (engine.h)
 * create K sandboxes (cfg copied, owner labels added), each connected and checked before it
 * counts as ready. */
AGX_API int agx_pool_new(agx_deployment *dep, const agx_sandbox_config *cfg, const agx_pool_options *opts,
                 agx_pool **out, agx_error *err);
/* Hands out a ready sandbox that passes its health check; one that fails is deleted and replaced,
 * never handed out. Waits up to timeout_ms (0 = do not wait, <0 = forever) when none is ready:
 * AGX_ERR_TIMEOUT then names the last refill error if creates are failing. Refills in the
 * background. */
AGX_API int agx_pool_acquire(agx_pool *p, int timeout_ms, agx_lease **out, agx_error *err);
/* Ends a lease: clean = false deletes the sandbox (the default for rollouts: one sandbox per task);
 * clean = true returns it to the ready set when it is still connected and the ready sandboxes
 * plus the creates in flight are fewer than K, else deletes it (a settled pool holds exactly K).
 * Returns the delete's status. */
AGX_API int agx_pool_release(agx_pool *p, agx_lease *l, bool clean, agx_error *err);

typedef struct agx_pool_stats {
    size_t ready;       /* ready now */
    size_t creating;    /* creates in flight */
    size_t leased;      /* handed out, not released */
    uint64_t created;   /* sandboxes created so far */
    uint64_t deleted;   /* sandboxes deleted so far */
    uint64_t unhealthy; /* failed a health check and were replaced */
    uint64_t create_failures; /* creates that failed after their retries */
} agx_pool_stats;
AGX_API void agx_pool_stats_get(agx_pool *p, agx_pool_stats *out);
/* Waits until `ready` sandboxes are ready (≤ K), up to timeout_ms (<0 = forever); for warm-up. */
AGX_API int agx_pool_wait_ready(agx_pool *p, size_t ready, int timeout_ms, agx_error *err);
/* Stops refilling, deletes every sandbox — ready and still leased (those leases become invalid) —
 * and frees the pool. NULL is a no-op. */
AGX_API void agx_pool_free(agx_pool *p);

/* ---- map: M tasks over a fleet or a pool ---- */

typedef struct agx_map agx_map;

/* What became of a task: exactly one per result. */
typedef enum agx_outcome {
    AGX_OUTCOME_OK = 0,       /* the call returned, and a command (agentix.bash::run) exited 0 */
    AGX_OUTCOME_NONZERO_EXIT, /* the command exited non-zero (exit_code; value holds its output) */
    AGX_OUTCOME_TIMEOUT,      /* task_timeout_ms passed, or the command's own timeout */
    AGX_OUTCOME_OOM,          /* the sandbox's memory limit killed the command (or the sandbox) */
    AGX_OUTCOME_SANDBOX_LOST, /* its sandbox died under it, on every attempt */
    AGX_OUTCOME_RATE_LIMITED, /* no sandbox: the service or admission control said "not now" */
    AGX_OUTCOME_CREATE_FAILED,/* no sandbox: creating one failed */
    AGX_OUTCOME_REMOTE_ERROR, /* the remote function failed (user code; err->remote_type) */
    AGX_OUTCOME_CANCELLED     /* agx_map_cancel */
} agx_outcome;
/* "ok", "nonzero_exit", "timeout", "oom", "sandbox_lost", "rate_limited", "create_failed",
 * "remote_error", "cancelled". */
AGX_API const char *agx_outcome_name(agx_outcome o);

/* One task's result. value (when the call returned) belongs to the result: a callback may take it
 * by setting r->value = NULL; agx_map_result_free frees it otherwise. status is 0 exactly when the
 * call returned a value (outcomes ok, nonzero_exit, and a command's own timeout or OOM kill): err
 * is then clear. Otherwise err says what happened on the last attempt — never an error of an
 * earlier step that was overcome. */
typedef struct agx_map_result {
    size_t task;           /* index in [0, M) */
    int status;            /* 0, or the error of the last attempt */
    agx_error err;
    agx_value *value;      /* the remote function's result (agentix.bash::run: {exit_code, stdout, …}) */
    unsigned attempts;     /* attempts made, each on a live sandbox */
    int64_t duration_ms;   /* first attempt's start to the end of the last */
    char sandbox_id[128];  /* the sandbox of the last attempt ("" when none was reached) */
    agx_outcome outcome;   /* exactly one, see agx_outcome */
    int exit_code;         /* agentix.bash::run's exit_code when the value holds one, else 0 */
} agx_map_result;
AGX_API void agx_map_result_free(agx_map_result *r);

/* Builds the call for one attempt of one task. *target is borrowed and must stay valid until the
 * map is freed; *args (array) and *kwargs (map) may be left NULL and are owned by the map.
 * A failure fails the task without retry. */
typedef int (*agx_map_build_fn)(void *user, size_t task, unsigned attempt, const agx_sandbox *sb,
                                const char **target, agx_value **args, agx_value **kwargs,
                                agx_error *err);
/* Delivered once per task as it completes, on a map thread; calls are serialised. */
typedef void (*agx_map_result_fn)(void *user, agx_map_result *r);

typedef struct agx_map_options {
    uint32_t struct_size;   /* set by agx_map_options_init */
    agx_fleet *fleet;       /* exactly one of fleet and pool */
    agx_pool *pool;
    size_t tasks;           /* M */
    size_t parallelism;     /* P, default 8; over a fleet at most its ready count */
    /* Either build, or commands: commands[i] is run by agentix.bash::run {command} in bash. */
    agx_map_build_fn build;
    void *build_user;
    const char *const *commands;
    int task_timeout_ms;    /* per attempt, 0 = none; a timed-out task fails with AGX_ERR_TIMEOUT
                               and its sandbox is replaced (fleet) or deleted (pool) */
    /* Attempts per task, default 3: an attempt whose sandbox died (AGX_ERR_UNAVAILABLE, or
     * AGX_ERR_REMOTE "WorkerExited", or a client that cannot connect) is retried on a fresh
     * sandbox. Other errors are the task's result. */
    unsigned max_attempts;
    int acquire_timeout_ms; /* pool: wait for a sandbox, default 600000 */
    bool reuse;             /* pool: release clean after a successful task (default: delete) */
    agx_map_result_fn on_result; /* NULL: results queue for agx_map_next */
    void *result_user;
} agx_map_options;
AGX_API void agx_map_options_init(agx_map_options *opts);

/* Starts P workers and returns. The fleet or pool must outlive the map. */
AGX_API int agx_map_start(const agx_map_options *opts, agx_map **out, agx_error *err);
/* Iterator form (no on_result): 1 with the next completed result (free it with
 * agx_map_result_free), 0 when all M were delivered, AGX_ERR_TIMEOUT after timeout_ms (<0 =
 * forever). */
AGX_API int agx_map_next(agx_map *m, int timeout_ms, agx_map_result **out, agx_error *err);
/* Waits until every task was delivered (callback form), up to timeout_ms (<0 = forever). */
AGX_API int agx_map_wait(agx_map *m, int timeout_ms, agx_error *err);
/* From any thread: tasks not started complete with AGX_ERR_CANCELLED, calls in flight are
 * cancelled (their client is closed) and complete with AGX_ERR_CANCELLED too. Idempotent. */
AGX_API void agx_map_cancel(agx_map *m);
AGX_API size_t agx_map_completed(agx_map *m); /* results delivered so far */
/* Cancels what is left, joins the workers and frees queued results. NULL is a no-op. */
AGX_API void agx_map_free(agx_map *m);
/* start + wait + free, results through opts->on_result. 0 when every task succeeded, else
 * the first failed task's code with "k of M tasks failed; first: task i: …". */
AGX_API int agx_map_run(const agx_map_options *opts, agx_error *err);

/* ---- leak-proof cleanup ---- */

/* Opt-in SIGINT/SIGTERM handler. It installs (sigaction, SA_RESTART) a handler that only writes
 * the signal number to a self-pipe, and starts one thread reading that pipe. On a signal the
 * thread: (1) stops new creates by fleets and pools (they fail with AGX_ERR_CANCELLED, and a
 * create that lands afterwards is deleted at once by its creating thread); (2) deletes every
 * sandbox this process's fleets and pools still hold, up to 8 deletes at a time; (3) waits up to
 * timeout_ms (default 60000 when ≤ 0) for creates in flight to land and be deleted; (4) restores
 * the default disposition and re-raises the signal, so the process dies of it (exit status
 * 128+signo in a shell). A second SIGINT/SIGTERM during cleanup skips the rest and dies at once
 * (what is left is labelled for agx_gc). Sandboxes created with agx_deployment_create or
 * sessions directly are not registered. A signal the process already ignores (SIG_IGN, as under
 * nohup) stays ignored. Installing twice is a no-op returning 0. A forked child
 * (without exec) inherits the handler but not the thread: there the handler restores the default
 * and re-raises, so the child dies of the signal and the parent is not disturbed. */
AGX_API int agx_cleanup_install(int timeout_ms, agx_error *err);
/* Restores the previous dispositions and joins the thread. */
AGX_API void agx_cleanup_uninstall(void);
/* The same deletion, without a signal (e.g. from an atexit handler): deletes every registered
 * sandbox now. Returns how many were deleted. New creates keep working afterwards. */
AGX_API size_t agx_cleanup_run(void);

/* ---- garbage collection: sandboxes whose owner is gone or whose expiry passed ---- */

typedef enum agx_gc_verdict {
    AGX_GC_DELETED = 0,    /* owner gone: deleted (or would be, with dry_run) */
    AGX_GC_OWNER_ALIVE,    /* owner process still runs on this host: kept */
    AGX_GC_TOO_YOUNG,      /* younger than older_than_ms (or age unknown): kept */
    AGX_GC_DELETE_FAILED,  /* to delete, but the delete failed; see err */
    AGX_GC_EXPIRED,        /* its expiry passed (beyond the grace): deleted (or would be) */
    AGX_GC_KEPT,           /* owner on another host or not told by its labels, expiry not passed
                              or unknown: kept (it ends itself at its expiry) */
    AGX_GC_CARRIER         /* a leftover carrier container (opts.carriers): deleted (or would be) */
} agx_gc_verdict;
/* "deleted", "owner-alive", "too-young", "delete-failed", "expired", "kept", "carrier". */
AGX_API const char *agx_gc_verdict_name(agx_gc_verdict v);

typedef void (*agx_gc_fn)(void *user, const agx_sandbox_info *info, agx_gc_verdict v,
                          const agx_error *err);

typedef struct agx_gc_options {
    uint32_t struct_size;  /* set by agx_gc_options_init */
    int64_t older_than_ms; /* only sandboxes created at least this long ago; 0 = any age */
    const char *run_id;    /* only this run (label agentix.run); NULL = every run */
    bool dry_run;          /* report, delete nothing */
    agx_gc_fn on_sandbox;  /* per labelled sandbox, for the CLI's output */
    void *user;
    /* ---- since toolkit 2 ---- */
    int64_t expiry_grace_ms; /* an expiry counts as passed this long after it (clock skew, an
                                extension in flight); default 10000 */
    bool carriers;         /* also delete the backend's leftover helpers that no sandbox uses
                              (docker's bundle carrier containers); off by default */
} agx_gc_options;
AGX_API void agx_gc_options_init(agx_gc_options *opts);

typedef struct agx_gc_report {
    size_t examined; /* listed sandboxes (and carriers) */
    size_t deleted;  /* deleted, or would be with dry_run: owner gone, expired, leftover carrier */
    size_t kept;
    size_t failed;
} agx_gc_report;

/* Lists (through the deployment's list) every agentix sandbox of the backend and deletes:
 *  - those labelled with an owner on this host that is gone (no process with that pid, or one
 *    whose start time differs: the pid was reused; for sandboxes of toolkit 1, labelled
 *    agentix.owner=<host>:<pid> without a start time, a process that started after the sandbox);
 *  - those whose expiry (agx_sandbox_info_expires_at) passed more than expiry_grace_ms ago,
 *    whoever owns them.
 * Owners are looked up in this process's /proc: run gc in the pid namespace (container) the
 * hosts ran in. Sandboxes whose owner lives, or which it cannot judge, are kept. opts and report
 * may be NULL. Returns 0 when every delete succeeded, else the first delete error (all were
 * attempted); AGX_ERR_UNSUPPORTED when the backend has no list. */
AGX_API int agx_gc(agx_deployment *dep, const agx_gc_options *opts, agx_gc_report *report,
           agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
