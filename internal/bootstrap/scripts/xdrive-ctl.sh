#!/bin/bash
# xdrive-ctl: what the operator runs over SSH.
#   status   print one JSON object describing the drive and containers
#   release  commit and stop the containers, stop Docker, unmount the drive
set -euo pipefail
# shellcheck source=xdrive-lib.sh
. "${XDRIVE_ROOT:-}/usr/local/lib/xdrive/xdrive-lib.sh"

STOP_TIMEOUT=${XDRIVE_STOP_TIMEOUT:-20}
UMOUNT_TRIES=${XDRIVE_UMOUNT_TRIES:-5}
LOCK_TIMEOUT=${XDRIVE_LOCK_TIMEOUT:-300}

usage() {
	echo "usage: xdrive-ctl status|release" >&2
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
	local phase name state sep='' docker_up=true
	load_config
	phase=$(read_state phase)
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
	printf '},"released":%s,"releasedAt":%s,"rebalance":%s,"message":%s}\n' \
		"$(json_bool test -e "$STATE_DIR/released")" "$(json_str "$(read_state released)")" \
		"$(json_bool test -e "$STATE_DIR/rebalance")" "$(json_str "$(read_state message)")"
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

cmd_release() {
	local name warnings=
	local -a running=()
	load_config
	exec 9>"$STATE_DIR/release.lock"
	flock -w "$LOCK_TIMEOUT" 9 || die "release: another release holds $STATE_DIR/release.lock"
	if [[ -e $STATE_DIR/released ]]; then
		log "already released at $(read_state released)"
		return 0
	fi
	: >"$STATE_DIR/releasing"
	write_state phase releasing
	log "releasing the drive"
	if load_container_states; then
		for name in "${!CONTAINER_STATE[@]}"; do
			if [[ ${CONTAINER_STATE[$name]} == running ]]; then running+=("$name"); fi
		done
		while IFS= read -r name; do
			[[ ${CONTAINER_STATE[$name]:-} == running ]] || continue
			log "committing $name as $name:xdrive-latest"
			docker commit "$name" "$name:xdrive-latest" >/dev/null || warnings+=" commit of $name failed;"
		done < <(spec_containers)
		if ((${#running[@]} > 0)); then
			docker stop -t "$STOP_TIMEOUT" "${running[@]}" >/dev/null || warnings+=" docker stop failed;"
		fi
	else
		log "Docker does not answer; nothing to commit"
	fi
	systemctl stop docker.service docker.socket || log "warning: cannot stop Docker"
	sync
	unmount_drive || die "release: cannot unmount $MOUNT_DIR: still busy"
	write_state released "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	write_state phase released
	if [[ -n $warnings ]]; then
		write_state message "released with warnings:$warnings"
		log "warning:$warnings"
	fi
	rm -f "$STATE_DIR/releasing"
	log "drive released"
}

case ${1:-} in
status) cmd_status ;;
release) cmd_release ;;
*) usage ;;
esac
