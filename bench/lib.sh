# lib.sh -- shared set-up for the shell benchmarks (source it; do not run it). Each bench
# gets bench/out/<name>/ with its own var_dir and config, starts what it needs on 127.0.0.1
# and stops all of it on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=${TOCSIN_BIN:-$PWD/tocsin}
BB=${BENCH_BIN_DIR:-$PWD/build/bench}
BENCH_PIDS=()

bench_cleanup() {
  for p in "${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# bench_setup NAME: fresh $OUT (bench/out/NAME), $CFG; cleanup on exit or when killed.
bench_setup() {
  OUT=$PWD/bench/out/$1
  rm -rf "$OUT"; mkdir -p "$OUT/var"
  CFG=$OUT/tocsin.json
  trap bench_cleanup EXIT
  trap 'exit 143' TERM INT
}

bench_wait_file() {
  for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; exit 1
}

# bench_bg NAME ARGS...: `tocsin -c $CFG ARGS...` in the background, log in $OUT/NAME.log;
# its pid in $BG_PID.
bench_bg() {
  local name=$1; shift
  ${BENCH_WRAP:-} "$B" -c "$CFG" "$@" > "$OUT/$name.log" 2>&1 &
  BG_PID=$!
  BENCH_PIDS+=($BG_PID)
}

# bench_start_broker_sim [BROKER-ARGS...]: the embedded broker and the emulator, which must
# find its vendors in $CFG already; sets $SIM (host:port). Receipts are turned off.
bench_start_broker_sim() {
  bench_bg broker broker "$@"
  bench_wait_file "$OUT/var/run/broker.bootstrap"
  bench_bg sim vendor-sim --listen 127.0.0.1:0
  bench_wait_file "$OUT/var/run/vendor-sim.addr"
  SIM=$(cat "$OUT/var/run/vendor-sim.addr")
  curl -sf -X POST -d '{"receipts":{"enabled":false}}' "http://$SIM/_sim/config" > /dev/null
}

# bench_twilio_cfg SENDERS [VENDOR-FIELDS] [ROOT-FIELDS]: $CFG with one Twilio vendor on the
# emulator ($SIM; a closed port until it runs, so call it again after bench_start_broker_sim):
# SENDERS are the members of its "senders" ('"main": {"from": "+15005550006"}'), VENDOR-FIELDS
# and ROOT-FIELDS more members of the vendor and of the document ('"rate_per_s": 100').
bench_twilio_cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var", "quiet_hours": {"sms": {"enabled": false}},
 "vendors": [{"name": "twilio", "kind": "twilio", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "ACbench00000000000000000000000000", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {$1}${2:+, $2}}],
 "tracker": {"public_url": "http://127.0.0.1:9"}${3:+, $3}}
JSON
}

bench_sim_fault() { curl -sf -X POST -d "$1" "http://$SIM/_sim/config" > /dev/null; }
bench_sim_stats() { curl -sf "http://$SIM/_sim/stats"; }

# bench_sim_accepted VENDOR: messages the emulator accepted for VENDOR.
bench_sim_accepted() {
  bench_sim_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendors"][sys.argv[1]]["accepted"])' "$1"
}

# bench_sms_campaign ID N [SENDER (main)] [PRIORITY (0)]: $OUT/<ID>.json over $OUT/<ID>.csv,
# N distinct valid US numbers (up to 2,100,000), a 1-segment template with one variable.
bench_sms_campaign() {
  python3 - "$OUT/$1.csv" "$2" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
areas = [202, 212, 303, 415, 617, 718, 312, 512, 213, 404, 305, 206, 503, 614, 713, 816, 919,
         971, 262, 414, 601]
exch = [234, 345, 456, 567, 678, 789, 432, 543, 654, 765]
assert n <= len(areas) * 100000
with open(p, "w") as f:
    f.write("first_name,phone\n")
    for i in range(n):
        f.write("Pat%d,+1%d%d%04d\n" % (i, areas[i // 100000], exch[i // 10000 % 10], i % 10000))
PY
  printf '{"id":"%s","priority":%d,"audience":{"path":"%s.csv","phone":"phone"},"sms":{"sender":"%s","template":"Hi {{first_name}}, vote no on the cuts tonight."}}\n' "$1" "${4:-0}" "$1" "${3:-main}" > "$OUT/$1.json"
}

# bench_start_track: the tracker on a free port (its sqlite store in $OUT/var/tocsin.db).
bench_start_track() {
  bench_bg track track --listen 127.0.0.1:0
  bench_wait_file "$OUT/var/run/track.addr"
}

# bench_accepted CAMPAIGN [FROM_MS TO_MS]: "N FIRST_MS LAST_MS" -- messages of CAMPAIGN the
# tracker holds as accepted (at wall ms FROM_MS <= t < TO_MS), and the first and last
# acceptance (stamped by the dispatcher when the vendor answered; state 2 = accepted,
# core/msg.h; receipts are off in the benches).
bench_accepted() {
  sqlite3 -separator ' ' "file:$OUT/var/tocsin.db?mode=ro" \
    "SELECT count(*), coalesce(min(ts_ms),0), coalesce(max(ts_ms),0) FROM msgs WHERE campaign='$1' AND state=2 AND ts_ms >= ${2:-0} AND ts_ms < ${3:-9223372036854775807}" 2>/dev/null || echo "0 0 0"
}
