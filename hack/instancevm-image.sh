#!/usr/bin/env bash
# Builds the Linux image test/instancevm boots as a real xdrive instance:
# Debian trixie from Debian's packages (mmdebstrap), with the kernel,
# systemd, cloud-init (NoCloud), openssh-server, docker.io and the tools the
# bootstrap uses. It is built once into a per-user cache, keyed by this
# script's hash, and its directory is printed on stdout:
#   vmlinuz, initrd.img   the kernel QEMU boots (-kernel/-initrd)
#   root.raw              the root disk (ext4, sparse); each VM gets an overlay
#   busybox.tar           the rootfs of the test containers' image (also inside)
# Usage: hack/instancevm-image.sh [--print-dir]
#   --print-dir prints the cache directory without building.
# Needs root (mmdebstrap --mode=root) and hack/install-test-deps.sh's tools.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
hash=$(sha256sum "$self" | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/xdrive-instancevm
out=$cache/$hash
if [[ ${1:-} == --print-dir ]]; then
	echo "$out"
	exit 0
fi
if [[ -e $out/done ]]; then
	echo "$out"
	exit 0
fi
for tool in mmdebstrap mkfs.ext4 qemu-system-x86_64 qemu-img genisoimage socat; do
	command -v "$tool" >/dev/null ||
		{ echo "instancevm-image: $tool is missing; run hack/install-test-deps.sh" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "instancevm-image: mmdebstrap --mode=root needs root" >&2; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [[ -e $out/done ]]; then
	echo "$out"
	exit 0
fi
work=$(mktemp -d "$cache/build.XXXXXX")
# cleanup unmounts what an interrupted mmdebstrap left mounted in the rootfs
# (/proc, /sys, /dev/pts) before removing it, and never crosses a mount.
cleanup() {
	local m
	while read -r m; do umount -l "$m" || true; done < <(grep -o "$work/[^ ]*" /proc/mounts | sort -r)
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
start=$SECONDS
rootfs=$work/rootfs
mkdir "$rootfs"

# What the bootstrap runs (bash, flock, blkid, mkfs.ext4/xfs, resize2fs,
# xfs_growfs, nvme, curl, ss, ionice, timeout, docker), what the tests use
# (busybox-static for the containers' image, tmux for the idle signals), and
# an OS that boots under QEMU (kernel, initramfs, systemd, udev, cloud-init).
packages=linux-image-amd64,initramfs-tools,systemd-sysv,udev,dbus,libpam-systemd,kmod
packages+=,openssh-server,cloud-init,cloud-guest-utils,sudo,ca-certificates,curl,iproute2,procps
packages+=,docker.io,docker-cli,apparmor,e2fsprogs,xfsprogs,nvme-cli,util-linux,busybox-static,tmux

# The customize hook runs on the host with the rootfs as $1.
customize=$(
	cat <<'HOOK'
set -eu
r=$1
# cloud-init: only the NoCloud seed (no network datasources to probe), and
# the C.UTF-8 locale (minbase has no other; cloud-init errs making one), and
# only an ed25519 host key (RSA key generation is slow under TCG; the
# bootstrap keeps only the operator's ed25519 key anyway). The user-data
# stays exactly what the operator renders.
cat >"$r/etc/cloud/cloud.cfg.d/90-xdrive-instancevm.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
ssh_genkeytypes: [ ed25519 ]
EOF
# Like the AMIs the operator launches, Docker does not start at boot: the
# bootstrap starts it once its data-root is on the drive.
chroot "$r" systemctl disable docker.service docker.socket containerd.service
# The containers' image, without a registry: a busybox rootfs. A real
# instance pulls its images; here docker.service imports this one when its
# (drive's) store lacks it, before the bootstrap starts the containers.
bb=$(mktemp -d)
mkdir -p "$bb/bin" "$bb/tmp" "$bb/data" "$bb/etc"
cp "$r/bin/busybox" "$bb/bin/busybox"
for a in $(chroot "$r" /bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$bb/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bb/etc/passwd"
mkdir -p "$r/usr/local/share/xdrive-instancevm"
tar -C "$bb" --owner=0 --group=0 --numeric-owner -cf "$r/usr/local/share/xdrive-instancevm/busybox.tar" .
rm -rf "$bb"
cat >"$r/usr/local/sbin/xdrive-instancevm-images" <<'EOF'
#!/bin/sh
# Stands in for the registry: imports the test image into Docker's store.
set -eu
docker image inspect xdrive.test/busybox:1 >/dev/null 2>&1 && exit 0
docker import --change 'CMD ["sh"]' /usr/local/share/xdrive-instancevm/busybox.tar xdrive.test/busybox:1 >/dev/null
EOF
chmod 0755 "$r/usr/local/sbin/xdrive-instancevm-images"
mkdir -p "$r/etc/systemd/system/docker.service.d"
cat >"$r/etc/systemd/system/docker.service.d/xdrive-instancevm.conf" <<'EOF'
[Service]
ExecStartPost=/usr/local/sbin/xdrive-instancevm-images
EOF
# EC2's NVMe model: QEMU's NVMe controller reads "QEMU NVMe Ctrl" and has no
# model setting. The bootstrap (as on EC2) takes only a disk whose model is
# "Amazon Elastic Block Store", so each QEMU NVMe controller's model
# attribute is overlaid (a bind mount) with EC2's before cloud-init runs.
cat >"$r/usr/local/sbin/xdrive-instancevm-ebs-model" <<'EOF'
#!/bin/sh
set -eu
# The NVMe controllers are probed once udev loads the nvme module.
i=0
while [ ! -e /sys/class/nvme/nvme0/model ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo 'Amazon Elastic Block Store' >/run/xdrive-instancevm-ebs-model
for m in /sys/class/nvme/nvme*/model; do
	[ -e "$m" ] || continue
	read -r model <"$m" || true
	[ "$model" = 'QEMU NVMe Ctrl' ] || continue
	mount --bind /run/xdrive-instancevm-ebs-model "$m"
done
EOF
chmod 0755 "$r/usr/local/sbin/xdrive-instancevm-ebs-model"
cat >"$r/etc/systemd/system/xdrive-instancevm-ebs-model.service" <<'EOF'
[Unit]
Description=xdrive instancevm: show QEMU's NVMe disks with EC2's EBS model
After=systemd-udev-trigger.service
Before=cloud-init.service cloud-final.service
DefaultDependencies=no

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/xdrive-instancevm-ebs-model

[Install]
WantedBy=multi-user.target
EOF
chroot "$r" systemctl enable xdrive-instancevm-ebs-model.service
# The network: minbase has no ifupdown or netplan for cloud-init to render
# to, so systemd-networkd runs DHCP on the NIC (QEMU's user network).
cat >"$r/etc/systemd/network/20-xdrive-instancevm.network" <<'EOF'
[Match]
Name=en*

[Network]
DHCP=ipv4
EOF
chroot "$r" systemctl enable systemd-networkd.service
# Boot faster under TCG: no wait for a second network, no timers.
chroot "$r" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer dpkg-db-backup.timer 2>/dev/null || true
echo 'LABEL=root / ext4 rw,noatime 0 1' >"$r/etc/fstab"
echo xdrive-instancevm >"$r/etc/hostname"
HOOK
)

mmdebstrap --variant=minbase --mode=root --include="$packages" \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--customize-hook="$customize" \
	trixie "$rootfs" >"$work/mmdebstrap.log" 2>&1 ||
	{ tail -40 "$work/mmdebstrap.log" >&2; echo "instancevm-image: mmdebstrap failed" >&2; exit 1; }

cp -L "$rootfs/vmlinuz" "$work/vmlinuz"
cp -L "$rootfs/initrd.img" "$work/initrd.img"
cp "$rootfs/usr/local/share/xdrive-instancevm/busybox.tar" "$work/busybox.tar"
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
versions=$(chroot "$rootfs" dpkg-query -W -f '${Package}=${Version} ' docker.io containerd linux-image-amd64 cloud-init systemd)
truncate -s 3G "$work/root.raw"
mkfs.ext4 -q -L root -d "$rootfs" "$work/root.raw"
rm -rf --one-file-system "$rootfs"
{
	echo "built=$(date -u +%FT%TZ)"
	echo "seconds=$((SECONDS - start))"
	echo "disk_bytes=$(du -B1 -s "$work" | cut -f1)"
	echo "packages=$versions"
} >"$work/info"
touch "$work/done"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
# Older builds of this script are stale.
for d in "$cache"/*/; do
	d=${d%/}
	[[ $d == "$out" || ${d##*/} == build.* ]] || rm -rf "$d"
done
echo "instancevm-image: built $out in $((SECONDS - start))s ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
