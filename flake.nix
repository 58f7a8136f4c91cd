{
  description = "openclaw: a NixOS-first personal AI assistant gateway, OpenClaw compatible, in Rust";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.openclaw;
        openclaw = pkgs.callPackage ./nix/package.nix { };
        # Test-only build with the mock WhatsApp server and the gateway's test-server hook.
        openclaw-wa-mock = pkgs.callPackage ./nix/package.nix { withWaMock = true; };
      });

      # A function, not a path: Nix 2.8's `flake check` rejects a path here.
      nixosModules.default = import ./nix/module.nix;
      nixosModules.openclaw = self.nixosModules.default;

      checks = forAllSystems (
        pkgs:
        {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        }
        // import ./vm-tests {
          inherit self pkgs;
          inherit (lib) nixosSystem;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.openclaw ];
          packages = with pkgs; [
            clippy
            rustfmt
            rust-analyzer
            deadnix
            jq
            python3
          ];
        };
      });
    };
}
