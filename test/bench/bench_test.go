// Package bench measures the design targets: EC2 calls per lifecycle,
// interruption latency, idle cost and scale. Run with `make bench`.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/bench/curve"
	"github.com/xdrive-io/xdrive/test/bench/managerchild"
	"github.com/xdrive-io/xdrive/test/fakeec2"
	"github.com/xdrive-io/xdrive/test/harness"
)

func TestMain(m *testing.M) {
	harness.Main(m)
}

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

// allReady waits until every Workstation is Ready. It watches them through
// an informer of its own, as the manager does, and counts from its cache:
// listing them from the API server at each poll would take the API
// server's time from the manager (on 2 cores, a list of 5000 Workstations
// every 100 ms is most of it).
func allReady(h *harness.Harness, n int, timeout time.Duration) time.Duration {
	began := time.Now()
	env := harness.Env(h.T)
	watched, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{h.Namespace: {}}})
	if err != nil {
		h.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = watched.Start(ctx) }()
	h.Eventually(timeout, fmt.Sprintf("%d Workstations Ready", n), func() (bool, string) {
		var list v1alpha1.WorkstationList
		if err := watched.List(ctx, &list, client.InNamespace(h.Namespace)); err != nil {
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

// BenchmarkLifecycleEC2Calls counts EC2 calls per lifecycle (launch → Ready
// → stop → snapshot completed → volume deleted), over ten lifecycles at once,
// so that the calls shared by all (the instance poll, the offerings) are
// counted as the operator pays them.
func BenchmarkLifecycleEC2Calls(b *testing.B) {
	n := count("XDRIVE_BENCH_LIFECYCLES", 10)
	h := start(b, operator.Options{PollInterval: time.Minute})
	names := fleet(h, n)
	allReady(h, n, 5*time.Minute)
	for _, name := range names {
		h.SetState(name, v1alpha1.WorkstationStateStopped)
	}
	for i := range n {
		h.Eventually(5*time.Minute, "Archived", h.DriveState(fmt.Sprintf("d-%04d", i), v1alpha1.ReasonArchived))
	}
	total, detail := ec2Calls(h.Proxy.Counts())
	b.ReportMetric(float64(total)/float64(n), "ec2-calls/lifecycle")
	b.Logf("EC2 calls for %d lifecycles: %d, %.1f each (%s)", n, total, float64(total)/float64(n), detail)
}

// BenchmarkInterruptionFlush: 100 Workstations interrupted at once, each
// instance's flush taking a random 20–60 s, four reconciles per controller,
// all on moto. The figure is the time from the notice's send to
// CreateSnapshot, less the instance's own flush time; the target is p99 ≤ 1 s.
func BenchmarkInterruptionFlush(b *testing.B) {
	interruptionBench(b, false, false, false)
}

// BenchmarkInterruptionUnreachable: the same with every SSH call hanging;
// the target is p99 ≤ the flush deadline + 1 s.
func BenchmarkInterruptionUnreachable(b *testing.B) {
	interruptionBench(b, true, false, false)
}

// BenchmarkInterruptionFlushQueued measures the target itself, from each
// notice entering the queue: the notices are sent straight into the SQS
// queue, as EventBridge delivers them, and EC2 is the in-process fake, so
// that moto answers only the queue. The figure is the time from each
// SendMessage's start to CreateSnapshot, less the instance's own flush.
func BenchmarkInterruptionFlushQueued(b *testing.B) {
	interruptionBench(b, false, true, false)
}

// BenchmarkInterruptionUnreachableQueued is BenchmarkInterruptionFlushQueued with every SSH call hanging.
func BenchmarkInterruptionUnreachableQueued(b *testing.B) {
	interruptionBench(b, true, true, false)
}

// BenchmarkInterruptionFlushQueuedBuckets is BenchmarkInterruptionFlushQueued
// with the fake EC2 answering within EC2's documented request buckets
// (cloud.AWSEC2Limits), as an account with nothing else calling EC2 would.
func BenchmarkInterruptionFlushQueuedBuckets(b *testing.B) {
	interruptionBench(b, false, true, true)
}

// BenchmarkInterruptionUnreachableQueuedBuckets is BenchmarkInterruptionUnreachableQueued within EC2's buckets.
func BenchmarkInterruptionUnreachableQueuedBuckets(b *testing.B) {
	interruptionBench(b, true, true, true)
}

// snapshotClock notes when each volume's first CreateSnapshot came.
type snapshotClock struct {
	mu    sync.Mutex
	first map[string]time.Time
}

func (c *snapshotClock) note(volumeID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.first[volumeID]; !seen {
		c.first[volumeID] = time.Now()
	}
}

func (c *snapshotClock) at(volumeID string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.first[volumeID]
	return t, ok
}

// clockedEC2 is the fake EC2, noting each CreateSnapshot on a clock.
type clockedEC2 struct {
	*fakeec2.Fake
	clock *snapshotClock
}

func (c clockedEC2) CreateSnapshot(ctx context.Context, in *ec2.CreateSnapshotInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotOutput, error) {
	c.clock.note(aws.ToString(in.VolumeId))
	return c.Fake.CreateSnapshot(ctx, in, opts...)
}

func interruptionBench(b *testing.B, unreachable, queued, buckets bool) {
	n := count("XDRIVE_BENCH_INTERRUPTIONS", 100)
	deadline := 90 * time.Second
	if unreachable {
		deadline = 20 * time.Second
	}
	var mu sync.Mutex
	received := map[string]time.Time{} // workstation → notice received
	clock := &snapshotClock{first: map[string]time.Time{}}
	cfg := harness.Config{Env: harness.Env(b), Options: operator.Options{
		PollInterval: time.Minute, QueueName: "bench-interruptions", CreateQueue: true, Concurrency: 4,
		QueuePollers: count("XDRIVE_BENCH_QUEUE_POLLERS", 0),
		Timings:      workstation.Timings{FlushTimeout: deadline, IdleRequeue: 30 * time.Second},
		OnNotice: func(ws types.NamespacedName, _ string, _ time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := received[ws.Name]; !ok {
				received[ws.Name] = time.Now()
			}
		},
	}}
	if queued {
		cfg.AWS = func(cluster string) operator.AWS {
			fo := fakeec2.Options{Cluster: cluster, Now: time.Now}
			if buckets {
				fo.Limiter = cloud.NewEC2RateLimiter(cloud.AWSEC2Limits)
			}
			fake := fakeec2.New(fo)
			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(cancel)
			go fake.SettleEvery(ctx, 50*time.Millisecond)
			return operator.AWS{EC2: clockedEC2{Fake: fake, clock: clock}, SSM: fake}
		}
	}
	h := harness.New(b, cfg)
	h.Proxy.OnCall(func(action string, form url.Values) {
		if action == "CreateSnapshot" {
			clock.note(form.Get("VolumeId"))
		}
	})
	h.Start()
	names := fleet(h, n)
	allReady(h, n, 10*time.Minute)

	rng := rand.New(rand.NewPCG(1, 2))
	volumeOfWS, flushOf := map[string]string{}, map[string]time.Duration{}
	flushAt := map[string]time.Duration{} // by instance address
	addrOf := map[string]string{}         // by Workstation, before the notices
	instances := make([]string, 0, n)
	for _, name := range names {
		ws := h.Workstation(name)
		instances = append(instances, ws.Status.InstanceID)
		volumeOfWS[name] = h.Drive(ws.Spec.DriveRef.Name).Status.VolumeID
		flushOf[name] = 20*time.Second + time.Duration(rng.Int64N(int64(40*time.Second)))
		flushAt[ws.Status.PublicIP] = flushOf[name]
		addrOf[name] = ws.Status.PublicIP
	}
	if unreachable {
		h.Agent.SetHung(true)
	} else {
		h.Agent.SetReleaseTime(func(addr string) time.Duration { return flushAt[addr] })
	}
	var sentAt, sendDone, stamped map[string]time.Time
	if queued {
		sentAt, sendDone, stamped = queueSpotWarnings(b, h, "bench-interruptions", instances)
	} else {
		sentAt, sendDone = sendSpotWarnings(b, h, instances)
	}
	snapshotIssued := func(ws string) (time.Time, bool) { return clock.at(volumeOfWS[ws]) }
	h.Eventually(5*time.Minute, "every snapshot issued", func() (bool, string) {
		issued := 0
		for _, ws := range names {
			if _, ok := snapshotIssued(ws); ok {
				issued++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return issued == n, fmt.Sprintf("%d of %d snapshots issued, %d notices", issued, n, len(received))
	})
	mu.Lock()
	defer mu.Unlock()
	var total, over, overFromDone, receipt, overAfterNotice, overStamp, toRelease []time.Duration
	for i, ws := range names {
		if at, _, ok := h.Agent.ReleaseStarted(addrOf[ws]); ok && !unreachable {
			// The preStop hooks start with the release: notice recorded → release call.
			toRelease = append(toRelease, at.Sub(received[ws]))
		}
		sent := sentAt[instances[i]]
		issued, _ := snapshotIssued(ws)
		took := issued.Sub(sent)
		own := flushOf[ws]
		if unreachable {
			own = deadline
		}
		total = append(total, took)
		receipt = append(receipt, received[ws].Sub(sent))
		over = append(over, took-own)
		overFromDone = append(overFromDone, issued.Sub(sendDone[instances[i]])-own)
		overAfterNotice = append(overAfterNotice, issued.Sub(received[ws])-own)
		if at, ok := stamped[instances[i]]; ok {
			overStamp = append(overStamp, issued.Sub(at)-own)
		}
	}
	what := "own flush"
	if unreachable {
		what = "flush deadline"
	}
	b.ReportMetric(pct(over, 0.5).Seconds(), "p50-over-s")
	b.ReportMetric(pct(over, 0.99).Seconds(), "p99-over-s")
	b.ReportMetric(pct(overFromDone, 0.99).Seconds(), "p99-over-from-sent-s")
	b.ReportMetric(pct(total, 0.99).Seconds(), "p99-s")
	b.ReportMetric(pct(receipt, 0.99).Seconds(), "p99-receipt-s")
	b.ReportMetric(pct(overAfterNotice, 0.99).Seconds(), "p99-over-after-notice-s")
	from := "send to EventBridge"
	if queued {
		from = "entering the queue"
	}
	b.Logf("%s → CreateSnapshot for %d Workstations, beyond the %s: p50 %s, p99 %s, max %s (from each send call's start; from its return: p99 %s); total p99 %s; → notice recorded p50 %s, p99 %s; notice recorded → CreateSnapshot beyond the %s: p50 %s, p99 %s",
		from, n, what, pct(over, 0.5), pct(over, 0.99), pct(over, 1), pct(overFromDone, 0.99), pct(total, 0.99), pct(receipt, 0.5), pct(receipt, 0.99),
		what, pct(overAfterNotice, 0.5), pct(overAfterNotice, 0.99))
	if len(toRelease) > 0 {
		// The instance's own part, release → hook started, is BenchmarkPreStopHookStart (internal/bootstrap).
		b.ReportMetric(pct(toRelease, 0.99).Seconds(), "p99-notice-to-release-s")
		b.Logf("notice recorded → release call (the preStop hooks' start, less the instance's part) for %d Workstations: p50 %s, p99 %s, max %s",
			len(toRelease), pct(toRelease, 0.5), pct(toRelease, 0.99), pct(toRelease, 1))
	}
	if len(overStamp) > 0 {
		b.Logf("from the notice's own time (whole seconds) → CreateSnapshot, beyond the %s: p50 %s, p99 %s", what, pct(overStamp, 0.5), pct(overStamp, 0.99))
	}
	var busy []string
	for action, d := range h.Proxy.Durations() {
		if d > time.Second {
			busy = append(busy, fmt.Sprintf("%s=%.0fs", action, d.Seconds()))
		}
	}
	slices.Sort(busy)
	b.Logf("time moto spent answering the operator, summed over concurrent calls, since start: %s", strings.Join(busy, " "))
}

// sendSpotWarnings publishes AWS's spot interruption warning for each
// instance, ten per PutEvents call, all calls at once, and returns when each
// instance's warning started on its way.
func sendSpotWarnings(b *testing.B, h *harness.Harness, instances []string) (sent, done map[string]time.Time) {
	eb := eventbridge.NewFromConfig(h.AWSConfig())
	var mu sync.Mutex
	sent, done = map[string]time.Time{}, map[string]time.Time{}
	var wg sync.WaitGroup
	for batch := range slices.Chunk(instances, 10) {
		wg.Go(func() {
			var entries []ebtypes.PutEventsRequestEntry
			for _, id := range batch {
				entries = append(entries, ebtypes.PutEventsRequestEntry{
					Source: aws.String("aws.ec2"), DetailType: aws.String("EC2 Spot Instance Interruption Warning"),
					Detail: aws.String(fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, id)),
				})
			}
			began := time.Now()
			if _, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: entries}); err != nil {
				b.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range batch {
				sent[id], done[id] = began, time.Now()
			}
		})
	}
	wg.Wait()
	return sent, done
}

// queueSpotWarnings puts AWS's spot interruption warning for each instance
// straight into the queue, as EventBridge delivers it, all at once, and
// returns when each message's SendMessage started.
func queueSpotWarnings(b *testing.B, h *harness.Harness, queue string, instances []string) (sent, done, stamped map[string]time.Time) {
	q := sqs.NewFromConfig(h.AWSConfig())
	url, err := q.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	sent, done, stamped = map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	var wg sync.WaitGroup
	for _, id := range instances {
		wg.Go(func() {
			stamp := time.Now().UTC().Truncate(time.Second) // EventBridge's time has whole seconds
			body := fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2",`+
				`"account":%q,"time":%q,"region":"us-east-1","resources":["arn:aws:ec2:us-east-1:%s:instance/%s"],`+
				`"detail":{"instance-id":%q,"instance-action":"terminate"}}`,
				"bench-"+id, h.Account, stamp.Format(time.RFC3339), h.Account, id, id)
			began := time.Now()
			if _, err := q.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: url.QueueUrl, MessageBody: aws.String(body)}); err != nil {
				b.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			sent[id], done[id], stamped[id] = began, time.Now(), stamp
		})
	}
	wg.Wait()
	return sent, done, stamped
}

// pct returns the q-th quantile (q=1: the largest).
func pct(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkSpecChangeUnreachable: a Stop, then a Start, of a Workstation
// whose SSH calls all hang, to the status showing the new generation and phase.
func BenchmarkSpecChangeUnreachable(b *testing.B) {
	h := start(b, operator.Options{PollInterval: time.Minute,
		Timings: workstation.Timings{StopTimeout: 5 * time.Minute, IdleRequeue: time.Second}})
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(time.Minute, "Ready", h.WorkstationReady("box"))
	h.Agent.SetHung(true)
	time.Sleep(3 * time.Second) // status checks now hang
	var took []time.Duration
	for _, state := range []v1alpha1.WorkstationState{v1alpha1.WorkstationStateStopped, v1alpha1.WorkstationStateRunning} {
		began := time.Now()
		h.SetState("box", state)
		gen := h.Workstation("box").Generation
		h.Eventually(time.Minute, "status shows "+string(state), func() (bool, string) {
			st := h.Workstation("box").Status
			return st.ObservedGeneration >= gen && st.Phase == v1alpha1.WorkstationPhaseReleasing,
				fmt.Sprintf("generation %d, phase %s", st.ObservedGeneration, st.Phase)
		})
		took = append(took, time.Since(began))
	}
	b.ReportMetric(took[0].Seconds(), "stop-s")
	b.ReportMetric(took[1].Seconds(), "start-s")
	b.Logf("spec change to status with SSH hanging: Stop %s, Start %s", took[0], took[1])
}

// BenchmarkIdle measures EC2 calls per second while many objects (half
// drives, half Workstations) sit Ready, and the manager's memory: the
// manager runs in a process of its own, on the fake EC2.
func BenchmarkIdle(b *testing.B) {
	objects := count("XDRIVE_BENCH_IDLE", 2000)
	window := time.Duration(count("XDRIVE_BENCH_IDLE_SECONDS", 120)) * time.Second
	h := harness.New(b, harness.Config{Env: harness.Env(b)})
	manager := startManagerChild(b, h, 30*time.Second, 5*time.Minute)
	fleet(h, objects/2)
	allReady(h, objects/2, 15*time.Minute)
	time.Sleep(30 * time.Second) // let the launch wave's requeues settle
	manager.resetCalls(b)
	time.Sleep(window)
	r := manager.report(b)
	total, detail := ec2Calls(r.Calls)
	b.ReportMetric(float64(total)/window.Seconds(), "ec2-calls/s")
	reportManagerMemory(b, r)
	b.Logf("%d idle objects over %s: %d EC2 calls (%.3f/s): %s; manager RSS %d MiB (peak %d MiB), heap in use %.0f MiB",
		objects, window, total, float64(total)/window.Seconds(), detail, r.RSSKiB>>10, r.PeakRSSKiB>>10, r.HeapInuseMiB)
}

func reportManagerMemory(b *testing.B, r managerchild.Report) {
	b.ReportMetric(float64(r.RSSKiB)/1024, "manager-rss-MiB")
	b.ReportMetric(float64(r.PeakRSSKiB)/1024, "manager-peak-rss-MiB")
	b.ReportMetric(float64(r.RSSAnonKiB)/1024, "manager-rss-anon-MiB")
	b.ReportMetric(r.HeapInuseMiB, "manager-heap-MiB")
}

// BenchmarkScale measures convergence of many objects (half drives, half
// Workstations) on moto, and where the time goes.
func BenchmarkScale(b *testing.B) {
	objects := count("XDRIVE_BENCH_OBJECTS", 1000)
	h := start(b, operator.Options{PollInterval: 30 * time.Second})
	converge(b, h, objects)
	var parts []string
	var inMoto time.Duration
	for action, d := range h.Proxy.Durations() {
		inMoto += d
		parts = append(parts, fmt.Sprintf("%s=%.1fs", action, d.Seconds()))
	}
	slices.Sort(parts)
	b.ReportMetric(inMoto.Seconds(), "moto-busy-s")
	b.Logf("time spent answering AWS calls (summed over concurrent calls) %s: %s", inMoto.Round(time.Second), strings.Join(parts, " "))
}

// BenchmarkScaleFake measures convergence of many objects on the fake EC2:
// the operator's own cost, without moto's. The manager runs in a process of
// its own, so that its memory is measured apart from the benchmark's.
func BenchmarkScaleFake(b *testing.B) {
	objects := count("XDRIVE_BENCH_OBJECTS", 1000)
	h := harness.New(b, harness.Config{Env: harness.Env(b)})
	manager := startManagerChild(b, h, 30*time.Second, 10*time.Second)
	converge(b, h, objects)
	r := manager.report(b)
	reportManagerMemory(b, r)
	total, detail := ec2Calls(r.Calls)
	b.ReportMetric(float64(total), "ec2-calls")
	b.ReportMetric(r.CPUSeconds, "manager-cpu-s")
	b.Logf("manager RSS %d MiB (peak %d MiB), heap in use %.0f MiB; EC2 calls to converge: %d (%s)",
		r.RSSKiB>>10, r.PeakRSSKiB>>10, r.HeapInuseMiB, total, detail)
	reportAPI(b, r.API)
}

// reportAPI reports the manager's API server writes per object and where
// its time waiting on the API server went.
func reportAPI(b *testing.B, api managerchild.Writes) {
	for _, kind := range []string{"workstations", "xdrives"} {
		p := api.PerObject[kind]
		var parts []string
		for k, n := range p.Median {
			parts = append(parts, fmt.Sprintf("%s=%d (max %d)", k, n, p.Max[k]))
		}
		slices.Sort(parts)
		b.ReportMetric(float64(p.MedianAll), kind+"-writes/object")
		b.Logf("%s: %d objects written, median %d writes each (max %d): %s", kind, p.Objects, p.MedianAll, p.MaxAll, strings.Join(parts, ", "))
	}
	var parts []string
	var wait float64
	for k, n := range api.Requests {
		wait += api.WaitSeconds[k]
		parts = append(parts, fmt.Sprintf("%s=%d (%.1fs)", k, n, api.WaitSeconds[k]))
	}
	slices.Sort(parts)
	b.ReportMetric(wait, "api-wait-s")
	b.Logf("API server requests (summed wait %.1fs over concurrent calls): %s", wait, strings.Join(parts, " "))
}

// BenchmarkScaleCurve measures BenchmarkScaleFake's convergence at each
// fleet size of XDRIVE_BENCH_CURVE (objects, comma-separated; default 1000,
// 2000, 5000, 10000), each with a fresh manager process in a namespace of
// its own: the time, the manager's peak RSS, the EC2 calls and the status
// writes per object. It runs when XDRIVE_BENCH_CURVE_DIR names where to
// write scale-curve.json (after each size) and scale-curve.png (at the end):
// make bench-scale writes them to docs/.
func BenchmarkScaleCurve(b *testing.B) {
	dir := os.Getenv("XDRIVE_BENCH_CURVE_DIR")
	if dir == "" {
		b.Skip("the curve takes an hour or more: make bench-scale runs it")
	}
	sizes := []int{1000, 2000, 5000, 10000}
	if v := os.Getenv("XDRIVE_BENCH_CURVE"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				b.Fatalf("XDRIVE_BENCH_CURVE=%q: want sizes of at least 2 objects, comma-separated", v)
			}
			sizes = append(sizes, n)
		}
	}
	var points []curve.Point
	for _, objects := range sizes {
		h := harness.New(b, harness.Config{Env: harness.Env(b)})
		manager := startManagerChild(b, h, 30*time.Second, 10*time.Second)
		took := converge(b, h, objects)
		r := manager.report(b)
		manager.stop()
		total, detail := ec2Calls(r.Calls)
		p := curve.Point{Objects: objects, ConvergeSeconds: took.Seconds(), PeakRSSMiB: float64(r.PeakRSSKiB) / 1024, EC2Calls: total,
			WorkstationStatusWrites: r.API.PerObject["workstations"].Median["PATCH workstations/status"],
			XDriveStatusWrites:      r.API.PerObject["xdrives"].Median["PATCH xdrives/status"], Load: loadAverage()}
		points = append(points, p)
		b.Logf("%d objects: %.1f s, peak RSS %.0f MiB, %d EC2 calls (%s), status writes per Workstation %d, per XDrive %d, load %.1f",
			objects, p.ConvergeSeconds, p.PeakRSSMiB, total, detail, p.WorkstationStatusWrites, p.XDriveStatusWrites, p.Load)
		reportAPI(b, r.API)
		if err := curve.Write(filepath.Join(dir, "scale-curve.json"), points); err != nil {
			b.Fatal(err)
		}
	}
	if err := curve.Draw(filepath.Join(dir, "scale-curve.png"), curve.Caption(points), points); err != nil {
		b.Fatal(err)
	}
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	return f
}

// serverCPUSeconds is the CPU time the API server and etcd (envtest's
// processes, children of this one) have used so far: on a loaded machine
// a steadier measure of the work a fleet costs them than the time.
func serverCPUSeconds() float64 {
	const ticksPerSecond = 100 // USER_HZ
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	ticks := 0.0
	for _, path := range dirs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: the fields after the command's closing parenthesis.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data)[i+1:])
		if len(f) < 13 || f[1] != strconv.Itoa(os.Getpid()) || !strings.Contains(string(data[:i]), "kube-apiserver") && !strings.Contains(string(data[:i]), "etcd") {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		ticks += utime + stime
	}
	return ticks / ticksPerSecond
}

func cpuByProcess() map[string]float64 {
	out := map[string]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		j := strings.IndexByte(string(data), '(')
		f := strings.Fields(string(data)[i+1:])
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		out[string(data[j+1:i])] += (utime + stime) / 100
	}
	return out
}

func converge(b *testing.B, h *harness.Harness, objects int) time.Duration {
	serverCPU := serverCPUSeconds()
	parts := cpuByProcess()
	defer func() {
		after := cpuByProcess()
		for name, t := range after {
			if t-parts[name] > 0.1 {
				b.Logf("CPU %s: %.1f s", name, t-parts[name])
			}
		}
		used := serverCPUSeconds() - serverCPU
		b.ReportMetric(used, "apiserver-etcd-cpu-s")
		b.Logf("the API server and etcd used %.1f s of CPU while %d objects converged", used, objects)
	}()
	profiled := profileAPIServer(b, harness.Env(b).Config, 25)
	began := time.Now()
	fleet(h, objects/2)
	// 15 minutes per thousand objects: a loaded machine is slow, a stuck fleet is not.
	allReady(h, objects/2, time.Duration(max(1, objects/1000))*15*time.Minute)
	took := time.Since(began)
	b.ReportMetric(took.Seconds(), "converge-s")
	b.Logf("%d objects Ready in %s", objects, took)
	<-profiled
	dumpStored(b, harness.Env(b).Config, h.Namespace)
	return took
}
