// Package interruption receives EC2 interruption events (spot interruption
// warnings, rebalance recommendations, state changes and scheduled changes)
// from EventBridge through an SQS queue and hands them to a Handler.
package interruption

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is the kind of an interruption event.
type Kind int

// Event kinds.
const (
	SpotInterruption Kind = iota + 1
	Rebalance
	StateChange
	ScheduledChange
)

func (k Kind) String() string {
	switch k {
	case SpotInterruption:
		return "SpotInterruption"
	case Rebalance:
		return "Rebalance"
	case StateChange:
		return "StateChange"
	case ScheduledChange:
		return "ScheduledChange"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// EventBridge sources and detail-types of the events this package handles.
const (
	SourceEC2    = "aws.ec2"
	SourceHealth = "aws.health"

	DetailTypeSpotInterruption = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance        = "EC2 Instance Rebalance Recommendation"
	DetailTypeStateChange      = "EC2 Instance State-change Notification"
	DetailTypeHealth           = "AWS Health Event"
)

// Errors from Parse. Messages that fail with either are deleted and ignored.
var (
	// ErrUnknownEvent marks a well-formed event this package does not act on.
	ErrUnknownEvent = errors.New("unknown event")
	// ErrMalformedEvent marks a body that is not a usable event.
	ErrMalformedEvent = errors.New("malformed event")
)

// Event is one parsed interruption event.
type Event struct {
	// ID is the EventBridge event ID; duplicates of one event share it.
	ID          string
	Kind        Kind
	InstanceIDs []string
	// State is the new instance state of a StateChange (e.g. "stopping").
	State string
	// Action is the spot instance-action ("terminate", "stop", "hibernate")
	// or the Health eventTypeCode (e.g. "AWS_EC2_INSTANCE_STOP_SCHEDULED").
	Action string
	// Time is when the event happened; zero when the event had no valid time.
	Time    time.Time
	Account string
	Region  string
}

type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Detail     json.RawMessage `json:"detail"`
}

type ec2Detail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
	State          string `json:"state"`
}

type healthDetail struct {
	Service           string `json:"service"`
	EventTypeCode     string `json:"eventTypeCode"`
	EventTypeCategory string `json:"eventTypeCategory"`
	AffectedEntities  []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// Parse decodes an EventBridge event as delivered to SQS. Events of other
// types give ErrUnknownEvent; unusable bodies give ErrMalformedEvent.
func Parse(body []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformedEvent, err)
	}
	ev := Event{ID: env.ID, Account: env.Account, Region: env.Region}
	// Lenient: a bad time must not make us miss an interruption.
	if t, err := time.Parse(time.RFC3339, env.Time); err == nil {
		ev.Time = t
	}

	switch {
	case env.Source == SourceEC2 && env.DetailType == DetailTypeSpotInterruption:
		ev.Kind = SpotInterruption
	case env.Source == SourceEC2 && env.DetailType == DetailTypeRebalance:
		ev.Kind = Rebalance
	case env.Source == SourceEC2 && env.DetailType == DetailTypeStateChange:
		ev.Kind = StateChange
	case env.Source == SourceHealth && env.DetailType == DetailTypeHealth:
		return parseHealth(ev, env.Detail)
	default:
		return Event{}, fmt.Errorf("%w: source %q, detail-type %q", ErrUnknownEvent, env.Source, env.DetailType)
	}

	var d ec2Detail
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return Event{}, fmt.Errorf("%w: %s detail: %w", ErrMalformedEvent, ev.Kind, err)
	}
	if d.InstanceID == "" {
		return Event{}, fmt.Errorf("%w: %s without instance-id", ErrMalformedEvent, ev.Kind)
	}
	ev.InstanceIDs = []string{d.InstanceID}
	switch ev.Kind {
	case SpotInterruption:
		ev.Action = d.InstanceAction
	case StateChange:
		if d.State == "" {
			return Event{}, fmt.Errorf("%w: state change without state", ErrMalformedEvent)
		}
		ev.State = d.State
	}
	return ev, nil
}

func parseHealth(ev Event, raw json.RawMessage) (Event, error) {
	var d healthDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return Event{}, fmt.Errorf("%w: health detail: %w", ErrMalformedEvent, err)
	}
	if d.Service != "EC2" || d.EventTypeCategory != "scheduledChange" {
		return Event{}, fmt.Errorf("%w: health event %q/%q", ErrUnknownEvent, d.Service, d.EventTypeCategory)
	}
	for _, e := range d.AffectedEntities {
		// EC2 health events may also name hosts or other resources.
		if strings.HasPrefix(e.EntityValue, "i-") && !slices.Contains(ev.InstanceIDs, e.EntityValue) {
			ev.InstanceIDs = append(ev.InstanceIDs, e.EntityValue)
		}
	}
	if len(ev.InstanceIDs) == 0 {
		return Event{}, fmt.Errorf("%w: health event %s names no instance", ErrUnknownEvent, d.EventTypeCode)
	}
	ev.Kind = ScheduledChange
	ev.Action = d.EventTypeCode
	return ev, nil
}
