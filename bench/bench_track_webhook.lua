-- bench_track_webhook.lua -- wrk script: one signed Twilio status callback to the tracker, keep-alive.
-- TRK_PATH, TRK_SIG and TRK_BODY come from bench/bench_track_webhook.sh.
wrk.method = "POST"
wrk.path = os.getenv("TRK_PATH")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = os.getenv("TRK_SIG")
wrk.body = os.getenv("TRK_BODY")

done = function(summary, latency, requests)
  io.write(string.format("requests=%d non2xx=%d errors_connect=%d errors_read=%d errors_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
