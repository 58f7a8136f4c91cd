# Negative check: a configuration with an unknown WhatsApp key does not build. The checked config
# file (a dependency of the system, so of `nixos-rebuild`) must fail, and the build log must carry
# the compiler's file:line:col diagnostic naming the key.
{
  self,
  pkgs,
  nixosSystem,
}:

let
  evaluated = import ./eval-system.nix { inherit self pkgs nixosSystem; } [
    ../nix/examples/sokrates-dev.nix
    ./bad-whatsapp-key.nix
  ];
  failure = pkgs.testers.testBuildFailure evaluated.config.services.openclaw.configFile;
in
pkgs.runCommand "openclaw-bad-config-rejected" { inherit failure; } ''
  set -eu
  cat "$failure/testBuildFailure.log"
  test "$(cat "$failure/testBuildFailure.exit")" != 0
  grep -Eq '/nix/store/[^:]+-openclaw\.json:[0-9]+:[0-9]+: error: .*streamMode' "$failure/testBuildFailure.log"
  touch "$out"
''
