/* test_manifest.c — the *.agxplugin parser: accepted forms, and errors that name file and line. */
#include "check.h"

#include "core/host/plugin_manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int parse(const char *text, agx_manifest *m, agx_error *err)
{
    return agx_manifest_parse(text, strlen(text), "m.agxplugin", m, err);
}

static void test_accepts(void)
{
    agx_manifest m;
    agx_error err;
    CHECK_OK(parse("# header\n\n  name=docker\r\nlibrary =  lib x.so  # trailing\n"
                   "symbol\t=\tagx_backend_docker\nfuture_key = ignored\n",
                   &m, &err),
             &err);
    CHECK_STREQ(m.name, "docker");
    CHECK_STREQ(m.library, "lib x.so");
    CHECK_STREQ(m.symbol, "agx_backend_docker");
    CHECK_OK(parse("name = k8s-pool\nlibrary = /abs/p.so\nsymbol = s1", &m, &err), &err);
    CHECK_STREQ(m.name, "k8s-pool");
}

static void expect_error(const char *text, int code, const char *needle)
{
    agx_manifest m;
    agx_error err;
    int rc = parse(text, &m, &err);
    CHECK_MSG(rc == code, "for %s: got %s: %s", text, agx_error_code_name(rc), err.message);
    CHECK_CONTAINS(err.message, needle);
}

static void test_rejects(void)
{
    expect_error("name = a\nlibrary = b\n", AGX_ERR_INVALID_ARGUMENT,
                 "m.agxplugin: required key 'symbol' is missing");
    expect_error("name = a\njunk\n", AGX_ERR_INVALID_ARGUMENT, "m.agxplugin:2: expected 'key = value'");
    expect_error("name = a\nname = b\n", AGX_ERR_INVALID_ARGUMENT, "m.agxplugin:2: 'name' given twice");
    expect_error("name =\n", AGX_ERR_INVALID_ARGUMENT, "m.agxplugin:1: 'name' has no value");
    expect_error("= x\n", AGX_ERR_INVALID_ARGUMENT, "m.agxplugin:1: missing key");
    expect_error("name = a b\n", AGX_ERR_INVALID_ARGUMENT, "m.agxplugin:1: name 'a b' may only");
    expect_error("name = a\nlibrary = l\nsymbol = 9x\n", AGX_ERR_INVALID_ARGUMENT,
                 "m.agxplugin:3: symbol '9x' is not a C identifier");
    char longname[200];
    memset(longname, 'n', sizeof longname);
    snprintf(longname, sizeof longname, "name = %0150d\n", 0);
    expect_error(longname, AGX_ERR_LIMIT, "'name' is longer than 64 bytes");
    agx_manifest m;
    agx_error err;
    CHECK(agx_manifest_parse("name = a\0b", 10, "nul", &m, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "NUL byte");
    /* A broken manifest still tells which name it claimed. */
    CHECK(parse("name = claimed\nlibrary = x\n", &m, &err) != 0);
    CHECK_STREQ(m.name, "claimed");
}

static void test_read_file(void)
{
    char path[] = "/tmp/agx-manifest-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char *big = malloc(AGX_MANIFEST_MAX_BYTES + 10);
    memset(big, '#', AGX_MANIFEST_MAX_BYTES + 10);
    CHECK(write(fd, big, AGX_MANIFEST_MAX_BYTES + 10) == AGX_MANIFEST_MAX_BYTES + 10);
    close(fd);
    free(big);
    agx_manifest m;
    agx_error err;
    CHECK(agx_manifest_read(path, &m, &err) == AGX_ERR_LIMIT);
    CHECK_CONTAINS(err.message, path);
    unlink(path);
    CHECK(agx_manifest_read(path, &m, &err) == AGX_ERR_IO);
    CHECK_CONTAINS(err.message, "cannot open manifest");
    CHECK(agx_manifest_read("/tmp", &m, &err) == AGX_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    TEST_RUN(test_accepts);
    TEST_RUN(test_rejects);
    TEST_RUN(test_read_file);
    return 0;
}
