/* test_value_msgpack.c — the msgpack codec: round trips of every type, the exact (smallest) wire
 * forms, the Socket.IO msgpack-parser frames JS peers send, limits, and malformed input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/value.h"
#include "check.h"
#include "value_samples.h"

static agx_value *decode_ok(const void *data, size_t len)
{
    agx_error err;
    agx_value *v = NULL;
    CHECK_OK(agx_value_from_msgpack(data, len, NULL, &v, &err), &err);
    CHECK(v);
    return v;
}

static int decode_rc(const void *data, size_t len, const agx_codec_limits *lim)
{
    agx_error err;
    agx_value *v = (agx_value *)1;
    int rc = agx_value_from_msgpack(data, len, lim, &v, &err);
    if (rc) {
        CHECK(v == NULL);
        CHECK(err.code == rc && err.message[0]);
    } else {
        agx_value_free(v);
    }
    return rc;
}

static void roundtrip(agx_value *v)
{
    agx_error err;
    void *bytes;
    size_t len;
    CHECK_OK(agx_value_to_msgpack(v, &bytes, &len, &err), &err);
    agx_value *back = decode_ok(bytes, len);
    CHECK(agx_value_equal(v, back));
    /* Re-encoding the decoded tree gives the same bytes. */
    void *again;
    size_t again_len;
    CHECK_OK(agx_value_to_msgpack(back, &again, &again_len, &err), &err);
    CHECK(again_len == len && memcmp(again, bytes, len) == 0);
    free(again);
    free(bytes);
    agx_value_free(back);
}

static void test_roundtrip_all_types(void)
{
    agx_value *t = sample_tree(true);
    roundtrip(t);
    agx_error err;
    void *bytes;
    size_t len;
    CHECK_OK(agx_value_to_msgpack(t, &bytes, &len, &err), &err);
    agx_value *back = decode_ok(bytes, len);
    free(bytes);
    CHECK(signbit(agx_value_get_double(agx_value_map_get(back, "negzero"))));
    CHECK(agx_value_type_of(agx_value_map_get(back, "u64max")) == AGX_VALUE_UINT);
    CHECK(agx_value_get_uint64(agx_value_map_get(back, "u64max")) == UINT64_MAX);
    CHECK(agx_value_get_int64(agx_value_map_get(back, "i64min")) == INT64_MIN);
    CHECK(agx_value_type_of(agx_value_map_get(back, "u32")) == AGX_VALUE_INT); /* fits int64 */
    size_t n;
    const char *s = agx_value_get_string(agx_value_map_get(back, "nul_str"), &n);
    CHECK(n == 4 && memcmp(s, "a\0b\0", 4) == 0);
    const unsigned char *bin = agx_value_get_binary(agx_value_map_get(back, "big_bin"), &n);
    CHECK(n == 64 * 1024 && bin[1000] == (unsigned char)(1000 * 31 + 7));
    /* Insertion order survives. */
    CHECK_STREQ(agx_value_map_key_at(back, 0, NULL), "nil");
    CHECK_STREQ(agx_value_map_key_at(back, agx_value_map_len(back) - 1, NULL), "long_arr");
    agx_value_free(back);
    agx_value_free(t);

    agx_value *scalars[] = {agx_value_nil(), agx_value_bool(false), agx_value_int(0),
                            agx_value_double(-0.0), agx_value_double(INFINITY),
                            agx_value_string(""), agx_value_binary(NULL, 0), agx_value_array(), agx_value_map()};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        roundtrip(scalars[i]);
        agx_value_free(scalars[i]);
    }
}

/* Encodes v and compares with the expected hex; decodes the bytes back to an equal value. */
static void expect_bytes(agx_value *v, const char *hex)
{
    unsigned char want[256];
    size_t want_len = sample_hex(hex, want, sizeof want);
    agx_error err;
    void *got;
    size_t got_len;
    CHECK_OK(agx_value_to_msgpack(v, &got, &got_len, &err), &err);
    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        fprintf(stderr, "expected %s, got", hex);
        for (size_t i = 0; i < got_len && i < 64; i++)
            fprintf(stderr, " %02x", ((unsigned char *)got)[i]);
        fputc('\n', stderr);
        CHECK(!"encoding differs");
    }
    agx_value *back = decode_ok(got, got_len);
    CHECK(agx_value_equal(v, back));
    free(got);
    agx_value_free(back);
    agx_value_free(v);
}

static void test_smallest_forms(void)
{
    expect_bytes(agx_value_int(0), "00");
    expect_bytes(agx_value_int(127), "7f");
    expect_bytes(agx_value_int(128), "cc 80");
    expect_bytes(agx_value_int(255), "cc ff");
    expect_bytes(agx_value_int(256), "cd 01 00");
    expect_bytes(agx_value_int(65535), "cd ff ff");
    expect_bytes(agx_value_int(65536), "ce 00 01 00 00");
    expect_bytes(agx_value_int(4294967295), "ce ff ff ff ff");
    expect_bytes(agx_value_int(4294967296), "cf 00 00 00 01 00 00 00 00");
    expect_bytes(agx_value_int(INT64_MAX), "cf 7f ff ff ff ff ff ff ff");
    expect_bytes(agx_value_int(-1), "ff");
    expect_bytes(agx_value_int(-32), "e0");
    expect_bytes(agx_value_int(-33), "d0 df");
    expect_bytes(agx_value_int(-128), "d0 80");
    expect_bytes(agx_value_int(-129), "d1 ff 7f");
    expect_bytes(agx_value_int(-32768), "d1 80 00");
    expect_bytes(agx_value_int(-32769), "d2 ff ff 7f ff");
    expect_bytes(agx_value_int(INT32_MIN), "d2 80 00 00 00");
    expect_bytes(agx_value_int((int64_t)INT32_MIN - 1), "d3 ff ff ff ff 7f ff ff ff");
    expect_bytes(agx_value_int(INT64_MIN), "d3 80 00 00 00 00 00 00 00");
    expect_bytes(agx_value_uint(5), "05");
    expect_bytes(agx_value_uint(300), "cd 01 2c");
    expect_bytes(agx_value_uint(UINT64_MAX), "cf ff ff ff ff ff ff ff ff");
    expect_bytes(agx_value_nil(), "c0");
    expect_bytes(agx_value_bool(true), "c3");
    expect_bytes(agx_value_bool(false), "c2");
    expect_bytes(agx_value_double(1.5), "cb 3f f8 00 00 00 00 00 00");
    expect_bytes(agx_value_double(-0.0), "cb 80 00 00 00 00 00 00 00");
    expect_bytes(agx_value_string(""), "a0");
    expect_bytes(agx_value_string("abc"), "a3\"abc\"");
    expect_bytes(agx_value_binary("\x05\x06\x07", 3), "c4 03 05 06 07");
    expect_bytes(agx_value_array(), "90");
    expect_bytes(agx_value_map(), "80");

    /* Length boundaries of str, bin, array and map: check the header bytes. */
    struct {
        agx_value_type type;
        size_t n;
        const char *head;
    } cases[] = {
        {AGX_VALUE_STRING, 31, "bf"},          {AGX_VALUE_STRING, 32, "d9 20"},
        {AGX_VALUE_STRING, 255, "d9 ff"},      {AGX_VALUE_STRING, 256, "da 01 00"},
        {AGX_VALUE_STRING, 65536, "db 00 01 00 00"},
        {AGX_VALUE_BINARY, 255, "c4 ff"},      {AGX_VALUE_BINARY, 256, "c5 01 00"},
        {AGX_VALUE_BINARY, 65536, "c6 00 01 00 00"},
        {AGX_VALUE_ARRAY, 15, "9f"},           {AGX_VALUE_ARRAY, 16, "dc 00 10"},
        {AGX_VALUE_ARRAY, 65536, "dd 00 01 00 00"},
        {AGX_VALUE_MAP, 15, "8f"},             {AGX_VALUE_MAP, 16, "de 00 10"},
        {AGX_VALUE_MAP, 65536, "df 00 01 00 00"},
    };
    char *fill = calloc(1, 65536);
    CHECK(fill);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        agx_value *v;
        size_t n = cases[c].n;
        if (cases[c].type == AGX_VALUE_STRING) {
            v = agx_value_string_n(fill, n);
        } else if (cases[c].type == AGX_VALUE_BINARY) {
            v = agx_value_binary(fill, n);
        } else if (cases[c].type == AGX_VALUE_ARRAY) {
            v = agx_value_array();
            for (size_t i = 0; i < n; i++)
                CHECK(agx_value_array_push(v, agx_value_nil()) == 0);
        } else {
            v = agx_value_map();
            for (size_t i = 0; i < n; i++) {
                char k[24];
                snprintf(k, sizeof k, "%zu", i);
                CHECK(agx_value_map_set(v, k, agx_value_nil()) == 0);
            }
        }
        unsigned char head[8];
        size_t head_len = sample_hex(cases[c].head, head, sizeof head);
        agx_buf b = {0};
        agx_error err;
        CHECK_OK(agx_value_pack_into(v, &b, &err), &err);
        CHECK_MSG(b.len > head_len && memcmp(b.data, head, head_len) == 0, "case %zu (%s)", c, cases[c].head);
        agx_value *back = decode_ok(b.data, b.len);
        CHECK(agx_value_equal(v, back));
        agx_value_free(back);
        agx_buf_free(&b);
        agx_value_free(v);
    }
    free(fill);
}

static void test_socketio_frames(void)
{
    unsigned char buf[256];
    /* client CONNECT from socket.io-msgpack-parser: data is JS undefined (fixext1 type 0). */
    size_t n = sample_hex("83 a4\"type\" 00 a4\"data\" d4 00 00 a3\"nsp\" a1\"/\"", buf, sizeof buf);
    agx_value *v = decode_ok(buf, n);
    CHECK(agx_value_map_len(v) == 3);
    CHECK(agx_value_type_of(agx_value_map_get(v, "type")) == AGX_VALUE_INT);
    CHECK(agx_value_get_int64(agx_value_map_get(v, "type")) == 0);
    const agx_value *data = agx_value_map_get(v, "data");
    CHECK(data && agx_value_type_of(data) == AGX_VALUE_NIL); /* present, nil */
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(v, "nsp"), NULL), "/");
    agx_value_free(v);

    /* server CONNECT {type:0,data:{sid,pid:undefined},nsp:"/"}. */
    n = sample_hex("83 a4\"type\" 00 a4\"data\" 82 a3\"sid\" b4\"yeQOowD2HagcKUiSAAAA\" a3\"pid\" d4 00 00 "
                   "a3\"nsp\" a1\"/\"", buf, sizeof buf);
    v = decode_ok(buf, n);
    data = agx_value_map_get(v, "data");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(data, "sid"), NULL), "yeQOowD2HagcKUiSAAAA");
    CHECK(agx_value_map_get(data, "pid") && agx_value_type_of(agx_value_map_get(data, "pid")) == AGX_VALUE_NIL);
    agx_value_free(v);

    /* client EVENT {type:2,data:["rpc",bin],options:{compress:true},id:0,nsp:"/"}. */
    n = sample_hex("85 a4\"type\" 02 a4\"data\" 92 a3\"rpc\" c4 03 05 06 07 a7\"options\" 81 a8\"compress\" c3 "
                   "a2\"id\" 00 a3\"nsp\" a1\"/\"", buf, sizeof buf);
    v = decode_ok(buf, n);
    data = agx_value_map_get(v, "data");
    CHECK(agx_value_array_len(data) == 2);
    CHECK_STREQ(agx_value_get_string(agx_value_array_at(data, 0), NULL), "rpc");
    size_t bl;
    const char *b = agx_value_get_binary(agx_value_array_at(data, 1), &bl);
    CHECK(bl == 3 && memcmp(b, "\x05\x06\x07", 3) == 0);
    CHECK(agx_value_get_bool(agx_value_map_get(agx_value_map_get(v, "options"), "compress")));
    CHECK(agx_value_get_int64(agx_value_map_get(v, "id")) == 0);
    agx_value_free(v);

    /* ArrayBuffers from browsers arrive as ext type 0 in every size class; all decode to binary. */
    const char *exts[] = {"c7 03 00 05 06 07", "c8 00 03 00 05 06 07", "c9 00 00 00 03 00 05 06 07"};
    for (size_t i = 0; i < 3; i++) {
        n = sample_hex(exts[i], buf, sizeof buf);
        v = decode_ok(buf, n);
        b = agx_value_get_binary(v, &bl);
        CHECK(bl == 3 && memcmp(b, "\x05\x06\x07", 3) == 0);
        agx_value_free(v);
    }
    n = sample_hex("d6 00 01 02 03 04", buf, sizeof buf); /* fixext4 type 0 */
    v = decode_ok(buf, n);
    b = agx_value_get_binary(v, &bl);
    CHECK(bl == 4 && memcmp(b, "\x01\x02\x03\x04", 4) == 0);
    agx_value_free(v);
    n = sample_hex("ca 3f c0 00 00", buf, sizeof buf); /* float32 */
    v = decode_ok(buf, n);
    CHECK(agx_value_type_of(v) == AGX_VALUE_DOUBLE && agx_value_get_double(v) == 1.5);
    agx_value_free(v);
    n = sample_hex("82 a1\"a\" 01 a1\"a\" 02", buf, sizeof buf); /* duplicate key: the last wins */
    v = decode_ok(buf, n);
    CHECK(agx_value_map_len(v) == 1 && agx_value_get_int64(agx_value_map_get(v, "a")) == 2);
    agx_value_free(v);

    /* The EVENT we send: exact bytes, as the JS decoder was verified to accept them. */
    agx_value *ev = agx_value_map();
    agx_value_map_set(ev, "type", agx_value_int(2));
    agx_value_map_set(ev, "nsp", agx_value_string("/"));
    agx_value *args = agx_value_array();
    agx_value_array_push(args, agx_value_string("rpc"));
    agx_value_array_push(args, agx_value_binary("\x05\x06\x07", 3));
    agx_value_map_set(ev, "data", args);
    agx_value_map_set(ev, "id", agx_value_int(0));
    expect_bytes(ev, "84 a4\"type\" 02 a3\"nsp\" a1\"/\" a4\"data\" 92 a3\"rpc\" c4 03 05 06 07 a2\"id\" 00");
}

static void test_pack_into(void)
{
    agx_buf b = {0};
    agx_error err;
    CHECK(agx_buf_append(&b, "HDR", 3) == 0);
    agx_value *v = agx_value_string("x");
    CHECK_OK(agx_value_pack_into(v, &b, &err), &err);
    CHECK(b.len == 5 && memcmp(b.data, "HDR\xa1x", 5) == 0);
    agx_value_free(v);

    /* A tree deeper than the encoder accepts fails and leaves the buffer as it was. */
    agx_value *root = agx_value_array(), *cur = root;
    for (int i = 0; i < 1200; i++) {
        agx_value *next = agx_value_array();
        CHECK(agx_value_array_push(cur, next) == 0);
        cur = next;
    }
    CHECK(agx_value_pack_into(root, &b, &err) == AGX_ERR_LIMIT);
    CHECK(err.code == AGX_ERR_LIMIT);
    CHECK(b.len == 5);
    void *out = (void *)1;
    size_t out_len = 9;
    CHECK(agx_value_to_msgpack(root, &out, &out_len, &err) == AGX_ERR_LIMIT);
    CHECK(out == NULL && out_len == 0);
    agx_value_free(root);
    CHECK(agx_value_pack_into(NULL, &b, &err) == 0); /* NULL reads as nil */
    CHECK(b.len == 6 && (unsigned char)b.data[5] == 0xc0);
    CHECK(agx_value_pack_into(NULL, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_to_msgpack(NULL, NULL, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_buf_free(&b);
}

static void nest(unsigned char *buf, size_t depth)
{
    memset(buf, 0x91, depth - 1);
    buf[depth - 1] = 0x90;
}

static void test_limits(void)
{
    unsigned char buf[4096];
    /* depth: 64 nested arrays pass the default, 65 do not */
    nest(buf, 64);
    CHECK(decode_rc(buf, 64, NULL) == 0);
    nest(buf, 65);
    CHECK(decode_rc(buf, 65, NULL) == AGX_ERR_LIMIT);
    agx_codec_limits lim = agx_codec_limits_default();
    CHECK(lim.max_depth == 64 && lim.max_bytes == 64u << 20 && lim.max_items == 1000000);
    lim.max_depth = 3;
    nest(buf, 3);
    CHECK(decode_rc(buf, 3, &lim) == 0);
    nest(buf, 4);
    CHECK(decode_rc(buf, 4, &lim) == AGX_ERR_LIMIT);
    size_t n = sample_hex("81 a1\"a\" 81 a1\"b\" 81 a1\"c\" 80", buf, sizeof buf); /* maps count too */
    CHECK(decode_rc(buf, n, &lim) == AGX_ERR_LIMIT);
    nest(buf, 4000);
    CHECK(decode_rc(buf, 4000, NULL) == AGX_ERR_LIMIT);
    /* max_depth is clamped to what the tree can be freed and re-encoded with (1000). */
    agx_codec_limits deep = {.max_depth = 100000};
    nest(buf, 1000);
    agx_value *v = NULL;
    agx_error err;
    CHECK_OK(agx_value_from_msgpack(buf, 1000, &deep, &v, &err), &err);
    agx_buf out = {0};
    CHECK_OK(agx_value_pack_into(v, &out, &err), &err); /* the deepest decodable tree goes back out */
    CHECK(out.len == 1000 && memcmp(out.data, buf, 1000) == 0);
    agx_buf_free(&out);
    agx_value_free(v);
    nest(buf, 1001);
    CHECK(decode_rc(buf, 1001, &deep) == AGX_ERR_LIMIT);
    /* Zero fields mean the default. */
    agx_codec_limits zero = {0};
    nest(buf, 65);
    CHECK(decode_rc(buf, 65, &zero) == AGX_ERR_LIMIT);
    nest(buf, 64);
    CHECK(decode_rc(buf, 64, &zero) == 0);

    /* bytes */
    lim = agx_codec_limits_default();
    lim.max_bytes = 4;
    n = sample_hex("a4\"abcd\"", buf, sizeof buf);
    CHECK(decode_rc(buf, n, &lim) == AGX_ERR_LIMIT);
    lim.max_bytes = 5;
    CHECK(decode_rc(buf, n, &lim) == 0);

    /* items: [[1,2],[3,4]] is 7 values */
    lim = agx_codec_limits_default();
    n = sample_hex("92 92 01 02 92 03 04", buf, sizeof buf);
    lim.max_items = 7;
    CHECK(decode_rc(buf, n, &lim) == 0);
    lim.max_items = 6;
    CHECK(decode_rc(buf, n, &lim) == AGX_ERR_LIMIT);
    lim.max_items = 2; /* refused at the header, before any child is read */
    CHECK(decode_rc(buf, n, &lim) == AGX_ERR_LIMIT);

    /* A 5-byte header claiming 2^32-1 items fails at once: over max_items by default, and with no
     * item limit the input is too short to hold them (no 32 GiB reservation is attempted: that would
     * surface as NO_MEMORY, not PROTOCOL). */
    const char *huge[] = {"dd ff ff ff ff", "df ff ff ff ff"};
    agx_codec_limits unlimited = {.max_depth = 64, .max_bytes = SIZE_MAX, .max_items = SIZE_MAX};
    for (size_t i = 0; i < 2; i++) {
        n = sample_hex(huge[i], buf, sizeof buf);
        CHECK(decode_rc(buf, n, NULL) == AGX_ERR_LIMIT);
        CHECK(decode_rc(buf, n, &unlimited) == AGX_ERR_PROTOCOL);
    }
    const char *huge_bytes[] = {"db ff ff ff ff 61", "c6 ff ff ff ff 61", "c9 ff ff ff ff 00 61"};
    for (size_t i = 0; i < 3; i++) {
        n = sample_hex(huge_bytes[i], buf, sizeof buf);
        CHECK(decode_rc(buf, n, &unlimited) == AGX_ERR_PROTOCOL);
    }
}

static void test_malformed(void)
{
    unsigned char buf[64];
    struct {
        const char *hex, *why;
    } bad[] = {
        {"c1", "reserved type byte"},
        {"92 01 c1", "reserved byte inside an array"},
        {"81 01 02", "integer key"},
        {"81 c0 01", "nil key"},
        {"81 c4 01 61 01", "binary key"},
        {"81 91 a0 01", "array key"},
        {"c0 c0", "trailing value"},
        {"90 00", "trailing byte after a container"},
        {"d4 01 00", "fixext1 of a non-zero type"},
        {"c7 01 05 00", "ext8 of type 5"},
        {"d7 ff 00 00 00 00 00 00 00 00", "timestamp ext (-1)"},
        {"a5\"abcd\"", "string shorter than its header"},
        {"92 01", "array missing an item"},
        {"81 a1\"a\"", "map missing a value"},
        {"cd 01", "uint16 missing a byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = sample_hex(bad[i].hex, buf, sizeof buf);
        CHECK_MSG(decode_rc(buf, n, NULL) == AGX_ERR_PROTOCOL, "%s should be refused", bad[i].why);
    }
    CHECK(decode_rc("", 0, NULL) == AGX_ERR_PROTOCOL);
    CHECK(decode_rc(NULL, 0, NULL) == AGX_ERR_PROTOCOL);
    agx_error err;
    CHECK(agx_value_from_msgpack(NULL, 3, NULL, &(agx_value *){NULL}, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_value_from_msgpack("\xc0", 1, NULL, NULL, &err) == AGX_ERR_INVALID_ARGUMENT);

    /* Every single byte decodes or fails cleanly. */
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        int rc = decode_rc(&c, 1, NULL);
        bool complete = b <= 0x7f || b >= 0xe0 || b == 0x80 || b == 0x90 || b == 0xa0 || b == 0xc0 || b == 0xc2 || b == 0xc3;
        CHECK_MSG((rc == 0) == complete, "byte 0x%02x gave %d", b, rc);
    }
}

/* Every proper prefix of a valid encoding is refused; every single-byte mutation never crashes. */
static void test_truncation_and_mutation(void)
{
    agx_value *t = sample_small(true);
    agx_error err;
    void *bytes;
    size_t len;
    CHECK_OK(agx_value_to_msgpack(t, &bytes, &len, &err), &err);
    for (size_t cut = 0; cut < len; cut++)
        CHECK_MSG(decode_rc(bytes, cut, NULL) != 0, "prefix of %zu bytes accepted", cut);
    CHECK(decode_rc(bytes, len, NULL) == 0);
    unsigned char *m = malloc(len);
    CHECK(m);
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 256; b++) {
            memcpy(m, bytes, len);
            m[i] = (unsigned char)b;
            decode_rc(m, len, NULL);
        }
    }
    free(m);
    free(bytes);
    agx_value_free(t);

    /* The big tree: refuse a spread of prefixes, including the last byte. */
    t = sample_tree(true);
    CHECK_OK(agx_value_to_msgpack(t, &bytes, &len, &err), &err);
    for (size_t cut = 0; cut < len; cut += len / 997 + 1)
        CHECK(decode_rc(bytes, cut, NULL) == AGX_ERR_PROTOCOL);
    CHECK(decode_rc(bytes, len - 1, NULL) == AGX_ERR_PROTOCOL);
    free(bytes);
    agx_value_free(t);
}

int main(void)
{
    TEST_RUN(test_roundtrip_all_types);
    TEST_RUN(test_smallest_forms);
    TEST_RUN(test_socketio_frames);
    TEST_RUN(test_pack_into);
    TEST_RUN(test_limits);
    TEST_RUN(test_malformed);
    TEST_RUN(test_truncation_and_mutation);
    return 0;
}
