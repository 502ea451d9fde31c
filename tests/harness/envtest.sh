#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from Go modules for the end-to-end tests, and prints the
# folder that holds them (for KUBEBUILDER_ASSETS). Cached under $WEBSTACK_CACHE/envtest/<version>.
#
# Usage: envtest.sh KUBERNETES_VERSION   (for example v1.37.2)
# The etcd version is the one the release's own go.mod requires.
set -euo pipefail

version="${1:?usage: envtest.sh vMAJOR.MINOR.PATCH}"
cache="${WEBSTACK_CACHE:-$HOME/.cache/webstack}"
out="$cache/envtest/$version"
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { echo "envtest.sh: Go is needed to build the test API server" >&2; exit 1; }

minor="${version#v1.}"; minor="${minor%%.*}"
staging_version="v0.${version#v1.}"
work="$cache/envtest/src-$version"
rm -rf "$work"
mkdir -p "$work" "$out"
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export GOPATH="${GOPATH:-$cache/go}" GOMODCACHE="${GOMODCACHE:-$cache/go/pkg/mod}"

go mod init webstack.io/envtest >/dev/null 2>&1
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
[[ -f "$gomod" ]] || { echo "envtest.sh: cannot find the go.mod of k8s.io/kubernetes@$version" >&2; exit 1; }
# The staging modules are required at v0.0.0 and replaced by local paths a dependent does not
# inherit: point each at its published version.
grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r mod; do
  go mod edit -replace="$mod=$mod@$staging_version"
done
etcd_version="$(grep -E '^\s*go.etcd.io/etcd/server/v3 v' "$gomod" | awk '{print $2}' | head -1)"
go mod edit -require="k8s.io/kubernetes@$version" -require="go.etcd.io/etcd/server/v3@$etcd_version"
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
)
GO
go mod tidy -e >/dev/null 2>&1 || go mod tidy
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
go build -tags tools -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -tags tools -o "$out/etcd" go.etcd.io/etcd/server/v3
rm -rf "$work"
echo "$out"
