/* admission_load.c — admission control under load against the E2B fake (tests/fakes/e2b), whose
 * route limiter answers 429 with Retry-After above --fake-limit creates per second: T threads run
 * M tasks, each a session (create, one remote call, hold it --hold-ms, delete) on the e2b backend
 * with admission's cap --cap and rate --rate. Checks and prints, from the fake's own counts: the
 * sandboxes alive at once never above the cap, accepted creates in any second under the fake's
 * limit, no task failed, and create requests per sandbox ≤ 1.2.
 *
 * CI (CTest test_admission): 200 tasks, cap 20, 8 creates/s against a limit of 10.
 * bench/leases/admission.sh: 2,000 tasks, cap 100, 5 creates/s. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/agentix.h"
#include "agentix/clock.h"
#include "check.h"
#include "cloud_fake.h"

typedef struct load {
    int tasks, cap, threads, hold_ms, fake_limit;
    double rate;
    agx_deployment *dep;
    atomic_int next, failed, done;
    agx_error first; /* of the first failed task */
    pthread_mutex_t mu;
} load;

static int body(agx_sandbox *sb, void *user, agx_error *err)
{
    load *l = user;
    agx_client *c = NULL;
    int rc = agx_client_connect_sandbox(sb, NULL, &c, err);
    agx_value *res = NULL, *kw = agx_value_map();
    if (!rc && agx_value_map_set(kw, "command", agx_value_string("echo ok")) != 0)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        rc = agx_client_call(c, "agentix.bash::run", NULL, kw, 60000, &res, err);
    if (!rc && strcmp(agx_value_get_string(agx_value_map_get(res, "stdout"), NULL) ?: "", "ok\n"))
        rc = agx_error_set(err, AGX_ERR_INTERNAL, "the call answered something else");
    agx_value_free(kw);
    agx_value_free(res);
    agx_client_free(c);
    if (!rc)
        agx_clock_sleep_ms(l->hold_ms);
    return rc;
}

static void *worker(void *arg)
{
    load *l = arg;
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 600000) == 0);
    while (atomic_fetch_add(&l->next, 1) < l->tasks) {
        agx_error err;
        if (agx_session_run(l->dep, cfg, body, l, &err) != 0) {
            pthread_mutex_lock(&l->mu);
            if (atomic_fetch_add(&l->failed, 1) == 0)
                agx_error_copy(&l->first, &err);
            pthread_mutex_unlock(&l->mu);
        }
        atomic_fetch_add(&l->done, 1);
    }
    agx_sandbox_config_free(cfg);
    return NULL;
}

static long stat_int(json_t *s, const char *k)
{
    return (long)json_integer_value(json_object_get(s, k));
}

static int arg_int(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoi(argv[i + 1]);
    return def;
}

int main(int argc, char **argv)
{
    load l = {.tasks = arg_int(argc, argv, "--tasks", 200), .cap = arg_int(argc, argv, "--cap", 20),
              .threads = arg_int(argc, argv, "--threads", 40),
              .hold_ms = arg_int(argc, argv, "--hold-ms", 3000),
              .fake_limit = arg_int(argc, argv, "--fake-limit", 10),
              .rate = arg_int(argc, argv, "--rate", 8)};
    pthread_mutex_init(&l.mu, NULL);
    char state[512];
    snprintf(state, sizeof state, "%s/admission-state-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(state));
    setenv("AGENTIX_STATE_DIR", state, 1);
    agx_fake *f = agx_fake_start_e2b_rate(100000, NULL, l.fake_limit);
    setenv("E2B_API_KEY", AGX_FAKE_E2B_KEY, 1);
    agx_error err;
    CHECK_OK(agx_load_deployment("e2b", &l.dep, &err), &err);
    agx_admission_options o;
    agx_admission_options_init(&o);
    o.max_live = (unsigned)l.cap;
    o.creates_per_s = l.rate;
    CHECK_OK(agx_admission_set("e2b", &o, &err), &err);

    int64_t t0 = agx_clock_ms();
    pthread_t *t = calloc((size_t)l.threads, sizeof *t);
    CHECK(t);
    for (int i = 0; i < l.threads; i++)
        CHECK(pthread_create(&t[i], NULL, worker, &l) == 0);
    for (int i = 0; i < l.threads; i++)
        pthread_join(t[i], NULL);
    double secs = (agx_clock_ms() - t0) / 1000.0;
    free(t);

    json_t *s = agx_fake_stats(f);
    long requests = stat_int(s, "create_requests"), creates = stat_int(s, "creates");
    long peak = stat_int(s, "peak_live"), max1 = stat_int(s, "max_creates_1s");
    long limited = stat_int(s, "rate_limited");
    json_decref(s);
    double per_create = creates ? (double)requests / (double)creates : 0;
    printf("{\"bench\":\"admission\",\"tasks\":%d,\"failed\":%d,\"cap\":%d,\"peak_live\":%ld,"
           "\"rate_limit_per_s\":%g,\"fake_limit_per_s\":%d,\"max_creates_in_1s\":%ld,"
           "\"create_requests\":%ld,\"creates\":%ld,\"answered_429\":%ld,"
           "\"attempts_per_create\":%.3f,\"seconds\":%.1f,\"creates_per_s\":%.2f}\n",
           l.tasks, atomic_load(&l.failed), l.cap, peak, l.rate, l.fake_limit, max1, requests,
           creates, limited, per_create, secs, creates / secs);
    fflush(stdout);
    CHECK_MSG(atomic_load(&l.failed) == 0, "%d tasks failed; first: %s", atomic_load(&l.failed),
              l.first.message);
    CHECK_MSG(peak <= l.cap, "%ld sandboxes alive at once, cap %d", peak, l.cap);
    CHECK_MSG(max1 <= l.fake_limit, "%ld creates accepted in one second, limit %d", max1,
              l.fake_limit);
    CHECK_MSG(creates == l.tasks, "%ld creates for %d tasks", creates, l.tasks);
    CHECK_MSG(per_create <= 1.2, "%.3f create requests per sandbox", per_create);
    agx_deployment_free(l.dep);
    agx_fake_finish(f);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", state);
    CHECK(system(cmd) == 0);
    return 0;
}
