/* calls.c — one call's life inside the worker: registered when its `call` frame arrives, run on a
 * pool thread (resolve, bind, invoke), fed by `in`/`credit`/`cancel` frames from the reader thread,
 * and ended with exactly one terminal frame. Also the agx_ctx operations modules reach through
 * libagentix (module_ctx.h): emit with credit flow control, recv with a bounded inbound queue. */
#include "runtime/worker/worker.h"

#include "runtime/wire/rpc_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Consumed inputs are granted back in batches of this many, or all at once when the queue runs
 * empty (so the host is never left waiting on credit the function could already take). */
#define IN_GRANT_BATCH 16u

/* ---- registry (w->mu held) ---- */

bool wk_registry_add(wk_worker *w, wk_call *c)
{
    if (wk_registry_find(w, c->id))
        return false;
    size_t b = c->id % AGX_ARRAY_LEN(w->calls);
    c->reg_next = w->calls[b];
    w->calls[b] = c;
    w->n_calls++;
    return true;
}

wk_call *wk_registry_find(wk_worker *w, uint64_t id)
{
    for (wk_call *c = w->calls[id % AGX_ARRAY_LEN(w->calls)]; c; c = c->reg_next)
        if (c->id == id)
            return c;
    return NULL;
}

void wk_registry_remove(wk_worker *w, wk_call *c)
{
    pthread_mutex_lock(&w->mu);
    for (wk_call **pp = &w->calls[c->id % AGX_ARRAY_LEN(w->calls)]; *pp; pp = &(*pp)->reg_next)
        if (*pp == c) {
            *pp = c->reg_next;
            if (--w->n_calls == 0)
                pthread_cond_broadcast(&w->drained);
            break;
        }
    pthread_mutex_unlock(&w->mu);
}

void wk_call_cancel_locked(wk_call *c)
{
    if (c->cancelled)
        return;
    c->cancelled = true;
    pthread_cond_broadcast(&c->cv);
    if (c->cancel_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(c->cancel_fd, &one, sizeof one);
        (void)n; /* an eventfd write of 1 cannot fail short of overflow */
    }
}

/* ---- the context operations ---- */

static wk_call *of(agx_ctx *ctx) { return (wk_call *)ctx; }

/* The first failure wins (a bidi input thread and the function's thread may both report one). */
static void record_failure(wk_call *c, const char *type, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    if (!c->failed) {
        c->failed = true;
        snprintf(c->fail_type, sizeof c->fail_type, "%s", type && *type ? type : AGX_RPC_GENERIC);
        /* A longer message is cut at the buffer, as agx_error's are. */
        snprintf(c->fail_msg, sizeof c->fail_msg, "%.*s", (int)sizeof c->fail_msg - 1, msg ? msg : "");
    }
    pthread_mutex_unlock(&c->mu);
}

static const agx_value *ctx_args(agx_ctx *ctx) { return of(ctx)->args; }

#define WK_TAIL_MIN ((size_t)16 << 10) /* smaller binaries are copied with their header */

static int ctx_emit(agx_ctx *ctx, agx_value *item)
{
    wk_call *c = of(ctx);
    char msg[AGX_ERROR_MESSAGE_MAX];
    if (c->shape == AGX_SHAPE_UNARY) {
        agx_value_free(item);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    if (!wk_type_accepts(c->tgt->fn->result_type, item, false)) {
        snprintf(msg, sizeof msg, "%s: item %llu is %s, the function declares %s items", c->target,
                 (unsigned long long)c->n_out, agx_value_type_name(agx_value_type_of(item)),
                 agx_type_name(c->tgt->fn->result_type));
        record_failure(c, AGX_RPC_VALIDATION, msg);
        agx_value_free(item);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&c->mu);
    while (c->credit == 0 && !c->cancelled)
        pthread_cond_wait(&c->cv, &c->mu); /* woken by credit, cancel, shutdown (which cancels) */
    bool cancelled = c->cancelled;
    if (!cancelled)
        c->credit--;
    pthread_mutex_unlock(&c->mu);
    if (cancelled) {
        agx_value_free(item);
        return AGX_ERR_CANCELLED;
    }
    agx_error err;
    c->out.len = 0;
    /* A large binary item goes into the bulk ring when it has room, else it leaves from the value
     * itself after a header: no copy into c->out either way. */
    size_t blen = 0;
    const void *bin = agx_value_type_of(item) == AGX_VALUE_BINARY
                          ? agx_value_get_binary(item, &blen) : NULL;
    bool tail = bin && blen >= WK_TAIL_MIN;
    if (tail && blen >= AGX_RING_MIN_ITEM && wk_send_ring_item(c->w, &c->out, c->id, bin, blen)) {
        c->n_out++;
        agx_value_free(item);
        return 0;
    }
    c->out.len = 0; /* the ring attempt may have built a frame in it */
    int rc = tail ? agx_frame_write_bin_head(&c->out, AGX_FRAME_ITEM, c->id, blen, &err)
                  : agx_frame_write_value(&c->out, AGX_FRAME_ITEM, c->id, item, &err);
    if (rc) {
        agx_value_free(item);
        record_failure(c, rc == AGX_ERR_LIMIT ? AGX_RPC_LIMIT : AGX_RPC_INTERNAL, err.message);
        return rc;
    }
    c->n_out++;
    if (tail)
        wk_send_tail(c->w, &c->out, bin, blen);
    else
        wk_send(c->w, &c->out);
    agx_value_free(item);
    return 0;
}

/* Decodes a queued input and checks it against the declared input type. */
static int take_input(wk_call *c, wk_in_item *raw, agx_value **item)
{
    agx_error err;
    char msg[2 * AGX_ERROR_MESSAGE_MAX]; /* room for err.message; cut to fit when recorded */
    agx_codec_limits lim = agx_codec_limits_default();
    lim.max_bytes = c->w->max_frame;
    int rc = agx_value_from_msgpack(raw->data, raw->len, &lim, item, &err);
    free(raw);
    if (rc) {
        snprintf(msg, sizeof msg, "%s: input item %llu cannot be decoded: %s", c->target,
                 (unsigned long long)c->n_in, err.message);
        record_failure(c, AGX_RPC_BAD_REQUEST, msg);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    if (!wk_type_accepts(c->tgt->fn->input_type, *item, false)) {
        snprintf(msg, sizeof msg, "%s: input item %llu is %s, the function takes %s items", c->target,
                 (unsigned long long)c->n_in, agx_value_type_name(agx_value_type_of(*item)),
                 agx_type_name(c->tgt->fn->input_type));
        record_failure(c, AGX_RPC_VALIDATION, msg);
        agx_value_free(*item);
        *item = NULL;
        return AGX_ERR_INVALID_ARGUMENT;
    }
    c->n_in++;
    return 1;
}

static int ctx_recv(agx_ctx *ctx, int timeout_ms, agx_value **item)
{
    wk_call *c = of(ctx);
    if (c->shape != AGX_SHAPE_BIDI)
        return AGX_ERR_INVALID_ARGUMENT;
    int64_t deadline = agx_deadline_ms(timeout_ms);
    pthread_mutex_lock(&c->mu);
    int wrc = 0;
    while (!c->in_head && !c->in_ended && !c->cancelled && wrc != ETIMEDOUT)
        wrc = agx_cond_wait_until(&c->cv, &c->mu, deadline);
    if (c->cancelled) {
        pthread_mutex_unlock(&c->mu);
        return AGX_ERR_CANCELLED;
    }
    wk_in_item *raw = c->in_head;
    if (!raw) {
        bool ended = c->in_ended;
        pthread_mutex_unlock(&c->mu);
        return ended ? 0 : AGX_ERR_TIMEOUT;
    }
    c->in_head = raw->next;
    if (!c->in_head)
        c->in_tail = NULL;
    c->in_len--;
    uint32_t grant = 0;
    if (++c->in_ungranted >= IN_GRANT_BATCH || !c->in_head) {
        grant = c->in_ungranted;
        c->in_ungranted = 0;
    }
    bool ended = c->in_ended; /* after end_in the host sends nothing more: no credit needed */
    pthread_mutex_unlock(&c->mu);
    if (grant && !ended) {
        c->in_out.len = 0;
        if (agx_frame_write_credit(&c->in_out, AGX_FRAME_IN_CREDIT, c->id, grant) == 0)
            wk_send(c->w, &c->in_out);
    }
    return take_input(c, raw, item);
}

static bool ctx_cancelled(agx_ctx *ctx)
{
    wk_call *c = of(ctx);
    pthread_mutex_lock(&c->mu);
    bool r = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return r;
}

static int ctx_cancel_fd(agx_ctx *ctx)
{
    wk_call *c = of(ctx);
    pthread_mutex_lock(&c->mu);
    if (c->cancel_fd < 0) {
        c->cancel_fd = eventfd(c->cancelled ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->cancel_fd < 0)
            fprintf(stderr, "agentix-worker: eventfd for call %llu: %s\n",
                    (unsigned long long)c->id, strerror(errno));
    }
    int fd = c->cancel_fd;
    pthread_mutex_unlock(&c->mu);
    return fd;
}

static int ctx_ret(agx_ctx *ctx, agx_value *value)
{
    wk_call *c = of(ctx);
    if (c->shape != AGX_SHAPE_UNARY) {
        agx_value_free(value);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    agx_value_free(c->result);
    c->result = value;
    return 0;
}

static int ctx_fail(agx_ctx *ctx, const char *type, const char *message)
{
    record_failure(of(ctx), type, message);
    return AGX_ERR_REMOTE;
}

static const agx_ctx_ops call_ops = {
    .args = ctx_args,
    .emit = ctx_emit,
    .recv = ctx_recv,
    .cancelled = ctx_cancelled,
    .cancel_fd = ctx_cancel_fd,
    .ret = ctx_ret,
    .fail = ctx_fail,
};

/* ---- lifecycle ---- */

static unsigned char *dup_span(agx_mp_span s)
{
    if (!s.len)
        return NULL;
    unsigned char *d = malloc(s.len);
    if (d)
        memcpy(d, s.data, s.len);
    return d;
}

wk_call *wk_call_new(wk_worker *w, const agx_frame *f)
{
    wk_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ctx.ops = &call_ops;
    c->w = w;
    c->id = f->id;
    c->describe = f->type == AGX_FRAME_DESCRIBE;
    c->shape = f->shape;
    c->credit = f->window;
    c->cancel_fd = -1;
    c->target = malloc(f->target_len + 1);
    c->args_raw = dup_span(f->args);
    c->kwargs_raw = dup_span(f->kwargs);
    if (!c->target || (f->args.len && !c->args_raw) || (f->kwargs.len && !c->kwargs_raw)) {
        free(c->target);
        free(c->args_raw);
        free(c->kwargs_raw);
        free(c);
        return NULL;
    }
    memcpy(c->target, f->target, f->target_len);
    c->target[f->target_len] = '\0';
    c->target_len = f->target_len;
    c->args_len = f->args.len;
    c->kwargs_len = f->kwargs.len;
    pthread_mutex_init(&c->mu, NULL);
    agx_cond_init(&c->cv);
    return c;
}

void wk_call_free(wk_call *c)
{
    if (!c)
        return;
    for (wk_in_item *it = c->in_head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    if (c->cancel_fd >= 0)
        close(c->cancel_fd);
    agx_value_free(c->args);
    agx_value_free(c->result);
    agx_buf_free(&c->out);
    agx_buf_free(&c->in_out);
    free(c->target);
    free(c->args_raw);
    free(c->kwargs_raw);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* Decodes one of the call's argument containers (absent → empty). */
static int decode_part(wk_call *c, const unsigned char *raw, size_t len, bool array, agx_value **out)
{
    agx_error err;
    agx_codec_limits lim = agx_codec_limits_default();
    lim.max_bytes = c->w->max_frame;
    if (!raw) {
        *out = array ? agx_value_array() : agx_value_map();
        return *out ? 0 : -1;
    }
    if (agx_value_from_msgpack(raw, len, &lim, out, &err) != 0) {
        char msg[2 * AGX_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s: %s cannot be decoded: %s", c->target, array ? AGX_F_ARGS : AGX_F_KWARGS,
                 err.message);
        record_failure(c, AGX_RPC_BAD_REQUEST, msg);
        return -1;
    }
    return 0;
}

/* Everything before the function runs; false with the failure recorded. */
static bool prepare(wk_call *c)
{
    char type[AGX_ERROR_TYPE_MAX], msg[AGX_ERROR_MESSAGE_MAX];
    if (wk_resolve(&c->w->resolver, c->target, &c->tgt, type, sizeof type, msg, sizeof msg) != 0) {
        record_failure(c, type, msg);
        return false;
    }
    if (c->describe)
        return true;
    if (c->tgt->fn->shape != c->shape) {
        snprintf(msg, sizeof msg, "%s is a %s function but was called as %s; use the %s call", c->target,
                 agx_shape_name(c->tgt->fn->shape), agx_shape_name(c->shape),
                 agx_shape_name(c->tgt->fn->shape));
        record_failure(c, AGX_RPC_SHAPE_MISMATCH, msg);
        return false;
    }
    agx_value *args = NULL, *kwargs = NULL;
    bool ok = decode_part(c, c->args_raw, c->args_len, true, &args) == 0 &&
              decode_part(c, c->kwargs_raw, c->kwargs_len, false, &kwargs) == 0;
    if (ok && wk_bind(c->tgt, args, kwargs, &c->args, msg, sizeof msg) != 0) {
        record_failure(c, AGX_RPC_VALIDATION, msg);
        ok = false;
    }
    if (!ok && !c->failed)
        record_failure(c, AGX_RPC_INTERNAL, "out of memory decoding arguments");
    agx_value_free(args);
    agx_value_free(kwargs);
    free(c->args_raw);
    free(c->kwargs_raw);
    c->args_raw = c->kwargs_raw = NULL;
    return ok;
}

/* The success frame: result {value} for unary, description, or end for stream/bidi. */
static int write_success(wk_call *c, agx_error *err)
{
    if (c->describe) {
        agx_value *d = wk_describe(c->tgt);
        int rc = d ? agx_frame_write_value(&c->out, AGX_FRAME_DESCRIPTION, c->id, d, err)
                   : AGX_ERR_NO_MEMORY;
        agx_value_free(d);
        return rc;
    }
    if (c->shape != AGX_SHAPE_UNARY)
        return agx_frame_write_id(&c->out, AGX_FRAME_END, c->id);
    if (!wk_type_accepts(c->tgt->fn->result_type, c->result, false)) {
        char msg[AGX_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s returned %s, the function declares a %s result", c->target,
                 agx_value_type_name(agx_value_type_of(c->result)),
                 agx_type_name(c->tgt->fn->result_type));
        record_failure(c, AGX_RPC_VALIDATION, msg);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    return agx_frame_write_value(&c->out, AGX_FRAME_RESULT, c->id, c->result, err);
}

static void send_terminal(wk_call *c, int fn_rc)
{
    /* After this no frame refers to the call, so the server may reuse its id at once. */
    wk_registry_remove(c->w, c);
    c->out.len = 0;
    if (c->cancelled && !c->forced) {
        wk_send_error(c->w, &c->out, c->id, AGX_RPC_CANCELLED, "remote call cancelled", true);
        return;
    }
    if (!c->failed && fn_rc < 0) {
        char msg[AGX_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s returned %s without calling agx_ctx_fail", c->target,
                 agx_error_code_name(fn_rc));
        record_failure(c, AGX_RPC_INTERNAL, msg);
    }
    agx_error err;
    if (!c->failed) {
        int rc = write_success(c, &err);
        if (rc == 0) {
            wk_send(c->w, &c->out);
            return;
        }
        if (!c->failed)
            record_failure(c, rc == AGX_ERR_LIMIT ? AGX_RPC_LIMIT : AGX_RPC_INTERNAL, err.message);
    }
    wk_send_error(c->w, &c->out, c->id, c->fail_type, c->fail_msg, false);
}

void wk_call_run(wk_call *c)
{
    int fn_rc = 0;
    pthread_mutex_lock(&c->mu);
    bool cancelled = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    if (!cancelled && prepare(c) && !c->describe)
        fn_rc = c->tgt->fn->fn(&c->ctx);
    send_terminal(c, fn_rc); /* reads cancelled/forced after leaving the registry (w->mu orders it) */
    wk_call_free(c);
}
