-- String-heavy work: the twin of strings.kp.
local n = 300000
local function out(...) print(table.concat({...}, " ")) end
local keys = {}
for i = 0, n - 1 do
  keys[#keys + 1] = string.format("key%06d-%d", (i * 7919) % n, i % 7)
end
local counts = {}
for _, k in ipairs(keys) do
  counts[k] = (counts[k] or 0) + #k
end
for _, k in ipairs(keys) do
  counts[k] = counts[k] + 1
end
local total, size = 0, 0
for _, v in pairs(counts) do total = total + v; size = size + 1 end
out(size, total)
local line = table.concat(keys, ",")
local parts = {}
for p in string.gmatch(line, "[^,]+") do parts[#parts + 1] = p end
out(#line, #parts, parts[1], parts[n])
local sorted = {}
for i = 1, n do sorted[i] = keys[i] end
table.sort(sorted)
for i = 0, 4 do
  local k = sorted[i + 1]
  print(string.format("%-16s|%8d|%x", k, counts[k], i * 255))
end
print(sorted[n])
local words = {}
for i = 0, n - 1 do
  if i % 3 == 0 then words[#words + 1] = "w" .. tostring(i % 1000) end
end
local freq, nfreq = {}, 0
for _, w in ipairs(words) do
  if not freq[w] then nfreq = nfreq + 1 end
  freq[w] = (freq[w] or 0) + 1
end
out(#words, nfreq, freq["w999"])
