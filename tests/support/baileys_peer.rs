//! A real Baileys client (npm `baileys@7.0.0-rc14`) run as one person on the relay mock, through
//! `tests/peers/relay-harness.mjs`: JSON-line commands in, JSON-line events out.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The folder with the installed peers.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Why Baileys 7 cannot run here, if it cannot.
pub fn missing_baileys() -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("node is not installed".into()),
    }
    let pkg = peers_dir().join("node_modules/baileys/package.json");
    match std::fs::read_to_string(&pkg) {
        Ok(s) if s.contains("\"version\": \"7.0.0-rc14\"") => None,
        Ok(_) => Some(format!("{} is not baileys 7.0.0-rc14", pkg.display())),
        Err(_) => Some(format!("{} is missing", pkg.display())),
    }
}

/// One running Baileys person.
pub struct BaileysPeer {
    /// Label for failure messages.
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    /// Every event seen so far, in order.
    pub events: Vec<Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl BaileysPeer {
    /// Starts Baileys for account `phone` with auth folder `auth`. With `expect_no_qr`, a QR
    /// (instead of a login from saved creds) makes the harness fail.
    pub fn start(
        name: &str,
        ws_url: &str,
        admin: &str,
        auth: &Path,
        phone: &str,
        expect_no_qr: bool,
    ) -> Self {
        Self::start_script(
            "relay-harness.mjs",
            name,
            ws_url,
            admin,
            auth,
            phone,
            expect_no_qr,
        )
    }

    /// Like [`BaileysPeer::start`] with another harness script of `tests/peers/` that takes the
    /// same arguments and speaks the same JSON lines.
    pub fn start_script(
        script: &str,
        name: &str,
        ws_url: &str,
        admin: &str,
        auth: &Path,
        phone: &str,
        expect_no_qr: bool,
    ) -> Self {
        let mut c = Command::new("node");
        c.arg(peers_dir().join(script))
            .arg(ws_url)
            .arg(admin)
            .arg(auth)
            .arg(phone)
            .env("BAILEYS_DIR", peers_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if expect_no_qr {
            c.env("HARNESS_EXPECT_NO_QR", "1");
        }
        let mut child = c.spawn().expect("spawn node with a harness script");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    // Keep the tail only: Baileys' debug log can be long.
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 64 * 1024 {
                        let cut = s.len() - 32 * 1024;
                        let cut = (cut..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                        s.drain(..cut);
                    }
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            stdin,
            lines: rx,
            events: Vec::new(),
            stderr,
        }
    }

    /// Everything seen, for failure messages.
    pub fn transcript(&self) -> String {
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        let err = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        format!(
            "--- {} events:\n{}\n--- {} stderr (tail):\n{}",
            self.name,
            events.join("\n"),
            self.name,
            err
        )
    }

    /// Waits up to `within` for a new event matching `pred` (events seen earlier count too,
    /// from index `since`). Panics with the transcript on timeout or harness exit.
    pub fn wait_from(
        &mut self,
        since: usize,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(v) = self.events[since.min(self.events.len())..]
            .iter()
            .find(|v| pred(v))
        {
            return v.clone();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.events.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: timed out waiting for {what}\n{}",
                    self.name,
                    self.transcript()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: harness exited while waiting for {what}\n{}",
                        self.name,
                        self.transcript()
                    )
                }
            }
        }
    }

    /// Waits for a new event matching `pred` (only events after the call).
    pub fn wait(&mut self, within: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let since = self.events.len();
        self.wait_from(since, within, what, pred)
    }

    /// Waits for `open` (from the first event on).
    pub fn wait_open(&mut self) -> Value {
        self.wait_from(0, Duration::from_secs(60), "open", |v| v["event"] == "open")
    }

    /// Sends one command line.
    pub fn command(&mut self, cmd: Value) {
        writeln!(self.stdin, "{cmd}").expect("write to the harness");
        self.stdin.flush().expect("flush");
    }

    /// Sends `text` to `to` (digits or JID); returns the message id once Baileys sent it.
    pub fn send_text(&mut self, to: &str, text: &str) -> String {
        self.command(serde_json::json!({ "cmd": "send", "to": to, "text": text }));
        let v = self.wait(Duration::from_secs(30), "sent", |v| {
            v["event"] == "sent" || v["event"] == "error"
        });
        assert_eq!(
            v["event"],
            "sent",
            "{}: send failed: {v}\n{}",
            self.name,
            self.transcript()
        );
        v["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Received (not from me) messages seen so far with text.
    pub fn received(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|v| v["event"] == "message" && v["fromMe"] == false)
            .cloned()
            .collect()
    }

    /// Closes the socket and waits for the process to end.
    pub fn quit(mut self) {
        self.command(serde_json::json!({ "cmd": "quit" }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BaileysPeer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 request to the mock's admin API; returns (status, JSON body).
pub fn admin_request(base: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect to the admin API");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = resp
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}
