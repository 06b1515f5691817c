package controller

import (
	"fmt"
	"strconv"
	"strings"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// pauseOf reads the pause annotations. A paused-replicas value that is not a non-negative integer is an
// error (and ebb treats the ScaledConsumer as paused: the safe reading of "pin it").
func pauseOf(sc *ebbv1.ScaledConsumer) (paused bool, replicas *int32, err error) {
	if v, ok := sc.Annotations[ebbv1.PausedReplicasAnnotation]; ok {
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if perr != nil || n < 0 {
			return true, nil, fmt.Errorf("annotation %s=%q is not a non-negative integer; ebb holds the target as it is until it is fixed or removed", ebbv1.PausedReplicasAnnotation, v)
		}
		return true, ptr(int32(n)), nil
	}
	v, ok := sc.Annotations[ebbv1.PausedAnnotation]
	if !ok {
		return false, nil, nil
	}
	b, perr := strconv.ParseBool(strings.TrimSpace(v))
	if perr != nil {
		return true, nil, fmt.Errorf("annotation %s=%q is not true or false; ebb treats it as paused until it is fixed or removed", ebbv1.PausedAnnotation, v)
	}
	return b, nil, nil
}
