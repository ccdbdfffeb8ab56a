#!/bin/sh
# The anchor of bench/rollout: the same tasks as a plain sequential shell loop of
# `docker run --rm IMAGE sh -c CMD`, one line per task: "task <i> <ms> <exit>".
# Usage: anchor_docker_run.sh N IMAGE CMD
set -u
n=$1 image=$2 cmd=$3
i=0
while [ "$i" -lt "$n" ]; do
  t0=$(date +%s%N)
  docker run --rm "$image" sh -c "$cmd" >/dev/null
  rc=$?
  t1=$(date +%s%N)
  echo "task $i $(( (t1 - t0) / 1000000 )) $rc"
  i=$((i + 1))
done
