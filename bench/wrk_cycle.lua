-- wrk script for bench/bench_ping.py: the same script drives both measurements, so the load
-- generator does the same work per request in each.
--
--   wrk -t1 -cC -dDs -s wrk_cycle.lua http://127.0.0.1:PORT -- health
--   wrk -t1 -cC -dDs -s wrk_cycle.lua http://127.0.0.1:PORT -- envelope FILE
--   wrk -t1 -cC -dDs -s wrk_cycle.lua http://127.0.0.1:PORT -- post-baseline FILE
--
-- "envelope" posts the pre-sealed envelopes of FILE (one JSON envelope per line) to
-- /api/v1/enclave in turn, cycling; "health" GETs /health; "post-baseline" posts the same
-- envelopes, same headers, to /health, which answers 405 without reading them (the HTTP cost of
-- such a POST, informational). Every response is checked: a status other than the expected one,
-- or a body without the expected text (an encrypted envelope's "ciphertext", health's "status",
-- the 405's error type), is counted, and done() prints the counts on one line starting with
-- VAULT-BENCH for the Python side to parse.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   mode = args[1] or "health"
   requests = {}
   index = 0
   responses = 0
   badstatus = 0
   unexpected = 0
   expected_status = 200
   if mode == "envelope" or mode == "post-baseline" then
      local path = "/api/v1/enclave"
      expected = '"ciphertext":"'
      if mode == "post-baseline" then
         path, expected, expected_status = "/health", '"method_not_allowed"', 405
      end
      local headers = { ["Content-Type"] = "application/json" }
      for line in io.lines(args[2]) do
         if #line > 0 then
            requests[#requests + 1] = wrk.format("POST", path, headers, line)
         end
      end
   else
      expected = '"status"'
      requests[1] = wrk.format("GET", "/health")
   end
end

function request()
   index = index % #requests + 1
   return requests[index]
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= expected_status then
      badstatus = badstatus + 1
   elseif not string.find(body, expected, 1, true) then
      unexpected = unexpected + 1
   end
end

function done(summary, latency, requests)
   local total, bad, odd, bodies = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("responses")
      bad = bad + thread:get("badstatus")
      odd = odd + thread:get("unexpected")
      bodies = bodies + #thread:get("requests")
   end
   local e = summary.errors
   io.write(string.format(
      "VAULT-BENCH requests=%d duration_us=%d responses=%d badstatus=%d unexpected=%d bodies=%d "
         .. "connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration, total, bad, odd, bodies,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99)))
end
