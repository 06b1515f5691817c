#!/usr/bin/env bash
# Installs the Debian packages ebb's tests use as outside clients (kcat).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
ebb_apt_install kcat curl
