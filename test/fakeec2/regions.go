package fakeec2

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// CopiedVolumeID is the volume ID EC2 reports for a copied snapshot.
const CopiedVolumeID = "vol-ffffffff"

// Link makes the fakes regions of one account: each one's CopySnapshot
// reads the snapshots of the others. Their regions must differ.
func Link(fakes ...*Fake) {
	regions := map[string]*Fake{}
	for _, f := range fakes {
		if regions[f.opts.Region] != nil {
			panic(fmt.Sprintf("fakeec2: two linked fakes are both region %s", f.opts.Region))
		}
		regions[f.opts.Region] = f
	}
	for _, f := range fakes {
		f.mu.Lock()
		f.regions = regions
		f.mu.Unlock()
	}
}

// Region returns the fake's region.
func (f *Fake) Region() string { return f.opts.Region }

// Zones are the fake's availability zones.
func (f *Fake) Zones() []string { return slices.Clone(f.opts.Zones) }

// idBase starts a region's IDs apart from the default region's, by its name.
func idBase(region string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(region))
	return int64(h.Sum32()&0xfff+1) << 48
}

// FailCopies makes the next n copies this region makes end in error instead
// of completing (KindSnapshotFailed), as a copy whose key fails does.
func (f *Fake) FailCopies(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCopies = n
}

// copySource is what a copy takes from its source snapshot.
type copySource struct {
	state     string
	size      int32
	encrypted bool
	kmsKeyID  string
	data      *Data
}

// readSource reads a snapshot of this or a linked region. It takes the
// locks one at a time, so copies either way between two regions cannot
// deadlock.
func (f *Fake) readSource(region, id string) (copySource, error) {
	if region == "" {
		return copySource{}, apiError(codeMissingParameter, "The request must contain the parameter SourceRegion")
	}
	f.mu.Lock()
	src := f.regions[region]
	if region == f.opts.Region {
		src = f
	}
	f.mu.Unlock()
	if src == nil {
		return copySource{}, apiError(codeInvalidValue, "The source region %s is not a region of this account", region)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	s, err := src.liveSnapshot(id)
	if err != nil || s.id == ImageSnapshotID {
		return copySource{}, apiError(codeSnapshotNotFound, "The snapshot '%s' does not exist in %s", id, region)
	}
	return copySource{state: s.state, size: s.size, encrypted: s.encrypted, kmsKeyID: s.kmsKeyID, data: s.data}, nil
}

// CopySnapshot starts a pending copy, in this region, of a completed
// snapshot of SourceRegion (this region or a linked one). The copy holds the
// source's data, is encrypted if either the source or the request says so,
// and completes, or fails (FailCopies), by a Transition.
func (f *Fake) CopySnapshot(ctx context.Context, in *ec2.CopySnapshotInput, _ ...func(*ec2.Options)) (*ec2.CopySnapshotOutput, error) {
	src, srcErr := f.readSource(aws.ToString(in.SourceRegion), aws.ToString(in.SourceSnapshotId))
	return call(ctx, f, "CopySnapshot", func() (*ec2.CopySnapshotOutput, error) {
		switch {
		case srcErr != nil:
			return nil, srcErr
		case src.state != SnapshotCompleted:
			return nil, apiError(codeIncorrectState, "Snapshot %s is in state %s, not completed", aws.ToString(in.SourceSnapshotId), src.state)
		case in.KmsKeyId != nil && !aws.ToBool(in.Encrypted):
			return nil, apiError(codeInvalidCombination, "KmsKeyId requires Encrypted to be true")
		}
		tags := tagsFor(in.TagSpecifications, ec2types.ResourceTypeSnapshot)
		s := f.newSnapshot(CopiedVolumeID, src.size, tags, src.data)
		f.audit("CopySnapshot", s.id, s.tags)
		s.description, s.encrypted = aws.ToString(in.Description), src.encrypted || aws.ToBool(in.Encrypted)
		s.sourceRegion, s.sourceID = aws.ToString(in.SourceRegion), aws.ToString(in.SourceSnapshotId)
		if s.kmsKeyID = aws.ToString(in.KmsKeyId); s.kmsKeyID == "" && s.sourceRegion == f.opts.Region {
			s.kmsKeyID = src.kmsKeyID
		}
		if f.failCopies > 0 {
			f.failCopies--
			s.fails = true
		}
		return &ec2.CopySnapshotOutput{SnapshotId: aws.String(s.id), Tags: f.describeSnapshot(s).Tags}, nil
	})
}
