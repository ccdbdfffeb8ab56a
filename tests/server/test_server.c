/* test_server.c — agentix-server end to end: a real server process on 127.0.0.1 running the demo
 * module in a real agentix-worker, driven over Socket.IO (srvharness). Covers /health, the token,
 * every call shape, errors, cancellation, worker death and respawn, client disconnect, malformed
 * input and the SIGTERM drain.
 *   test_server <agentix-server> <modules dir> [valgrind]
 * With "valgrind" the server itself runs under memcheck through a shorter scenario, and its exit
 * status (99 on any memcheck error or leak) is checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentix/version.h"
#include "check.h"
#include "srvharness.h"

#define T 20000 /* ms: generous wait for an answer that must come */
#define RUN(call)                                                                              \
    do {                                                                                       \
        fprintf(stderr, "-- %s\n", #call);                                                    \
        call;                                                                                  \
    } while (0)

static sh_paths paths;
static bool under_valgrind;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(sh_server *s, const char *token)
{
    sh_server_start(s, &paths, token, NULL, under_valgrind);
}

/* sig 0: the server was already signalled (a second SIGTERM would end it the default way). */
static void stop_clean_sig(sh_server *s, int sig)
{
    int st = sh_server_stop(s, sig, under_valgrind ? 120000 : 20000);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "agentix-server did not exit 0 on SIGTERM (status 0x%x)", st);
}

static void stop_clean(sh_server *s) { stop_clean_sig(s, SIGTERM); }

static int64_t value_int(const sh_event *e) { return agx_value_get_int64(sh_get(e, "value")); }

static void expect_int(sh_client *c, const char *cid, int64_t want)
{
    sh_event *e = sh_expect(c, "unary:result", cid, T);
    CHECK_MSG(value_int(e) == want, "%s: got %lld, want %lld", cid, (long long)value_int(e),
              (long long)want);
    sh_event_free(e);
}

static void expect_error(sh_client *c, const char *event, const char *cid, const char *type,
                         const char *in_message)
{
    sh_event *e = sh_expect(c, event, cid, T);
    CHECK_STREQ(sh_error_type(e), type);
    if (in_message)
        CHECK_CONTAINS(sh_error_message(e), in_message);
    CHECK(sh_error_cancelled(e) == (strcmp(type, "Cancelled") == 0));
    sh_event_free(e);
}

/* The next event that is not a bidi:credit (those come whenever the function consumes input). */
static sh_event *next_no_credit(sh_client *c)
{
    for (;;) {
        sh_event *e = sh_next(c, T);
        CHECK_MSG(e, "no event within %d ms", T);
        if (strcmp(e->name, "bidi:credit") != 0)
            return e;
        sh_event_free(e);
    }
}

static void add_ok(sh_client *c, const char *cid)
{
    char json[160];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"target\":\"demo::add\",\"args\":[40,2]}", cid);
    sh_emit_json(c, "unary", json);
    expect_int(c, cid, 42);
}

static bool file_has(const char *path, const char *text, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    do {
        FILE *f = fopen(path, "r");
        if (f) {
            char buf[64] = {0};
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            if (n && strstr(buf, text))
                return true;
        }
        usleep(10000);
    } while (now_ms() < deadline);
    return false;
}

static bool process_gone(pid_t pid, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    do {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return true;
        usleep(10000);
    } while (now_ms() < deadline);
    return false;
}

/* ---- /health ---- */

static void test_health(void)
{
    sh_server s;
    start(&s, "tok");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    CHECK(write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1));
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    const char *body = strstr(buf, "\r\n\r\n");
    CHECK(body);
    json_t *j = json_loads(body + 4, 0, NULL);
    CHECK_MSG(j, "health body is not JSON: %s", body + 4);
    CHECK_STREQ(json_string_value(json_object_get(j, "status")), "ok");
    CHECK_STREQ(json_string_value(json_object_get(j, "version")), AGX_VERSION_STRING);
    json_decref(j);
    stop_clean(&s);
}

/* ---- token ---- */

static void test_token(void)
{
    sh_server s;
    start(&s, "s3cret-token");
    agx_error why;
    CHECK_MSG(sh_connect(&s, NULL, &why) == NULL, "a CONNECT without token was accepted");
    CHECK_CONTAINS(why.message, "invalid token");
    CHECK_MSG(sh_connect(&s, "s3cret-tokeN", &why) == NULL, "a wrong token was accepted");
    CHECK_CONTAINS(why.message, "invalid token");
    CHECK_MSG(sh_connect(&s, "s3cret-token-longer", &why) == NULL, "a longer token was accepted");
    sh_client *c = sh_connect(&s, "s3cret-token", &why);
    CHECK_MSG(c, "the right token was refused: %s", why.message);
    add_ok(c, "t1");
    /* User code must not see the token; the built-in module folder is on its module path. */
    char path[64], env[16384];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)sh_worker_pid(&s, 0));
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(env, 1, sizeof env - 1, f);
    fclose(f);
    bool token_seen = false, modules_seen = false;
    env[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(env + i) + 1) {
        token_seen |= strncmp(env + i, "AGENTIX_TOKEN=", 14) == 0;
        if (strncmp(env + i, "AGENTIX_MODULE_PATH=", 20) == 0) {
            CHECK_CONTAINS(env + i, paths.modules);
            CHECK_CONTAINS(env + i, "/../modules");
            modules_seen = true;
        }
    }
    CHECK_MSG(!token_seen, "the worker's environment carries AGENTIX_TOKEN");
    CHECK(modules_seen);
    sh_close(c);
    stop_clean(&s);
}

/* ---- unary ---- */

static void test_unary(sh_client *c)
{
    sh_emit_json(c, "unary", "{\"call_id\":\"u1\",\"target\":\"demo::add\",\"shape\":\"unary\","
                             "\"args\":[2,3],\"kwargs\":{}}");
    expect_int(c, "u1", 5);
    sh_emit_json(c, "unary", "{\"call_id\":\"u2\",\"target\":\"demo::add\",\"kwargs\":{\"a\":2,\"b\":5}}");
    expect_int(c, "u2", 7);
    sh_emit_json(c, "unary", "{\"call_id\":\"u3\",\"target\":\"demo::add\",\"args\":[4]}");
    expect_int(c, "u3", 5); /* b defaults to 1 */
    sh_emit_json(c, "unary", "{\"call_id\":\"u4\",\"target\":\"demo::add\",\"args\":[\"x\",1]}");
    expect_error(c, "unary:error", "u4", "ValidationError", "a");
    sh_emit_json(c, "unary", "{\"call_id\":\"u5\",\"target\":\"demo::add\",\"kwargs\":{\"b\":2}}");
    expect_error(c, "unary:error", "u5", "ValidationError", "a");
    sh_emit_json(c, "unary", "{\"call_id\":\"u6\",\"target\":\"demo::count\",\"args\":[3]}");
    expect_error(c, "unary:error", "u6", "ShapeMismatch", NULL);
    sh_emit_json(c, "unary", "{\"call_id\":\"u7\",\"target\":\"demo::nope\"}");
    expect_error(c, "unary:error", "u7", "NotFound", "nope");
    sh_emit_json(c, "unary", "{\"call_id\":\"u8\",\"target\":\"nomodule::f\"}");
    expect_error(c, "unary:error", "u8", "NotFound", "nomodule");
    sh_emit_json(c, "unary", "{\"call_id\":\"u9\",\"target\":\"demo::fail\","
                             "\"args\":[\"MyError\",\"it broke\"]}");
    expect_error(c, "unary:error", "u9", "MyError", "it broke");
    /* A nested value goes through the server byte for byte. */
    const char *nested = "{\"k\":[1,-2,3.5,\"s\",null,true,{\"b\":{\"$base64\":\"AAEC\"}}]}";
    char json[256];
    snprintf(json, sizeof json, "{\"call_id\":\"u10\",\"target\":\"demo::echo\",\"args\":[%s]}", nested);
    sh_emit_json(c, "unary", json);
    sh_event *e = sh_expect(c, "unary:result", "u10", T);
    agx_value *want = NULL;
    CHECK(agx_value_from_json(nested, strlen(nested), NULL, &want, NULL) == 0);
    CHECK(agx_value_equal(sh_get(e, "value"), want));
    agx_value_free(want);
    sh_event_free(e);
    /* describe */
    sh_emit_json(c, "describe", "{\"call_id\":\"d1\",\"target\":\"demo::add\"}");
    e = sh_expect(c, "describe:result", "d1", T);
    CHECK(agx_value_type_of(sh_get(e, "value")) == AGX_VALUE_MAP);
    sh_event_free(e);
    sh_emit_json(c, "describe", "{\"call_id\":\"d2\",\"target\":\"demo::missing\"}");
    expect_error(c, "describe:error", "d2", "NotFound", NULL);
}

/* ---- stream ---- */

static void credit(sh_client *c, const char *cid, int n)
{
    char json[128];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"n\":%d}", cid, n);
    sh_emit_json(c, "credit", json);
}

static void test_stream(sh_client *c)
{
    sh_emit_json(c, "stream", "{\"call_id\":\"s1\",\"target\":\"demo::count\",\"shape\":\"stream\","
                              "\"args\":[5],\"kwargs\":{\"size\":3},\"window\":2}");
    for (int i = 0; i < 5; i++) {
        sh_event *e = sh_expect(c, "stream:item", "s1", T);
        const agx_value *v = sh_get(e, "value");
        CHECK(agx_value_get_int64(agx_value_map_get(v, "i")) == i);
        size_t len;
        const char *data = agx_value_get_binary(agx_value_map_get(v, "data"), &len);
        CHECK(len == 3 && data[0] == 'a' + i);
        sh_event_free(e);
        if (i == 1) { /* the window (2) is used up: nothing more comes until credit */
            CHECK_MSG(sh_quiet(c, 200), "an item beyond the window arrived");
            credit(c, "s1", 2);
        } else if (i > 1) {
            credit(c, "s1", 1);
        }
    }
    sh_event_free(sh_expect(c, "stream:end", "s1", T));
    /* An empty stream ends at once; an error in a stream is stream:error. */
    sh_emit_json(c, "stream", "{\"call_id\":\"s2\",\"target\":\"demo::count\",\"args\":[0]}");
    sh_event_free(sh_expect(c, "stream:end", "s2", T));
    sh_emit_json(c, "stream", "{\"call_id\":\"s3\",\"target\":\"demo::count\",\"args\":[-1]}");
    expect_error(c, "stream:error", "s3", "ValueError", NULL);
    sh_emit_json(c, "stream", "{\"call_id\":\"s4\",\"target\":\"demo::add\",\"args\":[1]}");
    expect_error(c, "stream:error", "s4", "ShapeMismatch", NULL);
}

/* ---- bidi ---- */

static void test_bidi(sh_client *c)
{
    sh_emit_json(c, "bidi:start", "{\"call_id\":\"b1\",\"target\":\"demo::echo_bidi\","
                                  "\"shape\":\"bidi\",\"window\":8}");
    for (int i = 0; i < 3; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"call_id\":\"b1\",\"item\":\"v%d\"}", i);
        sh_emit_json(c, "bidi:in", json);
    }
    int outs = 0, credits = 0;
    while (outs < 3) {
        sh_event *e = sh_next(c, T);
        CHECK(e);
        CHECK_STREQ(agx_value_get_string(sh_get(e, "call_id"), NULL), "b1");
        if (strcmp(e->name, "bidi:credit") == 0) {
            credits += (int)agx_value_get_int64(sh_get(e, "n"));
        } else {
            CHECK_STREQ(e->name, "bidi:out");
            char want[16];
            snprintf(want, sizeof want, "v%d", outs++);
            CHECK_STREQ(agx_value_get_string(sh_get(e, "value"), NULL), want);
        }
        sh_event_free(e);
    }
    sh_emit_json(c, "bidi:end_in", "{\"call_id\":\"b1\"}");
    for (;;) {
        sh_event *e = sh_next(c, T);
        CHECK(e);
        bool end = strcmp(e->name, "bidi:end") == 0;
        CHECK_MSG(end || strcmp(e->name, "bidi:credit") == 0, "unexpected %s", e->name);
        if (!end)
            credits += (int)agx_value_get_int64(sh_get(e, "n"));
        sh_event_free(e);
        if (end)
            break;
    }
    fprintf(stderr, "   bidi: %d input credits granted back for 3 inputs\n", credits);

    /* More inputs than the initial 64 go through as the function grants credit back, and more
     * outputs than the window go through as the host grants credit. */
    sh_emit_json(c, "bidi:start", "{\"call_id\":\"b2\",\"target\":\"demo::sum_bidi\",\"window\":16}");
    int sent = 0, got = 0, in_credit = 64, out_unacked = 0;
    int64_t sum = 0;
    while (got < 200) {
        while (sent < 200 && in_credit > 0) {
            char json[96];
            snprintf(json, sizeof json, "{\"call_id\":\"b2\",\"item\":%d}", sent++);
            sh_emit_json(c, "bidi:in", json);
            in_credit--;
        }
        sh_event *e = sh_next(c, T);
        CHECK_MSG(e, "bidi stalled: sent %d got %d in_credit %d", sent, got, in_credit);
        if (getenv("SH_DEBUG")) fprintf(stderr, "ev %s sent %d got %d inc %d\n", e->name, sent, got, in_credit);
        if (strcmp(e->name, "bidi:credit") == 0) {
            in_credit += (int)agx_value_get_int64(sh_get(e, "n"));
        } else {
            CHECK_STREQ(e->name, "bidi:out");
            sum += got++;
            CHECK(agx_value_get_int64(sh_get(e, "value")) == sum);
            if (++out_unacked == 8) {
                credit(c, "b2", 8);
                out_unacked = 0;
            }
        }
        sh_event_free(e);
    }
    sh_emit_json(c, "bidi:end_in", "{\"call_id\":\"b2\"}");
    for (;;) {
        sh_event *e = sh_next(c, T);
        CHECK(e);
        bool end = strcmp(e->name, "bidi:end") == 0;
        CHECK_MSG(end || strcmp(e->name, "bidi:credit") == 0, "unexpected %s", e->name);
        sh_event_free(e);
        if (end)
            break;
    }
    /* bidi:in after bidi:end_in breaks the protocol: the call ends with BadRequest. */
    sh_emit_json(c, "bidi:start", "{\"call_id\":\"b3\",\"target\":\"demo::echo_bidi\"}");
    sh_emit_json(c, "bidi:end_in", "{\"call_id\":\"b3\"}");
    sh_emit_json(c, "bidi:in", "{\"call_id\":\"b3\",\"item\":1}");
    sh_event *e = next_no_credit(c);
    /* The function may have ended first (end_in reached it): either outcome is one terminal. */
    CHECK_MSG(strcmp(e->name, "bidi:end") == 0 ||
                  (strcmp(e->name, "bidi:error") == 0 && strcmp(sh_error_type(e), "BadRequest") == 0),
              "got %s", e->name);
    sh_event_free(e);
    CHECK(sh_quiet(c, 100));
}

/* ---- cancel ---- */

static void test_cancel(sh_client *c, const sh_server *s)
{
    sh_emit_json(c, "unary", "{\"call_id\":\"c1\",\"target\":\"demo::sleep\",\"args\":[60000]}");
    sh_emit_json(c, "cancel", "{\"call_id\":\"c1\"}");
    expect_error(c, "unary:error", "c1", "Cancelled", NULL);
    sh_emit_json(c, "cancel", "{\"call_id\":\"c1\"}"); /* finished: ignored */
    sh_emit_json(c, "cancel", "{\"call_id\":\"never\"}");

    char marker[400], json[600];
    snprintf(marker, sizeof marker, "%s/cancel-marker", s->dir);
    snprintf(json, sizeof json,
             "{\"call_id\":\"c2\",\"target\":\"demo::wait_cancel\",\"kwargs\":{\"path\":\"%s\"}}",
             marker);
    sh_emit_json(c, "stream", json);
    sh_event *e = sh_expect(c, "stream:item", "c2", T);
    CHECK_STREQ(agx_value_get_string(sh_get(e, "value"), NULL), "waiting");
    sh_event_free(e);
    sh_emit_json(c, "cancel", "{\"call_id\":\"c2\"}");
    expect_error(c, "stream:error", "c2", "Cancelled", NULL);
    CHECK_MSG(file_has(marker, "cancelled", T), "the stream function never saw the cancel");

    sh_emit_json(c, "bidi:start", "{\"call_id\":\"c3\",\"target\":\"demo::echo_bidi\"}");
    sh_emit_json(c, "bidi:in", "{\"call_id\":\"c3\",\"item\":7}");
    e = next_no_credit(c);
    CHECK_STREQ(e->name, "bidi:out");
    sh_event_free(e);
    sh_emit_json(c, "cancel", "{\"call_id\":\"c3\"}");
    e = next_no_credit(c);
    CHECK_STREQ(e->name, "bidi:error");
    CHECK_STREQ(sh_error_type(e), "Cancelled");
    CHECK(sh_error_cancelled(e));
    sh_event_free(e);
    CHECK_MSG(sh_quiet(c, 200), "an event arrived after a cancelled call's terminal event");
    /* The id can be reused once the call is over. */
    add_ok(c, "c1");
}

/* ---- worker death ---- */

static void test_worker_killed(sh_client *c, const sh_server *s)
{
    add_ok(c, "k0");
    pid_t wpid = sh_worker_pid(s, 0);
    sh_emit_json(c, "unary", "{\"call_id\":\"k1\",\"target\":\"demo::sleep\",\"args\":[60000]}");
    sh_emit_json(c, "stream", "{\"call_id\":\"k2\",\"target\":\"demo::wait_cancel\"}");
    sh_event_free(sh_expect(c, "stream:item", "k2", T));
    sh_emit_json(c, "bidi:start", "{\"call_id\":\"k3\",\"target\":\"demo::echo_bidi\"}");
    sh_emit_json(c, "describe", "{\"call_id\":\"k4\",\"target\":\"demo::add\"}");
    sh_event_free(sh_expect(c, "describe:result", "k4", T));
    sh_pump(c, 50);
    long t0 = now_ms();
    CHECK(kill(wpid, SIGKILL) == 0);
    bool seen[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        sh_event *e = sh_next(c, T);
        CHECK_MSG(e, "calls in flight were not failed after the worker was killed");
        const char *cid = agx_value_get_string(sh_get(e, "call_id"), NULL);
        int k = cid[1] - '1';
        CHECK(k >= 0 && k < 3 && !seen[k]);
        seen[k] = true;
        static const char *const names[] = {"unary:error", "stream:error", "bidi:error"};
        CHECK_STREQ(e->name, names[k]);
        CHECK_STREQ(sh_error_type(e), "WorkerExited");
        CHECK_CONTAINS(sh_error_message(e), "signal 9");
        sh_event_free(e);
    }
    fprintf(stderr, "   SIGKILL of the worker → 3 WorkerExited events in %ld ms\n", now_ms() - t0);
    add_ok(c, "k5"); /* a fresh worker */
    pid_t fresh = sh_worker_pid(s, wpid);
    CHECK(fresh != wpid);
}

static void test_crash(sh_client *c, const sh_server *s)
{
    static const char *const hows[] = {"segv", "abort", "exit"};
    static const char *const says[] = {"signal 11", "signal 6", "code 3"};
#if defined(__SANITIZE_ADDRESS__)
    /* A sanitizer may catch the worker's fatal signal, report it and exit non-zero instead. */
    static const char *const or_says[] = {"exited with code", "exited with code", "code 3"};
#else
    static const char *const *or_says = says;
#endif
    for (int i = 0; i < 3; i++) {
        add_ok(c, "x0");
        pid_t before = sh_worker_pid(s, 0);
        /* a second call in flight on the same worker fails too */
        sh_emit_json(c, "unary", "{\"call_id\":\"x2\",\"target\":\"demo::sleep\",\"args\":[60000]}");
        char json[128];
        snprintf(json, sizeof json, "{\"call_id\":\"x1\",\"target\":\"demo::crash\",\"args\":[\"%s\"]}",
                 hows[i]);
        sh_emit_json(c, "unary", json);
        for (int k = 0; k < 2; k++) {
            sh_event *e = sh_next(c, T);
            CHECK_MSG(e, "crash(%s): no error", hows[i]);
            CHECK_STREQ(e->name, "unary:error");
            CHECK_STREQ(sh_error_type(e), "WorkerExited");
            const char *m = sh_error_message(e);
            CHECK_MSG(m && (strstr(m, says[i]) || strstr(m, or_says[i])), "crash(%s): %s", hows[i], m);
            sh_event_free(e);
        }
        add_ok(c, "x3");
        CHECK(sh_worker_pid(s, before) != before);
    }
}

/* ---- client disconnect ---- */

/* call_ids are per connection: two hosts may use the same one at the same time. */
static void test_two_connections(sh_client *c, const sh_server *s)
{
    sh_client *c2 = sh_connect(s, NULL, NULL);
    CHECK(c2);
    sh_emit_json(c, "unary", "{\"call_id\":\"same\",\"target\":\"demo::add\",\"args\":[1,1]}");
    sh_emit_json(c2, "unary", "{\"call_id\":\"same\",\"target\":\"demo::add\",\"args\":[2,2]}");
    expect_int(c2, "same", 4);
    expect_int(c, "same", 2);
    sh_close(c2);
}

static void test_disconnect(const sh_server *s)
{
    sh_client *c = sh_connect(s, NULL, NULL);
    CHECK(c);
    char marker[400], json[600];
    snprintf(marker, sizeof marker, "%s/disconnect-marker", s->dir);
    snprintf(json, sizeof json,
             "{\"call_id\":\"w1\",\"target\":\"demo::wait_cancel\",\"kwargs\":{\"path\":\"%s\"}}",
             marker);
    sh_emit_json(c, "stream", json);
    sh_event_free(sh_expect(c, "stream:item", "w1", T));
    sh_close(c);
    CHECK_MSG(file_has(marker, "cancelled", T), "a disconnect did not cancel the stream");
}

/* ---- duplicates and malformed input ---- */

static void test_duplicate(sh_client *c)
{
    sh_emit_json(c, "unary", "{\"call_id\":\"dup\",\"target\":\"demo::sleep\",\"args\":[60000]}");
    sh_emit_json(c, "unary", "{\"call_id\":\"dup\",\"target\":\"demo::add\",\"args\":[1]}");
    expect_error(c, "unary:error", "dup", "BadRequest", "already in flight");
    sh_emit_json(c, "cancel", "{\"call_id\":\"dup\"}");
    expect_error(c, "unary:error", "dup", "Cancelled", NULL);
}

static void test_malformed(sh_client *c)
{
    static const unsigned char not_map[] = {0x2a};           /* 42 */
    static const unsigned char reserved[] = {0x81, 0xc1};    /* map with a reserved byte */
    static const unsigned char truncated[] = {0x82, 0xa7, 'c'};
    sh_emit_raw(c, "unary", not_map, sizeof not_map);
    expect_error(c, "unary:error", "", "BadRequest", "map");
    sh_emit_raw(c, "stream", reserved, sizeof reserved);
    expect_error(c, "stream:error", "", "BadRequest", NULL);
    sh_emit_raw(c, "bidi:start", truncated, sizeof truncated);
    expect_error(c, "bidi:error", "", "BadRequest", NULL);
    sh_emit_raw(c, "unary", NULL, 0); /* no attachment at all */
    expect_error(c, "unary:error", "", "BadRequest", "attachment");
    sh_emit_json(c, "unary", "{\"target\":\"demo::add\",\"args\":[1]}");
    expect_error(c, "unary:error", "", "BadRequest", "call_id");
    sh_emit_json(c, "unary", "{\"call_id\":17,\"target\":\"demo::add\",\"args\":[1]}");
    expect_error(c, "unary:error", "", "BadRequest", "call_id");
    char big[600];
    memset(big, 'z', 300);
    big[300] = '\0';
    char json[800];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"target\":\"demo::add\"}", big);
    sh_emit_json(c, "unary", json);
    expect_error(c, "unary:error", "", "BadRequest", "call_id");
    sh_emit_json(c, "unary", "{\"call_id\":\"m1\",\"args\":[1]}");
    expect_error(c, "unary:error", "m1", "BadRequest", "target");
    sh_emit_json(c, "unary", "{\"call_id\":\"m2\",\"target\":\"demo.add\"}");
    expect_error(c, "unary:error", "m2", "BadRequest", "module::function");
    sh_emit_json(c, "unary", "{\"call_id\":\"m3\",\"target\":\"demo::add\",\"args\":{\"a\":1}}");
    expect_error(c, "unary:error", "m3", "BadRequest", "args");
    sh_emit_json(c, "unary", "{\"call_id\":\"m4\",\"target\":\"demo::add\",\"kwargs\":[1]}");
    expect_error(c, "unary:error", "m4", "BadRequest", "kwargs");
    sh_emit_json(c, "stream", "{\"call_id\":\"m5\",\"target\":\"demo::count\",\"args\":[1],\"window\":0}");
    expect_error(c, "stream:error", "m5", "BadRequest", "window");
    sh_emit_json(c, "stream", "{\"call_id\":\"m6\",\"target\":\"demo::count\",\"shape\":\"unary\"}");
    expect_error(c, "stream:error", "m6", "BadRequest", "shape");
    memset(big, 'm', 590);
    big[590] = '\0';
    snprintf(json, sizeof json, "{\"call_id\":\"m7\",\"target\":\"demo::%s\"}", big);
    sh_emit_json(c, "unary", json);
    expect_error(c, "unary:error", "m7", "BadRequest", "limit");
    /* In-call events that are malformed or name no call are dropped; unknown events too. */
    sh_emit_raw(c, "credit", not_map, sizeof not_map);
    sh_emit_json(c, "bidi:in", "{\"call_id\":\"nobody\",\"item\":1}");
    sh_emit_json(c, "something-else", "{\"call_id\":\"x\"}");
    CHECK(sh_quiet(c, 100));
    /* A bad credit for a live stream ends it. */
    sh_emit_json(c, "stream", "{\"call_id\":\"m8\",\"target\":\"demo::wait_cancel\"}");
    sh_event_free(sh_expect(c, "stream:item", "m8", T));
    sh_emit_json(c, "credit", "{\"call_id\":\"m8\",\"n\":-3}");
    expect_error(c, "stream:error", "m8", "BadRequest", "n must be");
    CHECK(sh_connected(c));
    add_ok(c, "m9");
}

/* ---- throughput and memory figures (printed, not asserted) ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* CPU time (user + system) a process has used, in ms; pid 0 = this process. */
static long cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid ? (int)pid : (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

static void report_figures(sh_client *c, const sh_server *s, pid_t server_pid)
{
    pid_t wpid = sh_worker_pid(s, 0);
    sh_pump(c, 100);
    long rs, ps, as, rw, pw, aw;
    sh_mem_kib(server_pid, &rs, &ps, &as);
    sh_mem_kib(wpid, &rw, &pw, &aw);
    fprintf(stderr, "   idle VmRSS: agentix-server %ld KiB + agentix-worker %ld KiB = %ld KiB (target < 8192)\n"
                    "   of which anonymous (private) %ld + %ld KiB; PSS %ld + %ld KiB\n",
            rs, rw, rs + rw, as, aw, ps, pw);
    if (under_valgrind)
        return;
    const size_t total = (size_t)256 << 20;
    char json[200];
    snprintf(json, sizeof json,
             "{\"call_id\":\"tp\",\"target\":\"demo::produce_bytes\",\"args\":[%zu,65536],\"window\":64}",
             total);
    long c_srv = cpu_ms(server_pid), c_wk = cpu_ms(wpid), c_me = cpu_ms(0);
    long t0 = now_ms();
    sh_emit_json(c, "stream", json);
    size_t items, bytes;
    sh_event *e = sh_count_stream(c, "tp", 64, &items, &bytes, 120000);
    long ms = now_ms() - t0;
    CHECK_MSG(e, "the throughput stream did not end");
    CHECK_STREQ(e->name, "stream:end");
    sh_event_free(e);
    CHECK(items == total / 65536);
    fprintf(stderr, "   stream of %zu x 64 KiB items: %zu MiB in %ld ms = %.0f MB/s end to end\n", items,
            bytes >> 20, ms, ms ? (double)bytes / 1e6 / ((double)ms / 1000.0) : 0.0);
    fprintf(stderr, "   CPU during the stream: server %ld ms, worker %ld ms, test client %ld ms\n",
            cpu_ms(server_pid) - c_srv, cpu_ms(wpid) - c_wk, cpu_ms(0) - c_me);
    /* Unary round trips with a pre-encoded request, so the figure is mostly the server's path. */
    agx_value *req = NULL;
    const char *rq = "{\"call_id\":\"rt\",\"target\":\"demo::add\",\"args\":[1,2]}";
    CHECK(agx_value_from_json(rq, strlen(rq), NULL, &req, NULL) == 0);
    void *mp;
    size_t mp_len;
    CHECK(agx_value_to_msgpack(req, &mp, &mp_len, NULL) == 0);
    agx_value_free(req);
    enum { ROUNDS = 2000 };
    static double us[ROUNDS];
    long c0 = cpu_ms(server_pid), w0 = cpu_ms(wpid);
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        sh_emit_raw(c, "unary", mp, mp_len);
        sh_event_free(sh_expect(c, "unary:result", "rt", T));
        clock_gettime(CLOCK_MONOTONIC, &b);
        us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    free(mp);
    qsort(us, ROUNDS, sizeof us[0], cmp_double);
    fprintf(stderr, "   unary round trip through this harness: p50 %.1f us, p99 %.1f us; server CPU "
            "%.1f us/call, worker CPU %.1f us/call\n",
            us[ROUNDS / 2], us[ROUNDS * 99 / 100], (double)(cpu_ms(server_pid) - c0) * 1000.0 / ROUNDS,
            (double)(cpu_ms(wpid) - w0) * 1000.0 / ROUNDS);
    fprintf(stderr, "   RSS after the stream: agentix-server %ld KiB, agentix-worker %ld KiB\n",
            sh_rss_kib(server_pid), sh_rss_kib(wpid));
}

/* ---- configuration and worker start-up failures ---- */

/* Runs agentix-server with one extra variable (or argument) and returns its exit status; its
 * stderr lands in out. */
static int run_server_once(const char *env, const char *arg, char *out, size_t cap)
{
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        dup2(p[1], 1);
        close(p[0]);
        setenv("AGENTIX_BIND_HOST", "127.0.0.1", 1);
        setenv("AGENTIX_BIND_PORT", "0", 1);
        setenv("AGENTIX_AUTH", "none", 1); /* these runs are about the other variables */
        if (env)
            putenv((char *)env);
        execl(paths.server, paths.server, arg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    return st;
}

static void test_config(void)
{
    static const char *const bad[] = {
        "AGENTIX_BIND_PORT=80000", "AGENTIX_BIND_PORT=12ab", "AGENTIX_PING_INTERVAL_MS=0",
        "AGENTIX_PING_TIMEOUT_MS=-5", "AGENTIX_MAX_PAYLOAD=10", "AGENTIX_WORKER=/nonexistent/agentix-worker",
        "AGENTIX_CANCEL_GRACE_MS=0", "AGENTIX_WORKER_BOOT_MS=0", "AGENTIX_WORKER_THREADS=2000",
        "AGENTIX_QUEUE_BUDGET=1", "AGENTIX_AUTH=maybe", "AGENTIX_TOKEN_FD=x"};
    char out[2048];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int st = run_server_once(bad[i], NULL, out, sizeof out);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %#x", bad[i], st);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        CHECK_CONTAINS(out, name);
    }
    int st = run_server_once(NULL, "--version", out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_CONTAINS(out, AGX_VERSION_STRING);
    st = run_server_once(NULL, "--help", out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_CONTAINS(out, "AGENTIX_BIND_PORT");
    st = run_server_once(NULL, "--bogus", out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

/* A worker that exits before `ready`, one that talks nonsense, one that never answers: calls fail
 * with WorkerExited (never hang), and the server keeps serving. */
static void test_worker_boot_failures(void)
{
    char dir[] = "/tmp/agx-srvboot-XXXXXX";
    CHECK(mkdtemp(dir));
    char silent[128], env_silent[200];
    snprintf(silent, sizeof silent, "%s/silent-worker", dir);
    FILE *f = fopen(silent, "w");
    CHECK(f);
    fputs("#!/bin/sh\nexec sleep 120\n", f);
    fclose(f);
    CHECK(chmod(silent, 0755) == 0);
    snprintf(env_silent, sizeof env_silent, "AGENTIX_WORKER=%s", silent);
    static const struct {
        const char *env, *says;
    } cases[] = {{"AGENTIX_WORKER=/bin/false", "exited with code 1 before it was ready"},
                 {"AGENTIX_WORKER=/bin/cat", "which only the server sends"},
                 {NULL, "did not report ready within 2000 ms"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *env[] = {cases[i].env ? cases[i].env : env_silent, "AGENTIX_WORKER_BOOT_MS=2000",
                             NULL};
        sh_server s;
        sh_server_start(&s, &paths, NULL, env, under_valgrind);
        sh_client *c = sh_connect(&s, NULL, NULL);
        CHECK(c);
        sh_emit_json(c, "unary", "{\"call_id\":\"f1\",\"target\":\"demo::add\",\"args\":[1]}");
        expect_error(c, "unary:error", "f1", "WorkerExited", cases[i].says);
        sh_close(c);
        stop_clean(&s);
    }
    unlink(silent);
    rmdir(dir);
}

/* A worker that says `ready` and then ignores `shutdown` and SIGTERM: the drain escalates to
 * SIGKILL (5 s + 2 s) and the server still exits 0, leaving no process behind. */
static void test_stubborn_worker(void)
{
    char dir[] = "/tmp/agx-srvstub-XXXXXX";
    CHECK(mkdtemp(dir));
    char script[128], env_worker[200];
    snprintf(script, sizeof script, "%s/stubborn-worker", dir);
    FILE *f = fopen(script, "w");
    CHECK(f);
    /* the frame: u32 LE length 17, then the msgpack map {type:"ready", pid:1} */
    fputs("#!/bin/sh\ntrap '' TERM\n"
          "printf '\\021\\000\\000\\000\\202\\244type\\245ready\\243pid\\001'\n"
          "exec sleep 120\n", f);
    fclose(f);
    CHECK(chmod(script, 0755) == 0);
    snprintf(env_worker, sizeof env_worker, "AGENTIX_WORKER=%s", script);
    const char *env[] = {env_worker, NULL};
    sh_server s;
    sh_server_start(&s, &paths, NULL, env, under_valgrind);
    long t0 = now_ms();
    pid_t wpid = 0;
    /* the script's pid: the child of the server */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)s.pid, (int)s.pid);
    for (int i = 0; i < 3000 && wpid <= 0; i++) { /* 30 s: a bound for a loaded machine */
        FILE *cf = fopen(path, "r");
        if (cf) {
            int v = 0;
            if (fscanf(cf, "%d", &v) == 1)
                wpid = v;
            fclose(cf);
        }
        if (wpid <= 0)
            usleep(10000);
    }
    CHECK_MSG(wpid > 0, "no worker process");
    CHECK_MSG(file_has(s.pid_file, "1", T), "the stubborn worker's ready was not taken");
    stop_clean(&s);
    fprintf(stderr, "   drain with a worker that ignores shutdown and SIGTERM: %ld ms\n", now_ms() - t0);
    CHECK_MSG(process_gone(wpid, 5000), "the stubborn worker outlived the server");
    unlink(script);
    rmdir(dir);
}

/* ---- payload limits ---- */

/* Emits demo::echo with a binary argument of n bytes (pre-encoded msgpack, exact sizes). */
static void echo_binary(sh_client *c, const char *cid, size_t n)
{
    agx_value *req = agx_value_map(), *args = agx_value_array();
    char *data = malloc(n);
    CHECK(req && args && data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7);
    agx_value_array_push(args, agx_value_binary(data, n));
    agx_value_map_set(req, "call_id", agx_value_string(cid));
    agx_value_map_set(req, "target", agx_value_string("demo::echo"));
    agx_value_map_set(req, "args", args);
    void *mp;
    size_t len;
    CHECK(agx_value_to_msgpack(req, &mp, &len, NULL) == 0);
    sh_emit_raw(c, "unary", mp, len);
    free(mp);
    free(data);
    agx_value_free(req);
}

/* A message within AGENTIX_MAX_PAYLOAD whose worker frame would not be, and a value too large for
 * the host: each fails its own call with LimitExceeded; the worker and other calls carry on. */
static void test_limits(void)
{
    static const char *const env[] = {"AGENTIX_MAX_PAYLOAD=65536", NULL};
    sh_server s;
    sh_server_start(&s, &paths, NULL, env, under_valgrind);
    sh_client *c = sh_connect(&s, NULL, NULL);
    CHECK(c);
    add_ok(c, "l0");
    pid_t wpid = sh_worker_pid(&s, 0);
    echo_binary(c, "l1", 60000);
    sh_event *e = sh_expect(c, "unary:result", "l1", T);
    size_t len;
    const char *data = agx_value_get_binary(sh_get(e, "value"), &len);
    CHECK(len == 60000 && data[59999] == (char)(59999 * 7));
    sh_event_free(e);
    echo_binary(c, "l2", 65536 - 48); /* the message fits, the call frame does not */
    expect_error(c, "unary:error", "l2", "LimitExceeded", "AGENTIX_MAX_PAYLOAD");
    sh_emit_json(c, "stream", "{\"call_id\":\"l3\",\"target\":\"demo::count\",\"args\":[2],"
                              "\"kwargs\":{\"size\":70000}}");
    e = sh_next(c, T);
    CHECK(e);
    CHECK_STREQ(e->name, "stream:error");
    CHECK_STREQ(sh_error_type(e), "LimitExceeded");
    sh_event_free(e);
    add_ok(c, "l4");
    CHECK_MSG(sh_worker_pid(&s, 0) == wpid, "an oversized payload cost the worker its life");
    sh_close(c);
    stop_clean(&s);
}

/* ---- SIGTERM with calls in flight ---- */

static void test_sigterm_drain(void)
{
    sh_server s;
    start(&s, NULL);
    sh_client *c = sh_connect(&s, NULL, NULL);
    CHECK(c);
    add_ok(c, "g0");
    pid_t wpid = sh_worker_pid(&s, 0);
    sh_emit_json(c, "unary", "{\"call_id\":\"g1\",\"target\":\"demo::sleep\",\"args\":[60000]}");
    sh_emit_json(c, "stream", "{\"call_id\":\"g2\",\"target\":\"demo::wait_cancel\"}");
    sh_event_free(sh_expect(c, "stream:item", "g2", T));
    CHECK(kill(s.pid, SIGTERM) == 0);
    /* Each call in flight gets its terminal event before the connection closes. */
    int ended = 0;
    for (sh_event *e; ended < 2 && (e = sh_next(c, under_valgrind ? 60000 : T));) {
        CHECK_STREQ(sh_error_type(e), "Cancelled");
        CHECK_CONTAINS(sh_error_message(e), "shutting down");
        ended++;
        sh_event_free(e);
    }
    CHECK_MSG(ended == 2, "only %d of 2 calls ended at the drain", ended);
    sh_close(c);
    stop_clean_sig(&s, 0);
    CHECK_MSG(process_gone(wpid, 10000), "the worker outlived the server");
}

static void suite(void)
{
    sh_server s;
    start(&s, NULL);
    sh_client *c = sh_connect(&s, NULL, NULL);
    CHECK_MSG(c, "cannot connect");
    RUN(test_unary(c));
    RUN(test_stream(c));
    RUN(test_bidi(c));
    RUN(test_cancel(c, &s));
    RUN(test_duplicate(c));
    RUN(test_malformed(c));
    RUN(test_worker_killed(c, &s));
    RUN(test_crash(c, &s));
    RUN(test_two_connections(c, &s));
    RUN(test_disconnect(&s));
    RUN(report_figures(c, &s, s.pid));
    sh_close(c);
    stop_clean(&s);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <agentix-server> <modules dir> [valgrind]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    paths.server = argv[1];
    paths.modules = argv[2];
    under_valgrind = argc > 3 && strcmp(argv[3], "valgrind") == 0;
    if (getenv("SH_ONLY")) { /* debugging aid: one suite part */
        sh_server s;
        start(&s, NULL);
        sh_client *c = sh_connect(&s, NULL, NULL);
        if (strcmp(getenv("SH_ONLY"), "crash") == 0)
            test_crash(c, &s);
        else if (strcmp(getenv("SH_ONLY"), "figures") == 0)
            report_figures(c, &s, s.pid);
        sh_close(c);
        stop_clean(&s);
        return 0;
    }
    RUN(test_config());
    RUN(test_health());
    RUN(test_token());
    RUN(suite());
    RUN(test_sigterm_drain());
    RUN(test_worker_boot_failures());
    RUN(test_limits());
    RUN(test_stubborn_worker());
    fprintf(stderr, "ok\n");
    return 0;
}
