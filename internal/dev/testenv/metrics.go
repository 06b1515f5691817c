package testenv

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// RawExternalMetric reads an external metric the way an operator would, with kubectl get --raw through
// kube-apiserver, and returns its value. An error carries kubectl's output (NotFound for a metric the
// server does not have).
func (e *Env) RawExternalMetric(t testing.TB, ns, metric, scaledConsumer string) (string, error) {
	t.Helper()
	path := fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/%s?labelSelector=%s%%3D%s", ns, metric, ebbv1.ScaledConsumerLabel, scaledConsumer)
	out, err := exec.CommandContext(t.Context(), filepath.Join(e.BinDir, "kubectl"), "--kubeconfig", e.Kubeconfig, "get", "--raw", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl get --raw %s: %w: %s", path, err, out)
	}
	var list struct {
		Items []struct {
			Value string `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return "", fmt.Errorf("decoding %s: %w", out, err)
	}
	if len(list.Items) != 1 {
		return "", fmt.Errorf("want one item, got %s", out)
	}
	return list.Items[0].Value, nil
}
