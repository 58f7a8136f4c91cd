//! `openclaw-wa-mock --listen 127.0.0.1:PORT [--account PHONE[:NAME]]...`: the mock WhatsApp
//! server and relay (cargo feature `wa-mock`).
//!
//! Prints one JSON line `{"url": "ws://.../ws/chat", "rootKey": "<hex>", "admin": "http://...",
//! "accounts": [...]}` and serves until killed. Each `--account` creates one more person on the
//! relay (account 0, the default link target, always exists). See
//! `openclaw::channels::whatsapp::mock` for the admin API.

use std::net::SocketAddr;
use std::process::ExitCode;

use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};

const USAGE: &str = "usage: openclaw-wa-mock [--listen 127.0.0.1:PORT] [--account PHONE[:NAME]]...";

/// Parsed command line.
struct Args {
    listen: SocketAddr,
    /// (phone, name) of extra accounts.
    accounts: Vec<(String, Option<String>)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        accounts: Vec::new(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs ADDR:PORT")?;
                out.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--account" => {
                let v = args.next().ok_or("--account needs PHONE[:NAME]")?;
                let (phone, name) = match v.split_once(':') {
                    Some((p, n)) => (p.to_owned(), Some(n.to_owned())),
                    None => (v, None),
                };
                out.accounts.push((phone, name));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openclaw-wa-mock: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let listen = args.listen;
        let server = match MockServer::start(listen, MockOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("openclaw-wa-mock: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut accounts = Vec::new();
        for (phone, name) in &args.accounts {
            match server.create_account(phone, None, name.as_deref()) {
                Ok(a) => accounts.push(serde_json::json!({ "phone": a.phone, "jid": a.jid, "lid": a.lid_jid, "name": a.name })),
                Err(e) => {
                    eprintln!("openclaw-wa-mock: --account {phone}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        let mut banner = server.banner();
        banner["accounts"] = serde_json::Value::Array(accounts);
        println!("{banner}");
        std::future::pending::<()>().await;
        ExitCode::SUCCESS
    })
}
