//! An in-test fake channel driver for in-process gateway tests: a task that claims from an
//! account's `Outbox`, records what it claims and marks it `sent` (or `failed`, or claims
//! nothing while held), and answers the account's commands. Also the `openclaw` CLI run against
//! such a gateway. Shared by `assistant_fake_driver.rs` and `group_policy_table.rs`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openclaw::channels::registry::{AccountCommand, AccountHandle, TargetError};
use openclaw::messaging::{OutboundBody, OutboundMessage, Outbox, OutboxPolicy};

/// What the fake drivers saw.
#[derive(Default)]
pub struct Seen {
    /// Every message claimed and marked sent, in order.
    pub sent: Mutex<Vec<OutboundMessage>>,
    /// Ids marked read.
    pub read: Mutex<Vec<String>>,
    /// Typing commands.
    pub typing: AtomicUsize,
    /// While true the driver claims nothing (a disconnected account).
    pub hold: AtomicBool,
    /// When set the driver marks what it claims `failed` with this reason instead of `sent`.
    pub fail_with: Mutex<Option<String>>,
}

impl Seen {
    /// The texts sent to `chat`.
    pub fn texts_to(&self, chat: &str) -> Vec<String> {
        self.to(chat)
            .into_iter()
            .filter_map(|m| match m.body {
                OutboundBody::Text { text } => Some(text),
                _ => None,
            })
            .collect()
    }

    /// Everything sent to `chat`.
    pub fn to(&self, chat: &str) -> Vec<OutboundMessage> {
        self.sent.lock().unwrap().iter().filter(|m| m.chat.as_str() == chat).cloned().collect()
    }

    /// How many messages were sent.
    pub fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

/// Now, unix ms.
pub fn now() -> u64 {
    openclaw::agent::runs::unix_ms()
}

/// The WhatsApp JID of an E.164 number.
pub fn jid(e164: &str) -> String {
    format!("{}@s.whatsapp.net", e164.trim_start_matches('+'))
}

/// Spawns the fake driver of one account (its outbox in `dir`); returns its handle. A target
/// containing `5559999` is "not on WhatsApp"; groups are listed as none.
pub fn fake_driver(dir: &std::path::Path, account: &str, seen: Arc<Seen>) -> AccountHandle {
    let outbox = Outbox::open(&dir.join(format!("outbox-{account}.db")), OutboxPolicy::default()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let h = AccountHandle::new("whatsapp", account, outbox.clone(), tx);
    let acc = account.to_string();
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            while !s2.hold.load(Ordering::SeqCst)
                && let Some(rec) = outbox.claim_next("whatsapp", &acc, now()).await.unwrap()
            {
                let fail = s2.fail_with.lock().unwrap().clone();
                if let Some(why) = fail {
                    outbox.mark_failed(&rec.message.id, &why, now()).await.unwrap();
                    continue;
                }
                s2.sent.lock().unwrap().push(rec.message.clone());
                outbox.mark_sent(&rec.message.id, now()).await.unwrap();
            }
            tokio::select! {
                _ = outbox.wait_for_work() => {},
                _ = tokio::time::sleep(Duration::from_millis(20)) => {},
            }
        }
    });
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                AccountCommand::ResolveTarget { target, reply } => {
                    let r = if target.contains("5559999") {
                        Err(TargetError::NotOnChannel(target))
                    } else {
                        openclaw::app::send::local_chat(&target).map_err(|_| TargetError::Invalid(target))
                    };
                    let _ = reply.send(r);
                }
                AccountCommand::MarkRead { ids, .. } => seen.read.lock().unwrap().extend(ids.iter().map(|i| i.to_string())),
                AccountCommand::Presence { .. } => {
                    seen.typing.fetch_add(1, Ordering::SeqCst);
                }
                AccountCommand::ListGroups { reply } => {
                    let _ = reply.send(Ok(Vec::new()));
                }
            }
        }
    });
    h
}

/// Runs the `openclaw` binary against the in-process gateway of `dir`.
pub async fn cli(dir: &std::path::Path, port: u16, args: &[&str]) -> (i32, String, String) {
    let (dir, args): (std::path::PathBuf, Vec<String>) = (dir.to_path_buf(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_openclaw"))
            .args(&args)
            .arg("--state-dir")
            .arg(&dir)
            .args(["--url", &format!("ws://127.0.0.1:{port}")])
            .env_remove("OPENCLAW_CONFIG_PATH")
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
    .unwrap()
}
