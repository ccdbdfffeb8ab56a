#!/usr/bin/env bash
# net.sh — the ns backend's private network, two designs side by side (bench/ns/README.md):
# per sandbox, the time from an existing network namespace to one with an outbound default route
# and the runtime's port published on the host's 127.0.0.1, and the time to take it down again.
#   pasta  what the backend does: pasta --config-net --netns NS, publishing 127.0.0.1:PORT → 8000
#          (ready when the namespace has its default route)
#   veth   a veth pair, addresses, default route, MASQUERADE for outbound and a DNAT rule for the
#          published port (iptables, route_localnet), as a daemon-style bridge-less setup would
# No traffic leaves the machine: only setup and teardown are timed. Needs root, pasta (Debian
# passt), iproute2, iptables. Usage: bench/ns/net.sh [N]   (default 30). No thresholds.
set -euo pipefail
n=${1:-30}
pasta=${AGENTIX_NS_PASTA:-/usr/bin/pasta}
tag=agxnb$$
now() { date +%s%N; }
ms() { echo "scale=2; ($2 - $1) / 1000000" | bc; }
cleanup() {
  for i in $(seq 0 "$n"); do ip netns del "$tag$i" 2>/dev/null || true; ip link del "vh$tag$i" 2>/dev/null || true; done
  iptables -t nat -S 2>/dev/null | grep -- "$tag" | sed 's/^-A/-D/' | while read -r r; do eval "iptables -t nat $r"; done || true
}
trap cleanup EXIT
wait_route() { # netns: until it has a default route (bounded: 5 s)
  for _ in $(seq 1 1000); do
    ip -n "$1" route show default 2>/dev/null | grep -q default && return 0
    sleep 0.005
  done
  echo "net.sh: no default route in $1" >&2; return 1
}
old_localnet=$(sysctl -n net.ipv4.conf.all.route_localnet)
sysctl -qw net.ipv4.conf.all.route_localnet=1
pu=() pd=() vu=() vd=()
for i in $(seq 1 "$n"); do
  ns=$tag$i port=$((20000 + i))
  ip netns add "$ns"
  t0=$(now)
  "$pasta" --foreground --runas 0:0 --quiet --config-net --netns "/run/netns/$ns" --netns-only \
    --tcp-ports "127.0.0.1/$port:8000" --udp-ports none --tcp-ns none --udp-ns none --no-map-gw &
  pid=$!
  wait_route "$ns"
  t1=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  t2=$(now)
  pu+=("$(ms "$t0" "$t1")") pd+=("$(ms "$t1" "$t2")")
  ip netns del "$ns"; ip netns add "$ns"
  a=10.$((200 + i / 250)).$((i % 250)).
  t0=$(now)
  ip link add "vh$ns" type veth peer name eth0 netns "$ns"
  ip addr add "${a}1/30" dev "vh$ns"; ip link set "vh$ns" up
  ip -n "$ns" addr add "${a}2/30" dev eth0; ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "${a}1"
  iptables -t nat -A POSTROUTING -s "${a}0/30" -m comment --comment "$tag" -j MASQUERADE
  iptables -t nat -A OUTPUT -d 127.0.0.1 -p tcp --dport "$port" -m comment --comment "$tag" \
    -j DNAT --to-destination "${a}2:8000"
  wait_route "$ns"
  t1=$(now)
  iptables -t nat -D POSTROUTING -s "${a}0/30" -m comment --comment "$tag" -j MASQUERADE
  iptables -t nat -D OUTPUT -d 127.0.0.1 -p tcp --dport "$port" -m comment --comment "$tag" \
    -j DNAT --to-destination "${a}2:8000"
  ip link del "vh$ns"
  t2=$(now)
  vu+=("$(ms "$t0" "$t1")") vd+=("$(ms "$t1" "$t2")")
  ip netns del "$ns"
done
sysctl -qw net.ipv4.conf.all.route_localnet="$old_localnet"
stat() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {p50=v[int((NR+1)/2)]; p95=v[int(NR*0.95+0.999)]; printf "%.1f %.1f", p50, p95}'; }
read -r pu50 pu95 <<<"$(stat "${pu[@]}")"; read -r pd50 pd95 <<<"$(stat "${pd[@]}")"
read -r vu50 vu95 <<<"$(stat "${vu[@]}")"; read -r vd50 vd95 <<<"$(stat "${vd[@]}")"
printf 'private network setup / teardown per sandbox, %d rounds (ms)\n' "$n"
printf '%-34s %8s %8s %8s %8s\n' "" "up p50" "up p95" "down p50" "down p95"
printf '%-34s %8s %8s %8s %8s\n' "pasta (the backend's choice)" "$pu50" "$pu95" "$pd50" "$pd95"
printf '%-34s %8s %8s %8s %8s\n' "veth + iptables NAT/DNAT" "$vu50" "$vu95" "$vd50" "$vd95"
printf '{"bench":"ns-net","n":%d,"pasta":{"up_p50_ms":%s,"up_p95_ms":%s,"down_p50_ms":%s},"veth":{"up_p50_ms":%s,"up_p95_ms":%s,"down_p50_ms":%s}}\n' \
  "$n" "$pu50" "$pu95" "$pd50" "$vu50" "$vu95" "$vd50"
