/* proctree.h — killing a whole process tree: the one mechanism every layer uses to make sure a
 * sandbox's processes end (libagentix-runtime, so the runtime and its modules have it too) (agentix.bash's per-command subreaper on cancel, timeout and worker
 * death; agentix-server's drain; the local backend's delete). A tree is root and every process
 * whose parent chain leads to it — which, below a subreaper (PR_SET_CHILD_SUBREAPER), includes
 * the daemons that double-forked or called setsid, since orphans are reparented to it.
 *
 * Rounds of /proc scans stop (SIGSTOP) every live descendant until a scan finds none running
 * that was not stopped already, so nothing forks behind the walk; then all get SIGKILL. Signals go
 * through a pidfd whose process is checked against the scan (start time), so a pid reused in
 * between is never signalled. No allocation and no stdio: it may run in a child forked from a
 * threaded process, with the caller's scratch memory.
 *
 * What it cannot reach: a process that left the tree before the kill (its parent chain no longer
 * leads to root: reparented above root because an ancestor subreaper died), or one in another
 * PID namespace. */
#ifndef AGENTIX_PROCTREE_H
#define AGENTIX_PROCTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#ifdef __cplusplus
}
#endif
#endif

/* One process of a /proc scan. */
typedef struct agx_proc_entry {
    pid_t pid, ppid;
    pid_t pgrp, sid;      /* process group and session */
    uint64_t start_ticks;
    char state;
    char comm[16];        /* the command name (field 2, cut at 15 bytes; chosen by the process) */
} agx_proc_entry;

/* Parses the text of /proc/<pid>/stat (len bytes): pid (1), comm (2), state (3), ppid (4),
 * process group (5), session (6) and starttime (22). 0, or -1 when it is not such a line. Pure:
 * fuzzed. */
AGX_API int agx_proc_stat_parse(const char *text, size_t len, agx_proc_entry *out);
/* The same for a live process of this PID namespace: 0, or -1 when there is none (or unreadable). */
AGX_API int agx_proc_entry_read(pid_t pid, agx_proc_entry *out);

/* Stops then SIGKILLs every live descendant of root, and root itself when with_root. scratch
 * holds cap entries (the scan; 4096 covers any sandbox). Returns the number of processes killed,
 * or -1 when the tree could not be fully walked (cap too small, /proc unreadable): what was seen
 * is killed anyway. Returns once every process it signalled is dead or a zombie, or after
 * timeout_ms (then -1). */
AGX_API long agx_proc_kill_tree(pid_t root, bool with_root, agx_proc_entry *scratch, size_t cap,
                        int timeout_ms);

/* Every process of this PID namespace, read from /proc into scratch: the number filled (cap when
 * there were more), or -1 when /proc cannot be read. */
AGX_API long agx_proc_scan(agx_proc_entry *scratch, size_t cap);

/* Moves root (when with_root) and its descendants among e[0..n) to the front; their count. */
AGX_API size_t agx_proc_tree_select(agx_proc_entry *e, size_t n, pid_t root, bool with_root);

/* Signals the process e describes if it still is that process (same start time), through a
 * pidfd where the kernel has them: a pid reused since the scan is never hit. */
AGX_API void agx_proc_signal(const agx_proc_entry *e, int sig);
/* Whether the process e describes still runs (not a zombie, same start time). */
AGX_API bool agx_proc_alive(const agx_proc_entry *e);

/* Live (not zombie) descendants of root right now; -1 on a failed walk. */
AGX_API long agx_proc_count_tree(pid_t root, agx_proc_entry *scratch, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
