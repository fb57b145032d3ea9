package interruption

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/go-logr/logr"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Handler acts on one event. An error leaves the message in the queue, to be
// delivered again after its visibility timeout. Events about instances the
// handler does not know should return nil.
type Handler interface {
	Handle(ctx context.Context, ev Event) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev Event) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev Event) error { return f(ctx, ev) }

// Defaults for Receiver fields left zero.
const (
	DefaultWorkers         = 20
	DefaultPollers         = 2
	DefaultWaitTimeSeconds = 20
	DefaultMaxMessages     = 10
	DefaultDedupSize       = 10000
	DefaultDedupTTL        = 10 * time.Minute // longer than the queue's retention
)

// Receiver long-polls the queue and hands each event to Handler, handling
// up to Workers messages at once.
type Receiver struct {
	QueueAPI cloud.QueueAPI
	QueueURL string
	Handler  Handler
	Logger   logr.Logger

	// Workers bounds the messages handled at once (default 20).
	Workers int
	// Pollers is how many ReceiveMessage calls run at once (default 2).
	Pollers int
	// WaitTimeSeconds is the long-poll wait (default 20, the SQS maximum).
	WaitTimeSeconds int32
	// MaxMessages is the most messages per receive (default 10, the SQS maximum).
	MaxMessages int32
	// VisibilityTimeout hides a received message this long (whole seconds);
	// zero keeps the queue's setting.
	VisibilityTimeout time.Duration
	// DedupSize and DedupTTL bound the memory of handled event IDs.
	DedupSize int
	DedupTTL  time.Duration
	// OnEvent, if set, is called after each successfully handled event with
	// the time since the event's time (or its receipt, if it had none).
	OnEvent func(kind Kind, latency time.Duration)

	// Backoff after a failed receive; zero means 200ms up to 30s.
	backoffBase, backoffMax time.Duration

	recent *recent
}

// Run receives and handles messages until ctx ends, then waits for the
// handlers in flight and returns nil. It returns an error only for an
// invalid configuration; receive errors are logged and retried with backoff.
// Call Run once per Receiver.
func (r *Receiver) Run(ctx context.Context) error {
	if r.QueueAPI == nil || r.QueueURL == "" || r.Handler == nil {
		return errors.New("interruption: receiver needs QueueAPI, QueueURL and Handler")
	}
	r.defaults()
	p := &pool{
		log:     r.Logger.WithValues("queue", r.QueueURL),
		workers: make(chan struct{}, r.Workers),
		deletes: make(chan finished, r.Workers),
	}
	var deleter sync.WaitGroup
	deleter.Go(func() { r.deleteFinished(ctx, p) })
	var pollers sync.WaitGroup
	for range r.Pollers {
		pollers.Go(func() { r.poll(ctx, p) })
	}
	pollers.Wait()
	p.wg.Wait()
	close(p.deletes)
	deleter.Wait()
	return nil
}

// pool is the state the pollers share.
type pool struct {
	log     logr.Logger
	workers chan struct{} // a slot per message being handled
	deletes chan finished // handled messages, to be deleted in batches
	wg      sync.WaitGroup
}

// finished is a handled message, waiting for its delete.
type finished struct {
	log                logr.Logger
	messageID, receipt string
}

func (r *Receiver) poll(ctx context.Context, p *pool) {
	failures := 0
	for {
		// Take one free worker (waiting if all are busy), then any more that
		// are free, so no received message waits for a worker.
		select {
		case p.workers <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := int32(1)
	more:
		for n < r.MaxMessages {
			select {
			case p.workers <- struct{}{}:
				n++
			default:
				break more
			}
		}

		out, err := r.QueueAPI.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(r.QueueURL),
			MaxNumberOfMessages:         n,
			WaitTimeSeconds:             r.WaitTimeSeconds,
			VisibilityTimeout:           int32((r.VisibilityTimeout + time.Second - 1) / time.Second),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		received := time.Now()
		var msgs []sqstypes.Message
		if err == nil {
			msgs = out.Messages
		}
		for range max(int(n)-len(msgs), 0) {
			<-p.workers
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d := r.backoff(failures)
			kind := cloud.Classify(err)
			if kind == cloud.KindThrottled || kind == cloud.KindServerError {
				p.log.V(1).Info("receive failed, backing off", "kind", kind.String(), "error", err.Error(), "backoff", d)
			} else {
				p.log.Error(err, "receive failed, backing off", "kind", kind.String(), "backoff", d)
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
			continue
		}
		failures = 0
		for _, m := range msgs {
			p.wg.Go(func() {
				log := p.log.WithValues("messageID", aws.ToString(m.MessageId))
				del := r.process(ctx, log, m, received)
				<-p.workers // free the worker before the delete round trip
				if del {
					p.deletes <- finished{log: log, messageID: aws.ToString(m.MessageId), receipt: aws.ToString(m.ReceiptHandle)}
				}
			})
		}
	}
}

func (r *Receiver) defaults() {
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
	}
	if r.Pollers <= 0 {
		r.Pollers = DefaultPollers
	}
	if r.WaitTimeSeconds <= 0 {
		r.WaitTimeSeconds = DefaultWaitTimeSeconds
	}
	if r.MaxMessages <= 0 || r.MaxMessages > 10 {
		r.MaxMessages = DefaultMaxMessages
	}
	if r.DedupSize <= 0 {
		r.DedupSize = DefaultDedupSize
	}
	if r.DedupTTL <= 0 {
		r.DedupTTL = DefaultDedupTTL
	}
	if r.backoffBase <= 0 {
		r.backoffBase = 200 * time.Millisecond
	}
	if r.backoffMax <= 0 {
		r.backoffMax = 30 * time.Second
	}
	if r.recent == nil {
		r.recent = newRecent(r.DedupSize, r.DedupTTL)
	}
}

// backoff grows exponentially, with jitter between half and all of the step.
func (r *Receiver) backoff(failures int) time.Duration {
	d := r.backoffMax
	if failures < 30 {
		d = min(r.backoffBase<<(failures-1), r.backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// process handles one message and reports whether to delete it.
func (r *Receiver) process(ctx context.Context, log logr.Logger, m sqstypes.Message, received time.Time) bool {
	ev, err := Parse([]byte(aws.ToString(m.Body)))
	if err != nil {
		if errors.Is(err, ErrUnknownEvent) {
			log.V(1).Info("ignoring event", "reason", err.Error())
		} else {
			log.Error(err, "dropping unparsable message")
		}
		return true
	}
	log = log.WithValues("eventID", ev.ID, "kind", ev.Kind.String(), "instances", ev.InstanceIDs)

	if ev.ID != "" {
		for {
			claimed, wait := r.recent.claim(ev.ID, time.Now())
			if claimed {
				break
			}
			if wait == nil {
				log.V(1).Info("duplicate event, already handled")
				return true
			}
			// Another copy is being handled: its outcome decides ours.
			select {
			case <-wait:
			case <-ctx.Done():
				return false
			}
		}
	}

	err = r.handle(ctx, ev)
	if ev.ID != "" {
		r.recent.finish(ev.ID, err == nil, time.Now())
	}
	if err != nil {
		log.Error(err, "handler failed; the message will be delivered again",
			"receiveCount", m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
		return false
	}
	if r.OnEvent != nil {
		since := ev.Time
		if since.IsZero() {
			since = received
		}
		r.OnEvent(ev.Kind, time.Since(since))
	}
	return true
}

func (r *Receiver) handle(ctx context.Context, ev Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return r.Handler.Handle(ctx, ev)
}

// maxDeletesInFlight bounds the DeleteMessageBatch calls at once.
const maxDeletesInFlight = 4

// deleteFinished deletes handled messages until p.deletes is closed: each
// call takes every message waiting, up to the 10 one call may carry, so a
// burst of notices costs a tenth of the calls and one alone waits for
// nothing. The calls outlive ctx briefly, so a handled event is not
// delivered again just because we are stopping.
func (r *Receiver) deleteFinished(ctx context.Context, p *pool) {
	ctx = context.WithoutCancel(ctx)
	slots := make(chan struct{}, maxDeletesInFlight)
	var calls sync.WaitGroup
	for first := range p.deletes {
		batch := []finished{first}
	fill:
		for len(batch) < maxBatchDelete {
			select {
			case f, ok := <-p.deletes:
				if !ok {
					break fill
				}
				batch = append(batch, f)
			default:
				break fill
			}
		}
		slots <- struct{}{}
		calls.Go(func() {
			defer func() { <-slots }()
			r.deleteBatch(ctx, p.log, batch)
		})
	}
	calls.Wait()
}

// maxBatchDelete is the most entries one DeleteMessageBatch takes.
const maxBatchDelete = 10

// deleteBatch deletes a batch of handled messages in one call. A message
// whose delete failed is delivered again after its visibility timeout, and
// the event's ID makes its second handling a no-op.
func (r *Receiver) deleteBatch(ctx context.Context, log logr.Logger, batch []finished) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(batch))
	for i, f := range batch {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(f.receipt)}
	}
	out, err := r.QueueAPI.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.QueueURL), Entries: entries})
	if err != nil {
		ids := make([]string, len(batch))
		for i, f := range batch {
			ids[i] = f.messageID
		}
		log.Error(err, "deleting messages failed; they will be delivered again", "messageIDs", ids)
		return
	}
	for _, e := range out.Failed {
		i, convErr := strconv.Atoi(aws.ToString(e.Id))
		if convErr != nil || i < 0 || i >= len(batch) {
			continue
		}
		batch[i].log.Error(fmt.Errorf("%s: %s", aws.ToString(e.Code), aws.ToString(e.Message)),
			"deleting message failed; it will be delivered again", "senderFault", e.SenderFault)
	}
}
