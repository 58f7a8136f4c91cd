//! The terminal QR as a person sees it (issue 13 item 6): `openclaw channels login` runs in a
//! real terminal (tmux) of a given size and the screen is read back with `capture-pane`. In
//! 80×24 a WhatsApp code (about 57×31 cells) cannot show whole, and the screen says how big the
//! terminal must be and what else works; in 80×40 the code on the screen decodes (light and
//! dark themes), the mock phone scans it and the screen says the number is linked.

mod gateway_support;
#[path = "support/peer.rs"]
mod peer;
#[path = "support/term_qr.rs"]
mod term_qr;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_support::{bin, write_config};
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use serde_json::json;

/// A private tmux server (its socket in a temp dir), killed on drop.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.dir.path().join("tmux.sock"));
        c
    }

    /// Starts `openclaw channels login` for `state` in a `cols`×`rows` window (clean env).
    fn login(&self, name: &str, cols: u16, rows: u16, state: &Path, m: &MockServer) {
        let shell = format!(
            "env -i HOME={home} PATH=/usr/bin:/bin OPENCLAW_WA_TEST_SERVER={url} OPENCLAW_WA_TEST_ROOT_KEY={key} {bin} channels login --state-dir {state}; sleep 600",
            home = state.display(),
            url = m.url(),
            key = hex::encode(m.root_key()),
            bin = bin().display(),
            state = state.display(),
        );
        let st = self.cmd().args(["new-session", "-d", "-s", name, "-x", &cols.to_string(), "-y", &rows.to_string(), &shell]).status().unwrap();
        assert!(st.success(), "tmux new-session");
    }

    /// The visible screen with colours (`-e`) and trailing cells kept (`-N`). tmux emits an SGR
    /// only where attributes change, so each line is prefixed with the sequences seen before it
    /// (attributes carry over line ends on a terminal too).
    fn screen(&self, name: &str) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-e", "-N", "-t", name]).output().unwrap();
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut carried = String::new();
        let mut text = String::new();
        for line in raw.lines() {
            text.push_str(&carried);
            text.push_str(line);
            text.push('\n');
            let mut rest = line;
            while let Some(i) = rest.find("\x1b[") {
                let seq = &rest[i..];
                let Some(end) = seq.find('m') else { break };
                carried.push_str(&seq[..=end]);
                rest = &seq[end + 1..];
            }
        }
        text
    }

    fn wait_for(&self, name: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen(name);
            if ok(&s) {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "waiting for {what}; the screen:\n{}", plain(&s));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// The screen without escape sequences.
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find('m').map_or("", |e| &rest[i + e + 1..]);
    }
    out.push_str(rest);
    out
}

fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item6_terminal_qr_in_tmux_80x24_says_the_size_and_80x40_links() {
    if Command::new("tmux").arg("-V").output().is_err() {
        return peer::missing("issue13_item6_terminal_qr_in_tmux", "tmux is not installed");
    }
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let t = Tmux::new();

    // 80×24: the code cannot show whole; the last lines say so with the size needed.
    let small = state_dir();
    t.login("small", 80, 24, small.path(), &m);
    let s = t.wait_for("small", "the size message", |s| plain(s).contains("Link a device"));
    let text = plain(&s).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("The QR code needs a terminal of at least") && text.contains("this one is 80 × 24"), "{text}");
    assert!(text.contains("openclaw dashboard") && text.contains("--phone"), "names the other ways to link: {text}");

    // 80×40: the code on the screen decodes on a light and a dark theme; the phone scans it.
    let big = state_dir();
    t.login("big", 80, 40, big.path(), &m);
    let s = t.wait_for("big", "a whole QR code", |s| term_qr::decode(s, term_qr::LIGHT).is_some());
    assert!(!plain(&s).contains("The QR code needs a terminal"), "it fits: no size message");
    let light = term_qr::decode(&s, term_qr::LIGHT).unwrap();
    assert_eq!(term_qr::decode(&s, term_qr::DARK).as_deref(), Some(light.as_str()), "the same code on a dark theme");
    assert!(light.contains("#2@") && light.ends_with(",1"), "a WhatsApp link code: {light}");
    m.scan(&light).expect("the mock phone accepts the code read off the screen");
    t.wait_for("big", "the linked message", |s| plain(s).contains("Linked WhatsApp +15550001234"));
}
