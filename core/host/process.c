/* process.c — a process by its pid, from /proc/<pid>/stat: state, process group and start time
 * (process.h). The owner labels (owner.c) and backends that run processes (local) read it to tell
 * a live owner from a dead one whose pid was reused. The parsing is proctree.h's, the one
 * /proc/<pid>/stat parser (fuzzed). */
#include "agentix/backend/process.h"

#include <limits.h>

#include "agentix/proctree.h"

int agx_proc_stat_read(long pid, agx_proc_stat *out)
{
    agx_proc_entry e;
    if (pid <= 0 || pid > INT_MAX || !out || agx_proc_entry_read((pid_t)pid, &e) != 0)
        return -1;
    out->state = e.state;
    out->pgrp = e.pgrp;
    out->start_ticks = e.start_ticks;
    return 0;
}
