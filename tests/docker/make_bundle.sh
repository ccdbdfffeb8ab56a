#!/bin/sh
# Imports a hand-made bundle image for the docker backend's tests: a tree with SERVER at
# /opt/agentix/bin/agentix-server, declared as a bundle (VOLUME /opt/agentix, label
# agentix.bundle.format=1) the way `agentix build` declares its bundles. The tag is the server's
# content hash, so an unchanged server reuses the image (and its carrier) instead of piling up
# copies; a TAG given instead makes a distinct image (a bundle new to the daemon). Prints the image
# name. Usage: make_bundle.sh REPOSITORY SERVER_FILE [TAG]
set -eu
repo=$1
server=$2
tag=${3:-$(sha256sum "$server" | cut -c1-12)}
image="$repo:$tag"
if ! docker image inspect "$image" >/dev/null 2>&1; then
  stage=$(mktemp -d "${TMPDIR:-/tmp}/agx-bundle.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/opt/agentix/bin"
  cp "$server" "$stage/opt/agentix/bin/agentix-server"
  chmod 0755 "$stage/opt/agentix/bin/agentix-server"
  tar -C "$stage" --numeric-owner --owner=0 --group=0 -cf - opt |
    docker import --change 'VOLUME /opt/agentix' --change 'LABEL agentix.bundle.format=1' \
      - "$image" >/dev/null
fi
echo "$image"
