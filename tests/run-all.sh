#!/usr/bin/env bash
# run-all.sh -- run the unit test binaries given as arguments, then the numbered
# integration tests tests/it/NNNN-*.sh; print one closing "N passed, N failed" line.
#   tests/run-all.sh [--unit-only|--it-only] [unit-binary ...]
# Integration tests run IT_JOBS at a time (default 2: most of a test is waiting on
# processes it started, and each test has its own directory, ports and broker; 1 when the
# machine is already busy with other work, its 1-minute load average at or above twice its
# core count: the build just before counts for about one per core). A test
# whose header carries a line "# it-serial: REASON" (fixed ports, rate or timing figures
# that a busy neighbour would skew) runs alone, after the others.
set -u
here=$(cd "$(dirname "$0")" && pwd)
mode=all
case "${1:-}" in --unit-only|--it-only) mode=${1#--}; shift ;; esac
export TOCSIN_BIN=${TOCSIN_BIN:-$here/../tocsin}
if [ -z "${IT_JOBS:-}" ]; then
  read -r load _ < /proc/loadavg
  if [ "${load%.*}" -ge $(( 2 * $(nproc) )) ]; then IT_JOBS=1; else IT_JOBS=2; fi
fi
jobs_max=$IT_JOBS
case "$jobs_max" in ''|*[!0-9]*|0) echo "run-all: IT_JOBS must be a positive whole number, not '$jobs_max'" >&2; exit 2 ;; esac
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

# it_start T: run test T in the background; its exit code and seconds land in $out/NAME.result.
it_start() {
  local t=$1 name
  name=$(basename "$t" .sh)
  rm -f "$out/$name.result"
  (
    start=$(date +%s)
    timeout 600 bash "$t" > "$out/$name.log" 2>&1
    echo "$? $(( $(date +%s) - start ))" > "$out/$name.result.tmp"
    mv "$out/$name.result.tmp" "$out/$name.result"
  ) &
  running+=("$name")
}

# it_reap: report every running test that has finished; keep the others in $running.
it_reap() {
  local still=() name rc secs
  for name in "${running[@]+"${running[@]}"}"; do
    if [ ! -e "$out/$name.result" ]; then still+=("$name"); continue; fi
    read -r rc secs < "$out/$name.result"
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1)); echo "ok   it   $name (${secs}s)"
    else
      failed=$((failed + 1)); failures+=("it $name"); echo "FAIL it   $name (${secs}s)"
      tail -n 60 "$out/$name.log" | sed 's/^/     | /'
    fi
  done
  running=("${still[@]+"${still[@]}"}")
}

# it_run_pool MAX TEST...: run the tests MAX at a time, reporting each as it finishes.
it_run_pool() {
  local max=$1 t; shift
  for t in "$@"; do
    while [ "${#running[@]}" -ge "$max" ]; do wait -n 2>/dev/null || true; it_reap; done
    it_start "$t"
  done
  while [ "${#running[@]}" -gt 0 ]; do wait -n 2>/dev/null || true; it_reap; done
}

if [ "$mode" != unit-only ]; then
  echo "integration tests: $jobs_max at a time (IT_JOBS)"
  pool=() serial=() running=()
  for t in "$here"/it/[0-9]*.sh; do
    [ -e "$t" ] || continue
    if head -n 15 "$t" | grep -q '^# it-serial:'; then serial+=("$t"); else pool+=("$t"); fi
  done
  it_run_pool "$jobs_max" "${pool[@]+"${pool[@]}"}"
  it_run_pool 1 "${serial[@]+"${serial[@]}"}"
fi

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f (log: tests/out/${f#* }.log)"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
