#!/usr/bin/env bash
# Install Sentiedge on a bare host for the systemd units beside this script (run as root from
# a checkout): a system user `sentiedge`, a virtual environment in /opt/sentiedge holding the
# package built from this checkout (the release model bundle inside it), and settings files in
# /etc/sentiedge (mode 0640, group sentiedge) copied from the examples unless they exist.
#   sudo deploy/systemd/install.sh            # then edit /etc/sentiedge/*.env
#   sudo systemctl enable --now sentiedge-control-plane   # or sentiedge-edge
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/systemd
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (it creates a user and writes /opt and /etc)" >&2; exit 1; }
id sentiedge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sentiedge --shell /usr/sbin/nologin sentiedge
python3 -m venv /opt/sentiedge
/opt/sentiedge/bin/pip install --quiet --upgrade pip
/opt/sentiedge/bin/pip install --quiet .
install -d -m 0750 -g sentiedge /etc/sentiedge
for name in edge control-plane; do
    [ -f "/etc/sentiedge/$name.env" ] || install -m 0640 -g sentiedge "$here/$name.env.example" "/etc/sentiedge/$name.env"
done
install -m 0644 "$here"/sentiedge-*.service /etc/systemd/system/
systemctl daemon-reload 2>/dev/null || true
echo "installed: /opt/sentiedge, /etc/sentiedge/{edge,control-plane}.env (edit them), units sentiedge-edge and sentiedge-control-plane"
