#!/bin/bash
# xdrive user-data for workstation @WORKSTATION@
set -euo pipefail
umask 022
root=${XDRIVE_ROOT:-}
mkdir -p "$root/"
base64 -d <<'XDRIVE_ARCHIVE' | tar -xzm --no-same-owner --no-overwrite-dir -C "$root/"
@ARCHIVE@
XDRIVE_ARCHIVE
exec "$root/usr/local/sbin/xdrive-bootstrap"
