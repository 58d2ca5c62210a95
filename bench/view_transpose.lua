-- A 512x512 matrix as a table of tables, then 10 rounds of transpose (into
-- a new table of tables) and sum (twin of view_transpose.kp).
local n = 512
local m = {}
for i = 1, n do
  local row = {}
  for j = 1, n do row[j] = (i - 1) * n + (j - 1) + 0.0 end
  m[i] = row
end
local total = 0.0
for round = 1, 10 do
  local t = {}
  for i = 1, n do
    local row = {}
    for j = 1, n do row[j] = m[j][i] end
    t[i] = row
  end
  local s = 0.0
  for i = 1, n do
    local row, w = t[i], 0.0
    for j = 1, n do
      s = s + row[j] * w
      w = w + 1.0
    end
  end
  total = total + s
end
print(string.format("%d", total))
