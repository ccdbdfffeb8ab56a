/* process.h — what a backend that runs processes needs to know about one by its pid: its state,
 * process group and start time, read from /proc/<pid>/stat (the start time tells a process from a
 * later one that reused its pid). Part of the backend toolkit (toolkit.h), in libagentix. */
#ifndef AGENTIX_BACKEND_PROCESS_H
#define AGENTIX_BACKEND_PROCESS_H

#include <stdint.h>

#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_proc_stat {
    char state;           /* 'R', 'S', 'Z' (zombie), … (field 3) */
    long pgrp;            /* process group (field 5) */
    uint64_t start_ticks; /* start time in clock ticks since boot (field 22) */
} agx_proc_stat;

/* Reads /proc/<pid>/stat of this pid namespace. 0, or -1 when there is no such process (or its
 * stat cannot be read or parsed). */
AGX_API int agx_proc_stat_read(long pid, agx_proc_stat *out);

#ifdef __cplusplus
}
#endif
#endif
