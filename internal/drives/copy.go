package drives

import (
	"context"
	"errors"
	"time"
)

// CopyRequest is a copy of a drive's snapshot into the service's region.
// (Placeholder until the copies branch lands.)
type CopyRequest struct {
	Source                    Snapshot
	SourceRegion              string
	Drive, DriveUID, DriveName string
	Encrypted                 bool
	KMSKeyID                  string
}

// CopySnapshot is a placeholder until the copies branch lands.
func (s *Service) CopySnapshot(ctx context.Context, r CopyRequest) (Snapshot, error) {
	return Snapshot{}, errors.New("not yet")
}

// TakenAt is when the write the snapshot holds was taken (a copy keeps its source's).
func (s Snapshot) TakenAt() time.Time { return s.takenAt() }
