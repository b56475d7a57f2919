-- wsgistack bench: wrk's summary as one JSON line, for wsgistack/bench/wrk_engine.py,
-- with the mean of the app's own CPU per request from its Server-Timing header
-- (app.timing: "app;dur=<ms>, cpu;dur=<ms>"). wrk (Debian's 4.1) runs this file in
-- every thread's Lua state: response() counts there; done() runs once, after the
-- run, in the main state and reads each thread's counts with thread:get().
-- Latencies are in microseconds. Defining response() makes wrk parse the headers
-- of every answer: a few microseconds each, still far below Locust's cost.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

cpu_sum, timed = 0, 0

function response(status, headers, body)
  local header = headers["Server-Timing"] or headers["server-timing"]
  if header then
    local ms = header:match("cpu;dur=([%d%.]+)")
    if ms then
      cpu_sum = cpu_sum + tonumber(ms)
      timed = timed + 1
    end
  end
end

done = function(summary, latency, requests)
  local cpu, count = 0, 0
  for _, thread in ipairs(threads) do
    cpu = cpu + (thread:get("cpu_sum") or 0)
    count = count + (thread:get("timed") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WSGISTACK {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %d, ' ..
    '"p95_us": %d, "p99_us": %d, "server_timing_count": %d, "app_cpu_ms_sum": %.3f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), count, cpu))
end
