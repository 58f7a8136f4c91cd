# whatsapp: the mock WhatsApp Web server runs in the VM; `openclaw channels login --channel
# whatsapp --json` prints QR events, the test "scans" the QR through the mock's admin hook, the
# link completes, and after `systemctl restart openclaw` the session logs in again without a QR.
#
# Interfaces used (feature `wa-mock`, package openclaw-wa-mock):
# - `openclaw-wa-mock --listen 127.0.0.1:PORT` prints one JSON line {"url": ..., "rootKey": ...};
#   its admin HTTP API on the same address: POST /admin/scan (body: the QR string), GET
#   /admin/state (JSON);
# - the gateway and the CLI talk to the mock when OPENCLAW_WA_TEST_SERVER (url) and
#   OPENCLAW_WA_TEST_ROOT_KEY (hex) are set.
{ self, system }:
let
  mockPort = 18900;
  package = self.packages.${system}.openclaw-wa-mock;
in
{
  name = "openclaw-whatsapp";

  nodes.machine =
    { lib, ... }:
    {
      imports = [ (import ./common.nix { inherit self system; }) ];

      services.openclaw = {
        inherit package;
        settings.channels.whatsapp = {
          dmPolicy = "allowlist";
          allowFrom = [ "+15550001111" ];
        };
      };
      # Started by the test script once the mock's address and root key are known.
      systemd.services.openclaw.wantedBy = lib.mkForce [ ];

      systemd.services.wa-mock = {
        description = "mock WhatsApp Web server (test only)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${package}/bin/openclaw-wa-mock --listen 127.0.0.1:${toString mockPort}";
          StandardOutput = "file:/run/wa-mock.jsonl";
          DynamicUser = true;
        };
      };
    };

  testScript = ''
    import json

    ADMIN = "http://127.0.0.1:${toString mockPort}"
    DROPIN = "/run/systemd/system/openclaw.service.d"

    def mock_state():
        return json.loads(machine.succeed(f"curl --fail --silent {ADMIN}/admin/state"))

    def qr_events(path):
        out = machine.succeed(f"cat {path}")
        events = []
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == "qr":
                    events.append(event)
        return events

    machine.wait_for_unit("wa-mock.service")
    machine.wait_until_succeeds("test -s /run/wa-mock.jsonl")
    mock = json.loads(machine.succeed("head -n 1 /run/wa-mock.jsonl"))
    url, root_key = mock["url"], mock["rootKey"]

    with subtest("the gateway starts against the mock, not yet linked"):
        machine.succeed(
            f"mkdir -p {DROPIN} && printf '[Service]\\n"
            f"Environment=OPENCLAW_WA_TEST_SERVER={url}\\n"
            f"Environment=OPENCLAW_WA_TEST_ROOT_KEY={root_key}\\n' > {DROPIN}/wa-mock.conf"
            " && systemctl daemon-reload && systemctl start openclaw.service"
        )
        machine.wait_for_unit("openclaw.service")
        machine.wait_for_open_port(18789)

    with subtest("channels login links by QR through the mock's scan hook"):
        machine.succeed(
            "systemd-run --unit=wa-login --property=RemainAfterExit=yes"
            " --property=StandardOutput=file:/tmp/login.jsonl"
            " --property=StandardError=file:/tmp/login.err"
            f" --setenv=OPENCLAW_WA_TEST_SERVER={url} --setenv=OPENCLAW_WA_TEST_ROOT_KEY={root_key}"
            " /run/current-system/sw/bin/openclaw channels login --channel whatsapp --json"
        )
        machine.wait_until_succeeds("grep -q '\"qr\"' /tmp/login.jsonl", timeout=60)
        qr = qr_events("/tmp/login.jsonl")[-1]["qr"]
        assert qr, "empty QR string"
        machine.succeed(
            f"printf '%s' '{qr}' | curl --fail --silent -X POST --data-binary @- {ADMIN}/admin/scan"
        )
        machine.wait_until_succeeds(
            "test \"$(systemctl show -P ActiveState wa-login.service)\" = active"
            " && test \"$(systemctl show -P ExecMainCode wa-login.service)\" = 1", timeout=60
        )
        machine.succeed("test \"$(systemctl show -P ExecMainStatus wa-login.service)\" = 0")
        machine.succeed("test -s /var/lib/sokrates/periphery/credentials/whatsapp/default/creds.json")
        # Linked from root's shell, owned by the service user (the CLI wrapper switches user).
        machine.succeed(
            "test \"$(stat -c %U /var/lib/sokrates/periphery/credentials/whatsapp/default/creds.json)\""
            " = openclaw"
        )
        machine.log(json.dumps(mock_state()))

    with subtest("after a restart the session logs in again without a QR"):
        scans_before = mock_state()
        machine.systemctl("restart openclaw.service")
        machine.wait_for_unit("openclaw.service")
        machine.wait_until_succeeds(
            "openclaw channels status --channel whatsapp --json | grep -Eq '\"connected\": ?true'",
            timeout=120,
        )
        machine.fail("journalctl -u openclaw.service --no-pager --since=-2min | grep -q '\"event\":\"qr\"'")
        machine.log(f"mock state before restart: {json.dumps(scans_before)}")
        machine.log(f"mock state after restart: {json.dumps(mock_state())}")
  '';
}
