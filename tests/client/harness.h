/* harness.h — the client tests' fixture: a real agentix-server (with its agentix-worker and the
 * demo module) created through the `local` backend (agx_load_deployment("local") +
 * agx_deployment_create), so the tests run host → local backend → server → worker as users do;
 * plus small helpers (values, /proc memory, files). The server binary and the module folder come
 * from argv (see CMakeLists.txt); the backend plugin is found beside libagentix. */
#ifndef AGX_TEST_CLIENT_HARNESS_H
#define AGX_TEST_CLIENT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentix/client.h"
#include "agentix/deployment.h"

typedef struct test_server {
    pid_t pid;           /* the server, from <AGENTIX_LOCAL_ROOT>/<id>/sandbox.json */
    int port;
    char url[64];
    char token[128];     /* the random token the backend gave the sandbox */
    char dir[128];       /* scratch folder: AGENTIX_LOCAL_ROOT, worker pid file, markers */
    agx_deployment *dep; /* one per server: AGENTIX_LOCAL_ROOT is read when it is constructed */
    agx_sandbox *sb;
} test_server;

/* argv[1] = agentix-server, argv[2] = module folder. Must be called before h_server_start. */
void h_init(int argc, char **argv);
/* Creates a sandbox on the local backend; exits the test on failure. */
void h_server_start(test_server *s);
/* Deletes the sandbox (the backend stops the server's group, bounded) and its deployment;
 * removes the scratch folder. Idempotent. */
void h_server_stop(test_server *s);
/* Kills the server with SIGKILL, then deletes the sandbox so the backend reaps and cleans up. */
void h_server_kill(test_server *s);
/* The worker's pid (AGENTIX_WORKER_PID_FILE), 0 when not known yet. */
pid_t h_worker_pid(const test_server *s);
/* Connects from the sandbox record (URL + token); exits the test on failure. */
agx_client *h_connect(const test_server *s);

/* VmRSS of a process in KiB (0 when unknown). */
long h_rss_kib(pid_t pid);
bool h_file_exists(const char *path);
/* Waits up to ms for path to exist. */
bool h_wait_file(const char *path, int ms);
void h_sleep_ms(int ms);

/* Values: an array of ints; a map from "k", v, "k2", v2, …, NULL (values owned). */
agx_value *h_ints(int n, ...);
agx_value *h_kw(const char *key, ...);

#endif
