# devShells.<system>.default: what scripts/test-all.sh and the Nix checks use.
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [
    cargo rustc clippy rustfmt rust-analyzer
    nix deadnix nixfmt-rfc-style
    python3 nodejs openssl cosign
    systemd debootstrap qemu
  ];
}
