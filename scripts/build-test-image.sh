#!/usr/bin/env bash
# Builds the small bootable test guest of the qemu compute driver from Debian packages
# (scripts/test-env.sh installs them): <dir>/vmlinuz, the linux-image-cloud-amd64 kernel, and
# <dir>/initramfs.cpio.gz, a static busybox whose /init mounts proc, sys and dev, prints
# STRATA-GUEST-READY on the serial console (boot with console=ttyS0), then "tick N" every second.
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
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/null >/dev/ttyS0 2>&1
echo STRATA-GUEST-READY
n=0
while true; do
  n=$((n + 1))
  echo "tick $n"
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
