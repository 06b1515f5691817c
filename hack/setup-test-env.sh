#!/usr/bin/env bash
# Provides every real component ebb's tests need, idempotently: control-plane and node binaries, the
# container runtime and pod network, RabbitMQ, NATS, and the outside clients. Prints the control-plane directory (for KUBEBUILDER_ASSETS) on stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/ensure-tools.sh"
"$here/ensure-node.sh"
"$here/ensure-rabbitmq.sh"
"$here/ensure-nats.sh"
"$here/install-control-plane.sh"
