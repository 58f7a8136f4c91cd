# The sokrates-dev appliance (a GMKtec mini PC in the office): the openclaw gateway on loopback,
# reached through an SSH tunnel (ssh -L 18789:localhost:18789 sokrates-dev), WhatsApp for the
# team's allowlisted numbers, and webhooks from the CI box through the same tunnel.
#
# Secrets are provisioned outside the Nix store (agenix, sops-nix or a manual copy) as root-only
# files under /run/keys; systemd hands them to the service with LoadCredential.
_: {
  services.openclaw = {
    enable = true;

    tokenFile = "/run/keys/openclaw-gateway-token";
    hooksTokenFile = "/run/keys/openclaw-hooks-token";

    settings = {
      gateway = {
        port = 18789;
        bind = "loopback";
        auth.mode = "token";
      };

      hooks.path = "/hooks";

      channels.whatsapp = {
        dmPolicy = "allowlist";
        allowFrom = [
          "+4915112345678"
          "+4917198765432"
        ];
        groupPolicy = "disabled";
      };
    };
  };
}
