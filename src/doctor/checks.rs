//! The checks: pure functions from [`Facts`] to findings. Each finding has a stable id, a
//! status, the evidence it is based on and the exact command that fixes it. One check per
//! field-report symptom (the seeds), named for the symptom.

use serde::Serialize;

use crate::channels::whatsapp::supervisor::persist::fmt_ms;
use crate::doctor::facts::{CredsFact, Facts};

/// Permission bits that must be clear on a file holding a secret (group/other access).
const GROUP_OTHER: u32 = 0o077;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Not applicable or not checked (says why).
    Skip,
    /// Works, but will bite (or needs a person's action soon).
    Warn,
    /// Broken: `doctor` exits non-zero.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable id, e.g. `gateway.running` or `whatsapp.default.linked`.
    pub id: String,
    /// The outcome.
    pub status: Status,
    /// One sentence for people.
    pub message: String,
    /// What the sentence is based on (paths, pids, fingerprints, times).
    pub evidence: Vec<String>,
    /// The exact command (or edit) that fixes it.
    pub fix: Option<String>,
    /// `doctor --fix` can repair it unattended.
    pub auto_fixable: bool,
}

impl Finding {
    pub(crate) fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Self {
        Self { id: id.into(), status, message: message.into(), evidence: vec![], fix: None, auto_fixable: false }
    }
    pub(crate) fn ev(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }
    pub(crate) fn fix(mut self, f: impl Into<String>) -> Self {
        self.fix = Some(f.into());
        self
    }
    fn auto(mut self) -> Self {
        self.auto_fixable = true;
        self
    }
}

/// How far `t` is from `now` in words ("in 19 min").
fn rel(now: u64, t: u64) -> String {
    let s = t.saturating_sub(now) / 1000;
    if s < 60 { format!("in {s} s") } else if s < 3600 { format!("in {} min", (s + 30) / 60) } else { format!("in {} h {} min", s / 3600, (s % 3600) / 60) }
}

/// Runs every check, in ladder order: config, tokens, gateway, devices, WhatsApp, hooks, files,
/// model providers.
pub fn run_checks(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(config_valid(f));
    out.push(whatsapp_declared(f));
    out.extend(token_checks(f));
    out.extend(gateway_checks(f));
    out.push(devices_pending(f));
    out.extend(whatsapp_legacy_creds(f));
    out.extend(whatsapp_accounts(f));
    out.push(crate::doctor::group_checks::groups_ignored(f));
    out.push(hooks_delivery(f));
    out.push(file_modes(f));
    out.extend(crate::doctor::provider_checks::provider_checks(&f.providers));
    out
}

fn config_valid(f: &Facts) -> Finding {
    if f.config.valid {
        return Finding::new("config.valid", Status::Ok, "the config is valid")
            .ev(format!("files: {}", config_files(f)));
    }
    let mut x = Finding::new("config.valid", Status::Fail, "the config is invalid: the gateway will not start")
        .fix(format!("openclaw config check   # then edit {}", config_files(f)));
    for e in &f.config.errors {
        x = x.ev(e.clone());
    }
    x
}

fn config_files(f: &Facts) -> String {
    let mut v: Vec<String> = f.config.system_file.iter().map(|p| p.display().to_string()).collect();
    v.push(f.config.state_file.display().to_string());
    v.join(", ")
}

fn whatsapp_declared(f: &Facts) -> Finding {
    let id = "whatsapp.declared";
    let orphan: Vec<&str> = f.whatsapp.iter().filter(|a| !a.configured).map(|a| a.id.as_str()).collect();
    let where_ = match &f.config.system_file {
        Some(p) => format!("add channels.whatsapp to {} (NixOS: services.openclaw.settings.channels.whatsapp = {{ }}; then nixos-rebuild switch)", p.display()),
        None => format!("add channels.whatsapp to {}", f.config.state_file.display()),
    };
    if !f.config.valid {
        return Finding::new(id, Status::Skip, "not checked: the config is invalid");
    }
    if f.config.system_file.is_some() && !f.config.whatsapp_in_system && f.config.whatsapp_in_state {
        return Finding::new(
            id,
            Status::Fail,
            "channels.whatsapp is declared only in the state dir's file: channels come from the system config, so WhatsApp does not start (upstream says \"web login provider is not available\")",
        )
        .ev(format!("declared in {}", f.config.state_file.display()))
        .ev(format!("not in {}", f.config.system_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()))
        .fix(where_);
    }
    if !f.config.whatsapp_declared && !orphan.is_empty() {
        return Finding::new(
            id,
            Status::Fail,
            "WhatsApp credentials exist but channels.whatsapp is not declared: the gateway will not run this number (upstream says \"web login provider is not available\")",
        )
        .ev(format!("linked accounts on disk: {}", orphan.join(", ")))
        .fix(where_);
    }
    if !f.config.whatsapp_declared {
        return Finding::new(id, Status::Skip, "WhatsApp is not configured");
    }
    if !orphan.is_empty() {
        return Finding::new(id, Status::Warn, "credentials exist for accounts the config does not list: those numbers are not run")
            .ev(format!("accounts on disk only: {}", orphan.join(", ")))
            .fix("list them under channels.whatsapp.accounts, or `openclaw channels logout --account <id>`");
    }
    Finding::new(id, Status::Ok, "WhatsApp is declared in the config")
}

fn token_checks(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let ex = &f.tokens.explicit;
    let disagree = ex.windows(2).any(|w| w[0].fingerprint != w[1].fingerprint);
    if disagree {
        let mut x = Finding::new("token.sources", Status::Fail, "the gateway token sources disagree: the gateway refuses to start")
            .fix("make every source hold the same token (or remove all but one): the environment variable, gateway.auth.token, gateway.auth.tokenFile");
        for t in ex {
            x = x.ev(format!("{}: {}", t.label, t.fingerprint));
        }
        out.push(x);
    } else {
        let used = ex.first().or(f.tokens.generated.as_ref());
        let mut x = match used {
            Some(t) => Finding::new("token.sources", Status::Ok, format!("this CLI uses the token from {}", t.label)).ev(format!("{}: {}", t.label, t.fingerprint)),
            None => Finding::new("token.sources", Status::Warn, "no gateway token yet: the gateway generates one on first start")
                .fix("openclaw gateway run   # or set gateway.auth.tokenFile"),
        };
        if let (Some(t), Some(g)) = (ex.first(), &f.tokens.generated)
            && t.fingerprint != g.fingerprint
        {
            x = x.ev(format!("{} ({}) is ignored while {} is set", g.label, g.fingerprint, t.label));
        }
        // The running gateway's token against this CLI's.
        if let (Some(t), Some((gw_fp, gw_src))) = (used, &f.gateway.runtime_token)
            && &t.fingerprint != gw_fp
        {
            x = Finding::new(
                "token.sources",
                Status::Fail,
                "this CLI and the running gateway use different tokens: CLI commands and the dashboard link get \"gateway token mismatch\"",
            )
            .ev(format!("CLI: {} ({})", t.label, t.fingerprint))
            .ev(format!("gateway (pid {}): {gw_src} ({gw_fp})", f.gateway.runtime_pid.unwrap_or(0)))
            .fix(format!("give the CLI the gateway's token source: export the same OPENCLAW_GATEWAY_TOKEN (or pass --token); the gateway uses {gw_src}"));
        }
        out.push(x);
    }
    let loose: Vec<String> = ex
        .iter()
        .chain(f.tokens.generated.iter())
        .filter_map(|t| t.file.as_ref())
        .filter(|m| m.mode & GROUP_OTHER != 0)
        .map(|m| format!("{} mode {:o}", m.path.display(), m.mode))
        .collect();
    if !loose.is_empty() {
        let mut x = Finding::new("token.file_mode", Status::Fail, "a token file is open to other users: the gateway refuses a configured one and repairs its generated one at startup")
            .auto()
            .fix(format!(
                "chmod 600 {}   # or openclaw doctor --fix",
                loose.iter().map(|l| l.split(" mode ").next().unwrap_or_default().to_string()).collect::<Vec<_>>().join(" ")
            ));
        for l in loose {
            x = x.ev(l);
        }
        out.push(x);
    }
    out
}

fn gateway_checks(f: &Facts) -> Vec<Finding> {
    let g = &f.gateway;
    let mut out = Vec::new();
    let ours = g.runtime_pid_alive && g.port_holder.as_ref().is_some_and(|h| Some(h.pid) == g.runtime_pid);
    let same_dir = |d: &std::path::Path| std::fs::canonicalize(d).ok() == std::fs::canonicalize(&f.state_dir).ok();
    match (&g.port_holder, ours) {
        (_, true) => out.push(
            Finding::new("gateway.running", Status::Ok, format!("the gateway runs (pid {}) on port {}", g.runtime_pid.unwrap_or(0), g.port))
                .ev(format!("runtime file {}", g.runtime_file.display())),
        ),
        (None, _) => out.push(
            Finding::new(
                "gateway.running",
                Status::Fail,
                "the gateway is not running: nothing listens, no WhatsApp session is active (sends fail with \"no active listener\")",
            )
            .ev(format!("nothing listens on port {}", g.port))
            .ev(format!("state dir {}", f.state_dir.display()))
            .fix("systemctl start openclaw   # NixOS service; or in the foreground: openclaw gateway run"),
        ),
        (Some(h), false) => match &g.holder_state_dir {
            Some(dir) if !same_dir(dir) => out.push(
                Finding::new(
                    "gateway.state_dir",
                    Status::Fail,
                    "the gateway on this port runs with another state dir than this CLI: commands here see other devices, tokens and accounts",
                )
                .ev(format!("port {} held by {} (pid {}) with state dir {}", g.port, h.name, h.pid, dir.display()))
                .ev(format!("this CLI's state dir: {}", f.state_dir.display()))
                .fix(format!("export OPENCLAW_STATE_DIR={}   # or pass --state-dir {} to each command", dir.display(), dir.display())),
            ),
            Some(_) => out.push(
                Finding::new("gateway.running", Status::Warn, "a gateway of this state dir listens, but its runtime file is missing or stale")
                    .ev(format!("port {} held by {} (pid {})", g.port, h.name, h.pid))
                    .fix("systemctl restart openclaw"),
            ),
            None => out.push(
                Finding::new(
                    "gateway.port",
                    Status::Fail,
                    format!("port {} is held by another process ({}, pid {}), not this state dir's gateway: requests (and an SSH tunnel to it) reach the wrong program", g.port, h.name, h.pid),
                )
                .ev(format!("pid {} {}", h.pid, g.holder_cmdline.clone().unwrap_or_else(|| h.name.clone())))
                .fix(format!("kill {}   # if it is a local gateway you do not need; or set gateway.port, or tunnel to another local port: ssh -N -L 18790:127.0.0.1:{} <host>", h.pid, g.port)),
            ),
        },
    }
    if g.runtime_pid.is_some() && !g.runtime_pid_alive {
        out.push(
            Finding::new("gateway.stale_runtime", Status::Warn, "a stale runtime file names a gateway that is gone")
                .ev(format!("{} names pid {} (not running)", g.runtime_file.display(), g.runtime_pid.unwrap_or(0)))
                .auto()
                .fix(format!("rm {}   # or openclaw doctor --fix", g.runtime_file.display())),
        );
    }
    if let Some(live) = &f.live
        && let Some(dir) = &live.state_dir
        && !same_dir(std::path::Path::new(dir))
    {
        out.push(
            Finding::new("gateway.state_dir", Status::Fail, "the gateway this CLI reached runs with another state dir")
                .ev(format!("gateway: {dir}; CLI: {}", f.state_dir.display()))
                .fix(format!("export OPENCLAW_STATE_DIR={dir}")),
        );
    }
    out
}

fn devices_pending(f: &Facts) -> Finding {
    if let Some(e) = &f.devices.error {
        return Finding::new("devices.pending", Status::Fail, "the device pairing files are unreadable").ev(e.clone()).fix("move the named file aside; devices pair again");
    }
    if f.devices.pending.is_empty() {
        return Finding::new("devices.pending", Status::Ok, "no device waits for approval");
    }
    let mut x = Finding::new(
        "devices.pending",
        Status::Warn,
        format!("{} device(s) wait for approval: their clients get \"pairing required\" (1008) until approved", f.devices.pending.len()),
    );
    for (req, dev, client) in &f.devices.pending {
        x = x.ev(format!("request {req}: device {dev} {client}"));
    }
    let first = &f.devices.pending[0].0;
    x.fix(format!("openclaw devices approve {first}   # after checking it is yours (openclaw devices list)"))
}

fn whatsapp_accounts(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in f.whatsapp.iter().filter(|a| a.configured && a.enabled) {
        let id = format!("whatsapp.{}", a.id);
        let acct = if a.id == "default" { String::new() } else { format!(" --account {}", a.id) };
        let live = f.live.as_ref().and_then(|l| l.channels.iter().find(|c| c["id"] == "whatsapp" && c["account"] == a.id.as_str()));
        let live_state = live.and_then(|c| c["state"].as_str()).unwrap_or("");
        let holder_is_gateway = a.session_holder.is_some() && a.session_holder == f.gateway.runtime_pid && f.gateway.runtime_pid_alive;
        if f.legacy_creds.iter().any(|l| l.account == a.id && l.blocked.is_none()) {
            // `whatsapp.<id>.legacy-creds` says what to do (not "corrupt", not "link again").
            continue;
        }
        if let CredsFact::Corrupt { reason } = &a.creds {
            out.push(
                Finding::new(format!("{id}.creds"), Status::Fail, "the WhatsApp credentials file is corrupt: the account cannot log in")
                    .ev(reason.clone())
                    .fix(format!(
                        "restore {}/creds.json.bak to creds.json if it exists; else openclaw channels logout{acct} && openclaw channels login{acct}",
                        a.creds_dir.display()
                    )),
            );
            continue;
        }
        if let Some((until, reason)) = &a.cooldown {
            // A damaged supervisor.json is read as a cooldown (fail closed): say which it is.
            let damaged = reason.contains(" is corrupt ") || reason.contains(" was corrupt ") || reason.contains(" is unreadable ");
            let message = if damaged {
                format!("the account's supervisor state is damaged, so no connection is attempted before {} ({}) (fail closed)", fmt_ms(*until), rel(f.now_ms, *until))
            } else {
                format!("WhatsApp refused this number recently; no attempt before {} ({}), so it is not blocked longer", fmt_ms(*until), rel(f.now_ms, *until))
            };
            let fix = if damaged {
                format!("wait until {}, then: openclaw channels login{acct} (it keeps the damaged file aside as supervisor.json.corrupt-<ms>)", fmt_ms(*until))
            } else {
                format!("wait until {}, then: openclaw channels login{acct}", fmt_ms(*until))
            };
            out.push(Finding::new(format!("{id}.cooldown"), Status::Warn, message).ev(format!("reason: {reason}")).fix(fix));
        }
        if let (Some(pid), false) = (a.session_holder, holder_is_gateway) {
            out.push(
                Finding::new(
                    format!("{id}.session"),
                    Status::Fail,
                    format!("another process ({}, pid {pid}) holds this account's session: the gateway cannot run it", a.session_holder_name.clone().unwrap_or_else(|| "?".into())),
                )
                .ev(format!("session lock in {}", a.creds_dir.display()))
                .fix(format!("let that login finish, or stop it: kill {pid}")),
            );
        }
        let linked = match &a.creds {
            CredsFact::Linked { e164, jid } => Some((e164, jid)),
            _ => None,
        };
        let finding = match (linked, live_state) {
            (_, "replaced") => Finding::new(
                format!("{id}.linked"),
                Status::Fail,
                "another instance uses this WhatsApp session (440 replaced): the gateway stopped this account",
            )
            .fix("stop the other instance using these credentials (another machine or container), then: systemctl restart openclaw"),
            (_, "loggedOut") => Finding::new(format!("{id}.linked"), Status::Fail, "the phone logged this device out: link it again")
                .ev(live.and_then(|c| c["detail"].as_str()).unwrap_or_default().to_string())
                .fix(format!("openclaw channels login{acct}")),
            (None, _) if !a.logged_out_backups.is_empty() => {
                let mut x = Finding::new(format!("{id}.linked"), Status::Fail, "the phone logged this device out: link it again");
                for b in &a.logged_out_backups {
                    x = x.ev(format!("old credentials kept in {}", b.display()));
                }
                x.fix(format!("openclaw channels login{acct}"))
            }
            (None, _) => Finding::new(format!("{id}.linked"), Status::Fail, "WhatsApp is not linked")
                .ev(format!("no linked creds.json in {}", a.creds_dir.display()))
                .fix(format!("openclaw channels login{acct}   # or the Control UI: openclaw dashboard")),
            (Some((e164, jid)), "connected") => {
                Finding::new(format!("{id}.linked"), Status::Ok, format!("linked as {e164} and connected")).ev(jid.to_string())
            }
            (Some((e164, jid)), "") => Finding::new(format!("{id}.linked"), Status::Ok, format!("linked as {e164}")).ev(jid.to_string()),
            (Some((e164, _)), state) => Finding::new(
                format!("{id}.linked"),
                Status::Warn,
                format!("linked as {e164} but not connected ({state}): {}", live.and_then(|c| c["detail"].as_str()).unwrap_or_default()),
            )
            .fix("openclaw channels status --probe; openclaw logs --follow"),
        };
        out.push(finding);
    }
    out
}

/// Upstream OpenClaw's credentials in a form this gateway does not read: the linked session
/// would be lost to a new link, when `doctor --fix` can carry it over.
fn whatsapp_legacy_creds(f: &Facts) -> Vec<Finding> {
    use crate::channels::whatsapp::legacy::LegacyKind;
    f.legacy_creds
        .iter()
        .map(|l| {
            let what = match l.kind {
                LegacyKind::FlatLayout => format!("upstream's old layout: WhatsApp credentials directly in {}", l.source.display()),
                LegacyKind::BaileysFormat => format!("upstream's Baileys format in {}", l.source.display()),
                LegacyKind::Interrupted => format!("a credential migration interrupted in {}", l.source.display()),
            };
            // Left-over legacy files next to the account's own credentials only need tidying.
            let (status, why) = match &l.blocked {
                None => (Status::Fail, "this gateway cannot use them until they are migrated"),
                Some(_) => (Status::Warn, "the account has its own credentials, so they are not used"),
            };
            let x = Finding::new(
                format!("whatsapp.{}.legacy-creds", l.account),
                status,
                format!("legacy WhatsApp credentials ({what}): {why}"),
            )
            .ev(format!("{} legacy file(s) in {}", l.files, l.source.display()))
            .ev(format!("they belong in {}", l.target.display()))
            .ev(l.linked_as.as_ref().map_or_else(|| "not linked".to_string(), |j| format!("linked as {j}")));
            match &l.blocked {
                Some(why) => x.ev(why.clone()).fix(format!("move the files you do not use out of {} by hand, then: openclaw doctor --fix", l.source.display())),
                None => x
                    .fix("openclaw doctor --fix   # copies, verifies, then moves the old files aside (never deletes); refused while the gateway holds the session: stop it first (NixOS: systemctl stop openclaw)")
                    .auto(),
            }
        })
        .collect()
}

fn hooks_delivery(f: &Facts) -> Finding {
    if !f.config.hooks_enabled {
        return Finding::new("hooks.delivery", Status::Skip, "hooks are disabled");
    }
    let connected = f.live.as_ref().map(|l| l.channels.iter().any(|c| c["id"] == "whatsapp" && c["connected"] == true));
    let linked = f.whatsapp.iter().any(|a| a.configured && a.enabled && matches!(a.creds, CredsFact::Linked { .. }));
    let failed = f.live.as_ref().and_then(|l| l.status["runs"]["failed"].as_u64()).unwrap_or(0);
    if connected == Some(false) || (connected.is_none() && !linked) {
        return Finding::new(
            "hooks.delivery",
            Status::Fail,
            "hooks are enabled but no WhatsApp account is connected: /hooks/agent answers {ok, runId} and the run cannot deliver (\"no active listener\")",
        )
        .ev(if connected.is_some() { "the running gateway reports no connected WhatsApp account".to_string() } else { "no linked WhatsApp account and no gateway reached".to_string() })
        .fix("link and connect WhatsApp first: openclaw channels login; then openclaw channels status --probe");
    }
    if failed > 0 {
        return Finding::new("hooks.delivery", Status::Warn, format!("{failed} run(s) failed since the gateway started"))
            .fix("openclaw logs --level warn   # shows each run's error");
    }
    Finding::new("hooks.delivery", Status::Ok, "hooks are enabled and WhatsApp can deliver")
}

fn file_modes(f: &Facts) -> Finding {
    let mut bad: Vec<String> = f
        .secret_files
        .iter()
        .filter(|m| m.mode & GROUP_OTHER != 0)
        .map(|m| format!("{} mode {:o} (want 600)", m.path.display(), m.mode))
        .collect();
    if let Some(m) = f.state_dir_mode
        && m & GROUP_OTHER != 0
    {
        bad.insert(0, format!("{} mode {:o} (want 700)", f.state_dir.display(), m));
    }
    if bad.is_empty() {
        return Finding::new("state.file_modes", Status::Ok, "the state dir and secret files are private");
    }
    let mut x = Finding::new("state.file_modes", Status::Warn, "secrets in the state dir are readable by other users")
        .auto()
        .fix(format!("openclaw doctor --fix   # chmod 700 {} and 600 on the files named", f.state_dir.display()));
    for b in bad {
        x = x.ev(b);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::facts::{AccountFacts, Live, TokenFact};
    use crate::gateway::portinfo::PortHolder;
    use std::path::PathBuf;

    const NOW: u64 = 1_796_000_000_000;

    fn base() -> Facts {
        let mut f = Facts { now_ms: NOW, state_dir: PathBuf::from("/var/lib/openclaw"), state_dir_mode: Some(0o700), ..Default::default() };
        f.config.valid = true;
        f.config.state_file = PathBuf::from("/var/lib/openclaw/openclaw.json");
        f.gateway.port = 18789;
        f.gateway.runtime_pid = Some(42);
        f.gateway.runtime_pid_alive = true;
        f.gateway.port_holder = Some(PortHolder { pid: 42, name: "openclaw".into() });
        f
    }

    fn account(creds: CredsFact) -> AccountFacts {
        AccountFacts {
            id: "default".into(),
            configured: true,
            enabled: true,
            creds_dir: PathBuf::from("/var/lib/openclaw/credentials/whatsapp/default"),
            creds,
            logged_out_backups: vec![],
            cooldown: None,
            session_holder: None,
            session_holder_name: None,
        }
    }

    fn get<'a>(v: &'a [Finding], id: &str) -> &'a Finding {
        v.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("no {id}: {v:#?}"))
    }

    #[test]
    fn healthy_install_has_no_failure() {
        let mut f = base();
        f.whatsapp.push(account(CredsFact::Linked { e164: "+15550001234".into(), jid: "15550001234:7@s.whatsapp.net".into() }));
        f.config.whatsapp_declared = true;
        f.live = Some(Live { channels: vec![serde_json::json!({"id": "whatsapp", "account": "default", "state": "connected", "connected": true})], ..Default::default() });
        let out = run_checks(&f);
        assert!(out.iter().all(|x| x.status != Status::Fail), "{out:#?}");
        assert_eq!(get(&out, "whatsapp.default.linked").message, "linked as +15550001234 and connected");
    }

    #[test]
    fn issue13_item2_legacy_creds_fail_with_the_fix_unless_the_account_has_its_own() {
        use crate::channels::whatsapp::legacy::{LegacyCreds, LegacyKind};
        let legacy = |blocked: Option<&str>| LegacyCreds {
            kind: LegacyKind::FlatLayout,
            account: "default".into(),
            source: PathBuf::from("/var/lib/openclaw/credentials"),
            target: PathBuf::from("/var/lib/openclaw/credentials/whatsapp/default"),
            files: 12,
            linked_as: Some("15550001234:7@s.whatsapp.net".into()),
            blocked: blocked.map(str::to_string),
        };
        // Only the legacy files: migrate them (not "link again").
        let mut f = base();
        f.whatsapp.push(account(CredsFact::Missing));
        f.legacy_creds.push(legacy(None));
        let out = run_checks(&f);
        let l = get(&out, "whatsapp.default.legacy-creds");
        assert_eq!((l.status, l.auto_fixable), (Status::Fail, true));
        assert!(l.fix.as_deref().is_some_and(|x| x.starts_with("openclaw doctor --fix")), "{l:?}");
        assert!(l.evidence.iter().any(|e| e == "linked as 15550001234:7@s.whatsapp.net"), "{l:?}");
        assert!(!out.iter().any(|x| x.id == "whatsapp.default.linked"), "{out:#?}");
        // Left-overs next to the account's own linked credentials: a warning, and the account's
        // own finding stays.
        let mut f = base();
        f.whatsapp.push(account(CredsFact::Linked { e164: "+15550001234".into(), jid: "15550001234:7@s.whatsapp.net".into() }));
        f.legacy_creds.push(legacy(Some("already has a creds.json")));
        let out = run_checks(&f);
        let l = get(&out, "whatsapp.default.legacy-creds");
        assert_eq!((l.status, l.auto_fixable), (Status::Warn, false));
        assert_eq!(get(&out, "whatsapp.default.linked").status, Status::Ok);
    }

    #[test]
    fn cooldown_names_the_time_left_and_the_wait() {
        let mut f = base();
        let mut a = account(CredsFact::Missing);
        a.cooldown = Some((NOW + 19 * 60_000, "loggedOut [401] during login".into()));
        f.whatsapp.push(a);
        let out = run_checks(&f);
        let c = get(&out, "whatsapp.default.cooldown");
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("(in 19 min)"), "{}", c.message);
        assert_eq!(c.fix.as_deref(), Some(format!("wait until {}, then: openclaw channels login", fmt_ms(NOW + 19 * 60_000)).as_str()));
    }

    #[test]
    fn runtime_token_differs_from_the_cli_token() {
        let mut f = base();
        f.tokens.generated = Some(TokenFact { label: "generated token file /x/gateway-token".into(), fingerprint: "sha256:aaaaaaaa".into(), file: None });
        f.gateway.runtime_token = Some(("sha256:bbbbbbbb".into(), "OPENCLAW_GATEWAY_TOKEN".into()));
        let out = run_checks(&f);
        let t = get(&out, "token.sources");
        assert_eq!(t.status, Status::Fail);
        assert_eq!(t.evidence, vec!["CLI: generated token file /x/gateway-token (sha256:aaaaaaaa)", "gateway (pid 42): OPENCLAW_GATEWAY_TOKEN (sha256:bbbbbbbb)"]);
    }

    #[test]
    fn port_holder_that_is_not_a_gateway_is_named() {
        let mut f = base();
        f.gateway.runtime_pid = None;
        f.gateway.runtime_pid_alive = false;
        f.gateway.port_holder = Some(PortHolder { pid: 777, name: "node".into() });
        f.gateway.holder_cmdline = Some("node /usr/lib/openclaw/dist/index.js gateway".into());
        let out = run_checks(&f);
        let p = get(&out, "gateway.port");
        assert_eq!(p.status, Status::Fail);
        assert!(p.message.contains("(node, pid 777)"));
        assert!(p.fix.as_deref().unwrap().starts_with("kill 777"));
    }

    #[test]
    fn replaced_and_logged_out_come_from_the_live_state() {
        for (state, words, fix) in [("replaced", "440 replaced", "stop the other instance"), ("loggedOut", "logged this device out", "openclaw channels login")] {
            let mut f = base();
            f.whatsapp.push(account(CredsFact::Linked { e164: "+1".into(), jid: "1@s.whatsapp.net".into() }));
            f.live = Some(Live { channels: vec![serde_json::json!({"id": "whatsapp", "account": "default", "state": state})], ..Default::default() });
            let out = run_checks(&f);
            let l = get(&out, "whatsapp.default.linked");
            assert_eq!(l.status, Status::Fail, "{state}");
            assert!(l.message.contains(words), "{state}: {}", l.message);
            assert!(l.fix.as_deref().unwrap().starts_with(fix), "{state}");
        }
    }
}
