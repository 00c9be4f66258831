-- Request mix for wrk, the same one bench/lib/loadgen.mjs sends:
--   wrk ... -s bench/lib/mix.lua URL -- api        /api/orders/N and /api/carts/N, alternating
--   wrk ... -s bench/lib/mix.lua URL -- many 10000 /c/C/items/N, C uniform over 0..9999
-- Every request carries x-user-id: user-K (K uniform over 1..100000), the sticky key.
-- Requests are built once in init(): building them per request would slow wrk itself.
local reqs = {}
local count = 4096
local idx = 0

function init(args)
  local mix = args[1] or "api"
  local contexts = tonumber(args[2] or "10000")
  math.randomseed(42)
  for i = 1, count do
    local path
    if mix == "many" then
      path = "/c/" .. math.random(0, contexts - 1) .. "/items/" .. i
    elseif i % 2 == 0 then
      path = "/api/orders/" .. i
    else
      path = "/api/carts/" .. i
    end
    reqs[i] = wrk.format("GET", path, { ["x-user-id"] = "user-" .. math.random(1, 100000) })
  end
end

function request()
  idx = idx % count + 1
  return reqs[idx]
end

-- Recorded latencies above `us` microseconds (wrk's histogram, by its percentiles to 1 in 100,000).
function over(latency, us)
  if latency.max <= us then return 0 end
  local lo, hi = 0, 100
  for _ = 1, 40 do
    local mid = (lo + hi) / 2
    if latency:percentile(mid) > us then hi = mid else lo = mid end
  end
  return math.floor(#latency * (100 - hi) / 100 + 0.5)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,"over2s":%d,"over10s":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, over(latency, 2e6), over(latency, 1e7)))
end
