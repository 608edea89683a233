# lib.sh -- shared helpers for the numbered integration tests (source it, do not run it).
# Every test gets its own directory tests/out/<test>/ with its own var_dir and
# config, starts what it needs on 127.0.0.1, and stops all of it on exit.
set -euo pipefail

TOCSIN_BIN=${TOCSIN_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tocsin}
IT_PIDS=()

# it_setup NAME: fresh $OUT (= tests/out/NAME) and $VAR; installs the cleanup trap.
it_setup() {
  OUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/out/$1
  rm -rf "$OUT"; mkdir -p "$OUT/var/run"
  VAR=$OUT/var
  CFG=$OUT/tocsin.json
  export TOCSIN_TWILIO_TOKEN=it-twilio-token
  trap it_cleanup EXIT
  trap 'exit 143' TERM INT   # a timed-out test still stops what it started
}

# it_bg NAME ARGS...: run `tocsin -c $CFG ARGS...` in the background, log in $OUT/NAME.log.
it_bg() {
  local name=$1; shift
  "$TOCSIN_BIN" -c "$CFG" "$@" > "$OUT/$name.log" 2>&1 &
  IT_PIDS+=($!)
  eval "PID_${name//-/_}=$!"
}

# it_wait_file PATH [SECONDS]: wait until PATH exists and is not empty.
it_wait_file() {
  local f=$1 t=${2:-15} i=0
  while [ ! -s "$f" ]; do
    sleep 0.1; i=$((i + 1))
    if [ $i -ge $((t * 10)) ]; then echo "timed out waiting for $f" >&2; return 1; fi
  done
}

# it_wait_until SECONDS CMD...: run CMD every 0.2 s until it succeeds.
it_wait_until() {
  local t=$1 i=0; shift
  until "$@" > /dev/null 2>&1; do
    sleep 0.2; i=$((i + 1))
    if [ $i -ge $((t * 5)) ]; then echo "timed out after ${t}s waiting for: $*" >&2; return 1; fi
  done
}

# it_write_config [JSON-FRAGMENT]: write $CFG with var_dir=$VAR plus the fragment's
# top-level keys (a JSON object text without the outer braces), e.g.
#   it_write_config '"vendors":[...], "routes":{...}'
# Quiet hours (on for SMS by default) are off unless the fragment names "quiet_hours": the
# other tests must not depend on the hour they run at.
it_write_config() {
  local extra=${1:-}
  if [ -n "$extra" ]; then extra=", $extra"; fi
  case "$extra" in *'"quiet_hours"'*) ;; *) extra="$extra, \"quiet_hours\": {\"sms\": {\"enabled\": false}}" ;; esac
  printf '{"var_dir": "%s"%s}\n' "$VAR" "$extra" > "$CFG"
}

# it_start_broker: start the embedded broker for $CFG and wait for its run file.
it_start_broker() {
  it_bg broker broker
  it_wait_file "$VAR/run/broker.bootstrap" 20
}

# it_stop PID: SIGTERM and wait up to 15 s; returns the process's exit code.
it_stop() {
  local pid=$1 i=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    if [ $i -ge 150 ]; then echo "pid $pid ignored SIGTERM for 15 s" >&2; kill -KILL "$pid"; return 1; fi
  done
  wait "$pid" 2>/dev/null
}

it_cleanup() {
  local rc=$?
  for ((k=${#IT_PIDS[@]}-1; k>=0; k--)); do
    it_stop "${IT_PIDS[$k]}" || true
  done
  exit $rc
}

# it_fail MESSAGE: print and fail the test.
it_fail() { echo "FAIL: $*" >&2; exit 1; }

# it_gen_audience FILE N [OFFSET]: a CSV (first_name,phone,city) of N distinct, valid
# US numbers; OFFSET shifts the numbering so two audiences do not overlap.
it_gen_audience() {
  python3 - "$1" "$2" "${3:-0}" <<'PY'
import sys
path, n, off = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
areas = [202, 212, 303, 415, 617, 718, 312, 512]
exch = [234, 345, 456, 567, 678, 789, 432, 543, 654, 765]
with open(path, "w") as f:
    f.write("first_name,phone,city\n")
    for i in range(off, off + n):
        a = areas[i // 100000 % len(areas)]
        e = exch[i // 10000 % len(exch)]
        f.write("Pat%d,+1%d%d%04d,Springfield\n" % (i, a, e, i % 10000))
PY
}

# it_campaign FILE ID AUDIENCE-CSV: a one-SMS campaign over that audience.
it_campaign() {
  printf '{"id":"%s","name":"%s","audience":{"path":"%s","format":"csv","phone":"phone"},
 "sms":{"sender":"main","template":"Hi {{first_name}}, vote no on {{city}} cuts tonight."},
 "expires_in_s":3600}\n' "$2" "$2" "$3" > "$1"
}

# it_campaign_as FILE ID AUDIENCE-CSV SENDER PRIORITY: a one-SMS campaign from that sender
# pool at that priority (>= 1 = the urgent lane).
it_campaign_as() {
  printf '{"id":"%s","name":"%s","priority":%d,"audience":{"path":"%s","format":"csv","phone":"phone"},
 "sms":{"sender":"%s","template":"Hi {{first_name}}, %s"},"expires_in_s":3600}\n' \
    "$2" "$2" "$5" "$3" "$4" "$2" > "$1"
}

# it_one_sms_vendor VENDOR-JSON [TOP-JSON]: config with the one vendor "twilio" at the
# emulator ($SIM), its senders and limits from VENDOR-JSON, status callbacks to $TRACK,
# plus TOP-JSON's top-level keys.
it_one_sms_vendor() {
  it_write_config "\"vendors\": [{\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\", $1}],
    \"tracker\": {\"public_url\": \"http://${TRACK:-127.0.0.1:9}\"}${2:+, $2}"
}

# it_one_sms_stack VENDOR-JSON: with the one-vendor config of it_one_sms_vendor, start the
# broker, the emulator and the tracker, rewrite the config with their addresses, and start
# one dispatcher (log dispatch.log).
it_one_sms_stack() {
  it_one_sms_vendor "$1"
  it_start_broker
  it_start_sim
  it_start_track
  it_one_sms_vendor "$1"
  it_bg dispatch dispatch
}

# it_two_sms_vendors [EXTRA-JSON-FOR-EACH-VENDOR]: config with vendors "twilio" and
# "vonage" at the emulator ($SIM, set by it_start_sim) and route twilio, then vonage.
it_two_sms_vendors() {
  local extra=${1:-}
  [ -n "$extra" ] && extra=", $extra"
  export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
  it_write_config "\"vendors\": [
   {\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
    \"senders\":{\"main\":{\"from\":\"+15005550006\"}}${extra}},
   {\"name\":\"vonage\",\"kind\":\"vonage\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"itvonagekey\",\"secret_env\":\"TOCSIN_VONAGE_SECRET\",
    \"signature_secret_env\":\"TOCSIN_VONAGE_SIG\",
    \"senders\":{\"main\":{\"from\":\"15005550007\"}}${extra}}],
  \"routes\": {\"sms\": {\"strategy\": \"priority\", \"vendors\": [\"twilio\", \"vonage\"]}},
  \"dispatcher\": {\"max_attempts\": 8, \"retry_base_ms\": 100, \"retry_max_ms\": 1000,
                   \"max_in_flight\": 64, \"retry_budget\": 1.0}${IT_EXTRA_TOP:+, $IT_EXTRA_TOP}"
}

# it_two_email_vendors: config with vendors "sendgrid" (sender pool "sg") and "mailgun" (pool
# "mg") at the emulator ($SIM), route sendgrid, then mailgun; tracker.public_url set; exports
# their keys and the unsubscribe key.
it_two_email_vendors() {
  export TOCSIN_SENDGRID_KEY=it-sendgrid-key TOCSIN_MAILGUN_KEY=it-mailgun-key \
         TOCSIN_UNSUB_KEY=it-unsubscribe-key-0123456789
  it_write_config '"vendors":[
  {"name":"sendgrid","kind":"sendgrid","channel":"email","base_url":"http://'"${SIM:-127.0.0.1:9}"'","secret_env":"TOCSIN_SENDGRID_KEY","senders":{"sg":{"from":"news@example.org"}},"max_in_flight":8},
  {"name":"mailgun","kind":"mailgun","channel":"email","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"mg.example.org","secret_env":"TOCSIN_MAILGUN_KEY","senders":{"mg":{"from":"news@mg.example.org"}},"max_in_flight":8}],
  "routes":{"email":{"strategy":"priority","vendors":["sendgrid","mailgun"]}},
  "dispatcher":{"max_in_flight":16},
  "tracker":{"public_url":"https://act.example.org/t"}'
}

# it_start_sim: start the emulator on a free port; sets $SIM (host:port).
it_start_sim() {
  it_bg vendor-sim vendor-sim --listen 127.0.0.1:0
  it_wait_file "$VAR/run/vendor-sim.addr" 20
  SIM=$(cat "$VAR/run/vendor-sim.addr")
}

# it_start_track: start the tracker on a free port; sets $TRACK.
it_start_track() {
  it_bg track track --listen 127.0.0.1:0
  it_wait_file "$VAR/run/track.addr" 20
  TRACK=$(cat "$VAR/run/track.addr")
}

# it_sim_stats: the emulator's /_sim/stats JSON.
it_sim_stats() { curl -sf "http://$SIM/_sim/stats"; }

# it_sim_fault JSON: change the emulator's faults for one vendor.
it_sim_fault() {
  curl -sf -X POST -H 'Content-Type: application/json' -d "$1" "http://$SIM/_sim/config" > /dev/null \
    || it_fail "emulator refused fault config $1"
}

# it_jq EXPR [JSON-FILE]: evaluate a Python expression on JSON `j` read from stdin or a file.
it_jq() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[2]) if len(sys.argv)>2 else sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$@"
}

# it_status_field CAMPAIGN EXPR: evaluate EXPR on `tocsin status CAMPAIGN --json` (0 if unknown).
it_status_field() {
  local js
  js=$("$TOCSIN_BIN" -c "$CFG" status "$1" --json 2>/dev/null) || { echo 0; return; }
  echo "$js" | it_jq "$2"
}

# it_final_count CAMPAIGN: messages of CAMPAIGN in an accepted-or-later or final state.
it_final_count() {
  it_status_field "$1" 'sum(v for k,v in j["states"].items() if k not in ("queued","retrying"))'
}

# it_free_port: a TCP port free on 127.0.0.1 right now (for a server whose address must be
# known before it starts, e.g. the tracker's public_url that vendors sign webhooks over).
it_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# it_vonage_form [-m METHOD] [-t TIMESTAMP] NAME=VALUE...: the parameters as a signed Vonage webhook
# sends them (form-encoded, with timestamp and sig), signed with $TOCSIN_VONAGE_SIG by python's
# hashlib/hmac (independent of the C code). METHOD: md5hash (default), md5, sha1, sha256, sha512;
# TIMESTAMP: default $TOCSIN_TEST_NOW_S, else now.
it_vonage_form() {
  local m=md5hash t=${TOCSIN_TEST_NOW_S:-$(date +%s)}
  while [ $# -gt 0 ]; do
    case $1 in -m) m=$2; shift 2;; -t) t=$2; shift 2;; *) break;; esac
  done
  python3 - "$TOCSIN_VONAGE_SIG" "$m" "$t" "$@" <<'PY'
import hashlib, hmac, sys, urllib.parse
secret, method, ts = sys.argv[1], sys.argv[2], sys.argv[3]
p = dict(a.split("=", 1) for a in sys.argv[4:])
p["timestamp"] = ts
s = "".join("&%s=%s" % (k, v.replace("&", "_").replace("=", "_")) for k, v in sorted(p.items()))
if method == "md5hash":
    p["sig"] = hashlib.md5((s + secret).encode()).hexdigest()
else:
    p["sig"] = hmac.new(secret.encode(), s.encode(), getattr(hashlib, method)).hexdigest()
print(urllib.parse.urlencode(p))
PY
}

# it_browser_setup: check for Debian's Chromium and install the browser tests' npm packages
# (once); sets $BROWSER_DIR (tests/browser).
it_browser_setup() {
  BROWSER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../browser" && pwd)
  [ -x /usr/bin/chromium ] || it_fail "no /usr/bin/chromium: run make deps (Debian package chromium)"
  if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund > "$OUT/npm.log" 2>&1) || it_fail "npm ci failed: $(tail -5 "$OUT/npm.log")"
  fi
}
