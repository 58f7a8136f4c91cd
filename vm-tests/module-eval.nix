# The sokrates-dev example evaluated as a real NixOS system: no failed assertion, no warning, the
# checked /etc/openclaw/openclaw.json (this builds it, so the real `openclaw config check` runs on
# it) equal to the committed golden file, and the key lines of the real unit file.
{
  self,
  pkgs,
  nixosSystem,
}:

let
  evaluated = import ./eval-system.nix { inherit self pkgs nixosSystem; } [
    ../nix/examples/sokrates-dev.nix
  ];
  inherit (evaluated) config;
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
in
assert pkgs.lib.assertMsg (failed == [ ]) "failed assertions: ${toString failed}";
assert pkgs.lib.assertMsg (config.warnings == [ ]) "warnings: ${toString config.warnings}";
pkgs.runCommand "openclaw-module-eval"
  {
    nativeBuildInputs = [ pkgs.jq ];
    etcFile = config.environment.etc."openclaw/openclaw.json".source;
    unitDir = config.systemd.units."openclaw.service".unit;
    golden = ../tests/golden/nix/openclaw.json;
  }
  ''
    set -eu
    # The stubbed evaluation in tests/nix/ renders the same JSON as real NixOS.
    diff <(jq -S . "$etcFile") <(jq -S . "$golden")

    unit="$unitDir/openclaw.service"
    cat "$unit"
    grep -qx 'Type=notify' "$unit"
    grep -qE '^ExecStartPre=/nix/store/[^ ]+/bin/openclaw config compile --config /etc/openclaw/openclaw.json --state-dir /var/lib/sokrates/periphery --out /run/openclaw/snapshot.json$' "$unit"
    grep -qE '^ExecStart=/nix/store/[^ ]+/bin/openclaw gateway run --snapshot /run/openclaw/snapshot.json$' "$unit"
    grep -qx 'LoadCredential=gateway-token:/run/keys/openclaw-gateway-token' "$unit"
    grep -qx 'LoadCredential=hooks-token:/run/keys/openclaw-hooks-token' "$unit"
    grep -qx 'StateDirectory=sokrates/periphery' "$unit"
    touch "$out"
  ''
