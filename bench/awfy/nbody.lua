-- Are We Fast Yet: NBody, the Lua 5.4 twin of nbody.kp.
local solar_mass = 4.0 * math.pi * math.pi
local days_per_year = 365.24

local function body(x, y, z, vx, vy, vz, mass)
  return {x = x, y = y, z = z,
          vx = vx * days_per_year, vy = vy * days_per_year, vz = vz * days_per_year,
          mass = mass * solar_mass}
end

local function create_bodies()
  local bodies = {
    body(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    body(4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05,
         9.54791938424326609e-04),
    body(8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05,
         2.85885980666130812e-04),
    body(1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05,
         4.36624404335156298e-05),
    body(1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05,
         5.15138902046611451e-05),
  }
  local px, py, pz = 0.0, 0.0, 0.0
  for _, b in ipairs(bodies) do
    px = px + b.vx * b.mass
    py = py + b.vy * b.mass
    pz = pz + b.vz * b.mass
  end
  local sun = bodies[1]
  sun.vx = 0.0 - px / solar_mass
  sun.vy = 0.0 - py / solar_mass
  sun.vz = 0.0 - pz / solar_mass
  return bodies
end

local sqrt = math.sqrt
local function advance(bodies, dt)
  local n = #bodies
  for i = 1, n do
    local ib = bodies[i]
    for j = i + 1, n do
      local jb = bodies[j]
      local dx = ib.x - jb.x
      local dy = ib.y - jb.y
      local dz = ib.z - jb.z
      local d_squared = dx * dx + dy * dy + dz * dz
      local distance = sqrt(d_squared)
      local mag = dt / (d_squared * distance)
      ib.vx = ib.vx - dx * jb.mass * mag
      ib.vy = ib.vy - dy * jb.mass * mag
      ib.vz = ib.vz - dz * jb.mass * mag
      jb.vx = jb.vx + dx * ib.mass * mag
      jb.vy = jb.vy + dy * ib.mass * mag
      jb.vz = jb.vz + dz * ib.mass * mag
    end
  end
  for _, b in ipairs(bodies) do
    b.x = b.x + dt * b.vx
    b.y = b.y + dt * b.vy
    b.z = b.z + dt * b.vz
  end
end

local function energy(bodies)
  local e = 0.0
  local n = #bodies
  for i = 1, n do
    local ib = bodies[i]
    e = e + 0.5 * ib.mass * (ib.vx * ib.vx + ib.vy * ib.vy + ib.vz * ib.vz)
    for j = i + 1, n do
      local jb = bodies[j]
      local dx = ib.x - jb.x
      local dy = ib.y - jb.y
      local dz = ib.z - jb.z
      local distance = sqrt(dx * dx + dy * dy + dz * dz)
      e = e - (ib.mass * jb.mass) / distance
    end
  end
  return e
end

-- Keep prints a Float as the shortest text that reads back as it
local function keep_float(x)
  local s
  for prec = 15, 17 do
    s = string.format("%." .. prec .. "g", x)
    if tonumber(s) == x then break end
  end
  if not s:find("[%.en]") then s = s .. ".0" end
  return s
end

-- the count can be given as the first argument (tests run 1)
local steps = tonumber(arg[1]) or 250000
local bodies = create_bodies()
for _ = 1, steps do advance(bodies, 0.01) end
local result = energy(bodies)
-- the suite's published energies after 1 and 250000 steps
local expected = {[1] = -0.16907495402506745, [250000] = -0.1690859889909308}
print("NBody " .. steps .. " " .. keep_float(result) .. " " .. tostring(result == (expected[steps] or 0.0)))
