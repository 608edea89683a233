#!/usr/bin/env bash
# 0603-drill-running.sh -- `tocsin drill --use-running` on the running `tocsin up` of a config whose
# vendors are all its emulator: capacity and a 503 outage go through the running broker, tracker
# and dispatcher (the campaigns are in the running tracker, the messages at the running emulator),
# exit 0, and the emulator's fault settings are as before. Refused in one line (exit 2, nothing
# started, the emulator's settings and the tracker's campaigns unchanged): kill named with
# --use-running, the config changed since `tocsin up` started, a vendor on a real URL, a Kafka
# cluster, an emulator that does not answer for the config's vendors, no control token, no
# `tocsin up` running.
source "$(dirname "$0")/lib.sh"
it_setup 0603-drill-running
P=$(it_free_port)
SIM=127.0.0.1:$P
export TOCSIN_CONTROL_TOKEN=it-control-token-0603
# 200/s each keeps the blasts short; the tracker's public_url turns the emulator's receipts on
it_two_sms_vendors '"rate_per_s":200'
python3 - "$CFG" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["tracker"] = {"listen": "127.0.0.1:0", "public_url": "http://127.0.0.1:9", "control_token_env": "TOCSIN_CONTROL_TOKEN"}
json.dump(c, open(sys.argv[1], "w"))
PY
touch -d @$(( $(date +%s) - 120 )) "$CFG"
it_bg up up
it_wait_until 60 grep -q '^dashboard: http://127.0.0.1:[0-9]*/$' "$OUT/up.log" || it_fail "up did not start: $(cat "$OUT/up.log")"
TRACK=$(cat "$VAR/run/track.addr")
it_sim_fault '{"vendor":"vonage","latency_ms":{"median":3,"tail":9}}'
curl -sf "http://$SIM/_sim/config" > "$OUT/sim.before.json"
campaigns() { curl -sf -H "Authorization: Bearer $TOCSIN_CONTROL_TOKEN" "http://$TRACK/api/campaigns" | it_jq 'sorted(c["id"] for c in j["campaigns"])'; }

set +e
"$TOCSIN_BIN" -c "$CFG" drill --use-running --audience 2000 --scenarios capacity,503 --report "$OUT/drill.html" \
  > "$OUT/drill.out" 2> "$OUT/drill.err"
rc=$?
set -e
cat "$OUT/drill.out" "$OUT/drill.err"
[ $rc -eq 0 ] || it_fail "drill --use-running exited $rc"
grep -qF "using the running \`tocsin up\`: vendor emulator http://$SIM, tracker http://$TRACK" "$OUT/drill.out" || it_fail "not on the running processes"
python3 - "$OUT/drill.json" <<'PY' || it_fail "the JSON does not hold"
import json, sys
r = json.load(open(sys.argv[1]))
sc = {s["name"]: s for s in r["scenarios"]}
assert r["use_running"] is True and r["pass"] is True and list(sc) == ["capacity", "503"], (list(sc), r["pass"])
for s in sc.values():
    assert s["lost"] == 0 and s["twice"] == 0 and s["accepted"] == s["messages"] == s["emulator"]["unique"], s["name"]
    assert s["campaign"].startswith("drill-%s-" % s["name"]), s["campaign"]
f = sc["503"]
assert 0 <= f["detect_ms"] <= f["limits"]["detect_ms"] and 0 <= f["switch_ms"] <= f["limits"]["switch_ms"], f
print("use-running: capacity %d at %.0f/s; 503 detected %d ms, 99%% on the secondary %d ms"
      % (sc["capacity"]["messages"], sc["capacity"]["rate_per_s"], f["detect_ms"], f["switch_ms"]))
PY
# the blasts were the running tracker's campaigns, done; the emulator's settings are back
campaigns > "$OUT/campaigns.txt"
[ "$(it_jq 'len([c for c in j if c.startswith("drill-")])' < "$OUT/campaigns.txt")" = 2 ] || it_fail "campaigns: $(cat "$OUT/campaigns.txt")"
curl -sf "http://$SIM/_sim/config" > "$OUT/sim.after.json"
cmp -s <(it_jq j < "$OUT/sim.before.json") <(it_jq j < "$OUT/sim.after.json") || it_fail "emulator settings not restored: $(cat "$OUT/sim.after.json")"
[ ! -d "$VAR/drill/run" ] || [ -z "$(ls "$VAR/drill/run" | grep -v drill.pids)" ] || it_fail "the drill started processes of its own: $(ls "$VAR/drill/run")"

refused() { # EXPECTED CONFIG ARGS...
  local want=$1 cfg=$2; shift 2
  set +e; "$TOCSIN_BIN" -c "$cfg" drill --use-running "$@" > "$OUT/r.out" 2> "$OUT/r.err"; local rc=$?; set -e
  [ $rc -eq 2 ] || { cat "$OUT/r.out" "$OUT/r.err"; it_fail "$want: exited $rc, not 2"; }
  [ "$(wc -l < "$OUT/r.err")" -eq 1 ] && grep -qF -- "$want" "$OUT/r.err" || { cat "$OUT/r.err"; it_fail "not '$want'"; }
  [ ! -s "$OUT/r.out" ] || it_fail "$want: started something"
  if kill -0 "$PID_up" 2>/dev/null; then
    cmp -s <(it_jq j < "$OUT/sim.before.json") <(curl -sf "http://$SIM/_sim/config" | it_jq j) || it_fail "$want: the emulator changed"
    [ "$(campaigns)" = "$(cat "$OUT/campaigns.txt")" ] || it_fail "$want: a campaign was created"
  fi
}
variant() { # NAME PYTHON-STATEMENTS-ON-c: a config beside $CFG, as old as it
  python3 - "$CFG" "$OUT/$1.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); exec(sys.argv[3]); json.dump(c, open(sys.argv[2], "w"))
PY
  touch -r "$CFG" "$OUT/$1.json"
}
refused "--use-running cannot run kill, auth or stop" "$CFG" --scenarios 503,kill
variant real 'c["vendors"][1]["base_url"] = "https://rest.nexmo.com"'
refused "vendors[1] (vonage) base_url is https://rest.nexmo.com, not the running emulator http://$SIM; the drill never sends to a real vendor" "$OUT/real.json"
variant cluster 'c["kafka"] = {"bootstrap.servers": "kafka.example.org:9092"}'
refused "kafka names a cluster (kafka.example.org:9092)" "$OUT/cluster.json"
variant other 'c["vendors"].append(dict(c["vendors"][0], name="twilio2"))'
refused "http://$SIM does not answer as tocsin's vendor emulator for the vendors of $OUT/other.json" "$OUT/other.json"
TOCSIN_CONTROL_TOKEN= refused "the tracker's control token must be in \$TOCSIN_CONTROL_TOKEN" "$CFG"
touch "$CFG"
refused "changed after \`tocsin up\`" "$CFG"
touch -r "$OUT/real.json" "$CFG"
it_stop "$PID_up"
refused "no \`tocsin up\` is running for var_dir $VAR" "$CFG"
echo "ok: 0603-drill-running"
