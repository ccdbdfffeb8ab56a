/* test_records.c — the plain records hosts and backends exchange: agx_kv, agx_sandbox_config,
 * agx_sandbox, agx_sandbox_info and agx_sandbox_list, and the toolkit's table of a backend's own
 * sandboxes, including argument validation. */
#include "check.h"

#include "agentix/backend/table.h"
#include "agentix/deployment.h"

#include <stdlib.h>
#include <string.h>

#include <math.h>

static void test_kv(void)
{
    agx_kv *kv = agx_kv_new();
    CHECK(agx_kv_set(kv, "b", "1") == 0);
    CHECK(agx_kv_set(kv, "a", "2") == 0);
    CHECK(agx_kv_set(kv, "b", "3") == 0); /* replaces, keeps position */
    CHECK(agx_kv_count(kv) == 2);
    CHECK_STREQ(agx_kv_key_at(kv, 0), "b");
    CHECK_STREQ(agx_kv_value_at(kv, 0), "3");
    CHECK_STREQ(agx_kv_get(kv, "a"), "2");
    CHECK(agx_kv_get(kv, "zz") == NULL);
    CHECK(agx_kv_key_at(kv, 2) == NULL);
    CHECK(agx_kv_set(kv, "", "x") == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_kv_set(kv, NULL, "x") == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_kv_set(kv, "k", NULL) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_kv_set(NULL, "k", "v") == AGX_ERR_INVALID_ARGUMENT);
    agx_kv *copy = agx_kv_copy(kv);
    CHECK(agx_kv_remove(kv, "b") == 0);
    CHECK(agx_kv_remove(kv, "b") == AGX_ERR_NOT_FOUND);
    CHECK(agx_kv_count(kv) == 1 && agx_kv_count(copy) == 2);
    CHECK_STREQ(agx_kv_key_at(kv, 0), "a");
    CHECK(agx_kv_count(NULL) == 0);
    agx_kv_free(kv);
    agx_kv_free(copy);
    agx_kv_free(NULL);
}

static void test_config(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(agx_sandbox_config_timeout_ms(cfg) == 120000);
    CHECK(agx_sandbox_config_image(cfg) == NULL);
    CHECK(agx_sandbox_config_set_image(cfg, "debian:12") == 0);
    CHECK(agx_sandbox_config_set_image(cfg, "") == AGX_ERR_INVALID_ARGUMENT);
    CHECK_STREQ(agx_sandbox_config_image(cfg), "debian:12");
    CHECK(agx_sandbox_config_set_bundle(cfg, "agentix-bundle:1") == 0);
    CHECK(agx_sandbox_config_set_platform(cfg, "linux/amd64") == 0);
    CHECK(agx_sandbox_config_set_cpus(cfg, -1) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_config_set_cpus(cfg, NAN) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_config_set_cpus(cfg, 1.5) == 0);
    CHECK(agx_sandbox_config_set_memory(cfg, 1 << 30) == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, -5) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 0) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 5000) == 0);
    CHECK(agx_sandbox_config_set_image(NULL, "x") == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "A", "1") == 0);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "run", "7") == 0);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "docker.network", "none") == 0);
    agx_sandbox_config *copy = agx_sandbox_config_copy(cfg);
    CHECK(agx_sandbox_config_set_image(cfg, NULL) == 0); /* back to the backend default */
    CHECK(agx_sandbox_config_image(cfg) == NULL);
    agx_sandbox_config_free(cfg);
    CHECK_STREQ(agx_sandbox_config_image(copy), "debian:12");
    CHECK_STREQ(agx_sandbox_config_bundle(copy), "agentix-bundle:1");
    CHECK_STREQ(agx_sandbox_config_platform(copy), "linux/amd64");
    CHECK(agx_sandbox_config_cpus(copy) == 1.5);
    CHECK(agx_sandbox_config_memory(copy) == 1u << 30);
    CHECK(agx_sandbox_config_timeout_ms(copy) == 5000);
    CHECK_STREQ(agx_kv_get(agx_sandbox_config_env_const(copy), "A"), "1");
    CHECK_STREQ(agx_kv_get(agx_sandbox_config_labels_const(copy), "run"), "7");
    CHECK_STREQ(agx_kv_get(agx_sandbox_config_options_const(copy), "docker.network"), "none");
    agx_sandbox_config_free(copy);
}

static void test_sandbox(void)
{
    CHECK(agx_sandbox_new("docker", "", "ws://x", NULL) == NULL);
    CHECK(agx_sandbox_new(NULL, "id", "ws://x", NULL) == NULL);
    CHECK(agx_sandbox_new("docker", "id", NULL, NULL) == NULL);
    agx_sandbox *sb = agx_sandbox_new("docker", "c1", "ws://127.0.0.1:1/", NULL);
    CHECK(sb && agx_sandbox_token(sb) == NULL);
    CHECK(agx_kv_set(agx_sandbox_headers(sb), "Authorization", "Bearer t") == 0);
    agx_sandbox *copy = agx_sandbox_copy(sb);
    agx_sandbox_free(sb);
    CHECK_STREQ(agx_sandbox_backend(copy), "docker");
    CHECK_STREQ(agx_sandbox_id(copy), "c1");
    CHECK_STREQ(agx_sandbox_runtime_url(copy), "ws://127.0.0.1:1/");
    CHECK_STREQ(agx_kv_get(agx_sandbox_headers_const(copy), "Authorization"), "Bearer t");
    agx_sandbox_free(copy);
}

static void test_info_and_list(void)
{
    CHECK_STREQ(agx_sandbox_state_name(AGX_SANDBOX_RUNNING), "running");
    CHECK_STREQ(agx_sandbox_state_name(AGX_SANDBOX_GONE), "gone");
    CHECK_STREQ(agx_sandbox_state_name((agx_sandbox_state)42), "unknown");
    CHECK(agx_sandbox_info_new(NULL, AGX_SANDBOX_RUNNING) == NULL);
    CHECK(agx_sandbox_info_new("x", (agx_sandbox_state)42) == NULL);
    agx_sandbox_info *info = agx_sandbox_info_new("c1", AGX_SANDBOX_STOPPED);
    CHECK(agx_sandbox_info_runtime_url(info) == NULL && agx_sandbox_info_detail(info) == NULL);
    CHECK(agx_sandbox_info_set_runtime_url(info, "ws://a") == 0);
    CHECK(agx_sandbox_info_set_detail(info, "exited 0") == 0);
    agx_sandbox_info_set_created_at(info, 1700000000000);
    CHECK(agx_kv_set(agx_sandbox_info_labels(info), "k", "v") == 0);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_STOPPED);
    CHECK_STREQ(agx_sandbox_info_runtime_url(info), "ws://a");
    CHECK_STREQ(agx_sandbox_info_detail(info), "exited 0");
    CHECK(agx_sandbox_info_created_at(info) == 1700000000000);
    agx_sandbox_list *list = agx_sandbox_list_new();
    CHECK(agx_sandbox_list_push(list, info) == 0);
    CHECK(agx_sandbox_list_push(list, NULL) == AGX_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 40; i++)
        CHECK(agx_sandbox_list_push(list, agx_sandbox_info_new("more", AGX_SANDBOX_RUNNING)) == 0);
    CHECK(agx_sandbox_list_count(list) == 41);
    CHECK_STREQ(agx_sandbox_info_id(agx_sandbox_list_at(list, 0)), "c1");
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(agx_sandbox_list_at(list, 0)), "k"), "v");
    CHECK(agx_sandbox_list_at(list, 41) == NULL);
    agx_sandbox_list_free(list);
}

static int freed;
static void item_free(void *item)
{
    freed++;
    free(item);
}

static void count_visit(void *item, void *ctx)
{
    (*(int *)ctx) += *(int *)item;
}

static int *item(int v)
{
    int *p = malloc(sizeof *p);
    CHECK(p);
    *p = v;
    return p;
}

static void test_sandbox_table(void)
{
    freed = 0;
    agx_sandbox_table *t = agx_sandbox_table_new(item_free);
    CHECK(t);
    agx_error err;
    CHECK(agx_sandbox_table_add(t, "a", item(1), &err) == 0);
    CHECK(agx_sandbox_table_add(t, "b", item(2), &err) == 0);
    CHECK(agx_sandbox_table_add(t, "c", item(4), &err) == 0);
    int sum = 0;
    CHECK(agx_sandbox_table_visit(t, "b", count_visit, &sum) == 1 && sum == 2);
    CHECK(agx_sandbox_table_visit(t, "zz", count_visit, &sum) == 0 && sum == 2);
    CHECK(agx_sandbox_table_visit(t, "a", NULL, NULL) == 1);
    int *b = agx_sandbox_table_take(t, "b");
    CHECK(b && *b == 2);
    CHECK(agx_sandbox_table_take(t, "b") == NULL); /* taken: no longer the table's */
    CHECK(agx_sandbox_table_visit(t, "b", NULL, NULL) == 0);
    /* the caller keeps the item a refused add did not take */
    char long_id[300];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CHECK(agx_sandbox_table_add(t, long_id, b, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_table_add(t, "", b, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_table_add(t, NULL, b, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sandbox_table_add(NULL, "b", b, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(freed == 0);
    CHECK(agx_sandbox_table_add(t, "b", b, &err) == 0); /* given back */
    CHECK(agx_sandbox_table_take(NULL, "a") == NULL && agx_sandbox_table_take(t, NULL) == NULL);
    agx_sandbox_table_free(t); /* releases a, b and c */
    CHECK(freed == 3);
    agx_sandbox_table_free(NULL);
}

int main(void)
{
    TEST_RUN(test_kv);
    TEST_RUN(test_config);
    TEST_RUN(test_sandbox);
    TEST_RUN(test_info_and_list);
    TEST_RUN(test_sandbox_table);
    return 0;
}
