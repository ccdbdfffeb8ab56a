#!/usr/bin/env bash
# The Docker part of the test machine (run by scripts/setup-deps.sh): a real dockerd from Debian's
# docker.io answering on /var/run/docker.sock, and the registry-free test images the docker backend's
# tests create sandboxes from (see tests/docker/README.md):
#   agx-test-busybox:1  busybox-static and nothing else: no libc, no loader
#   agx-test-debian:12  debootstrap --variant=minbase bookworm
# Idempotent: it installs, starts and builds only what is missing. Docker tests never skip, so any
# step that cannot be done fails this script loudly.
set -euo pipefail

sock=/var/run/docker.sock
log=${AGX_DOCKERD_LOG:-/tmp/agentix-dockerd.log}
cache=${AGX_TEST_IMAGE_CACHE:-/var/cache/agentix/test-images}
# The Debian archive apt itself is configured with (the machine's own mirror), unless overridden.
apt_mirror() {
  apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null |
    grep -v -- '-security' | head -n 1 | sed 's:/*$::'
}
mirror=${AGX_DEBIAN_MIRROR:-$(apt_mirror)}
start_timeout=${AGX_DOCKERD_START_TIMEOUT:-60}

die() {
  echo "setup.d/docker.sh: ERROR: $*" >&2
  exit 1
}
say() { echo "setup.d/docker.sh: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_debs() { # package...
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get could not install ${missing[*]}"
}

# ---- the daemon ----
daemon_answers() { docker -H "unix://$sock" version >/dev/null 2>&1; }

command -v dockerd >/dev/null 2>&1 || install_debs docker.io
# /usr/local/bin/docker may be a newer client than Debian's; either speaks to this daemon.
command -v docker >/dev/null 2>&1 || install_debs docker.io

if ! daemon_answers; then
  say "no daemon answers on $sock; starting dockerd (log: $log)"
  as_root bash -c "nohup dockerd --host unix://$sock >>'$log' 2>&1 </dev/null &"
  waited=0
  until daemon_answers; do
    if [ "$waited" -ge "$start_timeout" ]; then
      echo "----- last lines of $log -----" >&2
      tail -n 40 "$log" >&2 || true
      die "dockerd did not answer on $sock within ${start_timeout}s; the docker tests cannot run"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "dockerd answers after ${waited}s"
fi

image_exists() { docker -H "unix://$sock" image inspect "$1" >/dev/null 2>&1; }

import_rootfs() { # dir image
  say "importing $1 as $2"
  tar -C "$1" --numeric-owner -cf - . |
    docker -H "unix://$sock" import --change 'CMD ["/bin/sh"]' \
      --change 'LABEL agentix.test.image=1' - "$2" >/dev/null ||
    die "docker import of $1 as $2 failed"
}

# ---- agx-test-busybox:1: a static busybox, nothing else ----
build_busybox() {
  install_debs busybox-static
  local bb=/bin/busybox
  file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }
  file_is_static "$bb" || die "$bb is dynamically linked; install Debian's busybox-static"
  local root
  root=$(mktemp -d /tmp/agx-busybox-rootfs.XXXXXX)
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,tmp,var/tmp}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp "$bb" "$root/bin/busybox"
  for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'NAME="agentix test busybox"\nID=busybox\nVERSION_ID=1\nPRETTY_NAME="agentix test busybox (static, no libc)"\n' \
    >"$root/etc/os-release"
  import_rootfs "$root" agx-test-busybox:1
  rm -rf "$root"
}

# ---- agx-test-debian:12: a minbase bookworm from Debian's archive, cached on disk ----
build_debian() {
  install_debs debootstrap
  local dir="$cache/debian-12-minbase"
  if [ ! -e "$dir.complete" ]; then
    [ -n "$mirror" ] || die "apt has no Debian archive configured; set AGX_DEBIAN_MIRROR to one"
    say "debootstrap --variant=minbase bookworm into $dir (from $mirror)"
    as_root mkdir -p "$cache"
    as_root rm -rf "$dir.partial"
    as_root debootstrap --variant=minbase bookworm "$dir.partial" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
      tail -n 30 "$cache/debootstrap.log" >&2 || true
      die "debootstrap failed (full log: $cache/debootstrap.log)"
    }
    as_root rm -rf "$dir.partial/var/cache/apt/archives/"*.deb "$dir.partial/var/lib/apt/lists/"*
    as_root rm -rf "$dir"
    as_root mv "$dir.partial" "$dir"
    as_root touch "$dir.complete"
  fi
  import_rootfs "$dir" agx-test-debian:12
}

image_exists agx-test-busybox:1 || build_busybox
image_exists agx-test-debian:12 || build_debian
image_exists agx-test-busybox:1 && image_exists agx-test-debian:12 ||
  die "the test images are still missing after building them"
say "dockerd and the test images agx-test-busybox:1, agx-test-debian:12 are ready"
