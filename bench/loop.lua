-- A tight while loop: the Lua 5.4 twin of loop.kp (locals inside a function).
local function run()
  local i = 0
  local s = 0
  while i < 30000000 do
    s = s + i % 7
    i = i + 1
  end
  return s
end

print(run())
