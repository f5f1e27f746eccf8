#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian package, built and used as an operator would: dpkg-buildpackage -b on a clean
# copy of the source tree, lintian (no errors), then dpkg -i of both packages into a fresh
# Debian root: mmdebstrap (minbase) of the host's codename, from the archive its apt
# sources name, with only what the packages declare as dependencies plus systemd (the
# maintainer scripts' sysusers and tmpfiles steps need it, as on any systemd host);
# cached as a tarball in the lab's cache like its kernel. In that root, inside a private
# mount namespace: the postinst made group iovd and /run/iovd, the installed unit's own
# ExecStart line starts the installed iovd (as root with group iovd, as Group= does), and
# the installed iovctl, run by an unprivileged member of group iovd, answers `host` with
# the package's version and the host's device count; a non-member is refused.
# Why a root and not the lab or the host: the lab boots a busybox initramfs, not a Debian
# system dpkg installs into; CI's machine is a developer's machine too, and a package
# tested there would find libraries and groups it does not declare.
# Then the same root boots in the lab's QEMU with systemd as PID 1 (lab-systemd.sh).
# TAP. Usage: test-package.sh SOURCE_ROOT WORK_DIR BUILD_DIR
set -uo pipefail

src=$1
work=$2
build=$3
LAB_DIR=$src/tests/lab
# shellcheck source=tests/lab/lib/emulator.sh
. "$LAB_DIR/lib/emulator.sh"
# shellcheck source=tests/lab/lib/kernel.sh
. "$LAB_DIR/lib/kernel.sh"

n=0
failed=0
# shellcheck source=tests/package/tap.sh
. "$src/tests/package/tap.sh"
skip_all() {
  echo "1..0 # SKIP $1"
  exit 0
}
# The tracked and untracked-but-not-ignored files: what a clean checkout would hold.
copy_source() {
  mkdir -p "$2"
  (cd "$1" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    xargs -0 cp --parents -t "$2")
}

# The package names the built .debs depend on (versions and alternatives dropped: the
# first alternative is what apt would pick), plus systemd, comma-separated.
root_packages() {
  local deb
  for deb in "$1"/*.deb; do
    case $deb in *-dbgsym_*) continue ;; esac
    dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g'
  done | { grep -v '^iov'; echo systemd; } | sort -u | paste -sd,
}

# A cached root tarball for this dependency set, made once (one at a time: flock).
root_tarball() {
  local cache packages codename archive key tarball
  cache=$(lab_cache_dir)/debian-root
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  packages=$(root_packages "$1")
  codename=$(lab_emulator_codename)
  key=$(printf '%s %s' "$codename" "$packages" | sha256sum | cut -c1-16)
  tarball=$cache/$codename-$key.tar
  if [ ! -f "$tarball" ]; then
    archive=$(lab_emulator_archive "$codename") || return 1
    echo "# mmdebstrap $codename ($packages) from $archive" >&2
    mmdebstrap --variant=minbase --format=tar --include="$packages" "$codename" "$tarball.tmp" \
      "deb $archive $codename main" </dev/null >"$1/mmdebstrap.log" 2>&1 || return 1
    mv "$tarball.tmp" "$tarball"
    find "$cache" -name '*.tar' ! -name "$(basename "$tarball")" -delete
  fi
  echo "$tarball"
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (chroot, mounts)"
for tool in dpkg-buildpackage dh lintian mmdebstrap unshare git; do
  command -v "$tool" >/dev/null || skip_all "$tool is not installed (tools/install-deps)"
done
[ -e "$src/.git" ] || skip_all "$src is not a git checkout (the package is built from its files)"

echo "1..12"
rm -rf "$work"
mkdir -p "$work"
copy_source "$src" "$work/iovd" || { not_ok "copy the source tree"; exit 1; }
started=$SECONDS
if (cd "$work/iovd" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
  ok "dpkg-buildpackage -b -us -uc ($((SECONDS - started)) s)"
else
  not_ok "dpkg-buildpackage -b -us -uc" "$(tail -n 40 "$work/build.log")"
  exit 1
fi
if out=$(lintian --fail-on error "$work"/iovd_*.changes 2>&1); then
  ok "lintian: no errors"
else
  not_ok "lintian: no errors" "$out"
fi
printf '%s\n' "$out" | grep -E '^[WE]:' | sed 's/^/# lintian /'

tarball=$(root_tarball "$work") || {
  not_ok "a fresh Debian root (mmdebstrap)" "$(tail -n 20 "$work/mmdebstrap.log" 2>/dev/null)"
  exit 1
}
root=$work/root
mkdir -p "$root"
tar -xf "$tarball" -C "$root"
cp "$work"/iovd_*_amd64.deb "$work"/iovctl_*_amd64.deb "$work"/iovd-device-plugin_*_amd64.deb \
  "$root/tmp/"
version=$(dpkg-deb -f "$work"/iovd_*_amd64.deb Version)

# Everything below runs in a private mount namespace: its mounts vanish with it.
unshare --mount --propagation private -- bash "$src/tests/package/in-root.sh" "$root" \
  "$version" "$(find /sys/bus/pci/devices -mindepth 1 -maxdepth 1 | wc -l)" "$n"
status=$?
n=$((n + 9))

# The same root booted with systemd as PID 1 in the lab (lab-systemd.sh): one result
# here, the lab's own TAP as its diagnostics.
name="systemd lab: Type=notify, restart keeps a VM, watchdog, systemd-analyze security"
if [ "${IOVD_PACKAGE_LAB:-1}" = 0 ]; then
  echo "ok $((n + 1)) # SKIP IOVD_PACKAGE_LAB=0"
elif ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null ||
  [ ! -f "$build/tests/guest/idle.bzImage" ]; then
  echo "ok $((n + 1)) # SKIP no QEMU, cpio or guest payload (tools/install-deps, a tests build)"
elif bash "$src/tests/package/lab-systemd.sh" "$src" "$work" "$root" "$build" >"$work/lab.tap"; then
  ok "$name ($(grep -c '^ok' "$work/lab.tap") results)"
  sed 's/^/#   /' "$work/lab.tap"
else
  not_ok "$name" "$(cat "$work/lab.tap")"
fi
exit $((failed || status))
