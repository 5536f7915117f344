# wontun server image: the prebuilt single executable on Debian, nothing else.
# Run `npm run build` first (it makes dist/wontun, the only file this build copies); see docs/docker.md
# (podman set-up, keys, WireGuard mode, secrets, health check).
#
#   podman build -t wontun .
#   podman run -d --cap-add NET_ADMIN --device /dev/net/tun --sysctl net.ipv4.ip_forward=1 \
#     -p 19988:19988/udp -v ./server.conf:/etc/wontun/wontun0.conf:ro wontun
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="wontun" \
      org.opencontainers.image.description="A small VPN: TUN interface, UDP tunnel, one executable" \
      org.opencontainers.image.licenses="MIT"

# wontun sets up its interface, addresses and routes over netlink itself: no iproute2 needed.
# libsodium23, and libgcrypt20 or libssl3 (libcrypto.so.3), are WireGuard mode's fast
# ChaCha20-Poly1305 for short and long packets (without them wontun uses whichever it finds, or a
# pure-JS cipher ~15 times slower).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsodium23 libgcrypt20 libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY dist/wontun /usr/local/bin/wontun

# The config is mounted here. The TUN interface is named after the file: wontun0.conf -> wontun0.
WORKDIR /etc/wontun
EXPOSE 19988/udp

# wontun exits 0 on SIGTERM (podman/docker stop) after removing its interface.
STOPSIGNAL SIGTERM
# Healthy while a tunnel's control socket answers: `wontun show all --json` lists only the daemons
# that answered (the interface name depends on the config file, so no name is fixed here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["sh", "-c", "wontun show all --json | grep -q '\"interface\"'"]
ENTRYPOINT ["wontun"]
CMD ["up", "/etc/wontun/wontun0.conf"]
