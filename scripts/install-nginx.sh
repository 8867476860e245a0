#!/usr/bin/env bash
# Debian's nginx for the reverse-proxy test (tests/gateway/test_behind_nginx.py): the test runs its own nginx
# from a config in a temporary folder on loopback ports; the package's own service is not needed.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
# the package's own service is not wanted (the test starts its own nginx on loopback): on a machine with systemd the
# install would start it on port 80
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
ls /usr/sbin/nginx
