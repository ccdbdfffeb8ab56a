/* local_strays.c — servers no record names: a host killed between spawning a sandbox's server and
 * writing its pid into sandbox.json leaves a server only its working folder tells apart. Delete
 * finds such servers by their working directory (under the sandbox's folder) and ends their
 * process groups, so removing the folder never leaves a server running in a deleted directory. */
#include "backends/local/local_internal.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agentix/clock.h"

/* Whether pid is an agentix-server working in dir or below it. */
static int works_in(const char *pid, const char *dir)
{
    char link[64], cwd[PATH_MAX], comm[64] = "";
    snprintf(link, sizeof link, "/proc/%s/cwd", pid);
    ssize_t n = readlink(link, cwd, sizeof cwd - 1);
    if (n <= 0)
        return 0;
    cwd[n] = '\0';
    size_t d = strlen(dir);
    if (strncmp(cwd, dir, d) != 0 || (cwd[d] != '\0' && cwd[d] != '/'))
        return 0;
    snprintf(link, sizeof link, "/proc/%s/comm", pid);
    FILE *f = fopen(link, "re");
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
    }
    return strncmp(comm, "agentix-server", 14) == 0;
}

int agx_local_kill_strays(const char *dir)
{
    int killed = 0;
    for (int round = 0; round < 50; round++) {
        DIR *d = opendir("/proc");
        if (!d)
            return killed;
        struct dirent *e;
        int found = 0;
        while ((e = readdir(d))) {
            if (strspn(e->d_name, "0123456789") != strlen(e->d_name) || !works_in(e->d_name, dir))
                continue;
            long pid = strtol(e->d_name, NULL, 10);
            agx_proc_stat st;
            if (agx_proc_stat_read(pid, &st) != 0 || st.state == 'Z')
                continue;
            found++;
            killed++;
            kill(st.pgrp == pid ? (pid_t)-pid : (pid_t)pid, SIGKILL); /* servers lead their group */
        }
        closedir(d);
        if (!found)
            break;
        agx_clock_sleep_ms(20);
    }
    return killed;
}
