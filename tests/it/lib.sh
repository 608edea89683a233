# lib.sh -- shared helpers for the numbered integration tests (source it, do not run it).
# Every test gets its own directory tests/out/<test>/ with its own var_dir and
# config, starts what it needs on 127.0.0.1, and stops all of it on exit.
set -euo pipefail

TOCSIN_BIN=${TOCSIN_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tocsin}
IT_PIDS=()

# it_setup NAME: fresh $OUT (= tests/out/NAME) and $VAR; installs the cleanup trap.
it_setup() {
  OUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/out/$1
  rm -rf "$OUT"; mkdir -p "$OUT/var/run"
  VAR=$OUT/var
  CFG=$OUT/tocsin.json
  export TOCSIN_TWILIO_TOKEN=it-twilio-token
  trap it_cleanup EXIT
}

# it_bg NAME ARGS...: run `tocsin -c $CFG ARGS...` in the background, log in $OUT/NAME.log.
it_bg() {
  local name=$1; shift
  "$TOCSIN_BIN" -c "$CFG" "$@" > "$OUT/$name.log" 2>&1 &
  IT_PIDS+=($!)
  eval "PID_${name//-/_}=$!"
}

# it_wait_file PATH [SECONDS]: wait until PATH exists and is not empty.
it_wait_file() {
  local f=$1 t=${2:-15} i=0
  while [ ! -s "$f" ]; do
    sleep 0.1; i=$((i + 1))
    if [ $i -ge $((t * 10)) ]; then echo "timed out waiting for $f" >&2; return 1; fi
  done
}

# it_wait_until SECONDS CMD...: run CMD every 0.2 s until it succeeds.
it_wait_until() {
  local t=$1 i=0; shift
  until "$@" > /dev/null 2>&1; do
    sleep 0.2; i=$((i + 1))
    if [ $i -ge $((t * 5)) ]; then echo "timed out after ${t}s waiting for: $*" >&2; return 1; fi
  done
}

# it_write_config [JSON-FRAGMENT]: write $CFG with var_dir=$VAR plus the fragment's
# top-level keys (a JSON object text without the outer braces), e.g.
#   it_write_config '"vendors":[...], "routes":{...}'
it_write_config() {
  local extra=${1:-}
  if [ -n "$extra" ]; then extra=", $extra"; fi
  printf '{"var_dir": "%s"%s}\n' "$VAR" "$extra" > "$CFG"
}

# it_start_broker: start the embedded broker for $CFG and wait for its run file.
it_start_broker() {
  it_bg broker broker
  it_wait_file "$VAR/run/broker.bootstrap" 20
}

# it_stop PID: SIGTERM and wait up to 15 s; returns the process's exit code.
it_stop() {
  local pid=$1 i=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    if [ $i -ge 150 ]; then echo "pid $pid ignored SIGTERM for 15 s" >&2; kill -KILL "$pid"; return 1; fi
  done
  wait "$pid" 2>/dev/null
}

it_cleanup() {
  local rc=$?
  for ((k=${#IT_PIDS[@]}-1; k>=0; k--)); do
    it_stop "${IT_PIDS[$k]}" || true
  done
  exit $rc
}

# it_fail MESSAGE: print and fail the test.
it_fail() { echo "FAIL: $*" >&2; exit 1; }
