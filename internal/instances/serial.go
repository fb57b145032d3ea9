package instances

import (
	"context"
	"sync"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SerialCatalog answers one placement question at a time, so that
// Workstations asking at once share one set of EC2 lookups rather than each
// missing the cache. Answers from the cache take microseconds.
type SerialCatalog struct {
	Catalog *Catalog
	mu      sync.Mutex
}

// Candidates is Catalog.Candidates, one caller at a time.
func (s *SerialCatalog) Candidates(ctx context.Context, req PlacementRequest) ([]Offering, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Catalog.Candidates(ctx, req)
}

// Type is Catalog.Type, one caller at a time.
func (s *SerialCatalog) Type(ctx context.Context, name string) (TypeInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Catalog.Type(ctx, name)
}

// Image is Catalog.Image, one caller at a time.
func (s *SerialCatalog) Image(ctx context.Context, ssmParameter string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Catalog.Image(ctx, ssmParameter)
}

// RootMapping is Catalog.RootMapping; a miss holds no lock of the SerialCatalog.
func (s *SerialCatalog) RootMapping(ctx context.Context, imageID string) (*ec2types.BlockDeviceMapping, error) {
	return s.Catalog.RootMapping(ctx, imageID)
}
