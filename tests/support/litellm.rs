//! The LiteLLM proxy (PyPI `litellm[proxy]==1.106.2`, installed by `scripts/setup-test-peers`
//! into `tests/peers/litellm/venv`) as the real OpenAI- and Anthropic-compatible provider of the
//! agent tests (reference `agent.md` §6).
//!
//! [`shared`] starts one proxy per test binary (it takes ~8 s) on a free loopback port with the
//! reference config: `mock-gpt` (answers "Hello from the mock model."), `mock-slow` (the same
//! after [`SLOW_SECS`]), `mock-429`, `mock-500`,
//! and `relay-gpt` (calls this proxy's own `mock-gpt`, so `/v1/messages` streams real SSE). A
//! callback (`tests/peers/litellm/record_requests.py`) appends every request the proxy receives
//! to a JSON-lines file: [`LiteLlm::requests`] reads it, so tests assert from the proxy's side.
//!
//! The proxy runs in its own process group under a bash watchdog that kills the group when the
//! test process is gone, so no proxy outlives its test binary.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The proxy's master key (the API key the tests' providers use).
pub const MASTER_KEY: &str = "sk-test-master";
/// The mock models' answer.
pub const MOCK_TEXT: &str = "Hello from the mock model.";
/// How long `mock-slow` takes to answer (LiteLLM's `mock_delay`), in seconds.
pub const SLOW_SECS: f64 = 1.5;

/// A running proxy.
pub struct LiteLlm {
    /// Its port on 127.0.0.1.
    pub port: u16,
    record: PathBuf,
    log: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

fn venv_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/litellm/venv/bin/litellm")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config(port: u16) -> String {
    format!(
        r#"model_list:
  - {{model_name: mock-gpt,  litellm_params: {{model: openai/mock-gpt,  api_key: sk-unused, mock_response: "{MOCK_TEXT}"}}}}
  - {{model_name: mock-slow, litellm_params: {{model: openai/mock-slow, api_key: sk-unused, mock_response: "{MOCK_TEXT}", mock_delay: {SLOW_SECS}}}}}
  - {{model_name: mock-429,  litellm_params: {{model: openai/mock-429,  api_key: sk-unused, mock_response: "litellm.RateLimitError"}}}}
  - {{model_name: mock-500,  litellm_params: {{model: openai/mock-500,  api_key: sk-unused, mock_response: "litellm.InternalServerError"}}}}
  - model_name: relay-gpt
    litellm_params: {{model: openai/mock-gpt, api_base: "http://127.0.0.1:{port}/v1", api_key: {MASTER_KEY}}}
litellm_settings: {{telemetry: false, use_chat_completions_url_for_anthropic_messages: true, num_retries: 0, request_timeout: 30, callbacks: record_requests.proxy_handler_instance}}
general_settings: {{master_key: {MASTER_KEY}}}
"#
    )
}

fn liveliness(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

impl LiteLlm {
    /// Starts a proxy and waits (≤ 90 s) for `/health/liveliness`. `None` when the venv is not
    /// installed.
    pub fn start() -> Option<Self> {
        let bin = venv_bin();
        if !bin.exists() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(dir.path().join("config.yaml"), config(port)).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/litellm/record_requests.py"),
            dir.path().join("record_requests.py"),
        )
        .unwrap();
        let record = dir.path().join("requests.jsonl");
        std::fs::write(&record, "").unwrap();
        let log = dir.path().join("litellm.log");
        let script = r#"
"$@" &
child=$!
while kill -0 "$OPENCLAW_TEST_PID" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
kill -- -$$ 2>/dev/null
"#;
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("litellm-watchdog")
            .arg(&bin)
            .args(["--config", "config.yaml", "--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
            .current_dir(dir.path())
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("OPENCLAW_LITELLM_RECORD", &record)
            .env("OPENCLAW_TEST_PID", std::process::id().to_string())
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("litellm.err")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !liveliness(port) {
            if started.elapsed() > Duration::from_secs(90) {
                let err = std::fs::read_to_string(dir.path().join("litellm.err")).unwrap_or_default();
                panic!("LiteLLM did not become live on port {port} within 90 s:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("litellm: live on 127.0.0.1:{port} after {:?}", started.elapsed());
        Some(Self { port, record, log, _child: child, _dir: dir })
    }

    /// `http://127.0.0.1:<port>` (the Anthropic base URL; OpenAI's adds `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request the proxy received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The received requests whose messages or system prompt mention `tag`.
    pub fn requests_with(&self, tag: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r.to_string().contains(tag)).collect()
    }

    /// The proxy's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        // Kill the whole process group (the watchdog's pid is the group id).
        let pgid = self._child.id();
        let _ = Command::new("kill").arg("--").arg(format!("-{pgid}")).status();
        let _ = self._child.wait();
    }
}

/// The proxy shared by all tests of this binary, started on first use.
pub fn shared(test: &str) -> Option<&'static LiteLlm> {
    static PEER: OnceLock<Option<LiteLlm>> = OnceLock::new();
    let peer = PEER.get_or_init(LiteLlm::start).as_ref();
    if peer.is_none() {
        super::peer::missing(test, "the LiteLLM proxy is not installed (tests/peers/litellm/venv)");
    }
    peer
}
