# The systemd sandbox every paramant network service runs in: a `serviceConfig` attrset, builtins
# only, imported by the NixOS modules and rendered to plain unit files by
# scripts/render-units.sh. A unit adds what is specific to it (ports, IP allow list, state,
# credentials); nothing here is specific to one service.
#
# Scored by `systemd-analyze security --offline=true`; the README lists each unit's exposure.
{
  # A fresh unprivileged user per unit; its files live only in StateDirectory.
  DynamicUser = true;
  PrivateUsers = true;
  NoNewPrivileges = true;
  # No capability at all: the services bind ports above 1024 and own every file they touch.
  CapabilityBoundingSet = "";
  AmbientCapabilities = "";
  SecureBits = "noroot-locked";

  # File system: read-only everywhere except the unit's own state directory.
  ProtectSystem = "strict";
  ProtectHome = true;
  PrivateTmp = true;
  PrivateMounts = true;
  PrivateDevices = true;
  DevicePolicy = "closed";
  ProtectProc = "invisible";
  ProcSubset = "pid";
  UMask = "0077";

  # Kernel and host state the services never change.
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  RemoveIPC = true;
  KeyringMode = "private";

  # IPv4/IPv6 for HTTP, AF_UNIX for sd_notify; no netlink, no packet sockets.
  RestrictAddressFamilies = "AF_INET AF_INET6 AF_UNIX";

  # System calls: the usual service set minus privileged and resource-changing calls, plus the
  # three landlock calls, which systemd 252's @system-service does not contain (without them
  # landlock silently reports "not enforced").
  SystemCallArchitectures = "native";
  SystemCallFilter = [
    "@system-service"
    "~@privileged @resources"
    "landlock_create_ruleset landlock_add_rule landlock_restrict_self"
  ];
  SystemCallErrorNumber = "EPERM";
}
