#!/bin/bash
# Boot-time setup: SSH keys, the drive, Docker on the drive, the containers.
# Runs from user-data on first boot and from xdrive-bootstrap.service later.
set -euo pipefail
# shellcheck source=xdrive-lib.sh
. "${XDRIVE_ROOT:-}/usr/local/lib/xdrive/xdrive-lib.sh"

DEVICE_TIMEOUT=${XDRIVE_DEVICE_TIMEOUT:-300}
# Docker's (re)start: it bounds a hang only, and a first start on a volume
# restored from a snapshot reads the store as EBS loads it (on a real VM
# under emulation a start took over 120 s).
DOCKER_TIMEOUT=${XDRIVE_DOCKER_TIMEOUT:-300}
VOLUME_WAIT=${XDRIVE_VOLUME_WAIT:-1800}
STOP_TIMEOUT=${XDRIVE_STOP_TIMEOUT:-20}
# A committed image deeper than this is flattened (overlay2 allows about 125).
MAX_DEPTH=${XDRIVE_MAX_DEPTH:-60}
# Up to this depth a change is applied even when the flatten fails (Docker
# refuses to commit past 125).
HARD_DEPTH=${XDRIVE_HARD_DEPTH:-110}
EBS_MODEL="Amazon Elastic Block Store"

# dc ARGS... runs docker with the time limit of most calls.
dc() { dk "$DOCKER_CALL_TIMEOUT" "$@"; }
# dstart NAME starts a container with a run's time limit: a start reads its
# layers from the drive, which a volume restored from a snapshot loads
# lazily (a real VM under emulation took over a minute).
dstart() { dk "$DOCKER_RUN_TIMEOUT" start "$1"; }

# A release (spot notice or operator) wins over a running bootstrap.
stop_if_releasing() {
	if has_state releasing || has_state released; then
		log "drive is being released; bootstrap stops"
		exit 0
	fi
}

phase() {
	stop_if_releasing
	log "phase: $1"
	write_state phase "$1"
}

on_exit() {
	local rc=$?
	if ((rc != 0)) && ! has_state releasing && ! has_state released; then
		[[ -s $STATE_DIR/message ]] || write_state message "bootstrap failed (exit $rc); see the journal"
		write_state phase failed
	fi
}

setup_ssh() {
	local dir=$ROOT/etc/ssh key
	[[ -s $dir/ssh_host_ed25519_key ]] || die "missing SSH host key $dir/ssh_host_ed25519_key"
	for key in "$dir"/ssh_host_*_key; do
		[[ $key == "$dir/ssh_host_ed25519_key" ]] || rm -f "$key" "$key.pub"
	done
	ssh-keygen -y -f "$dir/ssh_host_ed25519_key" >"$dir/ssh_host_ed25519_key.pub"
	sshd -t || die "sshd rejects its configuration; not restarting it"
	systemctl restart sshd || systemctl restart ssh || die "cannot restart sshd"
}

# root_disk prints the disk holding /, e.g. nvme0n1, or nothing.
root_disk() {
	local src part d
	src=$(findmnt -rnv -o SOURCE --mountpoint "$ROOT/") || return 0
	part=${src##*/}
	for d in "$ROOT"/sys/block/*; do
		if [[ ${d##*/} == "$part" || -e $d/$part ]]; then
			printf '%s\n' "${d##*/}"
			return 0
		fi
	done
}

# drive_volume prints the drive's volume ID: from the config, or as the
# operator passed it (`xdrive-ctl status --drive`), or nothing yet.
drive_volume() {
	if [[ -n $VOLUME_ID ]]; then
		printf '%s' "$VOLUME_ID"
	else
		read_state drive-volume
	fi
}

# find_drive polls for the drive: the EBS NVMe disk, not the root disk, whose
# serial is the drive's volume ID without its dash. It never guesses: until
# the volume ID is known it waits (VOLUME_WAIT), then for the disk
# (DEVICE_TIMEOUT). It sets DRIVE_DEV and DRIVE_VOLUME_ID.
find_drive() {
	local want volume root deadline known_by sys name model serial seen
	local -a found
	root=$(root_disk)
	known_by=$((SECONDS + VOLUME_WAIT))
	deadline=
	while :; do
		stop_if_releasing
		volume=$(drive_volume)
		want=${volume/-/}
		found=() seen=
		for sys in "$ROOT"/sys/block/nvme*; do
			[[ -r $sys/device/model && -r $sys/device/serial ]] || continue
			name=${sys##*/}
			read -r model <"$sys/device/model" || true
			read -r serial <"$sys/device/serial" || true
			seen+=" $name($model/$serial)"
			[[ -n $want && $model == "$EBS_MODEL" && $name != "$root" && -e $ROOT/dev/$name ]] || continue
			if [[ $serial == "$want" ]]; then found+=("$name"); fi
		done
		case ${#found[@]} in
		1) break ;;
		0) ;;
		*) die "several disks carry the drive's serial $want (${found[*]})" ;;
		esac
		if [[ -z $volume ]]; then
			((SECONDS < known_by)) || die "the drive's volume ID was not passed within ${VOLUME_WAIT}s; disks:${seen:- none}"
		else
			: "${deadline:=$((SECONDS + DEVICE_TIMEOUT))}"
			((SECONDS < deadline)) ||
				die "drive $volume not found after ${DEVICE_TIMEOUT}s; root disk: ${root:-unknown}; disks:${seen:- none}"
		fi
		sleep "$POLL_INTERVAL"
	done
	DRIVE_DEV=$ROOT/dev/${found[0]}
	DRIVE_VOLUME_ID=$volume
	log "drive $DRIVE_VOLUME_ID is $DRIVE_DEV"
	write_state volume-id "$DRIVE_VOLUME_ID"
	write_state drive-dev "$DRIVE_DEV"
}

# first_mib_zero DEV: DEV's first MiB reads, in full, as zeros.
first_mib_zero() { cmp -s -n 1048576 "$1" /dev/zero; }

# prepare_drive mounts the drive and grows it. It formats only a blank
# volume the operator created (DRIVE_SOURCE=blank) whose first MiB is zeros;
# a restored volume is never formatted, whatever blkid says.
prepare_drive() {
	local fstype rc=0 source
	fstype=$(blkid -p -o value -s TYPE "$DRIVE_DEV") || rc=$?
	case $rc in
	0) [[ -n $fstype ]] || die "$DRIVE_DEV holds data but no filesystem; refusing to format it" ;;
	2)
		[[ $DRIVE_SOURCE == blank ]] ||
			die "$DRIVE_DEV was restored from a snapshot, yet blkid finds no filesystem (exit 2); refusing to format it"
		first_mib_zero "$DRIVE_DEV" ||
			die "$DRIVE_DEV: blkid finds no filesystem, but its first MiB is not all zeros; refusing to format it"
		fstype=$FILESYSTEM
		log "$DRIVE_DEV is blank; making $fstype"
		"mkfs.$fstype" -q -L xdrive "$DRIVE_DEV"
		;;
	*) die "blkid failed on $DRIVE_DEV (exit $rc); refusing to format it" ;;
	esac
	mkdir -p "$MOUNT_DIR"
	if source=$(findmnt -rn -o SOURCE --mountpoint "$MOUNT_DIR"); then
		log "$MOUNT_DIR already mounted from $source"
	else
		mount -t "$fstype" -o noatime "$DRIVE_DEV" "$MOUNT_DIR"
	fi
	watch_resize
	grow_fs "$DRIVE_DEV" "$fstype"
}

# watch_resize grows the filesystem online when EBS grows the volume: the
# kernel announces the new size with a change uevent (RESIZE=1), and udev
# starts `xdrive-ctl grow`. The rule is on tmpfs: each boot writes it anew.
watch_resize() {
	local rules=$ROOT/run/udev/rules.d
	mkdir -p "$rules"
	printf 'ACTION=="change", SUBSYSTEM=="block", KERNEL=="%s", ENV{RESIZE}=="1", RUN+="/usr/bin/systemd-run --no-block --collect --unit=xdrive-grow %s grow"\n' \
		"${DRIVE_DEV##*/}" "${SBIN_DIR#"$ROOT"}/xdrive-ctl" >"$rules/90-xdrive-grow.rules"
	udevadm control --reload || log "warning: udev rules not reloaded; the drive grows at the next boot"
}

ensure_docker() {
	command -v docker >/dev/null && return 0
	log "installing Docker"
	if command -v dnf >/dev/null; then
		dnf install -y docker
	elif command -v apt-get >/dev/null; then
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io
	fi
	command -v docker >/dev/null || die "Docker is not installed and could not be installed"
}

# configure_docker puts Docker's whole store on the drive: data-root there,
# and the containerd image store off (it would keep layers under
# /var/lib/containerd on the root disk).
configure_docker() {
	local etc=$ROOT/etc/docker unit_dir=$ROOT/etc/systemd/system/docker.service.d drop
	ensure_docker
	mkdir -p "$etc" "$unit_dir"
	if [[ -e $etc/daemon.json && ! -e $etc/daemon.json.xdrive-orig ]]; then
		cp "$etc/daemon.json" "$etc/daemon.json.xdrive-orig"
	fi
	# MOUNT_PATH is checked by load_config, so it needs no JSON escaping.
	printf '{\n  "data-root": "%s/docker",\n  "features": {"containerd-snapshotter": false}\n}\n' "$MOUNT_PATH" >"$etc/daemon.json"
	if [[ $GPU == true ]]; then
		command -v nvidia-ctk >/dev/null || die "GPU instance without nvidia-ctk; use an AMI with the NVIDIA container toolkit"
		nvidia-ctk runtime configure --runtime=docker --set-as-default --config="$etc/daemon.json"
	fi
	# Docker must never start with its data-root on the bare root disk.
	# Written once: a loaded docker.service would need a daemon-reload (slow:
	# it reruns every generator) for a drop-in that changed on disk.
	drop=$'[Unit]\nConditionPathIsMountPoint='$MOUNT_PATH
	[[ $(cat "$unit_dir/xdrive.conf" 2>/dev/null) == "$drop" ]] || printf '%s\n' "$drop" >"$unit_dir/xdrive.conf"
	[[ $(systemctl show -p NeedDaemonReload --value docker.service) == no ]] || systemctl daemon-reload
	timeout -k 10 "$DOCKER_TIMEOUT" systemctl restart docker 8>&- || die "Docker did not restart within ${DOCKER_TIMEOUT}s"
	check_store
}

# check_store waits for Docker to answer, and verifies that it keeps
# everything on the drive; a mismatch is recorded for `xdrive-ctl status`
# (the operator's ContainersPreserved).
check_store() {
	local info root driver status problem='' want=$MOUNT_PATH/docker deadline=$((SECONDS + DOCKER_TIMEOUT))
	until info=$(dk 10 info --format '{{.DockerRootDir}}|{{.Driver}}|{{json .DriverStatus}}' 2>/dev/null); do
		stop_if_releasing
		((SECONDS < deadline)) || die "Docker did not come up within ${DOCKER_TIMEOUT}s"
		sleep "$POLL_INTERVAL"
	done
	IFS='|' read -r root driver status <<<"$info"
	if [[ $root != "$want" ]]; then
		problem="Docker's data-root is $root, not $want on the drive"
	elif [[ $status == *io.containerd.snapshotter* ]]; then
		problem="Docker uses the containerd image store (driver $driver), which keeps layers off the drive"
	fi
	if [[ -n $problem ]]; then
		write_state store-error "$problem"
		die "$problem; containers not started"
	fi
	rm -f "$STATE_DIR/store-error"
}

# preserve_failed NAME WHAT records a failed carry-over for `xdrive-ctl status`.
preserve_failed() {
	log "warning: container $1: $2"
	PRESERVE_ERRORS+="$1: $2; "
}

# spec_hash DIR IMAGE GPUOPTS...: hash of a container's settings as it
# would run (the same as when the image had a file of its own).
spec_hash() {
	local dir=$1
	shift
	{
		printf '%s\n' "$1"
		shift
		cat "$dir/opts" "$dir/argv"
		printf '%s\0' "$@"
	} | sha256sum | cut -c1-16
}

# FLATTEN_KEEPS is a template that prints, one a line, the Dockerfile
# instructions that keep an image's settings other than its env: a health
# check's shell form becomes /bin/sh -c, the same on Linux.
# shellcheck disable=SC2016 # a Go template, not shell
FLATTEN_KEEPS='{{with .Config}}{{with .Entrypoint}}ENTRYPOINT {{json .}}
{{end}}{{with .Cmd}}CMD {{json .}}
{{end}}{{with .WorkingDir}}WORKDIR {{.}}
{{end}}{{with .User}}USER {{.}}
{{end}}{{with .StopSignal}}STOPSIGNAL {{.}}
{{end}}{{range $k, $v := .Volumes}}VOLUME [{{json $k}}]
{{end}}{{range $k, $v := .Labels}}LABEL {{json $k}}={{json $v}}
{{end}}{{range $k, $v := .ExposedPorts}}EXPOSE {{$k}}
{{end}}{{with .Healthcheck}}HEALTHCHECK {{with .Interval}}--interval={{.}} {{end}}{{with .Timeout}}--timeout={{.}} {{end}}
{{- with .StartPeriod}}--start-period={{.}} {{end}}{{with .StartInterval}}--start-interval={{.}} {{end}}{{with .Retries}}--retries={{.}} {{end}}
{{- $t := index .Test 0}}{{if eq $t "NONE"}}NONE{{else if eq $t "CMD"}}CMD {{json (slice .Test 1)}}{{else}}CMD ["/bin/sh","-c",{{json (index .Test 1)}}]{{end}}
{{end}}{{end}}'

# flatten NAME TARGET SPEC_IMAGE squashes container NAME into a one-layer
# TARGET, with the settings of SPEC_IMAGE (so env values given with
# `docker run -e` are not baked in). A setting it cannot read fails it,
# with FLATTEN_ERR set and TARGET left as it was.
flatten() {
	local name=$1 target=$2 from=$3 keep env line k v
	local -a changes=()
	dc image inspect "$from" >/dev/null 2>&1 || from=$target
	if ! keep=$(dc image inspect -f "$FLATTEN_KEEPS" "$from") ||
		! env=$(dc image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$from"); then
		FLATTEN_ERR="cannot read the settings of $from"
		return 1
	fi
	while IFS= read -r line; do
		if [[ -n $line ]]; then changes+=(--change "$line"); fi
	done <<<"$keep"
	while IFS= read -r line; do
		[[ $line == *=* ]] || continue
		k=${line%%=*} v=${line#*=}
		v=${v//\\/\\\\} v=${v//\"/\\\"} v=${v//\$/\\\$}
		changes+=(--change "ENV $k=\"$v\"")
	done <<<"$env"
	dk "$DOCKER_COMMIT_TIMEOUT" export "$name" | dk "$DOCKER_COMMIT_TIMEOUT" import "${changes[@]}" - "$target" >/dev/null && return
	FLATTEN_ERR="export and import of $name failed or ran past ${DOCKER_COMMIT_TIMEOUT}s"
	return 1
}

# carry_over NAME SPEC_IMAGE stops container NAME and saves its writable
# layer as an image, flattened past MAX_DEPTH layers, and sets CARRY_FROM to
# the image the new container runs from, CARRY_TAG to the commit's pending
# tag and CARRY_VOLUMES to the old container's volumes ("name:destination"
# lines); on failure it sets CARRY_ERR. The commit is tagged
# NAME:xdrive-carry-latest, or NAME:xdrive-carry-previous on a spec image
# change (the new container then starts from the new image): earlier
# states keep their tags until the new container has started (promote).
carry_over() {
	local name=$1 image=$2 old_image target depth
	CARRY_FROM='' CARRY_ERR='' CARRY_VOLUMES='' CARRY_TAG=''
	if ! old_image=$(dc inspect -f '{{index .Config.Labels "xdrive.io/spec-image"}}' "$name"); then
		CARRY_ERR="docker inspect failed"
		return 1
	fi
	target=$name:xdrive-carry-latest
	if [[ -n $old_image && $old_image != "$image" ]]; then target=$name:xdrive-carry-previous; fi
	if ! dk $((STOP_TIMEOUT + DOCKER_CALL_TIMEOUT)) stop -t "$STOP_TIMEOUT" "$name" >/dev/null; then
		CARRY_ERR="docker stop failed"
		return 1
	fi
	CARRY_TAG=$target
	if ! dk "$DOCKER_COMMIT_TIMEOUT" commit "$name" "$target" >/dev/null; then
		CARRY_ERR="docker commit failed"
		return 1
	fi
	if ! depth=$(dc image inspect -f '{{len .RootFS.Layers}}' "$target"); then
		CARRY_ERR="docker image inspect of $target failed"
		return 1
	fi
	if ((depth > MAX_DEPTH)); then
		log "container $name: $target has $depth layers; flattening"
		if flatten "$name" "$target" "${old_image:-$image}"; then
			:
		elif ((depth > HARD_DEPTH)); then
			CARRY_ERR="flattening $target failed: $FLATTEN_ERR; at $depth layers the change cannot be applied unflattened"
			return 1
		else
			# Applied unflattened, while the layers last: reported, retried next time.
			FLATTEN_WARNINGS+="$name: not flattened ($FLATTEN_ERR), $depth layers; "
			log "warning: container $name: not flattened: $FLATTEN_ERR"
		fi
	fi
	CARRY_FROM=$image
	if [[ $target == "$name:xdrive-carry-latest" ]]; then CARRY_FROM=$target; fi
	# Volumes (an image's VOLUME, e.g. a database's data) are not in a
	# commit: the new container mounts the old one's volumes, by name.
	if ! CARRY_VOLUMES=$(dc inspect -f \
		'{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}:{{.Destination}}{{println}}{{end}}{{end}}' "$name"); then
		CARRY_ERR="docker inspect of the volumes failed"
		return 1
	fi
}

# promote NAME moves a carry-over's pending tag to its place, once the new
# container has started: NAME:xdrive-latest, or NAME:xdrive-previous after
# an image change, when the older NAME:xdrive-latest (its state is in
# NAME:xdrive-previous) must not seed a later re-creation.
promote() {
	local name=$1 kind
	for kind in latest previous; do
		dc image inspect "$name:xdrive-carry-$kind" >/dev/null 2>&1 || continue
		if ! dc tag "$name:xdrive-carry-$kind" "$name:xdrive-$kind" >/dev/null ||
			! dc rmi "$name:xdrive-carry-$kind" >/dev/null; then
			log "warning: container $name: cannot tag $name:xdrive-$kind"
		fi
		if [[ $kind == previous ]]; then dc rmi "$name:xdrive-latest" >/dev/null 2>&1 || true; fi
	done
}

# started NAME: container NAME has been started at least once.
started() {
	local at
	at=$(dc inspect --type container -f '{{.State.StartedAt}}' "$1") && [[ -n $at && $at != 0001-01-01T* ]]
}

# roll_back NAME WHY puts the old container NAME.xdrive-old back as NAME,
# removing a successor that never started, and drops the pending tag.
roll_back() {
	local name=$1 old=$1.xdrive-old tag
	log "container $name: $2; rolling back to the old container"
	if dc inspect --type container -f '{{.Name}}' "$name" >/dev/null 2>&1; then
		dc rm -f "$name" >/dev/null || return 1
	fi
	dc rename "$old" "$name" || return 1
	for tag in "$name:xdrive-carry-latest" "$name:xdrive-carry-previous"; do
		dc rmi "$tag" >/dev/null 2>&1 || true
	done
}

# recover_swap NAME finishes a replacement of NAME that a crash, a kill or
# a release interrupted: a successor that has started keeps its place and
# the old container goes (its volumes stay); otherwise the old one is put
# back, with every volume it uses.
recover_swap() {
	local name=$1
	[[ -n ${CONTAINER_STATE[$name.xdrive-old]:-} ]] || return 0
	if [[ -n ${CONTAINER_STATE[$name]:-} ]] && started "$name"; then
		dc rm "$name.xdrive-old" >/dev/null || return 1
		promote "$name"
	else
		roll_back "$name" "an interrupted replacement was found" || return 1
	fi
	load_container_states
}

# replace NAME HASH IMAGE replaces container NAME after its spec changed,
# with start_container's gpu_opts, opts and argv. The old container, and every volume it uses, stays (renamed
# NAME.xdrive-old) until its successor exists and has started; on any
# failure (a failed pull or create, a time limit, a full drive, a start that
# fails) it is put back and started with its previous settings.
replace() {
	local name=$1 hash=$2 image=$3 volume err err_file=$STATE_DIR/.docker-error
	local -a volume_opts=()
	log "container $name: its spec changed; carrying its writable layer over"
	if ! carry_over "$name" "$image"; then
		if [[ -n $CARRY_TAG ]]; then dc rmi "$CARRY_TAG" >/dev/null 2>&1 || true; fi
		preserve_failed "$name" "$CARRY_ERR; kept with its previous settings"
		dstart "$name" >/dev/null
		return
	fi
	while IFS= read -r volume; do
		if [[ -n $volume ]]; then volume_opts+=(-v "$volume"); fi
	done <<<"$CARRY_VOLUMES"
	dc rename "$name" "$name.xdrive-old" || return 1
	# Errors go through a file: a command substitution's subshell would
	# hold the drive lock past a release that stops this boot.
	if ! dk "$DOCKER_RUN_TIMEOUT" create --name "$name" --restart unless-stopped \
		--label "$SPEC_LABEL=$hash" --label "xdrive.io/spec-image=$image" \
		"${gpu_opts[@]}" "${volume_opts[@]}" "${opts[@]}" "$CARRY_FROM" "${argv[@]}" 2>"$err_file" >/dev/null; then
		err="creating it from $CARRY_FROM failed: $(tail -n 1 "$err_file")"
		[[ $err != *': ' ]] || err+="time limit of ${DOCKER_RUN_TIMEOUT}s"
	elif ! dstart "$name" 2>"$err_file" >/dev/null; then
		err="starting it failed: $(tail -n 1 "$err_file")"
	else
		dc rm "$name.xdrive-old" >/dev/null || log "warning: cannot remove $name.xdrive-old"
		promote "$name"
		return 0
	fi
	roll_back "$name" "$err" || return 1
	preserve_failed "$name" "$err; kept with its previous settings"
	dstart "$name" >/dev/null
}

# start_container NAME keeps a spec container across launches: an existing
# one with the same spec hash is started as it is; one whose spec changed is
# replaced, carrying its writable layer over, and kept when that fails.
# Settings are NUL-separated files, so nothing is evaluated. It runs with
# errexit ignored, so every step checks its own status.
start_container() {
	local name=$1 dir=$CONF_DIR/containers/$1 image gpus state hash from saved
	local -a opts argv gpu_opts=()
	if ! { { IFS= read -r image && IFS= read -r gpus; } <"$dir/image" &&
		mapfile -d '' -t opts <"$dir/opts" && mapfile -d '' -t argv <"$dir/argv"; }; then
		log "container $name: cannot read its settings in $dir"
		return 1
	fi
	if [[ $gpus == All || ($gpus == Auto && $GPU == true) ]]; then
		gpu_opts=(--gpus all)
	fi
	hash=$(spec_hash "$dir" "$image" "${gpu_opts[@]}") || return 1
	recover_swap "$name" || return 1
	from=$image
	state=${CONTAINER_STATE[$name]:-}
	if [[ -n $state ]]; then
		if [[ ${CONTAINER_HASH[$name]} == "$hash" ]]; then
			[[ $state == running ]] && log "container $name already running" && return 0
			log "starting the existing container $name ($state)"
			dstart "$name" >/dev/null
			return
		fi
		replace "$name" "$hash" "$image"
		return
	elif saved=$(dc image inspect -f '{{index .Config.Labels "xdrive.io/spec-image"}}' "$name:xdrive-latest" 2>/dev/null); then
		# A container kept as an image only: its state runs only under
		# the image it was made from, never labelled as a newer one.
		if [[ $saved == "$image" ]]; then
			from=$name:xdrive-latest
		else
			preserve_failed "$name" "$name:xdrive-latest holds its state from image $saved; started from $image, that tag kept"
		fi
	fi
	log "starting container $name from $from"
	dk "$DOCKER_RUN_TIMEOUT" run -d --name "$name" --restart unless-stopped \
		--label "$SPEC_LABEL=$hash" --label "xdrive.io/spec-image=$image" \
		"${gpu_opts[@]}" "${opts[@]}" "$from" "${argv[@]}" >/dev/null
}

start_containers() {
	local name
	local -a failed=()
	PRESERVE_ERRORS='' FLATTEN_WARNINGS=''
	load_container_states || die "Docker does not answer"
	while IFS= read -r -u 3 name; do
		stop_if_releasing
		start_container "$name" || failed+=("$name")
	done 3< <(spec_containers)
	if [[ -n $PRESERVE_ERRORS ]]; then
		write_state preserve-error "${PRESERVE_ERRORS%; }"
	else
		rm -f "$STATE_DIR/preserve-error"
	fi
	((${#failed[@]} == 0)) || die "containers failed to start: ${failed[*]}"
	[[ -z $FLATTEN_WARNINGS ]] || write_state message "${FLATTEN_WARNINGS%; }"
}

# lock_drive takes the drive lock for the rest of the boot, and records the
# boot's PID so a release that cannot wait may stop it.
lock_drive() {
	mkdir -p "$RUN_DIR"
	exec 8>"$DRIVE_LOCK"
	flock 8
	stop_if_releasing
	write_state boot-pid "$$"
}

main() {
	load_config
	stop_if_releasing
	trap on_exit EXIT
	unmark message
	rm -f "$STATE_DIR/preserve-error" "$STATE_DIR/store-error"
	# The first boot (from the user-data) enables the units for the next
	# ones, and starts the interruption watcher. No daemon-reload (slow: it
	# reruns every generator): systemd finds a new unit when asked for it (246+).
	if [[ ! -e $ROOT/etc/systemd/system/multi-user.target.wants/xdrive-watch.service ]]; then
		systemctl enable --no-reload xdrive-bootstrap.service xdrive-watch.service
		systemctl start --no-block xdrive-watch || { systemctl daemon-reload && systemctl start --no-block xdrive-watch; }
	fi
	# containerd needs no drive: it starts while the boot waits for one.
	systemctl start --no-block containerd.service 2>/dev/null || true
	phase configuring-ssh
	setup_ssh
	lock_drive
	phase waiting-for-drive
	find_drive
	phase preparing-drive
	prepare_drive
	# The operator asks for a prewarm of a volume restored from a snapshot:
	# it runs in the background, in a session of its own (a release stops it
	# whole), without the drive lock and the boot's output.
	[[ $PREWARM != true ]] || setsid -f "$SBIN_DIR/xdrive-ctl" prewarm </dev/null >>"$STATE_DIR/prewarm.log" 2>&1 8>&-
	phase starting-docker
	configure_docker
	phase starting-containers
	start_containers
	phase ready
}

# Run, unless sourced (the depth test calls start_container directly).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
