//! The config fixtures corpus: every directory under `tests/fixtures/config/` is one case, run
//! through the real binary as `openclaw config check` from inside the case directory:
//!
//! - `system.json5` (optional): passed as `--config system.json5`
//! - `state/openclaw.json` (optional): the state layer (`--state-dir state` is passed unless
//!   `args` has `--no-state`)
//! - `env` (optional): `KEY=VALUE` lines for the process environment (`$CASE` expands to the
//!   case's absolute directory); nothing else from the test's environment leaks in
//! - `args` (optional): extra arguments, one per line
//! - `expected.txt`: the exit code and the output, with the absolute case directory written
//!   as `$CASE`. `UPDATE_FIXTURES=1 cargo test --test config_fixtures` rewrites them.
//!
//! Each case also runs with `--json`, and every diagnostic there must carry file, line and column.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn command(case: &Path, json: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openclaw"));
    cmd.current_dir(case).env_clear().env("HOME", case.join("home")).env("PATH", "/usr/bin:/bin");
    cmd.args(["config", "check"]);
    let args = std::fs::read_to_string(case.join("args")).unwrap_or_default();
    if !args.lines().any(|l| l.trim() == "--no-state") {
        cmd.args(["--state-dir", "state"]);
    }
    if case.join("system.json5").exists() {
        cmd.args(["--config", "system.json5"]);
    }
    let case_str = case.to_string_lossy().to_string();
    if let Ok(env) = std::fs::read_to_string(case.join("env")) {
        for line in env.lines().filter(|l| !l.trim().is_empty()) {
            if let Some((k, v)) = line.split_once('=') {
                cmd.env(k, v.replace("$CASE", &case_str));
            }
        }
    }
    cmd.args(args.lines().filter(|l| !l.trim().is_empty()).map(|a| a.replace("$CASE", &case_str)));
    if json {
        cmd.arg("--json");
    }
    cmd
}

#[test]
fn fixtures_match_expected_output() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 25, "the corpus has {} cases", all.len());
    for case in &all {
        let out = command(case, false).output().expect("run openclaw");
        let case_str = case.to_string_lossy().to_string();
        let mut got = format!("exit: {}\n", out.status.code().unwrap_or(-1));
        got.push_str(&String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.is_empty() {
            got.push_str("--- stderr\n");
            got.push_str(&stderr);
        }
        let got = got.replace(&case_str, "$CASE");
        let expected_path = case.join("expected.txt");
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            if update {
                std::fs::write(&expected_path, &got).expect("write expected");
            } else {
                failures.push(format!("== {}\n-- expected\n{want}-- got\n{got}", case.display()));
            }
        }
        assert!(!got.contains("panicked"), "{}: the binary panicked", case.display());

        // The same run as JSON: exit code agrees, every diagnostic has a position.
        let out_json = command(case, true).output().expect("run openclaw --json");
        assert_eq!(out_json.status.code(), out.status.code(), "{}: --json exit code differs", case.display());
        let v: serde_json::Value = serde_json::from_slice(&out_json.stdout)
            .unwrap_or_else(|e| panic!("{}: --json output is not JSON: {e}", case.display()));
        for d in v["errors"].as_array().into_iter().chain(v["warnings"].as_array()).flatten() {
            assert!(
                d["file"].is_string() && d["line"].as_u64() > Some(0) && d["column"].as_u64() > Some(0),
                "{}: diagnostic without a position: {d}",
                case.display()
            );
        }
    }
    assert!(failures.is_empty(), "{} fixture(s) differ (UPDATE_FIXTURES=1 to accept):\n{}", failures.len(), failures.join("\n"));
}
