/* test_modules.c — the built-in modules agentix.bash and agentix.files, called through a real
 * agentix-worker over its pipes: commands with exit codes, output, cwd, env, timeouts, truncation,
 * cancellation, streaming and a shell session; file upload/download/stat/list and every way out of
 * the files root refused (with openat2 and with the component walk).
 *
 * Usage: test_modules <agentix-worker> <built-in module dir> [valgrind]
 * With "valgrind" the worker (and so the modules) runs under memcheck and must exit cleanly. */
#include "check.h"
#include "wkharness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *worker_path, *module_dir;
static char tmp_root[PATH_MAX];   /* files root */
static char tmp_base[256];        /* its parent, holding "outside" */
static uint64_t next_id = 1;

static bool under_valgrind;

static wkh *start(const char *const *env)
{
    if (under_valgrind) {
        const char *argv[] = {"/usr/bin/valgrind", "--quiet", "--error-exitcode=99",
                              "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                              "--show-leak-kinds=definite,indirect", worker_path, NULL};
        return wkh_start(argv, module_dir, env);
    }
    const char *argv[] = {worker_path, NULL};
    return wkh_start(argv, module_dir, env);
}

static void finish(wkh *h)
{
    int st = wkh_finish(h, 30000);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status %#x", st);
}

/* agentix.bash::run with keyword arguments; returns the result map (caller frees). */
static agx_value *bash_run(wkh *h, agx_value *kwargs)
{
    return wkh_unary(h, next_id++, "agentix.bash::run", NULL, kwargs);
}

static const char *str(const agx_value *m, const char *k) { return agx_value_get_string(agx_value_map_get(m, k), NULL); }
static int64_t num(const agx_value *m, const char *k) { return agx_value_get_int64(agx_value_map_get(m, k)); }
static bool flag(const agx_value *m, const char *k) { return agx_value_get_bool(agx_value_map_get(m, k)); }

static void test_bash_run(void)
{
    const char *env[] = {"AGX_TEST_INHERITED=from-worker", NULL};
    wkh *h = start(env);
    agx_value *r = bash_run(h, wkh_kwargs(1, "command", agx_value_string("echo hi; echo err >&2; exit 3")));
    CHECK(num(r, "exit_code") == 3);
    CHECK_STREQ(str(r, "stdout"), "hi\n");
    CHECK_STREQ(str(r, "stderr"), "err\n");
    CHECK(!flag(r, "timed_out") && !flag(r, "truncated"));
    agx_value_free(r);

    r = bash_run(h, wkh_kwargs(2, "command", agx_value_string("pwd"), "cwd", agx_value_string(tmp_root)));
    char want[PATH_MAX + 2];
    snprintf(want, sizeof want, "%s\n", tmp_root);
    CHECK_STREQ(str(r, "stdout"), want);
    agx_value_free(r);

    agx_value *env_map = agx_value_map();
    agx_value_map_set(env_map, "FOO", agx_value_string("bar baz"));
    r = bash_run(h, wkh_kwargs(2, "command", agx_value_string("echo \"$FOO|$AGX_TEST_INHERITED\""), "env", env_map));
    CHECK_STREQ(str(r, "stdout"), "bar baz|from-worker\n");
    agx_value_free(r);

    /* bash when it is on PATH */
    r = bash_run(h, wkh_kwargs(1, "command", agx_value_string("test -n \"$BASH_VERSION\" && echo bash")));
    CHECK_STREQ(str(r, "stdout"), "bash\n");
    agx_value_free(r);

    /* The command, and what it starts, is the OOM killer's first choice; its parent (the
     * subreaper, a fork of the worker) keeps the worker's score, which is this test's. */
    FILE *own = fopen("/proc/self/oom_score_adj", "r");
    int test_adj = 0;
    CHECK(own && fscanf(own, "%d", &test_adj) == 1);
    fclose(own);
    CHECK_MSG(test_adj < 1000, "the test itself runs at oom_score_adj %d", test_adj);
    r = bash_run(h, wkh_kwargs(1, "command", agx_value_string(
                                   "cat /proc/self/oom_score_adj; cat /proc/$PPID/oom_score_adj")));
    char adj[64];
    snprintf(adj, sizeof adj, "1000\n%d\n", test_adj);
    CHECK_STREQ(str(r, "stdout"), adj);
    agx_value_free(r);

    /* Output over max_output is cut and flagged; the command is not blocked by the cut. */
    r = bash_run(h, wkh_kwargs(2, "command", agx_value_string("head -c 200000 /dev/zero | tr '\\0' a; echo done >&2"),
                               "max_output", agx_value_int(1000)));
    size_t len;
    agx_value_get_string(agx_value_map_get(r, "stdout"), &len);
    CHECK(len == 1000 && flag(r, "truncated"));
    CHECK_STREQ(str(r, "stderr"), "done\n");
    CHECK(num(r, "exit_code") == 0);
    agx_value_free(r);

    /* Invalid UTF-8 in output arrives as valid text. */
    r = bash_run(h, wkh_kwargs(1, "command", agx_value_string("printf 'a\\377b'")));
    CHECK_STREQ(str(r, "stdout"), "a\xef\xbf\xbd" "b");
    agx_value_free(r);

    /* A missing cwd, a bad env value. */
    wkh_call(h, 100, "agentix.bash::run", AGX_SHAPE_UNARY, NULL,
             wkh_kwargs(2, "command", agx_value_string("true"), "cwd", agx_value_string("/nonexistent/dir")), 0);
    wkh_expect_error(h, 100, "FileNotFoundError", "/nonexistent/dir", false);
    env_map = agx_value_map();
    agx_value_map_set(env_map, "N", agx_value_int(1));
    wkh_call(h, 101, "agentix.bash::run", AGX_SHAPE_UNARY, NULL,
             wkh_kwargs(2, "command", agx_value_string("true"), "env", env_map), 0);
    wkh_expect_error(h, 101, "ValidationError", "'N' must be a string", false);
    finish(h);
}

static bool pid_alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

static pid_t read_pid(const char *path)
{
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        long pid = 0;
        if (f) {
            int ok = fscanf(f, "%ld", &pid);
            fclose(f);
            if (ok == 1 && pid > 0)
                return (pid_t)pid;
        }
        usleep(10000);
    }
    CHECK_MSG(0, "no pid in %s", path);
    return -1;
}

/* A process killed by the test's subject is gone (and reaped by its parent) within a bound. */
static void check_gone(pid_t pid)
{
    for (int i = 0; i < 1000 && pid_alive(pid); i++)
        usleep(10000);
    CHECK_MSG(!pid_alive(pid), "process %d survived", (int)pid);
}

static void test_bash_timeout_and_cancel(void)
{
    wkh *h = start(NULL);
    char pidfile[PATH_MAX + 16], cmd[PATH_MAX + 64];
    /* The timeout kills the whole group: the background sleep too. */
    snprintf(pidfile, sizeof pidfile, "%s/../bg.pid", tmp_root);
    snprintf(cmd, sizeof cmd, "sleep 300 & echo $! > %s; sleep 300; echo never", pidfile);
    agx_value *r = bash_run(h, wkh_kwargs(2, "command", agx_value_string(cmd), "timeout", agx_value_double(0.5)));
    CHECK(flag(r, "timed_out"));
    CHECK(num(r, "exit_code") == 128 + SIGKILL);
    CHECK_STREQ(str(r, "stdout"), "");
    agx_value_free(r);
    check_gone(read_pid(pidfile));
    unlink(pidfile);

    /* Cancel kills the command; the call ends Cancelled. */
    snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 300", pidfile);
    wkh_call(h, 50, "agentix.bash::run", AGX_SHAPE_UNARY, NULL, wkh_kwargs(1, "command", agx_value_string(cmd)), 0);
    pid_t pid = read_pid(pidfile);
    wkh_simple(h, AGX_FRAME_CANCEL, 50);
    wkh_expect_error(h, 50, "Cancelled", NULL, true);
    check_gone(pid);
    unlink(pidfile);

    /* A background job holding the pipes does not hold the call once the shell has exited. */
    snprintf(cmd, sizeof cmd, "sleep 300 & echo $! > %s; echo started", pidfile);
    r = bash_run(h, wkh_kwargs(1, "command", agx_value_string(cmd)));
    CHECK_STREQ(str(r, "stdout"), "started\n");
    CHECK(!flag(r, "timed_out"));
    agx_value_free(r);
    pid = read_pid(pidfile);
    CHECK(pid_alive(pid)); /* left running, as a shell would */
    kill(pid, SIGKILL);
    unlink(pidfile);
    finish(h);
}

/* Collects a run_stream/shell call's items until the exit item; returns the exit code. */
static int64_t collect_stream(wkh *h, uint64_t id, agx_buf *out, agx_buf *err, bool grant_each)
{
    for (;;) {
        agx_value *f = wkh_expect(h, id, "item", 30000);
        const agx_value *item = agx_value_map_get(f, "value");
        const char *type = str(item, "type");
        if (strcmp(type, "exit") == 0) {
            int64_t code = num(item, "exit_code");
            agx_value_free(f);
            agx_value_free(wkh_expect(h, id, "end", 30000));
            return code;
        }
        size_t len;
        const void *data = agx_value_get_binary(agx_value_map_get(item, "data"), &len);
        CHECK(strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0);
        agx_buf_append(strcmp(type, "stdout") == 0 ? out : err, data, len);
        agx_value_free(f);
        if (grant_each)
            wkh_credit(h, id, 1);
    }
}

static void test_bash_run_stream(void)
{
    wkh *h = start(NULL);
    wkh_call(h, 1, "agentix.bash::run_stream", AGX_SHAPE_STREAM, NULL,
             wkh_kwargs(1, "command", agx_value_string("printf a; sleep 0.1; printf b >&2; printf c; exit 5")), 64);
    agx_buf out = {0}, err = {0};
    CHECK(collect_stream(h, 1, &out, &err, false) == 5);
    CHECK(out.len == 2 && memcmp(out.data, "ac", 2) == 0);
    CHECK(err.len == 1 && err.data[0] == 'b');
    /* 4 MiB through a window of 2 granted one item at a time: nothing lost, nothing reordered. */
    out.len = err.len = 0;
    wkh_call(h, 2, "agentix.bash::run_stream", AGX_SHAPE_STREAM, NULL,
             wkh_kwargs(1, "command", agx_value_string("seq 1 600000")), 2);
    CHECK(collect_stream(h, 2, &out, &err, true) == 0);
    agx_value *r = bash_run(h, wkh_kwargs(1, "command", agx_value_string("seq 1 600000 | wc -c")));
    size_t want_len = (size_t)strtoull(str(r, "stdout"), NULL, 10);
    CHECK_MSG(out.len == want_len, "got %zu bytes, want %zu", out.len, want_len);
    CHECK(memcmp(out.data, "1\n2\n3\n", 6) == 0 && memcmp(out.data + out.len - 7, "600000\n", 7) == 0);
    agx_value_free(r);
    /* Cancel mid-stream. */
    wkh_call(h, 3, "agentix.bash::run_stream", AGX_SHAPE_STREAM, NULL,
             wkh_kwargs(1, "command", agx_value_string("echo x; exec sleep 300")), 64);
    agx_value_free(wkh_expect(h, 3, "item", 30000));
    wkh_simple(h, AGX_FRAME_CANCEL, 3);
    wkh_expect_error(h, 3, "Cancelled", NULL, true);
    agx_buf_free(&out);
    agx_buf_free(&err);
    finish(h);
}

static void test_bash_shell(void)
{
    wkh *h = start(NULL);
    wkh_call(h, 1, "agentix.bash::shell", AGX_SHAPE_BIDI, NULL, wkh_kwargs(1, "cwd", agx_value_string(tmp_root)), 64);
    wkh_in(h, 1, agx_value_string("echo one; pwd\n"));
    wkh_in(h, 1, agx_value_binary("echo two >&2\n", 13));
    wkh_in(h, 1, agx_value_string("X=5; echo $((X * 2))\n"));
    wkh_simple(h, AGX_FRAME_END_IN, 1);
    agx_buf out = {0}, err = {0};
    CHECK(collect_stream(h, 1, &out, &err, false) == 0);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "one\n%s\n10\n", tmp_root);
    CHECK_MSG(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0, "stdout %.*s", (int)out.len, out.data);
    CHECK(err.len == 4 && memcmp(err.data, "two\n", 4) == 0);
    /* The shell's own exit code; input after exit is not needed. */
    out.len = err.len = 0;
    wkh_call(h, 2, "agentix.bash::shell", AGX_SHAPE_BIDI, NULL, NULL, 64);
    wkh_in(h, 2, agx_value_string("exit 7\n"));
    CHECK(collect_stream(h, 2, &out, &err, false) == 7);
    /* Cancel while a command runs. */
    wkh_call(h, 3, "agentix.bash::shell", AGX_SHAPE_BIDI, NULL, NULL, 64);
    wkh_in(h, 3, agx_value_string("echo ready; sleep 300\n"));
    agx_value_free(wkh_expect(h, 3, "item", 30000));
    wkh_simple(h, AGX_FRAME_CANCEL, 3);
    wkh_expect_error(h, 3, "Cancelled", NULL, true);
    agx_buf_free(&out);
    agx_buf_free(&err);
    finish(h);
}

/* ---- agentix.files ---- */

static agx_value *files_call(wkh *h, const char *fn, agx_value *kwargs)
{
    char target[64];
    snprintf(target, sizeof target, "agentix.files::%s", fn);
    return wkh_unary(h, next_id++, target, NULL, kwargs);
}

static void files_refused(wkh *h, const char *fn, agx_value *kwargs, const char *type, const char *path)
{
    char target[64];
    snprintf(target, sizeof target, "agentix.files::%s", fn);
    uint64_t id = next_id++;
    wkh_call(h, id, target, AGX_SHAPE_UNARY, NULL, kwargs, 0);
    char named[PATH_MAX];
    snprintf(named, sizeof named, "'%s'", path);
    wkh_expect_error(h, id, type, named, false);
}

/* download_stream of path in chunk-byte items, concatenated into out (cleared first). */
static void files_stream(wkh *h, const char *path, int64_t chunk, agx_buf *out, size_t *items)
{
    uint64_t id = next_id++;
    out->len = 0;
    *items = 0;
    wkh_call(h, id, "agentix.files::download_stream", AGX_SHAPE_STREAM, NULL,
             wkh_kwargs(2, "path", agx_value_string(path), "chunk", agx_value_int(chunk)), 0);
    for (;;) {
        agx_value *f = wkh_next_data(h, id, 30000, NULL);
        CHECK(f != NULL);
        const char *type = wkh_frame_type(f);
        if (strcmp(type, "end") == 0) {
            agx_value_free(f);
            return;
        }
        CHECK_STREQ(type, "item");
        size_t len = 0;
        const void *data = agx_value_get_binary(agx_value_map_get(f, "value"), &len);
        CHECK(data != NULL && len > 0 && len <= (size_t)chunk);
        agx_buf_append(out, data, len);
        ++*items;
        agx_value_free(f);
        wkh_credit(h, id, 1);
    }
}

/* The streamed download: any size, in chunk-byte items, with the unary download's refusals. */
static void test_files_stream(wkh *h)
{
    size_t size = 300000, items;
    char *content = malloc(size);
    CHECK(content != NULL);
    for (size_t i = 0; i < size; i++)
        content[i] = (char)(i * 7 + i / 251);
    agx_value_free(files_call(h, "upload", wkh_kwargs(2, "path", agx_value_string("big.bin"),
                                                      "content", agx_value_binary(content, size))));
    agx_buf got = {0};
    files_stream(h, "big.bin", 65536, &got, &items);
    CHECK(got.len == size && memcmp(got.data, content, size) == 0 && items == 5);
    files_stream(h, "big.bin", 100000, &got, &items); /* an exact multiple: no empty last item */
    CHECK(got.len == size && items == 3);
    agx_value_free(files_call(h, "upload", wkh_kwargs(2, "path", agx_value_string("empty"),
                                                      "content", agx_value_binary("", 0))));
    files_stream(h, "empty", 4096, &got, &items);
    CHECK(got.len == 0 && items == 0);
    agx_buf_free(&got);
    free(content);
    static const struct { const char *path; int64_t chunk; const char *type, *named; } bad[] = {
        {"/etc/passwd", 65536, "PermissionError", "'/etc/passwd'"},
        {"rootlink/etc/passwd", 65536, "PermissionError", "'rootlink/etc/passwd'"},
        {"a", 65536, "IsADirectoryError", "'a'"},
        {"nope.txt", 65536, "FileNotFoundError", "'nope.txt'"},
        {"big.bin", 100, "ValueError", "chunk"},
        {"big.bin", (int64_t)1 << 40, "ValueError", "chunk"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t id = next_id++;
        wkh_call(h, id, "agentix.files::download_stream", AGX_SHAPE_STREAM, NULL,
                 wkh_kwargs(2, "path", agx_value_string(bad[i].path), "chunk",
                            agx_value_int(bad[i].chunk)), 0);
        wkh_expect_error(h, id, bad[i].type, bad[i].named, false);
    }
}

/* upload_stream: pieces sent in become one file, replaced whole at the end of input; a cancel
 * leaves the old file and no temporary file. */
static void test_files_upload_stream(wkh *h)
{
    uint64_t id = next_id++;
    wkh_call(h, id, "agentix.files::upload_stream", AGX_SHAPE_BIDI, NULL,
             wkh_kwargs(1, "path", agx_value_string("up/parts.bin")), 0);
    wkh_in(h, id, agx_value_binary("hello ", 6));
    wkh_in(h, id, agx_value_binary("", 0));
    wkh_in(h, id, agx_value_binary("streamed\0world", 14));
    wkh_simple(h, AGX_FRAME_END_IN, id);
    agx_value *f = wkh_expect(h, id, "item", 30000);
    const agx_value *v = agx_value_map_get(f, "value");
    CHECK_STREQ(str(v, "path"), "up/parts.bin");
    CHECK(num(v, "size") == 20);
    agx_value_free(f);
    agx_value_free(wkh_expect(h, id, "end", 30000));
    agx_value *r = files_call(h, "download", wkh_kwargs(1, "path", agx_value_string("up/parts.bin")));
    size_t len;
    const char *data = agx_value_get_binary(r, &len);
    CHECK(len == 20 && memcmp(data, "hello streamed\0world", 20) == 0);
    agx_value_free(r);

    id = next_id++;
    wkh_call(h, id, "agentix.files::upload_stream", AGX_SHAPE_BIDI, NULL,
             wkh_kwargs(1, "path", agx_value_string("up/parts.bin")), 0);
    wkh_in(h, id, agx_value_binary("partial", 7));
    wkh_simple(h, AGX_FRAME_CANCEL, id);
    wkh_expect_error(h, id, "Cancelled", NULL, true);
    r = files_call(h, "list", wkh_kwargs(1, "path", agx_value_string("up")));
    CHECK(agx_value_array_len(r) == 1); /* no .agx-upload-… left behind */
    agx_value_free(r);
    r = files_call(h, "stat", wkh_kwargs(1, "path", agx_value_string("up/parts.bin")));
    CHECK(num(r, "size") == 20);
    agx_value_free(r);

    id = next_id++; /* a text item is not a piece of a file */
    wkh_call(h, id, "agentix.files::upload_stream", AGX_SHAPE_BIDI, NULL,
             wkh_kwargs(1, "path", agx_value_string("up/bad.bin")), 0);
    wkh_in(h, id, agx_value_string("text"));
    wkh_simple(h, AGX_FRAME_END_IN, id);
    f = wkh_next_data(h, id, 30000, NULL);
    CHECK(f != NULL && strcmp(wkh_frame_type(f), "error") == 0);
    agx_value_free(f);
    id = next_id++;
    wkh_call(h, id, "agentix.files::upload_stream", AGX_SHAPE_BIDI, NULL,
             wkh_kwargs(1, "path", agx_value_string("../escape")), 0);
    wkh_expect_error(h, id, "PermissionError", "'../escape'", false);
    r = files_call(h, "list", wkh_kwargs(1, "path", agx_value_string("up")));
    CHECK(agx_value_array_len(r) == 1); /* the refused upload left nothing either */
    agx_value_free(r);
}

static void test_files(bool walk)
{
    char env_root[PATH_MAX + 32];
    snprintf(env_root, sizeof env_root, "AGENTIX_FILES_ROOT=%s", tmp_root);
    const char *env[] = {env_root, walk ? "AGENTIX_FILES_NO_OPENAT2=1" : "AGENTIX_FILES_NO_OPENAT2=0", NULL};
    wkh *h = start(env);

    agx_value *r = files_call(h, "upload", wkh_kwargs(2, "path", agx_value_string("a/b/c.txt"),
                                                      "content", agx_value_binary("hello\0world", 11)));
    CHECK_STREQ(str(r, "path"), "a/b/c.txt");
    CHECK(num(r, "size") == 11);
    agx_value_free(r);
    r = files_call(h, "download", wkh_kwargs(1, "path", agx_value_string("a/b/c.txt")));
    size_t len;
    const char *data = agx_value_get_binary(r, &len);
    CHECK(len == 11 && memcmp(data, "hello\0world", 11) == 0);
    agx_value_free(r);
    /* Overwrite is atomic and leaves no temp files behind. */
    r = files_call(h, "upload", wkh_kwargs(2, "path", agx_value_string("a/b/c.txt"), "content", agx_value_binary("v2", 2)));
    agx_value_free(r);
    r = files_call(h, "list", wkh_kwargs(1, "path", agx_value_string("a/b")));
    CHECK(agx_value_array_len(r) == 1);
    const agx_value *e = agx_value_array_at(r, 0);
    CHECK_STREQ(str(e, "name"), "c.txt");
    CHECK(num(e, "size") == 2 && !flag(e, "is_dir"));
    agx_value_free(r);
    r = files_call(h, "stat", wkh_kwargs(1, "path", agx_value_string("a")));
    CHECK(flag(r, "is_dir"));
    CHECK(agx_value_get_double(agx_value_map_get(r, "mtime")) > 1e9);
    agx_value_free(r);
    /* The root listing (default path "."), sorted. */
    r = files_call(h, "list", NULL);
    CHECK(agx_value_array_len(r) >= 1);
    CHECK_STREQ(str(agx_value_array_at(r, 0), "name"), "a");
    agx_value_free(r);
    /* An absolute path inside the root is fine. */
    char abs[PATH_MAX + 16];
    snprintf(abs, sizeof abs, "%s/a/b/c.txt", tmp_root);
    r = files_call(h, "stat", wkh_kwargs(1, "path", agx_value_string(abs)));
    CHECK(num(r, "size") == 2);
    agx_value_free(r);

    /* Ways out, all refused with PermissionError naming the path. */
    files_refused(h, "upload", wkh_kwargs(2, "path", agx_value_string("../x"), "content", agx_value_binary("", 0)),
                  "PermissionError", "../x");
    files_refused(h, "download", wkh_kwargs(1, "path", agx_value_string("/etc/passwd")), "PermissionError", "/etc/passwd");
    files_refused(h, "download", wkh_kwargs(1, "path", agx_value_string("a/../../outside/secret")),
                  "PermissionError", "a/../../outside/secret");
    files_refused(h, "download", wkh_kwargs(1, "path", agx_value_string("rootlink/etc/passwd")),
                  "PermissionError", "rootlink/etc/passwd");
    files_refused(h, "stat", wkh_kwargs(1, "path", agx_value_string("outlink")), "PermissionError", "outlink");
    files_refused(h, "download", wkh_kwargs(1, "path", agx_value_string("outdir/secret")), "PermissionError", "outdir/secret");
    files_refused(h, "upload", wkh_kwargs(2, "path", agx_value_string("outdir/planted"), "content", agx_value_binary("x", 1)),
                  "PermissionError", "outdir/planted");
    files_refused(h, "list", wkh_kwargs(1, "path", agx_value_string("rootlink")), "PermissionError", "rootlink");
    char planted[PATH_MAX + 32];
    snprintf(planted, sizeof planted, "%s/outside/planted", tmp_base);
    CHECK(access(planted, F_OK) != 0);
    files_refused(h, "download", wkh_kwargs(1, "path", agx_value_string("nope.txt")), "FileNotFoundError", "nope.txt");
    files_refused(h, "download", wkh_kwargs(1, "path", agx_value_string("a")), "IsADirectoryError", "a");
    test_files_stream(h);
    test_files_upload_stream(h);
    finish(h);
}

static void test_files_openat2(void) { test_files(false); }
static void test_files_walk(void) { test_files(true); }

/* Without AGENTIX_MODULE_PATH the worker finds the built-ins next to itself (../modules). */
static void test_default_module_path(void)
{
    const char *argv[] = {worker_path, NULL};
    wkh *h = wkh_start(argv, NULL, NULL);
    agx_value *r = bash_run(h, wkh_kwargs(1, "command", agx_value_string("echo default")));
    CHECK_STREQ(str(r, "stdout"), "default\n");
    agx_value_free(r);
    finish(h);
}

static void make_tree(void)
{
    snprintf(tmp_base, sizeof tmp_base, "/tmp/agx-modtest-XXXXXX");
    CHECK(mkdtemp(tmp_base) != NULL);
    snprintf(tmp_root, sizeof tmp_root, "%s/root", tmp_base);
    CHECK(mkdir(tmp_root, 0755) == 0);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/outside", tmp_base);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/outside/secret", tmp_base);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fputs("secret\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/rootlink", tmp_root);
    CHECK(symlink("/", p) == 0);
    snprintf(p, sizeof p, "%s/outlink", tmp_root);
    CHECK(symlink("../outside/secret", p) == 0);
    snprintf(p, sizeof p, "%s/outdir", tmp_root);
    CHECK(symlink("../outside", p) == 0);
}

static void remove_tree(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_base);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc >= 3, "usage: test_modules <agentix-worker> <module dir>");
    worker_path = argv[1];
    module_dir = argv[2];
    under_valgrind = argc > 3 && strcmp(argv[3], "valgrind") == 0;
    signal(SIGPIPE, SIG_IGN);
    make_tree();
    if (!under_valgrind)
        TEST_RUN(test_default_module_path);
    TEST_RUN(test_bash_run);
    TEST_RUN(test_bash_timeout_and_cancel);
    TEST_RUN(test_bash_run_stream);
    TEST_RUN(test_bash_shell);
    TEST_RUN(test_files_openat2);
    TEST_RUN(test_files_walk);
    remove_tree();
    return 0;
}
