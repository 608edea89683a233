#!/usr/bin/env bash
# 0120-readme-runbook: a newcomer's path, verbatim. Copies the tracked tree into a fresh
# checkout (with this build, so its `make` has nothing to do), runs the README's "Running it
# yourself" block as written (it starts `tocsin up` on 127.0.0.1:8025/8026 and launches the
# SMS + email example), checks that every message reached the emulator once and that the
# tracker's API (what the dashboard shows) counts the same per vendor, then runs every `sh`
# block of RUNBOOK.md in order, and stops `tocsin up` with SIGTERM: nothing left running.
# The blocks are read from the Markdown, never copied here.
# it-serial: the README block listens on the fixed ports 8025/8026
source "$(dirname "$0")/lib.sh"
it_setup 0120-readme-runbook
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The README block names the default ports; refuse clearly rather than fail confusingly.
for p in 8025 8026; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2> /dev/null; then
    it_fail "127.0.0.1:$p is taken by another process; this test runs the README block as written, which needs ports 8025 and 8026"
  fi
done

CO=$OUT/checkout
mkdir -p "$CO"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | grep -zv '^tests/out/' | tar --null -T - -cf -) | tar -C "$CO" -xf -
cp -pR "$ROOT/build" "$CO/build"
cp -p "$TOCSIN_BIN" "$CO/tocsin"
touch "$CO/tocsin"

# extract_blocks FILE [HEADING]: the ```sh blocks of FILE (only the first one after HEADING
# when given), NUL-separated.
extract_blocks() {
  python3 - "$@" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
if len(sys.argv) > 2:
    text = text[text.index(sys.argv[2]):]
blocks = re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)
if len(sys.argv) > 2:
    blocks = blocks[:1]
sys.stdout.write("".join(b + "\0" for b in blocks))
PY
}

# --- the README block, as written
readme=$(extract_blocks "$ROOT/README.md" "## Running it yourself" | tr -d '\0')
grep -q 'tocsin up &' <<< "$readme" || it_fail "the README block no longer starts tocsin up"
echo "== README block:"; echo "$readme"
if ! (cd "$CO" && env -u TOCSIN_CONFIG bash -e -c "$readme") > "$OUT/readme.out" 2>&1; then
  [ -s "$CO/var/run/up.pid" ] && IT_PIDS+=("$(cat "$CO/var/run/up.pid")")
  cat "$OUT/readme.out"; it_fail "the README block failed"
fi
cat "$OUT/readme.out"
UP_PID=$(cat "$CO/var/run/up.pid")
IT_PIDS+=("$UP_PID")   # stopped on any exit
kill -0 "$UP_PID" || it_fail "tocsin up is not running after the README block"
grep -q "^dashboard: http://127.0.0.1:8026/$" "$OUT/readme.out" || it_fail "tocsin up did not say where the dashboard is"

A=http://127.0.0.1:8026
SIM=127.0.0.1:8025
finals() { curl -sf "$A/api/campaigns/rally" | it_jq 'sum(v for k,v in j["states"].items() if k not in ("queued","retrying"))'; }
all_final() { [ "$(finals)" -ge 400 ]; }
it_wait_until 120 all_final || it_fail "rally: only $(finals) of 400 final"
curl -sf "$A/api/campaigns/rally" > "$OUT/rally.json"
it_sim_stats > "$OUT/sim.json"
cat "$OUT/rally.json" "$OUT/sim.json"
python3 - "$OUT/rally.json" "$OUT/sim.json" <<'PY'
import json, sys
api, sim = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["vendors"]
assert api["total"] == 400 and api["queued"] == 400, api
ok = ("accepted", "sent", "delivered")
assert sum(api["states"].get(s, 0) for s in ok) == 400, api["states"]
sms = sim["twilio"]["accepted"] + sim["vonage"]["accepted"]
email = sim["sendgrid"]["accepted"] + sim["mailgun"]["accepted"]
assert sms == 200 and email == 200, (sms, email)
for name, v in sim.items():
    assert v["duplicate_count"] == 0, (name, v)
    got = sum(api["vendors"].get(name, {}).get(s, 0) for s in ok)
    assert got == v["accepted"], ("tracker and emulator disagree", name, got, v["accepted"])
print("ok: 200 SMS and 200 emails at the emulator, once each; the API counts the same per vendor")
PY
curl -sf "$A/" > "$OUT/dashboard.html" && grep -qi "<html" "$OUT/dashboard.html" || it_fail "no dashboard at $A/"
curl -sf "$A/api/campaigns" | it_jq '[c["state"] for c in j["campaigns"] if c["id"]=="rally"]' | grep -Eq 'running|done' \
  || it_fail "rally is neither running nor done in /api/campaigns"

# --- every sh block of the runbook, in order, in the shell a user would have
n=0
while IFS= read -r -d '' block; do
  n=$((n + 1))
  echo "== RUNBOOK block $n:"; echo "$block"
  (cd "$CO" && . examples/emulator.env && env -u TOCSIN_CONFIG bash -e -c "$block") > "$OUT/runbook-$n.out" 2>&1 \
    || { cat "$OUT/runbook-$n.out"; it_fail "RUNBOOK block $n failed"; }
  cat "$OUT/runbook-$n.out"
done < <(extract_blocks "$ROOT/RUNBOOK.md")
[ "$n" -ge 8 ] || it_fail "only $n runbook blocks found"
# what the runbook did shows: twilio back in rotation, rally cancelled at the end
it_wait_until 10 bash -c "curl -sf $A/api/vendors | grep -q '\"name\":\"twilio\"[^}]*\"state\":\"healthy\"'" \
  || it_fail "twilio is not healthy after the runbook's undrain: $(curl -sf $A/api/vendors)"
it_wait_until 10 bash -c "cd '$CO' && ./tocsin campaign list | grep -q '^rally .* cancelled '" \
  || it_fail "rally is not cancelled after the runbook: $(cd "$CO" && ./tocsin campaign list)"

# --- stop: SIGTERM to tocsin up stops everything it started
kill -TERM "$UP_PID"   # not our child (the README block started it): poll, do not wait
it_wait_until 60 bash -c "! kill -0 $UP_PID" || it_fail "tocsin up did not stop within 60 s of SIGTERM"
for p in 8025 8026; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2> /dev/null; then it_fail "127.0.0.1:$p still answers after tocsin up stopped"; fi
done
pgrep -f "^$CO/tocsin" && it_fail "processes of the checkout still run"
grep -q "^tocsin up: stopped everything it started$" "$OUT/readme.out" || it_fail "tocsin up did not report its stop"
echo "ok 0120-readme-runbook ($n runbook blocks)"
