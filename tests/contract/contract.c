/* contract.c — the scenarios of the backend contract suite (see contract.h), each run against the
 * backend a fixture names:
 *   lifecycle     create → calls → get (running, labels, url) → list by label → delete → get gone
 *                 → delete again succeeds → nothing left
 *   list          list by label tells sandboxes apart; all-labels match; unknown label finds none
 *   failed_create a create that fails after the backend began leaves nothing (by the world's own
 *                 account) and nothing listed
 *   bad_config    the backend declares exactly the fields it honours; every other field is refused
 *                 naming field and backend; unknown own options and unprefixed options are
 *                 refused; a label that is not UTF-8 is refused; nothing is left
 *   concurrent    N creates at once, each called and deleted; distinct ids, nothing left
 *   calls         unary, stream, bidi and a remote error through runtime_url; the config's env
 *                 reaches commands where the backend honours env
 *   bundle_path   the bundle's tools are first on PATH for commands (backends that run a bundle;
 *                 the others refuse a bundle)
 * Usage: test_contract <backend> [scenario…] (default: all, in this order). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agentix/backend/labels.h"
#include "agentix/client.h"
#include "agentix/clock.h"
#include "agentix/fleet.h"
#include "check.h"
#include "contract.h"
#include "demo_calls.h"

static const contract_fixture *F;
static agx_deployment *dep;
static char run_id[17];

const char *contract_run_id(void)
{
    return run_id;
}

/* ---- helpers ---- */

static agx_sandbox_config *config(const char *scenario)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    /* Bounds for sanitizer builds beside other jobs on 2 cores, not expectations. */
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 180000) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), CONTRACT_RUN_LABEL, run_id) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.contract.scenario", scenario) == 0);
    /* Another backend's option: left for that backend, never refused here. */
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "contract-elsewhere.option", "1") == 0);
    F->config(cfg);
    return cfg;
}

static agx_kv *labels(const char *scenario, const char *key, const char *value)
{
    agx_kv *kv = agx_kv_new();
    CHECK(kv && agx_kv_set(kv, CONTRACT_RUN_LABEL, run_id) == 0);
    if (scenario)
        CHECK(agx_kv_set(kv, "agentix.contract.scenario", scenario) == 0);
    if (key)
        CHECK(agx_kv_set(kv, key, value) == 0);
    return kv;
}

static agx_sandbox *create(const agx_sandbox_config *cfg)
{
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK(sb && agx_sandbox_id(sb) && *agx_sandbox_id(sb));
    CHECK_STREQ(agx_sandbox_backend(sb), F->backend);
    CHECK(agx_sandbox_runtime_url(sb) && *agx_sandbox_runtime_url(sb));
    return sb;
}

static agx_sandbox_info *get(const char *id)
{
    agx_sandbox_info *info = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    CHECK_STREQ(agx_sandbox_info_id(info), id);
    return info;
}

static agx_sandbox_state state_of(const char *id)
{
    agx_sandbox_info *info = get(id);
    agx_sandbox_state s = agx_sandbox_info_state(info);
    agx_sandbox_info_free(info);
    return s;
}

static void destroy(agx_sandbox *sb)
{
    agx_error err;
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
}

/* How many sandboxes list(want) returns, whether id_a and id_b are among them; each must carry
 * every wanted label. */
static size_t list_count(const agx_kv *want, const char *id_a, const char *id_b, int *has_a,
                         int *has_b)
{
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_list(dep, want, &list, &err), &err);
    size_t n = agx_sandbox_list_count(list);
    *has_a = *has_b = 0;
    for (size_t i = 0; i < n; i++) {
        const agx_sandbox_info *info = agx_sandbox_list_at(list, i);
        const char *id = agx_sandbox_info_id(info);
        *has_a |= id_a && strcmp(id, id_a) == 0;
        *has_b |= id_b && strcmp(id, id_b) == 0;
        for (size_t k = 0; want && k < agx_kv_count(want); k++)
            CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), agx_kv_key_at(want, k)),
                        agx_kv_value_at(want, k));
    }
    agx_sandbox_list_free(list);
    return n;
}

static size_t listed(const char *scenario)
{
    agx_kv *want = labels(scenario, NULL, NULL);
    int a, b;
    size_t n = list_count(want, NULL, NULL, &a, &b);
    agx_kv_free(want);
    return n;
}

static void nothing_left(const char *scenario)
{
    int n = F->leftovers();
    CHECK_MSG(n == 0, "%d sandboxes of this run are left in %s's world", n, F->backend);
    CHECK_MSG(listed(scenario) == 0, "the backend still lists sandboxes of scenario %s", scenario);
}

/* agentix.bash::run through the sandbox: the command's stdout (malloc'd); exit code must be 0. */
static char *run(const agx_sandbox *sb, const char *command)
{
    agx_client *c = NULL;
    agx_error err;
    CHECK_OK(agx_test_connect(sb, &c, &err), &err);
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(kw && agx_value_map_set(kw, "command", agx_value_string(command)) == 0);
    CHECK_OK(agx_client_call(c, "agentix.bash::run", NULL, kw, AGX_TEST_CALL_MS, &res, &err), &err);
    CHECK_MSG(agx_value_get_int64(agx_value_map_get(res, "exit_code")) == 0, "%s: exit %lld: %s",
              command, (long long)agx_value_get_int64(agx_value_map_get(res, "exit_code")),
              agx_value_get_string(agx_value_map_get(res, "stderr"), NULL));
    char *out = strdup(agx_value_get_string(agx_value_map_get(res, "stdout"), NULL) ?: "");
    CHECK(out);
    agx_value_free(res);
    agx_value_free(kw);
    agx_client_free(c);
    return out;
}

/* ---- scenarios ---- */

static void scenario_lifecycle(void)
{
    agx_sandbox_config *cfg = config("lifecycle");
    agx_sandbox *sb = create(cfg);
    agx_error err;
    CHECK_OK(agx_test_demo_session(sb, &err), &err);

    agx_sandbox_info *info = get(agx_sandbox_id(sb));
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), CONTRACT_RUN_LABEL), run_id);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), "agentix.contract.scenario"),
                "lifecycle");
    if (agx_sandbox_info_runtime_url(info)) /* optional (deployment.h); daytona's needs a call */
        CHECK_STREQ(agx_sandbox_info_runtime_url(info), agx_sandbox_runtime_url(sb));
    agx_sandbox_info_free(info);

    agx_kv *want = labels("lifecycle", NULL, NULL);
    int has, none;
    CHECK(list_count(want, agx_sandbox_id(sb), NULL, &has, &none) == 1 && has);
    agx_kv_free(want);

    char id[256];
    snprintf(id, sizeof id, "%s", agx_sandbox_id(sb));
    destroy(sb);
    CHECK(state_of(id) == AGX_SANDBOX_GONE);
    CHECK_OK(agx_deployment_delete(dep, id, &err), &err); /* gone already: still succeeds */
    CHECK(state_of(id) == AGX_SANDBOX_GONE);
    nothing_left("lifecycle");
    agx_sandbox_config_free(cfg);
}

static void scenario_list(void)
{
    agx_sandbox_config *cfg = config("list");
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.contract.team", "a") == 0);
    agx_sandbox *a = create(cfg);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.contract.team", "b") == 0);
    agx_sandbox *b = create(cfg);
    const char *ia = agx_sandbox_id(a), *ib = agx_sandbox_id(b);
    CHECK(strcmp(ia, ib) != 0);

    int has_a, has_b;
    agx_kv *want = labels("list", "agentix.contract.team", "a");
    CHECK(list_count(want, ia, ib, &has_a, &has_b) == 1 && has_a && !has_b);
    CHECK(agx_kv_set(want, "agentix.contract.team", "b") == 0);
    CHECK(list_count(want, ia, ib, &has_a, &has_b) == 1 && !has_a && has_b);
    CHECK(agx_kv_set(want, "agentix.contract.team", "c") == 0);
    CHECK(list_count(want, ia, ib, &has_a, &has_b) == 0);
    agx_kv_free(want);
    want = labels("list", NULL, NULL); /* every label must match, not any */
    CHECK(list_count(want, ia, ib, &has_a, &has_b) == 2 && has_a && has_b);
    agx_kv_free(want);
    CHECK(list_count(NULL, ia, ib, &has_a, &has_b) >= 2 && has_a && has_b);

    destroy(a);
    CHECK(listed("list") == 1);
    destroy(b);
    nothing_left("list");
    agx_sandbox_config_free(cfg);
}

static void scenario_failed_create(void)
{
    agx_sandbox_config *cfg = config("failed_create");
    const char *what = "";
    int code = F->failing_create(cfg, &what);
    fprintf(stderr, "   failing: %s\n", what);
    agx_sandbox *sb = NULL;
    agx_error err;
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    fprintf(stderr, "   -> %s: %s\n", agx_error_code_name(rc), err.message);
    CHECK_MSG(rc == code, "expected %s, got %s: %s", agx_error_code_name(code),
              agx_error_code_name(rc), err.message);
    CHECK(sb == NULL && err.message[0]);
    if (F->after_failing)
        F->after_failing();
    nothing_left("failed_create");
    agx_sandbox_config_free(cfg);
}

static void set_field(agx_sandbox_config *cfg, uint32_t bit)
{
    switch (bit) {
    case AGX_CONFIG_IMAGE: CHECK(agx_sandbox_config_set_image(cfg, "agx-contract-image:none") == 0); break;
    case AGX_CONFIG_BUNDLE: CHECK(agx_sandbox_config_set_bundle(cfg, "agx-contract-bundle:none") == 0); break;
    case AGX_CONFIG_PLATFORM: CHECK(agx_sandbox_config_set_platform(cfg, "linux/amd64") == 0); break;
    case AGX_CONFIG_CPUS: CHECK(agx_sandbox_config_set_cpus(cfg, 1) == 0); break;
    case AGX_CONFIG_MEMORY: CHECK(agx_sandbox_config_set_memory(cfg, 256u << 20) == 0); break;
    default: CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "CONTRACT_ENV", "1") == 0);
    }
}

static void refused(const agx_sandbox_config *cfg, int code, const char *a, const char *b)
{
    agx_sandbox *sb = NULL;
    agx_error err;
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    fprintf(stderr, "   -> %s: %s\n", agx_error_code_name(rc), err.message);
    CHECK_MSG(rc == code, "expected %s, got %s: %s", agx_error_code_name(code),
              agx_error_code_name(rc), err.message);
    CHECK(sb == NULL);
    if (a)
        CHECK_CONTAINS(err.message, a);
    if (b)
        CHECK_CONTAINS(err.message, b);
}

static void scenario_bad_config(void)
{
    uint32_t declared = agx_deployment_config_fields(dep);
    CHECK_MSG(declared == F->honours, "%s declares fields 0x%x, the contract expects 0x%x",
              F->backend, declared, F->honours);
    char backend[96];
    snprintf(backend, sizeof backend, "backend '%s'", F->backend);
    for (uint32_t bit = 1; bit & AGX_CONFIG_ALL; bit <<= 1) {
        if (F->honours & bit)
            continue;
        char field[64];
        snprintf(field, sizeof field, "'%s'", agx_config_field_name((agx_config_field)bit));
        fprintf(stderr, "   %s unset on %s\n", field, F->backend);
        agx_sandbox_config *cfg = config("bad_config");
        set_field(cfg, bit);
        refused(cfg, AGX_ERR_UNSUPPORTED, backend, field);
        agx_sandbox_config_free(cfg);
    }
    char key[96];
    snprintf(key, sizeof key, "%s.no_such_option", F->backend);
    agx_sandbox_config *cfg = config("bad_config");
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), key, "1") == 0);
    refused(cfg, AGX_ERR_INVALID_ARGUMENT, backend, key);
    CHECK(agx_kv_remove(agx_sandbox_config_options(cfg), key) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "no_such_option", "1") == 0);
    refused(cfg, AGX_ERR_INVALID_ARGUMENT, "no_such_option", NULL);
    CHECK(agx_kv_remove(agx_sandbox_config_options(cfg), "no_such_option") == 0);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.contract.bad", "caf\xe9") == 0);
    refused(cfg, AGX_ERR_INVALID_ARGUMENT, NULL, NULL);
    agx_sandbox_config_free(cfg);
    nothing_left("bad_config");
}

typedef struct worker {
    pthread_t thread;
    const agx_sandbox_config *cfg;
    char id[256];
    int rc;
    agx_error err;
} worker;

static void *concurrent_one(void *arg)
{
    worker *w = arg;
    agx_sandbox *sb = NULL;
    w->rc = agx_deployment_create(dep, w->cfg, &sb, &w->err);
    if (w->rc)
        return NULL;
    snprintf(w->id, sizeof w->id, "%s", agx_sandbox_id(sb));
    w->rc = agx_test_demo_session(sb, &w->err);
    agx_error derr;
    int drc = agx_deployment_delete(dep, agx_sandbox_id(sb), &derr);
    if (!w->rc && drc) {
        w->rc = drc;
        agx_error_copy(&w->err, &derr);
    }
    agx_sandbox_free(sb);
    return NULL;
}

static void scenario_concurrent(void)
{
    agx_sandbox_config *cfg = config("concurrent");
    int n = F->concurrency;
    worker *w = calloc((size_t)n, sizeof *w);
    CHECK(w);
    for (int i = 0; i < n; i++) {
        w[i].cfg = cfg;
        CHECK(pthread_create(&w[i].thread, NULL, concurrent_one, &w[i]) == 0);
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].thread, NULL);
        if (w[i].rc) {
            failed++;
            fprintf(stderr, "sandbox %d: %s: %s\n  %s\n", i, agx_error_code_name(w[i].rc),
                    w[i].err.message, w[i].err.detail);
        }
        for (int j = 0; j < i; j++)
            CHECK_MSG(!w[i].id[0] || strcmp(w[i].id, w[j].id) != 0, "id %s handed out twice",
                      w[i].id);
    }
    free(w);
    CHECK_MSG(failed == 0, "%d of %d concurrent sandboxes failed", failed, n);
    nothing_left("concurrent");
    agx_sandbox_config_free(cfg);
}

static void scenario_calls(void)
{
    agx_sandbox_config *cfg = config("calls");
    int env = (F->honours & AGX_CONFIG_ENV) != 0;
    if (env)
        CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "CONTRACT_ENV", "from-config") == 0);
    agx_sandbox *sb = create(cfg);
    agx_client *c = NULL;
    agx_error err;
    CHECK_OK(agx_test_connect(sb, &c, &err), &err);
    CHECK_OK(agx_test_demo_calls(c, &err), &err);
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(kw && agx_value_map_set(kw, "type", agx_value_string("ValueError")) == 0 &&
          agx_value_map_set(kw, "message", agx_value_string("contract")) == 0);
    CHECK(agx_client_call(c, "demo::fail", NULL, kw, AGX_TEST_CALL_MS, &res, &err) ==
          AGX_ERR_REMOTE && !res);
    CHECK_STREQ(err.remote_type, "ValueError");
    CHECK_CONTAINS(err.message, "contract");
    agx_value_free(kw);
    agx_client_free(c);
    char *out = run(sb, "printf '%s' \"${CONTRACT_ENV-unset}\"");
    CHECK_STREQ(out, env ? "from-config" : "unset");
    free(out);
    destroy(sb);
    nothing_left("calls");
    agx_sandbox_config_free(cfg);
}

static void scenario_bundle_path(void)
{
    if (!F->bundle_bin) {
        CHECK(!(F->honours & AGX_CONFIG_BUNDLE));
        fprintf(stderr, "   %s runs no bundle: it refuses one (bad_config checks the refusal)\n",
                F->backend);
        return;
    }
    agx_sandbox_config *cfg = config("bundle_path");
    agx_sandbox *sb = create(cfg);
    char *out = run(sb, CONTRACT_TOOL "; command -v " CONTRACT_TOOL "; printf '%s' \"$PATH\"");
    char want[512];
    snprintf(want, sizeof want, CONTRACT_TOOL_SAYS "\n%s/" CONTRACT_TOOL "\n%s:", F->bundle_bin,
             F->bundle_bin);
    CHECK_MSG(strncmp(out, want, strlen(want)) == 0, "expected the bundle's bin/ first on PATH:\n"
              "  want prefix: %s\n  got: %s", want, out);
    free(out);
    destroy(sb);
    nothing_left("bundle_path");
    agx_sandbox_config_free(cfg);
}

/* Every sandbox carries the ownership record agx_deployment_create stamps (backend/labels.h):
 * this process as its owner, the run, a create nonce and its expiry, readable through get and
 * list; gc judges its owner alive and keeps it. */
static void scenario_ownership(void)
{
    agx_sandbox_config *cfg = config("ownership");
    agx_sandbox *sb = create(cfg);
    agx_sandbox_info *info = get(agx_sandbox_id(sb));
    const agx_kv *l = agx_sandbox_info_labels_const(info);
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    CHECK_STREQ(agx_kv_get(l, AGX_LABEL_OWNER_PID), pid);
    CHECK(agx_kv_get(l, AGX_LABEL_OWNER_HOST) && agx_kv_get(l, AGX_LABEL_OWNER_START));
    CHECK_STREQ(agx_kv_get(l, AGX_LABEL_RUN), agx_run_id());
    CHECK(agx_kv_get(l, AGX_LABEL_CREATE) && strlen(agx_kv_get(l, AGX_LABEL_CREATE)) == 32);
    CHECK(agx_label_unix_ms(agx_kv_get(l, AGX_LABEL_EXPIRES)) > agx_clock_wall_ms());
    CHECK(agx_owner_judge(l, agx_sandbox_info_created_at(info)) == AGX_OWNER_ALIVE);
    agx_sandbox_info_free(info);
    agx_gc_options go;
    agx_gc_options_init(&go);
    go.dry_run = true;
    agx_gc_report rep;
    agx_error err;
    CHECK_OK(agx_gc(dep, &go, &rep, &err), &err);
    CHECK(listed("ownership") == 1); /* kept: its owner is this process */
    destroy(sb);
    nothing_left("ownership");
    agx_sandbox_config_free(cfg);
}

/* A 2 s expiry outlives three of itself while this process extends it in the background (the
 * backend's extend_sandbox, or the runtime's POST /expiry), and an explicit extension works. */
static void scenario_expiry(void)
{
    agx_sandbox_config *cfg = config("expiry");
    CHECK(agx_sandbox_config_set_expiry_ms(cfg, 2000) == 0);
    agx_sandbox *sb = create(cfg);
    agx_clock_sleep_ms(6500);
    char *out = run(sb, "echo still here");
    CHECK_STREQ(out, "still here\n");
    free(out);
    agx_error err;
    CHECK_OK(agx_deployment_extend(dep, sb, 60000, &err), &err);
    agx_sandbox_info *info = get(agx_sandbox_id(sb));
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    int64_t exp = agx_sandbox_info_expires_at(info); /* 0 where a running runtime holds it */
    CHECK(exp == 0 || exp > agx_clock_wall_ms());
    agx_sandbox_info_free(info);
    destroy(sb);
    nothing_left("expiry");
    agx_sandbox_config_free(cfg);
}

/* ---- driver ---- */

static const struct {
    const char *name;
    void (*fn)(void);
} scenarios[] = {
    {"lifecycle", scenario_lifecycle}, {"list", scenario_list},
    {"failed_create", scenario_failed_create}, {"bad_config", scenario_bad_config},
    {"concurrent", scenario_concurrent}, {"calls", scenario_calls},
    {"bundle_path", scenario_bundle_path}, {"ownership", scenario_ownership},
    {"expiry", scenario_expiry},
};

static const contract_fixture *const fixtures[] = {&contract_local, &contract_docker, &contract_e2b,
                                                    &contract_daytona, &contract_k8s, &contract_ns};

/* At exit, also after a failed CHECK: the run's sandboxes are deleted through the backend, so a
 * red run leaves nothing behind. A green run has nothing to sweep. */
static void sweep(void)
{
    if (!dep)
        return;
    agx_kv *want = labels(NULL, NULL, NULL);
    agx_sandbox_list *list = NULL;
    agx_error err;
    if (agx_deployment_list(dep, want, &list, &err) == 0) {
        for (size_t i = 0; i < agx_sandbox_list_count(list); i++) {
            const char *id = agx_sandbox_info_id(agx_sandbox_list_at(list, i));
            fprintf(stderr, "sweep: deleting %s\n", id);
            if (agx_deployment_delete(dep, id, &err) != 0)
                fprintf(stderr, "sweep: %s: %s\n", id, err.message);
        }
        agx_sandbox_list_free(list);
    }
    agx_kv_free(want);
    agx_deployment_free(dep);
    dep = NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    for (size_t i = 0; argc >= 2 && i < sizeof fixtures / sizeof *fixtures; i++)
        if (strcmp(argv[1], fixtures[i]->backend) == 0)
            F = fixtures[i];
    CHECK_MSG(F, "usage: test_contract local|docker|e2b|daytona|k8s-pool|ns [scenario…]");
    unsigned char r[8];
    CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(run_id + 2 * i, "%02x", r[i]);
    fprintf(stderr, "contract: backend %s, run label %s=%s\n", F->backend, CONTRACT_RUN_LABEL,
            run_id);
    F->setup();
    agx_error err;
    CHECK_OK(agx_load_deployment(F->backend, &dep, &err), &err);
    atexit(sweep);
    int ran = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++) {
        int wanted = argc == 2;
        for (int a = 2; a < argc; a++)
            wanted |= strcmp(argv[a], scenarios[i].name) == 0;
        if (!wanted)
            continue;
        fprintf(stderr, "-- %s\n", scenarios[i].name);
        double t0 = now_s();
        scenarios[i].fn();
        fprintf(stderr, "   %s passed in %.2f s\n", scenarios[i].name, now_s() - t0);
        ran++;
    }
    CHECK_MSG(ran == (argc == 2 ? (int)(sizeof scenarios / sizeof *scenarios) : argc - 2),
              "an unknown scenario was named");
    sweep();
    F->teardown();
    fprintf(stderr, "contract: %s passed %d scenarios\n", F->backend, ran);
    return 0;
}
