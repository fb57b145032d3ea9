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
#   docker-fail-CMD `docker CMD` fails (e.g. docker-fail-commit)
#   docker-hang-CMD `docker CMD` hangs, to test time limits
#   pause-CMD       CMD waits (touching paused-CMD) until pause-CMD is removed
#   docker-info     replaces the "root|driver|status" line of `docker info --format`
#   who, ss         what `who` and `ss` print (nothing if absent); who-fail,
#                   ss-fail make them fail
#   nvidia-smi      what `nvidia-smi` prints; it fails if absent
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
# Docker's model: containers/NAME holds a container's state; meta/NAME/ its
# labels ("key=value" lines), volumes ("name:destination" lines) and fs
# (the files it sees, one per line, changed by `docker exec NAME touch
# PATH`) and jupyter-servers (what `docker exec NAME jupyter server list`
# prints); images/REF an image: "layers N", then its "file PATH" lines and,
# for an imported image, its "change ..." lines. A commit adds a layer, an
# import has one; a missing image is pulled with 3.
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

if [[ -e $S/pause-$name ]]; then
	touch "$S/paused-$name"
	while [[ -e $S/pause-$name ]]; do sleep 0.05; done
fi

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

image_file() { printf '%s' "$dr/images/${1//\//_}"; }

# new_image REF LAYERS CHANGES...: REF with LAYERS layers, the files on stdin.
new_image() {
	local f ref=$1 layers=$2 line
	shift 2
	f=$(image_file "$ref")
	{
		echo "layers $layers"
		while IFS= read -r line; do echo "file $line"; done
		for line in "$@"; do echo "change $line"; done
	} >"$f.tmp" && mv "$f.tmp" "$f"
}

layers() { sed -n 's/^layers //p' "$(image_file "$1")"; }

fake_docker() {
	local dr cmd f argv=("$@")
	if [[ -e $S/docker-down ]] || ! dr=$(docker_dir); then
		echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
		return 1
	fi
	mkdir -p "$dr/containers" "$dr/images" "$dr/meta"
	cmd=$1
	shift
	if [[ -e $S/docker-hang-$cmd ]]; then exec sleep 600; fi
	if [[ -e $S/docker-fail-$cmd ]]; then
		echo "Error response from daemon: $cmd failed (shim)" >&2
		return 1
	fi
	case $cmd in
	info)
		if [[ ${1:-} == --format ]]; then
			if [[ -e $S/docker-info ]]; then
				cat "$S/docker-info"
			else
				printf '%s|overlay2|[["Backing Filesystem","extfs"]]\n' \
					"$(sed -n 's/.*"data-root": *"\([^"]*\)".*/\1/p' "$ROOT/etc/docker/daemon.json")"
			fi
		fi
		;;
	ps)
		for f in "$dr"/containers/*; do
			if [[ -e $f ]]; then printf '%s %s\n' "${f##*/}" "$(<"$f")"; fi
		done
		;;
	inspect)
		local format=$2 c=$3
		[[ -e $dr/containers/$c ]] || { echo "Error: No such object: $c" >&2; return 1; }
		if [[ $format =~ Labels\ \"([^\"]+)\" ]]; then
			sed -n "s|^${BASH_REMATCH[1]}=||p" "$dr/meta/$c/labels"
		elif [[ $format == *.Mounts* ]]; then
			cat "$dr/meta/$c/volumes" 2>/dev/null || true
		fi
		;;
	image)
		[[ $1 == inspect ]] || return 1
		local ref=${*: -1}
		f=$(image_file "$ref")
		[[ -e $f ]] || { echo "Error: No such image: $ref" >&2; return 1; }
		case ${3:-} in
		*RootFS.Layers*) layers "$ref" ;;
		*Entrypoint*) echo 'null|["/bin/sh"]|/work|' ;;
		*Config.Env*) printf 'PATH=/usr/local/bin:/usr/bin\nLANG=C.UTF-8\n' ;;
		esac
		;;
	rm)
		[[ $(<"$dr/containers/$1") != running ]] || { echo "Error: container $1 is running: stop it first" >&2; return 1; }
		rm -r "$dr/containers/$1" "$dr/meta/$1"
		;;
	commit)
		local c=$1 ref=$2 base
		base=$(<"$dr/meta/$c/image")
		new_image "$ref" $(($(layers "$base") + 1)) <"$dr/meta/$c/fs"
		;;
	export) cat "$dr/meta/$1/fs" ;;
	rmi) rm "$(image_file "$1")" ;;
	import)
		local -a changes=()
		while [[ $1 == --change ]]; do
			changes+=("$2")
			shift 2
		done
		new_image "$2" 1 "${changes[@]}"
		;;
	start)
		[[ -e $dr/containers/$1 ]] || return 1
		echo running >"$dr/containers/$1"
		;;
	stop)
		while (($#)); do
			case $1 in
			-t) shift ;;
			*) if [[ -e $dr/containers/$1 ]]; then echo exited >"$dr/containers/$1"; fi ;;
			esac
			shift
		done
		;;
	exec)
		local c=$1
		[[ $(cat "$dr/containers/$c" 2>/dev/null) == running ]] || { echo "Error: container $c is not running" >&2; return 1; }
		case $2 in
		touch) echo "$3" >>"$dr/meta/$c/fs" ;;
		test) grep -qxF -- "$4" "$dr/meta/$c/fs" ;;
		jupyter) cat "$dr/meta/$c/jupyter-servers" 2>/dev/null ;;
		*) return 126 ;;
		esac
		;;
	run)
		local cname='' image='' labels='' volumes=''
		while (($#)); do
			case $1 in
			--name) cname=$2 && shift ;;
			--label) labels+=$2$'\n' && shift ;;
			-v) volumes+=$2$'\n' && shift ;;
			-p | -e | --restart | --gpus | --entrypoint) shift ;;
			-d) ;;
			*) image=$1 && break ;;
			esac
			shift
		done
		[[ -e $dr/containers/$cname ]] && return 125
		f=$(image_file "$image")
		if [[ ! -e $f ]]; then new_image "$image" 3 </dev/null; fi
		mkdir -p "$dr/meta/$cname"
		printf '%s' "$labels" >"$dr/meta/$cname/labels"
		printf '%s' "$volumes" >"$dr/meta/$cname/volumes"
		echo "$image" >"$dr/meta/$cname/image"
		sed -n 's/^file //p' "$f" >"$dr/meta/$cname/fs"
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
	if [[ " $* " == *" --source "* ]]; then
		[[ -e $S/mounts ]] && grep -q " $target\$" "$S/mounts"
		exit
	fi
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
who | ss)
	[[ -e $S/$name-fail ]] && exit 1
	cat "$S/$name" 2>/dev/null || true
	;;
nvidia-smi) cat "$S/nvidia-smi" 2>/dev/null ;;
ssh-keygen) echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake" ;;
*) ;; # resize2fs, xfs_growfs, nvidia-ctk, sync, fuser, sshd -t: nothing to do
esac
