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
#   need-daemon-reload  `systemctl show -p NeedDaemonReload` says yes (a
#                   unit was loaded before its files changed); else no
#   umount-busy     how many more umounts fail as busy
#   docker-fail-CMD `docker CMD` fails (e.g. docker-fail-commit); with
#                   docker-fail-start, `docker run` fails after creating
#                   the container, which is left "created", as Docker does
#   docker-hang-CMD `docker CMD` hangs, to test time limits
#   docker-fail-start-from  starting a container made from the image it
#                   names fails (as a new container's settings may)
#   docker-fail-pull, docker-hang-pull: pulling a missing image fails or
#                   hangs; `docker run` and `docker create` then create nothing
#   pause-CMD       CMD waits (touching paused-CMD) until pause-CMD is removed
#   docker-info     replaces the "root|driver|status" line of `docker info --format`
#   who, ss         what `who` and `ss` print (nothing if absent); who-fail,
#                   ss-fail make them fail
#   nvidia-smi      what `nvidia-smi` prints; it fails if absent, and
#                   hangs with nvidia-smi-hang
#   iptables-rules, ip6tables-rules  the rules `iptables -I` added, one a
#                   line; iptables-fail, ip6tables-fail make them fail
#   wall            the messages `wall` sent (its stdin), one after another;
#                   wall-fail makes it fail, sending nothing
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
# labels ("key=value" lines), volumes ("name:destination" lines), from
# (the image it was made from), fs
# (the files it sees, one per line, changed by `docker exec NAME touch
# PATH` or `checkpoint PATH [SECONDS]`; `docker exec` also runs sleep, true
# and false, and logs its start in exec-started), layers (its image's), started (when it was last started) and
# jupyter-servers (what `docker exec NAME jupyter server list` prints);
# images/REF an image: "layers N", then its "file PATH" lines, its
# "label KEY=VALUE" lines (a commit keeps the container's labels), its
# "config INSTRUCTION" lines (what the bootstrap's FLATTEN_KEEPS template
# prints beyond CMD ["/bin/sh"] and WORKDIR /work; docker-fail-env fails
# the read of Env) and, for an imported image, its "change ..."
# lines. A commit adds a layer, an import has one; a missing image is pulled
# with 3. A container keeps its image's layers and files, not its name, so
# a tag may move or go while containers use the image, as with Docker.
set -u
S=${SHIM_STATE:?}
ROOT=${XDRIVE_ROOT:-}
VOLUME=${SHIM_VOLUME_DIR:-}
name=${0##*/}
# One write per call: the two ends of a pipe log at once.
line=$(printf ' %q' "$@")
printf '%s%s\n' "$name" "$line" >>"$S/calls"

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

# new_image REF LAYERS LABELS CHANGES...: REF with LAYERS layers, the
# labels in the file LABELS (or none), the files on stdin.
new_image() {
	local f ref=$1 layers=$2 labels=$3 line
	shift 3
	f=$(image_file "$ref")
	{
		echo "layers $layers"
		while IFS= read -r line; do echo "file $line"; done
		if [[ -n $labels ]]; then sed 's/^/label /' "$labels"; fi
		for line in "$@"; do echo "change $line"; done
	} >"$f.tmp" && mv "$f.tmp" "$f"
}

layers() { sed -n 's/^layers //p' "$(image_file "$1")"; }

# pull REF makes a missing image, as a pull would (docker-fail-pull,
# docker-hang-pull make it fail or hang).
pull() {
	[[ -e $(image_file "$1") ]] && return 0
	if [[ -e $S/docker-hang-pull ]]; then
		# Until its time limit, or until Docker stops.
		touch "$S/pulling"
		while [[ ! -e $S/docker-down ]]; do sleep 0.05; done
		echo "Error response from daemon: pull interrupted (shim)" >&2
		return 1
	fi
	if [[ -e $S/docker-fail-pull ]]; then
		echo "Error response from daemon: manifest for $1 not found: manifest unknown (shim)" >&2
		return 1
	fi
	new_image "$1" 3 '' </dev/null
}

# create NAME IMAGE LABELS VOLUMES: a new container, "created".
create() {
	local c=$1 f
	[[ -e $dr/containers/$c ]] && { echo "Error response from daemon: Conflict. The container name \"/$c\" is already in use" >&2; return 125; }
	pull "$2" || return 125
	f=$(image_file "$2")
	mkdir -p "$dr/meta/$c"
	printf '%s' "$3" >"$dr/meta/$c/labels"
	printf '%s' "$4" >"$dr/meta/$c/volumes"
	layers "$2" >"$dr/meta/$c/layers"
	echo "$2" >"$dr/meta/$c/from"
	sed -n 's/^file //p' "$f" >"$dr/meta/$c/fs"
	echo created >"$dr/containers/$c"
}

start_container() {
	[[ -e $dr/containers/$1 ]] || { echo "Error response from daemon: No such container: $1" >&2; return 1; }
	if [[ -e $S/docker-fail-start || ($(cat "$S/docker-fail-start-from" 2>/dev/null) == "$(<"$dr/meta/$1/from")" && -s $S/docker-fail-start-from) ]]; then
		echo "Error response from daemon: failed to start $1 (shim)" >&2
		return 1
	fi
	date -u +%Y-%m-%dT%H:%M:%SZ >"$dr/meta/$1/started"
	echo running >"$dr/containers/$1"
}

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
		# --format '{{.Names}} {{.State}}', and a {{.Label "KEY"}} after them
		local label=''
		if [[ $* =~ \.Label\ \"([^\"]+)\" ]]; then label=${BASH_REMATCH[1]}; fi
		for f in "$dr"/containers/*; do
			[[ -e $f ]] || continue
			printf '%s %s' "${f##*/}" "$(<"$f")"
			if [[ -n $label ]]; then printf ' %s' "$(sed -n "s|^$label=||p" "$dr/meta/${f##*/}/labels")"; fi
			printf '\n'
		done
		;;
	inspect)
		if [[ $1 == --type ]]; then shift 2; fi
		local format=$2 c=$3
		[[ -e $dr/containers/$c ]] || { echo "Error: No such object: $c" >&2; return 1; }
		if [[ $format =~ Labels\ \"([^\"]+)\" ]]; then
			sed -n "s|^${BASH_REMATCH[1]}=||p" "$dr/meta/$c/labels"
		elif [[ $format == *.Mounts* ]]; then
			cat "$dr/meta/$c/volumes" 2>/dev/null || true
		elif [[ $format == *.State.StartedAt* ]]; then
			cat "$dr/meta/$c/started" 2>/dev/null || echo 0001-01-01T00:00:00Z
		fi
		;;
	image)
		[[ $1 == inspect ]] || return 1
		local ref=${*: -1}
		f=$(image_file "$ref")
		[[ -e $f ]] || { echo "Error: No such image: $ref" >&2; return 1; }
		case ${3:-} in
		*RootFS.Layers*) layers "$ref" ;;
		*ENTRYPOINT*) printf 'CMD ["/bin/sh"]\nWORKDIR /work\n' && sed -n 's/^config //p' "$f" ;;
		*Config.Env*)
			[[ ! -e $S/docker-fail-env ]] || { echo "Error: template failed (shim)" >&2; return 1; }
			printf 'PATH=/usr/local/bin:/usr/bin\nLANG=C.UTF-8\n'
			;;
		*Labels\ \"*)
			[[ $3 =~ Labels\ \"([^\"]+)\" ]]
			sed -n "s|^label ${BASH_REMATCH[1]}=||p" "$f"
			;;
		esac
		;;
	rm)
		local force=false
		if [[ $1 == -f ]]; then force=true && shift; fi
		[[ -e $dr/containers/$1 ]] || { echo "Error response from daemon: No such container: $1" >&2; return 1; }
		[[ $force == true || $(<"$dr/containers/$1") != running ]] || { echo "Error: container $1 is running: stop it first" >&2; return 1; }
		rm -r "$dr/containers/$1" "$dr/meta/$1"
		;;
	rename)
		[[ -e $dr/containers/$1 ]] || { echo "Error response from daemon: No such container: $1" >&2; return 1; }
		[[ ! -e $dr/containers/$2 ]] || { echo "Error response from daemon: Conflict. The container name \"/$2\" is already in use" >&2; return 1; }
		mv "$dr/containers/$1" "$dr/containers/$2"
		mv "$dr/meta/$1" "$dr/meta/$2"
		if [[ -e $S/run-$1 ]]; then mv "$S/run-$1" "$S/run-$2"; fi
		;;
	commit)
		local c=$1 ref=$2
		new_image "$ref" $(($(<"$dr/meta/$c/layers") + 1)) "$dr/meta/$c/labels" <"$dr/meta/$c/fs"
		;;
	tag)
		[[ -e $(image_file "$1") ]] || { echo "Error response from daemon: No such image: $1" >&2; return 1; }
		cp "$(image_file "$1")" "$(image_file "$2")"
		;;
	export) cat "$dr/meta/$1/fs" ;;
	rmi)
		[[ -e $(image_file "$1") ]] || { echo "Error response from daemon: No such image: $1" >&2; return 1; }
		rm "$(image_file "$1")"
		;;
	import)
		local -a changes=()
		while [[ $1 == --change ]]; do
			changes+=("$2")
			shift 2
		done
		new_image "$2" 1 '' "${changes[@]}"
		;;
	start) start_container "$1" ;;
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
		while [[ $1 == -e ]]; do shift 2; done
		local c=$1
		[[ $(cat "$dr/containers/$c" 2>/dev/null) == running ]] || { echo "Error: container $c is not running" >&2; return 1; }
		# When each exec started (preStop hooks' latency): "NAME COMMAND EPOCHREALTIME".
		echo "$c $2 $EPOCHREALTIME" >>"$S/exec-started"
		case $2 in
		touch) echo "$3" >>"$dr/meta/$c/fs" ;;
		test) grep -qxF -- "$4" "$dr/meta/$c/fs" ;;
		jupyter) cat "$dr/meta/$c/jupyter-servers" 2>/dev/null ;;
		sleep) exec sleep "$3" ;;
		true | false) "$2" ;;
		# checkpoint PATH SECONDS: a hook that saves PATH after SECONDS.
		checkpoint) sleep "${4:-0}" && echo "$3" >>"$dr/meta/$c/fs" ;;
		*) return 126 ;;
		esac
		;;
	run | create)
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
		create "$cname" "$image" "$labels" "$volumes" || return
		printf '%s\0' "${argv[@]}" >"$S/run-$cname"
		if [[ $cmd == run ]]; then start_container "$cname" || return 125; fi
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
	# A unit is loaded afresh when first asked for: no daemon-reload needed,
	# unless need-daemon-reload says it was loaded before its files changed.
	"show -p") if [[ -e $S/need-daemon-reload ]]; then echo yes; else echo no; fi ;;
	"enable --no-reload")
		# As systemctl does, from each unit's WantedBy.
		for unit in "${@:3}"; do
			mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
			ln -sfn "$ROOT/etc/systemd/system/$unit" "$ROOT/etc/systemd/system/multi-user.target.wants/$unit"
		done
		;;
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
	fstype=-
	if [[ ${1:-} == -t ]]; then fstype=$2; fi
	echo "$target $dev $fstype" >>"$S/mounts"
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
		[[ -e $S/mounts ]] && grep -q " $target " "$S/mounts"
		exit
	fi
	if [[ $target == "$ROOT/" ]]; then
		cat "$S/rootsrc"
		exit
	fi
	[[ -e $S/mounts ]] || exit 1
	while read -r t src fstype; do
		if [[ $t == "$target" ]]; then
			# -o SOURCE or -o SOURCE,FSTYPE
			if [[ " $* " == *",FSTYPE "* ]]; then echo "$src $fstype"; else echo "$src"; fi
			exit 0
		fi
	done <"$S/mounts"
	exit 1
	;;
who | ss)
	[[ -e $S/$name-fail ]] && exit 1
	cat "$S/$name" 2>/dev/null || true
	;;
nvidia-smi)
	if [[ -e $S/nvidia-smi-hang ]]; then exec sleep 600; fi
	cat "$S/nvidia-smi" 2>/dev/null
	;;
iptables | ip6tables)
	# Rules are lines of $S/NAME-rules; NAME-fail makes every call fail.
	[[ -e $S/$name-fail ]] && exit 4
	shift 2 # -w SECONDS
	op=$1
	shift
	case $op in
	-C) grep -qxF -- "$*" "$S/$name-rules" 2>/dev/null ;;
	-I | -A) echo "$*" >>"$S/$name-rules" ;;
	*) exit 2 ;;
	esac
	;;
wall)
	[[ -e $S/wall-fail ]] && exit 1
	cat >>"$S/wall"
	;;
ssh-keygen) echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake" ;;
*) ;; # resize2fs, xfs_growfs, nvidia-ctk, sync, fuser, sshd -t: nothing to do
esac
