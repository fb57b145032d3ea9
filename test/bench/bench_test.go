// Package bench measures the design targets: EC2 calls per lifecycle,
// interruption latency, idle cost and scale. Run with `make bench`.
package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

func count(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func start(b *testing.B, opts operator.Options) *harness.Harness {
	h := harness.New(b, harness.Config{Env: harness.Env(b), Options: opts})
	h.Start()
	return h
}

// fleet creates n drives and n Workstations spread over three zones.
func fleet(h *harness.Harness, n int) []string {
	names := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		names[i] = fmt.Sprintf("ws-%04d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h.Create(h.NewDrive(fmt.Sprintf("d-%04d", i), 10),
				h.NewWorkstation(names[i], fmt.Sprintf("d-%04d", i), []string{"t3.large"}, "us-east-1a", "us-east-1b", "us-east-1c"))
		}()
	}
	wg.Wait()
	return names
}

// allReady waits until every Workstation is Ready, listing them in one call per poll.
func allReady(h *harness.Harness, n int, timeout time.Duration) time.Duration {
	began := time.Now()
	h.Eventually(timeout, fmt.Sprintf("%d Workstations Ready", n), func() (bool, string) {
		var list v1alpha1.WorkstationList
		if err := h.Client.List(context.Background(), &list, client.InNamespace(h.Namespace)); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, ws := range list.Items {
			if meta.IsStatusConditionTrue(ws.Status.Conditions, v1alpha1.ConditionReady) {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d of %d Ready", ready, n)
	})
	return time.Since(began)
}

func ec2Calls(counts map[string]int) (int, string) {
	total := 0
	var parts []string
	for action, n := range counts {
		if strings.Contains(action, ".") || action == "GetParameter" || strings.HasSuffix(action, "Message") ||
			strings.Contains(action, "Queue") || strings.Contains(action, "Rule") || action == "PutTargets" || action == "PutEvents" {
			continue
		}
		total += n
		parts = append(parts, fmt.Sprintf("%s=%d", action, n))
	}
	slices.Sort(parts)
	return total, strings.Join(parts, " ")
}

// BenchmarkLifecycleEC2Calls counts EC2 calls for launch → Ready → stop → snapshot completed → volume deleted.
func BenchmarkLifecycleEC2Calls(b *testing.B) {
	h := start(b, operator.Options{PollInterval: time.Minute})
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(time.Minute, "Ready", h.WorkstationReady("box"))
	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.State = v1alpha1.WorkstationStateStopped })
	h.Eventually(time.Minute, "Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	total, detail := ec2Calls(h.Proxy.Counts())
	b.ReportMetric(float64(total), "ec2-calls/lifecycle")
	b.Logf("EC2 calls for one lifecycle: %d (%s)", total, detail)
}

// BenchmarkInterruption measures notice received → CreateSnapshot issued, for many Workstations at once.
func BenchmarkInterruption(b *testing.B) {
	n := count("XDRIVE_BENCH_INTERRUPTIONS", 100)
	var mu sync.Mutex
	noticed := map[string]time.Time{} // workstation → notice received
	h := start(b, operator.Options{
		PollInterval: time.Minute, QueueName: "bench-interruptions", CreateQueue: true,
		OnNotice: func(ws types.NamespacedName, _ string, _ time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := noticed[ws.Name]; !ok {
				noticed[ws.Name] = time.Now()
			}
		},
	})
	names := fleet(h, n)
	allReady(h, n, 10*time.Minute)

	volumeOf := map[string]string{}
	instances := make([]string, 0, n)
	for _, name := range names {
		ws := h.Workstation(name)
		instances = append(instances, ws.Status.InstanceID)
		volumeOf[h.Drive(ws.Spec.DriveRef.Name).Status.VolumeID] = name
	}
	snapshotIssued := map[string]time.Time{}
	h.Proxy.OnCall(func(action string, form url.Values) {
		if action != "CreateSnapshot" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ws, ok := volumeOf[form.Get("VolumeId")]; ok {
			if _, seen := snapshotIssued[ws]; !seen {
				snapshotIssued[ws] = time.Now()
			}
		}
	})
	eb := eventbridge.NewFromConfig(h.AWSConfig())
	for batch := range slices.Chunk(instances, 10) {
		var entries []ebtypes.PutEventsRequestEntry
		for _, id := range batch {
			entries = append(entries, ebtypes.PutEventsRequestEntry{
				Source: aws.String("aws.ec2"), DetailType: aws.String("EC2 Spot Instance Interruption Warning"),
				Detail: aws.String(fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, id)),
			})
		}
		if _, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: entries}); err != nil {
			b.Fatal(err)
		}
	}
	h.Eventually(5*time.Minute, "every snapshot issued", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(snapshotIssued) == n, fmt.Sprintf("%d of %d snapshots issued, %d notices", len(snapshotIssued), n, len(noticed))
	})
	mu.Lock()
	var lat []time.Duration
	for ws, at := range snapshotIssued {
		lat = append(lat, at.Sub(noticed[ws]))
	}
	mu.Unlock()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(p(0.5).Seconds(), "p50-s")
	b.ReportMetric(p(0.99).Seconds(), "p99-s")
	b.ReportMetric(lat[len(lat)-1].Seconds(), "max-s")
	b.Logf("notice → CreateSnapshot for %d Workstations: p50 %s, p99 %s, max %s", n, p(0.5), p(0.99), lat[len(lat)-1])
}

// BenchmarkIdle measures EC2 calls per second while many Workstations sit Ready.
func BenchmarkIdle(b *testing.B) {
	n := count("XDRIVE_BENCH_IDLE", 500)
	window := time.Duration(count("XDRIVE_BENCH_IDLE_SECONDS", 60)) * time.Second
	h := start(b, operator.Options{PollInterval: 30 * time.Second})
	fleet(h, n)
	allReady(h, n, 15*time.Minute)
	time.Sleep(15 * time.Second) // let the launch wave's requeues settle
	h.Proxy.ResetCounts()
	time.Sleep(window)
	total, detail := ec2Calls(h.Proxy.Counts())
	b.ReportMetric(float64(total)/window.Seconds(), "ec2-calls/s")
	b.Logf("%d idle Workstations over %s: %d EC2 calls (%.3f/s): %s", n, window, total, float64(total)/window.Seconds(), detail)
}

// BenchmarkScale measures convergence of many objects (half drives, half Workstations) and memory.
func BenchmarkScale(b *testing.B) {
	objects := count("XDRIVE_BENCH_OBJECTS", 1000)
	h := start(b, operator.Options{PollInterval: 30 * time.Second})
	began := time.Now()
	fleet(h, objects/2)
	allReady(h, objects/2, 15*time.Minute)
	took := time.Since(began)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(took.Seconds(), "converge-s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rssKiB())/1024, "process-rss-MiB")
	b.Logf("%d objects Ready in %s; heap in use %d MiB; RSS of the whole test process (operator, envtest clients, harness) %d MiB",
		objects, took, ms.HeapInuse>>20, rssKiB()>>10)
}

func rssKiB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
