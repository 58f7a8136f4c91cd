# The Python test scripts of the VM tests, evaluated with a stubbed flake `self` (no nixpkgs
# needed): tests/nix_vm_tests.rs checks that each one parses as Python.
#   nix-instantiate --eval --strict --json tests/nix/vm-scripts.nix
let
  system = "x86_64-linux";
  stubPackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  self = {
    packages.${system} = {
      openclaw = stubPackage "openclaw";
      openclaw-wa-mock = stubPackage "openclaw-wa-mock";
    };
    nixosModules.default = { };
  };
  spec = file: import file { inherit self system; };
in
builtins.listToAttrs (
  map
    (name: {
      inherit name;
      value = (spec (../../vm-tests + "/${name}.nix")).testScript;
    })
    [
      "boot"
      "restart"
      "whatsapp"
    ]
)
