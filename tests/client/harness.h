/* harness.h — the client tests' fixture: a real agentix-server (with its agentix-worker and the
 * demo module) started on 127.0.0.1 on an ephemeral port, plus small helpers (values, /proc
 * memory, files). The server binary and the module folder come from argv (see CMakeLists.txt). */
#ifndef AGX_TEST_CLIENT_HARNESS_H
#define AGX_TEST_CLIENT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentix/client.h"

#define TEST_TOKEN "client-test-token"

typedef struct test_server {
    pid_t pid;
    int port;
    char url[64];
    char dir[128];       /* scratch folder: port file, worker pid file, markers */
} test_server;

/* argv[1] = agentix-server, argv[2] = module folder. Must be called before h_server_start. */
void h_init(int argc, char **argv);
/* Starts a server (token TEST_TOKEN); exits the test on failure. */
void h_server_start(test_server *s);
/* SIGTERM, waits (bounded), then SIGKILL; removes the scratch folder. */
void h_server_stop(test_server *s);
/* Kills with SIGKILL and reaps. */
void h_server_kill(test_server *s);
/* The worker's pid (AGENTIX_WORKER_PID_FILE), 0 when not known yet. */
pid_t h_worker_pid(const test_server *s);
/* Connects with TEST_TOKEN; exits the test on failure. */
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
