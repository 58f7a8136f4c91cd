# boot: the unit starts (Type=notify), listens on loopback only, /health answers, `openclaw
# status` works as root and as the service user, and the token stays out of /etc, the snapshot
# and the journal.
{ self, system }:
let
  token = "vm-test-gateway-token-0123456789abcdef";
in
{
  name = "openclaw-boot";

  nodes.machine = {
    imports = [ (import ./common.nix { inherit self system; }) ];

    services.openclaw.tokenFile = "/run/keys/openclaw-gateway-token";

    # Stands in for agenix/sops: a root-only secret outside the store, ready before the gateway.
    systemd.services.openclaw-test-secret = {
      wantedBy = [ "openclaw.service" ];
      before = [ "openclaw.service" ];
      serviceConfig.Type = "oneshot";
      script = ''
        install -d -m 0750 /run/keys
        (umask 077; printf '%s' '${token}' > /run/keys/openclaw-gateway-token)
      '';
    };
  };

  testScript = ''
    TOKEN = "${token}"
    PORT = 18789

    machine.wait_for_unit("openclaw.service")
    machine.wait_for_open_port(PORT)

    with subtest("the gateway listens on loopback only"):
        listeners = machine.succeed(f"ss -Htln 'sport = :{PORT}'").strip().splitlines()
        assert listeners, "nothing listens on the gateway port"
        for line in listeners:
            local = line.split()[3]
            assert local.startswith("127.0.0.1:") or local.startswith("[::1]:"), (
                f"gateway listens beyond loopback: {local}"
            )
        lan_ip = machine.succeed(
            "ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1"
        ).strip()
        if lan_ip:
            machine.fail(f"curl --silent --max-time 3 http://{lan_ip}:{PORT}/health")

    with subtest("/health answers without secrets"):
        health = machine.succeed(f"curl --fail --silent --max-time 10 http://127.0.0.1:{PORT}/health")
        assert TOKEN not in health, "/health shows the gateway token"

    with subtest("openclaw status works as root and as the service user"):
        machine.succeed("openclaw status")
        machine.succeed("runuser -u openclaw -- openclaw status")

    with subtest("the config is the checked, read-only system file"):
        machine.succeed("jq -e '.gateway.bind == \"loopback\"' /etc/openclaw/openclaw.json")
        machine.succeed(
            "jq -e '.gateway.auth.tokenFile == \"/run/credentials/openclaw.service/gateway-token\"'"
            " /etc/openclaw/openclaw.json"
        )

    with subtest("the token stays out of /etc, the snapshot and the journal"):
        machine.succeed("test -s /run/openclaw/snapshot.json")
        machine.succeed("test \"$(stat -c %a /run/openclaw/snapshot.json)\" = 600")
        machine.fail(f"grep -F '{TOKEN}' /etc/openclaw/openclaw.json /run/openclaw/snapshot.json")
        machine.fail(f"journalctl -u openclaw.service --no-pager | grep -F '{TOKEN}'")

    with subtest("hardening holds on the real systemd"):
        out = machine.succeed("systemd-analyze security openclaw.service --no-pager 2>&1 | tail -n 1")
        score = float(out.split("openclaw.service:")[1].split()[0])
        assert score <= 2.0, f"systemd-analyze security: {score} > 2.0"
  '';
}
