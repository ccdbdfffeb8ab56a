#!/bin/sh
# A server that fails at start, as a broken agentix-server would: says why on stderr, exits 3.
echo "boom: the stand-in refuses to start (token set: ${AGENTIX_TOKEN:+yes})" >&2
exit 3
