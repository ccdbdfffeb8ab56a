#!/bin/sh
# A server that fails at start, as a broken agentix-server would: says why on stderr, exits 3. It
# reads the token the way agentix-server does (AGENTIX_TOKEN_FD), so the test sees it arrived.
token=$(head -c 64 <&"${AGENTIX_TOKEN_FD:-3}" 2>/dev/null)
echo "boom: the stand-in refuses to start (token set: ${token:+yes})" >&2
exit 3
