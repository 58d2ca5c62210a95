-- Are We Fast Yet: Towers, the Lua 5.4 twin of towers.kp. Towers of Hanoi
-- with 14 disks on three piles, each pile a linked list of disk tables.
local Towers = {}
Towers.__index = Towers

local function new_towers()
  return setmetatable({piles = {false, false, false}, moves = 0}, Towers)
end

function Towers:push_disk(disk, pile)
  local top = self.piles[pile]
  if top and disk.size >= top.size then
    error("Cannot put a big disk on a smaller one")
  end
  disk.next = top
  self.piles[pile] = disk
end

function Towers:pop_disk(pile)
  local top = self.piles[pile]
  if not top then
    error("Attempting to remove a disk from an empty pile")
  end
  self.piles[pile] = top.next
  top.next = false
  return top
end

function Towers:move_top_disk(from, to)
  self:push_disk(self:pop_disk(from), to)
  self.moves = self.moves + 1
end

function Towers:build_tower(pile, disks)
  for i = disks, 0, -1 do
    self:push_disk({size = i, next = false}, pile)
  end
end

function Towers:move_disks(disks, from, to)
  if disks == 1 then
    self:move_top_disk(from, to)
  else
    local other = 6 - from - to      -- piles are 1, 2, 3 here
    self:move_disks(disks - 1, from, other)
    self:move_top_disk(from, to)
    self:move_disks(disks - 1, other, to)
  end
end

local function benchmark()
  local t = new_towers()
  t:build_tower(1, 13)
  t:move_disks(13, 1, 2)
  return t.moves
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 600
local ok = true
local result = 0
for _ = 1, iterations do
  result = benchmark()
  if result ~= 8191 then ok = false end
end
print("Towers " .. iterations .. " " .. result .. " " .. tostring(ok))
