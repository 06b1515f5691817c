package ebbinstall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
)

// The objects of the install this package waits for.
const (
	Namespace  = "ebb-system"
	Deployment = "ebb"
	APIService = "v1beta1.external.metrics.k8s.io"
	// ImageName is the image the manifests name; an overlay changes its name and tag.
	ImageName = "ghcr.io/ebbscale/ebb"
)

// Options says what to install where.
type Options struct {
	// Kubectl is the kubectl binary. Required.
	Kubectl string
	// Kubeconfig is the cluster's kubeconfig. Required.
	Kubeconfig string
	// Manifests is the manifests/ directory of a checkout. Required.
	Manifests string
	// OverlayDir is where the overlay is written (created if missing). kustomize takes only a relative
	// path as a base, so it must be reachable from Manifests by a relative path (any directory on the same
	// machine is). Required.
	OverlayDir string
	// Image is the ebb image to run, loaded on the node beforehand (imagePullPolicy Never). Required.
	Image string
}

// Overlay returns the kustomization that installs manifests/ (at base, relative to the overlay) with
// image, never pulled.
func Overlay(base, image string) (string, error) {
	name, tag, err := splitImage(image)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`# Written by ebb (internal/dev/ebbinstall): ebb's install with a locally loaded image.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
images:
- name: %s
  newName: %s
  newTag: %q
patches:
- target: {group: apps, version: v1, kind: Deployment, name: %s, namespace: %s}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
`, base, ImageName, name, tag, Deployment, Namespace), nil
}

// splitImage splits "registry/name:tag" at the tag's colon (not a registry port's).
func splitImage(image string) (name, tag string, err error) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") || strings.Contains(image, "@") {
		return "", "", fmt.Errorf("image %q: want name:tag", image)
	}
	return image[:i], image[i+1:], nil
}

// Apply writes the overlay and applies it with kubectl (server-side, so a second Apply updates in place).
func Apply(ctx context.Context, opts Options) error {
	if opts.Kubectl == "" || opts.Kubeconfig == "" || opts.Manifests == "" || opts.OverlayDir == "" || opts.Image == "" {
		return errors.New("ebbinstall: Kubectl, Kubeconfig, Manifests, OverlayDir and Image are required")
	}
	if err := os.MkdirAll(opts.OverlayDir, 0o755); err != nil {
		return err
	}
	absOverlay, err := filepath.Abs(opts.OverlayDir)
	if err != nil {
		return err
	}
	absManifests, err := filepath.Abs(opts.Manifests)
	if err != nil {
		return err
	}
	base, err := filepath.Rel(absOverlay, absManifests)
	if err != nil {
		return fmt.Errorf("ebbinstall: manifests %s from overlay %s: %w", absManifests, absOverlay, err)
	}
	k, err := Overlay(base, opts.Image)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(absOverlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, opts.Kubectl, "--kubeconfig", opts.Kubeconfig, "apply", "--server-side",
		"--field-manager=ebb-install", "--force-conflicts", "-k", absOverlay)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply -k %s: %w\n%s", absOverlay, err, out)
	}
	return nil
}

// WaitReady waits until ebb's Deployment is Available with every replica Ready and up to date, and the
// external metrics APIService is Available. The error says which was last seen missing.
func WaitReady(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	agg, err := aggregator.NewForConfig(cfg)
	if err != nil {
		return err
	}
	last := ""
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := kube.AppsV1().Deployments(Namespace).Get(ctx, Deployment, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if !deploymentReady(d) {
			last = fmt.Sprintf("deployment %s/%s: %d of %d replicas ready, %d updated", Namespace, Deployment,
				d.Status.ReadyReplicas, d.Status.Replicas, d.Status.UpdatedReplicas)
			return false, nil
		}
		a, err := agg.ApiregistrationV1().APIServices().Get(ctx, APIService, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, c := range a.Status.Conditions {
			if c.Type == apiregistrationv1.Available {
				last = fmt.Sprintf("APIService %s: Available=%s %s: %s", APIService, c.Status, c.Reason, c.Message)
				return c.Status == apiregistrationv1.ConditionTrue, nil
			}
		}
		last = "APIService " + APIService + ": no Available condition yet"
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("ebb not ready (%s): %w", last, err)
	}
	return nil
}

// deploymentReady: the rollout is done and every replica is Ready.
func deploymentReady(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.ReadyReplicas == want && d.Status.Replicas == want
}
