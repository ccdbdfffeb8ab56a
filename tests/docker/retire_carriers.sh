#!/bin/sh
# Removes the carriers of BUNDLE (an image name) that hold an image the name no longer points to,
# and those images: rebuilding a test bundle would otherwise leave one carrier per build behind.
# Usage: retire_carriers.sh BUNDLE
set -eu
bundle=$1
current=$(docker image inspect --format '{{.Id}}' "$bundle")
for c in $(docker ps -aq --filter label=agentix.carrier=1 --filter "label=agentix.bundle=$bundle"); do
  image=$(docker inspect --format '{{.Image}}' "$c")
  if [ "$image" != "$current" ]; then
    docker rm "$c" >/dev/null
    docker rmi "$image" >/dev/null 2>&1 || true # still tagged or used elsewhere: keep it
  fi
done
