// Package version reports the build's version. Version is set at link time by the Makefile
// (-X github.com/ebbscale/ebb/internal/version.Version=...); without it the module version or "devel" is
// used.
package version
