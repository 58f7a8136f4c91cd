# The few NixOS option declarations that nix/module.nix writes to, so that it evaluates with
# lib.evalModules and nothing but nixpkgs' lib. Option shapes follow NixOS (nixos/modules/misc/
# assertions.nix, system/etc/etc.nix, config/users-groups.nix, services/networking/firewall.nix,
# system/boot/systemd.nix and nixos/lib/systemd-unit-options.nix / systemd-lib.nix); the read-only
# `unitText` renders a service the way systemd-lib's serviceToUnit does.
#
# Not modelled: /etc activation, the default unit PATH (coreutils, findutils, ...), global
# environment (TZDIR, LOCALE_ARCHIVE), script/preStart, NixOS's own unit checks, other modules.
{ lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  # systemd-unit-options' unitOption: lists concatenate, other values must agree.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: builtins.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };

  unitList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  renderValue =
    v:
    if v == true then
      "true"
    else if v == false then
      "false"
    else
      toString v;

  renderSection =
    attrs:
    lib.concatStrings (
      lib.concatLists (
        lib.mapAttrsToList (key: value: map (v: "${key}=${renderValue v}\n") (lib.toList value)) attrs
      )
    );

  serviceModule =
    {
      name,
      config,
      options,
      ...
    }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        description = mkOption {
          type = types.str;
          default = "";
        };
        documentation = unitList;
        wantedBy = unitList;
        requiredBy = unitList;
        requires = unitList;
        wants = unitList;
        after = unitList;
        before = unitList;
        bindsTo = unitList;
        partOf = unitList;
        conflicts = unitList;
        restartTriggers = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        startLimitBurst = mkOption { type = types.int; };
        startLimitIntervalSec = mkOption { type = types.int; };
        environment = mkOption {
          type =
            with types;
            attrsOf (
              nullOr (oneOf [
                str
                path
                package
              ])
            );
          default = { };
        };
        path = mkOption {
          type = with types; listOf (oneOf [ package str ]);
          default = [ ];
        };
        # NixOS turns it into a store script for ExecStart; not rendered here.
        script = mkOption {
          type = types.lines;
          default = "";
        };
        serviceConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
        unitConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
        unitText = mkOption {
          type = types.str;
          readOnly = true;
          description = "The unit file text, rendered like nixos/lib/systemd-lib.nix does.";
        };
      };

      config = {
        environment.PATH = lib.mkIf (config.path != [ ]) (lib.makeBinPath config.path);

        unitConfig =
          let
            joined = key: list: lib.optionalAttrs (list != [ ]) { ${key} = toString list; };
          in
          joined "Requires" config.requires
          // joined "Wants" config.wants
          // joined "After" config.after
          // joined "Before" config.before
          // joined "BindsTo" config.bindsTo
          // joined "PartOf" config.partOf
          // joined "Conflicts" config.conflicts
          // lib.optionalAttrs (config.restartTriggers != [ ]) {
            X-Restart-Triggers = "${pkgs.writeText "X-Restart-Triggers-${name}" (
              toString (map (x: "${x}") (lib.flatten config.restartTriggers))
            )}";
          }
          // lib.optionalAttrs (config.description != "") { Description = config.description; }
          // joined "Documentation" config.documentation
          // lib.optionalAttrs options.startLimitIntervalSec.isDefined {
            StartLimitIntervalSec = toString config.startLimitIntervalSec;
          }
          // lib.optionalAttrs options.startLimitBurst.isDefined {
            StartLimitBurst = toString config.startLimitBurst;
          };

        unitText =
          "[Unit]\n"
          + renderSection config.unitConfig
          + "\n[Service]\n"
          + lib.concatMapStrings (
            n:
            lib.optionalString (
              config.environment.${n} != null
            ) "Environment=${builtins.toJSON "${n}=${config.environment.${n}}"}\n"
          ) (lib.attrNames config.environment)
          + renderSection config.serviceConfig
          + lib.optionalString (config.wantedBy != [ ]) (
            "\n[Install]\nWantedBy=${lib.concatStringsSep " " config.wantedBy}\n"
          );
      };
    };

  etcModule =
    {
      name,
      config,
      options,
      ...
    }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        target = mkOption { type = types.str; };
        text = mkOption {
          type = types.nullOr types.lines;
          default = null;
        };
        source = mkOption { type = types.path; };
        mode = mkOption {
          type = types.str;
          default = "symlink";
        };
        uid = mkOption {
          type = types.int;
          default = 0;
        };
        gid = mkOption {
          type = types.int;
          default = 0;
        };
        user = mkOption {
          type = types.str;
          default = "+${toString config.uid}";
        };
        group = mkOption {
          type = types.str;
          default = "+${toString config.gid}";
        };
      };
      config = {
        target = lib.mkDefault name;
        source = lib.mkIf (config.text != null) (
          lib.mkDerivedConfig options.text (
            pkgs.writeText "etc-${lib.replaceStrings [ "/" ] [ "-" ] name}"
          )
        );
      };
    };

  userModule = _: {
    options = {
      isSystemUser = mkOption {
        type = types.bool;
        default = false;
      };
      group = mkOption {
        type = types.str;
        default = "";
      };
      home = mkOption {
        type = types.path;
        default = "/var/empty";
      };
      description = mkOption {
        type = types.str;
        default = "";
      };
    };
  };

  groupModule = _: {
    options.gid = mkOption {
      type = types.nullOr types.int;
      default = null;
    };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
    };
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule etcModule);
      default = { };
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    users.users = mkOption {
      type = types.attrsOf (types.submodule userModule);
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf (types.submodule groupModule);
      default = { };
    };
    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };
    systemd.services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = { };
    };
  };
}
