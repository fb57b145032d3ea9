#!/usr/bin/env bash
# Runs the xdrive demo (test/e2e/demo): the whole Workstation/XDrive lifecycle on a
# local kube-apiserver + etcd (envtest), moto for AWS, and simulated instances
# (the real bootstrap scripts in sandboxes, a real sshd on 127.0.0.1 each).
#
#   hack/demo.sh [--non-interactive] [--timeout 5m] [--keep] [--instances=sim|vm]
#
# --instances=vm (make demo-real) boots a real Linux VM under QEMU for each
# instance (test/instancevm); its image is built, or found in its cache,
# before the namespace is entered.
#
# It builds first, with the network, then runs the demo in a loopback-only
# network namespace (unshare -n, as root), so nothing can reach off the
# machine; when it can, also in its own PID namespace, so that nothing the demo
# started outlives it. Without unshare it refuses to run, unless
# XDRIVE_DEMO_ALLOW_NETWORK=1. Ctrl-C stops it and cleans up everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for arg in "$@"; do
	case $arg in
	-h | --help | -help)
		sed -n '2,16s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	esac
done

log() { echo "demo.sh: $*" >&2; }

log "building bin/xdrive-demo"
go build -o bin/xdrive-demo ./test/e2e/demo
if [[ -z ${KUBEBUILDER_ASSETS:-} ]]; then
	log "locating kube-apiserver and etcd (hack/envtest-assets.sh; the first build takes about 12 minutes)"
	KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)"
fi
export KUBEBUILDER_ASSETS
prev=
for arg in "$@"; do
	if [[ $arg == --instances=vm || $arg == -instances=vm || $arg == vm && $prev == -*instances ]]; then
		log "locating the VMs' image (hack/instancevm-image.sh; a cold build takes about 8 minutes)"
		XDRIVE_INSTANCEVM_IMAGE="$(hack/instancevm-image.sh)"
		export XDRIVE_INSTANCEVM_IMAGE
	fi
	prev=$arg
done

# Pick the strongest isolation available.
mode=plain
if [[ $(id -u) -eq 0 ]]; then
	if unshare -n -p -f --kill-child --mount-proc true 2>/dev/null; then
		mode=netpid
	elif unshare -n true 2>/dev/null; then
		mode=net
	fi
fi
case $mode in
netpid)
	# The demo is the namespace's init: when it ends, the kernel ends whatever it started.
	runner=(unshare -n -p -f --kill-child --mount-proc sh -c 'ip link set lo up && exec "$0" "$@"' bin/xdrive-demo)
	;;
net)
	runner=(unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' bin/xdrive-demo)
	;;
plain)
	if [[ ${XDRIVE_DEMO_ALLOW_NETWORK:-} != 1 ]]; then
		log "cannot create a loopback-only network namespace (unshare -n needs root, and the kernel must allow it)."
		log "The demo refuses to run on the host network; set XDRIVE_DEMO_ALLOW_NETWORK=1 to run it anyway"
		log "(everything it starts still listens on 127.0.0.1, and it never dials moto's instance IPs)."
		exit 1
	fi
	log "WARNING: unshare -n is not available; running on the host network because XDRIVE_DEMO_ALLOW_NETWORK=1"
	runner=(bin/xdrive-demo)
	;;
esac

# Run the demo in the background so that signals reach this script at once,
# and pass them on to the demo, which cleans up.
"${runner[@]}" "$@" &
child=$!
target() {
	# With a PID namespace the demo is the child of unshare; otherwise it is $child itself.
	if [[ $mode == netpid ]]; then
		pgrep -P "$child" 2>/dev/null | head -n1 || true
	else
		echo "$child"
	fi
}
forward() {
	local pid
	pid=$(target)
	[[ -n $pid ]] && kill -s "$1" "$pid" 2>/dev/null || true
}
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP
rc=0
while :; do
	wait "$child" && rc=0 || rc=$?
	kill -0 "$child" 2>/dev/null || break # wait returned for a trapped signal; the demo is cleaning up
done
exit "$rc"
