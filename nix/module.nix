# NixOS module for the openclaw gateway: `services.openclaw`.
#
# The declarative config is rendered to /etc/openclaw/openclaw.json and checked at build time by the
# real `openclaw config check --no-state`, so a bad key fails `nixos-rebuild`, never the running
# appliance. At start, ExecStartPre compiles the system file and the state dir into a snapshot in
# the runtime dir, and the gateway runs from that snapshot.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkDefault
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    optional
    types
    ;

  cfg = config.services.openclaw;

  jsonFormat = pkgs.formats.json { };

  etcName = "openclaw/openclaw.json";

  # The gateway.bind and gateway.auth.mode values this gateway accepts (its config compiler
  # refuses upstream's bind "tailnet" and auth modes "password" and "trusted-proxy").
  supportedBinds = [
    "loopback"
    "lan"
    "auto"
    "custom"
  ];
  supportedAuthModes = [
    "none"
    "token"
  ];
  configPath = "/etc/${etcName}";
  unitName = "openclaw";
  credentialsDir = "/run/credentials/${unitName}.service";
  runtimeDir = "/run/${unitName}";
  snapshotPath = "${runtimeDir}/snapshot.json";
  exe = "${cfg.package}/bin/openclaw";

  # ---------------------------------------------------------------- secrets in settings

  # Setting names whose string values are secrets. `*File` keys, SecretRef objects and whole-value
  # `${ENV_VAR}` references are fine: they name a secret without containing it.
  secretNames = [
    "token"
    "password"
    "secret"
    "apikey"
    "privatekey"
  ];
  isSecretName =
    name:
    let
      n = lib.toLower name;
    in
    lib.any (s: n == s || lib.hasSuffix s n) secretNames;
  isEnvReference = v: builtins.match "[$][{][A-Z_][A-Z0-9_]*[}]" v != null;

  # JSON paths (dotted) of secret-looking string values anywhere in a settings value.
  findSecrets =
    prefix: value:
    if builtins.isAttrs value then
      lib.concatLists (
        lib.mapAttrsToList (
          name: v:
          let
            path = if prefix == "" then name else "${prefix}.${name}";
          in
          if isSecretName name && builtins.isString v && v != "" && !isEnvReference v then
            [ path ]
          else
            findSecrets path v
        ) value
      )
    else if builtins.isList value then
      lib.concatLists (lib.imap0 (i: findSecrets "${prefix}[${toString i}]") value)
    else
      [ ];

  # ---------------------------------------------------------------- the rendered config

  # Module-owned keys: where the gateway finds its credentials at run time.
  credentialSettings = lib.recursiveUpdate (lib.optionalAttrs (cfg.tokenFile != null) {
    gateway.auth.tokenFile = "${credentialsDir}/gateway-token";
  }) (lib.optionalAttrs (cfg.hooksTokenFile != null) {
    hooks.tokenFile = "${credentialsDir}/hooks-token";
  });

  # Unset typed options are null; they are left out of the file (the compiler applies defaults).
  renderedSettings = lib.filterAttrsRecursive (_: v: v != null) cfg.settings;

  rawConfigFile = jsonFormat.generate "openclaw.json" renderedSettings;

  checkedConfigFile =
    if cfg.checkConfig == false then
      rawConfigFile
    else
      pkgs.runCommand "openclaw.json-checked"
        {
          preferLocalBuild = true;
          nativeBuildInputs = [ cfg.package ];
          passthru.unchecked = rawConfigFile;
        }
        (
          if cfg.checkConfig == "syntax-only" then
            ''
              # syntax-only: fail on unreadable input (exit 2); print other diagnostics, keep going.
              rc=0
              openclaw config check --no-state --config ${rawConfigFile} || rc=$?
              if [ "$rc" -ge 2 ]; then
                echo "openclaw: ${configPath} cannot be read (exit $rc)" >&2
                exit 1
              fi
              ln -s ${rawConfigFile} $out
            ''
          else
            ''
              if ! openclaw config check --no-state --config ${rawConfigFile}; then
                echo "openclaw: services.openclaw.settings is not a valid ${configPath} (see above)" >&2
                exit 1
              fi
              ln -s ${rawConfigFile} $out
            ''
        );

  # The CLI on the box: same config and state dir as the service, as the service user when root.
  cliWrapper = pkgs.writeShellScriptBin "openclaw" ''
    export OPENCLAW_CONFIG_PATH=${configPath}
    export OPENCLAW_STATE_DIR=${cfg.stateDir}
    export OPENCLAW_NIX_MODE=1
    ${lib.optionalString (cfg.tokenFile != null) ''
      if [ -z "''${OPENCLAW_GATEWAY_TOKEN:-}" ] && [ -r ${lib.escapeShellArg cfg.tokenFile} ]; then
        OPENCLAW_GATEWAY_TOKEN="$(cat ${lib.escapeShellArg cfg.tokenFile})"
        export OPENCLAW_GATEWAY_TOKEN
      fi
    ''}
    if [ "$(id -u)" = 0 ] && [ -z "''${OPENCLAW_CLI_AS_ROOT:-}" ]; then
      # Files written under the state dir must stay readable by the gateway.
      export HOME=${cfg.stateDir}
      exec ${pkgs.util-linux}/bin/setpriv --reuid=${cfg.user} --regid=${cfg.group} --init-groups \
        ${exe} "$@"
    fi
    exec ${exe} "$@"
  '';

  # Every module that writes /etc/openclaw/openclaw.json, this one included.
  etcWriters = lib.filter (
    d: builtins.isAttrs d.value && d.value ? ${etcName}
  ) options.environment.etc.definitionsWithLocations;
  otherGatewayModule = lib.attrByPath [ "services" "openclaw-gateway" "enable" ] false config;
in
{
  options.services.openclaw = {
    enable = mkEnableOption "the openclaw gateway, a personal AI assistant gateway (OpenClaw compatible)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The openclaw package; its `bin/openclaw` runs the gateway and the CLI.";
    };

    settings = mkOption {
      default = { };
      description = ''
        The system layer of the OpenClaw configuration, written to `${configPath}`. Keys follow
        upstream OpenClaw (`gateway`, `hooks`, `channels`, `agents`, `models`, ...); unknown keys
        are errors, checked at build time (see `checkConfig`). The mutable state-layer
        `openclaw.json` in `stateDir` is merged under it at service start; this file wins, and
        channels are defined here only. Options set to `null` are left out.

        Do not put secrets here: everything in this attribute set lands in the world-readable Nix
        store. Use `tokenFile`, `hooksTokenFile`, or `''${ENV_VAR}` references with
        `environmentFiles`.
      '';
      example = literalExpression ''
        {
          gateway.port = 18789;
          channels.whatsapp = {
            dmPolicy = "allowlist";
            allowFrom = [ "+15551234567" ];
          };
        }
      '';
      type = types.submodule {
        freeformType = jsonFormat.type;
        options = {
          gateway = {
            port = mkOption {
              type = types.port;
              default = 18789;
              description = "TCP port of the gateway (HTTP, /health, hooks and the control WebSocket).";
            };
            # A string checked by an assertion (not an enum): upstream's values this gateway
            # refuses get a message that says so, at build time.
            bind = mkOption {
              type = types.str;
              default = "loopback";
              description = ''
                Where the gateway listens: one of ${lib.concatMapStringsSep ", " (v: "`${v}`") supportedBinds}.
                `loopback` (127.0.0.1) is the appliance default: reach the Control UI through an
                SSH tunnel. Any other bind needs a token (`tokenFile`) and usually `openFirewall`.
                Upstream's `tailnet` is not supported by this gateway.
              '';
            };
            auth.mode = mkOption {
              type = types.nullOr types.str;
              default = null;
              description = ''
                How clients authenticate to the gateway: ${lib.concatMapStringsSep " or " (v: "`${v}`") supportedAuthModes};
                `token` when `tokenFile` is set. Upstream's `password` and `trusted-proxy` are not
                supported by this gateway.
              '';
            };
          };
          channels.whatsapp = mkOption {
            default = null;
            description = ''
              The WhatsApp (WhatsApp Web, multi-device) channel. Leave `null` to run without
              WhatsApp; any definition here enables it. Link it once with
              `openclaw channels login --channel whatsapp` on the box.
            '';
            type = types.nullOr (
              types.submodule {
                freeformType = jsonFormat.type;
                options = {
                  dmPolicy = mkOption {
                    type = types.nullOr (
                      types.enum [
                        "pairing"
                        "allowlist"
                        "open"
                        "disabled"
                      ]
                    );
                    default = null;
                    description = ''
                      Who may message the assistant directly: `pairing` (unknown senders get a
                      pairing code; the default), `allowlist` (only `allowFrom`), `open` (anyone;
                      needs `"*"` in `allowFrom`) or `disabled`.
                    '';
                  };
                  allowFrom = mkOption {
                    type = types.nullOr (types.listOf types.str);
                    default = null;
                    example = [ "+15551234567" ];
                    description = "Senders allowed to DM the assistant, as E.164 numbers (`+` and digits).";
                  };
                };
              }
            );
          };
        };
      };
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/sokrates/periphery";
      description = ''
        The mutable state: the state-layer `openclaw.json`, credentials (WhatsApp session,
        generated gateway token) and paired devices. Must be below `/var/lib/`; systemd creates it
        (StateDirectory) owned by `user`, mode 0700.
      '';
    };

    tokenFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/keys/openclaw-gateway-token";
      description = ''
        File holding the gateway token (clients send it to the Control UI, the control WebSocket
        and the CLI). Passed to the service with systemd `LoadCredential`, so it may be readable
        by root only. Do NOT use a file from the Nix store: give a string path, not a Nix path
        literal. When `null`, the gateway generates a token once and keeps it in `stateDir`.
      '';
    };

    hooksTokenFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/keys/openclaw-hooks-token";
      description = ''
        File holding the webhook token (`/hooks/...`, header `x-openclaw-token` or
        `Authorization: Bearer`). Setting it enables hooks. Passed with `LoadCredential`, like
        `tokenFile`; never a file in the Nix store.
      '';
    };

    environmentFiles = mkOption {
      type = types.listOf types.path;
      default = [ ];
      description = ''
        systemd `EnvironmentFile`s for the service, e.g. provider API keys referenced from
        `settings` as `''${OPENAI_API_KEY}`. Keep them outside the Nix store.
      '';
    };

    checkConfig = mkOption {
      type = types.either types.bool (types.enum [ "syntax-only" ]);
      default = true;
      example = "syntax-only";
      description = ''
        Check the rendered `${configPath}` at build time with `openclaw config check
        --no-state`: an unknown key or a bad value fails the build with the compiler's
        `file:line:col: error:` message. `"syntax-only"` fails only on unreadable input and prints
        schema errors as build output; `false` skips the check (the service then fails at start
        instead).
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `settings.gateway.port` in the firewall. Useless with the default loopback bind.";
    };

    user = mkOption {
      type = types.str;
      default = "openclaw";
      description = ''
        User the gateway runs as. The `openclaw` command on the box switches to it when run as
        root, so files it writes under `stateDir` stay readable by the service.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "openclaw";
      description = "Group the gateway runs as.";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      internal = true;
      description = "The rendered and (per `checkConfig`) checked `${configPath}`; for tests.";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      services.openclaw.settings = credentialSettings;
    }
    (mkIf (cfg.tokenFile != null) { services.openclaw.settings.gateway.auth.mode = mkDefault "token"; })
    (mkIf (cfg.hooksTokenFile != null) { services.openclaw.settings.hooks.enabled = mkDefault true; })
    {
      services.openclaw.configFile = checkedConfigFile;

      assertions =
        let
          secrets = findSecrets "" cfg.settings;
          notInStore =
            name: value:
            {
              assertion =
                value == null || (builtins.isString value && !lib.hasPrefix builtins.storeDir value);
              message = ''
                services.openclaw.${name} must be a string path outside the Nix store (e.g.
                "/run/keys/openclaw-token"); a Nix path literal or a store path is world-readable.
              '';
            };
        in
        [
          {
            assertion = secrets == [ ];
            message = ''
              services.openclaw.settings contains secrets (${lib.concatStringsSep ", " secrets});
              they would land in the world-readable Nix store. Use services.openclaw.tokenFile
              (gateway token), services.openclaw.hooksTokenFile (webhook token), or a
              ''${ENV_VAR} reference with services.openclaw.environmentFiles.
            '';
          }
          (notInStore "tokenFile" cfg.tokenFile)
          (notInStore "hooksTokenFile" cfg.hooksTokenFile)
          (
            let
              bind = cfg.settings.gateway.bind;
            in
            {
              assertion = builtins.elem bind supportedBinds;
              message = ''
                services.openclaw.settings.gateway.bind = "${bind}" is not supported by this
                gateway${lib.optionalString (bind == "tailnet") " (upstream OpenClaw's Tailscale bind)"}; use one of
                ${lib.concatMapStringsSep ", " (v: ''"${v}"'') supportedBinds} (for a Tailscale address: "custom"
                with gateway.customBindHost).
              '';
            }
          )
          (
            let
              mode = cfg.settings.gateway.auth.mode;
            in
            {
              assertion = mode == null || builtins.elem mode supportedAuthModes;
              message = ''
                services.openclaw.settings.gateway.auth.mode = "${toString mode}" is not supported by
                this gateway; use "token" (with services.openclaw.tokenFile) or "none" (loopback only).
              '';
            }
          )
          {
            assertion = lib.hasPrefix "/var/lib/" cfg.stateDir && !lib.hasSuffix "/" cfg.stateDir;
            message = "services.openclaw.stateDir must be a directory below /var/lib/ (it is a systemd StateDirectory), got ${cfg.stateDir}.";
          }
        ];

      warnings =
        optional (lib.length etcWriters > 1 || otherGatewayModule) ''
          services.openclaw writes ${configPath}, and so does another module (${
            if otherGatewayModule then
              "services.openclaw-gateway of nix-openclaw"
            else
              lib.concatMapStringsSep ", " (d: d.file) etcWriters
          }). Only one OpenClaw module can own that file; disable the other one.
        ''
        ++ optional (cfg.openFirewall && cfg.settings.gateway.bind == "loopback") ''
          services.openclaw.openFirewall opens port ${toString cfg.settings.gateway.port}, but the
          gateway binds loopback only (settings.gateway.bind = "loopback").
        '';

      environment.etc.${etcName} = {
        source = checkedConfigFile;
        mode = "0644";
      };

      # Wins over a plain `openclaw` package that is also in systemPackages.
      environment.systemPackages = [ (lib.hiPrio cliWrapper) ];

      users.users = mkIf (cfg.user == "openclaw") {
        openclaw = {
          isSystemUser = true;
          inherit (cfg) group;
          home = cfg.stateDir;
          description = "openclaw gateway";
        };
      };
      users.groups = mkIf (cfg.group == "openclaw") { openclaw = { }; };

      networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ cfg.settings.gateway.port ];

      systemd.services.${unitName} = {
        description = "openclaw gateway (personal AI assistant)";
        documentation = [ "https://docs.openclaw.ai/" ];
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        restartTriggers = [ checkedConfigFile ];

        # A crash loop must not hammer WhatsApp (it answers reconnect storms with 401 and a long
        # cooldown): at most 5 starts per hour, then the unit stays failed until an operator acts.
        startLimitBurst = 5;
        startLimitIntervalSec = 3600;

        environment = {
          OPENCLAW_CONFIG_PATH = configPath;
          OPENCLAW_STATE_DIR = cfg.stateDir;
          OPENCLAW_NIX_MODE = "1";
          HOME = cfg.stateDir;
        };

        serviceConfig = {
          Type = "notify";
          NotifyAccess = "main";
          ExecStartPre = "${exe} config compile --config ${configPath} --state-dir ${cfg.stateDir} --out ${snapshotPath}";
          ExecStart = "${exe} gateway run --snapshot ${snapshotPath}";
          User = cfg.user;
          Group = cfg.group;

          Restart = "on-failure";
          RestartSec = "30s";
          # Exit 78 (EX_CONFIG): bad config or inconsistent tokens; restarting cannot help.
          RestartPreventExitStatus = "78";
          TimeoutStartSec = "120s";
          # SIGTERM drains for at most 10 s (idle and half-sent connections close at once, a
          # stalled hook body gets 1 s), then the supervisors get 3 s: 20 s covers both, and
          # a hung process is killed instead of holding a restart for systemd's default 90 s.
          TimeoutStopSec = "20s";
          # The gateway caps itself at 256 HTTP connections and 128 control clients; the
          # headroom is for channel sockets and state files, so descriptor exhaustion cannot
          # take /health offline (systemd's default soft limit is 1024).
          LimitNOFILE = 8192;

          StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;
          StateDirectoryMode = "0700";
          RuntimeDirectory = unitName;
          RuntimeDirectoryMode = "0700";
          WorkingDirectory = cfg.stateDir;
          UMask = "0077";
          LoadCredential =
            optional (cfg.tokenFile != null) "gateway-token:${cfg.tokenFile}"
            ++ optional (cfg.hooksTokenFile != null) "hooks-token:${cfg.hooksTokenFile}";
          EnvironmentFile = cfg.environmentFiles;

          # Hardening (systemd-analyze security: see tests/nix_systemd.rs for the threshold).
          NoNewPrivileges = true;
          CapabilityBoundingSet = [ "" ];
          AmbientCapabilities = [ "" ];
          DeviceAllow = [ "" ];
          DevicePolicy = "closed";
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          PrivateDevices = true;
          PrivateTmp = true;
          PrivateIPC = true;
          PrivateMounts = true;
          PrivateUsers = true;
          ProcSubset = "pid";
          ProtectProc = "invisible";
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectSystem = "strict";
          RemoveIPC = true;
          RestrictAddressFamilies = [
            "AF_UNIX"
            "AF_INET"
            "AF_INET6"
            "AF_NETLINK"
          ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
            "~@resources"
          ];
          SystemCallErrorNumber = "EPERM";
        };
      };
    }
  ]);
}
