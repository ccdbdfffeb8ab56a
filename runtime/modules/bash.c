/* bash.c — the built-in `agentix.bash` module: shell commands inside the sandbox, called from the
 * host as agentix.bash::run (collected), ::run_stream (output streamed as it comes, paced by the
 * host through flow control) and ::shell (a bidi session: input items feed the shell's stdin). */
#include "oom.h"
#include "proc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_OUTPUT_LIMIT ((int64_t)32 << 20) /* stdout + stderr must fit one 64 MiB frame */

/* timeout: nil (none) or a positive number of seconds. 0 with *out, or a failed call. */
static int get_timeout(agx_ctx *ctx, double *out)
{
    const agx_value *t = agx_ctx_arg(ctx, "timeout");
    *out = 0;
    if (agx_value_type_of(t) == AGX_VALUE_NIL)
        return 0;
    *out = agx_value_get_double(t);
    if (!(*out > 0) || *out > 1e7)
        return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "timeout must be a positive number of seconds");
    return 0;
}

/* Starts the command (the `command` argument when with_command, else an interactive shell). */
static int start(agx_ctx *ctx, proc *p, bool with_command, bool with_stdin)
{
    double timeout;
    int rc = get_timeout(ctx, &timeout);
    if (rc)
        return rc;
    bool bad = false;
    const char *command = with_command ? proc_string_arg(ctx, "command", &bad) : NULL;
    const char *cwd = proc_string_arg(ctx, "cwd", &bad);
    if (bad)
        return AGX_ERR_REMOTE;
    return proc_start(ctx, p, command, cwd, agx_ctx_arg(ctx, "env"), with_stdin, timeout);
}

/* ---- run: collect both streams, each up to max_output bytes ---- */

typedef struct collected {
    agx_buf out[2];
    size_t limit;
    bool truncated;
} collected;

static int collect_sink(void *arg, int stream, const char *data, size_t len)
{
    collected *c = arg;
    agx_buf *b = &c->out[stream - 1];
    size_t room = c->limit - b->len;
    if (len > room) {
        c->truncated = true; /* keep draining so the command never blocks on a full pipe */
        len = room;
    }
    return len ? agx_buf_append(b, data, len) : 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        need = 2, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, cp = c & 0x07;
    else
        return 0;
    if (need >= n)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return need + 1;
}

/* Output as a string for hosts (JSON ones included): invalid UTF-8 becomes U+FFFD. */
static agx_value *text_of(const agx_buf *b)
{
    const unsigned char *s = (const unsigned char *)b->data;
    size_t n = b->len, i = 0;
    while (i < n && s[i] < 0x80)
        i++;
    if (i == n) /* plain ASCII, the common case: no copy */
        return agx_value_string_n(n ? b->data : "", n);
    agx_buf t = {0};
    agx_buf_append(&t, s, i);
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            agx_buf_append(&t, s + i, k);
            i += k;
        } else {
            agx_buf_append(&t, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    agx_value *v = agx_value_string_n(t.data, t.len);
    agx_buf_free(&t);
    return v;
}

static int run(agx_ctx *ctx)
{
    int64_t max_output = agx_value_get_int64(agx_ctx_arg(ctx, "max_output"));
    if (max_output < 0 || max_output > MAX_OUTPUT_LIMIT)
        return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "max_output must be in 0..%lld bytes",
                            (long long)MAX_OUTPUT_LIMIT);
    proc p;
    long long ooms = agx_oom_kills();
    int rc = start(ctx, &p, true, false);
    if (rc)
        return rc;
    collected c = {.limit = (size_t)max_output};
    rc = proc_pump(ctx, &p, collect_sink, &c);
    int code = proc_finish(&p, rc != 0);
    if (rc == 0) {
        agx_value *r = agx_value_map();
        agx_value_map_set(r, "exit_code", agx_value_int(code));
        /* Killed (SIGKILL) while the cgroup's OOM kills went up: the memory limit did it. */
        long long now = code == 128 + 9 && ooms >= 0 ? agx_oom_kills() : -1;
        agx_value_map_set(r, "oom_killed", agx_value_bool(now > ooms));
        agx_value_map_set(r, "stdout", text_of(&c.out[0]));
        agx_value_map_set(r, "stderr", text_of(&c.out[1]));
        agx_value_map_set(r, "timed_out", agx_value_bool(atomic_load(&p.timed_out)));
        agx_value_map_set(r, "truncated", agx_value_bool(c.truncated));
        rc = agx_ctx_return(ctx, r);
    } else if (rc != AGX_ERR_CANCELLED) {
        rc = agx_ctx_fail(ctx, "MemoryError", "out of memory collecting output");
    }
    agx_buf_free(&c.out[0]);
    agx_buf_free(&c.out[1]);
    return rc;
}

/* ---- run_stream / shell: output items as they come ---- */

static int emit_sink(void *arg, int stream, const char *data, size_t len)
{
    agx_value *item = agx_value_map();
    agx_value_map_set(item, "type", agx_value_string(stream == 1 ? "stdout" : "stderr"));
    agx_value_map_set(item, "data", agx_value_binary(data, len));
    return agx_ctx_emit(arg, item); /* blocks while the host is behind: the pipe fills, the command waits */
}

static int emit_exit(agx_ctx *ctx, int code, const proc *p)
{
    agx_value *item = agx_value_map();
    agx_value_map_set(item, "type", agx_value_string("exit"));
    agx_value_map_set(item, "exit_code", agx_value_int(code));
    agx_value_map_set(item, "timed_out", agx_value_bool(atomic_load(&p->timed_out)));
    return agx_ctx_emit(ctx, item);
}

static int run_stream(agx_ctx *ctx)
{
    proc p;
    int rc = start(ctx, &p, true, false);
    if (rc)
        return rc;
    rc = proc_pump(ctx, &p, emit_sink, ctx);
    int code = proc_finish(&p, rc != 0);
    return rc ? rc : emit_exit(ctx, code, &p);
}

/* The input side of `shell`, on its own thread: items from the host go to the shell's stdin; the
 * write waits for the shell to read, so a shell that does not read stops taking input (and the
 * host runs out of input credit). */
typedef struct feeder {
    agx_ctx *ctx;
    proc *p;
    atomic_bool stop;
} feeder;

static bool write_all_input(feeder *f, const char *data, size_t len)
{
    while (len > 0 && !atomic_load(&f->stop)) {
        ssize_t n = write(f->p->in_fd, data, len);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = f->p->in_fd, .events = POLLOUT};
            poll(&pf, 1, 200);
        } else if (n < 0 && errno != EINTR) {
            return false; /* the shell closed its stdin or exited */
        }
    }
    return true;
}

static void *feed(void *arg)
{
    feeder *f = arg;
    while (!atomic_load(&f->stop)) {
        agx_value *item;
        int rc = agx_ctx_recv(f->ctx, 200, &item);
        if (rc == AGX_ERR_TIMEOUT)
            continue;
        if (rc == 0) {
            close(f->p->in_fd); /* end of input: the shell sees EOF */
            f->p->in_fd = -1;
            break;
        }
        if (rc < 0)
            break;
        agx_value_type t = agx_value_type_of(item);
        size_t len = 0;
        const char *data = t == AGX_VALUE_STRING ? agx_value_get_string(item, &len)
                           : t == AGX_VALUE_BINARY ? agx_value_get_binary(item, &len)
                                                   : NULL;
        if (t != AGX_VALUE_STRING && t != AGX_VALUE_BINARY) {
            agx_value_free(item);
            agx_ctx_fail(f->ctx, AGX_REMOTE_VALIDATION, "shell input items must be string or binary, got %s",
                         agx_value_type_name(t));
            proc_kill(f->p);
            break;
        }
        bool ok = write_all_input(f, data, len);
        agx_value_free(item);
        if (!ok)
            break;
    }
    return NULL;
}

static int shell(agx_ctx *ctx)
{
    proc p;
    int rc = start(ctx, &p, false, true);
    if (rc)
        return rc;
    feeder f = {.ctx = ctx, .p = &p};
    pthread_t th;
    if (pthread_create(&th, NULL, feed, &f) != 0) {
        proc_finish(&p, true);
        return agx_ctx_fail(ctx, "OSError", "cannot start the input thread");
    }
    rc = proc_pump(ctx, &p, emit_sink, ctx);
    if (rc)
        proc_kill(&p);
    atomic_store(&f.stop, true);
    pthread_join(th, NULL);
    int code = proc_finish(&p, rc != 0);
    return rc ? rc : emit_exit(ctx, code, &p);
}

static const agx_param run_params[] = {
    {"command", AGX_TYPE_STRING, NULL},  {"cwd", AGX_TYPE_STRING, "null"},
    {"env", AGX_TYPE_MAP, "null"},       {"timeout", AGX_TYPE_NUMBER, "null"},
    {"max_output", AGX_TYPE_INT, "10485760"},
};
static const agx_param stream_params[] = {
    {"command", AGX_TYPE_STRING, NULL},
    {"cwd", AGX_TYPE_STRING, "null"},
    {"env", AGX_TYPE_MAP, "null"},
    {"timeout", AGX_TYPE_NUMBER, "null"},
};
static const agx_param shell_params[] = {
    {"cwd", AGX_TYPE_STRING, "null"},
    {"env", AGX_TYPE_MAP, "null"},
    {"timeout", AGX_TYPE_NUMBER, "null"},
};

static const agx_function functions[] = {
    {.name = "run", .shape = AGX_SHAPE_UNARY, .fn = run, .params = run_params,
     .n_params = AGX_ARRAY_LEN(run_params), .result_type = AGX_TYPE_MAP,
     .doc = "Runs command with bash -c (or /bin/sh) in its own process group; returns {exit_code, "
            "stdout, stderr, timed_out, truncated, oom_killed}. timeout (seconds) kills the group; "
            "oom_killed: the memory limit's OOM killer ended it; each stream "
            "keeps at most max_output bytes (32 MiB max). exit_code is 128+N after signal N."},
    {.name = "run_stream", .shape = AGX_SHAPE_STREAM, .fn = run_stream, .params = stream_params,
     .n_params = AGX_ARRAY_LEN(stream_params), .result_type = AGX_TYPE_MAP,
     .doc = "Like run, streaming {type:\"stdout\"|\"stderr\", data:binary} chunks as they come, then "
            "{type:\"exit\", exit_code, timed_out}."},
    {.name = "shell", .shape = AGX_SHAPE_BIDI, .fn = shell, .params = shell_params,
     .n_params = AGX_ARRAY_LEN(shell_params), .result_type = AGX_TYPE_MAP, .input_type = AGX_TYPE_ANY,
     .doc = "A shell session: string/binary input items go to its stdin, end of input closes it; "
            "output items as run_stream, ending with the exit item."},
};
AGX_MODULE("agentix.bash", functions);
