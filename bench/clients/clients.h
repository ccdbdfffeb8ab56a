/* clients.h — the two halves of agentix-bench-clients: the parent (bench_clients.c: sandboxes,
 * the TLS front, the node anchor, the table) and the measuring child (clients_run.c). */
#ifndef AGX_BENCH_CLIENTS_H
#define AGX_BENCH_CLIENTS_H

/* argv: <self> --child <targets file> <N> <inflight> <seq> <blocking|async> <engine threads>
 * <CA file or "-">. Prints one JSON line; returns the exit status. */
int agx_clients_child(int argc, char **argv);

#endif
