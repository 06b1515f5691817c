# shellcheck shell=bash
# Shared helpers for hack/ scripts. Source it; it defines functions and versions, and runs nothing.

EBB_K8S_VERSION=${EBB_K8S_VERSION:-1.37.2}
EBB_ETCD_VERSION=${EBB_ETCD_VERSION:-3.7.0}

# ebb_cache_dir prints the per-user cache directory ebb's scripts keep built tools in.
ebb_cache_dir() {
	printf '%s\n' "${EBB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ebb}"
}

# EBB_BUILD_RECIPE names the way hack/install-control-plane.sh builds the binaries; it is part of the cache
# key, so a change of recipe (r2: version ldflags, node binaries) builds anew instead of reusing old ones.
# internal/dev/localcluster.BuildRecipe holds the same value.
EBB_BUILD_RECIPE=r2

# ebb_control_plane_dir prints where the Kubernetes and etcd binaries of the pinned versions live.
ebb_control_plane_dir() {
	printf '%s/control-plane/k8s-v%s-etcd-v%s-%s\n' "$(ebb_cache_dir)" "$EBB_K8S_VERSION" "$EBB_ETCD_VERSION" "$EBB_BUILD_RECIPE"
}

ebb_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
ebb_die() { ebb_log "error: $*"; exit 1; }

# ebb_as_root runs a command as root, through sudo when the caller is not root.
ebb_as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ebb_apt_install installs Debian packages that are not installed yet. apt-get update runs once per call,
# and only when something is missing.
ebb_apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	ebb_log "installing ${missing[*]} with apt-get"
	local log
	log=$(mktemp)
	if ! ebb_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
		! ebb_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		ebb_die "apt-get install ${missing[*]} failed"
	fi
	rm -f "$log"
}

# ebb_port_open HOST PORT succeeds when something accepts TCP connections there.
ebb_port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ebb_wait_port HOST PORT SECONDS waits for a listener.
ebb_wait_port() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		ebb_port_open "$1" "$2" && return 0
		sleep 0.1
	done
	return 1
}

# ebb_with_progress MESSAGE CMD... runs CMD with its output in a log file, printing a progress line with
# the elapsed time while it runs. On failure it prints the log's tail and fails.
ebb_with_progress() {
	local msg=$1 log start pid rc
	shift
	log=$(mktemp)
	start=$(date +%s)
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ -t 2 ]; then
			printf '\r%s: %s (%ds)' "${0##*/}" "$msg" "$(($(date +%s) - start))" >&2
			sleep 1
		else
			printf '%s: %s (%ds)\n' "${0##*/}" "$msg" "$(($(date +%s) - start))" >&2
			local i
			for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
		fi
	done
	wait "$pid"
	rc=$?
	[ -t 2 ] && printf '\n' >&2
	if [ $rc -ne 0 ]; then
		tail -n 40 "$log" >&2
		rm -f "$log"
		ebb_die "$msg failed (exit $rc)"
	fi
	rm -f "$log"
	ebb_log "$msg: done in $(($(date +%s) - start))s"
}
