-- Argo CD health check for xdrive.io/XDrive.
-- argocd-cm key: resource.customizations.health.xdrive.io_XDrive
--
-- Argo CD runs custom checks with only the base, table, package and a safe os
-- library: no string library, so no string.* calls or s:method() below.
local hs = {}

local function findCondition(conditions, condType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == condType then
      return c
    end
  end
  return nil
end

local function messageOf(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return c.type .. " is " .. tostring(c.status)
end

-- Reasons of a Ready condition that is not True.
local degraded = {
  SnapshotFailed = true,
  SourceNotFound = true,
  ForeignSnapshot = true,
  AWSError = true,
}
local progressing = {
  Restoring = true,
  Snapshotting = true,
  DeletingVolume = true,
  Reconciling = true,
}

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the xdrive controller to report status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the xdrive controller to observe generation " .. tostring(generation)
  return hs
end

local ready = findCondition(status.conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = messageOf(ready)
  return hs
end

-- A failed snapshot is reported on SnapshotsHealthy; Ready may still show the
-- state of the volume (Snapshotting) while a new snapshot is due.
local snapshots = findCondition(status.conditions, "SnapshotsHealthy")
if snapshots ~= nil and snapshots.status == "False" and snapshots.reason == "SnapshotFailed" then
  hs.status = "Degraded"
  hs.message = messageOf(snapshots)
  return hs
end

if degraded[ready.reason] then
  hs.status = "Degraded"
elseif progressing[ready.reason] then
  hs.status = "Progressing"
else
  -- Any other reason is a transient state the controller is still working on.
  hs.status = "Progressing"
end
hs.message = messageOf(ready)
return hs
