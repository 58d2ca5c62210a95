-- The Lua 5.4 twin of shapes_dispatch.kp: method calls through metatables
-- on three shape classes.
local Circle, Rect, Tri = {}, {}, {}
Circle.__index, Rect.__index, Tri.__index = Circle, Rect, Tri
function Circle:area() return 3.0 * self.r * self.r end
function Rect:area() return self.w * self.h end
function Tri:area() return 0.5 * self.b * self.h end
function Circle:grow(k) self.r = self.r * k end
function Rect:grow(k) self.w = self.w * k end
function Tri:grow(k) self.b = self.b * k end
local function run()
  local c = setmetatable({r = 1.0}, Circle)
  local r = setmetatable({w = 2.0, h = 3.0}, Rect)
  local t = setmetatable({b = 4.0, h = 5.0}, Tri)
  local total = 0.0
  local i = 0
  while i < 2000000 do
    total = total + c:area() + r:area() + t:area()
    c:grow(1.0)
    r:grow(1.0)
    t:grow(1.0)
    i = i + 1
  end
  return total
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
