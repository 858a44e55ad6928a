#!/bin/busybox sh
# ferrovs test guest: configure eth0 from the kernel command line, report on
# the serial console, then serve a shell there.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci failover net_failover virtio_net; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
ip=; mtu=; mac=; cmd=
for a in $(cat /proc/cmdline); do
  case $a in
    fv.ip=*) ip=${a#fv.ip=} ;;
    fv.mtu=*) mtu=${a#fv.mtu=} ;;
    fv.mac=*) mac=${a#fv.mac=} ;;
    fv.cmd=*) cmd=$(echo "${a#fv.cmd=}" | sed 's/%20/ /g') ;;
  esac
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up
[ -n "$mac" ] && ip link set eth0 address "$mac"
[ -n "$mtu" ] && ip link set eth0 mtu "$mtu"
ip link set eth0 up
[ -n "$ip" ] && ip addr add "$ip" dev eth0
echo "FV-READY $(cat /sys/class/net/eth0/address 2>/dev/null) mtu $(cat /sys/class/net/eth0/mtu 2>/dev/null)"
[ -n "$cmd" ] && sh -c "$cmd"
# A shell on the console for the test to drive; reboot when it exits.
while true; do setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'; done
