#!/usr/bin/env bash
# Makes a local NATS server with JetStream available on 127.0.0.1:4222: used when already listening,
# started when installed, installed with apt-get when not.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

ebb_port_open 127.0.0.1 4222 && exit 0
command -v nats-server >/dev/null || ebb_apt_install nats-server
store=/var/lib/nats-server
ebb_as_root mkdir -p "$store"
ebb_as_root start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
	-a 127.0.0.1 -p 4222 -js -sd "$store" -l /var/log/nats-server.log
ebb_wait_port 127.0.0.1 4222 20 || ebb_die "nats-server did not start; see /var/log/nats-server.log"
