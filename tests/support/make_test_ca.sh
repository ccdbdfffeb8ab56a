#!/bin/sh
# make_test_ca.sh DIR SAN — a throwaway CA (ca.crt), a server certificate it signed (server.crt,
# server.key) for the subjectAltName SAN (e.g. "IP:127.0.0.1,DNS:localhost,DNS:*.e2b.app"), and a
# second, unrelated CA (other-ca.crt) for tests that must see verification fail. P-256 keys, valid
# two days; made with the openssl CLI at test time, never committed.
set -eu
d=$1
san=$2
mkdir -p "$d"
cd "$d"
gen_ca() { # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=agentix-test-$1" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
gen_ca ca
gen_ca other-ca
printf 'subjectAltName=%s\n' "$san" > san.ext
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=agentix-test-server" \
  -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile san.ext -out server.crt 2>/dev/null
rm -f server.csr san.ext ca.srl
