package interruption

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// DefaultQueueName is the queue of one installation, named from its cluster name.
func DefaultQueueName(cluster string) string { return "xdrive-" + cluster }

// SharingWarnings looks for signs that the queue is shared: our rules
// sending to another target too, or other rules sending to our queue. A
// queue must not be shared: each installation drops the notices of
// instances it does not own, so two installations on one queue each lose
// some of the other's. It returns one warning per sign.
func SharingWarnings(ctx context.Context, q cloud.QueueAPI, r cloud.RulesAPI, queueURL string, opts Options) ([]string, error) {
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, fmt.Errorf("reading queue ARN: %w", err)
	}
	queueARN := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	ours, err := RuleNames(opts.rulePrefix())
	if err != nil {
		return nil, err
	}
	var warnings []string
	feeding, err := r.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(queueARN)})
	if err != nil {
		return nil, fmt.Errorf("listing the rules that target %s: %w", queueARN, err)
	}
	for _, name := range feeding.RuleNames {
		if !slices.Contains(ours, name) {
			warnings = append(warnings, fmt.Sprintf("rule %s of someone else also sends to queue %s: is the queue shared with another installation?", name, opts.QueueName))
		}
	}
	if !opts.Create {
		return warnings, nil
	}
	for _, name := range ours {
		targets, err := r.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("listing the targets of rule %s: %w", name, err)
		}
		for _, t := range targets.Targets {
			if arn := aws.ToString(t.Arn); arn != queueARN {
				warnings = append(warnings, fmt.Sprintf("rule %s also sends to %s: another installation may share its events", name, arn))
			}
		}
	}
	return warnings, nil
}
