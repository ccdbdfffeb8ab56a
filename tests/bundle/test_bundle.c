/* test_bundle.c — the bundle builder (runtime/bundle) on the build host: names and bundle files,
 * the ELF reader on real and damaged binaries, and a real build of the runtime with a user module:
 * every DT_NEEDED of every ELF in the tree resolves inside it, every dynamic object points at the
 * bundle's loader and lib folder, libwebsockets looks for its plugin in the bundle, and the same
 * inputs give the same digest and the same tar bytes. */
#include "check.h"

#include "runtime/bundle/bundle_internal.h"
#include "runtime/bundle/elf.h"

#include <elf.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char work[] = "/tmp/agx-test-bundle.XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
}

static char *in_work(const char *name)
{
    char *p = agx_bundle_join(work, name);
    CHECK(p);
    return p;
}

static void test_names(void)
{
    char repo[AGX_BUNDLE_NAME_MAX], tag[160];
    agx_error err;
    CHECK_OK(agx_bundle_name_split("demo:0.1", repo, sizeof repo, tag, sizeof tag, &err), &err);
    CHECK_STREQ(repo, "demo");
    CHECK_STREQ(tag, "0.1");
    CHECK_OK(agx_bundle_name_split("localhost:5000/a/b", repo, sizeof repo, tag, sizeof tag, &err), &err);
    CHECK_STREQ(repo, "localhost:5000/a/b");
    CHECK_STREQ(tag, "latest");
    static const char *const bad[] = {"", "Demo:1", "demo:", "demo:-x", ":x", "a//b:1", "a/:1", "d e:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(agx_bundle_name_split(bad[i], repo, sizeof repo, tag, sizeof tag, &err) ==
                      AGX_ERR_INVALID_ARGUMENT,
                  "'%s' accepted", bad[i]);
}

static void test_spec_file(void)
{
    agx_error err;
    agx_bundle_spec *s;
    CHECK_OK(agx_bundle_spec_new(&s, &err), &err);
    char *data = in_work("data.txt"), *spec = in_work("ok.agx");
    write_file(data, "payload\n");
    write_file(spec, "# a bundle\n\n  name = demo:0.1  \nfile = data.txt:etc/data.txt\ntool=/bin/sh\n");
    CHECK_OK(agx_bundle_spec_load(s, spec, &err), &err);
    CHECK_STREQ(agx_bundle_spec_name(s), "demo:0.1");
    CHECK(s->nfiles == 1 && s->ntools == 1);
    CHECK_STREQ(s->files[0].dst, "etc/data.txt");
    CHECK_STREQ(s->files[0].src, data);

    write_file(spec, "name = demo:1\nmodule = missing.so\n");
    CHECK(agx_bundle_spec_load(s, spec, &err) == AGX_ERR_NOT_FOUND);
    CHECK_CONTAINS(err.message, "ok.agx:2");
    write_file(spec, "colour = blue\n");
    CHECK(agx_bundle_spec_load(s, spec, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "unknown setting 'colour'");
    write_file(spec, "no equals sign\n");
    CHECK(agx_bundle_spec_load(s, spec, &err) == AGX_ERR_INVALID_ARGUMENT);
    static const char *const bad_dst[] = {"data.txt:../x", "data.txt:/abs", "data.txt:a/./b",
                                          "data.txt:BUNDLE", "data.txt:", "data.txt"};
    for (size_t i = 0; i < sizeof bad_dst / sizeof *bad_dst; i++)
        CHECK_MSG(agx_bundle_spec_set(s, "file", bad_dst[i], work, &err) == AGX_ERR_INVALID_ARGUMENT,
                  "file '%s' accepted", bad_dst[i]);
    agx_bundle_spec_free(s);
    free(data);
    free(spec);
}

static void test_elf(void)
{
    agx_error err;
    agx_elf_info info;
    CHECK_OK(agx_elf_read(AGX_TEST_SERVER, &info, &err), &err);
    CHECK(info.interp && info.machine == EM_X86_64 && info.is_dynamic);
    int has_runtime = 0;
    for (size_t i = 0; i < info.nneeded; i++)
        has_runtime |= strcmp(info.needed[i], "libagentix-runtime.so.0") == 0;
    CHECK(has_runtime);
    agx_elf_info_free(&info);

    char *text = in_work("text.txt");
    write_file(text, "#!/bin/sh\necho not elf\n");
    CHECK(agx_elf_read(text, &info, &err) == 1);
    free(text);

    uint8_t *data;
    size_t len;
    CHECK_OK(agx_file_load(AGX_TEST_SERVER, AGX_ELF_MAX_FILE, &data, &len, &err), &err);
    /* Truncated anywhere: an error or a partial parse, never a read past the end (ASan/valgrind). */
    for (size_t cut = 0; cut < len; cut += cut < 256 ? 1 : 4099) {
        uint8_t *copy = malloc(cut ? cut : 1);
        CHECK(copy);
        memcpy(copy, data, cut);
        if (agx_elf_parse(copy, cut, &info, &err) == 0)
            agx_elf_info_free(&info);
        free(copy);
    }
    Elf64_Ehdr eh;
    memcpy(&eh, data, sizeof eh);
    eh.e_phoff = (Elf64_Off)len - 8;
    memcpy(data, &eh, sizeof eh);
    CHECK(agx_elf_parse(data, len, &info, &err) == AGX_ERR_INVALID_ARGUMENT);
    data[EI_CLASS] = ELFCLASS32;
    CHECK(agx_elf_parse(data, len, &info, &err) == AGX_ERR_UNSUPPORTED);
    free(data);
}

/* ---- a real build ---- */

typedef struct tree_check {
    const char *root;
    size_t elves, entries;
} tree_check;

static int check_elf_cb(void *user, const char *rel, const char *full, const struct stat *st,
                        unsigned mode, const char *link, agx_error *err)
{
    tree_check *t = user;
    t->entries++;
    if (!S_ISREG(st->st_mode))
        return 0;
    agx_elf_info info;
    int rc = agx_elf_read(full, &info, err);
    CHECK_MSG(rc >= 0, "%s: %s", rel, err->message);
    if (rc == 1 || !info.is_dynamic) {
        agx_elf_info_free(&info);
        return 0;
    }
    t->elves++;
    int is_loader = strcmp(rel, "lib/ld-linux-x86-64.so.2") == 0;
    if (!is_loader)
        CHECK_MSG(info.runpath && strcmp(info.runpath, AGX_BUNDLE_PREFIX "/lib") == 0 && !info.rpath,
                  "%s: RUNPATH %s", rel, info.runpath ? info.runpath : "(none)");
    /* Executables run through the bundle's loader. (libc.so.6 also has a PT_INTERP, used only
     * when it is run as a program; as a library it is loaded by whichever loader runs.) */
    int program = strncmp(rel, "bin/", 4) == 0 || strncmp(rel, "lib/agentix/bin/", 16) == 0;
    if (program)
        CHECK_MSG(info.interp && strcmp(info.interp, AGX_BUNDLE_PREFIX "/lib/ld-linux-x86-64.so.2") == 0,
                  "%s: interpreter %s", rel, info.interp ? info.interp : "(none)");
    for (size_t i = 0; i < info.nneeded; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/lib/%s", t->root, info.needed[i]);
        CHECK_MSG(access(path, R_OK) == 0, "%s needs %s, which is not in the bundle", rel,
                  info.needed[i]);
    }
    agx_elf_info_free(&info);
    return 0;
}

/* libwebsockets' private copy looks for its evlib plugin in the bundle, not on the host. */
static void check_lws(const char *root)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lib/libwebsockets.so.17", root);
    uint8_t *data;
    size_t len;
    agx_error err;
    CHECK_OK(agx_file_load(path, AGX_ELF_MAX_FILE, &data, &len, &err), &err);
    static const char host[] = "\0/usr/lib/x86_64-linux-gnu\0", ours[] = "\0/opt/agentix/lib\0";
    CHECK(!memmem(data, len, host, sizeof host - 1));
    CHECK(memmem(data, len, ours, sizeof ours - 1));
    free(data);
    snprintf(path, sizeof path, "%s/lib/libwebsockets-evlib_uv.so", root);
    CHECK(access(path, R_OK) == 0);
}

static char *tar_of(const char *dir, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    agx_error err;
    CHECK(f);
    CHECK_OK(agx_bundle_write_tar(dir, f, &err), &err);
    CHECK(fclose(f) == 0);
    return buf;
}

static void check_tar(const char *tar, size_t len)
{
    CHECK(len % 512 == 0 && len >= 1024);
    size_t entries = 0;
    for (size_t off = 0; off + 512 <= len;) {
        const unsigned char *h = (const unsigned char *)tar + off;
        if (h[0] == 0)
            break;
        unsigned sum = 0;
        for (size_t i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : h[i];
        CHECK(strtoul((const char *)h + 148, NULL, 8) == sum);
        CHECK(memcmp(h + 257, "ustar", 6) == 0);
        CHECK(strtoull((const char *)h + 136, NULL, 8) == 0); /* mtime */
        char name[300];
        snprintf(name, sizeof name, "%.155s%s%.100s", (const char *)h + 345, h[345] ? "/" : "",
                 (const char *)h);
        CHECK_MSG(strncmp(name, "opt/", 4) == 0, "entry %s", name);
        size_t size = strtoull((const char *)h + 124, NULL, 8);
        off += 512 + (size + 511) / 512 * 512;
        entries++;
    }
    CHECK(entries > 20);
}

static void build(const char *dir, char digest[AGX_BUNDLE_DIGEST_MAX])
{
    agx_error err;
    agx_bundle_spec *s;
    CHECK_OK(agx_bundle_spec_new(&s, &err), &err);
    char *data = in_work("data.txt");
    write_file(data, "payload\n");
    CHECK_OK(agx_bundle_spec_set(s, "name", "agx-test/unit:1", NULL, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "module", AGX_TEST_DEMO, NULL, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "tool", "/bin/sh", NULL, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "file", "data.txt:etc/data.txt", work, &err), &err);
    CHECK_OK(agx_bundle_build_tree(s, dir, NULL, digest, &err), &err);
    agx_bundle_spec_free(s);
    free(data);
}

static void test_build(void)
{
    char *a = in_work("a"), *b = in_work("b");
    char da[AGX_BUNDLE_DIGEST_MAX], db[AGX_BUNDLE_DIGEST_MAX], dd[AGX_BUNDLE_DIGEST_MAX];
    build(a, da);
    build(b, db);
    CHECK_STREQ(da, db);
    CHECK(strncmp(da, "sha256:", 7) == 0 && strlen(da) == 7 + 64);
    agx_error err;
    CHECK_OK(agx_bundle_digest(a, dd, &err), &err);
    CHECK_STREQ(dd, da);
    char name[AGX_BUNDLE_NAME_MAX];
    CHECK_OK(agx_bundle_read_meta(a, name, sizeof name, dd, &err), &err);
    CHECK_STREQ(name, "agx-test/unit:1");
    CHECK_STREQ(dd, da);

    tree_check t = {.root = a};
    CHECK_OK(agx_tree_walk(a, check_elf_cb, &t, &err), &err);
    CHECK(t.elves >= 10);
    check_lws(a);
    char path[4096];
    static const char *const want[] = {"bin/agentix-server", "lib/agentix/bin/agentix-worker",
                                       "lib/agentix/modules/agentix.bash.so",
                                       "lib/agentix/modules/agentix.files.so",
                                       "lib/agentix/modules/demo.so", "bin/sh", "etc/data.txt",
                                       "lib/libagentix-runtime.so.0", "lib/libc.so.6"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        snprintf(path, sizeof path, "%s/%s", a, want[i]);
        CHECK_MSG(access(path, R_OK) == 0, "%s missing", want[i]);
    }

    size_t la, lb;
    char *ta = tar_of(a, &la), *tb = tar_of(b, &lb);
    CHECK(la == lb && memcmp(ta, tb, la) == 0);
    check_tar(ta, la);
    free(ta);
    free(tb);

    /* Any change of content changes the digest. */
    snprintf(path, sizeof path, "%s/etc/data.txt", b);
    write_file(path, "payload!\n");
    CHECK_OK(agx_bundle_digest(b, db, &err), &err);
    CHECK(strcmp(da, db) != 0);

    /* A non-empty folder is refused and left alone. */
    char d3[AGX_BUNDLE_DIGEST_MAX];
    agx_bundle_spec *s;
    CHECK_OK(agx_bundle_spec_new(&s, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "name", "x:1", NULL, &err), &err);
    CHECK(agx_bundle_build_tree(s, a, NULL, d3, &err) == AGX_ERR_CONFLICT);
    CHECK(access(path, R_OK) == 0);
    agx_bundle_spec_free(s);
    free(a);
    free(b);
}

static void test_build_errors(void)
{
    agx_error err;
    char digest[AGX_BUNDLE_DIGEST_MAX];
    agx_bundle_spec *s;
    CHECK_OK(agx_bundle_spec_new(&s, &err), &err);
    char *out = in_work("fail");
    CHECK(agx_bundle_build_tree(s, out, NULL, digest, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "no name");

    /* Two tools with one file name. */
    char *d1 = in_work("t1"), *d2 = in_work("t2");
    CHECK(mkdir(d1, 0755) == 0 && mkdir(d2, 0755) == 0);
    char *t1 = agx_bundle_join(d1, "tool"), *t2 = agx_bundle_join(d2, "tool");
    write_file(t1, "#!/bin/sh\necho 1\n");
    write_file(t2, "#!/bin/sh\necho 2\n");
    CHECK_OK(agx_bundle_spec_set(s, "name", "x:1", NULL, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "tool", t1, NULL, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "tool", t2, NULL, &err), &err);
    CHECK(agx_bundle_build_tree(s, out, NULL, digest, &err) == AGX_ERR_CONFLICT);
    CHECK_CONTAINS(err.message, "bin/tool");
    CHECK(access(out, F_OK) != 0); /* a failed build leaves nothing behind */
    agx_bundle_spec_free(s);

    /* A module that is not a shared object. */
    CHECK_OK(agx_bundle_spec_new(&s, &err), &err);
    char *fake = in_work("fake.so");
    write_file(fake, "not elf");
    CHECK_OK(agx_bundle_spec_set(s, "name", "x:1", NULL, &err), &err);
    CHECK_OK(agx_bundle_spec_set(s, "module", fake, NULL, &err), &err);
    CHECK(agx_bundle_build_tree(s, out, NULL, digest, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "not a shared object");
    agx_bundle_spec_free(s);
    free(fake);
    free(t1);
    free(t2);
    free(d1);
    free(d2);
    free(out);
}

/* The Docker step's failures that need no daemon: bad DOCKER_HOST, nobody listening. */
static void test_docker_errors(void)
{
    agx_error err;
    char id[128];
    FILE *tar = tmpfile();
    CHECK(tar);
    agx_bundle_docker_options o = {.docker_host = "ftp://example"};
    const char *digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    CHECK(agx_bundle_docker_import(tar, "x:1", digest, &o, id, sizeof id, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "DOCKER_HOST");
    char sock[600];
    snprintf(sock, sizeof sock, "unix://%s/no-docker.sock", work);
    o.docker_host = sock;
    CHECK(agx_bundle_docker_import(tar, "x:1", digest, &o, id, sizeof id, &err) ==
          AGX_ERR_UNAVAILABLE);
    CHECK_CONTAINS(err.message, "does not answer");
    CHECK(agx_bundle_docker_import(tar, "Bad:1", digest, &o, id, sizeof id, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_bundle_docker_import(tar, "x:1", "md5:00", &o, id, sizeof id, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    fclose(tar);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    CHECK(mkdtemp(work));
    test_names();
    test_spec_file();
    test_elf();
    test_build();
    test_build_errors();
    test_docker_errors();
    nftw(work, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    printf("test_bundle: ok\n");
    return 0;
}
