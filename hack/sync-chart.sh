#!/usr/bin/env bash
# Copies into charts/xdrive what the chart shares with config/, so that nothing
# in it is hand-copied: the CRDs (crds/), the generated and hand-written RBAC
# rules (files/rbac/, which templates/rbac.yaml reads) and the version
# (Chart.yaml's version and appVersion).
#   hack/sync-chart.sh <version>           update the chart (make manifests, make chart)
#   hack/sync-chart.sh --check <version>   fail if it is out of date, or not committed (make test)
set -euo pipefail
check=false
if [[ "${1:-}" == "--check" ]]; then
  check=true
  shift
fi
version="${1:?usage: $0 [--check] <version>}"
root="$(cd "$(dirname "$0")/.." && pwd)"
chart="$root/charts/xdrive"
rbac_files=(role.yaml leader_election_role.yaml metrics_auth_role.yaml metrics_reader_role.yaml)

# sync_into writes the shared files into the chart directory $1.
sync_into() {
  local dir="$1" f
  rm -rf "$dir/crds" "$dir/files/rbac"
  mkdir -p "$dir/crds" "$dir/files/rbac"
  cp "$root"/config/crd/bases/*.yaml "$dir/crds/"
  for f in "${rbac_files[@]}"; do
    cp "$root/config/rbac/$f" "$dir/files/rbac/$f"
  done
  sed -i -E "s/^version: .*/version: ${version}/; s/^appVersion: .*/appVersion: \"${version}\"/" "$dir/Chart.yaml"
}

if ! $check; then
  sync_into "$chart"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -a "$chart" "$work/xdrive"
sync_into "$work/xdrive"
if ! diff -ru "$chart" "$work/xdrive" >&2; then
  echo "charts/xdrive is out of date with config/ or VERSION=$version: run 'make chart' and commit" >&2
  exit 1
fi
# make test syncs the chart first (make manifests): the copies must also be committed.
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 &&
  ! git -C "$root" diff --quiet -- charts/xdrive/crds charts/xdrive/files charts/xdrive/Chart.yaml; then
  echo "charts/xdrive changed when synced from config/; commit it:" >&2
  git -C "$root" diff --stat -- charts/xdrive/crds charts/xdrive/files charts/xdrive/Chart.yaml >&2
  exit 1
fi
