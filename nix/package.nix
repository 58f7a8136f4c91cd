# The openclaw crate, built with nixpkgs' Rust tooling from Cargo.lock (no network in the build).
# `withWaMock` adds cargo feature `wa-mock`: the `openclaw-wa-mock` server binary and the
# gateway's OPENCLAW_WA_TEST_SERVER hook, for the VM tests only. Never deploy that build.
{
  lib,
  rustPlatform,
  withWaMock ? false,
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;
  root = ../.;

  # Everything cargo may need (src, schema, assets, tests, benches), nothing of the Nix side, so
  # that editing the module or the VM tests does not rebuild the package.
  notForCargo = [
    "target"
    "nix"
    "vm-tests"
    "flake.nix"
    "flake.lock"
    ".ci"
    "node_modules"
  ];
  src = lib.cleanSourceWith {
    src = lib.cleanSource root;
    filter =
      path: _type:
      let
        rel = lib.removePrefix (toString root + "/") (toString path);
      in
      !lib.any (p: rel == p || lib.hasPrefix "${p}/" rel) notForCargo;
  };
in
rustPlatform.buildRustPackage {
  pname = if withWaMock then "openclaw-wa-mock" else "openclaw";
  inherit (cargoToml.package) version;
  inherit src;

  cargoLock.lockFile = ../Cargo.lock;

  buildFeatures = lib.optional withWaMock "wa-mock";

  # The test suite needs its real peers (Nix, systemd-analyze, the npm Baileys client, a browser)
  # and runs in CI (scripts/test), not in the sandbox.
  doCheck = false;

  meta = {
    inherit (cargoToml.package) description;
    license = lib.licenses.mit;
    mainProgram = "openclaw";
    platforms = lib.platforms.linux;
  };
}
