# A tiny stand-in for nixpkgs' `pkgs`, enough to evaluate nix/module.nix with nothing but
# nixpkgs' lib (no full nixpkgs, no binary cache, Nix 2.8). Shapes follow nixpkgs:
# - formats.json's `type` is the "JSON value" type of pkgs/pkgs-lib/formats.nix; `generate` writes
#   the JSON with builtins.toFile (nixpkgs pretty-prints it with jq inside a derivation);
# - writeText / writeShellScriptBin return store files with the same text;
# - runCommand cannot build here: it returns a derivation-like attrset with a deterministic fake
#   out path, its passthru, and the build script as `buildCommand`, so the tests can run that
#   script against the real binary.
# The package is `{ type = "derivation"; outPath = binDir; }`, so "${cfg.package}/bin/openclaw"
# renders as "<binDir>/bin/openclaw", which the tests rewrite to target/debug.
{
  lib,
  binDir ? "/opt/openclaw",
}:

let
  fakeStorePath =
    name: seed:
    "${builtins.storeDir}/${
      builtins.substring 0 32 (builtins.hashString "sha256" (builtins.unsafeDiscardStringContext seed))
    }-${name}";

  fakeDerivation =
    name: outPath: extra:
    extra
    // {
      type = "derivation";
      inherit name outPath;
      drvPath = outPath + ".drv";
      outputName = "out";
      meta = { };
    };

  jsonValue =
    let
      valueType =
        lib.types.nullOr (
          lib.types.oneOf [
            lib.types.bool
            lib.types.int
            lib.types.float
            lib.types.str
            lib.types.path
            (lib.types.attrsOf valueType)
            (lib.types.listOf valueType)
          ]
        )
        // {
          description = "JSON value";
        };
    in
    valueType;
in
{
  inherit lib;

  formats.json = _: {
    type = jsonValue;
    generate = name: value: builtins.toFile name (builtins.toJSON value);
  };

  writeText = name: text: builtins.toFile name text;

  writeShellScriptBin =
    name: text:
    fakeDerivation name (fakeStorePath name text) {
      # What nixpkgs writes to $out/bin/<name>.
      text = "#!/bin/sh\n" + text;
    };

  runCommand =
    name: env: buildCommand:
    fakeDerivation name (fakeStorePath name buildCommand) (
      (env.passthru or { })
      // {
        inherit buildCommand;
      }
    );

  openclaw = fakeDerivation "openclaw-stub" binDir { };

  # setpriv lives in /usr/bin on Debian, so the rendered CLI wrapper runs there too.
  util-linux = fakeDerivation "util-linux-stub" "/usr" { };

  callPackage = _: _: throw "stub pkgs: set services.openclaw.package explicitly";
}
