package interruption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

type awsClients struct {
	sqs     *sqs.Client
	events  *eventbridge.Client
	account string
}

// newClients returns clients for a fresh moto account.
func newClients(t *testing.T) awsClients {
	t.Helper()
	srv := moto.Shared(t)
	account := moto.NewAccount()
	cfg := moto.Config(srv.URL, account)
	return awsClients{sqs: sqs.NewFromConfig(cfg), events: eventbridge.NewFromConfig(cfg), account: account}
}

// setupQueue creates the queue and rules as the operator would.
func setupQueue(t *testing.T, c awsClients) string {
	t.Helper()
	url, err := EnsureQueue(context.Background(), c.sqs, c.events, Options{
		QueueName: "xdrive-interruptions", Create: true, ClusterName: "test-cluster",
	})
	if err != nil {
		t.Fatalf("EnsureQueue: %v", err)
	}
	return url
}

// deleteCounter reports each message a DeleteMessageBatch deleted.
type deleteCounter struct {
	cloud.QueueAPI
	deleted chan string
}

func countDeletes(q cloud.QueueAPI) *deleteCounter {
	return &deleteCounter{QueueAPI: q, deleted: make(chan string, 1000)}
}

func (d *deleteCounter) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out, err := d.QueueAPI.DeleteMessageBatch(ctx, in, opts...)
	if err == nil {
		for _, ok := range out.Successful {
			for _, e := range in.Entries {
				if aws.ToString(e.Id) == aws.ToString(ok.Id) {
					d.deleted <- aws.ToString(e.ReceiptHandle)
				}
			}
		}
	}
	return out, err
}

// recorder is a Handler that records events and can fail on demand.
type recorder struct {
	mu     sync.Mutex
	events []Event
	fail   func(ev Event, call int) error
	ch     chan Event
}

func newRecorder() *recorder { return &recorder{ch: make(chan Event, 1000)} }

func (h *recorder) Handle(ctx context.Context, ev Event) error {
	h.mu.Lock()
	h.events = append(h.events, ev)
	call := len(h.events)
	h.mu.Unlock()
	h.ch <- ev
	if h.fail != nil {
		return h.fail(ev, call)
	}
	return nil
}

func (h *recorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// queueDepth counts visible and in-flight messages.
func queueDepth(t *testing.T, c awsClients, url string) int {
	t.Helper()
	out, err := c.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	} {
		v, err := strconv.Atoi(out.Attributes[string(k)])
		if err != nil {
			t.Fatalf("%s = %q", k, out.Attributes[string(k)])
		}
		n += v
	}
	return n
}

// receive runs a Receiver with handler h on a fresh queue whose deletes are
// counted; stop ends it, as the end of the test does.
func receive(t *testing.T, c awsClients, h Handler, visibility time.Duration) (url string, q *deleteCounter, stop func()) {
	t.Helper()
	url, q = setupQueue(t, c), countDeletes(c.sqs)
	return url, q, runUntilStopped(t, &Receiver{QueueAPI: q, QueueURL: url, Handler: h, VisibilityTimeout: visibility})
}

// stopDrained stops the receiver and fails the test if messages are left on the queue.
func stopDrained(t *testing.T, stop func(), c awsClients, url string) {
	t.Helper()
	stop()
	if n := queueDepth(t, c, url); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}

func send(t *testing.T, c awsClients, url, body string) {
	t.Helper()
	if _, err := c.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(url), MessageBody: aws.String(body),
	}); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureQueueCreates(t *testing.T) {
	c := newClients(t)
	ctx := context.Background()
	opts := Options{QueueName: "xdrive-interruptions", Create: true, ClusterName: "prod-1"}

	url, err := EnsureQueue(ctx, c.sqs, c.events, opts)
	if err != nil {
		t.Fatalf("EnsureQueue: %v", err)
	}
	again, err := EnsureQueue(ctx, c.sqs, c.events, opts)
	if err != nil || again != url {
		t.Fatalf("second EnsureQueue = %q, %v; want %q", again, err, url)
	}

	attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := attrs.Attributes
	if a["MessageRetentionPeriod"] != "300" || a["SqsManagedSseEnabled"] != "true" {
		t.Errorf("queue attributes %v", a)
	}
	var policy struct {
		Statement []struct {
			Effect    string
			Principal struct{ Service string }
			Action    string
			Resource  string
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal([]byte(a["Policy"]), &policy); err != nil || len(policy.Statement) != 1 {
		t.Fatalf("policy %q: %v", a["Policy"], err)
	}
	st := policy.Statement[0]
	if st.Effect != "Allow" || st.Principal.Service != "events.amazonaws.com" || st.Action != "sqs:SendMessage" || st.Resource != a["QueueArn"] {
		t.Errorf("policy statement %+v", st)
	}
	sources := st.Condition["ArnEquals"]["aws:SourceArn"]

	tags, err := c.sqs.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
	if err != nil || tags.Tags[cloud.TagCluster] != "prod-1" {
		t.Errorf("queue tags %v, %v", tags, err)
	}

	listed, err := c.events.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String("xdrive-interruptions-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.Rules) != len(rules) {
		t.Fatalf("%d rules, want %d", len(listed.Rules), len(rules))
	}
	for _, rl := range listed.Rules {
		if rl.State != ebtypes.RuleStateEnabled || !slices.Contains(sources, aws.ToString(rl.Arn)) {
			t.Errorf("rule %s: state %s, policy allows it: %v", aws.ToString(rl.Name), rl.State, slices.Contains(sources, aws.ToString(rl.Arn)))
		}
		targets, err := c.events.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: rl.Name})
		if err != nil || len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != a["QueueArn"] {
			t.Errorf("rule %s targets %+v, %v", aws.ToString(rl.Name), targets, err)
		}
		rt, err := c.events.ListTagsForResource(ctx, &eventbridge.ListTagsForResourceInput{ResourceARN: rl.Arn})
		if err != nil || len(rt.Tags) != 1 || aws.ToString(rt.Tags[0].Key) != cloud.TagCluster || aws.ToString(rt.Tags[0].Value) != "prod-1" {
			t.Errorf("rule %s tags %+v, %v", aws.ToString(rl.Name), rt, err)
		}
	}

	found, err := EnsureQueue(ctx, c.sqs, nil, Options{QueueName: "xdrive-interruptions"})
	if err != nil || found != url {
		t.Errorf("lookup = %q, %v; want %q", found, err, url)
	}
}

// createErrors remembers the last CreateQueue error.
type createErrors struct {
	cloud.QueueAPI
	err error
}

func (q *createErrors) CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, opts ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	out, err := q.QueueAPI.CreateQueue(ctx, in, opts...)
	q.err = err
	return out, err
}

func TestEnsureQueueFixesDrift(t *testing.T) {
	c := newClients(t)
	ctx := context.Background()
	if _, err := c.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String("xdrive-interruptions"),
		Attributes: map[string]string{"MessageRetentionPeriod": "600"},
	}); err != nil {
		t.Fatal(err)
	}
	q := &createErrors{QueueAPI: c.sqs}
	url, err := EnsureQueue(ctx, q, c.events, Options{QueueName: "xdrive-interruptions", Create: true, ClusterName: "c"})
	if err != nil {
		t.Fatalf("EnsureQueue: %v", err)
	}
	var exists *sqstypes.QueueNameExists
	if !errors.As(q.err, &exists) {
		t.Fatalf("CreateQueue over a differing queue gave %v, want QueueNameExists", q.err)
	}
	attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameMessageRetentionPeriod},
	})
	if err != nil || attrs.Attributes["MessageRetentionPeriod"] != "300" {
		t.Fatalf("retention %v, %v; want 300", attrs, err)
	}
}

func TestEnsureQueueLookupMissing(t *testing.T) {
	c := newClients(t)
	_, err := EnsureQueue(context.Background(), c.sqs, c.events, Options{QueueName: "no-such-queue"})
	if !cloud.IsNotFound(err) {
		t.Fatalf("EnsureQueue of a missing queue = %v (code %q), want NotFound", err, cloud.ErrorCode(err))
	}
}

func TestEnsureQueueValidates(t *testing.T) {
	for _, o := range []Options{{}, {QueueName: "q", Create: true}} {
		if _, err := EnsureQueue(context.Background(), nil, nil, o); err == nil {
			t.Errorf("EnsureQueue(%+v) succeeded", o)
		}
	}
}

func TestEventBridgeToHandler(t *testing.T) {
	c := newClients(t)
	ctx := context.Background()
	url := setupQueue(t, c)

	// The state-change rule only passes instances going away.
	running, _ := json.Marshal(map[string]string{"instance-id": "i-0aaaaaaaaaaaaaaa1", "state": "running"})
	put, err := c.events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source: aws.String(SourceEC2), DetailType: aws.String(DetailTypeStateChange), Detail: aws.String(string(running)),
	}}})
	if err != nil || put.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v, %v", put, err)
	}
	if n := queueDepth(t, c, url); n != 0 {
		t.Fatalf("a running state change reached the queue (%d messages)", n)
	}

	h := newRecorder()
	runUntilStopped(t, &Receiver{QueueAPI: c.sqs, QueueURL: url, Handler: h})

	detail, _ := json.Marshal(map[string]string{"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"})
	put, err = c.events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source:     aws.String(SourceEC2),
		DetailType: aws.String(DetailTypeSpotInterruption),
		Detail:     aws.String(string(detail)),
		Resources:  []string{"arn:aws:ec2:us-east-1:" + c.account + ":instance/i-0123456789abcdef0"},
	}}})
	if err != nil || put.FailedEntryCount != 0 || len(put.Entries) != 1 {
		t.Fatalf("PutEvents: %+v, %v", put, err)
	}
	ev := waitN(t, h.ch, 1, "events")[0]
	if ev.Kind != SpotInterruption || !slices.Equal(ev.InstanceIDs, []string{"i-0123456789abcdef0"}) ||
		ev.Action != "terminate" || ev.Region != moto.Region || ev.Time.IsZero() {
		t.Fatalf("event %+v", ev)
	}
	if ev.ID != aws.ToString(put.Entries[0].EventId) {
		t.Errorf("event ID %q, PutEvents gave %q", ev.ID, aws.ToString(put.Entries[0].EventId))
	}
	if ev.Account != "" && ev.Account != c.account {
		t.Errorf("account %q, want %q or none", ev.Account, c.account)
	}
	t.Logf("moto delivered account %q", ev.Account)

	// The full event, as AWS delivers it, sent straight to the queue.
	send(t, c, url, string(readSample(t, "spot_interruption.json")))
	ev = waitN(t, h.ch, 1, "events")[0]
	if ev.Kind != SpotInterruption || ev.InstanceIDs[0] != "i-1234567890abcdef0" || ev.Account != "123456789012" {
		t.Fatalf("event %+v", ev)
	}
}

func TestMessageDeletedAfterSuccess(t *testing.T) {
	c, h := newClients(t), newRecorder()
	url, q, stop := receive(t, c, h, time.Second)

	send(t, c, url, spotBody("ev-ok", "i-0000000000000000a"))
	waitN(t, h.ch, 1, "events")
	waitN(t, q.deleted, 1, "deletes")
	stopDrained(t, stop, c, url)
}

func TestMessageRedeliveredAfterHandlerError(t *testing.T) {
	c, h := newClients(t), newRecorder()
	h.fail = func(ev Event, call int) error {
		if call == 1 {
			return fmt.Errorf("workstation store unavailable")
		}
		return nil
	}
	url, q, stop := receive(t, c, h, time.Second)

	send(t, c, url, spotBody("ev-retry", "i-0000000000000000b"))
	got := waitN(t, h.ch, 2, "deliveries")
	if got[0].ID != "ev-retry" || got[1].ID != "ev-retry" {
		t.Fatalf("deliveries %+v", got)
	}
	waitN(t, q.deleted, 1, "deletes")
	stopDrained(t, stop, c, url)
	if n := h.count(); n != 2 {
		t.Errorf("handler called %d times, want 2", n)
	}
}

func TestDuplicateEventHandledOnce(t *testing.T) {
	c, h := newClients(t), newRecorder()
	url, q, stop := receive(t, c, h, time.Second)

	body := spotBody("ev-dup", "i-0000000000000000c")
	send(t, c, url, body)
	send(t, c, url, body)
	waitN(t, q.deleted, 2, "deletes")
	stopDrained(t, stop, c, url)
	if n := h.count(); n != 1 {
		t.Fatalf("handler called %d times for one event, want 1", n)
	}
}

func TestIgnoredMessagesDeleted(t *testing.T) {
	c := newClients(t)
	acted := make(chan string, 10)
	known := "i-0000000000000000d"
	h := HandlerFunc(func(ctx context.Context, ev Event) error {
		for _, id := range ev.InstanceIDs {
			if id == known {
				acted <- id
			}
		}
		return nil // unknown instances: not ours, nothing to do
	})
	url, q, stop := receive(t, c, h, time.Second)

	send(t, c, url, string(readSample(t, "unknown_ami_state.json")))
	send(t, c, url, "this is not an event")
	send(t, c, url, spotBody("ev-unknown-instance", "i-0ffffffffffffffff"))
	send(t, c, url, spotBody("ev-known-instance", known))
	waitN(t, q.deleted, 4, "deletes")
	stopDrained(t, stop, c, url)
	if got := waitN(t, acted, 1, "actions"); got[0] != known || len(acted) != 0 {
		t.Fatalf("acted on %v and %d more", got, len(acted))
	}
}

func TestHundredInterruptions(t *testing.T) {
	c := newClients(t)
	ctx := context.Background()
	h := newRecorder()
	// Hidden long enough that a slow moto (on a loaded machine, deleting
	// a hundred messages can take past the queue's 30 s) never delivers a
	// message again for its timeout. Two pollers can still receive one
	// message at once (moto, like SQS, delivers at least once): the copy
	// is a duplicate, deleted unhandled.
	url, q, stop := receive(t, c, h, 10*time.Minute)

	const batches, perBatch = 10, 10
	instanceOf := map[string]string{}
	start := time.Now()
	for b := range batches {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i := range perBatch {
			n := b*perBatch + i
			id, instance := fmt.Sprintf("ev-%03d", n), fmt.Sprintf("i-%017x", n)
			instanceOf[id] = instance
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(n)),
				MessageBody: aws.String(spotBody(id, instance)),
			})
		}
		out, err := c.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil || len(out.Failed) != 0 {
			t.Fatalf("SendMessageBatch: %+v, %v", out, err)
		}
	}
	got := waitN(t, h.ch, batches*perBatch, "events")
	t.Logf("all %d events reached the handler %v after the first send", len(got), time.Since(start))
	waitN(t, q.deleted, batches*perBatch, "deletes")
	// Drained while the receiver runs: a duplicate received at the end is
	// deleted too, not left in flight by the stop.
	deadline := time.Now().Add(waitLimit)
	for queueDepth(t, c, url) != 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if n := len(q.deleted); n != 0 {
		t.Logf("%d duplicate deliveries, deleted unhandled", n)
	}

	seen := map[string]int{}
	h.mu.Lock()
	for _, ev := range h.events {
		seen[ev.ID]++
		if !slices.Equal(ev.InstanceIDs, []string{instanceOf[ev.ID]}) {
			t.Errorf("event %s for instances %v, want %s", ev.ID, ev.InstanceIDs, instanceOf[ev.ID])
		}
	}
	h.mu.Unlock()
	for id := range instanceOf {
		if seen[id] != 1 {
			t.Errorf("%s handled %d times", id, seen[id])
		}
	}
	stopDrained(t, stop, c, url) // stop is idempotent
}

// TestSharingWarnings: a queue fed only by its own rules gives no warning;
// a second installation's rule sending to it, or one of its rules sending to
// another queue too, each gives one.
func TestSharingWarnings(t *testing.T) {
	c := newClients(t)
	ctx := context.Background()
	opts := Options{QueueName: "xdrive-interruptions", Create: true, ClusterName: "test-cluster"}
	url := setupQueue(t, c)
	warnings, err := SharingWarnings(ctx, c.sqs, c.events, url, opts)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("own queue: warnings %q, err %v; want none", warnings, err)
	}

	other, err := EnsureQueue(ctx, c.sqs, c.events, Options{QueueName: "other", Create: true, ClusterName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	arn := func(u string) string {
		out, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	}
	// The other installation's spot rule also sends to our queue; our rebalance rule also to theirs.
	for rule, target := range map[string]string{"other-spot-interruption": arn(url), "xdrive-interruptions-rebalance": arn(other)} {
		if _, err := c.events.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule),
			Targets: []ebtypes.Target{{Id: aws.String("extra"), Arn: aws.String(target)}}}); err != nil {
			t.Fatal(err)
		}
	}
	warnings, err = SharingWarnings(ctx, c.sqs, c.events, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 {
		t.Fatalf("warnings %q; want one for the foreign rule and one for the extra target", warnings)
	}
}
