/* oom.h (internal to the built-in modules) — the sandbox's OOM kill count (oom.c). */
#ifndef AGX_RUNTIME_MODULES_OOM_H
#define AGX_RUNTIME_MODULES_OOM_H

/* OOM kills so far in this sandbox's memory cgroup; -1 when the kernel does not tell. */
long long agx_oom_kills(void);

#endif
