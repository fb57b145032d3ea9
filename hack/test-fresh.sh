#!/usr/bin/env bash
# Runs `make test` the way a fresh machine would, to catch hidden set-up steps:
#   - a clean clone of HEAD (uncommitted changes are not in it);
#   - an empty envtest cache (XDRIVE_ENVTEST_CACHE), so kube-apiserver and etcd are built anew;
#   - an empty GOBIN, with GOPATH/bin off PATH, so Go tools are installed anew;
#   - the machine-level state the tests create removed first (/run/sshd).
# With XDRIVE_FRESH_GOCACHE=1 the Go build cache is empty too (the slowest, truest run).
# Debian packages stay installed; hack/install-test-deps.sh installs them when missing.
#
#   hack/test-fresh.sh [make target, default: test]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-test}"
work="$(mktemp -d /tmp/xdrive-fresh.XXXXXX)"
keep="${XDRIVE_FRESH_KEEP:-}"
cleanup() { [[ -n $keep ]] || rm -rf "$work"; }
trap cleanup EXIT
log() { echo "test-fresh: $*" >&2; }

git clone --quiet --no-local "$repo" "$work/xdrive"
mkdir -p "$work/envtest" "$work/gobin"
export XDRIVE_ENVTEST_CACHE="$work/envtest" GOBIN="$work/gobin"
gopathbin="$(go env GOPATH)/bin"
PATH="$(tr ':' '\n' <<<"$PATH" | grep -v -x -F -e "$gopathbin" | paste -sd: -)"
export PATH="$GOBIN:$PATH"
if [[ ${XDRIVE_FRESH_GOCACHE:-} == 1 ]]; then
  export GOCACHE="$work/gocache"
fi
if [[ -d /run/sshd && $(id -u) -eq 0 ]]; then
  rmdir /run/sshd 2>/dev/null || rm -rf /run/sshd
fi
log "clone $(git -C "$work/xdrive" rev-parse --short HEAD) in $work; envtest cache and GOBIN empty; /run/sshd removed"
start=$(date +%s)
rc=0
(cd "$work/xdrive" && CI=true make "$target") || rc=$?
log "make $target exited $rc after $(($(date +%s) - start)) s"
exit "$rc"
