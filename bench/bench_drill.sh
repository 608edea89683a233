#!/usr/bin/env bash
# bench_drill.sh -- `tocsin drill`'s capacity and failover figures beside the benches that measure
# the same thing, in one run on the same machine: bench_capacity.sh (three SMS vendors limited at
# 500, 1,000 and 1,500/s) against `tocsin drill --scenarios capacity` on that configuration, and
# bench_failover_e2e.sh 503 against `tocsin drill --scenarios 503` on the failover bench's
# configuration (1,000/s each, sla p95_ms 200, min_open_s 30, emulator at 20 ms). Both time "99% on
# the secondary" in 250 ms buckets from the fault (the bench from the dispatcher's send_done log
# lines, the drill from the requests the emulator saw arrive per 50 ms); the check wants them
# within 250 ms of each other.
#   bench/bench_drill.sh [SECS (20)]
# With "full": the whole default drill on examples/tocsin.json (var_dir under bench/out), timed,
# with each scenario's wall time and where it went; the check wants exit 0 and under 5 minutes
# (issue 20). TOCSIN_BIN_BEFORE=<older tocsin> runs that binary's drill first, the same way, and
# prints the two side by side.
#   bench/bench_drill.sh full [AUDIENCE (20000)]
source "$(dirname "$0")/lib.sh"
load() { cut -d' ' -f1 /proc/loadavg; }

# full_run NAME BIN: the whole drill with BIN into $OUT/NAME.{out,json,html}, its time and load
full_run() {
  local name=$1 bin=$2 rc t0 l0
  sed "s|\"var_dir\": \"var\"|\"var_dir\": \"$OUT/var-$name\"|" examples/tocsin.json > "$OUT/$name.cfg.json"
  l0=$(load); t0=$(date +%s%N)
  set +e
  "$bin" -c "$OUT/$name.cfg.json" drill --audience "$AUD" --report "$OUT/$name.html" > "$OUT/$name.out" 2>&1
  rc=$?
  set -e
  echo "$name rc=$rc seconds=$(( ($(date +%s%N) - t0) / 1000000 ))e-3 load=$l0->$(load)" >> "$OUT/runs.txt"
}

if [ "${1:-}" = full ]; then
  AUD=${2:-20000}
  bench_setup bench_drill_full
  : > "$OUT/runs.txt"
  [ -z "${TOCSIN_BIN_BEFORE:-}" ] || full_run before "$TOCSIN_BIN_BEFORE"
  full_run after "$B"
  python3 - "$OUT" <<'PY'
import json, re, sys
d = sys.argv[1]
runs = {}
for line in open(d + "/runs.txt"):
    m = re.match(r"(\S+) rc=(\d+) seconds=(\d+)e-3 load=(\S+)", line)
    runs[m.group(1)] = (int(m.group(2)), int(m.group(3)) / 1000, m.group(4))
docs = {n: json.load(open("%s/%s.json" % (d, n))) for n in runs}
def wall(s):  # older drills have no wall_ms: their blast's elapsed_ms
    return (s.get("wall_ms") or s["elapsed_ms"]) / 1000
names = list(runs)
print("scenario  " + "".join("%14s" % (n + " wall") for n in names) + "   phases (after): prepare first steady fault tail measure")
order = [s["name"] for s in docs[names[-1]]["scenarios"]]
for sc in order:
    row = "%-9s " % sc
    for n in names:
        s = [x for x in docs[n]["scenarios"] if x["name"] == sc]
        row += "%12.1f s" % wall(s[0]) if s else "%14s" % "-"
    s = [x for x in docs[names[-1]]["scenarios"] if x["name"] == sc][0]
    ph = s.get("phases_ms", {})
    row += "   " + " ".join("-" if ph.get(k) is None else "%.1f" % (ph[k] / 1000)
                            for k in ("prepare", "first", "steady", "fault", "tail", "measure"))
    row += "   " + ("PASS" if s["pass"] else "FAIL " + "; ".join(s["failures"]))
    print(row)
for n in names:
    rc, secs, load = runs[n]
    print("%-6s the whole drill: %d min %02d s (%.1f s), exit %d, load average %s" % (n, secs // 60, secs % 60, secs, rc, load))
rc, secs, _ = runs["after"]
ok = rc == 0 and secs < 300
print("check: %s (exit 0 and under 5 minutes)" % ("OK" if ok else "WRONG"))
sys.exit(0 if ok else 1)
PY
  exit
fi

SECS=${1:-20}
ROOT=$PWD
bench_setup bench_drill
D=$OUT

cat > "$D/cap.json" <<JSON
{"var_dir": "$D/cap",
 "vendors": [
  {"name": "tw500", "kind": "twilio", "base_url": "http://127.0.0.1:9", "account": "ACbench00000000000000000000000001",
   "secret_env": "TOCSIN_TWILIO_TOKEN", "senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 500, "burst": 20},
  {"name": "vo1000", "kind": "vonage", "base_url": "http://127.0.0.1:9", "account": "benchvonagekey",
   "secret_env": "TOCSIN_VONAGE_SECRET", "senders": {"main": {"from": "15005550007"}}, "rate_per_s": 1000, "burst": 20},
  {"name": "tw1500", "kind": "twilio", "base_url": "http://127.0.0.1:9", "account": "ACbench00000000000000000000000002",
   "secret_env": "TOCSIN_TWILIO_TOKEN", "senders": {"main": {"from": "+15005550008"}}, "rate_per_s": 1500, "burst": 20}],
 "routes": {"sms": {"strategy": "priority", "vendors": ["tw500", "vo1000", "tw1500"]}}}
JSON
SLA='"sla": {"p95_ms": 200, "min_open_s": 30}'
cat > "$D/fo.json" <<JSON
{"var_dir": "$D/fo",
 "vendors": [
  {"name": "twilio", "kind": "twilio", "base_url": "http://127.0.0.1:9", "account": "ACbench00000000000000000000000000",
   "secret_env": "TOCSIN_TWILIO_TOKEN", "senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 1000, "burst": 10, $SLA},
  {"name": "vonage", "kind": "vonage", "base_url": "http://127.0.0.1:9", "account": "benchkey",
   "secret_env": "TOCSIN_VONAGE_SECRET", "senders": {"main": {"from": "15005550007"}}, "rate_per_s": 1000, "burst": 10, $SLA}],
 "routes": {"sms": {"vendors": ["twilio", "vonage"]}},
 "dispatcher": {"retry_base_ms": 200, "retry_max_ms": 2000, "max_attempts": 10}}
JSON

l0=$(load)
bench/bench_capacity.sh "$SECS" 5 > "$D/bench_capacity.out" 2>&1 || true
l1=$(load)
"$B" -c "$D/cap.json" drill --scenarios capacity --audience $((3000 * SECS)) --latency-ms 1 \
  --report "$D/cap.report.html" > "$D/drill_cap.out" 2>&1 || true
l2=$(load)
bench/bench_failover_e2e.sh 503 > "$D/bench_failover.out" 2>&1 || true
l3=$(load)
"$B" -c "$D/fo.json" drill --scenarios 503 --audience 30000 --latency-ms 20 \
  --report "$D/fo.report.html" > "$D/drill_fo.out" 2>&1 || true
l4=$(load)
python3 - "$D" "$l0" "$l1" "$l2" "$l3" "$l4" <<'PY'
import json, re, sys
d, l = sys.argv[1], sys.argv[2:]
bc = open(d + "/bench_capacity.out").read()
m = re.search(r"phase 1: (\d+) full seconds, aggregate (\d+)/s", bc)
bench_cap = int(m.group(2)) if m else None
rc = json.load(open(d + "/cap.report.json"))
s = rc["scenarios"][0]
est = rc["capacity"]["channels"][0]["messages_per_s"]
print("capacity   bench_capacity.sh: %s/s  [load %s -> %s]" % (bench_cap, l[0], l[1]))
print("           tocsin drill:      %.0f/s sustained (lost %d, sent twice %d), estimate %.0f/s  [load %s -> %s]"
      % (s["rate_per_s"], s["lost"], s["twice"], est, l[1], l[2]))
if bench_cap:
    print("           drill / bench: %.3f; drill / estimate: %.3f" % (s["rate_per_s"] / bench_cap, s["rate_per_s"] / est))
bf = open(d + "/bench_failover.out").read()
o = re.search(r"declared open (\S+) ms", bf); w = re.search(r"secondary (\S+) ms after", bf)
rf = json.load(open(d + "/fo.report.json"))
f = rf["scenarios"][0]
print("failover   bench_failover_e2e.sh 503: open %s ms, 99%% on the secondary %s ms (250 ms buckets)  [load %s -> %s]"
      % (o and o.group(1), w and w.group(1), l[2], l[3]))
print("           tocsin drill 503:          open %s ms, 99%% on the secondary %s ms (250 ms buckets of the emulator's 50 ms ticks); lost %d, sent twice %d  [load %s -> %s]"
      % (f["detect_ms"], f["switch_ms"], f["lost"], f["twice"], l[3], l[4]))
if w and f["switch_ms"] is not None:
    print("           drill - bench: %+d ms (99%% on the secondary)" % (f["switch_ms"] - int(w.group(1))))
PY
python3 - "$D" <<'PY'
import json, re, sys
d = sys.argv[1]
m = re.search(r"aggregate (\d+)/s", open(d + "/bench_capacity.out").read())
w = re.search(r"secondary (\d+) ms after", open(d + "/bench_failover.out").read())
c = json.load(open(d + "/cap.report.json"))["scenarios"][0]
f = json.load(open(d + "/fo.report.json"))["scenarios"][0]
ok = (m and c["rate_per_s"] >= 0.9 * int(m.group(1)) and c["lost"] == 0 and c["twice"] == 0
      and f["lost"] == 0 and f["twice"] == 0 and f["detect_ms"] is not None and f["switch_ms"] is not None
      and w and abs(f["switch_ms"] - int(w.group(1))) <= 250)
print("check: %s (drill capacity >= 0.9 of the bench's, nothing lost or sent twice, 99%% on the secondary within 250 ms of the bench's)" % ("OK" if ok else "WRONG"))
sys.exit(0 if ok else 1)
PY
