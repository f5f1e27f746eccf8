# SPDX-License-Identifier: MIT
# TAP lines for the package test's scripts (sourced): `ok NAME`, `not_ok NAME [DETAIL...]`
# (details as # lines), `expect NAME WANT GOT`. They count in $n and set $failed, which
# the sourcing script starts (in-root.sh continues test-package.sh's numbering).

ok() {
  n=$((n + 1))
  echo "ok $n - $1"
}

not_ok() {
  n=$((n + 1))
  failed=1
  echo "not ok $n - $1"
  shift
  [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/# /'
  return 0
}

expect() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got: $3"; fi
}
