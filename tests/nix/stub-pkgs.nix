# A tiny stand-in for nixpkgs' `pkgs`, enough to evaluate nix/module.nix with nothing but
# nixpkgs' lib (no full nixpkgs, no binary cache, Nix 2.8). Shapes follow nixpkgs:
# - formats.json's `type` is the "JSON value" type of pkgs/pkgs-lib/formats.nix; `generate` writes
#   the JSON with builtins.toFile (nixpkgs pretty-prints it with jq inside a derivation);
# - runCommand and writeShellScriptBin return real but never-built derivations (builder /bin/sh)
#   with their passthru, and the build script as `buildCommand`, so the tests can run that
#   script against the real binary.
# The package is `{ type = "derivation"; outPath = binDir; }`, so "${cfg.package}/bin/openclaw"
# renders as "<binDir>/bin/openclaw", which the tests rewrite to target/debug.
{
  lib,
  binDir ? "/opt/openclaw",
}:

let
  # A real derivation (instantiated, so `nix flake check --no-build` accepts it), never built.
  unbuilt =
    name: script: env: extra:
    derivation (
      env
      // {
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [
          "-c"
          script
        ];
      }
    )
    // extra;

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

  # A derivation, not builtins.toFile: the text may name other derivations' outputs.
  writeText = name: text: unbuilt name ''printf '%s' "$text" > "$out"'' { inherit text; } { };

  writeShellScriptBin =
    name: text:
    let
      # What nixpkgs writes to $out/bin/<name>.
      script = "#!/bin/sh\n" + text;
    in
    unbuilt name script { } { text = script; };

  runCommand =
    name: env: buildCommand:
    unbuilt name buildCommand { } ((env.passthru or { }) // { inherit buildCommand; });

  # Packages whose paths the tests rewrite: not derivations, only shaped like them.
  openclaw = {
    type = "derivation";
    name = "openclaw-stub";
    outPath = binDir;
  };
  # setpriv lives in /usr/bin on Debian, so the rendered CLI wrapper runs there too.
  util-linux = {
    type = "derivation";
    name = "util-linux-stub";
    outPath = "/usr";
  };

  callPackage = _: _: throw "stub pkgs: set services.openclaw.package explicitly";
}
