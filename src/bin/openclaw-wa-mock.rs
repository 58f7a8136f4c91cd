//! `openclaw-wa-mock --listen 127.0.0.1:PORT`: the mock WhatsApp server (cargo feature `wa-mock`).
//!
//! Prints one JSON line `{"url": "ws://.../ws/chat", "rootKey": "<hex>", "admin": "http://..."}`
//! and serves until killed. See `openclaw::channels::whatsapp::mock` for the admin API.

use std::net::SocketAddr;
use std::process::ExitCode;

use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};

fn parse_args() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs ADDR:PORT")?;
                listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "-h" | "--help" => {
                return Err("usage: openclaw-wa-mock [--listen 127.0.0.1:PORT]".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(listen)
}

fn main() -> ExitCode {
    let listen = match parse_args() {
        Ok(l) => l,
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
        let server = match MockServer::start(listen, MockOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("openclaw-wa-mock: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("{}", server.banner());
        std::future::pending::<()>().await;
        ExitCode::SUCCESS
    })
}
