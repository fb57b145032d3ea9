# shellcheck shell=bash
# shellcheck disable=SC2153 # ROOT, RUN_DIR, CONF_DIR: from xdrive-lib.sh, which xdrive-ctl sources
# Activity signals for `xdrive-ctl status --idle CONFIG --probe SCRIPT`: this
# file is SCRIPT. The operator sends it with each status call rather than in
# the user-data, which it would push over EC2's 16 KiB with many containers.
# CONFIG is base64 of KEY=VALUE lines (never evaluated): CPU (load average),
# GPU (percent), PORTS, BPS (bytes/s on PORTS), JUPYTER (NAME:PORT ...),
# CHECK (base64 of a bash command). A signal that cannot be read, or is not
# read within its budget, is "unknown", which the operator counts as activity.
# The README's "Idle auto-stop" says what each signal sees.
# It also holds the idle stop's commands on the instance, only needed with
# idle stop on: each status call keeps this file in /run/xdrive/idle.sh,
# and xdrive-ctl sources it for any command it does not know:
#   notify --kind idle-stop|budget --deadline RFC3339  (the operator's, at the
#            warning) write /run/xdrive/notice and send a wall message
#   notice   print the pending notice, with the seconds left now; exit 1 if none
#   extend DURATION  ask the idle stop to wait DURATION (30m, 1h, 1h30m; at
#            most 720h) from now; the operator reads it at its next check and
#            caps it by the class's idleStop.maxExtend

# Seconds each signal may take; they run at once, well within the operator's
# 10 s for the whole status call.
IDLE_BUDGET=${XDRIVE_IDLE_BUDGET:-3}
# Seconds between the GPU sampler's readings, and how long it keeps running
# after the last status call that asked for the GPU.
GPU_SAMPLE_INTERVAL=${XDRIVE_GPU_SAMPLE_INTERVAL:-5}
GPU_SAMPLER_IDLE=3600
# CPU seconds per second of jobs in tmux, screen and SSM sessions that count as busy.
JOB_CPU=0.01
# The check command's user (nobody), kept from IMDS: no host key, no
# credentials, no user-data.
CHECK_UID=65534
IMDS_RULES=("iptables 169.254.169.254/32" "ip6tables fd00:ec2::254/128")
# The notice of a coming stop, which programs can poll: one JSON line, world-readable, on tmpfs.
NOTICE_FILE=$RUN_DIR/notice
# The longest `extend`, in minutes: spec.idleStop's own limit, 720h.
MAX_EXTEND_MINUTES=43200
RFC3339_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# signal NAME STATE DETAIL prints one JSON signal.
signal() {
	printf '{"name":%s,"state":%s,"detail":%s}' "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")"
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

# sig_ssh: login sessions on a terminal (who), and connections to sshd
# (port-forwards, commands, IDEs) other than the operator's own. A who that
# reads logind (coreutils 9.4 on) also lists sessions without a terminal,
# e.g. "root sshd pid:1234 ...", the operator's own among them: those count
# by their connection instead.
sig_ssh() {
	local sessions conns lp peer _ n=0 ssm
	local -a me
	read -r -a me <<<"${SSH_CONNECTION:-- - - 22}"
	if ! sessions=$(who) || ! conns=$(tcp_conns); then
		signal ssh unknown "who or ss failed"
		return
	fi
	while read -r lp peer _; do
		if [[ $lp == "${me[3]}" && ! ($peer == *"${me[0]}"* && ${peer##*:} == "${me[1]}") ]]; then n=$((n + 1)); fi
	done <<<"$conns"
	sessions=$(awk '$2 ~ /^(pts\/|tty|console$|:[0-9])/' <<<"$sessions" | grep -c .) || true
	ssm=$(procs_named ssm-session-worker | grep -c .) || true
	if ((sessions + n + ssm > 0)); then
		signal ssh active "$sessions sessions, $n other connections, $ssm SSM sessions"
	else
		signal ssh idle "no session"
	fi
}

# procs_named COMM prints the PIDs of processes whose name starts with COMM.
procs_named() {
	local f comm
	for f in "$ROOT"/proc/[0-9]*/comm; do
		read -r comm <"$f" 2>/dev/null || continue
		if [[ $comm == "$1"* ]]; then
			f=${f%/comm}
			printf '%s\n' "${f##*/}"
		fi
	done
}

# job_ticks prints the CPU time, in clock ticks, used by every process under
# a tmux or screen server or an SSM session (its children's, once waited
# for, included).
job_ticks() {
	local f line pid comm rest total=0
	local -a st
	local -A parent=() ticks=() root=()
	for f in "$ROOT"/proc/[0-9]*/stat; do
		IFS= read -r line <"$f" 2>/dev/null || continue
		pid=${line%% *} rest=${line##*) } comm=${line#*(} comm=${comm%) *}
		read -r -a st <<<"$rest"
		parent[$pid]=${st[1]}
		ticks[$pid]=$((st[11] + st[12] + st[13] + st[14]))
		case $comm in tmux* | screen | SCREEN | ssm-session-wor*) root[$pid]=1 ;; esac
	done
	for pid in "${!ticks[@]}"; do
		f=${parent[$pid]:-0}
		while [[ $f != 0 && -z ${root[$f]:-} ]]; do f=${parent[$f]:-0}; done
		if [[ $f != 0 ]]; then total=$((total + ticks[$pid])); fi
	done
	printf '%s' "$total"
}

# rate NAME VALUE records VALUE with the time in the state NAME and prints
# the rate per second since the last reading, or fails on the first.
rate() {
	local now prev_t prev
	now=$(date +%s)
	read -r prev_t prev <<<"$(read_state "$1")" || true
	write_state "$1" "$now $2"
	[[ $prev_t =~ ^[0-9]+$ && $prev =~ ^[0-9]+$ ]] && ((now > prev_t)) || return 1
	if (($2 >= prev)); then
		printf '%s' $((($2 - prev) / (now - prev_t)))
	else
		printf '%s' $(($2 / (now - prev_t)))
	fi
}

sig_cpu() {
	local load _ ticks hz rate
	if ! read -r load _ <"$ROOT/proc/loadavg" 2>/dev/null || [[ ! $load =~ ^[0-9.]+$ ]]; then
		signal cpu unknown "cannot read the load average"
		return
	elif at_least "$load" "$CPU"; then
		signal cpu active "load $load"
		return
	fi
	if ! hz=$(getconf CLK_TCK) || ! ticks=$(job_ticks); then
		signal cpu unknown "cannot read the processes"
		return
	fi
	# In hundredths of a CPU second: the rate is then in % of a CPU.
	if ! rate=$(rate idle-jobs $((ticks * 100 / hz))); then
		signal cpu unknown "load $load; first reading of tmux, screen and SSM jobs"
		return
	fi
	if at_least "$(awk -v r="$rate" 'BEGIN { print r / 100 }')" "$JOB_CPU"; then
		signal cpu active "load $load; tmux, screen or SSM jobs use $rate% of a CPU"
	else
		signal cpu idle "load $load"
	fi
}

# gpu_max prints the highest utilisation of any GPU now, or fails.
gpu_max() {
	local out u max=-1
	out=$(timeout -k 1 3 nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null) || return 1
	for u in $out; do
		[[ $u =~ ^[0-9]+$ ]] || return 1
		((u > max)) && max=$u
	done
	((max >= 0)) && printf '%s' "$max"
}

# gpu_sampler records "TIME MAX" in $RUN_DIR/gpu-samples every
# GPU_SAMPLE_INTERVAL seconds, in the background, one at a time; it stops
# GPU_SAMPLER_IDLE seconds after the last status call that asked for the
# GPU, or when $RUN_DIR goes.
gpu_sampler() {
	local u
	exec 6>"$RUN_DIR/gpu-sampler.lock" && flock -n 6 || return 0
	while [[ -e $RUN_DIR/gpu-wanted ]] && (($(date +%s) - $(stat -c %Y "$RUN_DIR/gpu-wanted") < GPU_SAMPLER_IDLE)); do
		if u=$(gpu_max); then
			printf '%s %s\n' "$(date +%s)" "$u" >>"$RUN_DIR/gpu-samples"
			tail -n 1000 "$RUN_DIR/gpu-samples" >"$RUN_DIR/.gpu-samples" && mv -f "$RUN_DIR/.gpu-samples" "$RUN_DIR/gpu-samples"
		fi
		sleep "$GPU_SAMPLE_INTERVAL"
	done
}

# sig_gpu: the highest utilisation now and in the sampler's readings since
# the last check, so a GPU busy between two checks counts.
sig_gpu() {
	local now max t u since
	if [[ $GPU != true ]]; then
		signal gpu idle "no GPU"
		return
	fi
	mkdir -p "$RUN_DIR" && touch "$RUN_DIR/gpu-wanted"
	setsid -f bash -c "$(declare -f gpu_max gpu_sampler); $(declare -p RUN_DIR GPU_SAMPLE_INTERVAL GPU_SAMPLER_IDLE); gpu_sampler" </dev/null >/dev/null 2>&1 8>&- 9>&-
	now=$(date +%s)
	since=$(read_state idle-gpu)
	write_state idle-gpu "$now"
	if ! max=$(gpu_max); then
		signal gpu unknown "nvidia-smi failed"
		return
	fi
	if [[ $since =~ ^[0-9]+$ ]]; then
		while read -r t u; do
			if [[ $t =~ ^[0-9]+$ && $u =~ ^[0-9]+$ ]] && ((t >= since && u > max)); then max=$u; fi
		done <"$RUN_DIR/gpu-samples" 2>/dev/null || true
	fi
	if ((max >= GPU_MIN)); then
		signal gpu active "$max% at most since the last check"
	else
		signal gpu idle "$max% at most since the last check"
	fi
}

# jupyter_servers prints "NAME HOSTPORT TOKEN BASE_URL" per Jupyter server:
# those the operator lists (JUPYTER), and those `jupyter server list` shows
# in any running spec container, on any port.
jupyter_servers() {
	local entry name port tok line base cport dir
	declare -A seen=()
	dir=$(mktemp -d "$RUN_DIR/jupyter.XXXXXX")
	# Asked in every container at once: each takes a Python start.
	for name in $(spec_containers); do
		if [[ ${CONTAINER_STATE[$name]:-} == running ]]; then
			dk 2 exec "$name" jupyter server list --json >"$dir/$name" 2>/dev/null </dev/null &
		fi
	done
	wait
	for name in $(spec_containers); do
		[[ -e $dir/$name ]] || continue
		while IFS= read -r line; do
			[[ $line =~ \"port\":\ *([0-9]+) ]] || continue
			cport=${BASH_REMATCH[1]} tok='' base=/
			if [[ $line =~ \"token\":\ *\"([^\"]*)\" ]]; then tok=${BASH_REMATCH[1]}; fi
			if [[ $line =~ \"base_url\":\ *\"([^\"]*)\" ]]; then base=${BASH_REMATCH[1]}; fi
			port=$(host_port "$name" "$cport")
			seen[$name:$port]=1
			printf '%s %s %s %s\n' "$name" "$port" "${tok:--}" "$base"
		done <"$dir/$name"
	done
	rm -rf "$dir"
	for entry in $JUPYTER; do
		name=${entry%:*} port=${entry##*:}
		[[ -z ${seen[$name:$port]:-} ]] || continue
		tok=$(tr '\0' '\n' <"$CONF_DIR/containers/$name/opts" 2>/dev/null | sed -n 's/^JUPYTER_TOKEN=//p' | head -n 1)
		printf '%s %s %s /\n' "$name" "$port" "${tok:--}"
	done
}

# host_port NAME PORT prints the host port that publishes container port
# PORT of NAME (the same port with host networking).
host_port() {
	local o h=$2
	while IFS= read -r o; do
		if [[ $o =~ ^(.*:)?([0-9]+):$2/tcp$ ]]; then h=${BASH_REMATCH[2]}; fi
	done < <(tr '\0' '\n' <"$CONF_DIR/containers/$1/opts" 2>/dev/null)
	printf '%s' "$h"
}

# sig_jupyter: a busy kernel, or activity (kernels, terminals, the UI: the
# server's last_activity) since the last check.
sig_jupyter() {
	local name port tok base out busy=0 recent='' unknown='' since at n=0
	since=$(read_state idle-jupyter)
	while read -r name port tok base; do
		n=$((n + 1))
		[[ $tok != - ]] || tok=''
		# api/status first: the next requests count as activity themselves.
		if ! out=$(curl -fsS -m 2 -H "Authorization: token $tok" "http://127.0.0.1:$port${base%/}/api/status" 2>/dev/null) ||
			! [[ $out =~ \"last_activity\":\ *\"([^\"]+)\" ]] || ! at=$(date -d "${BASH_REMATCH[1]}" +%s 2>/dev/null); then
			unknown+=" $name:$port"
			continue
		fi
		if [[ $since =~ ^[0-9]+$ ]] && ((at > since)); then recent+=" $name:$port"; fi
		if ! out=$(curl -fsS -m 2 -H "Authorization: token $tok" "http://127.0.0.1:$port${base%/}/api/kernels" 2>/dev/null); then
			unknown+=" $name:$port"
			continue
		fi
		busy=$((busy + $(grep -o '"execution_state": *"busy"' <<<"$out" | grep -c .))) || true
	done < <(jupyter_servers)
	write_state idle-jupyter "$(date +%s)"
	if [[ -n $unknown ]]; then
		signal jupyter unknown "no answer from$unknown"
	elif ((busy > 0)); then
		signal jupyter active "$busy busy kernels"
	elif [[ -n $recent ]]; then
		signal jupyter active "activity since the last check on$recent"
	else
		signal jupyter idle "$n servers, no busy kernel, no activity"
	fi
}

# iface_bytes prints the bytes received and sent on the instance's network
# interfaces (not lo, nor Docker's bridges and veths, which eth0 carries too).
iface_bytes() {
	local name rx total=0
	local -a f
	{
		read -r _ && read -r _
		while IFS=: read -r name rx; do
			name=${name// /}
			[[ $name == lo || $name == docker* || $name == br-* || $name == veth* ]] && continue
			read -r -a f <<<"$rx"
			total=$((total + f[0] + f[8]))
		done
	} <"$ROOT/proc/net/dev" || return 1
	printf '%s' "$total"
}

# conntrack_bytes prints the bytes of tracked connections to PORTS, those
# Docker forwards (DNAT) to published container ports included, which ss
# on the host does not show. Counting needs nf_conntrack_acct, set here.
conntrack_bytes() {
	local line p b total=0
	{ printf 1 >"$ROOT/proc/sys/net/netfilter/nf_conntrack_acct"; } 2>/dev/null || true
	[[ -r $ROOT/proc/net/nf_conntrack ]] || { printf 0 && return 0; }
	while IFS= read -r line; do
		[[ $line =~ dport=([0-9]+) ]] || continue
		p=${BASH_REMATCH[1]}
		[[ " $PORTS " == *" $p "* ]] || continue
		for b in $line; do
			if [[ $b == bytes=* ]]; then total=$((total + ${b#bytes=})); fi
		done
	done <"$ROOT/proc/net/nf_conntrack"
	printf '%s' "$total"
}

# sig_network: traffic on PORTS (host sockets and Docker's forwarded
# connections), and all traffic of the instance's interfaces (a download),
# in bytes per second since the last check.
sig_network() {
	local conns lp _ bytes total=0 ports all
	if ! conns=$(tcp_conns) || ! all=$(iface_bytes); then
		signal network unknown "ss or /proc/net/dev failed"
		return
	fi
	while read -r lp _ bytes; do
		if [[ " $PORTS " == *" $lp "* ]]; then total=$((total + bytes)); fi
	done <<<"$conns"
	total=$((total + $(conntrack_bytes)))
	local first=false
	ports=$(rate idle-net "$total") || first=true
	all=$(rate idle-iface "$all") || first=true
	if [[ $first == true ]]; then
		signal network unknown "first reading"
	elif ((ports >= BPS || all >= BPS)); then
		signal network active "ports ${PORTS:-none}: $ports B/s; interfaces: $all B/s"
	else
		signal network idle "ports ${PORTS:-none}: $ports B/s; interfaces: $all B/s"
	fi
}

# imds_closed keeps CHECK_UID from IMDS (its credentials and the
# user-data), with a rule per IP version that has a firewall.
imds_closed() {
	local r cmd addr
	for r in "${IMDS_RULES[@]}"; do
		read -r cmd addr <<<"$r"
		command -v "$cmd" >/dev/null || continue
		local -a rule=(OUTPUT -d "$addr" -m owner --uid-owner "$CHECK_UID" -j REJECT)
		"$cmd" -w 2 -C "${rule[@]}" 2>/dev/null || "$cmd" -w 2 -I "${rule[@]}" || return 1
	done
}

# sig_command runs CHECK as nobody, never root: no capabilities, no
# supplementary groups, a clean environment, from /, kept from IMDS.
sig_command() {
	local rc=0
	if [[ -z $CHECK ]]; then
		signal command idle "none"
		return
	fi
	if ! imds_closed; then
		signal command unknown "cannot keep the check command from IMDS; not run"
		return
	fi
	(cd / && exec setpriv --reuid="$CHECK_UID" --regid="$CHECK_UID" --clear-groups --inh-caps=-all --bounding-set=-all \
		--no-new-privs env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ LANG=C.UTF-8 \
		bash -c "$(base64 -d <<<"$CHECK")") </dev/null >/dev/null 2>&1 8>&- 9>&- || rc=$?
	case $rc in
	0) signal command active "exit 0" ;;
	1) signal command idle "exit 1" ;;
	*) signal command unknown "exit $rc" ;;
	esac
}

# idle_activity CONFIG prints the signals as a JSON array, then the last
# extend's members (print_extend), and keeps this file for the idle stop's
# commands (keep_probe). The signals run at once, each in a process group of
# its own; one still running after IDLE_BUDGET seconds is killed, whole, and
# reported unknown.
idle_activity() {
	local key value dir s deadline
	local -A pids=()
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
	mkdir -p "$RUN_DIR"
	dir=$(mktemp -d "$RUN_DIR/idle.XXXXXX")
	set -m
	for s in ssh jupyter gpu cpu network command; do
		("sig_$s" >"$dir/$s" 2>/dev/null) </dev/null 8>&- 9>&- &
		pids[$s]=$!
	done
	set +m
	deadline=$((${EPOCHREALTIME/./} + IDLE_BUDGET * 1000000))
	for s in "${!pids[@]}"; do
		while kill -0 "${pids[$s]}" 2>/dev/null && ((${EPOCHREALTIME/./} < deadline)); do sleep 0.05; done
		if kill -0 "${pids[$s]}" 2>/dev/null; then
			kill -KILL -- "-${pids[$s]}" 2>/dev/null || true
			signal "$s" unknown "not read within ${IDLE_BUDGET}s" >"$dir/$s"
		fi
		wait "${pids[$s]}" 2>/dev/null || true
	done
	printf '['
	for s in ssh jupyter gpu cpu network command; do
		[[ -s $dir/$s ]] || signal "$s" unknown "failed" >"$dir/$s"
		if [[ $s != ssh ]]; then printf ,; fi
		cat "$dir/$s"
	done
	printf ']'
	rm -rf "$dir"
	print_extend
	keep_probe
}

# keep_probe writes this file, the status call's SCRIPT ($probe, a local of
# xdrive-ctl's cmd_status), to $RUN_DIR/idle.sh, where xdrive-ctl finds the
# idle stop's commands. Failing to (a full /run) fails nothing else: the
# status call still reports the signals.
keep_probe() {
	[[ -n ${probe:-} ]] || return 0
	if ! { base64 -d <<<"$probe" | gzip -dc >"$RUN_DIR/.idle.sh.tmp" && mv -f "$RUN_DIR/.idle.sh.tmp" "$RUN_DIR/idle.sh"; } 2>/dev/null; then
		rm -f "$RUN_DIR/.idle.sh.tmp" 2>/dev/null || true
		log "warning: cannot keep the idle stop's commands in $RUN_DIR/idle.sh"
	fi
}

# print_extend prints the last `extend` as "extendUntil" and "extendBy" members.
print_extend() {
	local until by
	read -r until by <<<"$(read_state extend)"
	[[ $until =~ $RFC3339_RE ]] || return 0
	printf ',"extendUntil":"%s","extendBy":%s' "$until" "$(json_str "$by")"
}

# cmd_notify writes $NOTICE_FILE ({"kind", "deadline", "secondsLeft" as of
# now, "workstation"}) and tells the logged-in users with wall. A failed wall
# is a warning: the notice is written.
cmd_notify() {
	local kind='' deadline='' epoch left msg
	while (($#)); do
		case $1 in
		--kind) [[ ${2:-} == idle-stop || ${2:-} == budget ]] || usage ;;
		--deadline) [[ ${2:-} =~ $RFC3339_RE ]] || usage ;;
		*) usage ;;
		esac
		if [[ $1 == --kind ]]; then kind=$2; else deadline=$2; fi
		shift 2
	done
	[[ -n $kind && -n $deadline ]] || usage
	epoch=$(date -u -d "$deadline" +%s) || die "notify: bad deadline '$deadline'"
	load_config
	left=$((epoch - $(date +%s)))
	mkdir -p "$RUN_DIR"
	printf '{"kind":"%s","deadline":"%s","secondsLeft":%d,"workstation":%s}\n' "$kind" "$deadline" "$left" "$(json_str "$WORKSTATION")" >"$RUN_DIR/.notice.tmp"
	chmod 0644 "$RUN_DIR/.notice.tmp"
	mv -f "$RUN_DIR/.notice.tmp" "$NOTICE_FILE"
	log "notice: $kind at $deadline"
	if [[ $kind == budget ]]; then
		msg="xdrive: 80% of this machine's monthly budget is spent${WORKSTATION:+ (Workstation $WORKSTATION)}. At today's prices
the rest runs out at $(date -u -d "@$epoch" '+%Y-%m-%d %H:%M:%S UTC'), in $(((left + 59) / 60)) min: then its containers stop, its
drive is snapshotted, and it starts again when the month turns or the budget is raised.
Programs can read $NOTICE_FILE or run: xdrive-ctl notice"
	else
		msg="xdrive: this machine${WORKSTATION:+ (Workstation $WORKSTATION)} stops for idleness at $(date -u -d "@$epoch" '+%Y-%m-%d %H:%M:%S UTC'), in $(((left + 59) / 60)) min:
its containers stop and its drive is snapshotted. To keep it running, use it, or run:
  sudo xdrive-ctl extend 1h
Programs can read $NOTICE_FILE or run: xdrive-ctl notice"
	fi
	timeout 10 wall <<<"$msg" || log "warning: wall failed; the notice is in $NOTICE_FILE"
}

# cmd_notice prints the pending notice with its seconds left now (negative
# once the deadline has passed and the machine still runs: it was used, or
# the stop was postponed); it fails when there is none.
cmd_notice() {
	local line deadline='' epoch
	[[ -r $NOTICE_FILE ]] || exit 1
	IFS= read -r line <"$NOTICE_FILE"
	if [[ $line =~ \"deadline\":\"([^\"]+)\" ]]; then deadline=${BASH_REMATCH[1]}; fi
	if ! [[ $deadline =~ $RFC3339_RE ]] || ! epoch=$(date -u -d "$deadline" +%s) ||
		! [[ $line =~ ^(.*\"secondsLeft\":)-?[0-9]+(.*)$ ]]; then
		echo "xdrive-ctl notice: cannot read $NOTICE_FILE" >&2
		exit 1
	fi
	printf '%s%d%s\n' "${BASH_REMATCH[1]}" $((epoch - $(date +%s))) "${BASH_REMATCH[2]}"
}

# cmd_extend records "UNTIL USER" in $STATE_DIR/extend: the idle stop waits
# until UNTIL at the earliest, once the operator's next status check reads
# it, within the class's bound. A notice of a stop before UNTIL is removed.
cmd_extend() {
	local h m minutes until by
	(($# == 1)) || usage
	if [[ $1 =~ ^(([0-9]{1,3})h)?(([0-9]{1,5})m)?$ ]]; then
		h=${BASH_REMATCH[2]:-0} m=${BASH_REMATCH[4]:-0}
		minutes=$((10#$h * 60 + 10#$m))
	fi
	if ((${minutes:-0} < 1 || minutes > MAX_EXTEND_MINUTES)); then
		echo "xdrive-ctl extend: '$1' is not a duration from 1m to 720h, such as 30m, 1h or 1h30m" >&2
		exit 2
	fi
	until=$(date -u -d "@$(($(date +%s) + minutes * 60))" +%Y-%m-%dT%H:%M:%SZ)
	by=${SUDO_USER:-$(id -un)}
	[[ $by =~ ^[a-z_][a-z0-9_.-]{0,31}$ ]] || by=unknown
	write_state extend "$until $by" 2>/dev/null || {
		echo "xdrive-ctl extend: cannot write $STATE_DIR; run it as root: sudo xdrive-ctl extend $1" >&2
		exit 1
	}
	if [[ -r $NOTICE_FILE && $(<"$NOTICE_FILE") == *'"kind":"idle-stop"'* && $(<"$NOTICE_FILE") =~ \"deadline\":\"([^\"]+)\" ]] &&
		(($(date -u -d "${BASH_REMATCH[1]}" +%s) < $(date -u -d "$until" +%s))); then
		rm -f "$NOTICE_FILE"
	fi
	log "extend: $by asked the idle stop to wait until $until"
	echo "The idle stop waits until $until at the earliest, from the operator's next check (within the class's limit)."
}

# idle_ctl runs the idle stop's command that xdrive-ctl was given.
idle_ctl() {
	case ${1:-} in
	notify) cmd_notify "${@:2}" ;;
	notice) cmd_notice ;;
	extend) cmd_extend "${@:2}" ;;
	*)
		echo "usage: xdrive-ctl notify --kind idle-stop|budget --deadline RFC3339 | notice | extend DURATION" >&2
		usage
		;;
	esac
}

# Sourced by xdrive-ctl for a command it does not know (not from a function,
# as the status call does): run it.
if [[ -z ${FUNCNAME[0]:-} ]]; then idle_ctl "$@"; fi
