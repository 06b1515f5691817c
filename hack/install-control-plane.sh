#!/usr/bin/env bash
# Builds etcd and the Kubernetes binaries (kube-apiserver, kube-controller-manager, kubectl, and for a real
# node kubelet, kube-scheduler and kube-proxy) from the Go module proxy (there are no binary downloads on
# these machines) into a per-user cache keyed by version, and prints that directory. The Kubernetes binaries
# carry version ldflags, so each reports v$EBB_K8S_VERSION (built from the module they would report a
# placeholder, which kubelet's node status and `kubectl version` show).
#
# Idempotent: a second run finds the binaries and prints the directory at once. When KUBEBUILDER_ASSETS
# names a directory that already holds every binary, that directory is printed instead and nothing is built.
#
# Usage: hack/install-control-plane.sh        # prints the binary directory on stdout
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

k8s_bins=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)
bins=(etcd "${k8s_bins[@]}")

has_all() {
	local b
	for b in "${bins[@]}"; do [ -x "$1/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && has_all "$KUBEBUILDER_ASSETS"; then
	printf '%s\n' "$KUBEBUILDER_ASSETS"
	exit 0
fi

dest=$(ebb_control_plane_dir)
if has_all "$dest"; then
	printf '%s\n' "$dest"
	exit 0
fi

command -v go >/dev/null || ebb_die "go is not on PATH"
mkdir -p "$dest"
# One build at a time per cache directory: parallel test runs wait here instead of building twice.
exec 9>"$dest/.lock"
flock 9
if has_all "$dest"; then
	printf '%s\n' "$dest"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS="${GOFLAGS:-} -mod=mod" GOWORK=off CGO_ENABLED=0

build_k8s() {
	local v=$EBB_K8S_VERSION modfile
	mkdir -p "$work/k8s"
	cd "$work/k8s"
	go mod init ebb.local/k8s-build >/dev/null 2>&1
	go mod edit -require="k8s.io/kubernetes@v$v"
	modfile=$(go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[ -f "$modfile" ] || { echo "cannot download k8s.io/kubernetes@v$v"; return 1; }
	# kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging; point each at its
	# published version instead. The sample modules are not published at every version and are not needed.
	sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$modfile" |
		grep -v -e '^k8s.io/sample-cli-plugin$' -e '^k8s.io/sample-controller$' |
		while read -r m; do go mod edit -replace="$m=$m@v0.${v#1.}"; done
	cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
	go mod tidy -e
	local ldflags='-s -w' pkg b minor=${v#1.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=v$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	local pkgs=()
	for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	go build -trimpath -ldflags="$ldflags" -o "$dest/" "${pkgs[@]}"
}

build_etcd() {
	mkdir -p "$work/etcd"
	cd "$work/etcd"
	go mod init ebb.local/etcd-build >/dev/null 2>&1
	go mod edit -require="go.etcd.io/etcd/server/v3@v$EBB_ETCD_VERSION"
	cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
	go mod tidy -e
	go build -trimpath -ldflags='-s -w' -o "$dest/etcd" go.etcd.io/etcd/server/v3
}

if [ ! -x "$dest/etcd" ]; then
	ebb_with_progress "building etcd v$EBB_ETCD_VERSION (first run only)" build_etcd
fi
for b in "${k8s_bins[@]}"; do
	if ! [ -x "$dest/$b" ]; then
		ebb_with_progress "building ${k8s_bins[*]} v$EBB_K8S_VERSION (first run only, about 10 minutes)" build_k8s
		break
	fi
done
has_all "$dest" || ebb_die "build finished but binaries are missing in $dest"
printf '%s\n' "$dest"
