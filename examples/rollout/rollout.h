/* rollout.h — the rollout example's pieces: tasks loaded from a JSON file (rollout_tasks.c), one
 * task run in its own sandbox as a chain of engine callbacks (rollout_run.c), and the host that
 * drives them all from one thread and prints the summary (rollout.c). */
#ifndef AGX_EXAMPLE_ROLLOUT_H
#define AGX_EXAMPLE_ROLLOUT_H

#include <agentix/agentix.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A SWE-bench-shaped task: a task image, files put into the sandbox, a command, and the outcome
 * that counts as success. */
typedef struct rollout_task {
    char *name;
    char *image;              /* NULL: the --image default */
    agx_value *files;         /* map path → string content (borrowed from the tasks document) */
    char *command;            /* run with bash -c in the task folder */
    int expect_exit;          /* expected exit code */
    char *expect_stdout;      /* substring the output must contain, or NULL */
    double timeout_s;         /* kills the command after this long; 0 = the --timeout default */
} rollout_task;

typedef enum rollout_status { TASK_PENDING, TASK_OK, TASK_MISMATCH, TASK_ERROR } rollout_status;

typedef struct rollout_result {
    rollout_status status;
    int exit_code;            /* -1 when the command did not finish */
    double create_s, total_s; /* sandbox ready; start of create to end of delete */
    char sandbox_id[128];
    char error[640];          /* TASK_ERROR: why */
} rollout_result;

typedef struct task_run task_run;

/* The whole rollout. Touched only by the host's thread: the engine's callbacks run there. */
typedef struct rollout {
    agx_deployment *dep;
    agx_engine *engine;       /* delivers every callback through its completion queue */
    const agx_sandbox_config *base; /* bundle, default image, labels */
    const char *run_id;
    rollout_task *tasks;
    size_t ntasks;
    rollout_result *results;
    task_run **runs;          /* per task: in flight, or NULL */
    double *deadline;         /* per task: when the host cancels its command (0 = none) */
    double default_timeout_s;
    bool task_images;         /* the backend honours images: each task's image is used */
    bool quiet;               /* do not echo the commands' output */
    size_t next, running, parallel;
    uint64_t created, deleted, delete_failures;
} rollout;

/* Parses the tasks document (a JSON array of task objects, at most 10 MiB), repeated `repeat`
 * times. 0 or -1 with a message on stderr. The document stays owned by *doc. */
int rollout_tasks_load(const char *path, size_t repeat, agx_value **doc, rollout_task **tasks,
                       size_t *n);
void rollout_tasks_free(rollout_task *tasks, size_t n);

/* Starts task i in a fresh sandbox (a fleet of one: retries, owner labels, cleanup registry); its
 * callbacks fill r->results[i] and, when it ends, start the next task (rollout_next). */
void rollout_start_task(rollout *r, size_t i);
/* Starts tasks while fewer than r->parallel run (rollout.c). */
void rollout_next(rollout *r);
/* Cancels the commands of tasks past their deadline. */
void rollout_watchdog(rollout *r);

#endif
