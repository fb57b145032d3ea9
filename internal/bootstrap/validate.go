package bootstrap

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

var (
	mountPathRE   = regexp.MustCompile(`^(/[A-Za-z0-9_.-]+)+$`)
	deviceNameRE  = regexp.MustCompile(`^/dev/[a-z0-9]+$`)
	volumeIDRE    = regexp.MustCompile(`^vol-[0-9a-f]{8,17}$`)
	workstationRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	containerRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	imageRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$`)
	envNameRE     = regexp.MustCompile(`^[^=\x00]+$`)

	// systemDirs may not be the mount path, nor hold it when marked true.
	systemDirs = map[string]bool{
		"/bin": false, "/home": false, "/lib": false, "/lib64": false, "/mnt": false,
		"/opt": false, "/root": false, "/sbin": false, "/srv": false, "/tmp": false, "/var": false,
		"/boot": true, "/dev": true, "/etc": true, "/proc": true, "/run": true, "/sys": true, "/usr": true,
		"/var/lib": false, "/var/lib/docker": true, "/var/lib/xdrive": true,
	}

	authorizedKeyTypes = map[string]bool{
		"ssh-ed25519": true, "ssh-rsa": true, "ecdsa-sha2-nistp256": true,
		"ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true,
		"sk-ssh-ed25519@openssh.com": true, "sk-ecdsa-sha2-nistp256@openssh.com": true,
	}
)

// Limits from the Workstation API.
const (
	maxContainers = 16
	maxCommand    = 64
	maxArgs       = 256
	maxEnv        = 128
	maxPorts      = 32
	maxImage      = 512
	// A preStop hook's exec: items and the length of each; its timeout in seconds.
	maxHookExec    = 8
	maxHookItem    = 128
	maxHookTimeout = 600
)

// Validate reports every problem with p, after defaults are applied.
func (p Params) Validate() error {
	p = p.withDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if err := checkMountPath(p.MountPath); err != nil {
		errs = append(errs, err)
	}
	if p.Filesystem != v1alpha1.FilesystemExt4 && p.Filesystem != v1alpha1.FilesystemXFS {
		add("filesystem %q: must be ext4 or xfs", p.Filesystem)
	}
	if !deviceNameRE.MatchString(p.DeviceName) {
		add("deviceName %q: must look like %s", p.DeviceName, DriveDevice)
	}
	if p.VolumeID != "" && !volumeIDRE.MatchString(p.VolumeID) {
		add("volumeID %q: must look like vol-0123456789abcdef0", p.VolumeID)
	}
	if p.Prewarm && p.BlankDrive {
		add("prewarm: only for a drive restored from a snapshot, not a blank one")
	}
	if p.WorkstationKey != "" && (len(p.WorkstationKey) > 317 || !workstationRE.MatchString(p.WorkstationKey)) {
		add("workstationKey %q: must be namespace/name", p.WorkstationKey)
	}
	if err := checkHostKey(p.HostKeyPEM); err != nil {
		errs = append(errs, fmt.Errorf("hostKeyPEM: %w", err))
	}
	if err := checkAuthorizedKey(p.AuthorizedKey); err != nil {
		errs = append(errs, fmt.Errorf("authorizedKey: %w", err))
	}
	errs = append(errs, checkContainers(p.Containers)...)
	return errors.Join(errs...)
}

func checkMountPath(path string) error {
	if len(path) > 255 || !mountPathRE.MatchString(path) {
		return fmt.Errorf("mountPath %q: must be an absolute path of letters, digits, '_', '.' and '-'", path)
	}
	for _, part := range strings.Split(path[1:], "/") {
		if part == "." || part == ".." {
			return fmt.Errorf("mountPath %q: must not contain . or .. segments", path)
		}
	}
	for dir, tree := range systemDirs {
		if path == dir || tree && strings.HasPrefix(path, dir+"/") {
			return fmt.Errorf("mountPath %q: is a system directory", path)
		}
	}
	return nil
}

// checkHostKey accepts an unencrypted ed25519 key in OpenSSH's
// "openssh-key-v1" format, as sshd loads it without a passphrase.
func checkHostKey(s string) error {
	block, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil || len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("must be exactly one PEM block")
	}
	if block.Type != "OPENSSH PRIVATE KEY" {
		return fmt.Errorf("PEM type %q: must be OPENSSH PRIVATE KEY", block.Type)
	}
	const magic = "openssh-key-v1\x00"
	data, ok := bytes.CutPrefix(block.Bytes, []byte(magic))
	if !ok {
		return errors.New("not an openssh-key-v1 key")
	}
	r := sshReader{data: data}
	cipher, kdf, _ := r.str(), r.str(), r.str()
	nkeys := r.uint32()
	pub := sshReader{data: r.str()}
	keyType := pub.str()
	switch {
	case r.err || pub.err:
		return errors.New("truncated openssh-key-v1 key")
	case string(cipher) != "none" || string(kdf) != "none":
		return errors.New("key is encrypted; sshd needs it unencrypted")
	case nkeys != 1:
		return fmt.Errorf("holds %d keys, want 1", nkeys)
	case string(keyType) != "ssh-ed25519":
		return fmt.Errorf("key type %q: must be ssh-ed25519", keyType)
	}
	return nil
}

// checkAuthorizedKey accepts one "type base64 [comment]" line without options.
func checkAuthorizedKey(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return errors.New("required")
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return errors.New("must be a single line")
	}
	fields := strings.Fields(s)
	if len(fields) < 2 || !authorizedKeyTypes[fields[0]] {
		return fmt.Errorf("must start with a key type such as ssh-ed25519, got %q", truncate(s, 40))
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return fmt.Errorf("key data: %w", err)
	}
	r := sshReader{data: blob}
	if t := r.str(); r.err || string(t) != fields[0] {
		return fmt.Errorf("key data does not hold a %s key", fields[0])
	}
	return nil
}

func checkContainers(cs []v1alpha1.Container) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(cs) > maxContainers {
		add("containers: %d, at most %d", len(cs), maxContainers)
	}
	names := map[string]bool{}
	hostPorts := map[string]string{}
	for i, c := range cs {
		at := fmt.Sprintf("containers[%d] (%s)", i, c.Name)
		if len(c.Name) > 63 || !containerRE.MatchString(c.Name) {
			add("%s: name must be a DNS label", at)
		} else if names[c.Name] {
			add("%s: duplicate name", at)
		}
		names[c.Name] = true
		if len(c.Image) > maxImage || !imageRE.MatchString(c.Image) {
			add("%s: image %q is not a Docker image reference", at, c.Image)
		}
		switch c.GPUs {
		case "", v1alpha1.GPUModeAuto, v1alpha1.GPUModeAll, v1alpha1.GPUModeNone:
		default:
			add("%s: gpus %q: must be Auto, All or None", at, c.GPUs)
		}
		if len(c.Command) > maxCommand || len(c.Args) > maxArgs || len(c.Env) > maxEnv || len(c.Ports) > maxPorts {
			add("%s: at most %d command items, %d args, %d env vars and %d ports", at, maxCommand, maxArgs, maxEnv, maxPorts)
		}
		if len(c.Command) > 0 && c.Command[0] == "" {
			add("%s: command[0] is empty", at)
		}
		for j, s := range append(append([]string{}, c.Command...), c.Args...) {
			if strings.ContainsRune(s, 0) {
				add("%s: command/args item %d contains a NUL byte", at, j)
			}
		}
		if err := checkHook(c.PreStop); err != nil {
			add("%s: preStop: %v", at, err)
		}
		for _, e := range c.Env {
			switch {
			case !envNameRE.MatchString(e.Name):
				add("%s: env name %q: must be non-empty, without '=' or NUL", at, e.Name)
			case e.ValueFrom != nil:
				add("%s: env %s: only literal values are supported", at, e.Name)
			case strings.ContainsRune(e.Value, 0):
				add("%s: env %s: value contains a NUL byte", at, e.Name)
			}
		}
		for _, port := range c.Ports {
			host := port.HostPort
			if host == 0 {
				host = port.ContainerPort
			}
			proto := port.Protocol
			if proto == "" {
				proto = "tcp"
			}
			if port.ContainerPort < 1 || port.ContainerPort > 65535 || host < 1 || host > 65535 || (proto != "tcp" && proto != "udp") {
				add("%s: port %d:%d/%s: ports must be 1-65535 and protocol tcp or udp", at, host, port.ContainerPort, proto)
				continue
			}
			key := fmt.Sprintf("%d/%s", host, proto)
			if other, dup := hostPorts[key]; dup {
				add("%s: host port %s is also published by %s", at, key, other)
			}
			hostPorts[key] = c.Name
		}
	}
	return errs
}

// checkHook bounds a preStop hook as the API does: its exec must fit the user-data.
func checkHook(h *v1alpha1.PreStopHook) error {
	if h == nil {
		return nil
	}
	if len(h.Exec) < 1 || len(h.Exec) > maxHookExec {
		return fmt.Errorf("exec: %d items, must be 1 to %d", len(h.Exec), maxHookExec)
	}
	for j, s := range h.Exec {
		if s == "" || len(s) > maxHookItem || strings.ContainsAny(s, "\x00\n") {
			return fmt.Errorf("exec[%d]: must be 1 to %d characters, without NUL or newline", j, maxHookItem)
		}
	}
	if h.TimeoutSeconds < 0 || h.TimeoutSeconds > maxHookTimeout {
		return fmt.Errorf("timeoutSeconds %d: must be 1 to %d", h.TimeoutSeconds, maxHookTimeout)
	}
	return nil
}

// sshReader reads SSH wire-format fields; err is set on truncation.
type sshReader struct {
	data []byte
	err  bool
}

func (r *sshReader) uint32() uint32 {
	if len(r.data) < 4 {
		r.err = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.data)
	r.data = r.data[4:]
	return v
}

func (r *sshReader) str() []byte {
	n := r.uint32()
	if r.err || uint64(n) > uint64(len(r.data)) {
		r.err = true
		return nil
	}
	s := r.data[:n]
	r.data = r.data[n:]
	return s
}
