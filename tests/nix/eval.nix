# Evaluates nix/module.nix with nixpkgs' lib and the NixOS option stubs, like NixOS would, and
# returns what the module renders. Used by tests/nix_eval.rs:
#
#   nix-instantiate --read-write-mode --eval --strict --json tests/nix/eval.nix \
#     --arg libPath "$NIXPKGS_LIB/lib" [--arg extraConfig '{ ... }']
#
# Failed assertions throw, as NixOS's top level does; warnings are returned (the test fails on any).
{
  libPath,
  binDir ? "/opt/openclaw",
  configuration ? ../../nix/examples/sokrates-dev.nix,
  extraConfig ? { },
}:

let
  lib = import libPath;
  pkgs = import ./stub-pkgs.nix { inherit lib binDir; };

  evaluated = lib.evalModules {
    modules = [
      ./nixos-stubs.nix
      ../../nix/module.nix
      configuration
      extraConfig
      { services.openclaw.package = lib.mkDefault pkgs.openclaw; }
    ];
    specialArgs = { inherit pkgs; };
  };
  inherit (evaluated) config;

  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  cfg = config.services.openclaw;
  etc = config.environment.etc."openclaw/openclaw.json";
  cli = lib.findFirst (p: p.name == "openclaw") null config.environment.systemPackages;

  rendered = {
    etcText = builtins.readFile (cfg.configFile.unchecked or cfg.configFile);
    etcMode = etc.mode;
    checkScript = cfg.configFile.buildCommand or null;
    unitText = config.systemd.services.openclaw.unitText;
    cliWrapper = cli.text;
    firewall = config.networking.firewall.allowedTCPPorts;
    inherit (config) warnings;
    # What the NixOS manual renders for our options (forces every default or defaultText).
    optionDocs = map (o: {
      inherit (o) name type;
      described = o.description or null != null && o.description != "";
      default = o.default.text or null;
    }) (
      lib.filter (
        o: lib.hasPrefix "services.openclaw." o.name && !lib.hasInfix "._module." o.name
      ) (lib.optionAttrSetToDocList evaluated.options)
    );
  };
in
if failed != [ ] then
  throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
else
  rendered
