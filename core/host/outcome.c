/* outcome.c — the names of a map task's outcomes (fleet.h's agx_outcome), for logs, the CLI and
 * JSON; the classification itself is the map's (core/fleet/tasks.c). */
#include "agentix/fleet.h"

const char *agx_outcome_name(agx_outcome o)
{
    static const char *const names[] = {"ok", "nonzero_exit", "timeout", "oom", "sandbox_lost",
                                        "rate_limited", "create_failed", "remote_error",
                                        "cancelled"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}
