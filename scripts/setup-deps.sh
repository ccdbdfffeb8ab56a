#!/usr/bin/env bash
# Installs everything agentix needs to build, test and run, from Debian's packages and the npm
# registry, on a fresh Debian 12 machine (run as root, or with sudo available). Idempotent: it
# installs only what is missing.
#   setup-deps.sh          everything the test suite needs (Docker, npm peers, fakes, fuzzers)
#   setup-deps.sh --build  only what building agentix and running the local backend needs
set -euo pipefail

build_only=0
[ "${1:-}" = "--build" ] && build_only=1

packages=(
  build-essential cmake pkg-config git ca-certificates
  libcurl4-openssl-dev libjansson-dev libuv1-dev libwebsockets-dev libmsgpack-dev libyaml-dev
  libseccomp-dev libarchive-dev  # the ns backend: its seccomp filter, image layer decoding
  libssl-dev  # the runtime client's TLS (runtime/transport/sio_tls.c)
)
[ $build_only = 1 ] || packages+=(
  clang libclang-rt-14-dev valgrind patchelf busybox-static
  nodejs npm python3 python3-yaml
  python3-kubernetes openssl  # k8s-pool tests: the fake API server checked by a real client, its CA
  passt iproute2  # the ns backend: pasta for its private network; `ip link` in its leak counts
  bubblewrap  # bench/ns: the launcher anchor its smoke run times the ns launcher against
)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  # A tool that is already on PATH (e.g. a newer node) counts as present.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Extra setup steps of components (npm peers, docker) live beside this script.
[ $build_only = 1 ] && exit 0
for extra in "$(dirname "$0")"/setup.d/*.sh; do
  [ -e "$extra" ] || continue
  bash "$extra"
done
