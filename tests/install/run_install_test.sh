#!/bin/sh
# run_install_test.sh <build> <consumer-src> <cmake> <cc> <libdir> <version> <cflags> <backend-src>
# Installs the build into a temporary prefix and proves a stranger can use it (see CMakeLists.txt).
set -eu
build=$1 consumer=$2 cmake=$3 cc=$4 libdir=$5 version=$6 cflags=${7:-} backend=${8:-}
work=$(mktemp -d /tmp/agx-install.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
fail() { echo "install test: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "cmake --install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "cmake --install failed"; }

lib=$prefix/$libdir
step "library, SONAME and links"
[ -f "$lib/libagentix.so.$version" ] || fail "missing $lib/libagentix.so.$version"
[ -L "$lib/libagentix.so.0" ] || fail "missing link libagentix.so.0"
[ -L "$lib/libagentix.so" ] || fail "missing link libagentix.so"
soname=$(readelf -d "$lib/libagentix.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libagentix.so.0" ] || fail "SONAME is '$soname', want libagentix.so.0"
# libagentix-runtime: what the sandbox side (agentix-server, agentix-worker, modules) links.
[ -f "$lib/libagentix-runtime.so.$version" ] || fail "missing $lib/libagentix-runtime.so.$version"
[ -L "$lib/libagentix-runtime.so.0" ] || fail "missing link libagentix-runtime.so.0"
[ -L "$lib/libagentix-runtime.so" ] || fail "missing link libagentix-runtime.so"
rt_soname=$(readelf -d "$lib/libagentix-runtime.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$rt_soname" = "libagentix-runtime.so.0" ] ||
    fail "runtime SONAME is '$rt_soname', want libagentix-runtime.so.0"
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
needed "$lib/libagentix.so.$version" | grep -qx "libagentix-runtime.so.0" ||
    fail "libagentix does not link libagentix-runtime"
# The sandbox side must not load libagentix (and with it curl and its TLS closure): issue 3.
for bin in "$lib/agentix/bin/agentix-server" "$lib/agentix/bin/agentix-worker" \
           "$lib/agentix/modules/agentix.bash.so" "$lib/agentix/modules/agentix.files.so"; do
    [ -f "$bin" ] || fail "missing $bin"
    deps=$(needed "$bin")
    echo "$deps" | grep -qx "libagentix-runtime.so.0" || fail "$bin does not link libagentix-runtime"
    if echo "$deps" | grep -q "^libagentix\.so\|^libcurl"; then
        fail "$bin links a host-only library: $(echo "$deps" | tr '\n' ' ')"
    fi
done
[ -f "$prefix/include/agentix/agentix.h" ] || fail "headers not installed"
[ -f "$prefix/include/agentix/version.h" ] || fail "generated version.h not installed"
[ -f "$lib/cmake/agentix/agentixConfig.cmake" ] || fail "CMake package not installed"

step "agentix.pc"
pc=$lib/pkgconfig/agentix.pc
[ -f "$pc" ] || fail "missing $pc"
export PKG_CONFIG_PATH="$lib/pkgconfig"
[ "$(pkg-config --modversion agentix)" = "$version" ] || fail "pkg-config version mismatch"
pc_libdir=$(cd "$(pkg-config --variable=libdir agentix)" && pwd -P)
[ "$pc_libdir" = "$(cd "$lib" && pwd -P)" ] || fail "pkg-config libdir $pc_libdir is not $lib"
step "consumer via pkg-config"
# shellcheck disable=SC2046,SC2086
"$cc" $cflags -o "$work/consumer-pc" "$consumer/consumer.c" $(pkg-config --cflags --libs agentix) \
    -Wl,-rpath,"$lib" || fail "building the consumer with pkg-config failed"
"$work/consumer-pc" || fail "consumer (pkg-config) failed"
[ -f "$lib/pkgconfig/agentix-runtime.pc" ] || fail "missing $lib/pkgconfig/agentix-runtime.pc"
[ "$(pkg-config --modversion agentix-runtime)" = "$version" ] ||
    fail "pkg-config agentix-runtime version mismatch"
# shellcheck disable=SC2046,SC2086
"$cc" $cflags -o "$work/consumer-rt-pc" "$consumer/consumer_runtime.c" \
    $(pkg-config --cflags --libs agentix-runtime) -Wl,-rpath,"$lib" ||
    fail "building the runtime consumer with pkg-config failed"
"$work/consumer-rt-pc" || fail "runtime consumer (pkg-config) failed"
if needed "$work/consumer-rt-pc" | grep -q "^libagentix\.so"; then
    fail "the runtime consumer links libagentix"
fi

step "consumer via find_package(agentix)"
"$cmake" -S "$consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$cflags" >"$work/cm.log" 2>&1 || { cat "$work/cm.log"; fail "configure failed"; }
"$cmake" --build "$work/cm" >>"$work/cm.log" 2>&1 || { cat "$work/cm.log"; fail "build failed"; }
"$work/cm/consumer" || fail "consumer (find_package) failed"
"$work/cm/consumer_runtime" || fail "runtime consumer (find_package agentix::runtime) failed"

step "an out-of-tree backend (examples/backend-subprocess) built against the prefix"
[ -n "$backend" ] || fail "no backend example given"
for h in toolkit http labels runtime process; do
    [ -f "$prefix/include/agentix/backend/$h.h" ] || fail "backend toolkit header $h.h not installed"
done
"$cmake" -S "$backend" -B "$work/bsp" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$cflags" >"$work/bsp.log" 2>&1 || { cat "$work/bsp.log"; fail "configure failed"; }
"$cmake" --build "$work/bsp" >>"$work/bsp.log" 2>&1 || { cat "$work/bsp.log"; fail "build failed"; }
exports=$(nm -D --defined-only "$work/bsp/plugins/libagentix-backend-subprocess.so" | awk '{print $3}')
[ "$exports" = "agx_backend_subprocess" ] || fail "the plugin exports more than its entry: $exports"
AGENTIX_PLUGIN_PATH="$work/bsp/plugins" AGENTIX_SUBPROCESS_ROOT="$work" "$work/bsp/subprocess-demo" ||
    fail "the subprocess backend's demo host failed"
AGENTIX_PLUGIN_PATH="$work/bsp/plugins" "$prefix/bin/agentix" plugins --check |
    grep -q "subprocess" || fail "agentix plugins does not list the subprocess backend"
[ -z "$(ls -A "$work/agentix-subprocess" 2>/dev/null)" ] || fail "the demo left sandboxes behind"

step "installed agentix command"
"$prefix/bin/agentix" --version | grep -q "agentix $version" || fail "agentix --version"
out=$("$prefix/bin/agentix" plugins) || fail "agentix plugins exited $?"
echo "$out"
real_lib=$(cd "$lib" && pwd -P)
echo "$out" | grep -q "^search path: $real_lib/agentix/backends" ||
    fail "agentix plugins does not search $real_lib/agentix/backends"

step "relocated prefix"
mv "$prefix" "$work/moved"
moved_lib=$(cd "$work/moved/$libdir" && pwd -P)
out=$("$work/moved/bin/agentix" plugins) || fail "relocated agentix plugins exited $?"
echo "$out" | grep -q "^search path: $moved_lib/agentix/backends" ||
    fail "relocated agentix plugins does not search $moved_lib/agentix/backends: $out"
echo "install test: ok"
