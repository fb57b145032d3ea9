#!/bin/bash
# xdrive-watch: polls IMDSv2 for a spot interruption notice and releases the
# drive at once when one comes, by the notice's time (the release runs the
# containers' preStop hooks first, within it). Rebalance recommendations are
# only recorded.
set -uo pipefail
# shellcheck source=xdrive-lib.sh
. "${XDRIVE_ROOT:-}/usr/local/lib/xdrive/xdrive-lib.sh"

IMDS=${XDRIVE_IMDS_URL:-http://169.254.169.254}
INTERVAL=${XDRIVE_WATCH_INTERVAL:-5}
TOKEN_TTL=21600
BODY=$RUN_DIR/.imds-body
token='' token_time=0 CODE=''

refresh_token() {
	if [[ -z $token ]] || ((SECONDS - token_time > TOKEN_TTL / 2)); then
		token=$(curl -sf --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: $TOKEN_TTL" \
			"$IMDS/latest/api/token") || token=
		token_time=$SECONDS
	fi
}

# imds_get PATH sets CODE to the HTTP status (000 on no answer); the body goes to $BODY.
imds_get() {
	CODE=$(curl -s --max-time 2 -o "$BODY" -w '%{http_code}' -H "X-aws-ec2-metadata-token: $token" "$IMDS$1") || true
	CODE=${CODE:-000}
	if [[ $CODE == 401 ]]; then
		token=
	fi
}

main() {
	local last=
	local -a deadline
	mkdir -p "$STATE_DIR" "$RUN_DIR"
	log "watching $IMDS for spot interruption notices every ${INTERVAL}s"
	while :; do
		if has_state released; then
			log "drive already released; watcher stops"
			return 0
		fi
		refresh_token
		# Checked first, so a rebalance shown together with a notice is recorded too.
		if [[ ! -e $STATE_DIR/rebalance ]]; then
			imds_get /latest/meta-data/events/recommendations/rebalance
			if [[ $CODE == 200 ]]; then
				cp "$BODY" "$STATE_DIR/rebalance"
				log "rebalance recommendation: $(tr -d '\n\t' <"$BODY")"
			fi
		fi
		imds_get /latest/meta-data/spot/instance-action
		if [[ $CODE == 200 ]]; then
			cp "$BODY" "$STATE_DIR/spot-instance-action"
			log "spot interruption notice: $(tr -d '\n\t' <"$BODY"); releasing the drive"
			# The notice's time, when it has one the release takes: its deadline.
			deadline=()
			if [[ $(<"$BODY") =~ \"time\"[[:space:]]*:[[:space:]]*\"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)\" ]]; then
				deadline=(--deadline "${BASH_REMATCH[1]}")
			fi
			if "$SBIN_DIR/xdrive-ctl" release --kind spot-interruption "${deadline[@]}"; then
				log "drive released after the interruption notice"
				return 0
			fi
			log "release failed after the interruption notice"
			return 1
		fi
		if [[ $CODE != 404 && $CODE != "$last" ]]; then
			log "IMDS answered $CODE for spot/instance-action"
		fi
		last=$CODE
		sleep "$INTERVAL"
	done
}

main "$@"
