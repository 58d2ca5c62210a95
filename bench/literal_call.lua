-- Calling function values: the Lua 5.4 twin of literal_call.kp.
local function named_inc(x) return x + 1 end
local function main()
  local inc = function(x) return x + 1 end
  local k = 3
  local add_k = function(x) return x + k end
  local s = 0
  for i = 0, 3000000 - 1 do s = inc(s) end
  for i = 0, 3000000 - 1 do s = add_k(s) end
  local g = named_inc
  for i = 0, 3000000 - 1 do s = g(s) end
  print(s)
end
main()
