#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl from the Go module proxy into a
# per-user, per-version cache, and prints the directory (use it as
# KUBEBUILDER_ASSETS; the envtest tests run that kubectl, never the PATH's).
# Nothing is downloaded from anywhere but the Go module proxy. A cache that
# has kube-apiserver and etcd but no kubectl gets only kubectl built.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
CACHE_ROOT="${XDRIVE_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xdrive-envtest}"
ASSETS="$CACHE_ROOT/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-$(go env GOOS)-$(go env GOARCH)"

if [[ -x "$ASSETS/kube-apiserver" && -x "$ASSETS/etcd" && -x "$ASSETS/kubectl" ]]; then
  echo "$ASSETS"
  exit 0
fi

mkdir -p "$ASSETS"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log() { echo "envtest-assets: $*" >&2; }

build_etcd() {
  local dir="$work/etcd"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module xdrive.local/envtest-etcd

go 1.26

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
  (cd "$dir" && go mod tidy >&2 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ASSETS/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$ASSETS/etcd.tmp" "$ASSETS/etcd"
}

# build_k8s builds the given k8s.io/kubernetes/cmd/<name> binaries (kube-apiserver,
# kubectl) from one throwaway module that requires k8s.io/kubernetes.
build_k8s() {
  local dir="$work/apiserver" gomod name
  mkdir -p "$dir"
  gomod="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  {
    printf 'module xdrive.local/envtest-apiserver\n\ngo 1.26\n\nrequire k8s.io/kubernetes v%s\n\n' "$K8S_VERSION"
    # Replace every staging module with its published v0 twin.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' |
      grep -v -E '^k8s\.io/(sample-cli-plugin|sample-controller)$' |
      while read -r m; do printf 'replace %s => %s v0.%s\n' "$m" "$m" "${K8S_VERSION#1.}"; done
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for name in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$name"; done
    printf ')\n'
  } >"$dir/tools.go"
  local major="${K8S_VERSION%%.*}" minor="${K8S_VERSION#*.}"
  minor="${minor%%.*}"
  local x="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=v${K8S_VERSION} -X $pkg.gitMajor=${major} -X $pkg.gitMinor=${minor}"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$dir" && go mod tidy >&2)
  for name in "$@"; do
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w$x" -o "$ASSETS/$name.tmp.$$" "k8s.io/kubernetes/cmd/$name")
    mv "$ASSETS/$name.tmp.$$" "$ASSETS/$name"
  done
}

if [[ ! -x "$ASSETS/etcd" ]]; then
  log "building etcd v${ETCD_VERSION} (about a minute)"
  build_etcd
fi
k8s=()
[[ -x "$ASSETS/kube-apiserver" ]] || k8s+=(kube-apiserver)
[[ -x "$ASSETS/kubectl" ]] || k8s+=(kubectl)
if ((${#k8s[@]})); then
  if [[ " ${k8s[*]} " == *" kube-apiserver "* ]]; then
    log "building ${k8s[*]} v${K8S_VERSION} (about 12 minutes on a cold cache)"
  else
    log "building ${k8s[*]} v${K8S_VERSION} (about a minute on a warm cache)"
  fi
  build_k8s "${k8s[@]}"
fi
echo "$ASSETS"
