// Package bootstrap renders the EC2 user-data that prepares an xdrive
// instance: it finds and mounts the drive, puts Docker's data-root on it,
// runs the workstation's containers, installs the operator's SSH keys, the
// xdrive-ctl command and the spot interruption watcher.
package bootstrap

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

const (
	// MaxUserDataSize is EC2's limit on user-data, before base64 encoding.
	MaxUserDataSize = 16 * 1024
	// DefaultMountPath is where the drive is mounted when Params.MountPath is empty.
	DefaultMountPath = "/v1"
	// CtlPath is the control command the operator runs over SSH.
	CtlPath = "/usr/local/sbin/xdrive-ctl"
	// CommittedTag is the tag of the image a container is committed to on release.
	CommittedTag = "xdrive-latest"
	// DriveDevice is the block device mapping name the drive's volume gets
	// on every instance, at launch (instances.Launch) and on reattach.
	DriveDevice = "/dev/sdf"
	// DefaultHookTimeout is a preStop hook's timeoutSeconds when it sets none.
	DefaultHookTimeout = 30
)

// Phases reported by `xdrive-ctl status`.
const (
	PhasePending            = "pending"
	PhaseConfiguringSSH     = "configuring-ssh"
	PhaseWaitingForDrive    = "waiting-for-drive"
	PhasePreparingDrive     = "preparing-drive"
	PhaseStartingDocker     = "starting-docker"
	PhaseStartingContainers = "starting-containers"
	PhaseReady              = "ready"
	PhaseFailed             = "failed"
	PhaseReleasing          = "releasing"
	PhaseReleased           = "released"
	// SpotNoticeWord is what `xdrive-ctl release` prints when the
	// instance's watcher saw a spot notice.
	SpotNoticeWord = "spot-notice"
)

// Params is what the user-data needs to know.
type Params struct {
	// MountPath is where the drive is mounted; DefaultMountPath if empty.
	MountPath string
	// Filesystem is made on a blank drive; ext4 if empty.
	Filesystem v1alpha1.Filesystem
	// DeviceName is the drive's block device mapping name (informational);
	// DriveDevice if empty.
	DeviceName string
	// VolumeID, when set, is the drive's volume. When empty (the volume is
	// born with the instance), the bootstrap waits for the operator to pass
	// it with `xdrive-ctl status --drive`; it never guesses.
	VolumeID string
	// BlankDrive says the operator created the drive's volume blank. Only
	// then may the bootstrap format it; a restored volume is never formatted.
	BlankDrive bool
	// Prewarm asks the instance to read every block of the drive once, in
	// the background at idle priority, after mounting it (`xdrive-ctl
	// prewarm`): for a volume restored from a snapshot, never a blank one.
	Prewarm bool
	// GPU says the instance has NVIDIA GPUs.
	GPU bool
	// Containers run under Docker, with Docker's data-root on the drive.
	Containers []v1alpha1.Container
	// HostKeyPEM is the instance's ed25519 SSH host key, unencrypted, in OpenSSH PEM form.
	HostKeyPEM string
	// AuthorizedKey is the public key, in authorized_keys form, that may log in as root.
	AuthorizedKey string
	// WorkstationKey is "namespace/name" of the Workstation (informational).
	WorkstationKey string
}

// Status is what `xdrive-ctl status` prints.
type Status struct {
	Phase    string `json:"phase"`
	VolumeID string `json:"volumeID"`
	Mounted  bool   `json:"mounted"`
	// Containers maps each spec container to its Docker state: running,
	// exited, created, ..., missing, or unknown when Docker is not running.
	Containers map[string]string `json:"containers"`
	Released   bool              `json:"released"`
	// ReleasedAt is the RFC 3339 time of the release, or empty.
	ReleasedAt string `json:"releasedAt"`
	// Rebalance is true once IMDS has shown a rebalance recommendation.
	Rebalance bool `json:"rebalance"`
	// SpotNotice is true when the instance's watcher saw a spot
	// interruption notice on IMDS: a release then is the watcher's, or
	// came after the notice.
	SpotNotice bool `json:"spotNotice"`
	// Message is the last error or warning, or empty.
	Message string `json:"message"`
	// PreserveError says which containers' changes could not be carried
	// over at the last boot (they were kept, with their previous settings).
	PreserveError string `json:"preserveError,omitempty"`
	// StoreError says Docker keeps data off the drive; containers were not started.
	StoreError string `json:"storeError,omitempty"`
	// Activity holds the idle auto-stop's signals, when asked for (IdleCheck).
	Activity []Signal `json:"activity,omitempty"`
	// PreStop holds the preStop hooks' outcomes, once a release ran them.
	PreStop []HookOutcome `json:"preStop,omitempty"`
	// Prewarm is the progress of `xdrive-ctl prewarm`, once it has started.
	Prewarm *Prewarm `json:"prewarm,omitempty"`
	// ExtendUntil is the RFC 3339 time `xdrive-ctl extend` last asked the
	// idle stop to wait for, or empty; ExtendBy is the user who asked.
	ExtendUntil string `json:"extendUntil,omitempty"`
	ExtendBy    string `json:"extendBy,omitempty"`
}

// Prewarm is how far `xdrive-ctl prewarm` has read the drive's volume.
type Prewarm struct {
	VolumeID   string `json:"volumeID"`
	BytesRead  int64  `json:"bytesRead"`
	BytesTotal int64  `json:"bytesTotal"`
	// BytesPerSecond is the read rate of its current (or last) run; 0 when not known yet.
	BytesPerSecond int64 `json:"bytesPerSecond"`
}

// Done reports that every block has been read.
func (p Prewarm) Done() bool { return p.BytesTotal > 0 && p.BytesRead >= p.BytesTotal }

// Percent is the share of the volume read, rounded down: 100 only when done.
func (p Prewarm) Percent() int32 {
	if p.Done() {
		return 100
	}
	if p.BytesTotal <= 0 || p.BytesRead <= 0 {
		return 0
	}
	return int32(min(p.BytesRead*100/p.BytesTotal, 99))
}

// Left is the time the read needs at its rate so far; false when the rate is not known.
func (p Prewarm) Left() (time.Duration, bool) {
	if p.Done() {
		return 0, true
	}
	if p.BytesPerSecond <= 0 {
		return 0, false
	}
	secs := (p.BytesTotal - p.BytesRead + p.BytesPerSecond - 1) / p.BytesPerSecond
	return time.Duration(secs) * time.Second, true
}

// ParseStatus decodes the output of `xdrive-ctl status`.
func ParseStatus(out []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(bytes.TrimSpace(out), &s); err != nil {
		return Status{}, fmt.Errorf("parse xdrive-ctl status %q: %w", truncate(string(out), 200), err)
	}
	if s.Phase == "" {
		return Status{}, fmt.Errorf("parse xdrive-ctl status %q: no phase", truncate(string(out), 200))
	}
	return s, nil
}

//go:embed scripts
var scripts embed.FS

// installed maps each embedded file to where it is installed and its mode.
var installed = []struct {
	src, dst string
	mode     int64
}{
	{"xdrive-lib.sh", "usr/local/lib/xdrive/xdrive-lib.sh", 0o644},
	{"xdrive-bootstrap.sh", "usr/local/sbin/xdrive-bootstrap", 0o755},
	{"xdrive-ctl.sh", "usr/local/sbin/xdrive-ctl", 0o755},
	{"xdrive-watch.sh", "usr/local/sbin/xdrive-watch", 0o755},
	{"xdrive-bootstrap.service", "etc/systemd/system/xdrive-bootstrap.service", 0o644},
	{"xdrive-watch.service", "etc/systemd/system/xdrive-watch.service", 0o644},
	{"sshd-xdrive.conf", "etc/ssh/sshd_config.d/00-xdrive.conf", 0o644},
}

// Render returns the user-data: a bash script that unpacks the xdrive
// scripts and settings and runs the bootstrap, gzipped, as cloud-init reads
// it (Script returns the script). Gzip takes back base64's third, which
// EC2's 16 KiB would count. The same Params always give the same bytes.
func Render(p Params) ([]byte, error) {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	installed, err := installedArchive()
	if err != nil {
		return nil, err
	}
	own, err := tarGz(p.files(), true)
	if err != nil {
		return nil, err
	}
	// Two gzip members, one archive: gzip -d (tar -z) unpacks their concatenation.
	archive := append(slices.Clip(installed), own...)
	tmpl, err := scripts.ReadFile("scripts/user-data.sh")
	if err != nil {
		return nil, err
	}
	out := strings.NewReplacer(
		"@WORKSTATION@", p.WorkstationKey,
		"@ARCHIVE@", wrap(base64.StdEncoding.EncodeToString(archive), 1024),
	).Replace(string(tmpl))
	var buf bytes.Buffer
	if err := compress(&buf, []byte(out)); err != nil {
		return nil, fmt.Errorf("compressing the user-data: %w", err)
	}
	if buf.Len() > MaxUserDataSize {
		return nil, fmt.Errorf("user-data is %d bytes gzipped, over EC2's limit of %d: shorten the containers' command, args or env", buf.Len(), MaxUserDataSize)
	}
	return buf.Bytes(), nil
}

// Script returns the script that cloud-init runs from a user-data: the
// user-data itself, or, as cloud-init does, its gunzipped content.
func Script(userData []byte) ([]byte, error) {
	if !bytes.HasPrefix(userData, []byte{0x1f, 0x8b}) {
		return userData, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(userData))
	if err != nil {
		return nil, fmt.Errorf("gunzipping the user-data: %w", err)
	}
	script, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzipping the user-data: %w", err)
	}
	return script, nil
}

func (p Params) withDefaults() Params {
	if p.MountPath == "" {
		p.MountPath = DefaultMountPath
	}
	if p.Filesystem == "" {
		p.Filesystem = v1alpha1.FilesystemExt4
	}
	if p.DeviceName == "" {
		p.DeviceName = DriveDevice
	}
	return p
}

type file struct {
	path string
	mode int64
	data []byte
}

// installedArchive is the archive's first part, the same in every user-data:
// the installed scripts and units, tarred and gzipped once per process.
var installedArchive = sync.OnceValues(func() ([]byte, error) {
	var fs []file
	for _, f := range installed {
		data, err := installedData(f.src)
		if err != nil {
			return nil, err
		}
		fs = append(fs, file{f.dst, f.mode, data})
	}
	return tarGz(fs, false)
})

// files lists what the user-data installs for this instance, in a fixed
// order, after the installed scripts (installedArchive).
func (p Params) files() []file {
	var fs []file
	source := "snapshot"
	if p.BlankDrive {
		source = "blank"
	}
	config := fmt.Sprintf("MOUNT_PATH=%s\nFILESYSTEM=%s\nDEVICE_NAME=%s\nVOLUME_ID=%s\nDRIVE_SOURCE=%s\nPREWARM=%t\nGPU=%t\nWORKSTATION=%s\n",
		p.MountPath, p.Filesystem, p.DeviceName, p.VolumeID, source, p.Prewarm, p.GPU, p.WorkstationKey)
	fs = append(fs,
		file{"etc/ssh/ssh_host_ed25519_key", 0o600, []byte(strings.TrimSpace(p.HostKeyPEM) + "\n")},
		file{"etc/ssh/xdrive_authorized_keys/root", 0o644, []byte(strings.TrimSpace(p.AuthorizedKey) + "\n")},
		file{"etc/xdrive/config", 0o600, []byte(config)},
	)
	var names strings.Builder
	for _, c := range p.Containers {
		names.WriteString(c.Name + "\n")
		dir := "etc/xdrive/containers/" + c.Name + "/"
		opts, argv := dockerArgs(c)
		gpus := c.GPUs
		if gpus == "" {
			gpus = v1alpha1.GPUModeAuto
		}
		fs = append(fs,
			// 0600: opts holds env values, which only root should read.
			// One file for the image and the GPU mode: each file costs a
			// tar header of the user-data's limited size.
			file{dir + "image", 0o600, []byte(c.Image + "\n" + string(gpus) + "\n")},
			file{dir + "opts", 0o600, nulList(opts)},
			file{dir + "argv", 0o600, nulList(argv)},
		)
		if h := c.PreStop; h != nil {
			// The timeout, then the exec: one file, only for a container with a hook.
			timeout := cmp.Or(h.TimeoutSeconds, DefaultHookTimeout)
			fs = append(fs, file{dir + "prestop", 0o600, nulList(append([]string{strconv.Itoa(int(timeout))}, h.Exec...))})
		}
	}
	fs = append(fs, file{"etc/xdrive/containers.list", 0o644, []byte(names.String())})
	return fs
}

// installedData is an embedded file as installed: a script loses its
// comment lines (not its shebang), blank lines and indentation, to fit
// EC2's user-data limit (no installed script has a here-document).
func installedData(src string) ([]byte, error) {
	data, err := scripts.ReadFile("scripts/" + src)
	if err != nil || !strings.HasSuffix(src, ".sh") {
		return data, err
	}
	var out bytes.Buffer
	for i, line := range strings.SplitAfter(string(data), "\n") {
		code := strings.TrimLeft(line, " \t")
		if i > 0 && (strings.HasPrefix(code, "#") || code == "\n") {
			continue
		}
		out.WriteString(code)
	}
	return out.Bytes(), nil
}

// dockerArgs splits a container into `docker run` options and the
// arguments after the image. A command replaces the entrypoint, which also
// drops the image's default command, as in Kubernetes.
func dockerArgs(c v1alpha1.Container) (opts, argv []string) {
	for _, port := range c.Ports {
		host, proto := port.HostPort, port.Protocol
		if host == 0 {
			host = port.ContainerPort
		}
		if proto == "" {
			proto = "tcp"
		}
		opts = append(opts, "-p", fmt.Sprintf("%d:%d/%s", host, port.ContainerPort, proto))
	}
	for _, e := range c.Env {
		opts = append(opts, "-e", e.Name+"="+e.Value)
	}
	if len(c.Command) > 0 {
		opts = append(opts, "--entrypoint", c.Command[0])
		argv = append(argv, c.Command[1:]...)
	}
	return opts, append(argv, c.Args...)
}

// nulList encodes items for bash's `mapfile -d ”`.
func nulList(items []string) []byte {
	var b bytes.Buffer
	for _, s := range items {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// gzipWriters are reused: each holds a megabyte of compressor state.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestCompression) // a valid level: no error
	return zw
}}

// compress writes data to w as one gzip member.
func compress(w io.Writer, data []byte) error {
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(w)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	return zw.Close()
}

// tarGz packs files, owned by root, with a fixed time so output is stable,
// into one gzip member; last ends the archive, else more files follow.
func tarGz(files []file, last bool) ([]byte, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.data)),
			ModTime: mtime, Uname: "root", Gname: "root",
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	end := tw.Flush // pads the last file: the next part's tar goes on from here
	if last {
		end = tw.Close
	}
	if err := end(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := compress(&buf, raw.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unpack returns the files in a rendered user-data's archive, by path.
func Unpack(userData []byte) (map[string][]byte, error) {
	script, err := Script(userData)
	if err != nil {
		return nil, err
	}
	_, rest, ok := strings.Cut(string(script), "<<'XDRIVE_ARCHIVE'")
	if !ok {
		return nil, errors.New("no archive in user-data")
	}
	_, rest, _ = strings.Cut(rest, "\n")
	encoded, _, ok := strings.Cut(rest, "\nXDRIVE_ARCHIVE\n")
	if !ok {
		return nil, errors.New("archive not terminated")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(encoded, "\n", ""))
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[hdr.Name] = data
	}
}

func wrap(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + "\n")
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
