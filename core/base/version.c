/* version.c — the version of the loaded library, for hosts that check it at run time. */
#include "agentix/version.h"

const char *agx_version(void)
{
    return AGX_VERSION;
}
