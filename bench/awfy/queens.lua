-- Are We Fast Yet: Queens, the Lua 5.4 twin of queens.kp.
local free_rows, free_maxs, free_mins, queen_rows

local function get_row_column(r, c)
  return free_rows[r + 1] and free_maxs[c + r + 1] and free_mins[c - r + 8]
end

local function set_row_column(r, c, v)
  free_rows[r + 1] = v
  free_maxs[c + r + 1] = v
  free_mins[c - r + 8] = v
end

local function place_queen(c)
  for r = 0, 7 do
    if get_row_column(r, c) then
      queen_rows[r + 1] = c
      set_row_column(r, c, false)
      if c == 7 then return true end
      if place_queen(c + 1) then return true end
      set_row_column(r, c, true)
    end
  end
  return false
end

local function queens()
  free_rows, free_maxs, free_mins, queen_rows = {}, {}, {}, {}
  for i = 1, 8 do
    free_rows[i] = true
    queen_rows[i] = -1
  end
  for i = 1, 16 do
    free_maxs[i] = true
    free_mins[i] = true
  end
  return place_queen(0)
end

local function benchmark()
  local result = true
  for _ = 1, 10 do
    result = result and queens()
  end
  return result
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 1000
local ok = true
for _ = 1, iterations do
  if not benchmark() then ok = false end
end
print("Queens " .. iterations .. " " .. tostring(ok))
