-- Argo CD health check for xdrive.io/Workstation.
-- argocd-cm key: resource.customizations.health.xdrive.io_Workstation
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
  NoCapacity = true,
  DriveNotFound = true,
  DriveInUse = true,
  VolumeMismatch = true,
  ContainersDown = true,
  AWSError = true,
  CrashConsistent = true,
  InvalidSpec = true,
  ClassNotFound = true,
  NoDefaultClass = true,
  NamespaceNotAllowed = true,
  ClassViolation = true,
  ForeignSnapshot = true,
  InvalidSchedule = true,
}
local progressing = {
  Launching = true,
  InstancePending = true,
  WaitingForDrive = true,
  Stopping = true,
  SSHUnreachable = true,
  Reconciling = true,
  NotMounted = true,
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

-- Stopped on purpose (spec.state: Stopped, interruptionPolicy: Stop after an
-- interruption, idle auto-stop, the class's monthly budget, or outside spec.schedule): nothing runs and nothing is wrong.
if ready.status ~= "True" and (ready.reason == "Stopped" or ready.reason == "IdleStopped" or ready.reason == "BudgetExceeded" or ready.reason == "ScheduledStop") then
  hs.status = "Suspended"
  hs.message = messageOf(ready)
  return hs
end

-- Between an interruption notice and the relaunch, the drive is snapshotted
-- and the Workstation comes back on another offering by itself.
local interrupted = findCondition(status.conditions, "Interrupted")
if interrupted ~= nil and interrupted.status == "True" then
  local spec = obj.spec or {}
  local why = tostring(interrupted.reason)
  hs.status = "Progressing"
  if spec.interruptionPolicy == "Stop" or spec.state == "Stopped" then
    hs.message = "Interrupted (" .. why .. "); the Workstation stops once its drive is snapshotted: " .. messageOf(interrupted)
  else
    hs.message = "Interrupted (" .. why .. "); the Workstation is relaunched once its drive is snapshotted: " .. messageOf(interrupted)
  end
  return hs
end

-- The instance could not carry a container's changes over (it kept the old
-- container), or Docker keeps data off the drive: it runs, but needs a person.
local preserved = findCondition(status.conditions, "ContainersPreserved")
if preserved ~= nil and preserved.status == "False" then
  hs.status = "Degraded"
  hs.message = messageOf(preserved)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = messageOf(ready)
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
