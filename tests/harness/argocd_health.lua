-- Runs an Argo CD health check script the way Argo CD does (Lua 5.1, `obj` global), against
-- one object, and prints what it returned: the status on the first line, the message after.
--
-- Usage: lua5.1 argocd_health.lua HEALTH_SCRIPT OBJECT_CHUNK
-- OBJECT_CHUNK is a Lua file that returns the object as a table (the tests write it from JSON).
--
-- The script sees only what Argo CD's interpreter opens for health checks (the base functions,
-- string, table and math), so a script that reaches for io or os fails here as it would there.

local script_path, object_path = arg[1], arg[2]
if script_path == nil or object_path == nil then
  io.stderr:write("usage: lua5.1 argocd_health.lua HEALTH_SCRIPT OBJECT_CHUNK\n")
  os.exit(2)
end

local object_chunk, err = loadfile(object_path)
if object_chunk == nil then
  io.stderr:write("cannot load the object: " .. tostring(err) .. "\n")
  os.exit(2)
end
local object = object_chunk()

local script, serr = loadfile(script_path)
if script == nil then
  io.stderr:write("cannot load the health script: " .. tostring(serr) .. "\n")
  os.exit(2)
end

local env = {
  obj = object,
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  string = string, table = table, math = math,
}
setfenv(script, env)

local ok, hs = pcall(script)
if not ok then
  io.stderr:write("the health script failed: " .. tostring(hs) .. "\n")
  os.exit(1)
end
if type(hs) ~= "table" then
  io.stderr:write("the health script returned " .. type(hs) .. ", not a table\n")
  os.exit(1)
end
local known = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }
if type(hs.status) ~= "string" or not known[hs.status] then
  io.stderr:write("the health script returned the status " .. tostring(hs.status) .. "\n")
  os.exit(1)
end
if type(hs.message) ~= "string" then
  io.stderr:write("the health script returned the message " .. tostring(hs.message) .. "\n")
  os.exit(1)
end
io.write(hs.status, "\n", hs.message)
