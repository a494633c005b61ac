-- api-get.lua: wrk script for authenticated GETs of the URL given to wrk.
-- The key comes from the environment (ORCH_API_KEY), never from the command line.
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("ORCH_API_KEY") or "")
