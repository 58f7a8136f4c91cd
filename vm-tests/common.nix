# The node every VM test starts from: the module from this flake, the gateway package, and the
# tools the test scripts call.
{ self, system }:
{ pkgs, ... }:
{
  imports = [ self.nixosModules.default ];

  services.openclaw = {
    enable = true;
    package = pkgs.lib.mkDefault self.packages.${system}.openclaw;
  };

  environment.systemPackages = [
    pkgs.curl
    pkgs.jq
    pkgs.iproute2
  ];

  virtualisation.memorySize = 1024;
}
