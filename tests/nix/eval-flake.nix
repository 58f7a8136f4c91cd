# Evaluates flake.nix's outputs function with a stubbed nixpkgs input (nixpkgs' lib plus the
# stubs in this folder), since the real nixpkgs cannot be fetched or evaluated on Nix 2.8 here.
# Checks the flake's shape: packages, the module (a function, as Nix 2.8 requires), every check
# (module-eval's assertions are forced), the VM test specs and the dev shell.
#   nix-instantiate --read-write-mode --eval --strict --json tests/nix/eval-flake.nix \
#     --arg libPath "$NIXPKGS_LIB/lib"
{ libPath }:

let
  baseLib = import libPath;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  flake = import ../../flake.nix;

  fake =
    name: extra:
    extra
    // {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
    };

  # What NixOS declares beyond tests/nix/nixos-stubs.nix and vm-tests/eval-system.nix sets.
  extraNixosStubs = {
    options = {
      nixpkgs.hostPlatform = baseLib.mkOption { type = baseLib.types.raw; };
      boot.isContainer = baseLib.mkOption { type = baseLib.types.bool; };
      virtualisation.memorySize = baseLib.mkOption { type = baseLib.types.int; };
      system.stateVersion = baseLib.mkOption { type = baseLib.types.str; };
    };
  };

  pkgsFor =
    system:
    let
      stub = import ./stub-pkgs.nix { lib = baseLib; };
    in
    stub
    // {
      stdenv.hostPlatform.system = system;
      # Calls nix/package.nix for real, with a buildRustPackage that records its arguments.
      callPackage =
        file: args:
        import file (
          {
            lib = baseLib;
            rustPlatform.buildRustPackage = attrs: fake attrs.pname { buildArgs = attrs; };
          }
          // args
        );
      testers = {
        # Evaluates each node with the stubbed NixOS options: the openclaw unit it would run.
        runNixOSTest =
          spec:
          fake "vm-test-${spec.name}" {
            inherit (spec) testScript;
            nodes = builtins.mapAttrs (_: node: checkedNode (lib.nixosSystem { modules = [ node ]; })) spec.nodes;
          };
        testBuildFailure = drv: fake "build-failure" { failing = drv; };
      };
      mkShell = attrs: fake "shell" { inherit (attrs) packages; };
    }
    // baseLib.genAttrs [
      "jq"
      "clippy"
      "rustfmt"
      "rust-analyzer"
      "deadnix"
      "python3"
      "curl"
      "iproute2"
    ] (name: fake name { });

  checkedNode =
    evaluated:
    let
      inherit (evaluated) config;
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
    in
    if failed != [ ] then
      throw "failed assertions: ${toString failed}"
    else
      {
        inherit (config) warnings;
        units = builtins.attrNames config.systemd.services;
        openclawUnit = config.systemd.services.openclaw.unitText;
      };

  lib = baseLib // {
    nixosSystem =
      { modules }:
      baseLib.evalModules {
        modules = [
          ./nixos-stubs.nix
          extraNixosStubs
        ]
        ++ modules;
        specialArgs.pkgs = pkgsFor "x86_64-linux";
      };
  };

  nixpkgs = {
    inherit lib;
    legacyPackages = baseLib.genAttrs systems pkgsFor;
  };

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
    cargoLock = toString package.buildArgs.cargoLock.lockFile;
    defaultIsOpenclaw = self.packages.${x86}.default.name == "openclaw";
  };
  waMock = {
    inherit (waMock.buildArgs) pname buildFeatures;
  };
  moduleIsFunction = builtins.isFunction self.nixosModules.default;
  checks = builtins.mapAttrs (_: builtins.attrNames) self.checks;
  # Forces module-eval's assertions (no failed assertion, no warning) on the example config.
  moduleEval = self.checks.${x86}.module-eval.name;
  # The derivation that must fail to build in the bad-config check: its build script.
  badConfigCheck = self.checks.${x86}.bad-config.name;
  vmTests = builtins.mapAttrs (_: t: { inherit (t) name nodes; }) (
    baseLib.filterAttrs (n: _: baseLib.hasPrefix "vm-" n) self.checks.${x86}
  );
  devShells = builtins.attrNames self.devShells.${x86};
}
