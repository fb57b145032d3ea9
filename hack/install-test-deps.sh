#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: Debian's shellcheck,
# openssh-server and, for make test-real, QEMU, mmdebstrap, genisoimage and socat; and amazon-ec2-metadata-mock from the Go module proxy.
# moto_server must already be on PATH (it ships with the machine image).
set -euo pipefail
need=()
command -v shellcheck >/dev/null || need+=(shellcheck)
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v unshare >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
# test/instancevm (make test-real): a real Linux VM under QEMU, its image
# built with mmdebstrap, its NoCloud seed with genisoimage, its IMDS through socat.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v genisoimage >/dev/null || need+=(genisoimage)
command -v socat >/dev/null || need+=(socat)
command -v e2fsck >/dev/null || need+=(e2fsprogs)
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install-test-deps: missing ${need[*]}; install them with apt-get as root" >&2
    exit 1
  fi
fi
# sshd's privilege separation directory: Debian makes it only through systemd.
# test/sshd.PrepareHost makes it too, for a test run without this script.
if [[ ! -d /run/sshd ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    mkdir -p -m 0755 /run/sshd
  else
    echo "install-test-deps: /run/sshd is missing; create it as root (mkdir -p /run/sshd)" >&2
    exit 1
  fi
fi
gobin="$(go env GOBIN)"
gobin="${gobin:-$(go env GOPATH)/bin}"
if ! command -v ec2-metadata-mock >/dev/null && [[ ! -x "$gobin/ec2-metadata-mock" ]]; then
  go install github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0
fi
command -v moto_server >/dev/null || { echo "install-test-deps: moto_server is not on PATH (pip install 'moto[server]==5.2.1')" >&2; exit 1; }
