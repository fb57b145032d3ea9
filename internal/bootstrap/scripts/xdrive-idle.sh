# shellcheck shell=bash
# Activity signals for `xdrive-ctl status --idle CONFIG --probe SCRIPT`: this
# file is SCRIPT. The operator sends it with each status call rather than in
# the user-data, which it would push over EC2's 16 KiB with many containers.
# CONFIG is base64 of KEY=VALUE lines (never evaluated): CPU (load average),
# GPU (percent), PORTS, BPS (bytes/s on PORTS), JUPYTER (NAME:PORT ...),
# CHECK (base64 of a bash command). A signal that cannot be read is
# "unknown", which the operator counts as activity.

IDLE_SEP=''

# signal NAME STATE DETAIL prints one JSON signal.
signal() {
	printf '%s{"name":%s,"state":%s,"detail":%s}' "$IDLE_SEP" "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")"
	IDLE_SEP=,
}

# at_least A B: the decimal A is >= the decimal B.
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# tcp_conns prints "LOCALPORT PEER BYTES" per established TCP connection.
tcp_conns() {
	local out line f lp='' peer='' bytes
	local -a a
	out=$(ss -Htni state established) || return 1
	while IFS= read -r line; do
		if [[ -z $line ]]; then continue; fi
		if [[ $line =~ ^[[:space:]] ]]; then
			bytes=0
			if [[ $line =~ bytes_acked:([0-9]+) ]]; then bytes=$((bytes + BASH_REMATCH[1])); fi
			if [[ $line =~ bytes_received:([0-9]+) ]]; then bytes=$((bytes + BASH_REMATCH[1])); fi
			if [[ -n $lp ]]; then printf '%s %s %s\n' "$lp" "$peer" "$bytes"; fi
			lp=''
			continue
		fi
		if [[ -n $lp ]]; then printf '%s %s 0\n' "$lp" "$peer"; fi
		a=()
		for f in $line; do
			if [[ $f =~ :[0-9]+$ ]]; then a+=("$f"); fi
		done
		lp=${a[0]:-} peer=${a[1]:-}
		lp=${lp##*:}
	done <<<"$out"
	if [[ -n $lp ]]; then printf '%s %s 0\n' "$lp" "$peer"; fi
}

# sig_ssh: login sessions (who), and connections to sshd (port-forwards)
# other than the operator's own.
sig_ssh() {
	local sessions conns lp peer _ n=0
	local -a me
	read -r -a me <<<"${SSH_CONNECTION:-- - - 22}"
	if ! sessions=$(who) || ! conns=$(tcp_conns); then
		signal ssh unknown "who or ss failed"
		return
	fi
	while read -r lp peer _; do
		if [[ $lp == "${me[3]}" && ! ($peer == *"${me[0]}"* && ${peer##*:} == "${me[1]}") ]]; then n=$((n + 1)); fi
	done <<<"$conns"
	sessions=$(grep -c . <<<"$sessions") || true
	if ((sessions + n > 0)); then
		signal ssh active "$sessions sessions, $n other connections"
	else
		signal ssh idle "no session"
	fi
}

sig_cpu() {
	local load _
	if ! read -r load _ <"$ROOT/proc/loadavg" 2>/dev/null || [[ ! $load =~ ^[0-9.]+$ ]]; then
		signal cpu unknown "cannot read the load average"
	elif at_least "$load" "$CPU"; then
		signal cpu active "load $load"
	else
		signal cpu idle "load $load"
	fi
}

sig_gpu() {
	local out max=-1 u
	if [[ $GPU != true ]]; then
		signal gpu idle "no GPU"
		return
	fi
	out=$(timeout 10 nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null) || out=''
	for u in $out; do
		if [[ ! $u =~ ^[0-9]+$ ]]; then max=-1 && break; fi
		((u > max)) && max=$u
	done
	if ((max < 0)); then
		signal gpu unknown "nvidia-smi failed"
	elif ((max >= GPU_MIN)); then
		signal gpu active "$max%"
	else
		signal gpu idle "$max%"
	fi
}

sig_jupyter() {
	local entry name port tok out busy=0 unknown=''
	for entry in $JUPYTER; do
		name=${entry%:*} port=${entry##*:}
		tok=$(tr '\0' '\n' <"$CONF_DIR/containers/$name/opts" 2>/dev/null | sed -n 's/^JUPYTER_TOKEN=//p' | head -n 1)
		if [[ -z $tok ]]; then
			# A token Jupyter made up itself: ask the server list in the container.
			tok=$(dk 10 exec "$name" jupyter server list --json 2>/dev/null | grep -o '"token": *"[^"]*"' | head -n 1 | cut -d'"' -f4) || tok=''
		fi
		if ! out=$(curl -fsS -m 3 -H "Authorization: token $tok" "http://127.0.0.1:$port/api/kernels" 2>/dev/null); then
			unknown+=" $name"
			continue
		fi
		busy=$((busy + $(grep -o '"execution_state": *"busy"' <<<"$out" | grep -c .))) || true
	done
	if [[ -n $unknown ]]; then
		signal jupyter unknown "no answer from$unknown"
	elif ((busy > 0)); then
		signal jupyter active "$busy busy kernels"
	else
		signal jupyter idle "no busy kernel"
	fi
}

sig_network() {
	local conns lp _ bytes total=0 now prev_t=0 prev=0 rate
	if [[ -z $PORTS ]]; then
		signal network idle "no ports"
		return
	fi
	if ! conns=$(tcp_conns); then
		signal network unknown "ss failed"
		return
	fi
	while read -r lp _ bytes; do
		if [[ " $PORTS " == *" $lp "* ]]; then total=$((total + bytes)); fi
	done <<<"$conns"
	now=$(date +%s)
	read -r prev_t prev <<<"$(read_state idle-net)" || true
	write_state idle-net "$now $total"
	if [[ ! $prev_t =~ ^[0-9]+$ ]] || ((now <= prev_t)); then
		signal network unknown "first reading"
		return
	fi
	((total >= prev)) && total=$((total - prev))
	rate=$((total / (now - prev_t)))
	if ((rate >= BPS)); then
		signal network active "$rate B/s"
	else
		signal network idle "$rate B/s"
	fi
}

sig_command() {
	local rc=0
	if [[ -z $CHECK ]]; then
		signal command idle "none"
		return
	fi
	timeout -k 5 10 bash -c "$(base64 -d <<<"$CHECK")" </dev/null >/dev/null 2>&1 || rc=$?
	case $rc in
	0) signal command active "exit 0" ;;
	1) signal command idle "exit 1" ;;
	*) signal command unknown "exit $rc" ;;
	esac
}

# idle_activity CONFIG prints the signals as a JSON array.
idle_activity() {
	local key value
	CPU=0.5 GPU_MIN=10 PORTS='' BPS=4096 JUPYTER='' CHECK=''
	while IFS='=' read -r key value; do
		case $key in
		CPU) [[ $value =~ ^[0-9.]+$ ]] && CPU=$value ;;
		GPU) [[ $value =~ ^[0-9]+$ ]] && GPU_MIN=$value ;;
		PORTS) [[ $value =~ ^[0-9\ ]*$ ]] && PORTS=$value ;;
		BPS) [[ $value =~ ^[0-9]+$ ]] && BPS=$value ;;
		JUPYTER) [[ $value =~ ^[a-z0-9:\ -]*$ ]] && JUPYTER=$value ;;
		CHECK) CHECK=$value ;;
		esac
	done < <(base64 -d <<<"$1")
	printf '['
	sig_ssh
	sig_jupyter
	sig_gpu
	sig_cpu
	sig_network
	sig_command
	printf ']'
}
