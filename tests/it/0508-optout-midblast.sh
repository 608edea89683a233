#!/usr/bin/env bash
# 0508-optout-midblast: recipients reply STOP while the blast is going out. The reply goes the
# real way (vendor inbound webhook -> tracker -> tocsin.optouts -> every dispatcher), and the
# messages not yet sent to them become "suppressed": the emulator never sees them. (Sends go
# out in partition order, not file order, so some of them may have been sent before their
# STOP: each one must be either suppressed or accepted before the STOP could have arrived.)
source "$(dirname "$0")/lib.sh"
it_setup 0508-optout-midblast
cfg() {
  it_write_config "\"vendors\": [{\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
    \"senders\":{\"main\":{\"from\":\"+15005550006\"}}, \"rate_per_s\": 300}],
    \"tracker\": {\"public_url\": \"http://${TRACK:-127.0.0.1:9}\"}"
}
# The tracker's address is fixed first: the emulator signs inbound webhooks over the
# public URL, and the tracker checks them against the same one.
TRACK=127.0.0.1:$(it_free_port)
cfg
it_start_broker
it_start_sim
cfg
it_bg track track --listen "$TRACK"
it_wait_file "$VAR/run/track.addr" 20
it_bg dispatch dispatch
it_gen_audience "$OUT/a.csv" 3000 0
it_campaign "$OUT/c.json" stop1 a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
sim_total() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
at_least() { [ "$(sim_total)" -ge "$1" ]; }
it_wait_until 40 at_least 300 || it_fail "the blast did not start"
# 50 recipients reply STOP now.
tail -n 50 "$OUT/a.csv" | cut -d, -f2 > "$OUT/stoppers.txt"
while read -r phone; do
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"vendor\":\"twilio\",\"from\":\"$phone\",\"body\":\"STOP\"}" "http://$SIM/_sim/inbound" > /dev/null \
    || it_fail "emulator refused the inbound STOP from $phone"
done < "$OUT/stoppers.txt"
t_stop=$(date +%s%3N)
sent_at_stop=$(sim_total)
echo "50 recipients replied STOP after $sent_at_stop of 3000 were sent"
all_final() { [ "$(it_final_count stop1)" -ge 3000 ]; }
it_wait_until 60 all_final || it_fail "only $(it_final_count stop1) of 3000 final"
"$TOCSIN_BIN" -c "$CFG" status stop1 --json > "$OUT/st.json"; cat "$OUT/st.json"
curl -sf "http://$TRACK/api/campaigns/stop1/recipients?state=accepted,sent,delivered,suppressed&limit=10000" > "$OUT/recipients.json" \
  || it_fail "tracker recipients API"
python3 - "$OUT/recipients.json" "$OUT/stoppers.txt" "$t_stop" "$(sim_total)" <<'PY' || it_fail "an opted-out recipient was sent to after the STOP"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
stoppers = set(l.strip() for l in open(sys.argv[2]) if l.strip())
t_stop, sim_total = int(sys.argv[3]), int(sys.argv[4])
by_to = {i["to"]: i for i in items}
sup = [t for t in stoppers if by_to[t]["state"] == "suppressed"]
early = [t for t in stoppers if by_to[t]["state"] != "suppressed"]
late = [t for t in early if by_to[t]["ts_ms"] > t_stop + 2000]
others_sup = [i for i in items if i["state"] == "suppressed" and i["to"] not in stoppers]
print("stoppers: %d suppressed, %d sent before their STOP arrived, %d sent later" % (len(sup), len(early), len(late)))
assert not late, late
assert not others_sup, others_sup
assert len(sup) >= 25, "most STOPs came ~5 s before their message: only %d suppressed" % len(sup)
assert sim_total == 3000 - len(sup), (sim_total, len(sup))
PY
# The progress line comes every 5 s: the last suppressions may have come after the latest one.
counted() { grep -q "event=progress.*suppressed=[1-9]" "$OUT/dispatch.log"; }
it_wait_until 8 counted || it_fail "dispatcher did not count the suppressed"
echo "ok: STOP replies mid-blast suppressed every message not yet sent to those recipients"
