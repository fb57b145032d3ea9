#!/usr/bin/env bash
# Builds golangci-lint with kube-api-linter built in (from the Go module proxy)
# into bin/, then lints api/ with .golangci-kal.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
KAL_VERSION="${KAL_VERSION:-v0.0.0-20260716143926-092fe0c72997}"
bin="bin/golangci-lint-kube-api-linter"
if [[ ! -x "$bin" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  printf 'module xdrive.local/kal\n\ngo 1.26\n\nrequire sigs.k8s.io/kube-api-linter %s\n' "$KAL_VERSION" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter"\n' >"$work/tools.go"
  (cd "$work" && go mod tidy >&2 && go build -o "$OLDPWD/$bin" sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter)
fi
"$bin" run --allow-parallel-runners --config .golangci-kal.yml ./api/...
