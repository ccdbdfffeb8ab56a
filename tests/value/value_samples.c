/* value_samples.c — sample trees and hex helpers for the value tests. */
#include "value_samples.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void put(agx_value *m, const char *k, agx_value *v) { CHECK(agx_value_map_set(m, k, v) == 0); }

agx_value *sample_tree(bool with_big_uint)
{
    agx_value *m = agx_value_map();
    CHECK(m);
    put(m, "nil", agx_value_nil());
    put(m, "true", agx_value_bool(true));
    put(m, "false", agx_value_bool(false));
    put(m, "zero", agx_value_int(0));
    put(m, "small", agx_value_int(127));
    put(m, "neg", agx_value_int(-33));
    put(m, "i64min", agx_value_int(INT64_MIN));
    put(m, "i64max", agx_value_int(INT64_MAX));
    put(m, "u32", agx_value_uint(4294967295u));
    if (with_big_uint)
        put(m, "u64max", agx_value_uint(UINT64_MAX));
    put(m, "pi", agx_value_double(3.141592653589793));
    put(m, "negzero", agx_value_double(-0.0));
    put(m, "tiny", agx_value_double(5e-324));
    put(m, "empty_str", agx_value_string(""));
    put(m, "nul_str", agx_value_string_n("a\0b\0", 4));
    put(m, "utf8", agx_value_string("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
    put(m, "empty_bin", agx_value_binary("", 0));
    size_t big = 64 * 1024;
    unsigned char *bytes = malloc(big);
    CHECK(bytes);
    for (size_t i = 0; i < big; i++)
        bytes[i] = (unsigned char)(i * 31 + 7);
    put(m, "big_bin", agx_value_binary(bytes, big));
    char *s = malloc(70000 + 1);
    CHECK(s);
    for (size_t i = 0; i < 70000; i++)
        s[i] = (char)('a' + i % 26);
    s[70000] = '\0';
    put(m, "big_str", agx_value_string(s));
    free(s);
    free(bytes);
    put(m, "empty_arr", agx_value_array());
    put(m, "empty_map", agx_value_map());
    agx_value *nested = agx_value_array();
    agx_value *inner = agx_value_map();
    agx_value *deep = agx_value_array();
    CHECK(agx_value_array_push(deep, agx_value_int(-1)) == 0);
    CHECK(agx_value_array_push(deep, agx_value_array()) == 0);
    put(inner, "deep", deep);
    put(inner, "", agx_value_string("empty key"));
    CHECK(agx_value_array_push(nested, inner) == 0);
    CHECK(agx_value_array_push(nested, agx_value_nil()) == 0);
    CHECK(agx_value_array_push(nested, agx_value_binary("\x00\x01\x02", 3)) == 0);
    put(m, "nested", nested);
    agx_value *wide = agx_value_map();
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        put(wide, k, agx_value_int(i * 1000));
    }
    put(m, "wide", wide);
    agx_value *long_arr = agx_value_array();
    for (int i = 0; i < 70000; i++)
        CHECK(agx_value_array_push(long_arr, agx_value_int(i % 300 - 150)) == 0);
    put(m, "long_arr", long_arr);
    return m;
}

agx_value *sample_small(bool with_big_uint)
{
    agx_value *m = agx_value_map();
    CHECK(m);
    put(m, "n", agx_value_nil());
    put(m, "b", agx_value_bool(true));
    put(m, "i", agx_value_int(-200));
    put(m, "i64", agx_value_int(INT64_MIN));
    put(m, "u", agx_value_uint(with_big_uint ? UINT64_MAX : 70000));
    put(m, "d", agx_value_double(-0.0));
    put(m, "s", agx_value_string_n("x\0y", 3));
    put(m, "bin", agx_value_binary("\x05\x06\x07\x00", 4));
    agx_value *a = agx_value_array();
    CHECK(agx_value_array_push(a, agx_value_map()) == 0);
    CHECK(agx_value_array_push(a, agx_value_array()) == 0);
    CHECK(agx_value_array_push(a, agx_value_double(2.5)) == 0);
    put(m, "a", a);
    return m;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t sample_hex(const char *hex, unsigned char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        if (*p == '"') { /* quoted text is copied byte for byte, as the reference notes write frames */
            for (p++; *p && *p != '"'; p++) {
                CHECK(n < cap);
                buf[n++] = (unsigned char)*p;
            }
            CHECK(*p == '"');
            p++;
            continue;
        }
        int hi = nibble(p[0]), lo = p[1] ? nibble(p[1]) : -1;
        CHECK_MSG(hi >= 0 && lo >= 0, "bad hex near \"%s\"", p);
        CHECK(n < cap);
        buf[n++] = (unsigned char)(hi << 4 | lo);
        p += 2;
    }
    return n;
}
