//! `openclaw logs` (issue 13 item 3) against the real gateway: recent lines, `--level`,
//! `--run` with the id `/hooks/agent` answered, `--follow` printing a line logged later.

mod gateway_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use gateway_support::{cmd, http, start, write_config};
use serde_json::{Value, json};

const HOOK: (&str, &str) = ("Authorization", "Bearer hook-token-abcdef-0123");

fn logs(dir: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let out = cmd().args(["logs", "--json", "--state-dir"]).arg(dir).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn issue13_item3_logs_level_run_and_follow() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"hooks": {"enabled": true, "token": "hook-token-abcdef-0123", "path": "/hooks"}}));
    let gw = start(dir.path(), &[], &[]).expect("gateway");

    let all = logs(dir.path(), &[]);
    assert!(all.iter().any(|l| l["message"].as_str().unwrap_or_default().contains("gateway token resolved")), "{all:?}");
    assert!(all.iter().all(|l| l["time"].as_str().is_some_and(|t| t.ends_with(" UTC"))));

    // A hook run: its id filters the lines about it.
    let r = http(gw.port, "POST", "/hooks/agent", &[HOOK], br#"{"message":"hello from a hook","deliver":false}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.json()["runId"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    let about_run = loop {
        let l = logs(dir.path(), &["--run", &run_id]);
        if l.iter().any(|x| x["message"].as_str().unwrap_or_default().starts_with("run ")) {
            break l;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no line about run {run_id}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(about_run.iter().all(|l| l["message"].as_str().unwrap().contains(&format!("runId={run_id}"))), "{about_run:?}");

    // --level: nothing below the threshold.
    let warn = logs(dir.path(), &["--level", "warn"]);
    assert!(warn.iter().all(|l| l["level"] == "WARN" || l["level"] == "ERROR"), "{warn:?}");
    assert!(!warn.iter().any(|l| l["message"].as_str().unwrap_or_default().contains("gateway token resolved")), "an INFO line passed --level warn");

    // --follow prints a line logged after it started.
    let mut child = cmd()
        .args(["logs", "--follow", "--json", "--limit", "0", "--interval", "100", "--state-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let r = http(gw.port, "POST", "/hooks/agent", &[HOOK], br#"{"message":"second","deliver":false}"#);
    let second = r.json()["runId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains(&format!("runId={second}")) {
            seen = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "--follow did not print the new run's line");
    drop(gw);
}
