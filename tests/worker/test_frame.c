/* test_frame.c — the worker frame codec (runtime/wire/frame.h): every frame type round-trips,
 * the reader reassembles frames fed byte by byte, bad lengths and garbage are refused, payload
 * spans are the exact bytes written, the rpc error map converts to agx_error, and the bulk ring's
 * references (ring.h) are placed and checked as both ends must. */
#include "check.h"

#include "agentix/value.h"
#include "runtime/wire/frame.h"
#include "runtime/wire/ring.h"
#include "runtime/wire/rpc_error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static agx_mp_span span_of(const agx_buf *b) { return (agx_mp_span){(const unsigned char *)b->data, b->len}; }

/* Encodes v, returns the buffer (caller frees). */
static agx_buf pack(const agx_value *v)
{
    agx_buf b = {0};
    agx_error err;
    CHECK_OK(agx_value_pack_into(v, &b, &err), &err);
    return b;
}

static void test_all_types_byte_by_byte(void)
{
    agx_buf b = {0};
    agx_error err;
    agx_value *args = agx_value_array();
    agx_value_array_push(args, agx_value_int(7));
    agx_value *kwargs = agx_value_map();
    agx_value_map_set(kwargs, "b", agx_value_string("x"));
    agx_buf ab = pack(args), kb = pack(kwargs);
    agx_value *val = agx_value_binary("\0\1\2", 3);
    agx_buf vb = pack(val);
    agx_buf eb = {0};
    CHECK_OK(agx_rpc_error_pack(&eb, "ValueError", "bad", "trace", false), &err);

    CHECK_OK(agx_frame_write_call(&b, 1, "demo::add", 9, AGX_SHAPE_STREAM, span_of(&ab), span_of(&kb), 4), &err);
    CHECK_OK(agx_frame_write_payload(&b, AGX_FRAME_IN, 2, span_of(&vb)), &err);
    CHECK_OK(agx_frame_write_id(&b, AGX_FRAME_END_IN, 3), &err);
    CHECK_OK(agx_frame_write_credit(&b, AGX_FRAME_CREDIT, 4, 10), &err);
    CHECK_OK(agx_frame_write_id(&b, AGX_FRAME_CANCEL, 5), &err);
    CHECK_OK(agx_frame_write_describe(&b, 6, "m::f", 4), &err);
    CHECK_OK(agx_frame_write_shutdown(&b), &err);
    CHECK_OK(agx_frame_write_ready(&b, 4242), &err);
    CHECK_OK(agx_frame_write_boot_error(&b, span_of(&eb)), &err);
    CHECK_OK(agx_frame_write_value(&b, AGX_FRAME_RESULT, 7, val, &err), &err);
    CHECK_OK(agx_frame_write_payload(&b, AGX_FRAME_ERROR, 8, span_of(&eb)), &err);
    CHECK_OK(agx_frame_write_value(&b, AGX_FRAME_ITEM, 9, val, &err), &err);
    CHECK_OK(agx_frame_write_id(&b, AGX_FRAME_END, 10), &err);
    CHECK_OK(agx_frame_write_credit(&b, AGX_FRAME_IN_CREDIT, 11, 3), &err);
    CHECK_OK(agx_frame_write_value(&b, AGX_FRAME_DESCRIPTION, 12, NULL, &err), &err);

    static const agx_frame_type want[] = {
        AGX_FRAME_CALL,  AGX_FRAME_IN,     AGX_FRAME_END_IN, AGX_FRAME_CREDIT,    AGX_FRAME_CANCEL,
        AGX_FRAME_DESCRIBE, AGX_FRAME_SHUTDOWN, AGX_FRAME_READY, AGX_FRAME_BOOT_ERROR,
        AGX_FRAME_RESULT, AGX_FRAME_ERROR, AGX_FRAME_ITEM,   AGX_FRAME_END,       AGX_FRAME_IN_CREDIT,
        AGX_FRAME_DESCRIPTION};
    size_t steps[] = {1, 3, 7, b.len};
    for (size_t s = 0; s < AGX_ARRAY_LEN(steps); s++) {
        agx_frame_reader *r = agx_frame_reader_new(0);
        /* Feed one byte at a time and check each frame as soon as it appears. */
        size_t got = 0;
        for (size_t off = 0; off < b.len; off += steps[s]) {
            size_t len = b.len - off < steps[s] ? b.len - off : steps[s];
            CHECK_OK(agx_frame_reader_feed(r, b.data + off, len, &err), &err);
            agx_frame f;
            int rc;
            while ((rc = agx_frame_reader_next(r, &f, &err)) == 1) {
                CHECK(got < AGX_ARRAY_LEN(want));
                CHECK_MSG(f.type == want[got], "frame %zu: %s", got, agx_frame_type_name(f.type));
                switch (f.type) {
                case AGX_FRAME_CALL:
                    CHECK(f.id == 1 && f.shape == AGX_SHAPE_STREAM && f.window == 4);
                    CHECK(f.target_len == 9 && memcmp(f.target, "demo::add", 9) == 0);
                    CHECK(f.args.len == ab.len && memcmp(f.args.data, ab.data, ab.len) == 0);
                    CHECK(f.kwargs.len == kb.len && memcmp(f.kwargs.data, kb.data, kb.len) == 0);
                    break;
                case AGX_FRAME_IN:
                    CHECK(f.id == 2 && f.item.len == vb.len && memcmp(f.item.data, vb.data, vb.len) == 0);
                    break;
                case AGX_FRAME_CREDIT: CHECK(f.id == 4 && f.n == 10); break;
                case AGX_FRAME_READY: CHECK(f.pid == 4242); break;
                case AGX_FRAME_BOOT_ERROR:
                case AGX_FRAME_ERROR: {
                    agx_error e;
                    CHECK(agx_rpc_error_from_msgpack(f.error, &e) == AGX_ERR_REMOTE);
                    CHECK_STREQ(e.remote_type, "ValueError");
                    CHECK_STREQ(e.message, "bad");
                    CHECK_STREQ(e.detail, "trace");
                    break;
                }
                case AGX_FRAME_RESULT:
                case AGX_FRAME_ITEM:
                    CHECK(f.value.len == vb.len && memcmp(f.value.data, vb.data, vb.len) == 0);
                    break;
                case AGX_FRAME_DESCRIPTION: CHECK(f.id == 12 && agx_mp_is_nil(f.value)); break;
                case AGX_FRAME_IN_CREDIT: CHECK(f.id == 11 && f.n == 3); break;
                default: break;
                }
                got++;
            }
            CHECK_OK(rc, &err);
        }
        CHECK(got == AGX_ARRAY_LEN(want));
        CHECK(agx_frame_reader_pending(r) == 0);
        agx_frame_reader_free(r);
    }
    agx_value_free(args);
    agx_value_free(kwargs);
    agx_value_free(val);
    agx_buf_free(&ab);
    agx_buf_free(&kb);
    agx_buf_free(&vb);
    agx_buf_free(&eb);
    agx_buf_free(&b);
}

/* The body of a frame decodes with the value codec to the same map. */
static void test_body_is_plain_msgpack(void)
{
    agx_buf b = {0};
    agx_error err;
    CHECK_OK(agx_frame_write_credit(&b, AGX_FRAME_CREDIT, 300, 70000), &err);
    uint32_t len = (uint32_t)(unsigned char)b.data[0] | (uint32_t)(unsigned char)b.data[1] << 8;
    CHECK(len + 4 == b.len);
    agx_value *v = NULL;
    CHECK_OK(agx_value_from_msgpack(b.data + 4, b.len - 4, NULL, &v, &err), &err);
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(v, "type"), NULL), "credit");
    CHECK(agx_value_get_int64(agx_value_map_get(v, "id")) == 300);
    CHECK(agx_value_get_int64(agx_value_map_get(v, "n")) == 70000);
    agx_value_free(v);
    agx_buf_free(&b);
}

static int feed_expect_error(const void *data, size_t len, size_t max)
{
    agx_frame_reader *r = agx_frame_reader_new(max);
    agx_error err;
    agx_frame f;
    int rc = agx_frame_reader_feed(r, data, len, &err);
    if (rc == 0)
        rc = agx_frame_reader_next(r, &f, &err);
    agx_frame_reader_free(r);
    return rc;
}

static void test_bad_lengths_and_garbage(void)
{
    static const unsigned char zero_len[] = {0, 0, 0, 0, 0x80};
    CHECK(feed_expect_error(zero_len, sizeof zero_len, 0) == AGX_ERR_PROTOCOL);

    /* Over the limit: refused from the header alone, before the body arrives. */
    static const unsigned char big[] = {0x01, 0x00, 0x10, 0x00};
    CHECK(feed_expect_error(big, sizeof big, 1024) == AGX_ERR_LIMIT);

    /* Not a map, a map without type, an unknown type, a reserved byte, trailing bytes. */
    static const unsigned char not_map[] = {1, 0, 0, 0, 0x05};
    CHECK(feed_expect_error(not_map, sizeof not_map, 0) == AGX_ERR_PROTOCOL);
    static const unsigned char no_type[] = {3, 0, 0, 0, 0x81, 0xa1, 'x'};
    CHECK(feed_expect_error(no_type, sizeof no_type, 0) == AGX_ERR_PROTOCOL); /* key without value */
    static const unsigned char no_type2[] = {4, 0, 0, 0, 0x81, 0xa1, 'x', 0x01};
    CHECK(feed_expect_error(no_type2, sizeof no_type2, 0) == AGX_ERR_PROTOCOL);
    static const unsigned char unknown[] = {8, 0, 0, 0, 0x81, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'z'};
    CHECK(feed_expect_error(unknown, sizeof unknown, 0) == AGX_ERR_PROTOCOL);
    static const unsigned char reserved[] = {2, 0, 0, 0, 0x81, 0xc1};
    CHECK(feed_expect_error(reserved, sizeof reserved, 0) == AGX_ERR_PROTOCOL);
    static const unsigned char trailing[] = {2, 0, 0, 0, 0x80, 0x80};
    CHECK(feed_expect_error(trailing, sizeof trailing, 0) == AGX_ERR_PROTOCOL);
    /* A map claiming 2^32-1 entries in a few bytes is refused without walking them. */
    static const unsigned char huge_map[] = {5, 0, 0, 0, 0xdf, 0xff, 0xff, 0xff, 0xff};
    CHECK(feed_expect_error(huge_map, sizeof huge_map, 0) == AGX_ERR_PROTOCOL);
    /* credit without n, credit with n = 0. */
    agx_buf b = {0};
    size_t mark;
    CHECK(agx_frame_begin(&b, AGX_FRAME_CREDIT, 1, &mark) == 0);
    agx_mp_put_cstr(&b, "id");
    agx_mp_put_uint(&b, 1);
    CHECK(agx_frame_end(&b, mark, NULL) == 0);
    CHECK(feed_expect_error(b.data, b.len, 0) == AGX_ERR_PROTOCOL);
    b.len = 0;
    CHECK_OK(agx_frame_write_credit(&b, AGX_FRAME_CREDIT, 1, 0), (&(agx_error){0}));
    CHECK(feed_expect_error(b.data, b.len, 0) == AGX_ERR_PROTOCOL);
    agx_buf_free(&b);
}

/* A bad body is reported with the view filled (so the worker can answer the call), the next frame
 * still reads; a bad length poisons the reader. */
static void test_bad_body_then_good_frame(void)
{
    agx_buf b = {0};
    agx_error err;
    size_t mark;
    CHECK_OK(agx_frame_begin(&b, AGX_FRAME_CALL, 2, &mark), &err);
    agx_mp_put_cstr(&b, "id");
    agx_mp_put_uint(&b, 77);
    agx_mp_put_cstr(&b, "shape");
    agx_mp_put_cstr(&b, "sideways");
    CHECK_OK(agx_frame_end(&b, mark, &err), &err);
    CHECK_OK(agx_frame_write_id(&b, AGX_FRAME_CANCEL, 78), &err);
    agx_frame_reader *r = agx_frame_reader_new(0);
    agx_frame f;
    CHECK_OK(agx_frame_reader_feed(r, b.data, b.len, &err), &err);
    CHECK(agx_frame_reader_next(r, &f, &err) == AGX_ERR_PROTOCOL);
    CHECK_CONTAINS(err.message, "shape");
    CHECK(f.type == AGX_FRAME_CALL && f.id == 77);
    CHECK(agx_frame_reader_next(r, &f, &err) == 1);
    CHECK(f.type == AGX_FRAME_CANCEL && f.id == 78);
    static const unsigned char zero_len[] = {0, 0, 0, 0};
    CHECK_OK(agx_frame_reader_feed(r, zero_len, 4, &err), &err);
    CHECK(agx_frame_reader_next(r, &f, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_frame_reader_feed(r, b.data, b.len, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_frame_reader_next(r, &f, &err) == AGX_ERR_PROTOCOL);
    agx_frame_reader_free(r);
    agx_buf_free(&b);
}

/* Frames through a pipe with read_fd, including one larger than a read chunk. */
static void test_read_fd(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    agx_buf b = {0};
    agx_error err;
    size_t big = 300000;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7);
    agx_value *v = agx_value_binary(data, big);
    CHECK_OK(agx_frame_write_value(&b, AGX_FRAME_ITEM, 5, v, &err), &err);
    CHECK_OK(agx_frame_write_id(&b, AGX_FRAME_END, 5), &err);
    agx_frame_reader *r = agx_frame_reader_new(0);
    size_t off = 0;
    int got = 0;
    /* Alternate writing a slice and reading what the pipe holds (pipes hold 64 KiB). */
    while (got < 2) {
        if (off < b.len) {
            size_t n = b.len - off < 32768 ? b.len - off : 32768;
            CHECK_OK(agx_frame_send_all(p[1], b.data + off, n, &err), &err);
            off += n;
        }
        CHECK(agx_frame_reader_read_fd(r, p[0], &err) > 0);
        agx_frame f;
        int rc;
        while ((rc = agx_frame_reader_next(r, &f, &err)) == 1) {
            if (got == 0) {
                CHECK(f.type == AGX_FRAME_ITEM && f.id == 5);
                agx_value *back = NULL;
                CHECK_OK(agx_value_from_msgpack(f.value.data, f.value.len, NULL, &back, &err), &err);
                CHECK(agx_value_equal(back, v));
                agx_value_free(back);
            } else {
                CHECK(f.type == AGX_FRAME_END);
            }
            got++;
        }
        CHECK_OK(rc, &err);
    }
    close(p[1]);
    CHECK(agx_frame_reader_read_fd(r, p[0], &err) == 0);
    close(p[0]);
    agx_frame_reader_free(r);
    agx_value_free(v);
    free(data);
    agx_buf_free(&b);
}

static void test_mp_writers_match_codec(void)
{
    /* Every integer width and string/bin/array/map size class decodes to what was written. */
    static const int64_t ints[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL,
                                   4294967296LL, -1, -32, -33, -128, -129, -32768, -32769,
                                   INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN, INT64_MAX};
    agx_error err;
    for (size_t i = 0; i < AGX_ARRAY_LEN(ints); i++) {
        agx_buf b = {0};
        CHECK(agx_mp_put_int(&b, ints[i]) == 0);
        agx_value *v = NULL;
        CHECK_OK(agx_value_from_msgpack(b.data, b.len, NULL, &v, &err), &err);
        CHECK_MSG(agx_value_get_int64(v) == ints[i], "int %lld", (long long)ints[i]);
        agx_value_free(v);
        agx_buf_free(&b);
    }
    static const size_t sizes[] = {0, 31, 32, 255, 256, 65535, 65536};
    char *s = malloc(65536);
    memset(s, 'a', 65536);
    for (size_t i = 0; i < AGX_ARRAY_LEN(sizes); i++) {
        agx_buf b = {0};
        CHECK(agx_mp_put_str(&b, s, sizes[i]) == 0);
        CHECK(agx_mp_put_bin(&b, s, sizes[i]) == 0);
        size_t l1;
        CHECK(agx_mp_skip(b.data, b.len, &l1) == 0);
        agx_value *v = NULL, *w = NULL;
        CHECK_OK(agx_value_from_msgpack(b.data, l1, NULL, &v, &err), &err);
        CHECK_OK(agx_value_from_msgpack(b.data + l1, b.len - l1, NULL, &w, &err), &err);
        size_t vl, wl;
        CHECK(agx_value_get_string(v, &vl) && vl == sizes[i]);
        CHECK(agx_value_get_binary(w, &wl) != NULL || sizes[i] == 0);
        CHECK(agx_value_type_of(w) == AGX_VALUE_BINARY);
        agx_value_free(v);
        agx_value_free(w);
        agx_buf_free(&b);
    }
    free(s);
    static const uint32_t counts[] = {0, 15, 16, 65535, 65536};
    for (size_t i = 0; i < AGX_ARRAY_LEN(counts); i++) {
        agx_buf b = {0};
        CHECK(agx_mp_put_array(&b, counts[i]) == 0);
        for (uint32_t j = 0; j < counts[i]; j++)
            agx_mp_put_nil(&b);
        agx_value *v = NULL;
        CHECK_OK(agx_value_from_msgpack(b.data, b.len, NULL, &v, &err), &err);
        CHECK(agx_value_array_len(v) == counts[i]);
        agx_value_free(v);
        agx_buf_free(&b);
    }
}

static void test_rpc_error(void)
{
    agx_buf b = {0};
    agx_error e;
    CHECK(agx_rpc_error_pack_cancelled(&b) == 0);
    CHECK(agx_rpc_error_from_msgpack(span_of(&b), &e) == AGX_ERR_CANCELLED);
    CHECK(e.code == AGX_ERR_CANCELLED);
    CHECK_STREQ(e.remote_type, "Cancelled");
    agx_value *v = NULL;
    CHECK_OK(agx_value_from_msgpack(b.data, b.len, NULL, &v, &e), &e);
    CHECK(agx_rpc_error_from_value(v, &e) == AGX_ERR_CANCELLED);
    CHECK(agx_value_type_of(agx_value_map_get(v, "detail")) == AGX_VALUE_NIL);
    agx_value_free(v);

    /* A message longer than agx_error holds is cut on a character boundary. */
    char longmsg[AGX_ERROR_MESSAGE_MAX + 10];
    memset(longmsg, 'x', sizeof longmsg);
    memcpy(longmsg + AGX_ERROR_MESSAGE_MAX - 2, "\xc3\xa9", 2); /* é straddling the cut */
    longmsg[sizeof longmsg - 1] = '\0';
    b.len = 0;
    CHECK(agx_rpc_error_pack(&b, "X", longmsg, NULL, false) == 0);
    CHECK(agx_rpc_error_from_msgpack(span_of(&b), &e) == AGX_ERR_REMOTE);
    CHECK(strlen(e.message) == AGX_ERROR_MESSAGE_MAX - 2);

    agx_error local;
    agx_error_set(&local, AGX_ERR_TIMEOUT, "took too long");
    b.len = 0;
    CHECK(agx_rpc_error_pack_agx(&b, &local) == 0);
    CHECK(agx_rpc_error_from_msgpack(span_of(&b), &e) == AGX_ERR_REMOTE);
    CHECK_STREQ(e.remote_type, "Timeout");
    CHECK_STREQ(e.message, "took too long");

    /* Malformed maps. */
    b.len = 0;
    agx_mp_put_map(&b, 1);
    agx_mp_put_cstr(&b, "type");
    agx_mp_put_int(&b, 3);
    CHECK(agx_rpc_error_from_msgpack(span_of(&b), &e) == AGX_ERR_PROTOCOL);
    b.len = 0;
    agx_mp_put_nil(&b);
    CHECK(agx_rpc_error_from_msgpack(span_of(&b), &e) == AGX_ERR_PROTOCOL);
    agx_buf_free(&b);
}

/* An item frame {type: item, id: 1} plus the given extra fields, parsed: its code. */
static int parse_item(agx_frame *f, bool value, bool at, bool len, agx_frame_type type)
{
    agx_buf b = {0};
    size_t mark;
    CHECK(agx_frame_begin(&b, type, 1u + value + at + len, &mark) == 0);
    agx_mp_put_lit(&b, "id");
    agx_mp_put_uint(&b, 1);
    if (value) {
        agx_mp_put_lit(&b, "value");
        agx_mp_put_nil(&b);
    }
    if (at) {
        agx_mp_put_lit(&b, "ring_at");
        agx_mp_put_uint(&b, 4096);
    }
    if (len) {
        agx_mp_put_lit(&b, "ring_len");
        agx_mp_put_uint(&b, 65536);
    }
    CHECK(agx_frame_end(&b, mark, NULL) == 0);
    agx_error err;
    int rc = agx_frame_parse((const unsigned char *)b.data + 4, b.len - 4, f, &err);
    agx_buf_free(&b);
    return rc;
}

static void test_ring_frames(void)
{
    agx_buf b = {0};
    agx_frame f;
    agx_error err;
    CHECK(agx_frame_write_ring(&b, AGX_FRAME_ITEM, 9, (uint64_t)1 << 40, 65536) == 0);
    CHECK_OK(agx_frame_parse((const unsigned char *)b.data + 4, b.len - 4, &f, &err), &err);
    CHECK(f.type == AGX_FRAME_ITEM && f.id == 9 && f.in_ring && f.ring_at == (uint64_t)1 << 40 &&
          f.ring_len == 65536 && f.value.len == 0);
    b.len = 0;
    CHECK(agx_frame_write_ring(&b, AGX_FRAME_IN, 4, 16384, 70000) == 0);
    CHECK_OK(agx_frame_parse((const unsigned char *)b.data + 4, b.len - 4, &f, &err), &err);
    CHECK(f.type == AGX_FRAME_IN && f.id == 4 && f.in_ring && f.ring_at == 16384 &&
          f.ring_len == 70000 && f.item.len == 0);
    /* An in with its item in the ring and in the frame too: one payload per frame. */
    b.len = 0;
    size_t mark;
    CHECK(agx_frame_begin(&b, AGX_FRAME_IN, 4, &mark) == 0);
    agx_mp_put_lit(&b, "id");
    agx_mp_put_uint(&b, 4);
    agx_mp_put_lit(&b, "item");
    agx_mp_put_nil(&b);
    agx_mp_put_lit(&b, "ring_at");
    agx_mp_put_uint(&b, 0);
    agx_mp_put_lit(&b, "ring_len");
    agx_mp_put_uint(&b, 16);
    CHECK(agx_frame_end(&b, mark, NULL) == 0);
    CHECK(agx_frame_parse((const unsigned char *)b.data + 4, b.len - 4, &f, &err) == AGX_ERR_PROTOCOL);
    agx_buf_free(&b);
    CHECK(parse_item(&f, true, false, false, AGX_FRAME_ITEM) == 0 && !f.in_ring);
    CHECK(parse_item(&f, false, true, false, AGX_FRAME_ITEM) == AGX_ERR_PROTOCOL); /* no len */
    CHECK(parse_item(&f, false, false, true, AGX_FRAME_ITEM) == AGX_ERR_PROTOCOL); /* no at */
    CHECK(parse_item(&f, true, true, true, AGX_FRAME_ITEM) == AGX_ERR_PROTOCOL);   /* both */
    CHECK(parse_item(&f, false, false, false, AGX_FRAME_ITEM) == AGX_ERR_PROTOCOL); /* neither */
    CHECK(parse_item(&f, true, true, true, AGX_FRAME_RESULT) == AGX_ERR_PROTOCOL); /* not item */
    CHECK(parse_item(&f, false, true, true, AGX_FRAME_RESULT) == AGX_ERR_PROTOCOL);
}

/* Both ends of one ring, in one process: the worker's placements are what the server accepts,
 * across laps and a full ring; every reference the server did not expect is refused. */
static void test_ring_ends(void)
{
    agx_ring srv, wk;
    agx_error err;
    CHECK_MSG(agx_ring_create(&srv, AGX_RING_SIZE) == 0, "%s", strerror(errno));
    int fd = dup(srv.fd);
    CHECK(fd >= 0 && agx_ring_attach(&wk, fd));
    CHECK(wk.size == AGX_RING_SIZE && wk.pos == 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(ftruncate(fd, 4096) != 0 && errno == EPERM); /* sealed: no SIGBUS for the server */
    CHECK(ftruncate(fd, (off_t)(AGX_RING_CTRL + 4 * AGX_RING_SIZE)) != 0 && errno == EPERM);
    size_t sizes[] = {48 << 10, 65536, 100000, 16 << 10, 1 << 20};
    uint64_t at;
    for (int i = 0; i < 400; i++) {
        size_t len = sizes[i % 5];
        CHECK_MSG(agx_ring_place(&wk, len, &at), "placement %d of %zu bytes", i, len);
        CHECK(at % wk.size + len <= wk.size);
        memset(agx_ring_data(&wk, at), i & 0xff, len);
        CHECK_OK(agx_ring_accept(&srv, at, len, &err), &err);
        const unsigned char *p = agx_ring_data(&srv, at);
        CHECK(p[0] == (i & 0xff) && p[len - 1] == (i & 0xff));
        agx_ring_release(&srv);
    }
    /* Unreleased, the ring fills up: placements then fail (the worker takes the pipe). */
    int placed = 0;
    while (agx_ring_place(&wk, 65536, &at)) {
        CHECK_OK(agx_ring_accept(&srv, at, 65536, &err), &err);
        placed++;
    }
    CHECK_MSG(placed >= 31 && placed <= 32, "%d items of 64 KiB in a 2 MiB ring", placed);
    agx_ring_release(&srv);
    CHECK(agx_ring_place(&wk, 65536, &at));
    /* What a hostile worker may send instead of `at`: each is refused, and refusing moves
     * nothing (the right reference is still taken after). */
    uint64_t bad_at[] = {at + 1, at - 65536, at + AGX_RING_SIZE, UINT64_MAX, 0};
    for (size_t i = 0; i < sizeof bad_at / sizeof *bad_at; i++)
        CHECK(agx_ring_accept(&srv, bad_at[i], 65536, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_ring_accept(&srv, at, 0, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_ring_accept(&srv, at, AGX_RING_SIZE + 1, &err) == AGX_ERR_PROTOCOL);
    CHECK_CONTAINS(err.message, "bulk ring");
    CHECK_OK(agx_ring_accept(&srv, at, 65536, &err), &err);
    /* A skip to the next lap is accepted only when the item would not fit before the end. */
    CHECK_OK(agx_ring_accept(&srv, srv.pos, 1000, &err), &err); /* off a lap boundary now */
    uint64_t off = srv.pos % srv.size, lap = srv.pos + (srv.size - off);
    CHECK(off != 0);
    CHECK(agx_ring_accept(&srv, lap, 16, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_ring_accept(&srv, srv.pos, srv.size - off + 1, &err) == AGX_ERR_PROTOCOL);
    CHECK_OK(agx_ring_accept(&srv, lap, srv.size - off + 1, &err), &err);
    CHECK(srv.pos == lap + srv.size - off + 1);
    agx_ring none;
    memset(&none, 0, sizeof none);
    CHECK(agx_ring_accept(&none, 0, 16, &err) == AGX_ERR_PROTOCOL);
    CHECK(!agx_ring_place(&none, 16, &at));
    agx_ring_close(&wk);
    agx_ring_close(&srv);
}

/* The worker maps only a sealed memfd of a sane size: a pipe, an unsealed memfd, a tiny one are
 * not a ring (it uses the pipe alone). */
static void test_ring_attach_refuses(void)
{
    agx_ring r;
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(!agx_ring_attach(&r, p[0]) && r.map == NULL);
    close(p[0]);
    close(p[1]);
    CHECK(!agx_ring_attach(&r, 12345));
    int fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)(AGX_RING_CTRL + AGX_RING_SIZE)) == 0);
    CHECK(!agx_ring_attach(&r, fd));
    CHECK(ftruncate(fd, 4096) == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    CHECK(!agx_ring_attach(&r, fd)); /* sealed, but too small to hold an item */
    close(fd);
    agx_ring_close(&r); /* a refused ring closes nothing */
}

int main(void)
{
    TEST_RUN(test_all_types_byte_by_byte);
    TEST_RUN(test_body_is_plain_msgpack);
    TEST_RUN(test_bad_lengths_and_garbage);
    TEST_RUN(test_bad_body_then_good_frame);
    TEST_RUN(test_read_fd);
    TEST_RUN(test_mp_writers_match_codec);
    TEST_RUN(test_rpc_error);
    TEST_RUN(test_ring_frames);
    TEST_RUN(test_ring_ends);
    TEST_RUN(test_ring_attach_refuses);
    return 0;
}
