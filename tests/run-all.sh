#!/usr/bin/env bash
# run-all.sh -- run the unit test binaries given as arguments, then the numbered
# integration tests tests/it/NNNN-*.sh; print one closing "N passed, N failed" line.
#   tests/run-all.sh [--unit-only|--it-only] [unit-binary ...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
mode=all
case "${1:-}" in --unit-only|--it-only) mode=${1#--}; shift ;; esac
export TOCSIN_BIN=${TOCSIN_BIN:-$here/../tocsin}
out=$here/out
mkdir -p "$out"
passed=0 failed=0 failures=()

if [ "$mode" != it-only ]; then
  for t in "$@"; do
    name=$(basename "$t")
    if "$t" > "$out/$name.log" 2>&1; then
      passed=$((passed + 1)); echo "ok   unit $name"
    else
      failed=$((failed + 1)); failures+=("unit $name"); echo "FAIL unit $name"
      tail -n 40 "$out/$name.log" | sed 's/^/     | /'
    fi
  done
fi

if [ "$mode" != unit-only ]; then
  for t in "$here"/it/[0-9]*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    start=$(date +%s)
    if timeout 600 bash "$t" > "$out/$name.log" 2>&1; then
      passed=$((passed + 1)); echo "ok   it   $name ($(( $(date +%s) - start ))s)"
    else
      failed=$((failed + 1)); failures+=("it $name"); echo "FAIL it   $name ($(( $(date +%s) - start ))s)"
      tail -n 60 "$out/$name.log" | sed 's/^/     | /'
    fi
  done
fi

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f (log: tests/out/${f#* }.log)"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
