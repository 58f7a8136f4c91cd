//! `openclaw doctor [--json] [--fix]`: gathers facts (files, `/proc`, and the running gateway
//! when it answers), runs the checks and prints each finding with its evidence and fix. Exit 1
//! when a check fails, 0 otherwise. `--fix` applies only the safe repairs, then checks again.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::status_cmd::{self, ClientArgs};
use crate::doctor::facts::{self, GatherOptions, Live};
use crate::doctor::{Finding, Status, fix, provider_probe, run_checks};

/// `doctor` flags.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Apply the safe repairs (file modes, a stale runtime file, legacy WhatsApp credentials), then check again.
    #[arg(long, alias = "repair")]
    pub fix: bool,
    /// Print JSON: `{ok, stateDir, findings:[{id,status,message,evidence,fix,autoFixable}], repairs}`.
    #[arg(long)]
    pub json: bool,
    /// State directory (default $OPENCLAW_STATE_DIR or ~/.openclaw).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The system config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Gateway token for the live checks (default: this state dir's).
    #[arg(long)]
    pub token: Option<String>,
    /// How long to wait for the gateway, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout: u64,
    /// How long each model provider may take to list its models, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub provider_timeout: u64,
}

/// What the running gateway of this state dir reports, when it answers this CLI.
async fn live(a: &DoctorArgs) -> Option<Live> {
    let ca = ClientArgs { state_dir: a.state_dir.clone(), config: a.config.clone(), token: a.token.clone(), timeout: a.timeout, ..Default::default() };
    let t = status_cmd::target(&ca).ok()?;
    t.pid?;
    let (mut c, hello) = status_cmd::try_open_quiet(&t, a.timeout).await.ok()??;
    let status = c.request("status", json!({})).await.ok()?;
    let channels = c.request("channels.status", json!({})).await.ok().and_then(|v| v["channels"].as_array().cloned()).unwrap_or_default();
    let group_decisions = c
        .request("channels.decisions", json!({"kind": "group", "droppedOnly": true, "limit": crate::doctor::group_checks::SHOWN}))
        .await
        .ok()
        .and_then(|v| v["decisions"].as_array().cloned())
        .unwrap_or_default();
    c.close().await;
    let state_dir = hello.pointer("/snapshot/stateDir").and_then(|v| v.as_str()).map(str::to_string);
    Some(Live { status, channels, state_dir, group_decisions })
}

fn check(a: &DoctorArgs) -> (facts::Facts, Vec<Finding>) {
    let opts = GatherOptions { state_dir: a.state_dir.clone(), config: a.config.clone() };
    let provider_timeout = Duration::from_millis(a.provider_timeout.max(100));
    let (live, providers) = status_cmd::block_on(async { tokio::join!(live(a), provider_probe::gather(&opts, provider_timeout)) })
        .map_or((None, Default::default()), |(l, p)| (l, p));
    let mut f = facts::gather(&opts, live, crate::agent::runs::unix_ms());
    f.providers = providers;
    let findings = run_checks(&f);
    (f, findings)
}

/// Runs `openclaw doctor`.
pub fn run(a: DoctorArgs) -> ExitCode {
    let (mut f, mut findings) = check(&a);
    let mut repairs = Vec::new();
    if a.fix {
        repairs = fix::apply(&f);
        if !repairs.is_empty() {
            (f, findings) = check(&a);
        }
    }
    let failed = findings.iter().any(|x| x.status == Status::Fail);
    if a.json {
        let doc = json!({"ok": !failed, "stateDir": f.state_dir, "findings": findings, "repairs": repairs});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("openclaw doctor: state dir {}", f.state_dir.display());
        for r in &repairs {
            match &r.error {
                None => println!("fixed: {}", r.action),
                Some(e) => println!("could not fix: {} ({e})", r.action),
            }
        }
        for x in &findings {
            let tag = match x.status {
                Status::Ok => " ok ",
                Status::Skip => "skip",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            println!("[{tag}] {}: {}", x.id, x.message);
            if x.status >= Status::Warn {
                for e in &x.evidence {
                    println!("       - {e}");
                }
                if let Some(fx) = &x.fix {
                    println!("       fix: {fx}");
                }
            }
        }
        let n = |s: Status| findings.iter().filter(|x| x.status == s).count();
        println!("{} ok, {} warnings, {} failed, {} skipped", n(Status::Ok), n(Status::Warn), n(Status::Fail), n(Status::Skip));
        if !a.fix && findings.iter().any(|x| x.auto_fixable && x.status >= Status::Warn) {
            println!("`openclaw doctor --fix` repairs the findings marked auto-fixable (file modes, stale runtime file, legacy WhatsApp credentials).");
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
