package interruption

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/go-logr/logr/funcr"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// waitLimit bounds every wait in these tests; hitting it is a failure, not a
// measurement.
const waitLimit = 30 * time.Second

func spotBody(eventID, instanceID string) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2026-03-14T09:26:53Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/%s"],"detail":{"instance-id":%q,"instance-action":"terminate"}}`,
		eventID, instanceID, instanceID)
}

func message(n int, body string) sqstypes.Message {
	return sqstypes.Message{
		MessageId:     aws.String(fmt.Sprintf("msg-%d", n)),
		ReceiptHandle: aws.String(fmt.Sprintf("rh-%d", n)),
		Body:          aws.String(body),
	}
}

// fakeQueue plays a script of receive results, then blocks like a long poll
// on an empty queue until the context ends.
type fakeQueue struct {
	cloud.QueueAPI // unused methods panic

	mu       sync.Mutex
	script   []receiveResult
	asked    []int32 // MaxNumberOfMessages per call
	deleted  []string
	deleteCh chan string
	// batches is the entries of each DeleteMessageBatch; failDelete the receipts whose delete fails.
	batches    []int
	failDelete map[string]bool
	deleteErr  error // every DeleteMessageBatch fails with it
}

type receiveResult struct {
	msgs []sqstypes.Message
	err  error
}

func newFakeQueue(script ...receiveResult) *fakeQueue {
	return &fakeQueue{script: script, deleteCh: make(chan string, 1000)}
}

func (f *fakeQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	f.asked = append(f.asked, in.MaxNumberOfMessages)
	if len(f.script) > 0 {
		step := f.script[0]
		f.script = f.script[1:]
		if n := int(in.MaxNumberOfMessages); len(step.msgs) > n {
			// Like SQS, return no more than asked; keep the rest queued.
			f.script = append([]receiveResult{{msgs: step.msgs[n:]}}, f.script...)
			step.msgs = step.msgs[:n]
		}
		f.mu.Unlock()
		if step.err != nil {
			return nil, step.err
		}
		return &sqs.ReceiveMessageOutput{Messages: step.msgs}, nil
	}
	f.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

// DeleteMessageBatch deletes every entry but those failDelete names, which fail as SQS reports a bad receipt.
func (f *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if n := len(in.Entries); n == 0 || n > maxBatchDelete {
		return nil, fmt.Errorf("DeleteMessageBatch with %d entries", n)
	}
	f.mu.Lock()
	f.batches = append(f.batches, len(in.Entries))
	if f.deleteErr != nil {
		f.mu.Unlock()
		return nil, f.deleteErr
	}
	out := &sqs.DeleteMessageBatchOutput{}
	var deleted []string
	for _, e := range in.Entries {
		rh := aws.ToString(e.ReceiptHandle)
		if f.failDelete[rh] {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		}
		f.deleted = append(f.deleted, rh)
		deleted = append(deleted, rh)
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	f.mu.Unlock()
	for _, rh := range deleted {
		f.deleteCh <- rh
	}
	return out, nil
}

func (f *fakeQueue) deletedHandles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.deleted...)
}

// runUntilStopped runs r and returns a stop function that waits for Run.
func runUntilStopped(t *testing.T, r *Receiver) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitN[T any](t *testing.T, ch <-chan T, n int, what string) []T {
	t.Helper()
	out := make([]T, 0, n)
	deadline := time.After(waitLimit)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline:
			t.Fatalf("got %d of %d %s", len(out), n, what)
		}
	}
	return out
}

func TestReceiverHandlesBatchConcurrently(t *testing.T) {
	const n = 10
	var batch []sqstypes.Message
	for i := range n {
		batch = append(batch, message(i, spotBody(fmt.Sprintf("ev-%d", i), fmt.Sprintf("i-%d", i))))
	}
	q := newFakeQueue(receiveResult{msgs: batch})

	// Every call waits until all n are in flight at once, which can only
	// happen if the batch is handled concurrently.
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	handled := make(chan Event, n)
	h := HandlerFunc(func(ctx context.Context, ev Event) error {
		arrived.Done()
		select {
		case <-all:
		case <-time.After(waitLimit):
			return errors.New("batch not handled concurrently")
		}
		handled <- ev
		return nil
	})
	runUntilStopped(t, &Receiver{QueueAPI: q, QueueURL: "q", Handler: h, Workers: n})

	seen := map[string]bool{}
	for _, ev := range waitN(t, handled, n, "events") {
		seen[ev.InstanceIDs[0]] = true
	}
	if len(seen) != n {
		t.Fatalf("handled instances %v, want %d distinct", seen, n)
	}
	waitN(t, q.deleteCh, n, "deletes")
}

func TestReceiverBoundsWorkers(t *testing.T) {
	const workers = 3
	var script []receiveResult
	id := 0
	for range 4 {
		var batch []sqstypes.Message
		for range workers {
			batch = append(batch, message(id, spotBody(fmt.Sprintf("ev-%d", id), "i-1")))
			id++
		}
		script = append(script, receiveResult{msgs: batch})
	}
	q := newFakeQueue(script...)

	var mu sync.Mutex
	active, peak := 0, 0
	h := HandlerFunc(func(ctx context.Context, ev Event) error {
		mu.Lock()
		active++
		peak = max(peak, active)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		active--
		mu.Unlock()
		return nil
	})
	runUntilStopped(t, &Receiver{QueueAPI: q, QueueURL: "q", Handler: h, Workers: workers})
	waitN(t, q.deleteCh, id, "deletes")

	mu.Lock()
	defer mu.Unlock()
	if peak > workers {
		t.Errorf("%d handlers ran at once, want at most %d", peak, workers)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, a := range q.asked {
		if a < 1 || a > workers {
			t.Errorf("asked for %d messages with %d workers", a, workers)
		}
	}
}

func TestReceiverKeepsGoingAfterErrors(t *testing.T) {
	q := newFakeQueue(
		receiveResult{err: &smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}},
		receiveResult{err: &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.RequestThrottled"}},
		receiveResult{err: &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}},
		receiveResult{err: &smithy.GenericAPIError{Code: "AccessDenied", Fault: smithy.FaultClient}},
		receiveResult{err: errors.New("connection reset")},
		receiveResult{msgs: []sqstypes.Message{message(1, spotBody("ev-1", "i-1"))}},
	)
	handled := make(chan Event, 1)
	r := &Receiver{QueueAPI: q, QueueURL: "q", Handler: HandlerFunc(func(ctx context.Context, ev Event) error {
		handled <- ev
		return nil
	})}
	r.backoffBase, r.backoffMax = time.Millisecond, 5*time.Millisecond
	runUntilStopped(t, r)

	ev := waitN(t, handled, 1, "events")[0]
	if ev.InstanceIDs[0] != "i-1" {
		t.Fatalf("handled %+v", ev)
	}
	waitN(t, q.deleteCh, 1, "deletes")
}

func TestReceiverBackoffGrowsAndCaps(t *testing.T) {
	r := &Receiver{}
	r.backoffBase, r.backoffMax = 100*time.Millisecond, time.Second
	for failures, want := range map[int][2]time.Duration{
		1:   {50 * time.Millisecond, 100 * time.Millisecond},
		3:   {200 * time.Millisecond, 400 * time.Millisecond},
		10:  {500 * time.Millisecond, time.Second},
		100: {500 * time.Millisecond, time.Second},
	} {
		for range 50 {
			if d := r.backoff(failures); d < want[0] || d > want[1] {
				t.Fatalf("backoff(%d) = %v, want in %v", failures, d, want)
			}
		}
	}
}

func TestReceiverDuplicateWhileFirstFails(t *testing.T) {
	// Two copies of one event in a batch; the first handling fails, so the
	// other copy must be handled, and only its message deleted.
	q := newFakeQueue(receiveResult{msgs: []sqstypes.Message{
		message(1, spotBody("ev-dup", "i-1")),
		message(2, spotBody("ev-dup", "i-1")),
	}})
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, ev Event) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			select { // hold the claim so the other copy must wait on it
			case <-release:
			case <-ctx.Done():
			}
			return errors.New("transient")
		}
		return nil
	})
	rec := newRecent(10, time.Minute)
	runUntilStopped(t, &Receiver{QueueAPI: q, QueueURL: "q", Handler: h, recent: rec})

	// Wait until the second copy is waiting on the first's claim.
	deadline := time.Now().Add(waitLimit)
	for rec.waitCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("second copy never waited on the first")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	waitN(t, q.deleteCh, 1, "deletes")

	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("handler called %d times, want 2 (one failure, one success)", calls)
	}
	if d := q.deletedHandles(); len(d) != 1 {
		t.Fatalf("deleted %v, want exactly one copy", d)
	}
}

func TestReceiverRecoversHandlerPanic(t *testing.T) {
	q := newFakeQueue(receiveResult{msgs: []sqstypes.Message{
		message(1, spotBody("ev-panic", "i-1")),
		message(2, spotBody("ev-ok", "i-2")),
	}})
	handled := make(chan string, 2)
	h := HandlerFunc(func(ctx context.Context, ev Event) error {
		if ev.ID == "ev-panic" {
			handled <- ev.ID
			panic("boom")
		}
		handled <- ev.ID
		return nil
	})
	runUntilStopped(t, &Receiver{QueueAPI: q, QueueURL: "q", Handler: h})
	waitN(t, handled, 2, "handler calls")
	if got := waitN(t, q.deleteCh, 1, "deletes"); got[0] != "rh-2" {
		t.Fatalf("deleted %v, want only the message whose handler succeeded", got)
	}
}

func TestReceiverOnEvent(t *testing.T) {
	body := fmt.Sprintf(`{"id":"ev-1","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","time":%q,"detail":{"instance-id":"i-1"}}`,
		time.Now().Add(-time.Second).UTC().Format(time.RFC3339))
	q := newFakeQueue(receiveResult{msgs: []sqstypes.Message{message(1, body)}})
	type obs struct {
		kind    Kind
		latency time.Duration
	}
	got := make(chan obs, 1)
	runUntilStopped(t, &Receiver{
		QueueAPI: q, QueueURL: "q",
		Handler: HandlerFunc(func(ctx context.Context, ev Event) error { return nil }),
		OnEvent: func(k Kind, l time.Duration) { got <- obs{k, l} },
	})
	o := waitN(t, got, 1, "OnEvent calls")[0]
	if o.kind != SpotInterruption || o.latency <= 0 {
		t.Fatalf("OnEvent(%v, %v)", o.kind, o.latency)
	}
}

func TestReceiverNeedsConfig(t *testing.T) {
	if err := (&Receiver{}).Run(context.Background()); err == nil {
		t.Fatal("Run without configuration succeeded")
	}
}

// deleteHandled has n handled messages (msg-i, receipt rh-i) deleted from q
// as the receiver does, and returns what it logged.
func deleteHandled(q *fakeQueue, n int) []string {
	var logged []string
	var mu sync.Mutex
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		logged = append(logged, args)
		mu.Unlock()
	}, funcr.Options{})
	r := &Receiver{QueueAPI: q, QueueURL: "q"}
	p := &pool{log: log, deletes: make(chan finished, n)}
	for i := range n {
		id := fmt.Sprintf("msg-%d", i)
		p.deletes <- finished{log: log.WithValues("messageID", id), messageID: id, receipt: fmt.Sprintf("rh-%d", i)}
	}
	close(p.deletes)
	r.deleteFinished(context.Background(), p) // every call has returned
	return logged
}

// Handled messages waiting together are deleted together, at most 10 a
// call; an entry SQS refuses is logged with its message, and the rest are deleted.
func TestReceiverDeletesInBatches(t *testing.T) {
	q := newFakeQueue()
	q.failDelete = map[string]bool{"rh-3": true}
	logged := deleteHandled(q, 25)

	q.mu.Lock()
	batches, deleted := append([]int(nil), q.batches...), len(q.deleted)
	q.mu.Unlock()
	slices.Sort(batches) // the calls run at once
	if !slices.Equal(batches, []int{5, 10, 10}) || deleted != 24 {
		t.Fatalf("25 handled messages, one refused: calls of %v entries, %d deleted; want 10, 10 and 5, 24 deleted", batches, deleted)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], `"messageID"="msg-3"`) || !strings.Contains(logged[0], "ReceiptHandleIsInvalid") {
		t.Fatalf("logged %q; want one line for msg-3 with SQS's code", logged)
	}
}

// A message handled as the receiver stops is still deleted before Run returns.
func TestReceiverDeletesAfterStop(t *testing.T) {
	q := newFakeQueue(receiveResult{msgs: []sqstypes.Message{message(1, spotBody("ev-1", "i-1"))}})
	started, release := make(chan struct{}), make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, ev Event) error {
		close(started)
		<-release
		return nil
	})
	stop := runUntilStopped(t, &Receiver{QueueAPI: q, QueueURL: "q", Handler: h})
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatal("the handler never started")
	}
	go func() { time.Sleep(10 * time.Millisecond); close(release) }()
	stop()
	if d := q.deletedHandles(); !slices.Equal(d, []string{"rh-1"}) {
		t.Fatalf("deleted %v after Run returned, want rh-1", d)
	}
}

// A DeleteMessageBatch that fails whole is logged once, naming its messages.
func TestReceiverDeleteCallFailureLoggedOnce(t *testing.T) {
	q := newFakeQueue()
	q.deleteErr = errors.New("throttled")
	logged := deleteHandled(q, 3)
	if len(logged) != 1 || !strings.Contains(logged[0], `"messageIDs"=["msg-0" "msg-1" "msg-2"]`) || !strings.Contains(logged[0], "throttled") {
		t.Fatalf("logged %q; want one line naming the three messages and the error", logged)
	}
}
