-- Are We Fast Yet: Bounce, the Lua 5.4 twin of bounce.kp.
local Random = {}
Random.__index = Random
function Random.new() return setmetatable({seed = 74755}, Random) end
function Random:next()
  self.seed = ((self.seed * 1309) + 13849) & 65535
  return self.seed
end

local Ball = {}
Ball.__index = Ball
function Ball.new(r)
  local x = r:next() % 500
  local y = r:next() % 500
  local x_vel = r:next() % 300 - 150
  local y_vel = r:next() % 300 - 150
  return setmetatable({x = x, y = y, x_vel = x_vel, y_vel = y_vel}, Ball)
end

function Ball:bounce()
  local x_limit, y_limit = 500, 500
  local bounced = false
  self.x = self.x + self.x_vel
  self.y = self.y + self.y_vel
  if self.x > x_limit then
    self.x = x_limit
    self.x_vel = 0 - math.abs(self.x_vel)
    bounced = true
  end
  if self.x < 0 then
    self.x = 0
    self.x_vel = math.abs(self.x_vel)
    bounced = true
  end
  if self.y > y_limit then
    self.y = y_limit
    self.y_vel = 0 - math.abs(self.y_vel)
    bounced = true
  end
  if self.y < 0 then
    self.y = 0
    self.y_vel = math.abs(self.y_vel)
    bounced = true
  end
  return bounced
end

local function benchmark()
  local r = Random.new()
  local balls = {}
  for i = 1, 100 do balls[i] = Ball.new(r) end
  local bounces = 0
  for _ = 1, 50 do
    for _, ball in ipairs(balls) do
      if ball:bounce() then bounces = bounces + 1 end
    end
  end
  return bounces
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 1500
local ok = true
local result = 0
for _ = 1, iterations do
  result = benchmark()
  if result ~= 1331 then ok = false end
end
print("Bounce " .. iterations .. " " .. result .. " " .. tostring(ok))
