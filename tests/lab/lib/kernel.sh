# shellcheck shell=bash
# The lab's kernel: the stock Debian kernel that linux-image-amd64 depends on, fetched with
# apt-get download, unpacked with dpkg -x and indexed with depmod -b, cached between runs
# under $IOVD_LAB_CACHE (default tests/lab/cache/, gitignored). Sourced by tests/lab/lab.
#
# lab_kernel_prepare sets LAB_KERNEL_VERSION (e.g. 6.1.0-56-amd64), LAB_KERNEL_ROOT (the
# unpacked tree: boot/vmlinuz-*, lib/modules/*) and LAB_KERNEL_IMAGE.

lab_cache_dir() {
  echo "${IOVD_LAB_CACHE:-$LAB_DIR/cache}"
}

# The versioned package linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64.
lab_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Newest complete kernel already in the cache (used when apt cannot tell us, offline).
lab_kernel_cached_newest() {
  local cache=$1 d
  for d in $(ls -d "$cache"/linux-image-* 2>/dev/null | sort -V -r); do
    [ -f "$d/.complete" ] && { basename "$d"; return 0; }
  done
  return 1
}

lab_kernel_download() {
  local cache=$1 package=$2
  local tmp
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  echo "lab: downloading $package into $cache" >&2
  # Sandbox user root: the download directory belongs to root, not to _apt.
  if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$package" >&2); then
    rm -rf "$tmp"
    return 1
  fi
  local version=${package#linux-image-}
  dpkg -x "$tmp"/"$package"_*.deb "$tmp/root"
  depmod -b "$tmp/root" "$version"
  # Only the tree is kept; the .deb is not needed again.
  rm -rf "${cache:?}/$package"
  mv "$tmp/root" "$cache/$package"
  touch "$cache/$package/.complete"
  rm -rf "$tmp"
}

# Drop cached kernels other than the one in use, so the cache does not grow without bound.
lab_kernel_prune() {
  local cache=$1 keep=$2 d
  for d in "$cache"/linux-image-*; do
    [ -d "$d" ] && [ "$(basename "$d")" != "$keep" ] && rm -rf "$d"
  done
  return 0
}

lab_kernel_prepare() {
  local cache package
  cache=$(lab_cache_dir)
  mkdir -p "$cache"
  # Several build directories may share one cache: one fetch at a time.
  exec 8>"$cache/.lock"
  flock 8

  package=$(lab_kernel_package)
  if [ -z "$package" ]; then
    apt-get update -qq >&2 || true
    package=$(lab_kernel_package)
  fi
  if [ -n "$package" ] && [ ! -f "$cache/$package/.complete" ]; then
    # A stale package index names a version the mirror no longer has: refresh it once.
    if ! lab_kernel_download "$cache" "$package" && apt-get update -qq >&2; then
      package=$(lab_kernel_package)
      [ -f "$cache/$package/.complete" ] || lab_kernel_download "$cache" "$package" || package=""
    fi
    if [ -n "$package" ] && [ -f "$cache/$package/.complete" ]; then
      lab_kernel_prune "$cache" "$package"
    else
      echo "lab: could not download $package; trying the cache" >&2
      package=""
    fi
  fi
  if [ -z "$package" ] || [ ! -f "$cache/$package/.complete" ]; then
    package=$(lab_kernel_cached_newest "$cache") || {
      echo "lab: no kernel package known to apt and none cached in $cache" >&2
      exec 8>&-
      return 1
    }
  fi
  exec 8>&-

  LAB_KERNEL_VERSION=${package#linux-image-}
  LAB_KERNEL_ROOT=$cache/$package
  LAB_KERNEL_IMAGE=$LAB_KERNEL_ROOT/boot/vmlinuz-$LAB_KERNEL_VERSION
  [ -f "$LAB_KERNEL_IMAGE" ] || {
    echo "lab: $LAB_KERNEL_IMAGE missing from the cache" >&2
    return 1
  }
}
