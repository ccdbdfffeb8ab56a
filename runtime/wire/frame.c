/* frame.c — worker frames (server ↔ worker pipes): parse a frame map into a routing view, read
 * frames incrementally from a byte stream, and append frames to a buffer (see frame.h). */
#include "runtime/wire/frame.h"

#include "agentix/fdio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const frame_names[AGX_FRAME_TYPE_COUNT] = {
    [AGX_FRAME_INVALID] = "invalid",         [AGX_FRAME_CALL] = AGX_FR_CALL,
    [AGX_FRAME_IN] = AGX_FR_IN,               [AGX_FRAME_END_IN] = AGX_FR_END_IN,
    [AGX_FRAME_CREDIT] = AGX_FR_CREDIT,       [AGX_FRAME_CANCEL] = AGX_FR_CANCEL,
    [AGX_FRAME_DESCRIBE] = AGX_FR_DESCRIBE,   [AGX_FRAME_SHUTDOWN] = AGX_FR_SHUTDOWN,
    [AGX_FRAME_READY] = AGX_FR_READY,         [AGX_FRAME_BOOT_ERROR] = AGX_FR_BOOT_ERROR,
    [AGX_FRAME_RESULT] = AGX_FR_RESULT,       [AGX_FRAME_ERROR] = AGX_FR_ERROR,
    [AGX_FRAME_ITEM] = AGX_FR_ITEM,           [AGX_FRAME_END] = AGX_FR_END,
    [AGX_FRAME_IN_CREDIT] = AGX_FR_IN_CREDIT, [AGX_FRAME_DESCRIPTION] = AGX_FR_DESCRIPTION,
};

/* Which fields each type must carry. */
enum {
    F_ID = 1 << 0,
    F_N = 1 << 1,
    F_PID = 1 << 2,
    F_TARGET = 1 << 3,
    F_SHAPE = 1 << 4,
    F_VALUE = 1 << 5,
    F_ITEM = 1 << 6,
    F_ERROR = 1 << 7,
    F_RING_AT = 1 << 8,
    F_RING_LEN = 1 << 9,
};
static const unsigned frame_required[AGX_FRAME_TYPE_COUNT] = {
    [AGX_FRAME_CALL] = F_ID | F_TARGET | F_SHAPE,
    [AGX_FRAME_IN] = F_ID | F_ITEM,
    [AGX_FRAME_END_IN] = F_ID,
    [AGX_FRAME_CREDIT] = F_ID | F_N,
    [AGX_FRAME_CANCEL] = F_ID,
    [AGX_FRAME_DESCRIBE] = F_ID | F_TARGET,
    [AGX_FRAME_SHUTDOWN] = 0,
    [AGX_FRAME_READY] = F_PID,
    [AGX_FRAME_BOOT_ERROR] = F_ERROR,
    [AGX_FRAME_RESULT] = F_ID | F_VALUE,
    [AGX_FRAME_ERROR] = F_ID | F_ERROR,
    [AGX_FRAME_ITEM] = F_ID | F_VALUE,
    [AGX_FRAME_END] = F_ID,
    [AGX_FRAME_IN_CREDIT] = F_ID | F_N,
    [AGX_FRAME_DESCRIPTION] = F_ID | F_VALUE,
};

const char *agx_frame_type_name(agx_frame_type t)
{
    return (unsigned)t < AGX_FRAME_TYPE_COUNT ? frame_names[t] : "invalid";
}

agx_frame_type agx_frame_type_from_name(const char *name, size_t len)
{
    for (int t = 1; t < AGX_FRAME_TYPE_COUNT; t++)
        if (strlen(frame_names[t]) == len && memcmp(frame_names[t], name, len) == 0)
            return (agx_frame_type)t;
    return AGX_FRAME_INVALID;
}

bool agx_frame_is_terminal(agx_frame_type t)
{
    return t == AGX_FRAME_RESULT || t == AGX_FRAME_ERROR || t == AGX_FRAME_END ||
           t == AGX_FRAME_DESCRIPTION;
}

static int parse_shape(agx_mp_span s, agx_shape *shape)
{
    const char *name;
    size_t len;
    return agx_mp_get_str(s, &name, &len) == 0 && agx_wire_shape_of(name, len, shape)
               ? 0
               : AGX_ERR_PROTOCOL;
}

static int bad_field(agx_error *err, const agx_frame *f, const char *field, const char *want)
{
    return agx_error_set(err, AGX_ERR_PROTOCOL, "worker frame '%s': field '%s' %s",
                         agx_frame_type_name(f->type), field, want);
}

/* Stores one known field into the view; sets its bit in *seen. Unknown keys are skipped. */
static int parse_field(agx_frame *f, const char *k, size_t kl, agx_mp_span v, unsigned *seen,
                       uint64_t *window, agx_error *err)
{
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
    if (KEY(AGX_F_ID)) {
        if (agx_mp_get_uint(v, &f->id) != 0)
            return bad_field(err, f, AGX_F_ID, "must be a non-negative integer");
        *seen |= F_ID;
    } else if (KEY(AGX_F_N)) {
        if (agx_mp_get_uint(v, &f->n) != 0 || f->n == 0 || f->n > UINT32_MAX)
            return bad_field(err, f, AGX_F_N, "must be an integer in 1..2^32-1");
        *seen |= F_N;
    } else if (KEY(AGX_F_PID)) {
        if (agx_mp_get_uint(v, &f->pid) != 0)
            return bad_field(err, f, AGX_F_PID, "must be a non-negative integer");
        *seen |= F_PID;
    } else if (KEY(AGX_F_WINDOW)) {
        if (!agx_mp_is_nil(v) && agx_mp_get_uint(v, window) != 0)
            return bad_field(err, f, AGX_F_WINDOW, "must be a non-negative integer");
    } else if (KEY(AGX_F_TARGET)) {
        if (agx_mp_get_str(v, &f->target, &f->target_len) != 0)
            return bad_field(err, f, AGX_F_TARGET, "must be a string");
        *seen |= F_TARGET;
    } else if (KEY(AGX_F_SHAPE)) {
        if (parse_shape(v, &f->shape) != 0)
            return agx_error_set(err, AGX_ERR_PROTOCOL,
                                 "worker frame '%s': field '%s' must be \"%s\", \"%s\" or \"%s\"",
                                 agx_frame_type_name(f->type), AGX_F_SHAPE,
                                 agx_shape_name(AGX_SHAPE_UNARY), agx_shape_name(AGX_SHAPE_STREAM),
                                 agx_shape_name(AGX_SHAPE_BIDI));
        *seen |= F_SHAPE;
    } else if (KEY(AGX_F_ARGS)) {
        if (!agx_mp_is_array(v) && !agx_mp_is_nil(v))
            return bad_field(err, f, AGX_F_ARGS, "must be an array");
        f->args = agx_mp_is_nil(v) ? (agx_mp_span){0} : v;
    } else if (KEY(AGX_F_KWARGS)) {
        if (!agx_mp_is_map(v) && !agx_mp_is_nil(v))
            return bad_field(err, f, AGX_F_KWARGS, "must be a map");
        f->kwargs = agx_mp_is_nil(v) ? (agx_mp_span){0} : v;
    } else if (KEY(AGX_F_VALUE)) {
        f->value = v;
        *seen |= F_VALUE;
    } else if (KEY(AGX_F_RING_AT) || KEY(AGX_F_RING_LEN)) {
        bool at = KEY(AGX_F_RING_AT);
        if (agx_mp_get_uint(v, at ? &f->ring_at : &f->ring_len) != 0)
            return bad_field(err, f, at ? AGX_F_RING_AT : AGX_F_RING_LEN,
                             "must be a non-negative integer");
        *seen |= at ? F_RING_AT : F_RING_LEN;
    } else if (KEY(AGX_F_ITEM)) {
        f->item = v;
        *seen |= F_ITEM;
    } else if (KEY(AGX_F_ERROR)) {
        if (!agx_mp_is_map(v))
            return bad_field(err, f, AGX_F_ERROR, "must be a map {type, message, detail, cancelled}");
        f->error = v;
        *seen |= F_ERROR;
    }
    return 0;
#undef KEY
}

/* ring_at and ring_len come together, instead of an item's value (worker → server) or an in's
 * item (server → worker). */
static int ring_fields(agx_frame *f, unsigned *seen, agx_error *err)
{
    unsigned ring = *seen & (F_RING_AT | F_RING_LEN);
    if (!ring)
        return 0;
    if (f->type != AGX_FRAME_ITEM && f->type != AGX_FRAME_IN)
        return bad_field(err, f, AGX_F_RING_AT, "belongs to item and in frames only");
    if (ring != (F_RING_AT | F_RING_LEN))
        return bad_field(err, f, ring & F_RING_AT ? AGX_F_RING_LEN : AGX_F_RING_AT,
                         "is missing (ring_at and ring_len come together)");
    bool item = f->type == AGX_FRAME_ITEM;
    unsigned payload = item ? F_VALUE : F_ITEM;
    if (*seen & payload)
        return bad_field(err, f, item ? AGX_F_VALUE : AGX_F_ITEM,
                         "must not come with ring_at (one payload per frame)");
    f->in_ring = true;
    *seen |= payload;
    return 0;
}

/* The type is read first so that field errors can name it. */
static int parse_type(const void *body, size_t len, agx_frame *f, agx_error *err)
{
    agx_mp_span t;
    const char *name;
    size_t nlen;
    int rc = agx_mp_map_find(body, len, AGX_F_TYPE, &t);
    if (rc < 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "worker frame is not a msgpack map with string keys (%zu bytes)", len);
    if (rc == 0 || agx_mp_get_str(t, &name, &nlen) != 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "worker frame has no string 'type' field");
    f->type = agx_frame_type_from_name(name, nlen);
    if (f->type == AGX_FRAME_INVALID)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "worker frame has unknown type '%.*s'",
                             (int)(nlen > 64 ? 64 : nlen), name);
    return 0;
}

int agx_frame_parse(const void *body, size_t len, agx_frame *f, agx_error *err)
{
    memset(f, 0, sizeof *f);
    f->body = body;
    f->body_len = len;
    int rc = parse_type(body, len, f, err);
    if (rc)
        return rc;
    agx_mp_map_iter it;
    agx_mp_map_open(&it, body, len); /* validated by parse_type */
    unsigned seen = 0;
    uint64_t window = 0;
    const char *k;
    size_t kl;
    agx_mp_span v;
    while ((rc = agx_mp_map_next(&it, &k, &kl, &v)) == 1)
        if ((rc = parse_field(f, k, kl, v, &seen, &window, err)) != 0)
            return rc;
    if ((rc = ring_fields(f, &seen, err)) != 0)
        return rc;
    unsigned missing = frame_required[f->type] & ~seen;
    if (missing) {
        static const char *const names[] = {AGX_F_ID,    AGX_F_N,     AGX_F_PID,  AGX_F_TARGET,
                                            AGX_F_SHAPE, AGX_F_VALUE, AGX_F_ITEM, AGX_F_ERROR};
        int bit = __builtin_ctz(missing);
        return bad_field(err, f, names[bit], "is missing");
    }
    if (f->type == AGX_FRAME_CALL)
        f->window = window == 0 ? AGX_FRAME_WINDOW_DEFAULT
                    : window > AGX_FRAME_WINDOW_MAX ? AGX_FRAME_WINDOW_MAX
                                                    : (uint32_t)window;
    return 0;
}

/* ---- incremental reader ---- */

struct agx_frame_reader {
    unsigned char *buf;
    size_t cap;
    size_t start; /* first byte not yet returned */
    size_t end;   /* one past the last byte received */
    size_t max_frame;
    agx_error sticky;
};

#define READ_CHUNK ((size_t)64 << 10)
#define KEEP_BUFFER ((size_t)8 << 20) /* buffers above this are freed when empty */

agx_frame_reader *agx_frame_reader_new(size_t max_frame)
{
    agx_frame_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max_frame = max_frame ? max_frame : AGX_FRAME_MAX_DEFAULT;
    agx_error_clear(&r->sticky);
    return r;
}

void agx_frame_reader_free(agx_frame_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r);
}

/* Errors are kept: after a bad length the stream has no frame boundary left to resync on. */
static int reader_fail(agx_frame_reader *r, agx_error *err)
{
    agx_error_copy(err, &r->sticky);
    return r->sticky.code;
}

/* Makes room for `extra` more bytes at the end: first by dropping consumed bytes (frames handed
 * out before this call are no longer referenced), then by growing. */
static int reader_room(agx_frame_reader *r, size_t extra, agx_error *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    /* An idle reader gives back the memory one huge frame needed. */
    if (r->end == 0 && r->cap > KEEP_BUFFER && extra <= READ_CHUNK) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
    if (r->cap - r->end >= extra)
        return 0;
    size_t want = r->end + extra, cap = r->cap ? r->cap : 4096;
    while (cap < want)
        cap *= 2;
    unsigned char *nb = realloc(r->buf, cap);
    if (!nb)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "worker frame reader: out of memory (%zu bytes)", cap);
    r->buf = nb;
    r->cap = cap;
    return 0;
}

int agx_frame_reader_feed(agx_frame_reader *r, const void *data, size_t len, agx_error *err)
{
    if (r->sticky.code)
        return reader_fail(r, err);
    int rc = reader_room(r, len, err);
    if (rc)
        return rc;
    if (len)
        memcpy(r->buf + r->end, data, len);
    r->end += len;
    return 0;
}

long agx_frame_reader_read_fd(agx_frame_reader *r, int fd, agx_error *err)
{
    if (r->sticky.code)
        return reader_fail(r, err);
    /* Read up to the rest of the current frame when it is large, so big frames take few reads. */
    size_t want = READ_CHUNK, have = r->end - r->start;
    if (have >= AGX_FRAME_HEADER_SIZE) {
        const unsigned char *p = r->buf + r->start;
        size_t flen = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (flen <= r->max_frame && flen + AGX_FRAME_HEADER_SIZE > have &&
            flen + AGX_FRAME_HEADER_SIZE - have > want)
            want = flen + AGX_FRAME_HEADER_SIZE - have;
    }
    int rc = reader_room(r, want, err);
    if (rc)
        return rc;
    ssize_t n;
    do
        n = read(fd, r->buf + r->end, r->cap - r->end);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return agx_error_set(err, AGX_ERR_IO, "reading worker frames: %s", strerror(errno));
    r->end += (size_t)n;
    return (long)n;
}

int agx_frame_reader_next(agx_frame_reader *r, agx_frame *out, agx_error *err)
{
    if (r->sticky.code)
        return reader_fail(r, err);
    size_t have = r->end - r->start;
    if (have < AGX_FRAME_HEADER_SIZE)
        return 0;
    const unsigned char *p = r->buf + r->start;
    size_t flen = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (flen == 0) {
        agx_error_set(&r->sticky, AGX_ERR_PROTOCOL,
                      "worker frame of length 0: a frame holds one msgpack map");
        return reader_fail(r, err);
    }
    if (flen > r->max_frame) {
        agx_error_set(&r->sticky, AGX_ERR_LIMIT,
                      "worker frame of %zu bytes exceeds the limit of %zu (AGENTIX_MAX_PAYLOAD)",
                      flen, r->max_frame);
        return reader_fail(r, err);
    }
    if (have - AGX_FRAME_HEADER_SIZE < flen)
        return 0;
    /* A bad body still has a good boundary: skip it and let the caller answer or drop the peer. */
    r->start += AGX_FRAME_HEADER_SIZE + flen;
    int rc = agx_frame_parse(p + AGX_FRAME_HEADER_SIZE, flen, out, err);
    return rc ? rc : 1;
}

bool agx_frame_reader_broken(const agx_frame_reader *r) { return r->sticky.code != 0; }

size_t agx_frame_reader_pending(const agx_frame_reader *r) { return r->end - r->start; }

/* ---- writers ---- */

int agx_frame_begin(agx_buf *b, agx_frame_type type, uint32_t n_fields, size_t *mark)
{
    static const unsigned char zero[AGX_FRAME_HEADER_SIZE];
    const char *name = agx_frame_type_name(type);
    *mark = b->len;
    int rc = agx_mp_put_raw(b, zero, sizeof zero);
    if (!rc)
        rc = agx_mp_put_map(b, n_fields + 1);
    if (!rc)
        rc = agx_mp_put_lit(b, AGX_F_TYPE);
    if (!rc)
        rc = agx_mp_put_cstr(b, name);
    if (rc)
        b->len = *mark;
    return rc;
}

int agx_frame_end(agx_buf *b, size_t mark, agx_error *err)
{
    size_t body = b->len - mark - AGX_FRAME_HEADER_SIZE;
    if (body > UINT32_MAX) {
        b->len = mark;
        return agx_error_set(err, AGX_ERR_LIMIT, "worker frame of %zu bytes is too large", body);
    }
    unsigned char *p = (unsigned char *)b->data + mark;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(body >> (8 * i));
    return 0;
}

/* Ends a frame whose fields were written with rc accumulated; rolls back on failure. */
static int frame_finish(agx_buf *b, size_t mark, int rc)
{
    if (rc) {
        b->len = mark;
        return rc;
    }
    return agx_frame_end(b, mark, NULL);
}

static int put_key(agx_buf *b, const char *key) { return agx_mp_put_cstr(b, key); }

static int put_span_or_nil(agx_buf *b, agx_mp_span s, bool array)
{
    if (s.len)
        return agx_mp_put_raw(b, s.data, s.len);
    return array ? agx_mp_put_array(b, 0) : agx_mp_put_map(b, 0);
}

int agx_frame_write_call(agx_buf *b, uint64_t id, const char *target, size_t target_len,
                         agx_shape shape, agx_mp_span args, agx_mp_span kwargs, uint32_t window)
{
    size_t mark;
    int rc = agx_frame_begin(b, AGX_FRAME_CALL, 6, &mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_ID) || agx_mp_put_uint(b, id) || put_key(b, AGX_F_TARGET) ||
         agx_mp_put_str(b, target, target_len) || put_key(b, AGX_F_SHAPE) ||
         agx_mp_put_cstr(b, agx_shape_name(shape)) || put_key(b, AGX_F_ARGS) ||
         put_span_or_nil(b, args, true) || put_key(b, AGX_F_KWARGS) ||
         put_span_or_nil(b, kwargs, false) || put_key(b, AGX_F_WINDOW) || agx_mp_put_uint(b, window);
    return frame_finish(b, mark, rc ? AGX_ERR_NO_MEMORY : 0);
}

int agx_frame_write_describe(agx_buf *b, uint64_t id, const char *target, size_t target_len)
{
    size_t mark;
    int rc = agx_frame_begin(b, AGX_FRAME_DESCRIBE, 2, &mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_ID) || agx_mp_put_uint(b, id) || put_key(b, AGX_F_TARGET) ||
         agx_mp_put_str(b, target, target_len);
    return frame_finish(b, mark, rc ? AGX_ERR_NO_MEMORY : 0);
}

int agx_frame_write_shutdown(agx_buf *b)
{
    size_t mark;
    int rc = agx_frame_begin(b, AGX_FRAME_SHUTDOWN, 0, &mark);
    return rc ? rc : frame_finish(b, mark, 0);
}

int agx_frame_write_ready(agx_buf *b, uint64_t pid)
{
    size_t mark;
    int rc = agx_frame_begin(b, AGX_FRAME_READY, 1, &mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_PID) || agx_mp_put_uint(b, pid);
    return frame_finish(b, mark, rc ? AGX_ERR_NO_MEMORY : 0);
}

int agx_frame_write_boot_error(agx_buf *b, agx_mp_span error)
{
    size_t mark;
    int rc = agx_frame_begin(b, AGX_FRAME_BOOT_ERROR, 1, &mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_ERROR) || put_span_or_nil(b, error, false);
    return frame_finish(b, mark, rc ? AGX_ERR_NO_MEMORY : 0);
}

int agx_frame_write_id(agx_buf *b, agx_frame_type type, uint64_t id)
{
    size_t mark;
    int rc = agx_frame_begin(b, type, 1, &mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_ID) || agx_mp_put_uint(b, id);
    return frame_finish(b, mark, rc ? AGX_ERR_NO_MEMORY : 0);
}

int agx_frame_write_credit(agx_buf *b, agx_frame_type type, uint64_t id, uint64_t n)
{
    size_t mark;
    int rc = agx_frame_begin(b, type, 2, &mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_ID) || agx_mp_put_uint(b, id) || put_key(b, AGX_F_N) || agx_mp_put_uint(b, n);
    return frame_finish(b, mark, rc ? AGX_ERR_NO_MEMORY : 0);
}

static const char *payload_key(agx_frame_type type)
{
    switch (type) {
    case AGX_FRAME_IN: return AGX_F_ITEM;
    case AGX_FRAME_ERROR: case AGX_FRAME_BOOT_ERROR: return AGX_F_ERROR;
    default: return AGX_F_VALUE;
    }
}

/* The frame up to the payload: {type, id, <key>: … */
static int payload_begin(agx_buf *b, agx_frame_type type, uint64_t id, size_t *mark)
{
    int rc = agx_frame_begin(b, type, 2, mark);
    if (rc)
        return rc;
    rc = put_key(b, AGX_F_ID) || agx_mp_put_uint(b, id) || put_key(b, payload_key(type));
    if (rc) {
        b->len = *mark;
        return AGX_ERR_NO_MEMORY;
    }
    return 0;
}

int agx_frame_write_payload(agx_buf *b, agx_frame_type type, uint64_t id, agx_mp_span payload)
{
    size_t mark;
    int rc = payload_begin(b, type, id, &mark);
    if (rc)
        return rc;
    rc = payload.len ? agx_mp_put_raw(b, payload.data, payload.len) : agx_mp_put_nil(b);
    return frame_finish(b, mark, rc);
}

int agx_frame_write_value(agx_buf *b, agx_frame_type type, uint64_t id, const agx_value *value,
                          agx_error *err)
{
    size_t mark;
    int rc = payload_begin(b, type, id, &mark);
    if (rc)
        return agx_error_set(err, rc, "worker frame '%s': out of memory", agx_frame_type_name(type));
    rc = value ? agx_value_pack_into(value, b, err) : agx_mp_put_nil(b);
    if (rc) {
        b->len = mark;
        return rc;
    }
    return agx_frame_end(b, mark, err);
}

int agx_frame_write_bin_head(agx_buf *b, agx_frame_type type, uint64_t id, size_t bin_len,
                             agx_error *err)
{
    size_t mark;
    int rc = agx_frame_begin(b, type, 2, &mark);
    if (rc)
        return agx_error_set(err, rc, "out of memory building a frame");
    rc = agx_mp_put_lit(b, AGX_F_ID);
    if (!rc)
        rc = agx_mp_put_uint(b, id);
    if (!rc)
        rc = agx_mp_put_lit(b, AGX_F_VALUE);
    if (!rc)
        rc = agx_mp_put_bin_head(b, bin_len);
    size_t body = b->len - mark - AGX_FRAME_HEADER_SIZE;
    if (!rc && bin_len > UINT32_MAX - body)
        rc = AGX_ERR_LIMIT;
    if (rc) {
        b->len = mark;
        return agx_error_set(err, rc, "a worker frame with a %zu-byte binary is too large", bin_len);
    }
    body += bin_len;
    unsigned char *p = (unsigned char *)b->data + mark;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(body >> (8 * i));
    return 0;
}

int agx_frame_write_ring(agx_buf *b, agx_frame_type type, uint64_t id, uint64_t at, uint64_t len)
{
    size_t mark;
    int rc = agx_frame_begin(b, type, 3, &mark);
    if (!rc)
        rc = agx_mp_put_lit(b, AGX_F_ID);
    if (!rc)
        rc = agx_mp_put_uint(b, id);
    if (!rc)
        rc = agx_mp_put_lit(b, AGX_F_RING_AT);
    if (!rc)
        rc = agx_mp_put_uint(b, at);
    if (!rc)
        rc = agx_mp_put_lit(b, AGX_F_RING_LEN);
    if (!rc)
        rc = agx_mp_put_uint(b, len);
    agx_error ignored;
    return rc ? rc : agx_frame_end(b, mark, &ignored);
}

int agx_frame_send_all(int fd, const void *data, size_t len, agx_error *err)
{
    if (agx_fd_write_all(fd, data, len) != 0)
        return agx_error_set(err, AGX_ERR_IO, "writing worker frames: %s", strerror(errno));
    return 0;
}
