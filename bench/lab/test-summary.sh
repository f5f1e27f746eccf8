#!/bin/sh
# test-summary.sh SUMMARY_PY TESTDATA: summary.py on saved results (synthetic
# "bench-result:" lines in the lab's format, testdata/*.results: every optional figure,
# only the needed ones, optional arms missing, each needed figure missing) for every
# benchmark; its lines, errors and exit status must be those in testdata/summary.expected.
# After a deliberate change of the summary: test-summary.sh SUMMARY_PY TESTDATA --update.
set -eu
summary=$1 data=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in "$data"/*.results; do
  for bench in boot blk net link domain; do
    echo "=== $bench $(basename "$f")"
    status=0
    python3 "$summary" "$bench" "$f" 2>&1 || status=$?
    echo "status $status"
  done
done >"$out"
if [ "${3:-}" = --update ]; then
  cp "$out" "$data/summary.expected"
  exit 0
fi
diff -u "$data/summary.expected" "$out"
