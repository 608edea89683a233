#!/usr/bin/env bash
# 0305-track-replies.sh -- inbound SMS at a Vonage number: STOP gets one confirmation and HELP the
# help text, sent through the Vonage adapter to the emulator (counted at /_sim/stats) after the
# webhook is acknowledged (the emulator answers in 3 s, the webhook in well under that); a repeated
# STOP and free text get none; each STOP counts against the campaign that last messaged the address.
source "$(dirname "$0")/lib.sh"
it_setup 0305-track-replies
it_two_sms_vendors
it_start_broker
it_start_sim
it_two_sms_vendors # again, now with the emulator's address as the vendors' base_url
it_start_track
A=http://$TRACK

# Three messages already sent: campaign r1 to ...1001 and ...1002, then campaign r2 to ...1001
# (ids as the producer makes them: msg_make_id(campaign, channel, address), core/hash.c).
python3 - "$OUT" <<'PY'
import json, sys
M = (1 << 64) - 1
def fmix(k):
    k ^= k >> 33; k = (k * 0xff51afd7ed558ccd) & M; k ^= k >> 33
    k = (k * 0xc4ceb9fe1a85ec53) & M; return k ^ (k >> 33)
def h64(b, seed):
    h = 0xcbf29ce484222325 ^ fmix((seed + 0x9e3779b97f4a7c15) & M)
    for c in b: h = ((h ^ c) * 0x100000001b3) & M
    return fmix(h ^ len(b))
def parts(a, b, c, seed):
    a, b, c = a.encode(), b.encode(), c.encode()
    h = h64(a, seed) ^ ((len(a) * 0x9e3779b97f4a7c15) & M)
    h = h64(b, h) ^ ((len(b) * 0x9e3779b97f4a7c15) & M)
    return h64(c, h)
def make_id(camp, ch, addr):
    return "%016x%016x" % (parts(camp, ch, addr, 0x746f6373696e3131), parts(camp, ch, addr, 0x6d73672d69642d32))
L = [json.dumps({"v":1,"id":make_id(camp, "sms", to),"campaign":camp,"channel":"sms","to":to,"state":"accepted",
                 "vendor":"vonage","latency_ms":40,"attempt":0,"ts_ms":ts})
     for camp, to, ts in [("r1","+15550001001",1000),("r1","+15550001002",1001),("r2","+15550001001",2000)]]
open(sys.argv[1] + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
folded() { [ "$(it_status_field r1 'j["total"]')" = 2 ] && [ "$(it_status_field r2 'j["total"]')" = 1 ]; }
it_wait_until 20 folded || it_fail "accepted events not folded"

# The emulator's Vonage API now takes 3 s to answer.
it_sim_fault '{"vendor":"vonage","latency_ms":{"median":3000,"tail":3000}}'
accepted() { it_sim_stats | it_jq 'j["vendors"]["vonage"]["accepted"]'; }
inbound_n() { curl -sf "$A/api/inbound?limit=100" | it_jq 'len(j["inbound"])'; }
vg_inbound() { # NAME FROM TEXT: an inbound message as Vonage posts it (form, signed); prints seconds
  curl -s -o "$OUT/$1.out" -w '%{http_code} %{time_total}' -X POST "$A/webhooks/vonage/inbound" \
    --data "$(it_vonage_form "msisdn=$2" to=15005550007 "messageId=0B$RANDOM" type=text "text=$3")"
}
[ "$(accepted)" = 0 ] || it_fail "emulator counted messages before any reply"

# STOP: acknowledged at once; the confirmation reaches the emulator afterwards.
r=$(vg_inbound stop1 15550001001 "Stop"); set -- $r
[ "$1" = 200 ] || it_fail "STOP webhook: HTTP $1 $(cat "$OUT/stop1.out")"
python3 -c "import sys; sys.exit(0 if $2 < 1.5 else 1)" || it_fail "STOP webhook took $2 s: the reply slowed the acknowledgement"
echo "STOP acknowledged in $2 s"
is_n() { [ "$(accepted)" = "$1" ]; }
it_wait_until 20 is_n 1 || it_fail "STOP confirmation not accepted by the emulator (accepted=$(accepted))"
optout_folded() { curl -sf "$A/metrics" | grep -qx 'tocsin_optouts{channel="sms"} 1'; }
it_wait_until 20 optout_folded || it_fail "opt-out not recorded"
optouts() { curl -sf "$A/api/campaigns/$1" | it_jq 'j["optouts"]'; }
[ "$(optouts r2)" = 1 ] || it_fail "STOP not counted against r2 (the last campaign to message it): $(optouts r2)"
[ "$(optouts r1)" = 0 ] || it_fail "STOP counted against r1 too: $(optouts r1)"

# STOP again: no second confirmation. The review-list write queues behind any reply, so once
# the second STOP is listed a reply would already have been counted.
r=$(vg_inbound stop2 15550001001 "STOP"); set -- $r
[ "$1" = 200 ] || it_fail "second STOP webhook: HTTP $1"
is_inb() { [ "$(inbound_n)" = "$1" ]; }
it_wait_until 20 is_inb 2 || it_fail "second STOP not in the review list"
[ "$(accepted)" = 1 ] || it_fail "a repeated STOP got another confirmation (accepted=$(accepted))"

# Two STOPs back to back from a new number (the second arrives before the first is folded into
# the store): one confirmation.
r=$(vg_inbound stop3 15550001004 "STOP"); set -- $r; [ "$1" = 200 ] || it_fail "STOP 3: HTTP $1"
r=$(vg_inbound stop4 15550001004 "Stop"); set -- $r; [ "$1" = 200 ] || it_fail "STOP 4: HTTP $1"
it_wait_until 20 is_inb 4 || it_fail "back-to-back STOPs not in the review list"
[ "$(accepted)" = 2 ] || it_fail "back-to-back STOPs got $(( $(accepted) - 1 )) confirmations, want 1"

# HELP: the help text goes out; free text: nothing.
r=$(vg_inbound help 15550001003 "help"); set -- $r
[ "$1" = 200 ] || it_fail "HELP webhook: HTTP $1"
it_wait_until 20 is_n 3 || it_fail "HELP reply not accepted by the emulator (accepted=$(accepted))"
r=$(vg_inbound free 15550001003 "who is this?"); set -- $r
it_wait_until 20 is_inb 6 || it_fail "free text not in the review list"
[ "$(accepted)" = 3 ] || it_fail "free text got an automatic reply"

# A STOP delivered by the emulator itself (its Vonage inbound webhook shape) for the address
# only r1 messaged: confirmed, and counted against r1.
curl -sf -X POST -H 'Content-Type: application/json' "http://$SIM/_sim/inbound" \
  -d '{"vendor":"vonage","from":"+15550001002","body":"STOP","url":"'"$A"'/webhooks/vonage/inbound"}' > /dev/null \
  || it_fail "emulator refused the inbound request"
it_wait_until 20 is_n 4 || it_fail "confirmation of the emulator's STOP not accepted (accepted=$(accepted))"
r1_opt() { [ "$(optouts r1)" = 1 ]; }
it_wait_until 20 r1_opt || it_fail "STOP from +15550001002 not counted against r1: $(optouts r1)"
[ "$(optouts r2)" = 1 ] || it_fail "r2 opt-outs changed: $(optouts r2)"

it_wait_until 20 is_inb 7 || it_fail "the emulator's STOP is not in the review list"
curl -sf "$A/api/inbound?limit=100" | it_jq '[(x["kind"], x["from"]) for x in j["inbound"]]' > "$OUT/inbound.json"
python3 - "$OUT/inbound.json" <<'PY' || it_fail "review list: $(cat "$OUT/inbound.json")"
import json, sys
got = sorted(map(tuple, json.load(open(sys.argv[1]))))
want = sorted([("stop", "+15550001001"), ("stop", "+15550001001"), ("stop", "+15550001004"),
               ("stop", "+15550001004"), ("help", "+15550001003"), ("other", "+15550001003"),
               ("stop", "+15550001002")])
assert got == want, got
PY
curl -sf "$A/metrics" > "$OUT/metrics.txt"
grep -qx 'tocsin_replies_total{result="sent"} 4' "$OUT/metrics.txt" || it_fail "metrics: $(grep replies "$OUT/metrics.txt")"
grep -qx 'tocsin_replies_total{result="failed"} 0' "$OUT/metrics.txt" || it_fail "metrics: $(grep replies "$OUT/metrics.txt")"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
[ "$(grep -c 'event=reply_sent vendor=vonage' "$OUT/track.log")" = 4 ] || it_fail "track.log: $(grep reply "$OUT/track.log")"
echo "ok: 0305-track-replies"
