/* test_cli_plugins.c — the built `agentix` command: `plugins` text and --json output against the
 * test manifests, --help/--version, and the documented exit codes (0 ok, 1 error, 2 usage). */
#include "check.h"

#include "agentix/version.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *agentix;

/* Runs `agentix <args>` (stderr folded into stdout); returns the exit code, output in *out. */
static int run(const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", agentix, args);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    CHECK(WIFEXITED(status));
    *out = buf;
    return WEXITSTATUS(status);
}

/* The line of the text report that starts with name (followed by a blank). */
static const char *line_of(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == ' ')
            return l;
    return NULL;
}

static void test_text(void)
{
    char *out;
    CHECK(setenv("AGENTIX_PLUGIN_PATH", AGX_TEST_PA ":" AGX_TEST_PB, 1) == 0);
    CHECK(run("plugins", &out) == 0);
    CHECK(strncmp(out, "search path: " AGX_TEST_PA ":" AGX_TEST_PB ":",
                  strlen("search path: " AGX_TEST_PA ":" AGX_TEST_PB ":")) == 0);
    const char *good = line_of(out, "tgood");
    CHECK_MSG(good, "%s", out);
    CHECK(strncmp(good, "tgood", 5) == 0);
    CHECK_CONTAINS(good, " ok    " AGX_TEST_PA "/good.agxplugin -> " AGX_TEST_PA "/libagxtest-good.so\n");
    const char *abi = line_of(out, "tabi");
    CHECK(abi);
    CHECK(strstr(abi, " error ") == strchr(abi, ' ') + strspn(strchr(abi, ' '), " ") - 1);
    const char *next = strchr(abi, '\n') + 1;
    CHECK(strncmp(next, "    ABI: backend 'tabi' was built for backend ABI 999", 53) == 0);
    const char *nolib = line_of(out, "tnolib");
    CHECK(nolib);
    CHECK_CONTAINS(strchr(nolib, '\n') + 1, "    NOT_FOUND: backend 'tnolib': shared object");
    CHECK(line_of(out, "tb") != NULL);
    free(out);

    CHECK(run("plugins --check", &out) == 1); /* some test plugins are broken on purpose */
    free(out);
    CHECK(setenv("AGENTIX_PLUGIN_PATH", AGX_TEST_PB, 1) == 0);
    CHECK(run("plugins", &out) == 0);
    CHECK(line_of(out, "tb") != NULL);
    CHECK(line_of(out, "tgood") == NULL);
    free(out);
}

static json_t *find_plugin(json_t *plugins, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(plugins, i, p)
    {
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n && strcmp(n, name) == 0)
            return p;
    }
    return NULL;
}

static void test_json(void)
{
    char *out;
    CHECK(setenv("AGENTIX_PLUGIN_PATH", AGX_TEST_PA, 1) == 0);
    CHECK(run("plugins --json", &out) == 0);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    CHECK_MSG(root, "invalid JSON (%s): %s", jerr.text, out);
    json_t *sp = json_object_get(root, "search_path");
    CHECK(json_is_array(sp));
    CHECK_STREQ(json_string_value(json_array_get(sp, 0)), AGX_TEST_PA);
    CHECK_STREQ(json_string_value(json_array_get(sp, 1)), AGX_TEST_BUILD_PLUGINDIR);
    json_t *plugins = json_object_get(root, "plugins");
    json_t *good = find_plugin(plugins, "tgood");
    CHECK(good);
    CHECK_STREQ(json_string_value(json_object_get(good, "status")), "ok");
    CHECK_STREQ(json_string_value(json_object_get(good, "library")), AGX_TEST_PA "/libagxtest-good.so");
    CHECK(json_object_get(good, "error") == NULL);
    json_t *abi = find_plugin(plugins, "tabi");
    CHECK(abi);
    CHECK_STREQ(json_string_value(json_object_get(abi, "status")), "error");
    CHECK_STREQ(json_string_value(json_object_get(abi, "code")), "ABI");
    CHECK_CONTAINS(json_string_value(json_object_get(abi, "error")), "ABI 999");
    int unnamed = 0;
    size_t i;
    json_t *p;
    json_array_foreach(plugins, i, p) unnamed += json_is_null(json_object_get(p, "name"));
    CHECK(unnamed == 1); /* broken.agxplugin names nothing */
    json_decref(root);
    free(out);
}

static void test_usage(void)
{
    char *out;
    CHECK(run("--help", &out) == 0);
    CHECK_CONTAINS(out, "plugins");
    CHECK_CONTAINS(out, "Exit status: 0 success, 1 the operation failed, 2 usage error.");
    free(out);
    CHECK(run("plugins --help", &out) == 0);
    CHECK_CONTAINS(out, "Usage: agentix plugins [--json] [--check]");
    free(out);
    CHECK(run("help plugins", &out) == 0);
    CHECK_CONTAINS(out, "Usage: agentix plugins");
    free(out);
    CHECK(run("--version", &out) == 0);
    CHECK_CONTAINS(out, "agentix " AGX_VERSION_STRING);
    free(out);
    CHECK(run("", &out) == 2);
    free(out);
    CHECK(run("frobnicate", &out) == 2);
    CHECK_CONTAINS(out, "unknown command 'frobnicate'");
    free(out);
    CHECK(run("plugins --bogus", &out) == 2);
    CHECK_CONTAINS(out, "unexpected argument '--bogus'");
    free(out);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    agentix = argv[1];
    TEST_RUN(test_text);
    TEST_RUN(test_json);
    TEST_RUN(test_usage);
    return 0;
}
