/* test_client_memcheck.c — a short pass over the client's whole life (connect, unary, stream,
 * bidi, an unfinished call, free) for the memcheck run: no leaks, no invalid accesses. */
#include <stdio.h>

#include "check.h"
#include "harness.h"

int main(int argc, char **argv)
{
    h_init(argc, argv);
    test_server srv;
    h_server_start(&srv);
    agx_client *c = h_connect(&srv);
    agx_error err;
    agx_value *r = NULL, *args = h_ints(2, 1, 2), *item;
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 30000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 3);
    agx_value_free(r);
    agx_value_free(args);

    agx_call *call = NULL;
    args = h_ints(2, 50, 10);
    CHECK_OK(agx_client_stream(c, "demo::count", args, NULL, &call, &err), &err);
    int n = 0, rc;
    while ((rc = agx_call_next(call, 30000, &item, &err)) == 1) {
        n++;
        agx_value_free(item);
    }
    CHECK_OK(rc, &err);
    CHECK(n == 50);
    agx_call_free(call);
    CHECK_OK(agx_client_stream(c, "demo::count", args, NULL, &call, &err), &err);
    CHECK(agx_call_next(call, 30000, &item, &err) == 1);
    agx_value_free(item);
    agx_call_free(call); /* unfinished */
    agx_value_free(args);

    CHECK_OK(agx_client_bidi(c, "demo::sum_bidi", NULL, NULL, &call, &err), &err);
    for (int i = 1; i <= 10; i++) {
        agx_value *v = agx_value_int(i);
        CHECK_OK(agx_call_send(call, v, 30000, &err), &err);
        agx_value_free(v);
    }
    CHECK_OK(agx_call_close_send(call, &err), &err);
    int64_t last = 0;
    while ((rc = agx_call_next(call, 30000, &item, &err)) == 1) {
        last = agx_value_get_int64(item);
        agx_value_free(item);
    }
    CHECK_OK(rc, &err);
    CHECK(last == 55);
    agx_call_free(call);

    /* A stream left open by the runtime when the client goes: free must cancel and clean up. */
    args = h_ints(1, 100000000);
    CHECK_OK(agx_client_stream(c, "demo::count", args, NULL, &call, &err), &err);
    agx_value_free(args);
    agx_call_free(call);
    agx_client_free(c);
    h_server_stop(&srv);
    return 0;
}
