-- wrk script: POST /v1/dose-records, one new record per request (see common.lua for the
-- environment it reads).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  common.start(thread_index)
end

function request()
  return common.post("/v1/dose-records", common.record())
end
