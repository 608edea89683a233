#!/usr/bin/env bash
# bench_compose.sh -- a 1,000,000-row audience sent from the page's API (tracker /send) next to
# `tocsin launch` of the same file, in the same run, against one embedded broker (launch.max_lag 0
# and --max-lag 0: no dispatcher). Prints, per round: the CLI launch; the page's upload (streamed
# to disk, rows counted), preview (the producer's dry run), and launch (POST /api/launches -> the
# `tocsin launch` child finished); and the ratios
#   cli launch / (upload + launch)                      (the issue's figure; staff preview first)
#   (cli preview + cli launch) / (upload + preview + launch)
#   bench/bench_compose.sh [BUILD_DIR]   (needs BUILD_DIR/tocsin; default: ./tocsin)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOCSIN=${TOCSIN_BIN:-$ROOT/${1:-.}/tocsin}
N=${BENCH_ROWS:-1000000}
ROUNDS=${BENCH_ROUNDS:-5}
OUT=$ROOT/bench/out/compose
rm -rf "$OUT"; mkdir -p "$OUT/var"
export TOCSIN_BENCH_TOKEN=bench-token-0123456789
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cat > "$OUT/tocsin.json" <<J
{"var_dir":"$OUT/var","vendors":[{"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:9",
  "account":"ACbench000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN","cost":0.0079,
  "senders":{"main":{"from":"+15005550006"}}}],
 "tracker":{"listen":"127.0.0.1:$PORT","control_tokens":[{"name":"bench","token_env":"TOCSIN_BENCH_TOKEN","role":"sender"}]},
 "launch":{"max_lag":0}, "quiet_hours":{"sms":{"enabled":false}}}
J
awk -v n="$N" 'BEGIN { print "first_name,phone,city";
  split("202 212 303 415 512 617 702 808 907 971", a, " ");
  for (i = 0; i < n; i++) { r = int(i / 10);
    printf "P%d,(%s) %03d-%04d,Denver\n", i % 1000, a[i % 10 + 1], 220 + (int(r / 10000) % 70) * 10, r % 10000 } }' > "$OUT/aud.csv"
TPL='Hi {{first_name}}, the {{city}} council votes tonight. Reply STOP to opt out'
"$TOCSIN" -c "$OUT/tocsin.json" broker > "$OUT/broker.log" 2>&1 &
bpid=$!
for _ in $(seq 100); do [ -s "$OUT/var/run/broker.bootstrap" ] && break; sleep 0.1; done
"$TOCSIN" -c "$OUT/tocsin.json" track > "$OUT/track.log" 2>&1 &
tpid=$!
trap 'kill $tpid $bpid 2>/dev/null; wait $tpid $bpid 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -s "$OUT/var/run/track.addr" ] && break; sleep 0.1; done
A=http://127.0.0.1:$PORT
now() { date +%s.%N; }
api() { curl -sf -H "Authorization: Bearer $TOCSIN_BENCH_TOKEN" "$@"; }
echo "bench_compose: $N rows ($(du -m "$OUT/aud.csv" | cut -f1) MB), load $(cut -d' ' -f1-3 /proc/loadavg)"
cli_round() {
  printf '{"id":"cli-%d","audience":"aud.csv","sms":{"template":"%s"}}\n' "$r" "$TPL" > "$OUT/cli-$r.json"
  t0=$(now); "$TOCSIN" -c "$OUT/tocsin.json" preview "$OUT/cli-$r.json" --n 0 > "$OUT/cli-preview-$r.out"
  t1=$(now); "$TOCSIN" -c "$OUT/tocsin.json" launch "$OUT/cli-$r.json" --max-lag 0 --no-progress > "$OUT/cli-$r.out"
  t2=$(now)
  grep -q "read $N, queued $N" "$OUT/cli-$r.out" || { echo "FAILED: $(cat "$OUT/cli-$r.out")"; exit 1; }
}
web_round() {
  # each step's answer is checked after its time is taken (no interpreter in the timings)
  u0=$(now); api -H 'Content-Type: text/csv' --data-binary @"$OUT/aud.csv" "$A/api/audiences?name=bench" > "$OUT/up-$r.json"
  u1=$(now)
  aid=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["rows"]=='"$N"', j; print(j["id"])' "$OUT/up-$r.json")
  D='{"id":"web-'$r'","audience":"'$aid'","sms":{"template":"'"$TPL"'"}'
  p0=$(now); api -d "$D,\"n\":0}" "$A/api/preview" > "$OUT/preview-$r.json"
  p1=$(now)
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["counts"]["queued"]=='"$N"', j' "$OUT/preview-$r.json"
  u2=$(now)
  api -d "$D,\"confirm\":\"$N\"}" "$A/api/launches" > /dev/null
  # a slow, cheap poll (the launch has the CPU); the end is the tracker's own ended_ms (when it
  # reaped the child, at most 50 ms late), not when this loop saw it
  until api "$A/api/launches" | grep -q "\"id\":\"web-$r\",\"name\":\"[^\"]*\",\"audience\":\"$aid\",\"state\":\"\(done\|failed\)\""; do
    sleep 0.5; done
  u3=$(api "$A/api/launches" | python3 -c 'import json,sys; l=[x for x in json.load(sys.stdin)["launches"] if x["id"]=="web-'$r'"][0]; assert l["state"]=="done" and l["report"]["queued"]=='"$N"', l; print(l["ended_ms"] / 1000)')
  api -X DELETE "$A/api/audiences/$aid" > /dev/null   # each round's 26 MB copy, not kept (untimed)
}
# the two alternate which goes first (the broker holds more with every launch)
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then cli_round; web_round; else web_round; cli_round; fi
  python3 - "$t0" "$t1" "$t2" "$u0" "$u1" "$p0" "$p1" "$u2" "$u3" "$OUT/ratios" <<'PY'
import sys
t0, t1, t2, u0, u1, p0, p1, u2, u3 = map(float, sys.argv[1:10])
cp, cl, up, pv, la = t1 - t0, t2 - t1, u1 - u0, p1 - p0, u3 - u2
print(f"cli: preview {cp:.2f} s, launch {cl:.2f} s | page: upload {up:.2f} s, preview {pv:.2f} s, launch {la:.2f} s")
print(f"ratio cli launch / (upload + launch) = {cl / (up + la):.2f}; (cli preview + launch) / (upload + preview + launch) = {(cp + cl) / (up + pv + la):.2f}")
with open(sys.argv[10], "a") as f:
    f.write(f"{cl / (up + la):.4f} {(cp + cl) / (up + pv + la):.4f}\n")
PY
done
python3 - "$OUT/ratios" <<'PY'
import statistics, sys
r = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
print(f"median of {len(r)} rounds: cli launch / (upload + launch) = {statistics.median(x[0] for x in r):.2f}; "
      f"(cli preview + launch) / (upload + preview + launch) = {statistics.median(x[1] for x in r):.2f}; load {open('/proc/loadavg').read().split()[0]}")
PY
