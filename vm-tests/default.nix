# Every NixOS VM test in this folder, one scenario per file, collected automatically: a file
# `NAME.nix` is a function of `scenarioArgs` (the flake's `self`, `pkgs`, `lib`) returning a
# runNixOSTest test whose `name` is NAME; it becomes `checks.<system>.NAME`. Helpers live in
# ./common/ (not collected).
{ lib, runNixOSTest, scenarioArgs }:
let
  files = lib.filter (f: lib.hasSuffix ".nix" f && f != "default.nix") (lib.attrNames (builtins.readDir ./.));
in
lib.listToAttrs (map (file: {
  name = lib.removeSuffix ".nix" file;
  value = runNixOSTest (import (./. + "/${file}") scenarioArgs);
}) files)
