/* sio_codec.c — Engine.IO v4 / Socket.IO v5 text framing and the attachment reassembly state
 * machine, shared by the host's client and agentix-server. Mirrors the checks of the official
 * socket.io-parser 4.2.x decoder (so what the JS side would refuse, we refuse too) and writes
 * frames straight into caller buffers. */
#include "runtime/transport/sio_codec.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a bounded writer that keeps counting past its capacity, so one pass both encodes and
 * measures ---- */

typedef struct wbuf {
    char *buf;
    size_t cap;
    size_t len;
} wbuf;

static void w_put(wbuf *w, const void *p, size_t n)
{
    if (w->buf && w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, p, n < room ? n : room);
    }
    w->len += n;
}

static void w_ch(wbuf *w, char c) { w_put(w, &c, 1); }

static void w_str(wbuf *w, const char *s) { w_put(w, s, strlen(s)); }

static void w_u64(wbuf *w, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    w_put(w, tmp, (size_t)n);
}

static void w_json(wbuf *w, const json_t *v)
{
    size_t room = (w->buf && w->len < w->cap) ? w->cap - w->len : 0;
    size_t n = json_dumpb(v, room ? w->buf + w->len : NULL, room,
                          JSON_COMPACT | JSON_ENCODE_ANY);
    w->len += n;
}

static int w_finish(wbuf *w, size_t *len, agx_error *err)
{
    *len = w->len;
    if (!w->buf)
        return 0;
    if (w->len > w->cap)
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "socket.io frame needs %zu bytes but the buffer holds %zu", w->len,
                             w->cap);
    if (w->len < w->cap)
        w->buf[w->len] = '\0';
    return 0;
}

/* ---- small validators ---- */

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static const char *const reserved_events[] = {"connect",       "connect_error", "disconnect",
                                              "disconnecting", "newListener",   "removeListener"};

static bool is_reserved_event(const char *name)
{
    for (size_t i = 0; i < sizeof reserved_events / sizeof *reserved_events; i++)
        if (strcmp(name, reserved_events[i]) == 0)
            return true;
    return false;
}

static bool valid_nsp(const char *nsp)
{
    size_t n = strlen(nsp);
    if (n == 0 || n > AGX_SIO_NSP_MAX || nsp[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (nsp[i] == ',' || (unsigned char)nsp[i] < 0x20)
            return false;
    return valid_utf8((const unsigned char *)nsp, n);
}

/* ---- Engine.IO ---- */

int agx_eio_decode(const char *frame, size_t len, agx_eio_type *type, const char **payload,
                   size_t *payload_len, agx_error *err)
{
    if (len == 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "engine.io: empty text frame");
    if (frame[0] < '0' || frame[0] > '6')
        return agx_error_set(err, AGX_ERR_PROTOCOL, "engine.io: unknown packet type 0x%02x",
                             (unsigned char)frame[0]);
    *type = (agx_eio_type)(frame[0] - '0');
    *payload = frame + 1;
    *payload_len = len - 1;
    return 0;
}

static bool valid_sid(const char *sid)
{
    size_t n = strlen(sid);
    if (n == 0 || n > AGX_EIO_SID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)sid[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

int agx_eio_encode_open(char *buf, size_t cap, const agx_eio_open *open, size_t *len,
                        agx_error *err)
{
    if (!valid_sid(open->sid))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "engine.io: invalid sid");
    int n = snprintf(buf, cap,
                     "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":%" PRIu32
                     ",\"pingTimeout\":%" PRIu32 ",\"maxPayload\":%" PRIu64 "}",
                     open->sid, open->ping_interval_ms, open->ping_timeout_ms, open->max_payload);
    if (n < 0 || (size_t)n >= cap)
        return agx_error_set(err, AGX_ERR_LIMIT, "engine.io: open packet buffer too small");
    *len = (size_t)n;
    return 0;
}

static int json_ms(const json_t *o, const char *key, bool required, uint64_t max, uint64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return required ? -1 : 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int agx_eio_parse_open(const char *payload, size_t len, agx_eio_open *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *o = json_loadb(payload, len, 0, NULL);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return agx_error_set(err, AGX_ERR_PROTOCOL, "engine.io: open packet is not a JSON object");
    }
    const char *sid = json_string_value(json_object_get(o, "sid"));
    uint64_t pi = 0, pt = 0, mp = 0;
    int rc = 0;
    if (!sid || !valid_sid(sid))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "engine.io: open packet has no valid sid");
    else if (json_ms(o, "pingInterval", true, INT32_MAX, &pi) || pi == 0 ||
             json_ms(o, "pingTimeout", true, INT32_MAX, &pt) || pt == 0)
        rc = agx_error_set(err, AGX_ERR_PROTOCOL,
                           "engine.io: open packet needs pingInterval and pingTimeout (ms)");
    else if (json_ms(o, "maxPayload", false, UINT64_MAX >> 1, &mp))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "engine.io: open packet has a bad maxPayload");
    if (rc == 0) {
        snprintf(out->sid, sizeof out->sid, "%s", sid);
        out->ping_interval_ms = (uint32_t)pi;
        out->ping_timeout_ms = (uint32_t)pt;
        out->max_payload = mp;
    }
    json_decref(o);
    return rc;
}

/* ---- Socket.IO decoding ---- */

int agx_sio_placeholder_index(const json_t *v)
{
    if (!json_is_object(v) || !json_is_true(json_object_get(v, "_placeholder")))
        return -1;
    const json_t *num = json_object_get(v, "num");
    /* JS accepts any Number; only small non-negative integers can index an attachment. */
    if (!json_is_integer(num) || json_integer_value(num) < 0 ||
        json_integer_value(num) >= AGX_SIO_MAX_ATTACHMENTS)
        return -2;
    return (int)json_integer_value(num);
}

/* Every placeholder (an object with "_placeholder": true) in the tree must index an attachment.
 * Depth is bounded by jansson's parser (JSON_PARSER_MAX_DEPTH). */
static bool placeholders_ok(const json_t *v, unsigned nattach)
{
    if (json_is_object(v)) {
        if (json_is_true(json_object_get(v, "_placeholder"))) {
            int i = agx_sio_placeholder_index(v);
            return i >= 0 && (unsigned)i < nattach;
        }
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
            if (!placeholders_ok(e, nattach))
                return false;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            if (!placeholders_ok(e, nattach))
                return false;
    }
    return true;
}

static void packet_init(agx_sio_packet *p)
{
    memset(p, 0, sizeof *p);
    p->ack_id = AGX_SIO_NO_ACK;
    p->nsp[0] = '/';
}

void agx_sio_packet_clear(agx_sio_packet *p)
{
    json_decref(p->data);
    packet_init(p);
}

static int bad(agx_error *err, const char *what)
{
    return agx_error_set(err, AGX_ERR_PROTOCOL, "socket.io: %s", what);
}

/* Parses "<n>-" after a BINARY_* type. */
static int parse_nattach(const char *s, size_t len, size_t *i, unsigned *out, agx_error *err)
{
    size_t start = *i, v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (size_t)(s[*i] - '0');
        if (v > AGX_SIO_MAX_ATTACHMENTS)
            return agx_error_set(err, AGX_ERR_LIMIT,
                                 "socket.io: more than %d attachments in one packet",
                                 AGX_SIO_MAX_ATTACHMENTS);
        (*i)++;
    }
    if (*i == start || *i >= len || s[*i] != '-')
        return bad(err, "illegal attachments count");
    (*i)++;
    *out = (unsigned)v;
    return 0;
}

static int parse_nsp(const char *s, size_t len, size_t *i, agx_sio_packet *p, agx_error *err)
{
    if (*i >= len || s[*i] != '/')
        return 0;
    size_t start = *i;
    while (*i < len && s[*i] != ',')
        (*i)++;
    size_t n = *i - start;
    if (n > AGX_SIO_NSP_MAX)
        return bad(err, "namespace too long");
    memcpy(p->nsp, s + start, n);
    p->nsp[n] = '\0';
    if (!valid_nsp(p->nsp))
        return bad(err, "invalid namespace");
    if (*i < len)
        (*i)++; /* the ',' */
    return 0;
}

static int parse_ack_id(const char *s, size_t len, size_t *i, agx_sio_packet *p, agx_error *err)
{
    if (*i >= len || s[*i] < '0' || s[*i] > '9')
        return 0;
    int64_t v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[*i] - '0');
        if (v > AGX_SIO_ACK_ID_MAX)
            return bad(err, "ack id out of range");
        (*i)++;
    }
    p->ack_id = v;
    return 0;
}

static int check_event(agx_sio_packet *p, agx_error *err)
{
    const json_t *d = p->data;
    if (!json_is_array(d) || json_array_size(d) == 0)
        return bad(err, "event payload must be a non-empty array");
    const json_t *name = json_array_get(d, 0);
    if (json_is_string(name)) {
        p->event = json_string_value(name);
        if (is_reserved_event(p->event))
            return bad(err, "reserved event name");
    } else if (json_is_integer(name)) {
        snprintf(p->event_num, sizeof p->event_num, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(name));
        p->event = p->event_num;
    } else if (json_is_real(name)) {
        snprintf(p->event_num, sizeof p->event_num, "%.17g", json_real_value(name));
        p->event = p->event_num;
    } else {
        return bad(err, "event name must be a string or a number");
    }
    return 0;
}

static int check_payload(agx_sio_packet *p, agx_error *err)
{
    const json_t *d = p->data;
    switch (p->type) {
    case AGX_SIO_CONNECT:
        return (!d || json_is_object(d)) ? 0 : bad(err, "CONNECT payload must be an object");
    case AGX_SIO_DISCONNECT:
        return d ? bad(err, "DISCONNECT carries no payload") : 0;
    case AGX_SIO_CONNECT_ERROR:
        return (json_is_string(d) || json_is_object(d))
                   ? 0
                   : bad(err, "CONNECT_ERROR payload must be a string or an object");
    case AGX_SIO_EVENT:
    case AGX_SIO_BINARY_EVENT:
        return check_event(p, err);
    case AGX_SIO_ACK:
    case AGX_SIO_BINARY_ACK:
        if (!json_is_array(d))
            return bad(err, "ACK payload must be an array");
        return p->ack_id == AGX_SIO_NO_ACK ? bad(err, "ACK without an ack id") : 0;
    }
    return bad(err, "unknown packet type");
}

/* ---- the common event, without the JSON parser ---- */

/* Nearly every RPC event on the wire is ["<name>",{"_placeholder":true,"num":0}] with a plain
 * name: lexing that with jansson was a fifth of the client I/O thread's time on a stream of small
 * items. That exact text is built directly; any other spelling, even of equal JSON, takes the
 * parser. Each packet gets its own placeholder object: a shared one raced (jansson's inline
 * json_incref reads the count without an atomic before adding to it, TSan caught it). */
#define PLAIN_NAME_MAX 64
static const char ph_tail[] = "\",{\"_placeholder\":true,\"num\":0}]";

static bool plain_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == ':' || ch == '.' || ch == '-';
}

json_t *agx_sio_plain_event(const char *s, size_t len)
{
    const size_t tail = sizeof ph_tail - 1;
    if (len < 2 + tail || s[0] != '[' || s[1] != '"')
        return NULL;
    size_t n = len - 2 - tail;
    if (n == 0 || n > PLAIN_NAME_MAX || memcmp(s + 2 + n, ph_tail, tail) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!plain_name_char(s[2 + i]))
            return NULL;
    /* jansson's *_new calls take the value even when they fail. */
    json_t *ph = json_object();
    if (ph && (json_object_set_new_nocheck(ph, "_placeholder", json_true()) != 0 ||
               json_object_set_new_nocheck(ph, "num", json_integer(0)) != 0)) {
        json_decref(ph);
        ph = NULL;
    }
    json_t *a = ph ? json_array() : NULL;
    if (a && json_array_append_new(a, json_stringn_nocheck(s + 2, n)) != 0) {
        json_decref(a);
        a = NULL;
    }
    if (!a) {
        json_decref(ph);
        return NULL;
    }
    if (json_array_append_new(a, ph) != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

int agx_sio_decode(const char *s, size_t len, agx_sio_packet *out, agx_error *err)
{
    packet_init(out);
    if (len == 0 || s[0] < '0' || s[0] > '6')
        return bad(err, len ? "unknown packet type" : "empty packet");
    out->type = (agx_sio_type)(s[0] - '0');
    size_t i = 1;
    bool binary = out->type == AGX_SIO_BINARY_EVENT || out->type == AGX_SIO_BINARY_ACK;
    int rc = 0;
    if (binary)
        rc = parse_nattach(s, len, &i, &out->nattach, err);
    if (rc == 0)
        rc = parse_nsp(s, len, &i, out, err);
    if (rc == 0)
        rc = parse_ack_id(s, len, &i, out, err);
    if (rc == 0 && i < len && out->type == AGX_SIO_BINARY_EVENT && out->nattach == 1)
        out->data = agx_sio_plain_event(s + i, len - i);
    if (rc == 0 && i < len && !out->data) {
        json_error_t jerr;
        out->data = json_loadb(s + i, len - i, JSON_DECODE_ANY, &jerr);
        if (!out->data)
            rc = bad(err, "invalid JSON payload");
    }
    if (rc == 0)
        rc = check_payload(out, err);
    if (rc == 0 && binary && !placeholders_ok(out->data, out->nattach))
        rc = bad(err, "illegal attachment placeholder");
    if (rc)
        agx_sio_packet_clear(out);
    return rc;
}

/* ---- Socket.IO encoding ---- */

static void w_json_string(wbuf *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    w_ch(w, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc) {
            w_str(w, esc);
        } else if (*p < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            w_put(w, u, 6);
        } else {
            w_ch(w, (char)*p);
        }
    }
    w_ch(w, '"');
}

static int w_header(wbuf *w, agx_sio_type type, const char *nsp, int64_t ack_id,
                    unsigned nattach, agx_error *err)
{
    bool binary = type == AGX_SIO_BINARY_EVENT || type == AGX_SIO_BINARY_ACK;
    if ((unsigned)type > AGX_SIO_BINARY_ACK)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: bad packet type %d", type);
    if (nattach > AGX_SIO_MAX_ATTACHMENTS || (!binary && nattach))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: bad attachment count %u",
                             nattach);
    if (ack_id != AGX_SIO_NO_ACK && (ack_id < 0 || ack_id > AGX_SIO_ACK_ID_MAX))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: ack id out of range");
    bool has_nsp = nsp && strcmp(nsp, "/") != 0;
    if (has_nsp && !valid_nsp(nsp))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: invalid namespace");
    w_ch(w, '4');
    w_ch(w, (char)('0' + type));
    if (binary) {
        w_u64(w, nattach);
        w_ch(w, '-');
    }
    if (has_nsp) {
        w_str(w, nsp);
        w_ch(w, ',');
    }
    if (ack_id != AGX_SIO_NO_ACK)
        w_u64(w, (uint64_t)ack_id);
    return 0;
}

int agx_sio_encode(char *buf, size_t cap, agx_sio_type type, const char *nsp, int64_t ack_id,
                   unsigned nattach, const json_t *data, size_t *len, agx_error *err)
{
    wbuf w = {buf, cap, 0};
    int rc = w_header(&w, type, nsp, ack_id, nattach, err);
    if (rc)
        return rc;
    if (data)
        w_json(&w, data);
    return w_finish(&w, len, err);
}

static const char placeholder0[] = "{\"_placeholder\":true,\"num\":0}";

/* Writes the array [<first?>, <args…>, <placeholder?>]. */
static void w_args(wbuf *w, const char *first, const json_t *args, int with_attachment)
{
    bool comma = false;
    w_ch(w, '[');
    if (first) {
        w_json_string(w, first);
        comma = true;
    }
    size_t i;
    json_t *e;
    json_array_foreach(args, i, e) {
        if (comma)
            w_ch(w, ',');
        w_json(w, e);
        comma = true;
    }
    if (with_attachment) {
        if (comma)
            w_ch(w, ',');
        w_str(w, placeholder0);
    }
    w_ch(w, ']');
}

static int check_args(const json_t *args, agx_error *err)
{
    if (args && !json_is_array(args))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: args must be an array");
    return 0;
}

int agx_sio_encode_event(char *buf, size_t cap, const char *nsp, const char *event,
                         const json_t *args, int with_attachment, int64_t ack_id, size_t *len,
                         agx_error *err)
{
    if (!event || !*event || !valid_utf8((const unsigned char *)event, strlen(event)))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "socket.io: event name must be non-empty UTF-8");
    if (is_reserved_event(event))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "socket.io: '%s' is a reserved event name", event);
    int rc = check_args(args, err);
    if (rc)
        return rc;
    wbuf w = {buf, cap, 0};
    rc = w_header(&w, with_attachment ? AGX_SIO_BINARY_EVENT : AGX_SIO_EVENT, nsp, ack_id,
                  with_attachment ? 1 : 0, err);
    if (rc)
        return rc;
    w_args(&w, event, args, with_attachment);
    return w_finish(&w, len, err);
}

int agx_sio_encode_ack(char *buf, size_t cap, const char *nsp, int64_t ack_id, const json_t *args,
                       int with_attachment, size_t *len, agx_error *err)
{
    if (ack_id == AGX_SIO_NO_ACK)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: an ACK needs an ack id");
    int rc = check_args(args, err);
    if (rc)
        return rc;
    wbuf w = {buf, cap, 0};
    rc = w_header(&w, with_attachment ? AGX_SIO_BINARY_ACK : AGX_SIO_ACK, nsp, ack_id,
                  with_attachment ? 1 : 0, err);
    if (rc)
        return rc;
    w_args(&w, NULL, args, with_attachment);
    return w_finish(&w, len, err);
}

/* ---- reassembly ---- */

void agx_sio_decoder_init(agx_sio_decoder *d, size_t max_held_bytes)
{
    memset(d, 0, sizeof *d);
    packet_init(&d->pkt);
    d->max_held_bytes = max_held_bytes;
}

static void release(agx_sio_decoder *d)
{
    for (unsigned i = 0; i < AGX_SIO_MAX_ATTACHMENTS; i++) {
        free(d->owned[i]);
        d->owned[i] = NULL;
    }
    agx_sio_packet_clear(&d->pkt);
    d->received = 0;
    d->held_bytes = 0;
}

void agx_sio_decoder_dispose(agx_sio_decoder *d)
{
    release(d);
    d->state = AGX_SIO_DEC_IDLE;
}

static int fail(agx_sio_decoder *d, int rc)
{
    release(d);
    d->state = AGX_SIO_DEC_FAILED;
    return rc;
}

/* Leaves a delivered packet behind before the next frame. */
static int begin_feed(agx_sio_decoder *d, agx_error *err)
{
    if (d->state == AGX_SIO_DEC_FAILED)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "socket.io: decoder already failed");
    if (d->state == AGX_SIO_DEC_READY) {
        release(d);
        d->state = AGX_SIO_DEC_IDLE;
    }
    return 0;
}

int agx_sio_decoder_text(agx_sio_decoder *d, const char *s, size_t len, agx_error *err)
{
    int rc = begin_feed(d, err);
    if (rc)
        return rc;
    if (d->state == AGX_SIO_DEC_ATTACHMENTS)
        return fail(d, bad(err, "text packet while binary attachments are pending"));
    rc = agx_sio_decode(s, len, &d->pkt, err);
    if (rc)
        return fail(d, rc);
    bool binary = d->pkt.type == AGX_SIO_BINARY_EVENT || d->pkt.type == AGX_SIO_BINARY_ACK;
    d->state = (binary && d->pkt.nattach > 0) ? AGX_SIO_DEC_ATTACHMENTS : AGX_SIO_DEC_READY;
    return d->state == AGX_SIO_DEC_READY;
}

int agx_sio_decoder_binary(agx_sio_decoder *d, const uint8_t *b, size_t len, agx_error *err)
{
    int rc = begin_feed(d, err);
    if (rc)
        return rc;
    if (d->state != AGX_SIO_DEC_ATTACHMENTS)
        return fail(d, bad(err, "binary frame without a BINARY_EVENT/BINARY_ACK header"));
    unsigned i = d->received++;
    if (d->received == d->pkt.nattach) {
        /* The last attachment completes the packet: hand out the caller's bytes, no copy. */
        d->pkt.attach[i] = (agx_sio_bytes){b, len};
        d->state = AGX_SIO_DEC_READY;
        return 1;
    }
    if (len > d->max_held_bytes - d->held_bytes)
        return fail(d, agx_error_set(err, AGX_ERR_LIMIT,
                                     "socket.io: pending attachments exceed %zu bytes",
                                     d->max_held_bytes));
    d->owned[i] = malloc(len ? len : 1);
    if (!d->owned[i])
        return fail(d, agx_error_set(err, AGX_ERR_NO_MEMORY, "socket.io: out of memory"));
    if (len)
        memcpy(d->owned[i], b, len);
    d->held_bytes += len;
    d->pkt.attach[i] = (agx_sio_bytes){d->owned[i], len};
    return 0;
}
