#!/usr/bin/env bash
# bench_sim.sh -- vendor-sim throughput: Twilio-shaped requests/s on one core with keep-alive,
# measured with wrk side by side against nginx serving a canned 201 (the ceiling), same run.
#   bench/bench_sim.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (TOCSIN_BIN picks the binary; default ./tocsin)
# Rounds alternate nginx and the emulator so both see the same background load;
# the best and the median round of each are reported.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${TOCSIN_BIN:-$root/tocsin}
DUR=${1:-10}
CONN=${2:-64}
ROUNDS=${3:-3}
OUT=$here/out/bench_sim
rm -rf "$OUT"; mkdir -p "$OUT/var/run" "$OUT/nginx"
pids=()
cleanup() { for p in "${pids[@]+"${pids[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench_sim: wrk is missing (Debian package wrk; make bench installs it)" >&2; exit 1; }
if ! command -v nginx >/dev/null; then
  echo "bench_sim: installing nginx-light for the baseline" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 || \
    { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ncpu=$(nproc)
SRV_CPU=${SRV_CPU:-0}; CLI_CPU=${CLI_CPU:-$(( ncpu > 1 ? 1 : 0 ))}   # override to dodge a busy core

# --- the emulator: one HTTP thread pinned to one core ---
export TOCSIN_BENCH_TOKEN=bench-token
cat > "$OUT/tocsin.json" <<JSON
{"var_dir": "$OUT/var",
 "vendors": [{"name": "twilio-bench", "kind": "twilio", "base_url": "http://127.0.0.1:1",
   "account": "ACbench0000000000000000000000000000", "secret_env": "TOCSIN_BENCH_TOKEN",
   "senders": {"main": "+15005550006"}}]}
JSON
TOCSIN_LOG=warn taskset -c $SRV_CPU "$BIN" -c "$OUT/tocsin.json" vendor-sim --listen 127.0.0.1:0 --threads 1 \
  > "$OUT/sim.log" 2>&1 &
SIM_PID=$!; pids+=($!)
for _ in $(seq 100); do [ -s "$OUT/var/run/vendor-sim.addr" ] && break; sleep 0.1; done
SIM=$(cat "$OUT/var/run/vendor-sim.addr")

# correctness first: the exact answer shape, and the stats endpoint counting it
one=$(curl -s -u ACbench0000000000000000000000000000:bench-token \
  --data-urlencode To=+15551234567 --data-urlencode From=+15005550006 --data-urlencode "Body=hi" \
  -w '\n%{http_code}' "http://$SIM/2010-04-01/Accounts/ACbench0000000000000000000000000000/Messages.json")
code=$(echo "$one" | tail -1)
[ "$code" = 201 ] || { echo "bench_sim: FAIL emulator answered $code: $one" >&2; exit 1; }
echo "$one" | head -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["sid"].startswith("SM") and len(d["sid"])==34 and d["status"]=="queued" and d["to"]=="+15551234567", d' \
  || { echo "bench_sim: FAIL unexpected 201 body" >&2; exit 1; }
curl -s -X POST "http://$SIM/_sim/reset" > /dev/null

# --- nginx: one worker pinned to the same core, a canned 201 of the same size ---
body=$(echo "$one" | head -1)
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
esc=${body//\\/\\\\}; esc=${esc//\'/\\\'}
cat > "$OUT/nginx/nginx.conf" <<NGX
worker_processes 1;
worker_cpu_affinity $(printf '%0*d' $((SRV_CPU + 1)) 1 | rev | rev);
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx/body; proxy_temp_path $OUT/nginx/proxy;
  fastcgi_temp_path $OUT/nginx/fcgi; uwsgi_temp_path $OUT/nginx/uwsgi; scgi_temp_path $OUT/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NPORT;
    location / { default_type application/json; return 201 '$esc'; }
  }
}
NGX
taskset -c $SRV_CPU "$NGINX" -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" > "$OUT/nginx/stdout.log" 2>&1 &
NGINX_PID=$!; pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/" && break; sleep 0.1; done
ncode=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://127.0.0.1:$NPORT/x")
[ "$ncode" = 201 ] || { echo "bench_sim: FAIL nginx baseline answered $ncode" >&2; exit 1; }

# CPU time (ticks) used so far by a process and its children threads/workers
ticks() { local t=0 p; for p in "$@" $(pgrep -P "$1" 2>/dev/null || true); do
  [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
HZ=$(getconf CLK_TCK)
run_wrk() { # name url pid
  local t0 t1
  t0=$(ticks "$3")
  taskset -c $CLI_CPU timeout $((DUR + 30)) wrk -t1 -c"$CONN" -d"${DUR}s" --latency -s "$here/bench_sim_twilio.lua" "$2" \
    > "$OUT/wrk-$1.txt" 2>&1
  t1=$(ticks "$3")
  echo "$(grep '^requests=' "$OUT/wrk-$1.txt") cpu_ms=$(( (t1 - t0) * 1000 / HZ ))"
}
echo "bench_sim: $ROUNDS rounds x $DUR s per server, $CONN keep-alive connections, wrk on cpu $CLI_CPU, server on cpu $SRV_CPU, load average $(cut -d' ' -f1-3 /proc/loadavg)"
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
: > "$OUT/rounds.txt"
total_sim=0
for r in $(seq "$ROUNDS"); do
  nline=$(run_wrk nginx "http://127.0.0.1:$NPORT" "$NGINX_PID")
  sline=$(run_wrk sim "http://$SIM" "$SIM_PID")
  serr=$(( $(get "$sline" errors_status) + $(get "$sline" errors_connect) + $(get "$sline" errors_read) ))
  [ "$serr" -eq 0 ] || { echo "bench_sim: FAIL round $r: the emulator answered $serr requests with errors" >&2; exit 1; }
  # a timeout (> 2 s) is a stall, not a wrong answer: on a shared machine it is reported, not fatal
  tmo=$(get "$sline" errors_timeout); [ "$tmo" -eq 0 ] || echo "bench_sim: round $r: $tmo requests waited > 2 s (background load?)"
  total_sim=$((total_sim + $(get "$sline" requests)))
  echo "nginx $nline" >> "$OUT/rounds.txt"; echo "sim $sline" >> "$OUT/rounds.txt"
done
accepted=$(curl -s "http://$SIM/_sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendors"]["twilio-bench"]["accepted"])')
# every request wrk counted must have been accepted by the emulator (wrk may cut a few in flight per round)
if [ "$accepted" -lt "$total_sim" ] || [ "$accepted" -gt $((total_sim + CONN * ROUNDS)) ]; then
  echo "bench_sim: FAIL wrk saw $total_sim requests, emulator accepted $accepted" >&2; exit 1
fi
python3 - "$OUT/rounds.txt" "$DUR" "$accepted" <<'PY'
import sys, statistics
d = float(sys.argv[2]); rows = {"nginx": [], "sim": []}
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    kv = dict(w.split("=") for w in rest.split())
    cpu = max(int(kv["cpu_ms"]), 1) / 1000.0
    rows[name].append((int(kv["requests"]) / d, int(kv["p50_us"]), int(kv["p99_us"]), int(kv["requests"]) / cpu, cpu / d))
for name, label in (("nginx", "nginx canned 201 "), ("sim", "vendor-sim twilio")):
    r = rows[name]; best = max(r)
    print(f"{label}: best {best[0]:8.0f} req/s (p50 {best[1]} us, p99 {best[2]} us), median {statistics.median(x[0] for x in r):8.0f} req/s, rounds " + " ".join(f"{x[0]:.0f}" for x in r))
    print(f"{'':17}  per CPU-second of the server: median {statistics.median(x[3] for x in r):8.0f} req/CPU-s (server got {statistics.median(x[4] for x in r):.0%} of its core)")
bn, bs = max(rows["nginx"])[0], max(rows["sim"])[0]
mn, ms = statistics.median(x[0] for x in rows["nginx"]), statistics.median(x[0] for x in rows["sim"])
print(f"every emulator request validated, authenticated and counted: accepted={sys.argv[3]}")
cn, cs = statistics.median(x[3] for x in rows["nginx"]), statistics.median(x[3] for x in rows["sim"])
print(f"ratio vendor-sim / nginx: wall best {bs/bn:.2f}, wall median {ms/mn:.2f}, per CPU-second {cs/cn:.2f}")
print(f"target >= 30000 req/s on one core: wall best round {'met' if bs >= 30000 else 'NOT met'}; one full core (per CPU-second) {'met' if cs >= 30000 else 'NOT met'}")
PY
