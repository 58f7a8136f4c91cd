//! A small Chrome DevTools Protocol client over tokio-tungstenite: launch Debian's headless
//! Chromium, open a page, evaluate JavaScript, wait for conditions, take screenshots.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The Chromium binary: `$CHROMIUM`, else `/usr/bin/chromium`, if it exists.
pub fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

/// A running headless browser (killed on drop) and one page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    /// The page's DevTools connection.
    pub page: Page,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page target.
pub struct Page {
    ws: Ws,
    next: u64,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and opens a blank page.
    pub async fn launch(bin: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--hide-scrollbars", "--remote-debugging-port=0", "--window-size=1280,900"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let browser_url = rx.recv_timeout(Duration::from_secs(30)).expect("chromium printed its DevTools address");
        let (mut bws, _) = tokio_tungstenite::connect_async(browser_url.as_str()).await.expect("browser devtools");
        bws.send(Message::Text(json!({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}).to_string().into())).await.unwrap();
        let target = loop {
            let Some(Ok(Message::Text(t))) = bws.next().await else { panic!("browser devtools closed") };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == 1 {
                break v["result"]["targetId"].as_str().unwrap().to_string();
            }
        };
        let hostport = browser_url.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{hostport}/devtools/page/{target}")).await.expect("page devtools");
        let mut page = Page { ws, next: 0 };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        Browser { child, _profile: profile, page }
    }
}

impl Page {
    /// Sends a command and returns its `result` (events in between are dropped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws.send(Message::Text(json!({"id": id, "method": method, "params": params}).to_string().into())).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next()).await.expect("devtools answer in time");
            let Some(Ok(Message::Text(t))) = msg else { panic!("devtools connection closed") };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Navigates and waits for the load event's document to exist.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(15)).await;
    }

    /// Evaluates `expr` (awaiting promises) and returns its value.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true})).await;
        assert!(r["exceptionDetails"].is_null(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy; returns its value.
    pub async fn wait_for(&mut self, expr: &str, limit: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.eval(expr).await;
            let truthy = !(v.is_null() || v == false || v == 0 || v == "");
            if truthy {
                return v;
            }
            if t0.elapsed() > limit {
                let body = self.eval("document.body.innerText").await;
                panic!("timed out waiting for {expr}; page text:\n{}", body.as_str().unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG screenshot of the viewport (or of `clip` = `[x, y, w, h]` at `scale`), written to `path`.
    pub async fn screenshot(&mut self, path: &Path, clip: Option<[f64; 4]>, scale: f64) -> Vec<u8> {
        let mut params = json!({"format": "png"});
        if let Some([x, y, w, h]) = clip {
            params["clip"] = json!({"x": x, "y": y, "width": w, "height": h, "scale": scale});
        }
        let r = self.call("Page.captureScreenshot", params).await;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, &png).unwrap();
        png
    }
}

/// Decodes the QR code in a PNG, if one decodes.
pub fn decode_png_qr(png_bytes: &[u8]) -> Option<String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    let grey: Vec<u8> = (0..w * h)
        .map(|i| {
            let p = &buf[i * ch..i * ch + ch];
            if ch >= 3 { ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as u8 } else { p[0] }
        })
        .collect();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| grey[y * w + x]);
    img.detect_grids().first().and_then(|g| g.decode().ok()).map(|(_, s)| s)
}
