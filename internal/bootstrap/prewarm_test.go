package bootstrap

import (
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// prewarmDriveMiB is the size of the drive in the prewarm tests; each read is a MiB.
const prewarmDriveMiB = 8

// prewarmChunk makes every read of the prewarm one MiB.
var prewarmChunk = []string{"XDRIVE_PREWARM_CHUNK_MIB=1"}

// ddWrapper stands in for dd in the prewarm tests. It logs its nice value,
// its IO class and its arguments to dd-calls; it waits while dd-pause
// exists (touching dd-paused); on the call numbered in dd-crash-at it kills
// its caller, as a crash would; else it runs the real dd.
const ddWrapper = `#!/bin/bash
printf 'nice=%s io=%s %s\n' "$(nice)" "$(ionice -p $$)" "$*" >>"$SHIM_STATE/dd-calls"
n=$(wc -l <"$SHIM_STATE/dd-calls")
if [[ -e $SHIM_STATE/dd-pause ]]; then
	touch "$SHIM_STATE/dd-paused"
	while [[ -e $SHIM_STATE/dd-pause ]]; do sleep 0.05; done
fi
if [[ $(cat "$SHIM_STATE/dd-crash-at" 2>/dev/null) == "$n" ]]; then
	kill -9 "$PPID"
	exit 1
fi
exec REAL_DD "$@"
`

// prewarmSandbox is a sandbox whose drive holds prewarmDriveMiB of data (a
// volume restored from a snapshot: it has a filesystem), with sysfs giving
// its size and dd wrapped by ddWrapper. It returns the drive's checksum.
func prewarmSandbox(t *testing.T) (*sandbox, [32]byte) {
	t.Helper()
	dd, err := exec.LookPath("dd")
	if err != nil {
		t.Skip("dd is missing")
	}
	s := newSandbox(t, false)
	data := make([]byte, prewarmDriveMiB<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	s.write(filepath.Join(s.root, "dev/nvme2n1"), string(data), 0o644)
	s.write(filepath.Join(s.root, "sys/block/nvme2n1/size"), strconv.Itoa(prewarmDriveMiB<<11)+"\n", 0o644)
	s.setState("fs/nvme2n1", "ext4")
	s.write(filepath.Join(s.bin, "dd"), strings.Replace(ddWrapper, "REAL_DD", dd, 1), 0o755)
	t.Cleanup(func() { // a prewarm a failed test left running
		if pid, err := strconv.Atoi(strings.TrimSpace(s.readOr(s.statePath("prewarm-pid")))); err == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	return s, sha256.Sum256(data)
}

// restoredParams are testParams for a volume restored from a snapshot.
func restoredParams(t *testing.T, prewarm bool) Params {
	p := testParams(t)
	p.BlankDrive, p.Prewarm = false, prewarm
	return p
}

func (s *sandbox) statePath(name string) string { return filepath.Join(s.root, "var/lib/xdrive", name) }

// driveSum is the checksum of the drive's device now.
func (s *sandbox) driveSum() [32]byte {
	return sha256.Sum256([]byte(s.read(filepath.Join(s.root, "dev/nvme2n1"))))
}

// ddCalls returns the logged dd calls.
func (s *sandbox) ddCalls() []string {
	text := strings.TrimSuffix(s.readOr(filepath.Join(s.state, "dd-calls")), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(strings.ReplaceAll(text, s.root, "ROOT"), "\n")
}

var ddSkip = regexp.MustCompile(` skip=(\d+) `)

// checkReads checks that every dd call read the drive into /dev/null, at
// nice 19 in the idle IO class, and returns the MiB each started at.
func checkReads(t *testing.T, calls []string) []int {
	t.Helper()
	var skips []int
	for _, c := range calls {
		if !strings.HasPrefix(c, "nice=19 io=idle if=ROOT/dev/nvme2n1 of=/dev/null bs=1M ") || !strings.Contains(c, " iflag=direct ") {
			t.Errorf("dd call %q: want a direct read of the drive into /dev/null at nice 19, IO class idle", c)
		}
		m := ddSkip.FindStringSubmatch(c)
		if m == nil {
			t.Fatalf("dd call %q has no skip", c)
		}
		n, _ := strconv.Atoi(m[1])
		skips = append(skips, n)
	}
	return skips
}

func mibs(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestPrewarmReadsEveryBlock: the boot of a restored volume with Prewarm
// starts the prewarm in the background; it reads every MiB once, at low
// priority, never writes the drive, and status reports it done. A rerun
// reads nothing more.
func TestPrewarmReadsEveryBlock(t *testing.T) {
	s, sum := prewarmSandbox(t)
	s.boot(restoredParams(t, true), prewarmChunk...)
	var st Status
	waitFor(t, runTimeout, "the prewarm to finish", func() bool {
		st = s.status()
		return st.Prewarm != nil && st.Prewarm.Done()
	})
	want := Prewarm{VolumeID: driveVolumeID, BytesRead: prewarmDriveMiB << 20, BytesTotal: prewarmDriveMiB << 20}
	if got := *st.Prewarm; got.VolumeID != want.VolumeID || got.BytesRead != want.BytesRead || got.BytesTotal != want.BytesTotal || got.Percent() != 100 {
		t.Errorf("prewarm = %+v (%d%%), want %+v", got, got.Percent(), want)
	}
	if st.Phase != PhaseReady || !st.Mounted {
		t.Errorf("status = %+v", st)
	}
	calls := s.ddCalls()
	if skips := checkReads(t, calls); !slices.Equal(skips, mibs(0, prewarmDriveMiB)) {
		t.Errorf("reads start at MiB %v, want each MiB once, in order", skips)
	}
	if s.driveSum() != sum {
		t.Error("the prewarm changed the drive")
	}
	if _, stderr, err := s.ctl(prewarmChunk, "prewarm"); err != nil {
		t.Fatalf("prewarm again: %v\n%s", err, stderr)
	}
	if n := len(s.ddCalls()); n != len(calls) {
		t.Errorf("a rerun of a finished prewarm read %d chunks", n-len(calls))
	}
}

// TestPrewarmOnlyWhenAsked: without Prewarm the boot reads nothing and
// status reports no prewarm.
func TestPrewarmOnlyWhenAsked(t *testing.T) {
	s, _ := prewarmSandbox(t)
	s.boot(restoredParams(t, false), prewarmChunk...)
	if st := s.status(); st.Prewarm != nil || st.Phase != PhaseReady {
		t.Errorf("status = %+v, want ready without a prewarm", st)
	}
	if calls := s.ddCalls(); len(calls) != 0 {
		t.Errorf("dd calls %q", calls)
	}
}

// TestPrewarmResumesAfterCrash: a prewarm killed during its fourth read
// has recorded three MiB; the next run reads from there, never from the start.
func TestPrewarmResumesAfterCrash(t *testing.T) {
	s, sum := prewarmSandbox(t)
	s.boot(restoredParams(t, false), prewarmChunk...)
	s.setState("dd-crash-at", "4")
	if _, stderr, err := s.ctl(prewarmChunk, "prewarm"); err == nil {
		t.Fatalf("the crashed prewarm succeeded\n%s", stderr)
	}
	st := s.status()
	if st.Prewarm == nil || st.Prewarm.BytesRead != 3<<20 || st.Prewarm.Done() || st.Prewarm.Percent() != 37 {
		t.Fatalf("after the crash: prewarm = %+v, want 3 MiB of %d read (37%%)", st.Prewarm, prewarmDriveMiB)
	}
	if _, stderr, err := s.ctl(prewarmChunk, "prewarm"); err != nil {
		t.Fatalf("prewarm after the crash: %v\n%s", err, stderr)
	}
	if st := s.status(); st.Prewarm == nil || !st.Prewarm.Done() {
		t.Fatalf("after the rerun: prewarm = %+v, want done", st.Prewarm)
	}
	want := append(mibs(0, 4), mibs(3, prewarmDriveMiB)...)
	if skips := checkReads(t, s.ddCalls()); !slices.Equal(skips, want) {
		t.Errorf("reads start at MiB %v, want %v (the crashed read again, then on)", skips, want)
	}
	if s.driveSum() != sum {
		t.Error("the prewarm changed the drive")
	}
}

// TestReleaseStopsPrewarm: while the prewarm reads, a second one does not
// start; a release neither waits for it nor fails, and ends it and its read;
// no prewarm starts after the release.
func TestReleaseStopsPrewarm(t *testing.T) {
	s, sum := prewarmSandbox(t)
	s.setState("dd-pause", "")
	s.boot(restoredParams(t, true), prewarmChunk...)
	waitFor(t, runTimeout, "the prewarm's first read", func() bool { return s.exists(filepath.Join(s.state, "dd-paused")) })
	pid, err := strconv.Atoi(strings.TrimSpace(s.read(s.statePath("prewarm-pid"))))
	if err != nil || !alive(pid) {
		t.Fatalf("prewarm pid %d (%v) is not running", pid, err)
	}
	if _, stderr, err := s.ctl(prewarmChunk, "prewarm"); err != nil {
		t.Fatalf("second prewarm: %v\n%s", err, stderr)
	}
	if n := len(s.ddCalls()); n != 1 {
		t.Fatalf("%d reads while the first prewarm holds its lock, want 1", n)
	}

	if _, stderr, err := s.ctl(nil, "release"); err != nil {
		t.Fatalf("release: %v\n%s", err, stderr)
	}
	waitFor(t, runTimeout, "the prewarm to end", func() bool { return !alive(pid) })
	st := s.status()
	if !st.Released || st.Mounted || st.Prewarm == nil || st.Prewarm.BytesRead != 0 {
		t.Errorf("status after release = %+v, prewarm %+v: want released, nothing read", st, st.Prewarm)
	}
	if err := os.Remove(filepath.Join(s.state, "dd-pause")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := s.ctl(prewarmChunk, "prewarm"); err != nil {
		t.Fatalf("prewarm after release: %v\n%s", err, stderr)
	}
	if calls := s.ddCalls(); len(calls) != 1 {
		t.Errorf("reads after the release: %q", calls[1:])
	}
	if s.driveSum() != sum {
		t.Error("the prewarm changed the drive")
	}
}
