#!/bin/bash
# xdrive-ctl: what the operator runs over SSH.
#   status [--drive VOLUME_ID] [--idle CONFIG --probe SCRIPT]  print one JSON
#            object describing the drive and containers; --drive passes the drive's
#            volume ID, which the boot waits for; --idle adds the activity signals
#            read by SCRIPT (base64 of gzipped xdrive-idle.sh, sent by the operator)
#   release [--kind KIND --deadline RFC3339]  write /run/xdrive/notice and
#            tell the logged-in users, run the containers' preStop hooks at
#            once, then stop the containers and Docker, sync, unmount the drive
#            (no commit: the containers' writable layers are on the drive);
#            it prints a "prestop NAME OUTCOME SECONDS EXIT" line per hook.
#            KIND: stop, idle-stop, spot-interruption or rebalance
#   prewarm  read every block of the drive once, at idle priority (the bootstrap
#            starts it in the background for a volume restored from a snapshot)
#   grow     grow the mounted drive's filesystem to the volume (udev runs it
#            when EBS grows the volume)
#   notify, notice, extend  the idle stop's commands, in xdrive-idle.sh: the
#            status call keeps its SCRIPT in /run/xdrive/idle.sh for them
set -euo pipefail
# shellcheck source=xdrive-lib.sh
. "${XDRIVE_ROOT:-}/usr/local/lib/xdrive/xdrive-lib.sh"

STOP_TIMEOUT=${XDRIVE_STOP_TIMEOUT:-20}
UMOUNT_TRIES=${XDRIVE_UMOUNT_TRIES:-5}
LOCK_TIMEOUT=${XDRIVE_LOCK_TIMEOUT:-300}
# How long a release waits for the boot to finish with the drive, twice: before and after stopping it.
BOOT_WAIT=${XDRIVE_BOOT_WAIT:-30}
# How much `prewarm` reads at a time, in MiB; it records its progress after each chunk.
PREWARM_CHUNK_MIB=${XDRIVE_PREWARM_CHUNK_MIB:-64}
# Seconds a release has when not told its deadline (the operator's flush timeout).
RELEASE_SECONDS=${XDRIVE_RELEASE_SECONDS:-60}
# Seconds the flush (stop, sync, unmount) is given when none was measured yet;
# a measured one gets half again and this margin.
FLUSH_NEED=${XDRIVE_FLUSH_NEED:-$((STOP_TIMEOUT + 15))}
FLUSH_MARGIN=5
# The last flush's seconds, kept on the drive for the next instance's release.
FLUSH_FILE=.xdrive-flush-seconds
# The preStop hooks' outcomes, "NAME OUTCOME SECONDS EXIT" lines, and the notice.
HOOKS_FILE=$RUN_DIR/prestop
NOTICE_FILE=$RUN_DIR/notice
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

usage() {
	echo "usage: xdrive-ctl status [--drive VOLUME_ID] [--idle CONFIG --probe SCRIPT] | release [--kind KIND --deadline RFC3339] | prewarm | grow" >&2
	exit 2
}

# json_str prints $1 as a JSON string.
json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	s=${s//[[:cntrl:]]/}
	printf '"%s"' "$s"
}

json_bool() { if "$@"; then printf true; else printf false; fi; }

cmd_status() {
	local phase released released_at name state sep='' docker_up=true idle='' probe=''
	load_config
	while (($#)); do
		case $1 in
		--drive)
			[[ ${2:-} =~ ^vol-[0-9a-f]+$ ]] || usage
			[[ -n $VOLUME_ID || -s $STATE_DIR/drive-volume ]] || write_state drive-volume "$2"
			;;
		--idle | --probe)
			[[ ${2:-} =~ ^[A-Za-z0-9+/=]+$ ]] || usage
			if [[ $1 == --idle ]]; then idle=$2; else probe=$2; fi
			;;
		*) usage ;;
		esac
		shift 2
	done
	# The released mark is read before the phase, which a release marks first:
	# a status that shows it released shows the phase released too.
	released=$(json_bool has_state released) released_at=$(json_str "$(read_state released)")
	phase=$(read_state phase)
	# The operator's call has 10 s in all: a Docker that hangs is "unknown".
	DOCKER_CALL_TIMEOUT=${XDRIVE_STATUS_DOCKER_TIMEOUT:-2}
	load_container_states || docker_up=false
	printf '{"phase":%s,"volumeID":%s,"mounted":%s,"containers":{' \
		"$(json_str "${phase:-pending}")" "$(json_str "$(read_state volume-id)")" "$(json_bool is_mounted)"
	while IFS= read -r name; do
		if [[ $docker_up == true ]]; then
			state=${CONTAINER_STATE[$name]:-missing}
		else
			state=unknown
		fi
		printf '%s%s:%s' "$sep" "$(json_str "$name")" "$(json_str "$state")"
		sep=,
	done < <(spec_containers)
	printf '},"released":%s,"releasedAt":%s,"spotNotice":%s,"rebalance":%s,"message":%s,"preserveError":%s,"storeError":%s' \
		"$released" "$released_at" \
		"$(json_bool test -e "$STATE_DIR/spot-instance-action")" \
		"$(json_bool test -e "$STATE_DIR/rebalance")" "$(json_str "$(read_state message)")" \
		"$(json_str "$(read_state preserve-error)")" "$(json_str "$(read_state store-error)")"
	print_prewarm
	print_hooks
	if [[ -n $idle && -n $probe ]]; then
		# shellcheck source=xdrive-idle.sh
		. <(base64 -d <<<"$probe" | gzip -dc)
		printf ',"activity":'
		idle_activity "$idle"
	fi
	printf '}\n'
}

# print_prewarm prints the prewarm's progress as a "prewarm" member, once it
# has started; the rate is that of its current (or last) run.
print_prewarm() {
	local rate=0
	local -a p
	read -r -a p <<<"$(read_state prewarm)"
	[[ ${p[*]} =~ ^vol-[0-9a-f]+(\ [0-9]+){5}$ ]] || return 0
	if ((p[5] > p[3])); then rate=$(((p[1] - p[4]) / (p[5] - p[3]))); fi
	printf ',"prewarm":{"volumeID":"%s","bytesRead":%d,"bytesTotal":%d,"bytesPerSecond":%d}' "${p[@]:0:3}" "$rate"
}

# print_hooks prints the preStop hooks' outcomes as a "preStop" member, once they ran.
print_hooks() {
	local sep='' name outcome secs rc
	[[ -r $HOOKS_FILE ]] || return 0
	printf ',"preStop":['
	while read -r name outcome secs rc; do
		printf '%s{"container":%s,"outcome":%s,"seconds":%d,"exitCode":%d}' "$sep" "$(json_str "$name")" "$(json_str "$outcome")" "$secs" "$rc"
		sep=,
	done <"$HOOKS_FILE"
	printf ']'
}

releasing() { has_state releasing || has_state released; }

# notify_stop KIND DEADLINE writes $NOTICE_FILE ({"kind", "deadline",
# "secondsLeft" as of now, "workstation"}), which programs can poll, and
# tells the logged-in users with wall, in the background: it never delays
# the hooks.
notify_stop() {
	local left=$(($2 - $(date +%s))) at
	at=$(date -u -d "@$2" +%Y-%m-%dT%H:%M:%SZ)
	if ! { printf '{"kind":"%s","deadline":"%s","secondsLeft":%d,"workstation":%s}\n' "$1" "$at" "$left" "$(json_str "$WORKSTATION")" >"$RUN_DIR/.notice.tmp" &&
		chmod 0644 "$RUN_DIR/.notice.tmp" && mv -f "$RUN_DIR/.notice.tmp" "$NOTICE_FILE"; }; then
		log "warning: cannot write $NOTICE_FILE"
	fi
	log "notice: $1, the drive is flushed by $at"
	timeout 10 wall <<<"xdrive: this machine${WORKSTATION:+ (Workstation $WORKSTATION)} stops now ($1): its containers stop and its drive is flushed by $at, in ${left}s. Save your work. Programs can read $NOTICE_FILE" >/dev/null 2>&1 7>&- 8>&- 9>&- &
}

# flush_need prints the seconds to keep for the flush: the last measured
# one, with room, or FLUSH_NEED.
flush_need() {
	local secs=''
	[[ -r $MOUNT_DIR/$FLUSH_FILE ]] && read -r secs <"$MOUNT_DIR/$FLUSH_FILE"
	if [[ $secs =~ ^[0-9]{1,4}$ ]]; then echo $((secs + secs / 2 + FLUSH_MARGIN)); else echo "$FLUSH_NEED"; fi
}

# run_hooks DEADLINE NAME... runs the preStop hooks of the named running
# containers at once. Each gets its timeoutSeconds, cut to what DEADLINE
# leaves once the flush's need is set aside (none: Skipped). A cut hook's
# `docker exec` ends but what it ran in the container goes on until the
# containers' stop, which comes next and ends it. $HOOKS_FILE gets the outcomes.
run_hooks() {
	local deadline=$1 budget name f
	local -a hook hook_pids=()
	shift
	budget=$((deadline - $(date +%s) - $(flush_need)))
	: >"$HOOKS_FILE.new"
	for name in "$@"; do
		f=$CONF_DIR/containers/$name/prestop
		[[ -r $f ]] || continue
		mapfile -d '' hook <"$f"
		[[ ${#hook[@]} -gt 1 && ${hook[0]} =~ ^[0-9]{1,3}$ ]] || { log "warning: bad preStop hook of $name"; continue; }
		if ((budget < 1)); then
			log "no time for the preStop hook of $name"
			echo "$name Skipped 0 0" >>"$HOOKS_FILE.new"
			continue
		fi
		run_hook "$name" "$((hook[0] < budget ? hook[0] : budget))" "${hook[@]:1}" &
		hook_pids+=("$!")
	done
	((${#hook_pids[@]} == 0)) || wait "${hook_pids[@]}"
	mv -f "$HOOKS_FILE.new" "$HOOKS_FILE"
}

# run_hook NAME SECONDS EXEC... runs one hook within SECONDS, telling it the
# stop's kind, deadline and its own seconds in XDRIVE_STOP_KIND,
# XDRIVE_STOP_DEADLINE and XDRIVE_HOOK_SECONDS (the container does not see
# /run/xdrive/notice); its output is kept in $RUN_DIR/prestop-NAME.log (the last 64 KiB).
run_hook() {
	local name=$1 limit=$2 start rc outcome=Failed secs
	shift 2
	set +e
	start=${EPOCHREALTIME/[.,]/}
	log "preStop of $name, at most ${limit}s: $*"
	timeout -k 2 "$limit" docker exec -e "XDRIVE_STOP_KIND=$KIND" -e "XDRIVE_STOP_DEADLINE=$(date -u -d "@$DEADLINE" +%Y-%m-%dT%H:%M:%SZ)" \
		-e "XDRIVE_HOOK_SECONDS=$limit" "$name" "$@" </dev/null 2>&1 7>&- 8>&- 9>&- | tail -c 65536 >"$RUN_DIR/prestop-$name.log"
	rc=${PIPESTATUS[0]}
	secs=$(((${EPOCHREALTIME/[.,]/} - start + 500000) / 1000000))
	if ((rc == 0)); then
		outcome=Ran
	elif ((rc == 124 || rc == 137)) && ((secs >= limit)); then
		outcome=TimedOut
	fi
	log "preStop of $name: $outcome after ${secs}s (exit $rc)"
	echo "$name $outcome $secs $rc" >>"$HOOKS_FILE.new"
}

# print_release prints what the operator reads from a release: the hooks'
# outcomes, and spot-notice if the watcher saw one.
print_release() {
	local line
	if [[ -r $HOOKS_FILE ]]; then while read -r line; do echo "prestop $line"; done <"$HOOKS_FILE"; fi
	if [[ -e $STATE_DIR/spot-instance-action ]]; then echo spot-notice; fi
}

# cmd_prewarm reads every block of the drive once, so that a volume restored
# from a snapshot has loaded them all from S3 before the user needs them. It
# runs at nice 19 in the idle IO class, only reads (into /dev/null, with
# O_DIRECT, which leaves the page cache to the user), and after each chunk
# records "VOLUME_ID BYTES_READ BYTES_TOTAL RUN_START RUN_START_BYTES UPDATED"
# (times in epoch seconds) in $STATE_DIR/prewarm, from which a rerun
# resumes. One runs at a time (prewarm.lock, which its reads hold too); it
# stops once the drive is being released, and a release stops it at once.
cmd_prewarm() {
	local dev vol total pos=0 start mib=1048576
	local -a p
	load_config
	mkdir -p "$RUN_DIR"
	exec 7>"$RUN_DIR/prewarm.lock"
	flock -n 7 || return 0
	write_state prewarm-pid $$
	! releasing || return 0
	{ renice -n 19 -p $$ >/dev/null && ionice -c 3 -p $$; } || die "prewarm: cannot lower its priority"
	dev=$(read_state drive-dev) vol=$(read_state volume-id)
	read -r total <"$ROOT/sys/block/${dev##*/}/size" || die "prewarm: no size of the drive '$dev'"
	total=$((total * 512))
	read -r -a p <<<"$(read_state prewarm)"
	[[ ${p[0]:-} != "$vol" || ${p[2]:-} != "$total" ]] || pos=${p[1]}
	start="$(date +%s) $pos"
	write_state prewarm "$vol $pos $total $start ${start% *}"
	while ((pos < total)) && ! releasing; do
		dd if="$dev" of=/dev/null bs=1M skip=$((pos / mib)) count="$PREWARM_CHUNK_MIB" iflag=direct status=none ||
			{ ! releasing || return 0; die "prewarm: reading $dev failed at byte $pos"; }
		pos=$((pos + PREWARM_CHUNK_MIB * mib))
		((pos < total)) || pos=$total
		write_state prewarm "$vol $pos $total $start $(date +%s)"
	done
}

# stop_prewarm ends a running prewarm, its reads too, without waiting for it:
# it holds no mount and never writes, but the drive is going away.
stop_prewarm() {
	local pid
	pid=$(read_state prewarm-pid)
	exec 7>"$RUN_DIR/prewarm.lock"
	flock -n 7 || kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
	exec 7>&-
}

# unmount_drive unmounts the drive, killing whatever keeps it busy.
unmount_drive() {
	local try
	for ((try = 1; ; try++)); do
		is_mounted || return 0
		umount "$MOUNT_DIR" && return 0
		((try < UMOUNT_TRIES)) || return 1
		log "$MOUNT_DIR is busy; killing its users (try $try)"
		fuser -km "$MOUNT_DIR" || true
		sleep "$POLL_INTERVAL"
	done
}

# wait_for_boot takes the drive lock the boot holds while it prepares the
# drive and starts the containers. The boot stops at its next step once it
# sees `releasing`; one that does not within BOOT_WAIT is stopped.
wait_for_boot() {
	local pid
	exec 8>"$DRIVE_LOCK"
	flock -w "$BOOT_WAIT" 8 && return 0
	pid=$(read_state boot-pid)
	if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		log "the bootstrap (pid $pid) still holds the drive; stopping it"
		kill "$pid" || true
	fi
	flock -w "$BOOT_WAIT" 8
}

# drive_mounted_anywhere: the drive's device is mounted at any mount point.
drive_mounted_anywhere() {
	local dev
	dev=$(read_state drive-dev)
	is_mounted || { [[ -n $dev ]] && findmnt -rn -o TARGET --source "$dev" >/dev/null 2>&1; }
}

# cmd_release writes its state with mark, on tmpfs: it flushes with a full
# root disk. On the drive it writes only the flush's time, when there is room.
# The order: notice, preStop hooks, stop the containers and Docker, sync,
# unmount.
cmd_release() {
	local name warnings='' kind=stop deadline='' flush_start=''
	local -a running=()
	while (($#)); do
		case $1 in
		--kind) [[ ${2:-} =~ ^(stop|idle-stop|spot-interruption|rebalance)$ ]] || usage ;;
		--deadline) [[ ${2:-} =~ $TIME_RE ]] || usage ;;
		*) usage ;;
		esac
		if [[ $1 == --kind ]]; then kind=$2; else deadline=$(date -u -d "$2" +%s) || usage; fi
		shift 2
	done
	deadline=${deadline:-$(($(date +%s) + RELEASE_SECONDS))}
	KIND=$kind DEADLINE=$deadline
	load_config
	mkdir -p "$RUN_DIR"
	exec 9>"$RUN_DIR/release.lock"
	flock -w "$LOCK_TIMEOUT" 9 || die "release: another release holds $RUN_DIR/release.lock"
	if has_state released; then
		log "already released at $(read_state released)"
		return 0
	fi
	mark releasing ""
	mark phase releasing
	log "releasing the drive ($kind)"
	notify_stop "$kind" "$deadline"
	stop_prewarm
	wait_for_boot || die "release: the bootstrap still holds the drive after $((2 * BOOT_WAIT))s; not released"
	if load_container_states; then
		for name in "${!CONTAINER_STATE[@]}"; do
			if [[ ${CONTAINER_STATE[$name]} == running ]]; then running+=("$name"); fi
		done
		# Once per instance: a release tried again finds the containers stopped.
		[[ -e $HOOKS_FILE ]] || run_hooks "$deadline" "${running[@]}"
		flush_start=$SECONDS
		if ((${#running[@]} > 0)); then
			log "stopping ${running[*]}"
			dk $((STOP_TIMEOUT + DOCKER_CALL_TIMEOUT)) stop -t "$STOP_TIMEOUT" "${running[@]}" >/dev/null || warnings+=" docker stop failed;"
		fi
	else
		log "Docker does not answer; no container to stop"
	fi
	timeout -k 10 60 systemctl stop docker.service docker.socket || log "warning: cannot stop Docker"
	sync
	[[ -z $flush_start ]] || record_flush $((SECONDS - flush_start))
	unmount_drive || die "release: cannot unmount $MOUNT_DIR: still busy"
	! drive_mounted_anywhere || die "release: the drive is still mounted elsewhere; not released"
	# The "released" mark comes last: a status that reads it reads the rest too.
	mark phase released
	if [[ -n $warnings ]]; then
		mark message "released with warnings:$warnings"
		log "warning:$warnings"
	fi
	mark released "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	unmark releasing
	log "drive released"
}

# cmd_grow grows the mounted drive's filesystem to its volume's new size.
# It takes the drive lock, as the boot and a release do, and gives way to a
# release: it never grows a drive being released.
cmd_grow() {
	local dev fstype
	load_config
	mkdir -p "$RUN_DIR"
	exec 8>"$DRIVE_LOCK"
	until flock -n 8; do
		if has_state releasing || has_state released; then
			log "grow: the drive is being released; not grown"
			return 0
		fi
		((SECONDS < LOCK_TIMEOUT)) || die "grow: the drive lock is still held after ${LOCK_TIMEOUT}s; not grown"
		sleep "$POLL_INTERVAL"
	done
	if has_state releasing || has_state released; then
		log "grow: the drive is being released; not grown"
		return 0
	fi
	read -r dev fstype < <(findmnt -rn -o SOURCE,FSTYPE --mountpoint "$MOUNT_DIR") || {
		log "grow: $MOUNT_DIR is not mounted; the boot grows the drive"
		return 0
	}
	log "growing the $fstype filesystem of $dev"
	grow_fs "$dev" "$fstype"
}

# record_flush SECONDS keeps the flush's time on the drive for the next
# release (unmount writes it); a full drive keeps the last one.
record_flush() {
	{ printf '%s\n' "$1" >"$MOUNT_DIR/.$FLUSH_FILE.tmp" && mv -f "$MOUNT_DIR/.$FLUSH_FILE.tmp" "$MOUNT_DIR/$FLUSH_FILE"; } 2>/dev/null ||
		rm -f "$MOUNT_DIR/.$FLUSH_FILE.tmp" 2>/dev/null || true
}

# Any other command is the idle stop's (xdrive-idle.sh).
# shellcheck source=xdrive-idle.sh
case ${1:-} in
status) cmd_status "${@:2}" ;;
release) cmd_release "${@:2}" && print_release ;;
prewarm) cmd_prewarm ;;
grow) cmd_grow ;;
*) . "$RUN_DIR/idle.sh" || usage ;;
esac
