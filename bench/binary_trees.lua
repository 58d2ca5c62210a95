-- Benchmarks-game binary trees, depth 16: the Lua 5.4 twin of binary_trees.kp.
-- Same representation: a node is a table with a `kids` list, empty for a leaf,
-- two nodes for an inner node.

local function make(depth)
  if depth == 0 then
    return { kids = {} }
  end
  local kids = {}
  kids[#kids + 1] = make(depth - 1)
  kids[#kids + 1] = make(depth - 1)
  return { kids = kids }
end

local function check(t)
  if #t.kids == 0 then
    return 1
  end
  return 1 + check(t.kids[1]) + check(t.kids[2])
end

local function main(n)
  local min_depth = 4
  local max_depth = math.max(min_depth + 2, n)
  local stretch = max_depth + 1

  do
    local t = make(stretch)
    print("stretch tree of depth " .. tostring(stretch) .. "\t check: " .. tostring(check(t)))
  end

  local long_lived = make(max_depth)

  local d = min_depth
  while d <= max_depth do
    local iters = 1
    local k = 0
    while k < max_depth - d + min_depth do
      iters = iters * 2
      k = k + 1
    end
    local total = 0
    local i = 0
    while i < iters do
      local t = make(d)
      total = total + check(t)
      i = i + 1
    end
    print(tostring(iters) .. "\t trees of depth " .. tostring(d) .. "\t check: " .. tostring(total))
    d = d + 2
  end

  print("long lived tree of depth " .. tostring(max_depth) .. "\t check: " .. tostring(check(long_lived)))
end

main(16)
