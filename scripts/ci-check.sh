#!/usr/bin/env bash
# Regression-test sample captures in CI: every capture in CAPTURE_DIR is
# compared with its baseline report BASELINE_DIR/<file>.json; the job fails
# (exit 1) when a capture shows a finding at or above the threshold that
# its baseline does not have, or (exit 2) when a capture cannot be read.
#
#   scripts/ci-check.sh CAPTURE_DIR BASELINE_DIR [--fail-on info|warning|error]
#   scripts/ci-check.sh --update CAPTURE_DIR BASELINE_DIR   # accept the current findings
#
# TIMEWAIT names the binary (default: timewait on PATH).
set -uo pipefail
timewait=${TIMEWAIT:-timewait}
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
captures=${1:?usage: ci-check.sh [--update] CAPTURE_DIR BASELINE_DIR [flags]}
baselines=${2:?usage: ci-check.sh [--update] CAPTURE_DIR BASELINE_DIR [flags]}
shift 2
mkdir -p "$baselines"
worst=0
shopt -s nullglob
for cap in "$captures"/*.pcap "$captures"/*.pcapng "$captures"/*.cap; do
  base="$baselines/$(basename "$cap").json"
  if [ "$update" = 1 ]; then
    "$timewait" analyze "$cap" --format json "$@" > "$base" || worst=2
    continue
  fi
  if [ -f "$base" ]; then
    "$timewait" analyze "$cap" --baseline "$base" "$@" > /dev/null
  else
    echo "ci-check: $cap has no baseline ($base); run with --update to accept it" >&2
    "$timewait" analyze "$cap" "$@" > /dev/null
  fi
  code=$?
  echo "ci-check: $cap: exit $code" >&2
  [ "$code" -gt "$worst" ] && worst=$code
done
exit "$worst"
