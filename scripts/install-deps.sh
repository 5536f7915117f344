#!/usr/bin/env bash
# System packages wontun's demo, tests and benchmarks use (Debian). Run as root.
# The tunnel itself needs none of them: the executable links only glibc.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (sudo bash scripts/install-deps.sh)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  iproute2 iputils-ping traceroute netcat-openbsd iperf3 procps util-linux \
  wireguard-tools wireguard-go nftables tcpdump socat ca-certificates libsodium23 libssl3 libgcrypt20 \
  etcd-server etcd-client >/dev/null
echo "install-deps.sh: system packages installed"
