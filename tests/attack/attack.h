/* attack.h — the fixture of the attack tests (tests/attack/): a real agentix-server created through
 * the real `local` backend, measured from outside (/proc: resident size, peak, CPU; GET /health
 * latency from a probing thread), and attacked the way a hostile peer or hostile sandbox code
 * would: raw TCP and hand-written websocket frames before any Socket.IO CONNECT, Socket.IO RPC
 * over the transport's client (srvharness.h), and shell commands run through agentix.bash.
 *
 * Every test takes its baseline in the same run and asserts ceilings relative to it, prints its
 * figures on lines starting with "figure:", and ends by checking that a well-behaved host is still
 * served. Release builds only: sanitizer quarantines and valgrind change the very figures the
 * ceilings bound. */
#ifndef AGX_TEST_ATTACK_H
#define AGX_TEST_ATTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "srvharness.h"

#define ATK_T 20000 /* ms: generous wait for an answer that must come */

typedef struct atk_sandbox {
    agx_deployment *dep;
    agx_sandbox *sb;
    char dir[128];  /* scratch folder; AGENTIX_LOCAL_ROOT is <dir>/local */
    char root[160]; /* AGENTIX_LOCAL_ROOT */
    int port;
    char token[128];
    pid_t pid;      /* the agentix-server process (our child, found in /proc) */
    sh_server sh;   /* the port, for srvharness's Socket.IO client */
} atk_sandbox;

/* argv[1] = agentix-server, argv[2] = test module folder (demo.so, hostile.so). */
void atk_init(int argc, char **argv);
/* Creates a sandbox on the local backend with extra environment "K=V" (NULL-terminated, may be
 * NULL); exits the test on failure. */
void atk_start(atk_sandbox *s, const char *const *env);
/* Deletes it; the delete must succeed. Idempotent. */
void atk_delete(atk_sandbox *s);
/* The folder of the sandbox under AGENTIX_LOCAL_ROOT. */
void atk_sandbox_dir(const atk_sandbox *s, char *out, size_t n);
/* The current agentix-worker of the server (its child), 0 when none. */
pid_t atk_worker_pid(const atk_sandbox *s);

/* ---- measurements ---- */
long atk_now_ms(void);
void atk_sleep_ms(int ms);
long atk_rss_kib(pid_t pid);  /* VmRSS */
long atk_hwm_kib(pid_t pid);  /* VmHWM: peak resident size since start */
double atk_cpu_s(pid_t pid);  /* utime + stime */
/* starttime (field 22 of /proc/<pid>/stat), 0 when the process is gone or a zombie. */
uint64_t atk_start_ticks(pid_t pid);
/* Alive and still the same process (start ticks match; 0 = any). */
bool atk_alive(pid_t pid, uint64_t ticks);
/* Waits up to ms for the process to be gone. */
bool atk_gone_within(pid_t pid, uint64_t ticks, int ms);

/* GET (or HEAD when head) <path> on 127.0.0.1:port: the HTTP status, or -1 when no answer came
 * within timeout_ms. *ms (may be NULL) gets the round trip. */
int atk_http(int port, bool head, const char *path, int timeout_ms, double *ms);
/* Median /health latency over n probes (an idle baseline). */
double atk_health_median_ms(int port, int n);

/* A thread probing /health in a loop (each probe bounded by timeout_ms) while an attack runs; it
 * also samples the server's resident size. stop returns the worst latency seen (a probe that got
 * no answer counts as timeout_ms) and the peak RSS. */
typedef struct atk_prober atk_prober;
atk_prober *atk_prober_start(int port, pid_t server, int timeout_ms);
void atk_prober_stop(atk_prober *p, double *worst_ms, long *peak_rss_kib, int *failures);

/* ---- raw peers ---- */
/* A TCP connection to 127.0.0.1:port (blocking, SO_SNDTIMEO/SO_RCVTIMEO of timeout_ms); -1 on
 * failure. */
int atk_tcp(int port, int timeout_ms);
/* A websocket on /socket.io/?EIO=4&transport=websocket with the Engine.IO open packet read; -1 when
 * the server refused or did not answer. */
int atk_ws_open(int port, int timeout_ms);
/* Sends one masked websocket frame header for a payload of len bytes (opcode 1 text, 2 binary). */
bool atk_ws_header(int fd, int opcode, uint64_t len);
/* Sends payload bytes (masked with the zero key the header announced); the bytes actually
 * written before the peer stopped taking them. */
size_t atk_ws_payload(int fd, const void *data, size_t len);
/* Sends a whole frame. */
bool atk_ws_frame(int fd, int opcode, const void *data, size_t len);
/* Reads frames until a text frame whose payload starts with prefix (copied into out, cap bytes);
 * false on close, error or timeout. */
bool atk_ws_expect_text(int fd, const char *prefix, char *out, size_t cap, int timeout_ms);
/* True when the server closed the connection (EOF, reset or a close frame) within timeout_ms. */
bool atk_closed_within(int fd, int timeout_ms);

/* ---- a well-behaved host ---- */
/* A Socket.IO client with the sandbox's token (srvharness). */
sh_client *atk_connect(const atk_sandbox *s);
/* demo::add and agentix.bash::run answer correctly on a fresh connection. */
void atk_check_served(const atk_sandbox *s);
/* agentix.bash::run(command) on c as call cid: the exit code, with stdout copied into out. */
int atk_bash(sh_client *c, const char *cid, const char *command, char *out, size_t cap);
/* Escapes s into a JSON string body (no quotes). */
void atk_json_escape(const char *s, char *out, size_t cap);

/* "figure: <name> k=v …" for the closing note. */
void atk_figure(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
