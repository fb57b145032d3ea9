#!/usr/bin/env bash
# Prints config/default with the manager's image set to IMAGE, leaving the
# tree untouched: a throwaway overlay runs `kustomize edit set image`.
#   hack/kustomize-image.sh <kustomize binary> <image>
# `make deploy` applies the output; `make build-installer` writes it to
# dist/install.yaml.
set -euo pipefail
kustomize="${1:?usage: $0 <kustomize> <image>}"
image="${2:?usage: $0 <kustomize> <image>}"
root="$(cd "$(dirname "$0")/.." && pwd)"
overlay="$(mktemp -d)"
trap 'rm -rf "$overlay"' EXIT
# kustomize takes bases by relative path only. config/manager names the
# image xdrive-controller (its images: entry); the overlay replaces that
# name and tag.
base="$(realpath --relative-to="$overlay" "$root/config/default")"
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\n' "$base" >"$overlay/kustomization.yaml"
(cd "$overlay" && "$kustomize" edit set image "xdrive-controller=$image")
"$kustomize" build "$overlay"
