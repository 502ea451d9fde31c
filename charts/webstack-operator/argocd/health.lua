-- Argo CD health check of a WebStack (webstack.io/v1alpha1), for
-- resource.customizations.health.webstack.io_WebStack in argocd-cm.
--
-- Argo CD runs it in gopher-lua (Lua 5.1) with the object in the global `obj`. Healthy once
-- the operator has seen the current generation and reports it Ready; Degraded when the user
-- must change something (an invalid spec, a refused replacement, AWS credentials or a role
-- the namespace may not assume) or the stack failed; Progressing while the operator works,
-- retries or deletes. Argo CD itself reports Missing when the object does not exist.

local hs = {}

-- Reasons of a Ready=False condition that no retry can fix: the spec or the setup must change.
local user_must_fix = {
  InvalidSpec = true,
  ReplacementRefused = true,
  AwsConfiguration = true,
  RoleNotAllowed = true,
}

local function condition(status, wanted)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local metadata = obj.metadata or {}
local status = obj.status
local generation = metadata.generation

if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "deleting the stack's AWS resources"
  return hs
end

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator"
  return hs
end

if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status, "Ready")
local phase = status.phase

if phase == "Deleting" then
  hs.status = "Progressing"
  hs.message = text(ready, "deleting the stack's AWS resources")
  return hs
end

-- A Ready condition written for an older generation says nothing about this one.
if ready ~= nil and ready.observedGeneration ~= nil and generation ~= nil
    and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

if ready ~= nil and ready.status == "True" and phase == "Ready" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = text(ready, "the stack failed")
  return hs
end

if ready ~= nil and ready.status == "False" and user_must_fix[ready.reason] then
  hs.status = "Degraded"
  hs.message = text(ready, ready.reason)
  return hs
end

if phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = text(ready, "the stack is degraded")
  return hs
end

-- Pending, Provisioning, AWS errors being retried, a Secret not there yet.
hs.status = "Progressing"
if phase ~= nil then
  hs.message = text(ready, "phase " .. tostring(phase))
else
  hs.message = text(ready, "waiting for the operator")
end
return hs
