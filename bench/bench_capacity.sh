#!/usr/bin/env bash
# bench_capacity.sh -- capacity used (issue 12): three SMS vendors limited at 500, 1,000 and
# 1,500 segments/s on a priority route (tw500, vo1000, tw1500), one dispatcher, SECS seconds
# of traffic: the aggregate the emulator accepts per second against 3,000/s. Then tw1500
# answers 503: the time until the other two carry >= 98% of their 1,500/s, and their mean
# over the next FAIL_SECS seconds.
#   bench/bench_capacity.sh [SECS (30)] [FAIL_SECS (15)]
# The issue's full size: bench/bench_capacity.sh 60 15
source "$(dirname "$0")/lib.sh"
SECS=${1:-30}; FAIL_SECS=${2:-15}
N=$((3000 * SECS + 1500 * (FAIL_SECS + 10)))
bench_setup bench_capacity
export TOCSIN_TWILIO_TOKEN=bench-token TOCSIN_VONAGE_SECRET=bench-secret
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var", "quiet_hours": {"sms": {"enabled": false}},
 "vendors": [
  {"name": "tw500", "kind": "twilio", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "ACbench00000000000000000000000001", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 500, "burst": 20},
  {"name": "vo1000", "kind": "vonage", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "benchvonagekey", "secret_env": "TOCSIN_VONAGE_SECRET",
   "senders": {"main": {"from": "15005550007"}}, "rate_per_s": 1000, "burst": 20},
  {"name": "tw1500", "kind": "twilio", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "ACbench00000000000000000000000002", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550008"}}, "rate_per_s": 1500, "burst": 20}],
 "routes": {"sms": {"strategy": "priority", "vendors": ["tw500", "vo1000", "tw1500"]}},
 "tracker": {"public_url": "http://127.0.0.1:9"}}
JSON
}
cfg
bench_start_broker_sim --outbox-partitions 48
cfg
bench_sms_campaign cap "$N"
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/cap.json" > "$OUT/launch.out" 2>&1
bench_bg dispatch dispatch
sleep "$SECS"
bench_sim_fault '{"vendor":"tw1500","outage":"503"}'
tf=$(date +%s)
sleep "$((FAIL_SECS + 1))"
bench_sim_stats > "$OUT/stats.json"
python3 - "$OUT/stats.json" "$tf" "$FAIL_SECS" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["vendors"]
tf, fail_secs = int(sys.argv[2]), int(sys.argv[3])
per = {}
for v in ("tw500", "vo1000", "tw1500"):
    for s, c in st[v]["per_second"]:
        per.setdefault(s, {})[v] = c
secs = sorted(per)
agg = lambda s: sum(per.get(s, {}).values())
# phase 1: the full seconds after the first two (start-up) up to the second before the fault
p1 = [s for s in secs if secs[0] + 2 <= s < tf]
a1 = sum(agg(s) for s in p1) / max(1, len(p1))
print("phase 1: %d full seconds, aggregate %.0f/s = %.3f of 3000 (per vendor: %s)" % (
    len(p1), a1, a1 / 3000, {v: round(sum(per[s].get(v, 0) for s in p1) / max(1, len(p1))) for v in ("tw500", "vo1000", "tw1500")}))
# phase 2: from the fault on; the first second from which every full second carries >= 98% of 1500
p2 = list(range(tf + 1, tf + fail_secs))
good = lambda s: per.get(s, {}).get("tw500", 0) + per.get(s, {}).get("vo1000", 0) >= 0.98 * 1500
settle = next((s for s in p2 if all(good(t) for t in p2 if t >= s)), None)
a2 = sum(per.get(s, {}).get("tw500", 0) + per.get(s, {}).get("vo1000", 0) for s in p2) / len(p2)
print("per second after the fault (tw500+vo1000 / tw1500):", [(per.get(s, {}).get("tw500", 0) + per.get(s, {}).get("vo1000", 0), per.get(s, {}).get("tw1500", 0)) for s in range(tf - 1, tf + fail_secs)])
print("phase 2: the other two carry >= 98%% of 1500/s from %s s after the fault; mean %.0f/s = %.3f of 1500"
      % ("never" if settle is None else settle - tf, a2, a2 / 1500))
dups = sum(st[v]["duplicate_count"] for v in st)
ok = a1 >= 0.98 * 3000 and settle is not None and settle - tf <= 3 and dups == 0
print("sent twice: %d" % dups)
print("check:", "OK" if ok else "WRONG")
sys.exit(0 if ok else 1)
PY
