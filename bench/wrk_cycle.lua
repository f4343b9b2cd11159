-- wrk script for bench/bench_ping.py: the same script drives every measurement, so the load
-- generator does the same work per request in each.
--
--   wrk -t1 -cC -dDs -s wrk_cycle.lua http://127.0.0.1:PORT -- health
--   wrk -t1 -cC -dDs -s wrk_cycle.lua http://127.0.0.1:PORT -- post PATH FILE
--
-- "post" posts the pre-sealed envelopes of FILE (one JSON envelope per line) to PATH in turn,
-- cycling: /api/v1/enclave on the Vault, or the trivial app's path for the same-size POST
-- baseline; "health" GETs /health. Every response is checked: a status other than 200, or a body
-- without the expected text (an encrypted envelope's "ciphertext", health's "status"), is
-- counted, and done() prints the counts on one line starting with VAULT-BENCH for the Python side
-- to parse.

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
   if mode == "post" then
      local path, file = args[2], args[3]
      expected = '"ciphertext":"'
      local headers = { ["Content-Type"] = "application/json" }
      for line in io.lines(file) do
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
