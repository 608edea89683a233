#!/usr/bin/env bash
# 0331-compose-api.sh -- the send page's API refusals, each changing nothing: no token or a
# wrong one (401), a role that may not (403, also for the controls), a method not allowed
# (405), an upload over tracker.upload_max_mb (413, no file kept), an empty file, a bad body,
# a campaign field staff may not set, an unknown audience id shaped as a path, an upload name
# that is a path (stored under its generated id only), a test email with no email vendor (409),
# a wrong confirmation; then with
# launch.approvals 1 a sender's launch runs `tocsin launch` at once: its report's counts are
# those of the preview and the campaign reaches the tracker.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/web-lib.sh"
it_setup 0331-compose-api
export TOCSIN_TOKEN_SAM=it-sam-token TOCSIN_TOKEN_VI=it-vi-token
it_write_config '"vendors": [{"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:9",
    "account":"ACit00000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN","cost":0.01,
    "senders":{"main":{"from":"+15005550006"}}}],
  "tracker": {"upload_max_mb": 1, "control_tokens": [
     {"name":"sam","token_env":"TOCSIN_TOKEN_SAM","role":"sender"},
     {"name":"vi","token_env":"TOCSIN_TOKEN_VI","role":"viewer"}]},
  "launch": {"max_lag": 0}'
it_start_broker
it_start_track
A=http://$TRACK
it_gen_audience "$OUT/aud.csv" 50
ls_aud() { ls "$VAR/audiences" | sort | tr '\n' ' '; }

got=$(code GET /api/me "");                            want 401 'missing or wrong token' "no token"
got=$(code GET /api/me "nope");                        want 401 'missing or wrong token' "wrong token"
got=$(code GET /api/me "$TOCSIN_TOKEN_VI");            want 200 '"name":"vi","role":"viewer"' "viewer reads"
for p in /send / /api/me; do
  curl -sI "$A$p" | grep -qi '^X-Frame-Options: DENY' || it_fail "$p may be framed by another site"
done
got=$(code POST /api/audiences "$TOCSIN_TOKEN_VI" --data-binary @"$OUT/aud.csv"); want 403 'needs the sender role; vi is a viewer' "viewer uploads"
got=$(code POST /api/campaigns/x/pause "$TOCSIN_TOKEN_SAM"); want 403 'admin role' "sender pauses"
got=$(code GET /api/compose "$TOCSIN_TOKEN_SAM");      want 405 'method not allowed' "GET compose"
[ -z "$(ls_aud)" ] || it_fail "refusals left files: $(ls_aud)"
python3 -c 'import sys; open(sys.argv[1], "w").write("first_name,phone,city\n" + "Pat,+12025550100,Springfield\n" * 40000)' "$OUT/big.csv"
got=$(code POST /api/audiences "$TOCSIN_TOKEN_SAM" -H 'Content-Type: text/csv' --data-binary @"$OUT/big.csv"); want 413 'upload_max_mb' "over the cap (Content-Length)"
got=$(code POST /api/audiences "$TOCSIN_TOKEN_SAM" -H 'Content-Type: text/csv' -H 'Transfer-Encoding: chunked' --data-binary @"$OUT/big.csv"); want 413 'larger than 1 MiB' "over the cap (chunked)"
got=$(code POST /api/audiences "$TOCSIN_TOKEN_SAM" --data-binary ''); want 400 'no header row' "empty file"
[ -z "$(ls_aud)" ] || it_fail "refused uploads left files: $(ls_aud)"
got=$(code POST '/api/audiences?name=..%2F..%2Fevil%3Cb%3E' "$TOCSIN_TOKEN_SAM" -H 'Content-Type: text/csv' --data-binary @"$OUT/aud.csv")
want 201 '"rows":50,"bad_rows":0' "upload"
AID=$(it_jq 'j["id"]' "$OUT/body")
[ "$(it_jq 'j["name"]' "$OUT/body")" = '../../evil<b>' ] || it_fail "name not kept as text"
[ "$(ls_aud)" = "$AID.csv $AID.json " ] || it_fail "files: $(ls_aud)"
find "$OUT" -name 'evil*' | grep -q . && it_fail "the upload's name was used as a path"
[ "$(stat -c %a "$VAR/audiences/$AID.csv")" = 600 ] || it_fail "audience file not 0600"
# odd column names become template names: empty, spaces, a repeat, punctuation, a quoted comma
printf '%s\r\n' ',a b,a_b,A-b,"x,y",phone' '1,2,3,4,5,+12025550100' > "$OUT/odd.csv"
got=$(code POST /api/audiences "$TOCSIN_TOKEN_SAM" --data-binary @"$OUT/odd.csv"); want 201 '"rows":1,"bad_rows":0' "odd column names"
[ "$(it_jq '",".join(c["name"] for c in j["columns"])' "$OUT/body")" = "column_1,a_b,a_b_2,A-b,x_y,phone" ] ||
  it_fail "columns mapped as $(it_jq 'j["columns"]' "$OUT/body")"
[ "$(it_jq 'j["sample"][0]["a_b_2"]' "$OUT/body")" = 3 ] || it_fail "sample under the mapped names"
got=$(code POST '/api/audiences?name=%FF%FE' "$TOCSIN_TOKEN_SAM" --data-binary @"$OUT/odd.csv"); want 201 '"name":"audience"' "a name that is not UTF-8"
got=$(code GET "/api/audiences/..%2F..%2Ftocsin.json" "$TOCSIN_TOKEN_VI"); want 404 'no such audience' "audience id as a path"
D='"audience":"'$AID'","sms":{"template":"Hi {{first_name}}"}'
got=$(code POST /api/preview "$TOCSIN_TOKEN_SAM" -d '{nope'); want 400 'JSON object' "bad JSON"
got=$(code POST /api/preview "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"rejects":"/tmp/x.csv"}'); want 400 'unknown field \\"rejects\\"' "a path field"
got=$(code POST /api/preview "$TOCSIN_TOKEN_SAM" -d '{"audience":"../../x",'"${D#*,}"'}'); want 400 'no such audience' "audience as a path"
python3 -c 'import sys; open(sys.argv[1], "w").write("{\"pad\":\"" + "x" * (1 << 20) + "\"}")' "$OUT/big.json"
got=$(code POST /api/compose "$TOCSIN_TOKEN_SAM" --data-binary @"$OUT/big.json"); want 413 'too large \(max 1024 KiB\)' "body over 1 MiB"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"to":"555-0102"}'); want 400 'is not a phone number' "test send to a bad number"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"to":"5\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}'); want 400 '^\{"error":"\\"5\?{39}\\" is not a phone number' "a bad number quoted cut inside a character"
got=$(code POST /api/test-send "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"email":{"subject":"Hi","text":"{{unsubscribe_url}}"},"to":"me@example.org"}'); want 409 'no email vendor is configured' "test email with no email vendor"
got=$(code POST /api/compose "$TOCSIN_TOKEN_SAM" -d '{'"$D"'}'); want 200 '"encoding":"gsm7"' "compose"
got=$(code POST /api/preview "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"api-1","n":2}'); want 200 '"queued":50' "preview"
LATER=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
got=$(code POST /api/preview "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"api-later","n":0,"send_at":"'"$LATER"'"}'); want 200 '"held":\{"n":50,"expired":0' "preview with send_at an hour ahead"
got=$(code POST /api/launches "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"api-1","confirm":"49"}'); want 400 'type the number of recipients \(50\)' "wrong confirmation"
got=$(code GET /api/launches "$TOCSIN_TOKEN_VI"); want 200 '"launches":\[\]' "nothing launched"
got=$(code POST /api/launches "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"api-1","confirm":"50"}'); want 201 '"state":"running"' "launch (approvals 1)"
done_launch() { code GET /api/launches "$TOCSIN_TOKEN_VI" > /dev/null; grep -q '"state":"done"' "$OUT/body"; }
it_wait_until 60 done_launch || it_fail "launch did not finish: $(cat "$OUT/body") $(cat "$VAR/compose/api-1/launch.log")"
[ "$(it_jq 'j["launches"][0]["report"]["queued"]' "$OUT/body")" = 50 ] || it_fail "report: $(cat "$OUT/body")"
known() { curl -sf "$A/api/campaigns/api-1" | grep -q '"queued":50'; }
it_wait_until 30 known || it_fail "the tracker does not know the campaign"
curl -sf "$A/api/timeline?limit=50" | grep -q '"actor":"sam"' || it_fail "sam's actions not on the timeline"
# launch requests outlive a restart of the tracker: with approvals 2 a request waits, the
# tracker restarts, it still waits (and api-1 is still done), and its requester cancels it
sed -i 's/"launch": {"max_lag": 0}/"launch": {"max_lag": 0, "approvals": 2}/' "$CFG"
it_stop "$PID_track"
it_bg track track --listen "$TRACK"
it_wait_until 20 curl -sf "$A/healthz"
got=$(code POST /api/launches "$TOCSIN_TOKEN_SAM" -d '{'"$D"',"id":"api-2","confirm":"api-2"}'); want 201 '"state":"pending"' "a launch waiting for approval"
it_stop "$PID_track"
it_bg track track --listen "$TRACK"
it_wait_until 20 curl -sf "$A/healthz"
got=$(code GET /api/launches "$TOCSIN_TOKEN_VI"); want 200 '"id":"api-2".*"state":"pending".*"id":"api-1".*"state":"done"' "launches kept across a restart"
got=$(code POST /api/launches/api-2/cancel "$TOCSIN_TOKEN_SAM" -d '{}'); want 200 '"state":"cancelled","requested_by":"sam"' "cancelled after the restart"
echo "ok: 0331-compose-api"
