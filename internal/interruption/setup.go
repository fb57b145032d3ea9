package interruption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Queue settings applied when EnsureQueue creates the queue.
const (
	queueRetentionSeconds = 300 // older notices are useless: the instance is gone
	targetID              = "xdrive-interruption-queue"
	maxRuleNameLen        = 64
)

// Options says which queue to use and whether to create it.
type Options struct {
	// QueueName is the SQS queue's name. Required.
	QueueName string
	// Create makes EnsureQueue create the queue, its policy and the
	// EventBridge rules. Otherwise the queue must exist.
	Create bool
	// ClusterName is the value of the ownership tag. Required with Create.
	ClusterName string
	// RulePrefix starts each rule's name; it defaults to QueueName.
	RulePrefix string
}

func (o Options) rulePrefix() string {
	if o.RulePrefix == "" {
		return o.QueueName
	}
	return o.RulePrefix
}

// rule is one EventBridge rule that feeds the queue.
type rule struct {
	suffix string
	// short replaces suffix when PREFIX-suffix would pass maxRuleNameLen.
	short   string
	desc    string
	pattern map[string]any
}

var rules = []rule{
	{"spot-interruption", "si", "EC2 spot interruption warnings", map[string]any{
		"source": []string{SourceEC2}, "detail-type": []string{DetailTypeSpotInterruption},
	}},
	{"rebalance", "rb", "EC2 rebalance recommendations", map[string]any{
		"source": []string{SourceEC2}, "detail-type": []string{DetailTypeRebalance},
	}},
	{"state-change", "sc", "EC2 instances going away", map[string]any{
		"source": []string{SourceEC2}, "detail-type": []string{DetailTypeStateChange},
		"detail": map[string]any{"state": []string{"stopping", "stopped", "shutting-down", "terminated"}},
	}},
	{"scheduled-change", "hs", "AWS Health scheduled changes for EC2", map[string]any{
		"source": []string{SourceHealth}, "detail-type": []string{DetailTypeHealth},
		"detail": map[string]any{"service": []string{"EC2"}, "eventTypeCategory": []string{"scheduledChange"}},
	}},
}

// EnsureQueue returns the URL of the interruption queue. With opts.Create it
// first creates (or updates) the queue, its policy and one EventBridge rule
// per event kind targeting it; every step is idempotent.
func EnsureQueue(ctx context.Context, q cloud.QueueAPI, r cloud.RulesAPI, opts Options) (string, error) {
	if opts.QueueName == "" {
		return "", errors.New("interruption: queue name is required")
	}
	if !opts.Create {
		out, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(opts.QueueName)})
		if err != nil {
			return "", fmt.Errorf("looking up queue %s: %w", opts.QueueName, err)
		}
		return aws.ToString(out.QueueUrl), nil
	}
	if opts.ClusterName == "" {
		return "", errors.New("interruption: cluster name is required to create the queue")
	}
	if r == nil {
		return "", errors.New("interruption: rules API is required to create the queue")
	}
	names, err := RuleNames(opts.rulePrefix())
	if err != nil {
		return "", err
	}

	url, err := createQueue(ctx, q, opts)
	if err != nil {
		return "", err
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("reading queue ARN: %w", err)
	}
	queueARN := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if queueARN == "" {
		return "", fmt.Errorf("queue %s has no ARN", url)
	}

	ruleARNs := make([]string, len(rules))
	for i, rl := range rules {
		pattern, err := json.Marshal(rl.pattern)
		if err != nil {
			return "", err
		}
		out, err := r.PutRule(ctx, &eventbridge.PutRuleInput{
			Name:         aws.String(names[i]),
			Description:  aws.String("xdrive: " + rl.desc),
			EventPattern: aws.String(string(pattern)),
			State:        ebtypes.RuleStateEnabled,
			Tags:         []ebtypes.Tag{{Key: aws.String(cloud.TagCluster), Value: aws.String(opts.ClusterName)}},
		})
		if err != nil {
			return "", fmt.Errorf("putting rule %s: %w", names[i], err)
		}
		ruleARNs[i] = aws.ToString(out.RuleArn)
	}

	// Allow the rules to send before they target the queue.
	policy, err := queuePolicy(queueARN, ruleARNs)
	if err != nil {
		return "", err
	}
	_, err = q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(url),
		Attributes: withPolicy(queueAttributes(), policy),
	})
	if err != nil {
		return "", fmt.Errorf("setting queue policy: %w", err)
	}

	for _, name := range names {
		out, err := r.PutTargets(ctx, &eventbridge.PutTargetsInput{
			Rule:    aws.String(name),
			Targets: []ebtypes.Target{{Id: aws.String(targetID), Arn: aws.String(queueARN)}},
		})
		if err != nil {
			return "", fmt.Errorf("putting target of rule %s: %w", name, err)
		}
		if out.FailedEntryCount > 0 && len(out.FailedEntries) > 0 {
			f := out.FailedEntries[0]
			return "", fmt.Errorf("putting target of rule %s: %s: %s", name, aws.ToString(f.ErrorCode), aws.ToString(f.ErrorMessage))
		}
	}
	return url, nil
}

func queueAttributes() map[string]string {
	return map[string]string{
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(queueRetentionSeconds),
		string(sqstypes.QueueAttributeNameSqsManagedSseEnabled):   "true",
	}
}

func withPolicy(m map[string]string, policy string) map[string]string {
	m[string(sqstypes.QueueAttributeNamePolicy)] = policy
	return m
}

// createQueue creates the queue, or finds it when it exists with other
// attributes (SetQueueAttributes then brings them in line).
func createQueue(ctx context.Context, q cloud.QueueAPI, opts Options) (string, error) {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(opts.QueueName),
		Attributes: queueAttributes(),
		Tags:       map[string]string{cloud.TagCluster: opts.ClusterName},
	})
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("creating queue %s: %w", opts.QueueName, err)
	}
	got, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(opts.QueueName)})
	if err != nil {
		return "", fmt.Errorf("looking up queue %s: %w", opts.QueueName, err)
	}
	return aws.ToString(got.QueueUrl), nil
}

// queuePolicy lets EventBridge send messages to the queue, only for our rules.
func queuePolicy(queueARN string, ruleARNs []string) (string, error) {
	p := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "XdriveEventBridgeSend",
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "events.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": ruleARNs}},
		}},
	}
	b, err := json.Marshal(p)
	return string(b), err
}

// MaxRulePrefixLen is the longest rule prefix (the queue's name) with which
// every rule's name, PREFIX-SUFFIX, fits EventBridge's 64 characters: the
// IAM policy grants events:PutRule on rule/QUEUE_NAME-* only.
var MaxRulePrefixLen = maxRuleNameLen - 1 - len(rules[0].short)

// RuleNames are the names of the EventBridge rules that feed the queue:
// PREFIX-spot-interruption and so on, or PREFIX-si and so on when a long name
// would not fit. Every name starts with PREFIX- (docs/iam-policy.json scopes
// PutRule to rule/QUEUE_NAME-*), so a prefix too long for that is refused.
func RuleNames(prefix string) ([]string, error) {
	if len(prefix) > MaxRulePrefixLen {
		return nil, fmt.Errorf("interruption queue name %s is %d characters: with --create-interruption-queue it may have at most %d, "+
			"so that its EventBridge rules, named after it, fit in 64 characters; set a shorter --interruption-queue",
			prefix, len(prefix), MaxRulePrefixLen)
	}
	short := false
	for _, rl := range rules {
		short = short || len(prefix)+1+len(rl.suffix) > maxRuleNameLen
	}
	names := make([]string, len(rules))
	for i, rl := range rules {
		names[i] = prefix + "-" + rl.suffix
		if short {
			names[i] = prefix + "-" + rl.short
		}
	}
	return names, nil
}
