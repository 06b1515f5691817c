#!/usr/bin/env bash
# Installs what a real node needs from Debian's archive, beside the kubelet, kube-scheduler and kube-proxy
# that install-control-plane.sh builds: containerd and runc (the container runtime), the CNI plugins (the
# pod network's bridge and addresses), iptables and conntrack (kube-proxy's cluster IPs), iproute2.
# Idempotent. internal/dev/localcluster starts and stops them; nothing here starts a service.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
ebb_apt_install containerd runc containernetworking-plugins iptables conntrack iproute2
