# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are used by the scripts that source this file
# Shared code for the xdrive instance scripts. Sourced, never run.
# XDRIVE_ROOT prefixes every path, so tests can run in a sandbox.

ROOT=${XDRIVE_ROOT:-}
CONF_DIR=$ROOT/etc/xdrive
STATE_DIR=$ROOT/var/lib/xdrive
# On tmpfs: the locks, and what a release writes before its flush, which
# must work with a full root disk.
RUN_DIR=$ROOT/run/xdrive
SBIN_DIR=$ROOT/usr/local/sbin
POLL_INTERVAL=${XDRIVE_POLL_INTERVAL:-1}
# The boot holds DRIVE_LOCK from finding the drive to the end; release takes it too.
DRIVE_LOCK=$RUN_DIR/drive.lock
# Seconds a docker call may take: most calls, commit/export/import, run (may pull).
DOCKER_CALL_TIMEOUT=${XDRIVE_DOCKER_CALL_TIMEOUT:-60}
DOCKER_COMMIT_TIMEOUT=${XDRIVE_DOCKER_COMMIT_TIMEOUT:-900}
DOCKER_RUN_TIMEOUT=${XDRIVE_DOCKER_RUN_TIMEOUT:-1800}
# The label holding a container's spec hash.
SPEC_LABEL=xdrive.io/spec-hash

log() { printf '%s xdrive: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# die logs, records the message for `xdrive-ctl status` and exits 1.
die() {
	log "error: $*"
	mark message "$*" || true
	exit 1
}

# write_state NAME VALUE replaces $STATE_DIR/NAME atomically.
write_state() {
	mkdir -p "$STATE_DIR"
	printf '%s\n' "$2" >"$STATE_DIR/.$1.tmp" && mv -f "$STATE_DIR/.$1.tmp" "$STATE_DIR/$1"
}

# mark NAME VALUE records NAME in $RUN_DIR (tmpfs), and in $STATE_DIR when
# the root disk has room: a release's state.
mark() {
	mkdir -p "$RUN_DIR"
	printf '%s\n' "$2" >"$RUN_DIR/$1"
	write_state "$1" "$2" 2>/dev/null || rm -f "$STATE_DIR/.$1.tmp"
}

# unmark NAME removes NAME from both places.
unmark() { rm -f "$RUN_DIR/$1" "$STATE_DIR/$1"; }

# has_state NAME: NAME was written (by write_state or mark).
has_state() { [[ -e $RUN_DIR/$1 || -e $STATE_DIR/$1 ]]; }

# read_state NAME prints the first line of NAME, from $RUN_DIR (a release's,
# newer) or $STATE_DIR, or nothing.
read_state() {
	local line='' f=$RUN_DIR/$1
	[[ -r $f ]] || f=$STATE_DIR/$1
	[[ -r $f ]] && IFS= read -r line <"$f"
	printf '%s' "$line"
}

# load_config reads $CONF_DIR/config: KEY=VALUE lines, never evaluated.
load_config() {
	MOUNT_PATH=/v1 FILESYSTEM=ext4 DEVICE_NAME='' VOLUME_ID='' DRIVE_SOURCE=snapshot PREWARM=false GPU=false WORKSTATION=''
	local key value
	[[ -r $CONF_DIR/config ]] || die "missing $CONF_DIR/config"
	while IFS='=' read -r key value; do
		case $key in
		MOUNT_PATH) MOUNT_PATH=$value ;;
		FILESYSTEM) FILESYSTEM=$value ;;
		DEVICE_NAME) DEVICE_NAME=$value ;;
		VOLUME_ID) VOLUME_ID=$value ;;
		DRIVE_SOURCE) DRIVE_SOURCE=$value ;;
		PREWARM) PREWARM=$value ;;
		GPU) GPU=$value ;;
		WORKSTATION) WORKSTATION=$value ;;
		'' | '#'*) ;;
		*) log "ignoring unknown config key $key" ;;
		esac
	done <"$CONF_DIR/config"
	[[ $MOUNT_PATH =~ ^(/[A-Za-z0-9_.-]+)+$ ]] || die "bad MOUNT_PATH '$MOUNT_PATH'"
	[[ $FILESYSTEM == ext4 || $FILESYSTEM == xfs ]] || die "bad FILESYSTEM '$FILESYSTEM'"
	[[ -z $VOLUME_ID || $VOLUME_ID =~ ^vol-[0-9a-f]+$ ]] || die "bad VOLUME_ID '$VOLUME_ID'"
	[[ $DRIVE_SOURCE == blank || $DRIVE_SOURCE == snapshot ]] || die "bad DRIVE_SOURCE '$DRIVE_SOURCE'"
	MOUNT_DIR=$ROOT$MOUNT_PATH
}

# spec_containers prints the names of the spec containers, in order.
spec_containers() {
	[[ -r $CONF_DIR/containers.list ]] || return 0
	cat "$CONF_DIR/containers.list"
}

is_mounted() { findmnt -rn -o SOURCE --mountpoint "$MOUNT_DIR" >/dev/null 2>&1; }

# grow_fs DEV TYPE grows the TYPE filesystem of DEV, mounted at MOUNT_DIR,
# to its volume's size.
grow_fs() {
	case $2 in
	ext4) resize2fs "$1" ;;
	xfs) xfs_growfs "$MOUNT_DIR" ;;
	*) log "cannot grow $2; skipped" ;;
	esac
}

# load_container_states fills CONTAINER_STATE[name]=state and
# CONTAINER_HASH[name]=its spec hash label from Docker, in one call; it
# fails when Docker does not answer.
load_container_states() {
	declare -gA CONTAINER_STATE=() CONTAINER_HASH=()
	local out name state hash
	out=$(dk "$DOCKER_CALL_TIMEOUT" ps -a --format "{{.Names}} {{.State}} {{.Label \"$SPEC_LABEL\"}}") || return 1
	while read -r name state hash; do
		if [[ -n $name ]]; then CONTAINER_STATE[$name]=$state CONTAINER_HASH[$name]=$hash; fi
	done <<<"$out"
}

# dk SECONDS ARGS... runs docker with a time limit (exit 124 when it runs
# out), without the drive lock's descriptor, so a killed boot frees the lock.
dk() {
	local limit=$1
	shift
	timeout -k 10 "$limit" docker "$@" 8>&-
}
