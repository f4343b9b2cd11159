#!/usr/bin/env bash
# Start a private Docker engine for the EIF build tests and print `export DOCKER_HOST=...`.
# Needs root; installs Debian's docker.io when dockerd is missing. No bridge network and no
# iptables: the tests run containers with --network host or none.
set -euo pipefail
state=${1:-${TMPDIR:-/tmp}/vault-ci-docker}
mkdir -p "$state"
if ! command -v dockerd >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$state/install.log" 2>&1
fi
sock="$state/docker.sock"
if ! DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
  nohup dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root="$state/root" --exec-root="$state/exec" --pidfile="$state/dockerd.pid" \
    -H "unix://$sock" >"$state/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1 || { echo "docker engine did not start: $state/dockerd.log" >&2; exit 1; }
echo "export DOCKER_HOST=unix://$sock"
