-- wrk script: POST /v1/dose-records/batch with VRS_BATCH_SIZE (default 1000) new records per
-- request (see common.lua for the rest of the environment it reads).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local batch_size = tonumber(os.getenv("VRS_BATCH_SIZE") or "1000")
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  common.start(thread_index)
end

function request()
  local parts = {}
  for i = 1, batch_size do
    parts[i] = common.record()
  end
  return common.post("/v1/dose-records/batch", '{"records":[' .. table.concat(parts, ",") .. ']}')
end
