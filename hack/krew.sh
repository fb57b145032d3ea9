#!/usr/bin/env bash
# hack/krew.sh VERSION URL_BASE OUT_DIR PLATFORMS...: builds kubectl-xdrive
# for each GOOS/GOARCH into OUT_DIR/kubectl-xdrive_VERSION_OS_ARCH.tar.gz and
# writes the krew manifest OUT_DIR/xdrive.yaml, whose URIs are
# URL_BASE/<tarball> and whose sha256 sums are the tarballs'.
set -euo pipefail
version=$1 url_base=$2 out=$3
shift 3
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# kubectl's own completion runs kubectl_complete-xdrive for `kubectl xdrive <TAB>`.
printf '#!/bin/sh\nexec kubectl xdrive __complete "$@"\n' >"$work/kubectl_complete-xdrive"
chmod 0755 "$work/kubectl_complete-xdrive"
platforms=""
for p in "$@"; do
	os=${p%/*} arch=${p#*/}
	bin=kubectl-xdrive
	[[ $os == windows ]] && bin=kubectl-xdrive.exe
	mkdir -p "$work/$os-$arch"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=$version" \
		-o "$work/$os-$arch/$bin" ./cmd/kubectl-xdrive
	cp "$work/kubectl_complete-xdrive" "$work/$os-$arch/"
	tarball=kubectl-xdrive_${version}_${os}_${arch}.tar.gz
	# Reproducible: fixed owner, mode and time, sorted names.
	tar -C "$work/$os-$arch" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - . | gzip -n >"$out/$tarball"
	sum=$(sha256sum "$out/$tarball" | cut -d' ' -f1)
	platforms+="  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $url_base/$tarball
    sha256: $sum
    bin: $bin
    files:
    - from: $bin
      to: .
    - from: kubectl_complete-xdrive
      to: .
"
done
cat >"$out/xdrive.yaml.tmp" <<YAML
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: xdrive
spec:
  version: v$version
  homepage: https://github.com/xdrive-io/xdrive
  shortDescription: Reach and control xdrive Workstations (spot machines with a portable drive)
  description: |
    kubectl xdrive reaches and controls the Workstations of the xdrive
    operator: ssh with the host key the operator pins for each launch, an
    ssh alias (NAME.NAMESPACE.xdrive) that follows relaunches with strict
    host-key checking, port-forward, start and stop with progress, status,
    list, logs and open.
  caveats: |
    ssh-config, ssh, logs and open run the system's OpenSSH client (ssh).
  platforms:
$platforms
YAML
mv "$out/xdrive.yaml.tmp" "$out/xdrive.yaml"
echo "Wrote $out/xdrive.yaml and $# tarballs"
