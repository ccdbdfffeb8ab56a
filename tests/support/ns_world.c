/* ns_world.c — the ns backend's leftovers counted from the kernel (ns_world.h): cgroup trees,
 * /proc/self/mountinfo, the state folder, `ip link`. */
#include "ns_world.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define MAX_GROUPS 8

static struct {
    char orig[1024]; /* the group this process was in */
    char mine[1024]; /* the group it moved into */
} groups[MAX_GROUPS];
static int ngroups;

static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && strncmp(p, word, n) == 0)
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

/* The mount point of the v1 hierarchy holding controller ctl. */
static int mount_of(const char *ctl, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    CHECK(f);
    char line[2048];
    int found = -1;
    while (found && fgets(line, sizeof line, f)) {
        char mnt[512], fstype[32], super[512];
        const char *dash = strstr(line, " - ");
        if (dash && sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1 &&
            sscanf(dash + 3, "%31s %*s %511s", fstype, super) == 2 &&
            strcmp(fstype, "cgroup") == 0 && has_word(super, ctl)) {
            snprintf(out, n, "%s", mnt);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

static void join(const char *dir)
{
    char path[1100];
    int n = snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    CHECK_MSG(n > 0 && (size_t)n < sizeof path, "cgroup path too long: %s", dir);
    FILE *f = fopen(path, "we");
    CHECK_MSG(f && fprintf(f, "0\n") > 0 && fclose(f) == 0, "cannot join cgroup %s", dir);
}

/* Groups of earlier runs of this tag whose process died: removed when empty (the backend's
 * sweep removes the sandbox groups a crashed run left below them). */
static void drop_stale(const char *parent, const char *tag)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "agx-test-%s-", tag);
    DIR *d = opendir(parent);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        long pid = atol(e->d_name + strlen(prefix));
        char path[1400];
        if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
            snprintf(path, sizeof path, "%s/%s/agentix-ns", parent, e->d_name);
            rmdir(path);
            snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
            rmdir(path);
        }
    }
    if (d)
        closedir(d);
}

void ns_world_enter(const char *tag)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    CHECK(f);
    char line[1024];
    static const char *const wanted[] = {"pids", "memory", "cpu"};
    while (fgets(line, sizeof line, f) && ngroups < MAX_GROUPS) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        for (size_t w = 0; w < 3; w++) {
            char mnt[512];
            if (!has_word(ctrls, wanted[w]) || mount_of(wanted[w], mnt, sizeof mnt) != 0)
                continue;
            char orig[1024];
            snprintf(orig, sizeof orig, "%s%s", mnt, strcmp(path, "/") ? path : "");
            drop_stale(orig, tag);
            snprintf(groups[ngroups].orig, sizeof groups[0].orig, "%s", orig);
            snprintf(groups[ngroups].mine, sizeof groups[0].mine, "%.900s/agx-test-%s-%d", orig,
                     tag, (int)getpid());
            CHECK_MSG(mkdir(groups[ngroups].mine, 0755) == 0 || errno == EEXIST,
                      "cannot create cgroup %s", groups[ngroups].mine);
            join(groups[ngroups].mine);
            ngroups++;
            break;
        }
    }
    fclose(f);
    CHECK_MSG(ngroups > 0, "no pids/memory/cpu cgroup hierarchy to count the ns backend's groups in");
}

static int count_lines(const char *cmd, const char *what)
{
    FILE *p = popen(cmd, "r");
    CHECK(p);
    int n = 0;
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        fprintf(stderr, "  leftover %s: %s", what, line);
        n++;
    }
    pclose(p);
    return n;
}

/* Sandbox groups below ours and the processes in them (printed when `print`). */
static void count_groups(int *groups_left, int *procs, int print)
{
    *groups_left = *procs = 0;
    for (int i = 0; i < ngroups; i++) {
        char base[1100];
        snprintf(base, sizeof base, "%s/agentix-ns", groups[i].mine);
        DIR *d = opendir(base);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_type != DT_DIR || e->d_name[0] == '.')
                continue;
            (*groups_left)++;
            if (print)
                fprintf(stderr, "  leftover cgroup: %s/%s\n", base, e->d_name);
            char path[1400], pid[32];
            snprintf(path, sizeof path, "%s/%s/cgroup.procs", base, e->d_name);
            FILE *f = fopen(path, "re");
            while (f && fgets(pid, sizeof pid, f)) {
                if (print)
                    fprintf(stderr, "  leftover process: %s", pid);
                (*procs)++;
            }
            if (f)
                fclose(f);
        }
        if (d)
            closedir(d);
    }
}

int ns_world_processes(void)
{
    int groups_left, procs;
    count_groups(&groups_left, &procs, 0);
    return procs;
}

int ns_world_leftovers(const char *root, const char *when)
{
    int groups_left, procs;
    count_groups(&groups_left, &procs, 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -F ' %s/' /proc/self/mountinfo", root);
    int mounts = count_lines(cmd, "mount");
    snprintf(cmd, sizeof cmd, "ls -A '%s/sandboxes' 2>/dev/null", root);
    int dirs = count_lines(cmd, "sandbox folder");
    int links = count_lines("ip -o link | awk -F': ' '$2 ~ /^agx/'", "link");
    fprintf(stderr, "%s: cgroups %d, processes %d, mounts %d, links %d, sandbox folders %d\n",
            when, groups_left, procs, mounts, links, dirs);
    return groups_left + procs + mounts + links + dirs;
}

void ns_world_leave(void)
{
    for (int i = 0; i < ngroups; i++) {
        join(groups[i].orig);
        char base[1100];
        snprintf(base, sizeof base, "%s/agentix-ns", groups[i].mine);
        CHECK_MSG(rmdir(base) == 0 || errno == ENOENT, "cgroup %s is not empty", base);
        CHECK_MSG(rmdir(groups[i].mine) == 0, "cannot remove cgroup %s: %s", groups[i].mine,
                  strerror(errno));
    }
    ngroups = 0;
}
