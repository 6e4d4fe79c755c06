-- Shared by post_dose.lua and post_batch.lua (loaded with dofile): Damm-checked coupon lines
-- and random client record ids, one new record per call of `record()`.
-- Environment: VRS_TOKEN (site bearer token), VRS_MUNICIPALITY (6 digits), VRS_SITE (10 digits),
-- VRS_SERIAL_BASE (first coupon serial; make it differ between runs so records are new),
-- VRS_THREADS (the -t given to wrk).

local M = {}

local damm = {
  {0,3,1,7,5,9,8,6,4,2},{7,0,9,2,1,5,4,8,6,3},{4,2,0,6,8,7,1,3,5,9},{1,7,5,0,9,8,3,4,2,6},
  {6,1,2,3,0,4,5,9,7,8},{3,6,7,4,2,0,9,5,8,1},{5,8,6,9,7,2,0,1,3,4},{8,9,4,5,3,6,2,0,1,7},
  {9,4,3,8,6,1,7,2,0,5},{2,5,8,1,4,3,6,7,9,0},
}

local function damm_digit(s)
  local interim = 0
  for i = 1, #s do
    interim = damm[interim + 1][tonumber(s:sub(i, i)) + 1]
  end
  return interim
end

local function uuid4()
  local t = {}
  for i = 1, 16 do t[i] = math.random(0, 255) end
  t[7] = (t[7] % 16) + 64
  t[9] = (t[9] % 64) + 128
  local h = string.format(string.rep("%02x", 16), (table.unpack or unpack)(t))
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21, 32)
end

M.token = os.getenv("VRS_TOKEN") or ""
local municipality = os.getenv("VRS_MUNICIPALITY") or "131016"
local site = os.getenv("VRS_SITE") or "1310000017"
local base = tonumber(os.getenv("VRS_SERIAL_BASE") or "1")
local counter = 0
local stride = 1
local index = 0

-- Per thread: threads interleave serials, thread i taking base + i, base + i + stride, ...
function M.start(thread_index)
  stride = tonumber(os.getenv("VRS_THREADS") or "2")
  index = thread_index or 0
  counter = 0
  math.randomseed(os.time() + index * 7919)
end

function M.record()
  counter = counter + 1
  local serial = base + counter * stride + index
  local body9 = string.format("%09d", serial % 1000000000)
  local coupon = "11" .. municipality .. body9 .. damm_digit(body9)
  return string.format(
    '{"client_record_id":"%s","coupon":"%s","vaccinated_on":"2023-05-01","product":"EU/1/20/1528","lot":"FA1234","site_code":"%s","source":"qr"}',
    uuid4(), coupon, site)
end

function M.post(path, body)
  return wrk.format("POST", path,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. M.token}, body)
end

return M
