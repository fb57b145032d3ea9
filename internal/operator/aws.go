package operator

import (
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	awspricing "github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"

	"github.com/xdrive-io/xdrive/internal/metrics"
	"github.com/xdrive-io/xdrive/internal/pricing"
)

// NewAWS builds the clients of every AWS service the operator calls from one
// SDK config (the default credential chain in cmd/, moto in tests and the
// demo). Every call is counted in the operator's metrics.
// Extra API options (the EC2 rate limiter) run inside the call counter.
func NewAWS(cfg aws.Config, apiOptions ...func(*middleware.Stack) error) AWS {
	cfg.APIOptions = append(append(slices.Clip(cfg.APIOptions), metrics.CountCalls), apiOptions...)
	ec2Client := ec2.NewFromConfig(cfg)
	return AWS{
		EC2:            ec2Client,
		SecurityGroups: ec2Client,
		SSM:            ssm.NewFromConfig(cfg),
		SQS:            sqs.NewFromConfig(cfg),
		Events:         eventbridge.NewFromConfig(cfg),
		// The Pricing API answers in a few regions only, whatever the manager's.
		Pricing: awspricing.NewFromConfig(cfg, func(o *awspricing.Options) { o.Region = pricing.APIRegion }),
		Region:  cfg.Region,
	}
}
