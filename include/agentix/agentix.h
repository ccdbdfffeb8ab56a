/* agentix.h — umbrella header for hosts: deployments, sessions, backends, values, the client and its engine. */
#ifndef AGENTIX_AGENTIX_H
#define AGENTIX_AGENTIX_H

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "agentix/engine.h"
#include "agentix/error.h"
#include "agentix/expiry.h"
#include "agentix/fleet.h"
#include "agentix/plugin.h"
#include "agentix/value.h"
#include "agentix/version.h"

#endif
