#!/usr/bin/env bash
# Builds the test guest from Debian packages only, cached in $1 (default
# /var/tmp/ferrovs-guest): a cloud kernel and an initramfs with busybox and the
# virtio-net modules (and ethtool, iperf3). Re-running with a cache in place does nothing.
#
# The guest's /init (init.sh here) reads its settings from the kernel command
# line: fv.ip=ADDR/LEN, fv.mac=MAC, fv.mtu=N, fv.cmd=COMMAND (spaces as %20), and then
# runs a shell on the serial console. The 802.1Q modules (llc stp garp mrp 8021q,
# in that order) are in /lib/modules but not loaded: VLAN tests insmod them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/var/tmp/ferrovs-guest}
stamp="$out/.built-$(sha1sum "$here/build.sh" "$here/init.sh" | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.gz" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"; cd "$work"
resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(resolve)
if [ -z "$kpkg" ]; then
  # No package lists yet on a fresh machine.
  if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  kpkg=$(resolve)
fi
[ -n "$kpkg" ] || { echo "cannot resolve linux-image-cloud-amd64 from Debian's package lists" >&2; exit 1; }
extra="ethtool libmnl0 libc6 iperf3 libiperf0 libsctp1 libssl3"
apt-get download "$kpkg" busybox-static $extra >/dev/null 2>&1 \
  || apt-get download "$kpkg" busybox-static $extra
dpkg -x "$kpkg"_*.deb k
dpkg -x busybox-static_*.deb b
# ethtool (busybox has none; `ethtool -k` shows the offloads) and iperf3
# (the guest-to-guest TCP benchmark), with the libraries they link.
for d in ethtool_*.deb libmnl0_*.deb libc6_*.deb iperf3_*.deb libiperf0_*.deb libsctp1_*.deb libssl3_*.deb; do
  dpkg -x "$d" e
done

kver=$(ls k/lib/modules)
root=initramfs
mkdir -p $root/bin $root/proc $root/sys $root/dev $root/tmp $root/lib/modules
cp b/bin/busybox $root/bin/busybox
mkdir -p $root/lib/x86_64-linux-gnu $root/lib64 $root/sbin
found() { find e -name "$1" \( -type f -o -type l \) | head -1; }
cp "$(find e -path '*sbin/ethtool' -type f | head -1)" $root/sbin/ethtool
cp "$(find e -path '*bin/iperf3' -type f | head -1)" $root/bin/iperf3
for l in libc.so.6 libm.so.6 libmnl.so.0 libiperf.so.0 libsctp.so.1 libssl.so.3 libcrypto.so.3; do
  cp -L "$(found $l)" $root/lib/x86_64-linux-gnu/
done
cp -L "$(found ld-linux-x86-64.so.2)" $root/lib64/
cp "$here/init.sh" $root/init
chmod +x $root/init
for m in drivers/virtio/virtio_ring drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio drivers/virtio/virtio_pci net/core/failover drivers/net/net_failover drivers/net/virtio_net \
         net/llc/llc net/802/stp net/802/garp net/802/mrp net/8021q/8021q; do
  src=k/lib/modules/$kver/kernel/$m.ko
  if [ -f "$src" ]; then cp "$src" $root/lib/modules/
  elif [ -f "$src.xz" ]; then xz -dc "$src.xz" > $root/lib/modules/"$(basename "$m")".ko
  else echo "note: $m not a module in $kver (built in?)" >&2; fi
done
mkdir -p "$out"
bb=$work/b/bin/busybox
(cd $root && find . | "$bb" cpio -o -H newc 2>/dev/null | gzip -1) > "$out/initramfs.gz.tmp"
cp k/boot/vmlinuz-"$kver" "$out/vmlinuz.tmp"
mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
rm -f "$out"/.built-*
touch "$stamp"
echo "guest: $kver in $out" >&2
