#!/bin/sh
# Installs wontun as a systemd service (run as root from the repository, after `npm run build`):
#   sudo sh contrib/systemd/install.sh
# then put a config at /etc/wontun/NAME.conf and run: systemctl enable --now wontun@NAME
set -eu
cd "$(dirname "$0")/../.."
install -D -m 0755 dist/wontun /usr/local/bin/wontun
install -d -m 0700 /etc/wontun
install -D -m 0644 contrib/systemd/wontun@.service /etc/systemd/system/wontun@.service
systemctl daemon-reload
echo "installed: /usr/local/bin/wontun, /etc/systemd/system/wontun@.service; configs go in /etc/wontun/NAME.conf"
