// Package hack embeds the scripts the ebb binary runs itself: `ebb dev` builds the control-plane binaries
// with install-control-plane.sh on first use, as `make test` does.
package hack

import "embed"

// Scripts holds install-control-plane.sh and the lib.sh it sources.
//
//go:embed install-control-plane.sh lib.sh
var Scripts embed.FS
