//! Benchmark (issue 11): the overhead of a full assistant turn with an instant provider, as the
//! contact sees it, for our gateway and for a minimal Baileys bot, in the same run, through the
//! same relay mock and the same provider.
//!
//! - The contact is a real Baileys client (`tests/peers/relay-harness.mjs`, "Bob"), at niceness 19
//!   (`FULL_TURN_CONTACT_NICE`): it stands for a phone elsewhere, and at normal priority its
//!   Baileys takes one of this 2-core machine's cores during each turn, away from whichever
//!   assistant is measured.
//! - Ours: the gateway in-process (operations layer, inbound queue, agent turn, outbox) with our
//!   WhatsApp client linked to the relay (account `US`).
//! - Theirs: a second relay harness in bot mode (`HARNESS_BOT_URL`, account `BOT`): on each text
//!   DM it calls the provider and answers with `sendMessage` — the least a Baileys assistant does.
//!   Then the same bot doing what our gateway does by default around a turn
//!   (`HARNESS_BOT_LIKE_GATEWAY`, account `BOT2`): the read receipt and `composing` when the DM
//!   arrives (not awaited before the provider request, as ours), `paused` after the reply. That
//!   is the like-for-like comparison; the minimal bot does less than our default.
//! - The provider: an in-process OpenAI-compatible server that answers at once and records, per
//!   turn, when the request arrived (`t_in`) and when the answer left (`t_out`).
//!
//! Per turn: **inbound leg** = `t_in` − the moment Bob called `sendMessage` (Bob's encryption,
//! the relay, the assistant's decrypt, routing and provider request); **outbound leg** = the
//! moment Bob's Baileys surfaced the reply − `t_out` (the assistant's reply path and encryption,
//! the relay, Bob's decrypt). Both include the same contact-side and relay costs for both
//! assistants, so the ratio understates the difference between the assistants themselves. All
//! times are unix wall-clock on one machine (sub-millisecond in node via `performance`).
//!
//! `cargo bench --features wa-mock --bench full_turn` runs 100 turns each (after 10 warm-up;
//! `FULL_TURN_TURNS=<n>` for another count); without `--bench`, 3 each as a smoke test.
//! `FULL_TURN_ONLY_OURS=1` stops after our assistant's turns and prints only its rows: for
//! A/Bs of our own path between two builds (e.g. 300 turns each, runs alternated). Without
//! node/Baileys: a loud `SKIPPED:`.
//! `OPENCLAW_BENCH_LOG=openclaw=debug` prints the gateway's log (timestamped) on stderr.

#[path = "../tests/support/baileys_peer.rs"]
mod baileys_peer;
#[path = "../tests/support/inproc_gateway.rs"]
mod inproc_gateway;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use inproc_gateway::{client_config, InprocGateway};
use baileys_peer::{missing_baileys, BaileysPeer};
use openclaw::app::AppConfig;
use openclaw::channels::whatsapp::client::ClientConfig;
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::config::sources::SourceRequest;
use openclaw::config::Options;
use serde_json::{json, Value};

const US: &str = "15550004444";
const BOT: &str = "15550005555";
const BOT2: &str = "15550006666";
const BOB: &str = "15550003333";
const WAIT: Duration = Duration::from_secs(30);

fn unix_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0
}

/// Per turn tag: when the provider got the request and when its answer left.
type Hits = Arc<Mutex<HashMap<String, (f64, f64)>>>;

/// The tag (`bench-…`) of the last user message of a chat-completions body.
fn tag_of(body: &Value) -> Option<String> {
    let msgs = body["messages"].as_array()?;
    let last = msgs.iter().rev().find(|m| m["role"] == "user")?;
    let text = last["content"].as_str().map(str::to_string).unwrap_or_else(|| last["content"].to_string());
    let start = text.find("bench-")?;
    Some(text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect())
}

async fn instant_provider(hits: Hits) -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: String| {
            let hits = hits.clone();
            async move {
                let t_in = unix_ms();
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let tag = tag_of(&v).unwrap_or_default();
                let out = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": format!("ok {tag}")}, "finish_reason": "stop"}]});
                hits.lock().unwrap().insert(tag, (t_in, unix_ms()));
                axum::Json(out)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}


async fn link_us(m: &MockServer, cfg: &ClientConfig) {
    inproc_gateway::link_account(m, cfg, US, WAIT).await;
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Legs {
    inbound: Vec<f64>,
    outbound: Vec<f64>,
    total: Vec<f64>,
}

impl Legs {
    fn sort(&mut self) {
        for v in [&mut self.inbound, &mut self.outbound, &mut self.total] {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        }
    }
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            pct(&self.inbound, 0.5),
            pct(&self.inbound, 0.99),
            pct(&self.outbound, 0.5),
            pct(&self.outbound, 0.99),
            pct(&self.total, 0.5),
            pct(&self.total, 0.99)
        )
    }
}

/// Prints the p50 and p99 ratios of both bots' overhead to ours.
fn ratios(what: &str, ours: &Legs, bot: &Legs, like: &Legs) {
    for (name, theirs) in [("minimal bot", bot), ("bot doing the same (read receipt + typing)", like)] {
        println!(
            "{what}ratio {name} / ours: p50 {:.2}×, p99 {:.2}×",
            pct(&theirs.total, 0.5) / pct(&ours.total, 0.5),
            pct(&theirs.total, 0.99) / pct(&ours.total, 0.99)
        );
    }
}

/// When the relay routed message `id` to a device of `to_user` (`atMs` of its record).
fn routed_at(m: &MockServer, id: &str, to_user: &str) -> Option<f64> {
    m.relay_state()["recent"].as_array()?.iter().find_map(|r| {
        (r["tag"] == "message" && r["id"] == id && r["to"].as_str().is_some_and(|t| t.starts_with(to_user))).then(|| r["atMs"].as_f64()).flatten()
    })
}

/// Bob sends `n` DMs to `to` one after another, each waiting for its answer. Besides the legs
/// as Bob sees them, the assistant's own share (`own`): relay hands Bob's message over →
/// provider request, and provider answer → the relay has the reply.
fn turns(m: &MockServer, bob: &mut BaileysPeer, hits: &Hits, to: &str, prefix: &str, warmup: usize, n: usize) -> (Legs, Legs) {
    let mut legs = Legs::default();
    let mut own = Legs::default();
    for i in 0..warmup + n {
        let tag = format!("bench-{prefix}{i}");
        let since = bob.events.len();
        bob.send_text(to, &format!("turn {tag}"));
        let sent = bob.events[since..].iter().rev().find(|v| v["event"] == "sent").cloned().expect("sent");
        let t0 = sent["t0"].as_f64().expect("t0");
        let sent_id = sent["id"].as_str().unwrap_or_default().to_owned();
        let want = format!("ok {tag}");
        let got = bob.wait_from(since, WAIT, "the answer", |v| v["event"] == "message" && v["fromMe"] == false && v["text"] == want.as_str());
        let t_recv = got["at"].as_f64().expect("at");
        let (t_in, t_out) = *hits.lock().unwrap().get(&tag).expect("the provider saw the turn");
        if i >= warmup {
            legs.inbound.push(t_in - t0);
            legs.outbound.push(t_recv - t_out);
            legs.total.push((t_in - t0) + (t_recv - t_out));
            let reply_id = got["id"].as_str().unwrap_or_default();
            let (Some(handed), Some(back)) = (routed_at(m, &sent_id, to), routed_at(m, reply_id, BOB)) else {
                panic!("the relay did not record turn {tag} ({sent_id} → {to}, {reply_id} → {BOB})");
            };
            own.inbound.push(t_in - handed);
            own.outbound.push(back - t_out);
            own.total.push((t_in - handed) + (back - t_out));
        }
    }
    legs.sort();
    own.sort();
    (legs, own)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let turns_wanted = std::env::var("FULL_TURN_TURNS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(100);
    let (warmup, n) = if bench { (10, turns_wanted) } else { (1, 3) };
    // OPENCLAW_BENCH_LOG=<filter> (e.g. `openclaw=debug`): the gateway's log on stderr, timed.
    if let Ok(filter) = std::env::var("OPENCLAW_BENCH_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_writer(std::io::stderr).try_init();
    }
    if let Some(why) = missing_baileys() {
        eprintln!("SKIPPED: full_turn bench: {why}; nothing was measured");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _g = rt.enter();
    let hits: Hits = Arc::default();
    let provider = rt.block_on(instant_provider(hits.clone()));
    let m = rt.block_on(MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())).unwrap();
    for (p, name) in [(US, "Us"), (BOB, "Bob"), (BOT, "Bot"), (BOT2, "Bot2")] {
        m.create_account(p, None, Some(name)).unwrap();
    }
    let wa_dir = tempfile::tempdir().unwrap();
    let gw_dir = tempfile::tempdir().unwrap();
    rt.block_on(link_us(&m, &client_config(&m, wa_dir.path())));

    // The gateway's own wiring: a config file compiled into a snapshot, from which the gateway
    // builds the agent with the persistent session history (sessions.db) and the workspace
    // `<state dir>/workspace`, as `openclaw gateway` does.
    let config = json!({
        "channels": {"whatsapp": {"dmPolicy": "allowlist", "allowFrom": [format!("+{BOB}")]}},
        "models": {"providers": {"instant": {"baseUrl": format!("{provider}/v1"), "apiKey": "bench", "api": "openai-completions",
                                              "models": [{"id": "instant"}]}}},
        "agents": {"defaults": {"model": "instant/instant"}}
    });
    let file = gw_dir.path().join("openclaw.json5");
    std::fs::write(&file, config.to_string()).unwrap();
    let request = SourceRequest { config: Some(file), state_dir: Some(gw_dir.path().to_path_buf()), no_state: false };
    let compiled = openclaw::config::compile(&Options { request }, &HashMap::<String, String>::new()).unwrap();
    let errors: Vec<String> = compiled.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "bench config: {errors:?}");
    let snapshot = compiled.snapshot().expect("a valid config has a snapshot");
    let typed = compiled.output.as_ref().expect("compiled").config.clone();
    let mut settings = openclaw::gateway::GatewaySettings::new(openclaw::store::StateLayout::new(gw_dir.path()));
    settings.port = 0;
    settings.app = AppConfig::from_config(&typed, Some(Arc::new(snapshot)));
    let gw = InprocGateway::start(&rt, settings, &m, wa_dir.path());

    let bob_auth = tempfile::tempdir().unwrap();
    let bot_auth = tempfile::tempdir().unwrap();
    // SAFETY (both env calls): set before the harnesses are spawned, read only by them.
    // The harnesses' own watchdog (180 s by default) must outlast the run.
    unsafe { std::env::set_var("HARNESS_TIMEOUT_MS", "1800000") };
    // The contact stands for a phone elsewhere: its Baileys (about one core of this machine while
    // it encrypts, decrypts and stores) runs at the lowest priority, so that it does not take the
    // CPU from whichever assistant is being measured. FULL_TURN_CONTACT_NICE=0: same priority.
    let contact_nice = std::env::var("FULL_TURN_CONTACT_NICE").unwrap_or_else(|_| "19".into());
    // SAFETY: set before Bob's child process is spawned and removed right after.
    unsafe { std::env::set_var("HARNESS_NICE", &contact_nice) };
    let mut bob = BaileysPeer::start("bob", &m.url(), &m.admin_base(), bob_auth.path(), BOB, false);
    unsafe { std::env::remove_var("HARNESS_NICE") };
    bob.wait_open();
    // SAFETY: set before the bot's child process is spawned and removed right after; nothing in
    // this process reads HARNESS_BOT_URL.
    unsafe { std::env::set_var("HARNESS_BOT_URL", format!("{provider}/v1")) };
    let mut bot = BaileysPeer::start("bot", &m.url(), &m.admin_base(), bot_auth.path(), BOT, false);
    unsafe { std::env::remove_var("HARNESS_BOT_URL") };
    bot.wait_open();

    let (ours, ours_own) = turns(&m, &mut bob, &hits, US, "u", warmup, n);
    if std::env::var("FULL_TURN_ONLY_OURS").is_ok_and(|v| v == "1") {
        println!("full_turn, ours only: {n} turns after {warmup} warm-up; the contact at niceness {contact_nice}; ms, p50 / p99");
        println!("| share | inbound leg | outbound leg | overhead (sum) |");
        println!("|---|---|---|---|");
        println!("{}", ours.row("as the contact sees it"));
        println!("{}", ours_own.row("own share (relay timestamps)"));
        bot.quit();
        bob.quit();
        gw.stop(&rt);
        return;
    }
    let (theirs, theirs_own) = turns(&m, &mut bob, &hits, BOT, "b", warmup, n);
    bot.quit();
    // The same bot doing, around each turn, what our gateway does by default: the read receipt
    // and `composing` when the DM arrives, `paused` after the reply (started now so that it
    // does not idle beside the other runs).
    let bot2_auth = tempfile::tempdir().unwrap();
    // SAFETY: as above, set before this child is spawned and removed right after.
    unsafe {
        std::env::set_var("HARNESS_BOT_URL", format!("{provider}/v1"));
        std::env::set_var("HARNESS_BOT_LIKE_GATEWAY", "1");
    }
    let mut bot2 = BaileysPeer::start("bot2", &m.url(), &m.admin_base(), bot2_auth.path(), BOT2, false);
    unsafe {
        std::env::remove_var("HARNESS_BOT_URL");
        std::env::remove_var("HARNESS_BOT_LIKE_GATEWAY");
    }
    bot2.wait_open();
    let (like, like_own) = turns(&m, &mut bob, &hits, BOT2, "l", warmup, n);
    println!("full_turn: {n} turns each after {warmup} warm-up; the contact at niceness {contact_nice}; ms, p50 / p99, as the Baileys contact sees it");
    println!("| assistant | inbound leg (send → provider request) | outbound leg (provider answer → contact has it) | overhead (sum) |");
    println!("|---|---|---|---|");
    println!("{}", ours.row("openclaw-rust gateway"));
    println!("{}", theirs.row("minimal Baileys bot"));
    println!("{}", like.row("Baileys bot, read receipt + typing like ours"));
    ratios("", &ours, &theirs, &like);
    println!();
    println!("the assistant's own share, from the relay's timestamps: ms, p50 / p99");
    println!("| assistant | relay hands the DM over → provider request | provider answer → relay has the reply | overhead (sum) |");
    println!("|---|---|---|---|");
    println!("{}", ours_own.row("openclaw-rust gateway"));
    println!("{}", theirs_own.row("minimal Baileys bot"));
    println!("{}", like_own.row("Baileys bot, read receipt + typing like ours"));
    ratios("own-share ", &ours_own, &theirs_own, &like_own);

    bob.quit();
    bot2.quit();
    gw.stop(&rt);
}
