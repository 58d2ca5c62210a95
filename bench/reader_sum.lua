-- Sums 10M UInt32s through string.unpack (twin of reader_sum.kp).
local n = 10000000
local parts = {}
for i = 0, 999 do parts[#parts + 1] = string.pack("<I4", i) end
local data = string.rep(table.concat(parts), n // 1000)
local pos, s, unpack = 1, 0, string.unpack
for i = 1, n do
  local v
  v, pos = unpack("<I4", data, pos)
  s = s + v
end
print(s)
