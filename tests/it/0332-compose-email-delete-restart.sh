#!/usr/bin/env bash
# 0332-compose-email-delete-restart.sh -- three things of the send page's API, with the emulator:
# 1. a launch running when the tracker restarts is watched again: the launch is held by
#    launch.max_lag with no dispatcher, the tracker restarts, the launch is still "running"
#    (reattached, same pid), an audience it uses cannot be deleted (409); a dispatcher starts
#    and the restarted tracker shows the launch done with its report (40 queued) and the
#    campaign's 40 messages. A second launch stopped (SIGTERM) while no tracker runs is shown
#    failed at the next start, with its last line and the way to resume it. A second launch stopped (SIGTERM) while no tracker runs is shown
#    failed at the next start, with its last line and the way to resume it.
# 2. a test send to a typed email address goes through the email route's first vendor
#    (SendGrid at the emulator) as exactly one email, marked TEST in its subject: the
#    emulator's digest of what arrived equals the digest of the subject, text and HTML the
#    API says it sent; the campaigns' counts do not change. Each refusal (no address, one too
#    long, not an address, no email version, an unknown field, a body without the
#    unsubscribe link) is one line and sends nothing.
# 3. audiences are deleted by their uploader or an approver (files gone, 404 after, on the
#    timeline); a viewer, another sender, a bad id, and a launch in progress are refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/web-lib.sh"
it_setup 0332-compose-email-delete-restart
export TOCSIN_TOKEN_SAM=it-sam-token TOCSIN_TOKEN_SUE=it-sue-token TOCSIN_TOKEN_VI=it-vi-token \
  TOCSIN_TOKEN_AL=it-al-token TOCSIN_SENDGRID_KEY=it-sendgrid-key \
  TOCSIN_UNSUB_KEY=it-unsubscribe-key-0123456789
TRACK=127.0.0.1:$(it_free_port)   # known before it starts: receipts are signed over public_url
config() {
  it_write_config '"vendors": [{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://'"${SIM:-127.0.0.1:9}"'",
    "account":"ACit00000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN","cost":0.01,
    "senders":{"main":{"from":"+15005550006"}}},
   {"name":"sendgrid","kind":"sendgrid","channel":"email","base_url":"http://'"${SIM:-127.0.0.1:9}"'",
    "secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}}}],
  "routes": {"sms": {"vendors": ["twilio"]}, "email": {"vendors": ["sendgrid"]}},
  "tracker": {"public_url": "http://'"$TRACK"'", "control_tokens": [
     {"name":"sam","token_env":"TOCSIN_TOKEN_SAM","role":"sender"},
     {"name":"sue","token_env":"TOCSIN_TOKEN_SUE","role":"sender"},
     {"name":"al","token_env":"TOCSIN_TOKEN_AL","role":"approver"},
     {"name":"vi","token_env":"TOCSIN_TOKEN_VI","role":"viewer"}]},
  "launch": {"max_lag": 5}'
}
config
it_start_broker
it_start_sim
config
it_bg track track --listen "$TRACK"
it_wait_until 20 curl -sf "http://$TRACK/healthz"
A=http://$TRACK
python3 - "$OUT/aud.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("first_name,phone,email,city\n")
    for i in range(40):
        f.write("Pat%d,+1202555%04d,pat%d@example.org,Springfield\n" % (i, 1000 + i, i))
PY
upload() { # upload TOKEN NAME: the new audience's id
  got=$(code POST "/api/audiences?name=$2" "$1" --data-binary @"$OUT/aud.csv"); want 201 '"rows":40' "upload $2" >&2
  it_jq 'j["id"]' "$OUT/body"
}
AID=$(upload "$TOCSIN_TOKEN_SAM" list-a)

# ---- 1. a launch running across a tracker restart ----
D='"audience":"'$AID'","phone_column":"phone","sms":{"template":"Hi {{first_name}}, vote tonight"}'
got=$(code POST /api/launches "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"rs-1","confirm":"40"}'); want 201 '"state":"running"' "launch (held by max_lag 5, no dispatcher)"
it_wait_file "$VAR/compose/rs-1/launch.json" 10
LPID=$(it_jq 'j["pid"]' "$VAR/compose/rs-1/launch.json")
IT_PIDS=("$LPID" "${IT_PIDS[@]}")   # stopped last if the test fails
kill -0 "$LPID" || it_fail "the launch (pid $LPID) is not running: $(cat "$VAR/compose/rs-1/launch.log")"
held() { curl -sf "$A/api/campaigns/rs-1" | grep -q '"state":"launching"'; }
it_wait_until 30 held || it_fail "the tracker does not see the launch: $(cat "$VAR/compose/rs-1/launch.log")"
got=$(code DELETE "/api/audiences/$AID" "$TOCSIN_TOKEN_SAM"); want 409 'the launch of \\"rs-1\\" uses this audience' "delete an audience a launch uses"
[ -f "$VAR/audiences/$AID.csv" ] || it_fail "the refused delete removed the audience"
it_stop "$PID_track"
kill -0 "$LPID" || it_fail "the launch stopped with the tracker"
it_bg track track --listen "$TRACK"
it_wait_until 20 curl -sf "$A/healthz"
got=$(code GET /api/launches "$TOCSIN_TOKEN_VI"); want 200 '"id":"rs-1".*"state":"running"' "still running after the restart"
[ "$(it_jq 'j["launches"][0]["reattached"]' "$OUT/body")" = True ] || it_fail "not marked reattached: $(cat "$OUT/body")"
grep -q "event=web_launch_reattached campaign=rs-1 pid=$LPID" "$OUT/track.log" || it_fail "no reattach logged"
got=$(code DELETE "/api/audiences/$AID" "$TOCSIN_TOKEN_AL"); want 409 'uses this audience' "delete refused after the restart too"
it_bg dispatch dispatch --channel sms
done_launch() { code GET /api/launches "$TOCSIN_TOKEN_VI" > /dev/null; grep -q '"id":"rs-1"[^}]*"state":"done"' "$OUT/body"; }
it_wait_until 90 done_launch || it_fail "the restarted tracker did not see the launch end: $(cat "$OUT/body")"
[ "$(it_jq 'j["launches"][0]["report"]["queued"]' "$OUT/body")" = 40 ] || it_fail "report: $(cat "$OUT/body")"
[ "$(it_jq 'j["launches"][0].get("error", "")' "$OUT/body")" = "" ] || it_fail "error shown: $(cat "$OUT/body")"
# (its parent, the first tracker, is gone: a zombie nobody reaps has no command line)
grep -q launch "/proc/$LPID/cmdline" 2>/dev/null && it_fail "the launch is shown done while its process runs"
camp_done() { curl -sf "$A/api/campaigns/rs-1" | grep -q '"queued":40'; }
it_wait_until 30 camp_done || it_fail "the tracker does not show the campaign's 40: $(curl -s "$A/api/campaigns/rs-1")"
curl -sf "$A/api/timeline?limit=50" | grep -q 'watched again' || it_fail "the reattach is not on the timeline"
echo "ok: launch rs-1 watched across the restart to done (pid $LPID, 40 queued)"
# a launch that ends while no tracker runs (stopped: SIGTERM) is shown failed, with the way on
it_stop "$PID_dispatch"
got=$(code POST /api/launches "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"rs-3","confirm":"40"}'); want 201 '"state":"running"' "a second launch, held"
it_wait_file "$VAR/compose/rs-3/launch.json" 10
L3=$(it_jq 'j["pid"]' "$VAR/compose/rs-3/launch.json")
IT_PIDS=("$L3" "${IT_PIDS[@]}")
held3() { curl -sf "$A/api/campaigns/rs-3" | grep -q '"state":"launching"'; }
it_wait_until 30 held3 || it_fail "the tracker does not see rs-3: $(cat "$VAR/compose/rs-3/launch.log")"
it_stop "$PID_track"
kill -TERM "$L3"
gone3() { ! grep -q launch "/proc/$L3/cmdline" 2> /dev/null; }
it_wait_until 20 gone3 || it_fail "rs-3 ignored SIGTERM"
it_bg track track --listen "$TRACK"
it_wait_until 20 curl -sf "$A/healthz"
got=$(code GET /api/launches "$TOCSIN_TOKEN_VI"); want 200 '"id":"rs-3"[^}]*"state":"failed"' "ended while no tracker ran: failed"
python3 - "$OUT/body" <<'PY' || it_fail "rs-3 as shown: $(cat "$OUT/body")"
import json, sys
l = [x for x in json.load(open(sys.argv[1]))["launches"] if x["id"] == "rs-3"][0]
print("rs-3:", l["error"], "exit", l["exit"])
assert l["error"].startswith("the tracker was stopped while it ran; ") and l["error"].endswith("run the same tocsin launch again to resume it")
assert "; tocsin launch: stopped by signal 15 after " in l["error"]
assert l["exit"] == -1 and "reattached" not in l and l["report"]["finished"] is False
PY

# ---- 2. a test send to an email address ----
it_sim_fault '{"vendor":"sendgrid","email_digests":true}'
emails() { curl -sf "http://$SIM/_sim/email" | it_jq 'j["vendors"]["sendgrid"]["accepted"]'; }
counts() { curl -sf "$A/api/campaigns" | it_jq '[(c["id"], c["total"], c["queued"], c["states"]) for c in j["campaigns"]]'; }
sleep 2   # the campaign's receipts settle first
BEFORE=$(counts); E0=$(emails)
E='"email":{"subject":"Hi {{first_name}}","text":"Vote tonight, {{first_name}}.\nUnsubscribe: {{unsubscribe_url}}","html":"<p>Vote, {{first_name}}</p><a href=\"{{unsubscribe_url}}\">unsubscribe</a>"}'
B='"audience":"'$AID'","row":2,'"$E"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$B"'}'); want 400 'the phone number or email address to send' "test send with no address"
LONG=$(python3 -c 'print("a" * 330 + "@example.org")')
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$B"',"to":"'"$LONG"'"}'); want 400 'at most 320 characters' "an address too long"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$B"',"to":"me@nowhere"}'); want 400 'is not an email address' "not an email address"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$B"',"to":"me@x.org\r\nBcc: y@z.org"}'); want 400 'is not an email address' "a header in the address"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{"audience":"'$AID'","sms":{"template":"x"},"to":"me@example.org"}'); want 400 'needs the email version' "no email version"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{"audience":"'$AID'","email":{"subject":"Hi {{frist}}","text":"{{unsubscribe_url}}"},"to":"me@example.org"}'); want 400 'cannot render the email: subject.*unknown field' "an unknown field"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{"audience":"'$AID'","email":{"subject":"Hi","text":"no link"},"to":"me@example.org"}'); want 400 'cannot render the email: .*unsubscribe_url' "no unsubscribe link"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_VI" -d '{'"$B"',"to":"me@example.org"}'); want 403 'needs the sender role' "a viewer test-sends"
[ "$(emails)" = "$E0" ] || it_fail "a refused test send sent an email"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$B"',"to":" Tester@Example.ORG "}'); want 200 '"channel":"email".*"outcome":"accepted"' "test send to an email address"
cp "$OUT/body" "$OUT/test-email.json"
[ "$(it_jq 'j["to"]' "$OUT/test-email.json")" = Tester@example.org ] || it_fail "address not normalized"
[ "$(it_jq 'j["subject"]' "$OUT/test-email.json")" = "TEST: Hi Pat2" ] || it_fail "subject: $(cat "$OUT/test-email.json")"
it_wait_until 10 test "$(emails)" = $((E0 + 1)) || it_fail "the emulator accepted $(emails) emails, want $((E0 + 1))"
curl -sf "http://$SIM/_sim/email/digests" > "$OUT/digests.json"
python3 - "$OUT/test-email.json" "$OUT/digests.json" <<'PY' || it_fail "what arrived is not what the API sent (see above)"
import hashlib, json, struct, sys
t, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
h = hashlib.sha256()
for part in (t["subject"], t["text"], t["html"]):
    if part is None:
        h.update(b"\0")
    else:
        b = part.encode()
        h.update(b"\1" + struct.pack(">Q", len(b)) + b)
got = d["vendors"]["sendgrid"]["recipients"]
print("emulator recipients:", list(got), "want digest", h.hexdigest())
assert list(got) == ["Tester@example.org"], got
assert got["Tester@example.org"] == h.hexdigest()
assert "Vote tonight, Pat2." in t["text"] and "/u/" in t["text"]
PY
sleep 2
[ "$(counts)" = "$BEFORE" ] || it_fail "the campaigns' counts changed: $BEFORE -> $(counts)"
curl -sf "$A/api/timeline?limit=50" | grep -q 'test send to T\*\*\*\*@example.org (email) through sendgrid: accepted (by sam)' ||
  it_fail "the test email is not on the timeline (masked)"
echo "ok: one test email arrived as sent; campaigns unchanged: $BEFORE"

# ---- 3. deleting audiences ----
BID=$(upload "$TOCSIN_TOKEN_SAM" list-b)
CID=$(upload "$TOCSIN_TOKEN_SUE" list-c)
got=$(code DELETE "/api/audiences/$BID" "$TOCSIN_TOKEN_VI");  want 403 'needs the sender role; vi is a viewer' "a viewer deletes"
got=$(code DELETE "/api/audiences/$BID" "$TOCSIN_TOKEN_SUE"); want 403 'only sam \(who uploaded it\) or an approver' "another sender deletes"
got=$(code DELETE "/api/audiences/a0000000000000000" "$TOCSIN_TOKEN_SAM"); want 404 'no such audience' "an unknown audience"
got=$(code DELETE "/api/audiences/..%2Faudiences%2F$BID" "$TOCSIN_TOKEN_SAM"); want 404 'no such audience' "an id shaped as a path"
got=$(code DELETE "/api/launches" "$TOCSIN_TOKEN_SAM"); want 405 'method not allowed' "DELETE elsewhere"
got=$(code PUT "/api/audiences/$BID" "$TOCSIN_TOKEN_SAM"); want 405 'method not allowed' "PUT an audience"
[ -f "$VAR/audiences/$BID.csv" ] && [ -f "$VAR/audiences/$BID.json" ] || it_fail "a refused delete removed files"
got=$(code DELETE "/api/audiences/$BID" "$TOCSIN_TOKEN_SAM"); want 200 '"deleted":true' "the uploader deletes"
got=$(code DELETE "/api/audiences/$CID" "$TOCSIN_TOKEN_AL");  want 200 '"deleted":true' "an approver deletes another's"
got=$(code DELETE "/api/audiences/$AID" "$TOCSIN_TOKEN_SAM"); want 200 '"deleted":true' "an audience whose launch is done"
for id in "$AID" "$BID" "$CID"; do
  [ -e "$VAR/audiences/$id.csv" ] || [ -e "$VAR/audiences/$id.json" ] && it_fail "files of $id left"
  got=$(code GET "/api/audiences/$id" "$TOCSIN_TOKEN_VI"); want 404 'no such audience' "deleted $id is gone"
done
got=$(code GET /api/audiences "$TOCSIN_TOKEN_VI"); want 200 '^\{"audiences":\[\]\}$' "none listed"
got=$(code DELETE "/api/audiences/$BID" "$TOCSIN_TOKEN_SAM"); want 404 'no such audience' "deleted twice"
got=$(code POST /api/launches "$TOCSIN_TOKEN_SAM" -d '{"audience":"'$BID'","id":"rs-2","sms":{"template":"x"},"confirm":"40"}'); want 400 'no such audience' "launch from a deleted audience"
curl -sf "$A/api/timeline?limit=100" | grep -q 'audience \\"list-c\\" deleted (by al)' || it_fail "the delete is not on the timeline"
echo "ok: 0332-compose-email-delete-restart"
