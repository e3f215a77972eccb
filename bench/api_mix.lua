-- wrk script for bench/api_load.py: the mix a reconciliation job makes over REST,
-- AddPNRSubscription, GetAllFilters, RemovePNRSubscription in turn, for one IT system.
--
--   wrk -s bench/api_mix.lua URL -- TOKEN SYSTEM_UUID RUN
--
-- Every add is of a PNR no other thread or run uses (RUN keeps runs apart), and every
-- remove is of a PNR this thread added LAG adds earlier, whose add has been answered
-- by then (a connection has one request in flight), so the filter list stays small.
-- At most 8 threads, and RUN below 40: the serials stay apart.
-- done() prints one line of JSON for the bench to read: requests, non-2xx answers,
-- socket errors, seconds, and the p50, p99 and worst latency in microseconds.

local threads = {}
local LAG = 64

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

function init(args)
   token, system, run = args[1], args[2], tonumber(args[3])
   step, added, removed = 0, 0, 0
   headers = {["Authorization"] = "Bearer " .. token,
              ["Content-Type"] = "application/json"}
end

-- The n-th PNR of this thread in this run: a valid birth date and a serial that no
-- other (run, thread) pair produces.
local function pnr(n)
   local day, month, year = n % 28 + 1, math.floor(n / 28) % 12 + 1,
                            math.floor(n / 336) % 100
   local serial = (run * 8 + index) * 29 + math.floor(n / 33600)
   return string.format("%02d%02d%02d%04d", day, month, year, serial % 10000)
end

local function call(operation, argument)
   local body = '{"invocationContext":{"userSystemUUID":"' .. system .. '"}'
   if argument then body = body .. ',"pnr":"' .. argument .. '"' end
   return wrk.format("POST", "/v1/" .. operation, headers, body .. "}")
end

function request()
   step = step + 1
   local turn = step % 3
   if turn == 1 then
      added = added + 1
      return call("AddPNRSubscription", pnr(added))
   elseif turn == 2 or added <= LAG + removed then
      return call("GetAllFilters")
   end
   removed = removed + 1
   return call("RemovePNRSubscription", pnr(removed))
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "non_2xx": %d, "socket_errors": %d, "seconds": %.3f, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, errors.status, errors.connect + errors.read + errors.write +
      errors.timeout, summary.duration / 1e6, latency:percentile(50),
      latency:percentile(99), latency.max))
end
