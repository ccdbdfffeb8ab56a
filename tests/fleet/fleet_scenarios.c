/* fleet_scenarios.c — fleets, pools, maps, the SIGINT cleanup and gc against a real backend:
 * create failures injected by an in-process wrapper backend ("flaky", which fails every k-th
 * create), sandboxes whose runtime is killed (pool replacement, tasks retried on fresh sandboxes),
 * cancel-all, concurrent and repeated destroy, a child host interrupted by SIGINT (it leaves
 * nothing) and one killed with SIGKILL (agx_gc deletes what it left). Every scenario labels its
 * sandboxes with its own run id and counts what is left independently of the backend's list. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/plugin.h"
#include "check.h"
#include "fleet_scenarios.h"

static const fleet_harness *H;
static agx_deployment *inner; /* the real backend */
static agx_deployment *flaky; /* the wrapper over it */
static char self_exe[4096];

/* ---- run ids ---- */

#define MAX_RUNS 32
static char runs[MAX_RUNS][AGX_RUN_ID_MAX];
static size_t n_runs;

static const char *new_run(const char *what)
{
    CHECK(n_runs < MAX_RUNS);
    snprintf(runs[n_runs], sizeof runs[n_runs], "fleet-%s-%ld-%s", H->backend, (long)getpid(), what);
    return runs[n_runs++];
}

/* ---- the flaky wrapper backend ---- */

static atomic_int fail_every;   /* 0: never */
static atomic_int fail_retriable;
static atomic_int create_calls;
static atomic_int creates_failed;
static atomic_int deletes; /* delete calls through the wrapper */
static atomic_int create_delay_ms; /* every create through the wrapper lasts this much longer */

static int flaky_construct(void **self, agx_error *err)
{
    (void)err;
    *self = &fail_every;
    return 0;
}

static void flaky_destruct(void *self)
{
    (void)self;
}

/* A retry runs on the thread whose create failed: with retriable failures (k > 1) that retry
 * succeeds, so every item fails at most once however the concurrent creates interleave. */
static _Thread_local int failed_last;

static int flaky_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    (void)self;
    int n = atomic_fetch_add(&create_calls, 1) + 1;
    int k = atomic_load(&fail_every);
    if (atomic_load(&create_delay_ms) > 0)
        usleep((useconds_t)atomic_load(&create_delay_ms) * 1000);
    bool spare = k > 1 && atomic_load(&fail_retriable) && failed_last;
    failed_last = 0;
    if (k > 0 && n % k == 0 && !spare) {
        failed_last = 1;
        atomic_fetch_add(&creates_failed, 1);
        *out = NULL;
        int rc = agx_error_set(err, AGX_ERR_BACKEND, "injected failure of create #%d", n);
        if (err)
            err->retriable = atomic_load(&fail_retriable);
        return rc;
    }
    return agx_deployment_create(inner, cfg, out, err);
}

static int flaky_delete(void *self, const char *id, agx_error *err)
{
    (void)self;
    atomic_fetch_add(&deletes, 1);
    return agx_deployment_delete(inner, id, err);
}

static int flaky_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    (void)self;
    return agx_deployment_get(inner, id, out, err);
}

static int flaky_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    (void)self;
    return agx_deployment_list(inner, labels, out, err);
}

static const agx_backend_vtable flaky_vt = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "flaky",
    .construct = flaky_construct,
    .destruct = flaky_destruct,
    .create_sandbox = flaky_create,
    .delete_sandbox = flaky_delete,
    .get_sandbox = flaky_get,
    .list_sandboxes = flaky_list,
    .config_fields = AGX_CONFIG_ALL, /* the inner deployment refuses what it does not honour */
};

static void inject(int every, int retriable)
{
    atomic_store(&fail_every, every);
    atomic_store(&fail_retriable, retriable);
    atomic_store(&create_calls, 0);
    atomic_store(&creates_failed, 0);
}

/* ---- helpers ---- */

static size_t listed(const char *run)
{
    agx_kv *f = agx_kv_new();
    CHECK(f && agx_kv_set(f, AGX_LABEL_RUN, run) == 0);
    agx_sandbox_list *l = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_list(inner, f, &l, &err), &err);
    size_t n = 0;
    for (size_t i = 0; i < agx_sandbox_list_count(l); i++)
        n += agx_sandbox_info_state(agx_sandbox_list_at(l, i)) != AGX_SANDBOX_GONE;
    agx_sandbox_list_free(l);
    agx_kv_free(f);
    return n;
}

/* Nothing of the run is left, by the backend's list and by the harness's own count. */
static void check_none_left(const char *run)
{
    size_t a = listed(run), b = H->count_run(run);
    CHECK_MSG(a == 0 && b == 0, "run %s: %zu listed, %zu counted", run, a, b);
}

static const char *text_of(const agx_value *v)
{
    size_t len;
    const char *s = agx_value_get_string(v, &len);
    return s ? s : (const char *)agx_value_get_binary(v, &len);
}

static char *bash(agx_client *c, const char *cmd)
{
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(kw && agx_value_map_set(kw, "command", agx_value_string(cmd)) == 0);
    agx_error err;
    CHECK_OK(agx_client_call(c, "agentix.bash::run", NULL, kw, 60000, &res, &err), &err);
    CHECK(agx_value_get_int64(agx_value_map_get(res, "exit_code")) == 0);
    char *out = strdup(text_of(agx_value_map_get(res, "stdout")));
    agx_value_free(res);
    agx_value_free(kw);
    return out;
}

static void check_answers(const agx_sandbox *sb)
{
    agx_client *c = NULL;
    agx_error err;
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    char *out = bash(c, "echo alive");
    CHECK_STREQ(out, "alive\n");
    free(out);
    agx_client_free(c);
}

static agx_fleet *make_fleet(agx_deployment *dep, const char *run, size_t n, agx_fleet_mode mode,
                             int *rc_out, agx_error *err)
{
    agx_sandbox_config *cfg = H->config();
    agx_fleet_options fo;
    agx_fleet_options_init(&fo);
    fo.count = n;
    fo.parallelism = 3;
    fo.mode = mode;
    fo.run_id = run;
    fo.retry.initial_backoff_ms = 10;
    fo.retry.max_backoff_ms = 50;
    agx_fleet *f = NULL;
    *rc_out = agx_fleet_create(dep, cfg, &fo, &f, err);
    agx_sandbox_config_free(cfg);
    return f;
}

/* ---- fleets ---- */

static void test_owner_labels(void)
{
    const char *run = new_run("labels");
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(inner, run, 1, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK_OK(rc, &err);
    agx_kv *filter = agx_kv_new();
    CHECK(filter && agx_kv_set(filter, AGX_LABEL_RUN, run) == 0);
    agx_sandbox_list *l = NULL;
    CHECK_OK(agx_deployment_list(inner, filter, &l, &err), &err);
    CHECK(agx_sandbox_list_count(l) == 1);
    const agx_kv *labels = agx_sandbox_info_labels_const(agx_sandbox_list_at(l, 0));
    char host[256] = "", pid[32];
    gethostname(host, sizeof host - 1);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    CHECK_STREQ(agx_kv_get(labels, AGX_LABEL_OWNER_HOST), host);
    CHECK_STREQ(agx_kv_get(labels, AGX_LABEL_OWNER_PID), pid);
    CHECK(strtoull(agx_kv_get(labels, AGX_LABEL_OWNER_START), NULL, 10) > 0);
    CHECK_STREQ(agx_kv_get(labels, AGX_LABEL_RUN), run);
    agx_sandbox_list_free(l);
    agx_kv_free(filter);
    /* The default run id is stable within the process and valid. */
    CHECK(agx_run_id()[0] && strcmp(agx_run_id(), agx_run_id()) == 0);
    agx_kv *kv = agx_kv_new();
    CHECK(agx_owner_labels_set(kv, "bad run id", &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_kv_free(kv);
    agx_fleet_free(f);
    check_none_left(run);
}

static void test_fleet_all_or_nothing(void)
{
    const char *run = new_run("aon");
    size_t n = H->scale;
    inject(3, 0);
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(flaky, run, n, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK(rc == AGX_ERR_BACKEND && f == NULL);
    CHECK_CONTAINS(err.message, "all-or-nothing");
    CHECK_CONTAINS(err.message, "injected failure");
    CHECK(atomic_load(&creates_failed) >= 1);
    check_none_left(run);
    inject(0, 0);
}

typedef struct destroy_arg {
    agx_fleet *f;
    int rc;
} destroy_arg;

static void *destroy_thread(void *arg)
{
    destroy_arg *d = arg;
    agx_error err;
    if (d->f)
        d->rc = agx_fleet_destroy(d->f, &err);
    else
        d->rc = (int)agx_cleanup_run(); /* the signal handler's sweep, without a signal */
    return NULL;
}

static void test_fleet_best_effort_and_destroy(void)
{
    const char *run = new_run("best");
    size_t n = H->scale;
    inject(3, 0);
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(flaky, run, n, AGX_FLEET_BEST_EFFORT, &rc, &err);
    CHECK_OK(rc, &err);
    size_t failed = (size_t)atomic_load(&creates_failed);
    CHECK(failed == n / 3 && agx_fleet_size(f) == n && agx_fleet_ready(f) == n - failed);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        int st = agx_fleet_status(f, i, &err);
        if (st) {
            bad++;
            CHECK(st == AGX_ERR_BACKEND && agx_fleet_sandbox(f, i) == NULL);
            CHECK_CONTAINS(err.message, "injected failure");
        } else {
            CHECK(agx_fleet_sandbox(f, i) != NULL && agx_fleet_attempts(f, i) == 1);
        }
    }
    CHECK(bad == failed);
    for (size_t i = 0; i < n; i++)
        if (agx_fleet_sandbox(f, i)) {
            check_answers(agx_fleet_sandbox(f, i));
            break;
        }
    CHECK(listed(run) == n - failed);
    /* Two threads destroy at once while a third runs the cleanup sweep, then once more: each
     * sandbox is deleted exactly once (deletes are counted by the wrapper). */
    atomic_store(&deletes, 0);
    destroy_arg a = {f, -1}, b = {f, -1}, c = {NULL, -1};
    pthread_t ta, tb, tc;
    CHECK(pthread_create(&ta, NULL, destroy_thread, &a) == 0);
    CHECK(pthread_create(&tc, NULL, destroy_thread, &c) == 0);
    CHECK(pthread_create(&tb, NULL, destroy_thread, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(tc, NULL);
    CHECK(a.rc == 0 && b.rc == 0);
    CHECK_MSG((size_t)atomic_load(&deletes) == n - failed, "%d deletes for %zu sandboxes",
              atomic_load(&deletes), n - failed);
    CHECK(agx_fleet_ready(f) == 0 && agx_fleet_sandbox(f, 0) == NULL);
    CHECK_OK(agx_fleet_destroy(f, &err), &err);
    check_none_left(run);
    CHECK(agx_fleet_replace(f, 0, &err) == AGX_ERR_CANCELLED);
    agx_fleet_free(f);
    CHECK((size_t)atomic_load(&deletes) == n - failed);
    inject(0, 0);
}

static void test_fleet_retries(void)
{
    const char *run = new_run("retry");
    size_t n = H->scale;
    inject(2, 1);
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(flaky, run, n, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK_OK(rc, &err);
    CHECK(agx_fleet_ready(f) == n);
    unsigned attempts = 0;
    for (size_t i = 0; i < n; i++)
        attempts += agx_fleet_attempts(f, i);
    CHECK(attempts == n + (unsigned)atomic_load(&creates_failed) && atomic_load(&creates_failed) > 0);
    /* Retries end: every create refused. */
    inject(1, 1);
    agx_fleet *g = make_fleet(flaky, run, 2, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK(rc == AGX_ERR_BACKEND && !g);
    CHECK_CONTAINS(err.message, "after 4 attempts");
    inject(0, 0);
    agx_fleet_free(f);
    check_none_left(run);
}

/* ---- pool ---- */

static agx_pool *make_pool_on(agx_deployment *dep, const char *run, size_t k)
{
    agx_sandbox_config *cfg = H->config();
    agx_pool_options po;
    agx_pool_options_init(&po);
    po.size = k;
    po.run_id = run;
    po.health_timeout_ms = 20000;
    agx_pool *p = NULL;
    agx_error err;
    CHECK_OK(agx_pool_new(dep, cfg, &po, &p, &err), &err);
    agx_sandbox_config_free(cfg);
    return p;
}

static agx_pool *make_pool(const char *run, size_t k)
{
    return make_pool_on(inner, run, k);
}

/* Ids of the run's live sandboxes. */
static size_t run_ids(const char *run, char ids[][128], size_t cap)
{
    agx_kv *f = agx_kv_new();
    CHECK(f && agx_kv_set(f, AGX_LABEL_RUN, run) == 0);
    agx_sandbox_list *l = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_list(inner, f, &l, &err), &err);
    size_t n = 0;
    for (size_t i = 0; i < agx_sandbox_list_count(l) && n < cap; i++)
        if (agx_sandbox_info_state(agx_sandbox_list_at(l, i)) == AGX_SANDBOX_RUNNING)
            snprintf(ids[n++], 128, "%s", agx_sandbox_info_id(agx_sandbox_list_at(l, i)));
    agx_sandbox_list_free(l);
    agx_kv_free(f);
    return n;
}

static void test_pool_refill_and_replace(void)
{
    const char *run = new_run("pool");
    agx_pool *p = make_pool(run, 2);
    agx_error err;
    CHECK_OK(agx_pool_wait_ready(p, 2, 300000, &err), &err);
    agx_lease *l = NULL;
    CHECK_OK(agx_pool_acquire(p, 0, &l, &err), &err); /* ready: no waiting */
    char *out = bash(agx_lease_client(l), "echo leased");
    CHECK_STREQ(out, "leased\n");
    free(out);
    /* Refills behind the lease. */
    CHECK_OK(agx_pool_wait_ready(p, 2, 300000, &err), &err);
    agx_pool_stats st;
    agx_pool_stats_get(p, &st);
    CHECK(st.leased == 1 && st.ready == 2 && st.created == 3);
    CHECK_OK(agx_pool_release(p, l, false, &err), &err);
    agx_pool_stats_get(p, &st);
    CHECK(st.leased == 0 && st.deleted == 1);
    CHECK(listed(run) == 2);

    /* Kill the runtime of every ready sandbox: none of them may be handed out. */
    char killed[2][128];
    CHECK(run_ids(run, killed, 2) == 2);
    H->kill_server(killed[0]);
    H->kill_server(killed[1]);
    CHECK_OK(agx_pool_acquire(p, 300000, &l, &err), &err);
    const char *id = agx_sandbox_id(agx_lease_sandbox(l));
    CHECK(strcmp(id, killed[0]) != 0 && strcmp(id, killed[1]) != 0);
    out = bash(agx_lease_client(l), "echo fresh");
    CHECK_STREQ(out, "fresh\n");
    free(out);
    agx_pool_stats_get(p, &st);
    CHECK(st.unhealthy == 2);
    /* A clean release returns it; the next acquire may hand it out again. */
    CHECK_OK(agx_pool_wait_ready(p, 2, 300000, &err), &err);
    CHECK_OK(agx_pool_release(p, l, true, &err), &err);
    agx_pool_stats_get(p, &st);
    CHECK(st.leased == 0 && st.ready == 2); /* K ready already: the clean one was deleted */
    CHECK_OK(agx_pool_acquire(p, 0, &l, &err), &err);
    CHECK_OK(agx_pool_release(p, l, true, &err), &err);
    agx_pool_stats_get(p, &st);
    CHECK(st.ready >= 1 && st.leased == 0);
    /* Freed with one lease out: that one is deleted too. */
    CHECK_OK(agx_pool_acquire(p, 300000, &l, &err), &err);
    agx_pool_free(p);
    check_none_left(run);
}

/* The pool invariant: K stays K. Threads acquire and release clean while refills are in flight
 * (creates through the wrapper last 300 ms, so a refill is almost always running when a lease
 * comes back); once settled the pool holds exactly K ready sandboxes and nothing more lives. */
typedef struct churn {
    agx_pool *p;
    int rounds;
} churn;

static void *churn_main(void *arg)
{
    churn *c = arg;
    agx_error err;
    for (int i = 0; i < c->rounds; i++) {
        agx_lease *l = NULL;
        CHECK_OK(agx_pool_acquire(c->p, 300000, &l, &err), &err);
        usleep(20 * 1000);
        CHECK_OK(agx_pool_release(c->p, l, true, &err), &err);
    }
    return NULL;
}

static void test_pool_k_stays_k(void)
{
    const char *run = new_run("poolk");
    const size_t k = 2;
    atomic_store(&create_delay_ms, 300);
    agx_pool *p = make_pool_on(flaky, run, k);
    agx_error err;
    CHECK_OK(agx_pool_wait_ready(p, k, 300000, &err), &err);
    pthread_t t[3];
    churn c = {p, 6};
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&t[i], NULL, churn_main, &c) == 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    /* Settled: no create in flight, nothing leased. */
    agx_pool_stats st;
    for (int i = 0; i < 600; i++) {
        agx_pool_stats_get(p, &st);
        if (st.creating == 0 && st.ready == k)
            break;
        usleep(50 * 1000);
    }
    agx_pool_stats_get(p, &st);
    fprintf(stderr, "   pool K=%zu after 18 clean releases: ready %zu, creating %zu, created %llu, "
            "deleted %llu\n", k, st.ready, st.creating, (unsigned long long)st.created,
            (unsigned long long)st.deleted);
    CHECK(st.ready == k && st.creating == 0 && st.leased == 0);
    CHECK(st.created - st.deleted == k);
    CHECK_MSG(listed(run) == k && H->count_run(run) == k, "live: %zu listed, %zu counted",
              listed(run), H->count_run(run));
    agx_pool_free(p);
    atomic_store(&create_delay_ms, 0);
    check_none_left(run);
}

/* A pool whose creates all fail: acquire times out naming the create error, and a map over it
 * is cancelled while its workers wait for sandboxes. */
static void test_pool_failing_creates(void)
{
    const char *run = new_run("poolfail");
    inject(1, 0);
    agx_pool *p = make_pool_on(flaky, run, 1);
    agx_error err;
    agx_lease *l = NULL;
    CHECK(agx_pool_acquire(p, 0, &l, &err) == AGX_ERR_TIMEOUT && !l);
    CHECK(agx_pool_acquire(p, 5000, &l, &err) == AGX_ERR_TIMEOUT && !l);
    CHECK_CONTAINS(err.message, "injected failure");
    agx_pool_stats st;
    agx_pool_stats_get(p, &st);
    CHECK(st.create_failures >= 1 && st.created == 0);

    const char *commands[] = {"true", "true", "true"};
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.pool = p;
    mo.tasks = 3;
    mo.parallelism = 2;
    mo.commands = commands;
    agx_map *m = NULL;
    CHECK_OK(agx_map_start(&mo, &m, &err), &err);
    agx_map_cancel(m);
    agx_map_result *r;
    size_t n = 0;
    while (agx_map_next(m, 60000, &r, &err) == 1) {
        CHECK_MSG(r->status == AGX_ERR_CANCELLED, "task %zu: %s", r->task, r->err.message);
        agx_map_result_free(r);
        n++;
    }
    CHECK(n == 3);
    agx_map_free(m);
    agx_pool_free(p);
    inject(0, 0);
    check_none_left(run);
}

/* ---- map ---- */

typedef struct victims {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t want;          /* victim tasks: attempt 0 of tasks 1 and 4 */
    char ids[8][128];     /* sandboxes to kill, as their tasks start */
    size_t n, killed;
    bool stop;
    atomic_int builds;
} victims;

static bool is_victim(size_t task)
{
    return task == 1 || task == 4;
}

static int build_task(void *user, size_t task, unsigned attempt, const agx_sandbox *sb,
                      const char **target, agx_value **args, agx_value **kwargs, agx_error *err)
{
    (void)args;
    (void)err;
    victims *v = user;
    atomic_fetch_add(&v->builds, 1);
    char cmd[128];
    if (v->want && is_victim(task) && attempt == 0) {
        snprintf(cmd, sizeof cmd, "sleep 120; echo never");
        pthread_mutex_lock(&v->mu);
        snprintf(v->ids[v->n++], 128, "%s", agx_sandbox_id(sb));
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
    } else if (!v->want) {
        snprintf(cmd, sizeof cmd, "sleep 120");
        pthread_mutex_lock(&v->mu);
        v->n++;
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
    } else {
        snprintf(cmd, sizeof cmd, "echo task-%zu", task);
    }
    *target = "agentix.bash::run";
    *kwargs = agx_value_map();
    CHECK(*kwargs && agx_value_map_set(*kwargs, "command", agx_value_string(cmd)) == 0);
    return 0;
}

/* Kills each victim's sandbox a moment after its task was sent. */
static void *killer(void *arg)
{
    victims *v = arg;
    pthread_mutex_lock(&v->mu);
    while (v->killed < v->want && !v->stop) {
        if (v->killed == v->n) {
            pthread_cond_wait(&v->cv, &v->mu);
            continue;
        }
        char id[128];
        snprintf(id, sizeof id, "%s", v->ids[v->killed++]);
        pthread_mutex_unlock(&v->mu);
        usleep(300 * 1000); /* let the call reach the runtime; a kill before it is caught too */
        H->kill_server(id);
        pthread_mutex_lock(&v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

static void victims_init(victims *v, size_t want)
{
    memset(v, 0, sizeof *v);
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    v->want = want;
    atomic_init(&v->builds, 0);
}

static void victims_destroy(victims *v)
{
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
}

typedef struct collected {
    int seen[16];
    int ok;
} collected;

static void on_result(void *user, agx_map_result *r)
{
    collected *c = user;
    CHECK(r->task < 16 && !c->seen[r->task]);
    c->seen[r->task] = 1;
    CHECK_MSG(r->status == 0, "task %zu: %s", r->task, r->err.message);
    char want[32];
    snprintf(want, sizeof want, "task-%zu\n", r->task);
    CHECK_STREQ(text_of(agx_value_map_get(r->value, "stdout")), want);
    CHECK_MSG(r->attempts == (is_victim(r->task) ? 2u : 1u), "task %zu: %u attempts", r->task, r->attempts);
    CHECK(r->sandbox_id[0]);
    c->ok++;
}

static void map_with_victims(agx_fleet *f, agx_pool *p)
{
    victims v;
    victims_init(&v, 2);
    pthread_t kt;
    CHECK(pthread_create(&kt, NULL, killer, &v) == 0);
    collected c = {{0}, 0};
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.fleet = f;
    mo.pool = p;
    mo.tasks = 6;
    mo.parallelism = 2;
    mo.build = build_task;
    mo.build_user = &v;
    mo.on_result = on_result;
    mo.result_user = &c;
    agx_error err;
    CHECK_OK(agx_map_run(&mo, &err), &err);
    CHECK(c.ok == 6);
    pthread_join(kt, NULL);
    CHECK(v.killed == 2);
    victims_destroy(&v);
}

static void test_map_over_pool_with_killed_sandboxes(void)
{
    const char *run = new_run("mappool");
    agx_pool *p = make_pool(run, 2);
    map_with_victims(NULL, p);
    agx_pool_stats st;
    agx_pool_stats_get(p, &st);
    CHECK(st.leased == 0);
    agx_pool_free(p);
    check_none_left(run);
}

static void test_map_over_fleet_with_killed_sandboxes(void)
{
    const char *run = new_run("mapfleet");
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(inner, run, 2, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK_OK(rc, &err);
    map_with_victims(f, NULL);
    CHECK(agx_fleet_ready(f) == 2);
    CHECK(agx_fleet_attempts(f, 0) + agx_fleet_attempts(f, 1) == 4); /* two replacements */
    CHECK(listed(run) == 2);
    agx_fleet_free(f);
    check_none_left(run);
}

static void on_result_no_replacement(void *user, agx_map_result *r)
{
    collected *c = user;
    CHECK(r->task < 16 && !c->seen[r->task]);
    c->seen[r->task] = 1;
    if (is_victim(r->task)) {
        CHECK_MSG(r->status == AGX_ERR_BACKEND, "task %zu: %d %s", r->task, r->status, r->err.message);
        CHECK_CONTAINS(r->err.message, "injected failure");
    } else if (r->status == 0) {
        char want[32];
        snprintf(want, sizeof want, "task-%zu\n", r->task);
        CHECK_STREQ(text_of(agx_value_map_get(r->value, "stdout")), want);
        c->ok++;
    } else {
        CHECK_MSG(r->status == AGX_ERR_UNAVAILABLE, "task %zu: %d %s", r->task, r->status, r->err.message);
        CHECK_CONTAINS(r->err.message, "no sandbox left");
    }
}

/* The dead sandboxes cannot be replaced (every create fails): their tasks fail with the create's
 * error, the workers that lost their item stop, and what nobody can run fails — each task once. */
static void test_map_fleet_replacement_fails(void)
{
    const char *run = new_run("noreplace");
    inject(0, 0);
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(flaky, run, 2, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK_OK(rc, &err);
    inject(1, 0);
    victims v;
    victims_init(&v, 2);
    pthread_t kt;
    CHECK(pthread_create(&kt, NULL, killer, &v) == 0);
    collected c = {{0}, 0};
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.fleet = f;
    mo.tasks = 6;
    mo.parallelism = 2;
    mo.build = build_task;
    mo.build_user = &v;
    mo.on_result = on_result_no_replacement;
    mo.result_user = &c;
    rc = agx_map_run(&mo, &err);
    CHECK(rc != 0);
    CHECK_CONTAINS(err.message, "tasks failed");
    for (int i = 0; i < 6; i++)
        CHECK(c.seen[i]);
    pthread_join(kt, NULL);
    victims_destroy(&v);
    CHECK(agx_fleet_ready(f) == 0);
    CHECK(agx_fleet_status(f, 0, &err) != 0 || agx_fleet_status(f, 1, &err) != 0);
    agx_fleet_free(f);
    inject(0, 0);
    check_none_left(run);
}

static void test_map_cancel_all(void)
{
    const char *run = new_run("cancel");
    agx_error err;
    int rc;
    agx_fleet *f = make_fleet(inner, run, 2, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK_OK(rc, &err);
    victims v;
    victims_init(&v, 0);
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.fleet = f;
    mo.tasks = 6;
    mo.parallelism = 2;
    mo.build = build_task;
    mo.build_user = &v;
    agx_map *m = NULL;
    CHECK_OK(agx_map_start(&mo, &m, &err), &err);
    pthread_mutex_lock(&v.mu);
    while (v.n < 2)
        pthread_cond_wait(&v.cv, &v.mu);
    pthread_mutex_unlock(&v.mu);
    agx_map_cancel(m);
    agx_map_cancel(m);
    int seen[6] = {0};
    agx_map_result *r;
    size_t n = 0;
    while ((rc = agx_map_next(m, 60000, &r, &err)) == 1) {
        CHECK(r->task < 6 && !seen[r->task]);
        seen[r->task] = 1;
        CHECK_MSG(r->status == AGX_ERR_CANCELLED, "task %zu: %d %s", r->task, r->status, r->err.message);
        agx_map_result_free(r);
        n++;
    }
    CHECK_OK(rc, &err);
    CHECK(n == 6 && agx_map_completed(m) == 6);
    CHECK(atomic_load(&v.builds) == 2); /* nothing started after the cancel */
    agx_map_free(m);
    victims_destroy(&v);
    agx_fleet_free(f);
    check_none_left(run);
}

static void test_map_task_timeout_and_commands(void)
{
    const char *run = new_run("timeout");
    agx_pool *p = make_pool(run, 2);
    const char *commands[] = {"sleep 120", "echo quick"};
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.pool = p;
    mo.tasks = 2;
    mo.parallelism = 2;
    mo.commands = commands;
    mo.task_timeout_ms = 5000; /* "echo quick" must fit even on a loaded machine under valgrind */
    agx_map *m = NULL;
    agx_error err;
    CHECK_OK(agx_map_start(&mo, &m, &err), &err);
    agx_map_result *r;
    int got = 0;
    while (agx_map_next(m, 300000, &r, &err) == 1) {
        if (r->task == 0) {
            CHECK_MSG(r->status == AGX_ERR_TIMEOUT, "%d %s", r->status, r->err.message);
            CHECK(r->attempts == 1);
        } else {
            CHECK_OK(r->status, &r->err);
            CHECK_STREQ(text_of(agx_value_map_get(r->value, "stdout")), "quick\n");
        }
        got++;
        agx_map_result_free(r);
    }
    CHECK(got == 2);
    agx_map_free(m);
    /* Wrong options are refused with a reason. */
    mo.fleet = (agx_fleet *)p;
    CHECK(agx_map_start(&mo, &m, &err) == AGX_ERR_INVALID_ARGUMENT && !m);
    agx_pool_free(p);
    check_none_left(run);
}

/* ---- child hosts: SIGINT cleanup, and gc after SIGKILL ---- */

/* In a child process: a fleet of n for run, "ready" on fd 1, then waits to be signalled. */
static int child_host(const char *mode, const char *run, size_t n)
{
    agx_error err;
    agx_deployment *dep = NULL;
    if (agx_load_deployment(H->backend, &dep, &err) != 0) {
        fprintf(stderr, "child: %s\n", err.message);
        return 2;
    }
    bool early = strcmp(mode, "sigint-create") == 0 || strcmp(mode, "hold-create") == 0;
    /* As an interactive host: a test runner started in the background may pass SIGINT ignored,
     * and an ignored signal stays ignored by agx_cleanup_install. */
    signal(SIGINT, SIG_DFL);
    if (strncmp(mode, "hold", 4) != 0 && agx_cleanup_install(0, &err) != 0) {
        fprintf(stderr, "child: %s\n", err.message);
        return 2;
    }
    /* sigint-create: "ready" first, so the signal lands while creates are in flight. */
    if (early && write(1, "ready\n", 6) != 6)
        return 2;
    int rc;
    agx_fleet *f = make_fleet(dep, run, n, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    if (rc) {
        fprintf(stderr, "child: fleet: %s\n", err.message);
        return 2;
    }
    if (!early && write(1, "ready\n", 6) != 6)
        return 2;
    for (int i = 0; i < 600; i++)
        sleep(1);
    agx_fleet_free(f);
    return 3; /* never signalled */
}

static pid_t spawn_child(const char *mode, const char *run, size_t n)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char count[16];
        snprintf(count, sizeof count, "%zu", n);
        execl(self_exe, self_exe, "--child", mode, run, count, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[8] = "";
    ssize_t got = read(fds[0], buf, 6);
    close(fds[0]);
    CHECK_MSG(got == 6 && !strncmp(buf, "ready\n", 6), "child host did not get ready");
    return pid;
}

static void test_sigint_child_leaves_nothing(void)
{
    const char *run = new_run("sigint");
    size_t n = H->scale;
    pid_t pid = spawn_child("sigint", run, n);
    CHECK(listed(run) == n);
    CHECK(kill(pid, SIGINT) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "child status %#x", status);
    check_none_left(run);
}

/* SIGINT while the fleet is being created: creates in flight land and are deleted too. */
static void test_sigint_during_create(void)
{
    const char *run = new_run("sigintcreate");
    size_t n = 3 * H->scale;
    pid_t pid = spawn_child("sigint-create", run, n);
    /* Once the first sandbox exists, the others are in flight or still to come. */
    for (int i = 0; i < 6000 && H->count_run(run) == 0; i++)
        usleep(10 * 1000);
    CHECK(kill(pid, SIGINT) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "child status %#x", status);
    check_none_left(run);
}

static void on_gc(void *user, const agx_sandbox_info *info, agx_gc_verdict v, const agx_error *err)
{
    (void)info;
    (void)err;
    int *counts = user;
    counts[v]++;
}

static void test_gc_after_sigkill(void)
{
    const char *run = new_run("gc");
    const char *live = new_run("gclive");
    size_t n = H->scale;
    pid_t pid = spawn_child("hold", run, n);
    CHECK(kill(pid, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    CHECK(listed(run) == n && H->count_run(run) == n);

    agx_error err;
    int rc;
    agx_fleet *mine = make_fleet(inner, live, 1, AGX_FLEET_ALL_OR_NOTHING, &rc, &err);
    CHECK_OK(rc, &err);
    agx_gc_options go;
    agx_gc_options_init(&go);
    agx_gc_report rep;
    int counts[AGX_GC_CARRIER + 1] = {0};
    go.on_sandbox = on_gc;
    go.user = counts;
    /* A live owner's sandbox is kept. */
    go.run_id = live;
    CHECK_OK(agx_gc(inner, &go, &rep, &err), &err);
    CHECK(rep.examined == 1 && rep.kept == 1 && rep.deleted == 0 && counts[AGX_GC_OWNER_ALIVE] == 1);
    /* Dry run and an age bound delete nothing. */
    go.run_id = run;
    go.dry_run = true;
    CHECK_OK(agx_gc(inner, &go, &rep, &err), &err);
    CHECK(rep.examined == n && rep.deleted == n);
    CHECK(listed(run) == n);
    go.dry_run = false;
    go.older_than_ms = 24 * 3600 * 1000LL;
    CHECK_OK(agx_gc(inner, &go, &rep, &err), &err);
    CHECK(rep.kept == n && rep.deleted == 0);
    go.older_than_ms = 0;
    CHECK_OK(agx_gc(inner, &go, &rep, &err), &err);
    CHECK(rep.examined == n && rep.deleted == n && rep.failed == 0);
    check_none_left(run);
    CHECK(listed(live) == 1);
    agx_fleet_free(mine);
    check_none_left(live);
}

/* Owner labels written by hand: our own pid with another start time is a reused pid (the owner is
 * gone), unreadable labels are never judged. */
static agx_sandbox *labelled(const char *run, const char *pid, const char *start)
{
    agx_sandbox_config *cfg = H->config();
    agx_kv *l = agx_sandbox_config_labels(cfg);
    agx_error err;
    CHECK_OK(agx_owner_labels_set(l, run, &err), &err);
    CHECK(agx_kv_set(l, AGX_LABEL_OWNER_PID, pid) == 0 && agx_kv_set(l, AGX_LABEL_OWNER_START, start) == 0);
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(inner, cfg, &sb, &err), &err);
    agx_sandbox_config_free(cfg);
    return sb;
}

static void test_gc_pid_reused_and_bad_labels(void)
{
    const char *run = new_run("gcreuse");
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    agx_sandbox *reused = labelled(run, pid, "1");
    agx_sandbox *bad = labelled(run, "not-a-pid", "1");
    agx_gc_options go;
    agx_gc_options_init(&go);
    go.run_id = run;
    int counts[AGX_GC_CARRIER + 1] = {0};
    go.on_sandbox = on_gc;
    go.user = counts;
    agx_gc_report rep;
    agx_error err;
    CHECK_OK(agx_gc(inner, &go, &rep, &err), &err);
    CHECK(rep.examined == 2 && rep.deleted == 1 && rep.kept == 1);
    CHECK(counts[AGX_GC_DELETED] == 1 && counts[AGX_GC_KEPT] == 1); /* not judged: kept */
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(inner, agx_sandbox_id(reused), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_deployment_delete(inner, agx_sandbox_id(bad), &err), &err);
    agx_sandbox_free(reused);
    agx_sandbox_free(bad);
    check_none_left(run);
    /* Bad arguments. */
    go.run_id = "no spaces";
    CHECK(agx_gc(inner, &go, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
}

/* A host SIGKILLed while its fleet is being created, once at least two of its sandboxes run: once
 * the requests in flight have settled (docker's owner watch removing the never-started
 * containers among them), gc deletes every leftover and none with the run's label remains. */
static void test_gc_after_sigkill_mid_create(void)
{
    size_t n = H->mid_create_fleet;
    if (n == 0) {
        fprintf(stderr, "   (not run over %s: see fleet_scenarios.h)\n", H->backend);
        return;
    }
    const char *run = new_run("gcmid");
    pid_t pid = spawn_child("hold-create", run, n);
    size_t (*started)(const char *) = H->count_started ? H->count_started : H->count_run;
    for (int i = 0; i < 12000 && started(run) < 2; i++)
        usleep(10 * 1000);
    CHECK(kill(pid, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    /* Requests the dead host had sent may still land: wait until the count has held for 3 s
     * (bounded, 120 s) — on a loaded machine the daemon may serve them late. */
    size_t before = H->count_run(run), now;
    for (int i = 0, held = 0; i < 120 && held < 3; i++, before = now) {
        sleep(1);
        now = H->count_run(run);
        held = now == before ? held + 1 : 0;
    }
    CHECK(before >= 2);
    agx_gc_options go;
    agx_gc_options_init(&go);
    go.run_id = run;
    agx_gc_report rep;
    agx_error err;
    CHECK_OK(agx_gc(inner, &go, &rep, &err), &err);
    CHECK(rep.deleted == rep.examined && rep.examined >= 2 && rep.failed == 0);
    check_none_left(run);
}

/* ---- the run ---- */

static const struct scenario {
    const char *name;
    void (*fn)(void);
} scenarios[] = {
    {"test_owner_labels", test_owner_labels},
    {"test_fleet_all_or_nothing", test_fleet_all_or_nothing},
    {"test_fleet_best_effort_and_destroy", test_fleet_best_effort_and_destroy},
    {"test_fleet_retries", test_fleet_retries},
    {"test_pool_refill_and_replace", test_pool_refill_and_replace},
    {"test_pool_k_stays_k", test_pool_k_stays_k},
    {"test_pool_failing_creates", test_pool_failing_creates},
    {"test_map_over_pool_with_killed_sandboxes", test_map_over_pool_with_killed_sandboxes},
    {"test_map_over_fleet_with_killed_sandboxes", test_map_over_fleet_with_killed_sandboxes},
    {"test_map_fleet_replacement_fails", test_map_fleet_replacement_fails},
    {"test_map_cancel_all", test_map_cancel_all},
    {"test_map_task_timeout_and_commands", test_map_task_timeout_and_commands},
    {"test_sigint_child_leaves_nothing", test_sigint_child_leaves_nothing},
    {"test_sigint_during_create", test_sigint_during_create},
    {"test_gc_after_sigkill", test_gc_after_sigkill},
    {"test_gc_pid_reused_and_bad_labels", test_gc_pid_reused_and_bad_labels},
    {"test_gc_after_sigkill_mid_create", test_gc_after_sigkill_mid_create},
};

static bool scenario_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

/* At exit, also after a failed CHECK: nothing of ours survives the test. */
static void sweep(void)
{
    agx_cleanup_run();
    if (!inner)
        return;
    for (size_t i = 0; i < n_runs; i++) {
        agx_kv *f = agx_kv_new();
        agx_sandbox_list *l = NULL;
        if (f && agx_kv_set(f, AGX_LABEL_RUN, runs[i]) == 0 &&
            agx_deployment_list(inner, f, &l, NULL) == 0)
            for (size_t k = 0; k < agx_sandbox_list_count(l); k++)
                agx_deployment_delete(inner, agx_sandbox_info_id(agx_sandbox_list_at(l, k)), NULL);
        agx_sandbox_list_free(l);
        agx_kv_free(f);
    }
}

int fleet_scenarios_main(const fleet_harness *h, int argc, char **argv)
{
    H = h;
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_host(argv[2], argv[3], strtoul(argv[4], NULL, 10));
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    CHECK(len > 0);
    self_exe[len] = '\0';
    /* Sandboxes of killed child hosts are reparented here, not to a PID 1 that may not reap. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    agx_error err;
    CHECK_OK(agx_load_deployment(h->backend, &inner, &err), &err);
    CHECK_OK(agx_register_deployment(&flaky_vt, &err), &err);
    CHECK_OK(agx_load_deployment("flaky", &flaky, &err), &err);
    atexit(sweep);

    /* --only a,b,c runs the named scenarios (to chase one under a debugger or memcheck); the
     * default is all. */
    const char *only = argc == 3 && strcmp(argv[1], "--only") == 0 ? argv[2] : NULL;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (!only || scenario_listed(only, scenarios[i].name)) {
            fprintf(stderr, "-- %s\n", scenarios[i].name);
            scenarios[i].fn();
        }

    agx_deployment_free(flaky);
    flaky = NULL;
    CHECK_OK(agx_unregister_deployment("flaky", &err), &err);
    sweep();
    agx_deployment *d = inner;
    inner = NULL;
    agx_deployment_free(d);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    return 0;
}
