-- bench_sim_twilio.lua -- wrk script: one Twilio-shaped Create Message request, keep-alive.
wrk.method = "POST"
wrk.path = "/2010-04-01/Accounts/ACbench0000000000000000000000000000/Messages.json"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
-- "ACbench0000000000000000000000000000:bench-token" (a throwaway bench credential)
wrk.headers["Authorization"] = "Basic QUNiZW5jaDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA6YmVuY2gtdG9rZW4="
wrk.body = "To=%2B15551234567&From=%2B15005550006&Body=Rally+at+7pm+tonight.+Reply+STOP+to+opt+out."

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors_status=%d errors_connect=%d errors_read=%d errors_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
