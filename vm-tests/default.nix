# The checks that need a real nixpkgs (and, for the vm-* ones, KVM): `nix flake check` on a NixOS
# host (or Nix >= 2.18 with the binary cache) builds them all. One at a time:
#   nix build .#checks.x86_64-linux.vm-boot -L
{
  self,
  pkgs,
  nixosSystem,
}:

let
  args = {
    inherit self;
    inherit (pkgs.stdenv.hostPlatform) system;
  };
  vmTest = file: pkgs.testers.runNixOSTest (import file args);
in
{
  module-eval = import ./module-eval.nix { inherit self pkgs nixosSystem; };
  bad-config = import ./bad-config.nix { inherit self pkgs nixosSystem; };
  vm-boot = vmTest ./boot.nix;
  vm-restart = vmTest ./restart.nix;
  vm-whatsapp = vmTest ./whatsapp.nix;
}
