-- Are We Fast Yet: DeltaBlue, the Lua 5.4 twin of deltablue.kp. Variables
-- and constraints are tables that refer to each other, as Lua programs do;
-- the four kinds of constraint are classes (metatables) over two abstract
-- ones, Unary and Binary. Strengths are their arithmetic values (smaller
-- is stronger), and values are integers (the scale constraint divides
-- with //, as the suite's Java version does).
local REQUIRED, STRONG_PREFERRED, PREFERRED = -800, -600, -400
local STRONG_DEFAULT, DEFAULT, WEAK_DEFAULT = -200, 0, 500
local ABSOLUTE_WEAKEST = 10000
local NONE, FORWARD, BACKWARD = 0, 1, 2

local function weakest(a, b) if b > a then return b end return a end

-- a queue: a list with a read index, items appended at the end
local function queue() return {first = 1, last = 0} end
local function push(q, x) q.last = q.last + 1; q[q.last] = x end
local function pop_first(q) local x = q[q.first]; q.first = q.first + 1; return x end
local function is_empty(q) return q.first > q.last end

local Variable = {}
Variable.__index = Variable

local function variable(value)
  return setmetatable({value = value, constraints = {}, determined_by = false,
                       walk_strength = ABSOLUTE_WEAKEST, stay = true, mark = 0}, Variable)
end

function Variable:add_constraint(c) self.constraints[#self.constraints + 1] = c end

function Variable:remove_constraint(c)
  local kept = {}
  for _, d in ipairs(self.constraints) do
    if d ~= c then kept[#kept + 1] = d end
  end
  self.constraints = kept
  if self.determined_by == c then self.determined_by = false end
end

-- the planner ------------------------------------------------------------

local Planner = {}
Planner.__index = Planner

local function planner() return setmetatable({current_mark = 1}, Planner) end

function Planner:new_mark()
  local m = self.current_mark
  self.current_mark = m + 1
  return m
end

function Planner:incremental_add(c)
  local mark = self:new_mark()
  local overridden = c:satisfy(mark, self)
  while overridden do overridden = overridden:satisfy(mark, self) end
end

function Planner:incremental_remove(c)
  local out = c:output()
  c:mark_unsatisfied()
  c:remove_from_graph()
  local unsatisfied = self:remove_propagate_from(out)
  for _, u in ipairs(unsatisfied) do self:incremental_add(u) end
end

function Planner:add_constraints_consuming_to(v, todo)
  local determining = v.determined_by
  for _, c in ipairs(v.constraints) do
    if c ~= determining and c:is_satisfied() then push(todo, c) end
  end
end

function Planner:add_propagate(c, mark)
  local todo = queue()
  push(todo, c)
  while not is_empty(todo) do
    local d = pop_first(todo)
    if d:output().mark == mark then
      self:incremental_remove(c)
      return false
    end
    d:recalculate()
    self:add_constraints_consuming_to(d:output(), todo)
  end
  return true
end

-- the suite's sort of the unsatisfied constraints, strongest first: two
-- elements are swapped unless the first is stronger; longer lists (never
-- seen in DeltaBlue) by insertion
local function sort_by_strength(xs)
  if #xs == 2 then
    if not (xs[1].strength < xs[2].strength) then xs[1], xs[2] = xs[2], xs[1] end
    return
  end
  for i = 2, #xs do
    local x = xs[i]
    local j = i - 1
    while j >= 1 and x.strength < xs[j].strength do
      xs[j + 1] = xs[j]
      j = j - 1
    end
    xs[j + 1] = x
  end
end

function Planner:remove_propagate_from(out)
  local unsatisfied = {}
  out.determined_by = false
  out.walk_strength = ABSOLUTE_WEAKEST
  out.stay = true
  local todo = queue()
  push(todo, out)
  while not is_empty(todo) do
    local v = pop_first(todo)
    for _, c in ipairs(v.constraints) do
      if not c:is_satisfied() then unsatisfied[#unsatisfied + 1] = c end
    end
    local determining = v.determined_by
    for _, c in ipairs(v.constraints) do
      if c ~= determining and c:is_satisfied() then
        c:recalculate()
        push(todo, c:output())
      end
    end
  end
  sort_by_strength(unsatisfied)
  return unsatisfied
end

function Planner:make_plan(sources)
  local mark = self:new_mark()
  local plan = {}
  local todo = sources
  while not is_empty(todo) do
    local c = pop_first(todo)
    local out = c:output()
    if out.mark ~= mark and c:inputs_known(mark) then
      plan[#plan + 1] = c
      out.mark = mark
      self:add_constraints_consuming_to(out, todo)
    end
  end
  return plan
end

function Planner:extract_plan_from_constraints(constraints)
  local sources = queue()
  for _, c in ipairs(constraints) do
    if c:is_input() and c:is_satisfied() then push(sources, c) end
  end
  return self:make_plan(sources)
end

local function execute_plan(plan)
  for _, c in ipairs(plan) do c:execute() end
end

-- constraints ------------------------------------------------------------

local Constraint = {}
Constraint.__index = Constraint

function Constraint:is_input() return false end

function Constraint:add_constraint(p)
  self:add_to_graph()
  p:incremental_add(self)
end

function Constraint:destroy_constraint(p)
  if self:is_satisfied() then p:incremental_remove(self) end
  self:remove_from_graph()
end

function Constraint:satisfy(mark, p)
  self:choose_method(mark)
  if self:is_satisfied() then
    -- mark the inputs, for the cycle detection of add_propagate
    self:mark_inputs(mark)
    local out = self:output()
    local overridden = out.determined_by
    if overridden then overridden:mark_unsatisfied() end
    out.determined_by = self
    if not p:add_propagate(self, mark) then error("Cycle encountered") end
    out.mark = mark
    return overridden
  end
  if self.strength == REQUIRED then error("Failed to satisfy a required constraint") end
  return false
end

-- unary: one output variable, no input
local Unary = setmetatable({}, {__index = Constraint})
Unary.__index = Unary

local function unary(class, v, strength, p)
  local c = setmetatable({strength = strength, output_v = v, satisfied = false}, class)
  c:add_constraint(p)
  return c
end

function Unary:is_satisfied() return self.satisfied end
function Unary:output() return self.output_v end
function Unary:mark_unsatisfied() self.satisfied = false end
function Unary:mark_inputs(mark) end
function Unary:inputs_known(mark) return true end
function Unary:execute() end

function Unary:add_to_graph()
  self.output_v:add_constraint(self)
  self.satisfied = false
end

function Unary:remove_from_graph()
  self.output_v:remove_constraint(self)
  self.satisfied = false
end

function Unary:choose_method(mark)
  local out = self.output_v
  self.satisfied = out.mark ~= mark and self.strength < out.walk_strength
end

function Unary:recalculate()
  local out = self.output_v
  out.walk_strength = self.strength
  out.stay = not self:is_input()
  if out.stay then self:execute() end
end

local Stay = setmetatable({}, {__index = Unary})
Stay.__index = Stay

local Edit = setmetatable({}, {__index = Unary})
Edit.__index = Edit
function Edit:is_input() return true end

-- binary: two variables, the direction says which one is the output
local Binary = setmetatable({}, {__index = Constraint})
Binary.__index = Binary

function Binary:is_satisfied() return self.direction ~= NONE end
function Binary:mark_unsatisfied() self.direction = NONE end

function Binary:output()
  if self.direction == FORWARD then return self.v2 end
  return self.v1
end

function Binary:input()
  if self.direction == FORWARD then return self.v1 end
  return self.v2
end

function Binary:mark_inputs(mark) self:input().mark = mark end

function Binary:inputs_known(mark)
  local v = self:input()
  return v.mark == mark or v.stay or not v.determined_by
end

function Binary:add_to_graph()
  self.v1:add_constraint(self)
  self.v2:add_constraint(self)
  self.direction = NONE
end

function Binary:remove_from_graph()
  self.v1:remove_constraint(self)
  self.v2:remove_constraint(self)
  self.direction = NONE
end

function Binary:choose_method(mark)
  local v1, v2, s = self.v1, self.v2, self.strength
  if v1.mark == mark then
    if v2.mark ~= mark and s < v2.walk_strength then self.direction = FORWARD
    else self.direction = NONE end
  elseif v2.mark == mark then
    if v1.mark ~= mark and s < v1.walk_strength then self.direction = BACKWARD
    else self.direction = NONE end
  elseif v1.walk_strength > v2.walk_strength then
    -- neither is marked: the weaker one is the output
    if s < v1.walk_strength then self.direction = BACKWARD else self.direction = NONE end
  else
    if s < v2.walk_strength then self.direction = FORWARD else self.direction = NONE end
  end
end

function Binary:recalculate()
  local ihn, out = self:input(), self:output()
  out.walk_strength = weakest(self.strength, ihn.walk_strength)
  out.stay = ihn.stay
  if out.stay then self:execute() end
end

local Equality = setmetatable({}, {__index = Binary})
Equality.__index = Equality

local function equality(v1, v2, strength, p)
  local c = setmetatable({strength = strength, v1 = v1, v2 = v2, direction = NONE}, Equality)
  c:add_constraint(p)
  return c
end

function Equality:execute()
  if self.direction == FORWARD then self.v2.value = self.v1.value
  else self.v1.value = self.v2.value end
end

-- v2 = v1 * scale + offset
local Scale = setmetatable({}, {__index = Binary})
Scale.__index = Scale

local function scale_constraint(src, scale, offset, dst, strength, p)
  local c = setmetatable({strength = strength, v1 = src, v2 = dst, scale = scale,
                          offset = offset, direction = NONE}, Scale)
  c:add_constraint(p)
  return c
end

function Scale:add_to_graph()
  self.v1:add_constraint(self)
  self.v2:add_constraint(self)
  self.scale:add_constraint(self)
  self.offset:add_constraint(self)
  self.direction = NONE
end

function Scale:remove_from_graph()
  self.v1:remove_constraint(self)
  self.v2:remove_constraint(self)
  self.scale:remove_constraint(self)
  self.offset:remove_constraint(self)
  self.direction = NONE
end

function Scale:mark_inputs(mark)
  self:input().mark = mark
  self.scale.mark = mark
  self.offset.mark = mark
end

function Scale:execute()
  if self.direction == FORWARD then
    self.v2.value = self.v1.value * self.scale.value + self.offset.value
  else
    self.v1.value = (self.v2.value - self.offset.value) // self.scale.value
  end
end

function Scale:recalculate()
  local ihn, out = self:input(), self:output()
  out.walk_strength = weakest(self.strength, ihn.walk_strength)
  out.stay = ihn.stay and self.scale.stay and self.offset.stay
  if out.stay then self:execute() end
end

-- the two tests ------------------------------------------------------------

function Planner:change_var(v, value)
  local edit = unary(Edit, v, PREFERRED, self)
  local plan = self:extract_plan_from_constraints({edit})
  for _ = 1, 10 do
    v.value = value
    execute_plan(plan)
  end
  edit:destroy_constraint(self)
end

-- a chain of n equality constraints with a stay at one end; an edit at the
-- other end must propagate down the whole chain
local function chain_test(n)
  local p = planner()
  local vars = {}
  for i = 1, n + 1 do vars[i] = variable(0) end
  for i = 1, n do equality(vars[i], vars[i + 1], REQUIRED, p) end
  unary(Stay, vars[n + 1], STRONG_DEFAULT, p)
  local edit = unary(Edit, vars[1], PREFERRED, p)
  local plan = p:extract_plan_from_constraints({edit})
  local ok = true
  for v = 1, 100 do
    vars[1].value = v
    execute_plan(plan)
    if vars[n + 1].value ~= v then ok = false end
  end
  edit:destroy_constraint(p)
  return ok
end

-- n pairs of variables related by dst = src * scale + offset; changing
-- either side, the scale or the offset must keep every pair related
local function projection_test(n)
  local p = planner()
  local scale, offset = variable(10), variable(1000)
  local src, dst
  local dests = {}
  for i = 1, n do
    src, dst = variable(i), variable(i)
    dests[i] = dst
    unary(Stay, src, DEFAULT, p)
    scale_constraint(src, scale, offset, dst, REQUIRED, p)
  end
  local ok = true
  p:change_var(src, 17)
  if dst.value ~= 1170 then ok = false end
  p:change_var(dst, 1050)
  if src.value ~= 5 then ok = false end
  p:change_var(scale, 5)
  for i = 1, n - 1 do
    if dests[i].value ~= i * 5 + 1000 then ok = false end
  end
  p:change_var(offset, 2000)
  for i = 1, n - 1 do
    if dests[i].value ~= i * 5 + 2000 then ok = false end
  end
  return ok
end

-- the suite's inner iterations: the size of both tests (tests run 1)
local n = tonumber(arg and arg[1]) or 12000
local ok = chain_test(n) and projection_test(n)
print("DeltaBlue " .. n .. " " .. tostring(ok))
