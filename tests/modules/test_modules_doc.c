/* test_modules_doc.c — docs/MODULES.md against the live runtime, so the reference cannot drift:
 * the functions each built-in module declares (its agx_module_descriptor, read with dlopen) must
 * be exactly the functions the page documents, and for each one a real runtime's `describe` (a
 * sandbox of the local backend) must give the shape, parameter names in order, their types,
 * required-or-default (compared as values) and the result and input types the page states.
 * The page's entries are parsed from their fixed forms:
 *   ### `module::function` — shape
 *   | `name` | type | required-or-default-JSON | meaning |
 *   Result: `type`            Input items: `type` (bidi) */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/module.h"
#include "check.h"
#include "demo_calls.h"

#define MAX_FNS 32
#define MAX_PARAMS 16

typedef struct doc_param {
    char name[64], type[32], dflt[128]; /* dflt "required" or JSON */
} doc_param;

typedef struct doc_fn {
    char target[128], shape[16], result[32], input[32];
    doc_param params[MAX_PARAMS];
    int n_params, line;
} doc_fn;

static doc_fn fns[MAX_FNS];
static int n_fns;

/* ---- the page ---- */

/* Copies the text between the first pair of backticks after *p into out; advances *p past it. */
static int backticked(const char **p, char *out, size_t n)
{
    const char *a = strchr(*p, '`'), *b = a ? strchr(a + 1, '`') : NULL;
    if (!b || (size_t)(b - a - 1) >= n)
        return 0;
    snprintf(out, n, "%.*s", (int)(b - a - 1), a + 1);
    *p = b + 1;
    return 1;
}

/* The cell after the next '|' from *p, trimmed. */
static int cell(const char **p, char *out, size_t n)
{
    const char *a = strchr(*p, '|');
    if (!a)
        return 0;
    a++;
    const char *b = strchr(a, '|');
    if (!b)
        return 0;
    while (a < b && *a == ' ')
        a++;
    const char *e = b;
    while (e > a && e[-1] == ' ')
        e--;
    if ((size_t)(e - a) >= n)
        return 0;
    snprintf(out, n, "%.*s", (int)(e - a), a);
    *p = b;
    return 1;
}

static void parse_heading(const char *line, int lineno)
{
    CHECK_MSG(n_fns < MAX_FNS, "too many functions in the page");
    doc_fn *f = &fns[n_fns++];
    memset(f, 0, sizeof *f);
    f->line = lineno;
    const char *p = line;
    CHECK_MSG(backticked(&p, f->target, sizeof f->target), "line %d: no `module::function`", lineno);
    const char *dash = strstr(p, "— ");
    CHECK_MSG(dash && sscanf(dash + strlen("— "), "%15s", f->shape) == 1,
              "line %d: the heading must end with '— unary|stream|bidi'", lineno);
}

static void parse_row(doc_fn *f, const char *line, int lineno)
{
    char name[96], type[32], dflt[160];
    const char *p = line;
    CHECK(cell(&p, name, sizeof name) && cell(&p, type, sizeof type) && cell(&p, dflt, sizeof dflt));
    if (strcmp(name, "parameter") == 0 || name[0] == '-')
        return; /* header and rule rows */
    CHECK_MSG(f->n_params < MAX_PARAMS, "line %d: too many parameters", lineno);
    doc_param *dp = &f->params[f->n_params++];
    const char *q = name;
    CHECK_MSG(backticked(&q, dp->name, sizeof dp->name), "line %d: parameter not in backticks", lineno);
    snprintf(dp->type, sizeof dp->type, "%s", type);
    q = dflt;
    if (strcmp(dflt, "required") == 0)
        snprintf(dp->dflt, sizeof dp->dflt, "required");
    else
        CHECK_MSG(backticked(&q, dp->dflt, sizeof dp->dflt),
                  "line %d: default must be `required` or a `JSON value`", lineno);
}

static void parse_page(const char *path)
{
    FILE *fp = fopen(path, "r");
    CHECK_MSG(fp, "cannot read %s", path);
    char line[2048];
    doc_fn *cur = NULL;
    for (int lineno = 1; fgets(line, sizeof line, fp); lineno++) {
        const char *p = line;
        if (strncmp(line, "### `", 5) == 0 && strstr(line, "::")) {
            parse_heading(line, lineno);
            cur = &fns[n_fns - 1];
        } else if (strncmp(line, "## ", 3) == 0 || strncmp(line, "### ", 4) == 0) {
            cur = NULL;
        } else if (cur && strncmp(line, "| ", 2) == 0) {
            parse_row(cur, line, lineno);
        } else if (cur && strncmp(line, "Result: ", 8) == 0) {
            CHECK(backticked(&p, cur->result, sizeof cur->result));
        } else if (cur && strncmp(line, "Input items: ", 13) == 0) {
            CHECK(backticked(&p, cur->input, sizeof cur->input));
        }
    }
    fclose(fp);
    CHECK_MSG(n_fns > 0, "no function entries found in %s", path);
}

static doc_fn *doc_find(const char *target)
{
    for (int i = 0; i < n_fns; i++)
        if (strcmp(fns[i].target, target) == 0)
            return &fns[i];
    return NULL;
}

/* ---- the runtime ---- */

static const char *text(const agx_value *v)
{
    return v ? agx_value_get_string(v, NULL) : NULL;
}

/* Two JSON texts denote the same value. */
static int same_value(const char *doc_json, const agx_value *live)
{
    agx_value *want = NULL;
    agx_error err;
    CHECK_MSG(agx_value_from_json(doc_json, strlen(doc_json), NULL, &want, &err) == 0,
              "the page's default %s is not JSON: %s", doc_json, err.message);
    char *a = NULL, *b = NULL;
    CHECK_OK(agx_value_to_json(want, &a, &err), &err);
    CHECK_OK(agx_value_to_json(live, &b, &err), &err);
    int same = strcmp(a, b) == 0;
    if (!same)
        fprintf(stderr, "  default: page %s, runtime %s\n", a, b);
    free(a);
    free(b);
    agx_value_free(want);
    return same;
}

static int compare(agx_client *c, const doc_fn *f)
{
    agx_value *d = NULL;
    agx_error err;
    CHECK_OK(agx_client_describe(c, f->target, AGX_TEST_CALL_MS, &d, &err), &err);
    int bad = 0;
#define DIFF(what, page, live)                                                                  \
    do {                                                                                        \
        const char *p_ = (page), *l_ = (live);                                                  \
        if (!l_ || strcmp(p_, l_) != 0) {                                                       \
            fprintf(stderr, "docs/MODULES.md:%d: %s: %s is '%s' on the page, '%s' in the "     \
                    "runtime\n", f->line, f->target, what, p_, l_ ? l_ : "(none)");             \
            bad = 1;                                                                            \
        }                                                                                       \
    } while (0)
    DIFF("the shape", f->shape, text(agx_value_map_get(d, "shape")));
    DIFF("the result type", f->result, text(agx_value_map_get(d, "result")));
    if (strcmp(f->shape, "bidi") == 0)
        DIFF("the input type", f->input, text(agx_value_map_get(d, "input")));
    const agx_value *params = agx_value_map_get(d, "params");
    size_t n = agx_value_array_len(params);
    for (size_t i = 0; i < n || i < (size_t)f->n_params; i++) {
        const agx_value *lp = i < n ? agx_value_array_at(params, i) : NULL;
        const doc_param *dp = i < (size_t)f->n_params ? &f->params[i] : NULL;
        char what[96];
        snprintf(what, sizeof what, "parameter %zu", i + 1);
        if (!dp || !lp) {
            DIFF(what, dp ? dp->name : "(absent)", lp ? text(agx_value_map_get(lp, "name")) : NULL);
            continue;
        }
        DIFF(what, dp->name, text(agx_value_map_get(lp, "name")));
        snprintf(what, sizeof what, "the type of '%s'", dp->name);
        DIFF(what, dp->type, text(agx_value_map_get(lp, "type")));
        int required = agx_value_get_bool(agx_value_map_get(lp, "required"));
        snprintf(what, sizeof what, "whether '%s' is required", dp->name);
        DIFF(what, strcmp(dp->dflt, "required") == 0 ? "required" : "optional",
             required ? "required" : "optional");
        if (!required && strcmp(dp->dflt, "required") != 0 &&
            !same_value(dp->dflt, agx_value_map_get(lp, "default"))) {
            fprintf(stderr, "docs/MODULES.md:%d: %s: the default of '%s' differs\n", f->line,
                    f->target, dp->name);
            bad = 1;
        }
    }
#undef DIFF
    agx_value_free(d);
    return bad;
}

/* The functions a built-in module declares, from its descriptor. */
static int check_module(agx_client *c, const char *name, int *seen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", AGX_BUILTIN_MODULES, name);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(so, "dlopen %s: %s", path, dlerror());
    const agx_module *m = dlsym(so, AGX_MODULE_SYMBOL);
    CHECK_MSG(m && m->name && strcmp(m->name, name) == 0, "%s has no descriptor for %s", path, name);
    int bad = 0;
    for (size_t i = 0; i < m->n_functions; i++) {
        char target[128];
        snprintf(target, sizeof target, "%s::%s", name, m->functions[i].name);
        const doc_fn *f = doc_find(target);
        if (!f) {
            fprintf(stderr, "docs/MODULES.md: %s is not documented\n", target);
            bad = 1;
            continue;
        }
        (*seen)++;
        bad |= compare(c, f);
    }
    dlclose(so);
    return bad;
}

int main(void)
{
    parse_page(AGX_SOURCE_DIR "/docs/MODULES.md");
    char root[1024];
    snprintf(root, sizeof root, "%s/modules-doc-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(root));
    setenv("AGENTIX_LOCAL_ROOT", root, 1);
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("local", &dep, &err), &err);
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 180000) == 0);
    int bad = 0, seen = 0;
    {
        AGX_SESSION(sb, dep, cfg, &err);
        CHECK_MSG(sb, "%s", err.message);
        agx_client *c = NULL;
        CHECK_OK(agx_test_connect(sb, &c, &err), &err);
        bad |= check_module(c, "agentix.bash", &seen);
        bad |= check_module(c, "agentix.files", &seen);
        agx_client_free(c);
    }
    CHECK_OK(err.code, &err);
    for (int i = 0; i < n_fns; i++) /* documented, but declared by neither module */
        if (strncmp(fns[i].target, "agentix.bash::", 14) != 0 &&
            strncmp(fns[i].target, "agentix.files::", 15) != 0) {
            fprintf(stderr, "docs/MODULES.md:%d: %s is not a built-in module's\n", fns[i].line,
                    fns[i].target);
            bad = 1;
        }
    if (seen != n_fns) {
        fprintf(stderr, "docs/MODULES.md documents %d functions, the modules declare %d of them\n",
                n_fns, seen);
        bad = 1;
    }
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    CHECK(rmdir(root) == 0);
    CHECK_MSG(!bad, "docs/MODULES.md and the runtime disagree (above)");
    fprintf(stderr, "docs/MODULES.md matches the runtime: %d functions\n", seen);
    return 0;
}
