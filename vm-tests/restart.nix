# restart: the generated token survives `systemctl restart`; a conflicting token source makes the
# unit fail with the consistency message in the journal (and without restarting in a loop).
{ self, system }:
let
  stateDir = "/var/lib/sokrates/periphery";
in
{
  name = "openclaw-restart";

  nodes.machine = {
    imports = [ (import ./common.nix { inherit self system; }) ];
    # No tokenFile: the gateway generates its token once and keeps it in the state dir.
  };

  testScript = ''
    TOKEN_FILE = "${stateDir}/credentials/gateway-token"
    CONFLICTING = "conflicting-token-from-the-environment"
    # The gateway's token consistency error (case-insensitive); adjust with the gateway's wording.
    CONSISTENCY = "token.*(mismatch|disagree|conflict|inconsisten|differ)"
    DROPIN = "/run/systemd/system/openclaw.service.d"

    def started():
        machine.wait_for_unit("openclaw.service")
        machine.wait_for_open_port(18789)

    started()
    machine.wait_for_file(TOKEN_FILE)
    first = machine.succeed(f"sha256sum {TOKEN_FILE}")
    machine.succeed(f"test \"$(stat -c %a {TOKEN_FILE})\" = 600")

    with subtest("the token is the same after systemctl restart"):
        machine.systemctl("restart openclaw.service")
        started()
        assert machine.succeed(f"sha256sum {TOKEN_FILE}") == first, "the gateway token changed"
        machine.succeed("openclaw status")

    with subtest("a conflicting token source fails the unit with the consistency message"):
        machine.succeed(
            f"mkdir -p {DROPIN}"
            f" && printf '[Service]\\nEnvironment=OPENCLAW_GATEWAY_TOKEN={CONFLICTING}\\n'"
            f" > {DROPIN}/conflict.conf"
            " && systemctl daemon-reload"
        )
        machine.execute("systemctl restart openclaw.service")
        machine.wait_until_succeeds(
            f"journalctl -u openclaw.service --no-pager | grep -Eiq '{CONSISTENCY}'", timeout=120
        )
        # Exit 78 stops restarts at once; any other exit is capped by the start limit.
        machine.wait_until_succeeds("systemctl is-failed openclaw.service", timeout=600)
        machine.fail(f"journalctl -u openclaw.service --no-pager | grep -F '{CONFLICTING}'")
        assert machine.succeed(f"sha256sum {TOKEN_FILE}") == first, "the persisted token was rewritten"

    with subtest("without the conflict the gateway starts again with the same token"):
        machine.succeed(
            f"rm -r {DROPIN} && systemctl daemon-reload"
            " && systemctl reset-failed openclaw.service && systemctl start openclaw.service"
        )
        started()
        assert machine.succeed(f"sha256sum {TOKEN_FILE}") == first
  '';
}
