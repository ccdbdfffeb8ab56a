/* fake_harness.h — what the e2b and daytona tests share: start a fake (python3) on port 0 and read
 * the port it prints, drive its control endpoints (faults, stats, kill), and run a full session
 * (create → client through the fake's proxy → unary, stream and bidi calls → delete).
 *
 * Flow: test → fake (child process; dies with the test: PDEATHSIG and its stdin closing) →
 * per-sandbox agentix-server; test → backend plugin → fake API; test → client → fake proxy. */
#ifndef AGX_TESTS_FAKE_HARNESS_H
#define AGX_TESTS_FAKE_HARNESS_H

#include <jansson.h>
#include <stdint.h>

#include "agentix/client.h"
#include "agentix/deployment.h"

typedef struct agx_fake agx_fake;

/* argv: script and its arguments (NULL-terminated); python3 is prepended. Fails the test when the
 * fake does not print "PORT <n>" within 60 s. With "--tls-dir DIR" among them the fake serves
 * https, and the control calls below trust the CA in $AGENTIX_CA_FILE. */
agx_fake *agx_fake_start(const char *const *argv);
int agx_fake_port(const agx_fake *f);
/* POST /_fake/faults with a JSON object (counters and settings). */
void agx_fake_faults(agx_fake *f, const char *json);
/* GET /_fake/stats: {live, requests, violations[], checked, events[[t, what]]}; caller decrefs. */
json_t *agx_fake_stats(agx_fake *f);
int agx_fake_live(agx_fake *f);
/* Kills a sandbox under the user (the fake's runner loses it). Returns 1 when it existed. */
int agx_fake_kill(agx_fake *f, const char *id);
/* Checks zero live sandboxes and zero spec violations (with at least one checked message), then
 * stops the fake and frees f. */
void agx_fake_finish(agx_fake *f);
/* Stops without checks (for tests that looked at violations themselves). */
void agx_fake_stop(agx_fake *f);
/* Seconds between the first event named a and the next event named b after it; -1 if none. */
double agx_fake_event_gap(agx_fake *f, const char *a, const char *b);
int agx_fake_event_count(agx_fake *f, const char *what);

/* Sends one raw request to the fake (for spec checks that must fail); returns the status and
 * the body (malloc'd) in *body when body is not NULL. */
long agx_fake_raw(agx_fake *f, const char *method, const char *path, const char *header,
                  const char *json, char **body);

/* unary add, stream count and bidi sum_bidi through a connected client; fails the test otherwise. */
void agx_fake_exercise(agx_client *c);
/* Connects to the sandbox (its URL, token and headers) and runs agx_fake_exercise. */
void agx_fake_session_calls(const agx_sandbox *sb);
/* Runs n sessions on n threads, each: create, hold until the fake has refused a create at its
 * cap, calls, delete; all must succeed (the backend waits out the cap within its timeout). */
void agx_fake_concurrent_sessions(agx_fake *f, agx_deployment *dep, const agx_sandbox_config *cfg,
                                  int n);

#endif
