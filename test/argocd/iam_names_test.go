package argocd

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/internal/interruption"
)

// allows reports whether a statement of p allows action on the ARN, with the
// placeholders of the policy filled in from vars. Conditions are not evaluated:
// callers check only statements without them.
func allows(p policy, vars map[string]string, action, arn string) bool {
	for _, s := range p.Statement {
		if !slices.Contains(s.Action, action) || len(s.Condition) > 0 {
			continue
		}
		for _, r := range s.Resource {
			for k, v := range vars {
				r = strings.ReplaceAll(r, k, v)
			}
			if iamGlob(r).MatchString(arn) {
				return true
			}
		}
	}
	return false
}

// iamGlob turns an IAM resource pattern (* any run, ? one character) into a regexp.
func iamGlob(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestIAMPolicyCoversInterruptionQueueNames: with --create-interruption-queue,
// the queue and every rule the code names for it (interruption.RuleNames) are
// resources the policy grants the creating calls on, for every cluster name
// the operator accepts; a cluster name whose rules could not fit is refused.
func TestIAMPolicyCoversInterruptionQueueNames(t *testing.T) {
	p := loadPolicy(t, policyPath)
	accepted := 0
	for n := 1; n <= 100; n++ {
		cluster := strings.Repeat("c", n)
		queue := interruption.DefaultQueueName(cluster)
		names, err := interruption.RuleNames(queue)
		if err != nil {
			if len(queue) <= interruption.MaxRulePrefixLen {
				t.Errorf("cluster name of %d characters refused: %v", n, err)
			}
			continue
		}
		accepted++
		vars := map[string]string{"PARTITION": "aws", "REGION": "us-east-1", "ACCOUNT_ID": "123456789012", "QUEUE_NAME": queue}
		queueARN := "arn:aws:sqs:us-east-1:123456789012:" + queue
		for _, a := range []string{"sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:GetQueueUrl", "sqs:ReceiveMessage"} {
			if !allows(p, vars, a, queueARN) {
				t.Errorf("cluster name of %d characters: %s on %s is denied", n, a, queueARN)
			}
		}
		for _, name := range names {
			arn := "arn:aws:events:us-east-1:123456789012:rule/" + name
			for _, a := range []string{"events:PutRule", "events:PutTargets", "events:TagResource", "events:ListTargetsByRule"} {
				if !allows(p, vars, a, arn) {
					t.Errorf("cluster name of %d characters: %s on %s is denied", n, a, arn)
				}
			}
		}
	}
	if accepted < 50 {
		t.Errorf("only %d of 100 cluster name lengths accepted", accepted)
	}
}
