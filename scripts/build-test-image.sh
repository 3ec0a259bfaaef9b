#!/usr/bin/env bash
# Builds the small bootable test guest of the qemu compute driver from Debian packages
# (scripts/test-env.sh installs them): <dir>/vmlinuz, the linux-image-cloud-amd64 kernel, and
# <dir>/initramfs.cpio.gz, a static busybox whose /init mounts proc, sys and dev, prints
# STRATA-GUEST-READY on the serial console (boot with console=ttyS0), then "tick N" every second.
#
# Networking: the cloud kernel has virtio-net as modules, so they are in the initramfs and /init
# loads them. /init brings up each interface an `ip=` argument of the kernel command line names,
# in dracut's form `ip=<address>::<gateway>:<netmask>:<hostname>:<interface>:none:<mtu>:<mac>`
# (the qemu driver writes one per port of the server with an IPv4 address), finding the interface
# by its MAC, and prints "STRATA-IP <dev> <mac> <address>/<prefix>". With
# `strata.ping=<address>[,<address>...]` (an image's os_command_line) it pings each address until
# it answers (at most 120 tries) and prints "STRATA-PING <address> ok" (or "... failed"); with
# `strata.tcp=<address>:<port>` it sends one line there over TCP (nc) and prints "STRATA-TCP
# <address>:<port> ok" once it went through (or "... failed" after 120 tries). It prints
# "STRATA-NET <the names in /sys/class/net>" at the start and whenever they change (a NIC
# hot-plugged or unplugged).
#
# Block volumes: virtio-blk is in the initramfs too. /init prints "STRATA-DISK <name> <sectors>"
# for each virtio disk (/sys/block/vd*) present at the start, and again whenever one appears or
# changes size (a volume attached or extended; <sectors> is /sys/block/<name>/size, 512-byte
# units), and "STRATA-DISK <name> gone" when one disappears (a volume detached); it looks four
# times a second.
#
# Guest shell (tests only): with `strata.shell=<tty>` (the test boot passes strata.shell=ttyS1; the
# qemu driver connects the guest's second serial port to <guest dir>/shell.sock) a root shell reads
# command lines from /dev/<tty> (raw, no echo) and writes their output there (nothing on the
# console: the host side, agents/compute/guest-shell.ts, probes until it answers).
#
#   scripts/build-test-image.sh [dir]    # dir: $STRATA_TEST_IMAGE_DIR or ~/.cache/strata/test-image
#
# Idempotent: does nothing when the image in <dir> was built from the same kernel, busybox and
# script (the stamp file); writes through temporary files renamed into place. Prints <dir>.
set -euo pipefail

dir="${1:-${STRATA_TEST_IMAGE_DIR:-$HOME/.cache/strata/test-image}}"
kernel=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$kernel" ] || { echo "build-test-image: no /boot/vmlinuz-*-cloud-amd64 (install linux-image-cloud-amd64)" >&2; exit 1; }
busybox=""
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && ! (ldd "$b" 2>/dev/null | grep -q '=>'); then busybox="$b"; break; fi
done
[ -n "$busybox" ] || { echo "build-test-image: no static busybox (install busybox-static)" >&2; exit 1; }

stamp="$(basename "$kernel") $(stat -c '%s %Y' "$kernel") $(stat -c '%s %Y' "$busybox") $(sha256sum "$0" | cut -c1-16)"
if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/initramfs.cpio.gz" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,etc}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
# The virtio-net and virtio-blk drivers and what they need, in load order: the cloud kernel has them as modules.
release=$(basename "$kernel" | sed 's/^vmlinuz-//')
moddir=/lib/modules/$release
mkdir -p "$root/lib/modules"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk; do
  f=$(find "$moddir/kernel" -name "$m.ko*" | head -n 1)
  [ -n "$f" ] || { echo "build-test-image: no module $m in $moddir (linux-image-cloud-amd64's modules)" >&2; exit 1; }
  case "$f" in
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
  echo "$m" >> "$root/lib/modules/order"
done
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/null >/dev/ttyS0 2>&1
echo STRATA-GUEST-READY
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
ip link set lo up

# A dotted netmask as a prefix length (a prefix length stays as it is).
prefix() {
  case "$1" in *.*) ;; *) echo "$1"; return ;; esac
  n=0
  for o in $(echo "$1" | tr . ' '); do
    while [ "$o" -gt 0 ]; do n=$((n + (o & 1))); o=$((o >> 1)); done
  done
  echo "$n"
}

# One dracut-style ip= argument: <address>::<gateway>:<netmask>:<hostname>:<interface>:none:<mtu>:<mac>
configure() {
  old=$IFS; IFS=:; set -- $1; IFS=$old
  addr=$1 gw=$3 mask=$4 dev=$6 mtu=$8
  if [ $# -gt 8 ]; then shift 8; else shift $#; fi
  mac=$(echo "$*" | tr ' ' ':' | tr A-F a-f)
  if [ -n "$mac" ]; then
    found=""
    i=0
    while [ -z "$found" ] && [ $i -lt 50 ]; do
      for d in /sys/class/net/*; do
        [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && found=${d##*/}
      done
      [ -n "$found" ] || { i=$((i + 1)); sleep 0.1; }
    done
    [ -n "$found" ] || { echo "STRATA-IP no interface with MAC $mac"; return; }
    dev=$found
  fi
  [ -n "$mtu" ] && ip link set "$dev" mtu "$mtu"
  ip link set "$dev" up
  p=$(prefix "${mask:-32}")
  ip addr add "$addr/$p" dev "$dev"
  if [ -n "$gw" ] && [ -z "$have_gw" ]; then ip route add default via "$gw" dev "$dev" 2>/dev/null && have_gw=1; fi
  echo "STRATA-IP $dev $mac $addr/$p"
}

targets=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ip=*) configure "${arg#ip=}" ;;
    strata.ping=*) targets="$targets $(echo "${arg#strata.ping=}" | tr , ' ')" ;;
    strata.tcp=*) tcp="${arg#strata.tcp=}" ;;
    strata.shell=*) shell_tty="${arg#strata.shell=}" ;;
  esac
done

# strata.shell=<tty>: a shell on that serial port for tests. The tty stays open (fd 3) so its raw
# mode holds; the shell reads a pipe, not the tty, so it is not interactive (no prompt, no line
# editing); one that exits (e.g. on a syntax error) is started again.
if [ -n "$shell_tty" ] && [ -c "/dev/$shell_tty" ]; then
  (
    exec 3<>"/dev/$shell_tty"
    stty -F "/dev/$shell_tty" raw -echo || exit 0
    cd /
    while true; do
      cat <&3 | sh >&3 2>&1
      sleep 0.2
    done
  ) &
fi

# Virtio disks as they come, go and change size: "STRATA-DISK <name> <sectors>" / "... gone".
(
  old=""
  while true; do
    new=""
    for d in /sys/block/vd*; do
      [ -e "$d/size" ] || continue
      read s < "$d/size"
      new="$new ${d##*/}:$s"
    done
    if [ "$new" != "$old" ]; then
      for e in $new; do
        case " $old " in *" $e "*) ;; *) echo "STRATA-DISK ${e%%:*} ${e#*:}" ;; esac
      done
      for e in $old; do
        case "$new " in *" ${e%%:*}:"*) ;; *) echo "STRATA-DISK ${e%%:*} gone" ;; esac
      done
      old=$new
    fi
    sleep 0.25
  done
) &
for t in $targets; do
  (
    i=0
    while [ $i -lt 120 ]; do
      if ping -c 1 -W 1 "$t" >/dev/null 2>&1; then echo "STRATA-PING $t ok"; exit 0; fi
      i=$((i + 1))
    done
    echo "STRATA-PING $t failed"
  ) &
done

# strata.tcp=<address>:<port>: once the address answers pings, send it a line over TCP.
if [ -n "$tcp" ]; then
  (
    i=0
    while [ $i -lt 120 ]; do
      if echo "STRATA-TCP-HELLO from $(ip -4 -o addr show | awk '$2 != "lo" {print $4; exit}')" | nc -w 2 "${tcp%:*}" "${tcp##*:}" 2>/dev/null; then echo "STRATA-TCP $tcp ok"; exit 0; fi
      i=$((i + 1)); sleep 1
    done
    echo "STRATA-TCP $tcp failed"
  ) &
fi

nets() { echo $(ls /sys/class/net); }
seen=$(nets)
echo "STRATA-NET $seen"
n=0
while true; do
  n=$((n + 1))
  echo "tick $n"
  now=$(nets)
  if [ "$now" != "$seen" ]; then seen=$now; echo "STRATA-NET $seen"; fi
  sleep 1
done
EOF
chmod 755 "$root/init"

# newc cpio, every file owned by root, with the busybox cpio applet (Debian's cpio may be absent).
(cd "$root" && find . -mindepth 1 | sed 's#^\./##' | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -9 > "$work/initramfs.cpio.gz"
cp "$kernel" "$work/vmlinuz"
chmod 644 "$work/vmlinuz" "$work/initramfs.cpio.gz"
mv -f "$work/vmlinuz" "$dir/vmlinuz"
mv -f "$work/initramfs.cpio.gz" "$dir/initramfs.cpio.gz"
echo "$stamp" > "$dir/stamp"
echo "$dir"
