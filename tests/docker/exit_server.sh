#!/bin/sh
# A bundle runtime that exits at once with a message: create must fail and quote this log line.
echo "exit-standin: cannot start: this runtime always fails" >&2
exit 3
