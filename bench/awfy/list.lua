-- Are We Fast Yet: List, the Lua 5.4 twin of list.kp.
local function length(e)
  if e.next == nil then return 1 end
  return 1 + length(e.next)
end

local function make_list(n)
  if n == 0 then return nil end
  local e = {val = n}
  e.next = make_list(n - 1)
  return e
end

local function is_shorter_than(x, y)
  local x_tail, y_tail = x, y
  while true do
    if x_tail.next == nil then return y_tail.next ~= nil end
    if y_tail.next == nil then return false end
    x_tail = x_tail.next
    y_tail = y_tail.next
  end
end

local function tail(x, y, z)
  if is_shorter_than(y, x) then
    return tail(tail(x.next, y, z), tail(y.next, z, x), tail(z.next, x, y))
  end
  return z
end

local function benchmark()
  local a, b, c = make_list(15), make_list(10), make_list(6)
  return length(tail(a, b, c))
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 1500
local ok = true
local result = 0
for _ = 1, iterations do
  result = benchmark()
  if result ~= 10 then ok = false end
end
print("List " .. iterations .. " " .. result .. " " .. tostring(ok))
