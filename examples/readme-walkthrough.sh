#!/usr/bin/env bash
# readme-walkthrough.sh — runs the README's "Try it with your own config"
# section as written, in the current directory, and checks what each step
# should show. CI runs it (TestREADMEWalkthrough in cmd/ztproxy, under the
# test's temp dir); README_test keeps every command of that section in this
# file, word for word.
#
# It lays out the files of a fresh clone that the section uses
# (config.example.yaml, policies/, examples/policy-request.json) here, and
# needs bash, curl and either ZTPROXY_BIN (a built ztproxy) or go.
# The ports are the README's: 8080, 8443, 8444, 9090 on 127.0.0.1.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(pwd)"
if [[ "$work" == "$repo" ]]; then
  echo "readme-walkthrough: run me from an empty directory, not the repository" >&2
  exit 2
fi
cp "$repo/config.example.yaml" .
cp -r "$repo/policies" .
mkdir -p examples && cp "$repo/examples/policy-request.json" examples/

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

fail() { echo "readme-walkthrough: FAILED: $*" >&2; exit 1; }
step() { echo "==> $*"; }
# wait_for CMD...: up to 20 s for a command to succeed.
wait_for() {
  for _ in $(seq 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for: $*"
}

step "build"
if [[ -n "${ZTPROXY_BIN:-}" ]]; then
  cp "$ZTPROXY_BIN" ztproxy
else
  (cd "$repo" && go build -o ztproxy ./cmd/ztproxy && mv ztproxy "$work/")
fi

step "certificates"
./ztproxy certs dev --out dev-certs
[[ -f dev-certs/ca.pem && -f dev-certs/client-key.pem ]] || fail "certs dev wrote no certificates"

step "example upstream and development IdP"
./ztproxy demo app --listen 127.0.0.1:8080 &
pids+=($!)
./ztproxy demo idp --listen 127.0.0.1:8444 --audience https://api.example.com --tokens dev-idp &
pids+=($!)
wait_for test -s dev-idp/alice.token
wait_for curl -fsS http://127.0.0.1:8080/

step "check-config and serve"
export ZTP_ISSUER=http://127.0.0.1:8444
./ztproxy check-config --config config.example.yaml
./ztproxy serve --config config.example.yaml &
pids+=($!)
wait_for curl -fsS http://127.0.0.1:9090/readyz

step "a bearer request"
TOKEN=$(cat dev-idp/alice.token)
out=$(curl --cacert dev-certs/ca.pem -H "Authorization: Bearer $TOKEN" https://localhost:8443/api/items)
echo "$out"
[[ "$out" == *'"X-Ztp-Email":"alice@demo.ztproxy.dev"'* ]] || fail "the upstream did not get alice's identity"

step "a device (mTLS) request"
out=$(curl --cacert dev-certs/ca.pem --cert dev-certs/client.pem --key dev-certs/client-key.pem https://localhost:8443/devices)
echo "$out"
[[ "$out" == *'"X-Ztp-Device":"spiffe://ztproxy.dev/device/'* ]] || fail "the upstream did not get the device identity"

step "metrics"
metrics=$(curl http://127.0.0.1:9090/metrics)
[[ "$metrics" == *$'\nztproxy_requests_total{'* ]] || fail "no request metrics"

step "policy test"
./ztproxy policy test --config config.example.yaml --input examples/policy-request.json --expect allow

step "risk flag while serve runs"
./ztproxy risk flag 'http://127.0.0.1:8444#alice' --level compromised --reason "GuardDuty" --config config.example.yaml
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert dev-certs/ca.pem -H "Authorization: Bearer $TOKEN" https://localhost:8443/api/items)
[[ "$code" == 403 ]] || fail "a compromised user got $code, want 403"
./ztproxy risk clear 'http://127.0.0.1:8444#alice' --config config.example.yaml

step "device CA"
./ztproxy certs device-ca --out dev-certs
[[ -f dev-certs/device-ca.pem && -f dev-certs/device-ca-key.pem ]] || fail "certs device-ca wrote no CA"

step "done"
echo "readme-walkthrough: OK"
