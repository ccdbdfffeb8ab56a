/* cloud_fake.h — drives the E2B and Daytona fakes (tests/fakes/e2b, tests/fakes/daytona) for the
 * contract suite and the e2b/daytona tests: start a fake (python3) on port 0 and read the port it
 * prints, drive its control endpoints (faults, stats, kill), and run concurrent sessions against
 * its concurrency cap.
 *
 * Flow: test → fake (child process; dies with the test: PDEATHSIG and its stdin closing) →
 * per-sandbox agentix-server; test → backend plugin → fake API; test → client → fake proxy. */
#ifndef AGX_TEST_CLOUD_FAKE_H
#define AGX_TEST_CLOUD_FAKE_H

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
/* The E2B fake (tests/fakes/e2b) with concurrency cap `cap`, its sandboxes running `server`
 * (NULL: this build's agentix-server) with the test modules, the environment pointed at it
 * (E2B_API_URL, AGENTIX_CONNECT_TO, AGENTIX_E2B_SCHEME=http, E2B_TEMPLATE_ID=agentix; templates
 * "agentix" and "other"). The API key it takes is AGX_FAKE_E2B_KEY; E2B_API_KEY is left alone. */
#define AGX_FAKE_E2B_KEY "e2b_0123456789abcdef0123456789abcdef"
agx_fake *agx_fake_start_e2b(int cap, const char *server);
/* The same, whose route limiter answers creates beyond rate_limit per second with 429 and
 * Retry-After: 1 (0 = none); /_fake/stats then counts create requests, accepted creates, 429s,
 * the peak of sandboxes alive at once, the busiest second and sandboxes by run (by_run). */
agx_fake *agx_fake_start_e2b_rate(int cap, const char *server, int rate_limit);
/* The same over TLS: the fake's port serves https with tls_dir's server.crt/server.key (made by
 * tests/support/make_test_ca.sh), E2B_API_URL is https and AGENTIX_E2B_SCHEME=https; the caller
 * sets AGENTIX_CA_FILE to the test CA. */
agx_fake *agx_fake_start_e2b_tls(int cap, const char *tls_dir);
/* The Daytona fake likewise (DAYTONA_API_URL, AGENTIX_CONNECT_TO, DAYTONA_TARGET=us; snapshot
 * "agentix" starts the runtime, "bare" does not; previews under AGX_FAKE_DAYTONA_DOMAIN). */
#define AGX_FAKE_DAYTONA_KEY "dtn_0123456789abcdef0123456789abcdef"
#define AGX_FAKE_DAYTONA_DOMAIN "proxy.daytona.test"
agx_fake *agx_fake_start_daytona(int cap, const char *server);
/* The Daytona fake whose auto-stop minute lasts minute_s seconds (--minute-s). */
agx_fake *agx_fake_start_daytona_minute(int cap, double minute_s);

/* create must fail with `code` and a message containing `want`, leaving no sandbox in the fake. */
void agx_fake_expect_create_fails(agx_fake *f, agx_deployment *dep, const agx_sandbox_config *cfg,
                                  int code, const char *want);

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

/* The fake's spec check can fail: a raw request the OpenAPI spec forbids is answered 400 with
 * body_says in its body and recorded as one violation naming `names`; nothing is created. Stops
 * the fake (its violation is expected) and frees f. */
void agx_fake_expect_spec_refusal(agx_fake *f, const char *method, const char *path,
                                  const char *header, const char *json, const char *body_says,
                                  const char *names);

/* Runs n sessions on n threads, each: create, hold until the fake has refused a create at its
 * cap, the demo calls (tests/support/demo_calls.h), delete; all must succeed (the backend waits
 * out the cap within its timeout). */
void agx_fake_concurrent_sessions(agx_fake *f, agx_deployment *dep, const agx_sandbox_config *cfg,
                                  int n);

#endif
