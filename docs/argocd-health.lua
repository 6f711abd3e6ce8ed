-- Argo CD health check for dcs.migration.io/RedisMigration (design.md §3, "Argo CD" column).
-- Install as resource.customizations.health.dcs.migration.io_RedisMigration in argocd-cm (docs/gitops.md).
-- Argo CD runs it with the live object in `obj` and reads hs.status / hs.message.
local hs = { status = "Progressing", message = "Waiting for the operator to report a status" }

local function condition(conditions, type_)
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local metadata = obj.metadata or {}
local status = obj.status or {}
local conditions = status.conditions or {}
local ready = condition(conditions, "Ready")
local stalled = condition(conditions, "Stalled")
local reconciling = condition(conditions, "Reconciling")

-- Being deleted: the finalizer stops the remote task first (set spec.deletionPolicy: Orphan to skip that).
if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = message_of(ready, "Deleting: stopping the remote task before the resource goes")
  return hs
end

-- Paused by annotation: no remote calls; the conditions are left as they were.
local annotations = metadata.annotations or {}
if annotations["dcs.migration.io/paused"] == "true" or status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "Paused by the dcs.migration.io/paused annotation"
  return hs
end

-- A spec change the operator has not acted on yet: the conditions describe an older generation.
if metadata.generation ~= nil and status.observedGeneration ~= metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(metadata.generation)
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = message_of(ready ~= nil and ready.status == "False" and ready or stalled, "Stalled")
  return hs
end

-- Stopped on purpose (spec.stopped: true): not failing, not progressing.
if ready ~= nil and ready.reason == "StoppedByUser" then
  hs.status = "Suspended"
  hs.message = message_of(ready, "Stopped by spec.stopped")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Ready")
  return hs
end

if ready ~= nil then
  hs.status = "Progressing"
  hs.message = message_of(ready, "In progress")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.message = message_of(reconciling, "In progress")
end
return hs
