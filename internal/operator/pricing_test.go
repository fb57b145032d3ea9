package operator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	awspricing "github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/xdrive-io/xdrive/internal/instances"
)

// priceList answers GetProducts with one item, or the error of its turn.
type priceList struct {
	mu      sync.Mutex
	answers []error
	calls   int
}

func (p *priceList) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

const euT3Large = `{"product":{"sku":"A","productFamily":"Compute Instance","attributes":{"instanceType":"t3.large","regionCode":"eu-west-1",` +
	`"operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used","licenseModel":"No License required"}},` +
	`"terms":{"OnDemand":{"A.T":{"priceDimensions":{"A.T.D":{"unit":"Hrs","pricePerUnit":{"USD":"0.0912000000"}}}}}}}`

func (p *priceList) GetProducts(context.Context, *awspricing.GetProductsInput, ...func(*awspricing.Options)) (*awspricing.GetProductsOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.calls < len(p.answers) {
		err = p.answers[p.calls]
	}
	p.calls++
	if err != nil {
		return nil, err
	}
	return &awspricing.GetProductsOutput{PriceList: []string{euT3Large}}, nil
}

// TestRefreshPrices: the Pricing API's prices replace the table's once it
// answers, and a region it does not serve keeps the table without a call.
func TestRefreshPrices(t *testing.T) {
	if _, ok := instances.OnDemandPrice("eu-west-1", "t3.large", nil); ok {
		t.Log("the committed table prices eu-west-1's t3.large; the test still checks the API's price wins")
	}
	api := &priceList{answers: []error{errors.New("no route to the Pricing API")}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); refreshPrices(ctx, api, "eu-west-1", time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, _ := instances.OnDemandPrice("eu-west-1", "t3.large", nil); p == "0.0912" {
			break
		}
		if time.Now().After(deadline) {
			p, ok := instances.OnDemandPrice("eu-west-1", "t3.large", nil)
			t.Fatalf("after the API answered (%d calls, the first failing): %q, %v; want 0.0912", api.count(), p, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-stopped

	gov := &priceList{}
	refreshPrices(context.Background(), gov, "us-gov-west-1", time.Millisecond)
	if gov.calls != 0 {
		t.Errorf("%d Pricing API calls for GovCloud, which it does not serve", gov.calls)
	}
}
