package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// BenchmarkEbbPodRSS reads the resident memory of ebb's two pods, the leader and the follower, idle (no
// ScaledConsumer) and with 1,000 ScaledConsumers, each on its own Deployment at 0, with a Kafka trigger on
// the dev broker at the default polling interval (5 s). The triggers share the broker the way the Kafka
// scaler benchmark lays it out: 10 topics of 10 partitions and 10 groups that have committed at the end
// of every partition (so nothing wakes), trigger i on group i mod 10 and topic (i / 10) mod 10.
//
// Memory is read from this machine: ebb's process is found by its command line (/ebb run) and its pod by
// the pod UID in its memory cgroup. It reports the process's VmRSS and, of it, RssAnon (/proc/PID/status):
// VmRSS also counts the pages of ebb's binary mapped from the image, which the container's memory cgroup
// does not (containerd read them into the page cache when it unpacked the image). The log also gives the
// container cgroup's rss and usage (memory.stat, memory.usage_in_bytes). Idle is
// read 30 s after the install is Ready; loaded, after every HPA exists and then four polling intervals.
// Run it once:
//
//	make bench BENCH=EbbPodRSS BENCHTIME=1x
func BenchmarkEbbPodRSS(b *testing.B) {
	const n, topics, groups, partitions = 1000, 10, 10, 10
	e := startPodsEnv(b, false)
	ctx := b.Context()
	time.Sleep(30 * time.Second)
	leader := e.leader(b, time.Minute)
	idle := e.ebbMemory(b, leader)

	ns := e.newNamespace(b, "rss")
	e.commitAtEnd(b, ns, topics, groups, partitions)
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = -1, 0 // the setup's own client is not throttled: the time is ebb's
	fast, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			name := fmt.Sprintf("c%04d", i)
			if err := fast.Create(ctx, testenv.Deployment(ns, name, 0)); err != nil {
				return err
			}
			sc := &ebbv1.ScaledConsumer{}
			sc.Name, sc.Namespace = name, ns
			sc.Spec.ScaleTargetRef = ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name}
			sc.Spec.Triggers = []ebbv1.Trigger{{Name: "lag", Type: "kafka", Metadata: map[string]string{
				"bootstrapServers": e.kafka, "consumerGroup": fmt.Sprintf("%s-g%d", ns, i%groups),
				"topic": fmt.Sprintf("%s-t%d", ns, (i/groups)%topics), "lagThreshold": "10",
			}}}
			return fast.Create(ctx, sc)
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		list := &autoscalingv2.HorizontalPodAutoscalerList{}
		if err := fast.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		return len(list.Items) == n, nil
	})
	if err != nil {
		e.dumpEbb(b)
		b.Fatalf("not every HPA exists 5 minutes after the ScaledConsumers: %v", err)
	}
	allHPAs := time.Since(start)
	time.Sleep(4 * 5 * time.Second)
	if l := e.leader(b, time.Minute); l != leader {
		b.Fatalf("the leader changed from %s to %s during the run", leader, l)
	}
	loaded := e.ebbMemory(b, leader)
	woken := 0
	for i := range n {
		if e.replicas(b, ns, fmt.Sprintf("c%04d", i)) > 0 {
			woken++
		}
	}
	if woken > 0 {
		b.Errorf("%d Deployments left 0 with nothing to consume", woken)
	}
	b.StopTimer()

	b.Logf("ScaledConsumers created in %s, every HPA %s after the first", created.Round(100*time.Millisecond), allHPAs.Round(100*time.Millisecond))
	for _, m := range []struct {
		name string
		mem  map[string]podMemory
	}{{"idle", idle}, {"1000", loaded}} {
		for _, role := range []string{"leader", "follower"} {
			pm := m.mem[role]
			b.Logf("%s, %s (pod %s, PID %d): VmRSS %.1f MiB (RssAnon %.1f, RssFile %.1f); container cgroup rss %.1f MiB, usage %.1f MiB",
				m.name, role, pm.pod, pm.pid, mib(pm.vmRSS), mib(pm.rssAnon), mib(pm.rssFile), mib(pm.cgroupRSS), mib(pm.cgroupUsage))
			b.ReportMetric(mib(pm.vmRSS), fmt.Sprintf("%s-%s-rss-MiB", role, m.name))
			b.ReportMetric(mib(pm.rssAnon), fmt.Sprintf("%s-%s-anon-MiB", role, m.name))
		}
	}
	b.ReportMetric(allHPAs.Seconds(), "s-to-all-HPAs")
	b.ReportMetric(0, "ns/op")
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// replicas is a Deployment's spec.replicas.
func (e *podsEnv) replicas(t testing.TB, ns, name string) int32 {
	t.Helper()
	d, err := e.Kube.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// commitAtEnd creates topics of partitions each on the dev broker, named ns-t0..., with 10 records in
// every partition, and commits groups ns-g0... at the end of every partition of every topic.
func (e *podsEnv) commitAtEnd(t testing.TB, ns string, topics, groups, partitions int) {
	t.Helper()
	ctx := t.Context()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(e.kafka, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var names []string
	var recs []*kgo.Record
	for i := range topics {
		name := fmt.Sprintf("%s-t%d", ns, i)
		names = append(names, name)
		for p := range partitions {
			for range 10 {
				recs = append(recs, &kgo.Record{Topic: name, Partition: int32(p), Value: []byte("x")})
			}
		}
	}
	if _, err := adm.CreateTopics(ctx, int32(partitions), 1, nil, names...); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	offsets := ends.Offsets()
	for g := range groups {
		if err := adm.CommitAllOffsets(ctx, fmt.Sprintf("%s-g%d", ns, g), offsets); err != nil {
			t.Fatal(err)
		}
	}
}

// podMemory is the memory of one ebb pod's process, read on this machine.
type podMemory struct {
	pod         string
	pid         int
	vmRSS       int64 // /proc/PID/status VmRSS: RssAnon + RssFile (the mapped binary) + RssShmem
	rssAnon     int64 // /proc/PID/status RssAnon: heap, stacks, the Go runtime's memory
	rssFile     int64 // /proc/PID/status RssFile
	cgroupRSS   int64 // the container's memory cgroup, memory.stat rss
	cgroupUsage int64 // the container's memory cgroup, memory.usage_in_bytes
}

// ebbMemory reads the memory of both ebb pods' processes, by role: "leader" and "follower".
func (e *podsEnv) ebbMemory(t testing.TB, leader string) map[string]podMemory {
	t.Helper()
	pods := e.ebbPods(t)
	procs, err := ebbProcesses()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]podMemory{}
	for _, p := range pods {
		role := "follower"
		if p.Name == leader {
			role = "leader"
		}
		pm, ok := procs[podCgroupName(p)]
		if !ok {
			t.Fatalf("no /ebb run process on this machine in the cgroup of pod %s (found %d ebb processes)", p.Name, len(procs))
		}
		pm.pod = p.Name
		out[role] = pm
	}
	return out
}

// podCgroupName is the pod's cgroup directory under kubepods with the kubelet's cgroupfs driver.
func podCgroupName(p corev1.Pod) string { return "pod" + string(p.UID) }

// ebbProcesses finds the processes on this machine whose command line is /ebb run ..., by the name of
// their pod's cgroup directory (pod<UID>), with their memory.
func ebbProcesses() (map[string]podMemory, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	out := map[string]podMemory{}
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		if len(args) < 2 || string(args[0]) != "/ebb" || string(args[1]) != "run" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		memCgroup, err := cgroupPath(filepath.Join(d, "cgroup"), "memory")
		if err != nil {
			return nil, err
		}
		var pod string
		for _, part := range strings.Split(memCgroup, "/") {
			if strings.HasPrefix(part, "pod") {
				pod = part
			}
		}
		status, err := keyValues(filepath.Join(d, "status"), ":")
		if err != nil {
			return nil, err
		}
		stat, err := keyValues(filepath.Join("/sys/fs/cgroup/memory", memCgroup, "memory.stat"), " ")
		if err != nil {
			return nil, err
		}
		usage, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", memCgroup, "memory.usage_in_bytes"))
		if err != nil {
			return nil, err
		}
		pm := podMemory{pid: pid, vmRSS: parseKB(status["VmRSS"]), rssAnon: parseKB(status["RssAnon"]),
			rssFile: parseKB(status["RssFile"]), cgroupRSS: parseInt(stat["rss"])}
		pm.cgroupUsage = parseInt(strings.TrimSpace(string(usage)))
		out[pod] = pm
	}
	return out, nil
}

// cgroupPath is a process's cgroup path in a cgroup v1 hierarchy (a line of /proc/PID/cgroup).
func cgroupPath(file, controller string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+controller+",") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("%s: no %s cgroup", file, controller)
}

// keyValues reads lines "key<sep>value" into a map, values trimmed.
func keyValues(file, sep string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), sep); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

func parseKB(v string) int64 { return parseInt(strings.TrimSuffix(v, " kB")) * 1024 }

func parseInt(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}
