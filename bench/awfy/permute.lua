-- Are We Fast Yet: Permute, the Lua 5.4 twin of permute.kp.
local Permute = {}
Permute.__index = Permute

function Permute:swap(i, j)
  local v = self.v
  local tmp = v[i + 1]
  v[i + 1] = v[j + 1]
  v[j + 1] = tmp
end

function Permute:permute(n)
  self.count = self.count + 1
  if n ~= 0 then
    local n1 = n - 1
    self:permute(n1)
    for i = n1, 0, -1 do
      self:swap(n1, i)
      self:permute(n1)
      self:swap(n1, i)
    end
  end
end

local function benchmark()
  local p = setmetatable({count = 0, v = {0, 0, 0, 0, 0, 0}}, Permute)
  p:permute(6)
  return p.count
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 1000
local ok = true
local result = 0
for _ = 1, iterations do
  result = benchmark()
  if result ~= 8660 then ok = false end
end
print("Permute " .. iterations .. " " .. result .. " " .. tostring(ok))
