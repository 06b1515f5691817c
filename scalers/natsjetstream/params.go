package natsjetstream

import "github.com/ebbscale/ebb/scalers"

// Params describes the trigger's metadata keys, for generated docs.
func Params() ([]scalers.Param, error) {
	return scalers.Describe(metadata{})
}
