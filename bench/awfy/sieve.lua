-- Are We Fast Yet: Sieve, the Lua 5.4 twin of sieve.kp.
local function sieve(flags, size)
  local prime_count = 0
  for i = 2, size do
    if flags[i] then
      prime_count = prime_count + 1
      local k = i + i
      while k <= size do
        flags[k] = false
        k = k + i
      end
    end
  end
  return prime_count
end

local function benchmark()
  local flags = {}
  for i = 1, 5000 do flags[i] = true end
  return sieve(flags, 5000)
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 3000
local ok = true
local result = 0
for _ = 1, iterations do
  result = benchmark()
  if result ~= 669 then ok = false end
end
print("Sieve " .. iterations .. " " .. result .. " " .. tostring(ok))
