# A stubbed `nixpkgs` flake input: nixpkgs' lib (with a `nixosSystem` over the NixOS option stubs
# of this folder) and `legacyPackages.<system>` built from stub-pkgs.nix. Used by eval-flake.nix
# and, as a `path:` flake, by `nix flake check` in tests/nix_eval.rs.
{ libPath }:

let
  baseLib = import libPath;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  # A real derivation, instantiated (as `nix flake check --no-build` requires) but never built.
  fake =
    name: extra:
    derivation {
      inherit name;
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [
        "-c"
        "echo stub derivation, not buildable; exit 1"
      ];
    }
    // extra;

  # What NixOS declares beyond tests/nix/nixos-stubs.nix, for vm-tests/eval-system.nix and the
  # VM test nodes.
  extraNixosStubs = {
    options = {
      nixpkgs.hostPlatform = baseLib.mkOption { type = baseLib.types.raw; };
      boot.isContainer = baseLib.mkOption { type = baseLib.types.bool; };
      system.stateVersion = baseLib.mkOption { type = baseLib.types.str; };
      virtualisation.memorySize = baseLib.mkOption { type = baseLib.types.int; };
    };
  };

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
            nodes = builtins.mapAttrs (
              _: node: checkedNode (lib.nixosSystem { modules = [ node ]; })
            ) spec.nodes;
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
in
{
  inherit lib;
  legacyPackages = baseLib.genAttrs systems pkgsFor;
}
