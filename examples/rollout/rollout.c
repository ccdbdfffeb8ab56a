/* rollout.c — a C host running a SWE-bench-shaped rollout from ONE thread: for each task, a fresh
 * sandbox from the task image on the chosen backend (local or docker), the task's files uploaded,
 * its command run with streamed output, exit code and timing collected, the sandbox deleted; P
 * tasks at a time, every step a callback the engine (engine.h) delivers to this thread through
 * its completion queue (poll its fd, then agx_engine_process), like a host with its own loop.
 * Ends with a summary table and the count of sandboxes created, deleted and leaked (listed by this
 * run's agentix.run label afterwards: must be 0). SIGINT/SIGTERM delete what is running (the
 * library's opt-in cleanup handler) before the host dies. */
#include "rollout.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef ROLLOUT_TASKS_DEFAULT
#define ROLLOUT_TASKS_DEFAULT "tasks.json"
#endif
#define MAX_PARALLEL 1024

typedef struct options {
    const char *backend, *tasks, *bundle, *image, *run_id;
    size_t parallel, repeat;
    double timeout_s;
    bool quiet, no_cleanup;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: rollout-host [--backend local|docker] [--tasks FILE] [--bundle B] [--image I]\n"
            "                    [--parallel P] [--repeat N] [--timeout S] [--run-id R] [--quiet]\n"
            "                    [--no-cleanup-handler]\n\n"
            "Runs every task of FILE (default " ROLLOUT_TASKS_DEFAULT ") in its own sandbox, P at\n"
            "a time (default 4; all from this one thread), the list N times over (default 1);\n"
            "prints each command's output\n"
            "as \"[index name] line\" (not with --quiet) and a summary table. --image is the image of\n"
            "tasks without one; --bundle the runtime bundle (docker: from `agentix build --docker`);\n"
            "--timeout the default per-command bound in seconds (300). --run-id labels the\n"
            "sandboxes agentix.run=R (default $AGENTIX_RUN_ID, else random); `agentix gc --run R`\n"
            "collects them if this host is killed with -9. On SIGINT/SIGTERM the host deletes its\n"
            "sandboxes before dying, unless --no-cleanup-handler.\n\n"
            "Exit status: 0 every task met its expected outcome and nothing leaked, 1 otherwise,\n"
            "2 usage error.\n");
}

static int want(int argc, char **argv, int *i, const char *name, const char **v)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "rollout: %s needs a value\n", name);
        exit(2);
    }
    *v = argv[++*i];
    return 1;
}

static size_t count_arg(const char *name, const char *v, size_t max)
{
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || x < 1 || x > max) {
        fprintf(stderr, "rollout: %s wants 1..%zu, got '%s'\n", name, max, v);
        exit(2);
    }
    return (size_t)x;
}

static void parse(int argc, char **argv, options *o)
{
    *o = (options){.backend = "local", .tasks = ROLLOUT_TASKS_DEFAULT, .parallel = 4, .repeat = 1,
                   .timeout_s = 300};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--quiet") == 0) {
            o->quiet = true;
        } else if (strcmp(argv[i], "--no-cleanup-handler") == 0) {
            o->no_cleanup = true;
        } else if (want(argc, argv, &i, "--backend", &o->backend) ||
                   want(argc, argv, &i, "--tasks", &o->tasks) ||
                   want(argc, argv, &i, "--bundle", &o->bundle) ||
                   want(argc, argv, &i, "--image", &o->image) ||
                   want(argc, argv, &i, "--run-id", &o->run_id)) {
        } else if (want(argc, argv, &i, "--parallel", &v)) {
            o->parallel = count_arg("--parallel", v, MAX_PARALLEL);
        } else if (want(argc, argv, &i, "--repeat", &v)) {
            o->repeat = count_arg("--repeat", v, 10000);
        } else if (want(argc, argv, &i, "--timeout", &v)) {
            o->timeout_s = (double)count_arg("--timeout", v, 86400);
        } else {
            fprintf(stderr, "rollout: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            exit(2);
        }
    }
}

void rollout_next(rollout *r)
{
    while (r->running < r->parallel && r->next < r->ntasks)
        rollout_start_task(r, r->next++);
}

/* Sandboxes still listed with this run's label after every task ended: leaks. */
static long count_leaked(agx_deployment *dep, const char *run_id)
{
    agx_kv *filter = agx_kv_new();
    agx_sandbox_list *list = NULL;
    agx_error err;
    long n = -1;
    if (filter && agx_kv_set(filter, AGX_LABEL_RUN, run_id) == 0 &&
        agx_deployment_list(dep, filter, &list, &err) == 0)
        n = (long)agx_sandbox_list_count(list);
    else if (filter)
        fprintf(stderr, "rollout: cannot list leftovers: %s\n", err.message);
    agx_sandbox_list_free(list);
    agx_kv_free(filter);
    return n;
}

static int summary(rollout *r, double wall_s, long leaked)
{
    static const char *const names[] = {"pending", "ok", "MISMATCH", "ERROR"};
    size_t counts[4] = {0};
    double sum = 0;
    printf("\n%-5s %-22s %-22s %-9s %5s %6s %9s %9s\n", "#", "TASK", "IMAGE", "STATUS", "EXIT",
           "EXPECT", "CREATE_S", "TOTAL_S");
    for (size_t i = 0; i < r->ntasks; i++) {
        const rollout_task *t = &r->tasks[i];
        const rollout_result *res = &r->results[i];
        const char *image = t->image && r->task_images ? t->image : agx_sandbox_config_image(r->base);
        counts[res->status]++;
        sum += res->total_s;
        printf("%-5zu %-22.22s %-22.22s %-9s %5d %6d %9.2f %9.2f\n", i, t->name,
               image ? image : "-", names[res->status], res->exit_code, t->expect_exit,
               res->create_s, res->total_s);
        if (res->error[0])
            printf("      %s\n", res->error);
    }
    printf("\ntasks %zu: ok %zu, mismatch %zu, error %zu; wall %.2f s, mean task %.2f s, "
           "%.2f tasks/s\n", r->ntasks, counts[TASK_OK], counts[TASK_MISMATCH], counts[TASK_ERROR],
           wall_s, r->ntasks ? sum / (double)r->ntasks : 0, wall_s > 0 ? (double)r->ntasks / wall_s : 0);
    printf("sandboxes: created %llu, deleted %llu, leaked %ld (run %s)\n",
           (unsigned long long)r->created, (unsigned long long)r->deleted, leaked, r->run_id);
    fflush(stdout);
    return counts[TASK_OK] == r->ntasks && leaked == 0 && r->created == r->deleted ? 0 : 1;
}

/* The host's one thread: start P tasks, then sleep on the engine's fd and run what completed —
 * every create, connect, call, output line and delete of every task arrives here. */
static int go(rollout *r)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    rollout_next(r);
    struct pollfd p = {.fd = agx_engine_fd(r->engine), .events = POLLIN};
    while (r->running > 0) {
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
        agx_engine_process(r->engine, 0, 0);
        rollout_watchdog(r);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double wall = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    return summary(r, wall, count_leaked(r->dep, r->run_id));
}

static int setup(const options *o, agx_sandbox_config *cfg, agx_error *err)
{
    if ((o->bundle && agx_sandbox_config_set_bundle(cfg, o->bundle) != 0) ||
        (o->image && agx_sandbox_config_set_image(cfg, o->image) != 0))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "bad --bundle or --image");
    if (!o->no_cleanup)
        return agx_cleanup_install(60000, err);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    parse(argc, argv, &o);
    rollout r = {.default_timeout_s = o.timeout_s, .quiet = o.quiet,
                 .run_id = o.run_id ? o.run_id : agx_run_id()};
    agx_value *doc = NULL;
    if (rollout_tasks_load(o.tasks, o.repeat, &doc, &r.tasks, &r.ntasks) != 0) {
        agx_value_free(doc);
        return 2;
    }
    r.results = calloc(r.ntasks, sizeof *r.results);
    r.runs = calloc(r.ntasks, sizeof *r.runs);
    r.deadline = calloc(r.ntasks, sizeof *r.deadline);
    r.parallel = o.parallel;
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    agx_error err;
    int rc = r.results && r.runs && r.deadline && cfg
                 ? 0
                 : agx_error_set(&err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        rc = setup(&o, cfg, &err);
    if (!rc)
        rc = agx_load_deployment(o.backend, &r.dep, &err);
    agx_engine_options eo;
    agx_engine_options_init(&eo);
    eo.delivery = AGX_DELIVER_QUEUE; /* every callback on this thread, in agx_engine_process */
    eo.pool_threads = (unsigned)o.parallel; /* creates and deletes: the backend's pace, not ours */
    if (!rc)
        rc = agx_engine_new(&eo, &r.engine, &err);
    if (rc) {
        fprintf(stderr, "rollout: %s\n", err.message);
        rc = 1;
    } else {
        fprintf(stderr, "rollout: %zu tasks on %s, %zu at a time, run %s\n", r.ntasks, o.backend,
                o.parallel, r.run_id);
        /* A backend that cannot honour an image refuses one (a task meant for Debian must not
         * quietly run on this host): the host decides, and says, that task images are dropped. */
        r.task_images = agx_deployment_config_fields(r.dep) & AGX_CONFIG_IMAGE;
        if (!r.task_images)
            fprintf(stderr, "rollout: backend '%s' takes no image: the tasks' images are not "
                    "used, each task runs on what the backend provides\n", o.backend);
        r.base = cfg;
        rc = go(&r);
    }
    agx_engine_free(r.engine);
    agx_cleanup_uninstall();
    agx_deployment_free(r.dep);
    agx_sandbox_config_free(cfg);
    free(r.results);
    free(r.runs);
    free(r.deadline);
    rollout_tasks_free(r.tasks, r.ntasks);
    agx_value_free(doc);
    return rc;
}
