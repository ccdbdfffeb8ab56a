/* demo_calls.h — the smoke call every end-to-end test makes through a sandbox's runtime: one call
 * of each shape to the test module tests/modules/demo (unary demo::add, stream demo::count, bidi
 * demo::sum_bidi), checking every answer. One copy, so a change of the demo module or of the
 * client API is made once. */
#ifndef AGX_TEST_DEMO_CALLS_H
#define AGX_TEST_DEMO_CALLS_H

#include <stdint.h>

#include "agentix/client.h"
#include "agentix/deployment.h"

/* Connect bound for tests: generous, because sanitizer builds on a loaded 2-core machine connect
 * slowly; a bound all the same. */
#define AGX_TEST_CONNECT_MS 120000
/* Per-call bound, likewise generous. */
#define AGX_TEST_CALL_MS 120000

/* Unary, stream and bidi calls through c. Returns 0, or the failing call's status with err filled
 * (so threads can report instead of exiting); a wrong answer fails the test at once. */
int agx_test_demo_calls(agx_client *c, agx_error *err);

/* Connects to the sandbox (its runtime_url, token and headers, AGX_TEST_CONNECT_MS) into *out. */
int agx_test_connect(const agx_sandbox *sb, agx_client **out, agx_error *err);

/* Connects to the sandbox and runs agx_test_demo_calls; 0 or the failing status. */
int agx_test_demo_session(const agx_sandbox *sb, agx_error *err);

#endif
