/* bundle_call.c — the host side of the bundle tests: connects to an agentix-server started from a
 * bundle (in a chroot or a container) and makes one unary call, printing the result as JSON.
 *   bundle_call URL TARGET KWARGS_JSON   → exit 0 and the JSON result, or 1 and the error */
#include "agentix/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bundle_call URL TARGET KWARGS_JSON\n");
        return 2;
    }
    agx_error err = {0};
    agx_value *kwargs = NULL, *result = NULL;
    agx_client *c = NULL;
    char *json = NULL;
    agx_client_options opts;
    agx_client_options_init(&opts);
    opts.connect_timeout_ms = 30000;
    int rc = agx_value_from_json(argv[3], strlen(argv[3]), NULL, &kwargs, &err);
    if (rc == 0)
        rc = agx_client_connect(argv[1], &opts, &c, &err);
    if (rc == 0)
        rc = agx_client_call(c, argv[2], NULL, kwargs, 60000, &result, &err);
    if (rc == 0)
        rc = agx_value_to_json(result, &json, &err);
    if (rc == 0)
        printf("%s\n", json);
    else
        fprintf(stderr, "bundle_call: %s (%s)\n", err.message, agx_error_code_name(rc));
    free(json);
    agx_value_free(result);
    agx_value_free(kwargs);
    agx_client_free(c);
    return rc == 0 ? 0 : 1;
}
