-- bench_track_webhook.lua -- wrk script: signed Twilio status callbacks to the tracker, keep-alive,
-- each for a different message and sid (the tracker takes a signed MessageSid + status once: a
-- repeated request is a replay and gets 400). TRK_REQS (a file of "signature<TAB>path<TAB>body"
-- lines, one per request, pre-signed) comes from bench/bench_track_webhook.sh; thread k of TRK_THREADS
-- takes every TRK_THREADS-th line. A thread that runs out repeats its last one (counted non2xx).
local next_tid, threads = 0, {}
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local reqs, i = {}, 0
function init(args)
  local nthreads = tonumber(os.getenv("TRK_THREADS") or "2")
  local n = 0
  for line in io.lines(os.getenv("TRK_REQS")) do
    if n % nthreads == tid then
      local sig, path, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded",
                                                  ["X-Twilio-Signature"] = sig}, body)
    end
    n = n + 1
  end
end

function request()
  i = i + 1
  return reqs[i] or reqs[#reqs]
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d non2xx=%d errors_connect=%d errors_read=%d errors_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
