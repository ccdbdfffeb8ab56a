/* rollout_tasks.c — reads the rollout's task list: a JSON array of
 *   {"name", "image"?, "files"?: {path: content}, "command", "expect_exit"?: 0,
 *    "expect_stdout"?: "...", "timeout"?: seconds}
 * parsed with agentix's own JSON codec (agx_value_from_json), checked field by field. */
#include "rollout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASKS_MAX_BYTES (10u << 20)
#define TASKS_MAX (100000u)

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "rollout: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(TASKS_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, TASKS_MAX_BYTES + 1, f) : 0;
    int bad = !buf || ferror(f) || n > TASKS_MAX_BYTES;
    fclose(f);
    if (bad) {
        fprintf(stderr, "rollout: cannot read %s, or it is larger than %u bytes\n", path,
                TASKS_MAX_BYTES);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static char *opt_string(const agx_value *task, const char *key, int *bad)
{
    const agx_value *v = agx_value_map_get(task, key);
    if (!v)
        return NULL;
    if (agx_value_type_of(v) != AGX_VALUE_STRING) {
        *bad = 1;
        return NULL;
    }
    return strdup(agx_value_get_string(v, NULL));
}

static int check_files(const agx_value *files)
{
    if (!files)
        return 0;
    if (agx_value_type_of(files) != AGX_VALUE_MAP)
        return -1;
    for (size_t i = 0; i < agx_value_map_len(files); i++)
        if (agx_value_type_of(agx_value_map_value_at(files, i)) != AGX_VALUE_STRING)
            return -1;
    return 0;
}

/* One task object into t; 0 or -1 (message printed). */
static int parse_task(const agx_value *o, size_t i, rollout_task *t)
{
    int bad = agx_value_type_of(o) != AGX_VALUE_MAP;
    memset(t, 0, sizeof *t);
    if (!bad) {
        t->name = opt_string(o, "name", &bad);
        t->image = opt_string(o, "image", &bad);
        t->command = opt_string(o, "command", &bad);
        t->expect_stdout = opt_string(o, "expect_stdout", &bad);
        t->files = (agx_value *)agx_value_map_get(o, "files");
        bad |= check_files(t->files) != 0;
        const agx_value *e = agx_value_map_get(o, "expect_exit");
        bad |= e && (agx_value_type_of(e) != AGX_VALUE_INT || agx_value_get_int64(e) < 0 ||
                     agx_value_get_int64(e) > 255);
        t->expect_exit = e ? (int)agx_value_get_int64(e) : 0;
        const agx_value *to = agx_value_map_get(o, "timeout");
        t->timeout_s = to ? agx_value_get_double(to) : 0;
        bad |= to && !(t->timeout_s > 0 && t->timeout_s < 86400);
    }
    if (bad || !t->name || !t->command) {
        fprintf(stderr, "rollout: task %zu: needs string \"name\" and \"command\"; optional string "
                        "\"image\" and \"expect_stdout\", \"files\" {path: string}, \"expect_exit\" "
                        "0..255 and \"timeout\" seconds\n", i);
        return -1;
    }
    return 0;
}

int rollout_tasks_load(const char *path, size_t repeat, agx_value **doc, rollout_task **tasks,
                       size_t *n)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text)
        return -1;
    agx_error err;
    int rc = agx_value_from_json(text, len, NULL, doc, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "rollout: %s: %s\n", path, err.message);
        return -1;
    }
    size_t m = agx_value_array_len(*doc);
    if (agx_value_type_of(*doc) != AGX_VALUE_ARRAY || m == 0 || repeat == 0 ||
        m > TASKS_MAX / repeat) {
        fprintf(stderr, "rollout: %s must be a JSON array of 1..%u tasks (after --repeat)\n", path,
                TASKS_MAX);
        return -1;
    }
    *n = m * repeat;
    *tasks = calloc(*n, sizeof **tasks);
    if (!*tasks)
        return -1;
    for (size_t i = 0; i < *n; i++)
        if (parse_task(agx_value_array_at(*doc, i % m), i % m, &(*tasks)[i]) != 0) {
            rollout_tasks_free(*tasks, i + 1);
            *tasks = NULL;
            return -1;
        }
    return 0;
}

void rollout_tasks_free(rollout_task *tasks, size_t n)
{
    for (size_t i = 0; tasks && i < n; i++) {
        free(tasks[i].name);
        free(tasks[i].image);
        free(tasks[i].command);
        free(tasks[i].expect_stdout);
    }
    free(tasks);
}
