#!/bin/bash
# Test double for the system commands the xdrive scripts run. Linked under
# each command's name; logs its argv to $SHIM_STATE/calls and fakes a little
# state in $SHIM_STATE:
#   containers/NAME  Docker state of container NAME (running, exited, ...)
#   images/REF       a local image REF
#   run-NAME         NUL-separated argv of the last `docker run` of NAME
#   docker-down      Docker is stopped
#   fs/DEV           filesystem type on DEV; blkid-rc forces blkid's exit
#   mounts           "TARGET SOURCE" lines; rootsrc is the source of /
#   umount-busy      how many more umounts fail as busy
set -u
S=${SHIM_STATE:?}
name=${0##*/}
{
	printf '%s' "$name"
	printf ' %q' "$@"
	printf '\n'
} >>"$S/calls"

last_arg() { local a; for a in "$@"; do :; done; printf '%s' "$a"; }

fake_docker() {
	if [[ -e $S/docker-down ]]; then
		echo "Cannot connect to the Docker daemon" >&2
		return 1
	fi
	mkdir -p "$S/containers" "$S/images"
	local cmd=$1 f argv=("$@")
	shift
	case $cmd in
	info) ;;
	ps)
		for f in "$S"/containers/*; do
			if [[ -e $f ]]; then printf '%s %s\n' "${f##*/}" "$(<"$f")"; fi
		done
		;;
	image) [[ $1 == inspect && -e $S/images/$2 ]] ;;
	rm) rm "$S/containers/$1" ;;
	commit) touch "$S/images/$2" ;;
	stop)
		for f in "$@"; do
			if [[ -e $S/containers/$f ]]; then echo exited >"$S/containers/$f"; fi
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
		[[ -e $S/containers/$cname ]] && return 125
		echo running >"$S/containers/$cname"
		printf '%s\0' "${argv[@]}" >"$S/run-$cname"
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
	esac
	;;
blkid)
	dev=$(last_arg "$@")
	[[ -e $S/blkid-rc ]] && exit "$(<"$S/blkid-rc")"
	[[ -e $S/fs/${dev##*/} ]] || exit 2
	cat "$S/fs/${dev##*/}"
	;;
mkfs.*)
	dev=$(last_arg "$@")
	mkdir -p "$S/fs"
	echo "${name#mkfs.}" >"$S/fs/${dev##*/}"
	;;
mount)
	dev=${*: -2:1}
	target=$(last_arg "$@")
	echo "$target $dev" >>"$S/mounts"
	;;
umount)
	busy=$(cat "$S/umount-busy" 2>/dev/null || echo 0)
	if ((busy > 0)); then
		echo $((busy - 1)) >"$S/umount-busy"
		echo "umount: $1: target is busy." >&2
		exit 32
	fi
	grep -v "^$1 " "$S/mounts" >"$S/mounts.new"
	mv "$S/mounts.new" "$S/mounts"
	;;
findmnt)
	target=$(last_arg "$@")
	if [[ $target == "${XDRIVE_ROOT:-}/" ]]; then
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
*) ;;
esac
