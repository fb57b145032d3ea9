#!/usr/bin/env bash
# Fails when generated files differ from what is committed (in a git checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
git rev-parse --git-dir >/dev/null 2>&1 || exit 0
git ls-files --error-unmatch api/v1alpha1/zz_generated.deepcopy.go >/dev/null 2>&1 || exit 0
if ! git diff --quiet -- config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go; then
  echo "Generated files are out of date; run 'make manifests generate' and commit:" >&2
  git diff --stat -- config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go >&2
  exit 1
fi
