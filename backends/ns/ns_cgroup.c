/* ns_cgroup.c — resource limits and process tracking for ns sandboxes through cgroups. The kernel
 * may offer cgroup v1 hierarchies (one mount per controller), a v2 unified hierarchy, or both
 * side by side (a "hybrid" machine: v1 controllers plus an empty v2 mount). Each controller is
 * taken from wherever it is actually usable: a v1 mount of it, or the v2 mount when the v2 root
 * lists it. Sandboxes nest below this process's own group in each hierarchy (delegation: a host
 * confined to a group keeps its sandboxes inside it), under "agentix-ns/<id>".
 *
 * pids is required: it bounds fork bombs and is how a sweep finds every process a sandbox left
 * (pasta runs outside the PID namespace but inside the group). memory and cpu are created only
 * when a limit asks for them; asking for one the kernel cannot enforce is an error naming it. */
#include "backends/ns/ns_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CG_PIDS, CG_MEMORY, CG_CPU, CG_COUNT };
static const char *const cg_names[CG_COUNT] = {"pids", "memory", "cpu"};

struct agx_ns_cgroup_info {
    struct {
        int v2;             /* 1: from the unified hierarchy */
        char base[448];     /* <mount><own group>/agentix-ns, "" when not usable; leaves room
                             * for /<id> in agx_ns_cgroups' 512-byte paths */
    } c[CG_COUNT];
    char desc[256];
};

static int hidden(const char *name)
{
    /* Test seam: root cannot unmount a controller for one test, so the test hides it. */
    const char *h = getenv("AGENTIX_NS_TEST_HIDE_CONTROLLERS");
    if (!h)
        return 0;
    size_t n = strlen(name);
    for (const char *p = h; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && strncmp(p, name, n) == 0)
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

/* This process's group in the hierarchy whose /proc/self/cgroup line is `key` ("" for v2, else
 * a controller name). */
static int own_group(const char *key, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[1024];
    int found = -1;
    while (found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        int match = 0;
        if (!*key)
            match = *ctrls == '\0' && strcmp(line, "0") == 0;
        else
            for (const char *p = ctrls; *p && !match;) {
                size_t m = strcspn(p, ",");
                match = m == strlen(key) && strncmp(p, key, m) == 0;
                p += m + (p[m] == ',');
            }
        if (match && strlen(path) < n) {
            snprintf(out, n, "%s", strcmp(path, "/") == 0 ? "" : path);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* Walks /proc/self/mountinfo for cgroup mounts: v1 ones carrying a controller in their super
 * options, and the cgroup2 one. */
static void find_mounts(char v1[CG_COUNT][256], char *v2, size_t n)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        /* id parent major:minor root mountpoint opts [optional...] - fstype source superopts */
        char *dash = strstr(line, " - ");
        if (!dash)
            continue;
        char mnt[256], fstype[32], src[64], super[512];
        if (sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
            sscanf(dash + 3, "%31s %63s %511s", fstype, src, super) != 3)
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !*v2)
            snprintf(v2, n, "%s", mnt);
        if (strcmp(fstype, "cgroup") != 0)
            continue;
        for (int i = 0; i < CG_COUNT; i++)
            for (char *p = super; *p;) {
                size_t m = strcspn(p, ",");
                if (m == strlen(cg_names[i]) && strncmp(p, cg_names[i], m) == 0 && !v1[i][0])
                    snprintf(v1[i], sizeof v1[i], "%s", mnt);
                p += m + (p[m] == ',');
            }
    }
    fclose(f);
}

static int file_has_word(const char *path, const char *word)
{
    char buf[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    char *save = NULL; /* strtok_r: creates run on many threads at once */
    for (char *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        if (strcmp(tok, word) == 0)
            return 1;
    return 0;
}

static int write_str(const char *dir, const char *file, const char *value)
{
    char path[640];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

int agx_ns_cgroup_detect(agx_ns_cgroup_info **out, agx_error *err)
{
    agx_ns_cgroup_info *info = calloc(1, sizeof *info);
    if (!info)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory detecting cgroups");
    char v1[CG_COUNT][256] = {{0}}, v2[256] = "", own[384];
    find_mounts(v1, v2, sizeof v2);
    int off = snprintf(info->desc, sizeof info->desc, "cgroups:");
    for (int i = 0; i < CG_COUNT; i++) {
        if (hidden(cg_names[i]))
            continue;
        if (v1[i][0] && own_group(cg_names[i], own, sizeof own) == 0) {
            if ((size_t)snprintf(info->c[i].base, sizeof info->c[i].base, "%s%s/agentix-ns", v1[i],
                                 own) >= sizeof info->c[i].base)
                info->c[i].base[0] = '\0'; /* too deep to use */
        } else if (v2[0] && own_group("", own, sizeof own) == 0) {
            /* v2: the controller must be available at the root; our groups hang below the root
             * (v2 forbids enabling controllers for children of a group that holds processes). */
            char ctl[384];
            snprintf(ctl, sizeof ctl, "%s/cgroup.controllers", v2);
            if (!file_has_word(ctl, cg_names[i]))
                continue;
            info->c[i].v2 = 1;
            if ((size_t)snprintf(info->c[i].base, sizeof info->c[i].base, "%s/agentix-ns", v2) >=
                sizeof info->c[i].base)
                info->c[i].base[0] = '\0';
        }
        if (!info->c[i].base[0])
            continue;
        off += snprintf(info->desc + off, sizeof info->desc - (size_t)off, " %s (v%d)",
                        cg_names[i], info->c[i].v2 ? 2 : 1);
        if (off >= (int)sizeof info->desc)
            off = (int)sizeof info->desc - 1;
    }
    if (!info->c[CG_PIDS].base[0]) {
        free(info);
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "the ns backend needs the pids cgroup controller (to bound forks "
                             "and to find every process of a sandbox); mount it (cgroup v1: "
                             "mount -t cgroup -o pids cgroup /sys/fs/cgroup/pids) or enable it "
                             "in cgroup v2");
    }
    *out = info;
    return 0;
}

void agx_ns_cgroup_info_free(agx_ns_cgroup_info *info) { free(info); }

const char *agx_ns_cgroup_describe(const agx_ns_cgroup_info *info) { return info->desc; }

static int missing(const char *what, const char *ctrl, const agx_ns_cgroup_info *info,
                   agx_error *err)
{
    return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                         "the %s limit cannot be enforced: the '%s' cgroup controller is not "
                         "available here (%s); mount or enable it, or create the sandbox without "
                         "a %s limit", what, ctrl, info->desc, what);
}

int agx_ns_cgroup_plan(const agx_ns_cgroup_info *info, const char *id, agx_ns_cgroups *cg)
{
    memset(cg, 0, sizeof *cg);
    for (int i = 0; i < CG_COUNT; i++)
        if (info->c[i].base[0]) {
            /* v2 has one tree: one group serves every controller. */
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= info->c[j].v2 && info->c[i].v2;
            if (!dup)
                snprintf(cg->path[cg->n++], sizeof cg->path[0], "%s/%s", info->c[i].base, id);
        }
    return 0;
}

static const char *path_of(const agx_ns_cgroup_info *info, const agx_ns_cgroups *cg, int which)
{
    size_t n = strlen(info->c[which].base);
    for (int i = 0; i < cg->n; i++)
        if (n && strncmp(cg->path[i], info->c[which].base, n) == 0 && cg->path[i][n] == '/')
            return cg->path[i];
    return NULL;
}

/* v2: the controllers our groups use must be enabled in every ancestor's subtree_control. */
static int v2_enable(const agx_ns_cgroup_info *info, agx_error *err)
{
    char base[512] = "", root[512], want[64] = "";
    for (int i = 0; i < CG_COUNT; i++)
        if (info->c[i].v2 && info->c[i].base[0]) {
            snprintf(base, sizeof base, "%s", info->c[i].base);
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "+%s ", cg_names[i]);
        }
    if (!base[0])
        return 0;
    snprintf(root, sizeof root, "%s", base);
    *strrchr(root, '/') = '\0';
    if (write_str(root, "cgroup.subtree_control", want) != 0 ||
        (mkdir(base, 0755) != 0 && errno != EEXIST) ||
        write_str(base, "cgroup.subtree_control", want) != 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot enable cgroup v2 controllers '%s' below "
                             "%s: %s", want, root, strerror(errno));
    return 0;
}

static int set_limit(const char *dir, const char *file, const char *value, const char *what,
                     agx_error *err)
{
    if (write_str(dir, file, value) == 0)
        return 0;
    return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                         "cannot set the %s limit (%s/%s = %s): %s", what, dir, file, value,
                         strerror(errno));
}

int agx_ns_cgroup_create(const agx_ns_cgroup_info *info, const agx_ns_cgroups *cg,
                         const agx_ns_opts *o, agx_error *err)
{
    if (o->memory && !info->c[CG_MEMORY].base[0])
        return missing("memory", "memory", info, err);
    if (o->cpus > 0 && !info->c[CG_CPU].base[0])
        return missing("CPU", "cpu", info, err);
    int rc = v2_enable(info, err);
    for (int i = 0; !rc && i < CG_COUNT; i++) {
        if (!info->c[i].base[0] || info->c[i].v2)
            continue;
        if (mkdir(info->c[i].base, 0755) != 0 && errno != EEXIST)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot create cgroup %s: %s", info->c[i].base,
                               strerror(errno));
    }
    for (int i = 0; !rc && i < cg->n; i++)
        if (mkdir(cg->path[i], 0755) != 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot create cgroup %s: %s", cg->path[i],
                               strerror(errno));
    if (rc)
        return rc;
    char v[64];
    const char *p = path_of(info, cg, CG_PIDS);
    snprintf(v, sizeof v, "%lld", (long long)(o->pids > 0 ? o->pids : AGX_NS_DEFAULT_PIDS));
    rc = set_limit(p, "pids.max", v, "pids", err);
    if (!rc && o->memory) {
        int v2 = info->c[CG_MEMORY].v2;
        p = path_of(info, cg, CG_MEMORY);
        snprintf(v, sizeof v, "%llu", (unsigned long long)o->memory);
        rc = set_limit(p, v2 ? "memory.max" : "memory.limit_in_bytes", v, "memory", err);
        /* Swap would let the task exceed the limit: forbid it where the kernel accounts swap. */
        char swap[640];
        snprintf(swap, sizeof swap, "%s/%s", p, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes");
        if (!rc && access(swap, F_OK) == 0)
            rc = set_limit(p, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes",
                           v2 ? "0" : v, "memory+swap", err);
    }
    if (!rc && o->cpus > 0) {
        int v2 = info->c[CG_CPU].v2;
        long period = 100000, quota = (long)(o->cpus * (double)period);
        if (quota < 1000)
            quota = 1000;
        p = path_of(info, cg, CG_CPU);
        if (v2) {
            snprintf(v, sizeof v, "%ld %ld", quota, period);
            rc = set_limit(p, "cpu.max", v, "CPU", err);
        } else {
            snprintf(v, sizeof v, "%ld", period);
            rc = set_limit(p, "cpu.cfs_period_us", v, "CPU", err);
            snprintf(v, sizeof v, "%ld", quota);
            if (!rc)
                rc = set_limit(p, "cpu.cfs_quota_us", v, "CPU", err);
        }
    }
    if (rc)
        agx_ns_cgroup_destroy(cg, NULL);
    return rc;
}

/* Pids listed in <dir>/cgroup.procs into pids (at most cap); the count, -1 when the group is
 * gone. */
static int read_procs(const char *dir, pid_t *pids, int cap)
{
    char path[640];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int n = 0;
    long v;
    while (n < cap && fscanf(f, "%ld", &v) == 1)
        pids[n++] = (pid_t)v;
    fclose(f);
    return n;
}

int agx_ns_cgroup_count(const agx_ns_cgroups *cg)
{
    int total = 0;
    pid_t pids[256];
    for (int i = 0; i < cg->n; i++) {
        int n = read_procs(cg->path[i], pids, 256);
        if (n > 0)
            total += n;
    }
    return total;
}

/* Kills what is in the group and removes it, retrying both until the deadline: a process may
 * still be joining (a sandbox's first process joins its groups itself, just after the clone, so
 * a sweep after its host died can find the group empty, then busy), and the last exit may still
 * be in flight. A pid read from cgroup.procs belongs to a process still in the group: every
 * process of a sandbox lives in it, so what is killed here is the sandbox's own. The PID namespace
 * is normally gone already; this catches pasta and stragglers. */
static int destroy_one(const char *dir, agx_error *err)
{
    int n = 0;
    for (int waited = 0;; waited += 5) {
        pid_t pids[256];
        n = read_procs(dir, pids, 256);
        if (n < 0)
            return 0; /* gone */
        for (int k = 0; k < n; k++)
            kill(pids[k], SIGKILL);
        if (n == 0 && (rmdir(dir) == 0 || errno == ENOENT))
            return 0;
        if (waited >= AGX_NS_KILL_WAIT_MS)
            break;
        agx_clock_sleep_ms(5);
    }
    if (n > 0)
        return agx_error_set(err, AGX_ERR_TIMEOUT,
                             "%d process(es) of cgroup %s still run %d ms after SIGKILL; see "
                             "`cat %s/cgroup.procs` and delete the sandbox again", n, dir,
                             AGX_NS_KILL_WAIT_MS, dir);
    return agx_error_set(err, AGX_ERR_IO, "cannot remove cgroup %s: %s", dir, strerror(errno));
}

int agx_ns_cgroup_destroy(const agx_ns_cgroups *cg, agx_error *err)
{
    int rc = 0;
    for (int i = 0; i < cg->n && !rc; i++)
        rc = destroy_one(cg->path[i], err);
    return rc;
}

long agx_ns_cgroup_oom_kills(const agx_ns_cgroups *cg)
{
    long total = 0;
    for (int i = 0; i < cg->n; i++) {
        const char *files[] = {"memory.oom_control", "memory.events"};
        for (int f = 0; f < 2; f++) {
            char path[640], line[128];
            snprintf(path, sizeof path, "%s/%s", cg->path[i], files[f]);
            FILE *fp = fopen(path, "re");
            if (!fp)
                continue;
            long v;
            while (fgets(line, sizeof line, fp))
                if (sscanf(line, "oom_kill %ld", &v) == 1)
                    total += v;
            fclose(fp);
        }
    }
    return total;
}
