#!/bin/bash
# xdrive user-data for workstation @WORKSTATION@: unpacks the xdrive scripts,
# units and settings, starts the interruption watcher, then runs the bootstrap.
set -euo pipefail
umask 022
root=${XDRIVE_ROOT:-}
mkdir -p "$root/"
base64 -d <<'XDRIVE_ARCHIVE' | tar -xzm --no-same-owner --no-overwrite-dir -C "$root/"
@ARCHIVE@
XDRIVE_ARCHIVE
systemctl daemon-reload
systemctl enable xdrive-bootstrap.service
systemctl enable --now xdrive-watch.service
exec "$root/usr/local/sbin/xdrive-bootstrap"
