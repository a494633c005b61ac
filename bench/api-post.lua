-- api-post.lua: wrk script for POST /v1/workflows/bench-noop/executions.
-- The key comes from the environment (ORCH_API_KEY), never from the command line.
wrk.method = "POST"
wrk.body = '{"params":{}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("ORCH_API_KEY") or "")

-- Count the answers that are not 201, by status, and print them at the end.
local statuses = {}
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   counts = {}
end

function response(status, headers, body)
   if status ~= 201 then
      counts[status] = (counts[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   for _, t in ipairs(threads) do
      local c = t:get("counts")
      for s, n in pairs(c or {}) do
         statuses[s] = (statuses[s] or 0) + n
      end
   end
   for s, n in pairs(statuses) do
      io.write(string.format("status %d: %d answers\n", s, n))
   end
end
