#!/bin/sh
# A bundle runtime that runs but never answers /health: create must time out and clean up.
echo "hang-standin: sleeping instead of listening" >&2
exec sleep 600
