/* test_cli.c — the built `agentix` command against the `local` backend, end to end: create --json
 * → get → ls --label → call (positional, keyword, stream as JSON lines, bidi from stdin, errors) →
 * exec (streamed output, the command's exit code, 125 on agentix failure) → delete → gc of a
 * sandbox whose owner (the shell that ran create) is gone → bench; --help and usage errors on
 * every subcommand with the documented exit codes. */
#include "check.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256], errfile[300];
static const char *wrapper = ""; /* $AGX_TEST_CLI_WRAPPER: e.g. valgrind in test_cli.valgrind */

static char *stderr_text(void)
{
    FILE *f = fopen(errfile, "r");
    CHECK(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs `sh -c "<agentix> <args>"` with stdout captured (stderr to errfile); returns the exit
 * code with the output in *out (caller frees). */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s '%s' %s 2>'%s'", wrapper, AGX_CLI, args, errfile);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    CHECK(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap)
            CHECK((buf = realloc(buf, cap *= 2)) != NULL);
    }
    buf[len] = '\0';
    int status = pclose(p);
    CHECK(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0) /* for the log when a check on it fails */
        fprintf(stderr, "[agentix %.200s] exit %d, stderr: %s\n", args, WEXITSTATUS(status),
                stderr_text());
    if (out)
        *out = buf;
    else
        free(buf);
    return WEXITSTATUS(status);
}

static int run_ok(char **out, const char *args)
{
    int rc = run(out, "%s", args);
    CHECK_MSG(rc == 0, "agentix %s exited %d: %s", args, rc, stderr_text());
    return rc;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    CHECK_MSG(j, "not JSON (%s): %s", e.text, text);
    return j;
}

static void test_help_and_usage(void)
{
    static const char *const cmds[] = {"create", "get", "ls", "delete", "call", "exec", "gc", "bench"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out;
        CHECK(run(&out, "%s --help", cmds[i]) == 0);
        CHECK_CONTAINS(out, "Usage: agentix ");
        CHECK_CONTAINS(out, "Exit status:");
        free(out);
        CHECK(run(NULL, "help %s", cmds[i]) == 0);
        CHECK_MSG(run(NULL, "%s --no-such-option", cmds[i]) == 2, "%s", cmds[i]);
        CHECK_CONTAINS(stderr_text(), "Try 'agentix ");
    }
    char *out;
    CHECK(run(&out, "--help") == 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        CHECK_CONTAINS(out, cmds[i]);
    free(out);
    CHECK(run(NULL, "get") == 2);                        /* no id */
    CHECK(run(NULL, "call http://127.0.0.1:1") == 2);    /* no function */
    CHECK(run(NULL, "call http://127.0.0.1:1 demo::add 5") == 2); /* args not array/object */
    CHECK(run(NULL, "call http://127.0.0.1:1 demo::add '[1'") == 2);
    CHECK(run(NULL, "exec http://127.0.0.1:1") == 2);    /* no command */
    CHECK(run(NULL, "create --env NOEQUALS") == 2);
    CHECK(run(NULL, "create --timeout soon") == 2);
    CHECK(run(NULL, "gc --older-than 5 weeks") == 2);
    CHECK(run(NULL, "bench -n 0") == 2);
    CHECK(run(NULL, "create --backend no-such-backend") == 1);
    CHECK_CONTAINS(stderr_text(), "no-such-backend");
}

typedef struct sandbox {
    char id[128], url[256], token[128], file[300];
} sandbox;

static void create(sandbox *sb, const char *extra)
{
    static int n;
    snprintf(sb->file, sizeof sb->file, "%s/sandbox-%d.json", root, n++);
    char *out;
    char args[1024];
    snprintf(args, sizeof args, "create --json --label agentix.test=cli %s", extra);
    run_ok(&out, args);
    json_t *j = parse(out);
    CHECK_STREQ(json_string_value(json_object_get(j, "backend")), "local");
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *url = json_string_value(json_object_get(j, "runtime_url"));
    const char *tok = json_string_value(json_object_get(j, "token"));
    CHECK(id && url && tok && json_is_object(json_object_get(j, "headers")));
    snprintf(sb->id, sizeof sb->id, "%s", id);
    snprintf(sb->url, sizeof sb->url, "%s", url);
    snprintf(sb->token, sizeof sb->token, "%s", tok);
    FILE *f = fopen(sb->file, "w");
    CHECK(f && fputs(out, f) >= 0 && fclose(f) == 0);
    json_decref(j);
    free(out);
}

static void test_lifecycle_and_calls(void)
{
    sandbox sb;
    create(&sb, "--env CLI_TEST_VAR=hello --label extra=1");
    char *out;

    /* get / ls */
    CHECK(run(&out, "get --json %s", sb.id) == 0);
    json_t *j = parse(out);
    CHECK(json_array_size(j) == 1);
    json_t *e = json_array_get(j, 0);
    CHECK_STREQ(json_string_value(json_object_get(e, "state")), "running");
    CHECK_STREQ(json_string_value(json_object_get(json_object_get(e, "labels"), "extra")), "1");
    /* owner labels name the shell that ran create */
    CHECK(json_object_get(json_object_get(e, "labels"), "agentix.owner.pid"));
    json_decref(j);
    free(out);
    CHECK(run(&out, "ls --label extra=1") == 0);
    CHECK_CONTAINS(out, sb.id);
    CHECK_CONTAINS(out, "running");
    free(out);
    CHECK(run(&out, "ls --json --label extra=nope") == 0);
    CHECK_STREQ(out, "[]\n");
    free(out);

    /* call: positional and keyword, by URL + token and by --sandbox-json */
    CHECK(run(&out, "call %s --token %s demo::add '[2, 3]'", sb.url, sb.token) == 0);
    CHECK_STREQ(out, "5\n");
    free(out);
    CHECK(run(&out, "call --sandbox-json %s demo::add '{\"a\": 2, \"b\": 40}'", sb.file) == 0);
    CHECK_STREQ(out, "42\n");
    free(out);
    CHECK(run(&out, "call --sandbox-json %s demo::add '{\"a\": 9}'", sb.file) == 0);
    CHECK_STREQ(out, "10\n"); /* b defaults to 1 */
    free(out);
    CHECK(run(&out, "call --sandbox-json %s demo::echo '[{\"k\": [1, \"x\", null]}]'", sb.file) == 0);
    CHECK_STREQ(out, "{\"k\":[1,\"x\",null]}\n");
    free(out);
    /* stream: one JSON line per item */
    CHECK(run(&out, "call --sandbox-json %s demo::count '{\"n\": 3}'", sb.file) == 0);
    int lines = 0;
    for (char *l = out; (l = strchr(l, '\n')) != NULL; l++)
        lines++;
    CHECK_MSG(lines == 3, "%s", out);
    CHECK_MSG(strncmp(out, "{\"i\":0", 6) == 0, "%s", out);
    free(out);
    /* bidi: stdin JSON lines in, JSON lines out */
    CHECK(run(&out, "call --sandbox-json %s demo::echo_bidi < /dev/null", sb.file) == 0);
    CHECK_STREQ(out, "");
    free(out);
    char args[1024];
    snprintf(args, sizeof args, "call --sandbox-json %s demo::echo_bidi", sb.file);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "printf '\"a\"\\n[1,2]\\n\\n{\"x\":true}\\n' | %s '%s' %s", wrapper,
             AGX_CLI, args);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    CHECK(pclose(p) == 0);
    buf[n] = '\0';
    CHECK_STREQ(buf, "\"a\"\n[1,2]\n{\"x\":true}\n");
    /* remote errors and wrong tokens exit 1 with the reason */
    CHECK(run(NULL, "call --sandbox-json %s demo::fail '[\"ValueError\", \"boom\"]'", sb.file) == 1);
    CHECK_CONTAINS(stderr_text(), "boom");
    CHECK_CONTAINS(stderr_text(), "ValueError");
    CHECK(run(NULL, "call --sandbox-json %s demo::no_such_function", sb.file) == 1);
    CHECK(run(NULL, "call %s --token wrong demo::add '[1]'", sb.url) == 1);

    /* exec: output streamed, the command's exit code, env and cwd */
    CHECK(run(&out, "exec --sandbox-json %s -- sh -c 'echo out; echo err >&2; exit 7'", sb.file) == 7);
    CHECK_STREQ(out, "out\n");
    CHECK_STREQ(stderr_text(), "err\n");
    free(out);
    CHECK(run(&out, "exec %s --token %s --env A=1 --cwd / -- sh -c 'echo $A $CLI_TEST_VAR; pwd'",
              sb.url, sb.token) == 0);
    CHECK_STREQ(out, "1 hello\n/\n");
    free(out);
    CHECK(run(&out, "exec --sandbox-json %s -- printf '%%s|' 'two words' \"it's\"", sb.file) == 0);
    CHECK_STREQ(out, "two words|it's|"); /* each word quoted: argv semantics */
    free(out);
    CHECK(run(NULL, "exec --sandbox-json %s --timeout 1 -- sleep 30", sb.file) == 128 + 9);
    CHECK(run(NULL, "exec http://127.0.0.1:1 --connect-timeout 2 -- true") == 125);

    /* delete, then get says gone and ls no longer lists it; a second delete succeeds */
    CHECK(run(&out, "delete --sandbox-json %s", sb.file) == 0);
    CHECK_CONTAINS(out, sb.id);
    free(out);
    CHECK(run(&out, "get --json %s", sb.id) == 0);
    CHECK_CONTAINS(out, "\"gone\"");
    free(out);
    CHECK(run(&out, "ls --label extra=1") == 0);
    CHECK(!strstr(out, sb.id));
    free(out);
    CHECK(run(NULL, "delete %s", sb.id) == 0);
}

/* The verdict gc's JSON gives sandbox id ("" when it is not in the answer). */
static const char *gc_verdict(json_t *j, const char *id)
{
    json_t *items = json_object_get(json_array_get(json_object_get(j, "backends"), 0), "sandboxes");
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
        if (strcmp(json_string_value(json_object_get(it, "id")) ?: "", id) == 0)
            return json_string_value(json_object_get(it, "verdict"));
    return "";
}

/* A shell's sandbox ends itself at its expiry unless `agentix extend` moves it. */
static void test_expiry(void)
{
    sandbox lapsing, extended;
    create(&lapsing, "--expiry 2s");
    create(&extended, "--expiry 2s");
    CHECK(run(NULL, "extend --sandbox-json %s --expiry 60s", extended.file) == 0);
    CHECK(run(NULL, "extend --sandbox-json %s --expiry 1s", extended.file) == 2); /* below 2 s */
    char *out = NULL;
    /* The lapsing one's server drains and exits once its 2 s pass: wait (bounded) for it. */
    for (int i = 0; i < 100; i++) {
        free(out);
        CHECK(run(&out, "get --json %s", lapsing.id) == 0);
        if (strstr(out, "\"stopped\""))
            break;
        usleep(100 * 1000);
    }
    CHECK_CONTAINS(out, "\"stopped\"");
    CHECK_CONTAINS(out, "\"expires_at\": 1"); /* a stopped one reports the expiry it had */
    free(out);
    CHECK(run(&out, "get --json %s", extended.id) == 0);
    CHECK_CONTAINS(out, "\"running\"");
    free(out);
    CHECK(run(NULL, "extend --sandbox-json %s", lapsing.file) == 1); /* nothing left to extend */
    CHECK(run(NULL, "delete --quiet %s %s", lapsing.id, extended.id) == 0);
}

static void test_gc(void)
{
    /* create's owner is the shell popen started, which is gone when run() returns: collectable.
     * A sandbox with --no-owner is kept until its expiry. */
    sandbox orphan, unowned;
    create(&orphan, "--run-id cli-gc-test");
    create(&unowned, "--run-id cli-gc-test --no-owner");
    char *out;
    CHECK(run(&out, "gc --backend local --run cli-gc-test --older-than 1h --json") == 0);
    json_t *j = parse(out);
    CHECK_STREQ(gc_verdict(j, orphan.id), "too-young");
    CHECK_STREQ(gc_verdict(j, unowned.id), "too-young");
    json_decref(j);
    free(out);
    CHECK(run(&out, "gc --backend local --run cli-gc-test --dry-run --json") == 0);
    j = parse(out);
    json_t *b = json_array_get(json_object_get(j, "backends"), 0);
    CHECK_STREQ(json_string_value(json_object_get(b, "backend")), "local");
    CHECK_MSG(json_array_size(json_object_get(b, "sandboxes")) == 2, "%s", out);
    CHECK_STREQ(gc_verdict(j, orphan.id), "would-delete");
    CHECK_STREQ(gc_verdict(j, unowned.id), "kept");
    json_decref(j);
    free(out);
    CHECK(run(&out, "gc --backend local --run cli-gc-test") == 0);
    CHECK_CONTAINS(out, "deleted local ");
    CHECK_CONTAINS(out, orphan.id);
    free(out);
    CHECK(run(&out, "get --json %s %s", orphan.id, unowned.id) == 0);
    j = parse(out);
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(j, 0), "state")), "gone");
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(j, 1), "state")), "running");
    json_decref(j);
    free(out);
    CHECK(run(NULL, "delete --quiet %s", unowned.id) == 0);
    /* Without --backend every discovered backend is visited; those that cannot run here are
     * reported as skipped, not failures. */
    CHECK(run(&out, "gc --run cli-gc-test --json") == 0);
    CHECK_CONTAINS(out, "\"backend\": \"local\"");
    free(out);
}

static void test_bench(void)
{
    char *out;
    run_ok(&out, "bench -n 3 --parallel 2 --json");
    json_t *j = parse(out);
    CHECK(json_integer_value(json_object_get(j, "ok")) == 3);
    CHECK(json_integer_value(json_object_get(j, "failed")) == 0);
    CHECK(json_object_get(json_object_get(j, "task_ms"), "p95"));
    json_decref(j);
    free(out);
    CHECK(run(&out, "bench -n 1 --command 'exit 3'") == 1);
    CHECK_CONTAINS(stderr_text(), "exited with 3");
    free(out);
}

static void test_nothing_left(void)
{
    char *out;
    CHECK(run(&out, "ls --json --label agentix.test=cli") == 0);
    CHECK_STREQ(out, "[]\n");
    free(out);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/agx-test-cli-XXXXXX");
    CHECK(mkdtemp(root));
    snprintf(errfile, sizeof errfile, "%s/stderr", root);
    CHECK(setenv("AGENTIX_LOCAL_ROOT", root, 1) == 0);
    CHECK(setenv("AGENTIX_MODULE_PATH", AGX_TEST_MODULEDIR, 1) == 0);
    CHECK(setenv("AGENTIX_BACKEND", "local", 1) == 0);
    unsetenv("AGENTIX_TOKEN");
    if (getenv("AGX_TEST_CLI_WRAPPER"))
        wrapper = getenv("AGX_TEST_CLI_WRAPPER");
    TEST_RUN(test_help_and_usage);
    TEST_RUN(test_lifecycle_and_calls);
    TEST_RUN(test_expiry);
    TEST_RUN(test_gc);
    TEST_RUN(test_bench);
    TEST_RUN(test_nothing_left);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return 0;
}
