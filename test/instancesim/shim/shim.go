// Package shim holds shim.sh, the stand-in for the system commands that the
// xdrive instance scripts run (docker, systemctl, mkfs, mount, ...). The
// bootstrap's unit tests and every simulated instance (test/instancesim)
// put it first on PATH; shim.sh's header says what each command does.
package shim

import (
	_ "embed"
	"os"
	"path/filepath"
)

// Script is shim.sh.
//
//go:embed shim.sh
var Script []byte

// Commands are the system commands a simulated instance replaces with the
// shim. Everything else the scripts run (bash, tar, base64, ssh-keygen,
// flock, curl, timeout, ...) is the real thing.
var Commands = []string{
	"docker", "systemctl", "blkid", "mkfs.ext4", "mkfs.xfs", "mount", "umount", "findmnt",
	"resize2fs", "xfs_growfs", "nvidia-ctk", "sync", "fuser", "sshd", "who", "ss", "nvidia-smi",
	"iptables", "ip6tables", "wall", "udevadm",
}

// Install writes the shim into bin as xdrive-shim and links each command's
// name to it; with no commands, Commands. Put bin first on PATH, and set
// SHIM_STATE (and, for a simulated instance, SHIM_VOLUME_DIR and
// SHIM_DRIVE_DEV) in the environment of the scripts.
func Install(bin string, commands ...string) error {
	if len(commands) == 0 {
		commands = Commands
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	path := filepath.Join(bin, "xdrive-shim")
	if err := os.WriteFile(path, Script, 0o755); err != nil {
		return err
	}
	for _, name := range commands {
		if err := os.Symlink("xdrive-shim", filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	return nil
}
