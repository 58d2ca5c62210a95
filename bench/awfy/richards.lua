-- Are We Fast Yet: Richards, the Lua 5.4 twin of richards.kp. Tasks and
-- packets are tables linked by reference, as Lua programs do; the task
-- functions are methods of the four kinds of task data.
local NO_TASK, NO_WORK = false, false
local IDLER, WORKER, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = 0, 1, 2, 3, 4, 5
local DEVICE_PACKET_KIND, WORK_PACKET_KIND = 0, 1
local DATA_SIZE = 4

local function packet(link, identity, kind)
  return {link = link, identity = identity, kind = kind, datum = 0, data = {0, 0, 0, 0}}
end

-- packet goes to the end of the queue head; the queue is given back
local function append(p, head)
  p.link = NO_WORK
  if head == NO_WORK then return p end
  local mouse = head
  while mouse.link ~= NO_WORK do mouse = mouse.link end
  mouse.link = p
  return head
end

local Scheduler = {}
Scheduler.__index = Scheduler

local function new_scheduler()
  return setmetatable({tasks = {}, task_list = NO_TASK, current = NO_TASK,
                       current_identity = 0, queue_packet_count = 0, hold_count = 0},
                      Scheduler)
end

function Scheduler:create_task(identity, priority, work, pending, waiting, data)
  local t = {link = self.task_list, identity = identity, priority = priority, input = work,
             packet_pending = pending, task_waiting = waiting, task_holding = false,
             data = data}
  self.task_list = t
  self.tasks[identity] = t
end

function Scheduler:find_task(identity)
  local t = self.tasks[identity]
  if not t then error("no such task") end
  return t
end

function Scheduler:hold_self()
  self.hold_count = self.hold_count + 1
  local t = self.current
  t.task_holding = true
  return t.link
end

function Scheduler:wait_task()
  self.current.task_waiting = true
  return self.current
end

function Scheduler:release(identity)
  local t = self:find_task(identity)
  t.task_holding = false
  if t.priority > self.current.priority then return t end
  return self.current
end

function Scheduler:queue_packet(p)
  local t = self:find_task(p.identity)
  self.queue_packet_count = self.queue_packet_count + 1
  p.link = NO_WORK
  p.identity = self.current_identity
  -- add the input to the task and check its priority
  if t.input == NO_WORK then
    t.input = p
    t.packet_pending = true
    if t.priority > self.current.priority then return t end
  else
    t.input = append(p, t.input)
  end
  return self.current
end

-- the task functions: a method of each kind of task data
local IdleData = {}
IdleData.__index = IdleData
function IdleData:run(s, work)
  self.count = self.count - 1
  if self.count == 0 then return s:hold_self() end
  if self.control & 1 == 0 then
    self.control = self.control // 2
    return s:release(DEVICE_A)
  end
  self.control = (self.control // 2) ~ 53256
  return s:release(DEVICE_B)
end

local WorkerData = {}
WorkerData.__index = WorkerData
function WorkerData:run(s, work)
  if work == NO_WORK then return s:wait_task() end
  if self.destination == HANDLER_A then self.destination = HANDLER_B else self.destination = HANDLER_A end
  work.identity = self.destination
  work.datum = 0
  for i = 1, DATA_SIZE do
    self.count = self.count + 1
    if self.count > 26 then self.count = 1 end
    work.data[i] = 65 + self.count - 1
  end
  return s:queue_packet(work)
end

local HandlerData = {}
HandlerData.__index = HandlerData
function HandlerData:run(s, work)
  if work ~= NO_WORK then
    if work.kind == WORK_PACKET_KIND then
      self.work_in = append(work, self.work_in)
    else
      self.device_in = append(work, self.device_in)
    end
  end
  if self.work_in ~= NO_WORK then
    local work_packet = self.work_in
    local count = work_packet.datum
    if count < DATA_SIZE then
      if self.device_in ~= NO_WORK then
        local device_packet = self.device_in
        self.device_in = device_packet.link
        device_packet.datum = work_packet.data[count + 1]
        work_packet.datum = count + 1
        return s:queue_packet(device_packet)
      end
    else
      self.work_in = work_packet.link
      return s:queue_packet(work_packet)
    end
  end
  return s:wait_task()
end

local DeviceData = {}
DeviceData.__index = DeviceData
function DeviceData:run(s, work)
  if work == NO_WORK then
    if self.pending == NO_WORK then return s:wait_task() end
    local function_work = self.pending
    self.pending = NO_WORK
    return s:queue_packet(function_work)
  end
  self.pending = work
  return s:hold_self()
end

function Scheduler:run_task(t)
  local message = NO_WORK
  if t.packet_pending and t.task_waiting and not t.task_holding then
    message = t.input
    t.input = message.link
    message.link = NO_WORK
    if t.input == NO_WORK then
      t.packet_pending, t.task_waiting, t.task_holding = false, false, false   -- running
    else
      t.packet_pending, t.task_waiting, t.task_holding = true, false, false    -- packet pending
    end
  end
  return t.data:run(self, message)
end

function Scheduler:schedule()
  self.current = self.task_list
  while self.current ~= NO_TASK do
    local t = self.current
    if t.task_holding or (not t.packet_pending and t.task_waiting) then
      self.current = t.link
    else
      self.current_identity = t.identity
      self.current = self:run_task(t)
    end
  end
end

local function benchmark()
  local s = new_scheduler()
  s:create_task(IDLER, 0, NO_WORK, false, false,
                setmetatable({control = 1, count = 10000}, IdleData))

  local wq = packet(NO_WORK, WORKER, WORK_PACKET_KIND)
  wq = packet(wq, WORKER, WORK_PACKET_KIND)
  s:create_task(WORKER, 1000, wq, true, true,
                setmetatable({destination = HANDLER_A, count = 0}, WorkerData))

  wq = packet(NO_WORK, DEVICE_A, DEVICE_PACKET_KIND)
  wq = packet(wq, DEVICE_A, DEVICE_PACKET_KIND)
  wq = packet(wq, DEVICE_A, DEVICE_PACKET_KIND)
  s:create_task(HANDLER_A, 2000, wq, true, true,
                setmetatable({work_in = NO_WORK, device_in = NO_WORK}, HandlerData))

  wq = packet(NO_WORK, DEVICE_B, DEVICE_PACKET_KIND)
  wq = packet(wq, DEVICE_B, DEVICE_PACKET_KIND)
  wq = packet(wq, DEVICE_B, DEVICE_PACKET_KIND)
  s:create_task(HANDLER_B, 3000, wq, true, true,
                setmetatable({work_in = NO_WORK, device_in = NO_WORK}, HandlerData))

  s:create_task(DEVICE_A, 4000, NO_WORK, false, true, setmetatable({pending = NO_WORK}, DeviceData))
  s:create_task(DEVICE_B, 5000, NO_WORK, false, true, setmetatable({pending = NO_WORK}, DeviceData))

  s:schedule()
  return s.queue_packet_count == 23246 and s.hold_count == 9297
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 40
local ok = true
for _ = 1, iterations do
  if not benchmark() then ok = false end
end
print("Richards " .. iterations .. " " .. tostring(ok))
