#!/usr/bin/env bash
# Fails when regenerating (make generate) or go mod tidy changes any file: generated files and go.mod
# must be committed up to date. Works on a dirty tree: it compares before and after, not against git.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

snapshot() {
	find api manifests/crd manifests/rbac docs/scalers/parameters.md go.mod go.sum -type f \( -name 'zz_generated*' -o -path 'manifests/crd/*' -o -path 'manifests/rbac/*' -o -name 'parameters.md' -o -name 'go.mod' -o -name 'go.sum' \) \
		-print0 | sort -z | xargs -0 sha256sum
}
before=$(snapshot)
make -s generate >/dev/null
go mod tidy
after=$(snapshot)
if [ "$before" != "$after" ]; then
	echo "verify-generated: these files were stale and have been regenerated; commit them:" >&2
	diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
	exit 1
fi
