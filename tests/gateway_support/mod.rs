//! Helpers for the gateway integration tests: start the real binary on an ephemeral loopback
//! port with a temp state dir, a tiny HTTP/1.1 client, and CLI invocations.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `$OPENCLAW_TEST_BIN` when set (a private copy, for a target dir shared
/// by several checkouts whose builds overwrite each other's `openclaw`), else cargo's.
pub fn bin() -> PathBuf {
    std::env::var_os("OPENCLAW_TEST_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_openclaw")))
}

/// Env vars that must not leak from the developer's shell into the tests.
const SCRUB: &[&str] = &["OPENCLAW_GATEWAY_TOKEN", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_GATEWAY_PORT", "NOTIFY_SOCKET", "JOURNAL_STREAM"];

/// A command for the binary with a clean environment.
pub fn cmd() -> Command {
    let mut c = Command::new(bin());
    for k in SCRUB {
        c.env_remove(k);
    }
    c.env("OPENCLAW_LOG_FORMAT", "json");
    c
}

/// Writes `<dir>/openclaw.json` with mode 0600.
pub fn write_config(dir: &Path, v: &serde_json::Value) {
    let p = dir.join("openclaw.json");
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A running gateway; killed on drop.
pub struct Gw {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub stdout: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Why a start failed: exit status and stderr.
#[derive(Debug)]
pub struct StartFailure {
    pub code: Option<i32>,
    pub stderr: String,
}

/// Starts `openclaw gateway run --port 0 --state-dir dir` plus `args`/`envs`; waits until the
/// runtime file names this child (i.e. the port is bound).
pub fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Gw, StartFailure> {
    let mut c = cmd();
    c.args(["gateway", "run", "--state-dir"]).arg(dir).args(args);
    if !args.contains(&"--port") {
        c.args(["--port", "0"]);
    }
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn gateway");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            return Err(StartFailure { code: status.code(), stderr });
        }
        if let Ok(t) = std::fs::read_to_string(dir.join("gateway.json")) {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
            if v["pid"].as_u64() == Some(child.id() as u64) {
                let port = v["port"].as_u64().unwrap() as u16;
                // Drain stderr in the background so the pipe never fills.
                let err = child.stderr.take().unwrap();
                let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
                let sink = stderr.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(err).lines().map_while(Result::ok) {
                        let mut s = sink.lock().unwrap();
                        s.push_str(&line);
                        s.push('\n');
                    }
                });
                let mut stdout = Vec::new();
                let mut out = BufReader::new(child.stdout.take().unwrap());
                for _ in 0..2 {
                    let mut line = String::new();
                    if out.read_line(&mut line).unwrap_or(0) > 0 {
                        stdout.push(line.trim_end().to_string());
                    }
                }
                std::thread::spawn(move || {
                    let mut sink = Vec::new();
                    let _ = out.read_to_end(&mut sink);
                });
                return Ok(Gw { child, port, dir: dir.to_path_buf(), stdout, stderr });
            }
        }
        assert!(Instant::now() < deadline, "gateway did not start in time");
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Gw {
    /// Everything the gateway wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn sigterm(&mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "gateway did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        // Stop at the end of the body (or of the head for a 101), as keep-alive may hold it open.
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
            if head.starts_with("http/1.1 101") || len.is_some_and(|n| raw.len() >= end + 4 + n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Resp { status, headers, body: body.to_string() }
}

/// Runs the CLI; returns (exit code, stdout, stderr).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out = cmd().args(args).output().expect("run cli");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}
