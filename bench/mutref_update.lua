-- The Lua 5.4 twin of mutref_update.kp: a table passed to a function that
-- updates two number fields, 10M times.
local function step(p, dt)
  p.x = p.x + dt
  p.y = p.y + p.x * dt
end
local function run()
  local p = {x = 0.0, y = 0.0}
  local i = 0
  while i < 10000000 do
    step(p, 0.000001)
    i = i + 1
  end
  return p.y
end
-- Keep prints floats as %.14g with ".0" on integral values
local s = string.format("%.14g", run())
if not s:find("[%.en]") then s = s .. ".0" end
print(s)
