-- wsgistack bench: wrk's summary as one JSON line, for wsgistack/bench/wrk_engine.py,
-- with the mean of the app's own CPU per request from its Server-Timing header
-- (app.timing: "app;dur=<ms>, cpu;dur=<ms>"). wrk (Debian's 4.1) runs this file in
-- every thread's Lua state: init() and response() run there; done() runs once,
-- after the run, in the main state and reads each thread's counts with thread:get().
-- Latencies are in microseconds. Defining response() makes wrk parse the headers
-- and keep the body of every answer: a few microseconds each, still far below
-- Locust's cost. It checks the answers too: the script's argument (after wrk's
-- `--`), if any, is text every 2xx answer's body must hold (a Fibonacci value:
-- wrk_engine.py), and an answer without it is counted as wrong; and it counts
-- the answers that came compressed (a Content-Encoding header), so the report
-- can say whether the run measured compression.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

cpu_sum, timed, compressed, wrong = 0, 0, 0, 0
expect = nil

function init(args)
  if args[1] and args[1] ~= "" then
    expect = args[1]
  end
end

function response(status, headers, body)
  if headers["Content-Encoding"] or headers["content-encoding"] then
    compressed = compressed + 1
  end
  if expect and status >= 200 and status < 300 and not string.find(body, expect, 1, true) then
    wrong = wrong + 1
  end
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
  local cpu, count, packed, bad = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    cpu = cpu + (thread:get("cpu_sum") or 0)
    count = count + (thread:get("timed") or 0)
    packed = packed + (thread:get("compressed") or 0)
    bad = bad + (thread:get("wrong") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WSGISTACK {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %d, ' ..
    '"p95_us": %d, "p99_us": %d, "server_timing_count": %d, "app_cpu_ms_sum": %.3f, ' ..
    '"compressed": %d, "wrong": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), count, cpu, packed, bad))
end
