//go:build instancevm

package instancevm_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/test/instancevm"
)

// bootTimes is where one boot's time went, in seconds of the guest's
// monotonic clock (since the kernel started), read from its journal.
type bootTimes struct {
	CloudInit    float64 // cloud-init's first stage starts (cloud-init-local.service)
	UserData     float64 // cloud-init runs the user-data (scripts_user)
	Bootstrap    float64 // the bootstrap's first phase (the archive is unpacked, the units enabled)
	Phases       map[string]float64
	Ready        float64 // phase ready: every container runs
	Reloads      int     // systemd daemon-reloads after the user-data started
	ReloadsSecs  float64 // their time, as systemd reports it
	DockerImport float64 // the test image's import (standing in for a pull), 0 when already in the store
}

// The journal's lines, as `journalctl -o short-monotonic` prints them.
var (
	journalLine = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\] \S+ ([^:]+): (.*)$`)
	reloadLine  = regexp.MustCompile(`Reloading finished in ([0-9]+) ms`)
)

// parseTimeline reads a boot's journal (short-monotonic).
func parseTimeline(journal string) (bootTimes, error) {
	bt := bootTimes{Phases: map[string]float64{}}
	for _, line := range strings.Split(journal, "\n") {
		m := journalLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[1], 64)
		proc, msg := m[2], m[3]
		switch {
		case bt.CloudInit == 0 && strings.Contains(msg, "Starting cloud-init-local.service"):
			bt.CloudInit = at
		case bt.UserData == 0 && strings.Contains(msg, "Running module scripts_user") ||
			bt.UserData == 0 && strings.Contains(msg, "running 'modules:final'"):
			bt.UserData = at
		case strings.Contains(msg, "xdrive: phase: "):
			phase := msg[strings.Index(msg, "xdrive: phase: ")+len("xdrive: phase: "):]
			if _, seen := bt.Phases[phase]; !seen {
				bt.Phases[phase] = at
			}
			if bt.Bootstrap == 0 {
				bt.Bootstrap = at
			}
			if phase == bootstrap.PhaseReady {
				bt.Ready = at
			}
		case strings.HasPrefix(proc, "systemd[1]") && reloadLine.MatchString(msg) && bt.UserData > 0 && bt.Ready == 0:
			ms, _ := strconv.Atoi(reloadLine.FindStringSubmatch(msg)[1])
			bt.Reloads++
			bt.ReloadsSecs += float64(ms) / 1000
		}
	}
	if bt.CloudInit == 0 || bt.UserData == 0 || bt.Ready == 0 {
		return bt, fmt.Errorf("the journal lacks cloud-init's start (%.1f), the user-data's (%.1f) or the bootstrap's end (%.1f)",
			bt.CloudInit, bt.UserData, bt.Ready)
	}
	return bt, nil
}

// phaseSpans are the bootstrap's phases in order, each with the time to the next.
func (bt bootTimes) phaseSpans() []phaseSpan {
	var spans []phaseSpan
	for name, at := range bt.Phases {
		spans = append(spans, phaseSpan{name: name, at: at})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].at < spans[j].at })
	for i := range spans {
		if i+1 < len(spans) {
			spans[i].secs = spans[i+1].at - spans[i].at
		}
	}
	return spans
}

type phaseSpan struct {
	name     string
	at, secs float64
}

// volumeWait is the time the bootstrap waited for the operator to pass the
// drive's volume ID: the operator's polling, not the bootstrap's work.
func (bt bootTimes) volumeWait() float64 {
	for _, s := range bt.phaseSpans() {
		if s.name == bootstrap.PhaseWaitingForDrive {
			return s.secs
		}
	}
	return 0
}

// own is the bootstrap's own time: from the user-data's start to every
// container running, less the wait for the operator's status call.
func (bt bootTimes) own() float64 { return bt.Ready - bt.UserData - bt.volumeWait() }

func (bt bootTimes) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel to cloud-init %.1fs, cloud-init to the user-data %.1fs, user-data to ready %.1fs "+
		"(own %.1fs, waiting for the operator's volume ID %.1fs): unpack and units %.1fs (%d daemon-reloads, %.1fs)",
		bt.CloudInit, bt.UserData-bt.CloudInit, bt.Ready-bt.UserData, bt.own(), bt.volumeWait(),
		bt.Bootstrap-bt.UserData, bt.Reloads, bt.ReloadsSecs)
	for _, s := range bt.phaseSpans() {
		if s.name != bootstrap.PhaseReady {
			fmt.Fprintf(&b, ", %s %.1fs", s.name, s.secs)
		}
	}
	return b.String()
}

// journal returns the boot's journal, short-monotonic.
func (in *instance) journal() string {
	return in.run("journalctl -b -o short-monotonic --no-pager")
}

// milestones are the journal's lines that say where the bootstrap's time
// goes beyond its phases: daemon-reloads and who asked for them, containerd's
// and dockerd's start, the test image's import, the containers' starts.
var milestones = regexp.MustCompile(`Reloading requested|Reloading finished|Starting (containerd|docker)\.service|` +
	`containerd successfully booted|msg="Starting up"|Loading containers|API listen|Started docker\.service|xdrive: `)

// times reads where the boot's time went, and logs it.
func (in *instance) times() bootTimes {
	in.t.Helper()
	journal := in.journal()
	bt, err := parseTimeline(journal)
	if err != nil {
		in.t.Fatalf("%s: %v", in.vm.Config().InstanceID, err)
	}
	var lines []string
	for _, l := range strings.Split(journal, "\n") {
		if m := journalLine.FindStringSubmatch(l); m != nil && milestones.MatchString(l) {
			if at, _ := strconv.ParseFloat(m[1], 64); at >= bt.UserData && at <= bt.Ready {
				lines = append(lines, fmt.Sprintf("%7.1f %s: %.160s", at, m[2], m[3]))
			}
		}
	}
	in.t.Logf("%s: %s\n%s", in.vm.Config().InstanceID, bt, strings.Join(lines, "\n"))
	return bt
}

// BenchmarkBootstrap measures the bootstrap's own time on real instances,
// from cloud-init's start to every container running, on a blank drive
// (formatted, Docker's store new, the image imported) and on one restored
// from its snapshot (the same containers started again), and reports where
// it goes. The operator's part, passing the drive's volume ID in a status
// call, is polled every second here and reported apart (volwait-s).
//
//	go test -tags instancevm -run '^$' -bench Bootstrap -benchtime 1x ./test/instancevm/
func BenchmarkBootstrap(b *testing.B) {
	var blank, restored []bootTimes
	for b.Loop() {
		dir := b.TempDir()
		vol, err := instancevm.BlankDrive(filepath.Join(dir, "vol.raw"), "vol-0bbbbbbbbbbbbbbb7", gib)
		if err != nil {
			b.Fatal(err)
		}
		in := launch(b, launchOpts{drive: vol, blank: true, poll: time.Second})
		if st := in.ready(); st.Phase != bootstrap.PhaseReady {
			b.Fatalf("blank boot: %+v", st)
		}
		blank = append(blank, in.times())
		in.release()
		snap := filepath.Join(dir, "snap.raw")
		if err := vol.Snapshot(snap); err != nil {
			b.Fatal(err)
		}
		in.vm.PowerOff()
		vol2, err := instancevm.Restore(snap, filepath.Join(dir, "vol2.raw"), "vol-0bbbbbbbbbbbbbbb8", 0)
		if err != nil {
			b.Fatal(err)
		}
		in = launch(b, launchOpts{drive: vol2, poll: time.Second})
		if st := in.ready(); st.Phase != bootstrap.PhaseReady {
			b.Fatalf("restored boot: %+v", st)
		}
		restored = append(restored, in.times())
		in.vm.PowerOff()
	}
	report := func(kind string, bts []bootTimes) {
		var cloudInit, own, wait, total, unpack, docker, containers, reloads float64
		for _, bt := range bts {
			cloudInit += bt.UserData - bt.CloudInit
			own += bt.own()
			wait += bt.volumeWait()
			total += bt.Ready - bt.CloudInit
			unpack += bt.Bootstrap - bt.UserData
			reloads += bt.ReloadsSecs
			for _, s := range bt.phaseSpans() {
				switch s.name {
				case bootstrap.PhaseStartingDocker:
					docker += s.secs
				case bootstrap.PhaseStartingContainers:
					containers += s.secs
				}
			}
		}
		n := float64(len(bts))
		b.ReportMetric(own/n, kind+"-own-s")
		b.ReportMetric(total/n, kind+"-cloudinit-to-ready-s")
		b.ReportMetric(cloudInit/n, kind+"-cloudinit-s")
		b.ReportMetric(wait/n, kind+"-volwait-s")
		b.ReportMetric(unpack/n, kind+"-unpack-s")
		b.ReportMetric(reloads/n, kind+"-reloads-s")
		b.ReportMetric(docker/n, kind+"-docker-s")
		b.ReportMetric(containers/n, kind+"-containers-s")
	}
	report("blank", blank)
	report("restored", restored)
}
