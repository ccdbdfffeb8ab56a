/* test_discovery.c — plugin discovery end to end: manifests on $AGENTIX_PLUGIN_PATH → dlopen →
 * ABI check → construct → the agx_deployment_* wrappers, and every way that can go wrong. */
#include "check.h"

#include "agentix/plugin.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void use_path(const char *path)
{
    CHECK(setenv("AGENTIX_PLUGIN_PATH", path, 1) == 0);
}

static int load_fails(const char *name, int code, agx_error *err)
{
    agx_deployment *dep = (agx_deployment *)1;
    int rc = agx_load_deployment(name, &dep, err);
    CHECK_MSG(rc == code, "load %s: got %s (%s), want %s", name, agx_error_code_name(rc),
              err->message, agx_error_code_name(code));
    CHECK(err->code == code);
    CHECK(dep == NULL);
    return rc;
}

static void test_good_round_trip(void)
{
    use_path(AGX_TEST_PA);
    agx_error err;
    agx_deployment *dep = NULL;
    CHECK_OK(agx_load_deployment("tgood", &dep, &err), &err);
    CHECK_STREQ(agx_deployment_name(dep), "tgood");

    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "run", "r1") == 0);
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_STREQ(agx_sandbox_backend(sb), "tgood");
    CHECK_STREQ(agx_sandbox_token(sb), "secret");
    CHECK(strncmp(agx_sandbox_id(sb), "tgood-", 6) == 0);

    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), "run"), "r1");
    agx_sandbox_info_free(info);

    agx_kv *want = agx_kv_new();
    agx_kv_set(want, "run", "r1");
    agx_sandbox_list *list = NULL;
    CHECK_OK(agx_deployment_list(dep, want, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1);
    CHECK_STREQ(agx_sandbox_info_id(agx_sandbox_list_at(list, 0)), agx_sandbox_id(sb));
    agx_sandbox_list_free(list);
    agx_kv_set(want, "run", "other");
    CHECK_OK(agx_deployment_list(dep, want, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0);
    agx_sandbox_list_free(list);
    agx_kv_free(want);

    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    CHECK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err) == AGX_ERR_NOT_FOUND);
    CHECK(info == NULL);
    CHECK_CONTAINS(err.message, "no sandbox");
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err); /* already gone */

    /* The wrappers refuse bad arguments before the backend sees them. */
    agx_sandbox *none = NULL;
    CHECK(agx_deployment_create(dep, NULL, &none, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_deployment_delete(dep, "", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_deployment_get(dep, NULL, &info, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_deployment_list(NULL, NULL, &list, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_deployment *d2 = NULL;
    CHECK(agx_load_deployment("bad name/../x", &d2, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_load_deployment(NULL, &d2, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_load_deployment("tgood", NULL, &err) == AGX_ERR_INVALID_ARGUMENT);

    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
}

static void test_unknown_lists_available(void)
{
    use_path(AGX_TEST_PA);
    agx_error err;
    load_fails("nope", AGX_ERR_NOT_FOUND, &err);
    CHECK_CONTAINS(err.message, "no deployment backend 'nope'");
    CHECK_CONTAINS(err.message, "available: ");
    CHECK_CONTAINS(err.message, "tgood");
    CHECK_CONTAINS(err.message, "tabi");
    CHECK_CONTAINS(err.detail, "searched: " AGX_TEST_PA);
    CHECK_CONTAINS(err.detail, AGX_TEST_BUILD_PLUGINDIR);
    CHECK_CONTAINS(err.detail, "broken.agxplugin:1:"); /* the unreadable manifest is named */
}

static void test_conflict(void)
{
    use_path(AGX_TEST_PB ":" AGX_TEST_PC);
    agx_error err;
    load_fails("tdup", AGX_ERR_CONFLICT, &err);
    CHECK_CONTAINS(err.message, AGX_TEST_PB "/dup.agxplugin");
    CHECK_CONTAINS(err.message, AGX_TEST_PC "/dup.agxplugin");
    /* The conflict concerns one name only: tb beside it still loads. */
    agx_deployment *dep = NULL;
    CHECK_OK(agx_load_deployment("tb", &dep, &err), &err);
    agx_deployment_free(dep);
    /* Listing one folder twice is not a conflict. */
    use_path(AGX_TEST_PB ":" AGX_TEST_PB "/.");
    CHECK(agx_load_deployment("tdup", &dep, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "calls itself 'tgood'"); /* got past the conflict check */
}

static void test_broken_plugins(void)
{
    use_path(AGX_TEST_PA);
    agx_error err;
    load_fails("tnolib", AGX_ERR_NOT_FOUND, &err);
    CHECK_CONTAINS(err.message, "backend 'tnolib'");
    CHECK_CONTAINS(err.message, AGX_TEST_PA "/libagxtest-missing.so does not exist");

    load_fails("tnosym", AGX_ERR_NOT_FOUND, &err);
    CHECK_CONTAINS(err.message, "symbol 'agx_no_such_entry' not found");

    load_fails("tnotelf", AGX_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "backend 'tnotelf': cannot load " AGX_TEST_PA "/notelf.so");

    load_fails("tabi", AGX_ERR_ABI, &err);
    CHECK_CONTAINS(err.message, "backend 'tabi' was built for backend ABI 999");

    load_fails("tmismatch", AGX_ERR_INVALID_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "calls itself 'tgood'");

    load_fails("tbroken", AGX_ERR_INVALID_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "zz-named.agxplugin");
    CHECK_CONTAINS(err.message, "'symbol' is missing");

    CHECK(unsetenv("AGX_TEST_BACKEND_TOKEN") == 0);
    load_fails("tctor", AGX_ERR_INVALID_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "backend 'tctor': AGX_TEST_BACKEND_TOKEN is not set");
    CHECK(setenv("AGX_TEST_BACKEND_TOKEN", "x", 1) == 0);
    agx_deployment *dep = NULL;
    CHECK_OK(agx_load_deployment("tctor", &dep, &err), &err);
    agx_deployment_free(dep);

    /* None of the broken ones stops the good one. */
    CHECK_OK(agx_load_deployment("tgood", &dep, &err), &err);
    agx_deployment_free(dep);
}

static long report_find(const agx_plugin_report *r, const char *name)
{
    for (size_t i = 0; i < agx_plugin_report_count(r); i++)
        if (strcmp(agx_plugin_report_name(r, i), name) == 0)
            return (long)i;
    return -1;
}

static void test_report(void)
{
    use_path(AGX_TEST_PA);
    agx_error err;
    agx_plugin_report *r = NULL;
    CHECK_OK(agx_plugin_report_scan(&r, &err), &err);
    const char *msg = NULL;
    long good = report_find(r, "tgood");
    CHECK(good >= 0);
    CHECK(agx_plugin_report_status(r, (size_t)good, &msg) == 0);
    CHECK_STREQ(agx_plugin_report_manifest(r, (size_t)good), AGX_TEST_PA "/good.agxplugin");
    CHECK_STREQ(agx_plugin_report_library(r, (size_t)good), AGX_TEST_PA "/libagxtest-good.so");
    long abi = report_find(r, "tabi");
    CHECK(abi >= 0);
    CHECK(agx_plugin_report_status(r, (size_t)abi, &msg) == AGX_ERR_ABI);
    CHECK_CONTAINS(msg, "ABI 999");
    long unnamed = report_find(r, "");
    CHECK(unnamed >= 0);
    CHECK(agx_plugin_report_status(r, (size_t)unnamed, &msg) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "broken.agxplugin:1: expected 'key = value'");
    /* Reporting never constructs: tctor loads even without its variable. */
    CHECK(unsetenv("AGX_TEST_BACKEND_TOKEN") == 0);
    agx_plugin_report_free(r);
    CHECK_OK(agx_plugin_report_scan(&r, &err), &err);
    long ctor = report_find(r, "tctor");
    CHECK(ctor >= 0 && agx_plugin_report_status(r, (size_t)ctor, &msg) == 0);
    agx_plugin_report_free(r);
}

/* The index of the first report entry whose manifest lives in dir. */
static long first_in(const agx_plugin_report *r, const char *dir)
{
    for (size_t i = 0; i < agx_plugin_report_count(r); i++)
        if (strncmp(agx_plugin_report_manifest(r, i), dir, strlen(dir)) == 0)
            return (long)i;
    return -1;
}

static void test_search_order(void)
{
    agx_error err;
    agx_plugin_report *r = NULL;
    use_path(AGX_TEST_PB ":" AGX_TEST_PA);
    CHECK_OK(agx_plugin_report_scan(&r, &err), &err);
    const char *sp = agx_plugin_report_search_path(r);
    CHECK(strncmp(sp, AGX_TEST_PB ":" AGX_TEST_PA ":" AGX_TEST_BUILD_PLUGINDIR,
                  strlen(AGX_TEST_PB ":" AGX_TEST_PA ":" AGX_TEST_BUILD_PLUGINDIR)) == 0);
    long b = first_in(r, AGX_TEST_PB), a = first_in(r, AGX_TEST_PA);
    long built = first_in(r, AGX_TEST_BUILD_PLUGINDIR);
    CHECK(b >= 0 && a > b);
    CHECK(built < 0 || built > a);
    agx_plugin_report_free(r);

    use_path(AGX_TEST_PA "::" AGX_TEST_PB); /* empty components are skipped */
    CHECK_OK(agx_plugin_report_scan(&r, &err), &err);
    CHECK(strncmp(agx_plugin_report_search_path(r), AGX_TEST_PA ":" AGX_TEST_PB ":",
                  strlen(AGX_TEST_PA ":" AGX_TEST_PB ":")) == 0);
    CHECK(first_in(r, AGX_TEST_PA) < first_in(r, AGX_TEST_PB));
    agx_plugin_report_free(r);
}

/* ---- in-process registration ---- */
static int ip_construct(void **self, agx_error *err)
{
    *self = NULL;
    return 0;
}
static int ip_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    *out = agx_sandbox_new("tgood", "inproc-1", "ws://127.0.0.1:9/", NULL);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "oom");
}
static int ip_delete(void *self, const char *id, agx_error *err)
{
    return 0;
}
static int ip_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    return AGX_ERR_NOT_FOUND; /* deliberately without a message: the wrapper must add one */
}
static const agx_backend_vtable ip_vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "tgood",
    .construct = ip_construct,
    .create_sandbox = ip_create,
    .delete_sandbox = ip_delete,
    .get_sandbox = ip_get,
};

static const char *create_id(agx_deployment *dep, char *buf, size_t n)
{
    agx_error err;
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    snprintf(buf, n, "%s", agx_sandbox_id(sb));
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    return buf;
}

static void test_inprocess_override(void)
{
    use_path(AGX_TEST_PA);
    agx_error err;
    char id[64];
    CHECK_OK(agx_register_deployment(&ip_vtable, &err), &err);
    agx_deployment *dep = NULL;
    CHECK_OK(agx_load_deployment("tgood", &dep, &err), &err);
    CHECK_STREQ(create_id(dep, id, sizeof id), "inproc-1");
    agx_sandbox_info *info = NULL;
    CHECK(agx_deployment_get(dep, "x", &info, &err) == AGX_ERR_NOT_FOUND);
    CHECK_CONTAINS(err.message, "backend 'tgood': get failed (NOT_FOUND) without an error message");
    agx_sandbox_list *list = NULL;
    CHECK(agx_deployment_list(dep, NULL, &list, &err) == AGX_ERR_UNSUPPORTED);
    agx_deployment_free(dep);

    agx_plugin_report *r = NULL;
    CHECK_OK(agx_plugin_report_scan(&r, &err), &err);
    CHECK_STREQ(agx_plugin_report_name(r, 0), "tgood");
    CHECK_STREQ(agx_plugin_report_manifest(r, 0), "(in-process)");
    agx_plugin_report_free(r);

    CHECK_OK(agx_unregister_deployment("tgood", &err), &err);
    CHECK(agx_unregister_deployment("tgood", &err) == AGX_ERR_NOT_FOUND);
    CHECK_OK(agx_load_deployment("tgood", &dep, &err), &err);
    CHECK(strncmp(create_id(dep, id, sizeof id), "tgood-", 6) == 0);
    agx_deployment_free(dep);

    agx_backend_vtable bad = ip_vtable;
    bad.abi_version = 7;
    CHECK(agx_register_deployment(&bad, &err) == AGX_ERR_ABI);
    bad = ip_vtable;
    bad.create_sandbox = NULL;
    CHECK(agx_register_deployment(&bad, &err) == AGX_ERR_ABI);
    CHECK_CONTAINS(err.message, "create_sandbox");
    bad = ip_vtable;
    bad.name = "no spaces allowed";
    CHECK(agx_register_deployment(&bad, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_register_deployment(NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
}

/* ---- many threads loading at once ---- */
#define THREADS 8
#define ROUNDS 20

static void *load_many(void *arg)
{
    long failures = 0;
    for (int i = 0; i < ROUNDS; i++) {
        agx_error err;
        agx_deployment *dep = NULL;
        if (agx_load_deployment(i % 2 ? "tgood" : "tb", &dep, &err) != 0) {
            fprintf(stderr, "thread load failed: %s\n", err.message);
            failures++;
            continue;
        }
        agx_sandbox_config *cfg = agx_sandbox_config_new();
        agx_sandbox *sb = NULL;
        if (agx_deployment_create(dep, cfg, &sb, &err) != 0 ||
            agx_deployment_delete(dep, agx_sandbox_id(sb), &err) != 0)
            failures++;
        agx_sandbox_free(sb);
        agx_sandbox_config_free(cfg);
        agx_deployment_free(dep);
        if (agx_load_deployment("nope", &dep, &err) != AGX_ERR_NOT_FOUND)
            failures++;
    }
    return (void *)failures;
}

static void test_concurrent_loads(void)
{
    use_path(AGX_TEST_PA ":" AGX_TEST_PB);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, load_many, NULL) == 0);
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        CHECK(pthread_join(t[i], &ret) == 0);
        failures += (long)ret;
    }
    CHECK_MSG(failures == 0, "%ld failures", failures);
}

int main(void)
{
    TEST_RUN(test_good_round_trip);
    TEST_RUN(test_unknown_lists_available);
    TEST_RUN(test_conflict);
    TEST_RUN(test_broken_plugins);
    TEST_RUN(test_report);
    TEST_RUN(test_search_order);
    TEST_RUN(test_inprocess_override);
    TEST_RUN(test_concurrent_loads);
    return 0;
}
