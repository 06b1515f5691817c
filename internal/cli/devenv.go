//go:build !ebb_nodev

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ebbscale/ebb/hack"
	"github.com/ebbscale/ebb/internal/dev/demo"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/ebbinstall"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/tcprelay"
)

// devFlags are the flags of `ebb dev`.
type devFlags struct {
	kubeconfigOut string
	dir           string
	kafkaListen   string
	// kafkaListenSet: --kafka-listen was given.
	kafkaListenSet bool
	apiPort        int
	verbosity      int

	logFile     string
	demo        bool
	demoBurst   int64
	demoRate    float64
	demoCool    time.Duration
	demoTimeout time.Duration
	demoSVG     string

	// node runs a real node and ebb as pods on it (when this machine can; else it says why and goes on
	// without); imageArchives are loaded on it.
	node          bool
	imageArchives []string
}

// runDev runs the development environment until ctx ends: a control plane with the HPA controller, a
// Kafka-protocol broker, and ebb behind the aggregator. It writes a kubeconfig, prints one ready line on
// out, and stops everything it started before returning. With f.demo it runs the demo (internal/dev/demo)
// once ready and returns when the demo ends.
func runDev(ctx context.Context, f devFlags, out, errOut io.Writer) (err error) {
	// Output piped to a reader that goes away (`ebb dev --demo | head`) must stop ebb dev the way Ctrl-C
	// does, stopping what it started: by default Go dies of SIGPIPE on such a write, which would leave etcd
	// and kube-apiserver running.
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out, errOut = &stopOnEPIPE{w: out, stop: cancel}, &stopOnEPIPE{w: errOut, stop: cancel}
	if f.demo && (f.kafkaListen == "" || f.kafkaListen == "0") {
		return errors.New("--demo needs the Kafka broker: drop --kafka-listen 0")
	}
	var bad []string
	if f.demoBurst <= 0 {
		bad = append(bad, fmt.Sprintf("--demo-burst must be at least 1, got %d", f.demoBurst))
	}
	if !(f.demoRate > 0) || math.IsInf(f.demoRate, 0) {
		bad = append(bad, fmt.Sprintf("--demo-consume-rate must be a number above 0, got %g", f.demoRate))
	}
	if f.kafkaListen != "" && f.kafkaListen != "0" {
		if _, err := devkafka.ParseListen(f.kafkaListen); err != nil {
			bad = append(bad, "--kafka-listen: "+err.Error())
		}
	}
	if f.demoCool < 0 {
		bad = append(bad, fmt.Sprintf("--demo-cooldown must not be negative, got %s", f.demoCool))
	}
	if f.demoTimeout <= 0 {
		bad = append(bad, fmt.Sprintf("--demo-timeout must be above 0, got %s", f.demoTimeout))
	}
	if len(f.imageArchives) > 0 && !f.node {
		bad = append(bad, "--image-archive needs --node")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	if f.demo && !f.kafkaListenSet {
		// The demo points its sample at the broker itself: any free port will do, and 9092 may be taken.
		f.kafkaListen = "127.0.0.1:0"
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	// ebb's own log (controller, metrics API server) goes to a file unless asked for on stderr: it would
	// bury the ready line and the demo's timeline.
	logOut := errOut
	if f.logFile == "" {
		f.logFile = filepath.Join(f.dir, "ebb.log")
	}
	if f.logFile != "-" {
		lf, err := os.OpenFile(f.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("--log-file: %w", err)
		}
		defer func() { _ = lf.Close() }()
		logOut = lf
	}
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(f.verbosity), textlogger.Output(logOut)))
	klog.SetLogger(logger)
	ctrl.SetLogger(logger)

	bin, err := controlPlaneBinaries(ctx, errOut)
	if err != nil {
		return err
	}
	var node *nodeImages
	if f.node {
		if why := devNodeUnsupported(bin); why != nil {
			instead := "ebb runs in this process instead"
			if f.demo {
				instead += ", and the demo simulates its consumers"
			}
			_, _ = fmt.Fprintf(errOut, "ebb dev: no node, so no pods: %v; %s\n", why, instead)
		} else if node, err = buildDevImages(ctx, filepath.Join(f.dir, "images"), f.imageArchives, errOut); err != nil {
			return err
		}
	}
	clusterDir, err := os.MkdirTemp(f.dir, "cluster-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(clusterDir) }()

	opts := localcluster.Options{BinDir: bin, Dir: clusterDir, APIServerPort: f.apiPort, ControllerManager: true}
	if node != nil {
		opts.Node = &localcluster.NodeOptions{SandboxImage: node.refs["pause"], ImageArchives: node.archives}
		_, _ = fmt.Fprintln(errOut, "ebb dev: starting etcd, kube-apiserver, kube-controller-manager and a node (containerd, kubelet, kube-scheduler, kube-proxy)")
	} else {
		_, _ = fmt.Fprintln(errOut, "ebb dev: starting etcd, kube-apiserver and kube-controller-manager")
	}
	cluster, err := localcluster.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if serr := cluster.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stopping the control plane: %w", serr)
		}
	}()

	kafkaAddr := ""
	if f.kafkaListen != "" && f.kafkaListen != "0" {
		port, err := devkafka.ParseListen(f.kafkaListen)
		if err != nil {
			return fmt.Errorf("--kafka-listen: %w", err)
		}
		cfg := devkafka.Config{Port: port}
		if node != nil {
			// Pods reach the node address, not this machine's loopback; this machine reaches both.
			cfg.Host = localcluster.NodeIP.String()
		}
		k, err := devkafka.Start(cfg)
		if err != nil {
			return fmt.Errorf("starting the Kafka broker on %s: %w", f.kafkaListen, err)
		}
		defer k.Close()
		kafkaAddr = strings.Join(k.ListenAddrs(), ",")
	}

	// ebb itself: as pods installed from manifests/ on the node, or the controller and the metrics API
	// server in this process. done reports the in-process ebb's end; it stays nil (never ready) with a node.
	var done chan error
	metricsURL := ""
	if node != nil {
		if err := installDevEbb(ctx, cluster, node, f.dir, errOut); err != nil {
			return err
		}
	} else {
		done = make(chan error, 1)
		var stop func()
		stop, metricsURL, err = runDevEbb(ctx, cluster, clusterDir, done)
		if err != nil {
			return err
		}
		defer func() {
			stop()
			if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
				err = rerr
			}
		}()
	}

	if err := copyFile(cluster.Kubeconfig, f.kubeconfigOut); err != nil {
		return fmt.Errorf("--kubeconfig-out: %w", err)
	}
	var extra []string
	if node != nil {
		extra = append(extra, fmt.Sprintf("ebb runs as 2 pods in %s from manifests/ with image %s", ebbinstall.Namespace, node.refs["ebb"]))
	}
	switch {
	case kafkaAddr != "" && node != nil:
		extra = append(extra, "Kafka at "+kafkaAddr+" for pods and this machine")
	case kafkaAddr != "":
		extra = append(extra, "Kafka at "+kafkaAddr)
	}
	// RabbitMQ is not ebb dev's to start or stop (it is a system service, often shared); ebb dev says
	// whether triggers can use it, and relays it to the node address for pods.
	if conn, derr := net.DialTimeout("tcp", "127.0.0.1:5672", 200*time.Millisecond); derr == nil {
		_ = conn.Close()
		if node != nil {
			relay, err := tcprelay.Start(net.JoinHostPort(localcluster.NodeIP.String(), "5672"), "127.0.0.1:5672")
			if err != nil {
				return fmt.Errorf("relaying RabbitMQ to the node address: %w", err)
			}
			defer func() { _ = relay.Close() }()
			extra = append(extra, "RabbitMQ at 127.0.0.1:5672, and for pods at "+relay.Addr())
		} else {
			extra = append(extra, "RabbitMQ at 127.0.0.1:5672")
		}
	} else if _, lerr := exec.LookPath("rabbitmq-server"); lerr == nil {
		extra = append(extra, "RabbitMQ installed but not running: start it with rabbitmq-server -detached")
	}
	switch {
	case node != nil:
		extra = append(extra, "ebb's log: kubectl logs -n "+ebbinstall.Namespace+" deploy/"+ebbinstall.Deployment)
	case f.logFile != "-":
		extra = append(extra, "ebb's log in "+f.logFile)
	}
	if metricsURL != "" {
		extra = append(extra, "ebb's metrics at "+metricsURL)
	}
	_, _ = fmt.Fprintf(out, "ebb dev: ready: kubectl --kubeconfig %s get scaledconsumers,hpa,deployments -A (%s; Ctrl-C stops everything)\n",
		f.kubeconfigOut, strings.Join(extra, ", "))

	if f.demo {
		svg, aerr := filepath.Abs(f.demoSVG)
		if aerr != nil {
			return aerr
		}
		demoCtx, demoCancel := context.WithCancel(ctx)
		defer demoCancel()
		demoDone := make(chan error, 1)
		cfg := demo.Config{
			Kube: cluster.Config, Brokers: strings.Split(kafkaAddr, ","), Out: out, Burst: f.demoBurst,
			ConsumeRate: f.demoRate, Cooldown: f.demoCool, Timeout: f.demoTimeout, SVG: svg,
		}
		if node != nil {
			cfg.ConsumerImage = node.refs["consumer"] // the consumers run as pods
		}
		go func() {
			_, derr := demo.Run(demoCtx, cfg)
			demoDone <- derr
		}()
		select {
		case derr := <-demoDone:
			if ctx.Err() != nil {
				_, _ = fmt.Fprintln(errOut, "ebb dev: stopping")
				return nil
			}
			if derr != nil {
				return derr
			}
			_, _ = fmt.Fprintln(errOut, "ebb dev: demo done; stopping")
			return nil
		case rerr := <-done:
			done <- rerr // for the deferred stop
			demoCancel()
			if derr := <-demoDone; derr != nil {
				_, _ = fmt.Fprintf(errOut, "ebb dev: %v\n", derr)
			}
			return fmt.Errorf("ebb stopped during the demo: %w", rerr)
		}
	}

	select {
	case <-ctx.Done():
		_, _ = fmt.Fprintln(errOut, "ebb dev: stopping")
		return nil
	case rerr := <-done:
		done <- rerr // for the deferred stop
		return fmt.Errorf("ebb stopped: %w", rerr)
	}
}

// controlPlaneBinaries finds the cached control-plane binaries, building them with the embedded install
// script (and its progress line) when they are missing.
func controlPlaneBinaries(ctx context.Context, errOut io.Writer) (string, error) {
	bin, err := localcluster.FindBinaries()
	if err == nil {
		return bin, nil
	}
	if !errors.Is(err, localcluster.ErrBinariesMissing) {
		return "", err
	}
	dir, err := os.MkdirTemp("", "ebb-hack-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	for _, name := range []string{"install-control-plane.sh", "lib.sh"} {
		b, err := hack.Scripts.ReadFile(name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(dir, "install-control-plane.sh"))
	cmd.Stderr = errOut
	outb, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building the control-plane binaries (needs Go and the module proxy): %w", err)
	}
	return strings.TrimSpace(string(outb)), nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newDevCommandWithEnv() *cobra.Command {
	f := devFlags{}
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Run a development environment on this machine: control plane, Kafka broker and ebb",
		Long: `Run everything a newcomer needs on one machine, with no cluster and no internet: etcd, kube-apiserver
and kube-controller-manager (the HPA, garbage-collector, namespace and service-account controllers) from
the project's cached binaries (built on first use), an in-memory Kafka-protocol broker, and ebb's
controller and external metrics API behind the aggregator. It writes a kubeconfig, prints one line when
ready (with where ebb's log and its Prometheus metrics are), and stops everything it started on Ctrl-C.

With --node (as root, in a checkout of ebb) it also runs a real node and ebb on it as pods.

With --demo (make demo runs --demo --node) it then applies the sample consumer and ScaledConsumer of
manifests/samples/kafka.yaml, produces a burst with ebb's load generator, prints a timeline from 0
replicas up and back to 0, writes it as an SVG, and stops everything. With a node the consumers are pods
of the example consumer (examples/consumer); without one, the demo simulates one consumer per replica.`,
		Example: `  ebb dev
  kubectl --kubeconfig .ebb-dev/kubeconfig apply -f manifests/samples/kafka.yaml
  ebb load kafka --topic orders --partitions 8 --burst 2000
  kubectl --kubeconfig .ebb-dev/kubeconfig get scaledconsumers,hpa,deployments -A

  ebb dev --demo --node --demo-burst 8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.kafkaListenSet = cmd.Flags().Changed("kafka-listen")
			return runDev(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	dev.Flags().StringVar(&f.kubeconfigOut, "kubeconfig-out", filepath.Join(".ebb-dev", "kubeconfig"), "Where to write the kubeconfig of the development cluster")
	dev.Flags().StringVar(&f.dir, "dir", ".ebb-dev", "Working directory for the control plane's certificates, data and logs (a subdirectory is removed on exit)")
	dev.Flags().StringVar(&f.kafkaListen, "kafka-listen", "127.0.0.1:9092", `Address of the Kafka-protocol broker ("0": none; with --demo, a free port unless given)`)
	dev.Flags().IntVar(&f.apiPort, "apiserver-port", 0, "kube-apiserver's port, on 127.0.0.1 (on the node address with --node; 0: a free port)")
	dev.Flags().IntVarP(&f.verbosity, "v", "v", 0, "Log verbosity")
	dev.Flags().StringVar(&f.logFile, "log-file", "", `Where ebb's own log goes (default: ebb.log in --dir; "-": stderr); the control plane's logs are in --dir too`)
	dev.Flags().BoolVar(&f.demo, "demo", false, "Run the demo once ready (apply manifests/samples/kafka.yaml, produce a burst, print the timeline from 0 replicas up and back to 0, draw it as an SVG), then stop everything")
	dev.Flags().Int64Var(&f.demoBurst, "demo-burst", 4000, "With --demo: messages in the burst")
	dev.Flags().Float64Var(&f.demoRate, "demo-consume-rate", 20, "With --demo: messages per second each consumer (a pod with --node, else simulated, one per replica) consumes")
	dev.Flags().DurationVar(&f.demoCool, "demo-cooldown", 0, "With --demo: the ScaledConsumer's cooldownPeriod (0: the sample's, 15s)")
	dev.Flags().DurationVar(&f.demoTimeout, "demo-timeout", 10*time.Minute, "With --demo: give up when the loop is not back at 0 by then")
	dev.Flags().StringVar(&f.demoSVG, "demo-svg", filepath.Join(".ebb-dev", "demo-timeline.svg"), "With --demo: where to write the timeline's picture")
	dev.Flags().BoolVar(&f.node, "node", false, "Also run a real node (containerd, kubelet, kube-scheduler, kube-proxy; needs root and a checkout of ebb) and run ebb on it as pods installed from manifests/ with an image built from source, instead of in this process; the Kafka broker then listens on the node address, which pods and this machine both reach. Without root it says why and goes on without a node")
	dev.Flags().StringArrayVar(&f.imageArchives, "image-archive", nil, "With --node: an image archive (docker save or OCI) to load on the node, e.g. your consumer's; repeatable. Pods run it with imagePullPolicy Never or IfNotPresent")
	dev.AddCommand(newDevKafkaCommand())
	return dev
}

// stopOnEPIPE writes to w, and calls stop when the reader of w has gone (EPIPE).
type stopOnEPIPE struct {
	w    io.Writer
	stop context.CancelFunc
}

func (s *stopOnEPIPE) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		s.stop()
	}
	return n, err
}
