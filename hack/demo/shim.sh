#!/bin/bash
# xdrive demo: stands in for the system commands the xdrive instance scripts
# run (docker, systemctl, mkfs, mount, ...). Linked under each command's name
# in a per-instance bin directory that comes first on PATH. Every call is
# logged to $SHIM_STATE/calls. Nothing here touches the real system:
#   - the drive's "disk" is $SHIM_VOLUME_DIR (one directory per EBS volume,
#     kept by the demo across instances): fstype holds its filesystem type,
#     data/ its files; mount links the mount point to data/;
#   - Docker keeps its containers and images as small files under its
#     data-root (on the drive, as /etc/docker/daemon.json says).
set -u
S=${SHIM_STATE:?}
ROOT=${XDRIVE_ROOT:?}
name=${0##*/}
{
	printf '%s' "$name"
	printf ' %q' "$@"
	printf '\n'
} >>"$S/calls"

last_arg() { local a; for a in "$@"; do :; done; printf '%s' "$a"; }

# The drive is the only non-root disk; every other device is refused.
volume_dir() {
	local dev=${1##*/}
	[[ $dev == "${SHIM_DRIVE_DEV:?}" ]] || return 1
	printf '%s' "${SHIM_VOLUME_DIR:?}"
}

data_root() {
	local dr
	dr=$(sed -n 's/.*"data-root": *"\([^"]*\)".*/\1/p' "$ROOT/etc/docker/daemon.json" 2>/dev/null)
	[[ -n $dr ]] || return 1
	printf '%s%s' "$ROOT" "$dr"
}

fake_docker() {
	local dr cmd f argv=("$@")
	if [[ -e $S/docker-down ]] || ! dr=$(data_root); then
		echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
		return 1
	fi
	mkdir -p "$dr/containers" "$dr/images"
	cmd=$1
	shift
	case $cmd in
	info) ;;
	ps)
		for f in "$dr"/containers/*; do
			if [[ -e $f ]]; then printf '%s %s\n' "${f##*/}" "$(<"$f")"; fi
		done
		;;
	image) [[ $1 == inspect && -e $dr/images/${2//\//_} ]] ;;
	rm) rm "$dr/containers/$1" ;;
	commit) echo "committed from container $1 at $(date -u +%FT%TZ)" >"$dr/images/${2//\//_}" ;;
	stop)
		while (($#)); do
			case $1 in
			-t) shift ;;
			*) if [[ -e $dr/containers/$1 ]]; then echo exited >"$dr/containers/$1"; fi ;;
			esac
			shift
		done
		;;
	run)
		local cname=
		while (($#)); do
			case $1 in
			--name) cname=$2 && shift ;;
			esac
			shift
		done
		[[ -e $dr/containers/$cname ]] && return 125
		echo running >"$dr/containers/$cname"
		printf '%s\0' "${argv[@]}" >"$S/run-$cname"
		echo "0123456789abcdef"
		;;
	*) return 1 ;;
	esac
}

case $name in
docker) fake_docker "$@" ;;
systemctl)
	case "$1 ${2:-}" in
	"stop docker"*) touch "$S/docker-down" ;;
	"restart docker" | "start docker") rm -f "$S/docker-down" ;;
	"restart sshd" | "restart ssh") touch "$S/sshd-restarted" ;;
	esac
	;;
blkid)
	vd=$(volume_dir "$(last_arg "$@")") || exit 2
	[[ -s $vd/fstype ]] || exit 2
	cat "$vd/fstype"
	;;
mkfs.*)
	vd=$(volume_dir "$(last_arg "$@")") || { echo "$name: refusing a device that is not the drive" >&2; exit 1; }
	rm -rf "$vd/data"
	mkdir -p "$vd/data"
	echo "${name#mkfs.}" >"$vd/fstype"
	;;
mount)
	dev=${*: -2:1}
	target=$(last_arg "$@")
	vd=$(volume_dir "$dev") || { echo "mount: $dev: not the drive" >&2; exit 32; }
	[[ -d $target && ! -L $target ]] || { echo "mount: $target: mount point does not exist" >&2; exit 32; }
	rmdir "$target" || { echo "mount: $target: mount point not empty" >&2; exit 32; }
	mkdir -p "$vd/data"
	ln -s "$vd/data" "$target"
	echo "$target $dev" >>"$S/mounts"
	;;
umount)
	target=$1
	if [[ -L $target ]]; then
		rm "$target" && mkdir -p "$target"
	fi
	if [[ -e $S/mounts ]]; then
		grep -v "^$target " "$S/mounts" >"$S/mounts.new"
		mv "$S/mounts.new" "$S/mounts"
	fi
	;;
findmnt)
	target=$(last_arg "$@")
	if [[ $target == "$ROOT/" ]]; then
		echo /dev/nvme0n1p1
		exit 0
	fi
	[[ -e $S/mounts ]] || exit 1
	while read -r t src; do
		if [[ $t == "$target" ]]; then
			echo "$src"
			exit 0
		fi
	done <"$S/mounts"
	exit 1
	;;
*) ;; # resize2fs, xfs_growfs, nvidia-ctk, sync, fuser, sshd -t: nothing to do
esac
