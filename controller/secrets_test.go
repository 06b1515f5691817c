package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2"
)

// withoutBodies keeps what a logger at the highest verbosity logs below client-go's body level, and drops
// the rest (client-go logs request and response bodies at V(8)).
func TestWithoutBodies(t *testing.T) {
	var lines []string
	logger := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 10})
	ctx := withoutBodies(klog.NewContext(context.Background(), logger))
	l := klog.FromContext(ctx).WithValues("k", "v")
	l.V(0).Info("request line")
	l.V(7).Info("headers")
	l.V(8).Info("Response Body", "body", "secret")
	l.V(10).Info("curl")
	got := strings.Join(lines, "\n")
	want := `"level"=0 "msg"="request line" "k"="v"` + "\n" + `"level"=7 "msg"="headers" "k"="v"`
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("logged (-got +want):\n%s", diff)
	}
}
