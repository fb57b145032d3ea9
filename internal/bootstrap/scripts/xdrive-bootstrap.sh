#!/bin/bash
# Boot-time setup: SSH keys, the drive, Docker on the drive, the containers.
# Runs from user-data on first boot and from xdrive-bootstrap.service later.
set -euo pipefail
# shellcheck source=xdrive-lib.sh
. "${XDRIVE_ROOT:-}/usr/local/lib/xdrive/xdrive-lib.sh"

DEVICE_TIMEOUT=${XDRIVE_DEVICE_TIMEOUT:-300}
DOCKER_TIMEOUT=${XDRIVE_DOCKER_TIMEOUT:-120}
EBS_MODEL="Amazon Elastic Block Store"

# A release (spot notice or operator) wins over a running bootstrap.
stop_if_releasing() {
	if [[ -e $STATE_DIR/releasing || -e $STATE_DIR/released ]]; then
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
	if ((rc != 0)) && [[ ! -e $STATE_DIR/releasing && ! -e $STATE_DIR/released ]]; then
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

# find_drive polls for the drive: the EBS NVMe disk that is not the root
# disk, whose serial is VOLUME_ID without its dash when that is set.
# It sets DRIVE_DEV and DRIVE_VOLUME_ID.
find_drive() {
	local want=${VOLUME_ID/-/} root deadline sys name model serial seen
	local -a found
	root=$(root_disk)
	deadline=$((SECONDS + DEVICE_TIMEOUT))
	while :; do
		found=() seen=
		for sys in "$ROOT"/sys/block/nvme*; do
			[[ -r $sys/device/model && -r $sys/device/serial ]] || continue
			name=${sys##*/}
			read -r model <"$sys/device/model" || true
			read -r serial <"$sys/device/serial" || true
			seen+=" $name($model/$serial)"
			[[ $model == "$EBS_MODEL" && $name != "$root" && -e $ROOT/dev/$name ]] || continue
			if [[ -z $want || $serial == "$want" ]]; then
				found+=("$name:$serial")
			fi
		done
		case ${#found[@]} in
		1) break ;;
		0) ;;
		*) die "several EBS disks could be the drive (${found[*]}); set the volume ID" ;;
		esac
		((SECONDS < deadline)) ||
			die "drive ${VOLUME_ID:-(any EBS volume)} not found after ${DEVICE_TIMEOUT}s; root disk: ${root:-unknown}; disks:${seen:- none}"
		sleep "$POLL_INTERVAL"
	done
	DRIVE_DEV=$ROOT/dev/${found[0]%%:*}
	serial=${found[0]#*:}
	DRIVE_VOLUME_ID=vol-${serial#vol}
	log "drive $DRIVE_VOLUME_ID is $DRIVE_DEV"
	write_state volume-id "$DRIVE_VOLUME_ID"
}

# prepare_drive makes a filesystem only on a blank device, mounts it and grows it.
prepare_drive() {
	local fstype rc=0 source
	fstype=$(blkid -p -o value -s TYPE "$DRIVE_DEV") || rc=$?
	case $rc in
	0) [[ -n $fstype ]] || die "$DRIVE_DEV holds data but no filesystem; refusing to format it" ;;
	2)
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
	case $fstype in
	ext4) resize2fs "$DRIVE_DEV" ;;
	xfs) xfs_growfs "$MOUNT_DIR" ;;
	*) log "cannot grow $fstype; skipped" ;;
	esac
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

configure_docker() {
	local etc=$ROOT/etc/docker unit_dir=$ROOT/etc/systemd/system/docker.service.d
	ensure_docker
	mkdir -p "$etc" "$unit_dir"
	if [[ -e $etc/daemon.json && ! -e $etc/daemon.json.xdrive-orig ]]; then
		cp "$etc/daemon.json" "$etc/daemon.json.xdrive-orig"
	fi
	# MOUNT_PATH is checked by load_config, so it needs no JSON escaping.
	printf '{\n  "data-root": "%s/docker"\n}\n' "$MOUNT_PATH" >"$etc/daemon.json"
	if [[ $GPU == true ]]; then
		command -v nvidia-ctk >/dev/null || die "GPU instance without nvidia-ctk; use an AMI with the NVIDIA container toolkit"
		nvidia-ctk runtime configure --runtime=docker --set-as-default --config="$etc/daemon.json"
	fi
	# Docker must never start with its data-root on the bare root disk.
	printf '[Unit]\nConditionPathIsMountPoint=%s\n' "$MOUNT_PATH" >"$unit_dir/xdrive.conf"
	systemctl daemon-reload
	systemctl restart docker
	local deadline=$((SECONDS + DOCKER_TIMEOUT))
	until docker info >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "Docker did not come up within ${DOCKER_TIMEOUT}s"
		sleep "$POLL_INTERVAL"
	done
}

# start_container NAME runs one spec container, from its committed image if
# there is one. Its settings are NUL-separated files, so nothing is evaluated.
# It runs with errexit ignored, so every step checks its own status.
start_container() {
	local name=$1 dir=$CONF_DIR/containers/$1 image gpus state
	local -a opts argv gpu_opts=()
	if ! { IFS= read -r image <"$dir/image" && IFS= read -r gpus <"$dir/gpus" &&
		mapfile -d '' -t opts <"$dir/opts" && mapfile -d '' -t argv <"$dir/argv"; }; then
		log "container $name: cannot read its settings in $dir"
		return 1
	fi
	state=${CONTAINER_STATE[$name]:-}
	if [[ $state == running ]]; then
		log "container $name already running"
		return 0
	fi
	if [[ -n $state ]]; then
		log "removing stale container $name ($state)"
		docker rm "$name" >/dev/null || return 1
	fi
	if docker image inspect "$name:xdrive-latest" >/dev/null 2>&1; then
		image=$name:xdrive-latest
	fi
	if [[ $gpus == All || ($gpus == Auto && $GPU == true) ]]; then
		gpu_opts=(--gpus all)
	fi
	log "starting container $name from $image"
	docker run -d --name "$name" --restart unless-stopped "${gpu_opts[@]}" "${opts[@]}" "$image" "${argv[@]}" >/dev/null
}

start_containers() {
	local name
	local -a failed=()
	load_container_states || die "Docker does not answer"
	while IFS= read -r -u 3 name; do
		stop_if_releasing
		start_container "$name" || failed+=("$name")
	done 3< <(spec_containers)
	((${#failed[@]} == 0)) || die "containers failed to start: ${failed[*]}"
}

main() {
	load_config
	stop_if_releasing
	trap on_exit EXIT
	rm -f "$STATE_DIR/message"
	phase configuring-ssh
	setup_ssh
	phase waiting-for-drive
	find_drive
	phase preparing-drive
	prepare_drive
	phase starting-docker
	configure_docker
	phase starting-containers
	start_containers
	phase ready
}

main "$@"
