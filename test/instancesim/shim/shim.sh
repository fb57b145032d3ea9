#!/bin/bash
# Stands in for the system commands the xdrive instance scripts run (docker,
# systemctl, mkfs, mount, ...), for the bootstrap's unit tests
# (internal/bootstrap) and for every simulated instance (test/instancesim).
# Linked under each command's name in a bin directory that comes first on
# PATH. Nothing here touches the real system. Every call is logged to
# $SHIM_STATE/calls, and a little state is kept in $SHIM_STATE:
#   run-NAME        NUL-separated argv of the last `docker run` of NAME
#   docker-down     Docker is stopped
#   mounts          "TARGET SOURCE" lines; rootsrc is the source of /
#   sshd-restarted  sshd was restarted (after the bootstrap installed its keys)
#   blkid-rc        forces blkid's exit status
#   umount-busy     how many more umounts fail as busy
# The drive is kept in one of two ways:
#   - SHIM_VOLUME_DIR unset (unit tests): fs/DEV holds DEV's filesystem type,
#     mount only records, and Docker's containers/NAME (its state: running,
#     exited, ...) and images/REF are in $SHIM_STATE;
#   - SHIM_VOLUME_DIR set (a simulated instance): the drive is the device
#     $SHIM_DRIVE_DEV, and its "disk" is $SHIM_VOLUME_DIR (one directory per
#     EBS volume, kept across instances): fstype holds its filesystem type,
#     data/ its files, and mount links the mount point to data/. Docker keeps
#     its containers and images under its data-root (on the drive, as
#     /etc/docker/daemon.json says), so they move with the drive.
set -u
S=${SHIM_STATE:?}
ROOT=${XDRIVE_ROOT:-}
VOLUME=${SHIM_VOLUME_DIR:-}
name=${0##*/}
{
	printf '%s' "$name"
	printf ' %q' "$@"
	printf '\n'
} >>"$S/calls"

last_arg() { local a; for a in "$@"; do :; done; printf '%s' "$a"; }

# fs_file DEV: the file that holds DEV's filesystem type. With a volume
# directory only the drive has one; every other device is refused.
fs_file() {
	local dev=${1##*/}
	if [[ -z $VOLUME ]]; then
		printf '%s' "$S/fs/$dev"
		return
	fi
	[[ $dev == "${SHIM_DRIVE_DEV:?}" ]] || return 1
	printf '%s' "$VOLUME/fstype"
}

# docker_dir: where Docker keeps its containers and images.
docker_dir() {
	if [[ -z $VOLUME ]]; then
		printf '%s' "$S"
		return
	fi
	local dr
	dr=$(sed -n 's/.*"data-root": *"\([^"]*\)".*/\1/p' "$ROOT/etc/docker/daemon.json" 2>/dev/null)
	[[ -n $dr ]] || return 1
	printf '%s%s' "$ROOT" "$dr"
}

fake_docker() {
	local dr cmd f argv=("$@")
	if [[ -e $S/docker-down ]] || ! dr=$(docker_dir); then
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
	[[ -e $S/blkid-rc ]] && exit "$(<"$S/blkid-rc")"
	f=$(fs_file "$(last_arg "$@")") || exit 2
	[[ -s $f ]] || exit 2
	cat "$f"
	;;
mkfs.*)
	f=$(fs_file "$(last_arg "$@")") || {
		echo "$name: refusing a device that is not the drive" >&2
		exit 1
	}
	if [[ -n $VOLUME ]]; then
		rm -rf "$VOLUME/data"
		mkdir -p "$VOLUME/data"
	fi
	mkdir -p "${f%/*}"
	echo "${name#mkfs.}" >"$f"
	;;
mount)
	dev=${*: -2:1}
	target=$(last_arg "$@")
	if [[ -n $VOLUME ]]; then
		fs_file "$dev" >/dev/null || { echo "mount: $dev: not the drive" >&2; exit 32; }
		[[ -d $target && ! -L $target ]] || { echo "mount: $target: mount point does not exist" >&2; exit 32; }
		rmdir "$target" || { echo "mount: $target: mount point not empty" >&2; exit 32; }
		mkdir -p "$VOLUME/data"
		ln -s "$VOLUME/data" "$target"
	fi
	echo "$target $dev" >>"$S/mounts"
	;;
umount)
	target=$1
	busy=$(cat "$S/umount-busy" 2>/dev/null || echo 0)
	if ((busy > 0)); then
		echo $((busy - 1)) >"$S/umount-busy"
		echo "umount: $target: target is busy." >&2
		exit 32
	fi
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
		cat "$S/rootsrc"
		exit
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
ssh-keygen) echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake" ;;
*) ;; # resize2fs, xfs_growfs, nvidia-ctk, sync, fuser, sshd -t: nothing to do
esac
