#!/usr/bin/env bash
# run.sh -- `make bench`: every benchmark, each checking its own output and printing its ratio
# against the baseline measured in the same run. Figures go to bench/out/<bench>.log; the
# summary says which passed their checks. Takes a while (tens of minutes): the machine should
# be otherwise idle for the figures to mean anything (see bench/RESULTS.md).
#   bench/run.sh [BENCH_BINARY ...]      (make bench passes the compiled ones)
set -u
cd "$(dirname "$0")/.."
export TOCSIN_BIN=${TOCSIN_BIN:-$PWD/tocsin}
BUILD_DIR=${BUILD:-build}
export BENCH_BIN_DIR=$PWD/$BUILD_DIR/bench
mkdir -p bench/out
passed=0 failed=0 failures=()
run() {
  local name=$1; shift
  echo "== $name"
  if "$@" > "bench/out/$name.log" 2>&1; then
    passed=$((passed + 1)); tail -n 4 "bench/out/$name.log" | sed 's/^/   /'
  else
    failed=$((failed + 1)); failures+=("$name"); tail -n 8 "bench/out/$name.log" | sed 's/^/ ! /'
  fi
}
for b in "$@"; do
  case "$(basename "$b")" in
    bench_curl) ;;                      # the baseline inside bench_dispatch.sh, not a bench alone
    bench_launch) ;;                    # run by bench_launch.sh below
    bench_track_http) ;;                # the client of bench_track_api.sh, not a bench alone
    *) run "$(basename "$b")" "$b" ;;
  esac
done
run bench_launch bench/bench_launch.sh "$BUILD_DIR"
run bench_sim bench/bench_sim.sh
run bench_dispatch bench/bench_dispatch.sh 100000
run bench_rate bench/bench_rate.sh 500 20 10
run bench_failover_503 bench/bench_failover_e2e.sh 503
run bench_failover_latency bench/bench_failover_e2e.sh latency
run bench_drill bench/bench_drill.sh
run bench_dispatch_mem bench/bench_dispatch_mem.sh 2000000 30
[ -x bench/bench_email.sh ] && run bench_email bench/bench_email.sh
run bench_track_consume bench/bench_track_consume.sh
run bench_track_webhook bench/bench_track_webhook.sh
run bench_track_api bench/bench_track_api.sh
echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f (log: bench/out/$f.log)"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
