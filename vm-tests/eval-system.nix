# A NixOS system with the openclaw module and the given modules, evaluated (not built) with the
# real nixpkgs: the stand-in for an appliance's `nixos-rebuild`.
{
  self,
  pkgs,
  nixosSystem,
}:
modules:
nixosSystem {
  modules = [
    self.nixosModules.default
    {
      nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system;
      services.openclaw.package = self.packages.${pkgs.stdenv.hostPlatform.system}.openclaw;
      # No bootloader or file systems: only the module's outputs are built.
      boot.isContainer = true;
      system.stateVersion = "26.05";
    }
  ]
  ++ modules;
}
