#!/usr/bin/env bash
# Makes a local RabbitMQ usable by ebb's tests: installed (apt-get when missing), the management plugin
# enabled on 127.0.0.1:15672, statistics collected every 500 ms with 1 s samples (the default 5 s makes
# rate and depth assertions slow), and running. A server that is already set up is left alone.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

conf=/etc/rabbitmq/rabbitmq.conf
want=(
	"collect_statistics_interval = 500"
	"management.tcp.port = 15672"
	"management.sample_retention_policies.global.minute = 1"
	"management.sample_retention_policies.basic.minute = 1"
	"management.sample_retention_policies.detailed.10 = 1"
)

command -v rabbitmq-server >/dev/null || ebb_apt_install rabbitmq-server
ebb_apt_install curl

nodename() {
	(
		NODENAME=
		# shellcheck disable=SC1091
		[ -r /etc/rabbitmq/rabbitmq-env.conf ] && . /etc/rabbitmq/rabbitmq-env.conf
		printf '%s\n' "${NODENAME:-rabbit@$(hostname -s)}"
	)
}
running() { rabbitmqctl -q status >/dev/null 2>&1; }
stats_fast() { rabbitmqctl -q eval 'application:get_env(rabbit, collect_statistics_interval).' 2>/dev/null | grep -q '{ok,500}'; }
mgmt_up() { curl -fsS -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview 2>/dev/null; }

start() {
	rabbitmq-server -detached >/dev/null 2>&1 || true
	# await_startup fails when called before the node exists; wait on the pid file first.
	rabbitmqctl -q wait --timeout 90 "/var/lib/rabbitmq/mnesia/$(nodename).pid" >/dev/null ||
		ebb_die "rabbitmq-server did not start; see /var/log/rabbitmq/"
	rabbitmqctl -q await_startup >/dev/null
}

changed=0
ebb_as_root mkdir -p /etc/rabbitmq
ebb_as_root touch "$conf"
for line in "${want[@]}"; do
	key=${line%% =*}
	if ! grep -qxF "$line" "$conf"; then
		ebb_as_root sed -i "/^${key//./\\.}[[:space:]]*=/d" "$conf"
		printf '%s\n' "$line" | ebb_as_root tee -a "$conf" >/dev/null
		changed=1
	fi
done

if ! grep -q 'rabbitmq_management' /etc/rabbitmq/enabled_plugins 2>/dev/null; then
	if running; then
		rabbitmq-plugins -q enable rabbitmq_management >/dev/null
	else
		rabbitmq-plugins -q enable --offline rabbitmq_management >/dev/null
	fi
fi

if running && { [ $changed -eq 1 ] || ! stats_fast; }; then
	ebb_log "restarting RabbitMQ to apply fast statistics settings"
	rabbitmqctl -q stop >/dev/null 2>&1 || true
	for _ in $(seq 1 100); do running || break; sleep 0.2; done
fi
running || start
stats_fast || ebb_die "RabbitMQ runs without collect_statistics_interval = 500; check $conf"

for _ in $(seq 1 150); do mgmt_up && break; sleep 0.2; done
mgmt_up || ebb_die "RabbitMQ management API is not answering on 127.0.0.1:15672"
ebb_wait_port 127.0.0.1 5672 30 || ebb_die "RabbitMQ is not listening on 127.0.0.1:5672"
