//! Rung 6: the unit the NixOS module renders (golden file tests/golden/nix/openclaw.service,
//! kept current by tests/nix_eval.rs) passes `systemd-analyze verify` with no unknown keys, and
//! its hardening scores at most 2.0 on `systemd-analyze security --offline`.

#[path = "nix/common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{describe, golden, loud, run, tool};

/// The highest acceptable exposure (the issue's bar; nixpkgs' alertmanager-style units reach it).
const MAX_EXPOSURE: f64 = 2.0;

/// Writes the golden unit into a temporary directory, with the binary path of the stubbed package
/// (/opt/openclaw/bin/openclaw) pointed at the real binary so that `verify` finds an executable.
fn materialized_unit(dir: &Path) -> PathBuf {
    let unit = golden("openclaw.service")
        .replace("/opt/openclaw/bin/openclaw", env!("CARGO_BIN_EXE_openclaw"));
    let path = dir.join("openclaw.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn rendered_unit_verifies_without_unknown_keys() {
    let Some(analyze) = tool(
        "systemd-analyze",
        "rung 6: systemd-analyze verify on the rendered unit",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = materialized_unit(dir.path());
    let out = run(Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify rejects the rendered unit:\n{}",
        describe(&out)
    );
    // Unknown keys and unparsable values only warn (the exit code stays 0). Warnings about the
    // host's own units (pulled in through After=/Wants=) are not ours.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("openclaw.service"))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify warns about the rendered unit:\n{}",
        ours.join("\n")
    );
}

#[test]
fn rendered_unit_hardening_scores_at_most_2() {
    let Some(analyze) = tool(
        "systemd-analyze",
        "rung 6: systemd-analyze security --offline on the rendered unit",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = materialized_unit(dir.path());
    // --threshold is on the 0..100 scale of the internal exposure (2.0 shown = 20).
    let threshold = format!("--threshold={}", (MAX_EXPOSURE * 10.0) as u32);
    let out = run(Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager", &threshold])
        .arg(&unit));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let score: f64 = stdout
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for openclaw.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in the output:\n{}", describe(&out)));
    loud(&format!(
        "rung 6: systemd-analyze security --offline: openclaw.service exposure {score}"
    ));
    assert!(
        score <= MAX_EXPOSURE && out.status.success(),
        "the rendered unit's exposure is {score}, above {MAX_EXPOSURE}:\n{stdout}"
    );
}

/// The value of `key=` in the golden unit.
fn unit_value(key: &str) -> Option<String> {
    golden("openclaw.service").lines().find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn issue14_items2_3_unit_sets_descriptor_limit_and_stop_timeout_above_the_drain() {
    use openclaw::gateway::conns::{MAX_CONNECTIONS, MAX_WS_CLIENTS};
    let nofile: usize = unit_value("LimitNOFILE").expect("the unit sets LimitNOFILE").parse().unwrap();
    assert!(nofile >= 4 * (MAX_CONNECTIONS + MAX_WS_CLIENTS), "LimitNOFILE={nofile} leaves too little headroom");
    let stop = unit_value("TimeoutStopSec").expect("the unit sets TimeoutStopSec");
    let secs: u64 = stop.trim_end_matches('s').parse().unwrap();
    // The drain, then up to 3 s for the channel supervisors, with a margin.
    let needed = openclaw::gateway::server::DRAIN_TIMEOUT.as_secs() + 3;
    assert!(secs > needed && secs <= 30, "TimeoutStopSec={stop}: must exceed the {needed} s drain and stay short");
}
