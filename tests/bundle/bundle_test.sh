#!/bin/sh
# bundle_test.sh — `agentix build` end to end (label bundle; the docker mode also docker).
#   bundle_test.sh cli|isolated|docker CLI BUNDLE_CALL DEMO_MODULE WORKDIR
# cli:      usage errors, flags and bundle file agree, same inputs → same digest and same tar bytes.
# isolated: the tree runs with env -i (1) chrooted into a busybox-static root with no libc and no
#           /usr/lib at all, (2) mounted over the host's /opt/agentix with the host as task image:
#           the server maps only bundle libraries, while a command run through agentix.bash maps
#           the task's libc and sees no loader variables. Needs root (mount namespace, chroot).
# docker:   the bundle imported through the Engine API, inspected, and run with --volumes-from a
#           carrier in the busybox and Debian test images (scripts/setup.d/docker.sh makes them).
set -eu
mode=$1 cli=$2 call_bin=$3 demo=$4 work=$5
prefix=/opt/agentix
server_pid=
docker_names=

fail() {
    echo "bundle_test($mode): FAIL: $*" >&2
    exit 1
}
contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }

# Waits (bounded) until a file exists and is not empty.
wait_file() {
    i=0
    while [ ! -s "$1" ]; do
        [ "$i" -lt $(($2 * 10)) ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    i=0
    while kill -0 "$server_pid" 2>/dev/null && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

cleanup() {
    stop_server
    for n in $docker_names; do docker rm -f "$n" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# bash_run PORT COMMAND → the JSON result of agentix.bash::run
bash_run() {
    "$call_bin" "http://127.0.0.1:$1" agentix.bash::run "{\"command\": \"$2\"}"
}

# check_task PORT WHERE: a command run through agentix.bash maps no bundle file and sees no
# loader variable.
check_task() {
    maps=$(bash_run "$1" 'cat /proc/self/maps') || fail "agentix.bash::run $2"
    contains "$maps" '"exit_code":0' || contains "$maps" '"exit_code": 0' || fail "cat failed $2: $maps"
    ! contains "$maps" "$prefix/" || fail "a command $2 mapped bundle files: $maps"
    env_out=$(bash_run "$1" 'env') || fail "agentix.bash::run $2"
    for v in LD_LIBRARY_PATH LD_PRELOAD LD_AUDIT; do
        ! contains "$env_out" "$v" || fail "a command $2 sees $v: $env_out"
    done
}

build_digest() { # output of agentix build → its digest
    sed -n 's/^bundle [^ ]* \(sha256:[0-9a-f]*\)$/\1/p'
}

rm -rf "$work"
mkdir -p "$work"
echo "config for the bundle" >"$work/extra.txt"

case "$mode" in
cli)
    "$cli" build --help | grep -q "Usage: agentix build" || fail "--help"
    st=0; "$cli" build --output "$work/x" 2>/dev/null || st=$?
    [ "$st" = 2 ] || fail "a bundle without a name must be a usage error (got $st)"
    st=0; "$cli" build --name Bad:x --output "$work/x" 2>/dev/null || st=$?
    [ "$st" = 2 ] || fail "an invalid name must be a usage error (got $st)"
    st=0; "$cli" build --name ok:1 2>/dev/null || st=$?
    [ "$st" = 2 ] || fail "no output must be a usage error (got $st)"
    st=0; "$cli" build --name ok:1 --file "$work/extra.txt:../escape" --output "$work/x" 2>/dev/null || st=$?
    [ "$st" = 2 ] || fail "a file outside the prefix must be refused (got $st)"
    st=0; "$cli" build --name ok:1 --module "$work/extra.txt" --output "$work/x" 2>/dev/null || st=$?
    [ "$st" = 1 ] || fail "a module that is not a .so must fail the build (got $st)"
    [ ! -e "$work/x" ] || fail "a failed build left $work/x behind"

    flags="--name agx-test/bundle-cli:1 --module $demo --tool /bin/bash --file $work/extra.txt:etc/extra.txt --quiet"
    # shellcheck disable=SC2086
    d1=$("$cli" build $flags --output "$work/a.tar" | build_digest)
    # shellcheck disable=SC2086
    d2=$("$cli" build $flags --output "$work/b.tar" | build_digest)
    [ -n "$d1" ] && [ "$d1" = "$d2" ] || fail "same inputs gave digests '$d1' and '$d2'"
    cmp -s "$work/a.tar" "$work/b.tar" || fail "same inputs gave different tarballs"
    list=$(tar -tf "$work/a.tar")
    for p in opt/ opt/agentix/BUNDLE opt/agentix/bin/agentix-server opt/agentix/bin/bash \
        opt/agentix/lib/ld-linux-x86-64.so.2 opt/agentix/lib/libc.so.6 \
        opt/agentix/lib/libwebsockets-evlib_uv.so opt/agentix/lib/agentix/modules/demo.so \
        opt/agentix/lib/agentix/modules/agentix.bash.so opt/agentix/etc/extra.txt; do
        echo "$list" | grep -qx "$p" || fail "$p missing from the tarball"
    done
    [ "$(tar -tvf "$work/a.tar" | grep -cv ' root/root .* 1970-01-01 00:00 ')" = 0 ] ||
        fail "tar entries must be root/root with mtime 0"
    tar -xOf "$work/a.tar" opt/agentix/BUNDLE | grep -qx "digest = $d1" || fail "BUNDLE lacks the digest"

    # The same bundle described by a file gives the same digest; a folder output too.
    mkdir "$work/spec"
    cp "$work/extra.txt" "$work/spec/extra.txt"
    cat >"$work/spec/bundle.agx" <<SPEC
# test bundle
name = agx-test/bundle-cli:1
module = $demo
tool = /bin/bash
file = extra.txt:etc/extra.txt
SPEC
    d3=$("$cli" build "$work/spec/bundle.agx" --quiet --output "$work/tree" | build_digest)
    [ "$d3" = "$d1" ] || fail "the bundle file gave $d3, the flags $d1"
    grep -qx "digest = $d1" "$work/tree/BUNDLE" || fail "tree BUNDLE lacks the digest"
    # A changed input changes the digest.
    echo changed >"$work/spec/extra.txt"
    d4=$("$cli" build "$work/spec/bundle.agx" --quiet --output "$work/tree2" | build_digest)
    [ -n "$d4" ] && [ "$d4" != "$d1" ] || fail "a changed file kept the digest"
    st=0; "$cli" build "$work/spec/bundle.agx" --quiet --output "$work/tree" 2>/dev/null || st=$?
    [ "$st" = 1 ] || fail "building into a non-empty folder must fail (got $st)"
    ;;

isolated)
    [ "$(id -u)" = 0 ] || fail "needs root (mount namespace and chroot)"
    if [ -z "${AGX_BUNDLE_IN_NS:-}" ]; then
        # Everything below runs in a private mount namespace: nothing is mounted on the host.
        exec unshare --mount --propagation private env AGX_BUNDLE_IN_NS=1 sh "$0" "$@"
    fi
    "$cli" build --quiet --name agx-test-bundle-isolated:1 --module "$demo" --output "$work/tree" >/dev/null
    busybox=$(command -v busybox) || fail "busybox (busybox-static) is not installed"
    chroot_bin=$(command -v chroot) || fail "chroot is not installed"
    ! readelf -lW "$busybox" | grep -q INTERP || fail "$busybox is not statically linked (install busybox-static)"

    # (1) A root with busybox-static and the bundle only: no libc, no loader, no /usr/lib.
    root="$work/root"
    mkdir -p "$root"
    mount -t tmpfs agx-bundle-root "$root"
    mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/tmp" "$root$prefix"
    cp "$busybox" "$root/bin/busybox"
    chroot "$root" /bin/busybox --install -s /bin
    for d in null zero urandom random; do
        : >"$root/dev/$d"
        mount --bind "/dev/$d" "$root/dev/$d"
    done
    mount -t proc proc "$root/proc"
    mount --bind "$work/tree" "$root$prefix"
    env -i AGENTIX_AUTH=none AGENTIX_BIND_HOST=127.0.0.1 AGENTIX_BIND_PORT=0 AGENTIX_PORT_FILE=/tmp/port \
        "$chroot_bin" "$root" $prefix/bin/agentix-server 2>"$work/server1.log" &
    server_pid=$!
    wait_file "$root/tmp/port" 30 || { cat "$work/server1.log" >&2; fail "server in the busybox root did not start"; }
    port=$(cat "$root/tmp/port")
    "$busybox" wget -qO- "http://127.0.0.1:$port/health" | grep -q '"status":"ok"' || fail "/health in the busybox root"
    out=$(bash_run "$port" 'test ! -e /usr/lib && test ! -e /lib && echo NO-HOST-LIBS') ||
        fail "agentix.bash::run in the busybox root"
    contains "$out" NO-HOST-LIBS || fail "the busybox root has library folders: $out"
    check_task "$port" "in the busybox root"
    "$call_bin" "http://127.0.0.1:$port" demo::add '{"a": 40, "b": 2}' | grep -qx 42 ||
        fail "the bundled user module demo::add"
    stop_server

    # (2) The host as the task image, the bundle over /opt/agentix.
    [ -d /opt ] || mkdir /opt
    mount -t tmpfs agx-bundle-opt /opt
    mkdir -p "$prefix"
    mount --bind "$work/tree" "$prefix"
    rm -f "$work/port"
    env -i AGENTIX_AUTH=none AGENTIX_BIND_HOST=127.0.0.1 AGENTIX_BIND_PORT=0 AGENTIX_PORT_FILE="$work/port" \
        $prefix/bin/agentix-server 2>"$work/server2.log" &
    server_pid=$!
    wait_file "$work/port" 30 || { cat "$work/server2.log" >&2; fail "server over the host did not start"; }
    port=$(cat "$work/port")
    check_task "$port" "over the host"
    contains "$maps" "/libc.so.6" || fail "a task command does not map the task's libc: $maps"
    # The runtime itself (server and worker) maps only the bundle's objects.
    worker=$(tr ' ' '\n' <"/proc/$server_pid/task/$server_pid/children" | head -n 1)
    [ -n "$worker" ] || fail "no worker process under the server"
    for pid in "$server_pid" "$worker"; do
        maps=$(awk '$6 ~ /^\// { print $6 }' "/proc/$pid/maps" | sort -u)
        echo "$maps" | grep -q "^$prefix/lib/libc.so.6\$" || fail "pid $pid does not map the bundle's libc: $maps"
        # /memfd:agentix-ring is the server–worker bulk ring: anonymous memory, no file.
        foreign=$(echo "$maps" | grep -v "^$prefix/" | grep -v '^/dev/' | grep -vx '/memfd:agentix-ring' || true)
        [ -z "$foreign" ] || fail "pid $pid maps host files: $foreign"
    done
    stop_server
    ;;

docker)
    repo=agx-test-bundle-own-${AGX_TEST_BUNDLE_TAG:-untagged} # one per build tree (AgxTesting)
    image=$repo:1
    docker_names="agx-bundle-carrier-$$ agx-bundle-busybox-$$ agx-bundle-debian-$$"
    out=$("$cli" build --quiet --name "$image" --module "$demo" --docker --output "$work/b.tar") ||
        fail "agentix build --docker"
    digest=$(echo "$out" | build_digest)
    id=$(echo "$out" | sed -n 's/^image [^ ]* \(sha256:[0-9a-f]*\)$/\1/p')
    [ -n "$digest" ] && [ -n "$id" ] || fail "unexpected output: $out"
    fmt='{{json .Config.Volumes}}|{{index .Config.Labels "agentix.bundle.format"}}|{{index .Config.Labels "agentix.bundle.digest"}}|{{.Id}}'
    got=$(docker image inspect --format "$fmt" "$image")
    [ "$got" = "{\"$prefix\":{}}|1|$digest|$id" ] || fail "image inspect: $got"
    [ "$(docker image inspect --format '{{.Id}}' "$repo:latest")" = "$id" ] ||
        fail "the :latest tag does not point at the import"
    docker create --name "agx-bundle-carrier-$$" "$image" >/dev/null
    for task in busybox:agx-test-busybox:1 debian:agx-test-debian:12; do
        kind=${task%%:*} timage=${task#*:} name="agx-bundle-$kind-$$"
        docker run -d --name "$name" --network host --volumes-from "agx-bundle-carrier-$$" \
            -e AGENTIX_AUTH=none -e AGENTIX_BIND_HOST=127.0.0.1 -e AGENTIX_BIND_PORT=0 -e AGENTIX_PORT_FILE=/tmp/agentix.port \
            --entrypoint $prefix/bin/agentix-server "$timage" >/dev/null ||
            fail "docker run $timage"
        port= i=0
        while [ -z "$port" ] && [ "$i" -lt 300 ]; do
            port=$(docker exec "$name" cat /tmp/agentix.port 2>/dev/null || true)
            [ -n "$port" ] || sleep 0.1
            i=$((i + 1))
        done
        [ -n "$port" ] || { docker logs "$name" >&2; fail "server in $timage did not start"; }
        check_task "$port" "in $timage"
        if [ "$kind" = debian ]; then
            contains "$maps" /libc.so.6 || fail "a command in Debian does not map Debian's libc: $maps"
        fi
        "$call_bin" "http://127.0.0.1:$port" demo::add '{"a": 40, "b": 2}' | grep -qx 42 ||
            fail "demo::add in $timage"
        docker rm -f "$name" >/dev/null
    done
    docker rm -f "agx-bundle-carrier-$$" >/dev/null
    docker rmi "$image" "$repo:latest" >/dev/null
    ;;
*)
    fail "unknown mode"
    ;;
esac
echo "bundle_test($mode): ok"
