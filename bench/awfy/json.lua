-- Are We Fast Yet: Json, the Lua 5.4 twin of json.kp. JSON null is a
-- sentinel table (a Lua table cannot hold nil); numbers keep their text.
local NULL = setmetatable({}, {__name = "null"})
local byte, sub = string.byte, string.sub

local JsonNumber = {}
JsonNumber.__index = JsonNumber
local JsonArray = {}
JsonArray.__index = JsonArray
local JsonObject = {}
JsonObject.__index = JsonObject

local function new_object()
  return setmetatable({names = {}, values = {}, index = {}}, JsonObject)
end
function JsonObject:add(name, value)
  local n = #self.names + 1
  self.index[name] = n
  self.names[n] = name
  self.values[n] = value
end
function JsonObject:get(name) return self.values[self.index[name]] end
function JsonObject:has(name) return self.index[name] ~= nil end

local Parser = {}
Parser.__index = Parser

local function new_parser(text)
  return setmetatable({input = text, index = 0, current = 0, buffer = "", capture_start = -1}, Parser)
end

function Parser:read()
  self.index = self.index + 1
  self.current = byte(self.input, self.index) or -1
end

function Parser:read_char(ch)
  if self.current ~= ch then return false end
  self:read()
  return true
end

function Parser:expected(what)
  if self.current < 0 then error("Unexpected end of input") end
  error("Expected " .. what .. " at " .. (self.index - 1))
end

function Parser:expect(ch, what)
  if not self:read_char(ch) then self:expected(what) end
end

function Parser:is_white_space()
  local c = self.current
  return c == 32 or c == 9 or c == 10 or c == 13
end

function Parser:skip_white_space()
  while self:is_white_space() do self:read() end
end

function Parser:is_digit()
  return self.current >= 48 and self.current <= 57
end

function Parser:read_digit()
  if not self:is_digit() then return false end
  self:read()
  return true
end

function Parser:start_capture() self.capture_start = self.index end

function Parser:pause_capture()
  self.buffer = self.buffer .. sub(self.input, self.capture_start, self.index - 1)
  self.capture_start = -1
end

function Parser:end_capture()
  local captured
  if self.buffer == "" then
    captured = sub(self.input, self.capture_start, self.index - 1)
  else
    self:pause_capture()
    captured = self.buffer
    self.buffer = ""
  end
  self.capture_start = -1
  return captured
end

function Parser:read_required(word)
  for i = 1, #word do
    self:expect(byte(word, i), "'" .. sub(word, i, i) .. "'")
  end
end

local function hex_value(c)
  if c >= 48 and c <= 57 then return c - 48 end
  if c >= 97 and c <= 102 then return c - 87 end
  if c >= 65 and c <= 70 then return c - 55 end
  return -1
end

function Parser:read_escape()
  self:read()
  local c = self.current
  if c == 34 or c == 47 or c == 92 then
    self.buffer = self.buffer .. string.char(c)
  elseif c == 98 then
    self.buffer = self.buffer .. "\b"
  elseif c == 102 then
    self.buffer = self.buffer .. "\f"
  elseif c == 110 then
    self.buffer = self.buffer .. "\n"
  elseif c == 114 then
    self.buffer = self.buffer .. "\r"
  elseif c == 116 then
    self.buffer = self.buffer .. "\t"
  elseif c == 117 then
    local code = 0
    for _ = 1, 4 do
      self:read()
      local h = hex_value(self.current)
      if h < 0 then self:expected("hexadecimal digit") end
      code = code * 16 + h
    end
    self.buffer = self.buffer .. utf8.char(code)
  else
    self:expected("valid escape sequence")
  end
  self:read()
end

function Parser:read_string_internal()
  self:read()
  self:start_capture()
  while self.current ~= 34 do
    if self.current == 92 then
      self:pause_capture()
      self:read_escape()
      self:start_capture()
    elseif self.current < 32 then
      self:expected("valid string character")
    else
      self:read()
    end
  end
  local s = self:end_capture()
  self:read()
  return s
end

function Parser:read_name()
  if self.current ~= 34 then self:expected("name") end
  return self:read_string_internal()
end

function Parser:read_fraction()
  if not self:read_char(46) then return false end
  if not self:read_digit() then self:expected("digit") end
  while self:read_digit() do end
  return true
end

function Parser:read_exponent()
  if not self:read_char(101) and not self:read_char(69) then return false end
  if not self:read_char(43) then self:read_char(45) end
  if not self:read_digit() then self:expected("digit") end
  while self:read_digit() do end
  return true
end

function Parser:read_number()
  self:start_capture()
  self:read_char(45)
  local first = self.current
  if not self:read_digit() then self:expected("digit") end
  if first ~= 48 then
    while self:read_digit() do end
  end
  self:read_fraction()
  self:read_exponent()
  return setmetatable({text = self:end_capture()}, JsonNumber)
end

function Parser:read_array()
  self:read()
  local arr = setmetatable({values = {}}, JsonArray)
  self:skip_white_space()
  if self:read_char(93) then return arr end
  local values = arr.values
  while true do
    self:skip_white_space()
    values[#values + 1] = self:read_value()
    self:skip_white_space()
    if not self:read_char(44) then break end
  end
  self:expect(93, "',' or ']'")
  return arr
end

function Parser:read_object()
  self:read()
  local obj = new_object()
  self:skip_white_space()
  if self:read_char(125) then return obj end
  while true do
    self:skip_white_space()
    local name = self:read_name()
    self:skip_white_space()
    self:expect(58, "':'")
    self:skip_white_space()
    obj:add(name, self:read_value())
    self:skip_white_space()
    if not self:read_char(44) then break end
  end
  self:expect(125, "',' or '}'")
  return obj
end

function Parser:read_value()
  local c = self.current
  if c == 110 then
    self:read_required("null")
    return NULL
  end
  if c == 116 then
    self:read_required("true")
    return true
  end
  if c == 102 then
    self:read_required("false")
    return false
  end
  if c == 34 then return self:read_string_internal() end
  if c == 91 then return self:read_array() end
  if c == 123 then return self:read_object() end
  if c == 45 or self:is_digit() then return self:read_number() end
  self:expected("value")
end

local function parse(text)
  local p = new_parser(text)
  p:read()
  p:skip_white_space()
  local result = p:read_value()
  p:skip_white_space()
  if p.current >= 0 then error("Unexpected character at " .. (p.index - 1)) end
  return result
end

-- the verification: an object with a head and 156 operations
local function operation_count(v)
  if getmetatable(v) ~= JsonObject or not v:has("head") or not v:has("operations") then return -1 end
  local ops = v:get("operations")
  if getmetatable(ops) ~= JsonArray then return -1 end
  return #ops.values
end

local function document()
  local parts = {}
  parts[#parts + 1] = "{\"head\": {\"name\": \"awfy \\\"json\\\" input\", \"version\": 3, \"tags\": [\"a\\u00e9\", \"b\\n\\t\"], \"empty\": {}, \"none\": []},\n \"operations\": ["
  for i = 0, 155 do
    local sep = ","
    if i == 155 then sep = "" end
    parts[#parts + 1] = "\n  {\"op\": \"set\", \"id\": " .. i .. ", \"path\": \"/items/" .. (i * 7 % 31) .. "\", \"value\": -" .. i .. ".25e+" .. (i % 4) .. ", \"ok\": true, \"skip\": false, \"note\": null, \"list\": [0, 1.5, -2, \"x\\/y\"]}" .. sep
  end
  parts[#parts + 1] = "\n ]\n}\n"
  return table.concat(parts)
end

-- the count can be given as the first argument (tests run 1)
local iterations = tonumber(arg[1]) or 100
local text = document()
local ok = true
local result = 0
for _ = 1, iterations do
  local v = parse(text)
  result = operation_count(v)
  if result ~= 156 then ok = false end
end
print("Json " .. iterations .. " " .. #text .. " " .. result .. " " .. tostring(ok))
