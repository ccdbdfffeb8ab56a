/* oom.c — how many processes the kernel's OOM killer has killed in this sandbox's memory cgroup
 * (agentix.bash reports a command it killed as oom_killed, so a host can tell "out of memory"
 * from any other SIGKILL). Read from the cgroup the runtime sees as its root: cgroup v2
 * memory.events "oom_kill", else cgroup v1 memory.oom_control "oom_kill". */
#include "oom.h"

#include <stdio.h>
#include <string.h>

/* The value of a "<key> <n>" line of a small kernel file; -1 when absent or unreadable. */
static long long keyed(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[128];
    long long v = -1, n;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0 && line[k] == ' ' && sscanf(line + k + 1, "%lld", &n) == 1) {
            v = n;
            break;
        }
    fclose(f);
    return v;
}

long long agx_oom_kills(void)
{
    long long v = keyed("/sys/fs/cgroup/memory.events", "oom_kill");
    return v >= 0 ? v : keyed("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill");
}
