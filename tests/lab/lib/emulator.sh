# shellcheck shell=bash
# The lab's QEMU. By default the newer QEMU of the Debian backports suite (10.x on Debian
# 12: it emulates igb, an SR-IOV NIC, which the host's QEMU 7.2 does not), fetched with
# apt-get download and unpacked with dpkg -x into the lab's cache, as lib/kernel.sh does
# with the kernel. Nothing is installed and the host's apt configuration is not changed:
# apt runs on a private sources list and state directory under the cache (-o Dir::...),
# naming the backports suite of the archive the host's own sources already use.
# LAB_QEMU=host (or `lab run --host-qemu`) selects the host's qemu-system-x86_64; without
# network and cache the lab falls back to it, saying so. Sourced by tests/lab/lab; needs
# lib/kernel.sh (lab_cache_dir).
#
# lab_emulator_prepare sets LAB_QEMU_PREFIX (the command words before QEMU's own options:
# the environment, the binary, its -L data folders) and LAB_QEMU_VERSION (e.g. 10.0.2).

: "${LAB_QEMU:=backports}"

# Packages unpacked together: the emulator, its modules and firmware (QEMU's data and the
# SeaBIOS of the same suite). Their libraries are those of the host's qemu-system-x86.
LAB_QEMU_PACKAGES=(qemu-system-x86 qemu-system-common qemu-system-data seabios)

# The host's Debian codename (bookworm on Debian 12).
lab_emulator_codename() {
  (. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

# lab_emulator_archive CODENAME [APT_ETC]: the archive URI the host's apt sources (in
# APT_ETC, /etc/apt by default) use for the codename's main suite, from one-line (.list)
# and deb822 (.sources) files alike: the backports suite lives in the same archive.
lab_emulator_archive() {
  local codename=$1 etc=${2:-/etc/apt} uri
  # Missing files are no error (cat's status would fail the pipeline under pipefail).
  uri=$(cat "$etc/sources.list" "$etc"/sources.list.d/*.list 2>/dev/null |
    awk -v s="$codename" '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == s) { print $2; exit } }')
  [ -n "$uri" ] && { echo "$uri"; return 0; }
  # deb822: a stanza's URIs and Suites fields, stanzas separated by blank lines.
  { cat "$etc"/sources.list.d/*.sources 2>/dev/null || true; } |
    awk -v s="$codename" '
      /^[[:space:]]*$/ { if (hit && uri != "") { print uri; exit } uri = ""; hit = 0; next }
      $1 == "URIs:" { uri = $2 }
      $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
      END { if (hit && uri != "") print uri }' | head -n 1 | grep .
}

# apt-get/apt-cache options for the private configuration under DIR: only the backports
# suite is known there, and its package lists and caches never touch /var/lib/apt.
lab_emulator_apt_options() {
  local dir=$1
  echo "-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=$dir/sources.list.d" \
    "-o Dir::Etc::PreferencesParts=$dir/preferences.d -o Dir::State=$dir/state" \
    "-o Dir::Cache=$dir/cache -o Dir::State::status=/var/lib/dpkg/status" \
    "-o APT::Sandbox::User=root -q"
}

# Write the private sources list and fetch its package index; prints the apt options.
lab_emulator_apt_setup() {
  local dir=$1 codename archive
  codename=$(lab_emulator_codename)
  archive=$(lab_emulator_archive "$codename") || {
    echo "lab: no apt source for $codename found; cannot fetch QEMU from backports" >&2
    return 1
  }
  mkdir -p "$dir"/{sources.list.d,preferences.d,state/lists/partial,cache/archives/partial}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive" \
    "$codename-backports main" >"$dir/sources.list"
  # The index is refreshed once a day, not on every lab run (a stamp of our own: apt gives
  # its list files the archive's modification times).
  if [ -z "$(find "$dir/updated" -mmin -1440 2>/dev/null)" ]; then
    # shellcheck disable=SC2046 # the options are words
    apt-get $(lab_emulator_apt_options "$dir") update >&2 || return 1
    touch "$dir/updated"
  fi
  lab_emulator_apt_options "$dir"
}

# The backports version of qemu-system-x86 (epoch included), empty when apt knows none.
lab_emulator_candidate() {
  # shellcheck disable=SC2086 # the options are words
  apt-cache $1 show qemu-system-x86 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'
}

# Download the packages at VERSION into a fresh tree CACHE/qemu-VERSION (no epoch).
lab_emulator_download() {
  local cache=$1 options=$2 version=$3 tmp name p
  name=qemu-${version#*:}
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  echo "lab: downloading QEMU $version (backports) into $cache" >&2
  local wanted=()
  for p in "${LAB_QEMU_PACKAGES[@]}"; do
    wanted+=("$p/$(lab_emulator_codename)-backports")
  done
  # shellcheck disable=SC2086 # the options are words
  if ! (cd "$tmp" && apt-get $options download "${wanted[@]}" >&2); then
    rm -rf "$tmp"
    return 1
  fi
  for p in "$tmp"/*.deb; do
    dpkg -x "$p" "$tmp/root" || { rm -rf "$tmp"; return 1; }
  done
  rm -rf "${cache:?}/$name"
  mv "$tmp/root" "$cache/$name"
  touch "$cache/$name/.complete"
  rm -rf "$tmp"
}

# Newest complete QEMU tree in the cache (offline, or apt failed).
lab_emulator_cached_newest() {
  local d
  for d in $(ls -d "$1"/qemu-* 2>/dev/null | sort -V -r); do
    [ -f "$d/.complete" ] && { basename "$d"; return 0; }
  done
  return 1
}

lab_emulator_prune() {
  local cache=$1 keep=$2 d
  for d in "$cache"/qemu-*; do
    [ -d "$d" ] && [ "$(basename "$d")" != "$keep" ] && rm -rf "$d"
  done
  return 0
}

# The cached tree to use (fetched first when apt knows a newer one), or failure.
lab_emulator_fetch() {
  local cache=$1 options="" version="" name
  if options=$(lab_emulator_apt_setup "$cache/apt-backports"); then
    version=$(lab_emulator_candidate "$options")
  fi
  if [ -n "$version" ]; then
    name=qemu-${version#*:}
    if [ -f "$cache/$name/.complete" ] ||
      lab_emulator_download "$cache" "$options" "$version"; then
      lab_emulator_prune "$cache" "$name"
      echo "$name"
      return 0
    fi
  fi
  echo "lab: could not fetch QEMU from backports; trying the cache" >&2
  lab_emulator_cached_newest "$cache"
}

# LAB_QEMU_PREFIX for a tree: its modules (QEMU_MODULE_DIR, else it loads the host's, of
# another build, and aborts) and its firmware and data (-L, searched in order).
lab_emulator_use_tree() {
  local root=$1
  local bin=$root/usr/bin/qemu-system-x86_64
  # A library the host lacks (a machine without the host's qemu-system-x86): unusable.
  if [ ! -x "$bin" ] || ldd "$bin" | grep -q 'not found'; then
    echo "lab: $bin cannot run here (missing libraries)" >&2
    return 1
  fi
  LAB_QEMU_PREFIX=(env "QEMU_MODULE_DIR=$root/usr/lib/x86_64-linux-gnu/qemu" "$bin"
    -L "$root/usr/share/seabios" -L "$root/usr/share/qemu")
}

lab_emulator_prepare() {
  local cache name
  LAB_QEMU_PREFIX=(qemu-system-x86_64)
  if [ "$LAB_QEMU" != host ]; then
    cache=$(lab_cache_dir)
    mkdir -p "$cache"
    # Several build directories may share one cache: one fetch at a time.
    exec 8>"$cache/.qemu-lock"
    flock 8
    name=$(lab_emulator_fetch "$cache")
    exec 8>&-
    if [ -z "$name" ] || ! lab_emulator_use_tree "$cache/$name"; then
      echo "lab: using the host's QEMU instead" >&2
      LAB_QEMU_PREFIX=(qemu-system-x86_64)
    fi
  fi
  LAB_QEMU_VERSION=$("${LAB_QEMU_PREFIX[@]}" --version </dev/null |
    sed -n 's/^QEMU emulator version \([0-9.]*\).*/\1/p')
  [ -n "$LAB_QEMU_VERSION" ] || {
    echo "lab: ${LAB_QEMU_PREFIX[*]} does not run" >&2
    return 1
  }
}

# Whether the lab's QEMU emulates a device (igb came with QEMU 8).
# QEMU exits 0 either way: only a known device prints "NAME options:".
lab_emulator_has_device() {
  "${LAB_QEMU_PREFIX[@]}" -device "$1,help" </dev/null 2>/dev/null | grep -q "^$1 options:"
}
