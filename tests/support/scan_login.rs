//! Runs a `channels login --json` command, scanning every QR it prints with the mock phone.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use openclaw::channels::whatsapp::mock::MockServer;
use serde_json::Value;

/// Runs `cmd` with stdout piped; each `{"event":"qr"}` line is scanned by `m`'s phone. Returns
/// the exit status and every JSON line printed (a line that is not JSON fails the test).
pub async fn run_scanning(m: &MockServer, mut cmd: Command) -> (ExitStatus, Vec<Value>) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn the CLI");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if v["event"] == "qr" {
            m.scan(v["qr"].as_str().unwrap_or_default()).expect("scan");
        }
        lines.push(v);
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    (status, lines)
}
