#!/usr/bin/env bash
# bench_failover_e2e.sh -- failover time end to end: one dispatcher sends a steady blast
# through twilio (primary) with vonage as secondary, both on the emulator; SLA: the default
# 5 s window, p95 threshold 200 ms, min_open_s 30 (the primary stays out while measured). At T0 the primary starts failing; the dispatcher's per-request log
# says where each send went. Reports the time from T0 until >= 99% of sends go to the
# secondary (and stay there while the primary is open).
#   bench/bench_failover_e2e.sh 503       primary answers 503          (target <= 2 s)
#   bench/bench_failover_e2e.sh latency   primary p95 above threshold  (target <= 2 windows)
#   bench/bench_failover_e2e.sh hang      primary stops answering, the default SLA thresholds
#                                          (p95_ms 2000, window_s 5, timeout_ms 10000)  (target <= 5 s)
# For hang the sends to the primary never complete within the run, so the measure is the
# emulator's arrivals (GET /_sim/ticks, 50 ms): from T0 until every 250 ms bucket has >= 99%
# of its arrivals on the secondary, and not before the primary is declared open (until then
# the router still gives it messages, which wait for its window). It also prints the
# secondary's arrivals per 250 ms before and after T0: a hung vendor must not hold it back.
source "$(dirname "$0")/lib.sh"
MODE=${1:-503}
bench_setup bench_failover_e2e-$MODE
export TOCSIN_TWILIO_TOKEN=bench-token TOCSIN_VONAGE_SECRET=bench-secret
SLA='"sla": {"p95_ms": 200, "min_open_s": 30}'
[ "$MODE" = hang ] && SLA='"sla": {"min_open_s": 30}' # min_open_s: no probe within the run
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var", "quiet_hours": {"sms": {"enabled": false}},
 "vendors": [
  {"name": "twilio", "kind": "twilio", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "ACbench00000000000000000000000000", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 1000, "burst": 10, $SLA},
  {"name": "vonage", "kind": "vonage", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "benchkey", "secret_env": "TOCSIN_VONAGE_SECRET",
   "senders": {"main": {"from": "15005550007"}}, "rate_per_s": 1000, "burst": 10, $SLA}],
 "routes": {"sms": {"vendors": ["twilio", "vonage"]}},
 "dispatcher": {"retry_base_ms": 200, "retry_max_ms": 2000, "max_attempts": 10},
 "tracker": {"public_url": "http://127.0.0.1:9"}}
JSON
}
cfg
bench_start_broker_sim
cfg
for v in twilio vonage; do
  bench_sim_fault "{\"vendor\":\"$v\",\"latency_ms\":{\"median\":20,\"tail\":40}}"
done
bench_sms_campaign fo 30000
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/fo.json" > "$OUT/launch.out" 2>&1
export TOCSIN_LOG=debug
bench_bg dispatch dispatch
# steady state first: 5 s of full traffic on the primary
for _ in $(seq 100); do grep -q 'event=send_done' "$OUT/dispatch.log" && break; sleep 0.1; done
sleep 6
T0=$(date +%s%3N)
if [ "$MODE" = 503 ]; then
  bench_sim_fault '{"vendor":"twilio","outage":"503"}'
elif [ "$MODE" = hang ]; then
  bench_sim_fault '{"vendor":"twilio","outage":"hang"}'
else
  bench_sim_fault '{"vendor":"twilio","latency_ms":{"median":500,"tail":600}}'
fi
sleep 12
curl -sf "http://$SIM/_sim/ticks" > "$OUT/ticks.json"
python3 - "$OUT/dispatch.log" "$T0" "$MODE" "$OUT/ticks.json" <<'PY'
import re, sys, datetime, json
log, t0, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sends = []   # (ms, vendor, n) per request, by completion time
opened = None
for line in open(log, errors="replace"):
    m = re.match(r"ts=(\S+)Z .*event=send_done vendor=(\S+) messages=(\d+)", line)
    if m:
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        sends.append((int(t.timestamp() * 1000), m.group(2), int(m.group(3))))
    m = re.match(r"ts=(\S+)Z .*event=vendor_state vendor=twilio from=healthy to=open", line)
    if m and opened is None:
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        opened = int(t.timestamp() * 1000)
# the earliest 250 ms bucket from which every bucket to the end has >= 99% on vonage
buckets = {}
for ms, v, n in sends:
    if ms < t0:
        continue
    b = (ms - t0) // 250
    tot, sec = buckets.get(b, (0, 0))
    buckets[b] = (tot + n, sec + (n if v == "vonage" else 0))
last = max(buckets) if buckets else 0
switch = None
for b in range(last + 1):
    if all(buckets.get(k, (0, 0))[0] == 0 or buckets[k][1] >= 0.99 * buckets[k][0] for k in range(b, last + 1)):
        switch = b * 250
        break
if mode == "hang":  # arrivals at the emulator, not completions (the primary's never come)
    ticks = json.load(open(sys.argv[4]))
    arr = {}  # 250 ms bucket from T0 -> [all, secondary]
    sec_before = []
    for v, rows in ticks["vendors"].items():
        for tick, req, acc in rows:
            ms = tick * ticks["tick_ms"]
            if v == "vonage" and t0 - 5000 <= ms < t0:
                sec_before.append(req)
            if ms >= t0:
                a = arr.setdefault((ms - t0) // 250, [0, 0])
                a[0] += req
                a[1] += req if v == "vonage" else 0
    last = max(arr) if arr else 0
    switch = None
    for b in range(last + 1):
        if all(k not in arr or arr[k][1] >= 0.99 * arr[k][0] for k in range(b, last + 1)):
            switch = b * 250
            break
    if switch is not None and opened is not None:
        switch = max(switch, -(-(opened - t0) // 250) * 250)
    elif opened is None:
        switch = None
    sec_after = [arr.get(k, [0, 0])[1] for k in range(0, last)]  # the last bucket may be cut short
    print("secondary's arrivals per 250 ms: %d in the 5 s before T0, %d-%d after (the hung primary does not hold it back)"
          % (sum(sec_before) * 250 // 5000, min(sec_after or [0]), max(sec_after or [0])))
before = sum(n for ms, v, n in sends if ms < t0 and v == "twilio")
print("mode %s: primary took %d sends in the steady state before T0" % (mode, before))
print("primary declared open %s ms after T0" % (opened - t0 if opened else "never"))
print("99%% of traffic on the secondary %s ms after T0 (250 ms buckets%s)" % (switch if switch is not None else "never",
      ", arrivals at the emulator, not before the primary is open" if mode == "hang" else ""))
target = {"503": 2000, "hang": 5000}.get(mode, 10000)
ok = switch is not None and switch <= target and before > 1000
print("check: %s (target <= %d ms)" % ("OK" if ok else "WRONG", target))
sys.exit(0 if ok else 1)
PY
