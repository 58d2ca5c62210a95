-- Are We Fast Yet: Storage, the Lua 5.4 twin of storage.kp. Leaf arrays
-- hold `false` where Keep's hold `()` (a Lua table cannot hold nil).
local seed
local function next_random()
  seed = ((seed * 1309) + 13849) & 65535
  return seed
end

local count
local function build_tree_depth(depth)
  count = count + 1
  local arr = {}
  if depth == 1 then
    local n = next_random() % 10 + 1
    for i = 1, n do arr[i] = false end
  else
    for i = 1, 4 do arr[i] = build_tree_depth(depth - 1) end
  end
  return arr
end

local function benchmark()
  seed = 74755
  count = 0
  local tree = build_tree_depth(7)
  return count
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 150
local ok = true
local result = 0
for _ = 1, iterations do
  result = benchmark()
  if result ~= 5461 then ok = false end
end
print("Storage " .. iterations .. " " .. result .. " " .. tostring(ok))
