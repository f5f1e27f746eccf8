# shellcheck shell=bash
# Assemble the lab's initramfs, cpio newc, uncompressed (with gzip -1 the lab reached its
# scenario 4 to 5 s later: gunzip runs under TCG; measured on 2 cores). Inside: busybox,
# the kernel modules the scenarios load plus everything modules.dep says they need, iovd's
# binaries from the meson build directory with the shared libraries they link (ldd),
# pci.ids, the lab test programs, /init and one scenario. Sourced by tests/lab/lab; needs
# lib/kernel.sh's variables.

# Modules the scenarios load. Dependencies (nvme-core, vfio, kvm, ccp, irqbypass, libata,
# ...) are resolved from the kernel's own modules.dep. igb and igbvf: the SR-IOV NIC's PF
# and VF drivers (dca, i2c-algo-bit). tun and vhost_net: TAP NICs of L2 guests on vhost-net.
LAB_MODULES=(nvme vfio-pci vfio_iommu_type1 kvm_amd e1000e ahci lpc_ich i2c_i801 igb igbvf tun vhost_net)

# Host tools the scenarios run inside the lab, beside busybox.
LAB_HOST_TOOLS=(curl jq)

# iproute2's ip, beside busybox's (which has no `ip link set DEV vf N ...`), at a path of
# its own: scenarios call it by this full path (busybox's sh may prefer its own applet).
LAB_IPROUTE2_IP=/usr/local/sbin/ip

# Programs taken from the meson build directory when they exist (the lab runs whatever is
# built; a scenario that needs a missing one reports it).
LAB_BUILD_PROGRAMS=(daemon/iovd cli/iovctl vmm/iovd-vmm vmm/iovd-vmm-monitor
  tests/lab/lab-vfio-check tests/lab/lab-kvm-smoke tests/lab/lab-dma
  bench/passthrough/lab-barread bench/passthrough/lab-blkbench k8s/iovd-device-plugin
  k8s/lab-kubelet bench/vf-net/lab-vf-net-bench)

# Copy a file to the same path below root, once.
lab_copy_same_path() {
  local root=$1 file=$2
  [ -e "$root$file" ] && return 0
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
}

# Copy an executable to root/dest and every shared library it links to their own paths.
lab_copy_with_libs() {
  local root=$1 src=$2 dest=$3 lib
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
  # ldd lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (...)"
  for lib in $(ldd "$src" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    lab_copy_same_path "$root" "$lib"
  done
}

lab_initramfs_busybox() {
  local root=$1 busybox applet
  busybox=$(command -v busybox) || {
    echo "lab: busybox missing (install busybox-static)" >&2
    return 1
  }
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin}
  lab_copy_with_libs "$root" "$busybox" /bin/busybox
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
}

lab_initramfs_modules() {
  local root=$1 kroot=$LAB_KERNEL_ROOT version=$LAB_KERNEL_VERSION module file
  local mdir=lib/modules/$version
  mkdir -p "$root/$mdir"
  for module in "${LAB_MODULES[@]}"; do
    for file in $(modprobe -d "$kroot" -S "$version" --show-depends "$module" |
      awk '$1 == "insmod" { print $2 }'); do
      file=${file#"$kroot"/}
      mkdir -p "$root/$(dirname "$file")"
      cp "$kroot/$file" "$root/$file"
    done
  done
  cp "$kroot/$mdir"/modules.{order,builtin,builtin.modinfo} "$root/$mdir/"
  depmod -b "$root" "$version"
}

lab_initramfs_programs() {
  local root=$1 build=$2 tool program
  for tool in "${LAB_HOST_TOOLS[@]}"; do
    lab_copy_with_libs "$root" "$(command -v "$tool")" "/usr/bin/$tool"
  done
  lab_copy_with_libs "$root" "$(command -v ip)" "$LAB_IPROUTE2_IP"
  # nvme-cli (NVMe virtualization management for the NVMe VFs), when installed.
  if command -v nvme >/dev/null; then
    lab_copy_with_libs "$root" "$(command -v nvme)" /usr/sbin/nvme
  fi
  mkdir -p "$root/opt/iovd/bin"
  for program in "${LAB_BUILD_PROGRAMS[@]}"; do
    [ -x "$build/$program" ] &&
      lab_copy_with_libs "$root" "$build/$program" "/opt/iovd/bin/$(basename "$program")"
  done
  # Tiny guest payloads for iovd-vmm (tests/guest/), when built.
  mkdir -p "$root/opt/iovd/guest"
  for program in "$build"/tests/guest/*.bzImage; do
    [ -f "$program" ] && cp "$program" "$root/opt/iovd/guest/"
  done
  # libpci reads device and vendor names from here.
  lab_copy_same_path "$root" /usr/share/misc/pci.ids
}

# A scenario that needs more files in the lab (a kernel and initramfs for an L2 guest, say)
# names a script in a line "# lab-prepare: PATH" (PATH relative to tests/lab). It runs
# here, on the host, as: PATH LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION.
lab_initramfs_scenario_prepare() {
  local root=$1 scenario=$2 prepare
  prepare=$(sed -n 's/^# lab-prepare: *//p' "$scenario" | head -n 1)
  [ -n "$prepare" ] || return 0
  "$LAB_DIR/$prepare" "$root" "$LAB_KERNEL_IMAGE" "$LAB_KERNEL_ROOT" "$LAB_KERNEL_VERSION"
}

# lab_initramfs_build OUT BUILD_DIR SCENARIO_FILE
lab_initramfs_build() {
  local out=$1 build=$2 scenario=$3
  local root
  root=$(mktemp -d "${out%/*}/initramfs.XXXXXX")
  mkdir -p "$root"/{dev,proc,sys,run,tmp,etc,var/lib,lab,lib64}
  lab_initramfs_busybox "$root" &&
    lab_initramfs_modules "$root" &&
    lab_initramfs_programs "$root" "$build" || {
    rm -rf "$root"
    return 1
  }
  install -m 0755 "$LAB_DIR/guest/init" "$root/init"
  install -m 0644 "$LAB_DIR/guest/lab.sh" "$root/lab/lab.sh"
  install -m 0755 "$scenario" "$root/lab/scenario.sh"
  echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
  echo "root:x:0:" >"$root/etc/group"
  lab_initramfs_scenario_prepare "$root" "$scenario" || {
    rm -rf "$root"
    return 1
  }

  (cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$out"
  local status=$?
  rm -rf "$root"
  return $status
}
