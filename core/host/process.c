/* process.c — a process by its pid, from /proc/<pid>/stat: state, process group and start time
 * (process.h). The owner labels (owner.c) and backends that run processes (local) read it to tell
 * a live owner from a dead one whose pid was reused. */
#include "agentix/backend/process.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/fdio.h"

int agx_proc_stat_read(long pid, agx_proc_stat *out)
{
    if (pid <= 0 || !out)
        return -1;
    char path[64], *buf;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (agx_file_read(path, 4096, 0, &buf, NULL, NULL) != 0)
        return -1;
    /* comm (field 2) may hold spaces and parentheses: fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    int rc = -1;
    if (p && p[1] == ' ') {
        p += 2;
        out->state = *p;
        int field = 3;
        for (; field < 22 && p; field++) {
            if (field == 5)
                out->pgrp = strtol(p, NULL, 10);
            p = strchr(p, ' ');
            p = p ? p + 1 : NULL;
        }
        char *end;
        errno = 0;
        unsigned long long v = p ? strtoull(p, &end, 10) : 0;
        if (p && !errno && end != p) {
            out->start_ticks = v;
            rc = 0;
        }
    }
    free(buf);
    return rc;
}
