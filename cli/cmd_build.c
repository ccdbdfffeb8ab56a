/* cmd_build.c — `agentix build`: makes a self-contained runtime bundle (runtime/bundle/) from a
 * bundle.agx file and/or flags, and writes it as a folder, a deterministic tarball, and/or a
 * Docker image imported through the Engine API. Host-side tool; see docs/BUNDLES.md. */
#include "cli/cli.h"

#include "runtime/bundle/bundle.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void agx_build_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix build [SPEC] [--name NAME[:TAG]] [--module FILE.so]... [--tool PATH]...\n"
            "                     [--file SRC:DST]... [--output DIR|FILE.tar] [--docker]\n\n"
            "Bundle agentix-server, agentix-worker, the built-in modules, your modules and tools,\n"
            "and every shared library they need (glibc and its loader included) into one tree\n"
            "under " AGX_BUNDLE_PREFIX " that runs on any task image (docs/BUNDLES.md).\n\n"
            "  SPEC               a bundle file of 'key = value' lines (name, module, tool, file);\n"
            "                     its relative paths are relative to its folder\n"
            "  --name NAME[:TAG]  image reference of the bundle (required; tag defaults to latest)\n"
            "  --module FILE.so   a module for agentix-worker, installed by its file name\n"
            "  --tool PATH        an executable of this host, installed as bin/<name>\n"
            "  --file SRC:DST     any file, installed at " AGX_BUNDLE_PREFIX "/DST\n"
            "  --output DIR       write the tree into DIR (created, or empty)\n"
            "  --output FILE.tar  write a deterministic tarball (entries under opt/agentix/)\n"
            "  --docker           import into Docker as NAME:TAG and NAME:latest, through the\n"
            "                     Engine API at $DOCKER_HOST (default unix:///var/run/docker.sock)\n"
            "  --quiet            no progress on stderr\n\n"
            "Prints the bundle's content digest (and the image id with --docker). Same inputs give\n"
            "the same digest and the same tarball bytes.\n\n"
            "Exit status: 0 built, 1 the build failed, 2 usage error.\n");
}

typedef struct build_args {
    agx_bundle_spec *spec;
    const char *output;
    int docker, quiet, tty;
    int extra_stages; /* tarball and/or docker after the library's own stages */
    int last_stage;
} build_args;

static void build_on_progress(void *user, int no, int nstages, const char *stage, size_t done,
                              size_t total)
{
    build_args *a = user;
    if (a->quiet)
        return;
    int all = nstages + a->extra_stages;
    if (a->tty) {
        if (total)
            fprintf(stderr, "\r\033[K[%d/%d] %s (%zu/%zu)", no, all, stage, done, total);
        else
            fprintf(stderr, "\r\033[K[%d/%d] %s", no, all, stage);
    } else if (no != a->last_stage) {
        fprintf(stderr, "agentix build: [%d/%d] %s\n", no, all, stage);
    }
    a->last_stage = no;
}

static void build_progress_done(build_args *a)
{
    if (!a->quiet && a->tty)
        fprintf(stderr, "\r\033[K");
}

static int build_fail(build_args *a, const agx_error *err)
{
    build_progress_done(a);
    fprintf(stderr, "agentix build: %s\n", err->message);
    if (err->detail[0])
        fprintf(stderr, "%s\n", err->detail);
    return AGX_CLI_ERROR;
}

static int build_flag(const char *arg, const char *flag, char **argv, int argc, int *i,
                      const char **value)
{
    size_t n = strlen(flag);
    if (strncmp(arg, flag, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

static int build_parse(build_args *a, int argc, char **argv)
{
    agx_error err = {0};
    const char *spec_file = NULL, *name = NULL;
    /* Flags that add to the bundle, in the same words as the bundle file. */
    static const char *const keys[] = {"module", "tool", "file"};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *arg = argv[i];
        char flag[16];
        size_t k = 0;
        for (; k < sizeof keys / sizeof *keys; k++) {
            snprintf(flag, sizeof flag, "--%s", keys[k]);
            if (build_flag(arg, flag, argv, argc, &i, &v))
                break;
        }
        if (k < sizeof keys / sizeof *keys) {
            if (!v)
                return agx_cli_usage_error("build", "%s needs a value", flag);
            if (agx_bundle_spec_set(a->spec, keys[k], v, NULL, &err) != 0)
                return agx_cli_usage_error("build", "%s", err.message);
        } else if (build_flag(arg, "--name", argv, argc, &i, &name)) {
            if (!name)
                return agx_cli_usage_error("build", "--name needs a value");
        } else if (build_flag(arg, "--output", argv, argc, &i, &a->output)) {
            if (!a->output || !*a->output)
                return agx_cli_usage_error("build", "--output needs a value");
        } else if (strcmp(arg, "--docker") == 0) {
            a->docker = 1;
        } else if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            a->quiet = 1;
        } else if (arg[0] == '-') {
            return agx_cli_usage_error("build", "unknown option '%s'", arg);
        } else if (spec_file) {
            return agx_cli_usage_error("build", "only one bundle file may be given");
        } else {
            spec_file = arg;
        }
    }
    if (spec_file && agx_bundle_spec_load(a->spec, spec_file, &err) != 0)
        return agx_cli_usage_error("build", "%s", err.message);
    /* The flag wins over the file's name. */
    if (name && agx_bundle_spec_set(a->spec, "name", name, NULL, &err) != 0)
        return agx_cli_usage_error("build", "%s", err.message);
    if (!agx_bundle_spec_name(a->spec))
        return agx_cli_usage_error("build", "the bundle needs a name (--name NAME:TAG or 'name =')");
    if (!a->output && !a->docker)
        return agx_cli_usage_error("build", "nothing to do: give --output DIR|FILE.tar and/or --docker");
    return AGX_CLI_OK;
}

static int build_is_tar(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && strcmp(path + n - 4, ".tar") == 0;
}

static int build_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Writes the tarball of tree to a.output (atomically) or to an anonymous temp file. */
static int build_tar(build_args *a, const char *tree, FILE **anon, agx_error *err)
{
    build_on_progress(a, 5, 4, "writing the tarball", 0, 0);
    if (!build_is_tar(a->output)) {
        *anon = tmpfile();
        if (!*anon)
            return agx_error_set(err, AGX_ERR_IO, "cannot create a temporary file: %s", strerror(errno));
        int rc = agx_bundle_write_tar(tree, *anon, err);
        if (rc == 0)
            rewind(*anon);
        return rc;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.partial", a->output) >= (int)sizeof tmp)
        return agx_error_set(err, AGX_ERR_LIMIT, "output path too long");
    FILE *f = fopen(tmp, "wbe");
    if (!f)
        return agx_error_set(err, AGX_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    int rc = agx_bundle_write_tar(tree, f, err);
    if (fclose(f) != 0 && rc == 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, a->output) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int build_docker(build_args *a, const char *digest, FILE *anon, agx_error *err)
{
    FILE *tar = anon ? anon : fopen(a->output, "rbe");
    if (!tar)
        return agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", a->output, strerror(errno));
    build_on_progress(a, 4 + a->extra_stages, 4, "importing into Docker", 0, 0);
    char id[128];
    int rc = agx_bundle_docker_import(tar, agx_bundle_spec_name(a->spec), digest, NULL, id,
                                      sizeof id, err);
    if (!anon)
        fclose(tar);
    build_progress_done(a);
    if (rc == 0)
        printf("image %s %s\n", agx_bundle_spec_name(a->spec), id);
    return rc;
}

static int build_run(build_args *a)
{
    agx_error err = {0};
    int to_dir = a->output && !build_is_tar(a->output);
    char staging[PATH_MAX] = "";
    const char *tree = a->output;
    if (!to_dir) {
        const char *tmpdir = getenv("TMPDIR");
        snprintf(staging, sizeof staging, "%s/agentix-build.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        if (!mkdtemp(staging)) {
            agx_error_set(&err, AGX_ERR_IO, "cannot create a staging folder: %s", strerror(errno));
            return build_fail(a, &err);
        }
        tree = staging;
    }
    a->extra_stages = (a->docker || !to_dir) + a->docker;
    agx_bundle_build_options o = {.progress = build_on_progress, .progress_user = a};
    char digest[AGX_BUNDLE_DIGEST_MAX];
    int rc = agx_bundle_build_tree(a->spec, tree, &o, digest, &err);
    FILE *anon = NULL;
    if (rc == 0 && (a->docker || !to_dir))
        rc = build_tar(a, tree, &anon, &err);
    build_progress_done(a);
    if (rc == 0)
        printf("bundle %s %s\n", agx_bundle_spec_name(a->spec), digest);
    if (rc == 0 && a->docker)
        rc = build_docker(a, digest, anon, &err);
    if (anon)
        fclose(anon);
    if (staging[0])
        nftw(staging, build_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rc == 0 ? AGX_CLI_OK : build_fail(a, &err);
}

static int agx_build_main(int argc, char **argv)
{
    build_args a = {.tty = isatty(STDERR_FILENO)};
    agx_error err = {0};
    if (agx_bundle_spec_new(&a.spec, &err) != 0) {
        fprintf(stderr, "agentix build: %s\n", err.message);
        return AGX_CLI_ERROR;
    }
    int rc = build_parse(&a, argc, argv);
    if (rc == AGX_CLI_OK)
        rc = build_run(&a);
    agx_bundle_spec_free(a.spec);
    return rc;
}

const agx_cli_command agx_cli_cmd_build = {
    .name = "build",
    .summary = "bundle the runtime, modules and tools into a self-contained tree or image",
    .run = agx_build_main,
    .help = agx_build_help,
};
