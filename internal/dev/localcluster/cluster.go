package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ebbscale/ebb/manifests"
)

// Options configures a local cluster. The zero value starts etcd and kube-apiserver with ebb's CRDs.
type Options struct {
	// BinDir holds the control-plane binaries. Default: FindBinaries().
	BinDir string

	// Dir keeps certificates, kubeconfigs and logs. Default: a new temporary directory, removed by Stop.
	Dir string

	// APIServerPort is kube-apiserver's secure port on 127.0.0.1. Default 0: a free port.
	APIServerPort int

	// SkipCRDs leaves ebb's CRDs uninstalled.
	SkipCRDs bool

	// ControllerManager also starts kube-controller-manager running the controllers that need no node
	// (NodelessControllers): the HPA controller, the garbage collector (which deletes objects whose owner
	// is gone, such as an HPA whose ScaledConsumer was deleted), the namespace controller (so a deleted
	// namespace goes away instead of staying Terminating), the service-account controller (each namespace
	// gets its default ServiceAccount) and the ClusterRole aggregation controller. With a Node it runs
	// every controller.
	ControllerManager bool

	// HPASyncPeriod is the HPA controller's sync period. Default 1s (the real default is 15s).
	HPASyncPeriod time.Duration

	// Node also runs a real node (containerd, the kubelet, kube-scheduler, kube-proxy and a pod network),
	// and kube-controller-manager then runs every controller, so Deployments get pods. Needs root; see
	// NodeOptions. kube-apiserver then listens on NodeIP instead of 127.0.0.1. Default nil: no node.
	Node *NodeOptions

	// DownscaleStabilization is the HPA controller's default scale-down stabilization window, used by HPAs
	// without their own behavior. Default 0 (the real default is 5 minutes), so scale-down is observable
	// quickly; HPAs that set behavior keep their own window.
	DownscaleStabilization time.Duration
}

// Cluster is a running local control plane.
type Cluster struct {
	// Config connects as a cluster administrator (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file equivalent to Config, for kubectl and child processes.
	Kubeconfig string
	// Dir holds the cluster's certificates, kubeconfigs and logs.
	Dir string
	// BinDir holds the binaries it runs.
	BinDir string
	// Node is the running node, when Options.Node asked for one.
	Node *Node

	env       *envtest.Environment
	removeDir bool
	logs      []*os.File // component logs, closed by Stop
	kcm       *process
	// kubeletClient is kube-apiserver's client certificate towards the kubelet, when a node runs.
	kubeletClient kubeletClientFiles
}

// Start starts etcd and kube-apiserver with the aggregation layer configured, installs ebb's CRDs and,
// when asked, starts the HPA controller. On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	c := &Cluster{Dir: opts.Dir, BinDir: opts.BinDir}
	if c.BinDir == "" {
		if c.BinDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "ebb-cluster-"); err != nil {
			return nil, err
		}
		c.removeDir = true
	} else if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	// Components get paths in flags and configuration files, and some run in other directories.
	if c.Dir, err = filepath.Abs(c.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()

	pki, err := writeFrontProxyPKI(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("front-proxy certificates: %w", err)
	}
	apiLog, err := c.createLog("kube-apiserver.log")
	if err != nil {
		return nil, err
	}
	etcdLog, err := c.createLog("etcd.log")
	if err != nil {
		return nil, err
	}

	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    c.BinDir,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	if !opts.SkipCRDs {
		if c.env.CRDInstallOptions.CRDs, err = manifests.CRDs(); err != nil {
			return nil, err
		}
	}
	// etcd's data in Dir, so its command line names Dir: a node's start after a run that was killed finds
	// and stops it (see cleanupHost), and so can a test.
	c.env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog, DataDir: filepath.Join(c.Dir, "etcd")}
	api := c.env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
	if opts.APIServerPort != 0 {
		api.SecureServing.Address = "127.0.0.1"
		api.SecureServing.Port = strconv.Itoa(opts.APIServerPort)
	}
	if opts.Node != nil {
		if c.Node, err = prepareNode(ctx, c, opts.Node); err != nil {
			return nil, err
		}
		if err := c.Node.configureAPIServer(api, opts.APIServerPort); err != nil {
			return nil, err
		}
		opts.ControllerManager = true
	}
	args := api.Configure()
	args.Set("requestheader-client-ca-file", pki.CA)
	args.Set("requestheader-allowed-names", FrontProxyClientName)
	args.Set("requestheader-username-headers", "X-Remote-User")
	args.Set("requestheader-group-headers", "X-Remote-Group")
	args.Set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
	args.Set("proxy-client-cert-file", pki.ClientCert)
	args.Set("proxy-client-key-file", pki.ClientKey)
	if c.Node != nil {
		c.Node.apiServerArgs(args, c.kubeletClient)
	}

	if _, err := c.env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w (logs in %s)", c.BinDir, err, c.Dir)
	}
	admin, err := c.env.AddUser(envtest.User{Name: "ebb-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	c.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		if err := c.startControllerManager(ctx, opts); err != nil {
			return nil, err
		}
	}
	if c.Node != nil {
		if err := c.Node.start(ctx, c, opts.Node); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// NodelessControllers are the kube-controller-manager controllers a cluster without a node runs: those
// that do their work in the API alone. The ones that make or watch pods (Deployments, ReplicaSets, Jobs,
// endpoints and so on) are left out: without a node their pods would only stay Pending.
var NodelessControllers = []string{
	"horizontal-pod-autoscaler-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"clusterrole-aggregation-controller",
}

func (c *Cluster) startControllerManager(ctx context.Context, opts Options) error {
	sync := opts.HPASyncPeriod
	if sync == 0 {
		sync = time.Second
	}
	log, err := c.createLog("kube-controller-manager.log")
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--controllers=" + strings.Join(NodelessControllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--horizontal-pod-autoscaler-sync-period=" + sync.String(),
		"--horizontal-pod-autoscaler-downscale-stabilization=" + opts.DownscaleStabilization.String(),
	}
	if c.Node != nil {
		args = append(args, c.Node.controllerManagerArgs()...)
	}
	// Ready when its HPA informers have synced; the log says so only at high verbosity, so watch that it
	// stays up for a moment and then trust the informers to catch up within a sync period.
	c.kcm, err = startProcess(ctx, "kube-controller-manager", filepath.Join(c.BinDir, "kube-controller-manager"), args, log, 500*time.Millisecond)
	return err
}

// createLog creates a component log in Dir; Stop closes it.
func (c *Cluster) createLog(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(c.Dir, name))
	if err != nil {
		return nil, err
	}
	c.logs = append(c.logs, f)
	return f, nil
}

// ControllerManagerRunning reports whether kube-controller-manager is running.
func (c *Cluster) ControllerManagerRunning() bool { return c.kcm.running() }

// Stop stops everything Start started, in reverse order, and removes a temporary Dir.
func (c *Cluster) Stop() error {
	var errs []error
	if c.Node != nil {
		if err := c.Node.stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the node: %w", err))
		}
	}
	c.kcm.stop(10 * time.Second)
	c.kcm = nil
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping control plane: %w", err))
		}
		c.env = nil
	}
	if c.Node != nil {
		if err := c.Node.release(); err != nil {
			errs = append(errs, fmt.Errorf("cleaning up after the node: %w", err))
		}
		c.Node = nil
	}
	for _, f := range c.logs {
		_ = f.Close()
	}
	c.logs = nil
	if c.removeDir && c.Dir != "" {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// External metrics registration names. The APIService name is fixed by Kubernetes; the Service is ours.
const (
	ExternalMetricsAPIService = "v1beta1.external.metrics.k8s.io"
	MetricsServiceNamespace   = "ebb-system"
	MetricsServiceName        = "ebb-metrics-apiserver"
)

// RegisterExternalMetrics points external.metrics.k8s.io/v1beta1 at a server listening on
// https://localhost:port (a Service of type ExternalName "localhost") and waits until the aggregator
// reports the APIService Available. It can be called again with another port.
func (c *Cluster) RegisterExternalMetrics(ctx context.Context, port int) error {
	kube, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	agg, err := aggregator.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: MetricsServiceNamespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", MetricsServiceNamespace, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: MetricsServiceName, Namespace: MetricsServiceNamespace},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port), TargetPort: intstr.FromInt(port)}},
		},
	}
	services := kube.CoreV1().Services(MetricsServiceNamespace)
	if old, err := services.Get(ctx, svc.Name, metav1.GetOptions{}); err == nil {
		svc.ResourceVersion = old.ResourceVersion
		_, err = services.Update(ctx, svc, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating service %s: %w", svc.Name, err)
		}
	} else if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating service %s: %w", svc.Name, err)
	}

	p := int32(port)
	apiSvc := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: ExternalMetricsAPIService},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:               &apiregistrationv1.ServiceReference{Namespace: MetricsServiceNamespace, Name: MetricsServiceName, Port: &p},
			Group:                 "external.metrics.k8s.io",
			Version:               "v1beta1",
			InsecureSkipTLSVerify: true,
			GroupPriorityMinimum:  100,
			VersionPriority:       100,
		},
	}
	apiServices := agg.ApiregistrationV1().APIServices()
	if old, err := apiServices.Get(ctx, apiSvc.Name, metav1.GetOptions{}); err == nil {
		apiSvc.ResourceVersion = old.ResourceVersion
		if _, err := apiServices.Update(ctx, apiSvc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating APIService: %w", err)
		}
	} else if _, err := apiServices.Create(ctx, apiSvc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating APIService: %w", err)
	}

	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := apiServices.Get(ctx, ExternalMetricsAPIService, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiregistrationv1.Available {
				last = fmt.Sprintf("%s: %s", cond.Reason, cond.Message)
				if cond.Status == apiregistrationv1.ConditionTrue && got.Spec.Service.Port != nil && *got.Spec.Service.Port == p {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("APIService %s not available on port %d: %s: %w", ExternalMetricsAPIService, port, last, err)
	}
	return nil
}
