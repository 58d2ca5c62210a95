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
-- Keep prints a Float as the shortest text that reads back as it (15, 16
-- or 17 significant digits), with ".0" on integral values
local function keep_float(x)
  local s
  for prec = 15, 17 do
    s = string.format("%." .. prec .. "g", x)
    if tonumber(s) == x then break end
  end
  if not s:find("[%.en]") then s = s .. ".0" end
  return s
end
print(keep_float(run()))
