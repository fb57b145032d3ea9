#!/usr/bin/env bash
# Prints config/default with the manager's image set to IMAGE and, when
# given, the settings of config/default/settings.yaml replaced, leaving the
# tree untouched: a throwaway overlay runs `kustomize edit set image` and
# patches the manager's environment.
#   [CLUSTER_NAME=...] [REGION=...] [OPERATOR_CIDRS=...] hack/kustomize-image.sh <kustomize binary> <image>
# `make deploy` applies the output; `make build-installer` writes it to
# dist/install.yaml.
set -euo pipefail
kustomize="${1:?usage: $0 <kustomize> <image>}"
image="${2:?usage: $0 <kustomize> <image>}"
# The overlay's commands run in another directory.
[[ "$kustomize" == */* ]] && kustomize="$(realpath "$kustomize")"
root="$(cd "$(dirname "$0")/.." && pwd)"
overlay="$(mktemp -d)"
trap 'rm -rf "$overlay"' EXIT
# kustomize takes bases by relative path only. config/manager names the
# image xdrive-controller (its images: entry); the overlay replaces that
# name and tag.
base="$(realpath --relative-to="$overlay" "$root/config/default")"
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\n' "$base" >"$overlay/kustomization.yaml"
(cd "$overlay" && "$kustomize" edit set image "xdrive-controller=$image")

# The settings, as a strategic-merge patch of the env (merged by name).
env=""
add_env() { # name value
  # JSON strings are YAML strings: quote the value so that nothing in it is read as YAML.
  env+="        - name: $1"$'\n'"          value: $(jq -Rn --arg v "$2" '$v')"$'\n'
}
[[ -n "${CLUSTER_NAME:-}" ]] && add_env XDRIVE_CLUSTER_NAME "$CLUSTER_NAME"
[[ -n "${REGION:-}" ]] && add_env AWS_REGION "$REGION"
[[ -n "${OPERATOR_CIDRS:-}" ]] && add_env XDRIVE_OPERATOR_CIDRS "$OPERATOR_CIDRS"
if [[ -n "$env" ]]; then
  cat >"$overlay/settings-patch.yaml" <<PATCH
apiVersion: apps/v1
kind: Deployment
metadata:
  name: xdrive-controller-manager
  namespace: xdrive-system
spec:
  template:
    spec:
      containers:
      - name: manager
        env:
$env
PATCH
  (cd "$overlay" && "$kustomize" edit add patch --path settings-patch.yaml)
fi
"$kustomize" build "$overlay"
