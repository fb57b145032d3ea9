package interruption

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSamples(t *testing.T) {
	cases := []struct {
		file string
		want Event
	}{
		{"spot_interruption.json", Event{
			ID: "12345678-1234-1234-1234-123456789012", Kind: SpotInterruption,
			InstanceIDs: []string{"i-1234567890abcdef0"}, Action: "terminate",
			Time: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), Account: "123456789012", Region: "us-east-2",
		}},
		{"rebalance.json", Event{
			ID: "a1b2c3d4-5678-90ab-cdef-111122223333", Kind: Rebalance,
			InstanceIDs: []string{"i-1234567890abcdef0"},
			Time:        time.Date(2026, 3, 14, 9, 24, 11, 0, time.UTC), Account: "123456789012", Region: "us-east-2",
		}},
		{"state_change.json", Event{
			ID: "7bf73129-1428-4cd3-a780-95db273d1602", Kind: StateChange,
			InstanceIDs: []string{"i-abcd1111"}, State: "shutting-down",
			Time: time.Date(2021, 11, 11, 21, 29, 54, 0, time.UTC), Account: "123456789012", Region: "us-east-1",
		}},
		{"health_scheduled_change.json", Event{
			ID: "7fb65329-1628-4cf3-a740-95fg457h1402", Kind: ScheduledChange,
			InstanceIDs: []string{"i-abcd1111", "i-abcd2222"}, Action: "AWS_EC2_INSTANCE_STOP_SCHEDULED",
			Time: time.Date(2016, 6, 5, 6, 27, 57, 0, time.UTC), Account: "123456789012", Region: "us-east-1",
		}},
		// As moto delivers it: no account, an extra ingestion-time.
		{"spot_interruption_moto.json", Event{
			ID: "0f7f3c6c-5c5a-4b50-9b7e-0e6d4e7b8a11", Kind: SpotInterruption,
			InstanceIDs: []string{"i-0a1b2c3d4e5f60718"}, Action: "stop",
			Time: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), Region: "us-east-1",
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := Parse(readSample(t, c.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.ID != c.want.ID || got.Kind != c.want.Kind || got.State != c.want.State ||
				got.Action != c.want.Action || !got.Time.Equal(c.want.Time) ||
				got.Account != c.want.Account || got.Region != c.want.Region ||
				!slices.Equal(got.InstanceIDs, c.want.InstanceIDs) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"unknown detail-type", readSample(t, "unknown_ami_state.json"), ErrUnknownEvent},
		{"health issue, not a scheduled change", readSample(t, "health_issue.json"), ErrUnknownEvent},
		{"spoofed source", []byte(`{"id":"x","source":"my.app","detail-type":"EC2 Spot Instance Interruption Warning","detail":{"instance-id":"i-1"}}`), ErrUnknownEvent},
		{"health without instances", []byte(`{"id":"x","source":"aws.health","detail-type":"AWS Health Event","detail":{"service":"EC2","eventTypeCategory":"scheduledChange","affectedEntities":[{"entityValue":"h-0123"}]}}`), ErrUnknownEvent},
		{"not JSON", []byte(`{"id": "x", "detail-type": `), ErrMalformedEvent},
		{"empty body", []byte(``), ErrMalformedEvent},
		{"JSON array", []byte(`[1,2]`), ErrMalformedEvent},
		{"spot without instance", []byte(`{"id":"x","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","detail":{"instance-action":"terminate"}}`), ErrMalformedEvent},
		{"detail not an object", []byte(`{"id":"x","source":"aws.ec2","detail-type":"EC2 Instance Rebalance Recommendation","detail":"i-1"}`), ErrMalformedEvent},
		{"state change without state", []byte(`{"id":"x","source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"instance-id":"i-1"}}`), ErrMalformedEvent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Parse(c.body)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse = %+v, %v; want %v", ev, err, c.want)
			}
		})
	}
}

func TestParseToleratesBadTime(t *testing.T) {
	ev, err := Parse([]byte(`{"id":"x","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","time":"yesterday","detail":{"instance-id":"i-1","instance-action":"terminate"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Time.IsZero() || ev.InstanceIDs[0] != "i-1" {
		t.Fatalf("got %+v", ev)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{SpotInterruption: "SpotInterruption", Rebalance: "Rebalance",
		StateChange: "StateChange", ScheduledChange: "ScheduledChange", Kind(0): "Kind(0)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), want)
		}
	}
}

// TestRuleNames: every rule name starts with the queue's name and a dash
// (the IAM policy's rule/QUEUE_NAME-*) and fits EventBridge's 64
// characters; a name too long for that is refused.
func TestRuleNames(t *testing.T) {
	names, err := RuleNames("xdrive-interruptions")
	if err != nil || names[0] != "xdrive-interruptions-spot-interruption" {
		t.Errorf("short prefix: %q, %v", names, err)
	}
	for n := 1; n <= 80; n++ {
		prefix := strings.Repeat("q", n)
		names, err := RuleNames(prefix)
		if n > MaxRulePrefixLen {
			if err == nil {
				t.Errorf("prefix of %d characters accepted: %q", n, names)
			}
			continue
		}
		if err != nil {
			t.Fatalf("prefix of %d characters: %v", n, err)
		}
		seen := map[string]bool{}
		for _, name := range names {
			if !strings.HasPrefix(name, prefix+"-") || len(name) > maxRuleNameLen || seen[name] {
				t.Errorf("prefix of %d characters: rule name %q (%d)", n, name, len(name))
			}
			seen[name] = true
		}
	}
}
