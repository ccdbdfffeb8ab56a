/* ns_world.h — how tests of the ns backend count what it left, from the kernel's own account
 * rather than the backend's records: a test process moves itself into fresh cgroups of its own
 * (the backend nests every sandbox's groups below its host's), so the sandbox groups below them,
 * the processes in those, the mounts naming the test's state folder, that folder's sandbox
 * entries and host network links of ours are this process's leaks — whatever other tests run
 * beside it. */
#ifndef AGX_TEST_NS_WORLD_H
#define AGX_TEST_NS_WORLD_H

/* Moves this process (before it starts threads) into "agx-test-<tag>-<pid>" below its own group
 * in each v1 hierarchy holding pids, memory or cpu. Its children inherit them. */
void ns_world_enter(const char *tag);
/* Counts and prints (with `when`) sandbox groups below ours, processes in them, mounts naming
 * root, entries of root/sandboxes and host links named agx*; returns the sum. */
int ns_world_leftovers(const char *root, const char *when);
/* Processes in the sandbox groups below ours, counted silently (a wait polls it). */
int ns_world_processes(void);
/* Back into the original groups; ours are removed (CHECK: they are empty). */
void ns_world_leave(void);

#endif
