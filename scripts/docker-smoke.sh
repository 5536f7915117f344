#!/usr/bin/env bash
# Smoke test of the Docker image with podman (set up as docs/docker.md describes):
# builds dist/wontun and the image, runs the server container inside a throwaway network namespace
# with examples/demo/server.conf, and checks that client-A (plain dist/wontun in a second namespace)
# reaches the server (10.10.0.1) and, relayed by the container, client-B (10.10.0.2, a third
# namespace), and that the image's HEALTHCHECK passes. Then stops the container (exit status 0,
# interface gone) and removes everything it made: containers, the image tag, namespaces, temp
# files. Run as root from anywhere:
#   bash scripts/docker-smoke.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ID="wtsmoke-$$"
IMAGE="localhost/wontun:$ID"          # a throwaway tag: never clobbers an existing wontun image
CONTAINER="$ID-server"
NS_S="$ID-server" NS_A="$ID-client-A" NS_B="$ID-client-B"
TMP=$(mktemp -d /tmp/wontun-smoke-XXXXXX)
PID_A="" PID_B=""
BUILD_PID=""

say() { printf '\n== %s\n' "$*"; }
# Runs a command as a background job and waits for it: a Ctrl-C then interrupts `wait` and runs the
# trap at once (bash would otherwise wait for a foreground command that handles SIGINT itself, like
# ping, and then carry on as if nothing happened). Background jobs of a script ignore SIGINT.
step() { "$@" & wait $!; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

exec 3>&1 4>&2 # the script's own stdout/stderr, for cleanup (a trap can fire inside a redirection)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  exec 1>&3 2>&4
  say "cleanup"
  for pid in $PID_A $PID_B; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $PID_A $PID_B; do wait "$pid" 2>/dev/null || true; done
  podman rm -f -t 2 "$CONTAINER" >/dev/null 2>&1 || true
  if [ -n "$BUILD_PID" ]; then
    wait "$BUILD_PID" 2>/dev/null || true # an interrupted build would leave buildah containers behind
    podman rmi "$IMAGE" >/dev/null 2>&1 || true
    for img in $(podman images -a -q --filter "label=wontun.smoke=$ID"); do podman rmi -f "$img" >/dev/null 2>&1 || true; done
  fi
  for ns in "$NS_A" "$NS_B" "$NS_S"; do
    if [ -e "/var/run/netns/$ns" ]; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" || true
    fi
  done
  if [ "$rc" -ne 0 ]; then
    echo "logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  echo "removed container, image tag $IMAGE and namespaces $ID-*"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "run as root"
for tool in podman ip ping; do
  command -v "$tool" >/dev/null || die "$tool not found (podman: see docs/docker.md; apt-get install iproute2 iputils-ping)"
done
podman image exists debian:bookworm-slim ||
  die "no local debian:bookworm-slim image (no registry here; build one with debootstrap, see docs/docker.md)"

say "build dist/wontun and the image"
step bash -c 'cd "$1" && npm run --silent build' _ "$ROOT" >"$TMP/build.log" 2>&1 ||
  { cat "$TMP/build.log"; die "npm run build failed"; }
# In its own session, so that a Ctrl-C reaches neither podman nor buildah: cut short, they leave
# working containers behind. Cleanup waits for the build, then removes what it made.
# --format docker: the OCI format would drop the HEALTHCHECK.
setsid podman build --pull=never --format docker --layers=false -q --label "wontun.smoke=$ID" -t "$IMAGE" "$ROOT" \
  >"$TMP/image.log" 2>&1 &
BUILD_PID=$!
wait "$BUILD_PID" || { cat "$TMP/image.log"; die "podman build failed"; }
echo "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"

say "namespaces: $NS_S (br0 192.0.2.1), $NS_A (192.0.2.3), $NS_B (192.0.2.2)"
for ns in "$NS_S" "$NS_A" "$NS_B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$NS_S" link add br0 type bridge
ip -n "$NS_S" addr add 192.0.2.1/24 dev br0
ip -n "$NS_S" link set br0 up
i=0
for pair in "$NS_A:192.0.2.3" "$NS_B:192.0.2.2"; do
  ns=${pair%%:*} addr=${pair#*:} i=$((i + 1))
  ip -n "$NS_S" link add "port$i" type veth peer name eth0 netns "$ns"
  ip -n "$NS_S" link set "port$i" master br0 up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
done
# No ICMP redirects from the relaying hub (they are meaningless on a TUN); forwarding itself is
# switched on by the container's --sysctl below, which is what this test checks.
ip netns exec "$NS_S" sysctl -q -w net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0

say "server container in $NS_S"
podman run -d --name "$CONTAINER" \
  --network "ns:/var/run/netns/$NS_S" \
  --cap-add NET_ADMIN --device /dev/net/tun \
  --sysctl net.ipv4.ip_forward=1 \
  -v "$ROOT/examples/demo/server.conf:/etc/wontun/wontun0.conf:ro" \
  "$IMAGE" >/dev/null
for _ in $(seq 50); do
  ip -n "$NS_S" link show dev wontun0 >/dev/null 2>&1 && break
  [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] || { podman logs "$CONTAINER"; die "container exited"; }
  sleep 0.1
done
ip -n "$NS_S" -br addr show dev wontun0 || { podman logs "$CONTAINER"; die "no wontun0 interface in $NS_S"; }
echo "ip_forward in $NS_S: $(ip netns exec "$NS_S" cat /proc/sys/net/ipv4/ip_forward)"

say "clients (dist/wontun) in $NS_A and $NS_B"
ip netns exec "$NS_A" "$ROOT/dist/wontun" up "$ROOT/examples/demo/client-A.conf" --log-level debug 2>"$TMP/client-A.log" &
PID_A=$!
ip netns exec "$NS_B" "$ROOT/dist/wontun" up "$ROOT/examples/demo/client-B.conf" --log-level debug 2>"$TMP/client-B.log" &
PID_B=$!
for ns in "$NS_A" "$NS_B"; do
  ok=0
  for _ in $(seq 10); do
    if step ip netns exec "$ns" ping -c 1 -W 1 10.10.0.1 >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || { podman logs "$CONTAINER"; die "$ns cannot ping 10.10.0.1 through the container"; }
done
echo "both clients reach 10.10.0.1"

say "client-A -> server container (10.10.0.1)"
step ip netns exec "$NS_A" ping -n -c 3 -i 0.2 10.10.0.1 || die "ping 10.10.0.1 failed"
say "client-A -> client-B (10.10.0.2), relayed by the container"
step ip netns exec "$NS_A" ping -n -c 3 -i 0.2 10.10.0.2 || die "ping 10.10.0.2 through the container failed"

say "health check"
# The check itself, run once (the timer podman would run it from needs systemd).
step podman healthcheck run "$CONTAINER" || { podman logs "$CONTAINER"; die "HEALTHCHECK failed while the tunnel runs"; }
echo "healthy"

say "stop the container"
podman stop -t 10 "$CONTAINER" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
podman logs "$CONTAINER" 2>&1 | sed 's/^/  | /'
[ "$code" = 0 ] || die "container exited with status $code"
! ip -n "$NS_S" link show dev wontun0 >/dev/null 2>&1 || die "wontun0 still exists after stop"
echo "container exited with status 0; wontun0 removed"

say "PASS"
