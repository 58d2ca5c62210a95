-- Writes 10M LEB128 varints into a table of bytes (twin of writer_varint.kp).
local n = 10000000
local buf, len = {}, 0
for i = 0, n - 1 do
  local x = i * 7 % 1000003
  repeat
    local b = x & 0x7f
    x = x >> 7
    if x ~= 0 then b = b | 0x80 end
    len = len + 1
    buf[len] = b
  until x == 0
end
print(len .. " " .. buf[len])
