#!/usr/bin/env bash
# bench_email.sh -- one dispatcher's batched-email throughput end to end (outbox -> SendGrid-shaped
# requests of up to 1000 personalizations -> status events acknowledged) against the emulator.
# Side by side in one run, N recipients each:
#   plain     the campaign without personalization (only the unsubscribe link per recipient)
#   personal  the same campaign personalized with {{first_name}} and {{city}} (200 first names,
#             97 cities: every piece rides SendGrid substitutions, issue 17)
# and, as before, a baseline of N_BASELINE emails rendered inline (a '{' in a printed value makes
# the producer render that email inline, unbatchable) and the emulator's ceiling.
#   bench/bench_email.sh [N (default 200000)] [N_BASELINE (default N/10)]
# DSP_JSON='"ambiguous_grace_ms": 0' adds members to the config's "dispatcher" object (an A/B of a
# dispatcher setting in the same script; dispatcher CPU seconds are printed per campaign).
# ROUNDS=k repeats plain/personal k times (alternating). TOCSIN_BIN_BEFORE=<older tocsin> runs
# each campaign a second time with that binary's dispatcher (same broker and emulator; before
# and after alternate which goes first): a before/after in one run. Checks the emulator accepted every
# recipient exactly once with its unsubscribe link intact (GET /_sim/email), prints each rate,
# personal / plain, and the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
NB=${2:-$((N / 10))}
B=${TOCSIN_BIN:-$PWD/tocsin}
OUT=$PWD/bench/out/bench_email
rm -rf "$OUT"; mkdir -p "$OUT/var"
CFG=$OUT/tocsin.json
export TOCSIN_SENDGRID_KEY=bench-sendgrid-key TOCSIN_UNSUB_KEY=bench-unsubscribe-key-0123456789
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var",
 "vendors": [{"name": "sendgrid", "kind": "sendgrid", "channel": "email", "base_url": "http://${1:-127.0.0.1:9}",
   "secret_env": "TOCSIN_SENDGRID_KEY", "senders": {"main": {"from": "news@example.org"}},
   "max_in_flight": 16, "timeout_ms": 20000}],
 "routes": {"email": {"strategy": "priority", "vendors": ["sendgrid"]}},
 "dispatcher": {"max_in_flight": 16${DSP_JSON:+, $DSP_JSON}},
 "kafka": {"queued.max.messages.kbytes": "${KBYTES:-65536}", "fetch.error.backoff.ms": "20"},
 "tracker": {"public_url": "https://act.example.org/t"}}
JSON
}
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }
cfg
"$B" -c "$CFG" broker > "$OUT/broker.log" 2>&1 & BROKERPID=$!; PIDS+=($BROKERPID)
wait_file "$OUT/var/run/broker.bootstrap"
"$B" -c "$CFG" vendor-sim --listen 127.0.0.1:0 > "$OUT/sim.log" 2>&1 & SIMPID=$!; PIDS+=($SIMPID)
simcpu() { awk '{print $14 + $15}' /proc/$SIMPID/stat; }
brokercpu() { awk '{print $14 + $15}' /proc/$BROKERPID/stat; }
wait_file "$OUT/var/run/vendor-sim.addr"
SIM=$(cat "$OUT/var/run/vendor-sim.addr")
cfg "$SIM"
curl -sf -X POST -d '{"vendor":"sendgrid","receipts":{"enabled":false}}' "http://$SIM/_sim/config" > /dev/null

# audiences: "base" has ref "{<i>}" (a '{' in a printed value: rendered inline, unbatchable);
# "plain" and "personal" are the same N addresses' worth, with 200 first names and 97 cities
python3 - "$OUT" "$N" "$NB" <<'PY'
import sys
out, n, nb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = ["%s%s" % (a, b) for a in ("Al", "Bea", "Cy", "Dee", "Ed", "Flo", "Gus", "Hal", "Ida", "Jo")
         for b in ("", "n", "na", "ly", "die", "ra", "vin", "sie", "ton", "mae", "ric", "la", "ne", "by",
                   "ssa", "dro", "lia", "mir", "nor", "ko")]
cities = ["City %d" % i for i in range(97)]
with open("%s/base.csv" % out, "w") as f:
    f.write("first_name,city,email,ref\n")
    for i in range(10**7, 10**7 + nb):
        f.write("Pat,Reno,supporter%d@example.org,{%d}\n" % (i, i % 10))
for name, off in (("plain", 0), ("personal", 2 * 10**7)):
    with open("%s/%s.csv" % (out, name), "w") as f:
        f.write("first_name,city,email,ref\n")
        for i in range(off, off + n):
            f.write("%s,%s,supporter%d@example.org,r1\n" % (names[i % len(names)], cities[i % len(cities)], i))
PY
camp() { # id csv text html
  printf '{"id":"%s","audience":{"path":"%s.csv","email":"email"},
 "email":{"sender":"main","subject":"Tonight: the vote on the cuts","text":"%s","html":"%s"},
 "expires_in_s":3600}\n' "$1" "$2" "$3" "$4" > "$OUT/$1.json"
}
camp base base 'Hi {{first_name}}, call your council member tonight (ref {{ref}}).\nUnsubscribe: {{unsubscribe_url}}' \
  '<p>Hi {{first_name}}, call your council member tonight (ref {{ref}}).</p><p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>'
TP='Hi {{first_name}}, call your council member in {{city}} tonight.\nUnsubscribe: {{unsubscribe_url}}'
HP='<p>Hi {{first_name}}, call your council member in {{city}} tonight.</p><p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>'
T0='Hi friend, call your council member in your city tonight.\nUnsubscribe: {{unsubscribe_url}}'
H0='<p>Hi friend, call your council member in your city tonight.</p><p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>'

# run CAMPAIGN COUNT: launch it fully first, then one dispatcher until the emulator has it all
run() {
  local c=$1 n=$2
  curl -sf -X POST "http://$SIM/_sim/reset" > /dev/null
  uptime > "$OUT/load-$c.out"
  "$B" -c "$CFG" launch --max-lag 0 "$OUT/$c.json" > "$OUT/launch-$c.out" 2>&1
  local s0 b0; s0=$(simcpu); b0=$(brokercpu)
  ${DSP_WRAP:-} "${DSP_BIN:-$B}" -c "$CFG" dispatch --channel email --max-pending ${MAX_PENDING:-40000} ${DSP_ARGS:-} > "$OUT/dispatch-$c.log" 2>&1 & local dsp=$!; PIDS+=($dsp)
  # polled with curl + grep, not python (~20 ms of CPU a start, 4 a second: taken from the
  # cores the timed campaign runs on): sendgrid's "accepted", as sim_ctl.c writes it
  for _ in $(seq 2400); do   # at most 10 minutes
    acc=$(curl -sf "http://$SIM/_sim/stats" | sed -n 's/.*"sendgrid":{"requests":[0-9]*,"accepted":\([0-9]*\).*/\1/p')
    [ "${acc:-0}" -ge "$n" ] && break
    sleep 0.25
  done
  sleep 1
  awk '{print $14 + $15}' /proc/$dsp/stat > "$OUT/cpu-$c.out"   # dispatcher CPU ticks (user+sys)
  awk '{print $10}' /proc/$dsp/stat > "$OUT/minflt-$c.out"        # its minor page faults (fresh memory)
  awk '/^VmHWM/ {print $2}' /proc/$dsp/status > "$OUT/rss-$c.out"  # its peak RSS, KiB
  echo $(( $(simcpu) - s0 )) > "$OUT/simcpu-$c.out"              # the emulator's, same span
  echo $(( $(brokercpu) - b0 )) > "$OUT/brokercpu-$c.out"         # the broker's, same span
  kill -TERM $dsp; wait $dsp || true
  grep -o 'event=dispatch_summary.*per_second=[0-9]*' "$OUT/dispatch-$c.log" > "$OUT/dispatch-$c.out"
  curl -sf "http://$SIM/_sim/stats" > "$OUT/stats-$c.json"
  curl -sf "http://$SIM/_sim/email" > "$OUT/email-$c.json"
}
# ceiling: the emulator alone, fed pre-built SendGrid requests of 1000 recipients shaped like the
# adapter's (same sizes, distinct ids) by curl --parallel, 16 at a time
ceiling() {
  local k=$1
  python3 - "$OUT" "$k" <<'PY'
import json, sys
out, k = sys.argv[1], int(sys.argv[2])
text = "Hi Pat, call your council member tonight (ref r1).\nUnsubscribe: {{{tocsin:unsubscribe_url}}}"
html = "<p>Hi Pat, call your council member tonight (ref r1).</p><p><a href=\"{{{tocsin:unsubscribe_url}}}\">Unsubscribe</a></p>"
for r in range(k):
    ps = []
    for i in range(1000):
        n = r * 1000 + i
        url = "https://act.example.org/t/u/AQViZW5jaA" + ("%064x" % (n * 7919))[:80]
        ps.append({"to": [{"email": "ceiling%d@example.org" % n}],
                   "custom_args": {"tocsin_id": "%032x" % n},
                   "headers": {"List-Unsubscribe": "<%s>" % url},
                   "substitutions": {"{{{tocsin:unsubscribe_url}}}": url}})
    body = {"personalizations": ps, "from": {"email": "news@example.org"}, "subject": "Tonight: the vote on the cuts",
            "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
            "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            "custom_args": {"tocsin_campaign": "ceiling"}}
    open("%s/ceil-%d.json" % (out, r), "w").write(json.dumps(body, separators=(",", ":")))
PY
  local args=() r
  for ((r = 0; r < k; r++)); do
    [ $r -gt 0 ] && args+=(--next)
    args+=(-s -o /dev/null -H "Authorization: Bearer $TOCSIN_SENDGRID_KEY" -H "Content-Type: application/json"
           --data-binary "@$OUT/ceil-$r.json" "http://$SIM/v3/mail/send")
  done
  curl -sf -X POST "http://$SIM/_sim/reset" > /dev/null
  local t0 t1 s0
  s0=$(simcpu)
  t0=$(date +%s%N)
  curl -s -Z --parallel-max 16 "${args[@]}"
  t1=$(date +%s%N)
  echo $(( $(simcpu) - s0 )) > "$OUT/simcpu-ceiling.out"
  curl -sf "http://$SIM/_sim/stats" > "$OUT/stats-ceiling.json"
  echo "$k $t0 $t1" > "$OUT/ceiling.out"
}
echo "== ceiling: the emulator alone, 60 requests of 1000 recipients, 16 in parallel"
ceiling 60
echo "== baseline: $NB emails rendered inline (one request per recipient)"
run base "$NB"; cat "$OUT/dispatch-base.out"
RUNS=()
for ((r = 1; r <= ${ROUNDS:-1}; r++)); do
  # alternate which goes first, so neither always meets a warmer or colder machine
  if ((r % 2)); then order="plain personal"; vars="${TOCSIN_BIN_BEFORE:+before} now"
  else order="personal plain"; vars="now${TOCSIN_BIN_BEFORE:+ before}"; fi
  for k in $order; do
    for v in $vars; do
      c=$k-$r; [ $v = before ] && c=$c-before
      if [ $k = plain ]; then camp $c plain "$T0" "$H0"; else camp $c personal "$TP" "$HP"; fi
      echo "== round $r, $k${TOCSIN_BIN_BEFORE:+ ($v)}: $N emails (SendGrid, up to 1000 per request)"
      DSP_BIN=$([ $v = before ] && echo "$TOCSIN_BIN_BEFORE" || echo "$B") run $c "$N"
      cat "$OUT/dispatch-$c.out"; grep 'email:' "$OUT/launch-$c.out" || true
      RUNS+=($c)
    done
  done
done
python3 - "$OUT" "$N" "$NB" "${RUNS[@]}" <<'PY'
import json, os, re, sys
out, n, nb, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
ok, rates, load = True, {}, {}
for c in ["base"] + runs:
    want = nb if c == "base" else n
    st = json.load(open("%s/stats-%s.json" % (out, c)))["vendors"]["sendgrid"]
    em = json.load(open("%s/email-%s.json" % (out, c)))["vendors"]["sendgrid"]
    d = re.search(r"finals=(\d+) seconds=([0-9.]+) per_second=(\d+)", open("%s/dispatch-%s.out" % (out, c)).read())
    finals, rates[c] = int(d.group(1)), float(d.group(3))
    load[c] = open("%s/load-%s.out" % (out, c)).read().split("load average:")[-1].split(",")[0].strip()
    good = (st["accepted"] == want and st["unique_ids"] == want and st["duplicate_count"] == 0
            and finals == want and em["unsub_ok"] == want and em["unreplaced"] == 0
            and em["subs_applied"] == (0 if c == "base" else want))
    if c != "base": # every recipient batched: no inline render at all
        good &= ("email: %d batched (shared parts + substitutions), 0 inline" % want) in open("%s/launch-%s.out" % (out, c)).read()
    ok &= good
    print("check %s: accepted %d, distinct ids %d, sent twice %d, finals %d, requests %d, "
          "substituted %d, unsubscribe links intact %d -> %s"
          % (c, st["accepted"], st["unique_ids"], st["duplicate_count"], finals, st["requests"],
             em["subs_applied"], em["unsub_ok"], "OK" if good else "WRONG"))
ck, t0, t1 = open("%s/ceiling.out" % out).read().split()
cst = json.load(open("%s/stats-ceiling.json" % out))["vendors"]["sendgrid"]
ceil = cst["accepted"] / ((int(t1) - int(t0)) / 1e9)
if cst["accepted"] != int(ck) * 1000:
    print("check ceiling: emulator accepted %d of %d -> WRONG" % (cst["accepted"], int(ck) * 1000)); ok = False
tick = os.sysconf("SC_CLK_TCK")
for r in range(1, len([c for c in runs if c.startswith("plain-") and not c.endswith("-before")]) + 1):
  for v in ([""] if "plain-1-before" not in runs else ["-before", ""]):
    p, q = rates["personal-%d%s" % (r, v)], rates["plain-%d%s" % (r, v)]
    print("round %d%s: personalized %.0f recipients/s (load %s); unpersonalized %.0f recipients/s (load %s); "
          "personalized / unpersonalized %.2f"
          % (r, " before" if v else (" now" if "plain-1-before" in runs else ""), p, load["personal-%d%s" % (r, v)],
             q, load["plain-%d%s" % (r, v)], p / q))
    for k in ("personal", "plain"):
        c = "%s-%d%s" % (k, r, v)
        cpu = int(open("%s/cpu-%s.out" % (out, c)).read()) / tick
        print("  %-8s dispatcher CPU %.2f s (%.0f recipients per CPU-second), %d minor faults, peak RSS %.0f MiB; "
              "emulator CPU %.1f us, broker CPU %.1f us per recipient"
              % (k, cpu, n / cpu, int(open("%s/minflt-%s.out" % (out, c)).read() or 0),
                 int(open("%s/rss-%s.out" % (out, c)).read() or 0) / 1024,
                 int(open("%s/simcpu-%s.out" % (out, c)).read()) / tick * 1e6 / n,
                 int(open("%s/brokercpu-%s.out" % (out, c)).read()) / tick * 1e6 / n))
print("inline (unbatched) baseline %.0f recipients/s (load %s)" % (rates["base"], load["base"]))
scc = int(open("%s/simcpu-ceiling.out" % out).read()) / tick
print("emulator alone (same requests, curl --parallel 16): %.0f recipients/s, %.1f us per recipient"
      % (ceil, scc * 1e6 / (int(ck) * 1000)))
sys.exit(0 if ok else 1)
PY
