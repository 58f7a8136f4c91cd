# Evaluates flake.nix's outputs function with a stubbed nixpkgs input (stub-nixpkgs.nix), since
# the real nixpkgs cannot be fetched or evaluated on Nix 2.8 here. Checks the flake's shape:
# packages, the module (a function, as Nix 2.8 requires), every check (module-eval's assertions
# are forced), the VM test nodes (evaluated with the NixOS stubs) and the dev shell.
#   nix-instantiate --read-write-mode --eval --strict --json tests/nix/eval-flake.nix \
#     --argstr libPath "$NIXPKGS_LIB/lib"
{ libPath }:

let
  flake = import ../../flake.nix;
  nixpkgs = import ./stub-nixpkgs.nix { inherit libPath; };
  inherit (nixpkgs) lib;

  self = flake.outputs { inherit self nixpkgs; } // {
    outPath = toString ../..;
  };

  x86 = "x86_64-linux";
  package = self.packages.${x86}.openclaw;
  waMock = self.packages.${x86}.openclaw-wa-mock;
in
{
  inherit (flake) description;
  inputs = builtins.attrNames flake.inputs;
  packages = builtins.mapAttrs (_: builtins.attrNames) self.packages;
  package = {
    inherit (package.buildArgs) pname version buildFeatures;
    defaultIsOpenclaw = self.packages.${x86}.default.name == "openclaw";
  };
  waMock = {
    inherit (waMock.buildArgs) pname buildFeatures;
  };
  moduleIsFunction = builtins.isFunction self.nixosModules.default;
  checks = builtins.mapAttrs (_: builtins.attrNames) self.checks;
  # Forces module-eval's assertions (no failed assertion, no warning) on the example config.
  moduleEval = self.checks.${x86}.module-eval.name;
  badConfigCheck = self.checks.${x86}.bad-config.name;
  vmTests = builtins.mapAttrs (_: t: { inherit (t) name nodes; }) (
    lib.filterAttrs (n: _: lib.hasPrefix "vm-" n) self.checks.${x86}
  );
  devShells = builtins.attrNames self.devShells.${x86};
}
