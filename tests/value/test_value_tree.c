/* test_value_tree.c — the value tree itself: constructors, accessors (also on wrong types),
 * container ownership, map replace/take/order with and without the hash index, deep copy/equal. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agentix/value.h"
#include "check.h"
#include "value_samples.h"

static void test_scalars(void)
{
    agx_value *v = agx_value_int(-5);
    CHECK(agx_value_type_of(v) == AGX_VALUE_INT);
    CHECK(agx_value_get_int64(v) == -5);
    CHECK(agx_value_get_uint64(v) == 0); /* negative does not fit */
    CHECK(agx_value_get_double(v) == -5.0);
    agx_value_free(v);

    v = agx_value_uint(UINT64_MAX);
    CHECK(agx_value_get_uint64(v) == UINT64_MAX);
    CHECK(agx_value_get_int64(v) == 0); /* does not fit */
    agx_value_free(v);
    v = agx_value_uint(7);
    CHECK(agx_value_get_int64(v) == 7);
    agx_value_free(v);

    v = agx_value_string_n("a\0b", 3);
    size_t len = 99;
    const char *s = agx_value_get_string(v, &len);
    CHECK(len == 3 && memcmp(s, "a\0b", 4) == 0); /* NUL-terminated too */
    agx_value_free(v);

    v = agx_value_string(NULL);
    CHECK(v && agx_value_type_of(v) == AGX_VALUE_NIL);
    agx_value_free(v);
    CHECK(agx_value_type_of(NULL) == AGX_VALUE_NIL);
    CHECK_STREQ(agx_value_type_name(AGX_VALUE_MAP), "map");
    CHECK_STREQ(agx_value_type_name(AGX_VALUE_UINT), "uint");
    CHECK_STREQ(agx_value_type_name((agx_value_type)99), "unknown");
}

static void test_wrong_type_accessors(void)
{
    agx_value *s = agx_value_string("x");
    agx_value *b = agx_value_bool(true);
    size_t len = 123;
    CHECK(agx_value_get_bool(s) == false);
    CHECK(agx_value_get_int64(s) == 0);
    CHECK(agx_value_get_uint64(b) == 0);
    CHECK(agx_value_get_double(s) == 0.0);
    CHECK(agx_value_get_string(b, &len) == NULL && len == 0);
    len = 5;
    CHECK(agx_value_get_binary(s, &len) == NULL && len == 0);
    CHECK(agx_value_array_len(s) == 0 && agx_value_array_at(s, 0) == NULL);
    CHECK(agx_value_map_len(s) == 0 && agx_value_map_get(s, "x") == NULL);
    CHECK(agx_value_map_key_at(s, 0, &len) == NULL && len == 0);
    CHECK(agx_value_map_value_at(s, 0) == NULL);
    CHECK(agx_value_map_take(s, "x") == NULL);
    CHECK(agx_value_get_bool(NULL) == false && agx_value_get_string(NULL, NULL) == NULL);
    /* Setters on the wrong type fail and still take ownership of the child (valgrind checks). */
    CHECK(agx_value_array_push(s, agx_value_int(1)) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_map_set(b, "k", agx_value_int(1)) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_array_push(NULL, agx_value_int(1)) == AGX_ERR_INVALID_ARGUMENT);
    agx_value *m = agx_value_map();
    CHECK(agx_value_map_set(m, NULL, agx_value_int(1)) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_map_set(m, "k", NULL) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_map_len(m) == 0);
    agx_value *a = agx_value_array();
    CHECK(agx_value_array_at(a, 0) == NULL);
    agx_value_free(a);
    agx_value_free(m);
    agx_value_free(s);
    agx_value_free(b);
}

static void test_map_basics(void)
{
    agx_value *m = agx_value_map();
    CHECK(agx_value_map_set(m, "b", agx_value_int(1)) == 0);
    CHECK(agx_value_map_set(m, "a", agx_value_int(2)) == 0);
    CHECK(agx_value_map_set(m, "b", agx_value_string("replaced")) == 0);
    CHECK(agx_value_map_len(m) == 2);
    size_t kl;
    CHECK_STREQ(agx_value_map_key_at(m, 0, &kl), "b"); /* replace keeps the position */
    CHECK(kl == 1);
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(m, "b"), NULL), "replaced");
    CHECK(agx_value_map_set_n(m, "k\0x", 3, agx_value_int(3)) == 0);
    CHECK(agx_value_map_get(m, "k") == NULL);
    CHECK(agx_value_get_int64(agx_value_map_get_n(m, "k\0x", 3)) == 3);

    agx_value *t = agx_value_map_take(m, "a");
    CHECK(agx_value_get_int64(t) == 2);
    agx_value_free(t);
    CHECK(agx_value_map_take(m, "a") == NULL);
    CHECK(agx_value_map_len(m) == 2);
    CHECK_STREQ(agx_value_map_key_at(m, 1, NULL), "k");
    agx_value_free(m);
}

/* Large maps switch to the hash index; insertion order, replace and take must behave the same. */
static void test_map_large(void)
{
    enum { N = 5000 };
    agx_value *m = agx_value_map();
    char k[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        CHECK(agx_value_map_set(m, k, agx_value_int(i)) == 0);
    }
    for (int i = 0; i < N; i += 7) {
        snprintf(k, sizeof k, "key-%d", i);
        CHECK(agx_value_map_set(m, k, agx_value_int(-i)) == 0);
    }
    CHECK(agx_value_map_len(m) == N);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        CHECK_STREQ(agx_value_map_key_at(m, (size_t)i, NULL), k);
        CHECK(agx_value_get_int64(agx_value_map_get(m, k)) == (i % 7 ? i : -i));
    }
    CHECK(agx_value_map_get(m, "key-5000") == NULL);
    /* Take every other key, from the middle out; the rest stays findable and in order. */
    for (int i = 1; i < N; i += 2) {
        snprintf(k, sizeof k, "key-%d", i);
        agx_value *t = agx_value_map_take(m, k);
        CHECK(t);
        agx_value_free(t);
    }
    CHECK(agx_value_map_len(m) == N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        const agx_value *v = agx_value_map_get(m, k);
        CHECK((i % 2 == 0) == (v != NULL));
    }
    CHECK_STREQ(agx_value_map_key_at(m, 1, NULL), "key-2");
    /* Shrink below the index threshold and grow past it again. */
    while (agx_value_map_len(m) > 3) {
        char key[64];
        snprintf(key, sizeof key, "%s", agx_value_map_key_at(m, 0, NULL));
        agx_value_free(agx_value_map_take(m, key));
    }
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "again-%d", i);
        CHECK(agx_value_map_set(m, k, agx_value_int(i)) == 0);
    }
    CHECK(agx_value_map_len(m) == 43);
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "again-%d", i);
        CHECK(agx_value_get_int64(agx_value_map_get(m, k)) == i);
    }
    CHECK(agx_value_map_get(m, "key-4998") != NULL);
    agx_value_free(m);
}

static void test_copy_equal(void)
{
    agx_value *a = sample_tree(true);
    agx_value *b = agx_value_copy(a);
    CHECK(b && b != a);
    CHECK(agx_value_equal(a, b));
    CHECK(agx_value_map_len(a) == agx_value_map_len(b));
    /* Deep: changing the copy leaves the original alone. */
    agx_value *nested = agx_value_map_take(b, "nested");
    CHECK(!agx_value_equal(a, b));
    CHECK(agx_value_array_push(nested, agx_value_int(1)) == 0);
    CHECK(agx_value_map_set(b, "nested", nested) == 0);
    CHECK(!agx_value_equal(a, b));
    CHECK(agx_value_array_len(agx_value_map_get(a, "nested")) == 3);
    agx_value_free(b);

    /* Map equality ignores order. */
    agx_value *m1 = agx_value_map(), *m2 = agx_value_map();
    agx_value_map_set(m1, "x", agx_value_int(1));
    agx_value_map_set(m1, "y", agx_value_int(2));
    agx_value_map_set(m2, "y", agx_value_int(2));
    agx_value_map_set(m2, "x", agx_value_uint(1)); /* INT 1 == UINT 1 */
    CHECK(agx_value_equal(m1, m2));
    agx_value_map_set(m2, "x", agx_value_double(1.0)); /* but not a double */
    CHECK(!agx_value_equal(m1, m2));
    agx_value_free(m1);
    agx_value_free(m2);

    agx_value *n1 = agx_value_double(NAN), *n2 = agx_value_double(NAN);
    CHECK(!agx_value_equal(n1, n2));
    agx_value *z1 = agx_value_int(-1), *z2 = agx_value_uint(UINT64_MAX);
    CHECK(!agx_value_equal(z1, z2));
    CHECK(agx_value_equal(NULL, NULL));
    agx_value *s1 = agx_value_string("ab"), *s2 = agx_value_binary("ab", 2);
    CHECK(!agx_value_equal(s1, s2));
    agx_value_free(n1);
    agx_value_free(n2);
    agx_value_free(z1);
    agx_value_free(z2);
    agx_value_free(s1);
    agx_value_free(s2);
    CHECK(agx_value_copy(NULL) == NULL);
    agx_value_free(a);
}

static void test_buf(void)
{
    agx_buf b = {0};
    CHECK(agx_buf_append(&b, "abc", 3) == 0);
    CHECK(agx_buf_append(&b, NULL, 0) == 0);
    CHECK(agx_buf_append(&b, NULL, 1) == AGX_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 1000; i++)
        CHECK(agx_buf_append(&b, "0123456789", 10) == 0);
    CHECK(b.len == 10003 && b.cap >= b.len && memcmp(b.data, "abc0123", 7) == 0);
    CHECK(agx_buf_reserve(&b, SIZE_MAX) == AGX_ERR_NO_MEMORY);
    CHECK(b.len == 10003);
    agx_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    agx_buf_free(&b);
}

/* A buffer becomes a value of the bytes at its end: no copy, the value's bytes are the buffer's;
 * spans outside it are refused; freed buffers (large or small) come back usable. */
static void test_buffer_adopt(void)
{
    for (size_t cap = 100; cap <= ((size_t)300 << 10); cap *= 50) {
        for (int round = 0; round < 3; round++) { /* later rounds reuse recycled blocks */
            unsigned char *buf = agx_value_buffer_alloc(cap);
            CHECK(buf != NULL);
            for (size_t i = 0; i < cap; i++)
                buf[i] = (unsigned char)(i * 7 + 1);
            CHECK(agx_value_buffer_adopt(buf, cap, AGX_VALUE_BINARY, buf + 1, cap) == NULL);
            CHECK(agx_value_buffer_adopt(buf, cap, AGX_VALUE_BINARY, buf - 1, 2) == NULL);
            CHECK(agx_value_buffer_adopt(buf, cap, AGX_VALUE_INT, buf, 1) == NULL);
            agx_value *v = agx_value_buffer_adopt(buf, cap, AGX_VALUE_BINARY, buf + 10, cap - 10);
            CHECK(v != NULL);
            size_t len = 0;
            const unsigned char *b = agx_value_get_binary(v, &len);
            CHECK(b == buf + 10 && len == cap - 10 && b[0] == (unsigned char)(10 * 7 + 1));
            agx_value *copy = agx_value_copy(v);
            CHECK(agx_value_equal(v, copy));
            agx_value_free(copy);
            agx_value_free(v);
            /* a string gets its NUL in the spare byte past cap */
            buf = agx_value_buffer_alloc(cap);
            CHECK(buf != NULL);
            memset(buf, 'x', cap);
            v = agx_value_buffer_adopt(buf, cap, AGX_VALUE_STRING, buf + cap - 3, 3);
            const char *s = agx_value_get_string(v, &len);
            CHECK(s && len == 3 && strcmp(s, "xxx") == 0);
            agx_value_free(v);
            buf = agx_value_buffer_alloc(cap);
            CHECK(buf != NULL);
            agx_value_buffer_free(buf, cap);
        }
    }
    agx_value_buffer_free(NULL, 0);
    CHECK(agx_value_buffer_alloc(SIZE_MAX) == NULL);
}

int main(void)
{
    TEST_RUN(test_scalars);
    TEST_RUN(test_wrong_type_accessors);
    TEST_RUN(test_map_basics);
    TEST_RUN(test_map_large);
    TEST_RUN(test_copy_equal);
    TEST_RUN(test_buf);
    TEST_RUN(test_buffer_adopt);
    return 0;
}
