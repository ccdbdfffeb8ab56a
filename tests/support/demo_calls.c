/* demo_calls.c — see demo_calls.h. */
#include "demo_calls.h"

#include <stddef.h>

#include "check.h"

static agx_value *ints(int64_t a, int64_t b)
{
    agx_value *v = agx_value_array();
    CHECK(v && agx_value_array_push(v, agx_value_int(a)) == 0 &&
          agx_value_array_push(v, agx_value_int(b)) == 0);
    return v;
}

static int unary(agx_client *c, agx_error *err)
{
    agx_value *args = ints(2, 40), *res = NULL;
    int rc = agx_client_call(c, "demo::add", args, NULL, AGX_TEST_CALL_MS, &res, err);
    agx_value_free(args);
    if (rc == 0)
        CHECK_MSG(agx_value_get_int64(res) == 42, "demo::add(2, 40) answered %lld",
                  (long long)agx_value_get_int64(res));
    agx_value_free(res);
    return rc;
}

static int stream(agx_client *c, agx_error *err)
{
    agx_value *kw = agx_value_map();
    CHECK(kw && agx_value_map_set(kw, "n", agx_value_int(5)) == 0);
    agx_call *call = NULL;
    int rc = agx_client_stream(c, "demo::count", NULL, kw, &call, err);
    agx_value_free(kw);
    if (rc)
        return rc;
    agx_value *item = NULL;
    int64_t seen = 0;
    while ((rc = agx_call_next(call, AGX_TEST_CALL_MS, &item, err)) == 1) {
        CHECK(agx_value_get_int64(agx_value_map_get(item, "i")) == seen);
        seen++;
        agx_value_free(item);
    }
    agx_call_free(call);
    if (rc == 0)
        CHECK_MSG(seen == 5, "demo::count(5) streamed %lld items", (long long)seen);
    return rc;
}

/* Each item sent is answered with the running sum before the next is sent: the two directions
 * really interleave. */
static int bidi(agx_client *c, agx_error *err)
{
    agx_call *call = NULL;
    int rc = agx_client_bidi(c, "demo::sum_bidi", NULL, NULL, &call, err);
    if (rc)
        return rc;
    int64_t sum = 0;
    agx_value *item = NULL;
    for (int i = 1; i <= 4 && rc == 0; i++) {
        agx_value *v = agx_value_int(i);
        rc = agx_call_send(call, v, AGX_TEST_CALL_MS, err);
        agx_value_free(v);
        sum += i;
        if (rc == 0 && (rc = agx_call_next(call, AGX_TEST_CALL_MS, &item, err)) == 1) {
            CHECK(agx_value_get_int64(item) == sum);
            agx_value_free(item);
            rc = 0;
        } else if (rc == 0) {
            CHECK_MSG(0, "demo::sum_bidi ended before answering item %d", i);
        }
    }
    if (rc == 0)
        rc = agx_call_close_send(call, err);
    if (rc == 0)
        CHECK((rc = agx_call_next(call, AGX_TEST_CALL_MS, &item, err)) <= 0);
    agx_call_free(call);
    return rc;
}

int agx_test_demo_calls(agx_client *c, agx_error *err)
{
    int rc = unary(c, err);
    if (rc == 0)
        rc = stream(c, err);
    if (rc == 0)
        rc = bidi(c, err);
    return rc;
}

int agx_test_connect(const agx_sandbox *sb, agx_client **out, agx_error *err)
{
    agx_client_options o;
    agx_client_options_init(&o);
    o.connect_timeout_ms = AGX_TEST_CONNECT_MS;
    return agx_client_connect_sandbox(sb, &o, out, err);
}

int agx_test_demo_session(const agx_sandbox *sb, agx_error *err)
{
    agx_client *c = NULL;
    int rc = agx_test_connect(sb, &c, err);
    if (rc == 0)
        rc = agx_test_demo_calls(c, err);
    agx_client_free(c);
    return rc;
}
