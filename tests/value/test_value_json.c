/* test_value_json.c — the JSON codec: round trips, the {"$base64":…} binary form, exact text,
 * values JSON cannot carry, limits, and malformed text. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/value.h"
#include "check.h"
#include "value_samples.h"

static agx_value *parse_ok(const char *text)
{
    agx_error err;
    agx_value *v = NULL;
    CHECK_OK(agx_value_from_json(text, strlen(text), NULL, &v, &err), &err);
    CHECK(v);
    return v;
}

static int parse_rc_n(const char *text, size_t len, const agx_codec_limits *lim)
{
    agx_error err;
    agx_value *v = (agx_value *)1;
    int rc = agx_value_from_json(text, len, lim, &v, &err);
    if (rc) {
        CHECK(v == NULL);
        CHECK(err.code == rc && err.message[0]);
    } else {
        agx_value_free(v);
    }
    return rc;
}

static int parse_rc(const char *text, const agx_codec_limits *lim) { return parse_rc_n(text, strlen(text), lim); }

static char *dump_ok(const agx_value *v)
{
    agx_error err;
    char *s = NULL;
    CHECK_OK(agx_value_to_json(v, &s, &err), &err);
    CHECK(s);
    return s;
}

static int dump_rc(agx_value *v)
{
    agx_error err;
    char *s = (char *)1;
    int rc = agx_value_to_json(v, &s, &err);
    CHECK(rc != 0 ? s == NULL && err.code == rc : s != NULL);
    if (!rc)
        free(s);
    agx_value_free(v);
    return rc;
}

static void expect_text(agx_value *v, const char *want)
{
    char *s = dump_ok(v);
    CHECK_STREQ(s, want);
    agx_value *back = parse_ok(s);
    CHECK(agx_value_equal(v, back));
    agx_value_free(back);
    free(s);
    agx_value_free(v);
}

static void test_roundtrip(void)
{
    agx_value *t = sample_tree(false);
    char *s = dump_ok(t);
    agx_value *back = parse_ok(s);
    CHECK(agx_value_equal(t, back));
    char *again = dump_ok(back);
    CHECK_STREQ(again, s);
    CHECK(signbit(agx_value_get_double(agx_value_map_get(back, "negzero"))));
    CHECK(agx_value_get_int64(agx_value_map_get(back, "i64min")) == INT64_MIN);
    CHECK(agx_value_get_int64(agx_value_map_get(back, "i64max")) == INT64_MAX);
    CHECK(agx_value_get_double(agx_value_map_get(back, "tiny")) == 5e-324);
    size_t n;
    const char *str = agx_value_get_string(agx_value_map_get(back, "nul_str"), &n);
    CHECK(n == 4 && memcmp(str, "a\0b\0", 4) == 0);
    CHECK(agx_value_type_of(agx_value_map_get(back, "big_bin")) == AGX_VALUE_BINARY);
    CHECK(agx_value_type_of(agx_value_map_get(back, "empty_bin")) == AGX_VALUE_BINARY);
    CHECK_STREQ(agx_value_map_key_at(back, 0, NULL), "nil");
    free(again);
    free(s);
    agx_value_free(back);
    agx_value_free(t);

    t = sample_small(false);
    s = dump_ok(t);
    back = parse_ok(s);
    CHECK(agx_value_equal(t, back));
    free(s);
    agx_value_free(back);
    agx_value_free(t);
}

static void test_exact_text(void)
{
    agx_value *m = agx_value_map();
    agx_value_map_set(m, "a", agx_value_int(1));
    agx_value *arr = agx_value_array();
    agx_value_array_push(arr, agx_value_bool(true));
    agx_value_array_push(arr, agx_value_nil());
    agx_value_array_push(arr, agx_value_double(1.5));
    agx_value_array_push(arr, agx_value_string("x\"\n"));
    agx_value_map_set(m, "b", arr);
    agx_value_map_set(m, "bin", agx_value_binary("\x05\x06\x07", 3));
    agx_value_map_set(m, "u", agx_value_uint(5));
    agx_value_map_set(m, "k", agx_value_string_n("\0", 1));
    expect_text(m, "{\"a\":1,\"b\":[true,null,1.5,\"x\\\"\\n\"],\"bin\":{\"$base64\":\"BQYH\"},\"u\":5,"
                   "\"k\":\"\\u0000\"}");
    /* A NUL inside a key is valid JSON and written as such, but jansson cannot read it back. */
    m = agx_value_map();
    agx_value_map_set_n(m, "k\0", 2, agx_value_nil());
    char *s = dump_ok(m);
    CHECK_STREQ(s, "{\"k\\u0000\":null}");
    CHECK(parse_rc(s, NULL) == AGX_ERR_INVALID_ARGUMENT);
    free(s);
    agx_value_free(m);
    expect_text(agx_value_double(1.0), "1.0"); /* stays a double */
    expect_text(agx_value_double(-0.0), "-0.0");
    expect_text(agx_value_double(0.1), "0.10000000000000001");
    expect_text(agx_value_int(INT64_MIN), "-9223372036854775808");
    expect_text(agx_value_string("\xe2\x82\xac"), "\"\xe2\x82\xac\"");
    expect_text(agx_value_array(), "[]");
    expect_text(agx_value_map(), "{}");

    agx_value *v = parse_ok("1");
    CHECK(agx_value_type_of(v) == AGX_VALUE_INT);
    agx_value_free(v);
    v = parse_ok(" 2.0 ");
    CHECK(agx_value_type_of(v) == AGX_VALUE_DOUBLE && agx_value_get_double(v) == 2.0);
    agx_value_free(v);
    v = parse_ok("\"\\ud83d\\ude00\"");
    CHECK_STREQ(agx_value_get_string(v, NULL), "\xf0\x9f\x98\x80");
    agx_value_free(v);
    v = parse_ok("{\"b\":1,\"a\":2,\"b\":3}"); /* duplicate: the last wins */
    CHECK(agx_value_map_len(v) == 2 && agx_value_get_int64(agx_value_map_get(v, "b")) == 3);
    agx_value_free(v);
}

static void test_base64(void)
{
    unsigned char bytes[10];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(0xf0 + i * 3);
    for (size_t n = 0; n <= sizeof bytes; n++) {
        agx_value *b = agx_value_binary(bytes, n);
        char *s = dump_ok(b);
        agx_value *back = parse_ok(s);
        CHECK_MSG(agx_value_equal(b, back), "length %zu: %s", n, s);
        free(s);
        agx_value_free(back);
        agx_value_free(b);
    }
    agx_value *v = parse_ok("{\"$base64\":\"aGVsbG8=\"}");
    size_t n;
    const char *p = agx_value_get_binary(v, &n);
    CHECK(n == 5 && memcmp(p, "hello", 5) == 0);
    agx_value_free(v);
    /* Not the binary form: stays a map. */
    v = parse_ok("{\"$base64\":5}");
    CHECK(agx_value_type_of(v) == AGX_VALUE_MAP);
    agx_value_free(v);
    v = parse_ok("{\"$base64\":\"AA==\",\"x\":1}");
    CHECK(agx_value_type_of(v) == AGX_VALUE_MAP && agx_value_map_len(v) == 2);
    agx_value_free(v);
    const char *bad[] = {"{\"$base64\":\"@@@@\"}", "{\"$base64\":\"abc\"}", "{\"$base64\":\"ab=c\"}",
                         "{\"$base64\":\"====\"}", "{\"$base64\":\"A===\"}", "{\"$base64\":\"aGVs bG8=\"}",
                         "[{\"$base64\":\"a\\u0000==\"}]", "{\"$base64\":\"=AAA\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(parse_rc(bad[i], NULL) == AGX_ERR_INVALID_ARGUMENT, "%s accepted", bad[i]);
}

static void test_unrepresentable(void)
{
    CHECK(dump_rc(agx_value_uint((uint64_t)INT64_MAX + 1)) == AGX_ERR_LIMIT);
    CHECK(dump_rc(agx_value_uint(UINT64_MAX)) == AGX_ERR_LIMIT);
    CHECK(dump_rc(agx_value_double(NAN)) == AGX_ERR_LIMIT);
    CHECK(dump_rc(agx_value_double(INFINITY)) == AGX_ERR_LIMIT);
    CHECK(dump_rc(agx_value_double(-INFINITY)) == AGX_ERR_LIMIT);
    agx_value *m = agx_value_map();
    agx_value *a = agx_value_array();
    agx_value_array_push(a, agx_value_uint(UINT64_MAX));
    agx_value_map_set(m, "x", a);
    CHECK(dump_rc(m) == AGX_ERR_LIMIT); /* nested too, and nothing leaks */
    CHECK(dump_rc(agx_value_uint((uint64_t)INT64_MAX)) == 0);
    CHECK(dump_rc(agx_value_string("\xff")) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(dump_rc(agx_value_string("\xed\xa0\x80")) == AGX_ERR_INVALID_ARGUMENT); /* surrogate */
    CHECK(dump_rc(agx_value_string("\xc0\x80")) == AGX_ERR_INVALID_ARGUMENT);     /* overlong */
    CHECK(dump_rc(agx_value_string("\xe2\x82")) == AGX_ERR_INVALID_ARGUMENT);     /* cut short */
    m = agx_value_map();
    agx_value_map_set(m, "\xfe", agx_value_nil());
    CHECK(dump_rc(m) == AGX_ERR_INVALID_ARGUMENT);
    m = agx_value_map();
    agx_value_map_set(m, "$base64", agx_value_string("AAAA"));
    CHECK(dump_rc(m) == AGX_ERR_INVALID_ARGUMENT); /* would come back as binary */
    m = agx_value_map();
    agx_value_map_set(m, "$base64", agx_value_int(1));
    CHECK(dump_rc(m) == 0);
    agx_value *root = agx_value_array(), *cur = root;
    for (int i = 0; i < 1200; i++) {
        agx_value *next = agx_value_array();
        agx_value_array_push(cur, next);
        cur = next;
    }
    CHECK(dump_rc(root) == AGX_ERR_LIMIT);
    agx_error err;
    CHECK(agx_value_to_json(NULL, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
    char *s = dump_ok(NULL);
    CHECK_STREQ(s, "null");
    free(s);
}

static char *nested_text(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    CHECK(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_limits(void)
{
    char *s = nested_text(64);
    CHECK(parse_rc(s, NULL) == 0);
    free(s);
    s = nested_text(65);
    CHECK(parse_rc(s, NULL) == AGX_ERR_LIMIT);
    free(s);
    s = nested_text(5000); /* beyond jansson's own bound too */
    CHECK(parse_rc(s, NULL) == AGX_ERR_LIMIT);
    agx_codec_limits lim = {.max_depth = 5000, .max_bytes = 0, .max_items = 0};
    CHECK(parse_rc(s, &lim) == AGX_ERR_LIMIT);
    free(s);
    lim = agx_codec_limits_default();
    lim.max_depth = 2;
    CHECK(parse_rc("{\"a\":[1]}", &lim) == 0);
    CHECK(parse_rc("{\"a\":{\"b\":[]}}", &lim) == AGX_ERR_LIMIT);

    lim = agx_codec_limits_default();
    lim.max_bytes = 6;
    CHECK(parse_rc("\"abcd\"", &lim) == 0);
    CHECK(parse_rc("\"abcde\"", &lim) == AGX_ERR_LIMIT);

    lim = agx_codec_limits_default();
    lim.max_items = 7;
    CHECK(parse_rc("[[1,2],[3,4]]", &lim) == 0);
    lim.max_items = 6;
    CHECK(parse_rc("[[1,2],[3,4]]", &lim) == AGX_ERR_LIMIT);
    CHECK(parse_rc("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6}", &lim) == AGX_ERR_LIMIT);
    CHECK(parse_rc("18446744073709551615", NULL) == AGX_ERR_LIMIT);
    CHECK(parse_rc("1e999", NULL) == AGX_ERR_LIMIT);
}

static void test_malformed(void)
{
    const char *bad[] = {"", " ", "{", "[1,]", "nul", "1 2", "{\"a\"}", "{1:2}", "[1,2", "\"abc",
                         "'a'", "{\"a\":1,}", "\"\\x\"", "\"\xff\"", "NaN", "[Infinity]", "01",
                         "\"\\ud800\"", "tru", "{\"a\":1}}", "[\"\x01\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(parse_rc(bad[i], NULL) == AGX_ERR_INVALID_ARGUMENT, "\"%s\" accepted", bad[i]);
    /* Length, not NUL, bounds the text; an embedded NUL outside a string is an error. */
    CHECK(parse_rc_n("[1]xyz", 3, NULL) == 0);
    CHECK(parse_rc_n("[1]\0", 4, NULL) != 0);
    CHECK(parse_rc_n(NULL, 0, NULL) == AGX_ERR_INVALID_ARGUMENT);
    agx_error err;
    CHECK(agx_value_from_json(NULL, 2, NULL, &(agx_value *){NULL}, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_from_json("1", 1, NULL, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);

    /* Every proper prefix of an object is invalid. */
    agx_value *t = sample_small(false);
    char *s = dump_ok(t);
    size_t len = strlen(s);
    for (size_t cut = 0; cut < len; cut++)
        CHECK_MSG(parse_rc_n(s, cut, NULL) != 0, "prefix %zu accepted", cut);
    /* Single-byte mutations never crash. */
    char *m = malloc(len);
    CHECK(m);
    for (size_t i = 0; i < len; i++) {
        static const char subst[] = "{}[]\",:0-e.\\a \x00\xff";
        for (size_t k = 0; k < sizeof subst; k++) {
            memcpy(m, s, len);
            m[i] = subst[k];
            parse_rc_n(m, len, NULL);
        }
    }
    free(m);
    free(s);
    agx_value_free(t);
}

int main(void)
{
    TEST_RUN(test_roundtrip);
    TEST_RUN(test_exact_text);
    TEST_RUN(test_base64);
    TEST_RUN(test_unrepresentable);
    TEST_RUN(test_limits);
    TEST_RUN(test_malformed);
    return 0;
}
