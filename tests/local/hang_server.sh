#!/bin/sh
# A server that never becomes healthy: it never listens. Reports its pid so the test can check
# that the backend killed it.
echo $$ > "$HANG_PID_FILE"
exec sleep 300
